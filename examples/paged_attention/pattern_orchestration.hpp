// Paged attention with each (request, head tile)'s full KV blocks stated as one TaskPattern (the
// block loop's four tasks) inside paged_attention's request and tile loops, so a verified
// pattern skips the replay compare at the owner's positions (a nested run). A measured
// prototype against paged_attention's lambda body (docs/performance.md, "Session 43, branch
// cf43"): the same arguments, tasks, results and errors as paged_attention::orchestrate.
#pragma once

#include "tmr/orchestrator.hpp"

namespace tmr::examples::paged_attention_pattern {

// Arguments as described in paged_attention/attention_cases.hpp.
void orchestrate(Orchestrator& o, const OrchestrationArgs& args);

}  // namespace tmr::examples::paged_attention_pattern
