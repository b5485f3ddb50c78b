// The scheduler's view of its cores: per core a running and a pending slot, the dispatch token,
// and the ACK/FIN decision table that turns a status word into slot changes. Pure data and one
// pure function, so the table is tested without threads (tests/unit/test_scheduler_units.cpp).
#pragma once

#include <cstdint>

#include "core/mailbox.hpp"
#include "core/task.hpp"

namespace tmr::detail {

// One dispatched (block, kernel) of a task on one core. The small fields sit together before
// `dispatch_ns`: 32 bytes instead of 40, and the ACK/FIN table copies or clears a few of these
// on every poll of a worker's completion step.
struct Subtask {
  TaskSlot* task = nullptr;
  std::uint32_t token = 0;
  std::uint32_t block = 0;
  std::uint8_t slot = 0;
  bool staged = false;         // dispatched into a pending slot (behind the core's running subtask)
  bool early_handoff = false;  // placed on the finishing core by its own step after FIN
  std::uint64_t dispatch_ns = 0;
};
static_assert(sizeof(Subtask) == 32 || sizeof(void*) != 8);

// Empties a slot (as `= Subtask{}`), field by field: GCC made the assignment (and a memset) a
// `rep stos` of eight words, ~12 instructions on every worker's completion step.
inline void clear_subtask(Subtask& s) {
  s.task = nullptr;
  s.token = 0;
  s.block = 0;
  s.slot = 0;
  s.staged = false;
  s.early_handoff = false;
  s.dispatch_ns = 0;
}

struct CoreSlot {
  Mailbox* mailbox = nullptr;
  Subtask running;
  Subtask pending;               // pre-staged: the core starts it when `running` finishes
  bool awaiting_ack = false;     // the running subtask has not been latched by the core yet
  bool cohort_reserved = false;  // held for a start-together cohort
  // Its cluster is held for a waiting MIX task ("Reserved for MIX", docs/design.md): no new
  // single-core work goes to its running or pending slot; MIX blocks may still take it.
  bool mix_reserved = false;
  // The core whose own step (Scheduler::core_step) put `running` here, or -1 (a full step of the
  // orchestrator or a scheduler thread): only that core takes it back (take_back_unlatched).
  std::int16_t placed_by = -1;
  std::uint32_t token = 1;

  // Nothing running and not held: a dispatch may go to the running slot.
  bool idle() const { return running.task == nullptr && !cohort_reserved; }
  // Running and latched, pending slot empty: a dispatch may go to the pending slot (a pending
  // dispatch before the ACK could be overwritten in the payload buffer the core still reads).
  bool stageable() const {
    return running.task != nullptr && !awaiting_ack && pending.task == nullptr && !cohort_reserved;
  }
  // The same for an AIC or AIV task: a core held for a waiting MIX task takes none.
  bool idle_for_single() const { return idle() && !mix_reserved; }
  bool stageable_for_single() const { return stageable() && !mix_reserved; }
};

// What one status word meant for a core's slots.
struct SlotChange {
  // Leaves `finished` unwritten: only its first finished_count entries are read, and zeroing
  // both was ~6 instructions of every worker's completion step.
  SlotChange() {}          // NOLINT(modernize-use-equals-default): = default would zero `finished`
  int finished_count = 0;  // subtasks finished: 0, 1 (running) or 2 (running and pending)
  union {
    Subtask finished[2];
  };
  bool became_idle = false;  // the core has nothing running any more
  bool acked = false;        // the running subtask was latched (a pending dispatch may follow)
  bool progress() const { return finished_count != 0 || acked; }
};

// The ACK/FIN decision table. `status` is the core's status word (token | FIN bit).
//   status token      FIN  pending?  -> effect
//   pending's         yes  yes       -> running and pending finished; idle
//   pending's         no   yes       -> running finished; pending runs (already latched)
//   running's         yes  yes       -> running finished; pending moves up, awaits its ACK
//   running's         yes  no        -> running finished; idle
//   running's         no   -          -> ACK (once): a pending dispatch may now be written
//   anything else                    -> stale, nothing
// Inline: it runs once per finished subtask on the workers' completion path, where the call
// and the returned struct's copy were a visible share of its instructions.
inline SlotChange apply_status(CoreSlot& core, std::uint32_t status) {
  SlotChange change;
  const std::uint32_t token = status & kTokenMask;
  const bool fin = (status & kFinBit) != 0;
  // Constant indices into `finished` and no temporary Subtask: each copy is then a few moves,
  // and the caller's inlined copy of this function can drop stores nobody reads.
  if (core.pending.task != nullptr && token == core.pending.token) {
    // The core moved on to the pending subtask, so the running one is done.
    change.finished[0] = core.running;
    core.awaiting_ack = false;
    if (fin) {
      change.finished[1] = core.pending;
      change.finished_count = 2;
      clear_subtask(core.running);
      change.became_idle = true;
    } else {
      change.finished_count = 1;
      core.running = core.pending;
    }
    clear_subtask(core.pending);
    return change;
  }
  if (core.running.task == nullptr || token != core.running.token) return change;  // stale
  if (fin) {
    change.finished[0] = core.running;
    change.finished_count = 1;
    if (core.pending.task != nullptr) {
      core.running = core.pending;  // staged: the core picks it up next
      clear_subtask(core.pending);
      core.awaiting_ack = true;
    } else {
      clear_subtask(core.running);
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
