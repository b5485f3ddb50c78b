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
  bool try_pop(TaskShape shape, TaskSlot** task) {
    return queues_[static_cast<int>(shape)].try_pop(*task);
  }
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
