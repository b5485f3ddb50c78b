// `tmr fit` and `tmr ab`: the sim platform as an instrument. `fit` runs the reference's published
// benchmark cases on the a2a3 model and prints the published against the simulated makespan;
// `ab` runs one case under several settings (TMR_* variables) and prints what changed.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace tmr::cli {

struct FitOptions {
  double tolerance_percent = 15;  // a case outside +-this fails the command
  std::string cost_model_path;    // empty: the built-in defaults (docs/sim.md)
  bool held_out_only = false;     // only the cases held out of the fit
};
int fit_command(const FitOptions& options, std::ostream& out, std::ostream& err);

struct AbOptions {
  std::string example;
  std::string case_name;  // empty: the first case
  // Each setting is one or more VAR=VALUE assignments separated by spaces, e.g.
  // "TMR_DUAL_SLOT=aic,aiv"; "" is the environment as it is. The first setting is the baseline
  // of the ratio column.
  std::vector<std::string> settings;
  bool execute = false;  // run the kernels (default: timing-only, the same timeline)
  std::string cost_model_path;
  std::uint64_t seed = 42;
};
int ab_command(const AbOptions& options, std::ostream& out, std::ostream& err);

}  // namespace tmr::cli
