// What the engine needs from a platform: a clock, a way for the orchestrator to wait for
// progress, and ways to wake schedulers and cores. The engine never knows which platform runs it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace tmr::detail {

struct Mailbox;
class Engine;

// Orchestrator work a virtual-time platform charges to the orchestrator's clock.
enum class OrchestratorWork : std::uint8_t {
  submit,           // one task submit, before its effects become visible (count: tensor args)
  submit_analysed,  // a submit a parallel_for template covers: no map lookups (count: tensor args)
  alloc,            // one hidden alloc task (count: outputs)
  wire,             // dependency edges of the last submit (count: edges)
  scope_end,        // one scope end (count: tasks released)
  element_access,   // one get/set_tensor_data (count: 1)
};

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

  // Virtual-time platforms advance the orchestrator's clock here (and let every other actor
  // catch up to it); a real platform does nothing.
  virtual void orchestrator_work(OrchestratorWork /*work*/, std::uint32_t /*count*/) {}
  // Busy time of a scheduler thread when the platform measures it itself (virtual time);
  // negative: the engine measures it with the cycle counter.
  virtual double scheduler_busy_ns(int /*thread*/) const { return -1.0; }
};

// The platform a configuration asks for. Throws Error(invalid_config) for an unknown one.
std::unique_ptr<Platform> make_platform(Engine& engine);

}  // namespace tmr::detail
