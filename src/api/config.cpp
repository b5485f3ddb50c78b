// Runtime configuration: validation with messages that name the field, the value and the fix, and
// the TMR_* environment overrides.
#include "tmr/config.hpp"

#include <sched.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include "tmr/error.hpp"

namespace tmr {

namespace {

[[noreturn]] void bad_config(const std::string& message) {
  throw Error(ErrorCode::invalid_config, message);
}

void check_range(const char* field, const char* env, long long value, long long low, long long high,
                 const char* limit_name) {
  if (value >= low && value <= high) return;
  bad_config("RuntimeConfig::" + std::string(field) + " = " + std::to_string(value) +
             " is out of range; accepted " + std::to_string(low) + " to " + std::to_string(high) +
             " (" + limit_name + "); set it in the config or with " + env);
}

void check_power_of_two(const char* field, const char* env, std::uint64_t value,
                        std::uint64_t minimum) {
  if (value >= minimum && std::has_single_bit(value)) return;
  const std::uint64_t suggestion =
      value <= minimum ? minimum : std::bit_ceil(std::min(value, std::uint64_t{1} << 62));
  bad_config("RuntimeConfig::" + std::string(field) + " = " + std::to_string(value) +
             " is not a power of two >= " + std::to_string(minimum) + "; use e.g. " +
             std::to_string(suggestion) + " (config or " + env + ")");
}

// The heap ring wraps with a modulo, so any size works; 64-byte steps keep every output aligned
// (the reference's ring-stress case uses 2.5 MiB).
void check_heap_bytes(std::uint64_t value) {
  constexpr std::uint64_t kMinimum = 1024;
  constexpr std::uint64_t kStep = 64;
  if (value >= kMinimum && value % kStep == 0) return;
  const std::uint64_t suggestion =
      value <= kMinimum ? kMinimum
                        : std::min(value, ~std::uint64_t{0} - kStep) / kStep * kStep + kStep;
  bad_config("RuntimeConfig::ring.heap_bytes = " + std::to_string(value) +
             " is not a multiple of 64 >= 1024; use e.g. " + std::to_string(suggestion) +
             " (config or TMR_RING_HEAP)");
}

// Shortest round-trip form ("0.5", "-1", "nan"); std::to_string would print "0.500000".
std::string format_seconds(double seconds) {
  char text[32];
  const auto result = std::to_chars(text, text + sizeof(text), seconds);
  return std::string(text, result.ptr);
}

void check_timeout(const char* field, double seconds) {
  if (seconds > 0 && std::isfinite(seconds)) return;
  bad_config("RuntimeConfig::" + std::string(field) + " = " + format_seconds(seconds) +
             " is not a positive, finite number of seconds; set e.g. 60");
}

// The variable's text, or nothing when it is unset or empty (an empty value means "unset", as
// `TMR_CLUSTERS= cmd` is how a shell clears a variable for one command).
std::optional<std::string_view> env_value(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return std::nullopt;
  return std::string_view(text);
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

[[noreturn]] void bad_env(const char* name, std::string_view text, const std::string& accepted) {
  bad_config(std::string(name) + "='" + std::string(text) + "' is not valid; expected " + accepted +
             " (unset it to keep the default)");
}

// A whole (trimmed) decimal integer of type T, or nothing.
template <class T>
std::optional<T> to_integer(std::string_view text) {
  const std::string_view digits = trim(text);
  T value{};
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
    return std::nullopt;
  }
  return value;
}

template <class T>
T parse_integer(const char* name, std::string_view text, const std::string& accepted) {
  const std::optional<T> value = to_integer<T>(text);
  if (!value) bad_env(name, text, accepted);
  return *value;
}

// Bytes as a plain number or with a binary suffix K, M or G (case-insensitive): "64M", "1048576".
std::uint64_t parse_bytes(const char* name, std::string_view text) {
  const std::string accepted = "a byte count such as 1048576, 1024K, 64M or 1G";
  std::string_view number = trim(text);
  unsigned shift = 0;
  if (!number.empty()) {
    switch (std::tolower(static_cast<unsigned char>(number.back()))) {
      case 'k':
        shift = 10;
        break;
      case 'm':
        shift = 20;
        break;
      case 'g':
        shift = 30;
        break;
      default:
        break;
    }
    if (shift != 0) number.remove_suffix(1);
  }
  const std::optional<std::uint64_t> value = to_integer<std::uint64_t>(number);
  if (!value || *value > (~std::uint64_t{0} >> shift)) bad_env(name, text, accepted);
  return *value << shift;
}

DualSlotPolicy parse_dual_slot(const char* name, std::string_view text) {
  const std::string accepted = "\"none\" or a comma-separated list of aic, aiv, mix";
  DualSlotPolicy policy{false, false, false};
  if (trim(text) == "none") return policy;
  std::string_view rest = text;
  while (true) {
    const std::size_t comma = rest.find(',');
    const std::string_view item = trim(rest.substr(0, comma));
    if (item == "aic") {
      policy.aic = true;
    } else if (item == "aiv") {
      policy.aiv = true;
    } else if (item == "mix") {
      policy.mix = true;
    } else {
      bad_env(name, text, accepted);
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return policy;
}

}  // namespace

std::optional<ThreadPlacement> parse_placement(std::string_view text) {
  if (text == "none") return ThreadPlacement::none;
  if (text == "split") return ThreadPlacement::split;
  if (text == "nice") return ThreadPlacement::nice;
  if (text == "adaptive") return ThreadPlacement::adaptive;
  return std::nullopt;
}

const char* placement_name(ThreadPlacement placement) {
  switch (placement) {
    case ThreadPlacement::none:
      return "none";
    case ThreadPlacement::split:
      return "split";
    case ThreadPlacement::nice:
      return "nice";
    case ThreadPlacement::adaptive:
      return "adaptive";
  }
  return "none";
}

RuntimeConfig& RuntimeConfig::apply_env() {
  // Parse into a copy so a bad variable leaves this configuration untouched.
  RuntimeConfig next = *this;
  if (const auto text = env_value("TMR_CLUSTERS")) {
    next.clusters = parse_integer<int>("TMR_CLUSTERS", *text,
                                       "an integer from 1 to " + std::to_string(kMaxClusters));
  }
  if (const auto text = env_value("TMR_SCHED_THREADS")) {
    next.scheduler_threads = parse_integer<int>(
        "TMR_SCHED_THREADS", *text,
        "an integer from 1 to " + std::to_string(kMaxSchedulerThreads) + ", at most the clusters");
  }
  if (const auto text = env_value("TMR_RING_TASK_WINDOW")) {
    next.ring.task_window = parse_integer<std::uint32_t>("TMR_RING_TASK_WINDOW", *text,
                                                         "a power of two >= 4, such as 16384");
  }
  if (const auto text = env_value("TMR_RING_HEAP")) {
    next.ring.heap_bytes = parse_bytes("TMR_RING_HEAP", *text);
  }
  if (const auto text = env_value("TMR_RING_DEP_POOL")) {
    next.ring.dep_pool = parse_integer<std::uint32_t>("TMR_RING_DEP_POOL", *text,
                                                      "a power of two >= 16, such as 65536");
  }
  if (const auto text = env_value("TMR_DUAL_SLOT")) {
    next.dual_slot = parse_dual_slot("TMR_DUAL_SLOT", *text);
  }
  if (const auto text = env_value("TMR_RECORD_EVENTS")) {
    const std::string_view flag = trim(*text);
    if (flag != "0" && flag != "1") bad_env("TMR_RECORD_EVENTS", *text, "0 or 1");
    next.record_events = flag == "1";
  }
  if (const auto text = env_value("TMR_MIX_TAKE_BACK")) {
    const std::string_view flag = trim(*text);
    if (flag != "on" && flag != "off") bad_env("TMR_MIX_TAKE_BACK", *text, "on or off");
    next.dual_slot.mix_take_back = flag == "on";
  }
  if (const auto text = env_value("TMR_PARALLEL_FOR")) {
    const std::string_view flag = trim(*text);
    if (flag != "on" && flag != "off") bad_env("TMR_PARALLEL_FOR", *text, "on or off");
    next.parallel_for_analysis = flag == "on";
  }
  if (const auto text = env_value("TMR_PLACEMENT")) {
    const std::optional<ThreadPlacement> placement = parse_placement(trim(*text));
    if (!placement) bad_env("TMR_PLACEMENT", *text, "none, split, nice or adaptive");
    next.placement = *placement;
  }
  if (const auto text = env_value("TMR_PLATFORM")) {
    const std::string_view kind = trim(*text);
    if (kind != "threads" && kind != "sim") bad_env("TMR_PLATFORM", *text, "threads or sim");
    next.platform = kind == "sim" ? PlatformKind::sim : PlatformKind::threads;
  }
  if (const auto text = env_value("TMR_SIM_COST_MODEL")) {
    next.sim.costs.apply_json_file(std::string(trim(*text)));
  }
  // TMR_TIMING_ONLY and its older alias TMR_SIM_TIMING_ONLY each set their own field; given
  // both, they must agree (otherwise one would silently override the other).
  const auto timing_flag = [](const char* name) -> std::optional<bool> {
    const auto text = env_value(name);
    if (!text) return std::nullopt;
    const std::string_view flag = trim(*text);
    if (flag != "0" && flag != "1") bad_env(name, *text, "0 or 1");
    return flag == "1";
  };
  const std::optional<bool> timing_only = timing_flag("TMR_TIMING_ONLY");
  const std::optional<bool> sim_timing_only = timing_flag("TMR_SIM_TIMING_ONLY");
  if (timing_only && sim_timing_only && *timing_only != *sim_timing_only) {
    bad_config(
        "TMR_TIMING_ONLY and TMR_SIM_TIMING_ONLY (its older alias) disagree; set one of "
        "them");
  }
  if (timing_only) next.timing_only = *timing_only;
  if (sim_timing_only) next.sim.timing_only = *sim_timing_only;
  *this = next;
  return *this;
}

HostTopology host_topology() {
  HostTopology host;
  cpu_set_t set;
  CPU_ZERO(&set);
  host.cpus = sched_getaffinity(0, sizeof(set), &set) == 0
                  ? CPU_COUNT(&set)
                  : static_cast<int>(std::thread::hardware_concurrency());
  host.cpus = std::max(1, host.cpus);
  host.clusters = std::clamp(host.cpus / 2, 1, kMaxClusters);
  host.scheduler_threads =
      std::clamp(host.cpus / 32, 1, std::min(kMaxSchedulerThreads, host.clusters));
  return host;
}

RuntimeConfig& RuntimeConfig::fit_host(int min_clusters) {
  const HostTopology host = host_topology();
  clusters = std::clamp(std::max(host.clusters, min_clusters), 1, kMaxClusters);
  scheduler_threads = std::min(host.scheduler_threads, clusters);
  return *this;
}

void RuntimeConfig::validate() const {
  check_range("clusters", "TMR_CLUSTERS", clusters, 1, kMaxClusters, "kMaxClusters");
  check_range("scheduler_threads", "TMR_SCHED_THREADS", scheduler_threads, 1, kMaxSchedulerThreads,
              "kMaxSchedulerThreads");
  if (scheduler_threads > clusters) {
    bad_config("RuntimeConfig::scheduler_threads = " + std::to_string(scheduler_threads) +
               " exceeds clusters = " + std::to_string(clusters) +
               "; each scheduler thread owns at least one cluster, so lower scheduler_threads "
               "(TMR_SCHED_THREADS) or raise clusters (TMR_CLUSTERS)");
  }
  check_power_of_two("ring.task_window", "TMR_RING_TASK_WINDOW", ring.task_window, 4);
  check_heap_bytes(ring.heap_bytes);
  check_power_of_two("ring.dep_pool", "TMR_RING_DEP_POOL", ring.dep_pool, 16);
  check_timeout("tensor_wait_timeout_s", tensor_wait_timeout_s);
  check_timeout("stall_timeout_s", stall_timeout_s);
  if (sim.chip != "a2a3") {
    bad_config("RuntimeConfig::sim.chip = '" + sim.chip +
               "' is not a known chip model; use \"a2a3\" and set the topology with clusters "
               "and scheduler_threads");
  }
}

}  // namespace tmr
