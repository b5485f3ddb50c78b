// `tmr run --platform sim`: the sim options applied to the configuration, and the summary of a
// simulated run (makespan, busy times, per-core-type utilisation, what bounds the run).
#pragma once

#include <ostream>
#include <string>

#include "cli/run_options.hpp"
#include "tmr/config.hpp"
#include "tmr/runtime.hpp"

namespace tmr::cli {

// Platform sim, timing-only, the cost-model file (throws Error(invalid_config) when it is bad)
// and event recording (utilisation comes from the trace).
void apply_sim_options(const RunOptions& options, RuntimeConfig& config);

struct SimSummary {
  double makespan_us = 0;
  double orchestration_busy = 0;  // fractions of the makespan
  double scheduler_busy = 0;      // mean over scheduler threads
  double aic_utilisation = 0;
  double aiv_utilisation = 0;
  std::string bound;  // "orchestration", "scheduler", "core (AIC)", "core (AIV)", "latency"
};
SimSummary summarize_sim_run(const RunResult& run, const RuntimeConfig& config);

void print_sim_summary(std::ostream& out, const RunResult& run, const RuntimeConfig& config);

}  // namespace tmr::cli
