// (session 37, unit43) A scoped parallel_for's iteration scope (OrchestratorCore::IterationScope):
// its ring and the loop's are found once for the loop, and an iteration whose body leaves the
// scopes balanced opens and closes its scope without scope_begin/scope_end. Each task goes to
// the ring of its scope's depth (min(depth, 3)), in nested scoped loops too, and after the loop
// the loop's own scope's ring is back; a body that leaves a scope open sends the later iterations
// one level deeper (scope_begin/scope_end take them, as without the shortcut). On both
// platforms, analysed (the wide path makes the outputs) and not; every value checked.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "support/platforms.hpp"
#include "tmr/tmr.hpp"

namespace tmr::testing {
namespace {

// out[0] = in[0] + 1.
void add_one(const KernelArgs& a) {
  a.tensor(1).data_as<float>()[0] = a.tensor(0).data_as<float>()[0] + 1.0f;
}
// dst[0] = src[0].
void copy_one(const KernelArgs& a) {
  a.tensor(1).data_as<float>()[0] = a.tensor(0).data_as<float>()[0];
}

using Param = PlatformAndAnalysis;

class IterationScope : public ::testing::TestWithParam<Param> {
 protected:
  static RuntimeConfig config() { return two_cluster_config(GetParam()); }
};

// Iteration i: t = in[i] + 1 (a fresh output in the iteration's scope), out[i] = t. The ring of
// each t's task is kept per iteration.
struct Steps {
  KernelId add;
  KernelId copy;
  Tensor in;
  Tensor out;
  std::uint32_t make(Orchestrator& o, std::uint32_t i) const {
    const TaskOutputs t =
        o.submit_aiv(add, Args().in(in.view({1}, {i})).out(TensorSpec({1}, DType::f32)));
    if (!t.valid()) return 99;
    o.submit_aiv(copy, Args().in(t[0]).out_existing(out.view({1}, {i})));
    return t.task().ring();
  }
};

// Each test's cells: in[k] = k, out[k] = -1 until its copy writes it, rings[k] = 99 until its t's
// ring is noted; the two kernels registered on `runtime`.
struct Cells {
  Cells(Runtime& runtime, std::uint32_t n)
      : add(runtime.kernels().add("add_one", CoreType::aiv, &add_one)),
        copy(runtime.kernels().add("copy_one", CoreType::aiv, &copy_one)),
        in(n),
        out(n, -1.0f),
        rings(n, 99) {
    for (std::uint32_t k = 0; k < n; ++k)
      in[k] = static_cast<float>(k);
  }
  Steps steps() {
    const auto n = static_cast<std::uint32_t>(in.size());
    return Steps{add, copy, Tensor::wrap(in.data(), {n}, DType::f32),
                 Tensor::wrap(out.data(), {n}, DType::f32)};
  }
  KernelId add;
  KernelId copy;
  std::vector<float> in;
  std::vector<float> out;
  std::vector<std::uint32_t> rings;
};

// Balanced bodies: an outer scoped loop's tasks on ring 1, a nested scoped loop's on ring 2, and
// the tasks after each loop back on their scope's ring (1 after the inner loop, 0 after the
// outer one).
TEST_P(IterationScope, TasksGoToTheirScopesRingInNestedLoops) {
  constexpr std::uint32_t kOuter = 6;
  constexpr std::uint32_t kInner = 10;
  constexpr std::uint32_t kCells = kOuter * (kInner + 2) + 1;
  Runtime runtime(config());
  Cells cells(runtime, kCells);
  std::vector<float>& out = cells.out;
  std::vector<std::uint32_t>& rings = cells.rings;
  const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Steps steps = cells.steps();
    o.parallel_for(
        kOuter,
        [&](Orchestrator& o, std::int64_t i) {
          const auto row = static_cast<std::uint32_t>(i) * (kInner + 2);
          rings[row] = steps.make(o, row);  // the outer iteration's scope: depth 1
          o.parallel_for(
              kInner,
              [&](Orchestrator& o, std::int64_t j) {
                const std::uint32_t cell = row + 1 + static_cast<std::uint32_t>(j);
                rings[cell] = steps.make(o, cell);  // depth 2
              },
              LoopOptions{.scope_per_iteration = true});
          rings[row + kInner + 1] = steps.make(o, row + kInner + 1);  // depth 1 again
        },
        LoopOptions{.scope_per_iteration = true});
    rings[kCells - 1] = steps.make(o, kCells - 1);  // the run's outermost scope: depth 0
  });
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  for (std::uint32_t k = 0; k < kCells; ++k) {
    ASSERT_EQ(out[k], static_cast<float>(k) + 1.0f) << k;
    const std::uint32_t inner = k % (kInner + 2);
    const std::uint32_t depth = k == kCells - 1 ? 0 : (inner == 0 || inner == kInner + 1 ? 1 : 2);
    EXPECT_EQ(rings[k], depth) << k;
  }
  if (GetParam().analysed) {
    EXPECT_GT(r.stats.loop_tasks_replayed_wide, 0u) << "the makers took the wide path";
  }
}

