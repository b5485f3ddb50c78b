// The scheduler: per thread, a set of clusters it alone dispatches to. One step polls its cores'
// status words (completion, via the ACK/FIN decision table of core_slots.hpp), places ready tasks
// in the order and on the units the dispatch policy (dispatch/) chooses, and flushes its local
// ready buffers. Platforms call step() from threads or from an event loop; step() is pure
// mechanism over the slot table, the ready queues and the cohort.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

#include "core/completion_log.hpp"
#include "core/dispatch/dispatch_policy.hpp"
#include "core/mailbox.hpp"
#include "core/mpmc_queue.hpp"
#include "core/scheduler/cohort.hpp"
#include "core/scheduler/core_slots.hpp"
#include "core/scheduler/ready_queues.hpp"
#include "core/seams.hpp"
#include "core/task.hpp"
#include "core/topology.hpp"
#include "tmr/config.hpp"
#include "tmr/trace.hpp"

namespace tmr::detail {

class Scheduler {
 public:
  // `mailboxes` holds topology.core_count() entries and outlives the scheduler.
  Scheduler(const Topology& topology, std::span<Mailbox> mailboxes, const DualSlotPolicy& dual_slot,
            std::size_t queue_capacity, const RunClock& clock, Waker& waker, CompletionSink& sink);

  // Forgets running work, queued tasks and statistics between runs. Only while no thread steps.
  void reset();

