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

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <thread>
#include <vector>

#include "support/cpu_mask.hpp"
#include "support/platforms.hpp"
#include "tmr/tmr.hpp"

namespace tmr {
namespace {

using Clock = std::chrono::steady_clock;

using testing::TwoCpus;

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
  config.ring = testing::few_tasks_ring();  // 3 tasks
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

// A stencil (rows of 4 cells, each reading the 1-3 cells around it in the row before) pinned to
// one and to two CPUs, so a task placed on an idle core often finds that core's thread without a
// CPU: the finishing core, idle after its FIN, takes such a task back and runs it itself
// (Scheduler::cores_take_back_unlatched), racing the other core's latch. Every task must run
// exactly once and every cell match the sequential reference, on both platforms.
std::vector<std::atomic<int>> stencil_runs(1);

void stencil_cell(const KernelArgs& args) {
  const Tensor in = args.tensor(0);
  const auto* cells = static_cast<const std::int32_t*>(in.data());
  std::int32_t sum = 1;
  for (std::uint32_t i = 0; i < in.shape()[0]; ++i)
    sum += cells[i];
  *static_cast<std::int32_t*>(args.tensor(1).data()) = sum % 1000;
  stencil_runs[static_cast<std::size_t>(args.scalar<std::int32_t>(0))].fetch_add(
      1, std::memory_order_relaxed);
}

TEST_P(HandoffCpus, StencilRunsEveryTaskOnceWhicheverCoreTakesIt) {
  constexpr std::uint32_t kWidth = 4;
  constexpr std::uint32_t kRows = 400;
  std::vector<std::int32_t> reference(kWidth * (kRows + 1));
  for (std::uint32_t i = 0; i < kWidth; ++i)
    reference[i] = static_cast<std::int32_t>(i + 1);
  for (std::uint32_t r = 1; r <= kRows; ++r) {
    for (std::uint32_t i = 0; i < kWidth; ++i) {
      const std::uint32_t lo = i == 0 ? 0 : i - 1;
      const std::uint32_t hi = std::min(kWidth - 1, i + 1);
      std::int32_t sum = 1;
      for (std::uint32_t k = lo; k <= hi; ++k)
        sum += reference[(r - 1) * kWidth + k];
      reference[r * kWidth + i] = sum % 1000;
    }
  }
  stencil_runs = std::vector<std::atomic<int>>(kWidth * kRows);
  std::uint64_t taken_back = 0;  // how often the race was there to lose (timing-dependent)
  for (const int cpus : {1, 2}) {
    const TwoCpus pin(cpus);
    if (!pin.ok()) GTEST_SKIP() << "needs 2 CPUs in the affinity mask";
    RuntimeConfig config;
    config.platform = GetParam();
    config.clusters = 1;
    config.scheduler_threads = 1;
    Runtime runtime(config);
    const KernelId k = runtime.kernels().add("cell", CoreType::aiv, &stencil_cell);
    for (int round = 0; round < 5; ++round) {
      for (std::atomic<int>& n : stencil_runs)
        n.store(0);
      std::vector<std::int32_t> cells(reference.size(), 0);
      std::copy_n(reference.begin(), kWidth, cells.begin());
      const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
        const Tensor all =
            Tensor::wrap(cells.data(), {static_cast<std::uint32_t>(cells.size())}, DType::i32);
        for (std::uint32_t row = 1; row <= kRows; ++row) {
          for (std::uint32_t i = 0; i < kWidth; ++i) {
            const std::uint32_t lo = i == 0 ? 0 : i - 1;
            const std::uint32_t hi = std::min(kWidth - 1, i + 1);
            o.submit_aiv(k, Args()
                                .in(all.view({hi - lo + 1}, {(row - 1) * kWidth + lo}))
                                .out_existing(all.view({1}, {row * kWidth + i}))
                                .scalar(static_cast<std::int32_t>((row - 1) * kWidth + i)));
          }
        }
      });
      ASSERT_TRUE(r.ok()) << r.status.to_string();
      if (GetParam() == PlatformKind::sim) {
        EXPECT_EQ(r.stats.unlatched_taken_back, 0u);
      }
      taken_back += r.stats.unlatched_taken_back;
      for (std::size_t t = 0; t < stencil_runs.size(); ++t)
        ASSERT_EQ(stencil_runs[t].load(), 1) << cpus << " CPUs, round " << round << ", task " << t;
      ASSERT_EQ(cells, reference) << cpus << " CPUs, round " << round;
    }
  }
  RecordProperty("unlatched_taken_back", static_cast<int>(taken_back));
  std::printf("tasks taken back from a core that had not latched them: %llu\n",
              static_cast<unsigned long long>(taken_back));
}

INSTANTIATE_TEST_SUITE_P(Platforms, HandoffCpus, testing::both_platforms(), testing::platform_name);

}  // namespace
}  // namespace tmr
