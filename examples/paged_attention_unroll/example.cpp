// paged_attention_unroll: registered with its cases (small ones first; the reference's Case1-3 at
// production scale are for `--platform sim --timing-only`).
#include "common/catalog.hpp"
#include "paged_attention_unroll/unroll.hpp"

namespace tmr::examples::paged_attention_unroll {

namespace pa = paged_attention;

const std::vector<pa::AttentionCase>& unroll_cases() {
  static const std::vector<pa::AttentionCase> cases = pa::with_reference_production_cases({
      pa::make_attention_case("Small1", 1, 16, 16, 16, {33}, 256, 1e-3, false),
      pa::make_attention_case("VarSeq4", 4, 16, 16, 16, {33, 64, 128, 15}, 256, 1e-3, false),
      // More than 64 blocks: two groups for the first request, one partial group for the second.
      pa::make_attention_case("MultiGroup", 2, 16, 16, 16, {1100, 700}, 1280, 1e-3, false),
  });
  return cases;
}

std::uint64_t expected_tasks(const pa::AttentionCase& c) {
  const std::uint64_t tile = pa::head_tile(c.heads);
  const std::uint64_t head_tiles = (c.heads + tile - 1) / tile;
  std::uint64_t tasks = 0;
  for (const std::int32_t context : c.context_lens) {
    const std::uint64_t blocks =
        (static_cast<std::uint64_t>(context) + c.block_size - 1) / c.block_size;
    if (blocks > 0) tasks += head_tiles * (1 + 4 * ((blocks + kUnroll - 1) / kUnroll));
  }
  return tasks;
}

namespace {

Example make_example() {
  Example example = pa::make_case_table_example(
      "paged_attention_unroll",
      "paged attention with up to 64 KV blocks per task group, 4 tasks per group (block ids "
      "looked up in the kernels): the reference's main benchmark",
      unroll_cases);
  example.register_kernels = register_kernels;
  example.orchestration = orchestrate;
  return example;
}

}  // namespace

TMR_REGISTER_EXAMPLE(make_example)

}  // namespace tmr::examples::paged_attention_unroll
