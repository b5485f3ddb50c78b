// The engine: the composition root. It owns everything one Runtime has — configuration, kernels,
// rings, per-core mailboxes, the scheduler, the orchestrator and the platform — wires each unit
// to the narrow interfaces it needs (seams.hpp), and runs the sequence that ties them together.
// The only file under src/core/ that knows the platform.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/kernel_watch.hpp"
#include "core/mailbox.hpp"
#include "core/ring.hpp"
#include "core/scheduler/scheduler.hpp"
#include "core/seams.hpp"
#include "core/topology.hpp"
#include "platform/platform.hpp"
#include "tmr/config.hpp"
#include "tmr/error.hpp"
#include "tmr/kernel.hpp"
#include "tmr/runtime.hpp"

#ifndef TMR_WITH_TRACE
#define TMR_WITH_TRACE 1
#endif

namespace tmr::detail {

class OrchestratorCore;

class Engine final : public RunClock, public Waker, public CompletionSink, public OrchestratorHost {
 public:
  Engine(RuntimeConfig config, KernelRegistry kernels);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  RunResult run(const Orchestration& orchestration, const RunArgs& args);

  // ---- topology ----
  const Topology& topology() const { return topology_; }
  int cluster_count() const { return topology_.clusters; }
  int core_count() const { return topology_.core_count(); }
  Mailbox& mailbox(int core) { return mailboxes_[static_cast<std::size_t>(core)]; }

  const RuntimeConfig& config() const { return config_; }
  KernelRegistry& kernels() { return kernels_; }
  Ring& ring(int index) { return *rings_[static_cast<std::size_t>(index)]; }
  Ring* const* ring_pointers() const { return ring_pointers_; }
  Scheduler& scheduler() { return *scheduler_; }
  Platform& platform() { return *platform_; }

  // ---- RunClock ----
  std::uint64_t now_ns() const override { return platform_->now_ns() - run_start_ns_; }
  bool recording() const override { return TMR_WITH_TRACE && config_.record_events; }
  // ---- Waker: forwarded to the platform ----
  void notify_schedulers() override { platform_->notify_schedulers(); }
  void notify_new_work() override { platform_->notify_new_work(); }
  void notify_new_work_after_fence() override { platform_->notify_new_work_after_fence(); }
  void notify_core(Mailbox& mailbox) override { platform_->notify_core(mailbox); }
  void notify_progress() override { platform_->notify_progress(); }
  // ---- CompletionSink ----
  // The orchestrator's count (tasks that never run) is the last slot of completed_.
  void kernel_task_completed() override { note_kernel_task_completed(core_count()); }
  void kernel_task_completed_on(int core) override { note_kernel_task_completed(core); }
  // First error wins; later ones are dropped. Thread-safe.
  void latch_error(ErrorCode code, const std::string& message) override;
  bool has_error() const override { return has_error_.load(std::memory_order_acquire); }
  Status error() const override;
  // Set when a run fails: schedulers stop dispatching new subtasks.
  bool aborting() const override { return aborting_.load(std::memory_order_acquire); }

  // Counts one finished kernel task in `slot`'s count (a core, or core_count() for the
  // orchestrator) and wakes a waiting orchestrator only once the total reaches what it waits for,
  // so a blocked orchestrator is not woken (and put back to sleep) once per finished task. The
  // total is summed only while the orchestrator waits. seq_cst RMW, then seq_cst loads: pairs with
  // wake_orchestrator_at's store and the orchestrator's seq_cst sum (either it sees this count, or
  // this sees its wait); of two cores counting at once, the later RMW's sum sees both.
  void note_kernel_task_completed(int slot) {
    completed_[static_cast<std::size_t>(slot)].count.fetch_add(1, std::memory_order_seq_cst);
    note_kernel_tasks_counted();
  }
  // The wake-up half of note_kernel_task_completed, for completions the platform counted with a
  // seq_cst RMW of its own (Platform::kernel_tasks_counted), called after that RMW.
  void note_kernel_tasks_counted() {
    const std::uint64_t wake_at = wake_at_completed_.load(std::memory_order_seq_cst);
    if (wake_at != kNotWaiting && kernel_tasks_completed() >= wake_at) {
      platform_->notify_completion();
    }
  }
  // The same, for a platform whose RMW just returned its whole count (`platform_counted`, the
  // value Platform::kernel_tasks_counted would load now or less, never more than what the
  // orchestrator's sum after that RMW sees).
  void note_kernel_tasks_counted(std::uint64_t platform_counted) {
    const std::uint64_t wake_at = wake_at_completed_.load(std::memory_order_seq_cst);
    if (wake_at != kNotWaiting &&
        completed_[static_cast<std::size_t>(core_count())].count.load(std::memory_order_seq_cst) +
                platform_counted >=
            wake_at) {
      platform_->notify_completion();
    }
  }
  // ---- OrchestratorHost ----
  // A waiting orchestrator also polls (every millisecond), so a wake-up lost to a race only
  // delays it, never blocks it.
  void wake_orchestrator_at(std::uint64_t completed) override {
    wake_at_completed_.store(completed, std::memory_order_seq_cst);
  }
  // The sum of the per-core counts (each only grows, so a sum that equals the submitted count
  // means every task finished; seq_cst loads, see note_kernel_task_completed).
  std::uint64_t kernel_tasks_completed() const override {
    // The orchestrator's own count, and the cores' (theirs, or the platform's for them).
    std::uint64_t total =
        completed_[static_cast<std::size_t>(core_count())].count.load(std::memory_order_seq_cst);
    if (platform_counts_) return total + platform_->kernel_tasks_counted();
    for (int slot = 0; slot < core_count(); ++slot)
      total += completed_[static_cast<std::size_t>(slot)].count.load(std::memory_order_seq_cst);
    return total;
  }
  std::uint64_t wait_clock_ns() const override { return platform_->now_ns(); }
  bool wait_until(const std::function<bool()>& ready, std::uint64_t timeout_ns) override {
    return platform_->wait_until(ready, timeout_ns);
  }
  void charge(OrchestratorWork work, std::uint32_t count) override {
    platform_->orchestrator_work(work, count);
  }
  bool charges_work() const override { return platform_->charges_orchestrator_work(); }
  void push_ready(TaskSlot* task) override { scheduler_->push_ready_global(task); }
  // Set when a run ended with a kernel still running (it overran stall_timeout_s): the engine
  // cannot run again until that kernel returns, which it may never do.
  bool unusable() const { return !unusable_reason_.empty(); }
  const std::string& unusable_reason() const { return unusable_reason_; }
  // Only for an unusable engine, instead of destroying it: stops every thread that does not run
  // a kernel and lets the stuck ones go. The engine's memory must then stay allocated (the stuck
  // kernels still use it), so the caller keeps the engine instead of freeing it.
  void abandon_threads() { platform_->abandon(); }

