#include "platform/threads/threads_platform.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>

#include "core/core_runner.hpp"
#include "core/cpu_relax.hpp"
#include "core/engine.hpp"
#include "core/mailbox.hpp"
#include "core/scheduler/record_prefetch.hpp"
#include "platform/threads/core_doorbell.hpp"
#include "platform/threads/kernel_timer.hpp"

namespace tmr::detail {
namespace {

constexpr std::uint64_t kParkTimeoutNs = 50'000'000;  // a parked thread re-checks every 50 ms
constexpr std::uint64_t kEndRunPollNs = 10'000'000;   // end_run looks for stuck kernels every 10 ms

// Names show in top, perf and gdb: "tmr-core-12", "tmr-sched-0". Set by the creator, so every
// thread is named by the time the platform's constructor returns.
void name_thread(std::thread& thread, const std::string& name) {
  pthread_setname_np(thread.native_handle(), name.substr(0, 15).c_str());
}

// Whether any core thread's recent kernels are short (KernelTimer; timed only where the
// scheduler limits hand-offs): adaptive placement keeps the cores on one CPU while they are.
bool kernels_short(const HostPlacement& placement, const Scheduler& scheduler, int cores) {
  if (placement.active() != ThreadPlacement::adaptive) return false;
  for (int core = 0; core < cores; ++core) {
    if (scheduler.short_kernels(core)) return true;
  }
  return false;
}

}  // namespace

class ThreadsPlatform::Backoff {
 public:
  // Spin, then yield for a bounded phase, then park. The yield phase stays even when runtime
  // threads outnumber CPUs: parking at once made every hand-off a futex wake and measured
  // 1.5-2x slower on the peers graphs and BM_Throughput of a quiet 2-CPU host
  // (docs/performance.md, "Yield phase"; again in "Run side, session 15").
  // The phase is bounded in wall time, checked after every yield: a yield on a busy host returns
  // only when the thread gets a CPU again, often milliseconds later, and a check every 16 polls
  // kept idle threads yielding (runnable, so rescheduled to yield again) for 16 such turns:
  // 60-70% of the peers' runs at load ~8 for the threads that never got work. The clock read
  // (vDSO, ~20 ns) is small beside the yield's system call.
  explicit Backoff(std::uint32_t spins) : spins_(spins) {}
  void reset() { polls_ = 0; }
  bool idle_and_should_park() {
    ++polls_;
    if (polls_ < spins_) {
      cpu_relax();
      return false;
    }
    const auto now = std::chrono::steady_clock::now();
    if (polls_ == std::max(spins_, 1u)) {  // the first poll of the yield phase
      yield_start_ = now;
    } else if (now - yield_start_ > kYieldPhase) {
      return true;
    }
    std::this_thread::yield();
    return false;
  }

