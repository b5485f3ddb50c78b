// Reproducible input data: the same seed gives the same values on every platform and compiler.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "tmr/dtype.hpp"

namespace tmr::examples {

class SeededRandom {
 public:
  explicit SeededRandom(std::uint64_t seed) : engine_(seed) {}

  // Uniform in [low, high). Built from raw engine bits (std::mt19937_64 is fully specified),
  // not from std::uniform_real_distribution, whose output differs between standard libraries.
  double uniform(double low, double high) {
    const double unit = static_cast<double>(engine_() >> 11) * 0x1.0p-53;
    return low + (high - low) * unit;
  }
  // Uniform integer in [0, bound), bound > 0 (the tiny modulo bias does not matter here).
  std::uint64_t below(std::uint64_t bound) { return engine_() % bound; }

  std::vector<float> floats(std::size_t count, double low, double high) {
    std::vector<float> values(count);
    for (float& v : values)
      v = static_cast<float>(uniform(low, high));
    return values;
  }
  std::vector<bf16> bf16s(std::size_t count, double low, double high) {
    std::vector<bf16> values(count);
    for (bf16& v : values)
      v = bf16(static_cast<float>(uniform(low, high)));
    return values;
  }

 private:
  std::mt19937_64 engine_;
};

}  // namespace tmr::examples
