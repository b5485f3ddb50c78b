// Transitive closure of a recorded task graph whose edges only point backwards (task j lists
// producers i < j), for oracle tests that check every conflicting pair is ordered, directly or
// through other tasks. Callers assert the backwards shape first.
#pragma once

#include <cstddef>
#include <vector>

namespace tmr::testing {

// reach[j][i]: task j is ordered after task i. `edges[j]` is any range of producer indices.
template <typename EdgeLists>
std::vector<std::vector<bool>> backward_reachability(const EdgeLists& edges) {
  const std::size_t tasks = edges.size();
  std::vector<std::vector<bool>> reach(tasks, std::vector<bool>(tasks, false));
  for (std::size_t j = 0; j < tasks; ++j) {
    for (const auto i : edges[j]) {
      reach[j][i] = true;
      for (std::size_t k = 0; k < j; ++k) {
        if (reach[i][k]) reach[j][k] = true;
      }
    }
  }
  return reach;
}

}  // namespace tmr::testing
