// The run side of independent tasks (issue 13, session 26): a core that latched its task stages
// the queue's next task of its shape into its own pending slot (Scheduler::stage_into_own_pending,
// which dispatches the subtask itself, without dispatch_block's general choice). Checked from the
// trace and from what each kernel saw: every task runs once, and a staged subtask runs on a core
// of its shape with that core's own sub-block id and cluster. Both platforms: on the sim, whose
// scheduler places every task, the same facts hold for what it ran.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/orchestrator_core.hpp"
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

// The orchestrator's run-ahead limit (session 48, issue 13): on threads, at its periodic ring
// sync (every 64 submits), once OrchestratorHost::run_ahead_limit kernel tasks it submitted have
// not finished while tasks do finish, it waits until half of the limit is left, so the records a
// worker reads were written a few hundred tasks before, not a whole task window. Every kernel
// spins 20 us, so tasks finish steadily and the orchestrator, far faster, keeps meeting the
// limit: the tasks submitted and not yet run never pass the limit by more than a sync's 64
// submits (a sync's more for each wait that gave up or sync that did not wait, when a loaded
// host stopped both workers for 100 us), far below the 3,000 submitted. The sim keeps the chip's
// orchestrator, bound by its rings only: no limit and no such wait, every task submitted and run.
std::atomic<bool> released{false};
std::atomic<int> ran{0};
using OrchestratorCoreWaits = detail::OrchestratorCore::RunAheadWaits;
void hold_until_released(const KernelArgs& a) {
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!released.load() && Clock::now() < deadline)
    std::this_thread::yield();
  a.tensor(0).data_as<std::int32_t>()[0] += 1;
  ran.fetch_add(1);
}
void spin_then_count(const KernelArgs& a) {
  const auto until = Clock::now() + std::chrono::microseconds(20);
  while (Clock::now() < until) {
  }
  a.tensor(0).data_as<std::int32_t>()[0] += 1;
  ran.fetch_add(1);
}
void just_count(const KernelArgs& a) {
  a.tensor(0).data_as<std::int32_t>()[0] += 1;
  ran.fetch_add(1);
}

// Submits `tasks` tasks of `kernel`, each on a cell of its own (no edges), and reports the run's
// limit, its waits, and the most tasks submitted and not yet run after any submit.
struct RunAheadRun {
  std::uint64_t limit = 0;
  std::uint64_t short_task_ns = 0;
  OrchestratorCoreWaits waits;
  int most_unrun = 0;
};
RunAheadRun run_independent(PlatformKind platform, KernelFn fn, int tasks, bool in_loop = false) {
  RuntimeConfig c;
  c.platform = platform;
  c.clusters = 1;
  c.scheduler_threads = 1;
  Runtime runtime(c);
  const KernelId kernel = runtime.kernels().add("k", CoreType::aiv, fn);
  std::vector<std::int32_t> cells(static_cast<std::size_t>(tasks), 0);
  RunArgs args;
  args.inout(cells.data(), {static_cast<std::uint32_t>(tasks)}, DType::i32);
  ran.store(0);
  RunAheadRun out;
  const RunResult r = runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        out.limit = detail::OrchestratorCore::of(o).run_ahead_limit();
        const Tensor& all = a.tensor(0);
        auto submit = [&](Orchestrator& o, std::int64_t i) {
          o.submit_aiv(kernel, Args().inout(all.view({1}, {static_cast<std::uint32_t>(i)})));
          out.most_unrun = std::max(out.most_unrun, static_cast<int>(i) + 1 - ran.load());
        };
        if (in_loop) {
          o.parallel_for(tasks, submit);  // the loop's own submit paths and periodic sync
        } else {
          for (int i = 0; i < tasks; ++i)
            submit(o, i);
        }
        out.waits = detail::OrchestratorCore::of(o).run_ahead_waits();
      },
      args);
  EXPECT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(ran.load(), tasks);
  for (int i = 0; i < tasks; ++i)
    EXPECT_EQ(cells[static_cast<std::size_t>(i)], 1) << "task " << i;
  return out;
}

// Short tasks: on threads the tasks submitted and not yet run never pass the limit by more than
// a sync's 64 submits (plus 64 for each sync past it that did not wait, and each wait that gave
// up: tasks that looked long on a loaded host), and it got past the limit; on the sim there is
// no limit.
void expect_within_run_ahead(PlatformKind platform, bool in_loop) {
  constexpr int kTasks = 20000;
  const RunAheadRun run = run_independent(platform, &just_count, kTasks, in_loop);
  const OrchestratorCoreWaits& waits = run.waits;
  if (platform == PlatformKind::threads) {
    ASSERT_GT(run.limit, 0u);
    ASSERT_LT(run.limit + 64, static_cast<std::uint64_t>(kTasks) / 2);
    EXPECT_GE(waits.count + waits.skipped, 1u) << "never got past the limit";
    // A task counts as finished a little after its kernel counted it (the FIN, the step): a
    // few more for that.
    EXPECT_LE(static_cast<std::uint64_t>(run.most_unrun),
              run.limit + 64 * (1 + waits.stalled + waits.skipped) + 8)
        << "ran past the limit (" << waits.count << " waits, " << waits.stalled << " gave up, "
        << waits.skipped << " syncs did not wait)";
  } else {
    EXPECT_EQ(run.limit, 0u);
    EXPECT_EQ(waits.count + waits.skipped, 0u);
  }
}
TEST_P(RunSide, OrchestratorStaysWithinThePlatformsRunAheadOnShortTasks) {
  expect_within_run_ahead(GetParam(), false);
}
// The same inside a parallel_for (its analysed submits and their periodic sync).
TEST_P(RunSide, ParallelForStaysWithinThePlatformsRunAheadOnShortTasks) {
  expect_within_run_ahead(GetParam(), true);
}

