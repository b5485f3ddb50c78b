// A self-contained SVG swimlane of one recorded run: one lane per core (grouped by cluster) plus
// the orchestrator's submits, against time, coloured by kernel.
#pragma once

#include <iosfwd>
#include <string>

#include "tmr/kernel.hpp"
#include "tmr/trace.hpp"

namespace tmr::profile {

struct SwimlaneOptions {
  std::string title = "tmr swimlane";
  int plot_width = 1400;  // pixels of the time axis
  int lane_height = 12;
  // Up to this many subtasks each rect carries a <title> tooltip; above it they are left out
  // to keep the file small.
  std::size_t max_tooltips = 5000;
};

// Subtasks at least one pixel wide are drawn as their own rect. Narrower ones are summed per
// pixel column and lane: one rect per run of columns, in the colour of the kernel with the most
// busy time there, with an opacity that says how busy the column was. The output size is then
// bounded by lanes x pixels, not by the task count.
void write_swimlane_svg(std::ostream& out, const Trace& trace, const KernelRegistry& kernels,
                        const SwimlaneOptions& options = {});

}  // namespace tmr::profile
