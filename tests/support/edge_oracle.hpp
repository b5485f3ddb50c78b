// The edge check that the map and dependence oracle tests share: the recorded edges point
// backwards, every conflicting pair whose earlier task was still live when the later one was
// submitted is ordered (directly or through other tasks), and no edge joins two tasks that do not
// conflict or whose earlier task had already retired.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "support/reachability.hpp"

namespace tmr::testing {

// `edges[j]`: the set of producer indices reported for task j. `retired_at_submit[j]`: how many
// tasks had retired when task j was submitted. `boxes[j]`: task j's accesses; `conflict(x, y)`:
// whether two accesses touch overlapping regions with at least one write.
template <typename EdgeSets, typename Box, typename Conflict>
void expect_exact_live_edges(const EdgeSets& edges,
                             const std::vector<std::uint32_t>& retired_at_submit,
                             const std::vector<std::vector<Box>>& boxes, const Conflict& conflict,
                             int program) {
  auto conflicts = [&](int i, int j) {
    for (const Box& x : boxes[static_cast<std::size_t>(i)]) {
      for (const Box& y : boxes[static_cast<std::size_t>(j)]) {
        if (conflict(x, y)) return true;
      }
    }
    return false;
  };
  const int tasks = static_cast<int>(edges.size());
  for (int j = 0; j < tasks; ++j) {
    for (const std::uint32_t i : edges[static_cast<std::size_t>(j)])
      ASSERT_LT(static_cast<int>(i), j) << "program " << program << ": an edge to itself or later";
  }
  const std::vector<std::vector<bool>> reach = backward_reachability(edges);
  for (int j = 0; j < tasks; ++j) {
    for (int i = 0; i < j; ++i) {
      const bool c = conflicts(i, j);
      const bool live =
          static_cast<std::uint32_t>(i) >= retired_at_submit[static_cast<std::size_t>(j)];
      if (c && live) {
        EXPECT_TRUE(reach[j][i]) << "program " << program << ": task " << j
                                 << " is not ordered after conflicting task " << i;
      }
      if (edges[static_cast<std::size_t>(j)].count(static_cast<std::uint32_t>(i)) != 0) {
        EXPECT_TRUE(c && live) << "program " << program << ": spurious edge " << i << " -> " << j;
      }
    }
  }
}

}  // namespace tmr::testing
