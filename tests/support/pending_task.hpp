// Admitting a task on a ring as the orchestrator does before dependence discovery, for unit tests
// that drive the TensorMap or the dependence unit without an engine.
#pragma once

#include <cstdint>

#include "core/ring.hpp"

namespace tmr::testing {

// The next slot of `ring` (ring 0 of the test), admitted with no heap bytes, named and pending.
inline detail::TaskSlot& admit_pending_task(detail::Ring& ring) {
  const std::uint32_t local = ring.admit(0);
  detail::TaskSlot& slot = ring.slot(local);
  slot.id = TaskId(0, local);
  slot.ring = &ring;
  slot.state.store(detail::TaskState::pending);
  slot.release_remaining.store(1);  // its completion: not consumed
  return slot;
}

}  // namespace tmr::testing
