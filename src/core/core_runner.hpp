// The core side of the mailbox protocol, written once for every platform: latch a dispatch (copy
// its payload, then ACK), run its kernel catching whatever it throws, and finish (timestamps,
// then FIN). The threads platform's core loop, the sim's core events and the sim's kernel
// workers all go through these three steps; only when and on which thread they run differs.
#pragma once

#include <cstdint>
#include <exception>
#include <optional>
#include <string>

#include "core/mailbox.hpp"

namespace tmr::detail {

// Claims dispatch `token` (sets kLatchedBit in the dispatch word if it still holds `token`),
// copies its payload, then writes the ACK: from the ACK on, the scheduler may write the next
// dispatch into the other payload buffer, so the copy comes first. Nothing when the scheduler
// took the dispatch back first (the word changed): the caller reloads the word.
std::optional<DispatchPayload> latch_dispatch(Mailbox& mailbox, std::uint32_t token);

// latch_dispatch without the copy, for a core that runs the kernel itself before its FIN (the
// threads platform's core loop): claims dispatch `token`, writes the ACK and returns its payload
// buffer in place; nullptr when the scheduler took it back. The buffer stays as written until
// this core's FIN of `token`, as take_own_dispatch's: every dispatch to this core before that FIN
// goes into the other buffer (a pending dispatch's parity is always the running one's opposite;
// take-backs skip a token to keep it so). The copy was ~40 instructions a task on the threads
// platform's pending-slot path (docs/performance.md, "Run side, session 28").
[[gnu::always_inline]] inline const DispatchPayload* latch_dispatch_in_place(Mailbox& mailbox,
                                                                             std::uint32_t token) {
  std::uint32_t expected = token;
  if (!mailbox.dispatch.compare_exchange_strong(expected, token | kLatchedBit,
                                                std::memory_order_acq_rel)) {
    return nullptr;  // taken back by the scheduler
  }
  mailbox.status.store(token, std::memory_order_release);  // ACK
  return &mailbox.payload[token & 1];
}

// For a dispatch the core's own step placed in its running slot, already latched in the word
// (Scheduler::own_core_latches_handoff): writes the ACK and returns its payload in place, not a
// copy. The scheduler writes this core's next dispatch into the other buffer (a pending
// dispatch's parity is always the running one's opposite), so this one stays as written until
// the core's FIN; the caller reads it no later than that. Inline: once per early hand-off.
inline const DispatchPayload& take_own_dispatch(Mailbox& mailbox, std::uint32_t token) {
  mailbox.status.store(token, std::memory_order_release);  // ACK
  return mailbox.payload[token & 1];
}

// Runs the job's kernel. Returns what it threw (its message), or nothing when it returned.
// Inlined: once per task on the threads platform's core loop, where the call and its frame were
// ~12 instructions.
[[gnu::always_inline]] inline std::optional<std::string> run_kernel(const DispatchPayload& job) {
  const TaskRecord& record = *job.record;
  const RecordTensors tensors(record);  // rebuilt here when the record names its image
  try {
    job.fn(KernelArgs(tensors.get(), record.tensor_count, record.scalars, record.scalar_count,
                      job.block_index, job.block_count, job.sub_block, job.cluster, record.tags));
  } catch (const std::exception& e) {
    return std::string(e.what());
  } catch (...) {
    return std::string("unknown exception");
  }
  return std::nullopt;
}

// Records the run's times in the payload the dispatch came in, then writes FIN. Inline: the
// threads platform's core loop calls it once per task.
inline void finish_dispatch(Mailbox& mailbox, std::uint32_t token, std::uint64_t start_ns,
                            std::uint64_t end_ns) {
  DispatchPayload& payload = mailbox.payload[token & 1];
  payload.start_ns = start_ns;
  payload.end_ns = end_ns;
  mailbox.status.store(token | kFinBit, std::memory_order_release);  // FIN
}

// finish_dispatch for a run that records no events: the FIN alone. The payload's times are read
// only by a recording scheduler (Scheduler::finish_subtask), and their two stores (zeros) were
// on every task of the threads platform's core loop.
inline void finish_dispatch_untimed(Mailbox& mailbox, std::uint32_t token) {
  mailbox.status.store(token | kFinBit, std::memory_order_release);  // FIN
}

}  // namespace tmr::detail
