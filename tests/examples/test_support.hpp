// Helpers shared by the example tests.
#pragma once

#include <cstdlib>
#include <string>
#include <vector>

#include "common/problem.hpp"
#include "tmr/config.hpp"
#include "tmr/kernel.hpp"
#include "tmr/tensor.hpp"

namespace tmr::examples::testing {

// TMR_TEST_SCALE (default 1): sanitizer presets set it below 1 to shrink the work.
inline double test_scale() {
  const char* text = std::getenv("TMR_TEST_SCALE");
  if (text == nullptr || *text == '\0') return 1.0;
  const double scale = std::strtod(text, nullptr);
  return scale > 0 ? scale : 1.0;
}

// A small machine: enough clusters for parallelism, few threads for a 2-core CI host.
inline RuntimeConfig small_config(int clusters = 4, int scheduler_threads = 2) {
  RuntimeConfig config;
  config.clusters = clusters;
  config.scheduler_threads = scheduler_threads;
  return config;
}

// KernelArgs over `tensors` and `scalars` for a direct kernel call (no engine involved).
struct DirectCall {
  std::vector<Tensor> tensors;
  std::vector<std::uint64_t> scalars;
  KernelArgs args(std::uint32_t block = 0, std::uint32_t blocks = 1, std::uint32_t sub_block = 0,
                  std::uint32_t cluster = 0) const {
    return KernelArgs(tensors.data(), static_cast<int>(tensors.size()), scalars.data(),
                      static_cast<int>(scalars.size()), block, blocks, sub_block, cluster);
  }
  template <class T>
  DirectCall& scalar(T value) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof(T));
    scalars.push_back(bits);
    return *this;
  }
};

// The checks of a problem as one readable line per failing output ("" when all pass).
inline std::string failures(const std::vector<OutputCheck>& checks) {
  std::string text;
  for (const OutputCheck& c : checks) {
    if (c.passed()) continue;
    text += c.name + ": " + std::to_string(c.mismatched) + "/" + std::to_string(c.elements) +
            " mismatched, first at " + std::to_string(c.first_mismatch) + " got " +
            std::to_string(c.first_actual) + " expected " + std::to_string(c.first_expected) + "\n";
  }
  return text;
}

}  // namespace tmr::examples::testing
