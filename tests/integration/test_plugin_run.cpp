// An orchestration and its kernels loaded from a shared library run end to end.
#include <gtest/gtest.h>

#include <vector>

#include "tmr/tmr.hpp"

namespace tmr {
namespace {

TEST(PluginRun, OrchestrationFromSharedLibraryComputesTheResult) {
  RuntimeConfig config;
  config.clusters = 2;
  config.scheduler_threads = 1;
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

}  // namespace
}  // namespace tmr
