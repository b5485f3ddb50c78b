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
  // Bit 0 of the epoch says "rung since the latest prepare_wait": a notifier that finds it set
  // knows a wake-up for every sleeper is already under way, and skips the system call.
  std::uint32_t prepare_wait() {
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    std::uint32_t epoch = epoch_.load(std::memory_order_seq_cst);
    // A wake-up rung before this wait began: start a new generation (even epoch), so the next
    // notify rings for this waiter. A failed exchange reloads `epoch`; a notifier may have rung
    // again meanwhile, so loop until the key is even.
    while ((epoch & kRung) != 0) {
      if (epoch_.compare_exchange_weak(epoch, epoch + 1, std::memory_order_seq_cst))
        return epoch + 1;
    }
    return epoch;
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
    // Already rung since every current waiter took its key (a waiter stays counted until it
    // runs again, which on a busy host takes milliseconds): its ringer's wake-up, or the changed
    // epoch, reaches them all. Without this every completion in that time made a futex system
    // call (docs/performance.md, "Run side, session 16").
    if ((epoch_.fetch_or(kRung, std::memory_order_seq_cst) & kRung) != 0) return;
    wakes_.fetch_add(1, std::memory_order_relaxed);
    futex_wake_all(epoch_);
  }
  // notify_all for a notifier whose change was a seq_cst RMW (a completion count) that every
  // waiter reads with seq_cst loads after its prepare_wait: with the rung bit set (a seq_cst
  // load, no RMW) it returns at once. Either the waiter's loads follow the RMW in the single
  // total order (it sees the change, and what was written before it), or they precede it, and
  // so does its key: then this load sees the key's epoch or a later one, and a later one with
  // the bit set means a ring after the key, which wakes the waiter to look again. Saves
  // notify_all's two RMWs on lines the waiter writes, per completion from a waiting
  // orchestrator's threshold until it runs (milliseconds on a busy host).
  void notify_all_unless_rung() {
    if ((epoch_.load(std::memory_order_seq_cst) & kRung) != 0) return;
    notify_all();
  }
  // For tests: the futex wake-ups notify_all made.
  std::uint64_t wakes() const { return wakes_.load(std::memory_order_relaxed); }

 private:
  static constexpr std::uint32_t kRung = 1;
  alignas(64) std::atomic<std::uint32_t> epoch_{0};
  alignas(64) std::atomic<std::uint32_t> waiters_{0};
  std::atomic<std::uint64_t> wakes_{0};  // on waiters_' line: written only with a system call
};

}  // namespace tmr::detail
