// The ACK/FIN decision table of core_slots.hpp.
#include "core/scheduler/core_slots.hpp"

namespace tmr::detail {

SlotChange apply_status(CoreSlot& core, std::uint32_t status) {
  SlotChange change;
  const std::uint32_t token = status & kTokenMask;
  const bool fin = (status & kFinBit) != 0;
  if (core.pending.task != nullptr && token == core.pending.token) {
    // The core moved on to the pending subtask, so the running one is done.
    change.finished[change.finished_count++] = core.running;
    const Subtask next = core.pending;
    core.pending = Subtask{};
    core.awaiting_ack = false;
    if (fin) {
      core.running = Subtask{};
      change.finished[change.finished_count++] = next;
      change.became_idle = true;
    } else {
      core.running = next;
    }
    return change;
  }
  if (core.running.task == nullptr || token != core.running.token) return change;  // stale
  if (fin) {
    change.finished[change.finished_count++] = core.running;
    if (core.pending.task != nullptr) {
      core.running = core.pending;  // staged: the core picks it up next
      core.pending = Subtask{};
      core.awaiting_ack = true;
    } else {
      core.running = Subtask{};
      core.awaiting_ack = false;
      change.became_idle = true;
    }
    return change;
  }
  if (core.awaiting_ack) {
    core.awaiting_ack = false;
    change.acked = true;
  }
  return change;
}

}  // namespace tmr::detail
