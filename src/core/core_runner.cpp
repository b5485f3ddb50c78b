// The core side of the mailbox protocol (core_runner.hpp).
#include "core/core_runner.hpp"

namespace tmr::detail {

std::optional<DispatchPayload> latch_dispatch(Mailbox& mailbox, std::uint32_t token) {
  std::uint32_t expected = token;
  if (!mailbox.dispatch.compare_exchange_strong(expected, token | kLatchedBit,
                                                std::memory_order_acq_rel)) {
    return std::nullopt;  // taken back by the scheduler
  }
  const DispatchPayload job = mailbox.payload[token & 1];
  mailbox.status.store(token, std::memory_order_release);  // ACK
  return job;
}

}  // namespace tmr::detail
