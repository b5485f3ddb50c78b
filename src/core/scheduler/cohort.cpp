// Start-together cohorts (cohort.hpp).
#include "core/scheduler/cohort.hpp"

namespace tmr::detail {

bool Cohort::open(TaskSlot* task) {
  std::lock_guard lock(mutex_);
  if (active_.load(std::memory_order_relaxed)) return false;
  task_ = task;
  shape_ = task->shape;
  active_mask_ = task->active_mask;
  block_count_ = task->block_count;
  reserved_.store(0, std::memory_order_relaxed);
  next_block_.store(0, std::memory_order_relaxed);
  go_.store(false, std::memory_order_relaxed);
  handed_in_ = 0;
  prepared_.clear();
  generation_.fetch_add(1, std::memory_order_release);
  active_.store(true, std::memory_order_release);
  return true;
}

void Cohort::reset() {
  std::lock_guard lock(mutex_);
  active_.store(false, std::memory_order_relaxed);
  task_ = nullptr;
  prepared_.clear();
  handed_in_ = 0;
}

Cohort::Snapshot Cohort::snapshot() const {
  std::lock_guard lock(mutex_);
  return {task_, shape_, active_mask_, block_count_, generation_.load(std::memory_order_relaxed)};
}

bool Cohort::reserve(std::uint32_t units) {
  const std::uint32_t total = reserved_.fetch_add(units, std::memory_order_acq_rel) + units;
  if (total < block_count_ || total - units >= block_count_) return false;
  go_.store(true, std::memory_order_release);
  return true;
}

std::optional<std::vector<PreparedDispatch>> Cohort::hand_in(std::span<const PreparedDispatch> mine,
                                                             int threads) {
  std::lock_guard lock(mutex_);
  prepared_.insert(prepared_.end(), mine.begin(), mine.end());
  if (++handed_in_ < threads) return std::nullopt;
  std::vector<PreparedDispatch> all = std::move(prepared_);
  prepared_.clear();
  task_ = nullptr;
  active_.store(false, std::memory_order_release);
  return all;
}

}  // namespace tmr::detail
