// The run side of independent tasks (issue 13, session 26): a core that latched its task stages
// the queue's next task of its shape into its own pending slot (Scheduler::stage_into_own_pending,
// which dispatches the subtask itself, without dispatch_block's general choice). Checked from the
// trace and from what each kernel saw: every task runs once, and a staged subtask runs on a core
// of its shape with that core's own sub-block id and cluster. Both platforms: on the sim, whose
// scheduler places every task, the same facts hold for what it ran.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/platforms.hpp"
#include "support/test_scale.hpp"
#include "tmr/tmr.hpp"

namespace tmr {
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<bool> all_submitted{false};
std::atomic<int> holding{0};
std::atomic<int> noted{0};  // note() calls (a failed run's outputs are not copied back)

// Column 0: runs; 1: the sub-block id the kernel saw; 2: its cluster. One row per task.
void note(const KernelArgs& a) {
  noted.fetch_add(1, std::memory_order_relaxed);
  std::int32_t* row = a.tensor(0).data_as<std::int32_t>();
  row[0] += 1;
  row[1] = static_cast<std::int32_t>(a.sub_block_id());
  row[2] = static_cast<std::int32_t>(a.cluster());
}
void hold_then_note(const KernelArgs& a) {
  holding.fetch_add(1);
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!all_submitted.load() && Clock::now() < deadline)
    std::this_thread::yield();
  note(a);
}

class RunSide : public ::testing::TestWithParam<PlatformKind> {};

// One cluster (one AIC and two AIV cores), one scheduler thread, events recorded, and the kernels
// the staging tests submit: a holding one and a noting one of each core type.
struct NotingCluster {
  static RuntimeConfig config(PlatformKind platform) {
    RuntimeConfig c;
    c.platform = platform;
    c.clusters = 1;
    c.scheduler_threads = 1;
    c.record_events = true;              // dual-slot staging of AIC and AIV: the default
    c.ring = testing::few_tasks_ring();  // 603 tasks a run at most
    return c;
  }
  explicit NotingCluster(PlatformKind platform) : runtime(config(platform)) {}
  Runtime runtime;
  KernelId hold_aiv = runtime.kernels().add("hold_aiv", CoreType::aiv, &hold_then_note);
  KernelId hold_aic = runtime.kernels().add("hold_aic", CoreType::aic, &hold_then_note);
  KernelId aiv = runtime.kernels().add("note_aiv", CoreType::aiv, &note);
  KernelId aic = runtime.kernels().add("note_aic", CoreType::aic, &note);

  // One run over `rows` (three i32 columns a task): submit(o, row) submits, row(i) is row i's
  // view. Holding kernels wait until it returned (threads; the sim runs them at once).
  template <class Submit>
  RunResult run(std::vector<std::int32_t>& rows, Submit&& submit) {
    RunArgs args;
    args.inout(rows.data(), {static_cast<std::uint32_t>(rows.size() / 3), 3}, DType::i32);
    holding.store(0);
    all_submitted.store(runtime.config().platform != PlatformKind::threads);
    return runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          const Tensor& all = a.tensor(0);
          auto row = [&](int i) { return all.view({1, 3}, {static_cast<std::uint32_t>(i), 0}); };
          submit(o, row);
          all_submitted.store(true);
        },
        args);
  }
  // Threads: until `n` holding kernels run, so what is submitted next queues behind them.
  static void wait_for_holders(int n) {
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (holding.load() < n && Clock::now() < deadline)
      std::this_thread::yield();
  }
};

