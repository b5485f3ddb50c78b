// The core side of the mailbox protocol (core_runner.hpp).
#include "core/core_runner.hpp"

#include <exception>

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

std::optional<std::string> run_kernel(const DispatchPayload& job) {
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

}  // namespace tmr::detail
