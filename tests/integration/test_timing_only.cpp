// Timing-only runs (RuntimeConfig::timing_only, issue 10) on both platforms: a program with real
// dependencies (inout chains on AIC and AIV, in a plain loop and a parallel_for, and a reader of
// every chain) runs through the whole runtime, every task and subtask is recorded with its
// producers ending before it starts, and no kernel body is called (memory stays as it was). The
// same program without the switch calls every kernel and computes the right values.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "support/platforms.hpp"
#include "tmr/tmr.hpp"

namespace tmr::testing {
namespace {

constexpr std::uint32_t kRows = 6;
constexpr std::uint32_t kCols = 4;
constexpr int kSteps = 3;            // chained bumps per row, alternating AIV / AIC
constexpr float kUntouched = -7.0f;  // what the reader's output holds before the run

std::atomic<int> kernel_calls{0};

// Adds 1 to every element of its inout row.
void bump(const KernelArgs& a) {
  kernel_calls.fetch_add(1);
  const Tensor& row = a.tensor(0);
  float* data = row.data_as<float>();
  for (std::uint32_t c = 0; c < kCols; ++c)
    data[c * row.stride(1)] += 1.0f;
}

// sums[r] = the sum of row r of the whole [kRows, kCols] input.
void sum_rows(const KernelArgs& a) {
  kernel_calls.fetch_add(1);
  const Tensor& x = a.tensor(0);
  const Tensor& sums = a.tensor(1);
  const float* in = x.data_as<float>();
  float* out = sums.data_as<float>();
  for (std::uint32_t r = 0; r < kRows; ++r) {
    float total = 0;
    for (std::uint32_t c = 0; c < kCols; ++c)
      total += in[r * x.stride(0) + c * x.stride(1)];
    out[r * sums.stride(0)] = total;
  }
}

struct Case {
  PlatformKind platform;
  bool timing_only;
  bool sim_alias;  // set the switch through SimConfig::timing_only (the older spelling)
};

class TimingOnly : public ::testing::TestWithParam<Case> {};

TEST_P(TimingOnly, RunsEveryTaskInDependencyOrderAndCallsKernelsOnlyWhenOff) {
  const Case param = GetParam();
  RuntimeConfig config;
  config.platform = param.platform;
  config.clusters = 2;
  config.scheduler_threads = 1;
  config.stall_timeout_s = 30;
  config.record_events = true;
  config.ring = few_tasks_ring();  // a few hundred tasks a run at most
  (param.sim_alias ? config.sim.timing_only : config.timing_only) = param.timing_only;
  Runtime runtime(config);
  const KernelId bump_aiv = runtime.kernels().add("bump_aiv", CoreType::aiv, &bump);
  const KernelId bump_aic = runtime.kernels().add("bump_aic", CoreType::aic, &bump);
  const KernelId sum_id = runtime.kernels().add("sum_rows", CoreType::aiv, &sum_rows);

  std::vector<float> x(std::size_t{kRows} * kCols, 0.0f);
  std::vector<float> sums(kRows, kUntouched);
  kernel_calls = 0;
  std::vector<std::vector<TaskId>> chains(kRows);  // each row's bumps, in order
  TaskId reader;
  int submitted = 0;
  const RunResult result = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor tx = Tensor::wrap(x.data(), {kRows, kCols}, DType::f32);
    const Tensor tsums = Tensor::wrap(sums.data(), {kRows}, DType::f32);
    const auto chain = [&](Orchestrator& o, std::int64_t i) {
      const auto r = static_cast<std::uint32_t>(i);
      for (int s = 0; s < kSteps; ++s) {
        const Args args = Args().inout(tx.view({1, kCols}, {r, 0}));
        const TaskOutputs made =
            s % 2 == 0 ? o.submit_aiv(bump_aiv, args) : o.submit_aic(bump_aic, args);
        chains[r].push_back(made.task());
      }
    };
    for (std::uint32_t r = 0; r < kRows / 2; ++r)
      chain(o, r);
    o.parallel_for(kRows / 2, [&](Orchestrator& o, std::int64_t i) { chain(o, kRows / 2 + i); });
    reader = o.submit_aiv(sum_id, Args().in(tx).out_existing(tsums)).task();
    submitted = kRows * kSteps + 1;
  });
  ASSERT_TRUE(result.ok()) << result.status.to_string();
  ASSERT_NE(result.trace, nullptr);
  const Trace& trace = *result.trace;

