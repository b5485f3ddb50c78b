// The scheduler's ready queues: one global lock-free queue per task shape (any scheduler thread
// or the orchestrator pushes, any scheduler thread pops), and, when switched on (use_lanes), one
// lane per shape that only the orchestrator pushes to (no compare-exchange on its tail). Sized so
// every live task fits at once, so a push never fails.
#pragma once

#include <algorithm>
#include <cstddef>

#include "core/mpmc_queue.hpp"
#include "core/task.hpp"

namespace tmr::detail {

class ReadyQueues {
 public:
  explicit ReadyQueues(std::size_t capacity) : capacity_(capacity) {
    for (MpmcQueue<TaskSlot*>& queue : queues_)
      queue.reset(capacity);
    for (MpmcQueue<TaskSlot*, true>& lane : lanes_)
      lane.reset(kUnusedLane);  // sized by use_lanes
  }
  // Lanes for a single pusher (push_lane), popped before the queues. Only while no thread uses
  // the queues.
  void use_lanes(bool on) {
    lanes_on_ = on;
    for (int s = 0; s < kShapeCount; ++s) {
      const bool mix = static_cast<TaskShape>(s) == TaskShape::mix;
      lanes_[s].reset(on && !mix ? std::min(capacity_, kLaneCapacity) : kUnusedLane);
      lane_tails_[s] = 0;
    }
  }
  // push() for the lanes' one pusher. A full lane sends the task to the queue (sized for every
  // live task), so a lane need not be: each Runtime fills its cells when built (the queues'
  // 3 x 65,536 cells by default cost ~40 instructions a task of the peers' attention graph).
  // MIX tasks, placed by full steps only, go to the queue (their lane stays empty).
  void push_lane(TaskSlot* task) {
    const int s = static_cast<int>(task->shape);
    if (task->shape == TaskShape::mix || !lanes_[s].try_push_single(task, lane_tails_[s])) {
      push(task);
    }
  }
  void push(TaskSlot* task) {
    MpmcQueue<TaskSlot*>& queue = queues_[static_cast<int>(task->shape)];
    while (!queue.try_push(task)) {
    }
  }
  [[gnu::always_inline]] bool try_pop(TaskShape shape, TaskSlot** task) {
    const int s = static_cast<int>(shape);
    return (lanes_on_ && lanes_[s].try_pop(*task)) || queues_[s].try_pop(*task);
  }
  // try_pop for a caller whose pops never overlap (Scheduler::pops_serialised).
  [[gnu::always_inline]] bool try_pop_serial(TaskShape shape, TaskSlot** task) {
    const int s = static_cast<int>(shape);
    return (lanes_on_ && lanes_[s].try_pop_serial(*task)) || queues_[s].try_pop_serial(*task);
  }
  // A hint (two relaxed loads, no write): false when no task of `shape` was queued at the
  // moment of the look. Lets a thread skip a step that could only stage such a task.
  [[gnu::always_inline]] bool may_have(TaskShape shape) const {
    const int s = static_cast<int>(shape);
    // The lanes' tail_ is not kept (try_push_single with lane_tails_): their head cell says.
    return (lanes_on_ && lanes_[s].may_hold_hint()) || !queues_[s].empty_hint();
  }
  // Forgets every queued task. Only while no thread steps.
  void clear() {
    TaskSlot* drained = nullptr;
    for (MpmcQueue<TaskSlot*>& queue : queues_) {
      while (queue.try_pop(drained)) {
      }
    }
    for (MpmcQueue<TaskSlot*, true>& lane : lanes_) {
      while (lane.try_pop(drained)) {
      }
    }
  }

 private:
  // A lane of 4,096 cells sent 18% of the independent graph's tasks to the queue (callgrind,
  // whose thread switches let the orchestrator run ahead).
  static constexpr std::size_t kLaneCapacity = 16384;
  // A lane nobody pushes to. Two cells, not one: a queue of one cell cannot tell a full cell
  // from a free one (its pop leaves the sequence its next push expects).
  static constexpr std::size_t kUnusedLane = 2;
  std::size_t capacity_;
  bool lanes_on_ = false;
  MpmcQueue<TaskSlot*> queues_[kShapeCount];
  MpmcQueue<TaskSlot*, true> lanes_[kShapeCount];
  // The lanes' tails as their one pusher keeps them (push_lane): loading a lane's own tail_ was
  // a miss on most pushes (its line, 64 bytes from the head every pop writes, was read by every
  // empty_hint), and storing it one cross-CPU transfer a push (may_have now reads a lane's head
  // cell instead). On 128 bytes of their own (the adjacent-line prefetch pairs lines).
  alignas(128) std::size_t lane_tails_[kShapeCount] = {};
};

}  // namespace tmr::detail
