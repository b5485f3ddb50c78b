// A scheduler thread counted awake but waiting for the orchestrator's CPU does not hold back
// ready work (threads platform, Linux). The orchestrator leaves new work to an awake scheduler
// thread; one that last stepped on the orchestrator's own CPU cannot step while the orchestrator
// runs there, so the orchestrator places the work itself (docs/performance.md, "Session 36,
// branch metg41": the peers' stencil started no task for 1.5-8 ms while the orchestrator
// submitted). Here the scheduler thread shares the orchestrator's CPU at the lowest priority
// (SCHED_IDLE), is let run once, and yields back; the core threads have a CPU of their own.
#include <gtest/gtest.h>

#ifdef __linux__
#include <dirent.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/cpu_mask.hpp"
#include "support/platforms.hpp"
#include "support/task_window.hpp"
#include "tmr/tmr.hpp"

namespace tmr {
namespace {

using Clock = std::chrono::steady_clock;

using testing::my_cpus;

// Thread ids of this process whose name starts with `prefix` (tmr-core-N, tmr-sched-N).
std::vector<pid_t> threads_named(const std::string& prefix) {
  std::vector<pid_t> tids;
  if (DIR* dir = opendir("/proc/self/task")) {
    while (const dirent* entry = readdir(dir)) {
      if (entry->d_name[0] == '.') continue;
      std::ifstream comm(std::string("/proc/self/task/") + entry->d_name + "/comm");
      std::string name;
      std::getline(comm, name);
      if (name.rfind(prefix, 0) == 0) tids.push_back(static_cast<pid_t>(std::stoi(entry->d_name)));
    }
    closedir(dir);
  }
  return tids;
}

bool pin(pid_t tid, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(tid, sizeof(set), &set) == 0;
}

// Times thread `tid` got a CPU so far (schedstat's third field).
unsigned long long timeslices(pid_t tid) {
  std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/schedstat");
  unsigned long long on_cpu = 0, waiting = 0, slices = 0;
  stat >> on_cpu >> waiting >> slices;
  return slices;
}

std::atomic<int> ran{0};
void count_run(const KernelArgs&) {
  ran.fetch_add(1, std::memory_order_acq_rel);
}

TEST(SchedulerOffCpu, TheOrchestratorPlacesReadyWorkWhileTheAwakeSchedulerThreadWaitsForItsCpu) {
  const std::vector<int> cpus = my_cpus();
  if (cpus.size() < 2) GTEST_SKIP() << "needs 2 CPUs in the process's mask";
  const int shared = cpus[0];  // the orchestrator's and the scheduler thread's
  const int own = cpus[1];     // the core threads'
  RuntimeConfig config;
  config.platform = PlatformKind::threads;
  config.clusters = 1;
  config.scheduler_threads = 1;
  config.placement = ThreadPlacement::none;
  config.record_events = true;  // when each task was submitted and dispatched
  // Straight to the yield phase: the scheduler thread's one pass is a step and a yield, which
  // hands the shared CPU back to the orchestrator (outside the step's gate).
  config.spin_before_park = 1;
  config.ring = testing::few_tasks_ring();  // 6 tasks a run
  Runtime runtime(config);
  const KernelId k = runtime.kernels().add("count_run", CoreType::aiv, &count_run);
  const std::vector<pid_t> scheduler = threads_named("tmr-sched-");
  ASSERT_EQ(scheduler.size(), 1u);
  ASSERT_TRUE(pin(scheduler[0], shared));
  sched_param idle{};
  if (sched_setscheduler(scheduler[0], SCHED_IDLE, &idle) != 0)
    GTEST_SKIP() << "SCHED_IDLE not allowed here";
  for (const pid_t core : threads_named("tmr-core-"))
    ASSERT_TRUE(pin(core, own));
  struct CallerMask {  // the caller's mask back, also when an assertion ends the test
    cpu_set_t set;
    ~CallerMask() { sched_setaffinity(0, sizeof(set), &set); }
  } caller;
  ASSERT_EQ(sched_getaffinity(0, sizeof(caller.set), &caller.set), 0);
  ASSERT_TRUE(pin(0, shared));
  constexpr int kTasks = 6;
  constexpr int kRounds = 6;      // rounds checked, when no round is dropped
  constexpr int kMaxRounds = 18;  // rounds run at most, to check kRounds
  int awake_rounds = 0;           // rounds whose scheduler thread ran on the shared CPU first
  int checked_rounds = 0;         // of those, the rounds no placement found the gate held
  std::string waits;              // per round: ms from the last submit until every task ran
  std::string held;               // per dropped round: its placements that found the gate held
  // Dropped rounds are made up for (a loaded TSan host dropped 25 of 120: below).
  int round = 0;
  for (; round < kMaxRounds && checked_rounds < kRounds; ++round) {
    ran.store(0);
    std::vector<std::int32_t> cells(kTasks, 0);
    int ran_in_time = 0;
    bool awake = false;
    const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      // begin_run woke the scheduler thread onto this CPU, where it waits behind this thread:
      // give it the CPU until it ran once (counted awake, its CPU noted), then take it back. On
      // a loaded host other processes may take every yield for a while: up to 2 s of them.
      const unsigned long long before = timeslices(scheduler[0]);
      const auto give_until = Clock::now() + std::chrono::seconds(2);
      while (timeslices(scheduler[0]) == before && Clock::now() < give_until)
        sched_yield();
      awake = timeslices(scheduler[0]) != before;
      const Tensor all = Tensor::wrap(cells.data(), {kTasks}, DType::i32);
      for (std::uint32_t i = 0; i < kTasks; ++i)
        o.submit_aiv(k, Args().out_existing(all.view({1}, {i})));
      // Busy outside tmr, never giving up this CPU: only the orchestrator's own placement at
      // the submits above, or the idle-priority scheduler thread's rare turns, start the tasks.
      const auto submitted = Clock::now();
      const auto deadline = submitted + std::chrono::seconds(10);
      while (ran.load(std::memory_order_acquire) < kTasks && Clock::now() < deadline) {
      }
      ran_in_time = ran.load(std::memory_order_acquire);
      waits +=
          " " + std::to_string(
                    std::chrono::duration<double, std::milli>(Clock::now() - submitted).count());
    });
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(ran_in_time, kTasks) << "round " << round;
    if (!awake) continue;  // the premise did not hold: the scheduler thread never got the CPU
    ++awake_rounds;
    // The one case outside the premise that the test cannot see from /proc: the scheduler thread
    // preempted inside its step on the shared CPU holds its gate, and only the holder steps its
    // cores, so the orchestrator's placement leaves a request and starts nothing (that thread
    // serves it at its next turn). RunStats counts such placements: exactly those rounds are
    // dropped (25 of 120 TSan rounds and 6 of 180 ASan rounds at load 8-15, none of 180 in
    // release: docs/performance.md, "Session 45, branch gate45").
    if (r.stats.orchestrator_placements_gate_held != 0) {
      held += " round " + std::to_string(round) + ": " +
              std::to_string(r.stats.orchestrator_placements_gate_held) + " of " +
              std::to_string(r.stats.orchestrator_placements_gate_held +
                             r.stats.orchestrator_placement_steps) +
              ";";
      continue;
    }
    ++checked_rounds;
    // The scheduler thread was awake on the orchestrator's CPU when the tasks became ready: the
    // orchestrator placed them (without the CPU check it left them to that thread, and none of
    // the rounds is placed).
    EXPECT_GT(r.stats.orchestrator_placement_steps, 0u) << "round " << round;
    // And the work started while the orchestrator kept its CPU: placed by the orchestrator at its
    // submits, the first task was dispatched before the last one was submitted; left to the
    // scheduler thread, only at that thread's next turn (a tick, 3.3-3.9 ms here, or 420-530 ms:
    // the kernel's share for SCHED_IDLE), after the submits. From the events, not from how soon
    // the tasks ran: that also waits for the core threads' CPU, which a loaded host (and TSan)
    // stretched to a 52-75 ms median where a quiet one takes 4-150 us (docs/performance.md,
    // "Session 43, branch rel43").
    ASSERT_TRUE(r.trace != nullptr);
    ASSERT_EQ(r.trace->tasks.size(), static_cast<std::size_t>(kTasks));
    ASSERT_EQ(r.trace->subtasks.size(), static_cast<std::size_t>(kTasks));
    std::uint64_t first_dispatch = ~std::uint64_t{0};
    for (const SubtaskEvent& e : r.trace->subtasks)
      first_dispatch = std::min(first_dispatch, e.dispatch_ns);
    EXPECT_LT(first_dispatch, r.trace->tasks.back().submit_ns) << "round " << round;
  }
  // How many rounds ran, were awake and were checked (in the XML report: --gtest_output=xml).
  RecordProperty("rounds", round);
  RecordProperty("awake_rounds", awake_rounds);
  RecordProperty("checked_rounds", checked_rounds);
  EXPECT_GE(checked_rounds, kRounds / 2)
      << "of " << round << " rounds, " << awake_rounds
      << " had the scheduler thread awake on the shared CPU; rounds with a placement that found "
         "the gate held:"
      << held << " ms from the last submit until every task ran, per round:" << waits;
}

