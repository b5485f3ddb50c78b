// The scheduler's mechanism (scheduler.hpp): polling, completion, ready queues, and carrying out
// what the dispatch policy chooses.
#include "core/scheduler/scheduler.hpp"

#include <algorithm>

#include "core/cycle_clock.hpp"
#include "core/graph/fanout.hpp"
#include "core/scheduler/record_prefetch.hpp"
#include "core/thread_sanitizer.hpp"

namespace tmr::detail {

namespace {
// A task one core of its type runs alone (not MIX, one block, not start-together): on platforms
// whose cores take queued work, such a task queued while no core of its type is idle is popped
// by the next one to finish, with no scheduler step (push_ready_global, flush_local).
bool runs_on_one_core(const TaskSlot& task) {
  return task.shape != TaskShape::mix && task.block_count == 1 && !task.sync_start;
}
}  // namespace

Scheduler::Scheduler(const Topology& topology, std::span<Mailbox> mailboxes,
                     const DualSlotPolicy& dual_slot, std::size_t queue_capacity,
                     const RunClock& clock, Waker& waker, CompletionSink& sink)
    : clock_(clock),
      waker_(waker),
      sink_(sink),
      policy_(dual_slot),
      stages_aic_(dual_slot.aic),
      stages_aiv_(dual_slot.aiv),
      cores_(static_cast<std::size_t>(topology.core_count())),
      clusters_(static_cast<std::size_t>(topology.clusters)),
      threads_(static_cast<std::size_t>(topology.scheduler_threads)),
      ready_(queue_capacity),
      returned_(static_cast<std::size_t>(topology.core_count())),
      idle_mask_(static_cast<std::size_t>(topology.clusters)),
      core_since_ns_(static_cast<std::size_t>(topology.core_count())),
      core_end_ns_(static_cast<std::size_t>(topology.core_count())),
      short_kernels_(static_cast<std::size_t>(topology.core_count())) {
  for (int c = 0; c < topology.clusters; ++c) {
    clusters_[c] =
        ClusterCores{topology.aic_core(c), {topology.aiv_core(c, 0), topology.aiv_core(c, 1)}};
    threads_[topology.scheduler_of_cluster(c)].clusters.push_back(c);
  }
  for (std::size_t t = 0; t < threads_.size(); ++t)
    threads_[t].index = static_cast<int>(t);
  for (ThreadState& t : threads_) {
    for (int c : t.clusters)
      t.cores.push_back(clusters_[c].aic);
    for (int c : t.clusters) {
      t.cores.push_back(clusters_[c].aiv[0]);
      t.cores.push_back(clusters_[c].aiv[1]);
    }
  }
  for (std::size_t core = 0; core < cores_.size(); ++core)
    cores_[core].mailbox = &mailboxes[core];
  reset();
}

void Scheduler::reset() {
  recording_ = clock_.recording();  // fixed for a run: one virtual call per run, not four per task
  for (CoreSlot& c : cores_) {
    c.running = Subtask{};
    c.pending = Subtask{};
    c.awaiting_ack = false;
    c.cohort_reserved = false;
    c.mix_reserved = false;
  }
  mix_reservations_held_.store(0, std::memory_order_relaxed);
  ready_.clear();
  cohort_.reset();
  ReturnedBlock drained{};
  while (returned_.try_pop(drained)) {
  }
  returned_count_.store(0, std::memory_order_relaxed);
  takeable_blocks_.store(0, std::memory_order_relaxed);
  for (std::atomic<std::uint8_t>& mask : idle_mask_)
    mask.store(7, std::memory_order_relaxed);
  std::fill(core_since_ns_.begin(), core_since_ns_.end(), 0);
  std::fill(core_end_ns_.begin(), core_end_ns_.end(), 0);
  mix_seen_.store(false, std::memory_order_relaxed);
  for (ThreadState& t : threads_) {
    for (int& count : t.local_count)
      count = 0;
    t.busy_cores = 0;
    t.deferred_idle_core = -1;
    t.staged_mix.clear();
    t.mix_left = false;
    t.mix_passed_over = false;
    t.reserved_cluster = -1;
    t.reservations.clear();
    t.free_cores[0].store(static_cast<int>(t.clusters.size()), std::memory_order_relaxed);
    t.free_cores[1].store(2 * static_cast<int>(t.clusters.size()), std::memory_order_relaxed);
    t.busy_cycles = 0;
    t.core_steps = 0;
    t.subtasks_done = 0;
    t.cohort_done_generation = cohort_.generation();
    t.subtask_events.clear();
    for (KernelEstimate& e : t.estimates)
      e = KernelEstimate{};  // per run, so sim runs stay deterministic
    t.counters = StepCounters{};
    t.completions.clear();
  }
}

bool Scheduler::step(int thread) {
  ThreadState& me = threads_[thread];
  const std::uint64_t start = cycles();
  bool progress = false;
  me.room_appeared = false;
  for (int core : me.cores) {
    if (cores_[core].running.task == nullptr) continue;
    ++me.counters.polls;
    progress |= poll_core(me, core);
  }
  // A cohort is finished even while aborting: its other threads may already have prepared
  // blocks that only the last thread to hand in releases.
  if (cohort_.waiting_for(me.cohort_done_generation)) {
    // A cohort takes every idle unit it can: a cluster held for MIX would keep it from ever
    // gathering enough.
    release_mix_reservation(thread);
    progress |= cohort_step(thread);
  } else if (aborting()) {
    release_mix_reservation(thread);
  } else {
    progress |= dispatch_ready(thread);
    // Room appeared here and nothing queued took it: a MIX block staged on another thread's
    // busy cluster may run here now. Its owner takes it back (take_back_stranded) once woken.
    if (me.room_appeared && policy_.takes_back_mix() &&
        takeable_blocks_.load(std::memory_order_acquire) > static_cast<int>(me.staged_mix.size()) &&
        DispatchPolicy::count_idle_units(view(thread), TaskShape::mix, 3) +
                DispatchPolicy::count_idle_units(view(thread), TaskShape::mix, 5) +
                DispatchPolicy::count_idle_units(view(thread), TaskShape::mix, 6) >
            0) {
      waker_.notify_schedulers();
    }
  }
  flush_local(thread);
  if (progress) me.busy_cycles += cycles() - start;
  return progress;
}

bool Scheduler::step_after_finish(int thread, int core) {
  ThreadState& me = threads_[thread];
  me.handoff_core = core;
  const bool progress = step(thread);
  me.handoff_core = -1;
  return progress;
}

bool Scheduler::stage_after_latch(int thread, int core) {
  ThreadState& me = threads_[thread];
  CoreSlot& c = cores_[core];
  if (c.running.task == nullptr) return false;
  // The caller looked for MIX work (mix_may_wait) before it took the gate: a MIX task queued
  // since, or popped by another step at that look and put back since, waits now. The full step
  // the caller would then have taken places it first and stages no single-core work while it
  // waits ("Not starved", docs/design.md).
  if (mix_may_wait()) return step(thread);
  const std::uint64_t start = cycles();
  ++me.counters.polls;
  poll_core(me, core);
  me.self_core = core;
  const bool staged = stage_into_own_pending(thread, core);
  me.self_core = -1;
  flush_local(thread);  // completions the poll saw may have made tasks ready
  me.busy_cycles += cycles() - start;
  return staged;
}

[[gnu::always_inline]] inline bool Scheduler::stage_into_own_pending(int thread, int core,
                                                                     bool looked) {
  ThreadState& me = threads_[thread];
  CoreSlot& c = cores_[core];
  const CoreType type = c.mailbox->type;
  const TaskShape shape = type == CoreType::aic ? TaskShape::aic : TaskShape::aiv;
  // As in step(): nothing is placed while a cohort gathers or the run aborts; an idle core of
  // this type here or elsewhere beats a pending slot (the full step places the task there).
  // `looked`: core_step, in this same step, found the core stageable, no cohort gathering and no
  // abort. Those looks again (a virtual call among them) were ~20 instructions of every task on
  // the independent graph.
  if ((!looked && (!c.stageable_for_single() || cohort_.waiting_for(me.cohort_done_generation) ||
                   aborting())) ||
      !single_may_wait(type) ||
      me.free_cores[type == CoreType::aic ? 0 : 1].load(std::memory_order_relaxed) != 0) {
    return false;
  }
  TaskSlot* task = nullptr;
  if (!pop_ready(me, shape, &task)) return false;
  if (!policy_.may_prestage(*task) || others_report_room(thread, shape)) {
    push_back_global(task);
    waker_.notify_schedulers();
    return false;
  }
  // dispatch_block's choice for a single-core shape, made here without its call (as core_step's
  // hand-off): this core is its cluster's AIC core, or an AIV core that runs its own sub-block.
  // On the independent graph every task passes here once (~37 instructions of the call).
  const bool aic = type == CoreType::aic;
  dispatch_subtask_inline(me, core, task, aic ? kSlotAic : kSlotAiv0, task->next_block++,
                          aic ? 0u : static_cast<std::uint32_t>(c.mailbox->sub_block),
                          SlotTarget::pending, Release::now, /*single_core=*/true);
  if (task->next_block < task->block_count) {
    push_back_global(task);  // SPMD: other cores take the remaining blocks
    waker_.notify_schedulers();
  }
  return true;
}

bool Scheduler::core_step(int thread, int core) {
  ThreadState& me = threads_[thread];
  // The caller is `core`'s own thread: dispatches to it need no doorbell (publish).
  struct SelfCore {
    int& slot;
    ~SelfCore() { slot = -1; }
  } self{me.self_core};
  me.self_core = core;
  // MIX work (queued, staged or taken back, or a cluster held for it), a gathering cohort and an
  // abort need the policy's whole view: the full step. MIX work exists only after a MIX task was
  // made ready in this run (mix_seen_, stored before it is queued or kept): one load skips the
  // six looks at it in runs without MIX, such as every single-kernel graph.
  if ((mix_seen_.load(std::memory_order_relaxed) &&
       (ready_.may_have(TaskShape::mix) || me.local_count[static_cast<int>(TaskShape::mix)] != 0 ||
        !me.staged_mix.empty() || returned_count_.load(std::memory_order_relaxed) > 0 ||
        takeable_blocks_.load(std::memory_order_relaxed) > 0 || me.reserved_cluster >= 0)) ||
      cohort_.waiting_for(me.cohort_done_generation) || aborting()) {
    return step_after_finish(thread, core);
  }
  // One call in kCoreStepSample takes the timed copy (out of line): the others pay one counter
  // test, not the sample's branches and its start across the step (~5 instructions a task).
  if (++me.core_steps % kCoreStepSample == 0) [[unlikely]]
    return timed_core_step(thread, core);
  return core_step_body<false>(thread, core);
}

bool Scheduler::timed_core_step(int thread, int core) {
  return core_step_body<true>(thread, core);
}

template <bool Timed>
[[gnu::always_inline]] inline bool Scheduler::core_step_body(int thread, int core) {
  ThreadState& me = threads_[thread];
  const std::uint64_t start = Timed ? cycles() : 0;
  auto account = [&] {
    if constexpr (Timed) me.busy_cycles += kCoreStepSample * (cycles() - start);
  };
  CoreSlot& c = cores_[core];
  me.room_appeared = false;
  bool progress = false;
  // A core that finished and takes its next task at once never shows as idle: its idle and busy
  // transitions (two RMWs on free_cores, which the orchestrator reads for every task it makes
  // ready) are skipped. Only when the first look finds nothing is it published as idle, and the
  // queue looked at again after that RMW, as push_ready_global's pairing requires.
  bool idle_deferred = false;
  const CoreType type = c.mailbox->type;
  const TaskShape shape = type == CoreType::aic ? TaskShape::aic : TaskShape::aiv;
  if (c.running.task != nullptr) {
    ++me.counters.polls;
    // The single-task hand-off (FIN, nothing pending, the task's last subtask, nothing recorded
    // or timed): the completion keeps the newest consumer it makes ready out of the local stack,
    // and when that one is the only ready task here and fits this core, it is dispatched here at
    // once (handoff_single). Anything else takes poll_core's generic way.
    // The same completion serves a core that latched its pending subtask before this step (the
    // threads core loop does, before it steps): the running one finished, the pending one runs.
    TaskSlot* const finished = c.running.task;
    const std::uint32_t status = c.mailbox->status.load(std::memory_order_acquire);
    const bool fin_alone = c.pending.task == nullptr && status == (c.running.token | kFinBit);
    const bool moved_up = c.pending.task != nullptr && status == c.pending.token;
    if ((fin_alone || moved_up) && !recording_ && !timing() &&
        finished->subtasks_remaining.load(std::memory_order_acquire) == 1) {
      if (fin_alone) {
        clear_subtask(c.running);
      } else {
        c.running = c.pending;
        clear_subtask(c.pending);
      }
      c.awaiting_ack = false;
      ++me.subtasks_done;
      ++me.counters.completions;
      TaskSlot* const held = complete_holding_newest(me, core, finished);
      if (held != nullptr) {
        if (fin_alone && (me.local_count[0] | me.local_count[1] | me.local_count[2]) == 0 &&
            held->shape == shape && held->block_count == 1 && !held->sync_start &&
            !c.cohort_reserved) {
          handoff_single(me, core, held, type);
          if constexpr (Timed) account();
          return true;
        }
        make_ready(me, held);  // the generic way from here, as if the completion had pushed it
      }
      idle_deferred = fin_alone;
      progress = true;
    } else {
      progress = poll_core(me, core, &idle_deferred);
    }
  }
  bool full = me.local_count[static_cast<int>(TaskShape::mix)] != 0;  // the completion made one
  if (!full && c.idle()) {
    TaskSlot* task = nullptr;
    bool found = pop_ready(me, shape, &task);
    if (!found && idle_deferred) {
      idle_deferred = false;
      core_became_idle(thread, core);
      found = pop_ready(me, shape, &task);
    }
    if (found) {
      if (task->block_count > 1 || task->sync_start) {
        // SPMD and start-together tasks are placed by the policy (shares, cohorts). The task
        // goes back on top of the local stack (room: the pop just took one, or it was empty),
        // where the full step's pop finds it first.
        const int s = static_cast<int>(shape);
        me.local[s].tasks[me.local_count[s]++] = task;
        full = true;
      } else {
        me.handoff_core = core;
        if (idle_deferred) me.deferred_idle_core = core;  // core_became_busy skips it
        // dispatch_block's choice for a single-core shape, made here without its call (a tenth
        // of the hand-off's instructions went to it): this core is its cluster's AIC core, or
        // an AIV core that runs its own sub-block.
        const bool aic = type == CoreType::aic;
        dispatch_subtask_inline(me, core, task, aic ? kSlotAic : kSlotAiv0, task->next_block++,
                                aic ? 0u : static_cast<std::uint32_t>(c.mailbox->sub_block),
                                SlotTarget::idle, Release::now, /*single_core=*/true);
        me.handoff_core = -1;
        me.deferred_idle_core = -1;
        progress = true;
      }
    } else if (take_back_unlatched_ && take_back_unlatched(thread, core)) {
      progress = true;
    }
  } else if (!full && single_core_staging_at_latch_ && c.stageable()) {
    progress |= stage_into_own_pending(thread, core, /*looked=*/true);
  }
  // Still idle (nothing taken, or the task went back for the full step): publish it now.
  if (idle_deferred && c.idle()) core_became_idle(thread, core);
  // Ready work left while another core of this thread is idle: it is placed there now (the
  // queue alone would leave it until that core's thread looks). A single-block task of a
  // single-core shape goes straight to an idle unit (place_left_on_idle); MIX work, SPMD and
  // start-together tasks need the policy's whole view: the full step. After most core steps the
  // completion left nothing in the local stacks: one look at the counts skips this and the flush.
  // Spelled out: the loop over the counts compiled to a loop (~12 instructions a step).
  static_assert(kShapeCount == 3);
  const int left = me.local_count[0] | me.local_count[1] | me.local_count[2];
  for (int s = 0; left != 0 && s < kShapeCount && !full; ++s) {
    if (me.local_count[s] == 0) continue;
    const auto local_shape = static_cast<TaskShape>(s);
    if (local_shape == TaskShape::mix) {
      full = true;
    } else if (!place_left_on_idle(thread, local_shape, &progress)) {
      full = true;
    }
  }
  if (full) {
    if (progress) account();
    return step_after_finish(thread, core) || progress;
  }
  if (left != 0) flush_local(thread);
  if (progress) account();
  return progress;
}

bool Scheduler::place_left_on_idle(int thread, TaskShape shape, bool* progress) {
  ThreadState& me = threads_[thread];
  const int s = static_cast<int>(shape);
  std::atomic<int>& free = me.free_cores[shape == TaskShape::aic ? 0 : 1];
  bool placed = false;
  // limit_handoffs_to_cpus: an idle core here but no CPU for it, or the finishing core's kernels
  // too short for a second core (note_short_kernels; self_core is the finishing core).
  bool no_cpu = false;
  const bool keep_here = handoff_cpus_ != 0 && me.self_core >= 0 && short_kernels(me.self_core);
  while (me.local_count[s] > 0 && free.load(std::memory_order_relaxed) > 0) {
    if (keep_here || !cpu_free_for_idle_core(thread)) {
      no_cpu = true;
      break;
    }
    TaskSlot* const task = me.local[s].tasks[me.local_count[s] - 1];
    if (task->block_count > 1 || task->sync_start) return false;  // shares, cohorts: the policy
    const int unit = find_unit(thread, *task, SlotTarget::idle);
    if (unit < 0) return true;  // an idle core held for a cohort: the flush queues the rest
    --me.local_count[s];
    ++me.counters.pops;
    dispatch_block(thread, unit, task, task->next_block++, SlotTarget::idle);
    *progress = placed = true;
  }
  if ((placed || no_cpu) && me.local_count[s] > 0) {
    // This thread's idle cores of the type are taken (or have no CPU to run on): the rest waits
    // in the queue for the next core that finishes, as after the full step's idle pass (which
    // wakes another scheduler thread only when one reports room; the flush would ring the bell
    // regardless).
    for (int i = 0; i < me.local_count[s]; ++i)
      push_back_global(me.local[s].tasks[i]);
    me.local_count[s] = 0;
    if (others_have_room(thread, shape)) waker_.notify_schedulers();
  }
  return true;
}

bool Scheduler::take_back_unlatched(int thread, int core) {
  ThreadState& me = threads_[thread];
  CoreSlot& c = cores_[core];
  const CoreType type = c.mailbox->type;
  for (const int other : me.cores) {
    CoreSlot& o = cores_[other];
    const Subtask s = o.running;
    // Placed by this core's own step (after its FIN: it has run at least that kernel since, so
    // the other core had that long to latch it; the orchestrator's placements, made as it
    // submits, are left to their cores) straight into an idle core's running slot (not staged
    // behind a running subtask, not that core's own hand-off, which is published latched), one
    // block of this core's type.
    if (other == core || s.task == nullptr || !o.awaiting_ack || o.placed_by != core || s.staged ||
        s.early_handoff || o.pending.task != nullptr || o.cohort_reserved ||
        o.mailbox->type != type || s.task->shape == TaskShape::mix || s.task->block_count != 1 ||
        s.task->sync_start) {
      continue;
    }
    // The core finished everything before this dispatch (its status is its last FIN), so its
    // last token, latched, is what it takes for "nothing new" (core_main), as after cancel_block.
    const std::uint32_t status = o.mailbox->status.load(std::memory_order_acquire);
    if ((status & kTokenMask) == s.token) continue;  // ACKed: it runs there
    std::uint32_t expected = s.token;
    ++me.counters.dispatches;  // a write to the core's dispatch word
    if (!o.mailbox->dispatch.compare_exchange_strong(expected, (status & kTokenMask) | kLatchedBit,
                                                     std::memory_order_acq_rel)) {
      continue;  // the core latched it meanwhile
    }
    o.running = Subtask{};
    o.awaiting_ack = false;
    // Skip a token, as cancel_block: the next dispatch keeps the parity opposite to the last
    // finished subtask's.
    o.token = next_token(o.token);
    core_became_idle(thread, other);
    if (timing()) running_changed(thread, other, clock_.now_ns());
    ++me.counters.unlatched_taken_back;
    me.handoff_core = core;
    dispatch_subtask(thread, core, s.task, s.slot, s.block,
                     type == CoreType::aic ? 0u : static_cast<std::uint32_t>(c.mailbox->sub_block),
                     SlotTarget::idle, Release::now);
    me.handoff_core = -1;
    return true;
  }
  return false;
}

namespace {

// A dispatch's next token and its payload (the generic dispatch and the single-task hand-off
// both write it): which kernel, record, block and sub-block the core runs next. `prefetch` asks
// for the record's first lines now, for a task that runs on the calling thread's own core.
[[gnu::always_inline]] inline void write_dispatch(CoreSlot& c, const TaskSlot& task,
                                                  std::uint8_t slot, std::uint32_t block,
                                                  std::uint32_t block_count,
                                                  std::uint32_t sub_block, bool prefetch) {
  c.token = next_token(c.token);
  const TaskRecord* const record = task.record;
  DispatchPayload& p = c.mailbox->payload[c.token & 1];
  p.fn = record->fns[slot];
  p.record = record;
  p.kernel = record->kernels[slot];
  if (prefetch) prefetch_record_start(*record);
  p.task = task.id;
  p.block_index = block;
  p.block_count = block_count;
  p.sub_block = sub_block;
  p.cluster = c.mailbox->cluster;
}

}  // namespace

// ---------------------------------------------------------------- completion

[[gnu::always_inline]] inline bool Scheduler::poll_core(ThreadState& me, int core,
                                                        bool* idle_deferred) {
  const int thread = me.index;
  CoreSlot& c = cores_[core];
  const SlotChange change = apply_status(c, c.mailbox->status.load(std::memory_order_acquire));
  if (change.finished_count > 0 && timing()) {
    // Before finish_subtask: the finished task (and its record) may be released there.
    const std::uint64_t now = clock_.now_ns();
    const std::uint64_t since = core_since_ns_[static_cast<std::size_t>(core)];
    if (since != 0) learn(thread, kernel_of(change.finished[0]), now - since);
    running_changed(thread, core, now);
  }
  if (change.became_idle) {
    if (idle_deferred != nullptr) {
      *idle_deferred = true;
    } else {
      core_became_idle(thread, core);
    }
  }
  // Unrolled (at most two): constant indices let the inlined table's copies stay in registers.
  if (change.finished_count > 0) finish_subtask(me, core, change.finished[0]);
  if (change.finished_count > 1) finish_subtask(me, core, change.finished[1]);
  return change.progress();
}

[[gnu::always_inline]] inline void Scheduler::finish_subtask(ThreadState& me, int core,
                                                             const Subtask& subtask) {
  ++me.subtasks_done;
  ++me.counters.completions;
  TaskSlot* const task = subtask.task;
  if (recording_) {
    const Mailbox& m = *cores_[core].mailbox;
    const DispatchPayload& p = m.payload[subtask.token & 1];
    SubtaskEvent e;
    e.task_sequence = task->ring->sequence(task->id.local());
    e.block = subtask.block;
    e.slot = subtask.slot;
    e.core = m.core;
    e.cluster = m.cluster;
    e.core_type = m.type;
    e.scheduler_thread = static_cast<std::uint16_t>(me.index);
    e.dispatch_ns = subtask.dispatch_ns;
    e.start_ns = p.start_ns;
    e.end_ns = p.end_ns;
    e.retire_ns = clock_.now_ns();
    e.staged = subtask.staged;
    e.early_handoff = subtask.early_handoff;
    me.subtask_events.push_back(e);
  }
  // The count only falls, once per subtask: a count of 1 here means every other subtask was
  // counted already, so this one completes the task without the RMW (which then has nobody to
  // order against; the acquire load takes the other subtasks' releases). A task of one subtask,
  // which is every task of the peers' graphs, never pays the locked instruction.
  if (task->subtasks_remaining.load(std::memory_order_acquire) == 1 ||
      task->subtasks_remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    complete_task(me, core, task);
  }
}

[[gnu::always_inline]] inline void Scheduler::complete_task(ThreadState& me, int core,
                                                            TaskSlot* task) {
  if (recording_) {
    me.completions.push_back({task->ring->sequence(task->id.local()),
                              task->ring->ready_ns(task->id.local()), clock_.now_ns()});
  }
  ++me.counters.tasks_completed;
  const TaskId id = task->id;  // (before the completion: the slot may be reused after it)
  // The producers first: the completion hands the task's own reference to its consumers, after
  // which it may be consumed (and its slot reused) as soon as one of them has run.
  graph::release_held_producers(*task, graph::Advance::in_groups);
  me.counters.edges += graph::complete_and_release(
      *task, [&](TaskSlot* consumer) { make_ready(me, consumer); }, graph::Advance::in_groups);
  // Completed: its id to the core's own log (a line of its own, not the slot's).
  if (completion_logs_ != nullptr) completion_logs_->record(core, id);
  // After the releases: a woken orchestrator sees them.
  if (!platform_counts_completions_) sink_.kernel_task_completed_on(core);
}

[[gnu::always_inline]] inline TaskSlot* Scheduler::complete_holding_newest(ThreadState& me,
                                                                           int core,
                                                                           TaskSlot* task) {
  ++me.counters.tasks_completed;
  const TaskId id = task->id;  // (before the completion: the slot may be reused after it)
  graph::release_held_producers(*task, graph::Advance::in_groups);
  // Each consumer made ready goes to the local stack as complete_task pushes it, except the
  // newest, which stays here: the generic step would pop that one first.
  TaskSlot* held = nullptr;
  me.counters.edges += graph::complete_and_release(
      *task,
      [&](TaskSlot* consumer) {
        if (held != nullptr) make_ready(me, held);
        held = consumer;
      },
      graph::Advance::in_groups);
  if (completion_logs_ != nullptr) completion_logs_->record(core, id);
  if (!platform_counts_completions_) sink_.kernel_task_completed_on(core);
  return held;
}

[[gnu::always_inline]] inline void Scheduler::handoff_single(ThreadState& me, int core,
                                                             TaskSlot* task, CoreType type) {
  // What make_ready, pop_ready and dispatch_subtask_inline do for this case (a single-block,
  // single-core task into its finishing core's running slot, which never showed as idle),
  // without their tests for the cases excluded here.
  task->state.store(TaskState::ready, std::memory_order_relaxed);
  ++me.counters.pops;
  ++me.counters.dispatches;
  ++me.counters.single_handoffs;
  CoreSlot& c = cores_[core];
  const bool aic = type == CoreType::aic;
  const std::uint8_t slot = aic ? kSlotAic : kSlotAiv0;
  const std::uint32_t block = task->next_block++;
  write_dispatch(c, *task, slot, block, 1,
                 aic ? 0u : static_cast<std::uint32_t>(c.mailbox->sub_block),
                 /*prefetch=*/true);
  c.running.task = task;
  c.running.token = c.token;
  c.running.block = block;
  c.running.slot = slot;
  c.running.staged = false;
  c.running.early_handoff = true;
  c.running.dispatch_ns = 0;
  c.awaiting_ack = true;
  c.placed_by = static_cast<std::int16_t>(core);
  const bool own = own_core_needs_no_doorbell_;
  publish(*c.mailbox, c.token, own, own && own_core_latches_handoff_);
}

void Scheduler::core_became_busy(int thread, int core) {
  ThreadState& me = threads_[thread];
  ++me.busy_cores;
  // A core held for MIX is not counted free (single-core work cannot go there).
  if (!cores_[core].mix_reserved) {
    me.free_cores[cores_[core].mailbox->type == CoreType::aic ? 0 : 1].fetch_sub(
        1, std::memory_order_relaxed);
  }
  refresh_idle_mask(cores_[core].mailbox->cluster);
}

void Scheduler::core_became_idle(int thread, int core) {
  ThreadState& me = threads_[thread];
  --me.busy_cores;
  me.room_appeared = true;
  // seq_cst, before the caller's next pop (a seq_cst load of the queue's cell): pairs with
  // others_have_room's fence after a push, so a task pushed meanwhile is either seen by that pop
  // or finds this core idle (and its pusher wakes or steps this thread). A core held for MIX is
  // counted when the reservation ends (release_mix_reservation, with the same pairing).
  if (!cores_[core].mix_reserved) {
    me.free_cores[cores_[core].mailbox->type == CoreType::aic ? 0 : 1].fetch_add(
        1, std::memory_order_seq_cst);
  }
  refresh_idle_mask(cores_[core].mailbox->cluster);
}

void Scheduler::refresh_idle_mask(int cluster) {
  const ClusterCores& cl = clusters_[static_cast<std::size_t>(cluster)];
  const std::uint8_t mask = static_cast<std::uint8_t>(
      cores_[cl.aic].idle() | (cores_[cl.aiv[0]].idle() << 1) | (cores_[cl.aiv[1]].idle() << 2));
  idle_mask_[static_cast<std::size_t>(cluster)].store(mask, std::memory_order_release);
}

bool Scheduler::others_have_mix_room(int thread, std::uint8_t mask) {
  for (std::size_t t = 0; t < threads_.size(); ++t) {
    if (static_cast<int>(t) == thread) continue;
    for (const int c : threads_[t].clusters) {
      const std::uint8_t idle =
          idle_mask_[static_cast<std::size_t>(c)].load(std::memory_order_acquire);
      if ((idle & mask) == mask) return true;
    }
  }
  return false;
}

bool Scheduler::others_have_room(int thread, TaskShape shape) {
  const bool needs_aic = shape != TaskShape::aiv;
  const bool needs_aiv = shape != TaskShape::aic;
  // Orders the caller's push of the task (the queue cell's store) before the reads of the idle
  // counts below. It pairs with a core that becomes idle: its seq_cst RMW of its count
  // (core_became_idle), then its pop, whose load of the cell is seq_cst (MpmcQueue::try_pop).
  // Either this fence precedes that RMW in the single total order, and the pop sees the push,
  // or it follows it, and the loads below see the core idle (store-buffering with seq_cst on
  // both sides: not both miss). ThreadSanitizer does not model fences (GCC rejects them under
  // -fsanitize=thread): there each read is a seq_cst RMW instead, the same order in a form it
  // checks.
  if constexpr (!kThreadSanitizer) std::atomic_thread_fence(std::memory_order_seq_cst);
  // By address, not index: the vector's size is a division (threads_' elements are not a power
  // of two bytes), on the orchestrator's push of every task.
  const ThreadState* const self =
      thread >= 0 ? &threads_[static_cast<std::size_t>(thread)] : nullptr;
  for (ThreadState& other : threads_) {
    if (&other == self) continue;
    // Plain loads after the fence above: an RMW here took the line exclusive, so every core
    // that reads it per task (may_stage_at_latch, core_step) missed on it afterwards.
    auto free = [&](int type) {
      if constexpr (kThreadSanitizer) {
        return other.free_cores[type].fetch_add(0, std::memory_order_seq_cst);
      } else {
        return other.free_cores[type].load(std::memory_order_relaxed);
      }
    };
    if ((!needs_aic || free(0) > 0) && (!needs_aiv || free(1) > 0)) {
      return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------- expected ends

std::uint64_t Scheduler::estimate_ns(int thread, KernelId kernel) const {
  const KernelEstimate& e =
      threads_[thread].estimates[static_cast<std::uint32_t>(kernel) % kEstimateSlots];
  return e.kernel == kernel ? e.mean_ns : 0;
}

void Scheduler::learn(int thread, KernelId kernel, std::uint64_t ns) {
  KernelEstimate& e =
      threads_[thread].estimates[static_cast<std::uint32_t>(kernel) % kEstimateSlots];
  if (e.kernel != kernel) {
    e = {kernel, ns};
  } else {
    e.mean_ns = (3 * e.mean_ns + ns) / 4;  // recent runs weigh more: durations drift with data
  }
}

void Scheduler::running_changed(int thread, int core, std::uint64_t now) {
  const Subtask& running = cores_[static_cast<std::size_t>(core)].running;
  const bool runs = running.task != nullptr;
  core_since_ns_[static_cast<std::size_t>(core)] = runs ? now : 0;
  core_end_ns_[static_cast<std::size_t>(core)] =
      runs ? now + estimate_ns(thread, kernel_of(running)) : 0;
}

// ---------------------------------------------------------------- ready queues

inline void Scheduler::make_ready(ThreadState& me, TaskSlot* task) {
  task->state.store(TaskState::ready, std::memory_order_relaxed);
  // Its record's header, which its dispatch reads (most likely this core's, next): the slot's
  // line is here already, the record's was written long ago (record_prefetch.hpp).
  prefetch_for_read(task->record);
  if (task->shape == TaskShape::mix && !mix_seen_.load(std::memory_order_relaxed))
    mix_seen_.store(true, std::memory_order_relaxed);
  if (recording_) task->ring->set_ready_ns(task->id.local(), clock_.now_ns());
  const int s = static_cast<int>(task->shape);
  if (me.local_count[s] < kLocalCapacity) {
    me.local[s].tasks[me.local_count[s]++] = task;
  } else {
    push_back_global(task);
  }
}

void Scheduler::push_ready_global(TaskSlot* task) {
  task->state.store(TaskState::ready, std::memory_order_relaxed);
  if (task->shape == TaskShape::mix && !mix_seen_.load(std::memory_order_relaxed))
    mix_seen_.store(true, std::memory_order_relaxed);
  // Read before the push: once queued, the task may run, finish and its slot be reused.
  const bool single_core = runs_on_one_core(*task);
  const TaskShape shape = task->shape;
  if (orchestrator_lanes_) {
    ready_.push_lane(task);
  } else {
    push_back_global(task);
  }
  // No idle core could run it: a core of its type pops it after its FIN (core_step). The fence
  // in others_have_room orders the push before its reads, pairing with the core's seq_cst RMW
  // when it becomes idle (core_became_idle) and its pop after that: one of the two sees the
  // other.
  if (cores_take_queued_work_ && single_core) {
    if (!others_have_room(-1, shape)) return;
    // others_have_room fenced after the push (not under ThreadSanitizer, which has no fences:
    // there its reads are RMWs, and the wake-up keeps its own).
    if constexpr (!kThreadSanitizer) {
      waker_.notify_new_work_after_fence();
      return;
    }
  }
  waker_.notify_new_work();
}

void Scheduler::push_back_global(TaskSlot* task) {
  ready_.push(task);
}

inline bool Scheduler::pop_ready(ThreadState& me, TaskShape shape, TaskSlot** task) {
  const int s = static_cast<int>(shape);
  if (me.local_count[s] > 0) {
    *task = me.local[s].tasks[--me.local_count[s]];
    ++me.counters.pops;
    return true;
  }
  if (!(pops_serialised_ ? ready_.try_pop_serial(shape, task) : ready_.try_pop(shape, task)))
    return false;
  ++me.counters.pops;
  return true;
}

void Scheduler::flush_local(int thread) {
  ThreadState& me = threads_[thread];
  int left = 0;
  for (const int count : me.local_count)
    left |= count;
  if (left == 0) return;  // after most core steps: the completion made nothing ready here
  // With cores that take queued work (threads), a single-core task that no idle core anywhere
  // can take waits in the queue for the next core of its type to finish (core_step pops it), as
  // push_ready_global leaves the orchestrator's: no scheduler thread is woken for it. Ringing
  // on every such flush kept the scheduler thread runnable through the peers' runs, woken for
  // steps that found nothing (docs/performance.md, "Session 46, branch sched46"). Anything else
  // (MIX, SPMD, start-together, an abort, an idle core somewhere) rings as before. The room
  // check after the pushes is others_have_room's fenced one: a core that goes idle meanwhile
  // either pops what was pushed or is seen idle here.
  bool ring = !cores_take_queued_work_ || aborting();
  for (int s = 0; s < kShapeCount; ++s) {
    if (me.local_count[s] == 0) continue;
    for (int i = 0; i < me.local_count[s]; ++i) {
      TaskSlot* const task = me.local[s].tasks[i];
      ring = ring || !runs_on_one_core(*task);
      push_back_global(task);  // the task is not read after its push: it may run and retire
    }
    me.local_count[s] = 0;
    ring = ring || others_have_room(-1, static_cast<TaskShape>(s));
  }
  if (ring) waker_.notify_schedulers();
}

// ---------------------------------------------------------------- dispatch

PlacementView Scheduler::view(int thread) const {
  if (!timing()) return {cores_, clusters_, threads_[thread].clusters};
  return {cores_, clusters_, threads_[thread].clusters, core_end_ns_};
}

bool Scheduler::dispatch_ready(int thread) {
  bool progress = false;
  threads_[thread].mix_waiting = false;
  threads_[thread].mix_left = false;
  if (!threads_[thread].staged_mix.empty()) progress |= take_back_stranded(thread);
  bool reservation_updated = false;
  for (const PlacementPass& pass : policy_.staging_order(thread)) {
    // The MIX passes come first: what they left decides the reservation before any single-core
    // task is placed in this step.
    if (!reservation_updated && pass.shape != TaskShape::mix) {
      reservation_updated = true;
      update_mix_reservation(thread);
    }
    // A MIX task left waiting keeps single-core work out of pending slots: otherwise a stream
    // of AIV tasks refills every pending slot and the MIX task never finds its cores stageable
    // together (it would start only after the stream).
    if (pass.target == SlotTarget::pending && pass.shape != TaskShape::mix &&
        threads_[thread].mix_waiting) {
      continue;
    }
    // Cores that stage for themselves (threads): AIC/AIV work goes into a pending slot only at
    // that core's latch (stage_after_latch), never from another thread's step.
    if (single_core_staging_at_latch_ && pass.target == SlotTarget::pending &&
        pass.shape != TaskShape::mix) {
      continue;
    }
    progress |= run_pass(thread, pass);
  }
  if (!reservation_updated) update_mix_reservation(thread);
  return progress;
}

// ---------------------------------------------------------------- reserved for MIX

void Scheduler::update_mix_reservation(int thread) {
  ThreadState& me = threads_[thread];
  if (!me.mix_left) {
    me.mix_passed_over = false;
    release_mix_reservation(thread);
    return;
  }
  if (me.reserved_cluster >= 0) return;  // held until the block is placed or none waits
  // Passed over once: a step that cannot place the task lets the cores it would use take their
  // next single-core task (the block may well fit at the next step, when a core ACKs or frees).
  // Passed over again: hold a cluster for it.
  if (!me.mix_passed_over) {
    me.mix_passed_over = true;
    return;
  }
  reserve_for_mix(thread, me.mix_left_mask);
}

void Scheduler::reserve_for_mix(int thread, std::uint8_t mask) {
  ThreadState& me = threads_[thread];
  const int cluster = DispatchPolicy::reserve_unit(view(thread), mask, policy_.stages_mix());
  if (cluster < 0) return;
  int cores[3];
  const int n = unit_cores(cluster, TaskShape::mix, mask, cores);
  for (int i = 0; i < n; ++i) {
    CoreSlot& c = cores_[static_cast<std::size_t>(cores[i])];
    c.mix_reserved = true;
    // Counted free no longer: other threads and the orchestrator stop sending it single-core work.
    if (c.running.task == nullptr) {
      me.free_cores[c.mailbox->type == CoreType::aic ? 0 : 1].fetch_sub(1,
                                                                        std::memory_order_relaxed);
    }
  }
  me.reserved_cluster = cluster;
  me.reserved_mask = mask;
  mix_reservations_held_.fetch_add(1, std::memory_order_relaxed);
  if (recording_) {
    MixReservationEvent e;
    e.cluster = static_cast<std::uint16_t>(cluster);
    e.scheduler_thread = static_cast<std::uint16_t>(thread);
    e.active_mask = mask;
    e.reserved_ns = clock_.now_ns();
    me.reservations.push_back(e);
  }
}

void Scheduler::release_mix_reservation(int thread, const TaskSlot* placed, std::uint32_t block) {
  ThreadState& me = threads_[thread];
  if (me.reserved_cluster < 0) return;
  int cores[3];
  const int n = unit_cores(me.reserved_cluster, TaskShape::mix, me.reserved_mask, cores);
  for (int i = 0; i < n; ++i) {
    CoreSlot& c = cores_[static_cast<std::size_t>(cores[i])];
    c.mix_reserved = false;
    if (c.running.task == nullptr) {
      // As core_became_idle: seq_cst before this step's next pop, pairing with a pusher's fence.
      me.free_cores[c.mailbox->type == CoreType::aic ? 0 : 1].fetch_add(1,
                                                                        std::memory_order_seq_cst);
      me.room_appeared = true;
    }
  }
  me.reserved_cluster = -1;
  mix_reservations_held_.fetch_sub(1, std::memory_order_relaxed);
  if (recording_ && !me.reservations.empty()) {
    MixReservationEvent& e = me.reservations.back();
    e.released_ns = clock_.now_ns();
    if (placed != nullptr) {
      e.placed_sequence = placed->ring->sequence(placed->id.local());
      e.placed_block = block;
    }
  }
}

// Places tasks of one shape until the queue is empty or no unit has room. The only
// difference between an idle and a pending pass is the policy's verdicts.
bool Scheduler::run_pass(int thread, const PlacementPass& pass) {
  bool progress = false;
  const bool idle_pass = pass.target == SlotTarget::idle;
  // No MIX work queued (a hint: whoever queues one later notifies): skip the staged MIX pass and
  // its scan of every cluster, which every step of a run without MIX tasks paid otherwise.
  if (!idle_pass && pass.shape == TaskShape::mix &&
      (threads_[thread].local_count[static_cast<int>(TaskShape::mix)] == 0 && !mix_may_wait())) {
    return false;
  }
  if (!idle_pass && pass.shape == TaskShape::mix &&
      !DispatchPolicy::may_have_mix_room(view(thread))) {
    return false;
  }
  // A single-core pending pass looks before it pops: while another thread reports an idle core
  // of the shape (which beats a pending slot here), every task it popped would only go back on
  // the queue. Popping and pushing back in every step of a scheduler-bound run made `aiv` staging
  // cost 1.2% on spmd_multiblock_aiv on the sim without staging a single block (docs/sim.md,
  // "A/B on the sim").
  if (!idle_pass && pass.shape != TaskShape::mix) {
    if (threads_[thread].local_count[static_cast<int>(pass.shape)] == 0 &&
        !ready_.may_have(pass.shape)) {
      return false;
    }
    if (others_have_room(thread, pass.shape)) {
      waker_.notify_schedulers();  // as when a popped task went back: those threads take it
      return false;
    }
  }
  // This pass looks at the MIX work: what it leaves unplaced is what the step leaves.
  if (pass.shape == TaskShape::mix) threads_[thread].mix_left = false;
  if (pass.shape == TaskShape::mix && returned_count_.load(std::memory_order_acquire) > 0) {
    bool left = false;
    progress |= place_returned(thread, pass, &left);
    if (left) {
      threads_[thread].mix_left = true;
      // Older blocks first: no fresh MIX task takes room a returned block could not.
      if (!idle_pass) threads_[thread].mix_waiting = true;
      return progress;
    }
  }
  for (;;) {
    TaskSlot* task = nullptr;
    if (!pop_ready(threads_[thread], pass.shape, &task)) return progress;
    if (!idle_pass) {
      if (!policy_.may_prestage(*task)) {
        push_back_global(task);  // it waits for an idle core
        return progress;
      }
      if (task->shape == TaskShape::mix ? others_have_mix_room(thread, task->active_mask)
                                        : others_have_room(thread, task->shape)) {
        // An idle core elsewhere beats a pending slot here: leave the task to that thread.
        // (For MIX this is what keeps a block from being stranded behind a busy cluster while
        // another can run it now: it is staged only when no other thread reports room.)
        push_back_global(task);
        waker_.notify_schedulers();
        return progress;
      }
    }
    if (idle_pass && task->sync_start && task->block_count > 1) {
      if (DispatchPolicy::count_idle_units(view(thread), task->shape, task->active_mask) >=
          static_cast<int>(task->block_count)) {
        for (std::uint32_t b = 0; b < task->block_count; ++b)
          dispatch_block(thread, find_unit(thread, *task, SlotTarget::idle), task, b,
                         SlotTarget::idle);
        progress = true;
        continue;
      }
      start_cohort(task);
      return true;
    }
    int unit = handoff_or_find_unit(thread, *task, pass.target);
    if (unit < 0) {
      // No room here: in an idle pass, wake the others if one of them has room. The shape is read
      // first: once the task is back in the queue another thread may run it and reuse its slot.
      const TaskShape waiting = task->shape;
      const std::uint8_t mask = task->active_mask;
      if (waiting == TaskShape::mix) {
        if (policy_.stages_mix()) threads_[thread].mix_waiting = true;
        threads_[thread].mix_left = true;
        threads_[thread].mix_left_mask = mask;
      }
      push_back_global(task);
      if (idle_pass && (waiting == TaskShape::mix ? others_have_mix_room(thread, mask)
                                                  : others_have_room(thread, waiting))) {
        waker_.notify_schedulers();
      }
      return progress;
    }
    // SPMD: while other threads have room, take only a fair share (1 / threads) of the blocks
    // left, so one task's dispatch and completion work is done by all threads in parallel, not
    // by whichever popped it first (on the sim -15 to -32% makespan on the multi-block SPMD
    // cases, every policy; docs/sim.md).
    std::uint32_t share = task->block_count - task->next_block;
    if (idle_pass && share > 1 && threads_.size() > 1 &&
        (task->shape == TaskShape::mix ? others_have_mix_room(thread, task->active_mask)
                                       : others_have_room(thread, task->shape))) {
      const auto t = static_cast<std::uint32_t>(threads_.size());
      share = (share + t - 1) / t;
    }
    for (std::uint32_t taken = 0;
         unit >= 0 && task->next_block < task->block_count && taken < share; ++taken) {
      dispatch_block(thread, unit, task, task->next_block++, pass.target);
      progress = true;
      if (task->next_block < task->block_count && taken + 1 < share)
        unit = find_unit(thread, *task, pass.target);
    }
    if (task->next_block < task->block_count) {
      push_back_global(task);  // SPMD: other clusters take the remaining blocks
      waker_.notify_schedulers();
      return progress;
    }
  }
}

int Scheduler::handoff_or_find_unit(int thread, const TaskSlot& task, SlotTarget target) const {
  const int core = threads_[thread].handoff_core;
  if (core >= 0 && target == SlotTarget::idle && cores_[core].idle_for_single()) {
    const Mailbox& m = *cores_[core].mailbox;
    // Single-core shapes only: a MIX or start-together task needs the policy's view of a cluster.
    if (task.shape == TaskShape::aiv && m.type == CoreType::aiv) return core;
    if (task.shape == TaskShape::aic && m.type == CoreType::aic) return m.cluster;
  }
  return find_unit(thread, task, target);
}

int Scheduler::unit_cores(int unit, TaskShape shape, std::uint8_t mask, int out[3]) const {
  if (shape == TaskShape::aiv) {
    out[0] = unit;
    return 1;
  }
  const ClusterCores& cl = clusters_[unit];
  if (shape == TaskShape::aic) {
    out[0] = cl.aic;
    return 1;
  }
  int n = 0;
  if (mask & 1) out[n++] = cl.aic;
  if (mask & 2) out[n++] = cl.aiv[0];
  if (mask & 4) out[n++] = cl.aiv[1];
  return n;
}

void Scheduler::dispatch_block(int thread, int unit, TaskSlot* task, std::uint32_t block,
                               SlotTarget target, Release release) {
  switch (task->shape) {
    case TaskShape::aic:
      dispatch_subtask(thread, clusters_[unit].aic, task, kSlotAic, block, 0, target, release);
      return;
    case TaskShape::aiv: {
      const int sub = cores_[unit].mailbox->sub_block;
      dispatch_subtask(thread, unit, task, kSlotAiv0, block, static_cast<std::uint32_t>(sub),
                       target, release);
      return;
    }
    case TaskShape::mix: {
      // Staged MIX block: idle cores take their part in the running slot, busy ones in the
      // pending slot; each part starts as its core frees.
      const ClusterCores& cl = clusters_[unit];
      auto on = [&](int core) {
        return target == SlotTarget::pending && cores_[core].idle() ? SlotTarget::idle : target;
      };
      StagedBlock staged{task, block, 0, {}, {}};
      const int used[3] = {cl.aic, cl.aiv[0], cl.aiv[1]};
      bool all_pending = target == SlotTarget::pending;
      for (int s = 0; s < 3; ++s) {
        if (task->active_mask & (1 << s)) {
          all_pending &= !cores_[used[s]].idle();
          staged.cores[staged.core_count++] = used[s];
        }
      }
      if (task->active_mask & 1)
        dispatch_subtask(thread, cl.aic, task, kSlotAic, block, 0, on(cl.aic), release);
      if (task->active_mask & 2)
        dispatch_subtask(thread, cl.aiv[0], task, kSlotAiv0, block, 0, on(cl.aiv[0]), release);
      if (task->active_mask & 4)
        dispatch_subtask(thread, cl.aiv[1], task, kSlotAiv1, block, 1, on(cl.aiv[1]), release);
      if (all_pending && policy_.takes_back_mix()) {
        // Every part waits in a pending slot: the block can still move if a cluster frees first.
        for (int i = 0; i < staged.core_count; ++i)
          staged.tokens[i] = cores_[staged.cores[i]].pending.token;
        threads_[thread].staged_mix.push_back(staged);
        takeable_blocks_.fetch_add(1, std::memory_order_acq_rel);
      }
      ThreadState& me = threads_[thread];
      // The cluster held for MIX work took its block: the reservation has done its job.
      if (unit == me.reserved_cluster) release_mix_reservation(thread, task, block);
      // Another thread holds a cluster for MIX work that may be this block: its next step
      // releases it (its cores may all be idle, with nothing else to step it).
      if (mix_reservations_held_.load(std::memory_order_relaxed) > (me.reserved_cluster >= 0))
        waker_.notify_schedulers();
      return;
    }
  }
}

void Scheduler::dispatch_subtask(int thread, int core, TaskSlot* task, std::uint8_t slot,
                                 std::uint32_t block, std::uint32_t sub_block, SlotTarget target,
                                 Release release) {
  dispatch_subtask_inline(threads_[thread], core, task, slot, block, sub_block, target, release,
                          task->shape != TaskShape::mix);
}

[[gnu::always_inline]] inline void Scheduler::dispatch_subtask_inline(
    ThreadState& me, int core, TaskSlot* task, std::uint8_t slot, std::uint32_t block,
    std::uint32_t sub_block, SlotTarget target, Release release, bool single_core) {
  CoreSlot& c = cores_[core];
  ++me.counters.dispatches;
  // A task this core's own step places on it runs here next: the lines its kernel reads are
  // asked for now, together, not one miss after another once it starts (record_prefetch.hpp).
  write_dispatch(c, *task, slot, block, task->block_count, sub_block, core == me.self_core);
  const bool handoff = core == me.handoff_core && target == SlotTarget::idle;
  if (handoff) me.handoff_core = -1;  // one hand-off per finish: the core is busy now
  const Subtask s{.task = task,
                  .token = c.token,
                  .block = block,
                  .slot = slot,
                  .staged = target == SlotTarget::pending,
                  .early_handoff = handoff,
                  .dispatch_ns = recording_ ? clock_.now_ns() : 0};
  if (target == SlotTarget::pending) {
    ++me.counters.staged[static_cast<int>(task->shape)];
    c.pending = s;
  } else {
    c.running = s;
    c.awaiting_ack = true;
    c.placed_by = static_cast<std::int16_t>(me.self_core);
    if (core == me.deferred_idle_core) {
      // It never showed as idle (core_step): nothing to undo. Looked at here, not in the call:
      // once per early hand-off, where the call was ~10 instructions.
      me.deferred_idle_core = -1;
    } else {
      core_became_busy(me.index, core);
    }
    if (timing()) running_changed(me.index, core, clock_.now_ns());
  }
  if (release == Release::now) {
    const bool own = own_core_needs_no_doorbell_ && core == me.self_core;
    // Latched for the core: its running slot (the early hand-off), and its pending slot for a
    // single-core shape, which nothing takes back (cancel_block takes staged MIX parts only,
    // take_back_unlatched running-slot dispatches only): the core takes it after its FIN with the
    // ACK alone, where the compare-exchange of an unlatched word was a locked instruction a task
    // on every steadily staged graph. A staged MIX part stays unlatched (cancel_block races it).
    publish(*c.mailbox, c.token, own,
            own && own_core_latches_handoff_ && (target == SlotTarget::idle || single_core));
  }
}

void Scheduler::publish_with_doorbell(Mailbox& mailbox, std::uint32_t token) {
  // seq_cst: pairs with the core's store of core_parked before its last look (notify_core).
  mailbox.dispatch.store(token, std::memory_order_seq_cst);
  waker_.notify_core(mailbox);
}

// ---------------------------------------------------------------- stranding (issue 12)

// A staged MIX block commits its task to one cluster. When a cluster that could run it now is
// idle (here or on another thread) while every part still waits in a pending slot, the block is
// taken back (each part's dispatch word compare-exchanged back to the running subtask's, before
// its core latches it) and placed again, older than any fresh MIX task.
bool Scheduler::take_back_stranded(int thread) {
  ThreadState& me = threads_[thread];
  bool progress = false;
  for (std::size_t i = 0; i < me.staged_mix.size();) {
    const StagedBlock block = me.staged_mix[i];
    bool still_staged = true;
    for (int k = 0; k < block.core_count; ++k) {
      const Subtask& pending = cores_[static_cast<std::size_t>(block.cores[k])].pending;
      still_staged &= pending.task == block.task && pending.token == block.tokens[k];
    }
    bool drop = !still_staged;  // a part moved up (latched or about to be): it runs here
    if (still_staged) {
      // The task is live while its parts sit in pending slots, so its mask may be read.
      const std::uint8_t mask = block.task->active_mask;
      const bool room_here =
          DispatchPolicy::count_idle_units(view(thread), TaskShape::mix, mask) > 0;
      // A slot of the returned queue is reserved before the cancel, so the push cannot fail.
      if (room_here || others_have_mix_room(thread, mask)) {
        if (returned_count_.fetch_add(1, std::memory_order_acq_rel) <
                static_cast<int>(returned_.capacity()) &&
            cancel_block(thread, block)) {
          returned_.try_push({block.task, block.block});
          ++me.counters.taken_back;
          progress = true;
          drop = true;
          if (!room_here) waker_.notify_schedulers();
        } else {
          returned_count_.fetch_sub(1, std::memory_order_acq_rel);
        }
      }
    }
    if (drop) {
      me.staged_mix[i] = me.staged_mix.back();
      me.staged_mix.pop_back();
      takeable_blocks_.fetch_sub(1, std::memory_order_acq_rel);
    } else {
      ++i;
    }
  }
  return progress;
}

bool Scheduler::cancel_block(int thread, const StagedBlock& block) {
  int cancelled = 0;
  for (; cancelled < block.core_count; ++cancelled) {
    CoreSlot& c = cores_[static_cast<std::size_t>(block.cores[cancelled])];
    std::uint32_t expected = block.tokens[cancelled];
    ++threads_[thread].counters.dispatches;  // a write to the core's dispatch word
    if (!c.mailbox->dispatch.compare_exchange_strong(expected, c.running.token | kLatchedBit,
                                                     std::memory_order_acq_rel)) {
      break;  // the core latched this part: the block stays and runs here
    }
  }
  if (cancelled < block.core_count) {
    // Give back the parts already cancelled: their partner runs and waits for them.
    for (int k = 0; k < cancelled; ++k) {
      CoreSlot& c = cores_[static_cast<std::size_t>(block.cores[k])];
      publish(*c.mailbox, block.tokens[k]);
    }
    return false;
  }
  for (int k = 0; k < block.core_count; ++k) {
    CoreSlot& c = cores_[static_cast<std::size_t>(block.cores[k])];
    c.pending = Subtask{};
    // Skip a token so the next dispatch keeps the parity opposite to the running subtask's (its
    // payload buffer gets the running subtask's times at FIN).
    c.token = next_token(c.token);
  }
  return true;
}

bool Scheduler::place_returned(int thread, const PlacementPass& pass, bool* left) {
  bool progress = false;
  ReturnedBlock block{};
  while (returned_.try_pop(block)) {
    ++threads_[thread].counters.pops;
    const int unit = find_unit(thread, *block.task, pass.target);
    if (unit < 0 || (pass.target == SlotTarget::pending &&
                     others_have_mix_room(thread, block.task->active_mask))) {
      threads_[thread].mix_left_mask = block.task->active_mask;  // (before another thread pops it)
      returned_.try_push(block);  // it was just popped: there is room
      ++threads_[thread].counters.pushes;
      *left = true;
      return progress;
    }
    returned_count_.fetch_sub(1, std::memory_order_acq_rel);
    dispatch_block(thread, unit, block.task, block.block, pass.target);
    progress = true;
  }
  return progress;
}

// ---------------------------------------------------------------- start-together cohorts

void Scheduler::start_cohort(TaskSlot* task) {
  if (!cohort_.open(task)) {
    push_back_global(task);  // one cohort at a time; retry later
    return;
  }
  waker_.notify_schedulers();
}

bool Scheduler::cohort_step(int thread) {
  ThreadState& me = threads_[thread];
  const Cohort::Snapshot cohort = cohort_.snapshot();
  bool progress = false;
  if (!cohort_.go()) {
    // Reserve every idle unit this thread owns; no other work starts here meanwhile.
    std::uint32_t added = 0;
    for (int unit = DispatchPolicy::find_unit(view(thread), cohort.shape, cohort.active_mask,
                                              SlotTarget::idle);
         unit >= 0; unit = DispatchPolicy::find_unit(view(thread), cohort.shape, cohort.active_mask,
                                                     SlotTarget::idle)) {
      int cores[3];
      const int n = unit_cores(unit, cohort.shape, cohort.active_mask, cores);
      for (int i = 0; i < n; ++i)
        cores_[cores[i]].cohort_reserved = true;
      refresh_idle_mask(cores_[cores[0]].mailbox->cluster);
      ++added;
    }
    if (added != 0) {
      progress = true;
      if (cohort_.reserve(added)) waker_.notify_schedulers();
    }
    if (!cohort_.go()) return progress;
  }
  // Prepare blocks on the units this thread reserved (their dispatch words are written by the
  // last thread to hand in, all at once), and release what is left over.
  std::vector<PreparedDispatch> prepared;
  auto place = [&](int unit) {
    int cores[3];
    const int n = unit_cores(unit, cohort.shape, cohort.active_mask, cores);
    if (!cores_[cores[0]].cohort_reserved) return;
    for (int i = 0; i < n; ++i)
      cores_[cores[i]].cohort_reserved = false;
    refresh_idle_mask(cores_[cores[0]].mailbox->cluster);
    const std::uint32_t b = cohort_.take_block();
    if (b >= cohort.block_count) return;
    // The task is touched only for a block below block_count: until that block runs the task
    // cannot finish, so its slot is still its own.
    dispatch_block(thread, unit, cohort.task, b, SlotTarget::idle, Release::by_cohort);
    for (int i = 0; i < n; ++i)
      prepared.push_back({cores_[cores[i]].mailbox, cores_[cores[i]].token});
  };
  for (const int c : me.clusters) {
    if (cohort.shape == TaskShape::aiv) {
      for (const int core : clusters_[c].aiv)
        place(core);
    } else {
      place(c);
    }
  }
  me.cohort_done_generation = cohort.generation;
  const std::optional<std::vector<PreparedDispatch>> all =
      cohort_.hand_in(prepared, static_cast<int>(threads_.size()));
  if (all) {
    for (const PreparedDispatch& d : *all)
      publish(*d.mailbox, d.token);
    waker_.notify_schedulers();  // the cohort is closed: everyone dispatches again
  }
  return true;
}

}  // namespace tmr::detail
