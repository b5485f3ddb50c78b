// Orchestration of paged attention: per (request, 16-head tile) one alloc of the accumulators,
// then per KV block QK (AIC) -> softmax-prepare (AIV) -> PV (AIC) -> online-update (AIV).
#pragma once

#include "tmr/orchestrator.hpp"

namespace tmr::examples::paged_attention {

// Arguments as described in attention_cases.hpp.
void orchestrate(Orchestrator& o, const OrchestrationArgs& args);

}  // namespace tmr::examples::paged_attention
