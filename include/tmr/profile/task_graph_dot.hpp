// The task dependency graph of one recorded run in Graphviz DOT (`dot -Tsvg g.dot > g.svg`).
#pragma once

#include <iosfwd>

#include "tmr/kernel.hpp"
#include "tmr/trace.hpp"

namespace tmr::profile {

// One node "t<sequence>" per task, labelled by task_label() and filled by kind (AIC blue, AIV
// green, MIX purple); hidden alloc tasks are dashed and unfilled. One edge per producer.
void write_task_graph_dot(std::ostream& out, const Trace& trace, const KernelRegistry& kernels);

}  // namespace tmr::profile
