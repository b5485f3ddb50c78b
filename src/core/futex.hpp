// Thin wrappers over the Linux futex: park on a 32-bit word with an optional timeout.
#pragma once

#include <atomic>
#include <cstdint>

namespace tmr::detail {

// Sleeps while `word` still holds `expected`, at most `timeout_ns` (0 = no limit).
// Returns false on timeout. Spurious wake-ups return true; callers re-check their condition.
bool futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
                std::uint64_t timeout_ns);
void futex_wake_one(const std::atomic<std::uint32_t>& word);
void futex_wake_all(const std::atomic<std::uint32_t>& word);

}  // namespace tmr::detail
