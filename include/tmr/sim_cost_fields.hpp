// Every number of the sim's cost table by its name: the one list that cost files
// (SimCostModel::apply_json_*) and the Python module's `SimCostModel` attributes both go by, so a
// new cost is readable from a file and from Python as soon as it is listed here.
#pragma once

#include <span>

#include "tmr/sim.hpp"

namespace tmr {

struct SimCostField {
  const char* name;  // the JSON key and the Python attribute
  double SimCostModel::*member;
};

// In declaration order; `kernel_ns` (a map) is not among them.
std::span<const SimCostField> sim_cost_fields();

}  // namespace tmr
