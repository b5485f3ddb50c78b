// The live views' writers of BM_Submit and its callgrind harness (tmr_submit_profile): they count
// their runs, and the orchestrator waits for all of them before timing, then 1 ms for the last
// ones' completion steps (a few hundred ns after the kernel). Every measured run then starts from
// the same state (each view's writer completed, none retired: the gate task, submitted first,
// holds the watermark), not from however many the workers happened to finish meanwhile. (No
// wait_for: its lookup would take the buffer out of slot lines.)
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "tmr/tmr.hpp"

namespace tmr_bench {

inline std::atomic<std::uint32_t> views_written{0};

inline void view_kernel(const tmr::KernelArgs&) {
  views_written.fetch_add(1, std::memory_order_release);
}

// Waits (10 s at most, so a lost writer cannot hang the benchmark) until `views` writers ran.
inline void wait_for_views(std::uint32_t views) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (views_written.load(std::memory_order_acquire) < views &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

}  // namespace tmr_bench
