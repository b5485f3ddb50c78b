// Start-together guarantees checked on BOTH platforms from recorded events: the kernels of a
// MIX task, and the blocks of a sync_start task, run at the same time — also when the AIC part
// could have been pre-staged into a pending slot, and when the blocks are placed by different
// scheduler threads. Each kernel also waits at a barrier for its partners (with a deadline), as
// kernels exchanging data through a cluster pipe would: a partner that only starts after it
// ended is a failure, not a hang.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tmr/tmr.hpp"

namespace tmr {
namespace {

using Clock = std::chrono::steady_clock;

// One barrier per task tag (scalar 0); scalar 1 is the number of partners.
constexpr int kMaxTags = 64;
std::array<std::atomic<int>, kMaxTags> arrived{};
std::atomic<int> barrier_failures{0};

void reset_barriers() {
  for (std::atomic<int>& a : arrived)
    a.store(0);
  barrier_failures.store(0);
}

void partner(const KernelArgs& a) {
  const auto tag = a.scalar<std::uint32_t>(0);
  const auto partners = static_cast<int>(a.scalar<std::uint32_t>(1));
  arrived[tag].fetch_add(1);
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  while (arrived[tag].load() < partners) {
    if (Clock::now() > deadline) {
      barrier_failures.fetch_add(1);
      return;
    }
    std::this_thread::yield();
  }
}

void touch(const KernelArgs& a) {
  ++a.tensor(0).data_as<std::int32_t>()[0];
}

RuntimeConfig config_for(PlatformKind platform, int clusters, int threads) {
  RuntimeConfig c;
  c.platform = platform;
  c.clusters = clusters;
  c.scheduler_threads = threads;
  c.record_events = true;
  c.stall_timeout_s = 30;
  return c;
}

// Sequences of the tasks whose first kernel slot holding a kernel is `kernel`.
std::vector<std::uint64_t> tasks_of(const Trace& trace, KernelId kernel) {
  std::vector<std::uint64_t> sequences;
  for (const TaskEvent& t : trace.tasks) {
    if (t.kernels[0] == kernel || (t.kernels[0] == kNoKernel && t.kernels[1] == kernel))
      sequences.push_back(t.sequence);
  }
  return sequences;
}

// "" when, for every task in `sequences`, all its subtasks overlap in time (the latest start is
// before the earliest end); otherwise which task did not.
std::string co_start_violation(const Trace& trace, const std::vector<std::uint64_t>& sequences,
                               std::size_t subtasks_each) {
  std::map<std::uint64_t, std::vector<const SubtaskEvent*>> by_task;
  for (const SubtaskEvent& s : trace.subtasks)
    by_task[s.task_sequence].push_back(&s);
  for (const std::uint64_t seq : sequences) {
    const auto& events = by_task[seq];
    if (events.size() != subtasks_each) {
      return "task " + std::to_string(seq) + " ran " + std::to_string(events.size()) +
             " subtasks, expected " + std::to_string(subtasks_each);
    }
    std::uint64_t latest_start = 0;
    std::uint64_t earliest_end = ~std::uint64_t{0};
    for (const SubtaskEvent* e : events) {
      latest_start = std::max(latest_start, e->start_ns);
      earliest_end = std::min(earliest_end, e->end_ns);
    }
    if (latest_start >= earliest_end) {
      return "task " + std::to_string(seq) + ": a part started at " + std::to_string(latest_start) +
             " ns, after another ended at " + std::to_string(earliest_end) + " ns";
    }
  }
  return "";
}

class CoStart : public ::testing::TestWithParam<PlatformKind> {};

// Issue 14.7a: two AIC tasks keep the only AIC busy (the second one is pre-staged into its
// pending slot); the MIX task behind them must still start its AIC and AIV parts together.
TEST_P(CoStart, MixPartsStartTogetherWhenTheAicWasBusyWithPreStagedWork) {
  RuntimeConfig config = config_for(GetParam(), 1, 1);
  ASSERT_TRUE(config.dual_slot.aic) << "the default pre-stages AIC tasks";
  Runtime runtime(config);
  const KernelId aic_touch = runtime.kernels().add("aic_touch", CoreType::aic, &touch);
  const KernelId mix_aic = runtime.kernels().add("mix_aic", CoreType::aic, &partner);
  const KernelId mix_aiv = runtime.kernels().add("mix_aiv", CoreType::aiv, &partner);
  reset_barriers();
  std::vector<std::int32_t> cells(2, 0);
  RunArgs args;
  args.inout(cells.data(), {2}, DType::i32);
  const RunResult r = runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        for (std::uint32_t round = 0; round < 4; ++round) {
          o.submit_aic(aic_touch, Args().inout(a.tensor(0).view({1}, {0})));
          o.submit_aic(aic_touch, Args().inout(a.tensor(0).view({1}, {1})));
          o.submit({mix_aic, mix_aiv, kNoKernel}, Args().scalar(round).scalar(std::uint32_t{2}));
        }
      },
      args);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(barrier_failures.load(), 0) << "a MIX part waited for a partner that had not started";
  const std::vector<std::uint64_t> mix_tasks = tasks_of(*r.trace, mix_aic);
  ASSERT_EQ(mix_tasks.size(), 4u);
  EXPECT_EQ(co_start_violation(*r.trace, mix_tasks, 2), "");
  EXPECT_EQ(cells[0], 4);
  EXPECT_EQ(cells[1], 4);
}

