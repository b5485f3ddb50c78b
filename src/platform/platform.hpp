// What the engine needs from a platform: a clock, a way for the orchestrator to wait for
// progress, and ways to wake schedulers and cores. The engine never knows which platform runs it.
#pragma once

#include <cstdint>
#include <functional>

namespace tmr::detail {

struct Mailbox;

class Platform {
 public:
  virtual ~Platform() = default;
  virtual const char* name() const = 0;

  // Schedulers start stepping (called after the engine reset its state for a run).
  virtual void begin_run() = 0;
  // Schedulers stop stepping; returns once none touches engine state and no core runs a kernel.
  virtual void end_run() = 0;

  // Nanoseconds on the platform's clock (monotonic).
  virtual std::uint64_t now_ns() const = 0;

  // Orchestrator side: returns when `ready()` holds (true) or after `timeout_ns` (false).
  virtual bool wait_until(const std::function<bool()>& ready, std::uint64_t timeout_ns) = 0;
  // A task completed or a watermark moved: wakes a waiting orchestrator.
  virtual void notify_progress() = 0;
  // Ready work appeared: wakes parked scheduler threads.
  virtual void notify_schedulers() = 0;
  // The orchestrator published ready work: wakes schedulers only if none is awake (an awake one
  // that cannot place the work wakes the others itself). Keeps futex calls off the submit path.
  virtual void notify_new_work() = 0;
  // A dispatch word was written: wakes the core if it parked.
  virtual void notify_core(Mailbox& mailbox) = 0;
};

}  // namespace tmr::detail
