// The two platforms every behaviour is tested on, for INSTANTIATE_TEST_SUITE_P over PlatformKind.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "support/task_window.hpp"
#include "tmr/config.hpp"

namespace tmr::testing {

inline auto both_platforms() {
  return ::testing::Values(PlatformKind::threads, PlatformKind::sim);
}

// The test-name part for a platform: "threads" or "sim".
inline std::string platform_suffix(PlatformKind platform) {
  return platform == PlatformKind::sim ? "sim" : "threads";
}

// The test-name suffix of a suite over PlatformKind: ".../threads" or ".../sim".
inline std::string platform_name(const ::testing::TestParamInfo<PlatformKind>& info) {
  return platform_suffix(info.param);
}

// A platform and whether parallel_for analyses the loop: suites run all four ways.
struct PlatformAndAnalysis {
  PlatformKind platform;
  bool analysed;
};

inline auto both_platforms_both_analyses() {
  return ::testing::Values(PlatformAndAnalysis{PlatformKind::threads, false},
                           PlatformAndAnalysis{PlatformKind::threads, true},
                           PlatformAndAnalysis{PlatformKind::sim, false},
                           PlatformAndAnalysis{PlatformKind::sim, true});
}

// The test-name suffix of such a suite: ".../threads_plain", ".../sim_analysed", ...
inline std::string platform_and_analysis_name(
    const ::testing::TestParamInfo<PlatformAndAnalysis>& info) {
  return platform_suffix(info.param.platform) + (info.param.analysed ? "_analysed" : "_plain");
}

// Two clusters, one scheduler thread, a 30 s stall timeout, a 1,024-task window (few_tasks_ring)
// on the given platform.
inline RuntimeConfig two_cluster_config(PlatformKind platform) {
  RuntimeConfig config;
  config.ring = few_tasks_ring();
  config.platform = platform;
  config.clusters = 2;
  config.scheduler_threads = 1;
  config.stall_timeout_s = 30;
  return config;
}

// The same, with the parameter's platform and analysis.
inline RuntimeConfig two_cluster_config(const PlatformAndAnalysis& param) {
  RuntimeConfig config = two_cluster_config(param.platform);
  config.parallel_for_analysis = param.analysed;
  return config;
}

}  // namespace tmr::testing