// Iteration 3's body opens a scope and leaves it open: from there on every iteration's scope is
// one level deeper (its tasks on ring 2), the tasks after the loop are on ring 1 until the body's
// scope is closed, then on ring 0.
TEST_P(IterationScope, ABodyThatLeavesAScopeOpenMovesTheLaterIterationsDown) {
  constexpr std::uint32_t kIterations = 8;
  constexpr std::uint32_t kOpened = 3;
  constexpr std::uint32_t kCells = kIterations + 2;
  Runtime runtime(config());
  Cells cells(runtime, kCells);
  std::vector<float>& out = cells.out;
  std::vector<std::uint32_t>& rings = cells.rings;
  const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Steps steps = cells.steps();
    o.parallel_for(
        kIterations,
        [&](Orchestrator& o, std::int64_t i) {
          const auto cell = static_cast<std::uint32_t>(i);
          if (cell == kOpened) o.scope_begin();
          rings[cell] = steps.make(o, cell);
        },
        LoopOptions{.scope_per_iteration = true});
    rings[kIterations] = steps.make(o, kIterations);  // iteration 3's scope still open
    o.scope_end();
    rings[kIterations + 1] = steps.make(o, kIterations + 1);
  });
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  for (std::uint32_t k = 0; k < kCells; ++k) {
    ASSERT_EQ(out[k], static_cast<float>(k) + 1.0f) << k;
    const std::uint32_t depth =
        k < kOpened ? 1 : (k < kIterations ? 2 : (k == kIterations ? 1 : 0));
    EXPECT_EQ(rings[k], depth) << k;
  }
}

// (session 42, kept42) The fast close gives the inner ring's scope books back in one step (to
// what the open noted) when they grew by exactly the scope's tasks. A 1,024-byte heap (16
// outputs of 64 bytes) and 300 iterations of three makers each, one of them in a scope the body
// opens and closes: books that drifted by one output an iteration would run out of heap (or
// wrap below zero) within a few iterations. At depth 1 (the iteration's scope on ring 2 apart
// from the loop's) and at depth 4 (the loop's scope and the iteration's share ring 3; a task
// held there through the loop would keep the ring's heap from being reclaimed past it, so the
// run's own task is on ring 0). Every value and ring checked.
TEST_P(IterationScope, EachIterationGivesItsScopeBooksBackInOneStep) {
  constexpr std::uint32_t kIterations = 300;
  constexpr std::uint32_t kPerIteration = 3;
  constexpr std::uint32_t kCells = kIterations * kPerIteration + 1;
  for (const int extra : {0, 3}) {
    RuntimeConfig c = config();
    c.ring.heap_bytes = 1024;
    Runtime runtime(c);
    Cells cells(runtime, kCells);
    std::vector<float>& out = cells.out;
    std::vector<std::uint32_t>& rings = cells.rings;
    const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Steps steps = cells.steps();
      rings[kCells - 1] = steps.make(o, kCells - 1);  // the run's scope (ring 0)
      for (int d = 0; d < extra; ++d)
        o.scope_begin();
      o.parallel_for(
          kIterations,
          [&](Orchestrator& o, std::int64_t i) {
            const auto cell = static_cast<std::uint32_t>(i) * kPerIteration;
            rings[cell] = steps.make(o, cell);
            o.scope_begin();
            rings[cell + 1] = steps.make(o, cell + 1);
            o.scope_end();
            rings[cell + 2] = steps.make(o, cell + 2);
          },
          LoopOptions{.scope_per_iteration = true});
      for (int d = 0; d < extra; ++d)
        o.scope_end();
    });
    ASSERT_TRUE(r.ok()) << "depth " << extra + 1 << ": " << r.status.to_string();
    const auto ring_at = [](int depth) { return static_cast<std::uint32_t>(std::min(depth, 3)); };
    for (std::uint32_t k = 0; k + 1 < kCells; ++k) {
      ASSERT_EQ(out[k], static_cast<float>(k) + 1.0f) << "depth " << extra + 1 << ", " << k;
      const int depth = extra + 1 + (k % kPerIteration == 1 ? 1 : 0);
      EXPECT_EQ(rings[k], ring_at(depth)) << "depth " << extra + 1 << ", " << k;
    }
    EXPECT_EQ(out[kCells - 1], static_cast<float>(kCells));
    EXPECT_EQ(rings[kCells - 1], 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Platforms, IterationScope, both_platforms_both_analyses(),
                         platform_and_analysis_name);

}  // namespace
}  // namespace tmr::testing
