// The machine-readable output of `tmr run --json FILE`: the same figures as the text report.
#pragma once

#include <string>
#include <vector>

#include "cli/case_result.hpp"
#include "cli/run_options.hpp"
#include "tmr/config.hpp"

namespace tmr::cli {

// Throws Error(invalid_args) when the file cannot be written.
void write_json_report(const std::string& path, const RunOptions& options,
                       const RuntimeConfig& config, const std::vector<CaseResult>& results);

}  // namespace tmr::cli
