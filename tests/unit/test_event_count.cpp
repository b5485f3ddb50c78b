// EventCount (the threads platform's bells): a notify rings the futex once for the waiters that
// have not run again yet, and a wait begun after a ring is woken by the next one.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "core/cpu_relax.hpp"
#include "core/event_count.hpp"

namespace tmr::detail {
namespace {

constexpr std::uint64_t kLongNs = 5'000'000'000;  // a wait that must not time out

TEST(EventCount, NoWaiterNoSystemCall) {
  EventCount bell;
  bell.notify_all();
  bell.notify_all();
  EXPECT_EQ(bell.wakes(), 0u);
}

TEST(EventCount, RingsOnceUntilAWaiterRunsAgain) {
  EventCount bell;
  const std::uint32_t key = bell.prepare_wait();
  // Three notifies before the waiter runs again: one futex wake, as a blocked orchestrator that
  // waits for a CPU sees while every finishing task rings its bell.
  bell.notify_all();
  bell.notify_all();
  bell.notify_all();
  EXPECT_EQ(bell.wakes(), 1u);
  // The epoch moved, so the wait returns at once (woken, not timed out).
  EXPECT_TRUE(bell.wait(key, kLongNs));
  // A new wait is a new generation: the next notify rings again.
  const std::uint32_t next = bell.prepare_wait();
  EXPECT_NE(next, key);
  bell.notify_all();
  EXPECT_EQ(bell.wakes(), 2u);
  EXPECT_TRUE(bell.wait(next, kLongNs));
  // Cancelled waits count too: a ring after a cancel and no waiter makes no call.
  const std::uint32_t cancelled = bell.prepare_wait();
  (void)cancelled;
  bell.cancel_wait();
  bell.notify_all();
  EXPECT_EQ(bell.wakes(), 2u);
}

TEST(EventCount, AWaitBegunAfterARingSleepsUntilTheNextRing) {
  EventCount bell;
  // Leave the bell rung (bit set) with nobody waiting any more.
  const std::uint32_t first = bell.prepare_wait();
  bell.notify_all();
  ASSERT_TRUE(bell.wait(first, kLongNs));
  std::atomic<bool> prepared{false};
  std::atomic<bool> woke{false};
  std::atomic<std::int64_t> waited_ms{0};
  std::thread sleeper([&] {
    const std::uint32_t key = bell.prepare_wait();
    prepared.store(true, std::memory_order_release);
    const auto start = std::chrono::steady_clock::now();
    woke.store(bell.wait(key, kLongNs), std::memory_order_release);
    waited_ms.store(std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count(),
                    std::memory_order_release);
  });
  while (!prepared.load(std::memory_order_acquire))
    cpu_relax();
  // The old ring must not stand in for this one: it rings the futex again and wakes the sleeper.
  bell.notify_all();
  sleeper.join();
  EXPECT_TRUE(woke.load());
  EXPECT_LT(waited_ms.load(), 4'000);
  EXPECT_EQ(bell.wakes(), 2u);
}

TEST(EventCount, NoWakeUpLostBetweenManyWaitersAndNotifiers) {
  // Waiters sleep until a shared count reaches their target; notifiers raise it and ring. Every
  // wait must end woken (none times out), whatever the interleaving of rings and new waits.
  EventCount bell;
  std::atomic<std::uint32_t> count{0};
  constexpr std::uint32_t kRounds = 2'000;
  constexpr int kWaiters = 3;
  std::atomic<int> timeouts{0};
  std::vector<std::thread> waiters;
  for (int w = 0; w < kWaiters; ++w) {
    waiters.emplace_back([&] {
      for (std::uint32_t target = 1; target <= kRounds; ++target) {
        while (count.load(std::memory_order_acquire) < target) {
          const std::uint32_t key = bell.prepare_wait();
          if (count.load(std::memory_order_seq_cst) >= target) {
            bell.cancel_wait();
            break;
          }
          if (!bell.wait(key, kLongNs)) timeouts.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  std::thread notifier([&] {
    for (std::uint32_t i = 0; i < kRounds; ++i) {
      count.fetch_add(1, std::memory_order_seq_cst);
      bell.notify_all();
    }
  });
  notifier.join();
  for (std::thread& t : waiters)
    t.join();
  EXPECT_EQ(timeouts.load(), 0);
  EXPECT_EQ(count.load(), kRounds);
  EXPECT_LE(bell.wakes(), kRounds);
}

TEST(EventCount, NotifyUnlessRungSkipsOnlyWhileARingIsUnderWay) {
  EventCount bell;
  bell.notify_all_unless_rung();  // nobody waits, nothing rung: the full path, no call
  EXPECT_EQ(bell.wakes(), 0u);
  const std::uint32_t key = bell.prepare_wait();
  bell.notify_all_unless_rung();  // not rung yet for this key: rings
  EXPECT_EQ(bell.wakes(), 1u);
  bell.notify_all_unless_rung();  // rung: returns on the look
  EXPECT_EQ(bell.wakes(), 1u);
  EXPECT_TRUE(bell.wait(key, kLongNs));
  // A new key clears the bit: the next one rings again.
  const std::uint32_t next = bell.prepare_wait();
  bell.notify_all_unless_rung();
  EXPECT_EQ(bell.wakes(), 2u);
  EXPECT_TRUE(bell.wait(next, kLongNs));
}

TEST(EventCount, NoWakeUpLostWhenCountersSkipARingUnderWay) {
  // As the orchestrator waits for completions: notifiers raise a count with a seq_cst RMW and
  // ring with notify_all_unless_rung; waiters read the count with seq_cst loads after their key.
  EventCount bell;
  std::atomic<std::uint32_t> count{0};
  constexpr std::uint32_t kPerNotifier = 2'000;
  constexpr int kNotifiers = 2;
  constexpr std::uint32_t kTotal = kPerNotifier * kNotifiers;
  std::atomic<int> timeouts{0};
  std::vector<std::thread> waiters;
  for (int w = 0; w < 2; ++w) {
    waiters.emplace_back([&] {
      for (std::uint32_t target = 1; target <= kTotal; target += 3) {
        for (;;) {
          const std::uint32_t key = bell.prepare_wait();
          if (count.load(std::memory_order_seq_cst) >= target) {
            bell.cancel_wait();
            break;
          }
          if (!bell.wait(key, kLongNs)) timeouts.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  std::vector<std::thread> notifiers;
  for (int n = 0; n < kNotifiers; ++n) {
    notifiers.emplace_back([&] {
      for (std::uint32_t i = 0; i < kPerNotifier; ++i) {
        count.fetch_add(1, std::memory_order_seq_cst);
        bell.notify_all_unless_rung();
      }
    });
  }
  for (std::thread& t : notifiers)
    t.join();
  for (std::thread& t : waiters)
    t.join();
  EXPECT_EQ(timeouts.load(), 0);
  EXPECT_EQ(count.load(), kTotal);
}

}  // namespace
}  // namespace tmr::detail
