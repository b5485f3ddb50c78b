// The scheduler's ready queues: one global lock-free queue per task shape (any scheduler thread
// or the orchestrator pushes, any scheduler thread pops). Sized so every live task fits at once,
// so a push never fails.
#pragma once

#include <cstddef>

#include "core/mpmc_queue.hpp"
#include "core/task.hpp"

namespace tmr::detail {

class ReadyQueues {
 public:
  explicit ReadyQueues(std::size_t capacity) {
    for (MpmcQueue<TaskSlot*>& queue : queues_)
      queue.reset(capacity);
  }
  void push(TaskSlot* task) {
    MpmcQueue<TaskSlot*>& queue = queues_[static_cast<int>(task->shape)];
    while (!queue.try_push(task)) {
    }
  }
  [[gnu::always_inline]] bool try_pop(TaskShape shape, TaskSlot** task) {
    return queues_[static_cast<int>(shape)].try_pop(*task);
  }
  // try_pop for a caller whose pops never overlap (Scheduler::pops_serialised).
  [[gnu::always_inline]] bool try_pop_serial(TaskShape shape, TaskSlot** task) {
    return queues_[static_cast<int>(shape)].try_pop_serial(*task);
  }
  // A hint (two relaxed loads, no write): false when no task of `shape` was queued at the
  // moment of the look. Lets a thread skip a step that could only stage such a task.
  bool may_have(TaskShape shape) const { return !queues_[static_cast<int>(shape)].empty_hint(); }
  // Forgets every queued task. Only while no thread steps.
  void clear() {
    TaskSlot* drained = nullptr;
    for (MpmcQueue<TaskSlot*>& queue : queues_) {
      while (queue.try_pop(drained)) {
      }
    }
  }

 private:
  MpmcQueue<TaskSlot*> queues_[kShapeCount];
};

}  // namespace tmr::detail
