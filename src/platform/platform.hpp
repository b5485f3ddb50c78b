// What the engine needs from a platform: a clock, a way for the orchestrator to wait for
// progress, and ways to wake schedulers and cores. The engine never knows which platform runs it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "core/seams.hpp"  // OrchestratorWork: the platform depends on core, never the reverse

namespace tmr::detail {

struct Mailbox;
class Engine;

class Platform {
 public:
  virtual ~Platform() = default;
  virtual const char* name() const = 0;

  // Schedulers start stepping (called after the engine reset its state for a run).
  virtual void begin_run() = 0;
  // Schedulers stop stepping; returns once none touches engine state and no core runs a kernel.
  // While it waits for running kernels it polls `give_up` every few ms; once that returns true
  // it stops waiting for them (the engine is then unusable) and returns once no scheduler steps.
  virtual void end_run(const std::function<bool()>& give_up) = 0;
  // Only after end_run gave up, instead of destruction: ends every thread that does not run a
  // kernel and detaches the others, which keep using engine memory (see Engine::abandon_threads).
  virtual void abandon() = 0;

  // Nanoseconds on the platform's clock (monotonic).
  virtual std::uint64_t now_ns() const = 0;

  // Orchestrator side: returns when `ready()` holds (true) or after `timeout_ns` (false).
  virtual bool wait_until(const std::function<bool()>& ready, std::uint64_t timeout_ns) = 0;
  // A task completed or a watermark moved: wakes a waiting orchestrator.
  virtual void notify_progress() = 0;
  // notify_progress right after a completion count's seq_cst RMW (Engine::
  // note_kernel_task_completed, or a step gate's release: note_kernel_tasks_counted), which the
  // waiting orchestrator reads with seq_cst loads: the threads platform skips the bell's RMWs
  // while a wake-up is under way.
  virtual void notify_completion() { notify_progress(); }
  // Kernel tasks whose completion the platform counted itself since begin_run (the threads
  // platform, in its step gates: Scheduler::platform_counts_completions), summed with seq_cst
  // loads; Engine::kernel_tasks_completed adds them to its own counts.
  virtual std::uint64_t kernel_tasks_counted() const { return 0; }
  // Whether it counts the cores' completions that way (then the engine's counts for the cores
  // stay 0 and are not summed). Fixed once the platform is built.
  virtual bool counts_kernel_tasks() const { return false; }
  // Ready work appeared: wakes parked scheduler threads.
  virtual void notify_schedulers() = 0;
  // The orchestrator published ready work: wakes schedulers only if none is awake (an awake one
  // that cannot place the work wakes the others itself). Keeps futex calls off the submit path.
  virtual void notify_new_work() = 0;
  // notify_new_work after the caller's seq_cst fence (Waker::notify_new_work_after_fence).
  virtual void notify_new_work_after_fence() { notify_new_work(); }
  // A dispatch word was written: wakes the core if it parked.
  virtual void notify_core(Mailbox& mailbox) = 0;

  // Virtual-time platforms advance the orchestrator's clock here (and let every other actor
  // catch up to it); a real platform does nothing.
  virtual void orchestrator_work(OrchestratorWork /*work*/, std::uint32_t /*count*/) {}
  // Whether orchestrator_work does anything (a virtual-time platform overrides both).
  virtual bool charges_orchestrator_work() const { return false; }
  // Busy time of a scheduler thread when the platform measures it itself (virtual time);
  // negative: the engine measures it with the cycle counter.
  virtual double scheduler_busy_ns(int /*thread*/) const { return -1.0; }
  // Scheduler steps the orchestrator's thread took since begin_run (RunStats'
  // orchestrator_*_steps); a platform whose orchestrator never steps schedulers returns zeros.
  struct OrchestratorSteps {
    std::uint64_t wait = 0;           // in wait_until (helping before it parks)
    std::uint64_t wait_progress = 0;  // of those, steps that did something
    std::uint64_t placement = 0;      // in notify_new_work (no scheduler thread awake)
    // notify_new_work's placements that found the gate held (a request left instead of a step)
    std::uint64_t placement_gate_held = 0;
  };
  virtual OrchestratorSteps orchestrator_steps() const { return {}; }
};

// The platform a configuration asks for. Throws Error(invalid_config) for an unknown one.
std::unique_ptr<Platform> make_platform(Engine& engine);

}  // namespace tmr::detail
