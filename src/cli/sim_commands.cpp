#include "cli/sim_commands.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/sim_report.hpp"
#include "common/catalog.hpp"
#include "tmr/error.hpp"
#include "tmr/runtime.hpp"

namespace tmr::cli {

namespace {

// One case run once on the sim: what the table rows need.
struct SimCaseRun {
  RunResult run;
  SimSummary summary;
};

// Runs case `case_name` of `example_name` once on the a2a3 model as `config` says (platform,
// events and timing-only are set here). Throws Error naming what is wrong.
SimCaseRun run_on_sim(const std::string& example_name, const std::string& case_name,
                      RuntimeConfig config, bool timing_only, std::uint64_t seed) {
  const examples::Example* example = examples::find_example(example_name);
  if (example == nullptr) {
    throw Error(ErrorCode::invalid_args, "unknown example '" + example_name + "' (see `tmr list`)");
  }
  const int index = case_name.empty() ? 0 : example->find_case(case_name);
  if (index < 0 || example->cases.empty()) {
    throw Error(ErrorCode::invalid_args,
                "example '" + example_name + "' has no case '" + case_name + "'");
  }
  const auto case_index = static_cast<std::size_t>(index);
  config.platform = PlatformKind::sim;
  config.record_events = true;  // core utilisation comes from the trace
  config.sim.timing_only = timing_only;
  config.validate();
  KernelRegistry kernels;
  example->register_kernels(kernels);
  Runtime runtime(config, std::move(kernels));
  examples::Problem problem = timing_only && example->make_timing_problem
                                  ? example->make_timing_problem(case_index, seed)
                                  : example->make_problem(case_index, seed);
  SimCaseRun result{runtime.run(example->orchestration, problem.run_args()), {}};
  if (!result.run.ok()) {
    throw Error(result.run.status.code, example_name + "/" + example->cases[case_index].name +
                                            ": " + result.run.status.message);
  }
  if (!timing_only) {
    for (const examples::OutputCheck& check : problem.check()) {
      if (!check.passed()) {
        throw Error(ErrorCode::explicit_fatal, example_name + "/" +
                                                   example->cases[case_index].name +
                                                   ": golden check of " + check.name + " failed");
      }
    }
  }
  result.summary = summarize_sim_run(result.run, config);
  return result;
}

// The configuration every sim command starts from: the example's rings, TMR_* variables, the
// example's minimum cluster count, the cost file.
RuntimeConfig base_config(const std::string& example_name, const std::string& cost_model_path) {
  RuntimeConfig config;
  const examples::Example* example = examples::find_example(example_name);
  if (example != nullptr && example->ring) config.ring = *example->ring;
  config.apply_env();
  if (example != nullptr && config.clusters < example->min_clusters) {
    config.clusters = example->min_clusters;  // start-together cohorts sized for a2a3
  }
  if (!cost_model_path.empty()) config.sim.costs.apply_json_file(cost_model_path);
  return config;
}

// The reference's published end-to-end figures (tmr_reference_perf_history.md section 5: a2a3,
// 100-round trimmed means, Aug-Sep 2026). `fit` marks the cases the cost model was fitted on;
// the others are held out and check it.
struct PublishedCase {
  const char* example;
  const char* case_name;
  std::uint64_t tasks;
  double low_us;
  double high_us;
  bool fit;
};

constexpr PublishedCase kPublished[] = {
    {"paged_attention_unroll", "Case1", 1280, 1089, 1099, true},
    {"alternating_matmul_add", "Case1", 1000, 766, 774, true},
    {"paged_attention_unroll", "Case2", 576, 561, 572, false},
    {"batch_paged_attention", "Case1", 4112, 3496, 3565, false},
};

}  // namespace

int fit_command(const FitOptions& options, std::ostream& out, std::ostream& err) {
  char line[256];
  std::snprintf(line, sizeof(line), "%-30s %6s %7s %17s %10s %8s  %s\n", "case", "tasks", "role",
                "published us", "sim us", "error", "bound");
  out << line;
  int outside = 0;
  int rows = 0;
  for (const PublishedCase& c : kPublished) {
    if (options.held_out_only && c.fit) continue;
    const std::string name = std::string(c.example) + "/" + c.case_name;
    SimCaseRun run;
    try {
      run = run_on_sim(c.example, c.case_name, base_config(c.example, options.cost_model_path),
                       /*timing_only=*/true, 42);
    } catch (const Error& e) {
      err << "tmr fit: " << error_code_name(e.code()) << ": " << e.what() << "\n";
      return kExitFail;
    }
    const double published = (c.low_us + c.high_us) / 2;
    const double error = (run.summary.makespan_us - published) / published;
    const bool tasks_match = run.run.stats.tasks_submitted == c.tasks;
    const bool within = std::abs(error) * 100 <= options.tolerance_percent && tasks_match;
    outside += within ? 0 : 1;
    ++rows;
    char published_text[32];
    std::snprintf(published_text, sizeof(published_text), "%.0f-%.0f", c.low_us, c.high_us);
    std::snprintf(line, sizeof(line), "%-30s %6llu %7s %17s %10.1f %+7.1f%%  %s%s%s\n",
                  name.c_str(), static_cast<unsigned long long>(run.run.stats.tasks_submitted),
                  c.fit ? "fit" : "held", published_text, run.summary.makespan_us, 100 * error,
                  run.summary.bound.c_str(), tasks_match ? "" : "  TASK COUNT DIFFERS",
                  within ? "" : "  OUTSIDE");
    out << line;
  }
  std::snprintf(line, sizeof(line), "fit: %d/%d cases within +-%.0f%% of the published makespan\n",
                rows - outside, rows, options.tolerance_percent);
  out << line;
  return outside == 0 ? kExitPass : kExitFail;
}

namespace {

// Applies a setting's VAR=VALUE assignments to the environment and restores the previous values
// when it goes out of scope.
class ScopedEnvironment {
 public:
  explicit ScopedEnvironment(const std::string& setting) {
    std::istringstream words(setting);
    std::string assignment;
    while (words >> assignment) {
      const std::size_t equals = assignment.find('=');
      if (equals == 0 || equals == std::string::npos || assignment.rfind("TMR_", 0) != 0) {
        throw Error(ErrorCode::invalid_args, "setting '" + assignment +
                                                 "' is not TMR_VARIABLE=VALUE (e.g. "
                                                 "TMR_DUAL_SLOT=none)");
      }
      const std::string name = assignment.substr(0, equals);
      const char* previous = std::getenv(name.c_str());
      saved_.push_back({name, previous ? std::optional<std::string>(previous) : std::nullopt});
      ::setenv(name.c_str(), assignment.substr(equals + 1).c_str(), 1);
    }
  }
  ~ScopedEnvironment() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) {
        ::setenv(it->first.c_str(), it->second->c_str(), 1);
      } else {
        ::unsetenv(it->first.c_str());
      }
    }
  }
  ScopedEnvironment(const ScopedEnvironment&) = delete;
  ScopedEnvironment& operator=(const ScopedEnvironment&) = delete;

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

}  // namespace

