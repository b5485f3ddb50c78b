// The command-line side of `tmr fit` and `tmr ab` (kept out of main.cpp): their options and
// dispatch.
#pragma once

#include <CLI/CLI.hpp>
#include <iostream>
#include <optional>

#include "cli/sim_commands.hpp"

namespace tmr::cli {

class SimSubcommands {
 public:
  explicit SimSubcommands(CLI::App& app);
  // The exit status when `fit` or `ab` was the parsed subcommand; nothing otherwise.
  std::optional<int> dispatch(std::ostream& out, std::ostream& err) const;

 private:
  CLI::App* fit_ = nullptr;
  CLI::App* ab_ = nullptr;
  FitOptions fit_options_;
  AbOptions ab_options_;
  std::vector<std::string> dual_slot_values_;
};

}  // namespace tmr::cli
