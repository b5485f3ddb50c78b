// Orchestration of bgemm: C[b] = A[b] B[b] with square tiles. Per batch and k-step one SPMD AIC
// task computes every output tile's product (one block per tile) and one SPMD AIV task adds them
// into C; the AIV tasks of a batch chain through C.
#pragma once

#include "tmr/orchestrator.hpp"

namespace tmr::examples::bgemm {

// Tensors: a [batch, M, K] f32, b [batch, K, N] f32, c [batch, M, N] f32 (output).
// Scalar 0: tile size T (int32), dividing M, N and K.
void orchestrate(Orchestrator& o, const OrchestrationArgs& args);

}  // namespace tmr::examples::bgemm
