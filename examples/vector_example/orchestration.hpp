// Orchestration of vector_example: f = (a + b + 1) * (a + b + 2), four tasks per row tile.
#pragma once

#include "tmr/orchestrator.hpp"

namespace tmr::examples::vector_example {

// Tensors: a [R, C] f32, b [R, C] f32, f [R, C] f32 (output). Scalar 0: tile rows (int32).
void orchestrate(Orchestrator& o, const OrchestrationArgs& args);

}  // namespace tmr::examples::vector_example
