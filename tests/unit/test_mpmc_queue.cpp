// The ready queue: bounded, lock-free, every pushed item popped exactly once under contention.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "core/mpmc_queue.hpp"

namespace tmr::detail {
namespace {

TEST(MpmcQueue, FifoAndBounded) {
  MpmcQueue<int> q(4);
  for (int i = 0; i < 4; ++i)
    EXPECT_TRUE(q.try_push(i));
  EXPECT_FALSE(q.try_push(99));
  int v = -1;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(q.try_pop(v));
    EXPECT_EQ(v, i);
  }
  EXPECT_FALSE(q.try_pop(v));
}

TEST(MpmcQueue, EveryItemPoppedExactlyOnceUnderContention) {
  MpmcQueue<int> q(256);
  constexpr int kPerProducer = 20000;
  std::vector<std::atomic<int>> seen(2 * kPerProducer);
  std::atomic<int> popped{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < 2; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i) {
        while (!q.try_push(p * kPerProducer + i))
          std::this_thread::yield();
      }
    });
  }
  for (int c = 0; c < 2; ++c) {
    threads.emplace_back([&] {
      int v;
      while (popped.load() < 2 * kPerProducer) {
        if (q.try_pop(v)) {
          seen[static_cast<std::size_t>(v)].fetch_add(1);
          popped.fetch_add(1);
        } else {
          std::this_thread::yield();
        }
      }
    });
  }
  for (auto& t : threads)
    t.join();
  for (auto& s : seen)
    EXPECT_EQ(s.load(), 1);
}

}  // namespace
}  // namespace tmr::detail
