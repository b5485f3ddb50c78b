// (session 39, wide39) The wide replayed submit's state left for the steps that read it:
// replay_wide no longer writes quiet_mask_, tracked_mask_, fresh_mask_ and made_ (wide_state()
// does, for the general steps after a replay that passed), and OrchestratorCore::submit_wide
// admits a task that creates buffers retained (its hold then skips retain_creator; the general
// branch undoes it until enter_scope). Loops whose consumers name buffers two earlier positions
// of the same iteration made (one with two outputs), taking the general branch after the replay:
// every submit when events are recorded, some when the dependency pool is tiny, and iterations
// whose body ends a scope the consumer's creator was in (the error, named as without the loop's
// analysis). On both platforms, analysed and not; every value checked.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "support/platforms.hpp"
#include "tmr/tmr.hpp"

namespace tmr::testing {
namespace {

// out[0] = in[0] + 1.
void add_one(const KernelArgs& a) {
  a.tensor(1).data_as<float>()[0] = a.tensor(0).data_as<float>()[0] + 1.0f;
}
// m[0] = 2 t[0], l[0] = t[0] + 3.
void split_two(const KernelArgs& a) {
  const float t = a.tensor(0).data_as<float>()[0];
  a.tensor(1).data_as<float>()[0] = 2.0f * t;
  a.tensor(2).data_as<float>()[0] = t + 3.0f;
}
// dst[0] = t[0] + m[0] * l[0].
void combine_three(const KernelArgs& a) {
  const float t = a.tensor(0).data_as<float>()[0];
  const float m = a.tensor(1).data_as<float>()[0];
  const float l = a.tensor(2).data_as<float>()[0];
  a.tensor(3).data_as<float>()[0] = t + m * l;
}

float expected(float x) {
  const float t = x + 1.0f;
  return t + (2.0f * t) * (t + 3.0f);
}

using Param = PlatformAndAnalysis;

class WideState : public ::testing::TestWithParam<Param> {
 protected:
  static RuntimeConfig config() { return two_cluster_config(GetParam()); }
};

struct Kernels {
  KernelId add;
  KernelId split;
  KernelId combine;
  explicit Kernels(Runtime& runtime)
      : add(runtime.kernels().add("add_one", CoreType::aiv, &add_one)),
        split(runtime.kernels().add("split", CoreType::aiv, &split_two)),
        combine(runtime.kernels().add("combine", CoreType::aiv, &combine_three)) {}
};

// One iteration: t = in[i] + 1, (m, l) = split(t), out[i] = combine(t, m, l). `close_early`:
// t is made in a scope the body ends before the consumers name it (an error).
void iteration(Orchestrator& o, const Kernels& k, const Tensor& in, const Tensor& out,
               std::uint32_t i, bool close_early) {
  const TensorSpec one({1}, DType::f32);
  if (close_early) o.scope_begin();
  const TaskOutputs t = o.submit_aiv(k.add, Args().in(in.view({1}, {i})).out(one));
  if (close_early) o.scope_end();
  if (!t.valid()) return;
  const TaskOutputs ml = o.submit_aiv(k.split, Args().in(t[0]).out(one).out(one));
  if (!ml.valid()) return;
  o.submit_aiv(k.combine, Args().in(t[0]).in(ml[0]).in(ml[1]).out_existing(out.view({1}, {i})));
}

// A loop of `iteration` over in[0, n) into out, each iteration its own scope; iteration
// `close_at` (if in range) ends t's scope early.
RunResult run_iterations(Runtime& runtime, const Kernels& k, std::vector<float>& in,
                         std::vector<float>& out, std::uint32_t close_at = ~0u) {
  const auto n = static_cast<std::uint32_t>(in.size());
  return runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor a = Tensor::wrap(in.data(), {n}, DType::f32);
    const Tensor b = Tensor::wrap(out.data(), {n}, DType::f32);
    o.parallel_for(
        n,
        [&](Orchestrator& o, std::int64_t i) {
          const auto cell = static_cast<std::uint32_t>(i);
          iteration(o, k, a, b, cell, cell == close_at);
        },
        LoopOptions{.scope_per_iteration = true});
  });
}

