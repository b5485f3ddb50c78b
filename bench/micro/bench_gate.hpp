// The gate task both micro benchmarks hold their measured tasks behind, and its
// TMR_BENCH_GATE setting (bench/micro/check_bench_env.py, check_submit_env.py).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string_view>
#include <thread>

#include "tmr/tmr.hpp"

namespace tmr_bench {

// TMR_BENCH_GATE=poll (the default) or block: the gate kernel looks every 50 us (each look a
// timer wake-up on one of the host's CPUs while the orchestrator is timed), or sleeps until the
// run opens it, so no runtime thread wakes during the timed loop. Any other value is refused (the
// benchmark reports the error) rather than ignored.
enum class GateMode { poll, block, invalid };
inline GateMode gate_mode_from_env() {
  const char* mode = std::getenv("TMR_BENCH_GATE");
  if (mode == nullptr || std::string_view(mode) == "poll") return GateMode::poll;
  return std::string_view(mode) == "block" ? GateMode::block : GateMode::invalid;
}
inline const GateMode gate_mode = gate_mode_from_env();
inline std::atomic<bool> gate_open{false};
inline std::atomic<std::uint64_t> gate_polls{0};  // the poll gate's looks: gate_polls_per_run
inline std::mutex gate_mutex;
inline std::condition_variable gate_changed;

inline void gate_kernel(const tmr::KernelArgs&) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  if (gate_mode == GateMode::block) {
    std::unique_lock lock(gate_mutex);
    gate_changed.wait_until(lock, deadline, [] { return gate_open.load(); });
    return;
  }
  while (!gate_open.load(std::memory_order_acquire) &&
         std::chrono::steady_clock::now() < deadline) {
    gate_polls.fetch_add(1, std::memory_order_relaxed);
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

// Out of line: the benchmarks' timed functions end where it is called.
[[gnu::noinline]] inline void set_gate(bool open) {
  {
    const std::lock_guard lock(gate_mutex);
    gate_open = open;
  }
  if (open) gate_changed.notify_all();
}

}  // namespace tmr_bench