TEST_P(RunSide, StagedTasksRunOnTheirOwnCoreWithItsSubBlock) {
  NotingCluster cluster(GetParam());
  const RuntimeConfig& c = cluster.runtime.config();
  const KernelId hold_aiv = cluster.hold_aiv, hold_aic = cluster.hold_aic;
  const KernelId aiv = cluster.aiv, aic = cluster.aic;
  constexpr int kHeld = 3;  // every core of the cluster
  constexpr int kTasks = 400;
  constexpr int kRows = kHeld + kTasks;
  const bool threads = GetParam() == PlatformKind::threads;
  int staged_total = 0;
  int staged_aic = 0;
  int staged_aiv = 0;
  for (int round = 0; round < tmr::testing::scaled(4, 2); ++round) {
    std::vector<std::int32_t> rows(static_cast<std::size_t>(kRows) * 3, -1);
    for (int i = 0; i < kRows; ++i)
      rows[static_cast<std::size_t>(i) * 3] = 0;
    const RunResult r = cluster.run(rows, [&](Orchestrator& o, auto& row) {
      // Every core holds a task first, so the rest is queued behind busy cores (threads).
      for (int i = 0; i < kHeld; ++i) {
        if (i % 3 == 0) {
          o.submit_aic(hold_aic, Args().inout(row(i)));
        } else {
          o.submit_aiv(hold_aiv, Args().inout(row(i)));
        }
      }
      if (threads) NotingCluster::wait_for_holders(kHeld);
      for (int i = kHeld; i < kRows; ++i) {
        if (i % 4 == 0) {
          o.submit_aic(aic, Args().inout(row(i)));
        } else {
          o.submit_aiv(aiv, Args().inout(row(i)));
        }
      }
    });
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    ASSERT_TRUE(r.trace);
    for (int i = 0; i < kRows; ++i)
      ASSERT_EQ(rows[static_cast<std::size_t>(i) * 3], 1) << "task " << i;
    // Task sequences follow the submit order (no hidden tasks here): sequence i wrote row i.
    ASSERT_EQ(r.trace->tasks.size(), static_cast<std::size_t>(kRows));
    for (const SubtaskEvent& e : r.trace->subtasks) {
      ASSERT_LT(e.task_sequence, static_cast<std::uint64_t>(kRows));
      const std::size_t i = static_cast<std::size_t>(e.task_sequence);
      const bool is_aic = i < static_cast<std::size_t>(kHeld) ? i % 3 == 0 : i % 4 == 0;
      EXPECT_EQ(e.core_type, is_aic ? CoreType::aic : CoreType::aiv) << "task " << i;
      EXPECT_EQ(rows[i * 3 + 2], static_cast<std::int32_t>(e.cluster)) << "task " << i;
      if (!is_aic) {
        // AIV cores are numbered after the AIC ones, two a cluster (Topology::aiv_core).
        const int sub = e.core - c.clusters - 2 * e.cluster;
        staged_aiv += e.staged ? 1 : 0;
        EXPECT_EQ(rows[i * 3 + 1], sub) << "task " << i << " core " << e.core;
      } else {
        EXPECT_EQ(e.core, e.cluster) << "task " << i;  // Topology::aic_core
      }
      if (e.staged) {
        ++staged_total;
        staged_aic += is_aic ? 1 : 0;
      }
    }
  }
  // Staged subtasks are what this test is for: on threads, with every core busy when the queue
  // fills, each core stages the queue's next task behind the one it latched. (The sim's zero-time
  // kernels free a core before a step stages behind it.)
  if (threads) {
    EXPECT_GT(staged_total, 0);
    EXPECT_GT(staged_aic, 0);
    EXPECT_GT(staged_aiv, 0);
  }
}

// Once a kernel's exception aborts the run, no core places queued work: a core that finishes
// does not hand itself the queue's next task or stage one behind its running task
// (Scheduler::core_step checks the abort once for its whole step, stage_into_own_pending
// included). Every core holds a kernel that throws once all tasks are queued; each core's thread
// reports its exception before its own step, so the abort is seen there and none of the queued
// tasks runs (the sim: the run fails the same way).
std::atomic<int> throwing{0};
void hold_then_throw(const KernelArgs&) {
  throwing.fetch_add(1);
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!all_submitted.load() && Clock::now() < deadline)
    std::this_thread::yield();
  throw std::runtime_error("abort the run");
}

