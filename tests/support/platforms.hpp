// The two platforms every behaviour is tested on, for INSTANTIATE_TEST_SUITE_P over PlatformKind.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "tmr/config.hpp"

namespace tmr::testing {

inline auto both_platforms() {
  return ::testing::Values(PlatformKind::threads, PlatformKind::sim);
}

// The test-name suffix: ".../threads" or ".../sim".
inline std::string platform_name(const ::testing::TestParamInfo<PlatformKind>& info) {
  return info.param == PlatformKind::sim ? "sim" : "threads";
}

}  // namespace tmr::testing
