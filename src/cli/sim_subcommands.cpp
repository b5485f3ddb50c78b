#include "cli/sim_subcommands.hpp"

namespace tmr::cli {

SimSubcommands::SimSubcommands(CLI::App& app) {
  fit_ = app.add_subcommand(
      "fit",
      "Run the reference's published benchmark cases on the sim (timing-only) and print the "
      "published against the simulated makespan; exits 1 when a case is out of tolerance");
  fit_->add_option("--tolerance", fit_options_.tolerance_percent,
                   "Largest accepted |error| in percent")
      ->check(CLI::Range(0.0, 1000.0))
      ->capture_default_str();
  fit_->add_option("--cost-model", fit_options_.cost_model_path,
                   "A JSON file overriding the cost model (docs/sim.md)")
      ->check(CLI::ExistingFile);
  fit_->add_flag("--held-out-only", fit_options_.held_out_only,
                 "Only the cases held out of the fit");

  ab_ = app.add_subcommand(
      "ab",
      "Run one case on the sim under several settings and compare makespan, orchestration "
      "time, utilisation and the ratio to the first setting");
  ab_->add_option("example", ab_options_.example, "Example name (see `tmr list`)")->required();
  ab_->add_option("--case", ab_options_.case_name, "Case (default: the first)");
  ab_->add_option("--setting", ab_options_.settings,
                  "One setting: TMR_* assignments separated by spaces (repeatable; the first is "
                  "the baseline)");
  ab_->add_option("--dual-slot", dual_slot_values_,
                  "Shorthand: one setting per TMR_DUAL_SLOT value (e.g. --dual-slot none aic "
                  "aic,aiv)");
  ab_->add_flag("--execute", ab_options_.execute,
                "Execute the kernels and check the golden (default: timing-only)");
  ab_->add_option("--cost-model", ab_options_.cost_model_path,
                  "A JSON file overriding the cost model (docs/sim.md)")
      ->check(CLI::ExistingFile);
  ab_->add_option("--seed", ab_options_.seed, "Seed of the generated inputs")
      ->capture_default_str();
}

std::optional<int> SimSubcommands::dispatch(std::ostream& out, std::ostream& err) const {
  if (fit_->parsed()) return fit_command(fit_options_, out, err);
  if (ab_->parsed()) {
    AbOptions options = ab_options_;
    for (const std::string& value : dual_slot_values_)
      options.settings.push_back("TMR_DUAL_SLOT=" + value);
    return ab_command(options, out, err);
  }
  return std::nullopt;
}

}  // namespace tmr::cli
