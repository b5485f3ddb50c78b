// (session 37, wide44) A wide replayed task's record names its plan's kernel functions as the
// orchestrator keeps them (SubmitPlan::kept, OrchestratorCore::kept_fns) instead of copying them
// into its own, and a wide position prepares its plan, layout and header once
// (PreparedTask::wide_ready). Both ways into OrchestratorCore::submit_wide are taken: new kernels
// through the position's kept plan (submit_new_kernels), the previous submit's kernels through
// planned_ (dispatch). Each task must run its own position's kernels: on both platforms, traced
// and not, two runs (the second from the kept template); every value checked.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/loop_tests.hpp"
#include "support/platforms.hpp"
#include "tmr/tmr.hpp"

namespace tmr::testing {
namespace {

// out[k] = 2 in[k] over the views' first dimension (strided).
void twice(const KernelArgs& a) {
  const Tensor& in = a.tensor(0);
  const Tensor& out = a.tensor(1);
  for (std::uint32_t k = 0; k < in.dim(0); ++k)
    out.data_as<float>()[k * out.stride(0)] = 2.0f * in.data_as<float>()[k * in.stride(0)];
}

struct Param {
  PlatformKind platform;
  bool record;
};

class WideFunctions : public ::testing::TestWithParam<Param> {};

// Four positions an iteration: t = x + 1 (new kernels: the kept plan), u = t + 1 (the same
// kernels: planned_), v = 2u (new kernels), y = 2v (the same kernels, into the output). A task
// that ran another position's kernel functions leaves a wrong row: y = 4x + 8 only when each ran
// its own.
TEST_P(WideFunctions, EachWideTaskRunsItsOwnKernels) {
  constexpr std::uint32_t kRows = 96;
  constexpr std::uint32_t kCols = 8;
  RuntimeConfig config = loop_config(GetParam().platform);
  config.record_events = GetParam().record;
  Runtime runtime(config);
  const KernelId inc = runtime.kernels().add("add_one", CoreType::aiv, &add_one);
  const KernelId dbl = runtime.kernels().add("twice", CoreType::aiv, &twice);
  std::vector<float> x(kRows * kCols), y(kRows * kCols);
  for (std::size_t k = 0; k < x.size(); ++k)
    x[k] = static_cast<float>(k % 11);
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
                const TensorSpec spec({kCols}, DType::f32);
                const TaskOutputs t = o.submit_aiv(
                    inc, Args().in(a.tensor(0).view({kCols}, {row * kCols})).out(spec));
                if (!t.valid()) return;
                const TaskOutputs u = o.submit_aiv(inc, Args().in(t[0]).out(spec));
                if (!u.valid()) return;
                const TaskOutputs v = o.submit_aiv(dbl, Args().in(u[0]).out(spec));
                if (!v.valid()) return;
                o.submit_aiv(
                    dbl, Args().in(v[0]).out_existing(a.tensor(1).view({kCols}, {row * kCols})));
              },
              options);
        },
        args);
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(r.stats.loop_fallbacks, 0u) << "run " << run;
    // Most iterations' four tasks take the wide path (the learning ones do not).
    EXPECT_GE(r.stats.loop_tasks_replayed_wide, 4u * (kRows / 2)) << "run " << run;
    for (std::size_t k = 0; k < y.size(); ++k)
      ASSERT_EQ(y[k], 4.0f * x[k] + 8.0f) << "run " << run << " element " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Platforms, WideFunctions,
    ::testing::Values(Param{PlatformKind::threads, false}, Param{PlatformKind::threads, true},
                      Param{PlatformKind::sim, false}, Param{PlatformKind::sim, true}),
    [](const auto& info) {
      return platform_suffix(info.param.platform) + (info.param.record ? "_traced" : "");
    });

}  // namespace
}  // namespace tmr::testing
