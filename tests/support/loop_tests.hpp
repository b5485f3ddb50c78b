#pragma once
// What the parallel_for tests share: two float kernels over a 1-D view, and a traced
// configuration with or without the loop analysis (the A/B every loop test compares).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "support/task_window.hpp"
#include "tmr/tmr.hpp"

namespace tmr::testing {

// A held kernel's wait: until `open` is set, or 5 s pass (a test never hangs), so the tasks
// behind it stay live while the orchestrator wires their consumers.
inline void wait_until_open(const std::atomic<bool>& open) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!open.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < until)
    std::this_thread::yield();
}

// out[k] = in[k] + 1 over the views' first dimension (strided).
inline void add_one(const KernelArgs& a) {
  const Tensor& in = a.tensor(0);
  const Tensor& out = a.tensor(1);
  const auto* src = in.data_as<float>();
  auto* dst = out.data_as<float>();
  for (std::uint32_t k = 0; k < in.dim(0); ++k)
    dst[k * out.stride(0)] = src[k * in.stride(0)] + 1.0f;
}

// acc[k] += in[k] over the views' first dimension (strided; tensor 0 in, tensor 1 inout): a
// carried accumulator when every iteration names one `acc`.
inline void accumulate(const KernelArgs& a) {
  const Tensor& in = a.tensor(0);
  const Tensor& acc = a.tensor(1);
  for (std::uint32_t k = 0; k < in.dim(0); ++k)
    acc.data_as<float>()[k * acc.stride(0)] += in.data_as<float>()[k * in.stride(0)];
}

// Four clusters, two scheduler threads, events recorded (the oracle reads starts and ends), and
// a 1,024-task window (few_tasks_ring: the loop tests hold a few hundred tasks at most; a test that
// needs more sets its window).
inline RuntimeConfig loop_config(PlatformKind platform, bool analysis = true) {
  RuntimeConfig config;
  config.ring = few_tasks_ring();
  config.platform = platform;
  config.clusters = 4;
  config.scheduler_threads = 2;
  config.record_events = true;
  config.stall_timeout_s = 30;
  config.parallel_for_analysis = analysis;
  return config;
}

}  // namespace tmr::testing
