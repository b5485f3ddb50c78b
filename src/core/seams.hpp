// The narrow interfaces units receive at construction instead of the whole engine: a clock, a
// waker, and a sink for completions and errors. Only the composition root (engine.cpp) knows
// which object implements each, so a unit can be driven in a test with hand-made ones.
#pragma once

#include <cstdint>
#include <string>

#include "tmr/error.hpp"

namespace tmr::detail {

struct Mailbox;

// Run-relative time and whether events are recorded (traces).
class RunClock {
 public:
  virtual ~RunClock() = default;
  virtual std::uint64_t now_ns() const = 0;
  virtual bool recording() const = 0;
};

// Wake-ups a scheduler or orchestrator asks for; the platform decides what they cost.
class Waker {
 public:
  virtual ~Waker() = default;
  // Ready work appeared that another scheduler thread may place: wake parked schedulers.
  virtual void notify_schedulers() = 0;
  // The orchestrator published ready work: wake a scheduler only if none is awake.
  virtual void notify_new_work() = 0;
  // A dispatch word was written: wake the core if it parked.
  virtual void notify_core(Mailbox& mailbox) = 0;
  // A task completed or a watermark moved: wake a waiting orchestrator.
  virtual void notify_progress() = 0;
};

// Where run-wide outcomes go: finished kernel tasks, the first error, the abort flag.
class CompletionSink {
 public:
  virtual ~CompletionSink() = default;
  virtual void kernel_task_completed() = 0;
  // Set once a run failed: schedulers stop starting new work.
  virtual bool aborting() const = 0;
  // First error wins. Thread-safe.
  virtual void latch_error(ErrorCode code, const std::string& message) = 0;
};

}  // namespace tmr::detail
