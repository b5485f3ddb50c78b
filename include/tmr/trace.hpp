// Per-task and per-subtask event records of one run (when RuntimeConfig::record_events is set).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "tmr/kernel.hpp"
#include "tmr/task_id.hpp"

namespace tmr {

// The sequences of the tasks one task waited for: a view of its trace's producer storage (one
// flat array a run, shared by the trace's copies: a recording submit allocates nothing of its
// own). Valid while the trace (or a copy of it) lives; compares and converts like the
// std::vector it reads as.
class ProducerList {
 public:
  using value_type = std::uint64_t;
  using const_iterator = const std::uint64_t*;
  using iterator = const_iterator;

  ProducerList() = default;
  ProducerList(const std::uint64_t* first, std::uint32_t count) : first_(first), count_(count) {}

  const_iterator begin() const { return first_; }
  const_iterator end() const { return first_ + count_; }
  std::size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  std::uint64_t operator[](std::size_t i) const { return first_[i]; }
  operator std::vector<std::uint64_t>() const { return {begin(), end()}; }

  friend bool operator==(const ProducerList& a, const ProducerList& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end());
  }
  friend bool operator==(const ProducerList& a, const std::vector<std::uint64_t>& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end());
  }

 private:
  const std::uint64_t* first_ = nullptr;
  std::uint32_t count_ = 0;
};

struct TaskEvent {
  TaskId id;
  std::uint64_t sequence = 0;  // submission order, 0-based, across rings
  KernelId kernels[3] = {kNoKernel, kNoKernel, kNoKernel};
  std::uint32_t block_count = 1;
  bool inline_task = false;       // hidden alloc task
  std::uint64_t submit_ns = 0;    // times relative to the run start
  std::uint64_t ready_ns = 0;     // last producer finished (or submit, with none)
  std::uint64_t complete_ns = 0;  // last subtask finished
  ProducerList producers;         // sequences of the tasks it waited for
};

struct SubtaskEvent {
  std::uint64_t task_sequence = 0;
  std::uint32_t block = 0;
  std::uint8_t slot = 0;  // 0 AIC, 1 AIV0, 2 AIV1
  std::uint16_t core = 0;
  std::uint16_t cluster = 0;
  CoreType core_type = CoreType::aic;
  std::uint16_t scheduler_thread = 0;
  std::uint64_t dispatch_ns = 0;
  std::uint64_t start_ns = 0;
  std::uint64_t end_ns = 0;
  std::uint64_t retire_ns = 0;  // when the scheduler saw it finish
  // Pre-staged into the core's pending slot: dispatch_ns..start_ns is the time it waited there.
  bool staged = false;
  // Early hand-off (threads platform): dispatched by the completion path of this same core, on
  // the core's own thread, right after the subtask that made it ready finished there. No
  // scheduler thread took part; dispatch_ns is then at or after that subtask's end_ns.
  bool early_handoff = false;
};

// A cluster held for a MIX task that a scheduler step could not place ("Reserved for MIX",
// docs/design.md): from reserved_ns to released_ns the cores it names took no new AIC or AIV work
// (a subtask dispatched there before reserved_ns runs to its end).
struct MixReservationEvent {
  static constexpr std::uint64_t kNoTask = ~std::uint64_t{0};
  std::uint16_t cluster = 0;
  std::uint16_t scheduler_thread = 0;
  std::uint8_t active_mask = 0;  // the cores held: 1 AIC, 2 AIV0, 4 AIV1
  std::uint64_t reserved_ns = 0;
  std::uint64_t released_ns = 0;  // 0: still held when the run ended
  // The MIX block whose placement on the cluster released it; kNoTask when it was released
  // because no MIX task was left waiting (placed elsewhere), a cohort gathered or the run aborted.
  std::uint64_t placed_sequence = kNoTask;
  std::uint32_t placed_block = 0;
};

struct Trace {
  int clusters = 0;
  int scheduler_threads = 0;
  std::vector<TaskEvent> tasks;                       // indexed by sequence
  std::vector<SubtaskEvent> subtasks;                 // in completion order
  std::vector<MixReservationEvent> mix_reservations;  // in reservation order per thread
  // What the tasks' ProducerLists point into (immutable, shared by the trace's copies): a run's
  // recording is one array; set_producers adds one a call.
  std::vector<std::shared_ptr<const std::vector<std::uint64_t>>> producer_storage;

  // Makes `producers` the producers of `task` (one of `tasks`, or to be added): how a trace is
  // built by hand (tests, tools).
  void set_producers(TaskEvent& task, std::vector<std::uint64_t> producers) {
    auto stored = std::make_shared<const std::vector<std::uint64_t>>(std::move(producers));
    task.producers = ProducerList(stored->data(), static_cast<std::uint32_t>(stored->size()));
    producer_storage.push_back(std::move(stored));
  }
};

}  // namespace tmr
