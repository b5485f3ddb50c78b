#include "cli/sim_report.hpp"

#include <algorithm>
#include <cstdio>

namespace tmr::cli {

void apply_sim_options(const RunOptions& options, RuntimeConfig& config) {
  config.platform = PlatformKind::sim;
  if (!options.cost_model_path.empty()) config.sim.costs.apply_json_file(options.cost_model_path);
  config.record_events = true;
}

SimSummary summarize_sim_run(const RunResult& run, const RuntimeConfig& config) {
  SimSummary s;
  const RunStats& stats = run.stats;
  s.makespan_us = stats.wall_us;
  const double span = std::max(stats.wall_us, 1e-9);
  s.orchestration_busy = (stats.orchestration_us - stats.orchestrator_blocked_us) / span;
  s.scheduler_busy = stats.scheduler_us / std::max(1, config.scheduler_threads) / span;
  if (run.trace) {
    double busy_ns[2] = {0, 0};
    for (const SubtaskEvent& e : run.trace->subtasks) {
      busy_ns[e.core_type == CoreType::aic ? 0 : 1] += static_cast<double>(e.end_ns - e.start_ns);
    }
    s.aic_utilisation = busy_ns[0] / 1e3 / (span * config.clusters);
    s.aiv_utilisation = busy_ns[1] / 1e3 / (span * 2.0 * config.clusters);
  }
  // The actor closest to saturation bounds the run; when none is near it, the dependency chain
  // (latency) does.
  const std::pair<double, const char*> candidates[] = {
      {s.orchestration_busy, "orchestration"},
      {s.scheduler_busy, "scheduler"},
      {s.aic_utilisation, "core (AIC)"},
      {s.aiv_utilisation, "core (AIV)"},
  };
  const auto top = std::max_element(std::begin(candidates), std::end(candidates),
                                    [](const auto& a, const auto& b) { return a.first < b.first; });
  s.bound = top->first >= 0.5 ? top->second : "latency";
  return s;
}

void print_sim_summary(std::ostream& out, const RunResult& run, const RuntimeConfig& config) {
  const SimSummary s = summarize_sim_run(run, config);
  char line[512];
  std::snprintf(line, sizeof(line),
                "  sim: makespan %.3f us; orchestration %.3f us (blocked %.3f us); scheduler busy "
                "%.3f us over %d threads\n"
                "  sim: busy share of makespan: orchestration %.1f%%, schedulers %.1f%% (mean), "
                "AIC %.1f%%, AIV %.1f%% -> %s-bound\n",
                s.makespan_us, run.stats.orchestration_us, run.stats.orchestrator_blocked_us,
                run.stats.scheduler_us, config.scheduler_threads, 100 * s.orchestration_busy,
                100 * s.scheduler_busy, 100 * s.aic_utilisation, 100 * s.aiv_utilisation,
                s.bound.c_str());
  out << line;
}

}  // namespace tmr::cli
