// An orchestration and its kernels loaded from a shared library run end to end.
#include <gtest/gtest.h>

#include <vector>

#include "support/task_window.hpp"
#include "tmr/tmr.hpp"

namespace tmr {
namespace {

TEST(PluginRun, OrchestrationFromSharedLibraryComputesTheResult) {
  RuntimeConfig config;
  config.clusters = 2;
  config.scheduler_threads = 1;
  config.ring = testing::few_tasks_ring();  // 32 tasks
  Runtime runtime(config);
  const Plugin plugin = Plugin::load(TMR_SCALE_PLUGIN);
  plugin.register_kernels(runtime.kernels());
  std::vector<float> x(1024), y(1024, 0.0f);
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>(i);
  RunArgs args;
  args.input(x.data(), {1024}, DType::f32);
  args.output(y.data(), {1024}, DType::f32);
  args.scalar(2.5f);
  const RunResult r = runtime.run(plugin.orchestration(), args);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.stats.tasks_submitted, 32u);
  for (std::size_t i = 0; i < x.size(); ++i)
    ASSERT_EQ(y[i], 2.5f * static_cast<float>(i)) << i;
}

// A kernel registered as a capturing lambda sees the task's argument tags, on both platforms.
TEST(KernelCallables, LambdaKernelSeesTagsInARun) {
  for (const PlatformKind platform : {PlatformKind::threads, PlatformKind::sim}) {
    RuntimeConfig config;
    config.platform = platform;
    config.clusters = 1;
    config.scheduler_threads = 1;
    config.ring = testing::few_tasks_ring();  // one task
    Runtime runtime(config);
    std::vector<std::vector<ArgTag>> seen_by_block(2);
    const KernelId id =
        runtime.kernels().add("record_tags", CoreType::aiv, [&seen_by_block](const KernelArgs& a) {
          std::vector<ArgTag>& seen = seen_by_block.at(a.block_index());
          for (int i = 0; i < a.tensor_count(); ++i)
            seen.push_back(a.tag(i));
        });
    std::vector<float> x(4, 1.0f), y(4, 0.0f);
    RunArgs args;
    args.input(x.data(), {4}, DType::f32);
    args.inout(y.data(), {4}, DType::f32);
    const RunResult r = runtime.run(
        [id](Orchestrator& o, const OrchestrationArgs& in) {
          TMR_SCOPE(o);
          o.submit_aiv(id, Args()
                               .in(in.tensor(0))
                               .inout(in.tensor(1))
                               .out(TensorSpec(Shape{2}, DType::f32))
                               .no_dep(in.tensor(0))
                               .blocks(2));
        },
        args);
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    const std::vector<ArgTag> expected{ArgTag::in, ArgTag::inout, ArgTag::out, ArgTag::no_dep};
    EXPECT_EQ(seen_by_block[0], expected);
    EXPECT_EQ(seen_by_block[1], expected);
  }
}

}  // namespace
}  // namespace tmr