  // One iteration for scheduler thread `thread`. Returns true when anything happened.
  bool step(int thread);
  // The same step, taken by core `core` (one of `thread`'s) right after it wrote FIN: the first
  // ready task that fits the core, if the core is then idle, is placed on it (an early hand-off:
  // a successor starts where its producer ran, without another thread). A platform whose cores
  // are threads reaches it through core_step, when the fast path needs the whole thread's view;
  // step() alone models a chip whose cores do not schedule.
  // Callers serialise all steps of one `thread` (step and step_after_finish alike).
  bool step_after_finish(int thread, int core);
  // The threads platform's worker fast path, taken by core `core` (one of `thread`'s) right after
  // its FIN (and, when a pending dispatch was already waiting, after latching it): it reads only
  // this core's status word, retires what finished, releases the consumers, and then, if the core
  // is idle, starts the newest ready task of its shape here (the consumer it just released, else
  // one pop of the global queue: an early hand-off), or, if the core is running a latched
  // subtask, stages one into its own pending slot as stage_after_latch does. Anything that needs
  // the whole thread's view falls back to step_after_finish under the same serialisation: MIX
  // work queued or staged, a cohort gathering, an abort, an SPMD or start-together task, or ready
  // work left over while another core of this thread is idle. O(1) otherwise: the full step polls
  // every core of the thread and runs every placement pass, which per task was most of the
  // worker's time on a small host (docs/performance.md, "Run side, session 5").
  // Callers serialise all steps of one `thread` (step and step_after_finish alike).
  bool core_step(int thread, int core);
  // A small step taken by core `core` (one of `thread`'s) right after it latched a dispatch, for
  // platforms whose cores step the scheduler themselves (threads): it reads only this core's
  // status (the ACK) and, when the policy pre-stages this core's shape, no idle core of that
  // type on this thread or elsewhere could take it, and a task of that shape is queued, stages
  // one into this core's pending slot. O(1): a full step polls every core of the thread and runs
  // every pass, which per latch made the default policy cost 1.3-1.7x `aic` on threads.
  // MIX work is not placed here (it needs a whole cluster: a full step does it): when a MIX task
  // may wait (mix_may_wait, looked at again under the gate: the caller's look before it can be
  // stale), this is the full step, which stages no single-core work while one waits.
  // Serialised with the thread's other steps like step(). Returns true when it staged a task
  // (the full step: when it made progress).
  bool stage_after_latch(int thread, int core);
  // For platforms whose cores are threads that step for themselves (threads): AIC/AIV tasks are
  // pre-staged only by stage_after_latch, into the latching core's own pending slot, never by a
  // step into other cores' slots. Staging into another core's slot binds the task to a thread
  // that may not hold a CPU (72 core threads on a 2-core host), where the queue would hand it to
  // whichever core frees first; it measured up to 2x `aic` on BM_Throughput. MIX staging (a whole
  // cluster at once) is unchanged. Only while no thread steps.
  void stage_single_core_at_latch_only(bool on) { single_core_staging_at_latch_ = on; }
  // For platforms whose cores take their next task themselves after each FIN (core_step): a
  // single-core task made ready by the orchestrator while every core that could run it is busy
  // only goes on the queue, without waking or stepping a scheduler thread: the next core of its
  // type to finish pops it. (Waking or stepping there cost the orchestrator a full step per
  // task, a quarter of its time on the peers' independent graph.) Only while no thread steps.
  void cores_take_queued_work(bool on) { cores_take_queued_work_ = on; }
  // For platforms whose core threads call core_step and stage_after_latch for themselves
  // (threads): a dispatch those steps write into the calling core's own slots is published
  // with a release store and no doorbell (the core is awake, and it reads its dispatch word
  // next). Per task that was a seq_cst store (a full barrier behind the payload's stores) and
  // two virtual calls to learn that the core had not parked. A platform that models a chip
  // (sim) keeps the doorbell: there it is the core's pick-up. Only while no thread steps.
  void own_core_needs_no_doorbell(bool on) { own_core_needs_no_doorbell_ = on; }
  // For platforms whose core threads take their own steps (threads), with
  // own_core_needs_no_doorbell: a subtask that a core's own step places in that core's running
  // slot (the early hand-off) is published already latched (token | kLatchedBit). Nobody else
  // writes that word while it is latched (take-backs compare-exchange unlatched words only), so
  // the core, which knows its step placed it, copies the payload and ACKs without the
  // compare-exchange and the reload of the word that a dispatch from another thread needs
  // (latch_dispatch). So is a single-core subtask such a step stages into the core's own pending
  // slot (stage_into_own_pending): nothing takes those back, and the core takes it after its FIN
  // of the running one (its token differs from the finished one's). Pending parts of a MIX block
  // stay unlatched: cancel_block may take them back, racing the core's latch. Only while no
  // thread steps.
  void own_core_latches_handoff(bool on) { own_core_latches_handoff_ = on; }
  // For platforms whose core threads take their own steps and may outnumber the host's CPUs
  // (threads), with own_core_latches_handoff: a core whose completion step finds nothing to run
  // takes back a single-core task placed on another idle core of its thread that has not
  // latched it yet, and runs it itself (take_back_unlatched). That core's thread had no CPU
  // since the placement (on a 2-CPU host it waits behind this one: the stencil's rows ran on
  // the two workers alternately, never at once, each waiting for the other to go idle;
  // docs/performance.md, "Run side, session 23"). Only while no thread steps.
  void cores_take_back_unlatched(bool on) { take_back_unlatched_ = on; }
  // For platforms that serialise every step of a thread under a gate of their own (threads): a
  // completed task is not counted through the sink (CompletionSink::kernel_task_completed_on);
  // the platform counts a step's completions (counters(thread).tasks_completed before and after)
  // with the locked instruction that releases its gate, one RMW fewer per task. Only while no
  // thread steps.
  void platform_counts_completions(bool on) { platform_counts_completions_ = on; }
  // For platforms that serialise every step of every scheduler thread under one gate (threads
  // with one scheduler thread): no two pops of the ready queues overlap, so a pop moves the
  // queue's head with a store instead of a compare-exchange (MpmcQueue::try_pop_serial), one
  // locked instruction fewer for every task a step pops (every task of the peers' independent
  // graph). Pushes (the orchestrator's, outside any gate) still race the pop and each other.
  // Only while no thread steps.
  void pops_serialised(bool on) { pops_serialised_ = on; }
  // For platforms that keep push_ready_global (OrchestratorHost::push_ready) to the
  // orchestrator's thread, one at a time (threads): its tasks go to lanes it alone pushes to
  // (ReadyQueues::push_lane), whose tail is a store, not a compare-exchange: one locked
  // instruction fewer on the orchestrator for every task it makes ready (every task of the
  // peers' independent graph). Pops look at the lanes first. Only while no thread steps.
  void orchestrator_lanes(bool on) {
    orchestrator_lanes_ = on;
    ready_.use_lanes(on);
  }
  bool orchestrator_lanes() const { return orchestrator_lanes_; }
  bool pops_serialised() const { return pops_serialised_; }
  // For platforms whose runtime threads outnumber the host's CPUs (threads on a small host), with
  // one scheduler thread: a core's completion step (core_step) places ready work left after its
  // own next task on an idle core only while a CPU is free for that core: fewer than `cpus` of
  // its busy cores plus `others_on_cpu` (the platform's count of other runtime threads holding a
  // CPU, e.g. a submitting orchestrator). Otherwise the work goes on the queue without a bell,
  // where the finishing core pops it after its next FIN (or the orchestrator's next step places
  // it): the idle core could start it only by taking a CPU from a thread that is running, which
  // on a 2-CPU host measured a context switch and ~4 us dispatch -> start per such hand-off
  // (docs/performance.md, "Run side, session 14"). Full steps (the scheduler thread's, which
  // re-checks at least every 50 ms while parked, and the orchestrator's help and submits) are
  // unchanged and place kept work on an idle core, so it waits at most for the next of these or
  // the finishing core's FIN.
  // `cpus` 0 (the default) switches it off. Only while no thread steps.
  void limit_handoffs_to_cpus(int cpus, const std::atomic<int>* others_on_cpu) {
    handoff_cpus_ = cpus;
    others_on_cpu_ = others_on_cpu;
  }
  // With limit_handoffs_to_cpus, for platforms whose core threads time their own kernels
  // (threads): core `core`'s recent kernels are short, too short to gain from a second core.
  // While they are, its completion step places no leftovers on an idle core even with a CPU free
  // for it: they go on the queue, as with no CPU free, and this core pops them after its next
  // FIN. Both cores of a thread step under one gate, so kernels shorter than a step run no faster
  // on two cores, and there each hand-off crosses CPUs: on the peers' stencil (empty kernels, 2
  // CPUs) a run whose core threads the OS had put on different CPUs took ~1 us a task against
  // ~0.25 us on one (docs/performance.md, "Session 55, branch mode55"). Written by that core's
  // own thread (a relaxed store when it changes), read by its own steps. Off (false) by default.
  void note_short_kernels(int core, bool short_kernels) {
    short_kernels_[static_cast<std::size_t>(core)].store(short_kernels, std::memory_order_relaxed);
  }
  bool short_kernels(int core) const {
    return short_kernels_[static_cast<std::size_t>(core)].load(std::memory_order_relaxed);
  }
  // Whether a step after a latch of a core of `type` could stage anything into its pending slot
  // without a MIX task waiting: the policy stages the core's shape and such a task is queued.
  // Two relaxed looks, no write.
  [[gnu::always_inline]] bool single_may_wait(CoreType type) const {
    return type == CoreType::aic ? stages_aic_ && ready_.may_have(TaskShape::aic)
                                 : stages_aiv_ && ready_.may_have(TaskShape::aiv);
  }
  // single_may_wait, and no scheduler thread reports an idle core of `type` (an idle core takes
  // a queued task before a pending slot does): whether stage_after_latch is worth taking the gate
  // for. Relaxed looks only, so a core of a mostly idle chip (72 cores on a small host) pays
  // nothing. The idle count first: one load, where the queues' looks are ~15 instructions (a
  // chain's every latch finds the other core idle).
  bool may_stage_at_latch(int thread, CoreType type) const {
    const int kind = type == CoreType::aic ? 0 : 1;
    return threads_[thread].free_cores[kind].load(std::memory_order_relaxed) == 0 &&
           single_may_wait(type) &&
           !others_report_room(thread, type == CoreType::aic ? TaskShape::aic : TaskShape::aiv);
  }
  // For a sink whose aborting() is this flag's acquire load (Engine): the steps read it directly.
  // Every worker's completion step (core_step) looks once per task, where the sink's virtual
  // call was ~8 instructions. Only while no thread steps.
  void read_abort_flag(const std::atomic<bool>* flag) { abort_flag_ = flag; }
  // Every completed task's id goes to `logs` (one log per core, CompletionLogs), for the
  // orchestrator. Only while no thread steps.
  void write_completions_to(CompletionLogs* logs) { completion_logs_ = logs; }
  bool limits_handoffs() const { return handoff_cpus_ != 0; }
  // Whether `thread` reports an idle core (relaxed looks): a step of it could place new work.
  bool has_idle_core(int thread) const {
    return threads_[thread].free_cores[0].load(std::memory_order_relaxed) > 0 ||
           threads_[thread].free_cores[1].load(std::memory_order_relaxed) > 0;
  }
  // How many cores of `type` `thread` reports idle (a relaxed look; for tests and diagnostics).
  int idle_cores(int thread, CoreType type) const {
    return threads_[thread].free_cores[type == CoreType::aic ? 0 : 1].load(
        std::memory_order_relaxed);
  }
  // True when none of the thread's cores holds a running or pending subtask.
  bool idle(int thread) const { return threads_[thread].busy_cores == 0; }
  int thread_count() const { return static_cast<int>(threads_.size()); }

