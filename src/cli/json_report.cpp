#include "cli/json_report.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cli/output_files.hpp"
#include "cli/statistics.hpp"
#include "tmr/error.hpp"

namespace tmr::cli {

namespace {

using nlohmann::json;

json timing_summary(const std::vector<RoundTiming>& rounds, double (*reduce)(std::vector<double>)) {
  std::vector<double> elapsed, orch, sched;
  for (const RoundTiming& r : rounds) {
    elapsed.push_back(r.elapsed_us);
    orch.push_back(r.orchestration_us);
    sched.push_back(r.scheduler_us);
  }
  return {{"elapsed_us", reduce(elapsed)},
          {"orchestration_us", reduce(orch)},
          {"scheduler_us", reduce(sched)}};
}

double plain_mean(std::vector<double> values) {
  return mean(values);
}

json case_json(const CaseResult& r) {
  json rounds = json::array();
  for (const RoundTiming& t : r.rounds) {
    rounds.push_back(
        {{"elapsed_us", t.elapsed_us},
         {"orchestration_us", t.orchestration_us},
         {"scheduler_us", t.scheduler_us},
         {"orchestrator_cpu_us", t.orchestrator_cpu_us},
         {"orchestrator_minor_faults", t.orchestrator_minor_faults},
         {"orchestrator_voluntary_switches", t.orchestrator_voluntary_switches},
         {"orchestrator_involuntary_switches", t.orchestrator_involuntary_switches},
         {"orchestrator_ring_waits", t.stats.orchestrator_ring_waits},
         {"orchestrator_ring_wait_us", t.stats.orchestrator_ring_wait_us},
         {"orchestrator_ring_wait_cpu_us", t.stats.orchestrator_ring_wait_cpu_us},
         {"orchestrator_wait_steps", t.stats.orchestrator_wait_steps},
         {"orchestrator_wait_steps_progress", t.stats.orchestrator_wait_steps_progress},
         {"orchestrator_placement_steps", t.stats.orchestrator_placement_steps},
         {"orchestrator_placements_gate_held", t.stats.orchestrator_placements_gate_held}});
  }
  json checks = json::array();
  for (const examples::OutputCheck& c : r.checks) {
    checks.push_back({{"output", c.name},
                      {"pass", c.passed()},
                      {"elements", c.elements},
                      {"mismatched", c.mismatched},
                      {"max_abs_error", c.max_abs_error},
                      {"max_rel_error", c.max_rel_error},
                      {"atol", c.tolerance.atol},
                      {"rtol", c.tolerance.rtol}});
  }
  json out = {
      {"name", r.name},
      {"summary", r.summary},
      {"pass", r.passed()},
      {"tasks_submitted", r.tasks_submitted},
      {"hidden_alloc_tasks", r.inline_tasks},
      {"parallel_for_tasks_analysed", r.loop_tasks_analysed},
      {"parallel_for_tasks_replayed_wide", r.loop_tasks_replayed_wide},
      {"parallel_for_tasks_named", r.loop_tasks_named},
      {"parallel_for_templates_reused", r.loop_templates_reused},
      {"parallel_for_plans_reused", r.loop_plans_reused},
      {"rounds", rounds},
      {"golden",
       {{"checked", r.golden_checked}, {"failed_rounds", r.failed_rounds}, {"outputs", checks}}},
      {"flops_per_run", r.flops},
      {"error", nullptr}};
  if (!r.rounds.empty()) {
    out["mean"] = timing_summary(r.rounds, plain_mean);
    out["trimmed_mean"] = timing_summary(r.rounds, trimmed_mean);
    const double trimmed_elapsed = out["trimmed_mean"]["elapsed_us"].get<double>();
    if (r.flops > 0 && trimmed_elapsed > 0) out["gflops"] = r.flops / (trimmed_elapsed * 1e3);
  }
  if (r.error) {
    out["error"] = {{"code", std::string(error_code_name(r.error->code))},
                    {"message", r.error->message}};
  }
  return out;
}

}  // namespace

void write_json_report(const std::string& path, const RunOptions& options,
                       const RuntimeConfig& config, const std::vector<CaseResult>& results) {
  json cases = json::array();
  for (const CaseResult& r : results)
    cases.push_back(case_json(r));
  const bool all_passed =
      std::all_of(results.begin(), results.end(), [](const CaseResult& r) { return r.passed(); });
  const json report = {{"example", options.example},
                       {"platform", options.platform},
                       {"clusters", config.clusters},
                       {"scheduler_threads", config.scheduler_threads},
                       {"seed", options.seed},
                       {"rounds", options.rounds},
                       {"skip_golden", options.skip_golden},
                       {"pass", all_passed},
                       {"cases", cases}};
  const std::string problem =
      write_output_file(path, [&](std::ostream& file) { file << report.dump(2) << "\n"; });
  if (!problem.empty()) {
    throw Error(ErrorCode::invalid_args,
                "cannot write the JSON report to '" + path + "': " + problem);
  }
}

}  // namespace tmr::cli
