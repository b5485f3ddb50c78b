// The sim platform's event queue: a min-heap of (time, sequence number), so events at the same
// virtual time run in the order they were scheduled and every run is deterministic.
#pragma once

#include <cstdint>
#include <queue>
#include <vector>

namespace tmr::detail::sim {

enum class EventKind : std::uint8_t {
  scheduler_step,  // index: scheduler thread
  core_pickup,     // index: core; reads the dispatch word and starts a new token
  core_finish,     // index: core; the running kernel ends
};

struct Event {
  std::uint64_t time = 0;
  std::uint64_t sequence = 0;
  EventKind kind = EventKind::scheduler_step;
  std::int32_t index = 0;
};

class EventQueue {
 public:
  void push(std::uint64_t time, EventKind kind, std::int32_t index) {
    heap_.push(Event{time, next_sequence_++, kind, index});
  }
  bool empty() const { return heap_.empty(); }
  std::size_t size() const { return heap_.size(); }
  const Event& top() const { return heap_.top(); }
  Event pop() {
    const Event event = heap_.top();
    heap_.pop();
    return event;
  }
  void clear() {
    heap_ = {};
    next_sequence_ = 0;
  }

 private:
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      return a.time != b.time ? a.time > b.time : a.sequence > b.sequence;
    }
  };
  std::priority_queue<Event, std::vector<Event>, Later> heap_;
  std::uint64_t next_sequence_ = 0;
};

}  // namespace tmr::detail::sim
