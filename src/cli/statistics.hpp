// Summaries of per-round timings.
#pragma once

#include <cstddef>
#include <vector>

namespace tmr::cli {

double mean(const std::vector<double>& values);

// Mean after dropping the fastest and slowest 10% of the values (at least one at each end once
// there are 3 or more), so one slow warm-up round does not skew the figure.
double trimmed_mean(std::vector<double> values);
// How many values trimmed_mean keeps out of `count`.
std::size_t trimmed_count(std::size_t count);

}  // namespace tmr::cli