// Events recorded: every wide submit takes submit_wide's general branch (record_event). Each
// consumer lists its iteration's creators among its producers (retained while the iteration's
// scope is open, so live), which needs the state wide_state() sets.
TEST_P(WideState, RecordedRunsListEachIterationsCreators) {
  constexpr std::uint32_t kIterations = 40;
  RuntimeConfig c = config();
  c.record_events = true;
  Runtime runtime(c);
  const Kernels k(runtime);
  std::vector<float> in(kIterations);
  for (std::uint32_t i = 0; i < kIterations; ++i)
    in[i] = static_cast<float>(i) * 0.5f;
  std::vector<float> out(kIterations, -1.0f);
  const RunResult r = run_iterations(runtime, k, in, out);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  for (std::uint32_t i = 0; i < kIterations; ++i)
    ASSERT_EQ(out[i], expected(in[i])) << i;
  ASSERT_NE(r.trace, nullptr);
  ASSERT_EQ(r.trace->tasks.size(), 3u * kIterations);
  const auto lists = [&](std::uint64_t task, std::uint64_t producer) {
    const std::vector<std::uint64_t>& p = r.trace->tasks[task].producers;
    return std::find(p.begin(), p.end(), producer) != p.end();
  };
  for (std::uint64_t i = 0; i < kIterations; ++i) {
    EXPECT_TRUE(lists(3 * i + 1, 3 * i)) << "split of iteration " << i;
    EXPECT_TRUE(lists(3 * i + 2, 3 * i)) << "combine of iteration " << i;
    EXPECT_TRUE(lists(3 * i + 2, 3 * i + 1)) << "combine of iteration " << i;
  }
  if (GetParam().analysed) {
    EXPECT_GT(r.stats.loop_tasks_replayed_wide, 0u) << "the replay passed before the branch";
  }
}

// The smallest dependency pool: some wide submits find no room for their edges (dep_fits) and
// take the general branch, the rest the usual one; a rerun on the same runtime too.
TEST_P(WideState, ATinyDependencyPoolMixesBothBranches) {
  constexpr std::uint32_t kIterations = 300;
  RuntimeConfig c = config();
  c.ring.dep_pool = 16;
  // The default window: 900 tasks a run would nearly fill few_tasks_ring's, and a full pool's
  // wait resumes after an eighth of the window completes (every task, at the default).
  c.ring.task_window = RingConfig{}.task_window;
  Runtime runtime(c);
  const Kernels k(runtime);
  std::vector<float> in(kIterations);
  for (std::uint32_t i = 0; i < kIterations; ++i)
    in[i] = static_cast<float>(i % 17) - 4.0f;
  for (int run = 0; run < 2; ++run) {
    std::vector<float> out(kIterations, -1.0f);
    const RunResult r = run_iterations(runtime, k, in, out);
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    for (std::uint32_t i = 0; i < kIterations; ++i)
      ASSERT_EQ(out[i], expected(in[i])) << "run " << run << " iteration " << i;
  }
}

// Iteration kClosed makes t in a scope its body ends before the consumers name t: the run fails
// with the error it has without the loop's analysis (the consumer names a buffer whose creator's
// scope ended).
TEST_P(WideState, ACreatorWhoseScopeEndedIsNamedAsWithoutAnalysis) {
  constexpr std::uint32_t kIterations = 24;
  constexpr std::uint32_t kClosed = 13;
  Runtime runtime(config());
  const Kernels k(runtime);
  std::vector<float> in(kIterations);
  for (std::uint32_t i = 0; i < kIterations; ++i)
    in[i] = static_cast<float>(i) + 0.25f;
  std::vector<float> out(kIterations, -1.0f);
  const RunResult r = run_iterations(runtime, k, in, out, kClosed);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status.code, ErrorCode::invalid_args) << r.status.to_string();
  EXPECT_NE(r.status.to_string().find("tensor argument 0 was created by task"), std::string::npos)
      << r.status.to_string();
  EXPECT_NE(r.status.to_string().find("whose scope has ended"), std::string::npos)
      << r.status.to_string();
}

INSTANTIATE_TEST_SUITE_P(Platforms, WideState, both_platforms_both_analyses(),
                         platform_and_analysis_name);

}  // namespace
}  // namespace tmr::testing
