// The threads platform: every core is an OS thread running real kernels on host memory, every
// scheduler thread steps the engine's scheduler, and the orchestrator runs on the caller's thread.
// Idle threads spin briefly, then park on a futex, so 72 core threads on a 2-core host stay usable.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "core/event_count.hpp"
#include "platform/platform.hpp"

namespace tmr::detail {

class Engine;

class ThreadsPlatform final : public Platform {
 public:
  explicit ThreadsPlatform(Engine& engine);
  ~ThreadsPlatform() override;
  ThreadsPlatform(const ThreadsPlatform&) = delete;
  ThreadsPlatform& operator=(const ThreadsPlatform&) = delete;

  const char* name() const override { return "threads"; }
  void begin_run() override;
  void end_run(const std::function<bool()>& give_up) override;
  void abandon() override;
  std::uint64_t now_ns() const override;
  bool wait_until(const std::function<bool()>& ready, std::uint64_t timeout_ns) override;
  void notify_progress() override { orchestrator_bell_.notify_all(); }
  void notify_schedulers() override { scheduler_bell_.notify_all(); }
  void notify_new_work() override;
  void notify_core(Mailbox& mailbox) override;

 private:
  void core_main(int core);
  void scheduler_main(int thread);
  // Idle back-off shared by cores and schedulers: pause-spin, then yield-spin (lets the other
  // threads of a small host run), then park. Returns true once it is time to park.
  class Backoff;

  Engine& engine_;
  EventCount scheduler_bell_;
  EventCount orchestrator_bell_;
  std::atomic<std::uint32_t> run_generation_{0};
  std::atomic<bool> stop_requested_{true};
  std::atomic<bool> shutdown_{false};
  // end_run gave up on a stuck kernel: schedulers stop without waiting for their cores.
  std::atomic<bool> abandon_run_{false};
  std::atomic<int> stopped_schedulers_{0};
  alignas(64) std::atomic<int> awake_schedulers_{0};
  std::vector<std::thread> cores_;
  std::vector<std::thread> schedulers_;
};

}  // namespace tmr::detail
