// (session 27, wide31) A wide replayed position's kept plan and output layout
// (OrchestratorCore::submit_new_kernels → submit_wide, LoopDriver::replay_wide): from its first
// wide submit of a run a position keeps its checked plan and its fresh outputs' layout, and every
// later wide submit there reuses both. They hold only while the submit matches the template: an
// iteration in the middle of the loop whose fresh output has another shape must not be placed
// by the kept layout (it needs twice the bytes). On both platforms, traced and not, with both
// replay compares; two runs (the second from the kept template); every value checked.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/orchestrator_core.hpp"
#include "support/loop_tests.hpp"
#include "support/platforms.hpp"
#include "tmr/tmr.hpp"

namespace tmr::testing {
namespace {

// out[k] = a[k % n] + b[k % n] for every k of `out` (n: the inputs' length), so an output twice
// as long as its inputs is written whole.
void add_wrapped(const KernelArgs& a) {
  const Tensor& x = a.tensor(0);
  const Tensor& y = a.tensor(1);
  const Tensor& out = a.tensor(2);
  const std::uint32_t n = x.dim(0);
  for (std::uint32_t k = 0; k < out.dim(0); ++k) {
    out.data_as<float>()[k * out.stride(0)] =
        x.data_as<float>()[(k % n) * x.stride(0)] + y.data_as<float>()[(k % n) * y.stride(0)];
  }
}

// out[k] = the sum of in[k + j * n] over every whole j (n: the output's length).
void fold(const KernelArgs& a) {
  const Tensor& in = a.tensor(0);
  const Tensor& out = a.tensor(1);
  const std::uint32_t n = out.dim(0);
  for (std::uint32_t k = 0; k < n; ++k) {
    float sum = 0.0f;
    for (std::uint32_t j = 0; (j + 1) * n <= in.dim(0); ++j)
      sum += in.data_as<float>()[(k + j * n) * in.stride(0)];
    out.data_as<float>()[k * out.stride(0)] = sum;
  }
}

struct Param {
  PlatformKind platform;
  bool record;
  bool wide;  // detail::set_wide_replay_compare: the 32-byte compare, or the 16-byte one
};

class WideKeptPosition : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override { detail::set_wide_replay_compare(GetParam().wide); }
  void TearDown() override { detail::set_wide_replay_compare(true); }
};

// Three positions an iteration (t = x + 1, u = t + t wrapped, y = fold(u)), each with kernels
// other than the submit before it, so the second submit of every position on comes through its
// kept plan. Iteration kOdd gives u twice the elements: its fresh output no longer matches the
// position's template, so the kept layout (64 bytes) must not place it (128 bytes); its row of y
// is then 2 x 2(x + 1) instead of 2(x + 1). A heap of 1,024 bytes (16 outputs) wraps and waits
// many times over the 160 iterations, and the iterations after kOdd go on with the template.
// `window`: the ring's task window (0: the default, not loop_config's: a heap wait resumes after
// an eighth of the window completes, all 480 tasks at the default); 16 holds five iterations'
// tasks, so the submits wait for room as well as for heap.
void run_mid_loop_shape_change(const Param& param, std::uint32_t window) {
  constexpr std::uint32_t kRows = 160;
  constexpr std::uint32_t kCols = 16;  // 64 bytes an output
  constexpr std::uint32_t kOdd = 97;
  RuntimeConfig config = loop_config(param.platform);
  config.record_events = param.record;
  config.ring.heap_bytes = 1024;
  config.ring.task_window = window != 0 ? window : RingConfig{}.task_window;
  Runtime runtime(config);
  const KernelId inc = runtime.kernels().add("add_one", CoreType::aiv, &add_one);
  const KernelId add = runtime.kernels().add("add_wrapped", CoreType::aiv, &add_wrapped);
  const KernelId sum = runtime.kernels().add("fold", CoreType::aiv, &fold);
  std::vector<float> x(kRows * kCols), y(kRows * kCols);
  for (std::size_t k = 0; k < x.size(); ++k)
    x[k] = static_cast<float>(k % 13 + 1);
  RunArgs args;
  args.input(x.data(), {kRows * kCols}, DType::f32);
  args.output(y.data(), {kRows * kCols}, DType::f32);
  for (int run = 0; run < 2; ++run) {
    std::fill(y.begin(), y.end(), 0.0f);
    const RunResult r = runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          LoopOptions options;
          options.scope_per_iteration = true;
          o.parallel_for(
              kRows,
              [&](Orchestrator& o, std::int64_t i) {
                const auto row = static_cast<std::uint32_t>(i);
                const std::uint32_t wide = row == kOdd ? 2 * kCols : kCols;
                const TaskOutputs t =
                    o.submit_aiv(inc, Args()
                                          .in(a.tensor(0).view({kCols}, {row * kCols}))
                                          .out(TensorSpec({kCols}, DType::f32)));
                if (!t.valid()) return;
                const TaskOutputs u =
                    o.submit_aiv(add, Args().in(t[0]).in(t[0]).out(TensorSpec({wide}, DType::f32)));
                if (!u.valid()) return;
                o.submit_aiv(
                    sum, Args().in(u[0]).out_existing(a.tensor(1).view({kCols}, {row * kCols})));
              },
              options);
        },
        args);
    ASSERT_TRUE(r.ok()) << r.status.to_string() << " (window " << window << ")";
    // The analysed iterations before kOdd go wide; kOdd's output misses the template: the loop
    // falls back once, and its later iterations are submitted one by one.
    EXPECT_EQ(r.stats.loop_fallbacks, 1u) << "run " << run;
    // (A submit that finds the window full takes the generic wait, not the wide path: with a
    // tiny window some of each iteration's, as many as the workers' timing makes.)
    EXPECT_GE(r.stats.loop_tasks_replayed_wide, window == 0 ? 3u * (kOdd - 3) : kOdd)
        << "run " << run;
    EXPECT_LT(r.stats.loop_tasks_replayed_wide, 3u * kOdd) << "run " << run;
    for (std::uint32_t row = 0; row < kRows; ++row) {
      for (std::uint32_t c = 0; c < kCols; ++c) {
        const std::size_t k = static_cast<std::size_t>(row) * kCols + c;
        const float expect = (row == kOdd ? 4.0f : 2.0f) * (x[k] + 1.0f);
        ASSERT_EQ(y[k], expect) << "run " << run << " row " << row << " column " << c << " window "
                                << window;
      }
    }
  }
}

TEST_P(WideKeptPosition, AnOutputOfAnotherShapeInMidLoopIsNotPlacedByTheKeptLayout) {
  run_mid_loop_shape_change(GetParam(), 0);
}

TEST_P(WideKeptPosition, AnOutputOfAnotherShapeInMidLoopWithATinyTaskWindow) {
  run_mid_loop_shape_change(GetParam(), 16);
}

INSTANTIATE_TEST_SUITE_P(Platforms, WideKeptPosition,
                         ::testing::Values(Param{PlatformKind::threads, false, true},
                                           Param{PlatformKind::threads, true, true},
                                           Param{PlatformKind::sim, false, true},
                                           Param{PlatformKind::sim, true, true},
                                           Param{PlatformKind::threads, false, false},
                                           Param{PlatformKind::sim, false, false}),
                         [](const auto& info) {
                           return platform_suffix(info.param.platform) +
                                  (info.param.record ? "_traced" : "") +
                                  (info.param.wide ? "" : "_narrow");
                         });

}  // namespace
}  // namespace tmr::testing
