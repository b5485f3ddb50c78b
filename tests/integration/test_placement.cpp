// Thread placement (RuntimeConfig::placement) on the threads platform: `split` keeps the first
// CPU of the process's mask for the orchestrator while it submits and the rest for the core
// threads, and gives the caller its own mask back after the run; `nice` runs the core threads at
// a lower priority than the orchestrator; `adaptive` is `split` while the core threads' kernels
// are short and `none` while they are long. Each applies only with at least 2 CPUs and more
// runtime threads than CPUs; the sim, which has no host threads of its own to place, ignores them.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <thread>
#include <vector>

#include "core/thread_sanitizer.hpp"
#include "support/cpu_mask.hpp"
#include "support/platforms.hpp"
#include "tmr/tmr.hpp"

namespace tmr {
namespace {

using Clock = std::chrono::steady_clock;

using testing::my_cpus;

int my_nice() {
  errno = 0;
  const int nice = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  return errno == 0 ? nice : -100;
}

// What the kernel saw on its core thread.
std::vector<int> kernel_cpus;
int kernel_nice = -100;
std::atomic<bool> kernel_done{false};
void look_around(const KernelArgs&) {
  kernel_cpus = my_cpus();
  kernel_nice = my_nice();
  kernel_done.store(true, std::memory_order_release);
}

// Kernels for adaptive placement's estimate: an empty one (short) and one of 20 us (long).
void empty_kernel(const KernelArgs&) {}
void long_kernel(const KernelArgs&) {
  const auto until = Clock::now() + std::chrono::microseconds(20);
  while (Clock::now() < until) {
  }
}

class Placement : public ::testing::TestWithParam<PlatformKind> {
 protected:
  // One cluster and one scheduler thread: 3 core threads, 1 scheduler, the orchestrator.
  static RuntimeConfig config(ThreadPlacement placement) {
    RuntimeConfig c;
    c.platform = GetParam();
    c.clusters = 1;
    c.scheduler_threads = 1;
    c.placement = placement;
    c.ring = testing::few_tasks_ring();  // a few tasks a run
    return c;
  }
  // Whether a placement mode takes effect here (HostPlacement's rule).
  static bool applies() {
    return GetParam() == PlatformKind::threads && my_cpus().size() >= 2 && 5 > my_cpus().size();
  }
  // Runs one kernel while the orchestrator spins (it does not park, so `split` keeps the core
  // threads off its CPU) and records what the orchestrator saw meanwhile.
  static void run_one(Runtime& runtime, std::vector<int>* orchestrator_cpus,
                      int* orchestrator_nice) {
    const KernelId k = runtime.kernels().size() == 0
                           ? runtime.kernels().add("look_around", CoreType::aiv, &look_around)
                           : runtime.kernels().id("look_around");
    kernel_done.store(false);
    kernel_cpus.clear();
    const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      *orchestrator_cpus = my_cpus();
      *orchestrator_nice = my_nice();
      o.submit_aiv(k, Args());
      const auto deadline = Clock::now() + std::chrono::seconds(10);
      while (GetParam() == PlatformKind::threads && !kernel_done.load(std::memory_order_acquire) &&
             Clock::now() < deadline) {
        std::this_thread::yield();
      }
    });
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    ASSERT_TRUE(kernel_done.load());
  }
};

TEST_P(Placement, SplitKeepsAcpuForTheOrchestratorAndGivesTheCallerItsMaskBack) {
  const std::vector<int> before = my_cpus();
  ASSERT_FALSE(before.empty());
  Runtime runtime(config(ThreadPlacement::split));
  for (int round = 0; round < 2; ++round) {  // a runtime places every run the same way
    std::vector<int> orchestrator;
    int nice = 0;
    run_one(runtime, &orchestrator, &nice);
    if (applies()) {
      EXPECT_EQ(orchestrator, std::vector<int>{before.front()});
      EXPECT_EQ(kernel_cpus, std::vector<int>(before.begin() + 1, before.end()));
    } else {
      EXPECT_EQ(orchestrator, before);
    }
    EXPECT_EQ(my_cpus(), before) << "the caller's mask is restored after the run";
  }
}

TEST_P(Placement, NiceRunsTheCoreThreadsBelowTheOrchestrator) {
  Runtime runtime(config(ThreadPlacement::nice));
  std::vector<int> orchestrator;
  int nice = 0;
  run_one(runtime, &orchestrator, &nice);
  EXPECT_EQ(orchestrator, my_cpus()) << "nice pins nothing";
  EXPECT_EQ(nice, my_nice()) << "the orchestrator's priority is the caller's";
  if (applies()) {
    EXPECT_EQ(kernel_nice, std::min(nice + 5, 19));
  } else if (GetParam() == PlatformKind::threads) {
    EXPECT_EQ(kernel_nice, nice);
  }
}

TEST_P(Placement, NoneLeavesEveryThreadAlone) {
  Runtime runtime(config(ThreadPlacement::none));
  std::vector<int> orchestrator;
  int nice = 0;
  run_one(runtime, &orchestrator, &nice);
  EXPECT_EQ(orchestrator, my_cpus());
  if (GetParam() == PlatformKind::threads) {
    EXPECT_EQ(kernel_cpus, my_cpus());
    EXPECT_EQ(kernel_nice, nice);
  }
}

