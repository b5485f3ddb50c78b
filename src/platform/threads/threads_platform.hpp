// The threads platform: every core is an OS thread running real kernels on host memory, every
// scheduler thread steps the engine's scheduler, and the orchestrator runs on the caller's thread.
// Any thread may take a scheduler thread's step through its gate (one stepper at a time): a core
// that finished a kernel takes its own O(1) step at once (Scheduler::core_step), so a successor
// or a queued task that fits it starts there (early hand-off), and the orchestrator steps
// instead of waking a parked scheduler thread. Idle threads spin briefly, yield for a bounded
// phase, then park on a futex, so 72 core threads on a 2-core host stay usable.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "core/event_count.hpp"
#include "platform/platform.hpp"
#include "platform/threads/placement.hpp"
#include "platform/threads/step_gate.hpp"

namespace tmr::detail {

class Engine;
class Scheduler;

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
  // For tests: where the threads run.
  const HostPlacement& placement() const { return placement_; }
  std::uint64_t now_ns() const override;
  bool wait_until(const std::function<bool()>& ready, std::uint64_t timeout_ns) override;
  void notify_progress() override { orchestrator_bell_.notify_all(); }
  // The counts' RMW is the change: see EventCount::notify_all_unless_rung, and wait_until's read
  // of the counts after its key.
  void notify_completion() override { orchestrator_bell_.notify_all_unless_rung(); }
  void notify_schedulers() override { scheduler_bell_.notify_all(); }
  void notify_new_work() override;
  void notify_new_work_after_fence() override;
  void notify_core(Mailbox& mailbox) override;
  OrchestratorSteps orchestrator_steps() const override { return orchestrator_steps_; }
  std::uint64_t kernel_tasks_counted() const override;
  bool counts_kernel_tasks() const override { return true; }

 private:
  // After a gate's release counted completions: `gate_total` is that gate's count after it.
  void note_counted(std::uint64_t gate_total);
  // notify_new_work's placement when no scheduler thread is awake.
  void place_new_work();
  void core_main(int core);
  void scheduler_main(int thread);
  // One scheduler step for `thread` under its gate, by whichever thread calls (the early
  // hand-off passes the finishing core). When another thread holds the gate, it steps again on
  // the caller's behalf before letting go, so no request is lost.
  struct StepOutcome {
    bool stepped = false;   // this caller took the gate at least once
    bool progress = false;  // some step it took did something
    bool idle = false;      // after its last step, none of `thread`'s cores had work
  };
  StepOutcome step_scheduler(int thread, int handoff_core = -1);
  // Scheduler::stage_after_latch for `core` under `thread`'s gate, only when the gate is free.
  void try_stage_after_latch(int thread, int core);
  // The orchestrator's help while it waits or publishes work: one step of every scheduler thread
  // (only during a run). Returns true when any made progress.
  bool help_schedulers();
  // Idle back-off shared by cores and schedulers: pause-spin, then yield-spin (lets the other
  // threads of a small host run), then park. Returns true once it is time to park.
  class Backoff;

  Engine& engine_;
  // Counted by the orchestrator's thread only (begin_run names it): RunStats' figures.
  OrchestratorSteps orchestrator_steps_;
  std::thread::id orchestrator_thread_;
  EventCount scheduler_bell_;
  EventCount orchestrator_bell_;
  std::atomic<std::uint32_t> run_generation_{0};
  std::atomic<bool> stop_requested_{true};
  std::atomic<bool> shutdown_{false};
  // end_run gave up on a stuck kernel: schedulers stop without waiting for their cores.
  std::atomic<bool> abandon_run_{false};
  std::atomic<int> stopped_schedulers_{0};
  alignas(64) std::atomic<int> awake_schedulers_{0};
  // Per scheduler thread: the CPU it last stepped on while awake (-1 while parked or between
  // runs), written by that thread only and only when it changes. A thread counted awake on the
  // orchestrator's CPU is not running while the orchestrator is: notify_new_work places the work
  // itself then (awake_scheduler_runs_elsewhere).
  struct alignas(64) SchedulerCpu {
    std::atomic<int> cpu{-1};
  };
  std::unique_ptr<SchedulerCpu[]> scheduler_cpus_;
  // notify_new_work's test with a scheduler thread counted awake: false when one of them last
  // stepped on the CPU the caller runs on.
  bool awake_scheduler_runs_elsewhere() const;
  // 1 while a run's orchestrator holds a CPU (it is not parked in wait_until or end_run): the
  // other runtime thread that Scheduler::limit_handoffs_to_cpus counts. Written by the
  // orchestrator only, read relaxed by the cores' steps.
  alignas(64) std::atomic<int> orchestrator_on_cpu_{0};
  // Per core thread: 1 between its FIN and the end of the step after it (and through a task
  // that step latched for the core, until the step after that task's FIN); end_run waits until
  // every flag is 0. One line per core, written only by its core: a counter shared by all cores
  // took two RMWs per task on a line the cores passed between them (docs/performance.md, "Run
  // side and the orchestrator thread, session 11").
  struct alignas(64) SteppingFlag {
    std::atomic<std::uint32_t> on{0};
  };
  std::unique_ptr<SteppingFlag[]> stepping_;
  bool any_core_stepping() const;
  std::vector<StepGate> gates_;
  std::vector<std::uint64_t> counted_before_run_;  // gates_[t].completed() at begin_run
  // One step of `thread` for StepGate::step: the kernel tasks it completed.
  template <class Step>
  std::uint64_t counting(int thread, Step&& step);
  Scheduler* engine_scheduler_;
  HostPlacement placement_;  // RuntimeConfig::placement: where the threads below run
  std::vector<std::thread> cores_;
  std::vector<std::thread> schedulers_;
};

}  // namespace tmr::detail
