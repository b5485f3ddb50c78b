// paged_attention_pattern: paged_attention with each tile's full KV blocks as one TaskPattern
// (pattern_orchestration.hpp): the same cases, kernels and golden check.
#include "common/catalog.hpp"
#include "paged_attention/attention_cases.hpp"
#include "paged_attention/kernels.hpp"
#include "paged_attention/pattern_orchestration.hpp"

namespace tmr::examples::paged_attention {

namespace {

Example make_pattern_example() {
  Example example;
  example.name = "paged_attention_pattern";
  example.summary =
      "paged_attention with each head tile's full KV blocks as one TaskPattern (QK, softmax, PV "
      "and update an iteration; K/V through the block table)";
  example.cases = attention_case_specs();
  example.register_kernels = register_kernels;
  example.orchestration = paged_attention_pattern::orchestrate;
  example.make_problem = make_attention_problem_by_index;
  example.make_timing_problem = make_attention_timing_problem_by_index;
  example.make_param_case = attention_param_case;
  example.make_scaled_problem = [](std::size_t index, std::uint64_t seed, double scale) {
    return make_attention_problem(scaled_case(attention_cases().at(index), scale), seed);
  };
  return example;
}

}  // namespace

TMR_REGISTER_EXAMPLE(make_pattern_example)

}  // namespace tmr::examples::paged_attention