// A kernel the orchestrator waits for (Orchestrator::wait_for): long enough that it parks.
void nap_kernel(const KernelArgs& a) {
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  *static_cast<std::int32_t*>(a.tensor(0).data()) = 1;
}

// One run: `count` independent AIV tasks of `k` (enough for every AIV core to time a few: one
// kernel in 64 is timed; a small task window makes the orchestrator wait for room meanwhile),
// then a nap the orchestrator waits for (it parks, and resumes), then look_around while it spins.
// Returns the CPUs the orchestrator may use after that resume; kernel_cpus is look_around's.
std::vector<int> run_and_look(Runtime& runtime, KernelId k, int count) {
  const KernelId nap = runtime.kernels().id("nap");
  const KernelId look = runtime.kernels().id("look_around");
  std::int32_t cell = 0;
  RunArgs args;
  args.inout(&cell, {1}, DType::i32);
  std::vector<int> after;
  kernel_done.store(false);
  kernel_cpus.clear();
  const RunResult r = runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        for (int i = 0; i < count; ++i)
          o.submit_aiv(k, Args());
        o.submit_aiv(nap, Args().out_existing(a.tensor(0), {1}, {0}));
        o.wait_for(a.tensor(0));
        after = testing::my_cpus();
        o.submit_aiv(look, Args());
        const auto deadline = Clock::now() + std::chrono::seconds(10);
        while (runtime.config().platform == PlatformKind::threads &&
               !kernel_done.load(std::memory_order_acquire) && Clock::now() < deadline) {
          std::this_thread::yield();
        }
      },
      args);
  EXPECT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(cell, 1);
  EXPECT_TRUE(kernel_done.load());
  return after;
}

TEST_P(Placement, AdaptiveSplitsAfterAWaitWhileTheKernelsAreShortAndNeverWhileLong) {
  // Two CPUs: more runtime threads than CPUs, so the cores time their kernels and the mode applies.
  const testing::TwoCpus pin;
  ASSERT_TRUE(pin.ok()) << "this host has fewer than 2 CPUs in the affinity mask";
  const std::vector<int> before = my_cpus();
  ASSERT_EQ(before.size(), 2u);
  RuntimeConfig c = config(ThreadPlacement::adaptive);
  c.ring.task_window = 64;
  Runtime runtime(c);
  const bool threads = GetParam() == PlatformKind::threads;
  const std::vector<int> orchestrator_cpu{before.front()};
  const std::vector<int> worker_cpu{before.back()};
  // Nothing timed yet (a core's estimate starts long): a run that never waits is `none`.
  std::vector<int> orchestrator;
  int nice = 0;
  run_one(runtime, &orchestrator, &nice);
  EXPECT_EQ(orchestrator, before);
  if (threads) {
    EXPECT_EQ(kernel_cpus, before);
  }
  const KernelId empty = runtime.kernels().add("empty", CoreType::aiv, &empty_kernel);
  const KernelId slow = runtime.kernels().add("long", CoreType::aiv, &long_kernel);
  runtime.kernels().add("nap", CoreType::aiv, &nap_kernel);
  // A sanitizer build's empty kernels may take longer than the short bound: only the release
  // build's are sure to be short.
  const bool shorts = threads && !detail::kThreadSanitizer;
  // Empty kernels: once the orchestrator has waited, it resumes split.
  std::vector<int> after = run_and_look(runtime, empty, 4000);
  if (shorts) {
    EXPECT_EQ(after, orchestrator_cpu) << "short kernels: split after a wait";
    EXPECT_EQ(kernel_cpus, worker_cpu);
  } else if (!threads) {
    EXPECT_EQ(after, before) << "the sim places nothing";
  }
  EXPECT_EQ(my_cpus(), before) << "the caller's mask is restored after the run";
  // The next run starts as `none` (a run that never waits is the orchestrator's alone).
  run_one(runtime, &orchestrator, &nice);
  EXPECT_EQ(orchestrator, before) << "a run starts unpinned";
  if (threads) {
    EXPECT_EQ(kernel_cpus, before);
  }
  EXPECT_EQ(nice, my_nice());
  // Long kernels: once the cores have timed them, a resume gives the orchestrator its mask back.
  after = run_and_look(runtime, slow, 2000);
  EXPECT_EQ(after, before) << "long kernels: nothing pinned after a wait";
  if (threads) {
    EXPECT_EQ(kernel_cpus, before);
  }
  EXPECT_EQ(my_cpus(), before);
  if (shorts) {
    after = run_and_look(runtime, empty, 4000);
    EXPECT_EQ(after, orchestrator_cpu) << "short kernels again";
    EXPECT_EQ(kernel_cpus, worker_cpu);
    EXPECT_EQ(my_cpus(), before);
  }
}

INSTANTIATE_TEST_SUITE_P(Platforms, Placement, testing::both_platforms(), testing::platform_name);

}  // namespace
}  // namespace tmr
