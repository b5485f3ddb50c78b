#include "cli/case_runner.hpp"

#include <algorithm>
#include <exception>

#include <sys/resource.h>
#include <time.h>

#include "cli/sim_report.hpp"
#include "cli/text_report.hpp"

namespace tmr::cli {
namespace {

double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// The calling thread's page faults and context switches (Linux RUSAGE_THREAD; exact counts,
// unlike its user/system split, which the kernel scales from ticks: meaningless for a run of
// under a millisecond).
struct ThreadUsage {
  std::uint64_t minor_faults = 0, voluntary_switches = 0, involuntary_switches = 0;
};
ThreadUsage thread_usage() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return {static_cast<std::uint64_t>(u.ru_minflt), static_cast<std::uint64_t>(u.ru_nvcsw),
          static_cast<std::uint64_t>(u.ru_nivcsw)};
}

}  // namespace

CaseResult run_case(Runtime& runtime, const examples::Example& example, std::size_t case_index,
                    const RunOptions& options, std::ostream& out) {
  examples::ParamCase indexed{
      example.cases.at(case_index),
      [&](std::uint64_t seed) { return example.make_problem(case_index, seed); }, nullptr};
  if (example.make_timing_problem) {
    indexed.make_timing_problem = [&](std::uint64_t seed) {
      return example.make_timing_problem(case_index, seed);
    };
  }
  return run_case(runtime, example, indexed, options, out);
}

CaseResult run_case(Runtime& runtime, const examples::Example& example,
                    const examples::ParamCase& param_case, const RunOptions& options,
                    std::ostream& out) {
  const examples::CaseSpec& spec = param_case.spec;
  CaseResult result;
  result.name = spec.name;
  result.summary = spec.summary;
  print_case_header(out, example, spec);
  try {
    const bool timing_only = options.timing_only;  // the run's (flag or env), see run_command
    examples::Problem problem = timing_only && param_case.make_timing_problem
                                    ? param_case.make_timing_problem(options.seed)
                                    : param_case.make_problem(options.seed);
    result.flops = problem.flops();
    const RunArgs run_args = problem.run_args();
    // The orchestrator's own CPU time (not time it was preempted or blocked): on the threads
    // platform the orchestration runs on this thread (docs/performance.md, parallel_for A/B).
    double orchestration_cpu_ns = 0;
    ThreadUsage usage;
    const Orchestration timed = [&](Orchestrator& o, const OrchestrationArgs& a) {
      const ThreadUsage before = thread_usage();
      const double start = thread_cpu_ns();
      example.orchestration(o, a);
      orchestration_cpu_ns = thread_cpu_ns() - start;
      const ThreadUsage after = thread_usage();
      usage = {after.minor_faults - before.minor_faults,
               after.voluntary_switches - before.voluntary_switches,
               after.involuntary_switches - before.involuntary_switches};
    };
    for (int round = 0; round < options.rounds; ++round) {
      problem.reset_outputs();
      const RunResult run = runtime.run(timed, run_args);
      if (!run.ok()) {
        result.error = run.status;
        break;
      }
      if (round == 0) {
        result.trace = run.trace;
        result.mix_blocks_taken_back = run.stats.mix_blocks_taken_back;
      }
      result.tasks_submitted = run.stats.tasks_submitted;
      result.inline_tasks = run.stats.inline_tasks;
      result.loops = run.stats.loops;
      result.loop_tasks_analysed = run.stats.loop_tasks_analysed;
      result.loop_tasks_replayed_wide = run.stats.loop_tasks_replayed_wide;
      result.loop_tasks_named = run.stats.loop_tasks_named;
      result.loop_iterations_analysed = run.stats.loop_iterations_analysed;
      result.loop_fallback_reasons = run.stats.loop_fallback_reasons;
      result.loop_templates_reused = run.stats.loop_templates_reused;
      result.loop_plans_reused = run.stats.loop_plans_reused;
      result.loop_template_rejections = run.stats.loop_template_rejections;
      const RunStats& st = run.stats;
      RoundTiming timing{st.wall_us, st.orchestration_us, st.scheduler_us};
      if (options.platform == "threads") {
        timing.orchestrator_cpu_us = orchestration_cpu_ns / 1e3;
        timing.orchestrator_minor_faults = usage.minor_faults;
        timing.orchestrator_voluntary_switches = usage.voluntary_switches;
        timing.orchestrator_involuntary_switches = usage.involuntary_switches;
      }
      timing.stats = st;
      result.rounds.push_back(timing);
      if (round == 0) print_task_count(out, result);
      print_round(out, round, result.rounds.back());
      if (round > 0) print_loop_round(out, result);
      if (options.platform == "threads") {
        out << "    orchestrator CPU " << orchestration_cpu_ns / 1e3 << " us, "
            << orchestration_cpu_ns /
                   static_cast<double>(std::max<std::uint64_t>(1, run.stats.tasks_submitted))
            << " ns per task\n";
        print_orchestrator_waits(out, result.rounds.back());
      }
      if (round == 0 && options.platform == "sim") print_sim_summary(out, run, runtime.config());
      if (options.corrupt_output) problem.corrupt_first_output();
      if (options.skip_golden || timing_only) continue;
      result.golden_checked = true;
      std::vector<examples::OutputCheck> checks = problem.check();
      const bool round_failed =
          std::any_of(checks.begin(), checks.end(), [](const auto& c) { return !c.passed(); });
      if (round_failed) {
        if (result.failed_rounds == 0) result.checks = std::move(checks);
        ++result.failed_rounds;
      } else if (result.failed_rounds == 0) {
        result.checks = std::move(checks);
      }
    }
  } catch (const Error& e) {
    result.error = Status{e.code(), e.what()};
  } catch (const std::exception& e) {
    result.error =
        Status{ErrorCode::explicit_fatal, std::string("unexpected exception: ") + e.what()};
  }
  print_case_summary(out, result, options);
  return result;
}

}  // namespace tmr::cli
