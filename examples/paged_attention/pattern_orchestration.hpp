// Paged attention with each tile's full KV blocks stated as one TaskPattern (the block loop's
// four tasks), measured against the lambda body of orchestration.cpp (docs/performance.md,
// "Session 43, branch cf43"). Same arguments, tasks, dependences and errors as orchestrate().
#pragma once

#include "tmr/orchestrator.hpp"

namespace tmr::examples::paged_attention {

// Arguments as described in attention_cases.hpp.
void orchestrate_pattern(Orchestrator& o, const OrchestrationArgs& args);

}  // namespace tmr::examples::paged_attention
