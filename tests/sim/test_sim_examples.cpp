// Every example's small cases on the sim platform (a2a3: 24 clusters, 3 scheduler threads) with
// their goldens, and the production paged attention case in timing-only mode.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "common/catalog.hpp"
#include "paged_attention/attention_cases.hpp"
#include "sim/sim_test_support.hpp"
#include "support/test_scale.hpp"
#include "tmr/runtime.hpp"

namespace tmr::testing {
namespace {

using examples::Example;

TEST(SimExamples, EverySmallCaseMatchesItsGolden) {
  for (const Example& example : examples::all_examples()) {
    KernelRegistry kernels;
    example.register_kernels(kernels);
    Runtime runtime(sim_config(false), std::move(kernels));
    for (std::size_t i = 0; i < example.cases.size(); ++i) {
      if (example.cases[i].large) continue;
      const std::string name = example.name + "/" + example.cases[i].name;
      examples::Problem problem = example.make_problem(i, 77);
      const RunArgs args = problem.run_args();
      for (int round = 0; round < 2; ++round) {
        problem.reset_outputs();
        const RunResult result = runtime.run(example.orchestration, args);
        ASSERT_TRUE(result.ok()) << name << ": " << result.status.to_string();
        for (const examples::OutputCheck& check : problem.check()) {
          EXPECT_TRUE(check.passed()) << name << " round " << round + 1 << ": " << check.name << " "
                                      << check.mismatched << "/" << check.elements << " mismatched";
        }
      }
    }
  }
}

// The reference's ring-stress case: 64-task window, 2.5 MiB heap (not a power of two), 256
// dependency records. Before each KV block had its own scope this failed with
// flow_control_deadlock.
TEST(SimExamples, RingStressCasePassesOnTinyRings) {
  const Example* example = examples::find_example("paged_attention_ringbuffer");
  ASSERT_NE(example, nullptr);
  ASSERT_TRUE(example->ring.has_value());
  EXPECT_EQ(example->ring->task_window, 64u);
  RuntimeConfig config = sim_config(false);
  config.ring = *example->ring;
  KernelRegistry kernels;
  example->register_kernels(kernels);
  Runtime runtime(config, std::move(kernels));
  examples::Problem problem = example->make_scaled_problem(0, 3, test_scale());
  const RunResult result = runtime.run(example->orchestration, problem.run_args());
  ASSERT_TRUE(result.ok()) << result.status.to_string();
  for (const examples::OutputCheck& check : problem.check()) {
    EXPECT_TRUE(check.passed()) << check.name << " " << check.mismatched << "/" << check.elements;
  }
}

TEST(SimExamples, ProductionPagedAttentionRunsTimingOnly) {
  const Example* example = examples::find_example("paged_attention");
  ASSERT_NE(example, nullptr);
  const int index = example->find_case("B256_ctx8192");
  ASSERT_GE(index, 0);
  ASSERT_TRUE(example->cases[static_cast<std::size_t>(index)].production);
  examples::paged_attention::AttentionCase c =
      examples::paged_attention::attention_cases().at(static_cast<std::size_t>(index));
  c.batch = static_cast<std::uint32_t>(std::max(1.0, std::floor(c.batch * test_scale())));
  c.context_lens.resize(c.batch);
  examples::Problem problem = examples::paged_attention::make_attention_timing_problem(c, 1);
  RuntimeConfig config = sim_config(false);
  config.sim.timing_only = true;
  KernelRegistry kernels;
  example->register_kernels(kernels);
  Runtime runtime(config, std::move(kernels));
  const auto start = std::chrono::steady_clock::now();
  const RunResult result = runtime.run(example->orchestration, problem.run_args());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(result.ok()) << result.status.to_string();
  EXPECT_EQ(result.stats.tasks_submitted, examples::paged_attention::expected_pipeline_tasks(c));
  if (c.batch == 256) {
    EXPECT_EQ(result.stats.tasks_submitted, 65792u);
  }
  // Orchestration-bound: about one submit cost per task.
  EXPECT_GT(result.stats.orchestration_us / result.stats.wall_us, 0.9);
  std::printf("[production] %llu tasks, makespan %.1f us, %.3f s wall, %.0f tasks/s\n",
              static_cast<unsigned long long>(result.stats.tasks_submitted), result.stats.wall_us,
              seconds, static_cast<double>(result.stats.tasks_submitted) / seconds);
}

}  // namespace
}  // namespace tmr::testing
