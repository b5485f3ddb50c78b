#include "cli/text_report.hpp"

#include <algorithm>
#include <cstdio>
#include <string>

#include "cli/statistics.hpp"

namespace tmr::cli {

namespace {

// printf-style formatting into a std::string (std::format is not in GCC 12).
template <class... Values>
std::string format(const char* pattern, Values... values) {
  char buffer[256];
  std::snprintf(buffer, sizeof(buffer), pattern, values...);
  return buffer;
}

std::vector<double> column(const std::vector<RoundTiming>& rounds, double RoundTiming::*field) {
  std::vector<double> values;
  for (const RoundTiming& round : rounds)
    values.push_back(round.*field);
  return values;
}

void print_timing_row(std::ostream& out, const std::string& label, double elapsed, double orch,
                      double sched) {
  out << format("  %-14s %12.1f %12.1f %12.1f\n", label.c_str(), elapsed, orch, sched);
}

}  // namespace

void print_example_list(std::ostream& out, const std::vector<examples::Example>& examples) {
  for (const examples::Example& example : examples) {
    out << example.name << " - " << example.summary << "\n";
    for (std::size_t i = 0; i < example.cases.size(); ++i) {
      const examples::CaseSpec& spec = example.cases[i];
      std::string notes;
      if (i == 0) notes += " [default]";
      if (spec.large) notes += " [large: only with --case or --include-large]";
      out << format("    %-14s %s%s\n", spec.name.c_str(), spec.summary.c_str(), notes.c_str());
    }
  }
}

void print_run_header(std::ostream& out, const RunOptions& options, const RuntimeConfig& config) {
  out << "tmr run " << options.example << ": platform " << options.platform << ", "
      << config.clusters << " clusters (" << config.clusters << " AIC + " << 2 * config.clusters
      << " AIV), " << config.scheduler_threads << " scheduler threads, seed " << options.seed
      << ", " << options.rounds << (options.rounds == 1 ? " round" : " rounds")
      << (options.skip_golden ? ", golden check skipped" : "")
      << (options.timing_only ? ", timing only" : "")
      << (config.parallel_for_analysis ? "" : ", parallel_for analysis off")
      << (config.placement == ThreadPlacement::adaptive || config.platform != PlatformKind::threads
              ? ""
              : std::string(", placement ") + placement_name(config.placement))
      << "\n";
}

void print_case_header(std::ostream& out, const examples::Example& example,
                       const examples::CaseSpec& spec) {
  out << "\n=== " << example.name << " / " << spec.name << ": " << spec.summary << " ===\n";
}

void print_task_count(std::ostream& out, const CaseResult& result) {
  out << "tasks submitted: " << result.tasks_submitted << " (" << result.inline_tasks
      << " hidden alloc, " << result.tasks_submitted - result.inline_tasks << " kernel tasks)\n";
  if (result.loops > 0) {
    out << "parallel_for: " << result.loops << " loops, " << result.loop_iterations_analysed
        << " iterations and " << result.loop_tasks_analysed << " tasks analysed";
    for (const auto& [reason, count] : result.loop_fallback_reasons)
      out << "; fell back " << count << "x: " << reason;
    out << "\n";
  }
  out << format("  %-14s %12s %12s %12s\n", "round", "elapsed_us", "orch_us", "sched_us");
}

void print_loop_round(std::ostream& out, const CaseResult& result) {
  if (result.loops == 0) return;
  out << "    parallel_for: " << result.loop_iterations_analysed << " iterations and "
      << result.loop_tasks_analysed << " tasks analysed (" << result.loop_tasks_replayed_wide
      << " replayed wide, " << result.loop_tasks_named << " with named records), "
      << result.loop_templates_reused << " templates reused (" << result.loop_plans_reused
      << " with their plans)";
  for (const auto& [reason, count] : result.loop_fallback_reasons)
    out << "; fell back " << count << "x: " << reason;
  for (const auto& [reason, count] : result.loop_template_rejections)
    out << "; template rejected " << count << "x: " << reason;
  out << "\n";
}

void print_orchestrator_waits(std::ostream& out, const RoundTiming& timing) {
  out << "    orchestrator thread: " << timing.orchestrator_minor_faults << " minor faults, "
      << timing.orchestrator_voluntary_switches << " + " << timing.orchestrator_involuntary_switches
      << " context switches (blocked + preempted)\n";
  const RunStats& st = timing.stats;
  out << "    orchestrator waited for ring room " << st.orchestrator_ring_waits << "x, "
      << st.orchestrator_ring_wait_us << " us (CPU " << st.orchestrator_ring_wait_cpu_us
      << " us); scheduler steps: " << st.orchestrator_wait_steps << " while waiting ("
      << st.orchestrator_wait_steps_progress << " with progress), "
      << st.orchestrator_placement_steps << " placing work ("
      << st.orchestrator_placements_gate_held << " placements found the gate held)\n";
}

void print_round(std::ostream& out, int round, const RoundTiming& timing) {
  print_timing_row(out, std::to_string(round + 1), timing.elapsed_us, timing.orchestration_us,
                   timing.scheduler_us);
}

void print_case_summary(std::ostream& out, const CaseResult& result, const RunOptions& options) {
  if (!result.rounds.empty()) {
    const auto elapsed = column(result.rounds, &RoundTiming::elapsed_us);
    const auto orch = column(result.rounds, &RoundTiming::orchestration_us);
    const auto sched = column(result.rounds, &RoundTiming::scheduler_us);
    print_timing_row(out, "mean", mean(elapsed), mean(orch), mean(sched));
    print_timing_row(out,
                     "trimmed(" + std::to_string(trimmed_count(elapsed.size())) + "/" +
                         std::to_string(elapsed.size()) + ")",
                     trimmed_mean(elapsed), trimmed_mean(orch), trimmed_mean(sched));
    const double trimmed_elapsed = trimmed_mean(elapsed);
    if (result.flops > 0 && trimmed_elapsed > 0) {
      out << format(
          "  throughput: %.2f GFLOP/s (%.3g flop per run over the trimmed mean elapsed)\n",
          result.flops / (trimmed_elapsed * 1e3), result.flops);
    }
  }
  if (result.error) {
    out << "  ERROR " << result.error->to_string() << "\n";
    out << "  result: FAIL (runtime error)\n";
    return;
  }
  if (!result.golden_checked) {
    out << "  golden: skipped"
        << (options.skip_golden   ? " (--skip-golden)"
            : options.timing_only ? " (timing only: no kernel ran)"
                                  : "")
        << "\n";
    return;
  }
  for (const examples::OutputCheck& check : result.checks) {
    out << format(
        "  golden %-10s %s: %llu/%llu mismatched, max abs err %.3g, max rel err %.3g "
        "(atol %g, rtol %g)\n",
        check.name.c_str(), check.passed() ? "PASS" : "FAIL",
        static_cast<unsigned long long>(check.mismatched),
        static_cast<unsigned long long>(check.elements), check.max_abs_error, check.max_rel_error,
        check.tolerance.atol, check.tolerance.rtol);
    if (!check.passed()) {
      out << format("    first mismatch at flat index %llu: got %.9g, expected %.9g\n",
                    static_cast<unsigned long long>(check.first_mismatch), check.first_actual,
                    check.first_expected);
    }
  }
  if (result.failed_rounds > 0) {
    out << "  result: FAIL (" << result.failed_rounds << " of " << result.rounds.size()
        << " rounds did not match the golden; re-run with --seed " << options.seed << ")\n";
  } else {
    out << "  result: PASS\n";
  }
}

void print_final_summary(std::ostream& out, const std::vector<CaseResult>& results) {
  const auto passed =
      std::count_if(results.begin(), results.end(), [](const CaseResult& r) { return r.passed(); });
  std::string failed_names;
  for (const CaseResult& r : results) {
    if (!r.passed()) failed_names += (failed_names.empty() ? "" : ", ") + r.name;
  }
  out << "\n" << passed << "/" << results.size() << " cases passed";
  if (!failed_names.empty()) out << "; FAILED: " << failed_names;
  out << "\n";
}

}  // namespace tmr::cli