  // Cycles (cycle_clock) spent in steps that made progress.
  std::uint64_t busy_cycles(int thread) const { return threads_[thread].busy_cycles; }
  std::uint64_t subtasks_done(int thread) const { return threads_[thread].subtasks_done; }

  // Work a step did, for platforms that charge modelled costs (and for statistics).
  struct StepCounters {
    std::uint64_t polls = 0;        // status words read
    std::uint64_t completions = 0;  // subtasks seen finished
    std::uint64_t tasks_completed = 0;
    std::uint64_t dispatches = 0;            // dispatch words written (pending slots included)
    std::uint64_t pops = 0;                  // ready tasks taken from a queue
    std::uint64_t pushes = 0;                // ready tasks put on a queue
    std::uint64_t edges = 0;                 // consumers released at completion
    std::uint64_t staged[kShapeCount] = {};  // subtasks dispatched into a pending slot, by shape
    std::uint64_t taken_back = 0;  // staged MIX blocks taken back to run on an idle cluster
    std::uint64_t unlatched_taken_back = 0;  // take_back_unlatched: run by the finishing core
    // core_step's single-task hand-off: a task made ready by the finishing core's completion,
    // alone, dispatched straight to that core (handoff_single)
    std::uint64_t single_handoffs = 0;
  };
  const StepCounters& counters(int thread) const { return threads_[thread].counters; }
  // Trace records gathered by each thread (when recording).
  std::vector<SubtaskEvent>& subtask_events(int thread) { return threads_[thread].subtask_events; }
  // Clusters the thread held for a waiting MIX task (when recording).
  const std::vector<MixReservationEvent>& mix_reservations(int thread) const {
    return threads_[thread].reservations;
  }
  // The cluster `thread` holds for a waiting MIX task, or -1 (for tests and diagnostics).
  int reserved_cluster(int thread) const { return threads_[thread].reserved_cluster; }
  struct Completion {
    std::uint64_t sequence;
    std::uint64_t ready_ns;
    std::uint64_t complete_ns;
  };
  std::vector<Completion>& completions(int thread) { return threads_[thread].completions; }