  // What each core runs, for reports on kernels that run long or never return.
  KernelWatch& kernel_watch() { return kernel_watch_; }
  // Called by the orchestrator thread while it waits (every few ms): reports a kernel running
  // for min(10 s, stall_timeout_s / 2) on stderr (again each time its time doubles), and fails
  // the run with scheduler_timeout naming it once it passes stall_timeout_s. True from then on.
  bool watch_kernels() override;
  bool kernel_running() const override {
    return kernel_watch_.longest(KernelWatch::now_ns()).has_value();
  }

  // Platforms call this when a kernel throws.
  void report_kernel_exception(KernelId kernel, TaskId task, std::uint32_t block,
                               const std::string& what);

 private:
  void reset_for_run();

  RuntimeConfig config_;
  Topology topology_;
  KernelRegistry kernels_;
  std::vector<std::unique_ptr<Ring>> rings_;
  Ring* ring_pointers_[kRingCount] = {};
  std::unique_ptr<Mailbox[]> mailboxes_;
  // The completed tasks' ids, one log per core: written by the scheduler's steps, drained by
  // the orchestrator's dependence discovery (declared first: it outlives both).
  std::unique_ptr<CompletionLogs> completion_logs_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<Platform> platform_;
  bool platform_counts_ = false;  // Platform::counts_kernel_tasks: the cores' counts stay 0
  std::unique_ptr<OrchestratorCore> orchestrator_;

  std::uint64_t run_start_ns_ = 0;
  // Finished kernel tasks, one count per core on a line of its own, written only by that core's
  // steps, plus one for the orchestrator (tasks that never run): one counter that every core
  // bumped took a seq_cst RMW per task on a line the cores passed between them
  // (docs/performance.md, "Run side, session 12"). Summed when read, i.e. while the orchestrator
  // waits.
  struct alignas(64) CompletedCount {
    std::atomic<std::uint64_t> count{0};
  };
  std::unique_ptr<CompletedCount[]> completed_;
  // Read by every completion, written when the orchestrator starts or stops waiting: apart from
  // the flags below that the orchestrator reads on every submit.
  alignas(64) std::atomic<std::uint64_t> wake_at_completed_{kNotWaiting};
  // Read on every submit and core step, written once per failed run.
  alignas(64) std::atomic<bool> aborting_{false};
  std::atomic<bool> has_error_{false};
  mutable std::mutex error_mutex_;
  Status error_;
  std::string unusable_reason_;

  KernelWatch kernel_watch_;
  bool kernel_overran_ = false;  // this run: a kernel passed stall_timeout_s
  std::string overrun_message_;
  // The long-running kernel last reported on stderr, and when to report it again.
  std::uint64_t reported_since_ns_ = 0;
  std::uint64_t next_report_ns_ = 0;
  bool long_kernel_reported_ = false;  // reported_since_ns_'s kernel was reported at least once
  // Device copies of a run whose stuck kernel may still use them: kept while the engine lives.
  std::vector<std::unique_ptr<std::byte[]>> abandoned_buffers_;
};

}  // namespace tmr::detail
