// The orchestrator's run-ahead rate: how long the cores take to finish a task, as the
// orchestrator's periodic syncs see the completed count move (OrchestratorCore::wait_run_ahead).
#pragma once

#include <algorithm>
#include <cstdint>

namespace tmr::detail {

class RunAheadRate {
 public:
  static constexpr std::uint64_t kUnknown = ~std::uint64_t{0};
  // A sample ends once this many tasks finished or this long passed since it began.
  static constexpr std::uint64_t kSampleTasks = 256;
  static constexpr std::uint64_t kSampleNs = 100'000;
  // A wait's sleeps: at least this long (a shorter timed sleep costs its wake-up and finds
  // little changed), at most this long (the count is looked at again after it).
  static constexpr std::uint64_t kMinSleepNs = 5'000;
  static constexpr std::uint64_t kMaxSleepNs = 200'000;

  // A run's start: no rate known.
  void reset() {
    from_count_ = 0;
    from_ns_ = kUnknown;
    task_ns_ = kUnknown;
  }
  // A look at the completed count at `now_ns` (the platform's clock): ends the sample, and sets
  // the ns a finished task from it, once kSampleTasks finished or kSampleNs passed since it began.
  // A sample in which none finished leaves the rate unknown (no task seen finishing).
  void see(std::uint64_t completed, std::uint64_t now_ns) {
    if (from_ns_ == kUnknown || now_ns < from_ns_ || completed < from_count_) {
      from_count_ = completed;
      from_ns_ = now_ns;
      return;
    }
    const std::uint64_t done = completed - from_count_;
    const std::uint64_t elapsed = now_ns - from_ns_;
    if (done < kSampleTasks && elapsed < kSampleNs) return;
    task_ns_ = done == 0 ? kUnknown : elapsed / done;
    from_count_ = completed;
    from_ns_ = now_ns;
  }
  // Wall ns a finished task in the last whole sample; kUnknown before one, or when none finished.
  std::uint64_t task_ns() const { return task_ns_; }
  // Whether the last sample's tasks took less than `short_task_ns` each.
  bool short_tasks(std::uint64_t short_task_ns) const { return task_ns_ < short_task_ns; }
  // How long to sleep for `left` more tasks to finish at this rate (within the bounds above).
  std::uint64_t sleep_ns(std::uint64_t left) const {
    if (task_ns_ == kUnknown) return kMinSleepNs;
    const std::uint64_t ns =
        left > kMaxSleepNs / std::max<std::uint64_t>(1, task_ns_) ? kMaxSleepNs : left * task_ns_;
    return std::clamp(ns, kMinSleepNs, kMaxSleepNs);
  }

 private:
  std::uint64_t from_count_ = 0;
  std::uint64_t from_ns_ = kUnknown;
  std::uint64_t task_ns_ = kUnknown;
};

}  // namespace tmr::detail
