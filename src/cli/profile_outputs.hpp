// Writes the profile outputs `tmr run` was asked for (--trace, --swimlane, --graph, --stats) from
// one case's first-round trace.
#pragma once

#include <ostream>
#include <string>

#include "cli/case_result.hpp"
#include "cli/run_options.hpp"
#include "tmr/kernel.hpp"

namespace tmr::cli {

// "t.json" for one case; with several cases the case name goes before the extension
// ("t.Case1.json"), so each case keeps its own file.
std::string profile_path(const std::string& path, const std::string& case_name, bool per_case);

// Returns false (after printing why to `err`) when a file could not be written or the case left
// no trace (it failed before its first round finished).
bool write_profile_outputs(const CaseResult& result, const RunOptions& options,
                           const KernelRegistry& kernels, bool per_case, std::ostream& out,
                           std::ostream& err);

}  // namespace tmr::cli
