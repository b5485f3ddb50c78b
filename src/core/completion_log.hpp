// Per-core logs of completed tasks: how the orchestrator learns that a live producer has
// completed without reading that producer's slot (or any other line written for one task).
//
// Whoever completes a task (Scheduler::complete_task, under the serialisation of its scheduler
// thread's steps) appends the task's id to the log of the core it ran on: a core's log is written
// by the steps that finish its tasks, most often its own thread's, so two cores never write one
// line. A log is a ring of kEntries ids, published to readers a line (kLineEntries ids) at a time:
// the count a reader polls changes once per kLineEntries completions, and a reader only ever
// reads lines that were full when it looked. The orchestrator drains the logs now and then
// (Dependence::drain_completions, on large maps only) into marks of its own, so that a discovery
// leaves out a producer whose mark says it completed (docs/design.md, "Completed producers are
// left out").
//
// Every id in a log is a task that completed before its id was stored (release), and a reader
// loads each id with acquire: whatever id it reads, even one a writer is storing over an old one
// (a reader that fell a whole log behind), names a completed task whose writes it now sees.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "tmr/task_id.hpp"

namespace tmr::detail {

class CompletionLogs {
 public:
  static constexpr std::uint64_t kEntries = 8192;  // ids a core's log holds (a power of two)
  static constexpr std::uint64_t kLineEntries = 64 / sizeof(std::uint64_t);

  explicit CompletionLogs(int cores)
      : cores_(cores),
        // (Not zeroed: a reader reads only ids this run's writers stored.)
        ids_(std::make_unique_for_overwrite<std::uint64_t[]>(static_cast<std::size_t>(cores) *
                                                             kEntries)),
        writers_(std::make_unique<Writer[]>(static_cast<std::size_t>(cores))),
        published_(std::make_unique<Published[]>(static_cast<std::size_t>(cores))),
        drained_(std::make_unique<std::uint64_t[]>(static_cast<std::size_t>(cores))) {}

  int cores() const { return cores_; }
  // Forgets every id (a new run starts its local ids again). Only while no other thread touches
  // the logs. The ids themselves stay: a reader reads only what this run published.
  void reset() {
    for (int c = 0; c < cores_; ++c) {
      writers_[static_cast<std::size_t>(c)].next = 0;
      published_[static_cast<std::size_t>(c)].count.store(0, std::memory_order_relaxed);
      drained_[static_cast<std::size_t>(c)] = 0;
    }
  }

  // ---- writer: the steps that complete `core`'s tasks (serialised) ----
  // Task `id` completed on `core` (after its completion was published: graph::complete*).
  void record(int core, TaskId id) {
    Writer& w = writers_[static_cast<std::size_t>(core)];
    const std::uint64_t n = w.next++;
    std::atomic_ref<std::uint64_t>(ids_[static_cast<std::size_t>(core) * kEntries + (n & kMask)])
        .store(id.value(), std::memory_order_release);
    if ((w.next & (kLineEntries - 1)) == 0) {
      published_[static_cast<std::size_t>(core)].count.store(w.next, std::memory_order_release);
    }
  }

  // ---- reader: one thread (the orchestrator) ----
  // Calls visit(TaskId) for every id published since the last drain (at most kEntries a core:
  // older ones were written over). Returns how many it visited.
  template <class Visit>
  std::uint64_t drain(Visit&& visit) {
    std::uint64_t visited = 0;
    for (int c = 0; c < cores_; ++c) {
      const auto core = static_cast<std::size_t>(c);
      const std::uint64_t count = published_[core].count.load(std::memory_order_acquire);
      std::uint64_t n = drained_[core];
      if (n == count) continue;
      if (count - n > kEntries) n = count - kEntries;
      std::uint64_t* const ids = &ids_[core * kEntries];
      for (; n != count; ++n) {
        visit(TaskId::from_value(
            std::atomic_ref<std::uint64_t>(ids[n & kMask]).load(std::memory_order_acquire)));
      }
      visited += count - drained_[core] > kEntries ? kEntries : count - drained_[core];
      drained_[core] = count;
    }
    return visited;
  }

 private:
  static constexpr std::uint64_t kMask = kEntries - 1;
  static_assert((kEntries & kMask) == 0 && kEntries % kLineEntries == 0);
  // The writer's position (its own line: written for every id, read by no reader).
  struct alignas(64) Writer {
    std::uint64_t next = 0;
  };
  // Ids published, a multiple of kLineEntries (its own line: the only one a reader polls).
  struct alignas(64) Published {
    std::atomic<std::uint64_t> count{0};
  };

  int cores_;
  std::unique_ptr<std::uint64_t[]> ids_;  // core c's log: kEntries ids from c * kEntries
  std::unique_ptr<Writer[]> writers_;
  std::unique_ptr<Published[]> published_;
  std::unique_ptr<std::uint64_t[]> drained_;  // the reader's position in each log
};

}  // namespace tmr::detail