TEST_P(RunSide, NoQueuedTaskRunsAfterAnAbort) {
  RuntimeConfig c;
  c.platform = GetParam();
  c.clusters = 1;
  c.scheduler_threads = 1;
  c.ring = testing::few_tasks_ring();  // 303 tasks a run, all live at once at most
  Runtime runtime(c);
  const KernelId throw_aiv = runtime.kernels().add("throw_aiv", CoreType::aiv, &hold_then_throw);
  const KernelId throw_aic = runtime.kernels().add("throw_aic", CoreType::aic, &hold_then_throw);
  const KernelId aiv = runtime.kernels().add("note_aiv", CoreType::aiv, &note);
  const KernelId aic = runtime.kernels().add("note_aic", CoreType::aic, &note);
  constexpr int kTasks = 300;
  const bool threads = GetParam() == PlatformKind::threads;
  for (int round = 0; round < tmr::testing::scaled(3, 1); ++round) {
    std::vector<std::int32_t> rows(static_cast<std::size_t>(kTasks) * 3, 0);
    RunArgs args;
    args.inout(rows.data(), {static_cast<std::uint32_t>(kTasks), 3}, DType::i32);
    throwing.store(0);
    noted.store(0);
    all_submitted.store(!threads);
    const RunResult r = runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          o.submit_aic(throw_aic, Args());
          o.submit_aiv(throw_aiv, Args());
          o.submit_aiv(throw_aiv, Args());
          if (threads) {
            const auto deadline = Clock::now() + std::chrono::seconds(5);
            while (throwing.load() < 3 && Clock::now() < deadline)
              std::this_thread::yield();
          }
          const Tensor& all = a.tensor(0);
          for (int i = 0; i < kTasks; ++i) {
            const Tensor row = all.view({1, 3}, {static_cast<std::uint32_t>(i), 0});
            if (i % 4 == 0) {
              o.submit_aic(aic, Args().inout(row));
            } else {
              o.submit_aiv(aiv, Args().inout(row));
            }
          }
          all_submitted.store(true);
        },
        args);
    EXPECT_FALSE(r.ok());
    if (threads) {
      ASSERT_EQ(throwing.load(), 3);  // every core held its thrower while the tasks were queued
      EXPECT_EQ(noted.load(), 0) << "queued tasks ran after the abort";
    }
  }
}

// What a worker's completion step records for each subtask it retires comes from the copies the
// ACK/FIN table makes of the core's slots (apply_status, poll_core: session 27 packed `Subtask`
// and inlined these). Every task of the run is recorded exactly once, with the block, kernel slot
// and staging flags it was dispatched with and its times in order (dispatched, started, ended,
// retired). Tasks queue behind held cores, so on threads most of them pass the pending slot.
TEST_P(RunSide, EverySubtaskIsRecordedOnceWithWhatItWasDispatchedWith) {
  NotingCluster cluster(GetParam());
  constexpr int kHeld = 3;
  constexpr int kRows = kHeld + 600;
  const bool threads = GetParam() == PlatformKind::threads;
  int staged = 0;
  for (int round = 0; round < tmr::testing::scaled(4, 2); ++round) {
    std::vector<std::int32_t> rows(static_cast<std::size_t>(kRows) * 3, 0);
    const RunResult r = cluster.run(rows, [&](Orchestrator& o, auto& row) {
      for (int i = 0; i < kRows; ++i) {
        // Every core holds a task first: the rest queues behind them (threads).
        if (i == kHeld && threads) NotingCluster::wait_for_holders(kHeld);
        const bool held = i < kHeld;
        if (i % 3 == 0) {
          o.submit_aic(held ? cluster.hold_aic : cluster.aic, Args().inout(row(i)));
        } else {
          o.submit_aiv(held ? cluster.hold_aiv : cluster.aiv, Args().inout(row(i)));
        }
      }
    });
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    ASSERT_TRUE(r.trace);
    ASSERT_EQ(r.trace->subtasks.size(), static_cast<std::size_t>(kRows));
    std::vector<int> seen(static_cast<std::size_t>(kRows), 0);
    for (const SubtaskEvent& e : r.trace->subtasks) {
      ASSERT_LT(e.task_sequence, static_cast<std::uint64_t>(kRows));
      const std::size_t i = static_cast<std::size_t>(e.task_sequence);
      ++seen[i];
      const bool is_aic = i % 3 == 0;
      EXPECT_EQ(e.block, 0u) << "task " << i;
      EXPECT_EQ(e.slot, is_aic ? 0 : 1) << "task " << i;  // kSlotAic, kSlotAiv0
      EXPECT_EQ(e.core_type, is_aic ? CoreType::aic : CoreType::aiv) << "task " << i;
      EXPECT_FALSE(e.staged && e.early_handoff) << "task " << i;
      EXPECT_LE(e.dispatch_ns, e.start_ns) << "task " << i;
      EXPECT_LE(e.start_ns, e.end_ns) << "task " << i;
      EXPECT_LE(e.end_ns, e.retire_ns) << "task " << i;
      EXPECT_EQ(rows[i * 3], 1) << "task " << i;
      staged += e.staged ? 1 : 0;
    }
    for (int i = 0; i < kRows; ++i)
      EXPECT_EQ(seen[static_cast<std::size_t>(i)], 1) << "task " << i;
  }
  if (threads) {
    EXPECT_GT(staged, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Platforms, RunSide, testing::both_platforms(), testing::platform_name);

}  // namespace
}  // namespace tmr
