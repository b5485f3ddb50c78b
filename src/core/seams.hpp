// The narrow interfaces units receive at construction instead of the whole engine: a clock, a
// waker, and a sink for completions and errors. Only the composition root (engine.cpp) knows
// which object implements each, so a unit can be driven in a test with hand-made ones.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "tmr/error.hpp"

namespace tmr::detail {

struct Mailbox;
struct TaskSlot;

// Orchestrator work a virtual-time platform charges to the orchestrator's clock.
enum class OrchestratorWork : std::uint8_t {
  submit,           // one task submit, before its effects become visible (count: tensor args)
  submit_analysed,  // a submit a parallel_for template covers: no map lookups (count: tensor args)
  alloc,            // one hidden alloc task (count: outputs)
  wire,             // dependency edges of the last submit (count: edges)
  scope_end,        // one scope end (count: tasks released)
  element_access,   // one get/set_tensor_data (count: 1)
  // A get_tensor_data an analysed loop needs no dependence discovery for (count: 1; loops/).
  element_read_quiet,
  // A parallel_for template proven: learning comparison, proof and set-up of the analysis,
  // charged once per template task when the analysis starts (count: that task's tensor args).
  loop_setup,
  // The same set-up's per-loop part: a fixed part and one that grows with the square of the
  // template's size (count: template tasks; docs/sim.md, loop_setup_ratio).
  loop_setup_base,
  // loop_setup and loop_setup_base of a template kept from an earlier run, rebound to this one
  // with its proof reused (LoopTemplate::rebound(): no learning comparison, no proof;
  // docs/sim.md, kept_setup_ratio and kept_setup_base_ratio). Same counts.
  loop_rebind,
  loop_rebind_base,
  // An analysed submit the wide replayed path covers (OrchestratorCore::submit_wide: fresh
  // outputs, buffers its own iteration made, closed free reads; count: tensor args;
  // docs/sim.md, wide_submit_ratio).
  submit_wide,
  // A pattern loop's submit at a verified position (OrchestratorCore::submit_pattern through
  // submit_replayed<true>: no replay compare; count: tensor args; docs/sim.md,
  // pattern_submit_ratio).
  submit_pattern,
};

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
  // notify_new_work for a caller that issued a seq_cst fence between its push and this call
  // (Scheduler::push_ready_global, after others_have_room): the fence orders the push before
  // whatever the platform reads here, which an RMW does otherwise.
  virtual void notify_new_work_after_fence() { notify_new_work(); }
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
  // The same, counted for core `core`, whose own thread (or a step serialised with it) calls it
  // for the tasks it completes: a sink may keep one count per core (Engine does), so completions
  // on different cores do not write one shared line.
  virtual void kernel_task_completed_on(int core) {
    (void)core;
    kernel_task_completed();
  }
  // Set once a run failed: schedulers stop starting new work.
  virtual bool aborting() const = 0;
  // First error wins. Thread-safe.
  virtual void latch_error(ErrorCode code, const std::string& message) = 0;
  virtual bool has_error() const = 0;
  virtual Status error() const = 0;
};

// What the orchestrator needs from the runtime around it besides a clock, a waker and a sink:
// blocking waits on the platform's clock, modelled work charges, the completion count it waits
// on, and the scheduler's door for ready tasks.
class OrchestratorHost {
 public:
  virtual ~OrchestratorHost() = default;
  // The platform's clock (absolute), which waits measure against.
  virtual std::uint64_t wait_clock_ns() const = 0;
  // Returns when `ready()` holds (true) or after `timeout_ns` (false).
  virtual bool wait_until(const std::function<bool()>& ready, std::uint64_t timeout_ns) = 0;
  // Virtual-time platforms advance the orchestrator's clock; a real one does nothing.
  virtual void charge(OrchestratorWork work, std::uint32_t count) = 0;
  // Whether charge() does anything on this run's platform (false on a real one): the
  // orchestrator skips the call when it does not. Asked once per run.
  virtual bool charges_work() const { return true; }
  virtual std::uint64_t kernel_tasks_completed() const = 0;
  // Wake a waiting orchestrator only once this many kernel tasks completed (kNotWaiting: never).
  virtual void wake_orchestrator_at(std::uint64_t completed) = 0;
  static constexpr std::uint64_t kNotWaiting = ~std::uint64_t{0};
  // A task has no producers left: hand it to the schedulers.
  virtual void push_ready(TaskSlot* task) = 0;
  // Reports kernels that run long and fails the run naming one that overran stall_timeout_s:
  // true from then on (the wait gives up). See Engine::watch_kernels.
  virtual bool watch_kernels() = 0;
  // Some core is running a kernel now: the run is making progress even if no task completes.
  virtual bool kernel_running() const = 0;
};

}  // namespace tmr::detail
