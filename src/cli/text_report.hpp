// The human-readable output of `tmr list` and `tmr run`.
#pragma once

#include <ostream>
#include <vector>

#include "cli/case_result.hpp"
#include "cli/run_options.hpp"
#include "common/example.hpp"
#include "tmr/config.hpp"

namespace tmr::cli {

void print_example_list(std::ostream& out, const std::vector<examples::Example>& examples);

void print_run_header(std::ostream& out, const RunOptions& options, const RuntimeConfig& config);
void print_case_header(std::ostream& out, const examples::Example& example,
                       const examples::CaseSpec& spec);
void print_task_count(std::ostream& out, const CaseResult& result);
void print_round(std::ostream& out, int round, const RoundTiming& timing);
// One round's ring-room waits and the orchestrator's scheduler steps (threads platform).
void print_orchestrator_waits(std::ostream& out, const RoundTiming& timing);
// After a later round's row: its parallel_for analysis, with the templates it reused from the
// round before (nothing when the case has no loop).
void print_loop_round(std::ostream& out, const CaseResult& result);
void print_case_summary(std::ostream& out, const CaseResult& result, const RunOptions& options);
// One line: how many cases passed, and the verdict.
void print_final_summary(std::ostream& out, const std::vector<CaseResult>& results);

}  // namespace tmr::cli
