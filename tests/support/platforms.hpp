// The two platforms every behaviour is tested on, for INSTANTIATE_TEST_SUITE_P over PlatformKind.
#pragma once

#include <gtest/gtest.h>

#include <string>

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

}  // namespace tmr::testing