  // A hint for platforms whose cores step the scheduler themselves (threads): whether a MIX task
  // or a block taken back may be waiting for cores, with a policy that pre-stages MIX. Two
  // relaxed looks, no write. Only then is a step after a latch or a bell after a finish worth
  // it; a task queued after a false answer is placed by the step of whoever queued it
  // (flush_local rings the bell, the orchestrator helps), so a false answer loses no work.
  bool mix_may_wait() const {
    return policy_.stages_mix() &&
           (ready_.may_have(TaskShape::mix) || returned_count_.load(std::memory_order_relaxed) > 0);
  }

  // Makes a task ready from the orchestrator thread (no producers left).
  void push_ready_global(TaskSlot* task);

  // Read-only views for tests and diagnostics.
  const CoreSlot& core_slot(int core) const { return cores_[static_cast<std::size_t>(core)]; }

 private:
  static constexpr int kLocalCapacity = 64;
  // core_step times one call in this many and counts it this many times in busy_cycles: two
  // cycle-counter reads per task were a visible share of a worker's time on tiny tasks, and
  // busy_cycles is a statistic (RunStats::scheduler_us), not a decision input.
  static constexpr std::uint32_t kCoreStepSample = 16;
  // core_step after its looks at MIX work, cohorts and aborts; `Timed`: the sampled call.
  template <bool Timed>
  [[gnu::always_inline]] bool core_step_body(int thread, int core);
  [[gnu::noinline]] bool timed_core_step(int thread, int core);
  // A MIX block whose every part sits in a pending slot of one cluster of this thread, none
  // latched yet: it can still be taken back if a cluster that can run it now becomes idle.
  struct StagedBlock {
    TaskSlot* task;
    std::uint32_t block;
    int core_count;
    int cores[3];
    std::uint32_t tokens[3];
  };
  // A block taken back from pending slots, waiting to be placed again (any thread).
  struct ReturnedBlock {
    TaskSlot* task;
    std::uint32_t block;
  };
  // A running mean of one kernel's duration as this thread saw it (dispatch or move-up to FIN
  // seen), for placement that prefers the cluster expected to free first.
  struct KernelEstimate {
    KernelId kernel = kNoKernel;
    std::uint64_t mean_ns = 0;
  };
  static constexpr int kEstimateSlots = 64;  // direct-mapped by kernel id; a clash replaces
  // A thread's local ready stacks, one per shape; their counts live in ThreadState's first line.
  struct LocalReady {
    TaskSlot* tasks[kLocalCapacity];
  };
  // The fields every step writes come first, on as few lines as possible: the cores of a thread
  // take its steps in turn (core_step), and each line a step writes moves to the next stepper's
  // CPU. Spread over the struct (the stacks' counts after their 512-byte arrays), a core step
  // wrote about seven lines; now three (docs/performance.md, "Run side, session 12").
  struct alignas(64) ThreadState {
    int local_count[kShapeCount] = {};  // tasks in local[s]
    int busy_cores = 0;
    bool mix_waiting = false;    // this step left a MIX task unplaced (see dispatch_ready)
    bool room_appeared = false;  // a core of this thread became idle during this step
    int handoff_core = -1;       // step_after_finish: the finishing core, until a task takes it
    // core_step: the finishing core whose idle transition is held back while it looks for its
    // next task (a task found there keeps it busy without publishing idle and busy again).
    int deferred_idle_core = -1;
    // core_step / stage_after_latch: the core whose own thread takes this step (-1 otherwise).
    int self_core = -1;
    int index = 0;                 // this thread's index in threads_ (fixed)
    std::uint32_t core_steps = 0;  // core_step calls: one in kCoreStepSample is timed
    std::uint64_t busy_cycles = 0;
    std::uint64_t subtasks_done = 0;
    std::uint64_t cohort_done_generation = 0;
    std::vector<StagedBlock> staged_mix;
    StepCounters counters;
    LocalReady local[kShapeCount];
    std::vector<int> clusters;  // global cluster indices
    std::vector<int> cores;     // global core indices, AIC first
    KernelEstimate estimates[kEstimateSlots];
    std::vector<SubtaskEvent> subtask_events;
    std::vector<Completion> completions;
    // "Reserved for MIX" (docs/design.md). mix_left: this step's MIX passes left a MIX task (or a
    // returned block) unplaced, of mask mix_left_mask; mix_passed_over: the previous full step
    // did too; reserved_cluster / reserved_mask: the cores held for it (-1: none).
    bool mix_left = false;
    bool mix_passed_over = false;
    std::uint8_t mix_left_mask = 0;
    std::uint8_t reserved_mask = 0;
    int reserved_cluster = -1;
    std::vector<MixReservationEvent> reservations;  // when recording; the last may be open
    // Idle AIC / AIV cores of this thread not held for a MIX task (single-core work may go
    // there), read by other threads deciding whether to wake it
    // (the orchestrator, for every task it makes ready). On a line of its own, written only on
    // idle transitions: next to the counters a core updates per task, every read was a miss.
    alignas(64) std::atomic<int> free_cores[2] = {0, 0};
  };

