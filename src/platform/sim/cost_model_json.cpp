// SimCostModel from a JSON file: keys are the field names; unknown keys are errors so a typo in
// a cost file never silently keeps a default.
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>

#include "tmr/error.hpp"
#include "tmr/sim.hpp"
#include "tmr/sim_cost_fields.hpp"

namespace tmr {

namespace {

constexpr SimCostField kFields[] = {
    {"submit_ns", &SimCostModel::submit_ns},
    {"submit_per_tensor_ns", &SimCostModel::submit_per_tensor_ns},
    {"analysed_submit_ratio", &SimCostModel::analysed_submit_ratio},
    {"wide_submit_ratio", &SimCostModel::wide_submit_ratio},
    {"pattern_submit_ratio", &SimCostModel::pattern_submit_ratio},
    {"loop_setup_ratio", &SimCostModel::loop_setup_ratio},
    {"loop_setup_fixed", &SimCostModel::loop_setup_fixed},
    {"loop_setup_square", &SimCostModel::loop_setup_square},
    {"kept_setup_ratio", &SimCostModel::kept_setup_ratio},
    {"kept_setup_base_ratio", &SimCostModel::kept_setup_base_ratio},
    {"alloc_ns", &SimCostModel::alloc_ns},
    {"alloc_per_output_ns", &SimCostModel::alloc_per_output_ns},
    {"wire_edge_ns", &SimCostModel::wire_edge_ns},
    {"scope_end_ns", &SimCostModel::scope_end_ns},
    {"scope_end_per_task_ns", &SimCostModel::scope_end_per_task_ns},
    {"element_access_ns", &SimCostModel::element_access_ns},
    {"quiet_read_ratio", &SimCostModel::quiet_read_ratio},
    {"step_base_ns", &SimCostModel::step_base_ns},
    {"poll_ns", &SimCostModel::poll_ns},
    {"dispatch_write_ns", &SimCostModel::dispatch_write_ns},
    {"doorbell_ns", &SimCostModel::doorbell_ns},
    {"completion_ns", &SimCostModel::completion_ns},
    {"retire_ns", &SimCostModel::retire_ns},
    {"edge_ns", &SimCostModel::edge_ns},
    {"pop_ns", &SimCostModel::pop_ns},
    {"push_ns", &SimCostModel::push_ns},
    {"wake_ns", &SimCostModel::wake_ns},
    {"pickup_ns", &SimCostModel::pickup_ns},
    {"fin_visible_ns", &SimCostModel::fin_visible_ns},
    {"kernel_start_ns", &SimCostModel::kernel_start_ns},
    {"min_kernel_ns", &SimCostModel::min_kernel_ns},
    {"tile_ns", &SimCostModel::tile_ns},
    {"aic_gflops", &SimCostModel::aic_gflops},
    {"aiv_gflops", &SimCostModel::aiv_gflops},
    {"memory_gbps", &SimCostModel::memory_gbps},
    {"core_max_gbps", &SimCostModel::core_max_gbps},
    {"kernel_jitter", &SimCostModel::kernel_jitter},
    {"jitter_seed", &SimCostModel::jitter_seed},
};

[[noreturn]] void bad(const std::string& origin, const std::string& message) {
  throw Error(ErrorCode::invalid_config,
              "sim cost model " + origin + ": " + message + " (see docs/sim.md for the keys)");
}

double number(const std::string& origin, const std::string& key, const nlohmann::json& value) {
  if (!value.is_number()) bad(origin, "'" + key + "' must be a number, got " + value.dump());
  const double v = value.get<double>();
  if (!std::isfinite(v) || v < 0) {
    bad(origin, "'" + key + "' must be a finite number >= 0, got " + value.dump());
  }
  return v;
}

}  // namespace

std::span<const SimCostField> sim_cost_fields() {
  return kFields;
}

void SimCostModel::apply_json_text(const std::string& text, const std::string& origin) {
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    bad(origin, std::string("not valid JSON: ") + e.what());
  }
  if (!root.is_object()) bad(origin, "the top level must be a JSON object");
  SimCostModel next = *this;  // all or nothing
  for (const auto& [key, value] : root.items()) {
    if (key == "kernel_ns") {
      if (!value.is_object()) bad(origin, "'kernel_ns' must map kernel names to nanoseconds");
      for (const auto& [name, ns] : value.items()) {
        next.kernel_ns[name] = number(origin, "kernel_ns." + name, ns);
      }
      continue;
    }
    bool known = false;
    for (const auto& [name, member] : kFields) {
      if (key != name) continue;
      next.*member = number(origin, key, value);
      known = true;
      break;
    }
    if (!known) {
      std::string keys = "kernel_ns";
      for (const auto& field : kFields)
        keys += std::string(", ") + field.name;
      bad(origin, "unknown key '" + key + "'; known keys: " + keys);
    }
  }
  if (next.kernel_jitter >= 1) {
    bad(origin, "'kernel_jitter' must be below 1 (a fraction of the duration), got " +
                    std::to_string(next.kernel_jitter));
  }
  *this = std::move(next);
}

void SimCostModel::apply_json_file(const std::string& path) {
  std::ifstream file(path);
  if (!file) bad("'" + path + "'", "cannot open the file");
  std::ostringstream text;
  text << file.rdbuf();
  apply_json_text(text.str(), "'" + path + "'");
}

}  // namespace tmr
