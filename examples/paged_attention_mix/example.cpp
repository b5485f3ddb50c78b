// paged_attention_mix: paged attention with each block fused into one MIX task.
#include "common/catalog.hpp"
#include "paged_attention/attention_cases.hpp"
#include "paged_attention_mix/kernels.hpp"
#include "paged_attention_mix/orchestration.hpp"

namespace tmr::examples::paged_attention_mix {

namespace {

Example make_example() {
  Example example;
  example.name = "paged_attention_mix";
  example.summary =
      "paged attention with QK+softmax+PV+update fused into one MIX task per block; the AIC and "
      "both AIVs exchange tiles through the cluster pipe";
  example.cases = paged_attention::attention_case_specs();
  example.register_kernels = register_kernels;
  example.orchestration = orchestrate;
  example.make_problem = paged_attention::make_attention_problem_by_index;
  example.make_timing_problem = paged_attention::make_attention_timing_problem_by_index;
  example.make_param_case = paged_attention::attention_param_case;
  example.make_scaled_problem = [](std::size_t index, std::uint64_t seed, double scale) {
    return paged_attention::make_attention_problem(
        paged_attention::scaled_case(paged_attention::attention_cases().at(index), scale), seed);
  };
  return example;
}

}  // namespace

TMR_REGISTER_EXAMPLE(make_example)

}  // namespace tmr::examples::paged_attention_mix