int ab_command(const AbOptions& options, std::ostream& out, std::ostream& err) {
  const std::vector<std::string> settings =
      options.settings.empty() ? std::vector<std::string>{""} : options.settings;
  char line[320];
  out << "tmr ab: " << options.example << "/"
      << (options.case_name.empty() ? "(first case)" : options.case_name) << " on the sim ("
      << (options.execute ? "kernels executed" : "timing-only") << ")\n";
  std::snprintf(line, sizeof(line), "%-28s %12s %12s %7s %7s %7s %7s  %-14s %s\n", "setting",
                "makespan us", "orch us", "orch%", "sched%", "AIC%", "AIV%", "bound", "ratio");
  out << line;
  double baseline = 0;
  for (const std::string& setting : settings) {
    SimCaseRun run;
    try {
      const ScopedEnvironment environment(setting);
      run = run_on_sim(options.example, options.case_name,
                       base_config(options.example, options.cost_model_path), !options.execute,
                       options.seed);
    } catch (const Error& e) {
      err << "tmr ab: " << (setting.empty() ? "(environment)" : setting) << ": "
          << error_code_name(e.code()) << ": " << e.what() << "\n";
      return e.code() == ErrorCode::invalid_args || e.code() == ErrorCode::invalid_config
                 ? kExitUsage
                 : kExitFail;
    }
    const SimSummary& s = run.summary;
    if (baseline == 0) baseline = s.makespan_us;
    std::snprintf(line, sizeof(line),
                  "%-28s %12.1f %12.1f %6.1f%% %6.1f%% %6.1f%% %6.1f%%  %-14s %.3f\n",
                  setting.empty() ? "(environment)" : setting.c_str(), s.makespan_us,
                  run.run.stats.orchestration_us, 100 * s.orchestration_busy,
                  100 * s.scheduler_busy, 100 * s.aic_utilisation, 100 * s.aiv_utilisation,
                  s.bound.c_str(), baseline > 0 ? s.makespan_us / baseline : 0.0);
    out << line;
  }
  return kExitPass;
}

}  // namespace tmr::cli
