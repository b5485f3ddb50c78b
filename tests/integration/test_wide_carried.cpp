// (session 29, wide33) A wide replayed position with more carried edges than its wide list holds
// (TaskPlan::kWideCarried, LoopDriver::route_wide's guard): the position is not listed and its
// submits take direct_producers, with every carried producer. Each iteration i, a writer (a fresh
// output makes it wide, not fast) overwrites row i of w, which three readers of iteration i - 1
// read (row i + 1 of theirs): three carried write-after-read edges from three producer positions,
// none implied by another. The readers are held (kept live), so the edges must be named. The
// guard is reached in the second run, from the kept template (in the first the writer's position
// is not yet direct: route_wide returns before it). On both platforms, traced and not; every
// value checked.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <thread>
#include <vector>

#include "support/loop_tests.hpp"
#include "support/platforms.hpp"
#include "tmr/tmr.hpp"

namespace tmr::testing {
namespace {

// Every tensor after the first = the first + 1 (1-D).
void copy_plus_one(const KernelArgs& a) {
  const Tensor& in = a.tensor(0);
  for (int t = 1; t < a.tensor_count(); ++t) {
    const Tensor& out = a.tensor(t);
    for (std::uint32_t k = 0; k < in.dim(0); ++k)
      out.data_as<float>()[k * out.stride(0)] = in.data_as<float>()[k * in.stride(0)] + 1.0f;
  }
}

// out = in + 1, held until `held_open` (or 5 s: a test never hangs) so the readers stay live.
// Block 0 alone writes (the blocks would race on the output).
std::atomic<bool> held_open{true};
void held_copy_plus_one(const KernelArgs& a) {
  wait_until_open(held_open);
  if (a.block_index() == 0) copy_plus_one(a);
}

struct Param {
  PlatformKind platform;
  bool record;
};

class WideCarriedEdges : public ::testing::TestWithParam<Param> {};

TEST_P(WideCarriedEdges, MoreCarriedEdgesThanTheWideListHoldsAreAllNamed) {
  constexpr std::uint32_t kRows = 16;
  constexpr std::uint32_t kCols = 4;
  constexpr std::uint32_t kReaders = 3;  // > TaskPlan::kWideCarried
  constexpr std::uint64_t kPerIteration = 1 + kReaders;
  constexpr std::uint32_t kReaderBlocks = 256;  // keeps the simulator's readers live longer
  RuntimeConfig config = loop_config(GetParam().platform);
  config.record_events = GetParam().record;
  Runtime runtime(config);
  const KernelId write = runtime.kernels().add("copy_plus_one", CoreType::aiv, &copy_plus_one);
  const KernelId read =
      runtime.kernels().add("held_copy_plus_one", CoreType::aiv, &held_copy_plus_one);
  std::vector<float> x(kRows * kCols), w((kRows + 1) * kCols);
  std::vector<std::vector<float>> y(kReaders, std::vector<float>(kRows * kCols));
  for (std::size_t k = 0; k < x.size(); ++k)
    x[k] = static_cast<float>(k % 7 + 1);
  RunArgs args;
  args.input(x.data(), {kRows * kCols}, DType::f32);
  args.output(w.data(), {(kRows + 1) * kCols}, DType::f32);
  for (std::vector<float>& out : y)
    args.output(out.data(), {kRows * kCols}, DType::f32);
  for (int run = 0; run < 2; ++run) {  // the second run reuses the kept template and plans
    std::fill(w.begin(), w.end(), 0.0f);
    for (std::vector<float>& out : y)
      std::fill(out.begin(), out.end(), -1.0f);
    // On threads the readers are held until everything is submitted; the simulator's event loop
    // may wait for a held kernel, so there they are held 50 ms and kept live by their blocks.
    held_open = false;
    std::thread opener;
    if (GetParam().platform == PlatformKind::sim) {
      opener = std::thread([] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        held_open = true;
      });
    }
    const RunResult r = runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          const auto row = [](const Tensor& t, std::uint32_t k) {
            return t.view({kCols}, {k * kCols});
          };
          o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
            const auto r = static_cast<std::uint32_t>(i);
            // w[i] = t = x[i] + 1 (t: a fresh output, so the position is wide)
            o.submit_aiv(write, Args()
                                    .in(row(a.tensor(0), r))
                                    .out_existing(row(a.tensor(1), r))
                                    .out(TensorSpec({kCols}, DType::f32)));
            for (int k = 0; k < static_cast<int>(kReaders); ++k) {  // y_k[i] = w[i + 1] + 1
              o.submit_aiv(read, Args()
                                     .in(row(a.tensor(1), r + 1))
                                     .out_existing(row(a.tensor(2 + k), r))
                                     .blocks(kReaderBlocks));
            }
          });
          held_open = true;
        },
        args);
    if (opener.joinable()) opener.join();
    held_open = true;
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(r.stats.loop_fallbacks, 0u) << "run " << run;
    // The first run learns the template; the second replays the writer's position wide in every
    // iteration (the readers are fast).
    if (run == 1) {
      EXPECT_GE(r.stats.loop_tasks_replayed_wide, kRows - 4);
    }
    // Each reader read row i + 1 before iteration i + 1's writer overwrote it (still 0).
    for (std::uint32_t k = 0; k < kRows * kCols; ++k) {
      ASSERT_EQ(w[k], x[k] + 1.0f) << "run " << run << " element " << k;
      for (std::uint32_t q = 0; q < kReaders; ++q)
        ASSERT_EQ(y[q][k], 1.0f) << "run " << run << " reader " << q << " element " << k;
    }
    ASSERT_EQ(w[kRows * kCols], 0.0f);
    if (!GetParam().record) continue;
    // The oracle: writer i conflicts with the readers of iteration i - 1 only (row i), reader i
    // with writer i + 1 only. A producer that had not completed when its consumer was submitted
    // was live then and must be named; one that had may be named or not.
    std::vector<const TaskEvent*> by_sequence(kPerIteration * kRows, nullptr);
    for (const TaskEvent& e : r.trace->tasks) {
      ASSERT_LT(e.sequence, by_sequence.size());
      by_sequence[e.sequence] = &e;
    }
    std::size_t named = 0;
    for (const TaskEvent* e : by_sequence) {
      ASSERT_NE(e, nullptr);
      const std::uint64_t position = e->sequence % kPerIteration;
      const std::uint64_t first = e->sequence - position;
      std::vector<std::uint64_t> conflicting;
      if (position == 0 && first != 0) {
        for (std::uint64_t q = 1; q <= kReaders; ++q)
          conflicting.push_back(first - kPerIteration + q);
      }
      for (const std::uint64_t p : conflicting) {
        const bool live = by_sequence[p]->complete_ns > e->submit_ns;
        const bool listed =
            std::find(e->producers.begin(), e->producers.end(), p) != e->producers.end();
        if (live) {
          EXPECT_TRUE(listed) << "run " << run << ": task " << e->sequence << " misses " << p;
        }
        named += listed ? 1 : 0;
      }
      for (const std::uint64_t p : e->producers) {
        EXPECT_TRUE(std::find(conflicting.begin(), conflicting.end(), p) != conflicting.end())
            << "run " << run << ": task " << e->sequence << " names " << p;
      }
    }
    // The held readers keep the writers' edges live: most of them are named.
    EXPECT_GE(named, static_cast<std::size_t>(kReaders) * (kRows - 4)) << "run " << run;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Platforms, WideCarriedEdges,
    ::testing::Values(Param{PlatformKind::threads, false}, Param{PlatformKind::threads, true},
                      Param{PlatformKind::sim, false}, Param{PlatformKind::sim, true}),
    [](const ::testing::TestParamInfo<Param>& info) {
      return platform_suffix(info.param.platform) + (info.param.record ? "_traced" : "_untraced");
    });

}  // namespace
}  // namespace tmr::testing