  // ---- completion
  // With `idle_deferred`: a core that became idle is not published as idle (core_became_idle)
  // but reported there; the caller publishes it unless it gives the core a task at once.
  // poll_core, finish_subtask and stage_into_own_pending are always inlined (scheduler.cpp): a
  // worker's completion step (core_step) runs each once per task, and their calls' register
  // saves and restores were ~60 of its instructions a task on the peers' independent graph.
  // They take the thread's state, not its index: inlined into one step, `threads_[thread]` was
  // computed again after every atomic access (a load of the vector and a multiply each time).
  bool poll_core(ThreadState& me, int core, bool* idle_deferred = nullptr);
  void finish_subtask(ThreadState& me, int core, const Subtask& subtask);
  // `core`: where the task's last subtask finished (its completion is counted there). Inlined
  // into finish_subtask: a worker's completion step runs it once per task, and its call (six
  // saved registers, the frame, the arguments) was ~20 of the step's instructions.
  void complete_task(ThreadState& me, int core, TaskSlot* task);
  // complete_task for core_step's single-task hand-off: the same, except that the newest
  // consumer made ready is returned (or null), not pushed on the local stack.
  [[gnu::always_inline]] inline TaskSlot* complete_holding_newest(ThreadState& me, int core,
                                                                  TaskSlot* task);
  // Dispatches `task` (ready, one block, of `core`'s type) into `core`'s running slot, which its
  // own step just emptied without publishing it idle: an early hand-off.
  [[gnu::always_inline]] inline void handoff_single(ThreadState& me, int core, TaskSlot* task,
                                                    CoreType type);
  // Not for a core whose idle transition core_step deferred (dispatch_subtask_inline skips it).
  void core_became_busy(int thread, int core);
  void core_became_idle(int thread, int core);

