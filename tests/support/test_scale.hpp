// Scales test workloads: TMR_TEST_SCALE (default 1) shrinks them under sanitizers.
#pragma once

#include <algorithm>
#include <cstdlib>

namespace tmr::testing {

inline double test_scale() {
  const char* value = std::getenv("TMR_TEST_SCALE");
  if (value == nullptr) return 1.0;
  const double scale = std::atof(value);
  return scale > 0 ? scale : 1.0;
}

inline int scaled(int count, int minimum = 1) {
  return std::max(minimum, static_cast<int>(count * test_scale()));
}

}  // namespace tmr::testing