// Issue 14.7b: 3 blocks, each scheduler thread owns one cluster (2 AIVs), so the blocks are
// placed by different threads; they must still run at the same time.
TEST_P(CoStart, SyncStartBlocksPlacedByDifferentThreadsStartTogether) {
  Runtime runtime(config_for(GetParam(), 3, 3));
  const KernelId member = runtime.kernels().add("member", CoreType::aiv, &partner);
  reset_barriers();
  const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    for (std::uint32_t i = 0; i < 4; ++i) {
      o.submit_aiv(member, Args().blocks(3).sync_start().scalar(i).scalar(std::uint32_t{3}));
    }
  });
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(barrier_failures.load(), 0) << "a block waited for a partner that had not started";
  const std::vector<std::uint64_t> tasks = tasks_of(*r.trace, member);
  ASSERT_EQ(tasks.size(), 4u);
  EXPECT_EQ(co_start_violation(*r.trace, tasks, 3), "");
}

// Issue 14.8: a 2-kernel start-together MIX task ({AIC, AIV0}) needs only two cores of a
// cluster; with both AIV1 cores busy it must still be placed (and run together).
TEST_P(CoStart, TwoKernelSyncStartMixTaskRunsWhileTheThirdCoresAreBusy) {
  Runtime runtime(config_for(GetParam(), 2, 1));
  const KernelId mix_aic = runtime.kernels().add("mix_aic", CoreType::aic, &partner);
  const KernelId mix_aiv = runtime.kernels().add("mix_aiv", CoreType::aiv, &partner);
  reset_barriers();
  const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    for (std::uint32_t i = 0; i < 4; ++i) {
      o.submit({mix_aic, mix_aiv, kNoKernel},
               Args().blocks(2).sync_start().scalar(i).scalar(std::uint32_t{4}));
    }
  });
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(barrier_failures.load(), 0);
  const std::vector<std::uint64_t> tasks = tasks_of(*r.trace, mix_aic);
  ASSERT_EQ(tasks.size(), 4u);
  EXPECT_EQ(co_start_violation(*r.trace, tasks, 4), "");
}

INSTANTIATE_TEST_SUITE_P(Platforms, CoStart,
                         ::testing::Values(PlatformKind::threads, PlatformKind::sim),
                         [](const ::testing::TestParamInfo<PlatformKind>& info) {
                           return std::string(info.param == PlatformKind::sim ? "sim" : "threads");
                         });

}  // namespace
}  // namespace tmr