  // ---- expected ends (placement of staged MIX blocks)
  // Kept only with MIX pre-staging once a MIX task was made ready in this run: a clock read per
  // start and finish is not paid by runs that cannot use it.
  bool timing() const { return policy_.stages_mix() && mix_seen_.load(std::memory_order_relaxed); }
  static KernelId kernel_of(const Subtask& s) { return s.task->record->kernels[s.slot]; }
  std::uint64_t estimate_ns(int thread, KernelId kernel) const;
  void learn(int thread, KernelId kernel, std::uint64_t ns);
  // `core`'s running subtask changed at `now` (started, or nothing runs any more).
  void running_changed(int thread, int core, std::uint64_t now);

  // core_step's leftovers of single-core `shape` while this thread reports an idle core of its
  // type: the newest local tasks go straight to idle units of this thread (find_unit, as the
  // full step's idle pass places them, without its polls of every core and its other passes:
  // about 1,000 instructions per task that took that route on the peers' stencil). False when
  // the newest one is SPMD or start-together (the full step places it, with the policy). Once
  // it placed one, the rest of that shape goes on the queue as the idle pass leaves it (a bell
  // only when another scheduler thread reports room). Sets *progress when it dispatched.
  bool place_left_on_idle(int thread, TaskShape shape, bool* progress);
  // stage_after_latch's decision and dispatch for core `core` (running, latched): stages one
  // task of its shape into its pending slot when the policy and the queues allow. True when it
  // staged one. `looked`: the caller's step already found the core stageable, no cohort
  // gathering and no abort (core_step).
  bool stage_into_own_pending(int thread, int core, bool looked = false);

