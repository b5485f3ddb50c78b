// What dependence discovery may know about the rings: how far each one has retired, and where a
// task's slot lives. A narrow view, so the dependence unit never allocates, admits or releases
// ring memory.
#pragma once

#include <cstdint>

#include "core/ring.hpp"
#include "tmr/config.hpp"
#include "tmr/task_id.hpp"

namespace tmr::detail {

class RetirementView {
 public:
  RetirementView(Ring* const* rings, int ring_count) : ring_count_(ring_count) {
    for (int r = 0; r < ring_count; ++r)
      rings_[r] = rings[r];
  }
  int ring_count() const { return ring_count_; }
  // Tasks of ring `ring` with a local id below this have retired (their slots may be reused).
  std::uint32_t retired(int ring) const { return rings_[ring]->retired(); }
  bool is_retired(TaskId id) const { return rings_[id.ring()]->is_retired(id); }
  // The slot of task `id` (address arithmetic only: nothing of the slot is read).
  TaskSlot* slot(TaskId id) const { return &rings_[id.ring()]->slot(id.local()); }

 private:
  Ring* rings_[kRingCount] = {};
  int ring_count_ = 0;
};

}  // namespace tmr::detail