  // Every task recorded, each with its one subtask, and counted in RunStats.
  std::vector<const TaskEvent*> by_sequence(trace.tasks.size(), nullptr);
  int user_tasks = 0;
  for (const TaskEvent& e : trace.tasks) {
    by_sequence.at(e.sequence) = &e;
    if (!e.inline_task) ++user_tasks;
  }
  EXPECT_EQ(user_tasks, submitted);
  EXPECT_EQ(result.stats.tasks_submitted, trace.tasks.size());
  std::vector<std::uint64_t> start(trace.tasks.size(), std::numeric_limits<std::uint64_t>::max());
  std::vector<int> subtasks(trace.tasks.size(), 0);
  for (const SubtaskEvent& s : trace.subtasks) {
    ASSERT_LT(s.task_sequence, trace.tasks.size());
    start[s.task_sequence] = std::min(start[s.task_sequence], s.start_ns);
    ++subtasks[s.task_sequence];
    EXPECT_LE(s.start_ns, s.end_ns);
  }
  for (const TaskEvent& e : trace.tasks) {
    if (e.inline_task) continue;
    EXPECT_EQ(subtasks[e.sequence], 1) << "task " << e.sequence;
    for (const std::uint64_t p : e.producers) {
      ASSERT_LT(p, trace.tasks.size());
      if (by_sequence[p]->inline_task) continue;
      EXPECT_LE(by_sequence[p]->complete_ns, start[e.sequence])
          << "producer " << p << " of task " << e.sequence << " ended after it started";
    }
  }
  // The dependencies are real ones: each bump waits for the previous bump of its row, and the
  // reader for the last bump of every row.
  const auto event_of = [&](TaskId id) -> const TaskEvent& {
    const auto it = std::find_if(trace.tasks.begin(), trace.tasks.end(),
                                 [&](const TaskEvent& e) { return e.id == id; });
    EXPECT_NE(it, trace.tasks.end());
    return *it;
  };
  // A producer that had already finished when its consumer was analysed is no longer waited for,
  // so no edge is recorded; it then finished before the consumer's submit time (stamped after
  // the analysis). Kernels run while the orchestrator submits, so either may happen.
  const auto ordered = [&](TaskId producer, TaskId consumer) {
    const TaskEvent& before = event_of(producer);
    const TaskEvent& after = event_of(consumer);
    const bool edge = std::find(after.producers.begin(), after.producers.end(), before.sequence) !=
                      after.producers.end();
    return edge || before.complete_ns <= after.submit_ns;
  };
  for (std::uint32_t r = 0; r < kRows; ++r) {
    ASSERT_EQ(chains[r].size(), std::size_t{kSteps});
    for (int s = 1; s < kSteps; ++s)
      EXPECT_TRUE(ordered(chains[r][s - 1], chains[r][s])) << "row " << r << " step " << s;
    EXPECT_TRUE(ordered(chains[r].back(), reader)) << "row " << r;
  }

  if (runtime.config().runs_timing_only()) {
    EXPECT_EQ(kernel_calls.load(), 0) << "a timing-only run called a kernel body";
    for (const float v : x)
      ASSERT_EQ(v, 0.0f);
    for (const float v : sums)
      ASSERT_EQ(v, kUntouched);
  } else {
    EXPECT_EQ(kernel_calls.load(), submitted);
    for (const float v : x)
      ASSERT_EQ(v, static_cast<float>(kSteps));
    for (const float v : sums)
      ASSERT_EQ(v, static_cast<float>(kSteps * kCols));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Platforms, TimingOnly,
    ::testing::Values(Case{PlatformKind::threads, true, false},
                      Case{PlatformKind::threads, false, false},
                      Case{PlatformKind::threads, true, true}, Case{PlatformKind::sim, true, false},
                      Case{PlatformKind::sim, false, false}, Case{PlatformKind::sim, true, true}),
    [](const ::testing::TestParamInfo<Case>& info) {
      return platform_suffix(info.param.platform) +
             (info.param.timing_only ? (info.param.sim_alias ? "_sim_alias" : "_timing_only")
                                     : "_kernels");
    });

}  // namespace
}  // namespace tmr::testing
