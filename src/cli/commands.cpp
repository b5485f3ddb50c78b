#include "cli/commands.hpp"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/case_runner.hpp"
#include "cli/json_report.hpp"
#include "cli/output_files.hpp"
#include "cli/profile_outputs.hpp"
#include "cli/sim_report.hpp"
#include "cli/text_report.hpp"
#include "common/catalog.hpp"
#include "tmr/runtime.hpp"

namespace tmr::cli {

namespace {

std::string known_examples() {
  std::string names;
  for (const examples::Example& e : examples::all_examples()) {
    names += (names.empty() ? "" : ", ") + e.name;
  }
  return names;
}

std::string known_cases(const examples::Example& example) {
  std::string names;
  for (const examples::CaseSpec& c : example.cases)
    names += (names.empty() ? "" : ", ") + c.name;
  return names;
}

// The cases to run, or an empty list after printing why.
std::vector<std::size_t> select_cases(const examples::Example& example, const RunOptions& options,
                                      std::ostream& err) {
  std::vector<std::size_t> selected;
  if (options.all_cases) {
    for (std::size_t i = 0; i < example.cases.size(); ++i) {
      if (!example.cases[i].large || options.include_large) selected.push_back(i);
    }
  } else if (!options.case_name.empty()) {
    const int index = example.find_case(options.case_name);
    if (index < 0) {
      err << "tmr run: example '" << example.name << "' has no case '" << options.case_name
          << "'; its cases are: " << known_cases(example) << "\n";
      return {};
    }
    selected.push_back(static_cast<std::size_t>(index));
  } else if (!example.cases.empty()) {
    selected.push_back(0);
  }
  if (selected.empty()) err << "tmr run: no case of '" << example.name << "' selected\n";
  return selected;
}

// Every output file the run will write, checked before the first round: a bad path fails now
// with the system's reason rather than after every round ran. Prints why and returns false.
bool output_files_writable(const examples::Example& example, const std::vector<std::size_t>& cases,
                           const RunOptions& options, std::ostream& err) {
  struct Output {
    const char* what;
    const char* option;
    const std::string& path;
    bool per_case;
  };
  const bool per_case = cases.size() > 1;
  const Output outputs[] = {{"JSON report", "--json", options.json_path, false},
                            {"trace", "--trace", options.trace_path, per_case},
                            {"swimlane", "--swimlane", options.swimlane_path, per_case},
                            {"graph", "--graph", options.graph_path, per_case}};
  for (const Output& output : outputs) {
    if (output.path.empty()) continue;
    for (const std::size_t index : cases) {
      const std::string path =
          profile_path(output.path, example.cases[index].name, output.per_case);
      const std::string problem = output_file_problem(path);
      if (!problem.empty()) {
        err << "tmr run: cannot write the " << output.what << " (" << output.option << ") to '"
            << path << "': " << problem << "; nothing was run\n";
        return false;
      }
      if (!output.per_case) break;
    }
  }
  return true;
}

}  // namespace

int list_command(std::ostream& out) {
  print_example_list(out, examples::all_examples());
  return kExitPass;
}

int run_command(const RunOptions& given, std::ostream& out, std::ostream& err) {
  if (given.platform != "sim" && !given.cost_model_path.empty()) {
    err << "tmr run: --cost-model needs --platform sim\n";
    return kExitUsage;
  }
  // Timing only is a property of the run on either platform: the flag, or TMR_TIMING_ONLY /
  // TMR_SIM_TIMING_ONLY (set below from the configuration), so the problem, the golden and the
  // report follow what the runtime does.
  RunOptions options = given;
  const examples::Example* example = examples::find_example(options.example);
  if (example == nullptr) {
    err << "tmr run: unknown example '" << options.example
        << "'; known examples: " << known_examples() << " (see `tmr list`)\n";
    return kExitUsage;
  }
  const std::vector<std::size_t> cases = select_cases(*example, options, err);
  if (cases.empty()) return kExitUsage;
  // --param: one case built on the fly from the selected case.
  std::optional<examples::ParamCase> param_case;
  if (!options.params.empty()) {
    if (!example->make_param_case) {
      err << "tmr run: example '" << example->name
          << "' takes no --param; its cases are fixed (paged_attention and paged_attention_mix "
             "take parameters)\n";
      return kExitUsage;
    }
    try {
      param_case = example->make_param_case(cases.front(), options.params);
    } catch (const Error& e) {
      err << "tmr run: " << e.what() << "\n";
      return kExitUsage;
    }
  }
  if (!output_files_writable(*example, cases, options, err)) return kExitUsage;

  RuntimeConfig config;
  KernelRegistry kernels;
  std::unique_ptr<Runtime> runtime;
  try {
    if (example->ring) config.ring = *example->ring;  // the example's own rings; env overrides
    config.apply_env();
    if (options.clusters) {
      config.clusters = *options.clusters;
    } else {
      config.clusters = std::max(config.clusters, example->min_clusters);  // e.g. spmd_sync_start
    }
    if (options.scheduler_threads) {
      config.scheduler_threads = *options.scheduler_threads;
    } else if (options.clusters) {
      // Each scheduler thread owns at least one cluster: a small --clusters alone still works.
      config.scheduler_threads = std::min(config.scheduler_threads, config.clusters);
    }
    if (options.profiling()) config.record_events = true;
    if (!options.parallel_for.empty()) config.parallel_for_analysis = options.parallel_for == "on";
    if (!options.placement.empty()) {
      if (const auto placement = parse_placement(options.placement)) config.placement = *placement;
    }
    if (options.timing_only) config.timing_only = true;
    if (options.platform == "sim") apply_sim_options(options, config);
    if (config.platform == PlatformKind::threads && !options.clusters &&
        std::getenv("TMR_CLUSTERS") == nullptr) {
      // A CPU run fits the host (docs/design.md, "Topology"); --clusters / TMR_CLUSTERS model a
      // chip. An explicit scheduler thread count still wins (with a cluster for each).
      const bool threads_asked =
          options.scheduler_threads || std::getenv("TMR_SCHED_THREADS") != nullptr;
      const int scheduler_threads = config.scheduler_threads;
      config.fit_host(std::max(example->min_clusters, threads_asked ? scheduler_threads : 1));
      if (threads_asked) config.scheduler_threads = scheduler_threads;
    }
    config.validate();
    options.timing_only = config.runs_timing_only();
    example->register_kernels(kernels);
    // One runtime (one set of worker threads) for every case and round of this command.
    runtime = std::make_unique<Runtime>(config, std::move(kernels));
  } catch (const Error& e) {
    err << "tmr run: " << error_code_name(e.code()) << ": " << e.what() << "\n";
    return kExitUsage;
  }

  print_run_header(out, options, config);
  std::vector<CaseResult> results;
  bool outputs_written = true;
  for (const std::size_t index : cases) {
    results.push_back(param_case ? run_case(*runtime, *example, *param_case, options, out)
                                 : run_case(*runtime, *example, index, options, out));
    if (options.profiling()) {
      outputs_written &= write_profile_outputs(results.back(), options, runtime->kernels(),
                                               cases.size() > 1, out, err);
    }
  }
  print_final_summary(out, results);
  if (!options.json_path.empty()) {
    try {
      write_json_report(options.json_path, options, config, results);
    } catch (const Error& e) {
      err << "tmr run: " << e.what() << "\n";
      return kExitFail;
    }
  }
  const bool all_passed =
      std::all_of(results.begin(), results.end(), [](const CaseResult& r) { return r.passed(); });
  return all_passed && outputs_written ? kExitPass : kExitFail;
}

}  // namespace tmr::cli
