#include "cli/statistics.hpp"

#include <algorithm>
#include <numeric>

namespace tmr::cli {

namespace {

std::size_t trimmed_per_end(std::size_t count) {
  if (count < 3) return 0;
  return std::max<std::size_t>(1, count / 10);
}

}  // namespace

double mean(const std::vector<double>& values) {
  if (values.empty()) return 0;
  return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

std::size_t trimmed_count(std::size_t count) {
  return count - 2 * trimmed_per_end(count);
}

double trimmed_mean(std::vector<double> values) {
  const std::size_t drop = trimmed_per_end(values.size());
  std::sort(values.begin(), values.end());
  return mean(std::vector<double>(values.begin() + static_cast<std::ptrdiff_t>(drop),
                                  values.end() - static_cast<std::ptrdiff_t>(drop)));
}

}  // namespace tmr::cli