// A placement that finds the gate held is counted (threads), and the sim, whose steps take no
// gate (its scheduler steps run one at a time on the simulation's thread), counts none. The
// holders here are the core threads: after its FIN a core steps its scheduler thread under the
// gate (the early hand-off: it retires the task and, finding no work, counts itself idle). The
// orchestrator submits each task as soon as the last one's kernel returned, so its placement
// (another core is idle) often meets that step. The scheduler thread shares the orchestrator's
// CPU, so it is never awake elsewhere and every such submit places its task. The overlap is a
// matter of timing, so runs repeat until a placement found the gate held.
std::atomic<int> emptied{0};
void count_empty(const KernelArgs&) {
  emptied.fetch_add(1, std::memory_order_acq_rel);
}

class OrchestratorPlacement : public ::testing::TestWithParam<PlatformKind> {};

TEST_P(OrchestratorPlacement, PlacementsThatFindTheGateHeldAreCountedWhereThereIsAGate) {
  RuntimeConfig config;
  config.platform = GetParam();
  config.clusters = 2;
  config.scheduler_threads = 1;
  config.spin_before_park = 1;
  config.stall_timeout_s = 30;
  config.ring = testing::few_tasks_ring();
  Runtime runtime(config);
  const KernelId k = runtime.kernels().add("count_empty", CoreType::aiv, &count_empty);
  struct CallerMask {  // the caller's mask back, also when an assertion ends the test
    cpu_set_t set;
    ~CallerMask() { sched_setaffinity(0, sizeof(set), &set); }
  } caller;
  ASSERT_EQ(sched_getaffinity(0, sizeof(caller.set), &caller.set), 0);
  if (config.platform == PlatformKind::threads) {
    const std::vector<pid_t> scheduler = threads_named("tmr-sched-");
    ASSERT_EQ(scheduler.size(), 1u);
    const int shared = my_cpus().front();
    ASSERT_TRUE(pin(scheduler[0], shared));
    ASSERT_TRUE(pin(0, shared));
  }
  constexpr int kTasks = 200;  // independent, within the few-tasks window
  std::vector<std::int32_t> cells(kTasks, 0);
  std::uint64_t gate_held = 0, placed = 0;
  int runs = 0;
  const auto give_up = Clock::now() + std::chrono::seconds(60);
  // The sim answers the same in every run: three are enough.
  while (config.platform == PlatformKind::sim ? runs < 3
                                              : gate_held == 0 && Clock::now() < give_up) {
    emptied.store(0);
    bool in_time = true;
    const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Tensor all = Tensor::wrap(cells.data(), {kTasks}, DType::i32);
      for (std::uint32_t i = 0; i < kTasks && in_time; ++i) {
        o.submit_aiv(k, Args().out_existing(all.view({1}, {i})));
        // Until its kernel returned: its core then takes the step after the FIN (threads). The
        // sim runs kernels when its orchestration waits or ends: it is not waited for there.
        if (config.platform == PlatformKind::sim) continue;
        const auto deadline = Clock::now() + std::chrono::seconds(10);
        while (emptied.load(std::memory_order_acquire) <= static_cast<int>(i) &&
               (in_time = Clock::now() < deadline)) {
        }
      }
    });
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    ASSERT_TRUE(in_time) << "a task did not run within 10 s";
    ASSERT_EQ(emptied.load(), kTasks);
    ASSERT_EQ(r.stats.subtasks_executed, static_cast<std::uint64_t>(kTasks));
    // Threads: each submit makes one task ready (Scheduler::push_ready_global) while three AIV
    // cores are idle and the one scheduler thread is not awake elsewhere, so each tries one
    // placement: it either stepped or found the gate held (with 20-55 of 200 held at load 8).
    if (config.platform == PlatformKind::threads) {
      ASSERT_EQ(r.stats.orchestrator_placement_steps + r.stats.orchestrator_placements_gate_held,
                static_cast<std::uint64_t>(kTasks));
    }
    gate_held += r.stats.orchestrator_placements_gate_held;
    placed += r.stats.orchestrator_placement_steps;
    ++runs;
  }
  if (config.platform == PlatformKind::sim) {
    EXPECT_EQ(gate_held, 0u);
    EXPECT_EQ(placed, 0u);  // the sim's orchestrator takes no scheduler step either
  } else {
    EXPECT_GT(gate_held, 0u) << "no placement found the gate held in " << runs << " runs";
    EXPECT_GT(placed, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Platforms, OrchestratorPlacement, testing::both_platforms(),
                         testing::platform_name);

}  // namespace
}  // namespace tmr
#endif  // __linux__
