// An event count: lets a thread sleep until "something may have changed" without missing a
// notification, and keeps notify cheap (one load) while nobody sleeps.
//
//   auto key = bell.prepare_wait();
//   if (!condition()) bell.wait(key, timeout);   // notify() after prepare_wait wakes us
//   else bell.cancel_wait();
#pragma once

#include <atomic>
#include <cstdint>

#include "core/futex.hpp"

namespace tmr::detail {

class EventCount {
 public:
  std::uint32_t prepare_wait() {
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    return epoch_.load(std::memory_order_seq_cst);
  }
  void cancel_wait() { waiters_.fetch_sub(1, std::memory_order_seq_cst); }
  // Returns false on timeout.
  bool wait(std::uint32_t key, std::uint64_t timeout_ns = 0) {
    bool woke = true;
    if (epoch_.load(std::memory_order_seq_cst) == key) woke = futex_wait(epoch_, key, timeout_ns);
    waiters_.fetch_sub(1, std::memory_order_seq_cst);
    return woke;
  }
  void notify_all() {
    // An RMW (not a load) on waiters_ pairs with prepare_wait's RMW: either the waiter's
    // increment comes first and we see it, or ours does and the waiter sees what we published.
    if (waiters_.fetch_add(0, std::memory_order_seq_cst) == 0) return;
    epoch_.fetch_add(1, std::memory_order_seq_cst);
    futex_wake_all(epoch_);
  }

 private:
  alignas(64) std::atomic<std::uint32_t> epoch_{0};
  alignas(64) std::atomic<std::uint32_t> waiters_{0};
};

}  // namespace tmr::detail