  // ---- ready queues
  // Inlined: once per completion and once per hand-off on the workers' path, where the calls
  // were a visible share of the instructions.
  [[gnu::always_inline]] inline void make_ready(ThreadState& me, TaskSlot* task);
  [[gnu::always_inline]] inline bool pop_ready(ThreadState& me, TaskShape shape, TaskSlot** task);
  void push_back_global(TaskSlot* task);
  void flush_local(int thread);
  // True when another thread reports idle cores that could run `task` (thread -1: any thread).
  bool others_have_room(int thread, TaskShape shape);
  // The same from relaxed loads, for a decision that publishes nothing (stage_after_latch).
  // Inline: asked after every latch (may_stage_at_latch) and every staging of a worker; out of
  // line it was ~20 instructions of a task on the peers' independent graph.
  [[gnu::always_inline]] bool others_report_room(int thread, TaskShape shape) const {
    const int type = shape == TaskShape::aic ? 0 : 1;
    const ThreadState* const self = &threads_[static_cast<std::size_t>(thread)];
    for (const ThreadState& other : threads_) {  // by address: no division for the size
      if (&other != self && other.free_cores[type].load(std::memory_order_relaxed) > 0) return true;
    }
    return false;
  }
  // True when a cluster of another thread has every core of `mask` idle (exact, per cluster).
  bool others_have_mix_room(int thread, std::uint8_t mask);
  // Publishes cluster `cluster`'s idle cores (idle_mask_) after a running slot or a cohort
  // reservation changed.
  void refresh_idle_mask(int cluster);

  // cores_take_back_unlatched: from another idle core of `thread` onto `core` (idle, after its
  // FIN). True when one was taken back and placed on `core`.
  bool take_back_unlatched(int thread, int core);

  // ---- stranding (issue 12): take staged MIX blocks back when a cluster could run them now
  bool take_back_stranded(int thread);
  // Cancels every part of `block` (all or none). True when all were taken back.
  bool cancel_block(int thread, const StagedBlock& block);
  // Places blocks taken back earlier (before fresh MIX tasks: they are older).
  // `*left` is set when a returned block found no room in this pass.
  bool place_returned(int thread, const PlacementPass& pass, bool* left);

  // ---- dispatch mechanism (the policy decides order and units)
  bool dispatch_ready(int thread);
  bool run_pass(int thread, const PlacementPass& pass);
  PlacementView view(int thread) const;
  int find_unit(int thread, const TaskSlot& task, SlotTarget target) const {
    return DispatchPolicy::find_unit(view(thread), task.shape, task.active_mask, target);
  }
  // find_unit, except that an early hand-off's core goes first when it fits the task.
  int handoff_or_find_unit(int thread, const TaskSlot& task, SlotTarget target) const;
  // How one subtask's dispatch word is released: now, or later by the cohort.
  enum class Release : std::uint8_t { now, by_cohort };
  void dispatch_block(int thread, int unit, TaskSlot* task, std::uint32_t block, SlotTarget target,
                      Release release = Release::now);
  void dispatch_subtask(int thread, int core, TaskSlot* task, std::uint8_t slot,
                        std::uint32_t block, std::uint32_t sub_block, SlotTarget target,
                        Release release);
  // dispatch_subtask's body, inlined where a worker's own step dispatches to its own core once
  // per task (core_step's hand-off, stage_into_own_pending); other callers keep the call.
  // `single_core`: the task's shape is AIC or AIV (those callers know it: no load of the shape).
  void dispatch_subtask_inline(ThreadState& me, int core, TaskSlot* task, std::uint8_t slot,
                               std::uint32_t block, std::uint32_t sub_block, SlotTarget target,
                               Release release, bool single_core);
  // `own`: the stepping core's own slot (see own_core_needs_no_doorbell); `latched`: its running
  // slot, or its pending slot for a single-core task, published latched (see
  // own_core_latches_handoff). The own cases are one store, inline:
  // a worker's step publishes once per task, and the call was ~13 of its instructions.
  [[gnu::always_inline]] void publish(Mailbox& mailbox, std::uint32_t token, bool own = false,
                                      bool latched = false) {
    if (own) {
      // The calling thread is this core's: it is not parked, and it loads the word itself next.
      // Latched: it takes this dispatch itself (its running slot), claimed for it already.
      mailbox.dispatch.store(latched ? token | kLatchedBit : token, std::memory_order_release);
      return;
    }
    publish_with_doorbell(mailbox, token);
  }
  void publish_with_doorbell(Mailbox& mailbox, std::uint32_t token);

