// A worker asks for a task's record lines by the task's tensor and scalar counts when it
// dispatches the task to itself or latches one another thread placed (record_prefetch.hpp). Every
// count, inline or spilled, must still reach the kernel whole: a chain of tasks (each made ready
// by its producer's completion, so a worker's own step dispatches it) with 1 to 6 tensors and 0 to
// 11 scalars, each kernel checking what it got. Both platforms.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "support/platforms.hpp"
#include "tmr/tmr.hpp"

namespace tmr {
namespace {

std::atomic<int> wrong{0};

// Tensor 0: this task's cell (inout); tensor 1: the previous task's (in); tensors 2+: cells of
// the constant source, each holding its index. Scalars: 100 + k. Writes the sum of all of them.
void sum_arguments(const KernelArgs& a) {
  std::int32_t sum = 0;
  for (int t = 1; t < a.tensor_count(); ++t)
    sum += *a.tensor(t).data_as<std::int32_t>();
  for (int k = 0; k < a.scalar_count(); ++k) {
    const auto v = a.scalar<std::int32_t>(k);
    if (v != 100 + k) wrong.fetch_add(1);
    sum += v;
  }
  *a.tensor(0).data_as<std::int32_t>() = sum;
}

class RecordPrefetchRun : public ::testing::TestWithParam<PlatformKind> {};

TEST_P(RecordPrefetchRun, EveryArgumentCountReachesItsKernelWhole) {
  RuntimeConfig config;
  config.platform = GetParam();
  config.clusters = 1;
  config.scheduler_threads = 1;
  Runtime runtime(config);
  const KernelId kernel = runtime.kernels().add("sum_arguments", CoreType::aiv, &sum_arguments);
  constexpr std::uint32_t kTasks = 240;
  constexpr std::uint32_t kSources = 8;
  std::vector<std::int32_t> cells(kTasks, -1);
  std::vector<std::int32_t> source(kSources);
  for (std::uint32_t j = 0; j < kSources; ++j)
    source[j] = j;
  auto tensors_of = [](std::uint32_t i) { return 1 + static_cast<int>(i % 6); };  // 1..6
  auto scalars_of = [](std::uint32_t i) { return static_cast<int>(i % 12); };     // 0..11
  RunArgs args;
  args.inout(cells.data(), {kTasks}, DType::i32);
  args.input(source.data(), {kSources}, DType::i32);
  wrong.store(0);
  const RunResult result = runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        for (std::uint32_t i = 0; i < kTasks; ++i) {
          Args task;
          task.inout(a.tensor(0), {1}, {i});
          const int tensors = tensors_of(i);
          if (tensors > 1) task.in(a.tensor(0), {1}, {i == 0 ? 0 : i - 1});
          for (int t = 2; t < tensors; ++t)
            task.in(a.tensor(1), {1}, {static_cast<std::uint32_t>(t)});
          for (int k = 0; k < scalars_of(i); ++k)
            task.scalar(static_cast<std::int32_t>(100 + k));
          o.submit_aiv(kernel, task);
        }
      },
      args);
  ASSERT_TRUE(result.ok()) << result.status.to_string();
  EXPECT_EQ(wrong.load(), 0);
  std::vector<std::int32_t> expected(kTasks);
  for (std::uint32_t i = 0; i < kTasks; ++i) {
    std::int32_t sum = 0;
    const int tensors = tensors_of(i);
    if (tensors > 1) sum += i == 0 ? -1 : expected[i - 1];
    for (int t = 2; t < tensors; ++t)
      sum += t;
    for (int k = 0; k < scalars_of(i); ++k)
      sum += 100 + k;
    expected[i] = sum;
  }
  EXPECT_EQ(cells, expected);
}

INSTANTIATE_TEST_SUITE_P(Platforms, RecordPrefetchRun, testing::both_platforms(),
                         testing::platform_name);

}  // namespace
}  // namespace tmr
