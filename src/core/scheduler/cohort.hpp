// Start-together cohorts: a sync_start task whose blocks no single scheduler thread can place.
// Every thread reserves its idle units until enough are reserved ("go"); then each thread
// prepares blocks on what it reserved (slots and payloads written, dispatch words NOT yet
// written) and hands them in; the last thread to hand in writes every dispatch word of the
// cohort in one go. So all blocks are released at one moment on every platform — on the sim
// that is one virtual instant, whichever threads placed them (issue 14.7b).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "core/mailbox.hpp"
#include "core/task.hpp"

namespace tmr::detail {

// A dispatch word prepared but not yet written.
struct PreparedDispatch {
  Mailbox* mailbox;
  std::uint32_t token;
};

class Cohort {
 public:
  // What a thread may read of the open cohort. Copies: once the last block is placed the task
  // may finish and its slot be reused while a late thread still looks at the cohort.
  struct Snapshot {
    TaskSlot* task;
    TaskShape shape;
    std::uint8_t active_mask;
    std::uint32_t block_count;
    std::uint64_t generation;
  };

  // Opens a cohort for `task`. False when one is open already (one at a time; retry later).
  bool open(TaskSlot* task);
  // Forgets any open cohort. Only while no thread steps.
  void reset();

  // True while a cohort is open that the thread whose last finished generation is
  // `done_generation` has not finished yet.
  bool waiting_for(std::uint64_t done_generation) const {
    return active_.load(std::memory_order_acquire) &&
           done_generation != generation_.load(std::memory_order_acquire);
  }
  std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  Snapshot snapshot() const;

  bool go() const { return go_.load(std::memory_order_acquire); }
  // Adds `units` reserved units. True when this call completed the reservation (set go).
  bool reserve(std::uint32_t units);
  // The next block to place, or >= block_count when every block is placed.
  std::uint32_t take_block() { return next_block_.fetch_add(1, std::memory_order_acq_rel); }

  // Hands in the dispatches one thread prepared. When the caller is the last of `threads`,
  // returns every dispatch of the cohort (the caller writes them) and closes the cohort;
  // otherwise nothing.
  std::optional<std::vector<PreparedDispatch>> hand_in(std::span<const PreparedDispatch> mine,
                                                       int threads);

 private:
  mutable std::mutex mutex_;
  std::atomic<bool> active_{false};
  std::atomic<std::uint64_t> generation_{0};
  TaskSlot* task_ = nullptr;
  TaskShape shape_ = TaskShape::aic;
  std::uint8_t active_mask_ = 0;
  std::uint32_t block_count_ = 0;
  std::atomic<std::uint32_t> reserved_{0};
  std::atomic<std::uint32_t> next_block_{0};
  std::atomic<bool> go_{false};
  int handed_in_ = 0;
  std::vector<PreparedDispatch> prepared_;
};

}  // namespace tmr::detail