  // ---- reserved for MIX (docs/design.md): a cluster held for a MIX task a step could not place
  // After the MIX passes of a full step: reserves a cluster when this step and the previous one
  // left a MIX task unplaced, releases the reservation when this one left none.
  void update_mix_reservation(int thread);
  void reserve_for_mix(int thread, std::uint8_t mask);
  // `placed`: the MIX task whose block `block` was just placed on the reserved cluster (or null).
  void release_mix_reservation(int thread, const TaskSlot* placed = nullptr,
                               std::uint32_t block = 0);

  // ---- start-together cohorts
  bool cohort_step(int thread);
  void start_cohort(TaskSlot* task);
  // The cores of `unit` a task of `shape` / `mask` uses.
  int unit_cores(int unit, TaskShape shape, std::uint8_t mask, int out[3]) const;

  const RunClock& clock_;
  Waker& waker_;
  CompletionSink& sink_;
  const DispatchPolicy policy_;
  const bool stages_aic_;  // the dual-slot policy pre-stages AIC / AIV tasks
  const bool stages_aiv_;
  bool single_core_staging_at_latch_ = false;
  bool cores_take_queued_work_ = false;
  bool own_core_needs_no_doorbell_ = false;
  bool own_core_latches_handoff_ = false;
  bool take_back_unlatched_ = false;
  bool platform_counts_completions_ = false;
  bool pops_serialised_ = false;
  bool orchestrator_lanes_ = false;
  const std::atomic<bool>* abort_flag_ = nullptr;  // read_abort_flag
  // sink_.aborting(), from the flag when the sink gave it.
  bool aborting() const {
    return abort_flag_ != nullptr ? abort_flag_->load(std::memory_order_acquire) : sink_.aborting();
  }
  int handoff_cpus_ = 0;  // limit_handoffs_to_cpus
  const std::atomic<int>* others_on_cpu_ = nullptr;
  // limit_handoffs_to_cpus: whether a CPU is free for one more of `thread`'s cores now.
  bool cpu_free_for_idle_core(int thread) const {
    return handoff_cpus_ == 0 ||
           threads_[thread].busy_cores + others_on_cpu_->load(std::memory_order_relaxed) <
               handoff_cpus_;
  }
  bool recording_ = false;                     // clock_.recording(), read at reset()
  CompletionLogs* completion_logs_ = nullptr;  // write_completions_to
  std::vector<CoreSlot> cores_;
  std::vector<ClusterCores> clusters_;
  std::vector<ThreadState> threads_;
  ReadyQueues ready_;
  Cohort cohort_;
  MpmcQueue<ReturnedBlock> returned_;
  std::atomic<int> returned_count_{0};   // blocks in returned_, or reserved to be pushed there
  std::atomic<int> takeable_blocks_{0};  // StagedBlocks of all threads (a hint for wake-ups)
  std::atomic<int> mix_reservations_held_{0};         // threads holding a cluster for MIX (a hint)
  std::vector<std::atomic<std::uint8_t>> idle_mask_;  // per cluster: bit s = core of slot s idle
  // Per core (written only by its thread): when its running subtask started and is expected to
  // end (clock_ ns; 0 = idle or unknown).
  std::vector<std::uint64_t> core_since_ns_;
  std::vector<std::uint64_t> core_end_ns_;
  std::vector<std::atomic<bool>> short_kernels_;  // per core: note_short_kernels
  std::atomic<bool> mix_seen_{false};             // a MIX task was made ready in this run
};

}  // namespace tmr::detail