 private:
  static constexpr std::chrono::microseconds kYieldPhase{50};
  std::uint32_t spins_;
  std::uint32_t polls_ = 0;
  std::chrono::steady_clock::time_point yield_start_{};
};

ThreadsPlatform::ThreadsPlatform(Engine& engine)
    : engine_(engine),
      // Cores, schedulers and the orchestrator.
      gates_(static_cast<std::size_t>(engine.config().scheduler_threads)),
      counted_before_run_(gates_.size()),
      engine_scheduler_(&engine.scheduler()),
      placement_(engine.config().placement,
                 engine.core_count() + engine.config().scheduler_threads) {
  stepping_ = std::make_unique<SteppingFlag[]>(static_cast<std::size_t>(engine.core_count()));
  scheduler_cpus_ = std::make_unique<SchedulerCpu[]>(gates_.size());
  engine.scheduler().stage_single_core_at_latch_only(true);
  engine.scheduler().cores_take_queued_work(true);
  engine.scheduler().own_core_needs_no_doorbell(true);
  engine.scheduler().own_core_latches_handoff(true);
  engine.scheduler().cores_take_back_unlatched(true);
  engine.scheduler().platform_counts_completions(true);  // every step is under a gate
  // One gate for every step: the queues' pops never overlap.
  engine.scheduler().pops_serialised(gates_.size() == 1);
  // Engine::run's thread alone makes tasks ready through push_ready_global (its orchestrator).
  engine.scheduler().orchestrator_lanes(true);
  // More runtime threads than CPUs (the orchestrator counts), one scheduler thread: a core's
  // leftovers go to an idle core only while a CPU is free for it
  // (Scheduler::limit_handoffs_to_cpus).
  const int cpus = placement_.cpus();
  if (engine.config().scheduler_threads == 1 && cpus > 0 &&
      engine.core_count() + engine.config().scheduler_threads + 1 > cpus) {
    engine.scheduler().limit_handoffs_to_cpus(cpus, &orchestrator_on_cpu_);
  }
  for (int core = 0; core < engine.core_count(); ++core) {
    cores_.emplace_back([this, core] {
      placement_.enter_worker(core);
      core_main(core);
    });
    name_thread(cores_.back(), "tmr-core-" + std::to_string(core));
  }
  for (int t = 0; t < engine.config().scheduler_threads; ++t) {
    schedulers_.emplace_back([this, t] {
      placement_.enter_worker(engine_.core_count() + t);
      scheduler_main(t);
    });
    name_thread(schedulers_.back(), "tmr-sched-" + std::to_string(t));
  }
  placement_.wait_until_entered();
}

ThreadsPlatform::~ThreadsPlatform() {
  shutdown_.store(true, std::memory_order_seq_cst);
  scheduler_bell_.notify_all();
  for (std::thread& t : schedulers_)
    t.join();
  for (int core = 0; core < engine_.core_count(); ++core) {
    Mailbox& m = engine_.mailbox(core);
    m.dispatch.store(kExitToken, std::memory_order_seq_cst);
    wake_core_for_exit(m);
  }
  for (std::thread& t : cores_)
    t.join();
}

std::uint64_t ThreadsPlatform::now_ns() const {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

void ThreadsPlatform::begin_run() {
  placement_.begin_run();
  orchestrator_steps_ = {};
  orchestrator_thread_ = std::this_thread::get_id();  // Engine::run calls it on that thread
  stopped_schedulers_.store(0, std::memory_order_relaxed);
  orchestrator_on_cpu_.store(1, std::memory_order_relaxed);
  // Nobody steps between runs (end_run waited for that): the counts stand still.
  for (std::size_t t = 0; t < gates_.size(); ++t)
    counted_before_run_[t] = gates_[t].completed();
  stop_requested_.store(false, std::memory_order_seq_cst);
  run_generation_.fetch_add(1, std::memory_order_seq_cst);
  scheduler_bell_.notify_all();
}

std::uint64_t ThreadsPlatform::kernel_tasks_counted() const {
  std::uint64_t total = 0;
  for (std::size_t t = 0; t < gates_.size(); ++t)
    total += gates_[t].completed() - counted_before_run_[t];
  return total;
}

// With one gate, the total its releasing RMW returned is the platform's whole count: the wake
// check needs no second look at the gates (a virtual call and a load on most finishes while the
// orchestrator waits). The later of two such RMWs reads the earlier one, as a load after it would.
// Inlined: it runs on the workers' completion path, and out of line it cost more than it saved.
[[gnu::always_inline]] inline void ThreadsPlatform::note_counted(std::uint64_t gate_total) {
  if (gates_.size() == 1) {
    engine_.note_kernel_tasks_counted(gate_total - counted_before_run_[0]);
  } else {
    engine_.note_kernel_tasks_counted();
  }
}

bool ThreadsPlatform::any_core_stepping() const {
  for (int core = 0; core < engine_.core_count(); ++core) {
    if (stepping_[static_cast<std::size_t>(core)].on.load(std::memory_order_seq_cst) != 0)
      return true;
  }
  return false;
}

void ThreadsPlatform::end_run(const std::function<bool()>& give_up) {
  orchestrator_on_cpu_.store(0, std::memory_order_relaxed);
  placement_.end_run();
  stop_requested_.store(true, std::memory_order_seq_cst);
  scheduler_bell_.notify_all();
  const int expected = static_cast<int>(schedulers_.size());
  // A core that wrote FIN is still inside its step after it: the run's state is not quiet until
  // it left (a stuck kernel's core never gets there, so abandoning does not wait for it).
  auto quiet = [&] {
    return stopped_schedulers_.load(std::memory_order_seq_cst) == expected &&
           (!any_core_stepping() || abandon_run_.load(std::memory_order_seq_cst));
  };
  while (!quiet()) {
    const std::uint32_t key = orchestrator_bell_.prepare_wait();
    if (quiet()) {
      orchestrator_bell_.cancel_wait();
      break;
    }
    orchestrator_bell_.wait(key, kEndRunPollNs);
    if (!abandon_run_.load(std::memory_order_relaxed) && give_up()) {
      // A kernel never returns: schedulers stop without waiting for their cores to go idle.
      abandon_run_.store(true, std::memory_order_seq_cst);
      scheduler_bell_.notify_all();
    }
  }
}

void ThreadsPlatform::abandon() {
  shutdown_.store(true, std::memory_order_seq_cst);
  scheduler_bell_.notify_all();
  for (std::thread& t : schedulers_)
    t.join();
  schedulers_.clear();
  for (int core = 0; core < engine_.core_count(); ++core) {
    Mailbox& m = engine_.mailbox(core);
    m.dispatch.store(kExitToken, std::memory_order_seq_cst);
    wake_core_for_exit(m);
  }
  for (int core = 0; core < engine_.core_count(); ++core) {
    std::thread& t = cores_[static_cast<std::size_t>(core)];
    if (engine_.kernel_watch().busy(core)) {
      t.detach();  // still inside a kernel; it leaves on the exit token if the kernel returns
    } else {
      t.join();
    }
  }
  cores_.clear();
}

bool ThreadsPlatform::wait_until(const std::function<bool()>& ready, std::uint64_t timeout_ns) {
  const std::uint64_t deadline = now_ns() + timeout_ns;
  bool parked = false;
  const bool result = [&] {
    for (;;) {
      if (ready()) return true;
      // Help before parking: completions and dispatches this step does are what the wait needs.
      if (help_schedulers() && ready()) return true;
      const std::uint32_t key = orchestrator_bell_.prepare_wait();
      // seq_cst loads of every completion count after the key, whatever ready() reads: they
      // synchronise with each count's RMW that precedes them, so what a core wrote before its
      // completion (retirements, task states) is seen below; a core whose RMW comes later finds
      // the key's epoch and rings (notify_completion skips only a ring already under way).
      (void)engine_.kernel_tasks_completed();
      if (ready()) {
        orchestrator_bell_.cancel_wait();
        return true;
      }
      const std::uint64_t now = now_ns();
      if (now >= deadline) {
        orchestrator_bell_.cancel_wait();
        return false;
      }
      // Parking: the workers may use the orchestrator's CPU meanwhile (split placement, and
      // the cores' hand-offs to idle cores: Scheduler::limit_handoffs_to_cpus).
      const bool in_run = !stop_requested_.load(std::memory_order_relaxed);
      if (!parked && in_run) {
        placement_.orchestrator_parks();
        parked = true;
      }
      if (in_run) orchestrator_on_cpu_.store(0, std::memory_order_relaxed);
      orchestrator_bell_.wait(key, deadline - now);
      if (in_run) orchestrator_on_cpu_.store(1, std::memory_order_relaxed);
    }
  }();
  if (parked && !stop_requested_.load(std::memory_order_relaxed))
    placement_.orchestrator_resumes(
        kernels_short(placement_, *engine_scheduler_, engine_.core_count()));
  return result;
}

void ThreadsPlatform::notify_new_work() {
  // An RMW, not a load: it orders the caller's queue push before the read, pairing with the
  // decrement a scheduler does before its last look at the queue. Either we see it parking, or
  // it sees the work (a plain load here lost wake-ups: store-load reordering).
  // With none awake the orchestrator places the work itself (a step under the gates) instead of
  // waking a scheduler thread to do it: one thread hand-off less per task.
  // Only threads with an idle core can start it now, and with MIX pre-staging any thread may
  // stage a waiting MIX task; a busy thread's cores take other work from the queue after their
  // FIN (Scheduler::core_step). Stepping every thread per task cost the orchestrator a full step
  // per thread.
  if (awake_schedulers_.fetch_add(0, std::memory_order_seq_cst) != 0 &&
      awake_scheduler_runs_elsewhere()) {
    return;
  }
  place_new_work();
}

void ThreadsPlatform::notify_new_work_after_fence() {
  // The caller's fence after its push stands in for notify_new_work's RMW: a scheduler that
  // parks decrements the count (seq_cst) before its last look at the queue, so either that
  // decrement precedes the fence and this load sees it, or the look sees the push. A load leaves
  // the count's line shared (the RMW took it exclusive): one locked instruction less per task
  // that finds an idle core.
  if (awake_schedulers_.load(std::memory_order_seq_cst) != 0 && awake_scheduler_runs_elsewhere())
    return;
  place_new_work();
}

// Awake is not running: the scheduler thread that begin_run woke went to the orchestrator's CPU
// (the other CPU was busy), took one step before anything was submitted, and its yield then gave
// the orchestrator a whole slice; it stayed counted awake, so the orchestrator left the first
// ready tasks to it and no task of the peers' stencil started for 1.5-8 ms, while the
// orchestrator submitted (perf sched; docs/performance.md, "Session 36, branch metg41").
// A thread that last stepped on the caller's CPU cannot be running now. sched_getcpu is a read
// of the rseq area (glibc 2.35+), and the thread's line changes only when it moves.
bool ThreadsPlatform::awake_scheduler_runs_elsewhere() const {
  const int mine = sched_getcpu();
  if (mine < 0) return true;  // unknown (-1 also marks a parked thread)
  for (std::size_t t = 0; t < gates_.size(); ++t) {
    if (scheduler_cpus_[t].cpu.load(std::memory_order_relaxed) == mine) return false;
  }
  return true;
}

void ThreadsPlatform::place_new_work() {
  if (stop_requested_.load(std::memory_order_acquire)) return;  // between runs
  const Scheduler& scheduler = engine_.scheduler();
  // Scheduler threads publish ready successors here too: only the orchestrator's steps count.
  const bool orchestrator = std::this_thread::get_id() == orchestrator_thread_;
  for (int t = 0; t < static_cast<int>(gates_.size()); ++t) {
    if (scheduler.has_idle_core(t) || scheduler.mix_may_wait()) {
      // Not stepped: the gate's first RMW found it held, and the request it raised is the
      // holder's to serve (StepGate::step); the placement itself took no step.
      const bool stepped = step_scheduler(t).stepped;
      if (orchestrator && stepped) {
        ++orchestrator_steps_.placement;
      } else if (orchestrator) {
        ++orchestrator_steps_.placement_gate_held;
      }
    }
  }
}

template <class Step>
std::uint64_t ThreadsPlatform::counting(int thread, Step&& step) {
  const Scheduler::StepCounters& counters = engine_scheduler_->counters(thread);
  const std::uint64_t before = counters.tasks_completed;
  step();
  return counters.tasks_completed - before;
}

ThreadsPlatform::StepOutcome ThreadsPlatform::step_scheduler(int thread, int handoff_core) {
  Scheduler& scheduler = *engine_scheduler_;
  StepOutcome outcome;
  // The finishing core's own step first (core_step), then full steps for requests.
  outcome.stepped = gates_[static_cast<std::size_t>(thread)].step(
      [&] {
        return counting(thread, [&] {
          outcome.progress |= handoff_core >= 0 ? scheduler.core_step(thread, handoff_core)
                                                : scheduler.step(thread);
          outcome.idle = scheduler.idle(thread);
          handoff_core = -1;
        });
      },
      [&](std::uint64_t total) { note_counted(total); });
  // A scheduler thread that found the gate held may be parking to stop: let it look again.
  if (stop_requested_.load(std::memory_order_seq_cst)) scheduler_bell_.notify_all();
  return outcome;
}

void ThreadsPlatform::try_stage_after_latch(int thread, int core) {
  // Opportunistic: when someone else is stepping this thread, skip (no request raised, so the
  // holder does not take a full step on our behalf). A request raised while we held the gate is
  // ours to serve, as every holder's.
  const bool requested = gates_[static_cast<std::size_t>(thread)].step_if_free(
      [&] { return counting(thread, [&] { engine_scheduler_->stage_after_latch(thread, core); }); },
      [&](std::uint64_t total) { note_counted(total); });
  if (requested) {
    step_scheduler(thread);
  } else if (stop_requested_.load(std::memory_order_seq_cst)) {
    scheduler_bell_.notify_all();
  }
}

bool ThreadsPlatform::help_schedulers() {
  if (stop_requested_.load(std::memory_order_acquire)) return false;  // between runs
  bool progress = false;
  // wait_until is the orchestrator's (and, after the orchestration, the drain's on that thread).
  for (int t = 0; t < static_cast<int>(gates_.size()); ++t) {
    const StepOutcome step = step_scheduler(t);
    orchestrator_steps_.wait += step.stepped ? 1 : 0;
    orchestrator_steps_.wait_progress += step.progress ? 1 : 0;
    progress |= step.progress;
  }
  return progress;
}

void ThreadsPlatform::notify_core(Mailbox& mailbox) {
  // Pairs with the core's seq_cst store of core_parked: one of us sees the other. One wake a park.
  ring_core(mailbox);
}

void ThreadsPlatform::core_main(int core) {
  Mailbox& m = engine_.mailbox(core);
  const bool timestamps = engine_.recording();
  std::uint32_t last = kIdleToken;
  const int scheduler_thread = m.scheduler_thread;
  const Scheduler& scheduler = engine_.scheduler();
  // Fixed for the engine's life (its config and watch): read once, not per task, where the loads
  // through engine_ after every out-of-line call were a few instructions of each.
  const bool timing_only = engine_.config().runs_timing_only();
  KernelWatch& watch = engine_.kernel_watch();
  Backoff backoff(engine_.config().spin_before_park);
  // Kernels are timed only where the scheduler uses it (note_short_kernels).
  const bool time_kernels = engine_scheduler_->limits_handoffs();
  KernelTimer kernel_timer;
  // The latched dispatch that runs next, in place in its payload buffer (latch_dispatch_in_place,
  // take_own_dispatch): one latched right after the previous FIN (it was waiting in the pending
  // slot) or an early hand-off (below) runs without another look at the dispatch word.
  const DispatchPayload* next = nullptr;
  std::uint32_t next_token = 0;
  std::atomic<std::uint32_t>& stepping = stepping_[static_cast<std::size_t>(core)].on;
  // Once latched, the pending slot may take the next task. A MIX task (or a block taken back)
  // waiting is worth a full step: it needs a whole cluster stageable at once, which this moment
  // may offer. For a single-core task of this core's kind, one O(1) look at this core only
  // (Scheduler::stage_after_latch), and only when one is queued: a full step per latch made the
  // default policy cost 1.3-1.7x `aic` on BM_Throughput (docs/performance.md).
  auto after_latch = [&] {
    if (scheduler.mix_may_wait()) {
      step_scheduler(scheduler_thread);
    } else if (scheduler.may_stage_at_latch(scheduler_thread, m.type)) {
      try_stage_after_latch(scheduler_thread, core);
    }
  };
  for (;;) {
    std::uint32_t token = next_token;
    if (next == nullptr) {
      token = m.dispatch.load(std::memory_order_acquire);
      if (token == last || token == kIdleToken || (token & kLatchedBit) != 0) {
        if (!backoff.idle_and_should_park()) continue;
        park_core(m, token, kParkTimeoutNs);
        backoff.reset();
        continue;
      }
      if (token == kExitToken) return;
      backoff.reset();
      next = latch_dispatch_in_place(m, token);
      if (next == nullptr) continue;  // the scheduler took it back (issue 12): look again
      // Placed by another thread: the lines its kernel reads are asked for here, together
      // (record_prefetch.hpp).
      prefetch_record_start(*next->record);
      after_latch();
    }
    // Used in place; not read from the FIN on (the buffer is the scheduler's again).
    const DispatchPayload& job = *next;
    const std::uint64_t start = timestamps ? engine_.now_ns() : 0;
    watch.started(core, job.kernel, job.task, job.block_index, KernelWatch::now_ns());
    const bool timed = time_kernels && kernel_timer.due();
    const std::uint64_t kernel_start = timed ? now_ns() : 0;
    // Timing only: the task goes through every step as usual except its kernel body.
    const std::optional<std::string> error = timing_only ? std::nullopt : run_kernel(job);
    if (timed && kernel_timer.add(now_ns() - kernel_start))
      engine_scheduler_->note_short_kernels(core, kernel_timer.is_short());
    watch.finished(core);
    if (error) engine_.report_kernel_exception(job.kernel, job.task, job.block_index, *error);
    next = nullptr;  // `job` is not read after this
    // Counted before FIN: a scheduler that sees the FIN (and then stops) also sees this core
    // stepping, so end_run waits until the step below is over. A release store is enough: the
    // FIN is a release store after it, so whoever acquires the FIN (or a gate this core let go
    // of later) sees the flag, and end_run reads it after such an acquire chain (a scheduler's
    // stop). The clear below stays seq_cst: it pairs with end_run's store of stop_requested_.
    // Already set when this kernel was a hand-off the flag stayed set through (below).
    stepping.store(1, std::memory_order_release);
    if (timestamps) {
      finish_dispatch(m, token, start, engine_.now_ns());
    } else {
      finish_dispatch_untimed(m, token);
    }
    last = token;
    if (!shutdown_.load(std::memory_order_seq_cst)) {
      // A dispatch already waiting in the pending slot is latched before the step: the one step
      // then retires this subtask, sees the new one's ACK and may stage the task after it (one
      // gate round trip per task instead of one after the FIN and one after the latch).
      // One this core's own step staged there (a single-core task) is published latched
      // (Scheduler::own_core_latches_handoff): the ACK alone takes it. A latched word with the
      // finished token is not new (this core's own latch, or a take-back's restore).
      const std::uint32_t waiting = m.dispatch.load(std::memory_order_acquire);
      if ((waiting & kLatchedBit) != 0) {
        if ((waiting & kTokenMask) != token) {
          next_token = waiting & kTokenMask;
          next = &take_own_dispatch(m, next_token);
        }
      } else if (waiting != token && waiting != kIdleToken && waiting != kExitToken) {
        next = latch_dispatch_in_place(m, waiting);
        if (next != nullptr) next_token = waiting;
      }
      // The completion path, on this thread (Scheduler::core_step): retire the subtask, release
      // its consumers, and start one that fits here on this core (its dispatch word is then set
      // when the loop looks), or stage one behind the dispatch just latched.
      step_scheduler(scheduler_thread, core);
      // The step placed a task on this core (an early hand-off): the word holds its token,
      // latched for this core (Scheduler::own_core_latches_handoff), and nobody else writes it
      // until the ACK. A latched word with this core's finished token is not new (a take-back
      // leaves the running token there), and a word another step wrote is unlatched.
      if (next == nullptr) {
        const std::uint32_t own = m.dispatch.load(std::memory_order_relaxed);
        if ((own & kLatchedBit) != 0 && (own & kTokenMask) != token) {
          next_token = own & kTokenMask;
          next = &take_own_dispatch(m, next_token);
          after_latch();
        }
      }
    }
    // MIX pre-staging waits for moments when a whole cluster is stageable, which steps taken only
    // at latches and finishes can miss: there the scheduler thread keeps looking, as before --
    // while a MIX task or block waits (a bell per finish otherwise wakes parked threads for
    // nothing).
    if (scheduler.mix_may_wait()) scheduler_bell_.notify_all();
    // A task latched for this core (an early hand-off, or a pending dispatch latched after the
    // FIN) runs next: the flag stays set through it until the step after its FIN. end_run waits
    // no longer for that: a scheduler thread stops only once its cores are idle, which this one
    // is not before that FIN (and an abandoned run does not wait for the flags). Saves the
    // clear's locked store and the look at stop_requested_ on every hand-off.
    if (next != nullptr) continue;
    // seq_cst store, then load: pairs with end_run's store of stop_requested_ and its loads of
    // the flags: either it sees this core done, or this core sees the stop and rings.
    stepping.store(0, std::memory_order_seq_cst);
    if (stop_requested_.load(std::memory_order_seq_cst)) orchestrator_bell_.notify_all();
  }
}

void ThreadsPlatform::scheduler_main(int thread) {
  std::uint32_t seen = 0;
  const std::uint32_t spin_limit = engine_.config().spin_before_park;
  while (!shutdown_.load(std::memory_order_acquire)) {
    // Wait for a run to start.
    while (run_generation_.load(std::memory_order_acquire) == seen) {
      const std::uint32_t key = scheduler_bell_.prepare_wait();
      if (run_generation_.load(std::memory_order_seq_cst) != seen ||
          shutdown_.load(std::memory_order_seq_cst)) {
        scheduler_bell_.cancel_wait();
        break;
      }
      scheduler_bell_.wait(key, kParkTimeoutNs);
    }
    if (shutdown_.load(std::memory_order_acquire)) return;
    seen = run_generation_.load(std::memory_order_acquire);
    Backoff backoff(spin_limit);
    // Idle is read under the gate (other threads step this scheduler thread too): a held gate
    // means someone is stepping, so not idle yet; its holder rings the bell when it lets go.
    auto stopping = [&](const StepOutcome& o) {
      return stop_requested_.load(std::memory_order_seq_cst) &&
             ((o.stepped && o.idle) || abandon_run_.load(std::memory_order_seq_cst));
    };
    // Counted awake only with its CPU noted: the CPU is noted before the count goes up and
    // forgotten after it goes down. awake_scheduler_runs_elsewhere takes -1 for "elsewhere", so a
    // thread preempted between a count and a note on the orchestrator's CPU was left new work it
    // could not step. The count's seq_cst RMW publishes the note to the orchestrator's
    // acquiring read of the count.
    std::atomic<int>& my_cpu = scheduler_cpus_[static_cast<std::size_t>(thread)].cpu;
    auto note_cpu = [&] {
      const int cpu = sched_getcpu();
      if (my_cpu.load(std::memory_order_relaxed) != cpu)
        my_cpu.store(cpu, std::memory_order_relaxed);
    };
    auto count_awake = [&] {
      note_cpu();
      awake_schedulers_.fetch_add(1, std::memory_order_seq_cst);
    };
    auto count_asleep = [&] {
      awake_schedulers_.fetch_sub(1, std::memory_order_seq_cst);
      my_cpu.store(-1, std::memory_order_relaxed);
    };
    count_awake();
    for (;;) {
      note_cpu();
      const StepOutcome outcome = step_scheduler(thread);
      if (outcome.progress) {
        backoff.reset();
        continue;
      }
      if (stopping(outcome)) break;
      if (!backoff.idle_and_should_park()) continue;
      // Park. While parked this thread does not count as awake, so new work wakes it.
      count_asleep();
      const std::uint32_t key = scheduler_bell_.prepare_wait();
      const StepOutcome last_look = step_scheduler(thread);
      const bool stop = !last_look.progress && stopping(last_look);
      if (stop || last_look.progress) {
        scheduler_bell_.cancel_wait();
        count_awake();
        if (stop) break;
        backoff.reset();
        continue;
      }
      scheduler_bell_.wait(key, kParkTimeoutNs);
      count_awake();
      backoff.reset();
    }
    count_asleep();
    stopped_schedulers_.fetch_add(1, std::memory_order_acq_rel);
    orchestrator_bell_.notify_all();
  }
}

}  // namespace tmr::detail
