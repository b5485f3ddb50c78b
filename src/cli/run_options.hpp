// What `tmr run` was asked to do.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tmr::cli {

struct RunOptions {
  std::string example;
  std::string case_name;       // empty: the example's default (first) case
  bool all_cases = false;      // every case except the large ones...
  bool include_large = false;  // ...unless this is set too
  // --param key=value: build the case on the fly from the selected (or default) case.
  std::vector<std::pair<std::string, std::string>> params;
  std::string platform = "threads";
  int rounds = 1;
  std::uint64_t seed = 42;
  std::optional<int> clusters;
  std::optional<int> scheduler_threads;
  bool skip_golden = false;
  std::string json_path;  // empty: no JSON
  // Profile outputs of the first round (each sets RuntimeConfig::record_events); empty: none.
  std::string trace_path;       // Chrome/Perfetto trace-event JSON
  std::string swimlane_path;    // SVG swimlane
  std::string graph_path;       // DOT dependency graph
  bool stats = false;           // print the per-kernel statistics table
  bool corrupt_output = false;  // test hook: disturb one output element after each round
  // --platform sim only: compute the timeline without executing kernels (no golden check), and
  // a JSON file overriding the cost model (docs/sim.md).
  bool timing_only = false;
  std::string cost_model_path;
  // "on" / "off": parallel_for analysis (overrides TMR_PARALLEL_FOR); empty: config/env.
  std::string parallel_for;
  // "none" / "split" / "nice": thread placement (overrides TMR_PLACEMENT); empty: config/env.
  std::string placement;

  bool profiling() const {
    return stats || !trace_path.empty() || !swimlane_path.empty() || !graph_path.empty();
  }
};

}  // namespace tmr::cli
