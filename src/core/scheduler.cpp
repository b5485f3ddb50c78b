#include "core/scheduler.hpp"

#include "core/cycle_clock.hpp"
#include "core/engine.hpp"
#include "core/ring.hpp"

namespace tmr::detail {

Scheduler::Scheduler(Engine& engine) : engine_(engine) {}

void Scheduler::configure() {
  const int cluster_count = engine_.cluster_count();
  const int thread_count = engine_.config().scheduler_threads;
  cores_.assign(static_cast<std::size_t>(engine_.core_count()), CoreState{});
  clusters_.resize(static_cast<std::size_t>(cluster_count));
  threads_ = std::vector<ThreadState>(static_cast<std::size_t>(thread_count));
  for (int c = 0; c < cluster_count; ++c) {
    clusters_[c] =
        ClusterCores{engine_.aic_core(c), {engine_.aiv_core(c, 0), engine_.aiv_core(c, 1)}};
    ThreadState& owner = threads_[engine_.scheduler_of_cluster(c)];
    owner.clusters.push_back(c);
  }
  for (ThreadState& t : threads_) {
    for (int c : t.clusters)
      t.cores.push_back(clusters_[c].aic);
    for (int c : t.clusters) {
      t.cores.push_back(clusters_[c].aiv[0]);
      t.cores.push_back(clusters_[c].aiv[1]);
    }
  }
  for (int core = 0; core < engine_.core_count(); ++core)
    cores_[core].mailbox = &engine_.mailbox(core);
  reset();
}

void Scheduler::reset() {
  for (CoreState& c : cores_) {
    c.running = Subtask{};
    c.pending = Subtask{};
    c.awaiting_ack = false;
    c.cohort_reserved = false;
  }
  for (ThreadState& t : threads_) {
    for (LocalReady& l : t.local)
      l.count = 0;
    t.busy_cores = 0;
    t.free_cores[0].store(static_cast<int>(t.clusters.size()), std::memory_order_relaxed);
    t.free_cores[1].store(2 * static_cast<int>(t.clusters.size()), std::memory_order_relaxed);
    t.busy_cycles = 0;
    t.subtasks_done = 0;
    t.cohort_done_generation = cohort_.generation.load(std::memory_order_relaxed);
    t.subtask_events.clear();
    t.counters = StepCounters{};
    t.completions.clear();
  }
  cohort_.active.store(false, std::memory_order_relaxed);
  cohort_.task = nullptr;
}

bool Scheduler::step(int thread) {
  ThreadState& me = threads_[thread];
  const std::uint64_t start = cycles();
  bool progress = false;
  for (int core : me.cores) {
    if (cores_[core].running.task == nullptr) continue;
    ++me.counters.polls;
    progress |= poll_core(thread, core);
  }
  if (!engine_.aborting()) {
    if (cohort_.active.load(std::memory_order_acquire) &&
        me.cohort_done_generation != cohort_.generation.load(std::memory_order_acquire)) {
      progress |= cohort_step(thread);
    } else {
      progress |= dispatch_ready(thread);
    }
  }
  flush_local(thread);
  if (progress) me.busy_cycles += cycles() - start;
  return progress;
}

// ---------------------------------------------------------------- completion

bool Scheduler::poll_core(int thread, int core) {
  CoreState& c = cores_[core];
  const std::uint32_t status = c.mailbox->status.load(std::memory_order_acquire);
  const std::uint32_t token = status & kTokenMask;
  const bool finished = (status & kFinBit) != 0;
  if (c.pending.task != nullptr && token == c.pending.token) {
    // The core moved on to the pending subtask, so the running one is done.
    const Subtask done = c.running;
    const Subtask next = c.pending;
    c.pending = Subtask{};
    if (finished) {
      c.running = Subtask{};
      c.awaiting_ack = false;
      core_became_idle(thread, core);
    } else {
      c.running = next;
      c.awaiting_ack = false;
    }
    finish_subtask(thread, core, done);
    if (finished) finish_subtask(thread, core, next);
    return true;
  }
  if (token != c.running.token) return false;  // stale: an older token
  if (finished) {
    const Subtask done = c.running;
    if (c.pending.task != nullptr) {
      c.running = c.pending;  // staged: the core picks it up next
      c.pending = Subtask{};
      c.awaiting_ack = true;
    } else {
      c.running = Subtask{};
      c.awaiting_ack = false;
      core_became_idle(thread, core);
    }
    finish_subtask(thread, core, done);
    return true;
  }
  if (c.awaiting_ack) {
    c.awaiting_ack = false;  // latched: a pending dispatch may now be written
    return true;
  }
  return false;
}

void Scheduler::finish_subtask(int thread, int core, const Subtask& subtask) {
  ThreadState& me = threads_[thread];
  ++me.subtasks_done;
  ++me.counters.completions;
  TaskSlot* const task = subtask.task;
  if (engine_.recording()) {
    const DispatchPayload& p = cores_[core].mailbox->payload[subtask.token & 1];
    const Mailbox& m = *cores_[core].mailbox;
    SubtaskEvent e;
    e.task_sequence = task->sequence;
    e.block = subtask.block;
    e.slot = subtask.slot;
    e.core = m.core;
    e.cluster = m.cluster;
    e.core_type = m.type;
    e.scheduler_thread = static_cast<std::uint16_t>(thread);
    e.dispatch_ns = subtask.dispatch_ns;
    e.start_ns = p.start_ns;
    e.end_ns = p.end_ns;
    e.retire_ns = engine_.now_ns();
    me.subtask_events.push_back(e);
  }
  if (task->subtasks_remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    complete_task(thread, task);
  }
}

void Scheduler::complete_task(int thread, TaskSlot* task) {
  if (engine_.recording()) {
    threads_[thread].completions.push_back(
        {task->sequence, task->ready_ns.load(std::memory_order_relaxed), engine_.now_ns()});
  }
  ++threads_[thread].counters.tasks_completed;
  task->state.store(TaskState::completed, std::memory_order_release);
  // Close the fanout list: consumers wired from now on see the task as already finished.
  FanoutNode* node = task->fanout_head.exchange(closed_fanout(), std::memory_order_acq_rel);
  while (node != nullptr) {
    FanoutNode* const next = node->next;  // read first: the node dies with its consumer
    TaskSlot* const consumer = node->consumer;
    ++threads_[thread].counters.edges;
    if (consumer->fanin_remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      make_ready(thread, consumer);
    }
    node = next;
  }
  // Let go of producers (their buffers may now be reclaimed), then of the task's own reference.
  Ring& ring = *task->ring;
  for (std::uint32_t i = 0; i < task->dep_count; ++i) {
    release(ring.dep_node(task->dep_begin + i).producer);
  }
  release(task);
  engine_.note_kernel_task_completed();  // after the releases: a woken orchestrator sees them
}

void Scheduler::release(TaskSlot* task) {
  task->ring->release(*task);
}

void Scheduler::core_became_busy(int thread, int core) {
  ThreadState& me = threads_[thread];
  ++me.busy_cores;
  me.free_cores[cores_[core].mailbox->type == CoreType::aic ? 0 : 1].fetch_sub(
      1, std::memory_order_relaxed);
}

void Scheduler::core_became_idle(int thread, int core) {
  ThreadState& me = threads_[thread];
  --me.busy_cores;
  me.free_cores[cores_[core].mailbox->type == CoreType::aic ? 0 : 1].fetch_add(
      1, std::memory_order_relaxed);
}

namespace {

// Whether a scheduler thread other than `thread` reports idle cores for a task of `shape`.
template <class Threads>
bool room_elsewhere(Threads& threads, int thread, TaskShape shape) {
  const bool needs_aic = shape != TaskShape::aiv;
  const bool needs_aiv = shape != TaskShape::aic;
  for (std::size_t t = 0; t < threads.size(); ++t) {
    if (static_cast<int>(t) == thread) continue;
    auto& other = threads[t];
    // RMWs order the caller's push of the task before these reads (see notify_new_work).
    auto free = [&](int type) {
      return other.free_cores[type].fetch_add(0, std::memory_order_seq_cst);
    };
    if ((!needs_aic || free(0) > 0) && (!needs_aiv || free(1) > 0)) {
      return true;
    }
  }
  return false;
}

}  // namespace

bool Scheduler::others_have_room(int thread, const TaskSlot& task) {
  return room_elsewhere(threads_, thread, task.shape);
}

// ---------------------------------------------------------------- ready queues

void Scheduler::make_ready(int thread, TaskSlot* task) {
  task->state.store(TaskState::ready, std::memory_order_relaxed);
  if (engine_.recording()) task->ready_ns.store(engine_.now_ns(), std::memory_order_relaxed);
  LocalReady& local = threads_[thread].local[static_cast<int>(task->shape)];
  if (local.count < kLocalCapacity) {
    local.tasks[local.count++] = task;
  } else {
    push_back_global(task);
  }
}

void Scheduler::push_ready_global(TaskSlot* task) {
  task->state.store(TaskState::ready, std::memory_order_relaxed);
  push_back_global(task);
  engine_.platform().notify_new_work();
}

void Scheduler::push_back_global(TaskSlot* task) {
  // Capacity covers every task slot of every ring, so a push cannot fail.
  while (!engine_.ready_queue(task->shape).try_push(task)) {
  }
}

bool Scheduler::pop_ready(int thread, TaskShape shape, TaskSlot** task) {
  ThreadState& me = threads_[thread];
  LocalReady& local = me.local[static_cast<int>(shape)];
  if (local.count > 0) {
    *task = local.tasks[--local.count];
    ++me.counters.pops;
    return true;
  }
  if (!engine_.ready_queue(shape).try_pop(*task)) return false;
  ++me.counters.pops;
  return true;
}

void Scheduler::flush_local(int thread) {
  bool pushed = false;
  for (LocalReady& local : threads_[thread].local) {
    for (int i = 0; i < local.count; ++i)
      push_back_global(local.tasks[i]);
    pushed |= local.count > 0;
    local.count = 0;
  }
  if (pushed) engine_.platform().notify_schedulers();
}

// ---------------------------------------------------------------- dispatch

bool Scheduler::dispatch_ready(int thread) {
  bool progress = dispatch_shape(thread, TaskShape::mix);  // widest first: avoid fragmenting
  const TaskShape first = thread % 2 == 0 ? TaskShape::aic : TaskShape::aiv;
  const TaskShape second = thread % 2 == 0 ? TaskShape::aiv : TaskShape::aic;
  progress |= dispatch_shape(thread, first);
  progress |= dispatch_shape(thread, second);
  const DualSlotPolicy& policy = engine_.config().dual_slot;
  if (policy.aic) progress |= dispatch_pending(thread, TaskShape::aic);
  if (policy.aiv) progress |= dispatch_pending(thread, TaskShape::aiv);
  return progress;
}

int Scheduler::find_unit(int thread, const TaskSlot& task, bool for_pending) const {
  return find_unit(thread, task.shape, task.active_mask, for_pending);
}

int Scheduler::find_unit(int thread, TaskShape shape, std::uint8_t active_mask,
                         bool for_pending) const {
  const ThreadState& me = threads_[thread];
  auto stageable = [&](int core) {
    const CoreState& c = cores_[core];
    return c.running.task != nullptr && !c.awaiting_ack && c.pending.task == nullptr &&
           !c.cohort_reserved;
  };
  auto usable = [&](int core) { return for_pending ? stageable(core) : core_free(core); };
  switch (shape) {
    case TaskShape::aic:
      for (int c : me.clusters) {
        if (usable(clusters_[c].aic)) return c;
      }
      return -1;
    case TaskShape::aiv:
      for (int c : me.clusters) {
        for (int core : clusters_[c].aiv) {
          if (usable(core)) return core;
        }
      }
      return -1;
    case TaskShape::mix:
      for (int c : me.clusters) {
        const ClusterCores& cl = clusters_[c];
        if ((active_mask & 1) && !usable(cl.aic)) continue;
        if ((active_mask & 2) && !usable(cl.aiv[0])) continue;
        if ((active_mask & 4) && !usable(cl.aiv[1])) continue;
        return c;
      }
      return -1;
  }
  return -1;
}

int Scheduler::count_free_units(int thread, const TaskSlot& task) const {
  const ThreadState& me = threads_[thread];
  int count = 0;
  for (int c : me.clusters) {
    const ClusterCores& cl = clusters_[c];
    switch (task.shape) {
      case TaskShape::aic:
        count += core_free(cl.aic);
        break;
      case TaskShape::aiv:
        count += core_free(cl.aiv[0]) + core_free(cl.aiv[1]);
        break;
      case TaskShape::mix:
        count += core_free(cl.aic) && core_free(cl.aiv[0]) && core_free(cl.aiv[1]);
        break;
    }
  }
  return count;
}

bool Scheduler::dispatch_shape(int thread, TaskShape shape) {
  bool progress = false;
  for (;;) {
    TaskSlot* task = nullptr;
    if (!pop_ready(thread, shape, &task)) return progress;
    if (task->sync_start && task->block_count > 1) {
      if (count_free_units(thread, *task) >= static_cast<int>(task->block_count)) {
        for (std::uint32_t b = 0; b < task->block_count; ++b) {
          dispatch_block(thread, find_unit(thread, *task, false), task, b, false);
        }
        progress = true;
        continue;
      }
      start_cohort(task);
      return true;
    }
    int unit = find_unit(thread, *task, false);
    if (unit < 0) {
      // No room here: wake the others if one of them has room. The shape is read first: once the
      // task is back in the queue another thread may run it and its slot be reused (TSan).
      const TaskShape waiting = task->shape;
      push_back_global(task);
      if (room_elsewhere(threads_, thread, waiting)) engine_.platform().notify_schedulers();
      return progress;
    }
    while (unit >= 0 && task->next_block < task->block_count) {
      dispatch_block(thread, unit, task, task->next_block++, false);
      progress = true;
      if (task->next_block < task->block_count) unit = find_unit(thread, *task, false);
    }
    if (task->next_block < task->block_count) {
      push_back_global(task);  // SPMD: other clusters take the remaining blocks
      engine_.platform().notify_schedulers();
      return progress;
    }
  }
}

bool Scheduler::dispatch_pending(int thread, TaskShape shape) {
  bool progress = false;
  for (;;) {
    TaskSlot* task = nullptr;
    if (!pop_ready(thread, shape, &task)) return progress;
    if (task->sync_start) {
      push_back_global(task);  // start-together tasks go to idle cores only
      return progress;
    }
    if (others_have_room(thread, *task)) {
      // An idle core elsewhere beats a pending slot here: leave the task to that thread.
      push_back_global(task);
      engine_.platform().notify_schedulers();
      return progress;
    }
    int unit = find_unit(thread, *task, true);
    if (unit < 0) {
      push_back_global(task);
      return progress;
    }
    while (unit >= 0 && task->next_block < task->block_count) {
      dispatch_block(thread, unit, task, task->next_block++, true);
      progress = true;
      if (task->next_block < task->block_count) unit = find_unit(thread, *task, true);
    }
    if (task->next_block < task->block_count) {
      push_back_global(task);
      engine_.platform().notify_schedulers();
      return progress;
    }
  }
}

void Scheduler::dispatch_block(int thread, int unit, TaskSlot* task, std::uint32_t block,
                               bool pending) {
  switch (task->shape) {
    case TaskShape::aic:
      dispatch_subtask(thread, clusters_[unit].aic, task, kSlotAic, block, 0, pending);
      return;
    case TaskShape::aiv: {
      const int sub = cores_[unit].mailbox->sub_block;
      dispatch_subtask(thread, unit, task, kSlotAiv0, block, static_cast<std::uint32_t>(sub),
                       pending);
      return;
    }
    case TaskShape::mix: {
      const ClusterCores& cl = clusters_[unit];
      if (task->active_mask & 1)
        dispatch_subtask(thread, cl.aic, task, kSlotAic, block, 0, pending);
      if (task->active_mask & 2)
        dispatch_subtask(thread, cl.aiv[0], task, kSlotAiv0, block, 0, pending);
      if (task->active_mask & 4)
        dispatch_subtask(thread, cl.aiv[1], task, kSlotAiv1, block, 1, pending);
      return;
    }
  }
}

void Scheduler::dispatch_subtask(int thread, int core, TaskSlot* task, std::uint8_t slot,
                                 std::uint32_t block, std::uint32_t sub_block, bool pending) {
  CoreState& c = cores_[core];
  ++threads_[thread].counters.dispatches;
  c.token = next_token(c.token);
  DispatchPayload& p = c.mailbox->payload[c.token & 1];
  p.fn = task->record->fns[slot];
  p.record = task->record;
  p.kernel = task->record->kernels[slot];
  p.task = task->id;
  p.block_index = block;
  p.block_count = task->block_count;
  p.sub_block = sub_block;
  p.cluster = c.mailbox->cluster;
  Subtask s{task, c.token, block, slot, engine_.recording() ? engine_.now_ns() : 0};
  if (pending) {
    c.pending = s;
  } else {
    c.running = s;
    c.awaiting_ack = true;
    core_became_busy(thread, core);
  }
  c.mailbox->dispatch.store(c.token, std::memory_order_seq_cst);
  engine_.platform().notify_core(*c.mailbox);
}

// ---------------------------------------------------------------- start-together cohorts

void Scheduler::start_cohort(TaskSlot* task) {
  std::lock_guard lock(cohort_.mutex);
  if (cohort_.active.load(std::memory_order_relaxed)) {
    push_back_global(task);  // one cohort at a time; retry later
    return;
  }
  // Copies: once the last block is placed the task may finish and its slot be reused, while a
  // late thread still looks at the cohort.
  cohort_.task = task;
  cohort_.shape = task->shape;
  cohort_.active_mask = task->active_mask;
  cohort_.block_count = task->block_count;
  cohort_.reserved.store(0, std::memory_order_relaxed);
  cohort_.next_block.store(0, std::memory_order_relaxed);
  cohort_.go.store(false, std::memory_order_relaxed);
  cohort_.finished_threads.store(0, std::memory_order_relaxed);
  cohort_.generation.fetch_add(1, std::memory_order_release);
  cohort_.active.store(true, std::memory_order_release);
  engine_.platform().notify_schedulers();
}

bool Scheduler::cohort_step(int thread) {
  ThreadState& me = threads_[thread];
  // The task itself is touched only to place a block below block_count: until then it cannot
  // finish, so its slot is still its own.
  TaskSlot* const task = cohort_.task;
  const TaskShape shape = cohort_.shape;
  const std::uint8_t mask = cohort_.active_mask;
  const std::uint32_t blocks = cohort_.block_count;
  const std::uint64_t generation = cohort_.generation.load(std::memory_order_acquire);
  bool progress = false;
  if (!cohort_.go.load(std::memory_order_acquire)) {
    // Reserve every idle unit this thread owns; no other work starts here meanwhile.
    std::uint32_t added = 0;
    for (int unit = find_unit(thread, shape, mask, false); unit >= 0;
         unit = find_unit(thread, shape, mask, false)) {
      if (shape == TaskShape::aiv) {
        cores_[unit].cohort_reserved = true;
      } else {
        const ClusterCores& cl = clusters_[unit];
        cores_[cl.aic].cohort_reserved = true;
        cores_[cl.aiv[0]].cohort_reserved = true;
        cores_[cl.aiv[1]].cohort_reserved = true;
      }
      ++added;
    }
    if (added != 0) {
      progress = true;
      const std::uint32_t total =
          cohort_.reserved.fetch_add(added, std::memory_order_acq_rel) + added;
      if (total >= blocks) {
        cohort_.go.store(true, std::memory_order_release);
        engine_.platform().notify_schedulers();
      }
    }
    if (!cohort_.go.load(std::memory_order_acquire)) return progress;
  }
  // Place blocks on the units this thread reserved, then hand back what is left.
  for (int c : me.clusters) {
    const ClusterCores& cl = clusters_[c];
    if (shape == TaskShape::aiv) {
      for (int core : cl.aiv) {
        if (!cores_[core].cohort_reserved) continue;
        cores_[core].cohort_reserved = false;
        const std::uint32_t b = cohort_.next_block.fetch_add(1, std::memory_order_acq_rel);
        if (b < blocks) dispatch_block(thread, core, task, b, false);
      }
    } else if (cores_[cl.aic].cohort_reserved) {
      cores_[cl.aic].cohort_reserved = false;
      cores_[cl.aiv[0]].cohort_reserved = false;
      cores_[cl.aiv[1]].cohort_reserved = false;
      const std::uint32_t b = cohort_.next_block.fetch_add(1, std::memory_order_acq_rel);
      if (b < blocks) dispatch_block(thread, c, task, b, false);
    }
  }
  me.cohort_done_generation = generation;
  if (cohort_.finished_threads.fetch_add(1, std::memory_order_acq_rel) + 1 ==
      static_cast<std::uint32_t>(threads_.size())) {
    std::lock_guard lock(cohort_.mutex);
    cohort_.task = nullptr;
    cohort_.active.store(false, std::memory_order_release);
    engine_.platform().notify_schedulers();
  }
  return true;
}

}  // namespace tmr::detail
