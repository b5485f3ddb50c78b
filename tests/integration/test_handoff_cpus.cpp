// Hand-offs on a host with fewer CPUs than runtime threads (threads platform): a core that
// finishes a task keeps the ready work it does not take itself off an idle core while no CPU is
// free for that core (the orchestrator submits on one, the finishing core runs on the other);
// the finishing core takes it after its FIN, or a full step (the scheduler thread's re-check,
// the orchestrator's help) places it (Scheduler::limit_handoffs_to_cpus). These tests pin the run
// to 2 CPUs, where that applies, and check that the work kept off the idle core is never
// stranded: two consumers of one producer that can only finish together (each waits for the
// other to start) both run while the orchestrator stays on its CPU (it spins in user code and
// never waits in tmr). The sim, which models the chip and places every ready task by its
// scheduler's steps, has no such limit; the same graph's results are checked there too.
#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "tmr/tmr.hpp"

namespace tmr {
namespace {

using Clock = std::chrono::steady_clock;

// Pins the calling thread (and so the runtime's threads, created after) to the first two CPUs of
// its mask, and restores the mask when it goes out of scope.
class TwoCpus {
 public:
  TwoCpus() {
    CPU_ZERO(&saved_);
    if (sched_getaffinity(0, sizeof(saved_), &saved_) != 0 || CPU_COUNT(&saved_) < 2) return;
    cpu_set_t two;
    CPU_ZERO(&two);
    int taken = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && taken < 2; ++cpu) {
      if (CPU_ISSET(cpu, &saved_)) {
        CPU_SET(cpu, &two);
        ++taken;
      }
    }
    ok_ = sched_setaffinity(0, sizeof(two), &two) == 0;
  }
  ~TwoCpus() {
    if (ok_) sched_setaffinity(0, sizeof(saved_), &saved_);
  }
  TwoCpus(const TwoCpus&) = delete;
  TwoCpus& operator=(const TwoCpus&) = delete;
  bool ok() const { return ok_; }

 private:
  cpu_set_t saved_;
  bool ok_ = false;
};

std::atomic<bool> submitted{false};
std::atomic<int> started{0};
std::atomic<int> met{0};
std::atomic<int> finished{0};

bool wait_for(const std::function<bool()>& done, std::chrono::seconds limit) {
  const auto deadline = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

// The producer runs until every consumer is submitted, so they become ready at its completion
// (on its core's step), not at their submit.
void producer(const KernelArgs& args) {
  if (args.scalar<std::int32_t>(0) != 0) {  // on threads
    wait_for([] { return submitted.load(std::memory_order_acquire); }, std::chrono::seconds(10));
    // Long enough for the idle threads to leave their spin (the scheduler thread parks), so the
    // consumers are placed by this core's completion step, not by a scheduler thread that was
    // still looking. The outcome does not depend on it.
    const auto until = Clock::now() + std::chrono::milliseconds(5);
    while (Clock::now() < until)
      std::this_thread::yield();
  }
  *static_cast<std::int32_t*>(args.tensor(0).data()) = 7;
}

// Each consumer waits (on threads) until both started: it finishes only if the other one runs
// meanwhile on another core, whichever of them the finishing core took.
void consumer(const KernelArgs& args) {
  started.fetch_add(1, std::memory_order_acq_rel);
  const bool threads = args.scalar<std::int32_t>(0) != 0;
  if (!threads || wait_for([] { return started.load(std::memory_order_acquire) >= 2; },
                           std::chrono::seconds(10))) {
    met.fetch_add(1, std::memory_order_acq_rel);
  }
  *static_cast<std::int32_t*>(args.tensor(1).data()) =
      *static_cast<const std::int32_t*>(args.tensor(0).data()) + 1;
  finished.fetch_add(1, std::memory_order_acq_rel);
}

class HandoffCpus : public ::testing::TestWithParam<PlatformKind> {};

TEST_P(HandoffCpus, LeftoversKeptOffAnIdleCoreStillRunWhileTheOrchestratorHoldsItsCpu) {
  const TwoCpus pin;
  if (!pin.ok()) GTEST_SKIP() << "needs 2 CPUs in the affinity mask";
  const bool threads = GetParam() == PlatformKind::threads;
  RuntimeConfig config;
  config.platform = GetParam();
  config.clusters = 1;  // 3 core threads, 1 scheduler and the orchestrator on 2 CPUs
  config.scheduler_threads = 1;
  Runtime runtime(config);
  const KernelId p = runtime.kernels().add("producer", CoreType::aiv, &producer);
  const KernelId c = runtime.kernels().add("consumer", CoreType::aiv, &consumer);
  for (int round = 0; round < 10; ++round) {
    submitted.store(false);
    started.store(0);
    met.store(0);
    finished.store(0);
    std::vector<std::int32_t> results(2, 0);
    const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const TaskOutputs made =
          o.submit_aiv(p, Args().out(TensorSpec({1}, DType::i32)).scalar(std::int32_t{threads}));
      const Tensor value = made[0];
      std::vector<Tensor> outs;
      for (int i = 0; i < 2; ++i) {
        outs.push_back(Tensor::wrap(&results[static_cast<std::size_t>(i)], {1}, DType::i32));
        o.submit_aiv(c, Args().in(value).out_existing(outs.back()).scalar(std::int32_t{threads}));
      }
      submitted.store(true, std::memory_order_release);
      // On its CPU, outside tmr, until both consumers are done (the sim runs them after the
      // orchestration returns).
      if (threads) {
        EXPECT_TRUE(wait_for([] { return finished.load(std::memory_order_acquire) == 2; },
                             std::chrono::seconds(20)));
      }
    });
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(met.load(), 2) << "round " << round << ": a consumer ran alone until it gave up";
    EXPECT_EQ(results, (std::vector<std::int32_t>{8, 8}));
  }
}

INSTANTIATE_TEST_SUITE_P(Platforms, HandoffCpus,
                         ::testing::Values(PlatformKind::threads, PlatformKind::sim),
                         [](const ::testing::TestParamInfo<PlatformKind>& info) {
                           return std::string(info.param == PlatformKind::sim ? "sim" : "threads");
                         });

}  // namespace
}  // namespace tmr
