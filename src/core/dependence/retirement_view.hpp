// What dependence discovery may know about the rings: how far each one has retired, and where a
// task's slot lives. A narrow view, so the dependence unit never allocates, admits or releases
// ring memory.
#pragma once

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstdint>

#include "core/ring.hpp"
#include "tmr/config.hpp"
#include "tmr/task_id.hpp"

namespace tmr::detail {

class RetirementView {
 public:
  RetirementView(Ring* const* rings, int ring_count) : ring_count_(ring_count) {
    for (int r = 0; r < ring_count; ++r) {
      rings_[r] = rings[r];
      if (rings[r] == nullptr) continue;
      watermarks_[r] = &rings[r]->retired_watermark();
      slots_[r] = &rings[r]->slot(0);
      slot_masks_[r] = rings[r]->window() - 1;
    }
  }
  int ring_count() const { return ring_count_; }
  // The largest task window of the rings there (0 without rings).
  std::uint32_t largest_window() const {
    std::uint32_t most = 0;
    for (int r = 0; r < ring_count_; ++r) {
      if (rings_[r] != nullptr) most = std::max(most, slot_masks_[r] + 1);
    }
    return most;
  }
  // Tasks of ring `ring` with a local id below this have retired (their slots may be reused).
  std::uint32_t retired(int ring) const { return rings_[ring]->retired(); }
  // Every ring's watermark into `retired[0..kRingCount)` (0 for rings the runtime lacks: they
  // hold no task): a fixed number of loads, no loop over the ring count (once per discovery).
  void snapshot(std::uint32_t* retired) const {
    static_assert(kRingCount == 4, "one load per ring below");
    retired[0] = watermarks_[0]->load(std::memory_order_acquire);
    retired[1] = watermarks_[1]->load(std::memory_order_acquire);
    retired[2] = watermarks_[2]->load(std::memory_order_acquire);
    retired[3] = watermarks_[3]->load(std::memory_order_acquire);
  }
  bool is_retired(TaskId id) const { return rings_[id.ring()]->is_retired(id); }
  // The slot of task `id` (address arithmetic only: nothing of the slot, nor of its ring, is
  // read; a slot line's reports find their tasks' slots this way).
  TaskSlot* slot(TaskId id) const { return slot(id.ring(), id.local()); }
  TaskSlot* slot(std::size_t ring, std::uint32_t local) const {
    return slots_[ring] + (local & slot_masks_[ring]);
  }
  // Tensor argument `arg` of task `id`'s record (valid while the task is live): where a slot line
  // finds the tensor of an access it keeps (TensorMap's SlotLine). A task with map entries holds
  // its own tensors: a record naming an image moved by some distance (TaskRecord::image_distance)
  // is a replayed submit's, which makes no entry (OrchestratorCore::submit_replayed).
  const Tensor* tensor(TaskId id, int arg) const {
    const TaskRecord& record = rings_[id.ring()]->record(id.local());
    assert(record.image_distance == 0);
    return &record.tensors[arg];
  }

 private:
  Ring* rings_[kRingCount] = {};
  // Each ring's slot array and window mask (fixed when the ring is built), for slot().
  TaskSlot* slots_[kRingCount] = {};
  std::uint32_t slot_masks_[kRingCount] = {};
  // Each ring's watermark (Ring::retired_watermark), or a constant 0 for a ring not there.
  inline static const std::atomic<std::uint32_t> kNoRing{0};
  const std::atomic<std::uint32_t>* watermarks_[kRingCount] = {&kNoRing, &kNoRing, &kNoRing,
                                                               &kNoRing};
  int ring_count_ = 0;
};

}  // namespace tmr::detail
