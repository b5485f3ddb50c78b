// Orchestration of scalar_data: control flow that depends on data computed by a kernel.
//   1. select_above writes how many values exceed the threshold (count) and those values.
//   2. The orchestration reads count with get_tensor_data and submits that many square tasks.
//   3. reduce adds the squares into summary[1] (summary is INOUT).
//   4. The orchestration writes summary[0] = count with set_tensor_data, which waits for reduce.
//   5. finalize computes summary[2] = summary[0] * summary[1] and bumps summary[3].
#pragma once

#include "tmr/orchestrator.hpp"

namespace tmr::examples::scalar_data {

// Tensors: values [N] f32, count [1] i32 (out), result [N] f32 (out), summary [4] f32 (inout).
// Scalar 0: threshold (float).
void orchestrate(Orchestrator& o, const OrchestrationArgs& args);

}  // namespace tmr::examples::scalar_data
