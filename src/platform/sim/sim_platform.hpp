// The sim platform: a deterministic discrete-event model of a whole chip in virtual time. The
// engine's own scheduler and orchestrator code run unchanged; every actor's work costs modelled
// time (SimCostModel). Single-threaded on the orchestrator's thread: events (scheduler steps, core
// pickups and finishes) run whenever the orchestrator's clock passes them or it waits. Kernels
// still execute on host threads (KernelWorkers) unless the run is timing-only (runs_timing_only).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "platform/platform.hpp"
#include "platform/sim/cost_model.hpp"
#include "platform/sim/event_queue.hpp"
#include "platform/sim/kernel_workers.hpp"

namespace tmr::detail {

class Engine;

class SimPlatform final : public Platform {
 public:
  explicit SimPlatform(Engine& engine);
  ~SimPlatform() override;
  SimPlatform(const SimPlatform&) = delete;
  SimPlatform& operator=(const SimPlatform&) = delete;

  const char* name() const override { return "sim"; }
  void begin_run() override;
  void end_run(const std::function<bool()>& give_up) override;
  void abandon() override;
  std::uint64_t now_ns() const override { return in_event_ ? event_time_ : orchestrator_clock_; }
  bool wait_until(const std::function<bool()>& ready, std::uint64_t timeout_ns) override;
  void notify_progress() override {}  // the waiting orchestrator re-checks after every event
  void notify_schedulers() override { wake_schedulers(); }
  void notify_new_work() override { wake_schedulers(); }
  void notify_core(Mailbox& mailbox) override;
  void orchestrator_work(OrchestratorWork work, std::uint32_t count) override;
  bool charges_orchestrator_work() const override { return true; }
  double scheduler_busy_ns(int thread) const override;

 private:
  struct SchedulerActor {
    bool step_queued = false;  // a step event is in the queue (the thread is not parked)
    double busy_ns = 0;
  };
  struct CoreActor {
    std::uint32_t last_token = kIdleToken;  // survives runs, as the dispatch word does
    // The dispatch word as the core sees it. A scheduler step writes at its start but its
    // writes land at its end (virtual time): until then the core still sees the older word, so
    // no event in between (a finish, a stale doorbell) starts a dispatch early — that let a MIX
    // task's AIC part start and finish before its AIV part (issue 14.7a).
    std::uint32_t older_token = kIdleToken;
    std::uint32_t newer_token = kIdleToken;
    std::uint64_t newer_visible_ns = 0;
    std::uint32_t running_token = 0;
    bool busy = false;
    std::uint64_t start_ns = 0;  // engine-relative, written to the payload at FIN
    // A part of a MIX block started while a pipe partner of the same block had not (it is
    // staged behind another subtask). Pipe-coupled parts exchange data all along, so the work
    // of the block runs once all parts are there: this part's finish is scheduled when the
    // last partner starts, `duration_ns` after that (the time before is spent blocked on the
    // pipe, as on hardware; the host kernel blocks on its pipe the same way).
    bool waiting_for_partners = false;
    std::uint64_t duration_ns = 0;
    DispatchPayload job;
  };

  void run_event(const sim::Event& event);
  void run_events_until(std::uint64_t time);
  void scheduler_step(int thread);
  void core_pickup(int core);
  void core_finish(int core);
  void start_subtask(int core, std::uint32_t token);
  // True when another core of `core`'s cluster holds a dispatch for the same (task, block) as
  // `core` runs that it has not started yet (a staged MIX part).
  bool partner_unstarted(int core) const;
  // `duration` scaled by the next seeded noise factor (SimCostModel::kernel_jitter).
  std::uint64_t jittered(std::uint64_t duration);
  // After `core` started the last part of a MIX block: schedules the finishes of the parts
  // that were waiting for it.
  void release_waiting_partners(int core);
  // The dispatch word core `core` sees now.
  std::uint32_t visible_dispatch(int core) const;
  // Core `core`'s dispatch word changed to `token`, visible from `at`.
  void show_dispatch(int core, std::uint32_t token, std::uint64_t at);
  // Queues a step of `thread` at `time` unless one is queued already.
  void wake_scheduler(int thread, std::uint64_t time);
  void wake_schedulers();

  Engine& engine_;
  const SimConfig config_;
  sim::EventQueue queue_;
  std::vector<sim::KernelTiming> timings_;
  std::vector<SchedulerActor> schedulers_;
  std::vector<CoreActor> cores_;
  std::unique_ptr<sim::KernelWorkers> workers_;
  std::uint64_t orchestrator_clock_ = 0;
  std::uint64_t event_time_ = 0;
  bool in_event_ = false;
  int stepping_thread_ = -1;         // the scheduler thread whose step is running, or -1
  std::vector<int> notified_cores_;  // cores doorbelled during the running step
  int running_cores_ = 0;
  std::uint64_t kernel_starts_ = 0;  // this run's, for the seeded duration noise
};

}  // namespace tmr::detail
