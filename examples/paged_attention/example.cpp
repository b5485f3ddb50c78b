// paged_attention: the flagship example, registered with its cases.
#include "common/catalog.hpp"
#include "paged_attention/attention_cases.hpp"
#include "paged_attention/kernels.hpp"
#include "paged_attention/orchestration.hpp"

namespace tmr::examples::paged_attention {

namespace {

Example make_example() {
  Example example;
  example.name = "paged_attention";
  example.summary =
      "decode attention over a paged KV cache: per block QK (AIC) -> softmax (AIV) -> PV (AIC) -> "
      "online update (AIV)";
  example.cases = attention_case_specs();
  example.register_kernels = register_kernels;
  example.orchestration = orchestrate;
  example.make_problem = make_attention_problem_by_index;
  example.make_timing_problem = make_attention_timing_problem_by_index;
  example.make_param_case = attention_param_case;
  example.make_scaled_problem = [](std::size_t index, std::uint64_t seed, double scale) {
    return make_attention_problem(scaled_case(attention_cases().at(index), scale), seed);
  };
  return example;
}

}  // namespace

TMR_REGISTER_EXAMPLE(make_example)

}  // namespace tmr::examples::paged_attention
