// paged_attention_ringbuffer: the reference's ring-stress case. The four-kernel paged attention
// at B32 H16 D128 bs128 ctx 4096 on tiny rings (64-task window, 2.5 MiB heap, 256 dependency
// records): it passes only because each KV block's intermediates live in a scope of their own.
#include "common/catalog.hpp"
#include "paged_attention/attention_cases.hpp"
#include "paged_attention/kernels.hpp"
#include "paged_attention/orchestration.hpp"

namespace tmr::examples::paged_attention {

namespace {

Example make_ringbuffer_example() {
  Example example;
  example.name = "paged_attention_ringbuffer";
  example.summary =
      "paged attention on tiny rings (task window 64, heap 2.5 MiB, dep pool 256; TMR_RING_* "
      "override): ring rotation and reclamation under stress";
  for (const AttentionCase& c : ringbuffer_cases())
    example.cases.push_back(c.spec);
  example.register_kernels = register_kernels;
  example.orchestration = orchestrate;
  example.make_problem = [](std::size_t index, std::uint64_t seed) {
    return make_attention_problem(ringbuffer_cases().at(index), seed);
  };
  example.make_timing_problem = [](std::size_t index, std::uint64_t seed) {
    return make_attention_timing_problem(ringbuffer_cases().at(index), seed);
  };
  example.make_scaled_problem = [](std::size_t index, std::uint64_t seed, double scale) {
    return make_attention_problem(scaled_case(ringbuffer_cases().at(index), scale), seed);
  };
  example.ring = ringbuffer_ring();
  return example;
}

}  // namespace

TMR_REGISTER_EXAMPLE(make_ringbuffer_example)

}  // namespace tmr::examples::paged_attention
