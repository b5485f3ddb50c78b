// Orchestration of paged_attention_mix: per (request, 16-head tile) one alloc of the accumulators,
// then one MIX task per KV block (cube kernel on the AIC, vector kernel on both AIVs).
#pragma once

#include "tmr/orchestrator.hpp"

namespace tmr::examples::paged_attention_mix {

// Arguments as for paged_attention (see paged_attention/attention_cases.hpp).
void orchestrate(Orchestrator& o, const OrchestrationArgs& args);

}  // namespace tmr::examples::paged_attention_mix
