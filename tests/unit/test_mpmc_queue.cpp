// The ready queue: bounded, lock-free, every pushed item popped exactly once under contention
// (also with serial pops: try_pop_serial).
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
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

// A queue asked for one cell gets two: with one, a second push overwrote the first, unpopped.
TEST(MpmcQueue, OneCellAskedForHoldsEveryPushUntilPopped) {
  MpmcQueue<int> q(1);
  EXPECT_TRUE(q.try_push_single(1));
  EXPECT_TRUE(q.try_push(2));
  EXPECT_FALSE(q.try_push_single(3)) << "full";
  int v = -1;
  ASSERT_TRUE(q.try_pop(v));
  EXPECT_EQ(v, 1);
  ASSERT_TRUE(q.try_pop_serial(v));
  EXPECT_EQ(v, 2);
  EXPECT_FALSE(q.try_pop(v));
}

// try_pop_serial (pops that never overlap): FIFO, empty when nothing is queued, and every cell
// reusable after a pop, over several wraps of the ring, mixed with try_pop.
TEST(MpmcQueue, SerialPopsAreFifoAndFreeTheirCells) {
  MpmcQueue<int> q(4);
  int v = -1;
  EXPECT_FALSE(q.try_pop_serial(v));
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 4; ++i)
      ASSERT_TRUE(q.try_push(10 * round + i));
    EXPECT_FALSE(q.try_push(99)) << "full";
    for (int i = 0; i < 4; ++i) {
      const bool popped = i == 2 ? q.try_pop(v) : q.try_pop_serial(v);
      ASSERT_TRUE(popped);
      EXPECT_EQ(v, 10 * round + i);
    }
    EXPECT_FALSE(q.try_pop_serial(v)) << "empty";
  }
}

// try_push_single (the queue's only pusher): FIFO, full at capacity, cells reused over wraps,
// popped by either pop.
TEST(MpmcQueue, SinglePusherIsFifoAndBounded) {
  MpmcQueue<int> q(4);
  int v = -1;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 4; ++i)
      ASSERT_TRUE(q.try_push_single(10 * round + i));
    EXPECT_FALSE(q.try_push_single(99)) << "full";
    EXPECT_FALSE(q.try_push(99)) << "full";
    for (int i = 0; i < 4; ++i) {
      ASSERT_TRUE(i % 2 == 0 ? q.try_pop(v) : q.try_pop_serial(v));
      EXPECT_EQ(v, 10 * round + i);
    }
    EXPECT_FALSE(q.try_pop(v)) << "empty";
  }
}

// One pusher (try_push_single) against two racing poppers: every item popped exactly once.
TEST(MpmcQueue, SinglePusherWithRacingPops) {
  MpmcQueue<int> q(64);
  constexpr int kItems = 40000;
  std::vector<std::atomic<int>> seen(kItems);
  std::atomic<int> popped{0};
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    for (int i = 0; i < kItems; ++i) {
      while (!q.try_push_single(i))
        std::this_thread::yield();
    }
  });
  for (int c = 0; c < 2; ++c) {
    threads.emplace_back([&] {
      int v;
      while (popped.load() < kItems) {
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

// Serial pops from several threads taking turns under one lock (as the threads platform's gate
// serialises its steps), while two producers push: every item popped exactly once.
TEST(MpmcQueue, SerialPopsUnderOneLockWithRacingPushes) {
  MpmcQueue<int> q(256);
  constexpr int kPerProducer = 20000;
  std::vector<std::atomic<int>> seen(2 * kPerProducer);
  std::atomic<int> popped{0};
  std::mutex gate;
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
        bool got = false;
        {
          const std::lock_guard lock(gate);
          got = q.try_pop_serial(v);
        }
        if (got) {
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
