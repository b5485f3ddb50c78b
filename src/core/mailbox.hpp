// The per-core "registers": a dispatch word the scheduler writes and a status word the core
// writes (ACK when it latched a dispatch, FIN when it finished), plus two payload buffers picked
// by token parity so the next dispatch can be written while the core still runs the current one.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/task.hpp"
#include "tmr/kernel.hpp"

namespace tmr::detail {

inline constexpr std::uint32_t kTokenMask = 0x7FFFFFFFu;
inline constexpr std::uint32_t kFinBit = 0x80000000u;
// Set in the dispatch word by the core that claimed the dispatch (latch_dispatch). Until then the
// scheduler may take a pending dispatch back (compare-exchange of the word): exactly one of the
// two wins, so a dispatch either runs or is re-placed, never both (issue 12, stranding).
inline constexpr std::uint32_t kLatchedBit = 0x80000000u;
inline constexpr std::uint32_t kReservedTokens = 0x7FFFFFF0u;  // tokens from here are sentinels
inline constexpr std::uint32_t kIdleToken = 0x7FFFFFFDu;       // dispatch word: nothing to do
inline constexpr std::uint32_t kExitToken = 0x7FFFFFF0u;       // dispatch word: leave the loop

// Next dispatch token after `token`: 31 bits, skipping the sentinel range, keeping parity.
inline std::uint32_t next_token(std::uint32_t token) {
  const std::uint32_t next = token + 1;
  return next >= kReservedTokens ? 2u : next;
}

// The fields up to `cluster` (what a dispatch writes and a core reads to start the kernel) fill
// exactly one cache line; the timestamps the core writes at FIN follow on the next.
struct DispatchPayload {
  KernelFn fn = nullptr;
  const TaskRecord* record = nullptr;
  KernelId kernel = kNoKernel;  // for error messages
  TaskId task;
  std::uint32_t block_index = 0;
  std::uint32_t block_count = 1;
  std::uint32_t sub_block = 0;
  std::uint32_t cluster = 0;
  // Written by the core before FIN.
  std::uint64_t start_ns = 0;
  std::uint64_t end_ns = 0;
};

// The two payload buffers of a mailbox, picked by token parity (`payload[token & 1]`), each on
// lines of its own. Packed (80 bytes each), the second buffer's first line held the first's FIN
// timestamps: a thread writing the next dispatch there while the core finished the current one
// pulled one line back and forth between two CPUs, and a dispatch of odd parity spanned two lines.
class PayloadBuffers {
 public:
  DispatchPayload& operator[](std::uint32_t parity) { return buffers_[parity].payload; }
  const DispatchPayload& operator[](std::uint32_t parity) const { return buffers_[parity].payload; }

 private:
  struct alignas(64) Buffer {
    DispatchPayload payload;
  };
  Buffer buffers_[2];
};

struct Mailbox {
  alignas(64) std::atomic<std::uint32_t> dispatch{kIdleToken};
  std::atomic<std::uint32_t> core_parked{0};
  alignas(64) std::atomic<std::uint32_t> status{kFinBit | kIdleToken};
  alignas(64) PayloadBuffers payload;
  // Identity (fixed at start-up). Read by steps: after the buffers' whole lines, it shares none
  // with the timestamps the core writes at FIN.
  std::uint16_t core = 0;
  std::uint16_t cluster = 0;
  std::uint16_t scheduler_thread = 0;
  CoreType type = CoreType::aic;
  std::uint8_t sub_block = 0;
};

// What a dispatch writes (up to `cluster`) fills one line, the timestamps come after it (the
// buffers' placement is tests/unit/test_mailbox.cpp's).
static_assert(offsetof(DispatchPayload, start_ns) == 64);

}  // namespace tmr::detail
