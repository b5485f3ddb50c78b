// The `tmr` command: lists the examples and runs their cases with golden checks and timings.
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/sim_subcommands.hpp"
#include "tmr/config.hpp"

int main(int argc, char** argv) {
  using tmr::cli::RunOptions;
  CLI::App app{"tmr: run the example suite of the tmr task runtime"};
  app.require_subcommand(1);

  CLI::App* list = app.add_subcommand("list", "List the examples and their cases");
  const tmr::cli::SimSubcommands sim_subcommands(app);  // `tmr fit`, `tmr ab`

  RunOptions options;
  int clusters = 0;
  int scheduler_threads = 0;
  CLI::App* run = app.add_subcommand("run", "Run an example's cases and check them");
  run->add_option("example", options.example, "Example name (see `tmr list`)")->required();
  CLI::Option* case_option =
      run->add_option("--case", options.case_name, "Run only this case (default: the first)");
  CLI::Option* all_option =
      run->add_flag("--all-cases", options.all_cases, "Run every case except the large ones");
  case_option->excludes(all_option);
  run->add_flag("--include-large", options.include_large,
                "With --all-cases, also run the large cases")
      ->needs(all_option);
  std::vector<std::string> params;
  CLI::Option* param_option =
      run->add_option("--param", params,
                      "key=value: build a case on the fly from the selected (or default) case, "
                      "e.g. --param batch=8 --param context_lens=512 (paged_attention: batch, "
                      "heads, head_dim, block_size, context_lens, max_model_len, tolerance)")
          ->check([](const std::string& text) {
            const auto equals = text.find('=');
            return equals == std::string::npos || equals == 0 || equals + 1 == text.size()
                       ? std::string("expected key=value, got '" + text + "'")
                       : std::string();
          });
  param_option->excludes(all_option);
  run->add_option("--platform", options.platform, "Where kernels run")
      ->check(CLI::IsMember({"threads", "sim"}))
      ->default_str("threads");
  run->add_option("--rounds", options.rounds, "Runs per case (outputs reset between rounds)")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  // Without the check CLI11 turns "-1" into 2^64 - 1 without a word.
  const CLI::Validator not_negative(
      [](const std::string& text) -> std::string {
        return text.find('-') == std::string::npos
                   ? ""
                   : "the seed '" + text + "' is negative; use 0 to 18446744073709551615";
      },
      "0..2^64-1");
  run->add_option("--seed", options.seed, "Seed of the generated inputs")
      ->check(not_negative)
      ->capture_default_str();
  CLI::Option* clusters_option =
      run->add_option("--clusters", clusters, "Clusters (1 AIC + 2 AIV each; default: config)")
          ->check(CLI::Range(1, tmr::kMaxClusters));
  CLI::Option* sched_option =
      run->add_option("--sched-threads", scheduler_threads, "Scheduler threads (default: config)")
          ->check(CLI::Range(1, tmr::kMaxSchedulerThreads));
  run->add_flag("--skip-golden", options.skip_golden, "Do not check against the golden");
  run->add_option("--json", options.json_path, "Also write the results as JSON to this file");
  run->add_option("--trace", options.trace_path,
                  "Write the first round's Chrome/Perfetto trace (JSON) to this file");
  run->add_option("--swimlane", options.swimlane_path,
                  "Write the first round's SVG swimlane (cores x time) to this file");
  run->add_option("--graph", options.graph_path,
                  "Write the first round's task dependency graph (Graphviz DOT) to this file");
  run->add_flag("--stats", options.stats,
                "Print per-kernel statistics, core utilisation and the critical path of the "
                "first round");
  run->add_flag("--timing-only", options.timing_only,
                "Run the runtime without calling kernel bodies (threads: orchestration, "
                "scheduling and workers as usual; sim: the timeline only); no golden "
                "(default: TMR_TIMING_ONLY, else off)");
  run->add_option("--cost-model", options.cost_model_path,
                  "With --platform sim: a JSON file overriding the cost model (docs/sim.md)")
      ->check(CLI::ExistingFile);
  run->add_option("--parallel-for", options.parallel_for,
                  "parallel_for loop analysis: on or off (default: TMR_PARALLEL_FOR, else on)")
      ->check(CLI::IsMember({"on", "off"}));
  run->add_option("--placement", options.placement,
                  "Thread placement on the host's CPUs (threads platform): none, split, nice or "
                  "adaptive (default: TMR_PLACEMENT, else adaptive; docs/design.md \"Thread "
                  "placement\")")
      ->check(CLI::IsMember({"none", "split", "nice", "adaptive"}));
  // A test hook: proves that a wrong output is reported as FAIL with a non-zero exit.
  run->add_flag("--corrupt-output", options.corrupt_output)->group("");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (list->parsed()) return tmr::cli::list_command(std::cout);
  if (const auto status = sim_subcommands.dispatch(std::cout, std::cerr)) return *status;
  if (clusters_option->count() > 0) options.clusters = clusters;
  if (sched_option->count() > 0) options.scheduler_threads = scheduler_threads;
  for (const std::string& param : params) {
    const auto equals = param.find('=');
    options.params.emplace_back(param.substr(0, equals), param.substr(equals + 1));
  }
  return tmr::cli::run_command(options, std::cout, std::cerr);
}