// Long tasks (20 us each, over the platform's short-task bound): the limit does not hold, the
// orchestrator runs ahead as far as the rings let it and never waits, so that the cores keep
// the whole window's ready tasks to choose from.
TEST_P(RunSide, RunAheadLimitHoldsOnlyWhileTasksAreShort) {
  constexpr int kTasks = 3000;
  const RunAheadRun run = run_independent(GetParam(), &spin_then_count, kTasks);
  EXPECT_EQ(run.waits.count, 0u);
  EXPECT_EQ(run.waits.sleeps, 0u);
  if (GetParam() == PlatformKind::threads) {
    ASSERT_GT(run.limit, 0u);
    EXPECT_GT(static_cast<std::uint64_t>(run.most_unrun), run.limit + 64 + 8);
    EXPECT_GE(run.waits.skipped, 1u);
  } else {
    EXPECT_EQ(run.limit, 0u);
    EXPECT_EQ(run.waits.skipped, 0u);
  }
}

// The rate the waits use: a sample ends after kSampleTasks finished or kSampleNs passed; one in
// which none finished makes the rate unknown (not short); the sleeps are sized from the rate.
TEST(RunAheadRate, SamplesTheFinishingRateAndSizesSleeps) {
  detail::RunAheadRate rate;
  rate.reset();
  EXPECT_EQ(rate.task_ns(), detail::RunAheadRate::kUnknown);
  EXPECT_FALSE(rate.short_tasks(1000));
  rate.see(100, 1'000'000);  // starts a sample
  rate.see(200, 1'020'000);  // 100 tasks, 20 us: not a whole sample yet
  EXPECT_EQ(rate.task_ns(), detail::RunAheadRate::kUnknown);
  rate.see(100 + 256, 1'000'000 + 76'800);  // 256 tasks in 76.8 us: 300 ns each
  EXPECT_EQ(rate.task_ns(), 300u);
  EXPECT_TRUE(rate.short_tasks(600));
  EXPECT_FALSE(rate.short_tasks(300));
  EXPECT_EQ(rate.sleep_ns(100), 30'000u);
  EXPECT_EQ(rate.sleep_ns(1), detail::RunAheadRate::kMinSleepNs);
  EXPECT_EQ(rate.sleep_ns(1'000'000), detail::RunAheadRate::kMaxSleepNs);
  // 50 tasks in 100 us: a whole sample by time, 2 us each (long).
  rate.see(356 + 50, 1'076'800 + 100'000);
  EXPECT_EQ(rate.task_ns(), 2000u);
  EXPECT_FALSE(rate.short_tasks(600));
  // None finished for 100 us: unknown again.
  rate.see(406, 1'176'800 + 100'000);
  EXPECT_EQ(rate.task_ns(), detail::RunAheadRate::kUnknown);
  EXPECT_FALSE(rate.short_tasks(600));
  EXPECT_EQ(rate.sleep_ns(100), detail::RunAheadRate::kMinSleepNs);
}

// The limit is soft: kernels that wait for something the orchestration does after its submits
// (here a flag it sets once all are submitted, past the limit) still run as they did with the
// window alone: the orchestrator does not wait while no task finishes (and a wait gives up once
// none did for a 100 us sample), so the run ends at once, not when the kernels' own 5 s deadline
// passes.
TEST_P(RunSide, RunAheadGivesWayToKernelsWaitingForTheOrchestration) {
  RuntimeConfig c;
  c.platform = GetParam();
  c.clusters = 1;
  c.scheduler_threads = 1;
  Runtime runtime(c);
  const KernelId hold = runtime.kernels().add("hold", CoreType::aiv, &hold_until_released);
  constexpr int kTasks = 3000;
  const bool threads = GetParam() == PlatformKind::threads;
  std::vector<std::int32_t> cells(kTasks, 0);
  RunArgs args;
  args.inout(cells.data(), {static_cast<std::uint32_t>(kTasks)}, DType::i32);
  released.store(!threads);
  ran.store(0);
  std::uint64_t limit = 0;
  OrchestratorCoreWaits waits;
  const auto start = Clock::now();
  const RunResult r = runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        limit = detail::OrchestratorCore::of(o).run_ahead_limit();
        const Tensor& all = a.tensor(0);
        for (int i = 0; i < kTasks; ++i)
          o.submit_aiv(hold, Args().inout(all.view({1}, {static_cast<std::uint32_t>(i)})));
        waits = detail::OrchestratorCore::of(o).run_ahead_waits();
        released.store(true);
      },
      args);
  const auto took = Clock::now() - start;
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(ran.load(), kTasks);
  for (int i = 0; i < kTasks; ++i)
    ASSERT_EQ(cells[static_cast<std::size_t>(i)], 1) << "task " << i;
  EXPECT_LT(took, std::chrono::seconds(3)) << "the orchestrator waited for kernels waiting on it";
  if (threads) {
    ASSERT_GT(limit, 0u);
  } else {
    EXPECT_EQ(limit, 0u);
    EXPECT_EQ(waits.count, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Platforms, RunSide, testing::both_platforms(), testing::platform_name);

}  // namespace
}  // namespace tmr
