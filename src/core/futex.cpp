#include "core/futex.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <ctime>

namespace tmr::detail {
namespace {

long futex(const std::atomic<std::uint32_t>& word, int op, std::uint32_t value,
           const timespec* timeout) {
  // std::atomic<uint32_t> is layout-compatible with uint32_t on Linux targets.
  return syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(&word), op | FUTEX_PRIVATE_FLAG,
                 value, timeout, nullptr, 0);
}

}  // namespace

bool futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
                std::uint64_t timeout_ns) {
  timespec timeout{};
  const timespec* timeout_ptr = nullptr;
  if (timeout_ns != 0) {
    timeout.tv_sec = static_cast<time_t>(timeout_ns / 1'000'000'000ull);
    timeout.tv_nsec = static_cast<long>(timeout_ns % 1'000'000'000ull);
    timeout_ptr = &timeout;
  }
  const long rc = futex(word, FUTEX_WAIT, expected, timeout_ptr);
  return !(rc == -1 && errno == ETIMEDOUT);
}

void futex_wake_one(const std::atomic<std::uint32_t>& word) {
  futex(word, FUTEX_WAKE, 1, nullptr);
}

void futex_wake_all(const std::atomic<std::uint32_t>& word) {
  futex(word, FUTEX_WAKE, INT_MAX, nullptr);
}

}  // namespace tmr::detail
