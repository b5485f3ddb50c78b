// Start-together guarantees checked on BOTH platforms from recorded events: the kernels of a
// MIX task, and the blocks of a sync_start task, run at the same time — also when the AIC part
// could have been pre-staged into a pending slot, and when the blocks are placed by different
// scheduler threads, and when MIX parts are pre-staged behind busy cores (TMR_DUAL_SLOT with mix:
// the parts run together and their start skew is bounded by the one subtask each staged part
// waits behind). Each kernel also waits at a barrier for its partners (with a deadline), as
// kernels exchanging data through a cluster pipe would: a partner that only starts after it
// ended is a failure, not a hang.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "support/pipe_barrier.hpp"
#include "support/platforms.hpp"
#include "tmr/tmr.hpp"

namespace tmr {
namespace {

using testing::barrier_failures;
using testing::barrier_kernel;
using testing::reset_barriers;

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
  c.ring = testing::few_tasks_ring();  // a few hundred tasks a run at most
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
  const KernelId mix_aic = runtime.kernels().add("mix_aic", CoreType::aic, &barrier_kernel);
  const KernelId mix_aiv = runtime.kernels().add("mix_aiv", CoreType::aiv, &barrier_kernel);
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
  EXPECT_EQ(barrier_failures(), 0) << "a MIX part waited for a partner that had not started";
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
  const KernelId member = runtime.kernels().add("member", CoreType::aiv, &barrier_kernel);
  reset_barriers();
  const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    for (std::uint32_t i = 0; i < 4; ++i) {
      o.submit_aiv(member, Args().blocks(3).sync_start().scalar(i).scalar(std::uint32_t{3}));
    }
  });
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(barrier_failures(), 0) << "a block waited for a partner that had not started";
  const std::vector<std::uint64_t> tasks = tasks_of(*r.trace, member);
  ASSERT_EQ(tasks.size(), 4u);
  EXPECT_EQ(co_start_violation(*r.trace, tasks, 3), "");
}

// Issue 14.8: a 2-kernel start-together MIX task ({AIC, AIV0}) needs only two cores of a
// cluster; with both AIV1 cores busy it must still be placed (and run together).
TEST_P(CoStart, TwoKernelSyncStartMixTaskRunsWhileTheThirdCoresAreBusy) {
  Runtime runtime(config_for(GetParam(), 2, 1));
  const KernelId mix_aic = runtime.kernels().add("mix_aic", CoreType::aic, &barrier_kernel);
  const KernelId mix_aiv = runtime.kernels().add("mix_aiv", CoreType::aiv, &barrier_kernel);
  reset_barriers();
  const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    for (std::uint32_t i = 0; i < 4; ++i) {
      o.submit({mix_aic, mix_aiv, kNoKernel},
               Args().blocks(2).sync_start().scalar(i).scalar(std::uint32_t{4}));
    }
  });
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(barrier_failures(), 0);
  const std::vector<std::uint64_t> tasks = tasks_of(*r.trace, mix_aic);
  ASSERT_EQ(tasks.size(), 4u);
  EXPECT_EQ(co_start_violation(*r.trace, tasks, 4), "");
}

// Issue 12: with MIX pre-staging, a MIX block on a cluster whose AIV0 runs a long AIV task takes
// the idle AIC and AIV1 at once and AIV0's pending slot. The parts do not start at one instant,
// but they run together (the early ones block on their pipe), and the skew is bounded: each
// staged part starts right after the one subtask it was staged behind (nothing else runs on its
// core in between; on the sim within the modelled pickup time of that subtask's end).
TEST_P(CoStart, PreStagedMixPartsRunTogetherWithBoundedSkew) {
  RuntimeConfig config = config_for(GetParam(), 1, 1);
  config.dual_slot = {true, true, true};
  config.sim.costs.kernel_ns["long_aiv"] = 40'000;
  Runtime runtime(config);
  const KernelId long_aiv = runtime.kernels().add("long_aiv", CoreType::aiv, &testing::busy_kernel);
  const KernelId mix_aic = runtime.kernels().add("mix_aic", CoreType::aic, &barrier_kernel);
  const KernelId mix_aiv = runtime.kernels().add("mix_aiv", CoreType::aiv, &barrier_kernel);
  reset_barriers();
  constexpr std::uint32_t kRounds = 4;
  const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    for (std::uint32_t round = 0; round < kRounds; ++round) {
      o.submit_aiv(long_aiv, Args().scalar(20'000u));  // threads: 20 ms
      o.submit({mix_aic, mix_aiv, mix_aiv}, Args().scalar(round).scalar(std::uint32_t{3}));
    }
  });
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(barrier_failures(), 0) << "a MIX part waited for a partner that had not started";
  const std::vector<std::uint64_t> mix_tasks = tasks_of(*r.trace, mix_aic);
  ASSERT_EQ(mix_tasks.size(), kRounds);
  EXPECT_EQ(co_start_violation(*r.trace, mix_tasks, 3), "");
  std::map<int, std::vector<const SubtaskEvent*>> by_core;
  for (const SubtaskEvent& e : r.trace->subtasks)
    by_core[e.core].push_back(&e);
  int staged_parts = 0;
  for (auto& [core, events] : by_core) {
    std::sort(events.begin(), events.end(),
              [](auto* a, auto* b) { return a->start_ns < b->start_ns; });
    for (std::size_t i = 0; i < events.size(); ++i) {
      const SubtaskEvent& e = *events[i];
      if (!e.staged) continue;
      ++staged_parts;
      ASSERT_GT(i, 0u) << "a staged part must have a subtask ahead of it";
      const SubtaskEvent& ahead = *events[i - 1];
      EXPECT_LE(ahead.end_ns, e.start_ns);
      // On the sim's exact clock: staged behind exactly the subtask ahead (it ran when the part
      // was staged), and started one pickup after it ended. (On threads the core stamps its
      // start after the ACK the scheduler may already have acted on, so only the overlap above
      // and the order hold to the nanosecond.)
      if (GetParam() == PlatformKind::sim) {
        EXPECT_LT(ahead.start_ns, e.dispatch_ns);
        EXPECT_LT(e.dispatch_ns, ahead.end_ns);
        EXPECT_LE(e.start_ns - ahead.end_ns,
                  static_cast<std::uint64_t>(config.sim.costs.pickup_ns) + 1)
            << "a staged part started later than its core's pickup after the subtask ahead";
      }
    }
  }
  EXPECT_GT(staged_parts, 0) << "the case must stage MIX parts";
}

INSTANTIATE_TEST_SUITE_P(Platforms, CoStart, testing::both_platforms(), testing::platform_name);

}  // namespace
}  // namespace tmr
