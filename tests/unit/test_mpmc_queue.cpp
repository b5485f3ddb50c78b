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

// `producers` threads push items 0..producers * per_producer - 1 with push(q, item) while two
// consumers pop with pop(q, v) until all are popped: every item must be popped exactly once.
template <class Push, class Pop>
void expect_every_item_popped_once(MpmcQueue<int>& q, int producers, int per_producer, Push push,
                                   Pop pop) {
  const int items = producers * per_producer;
  std::vector<std::atomic<int>> seen(static_cast<std::size_t>(items));
  std::atomic<int> popped{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < per_producer; ++i) {
        while (!push(q, p * per_producer + i))
          std::this_thread::yield();
      }
    });
  }
  for (int c = 0; c < 2; ++c) {
    threads.emplace_back([&] {
      int v;
      while (popped.load() < items) {
        if (pop(q, v)) {
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

const auto push_any = [](MpmcQueue<int>& q, int item) { return q.try_push(item); };
const auto pop_any = [](MpmcQueue<int>& q, int& v) { return q.try_pop(v); };

TEST(MpmcQueue, EveryItemPoppedExactlyOnceUnderContention) {
  MpmcQueue<int> q(256);
  expect_every_item_popped_once(q, 2, 20000, push_any, pop_any);
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
  expect_every_item_popped_once(
      q, 1, 40000, [](MpmcQueue<int>& queue, int item) { return queue.try_push_single(item); },
      pop_any);
}

// try_push_single with the pusher's own tail (the ready queues' lanes): advanced on a push
// only, FIFO and full at capacity over wraps, and what is queued shown by may_hold_hint (the
// head's cell), which the pops' owners read: such a push leaves the queue's tail_ alone.
TEST(MpmcQueue, SinglePusherWithItsOwnTail) {
  MpmcQueue<int> q(4);
  std::size_t tail = 0;
  int v = -1;
  for (int round = 0; round < 3; ++round) {
    EXPECT_FALSE(q.may_hold_hint());
    for (int i = 0; i < 4; ++i) {
      ASSERT_TRUE(q.try_push_single(10 * round + i, tail));
      EXPECT_TRUE(q.may_hold_hint());
    }
    EXPECT_EQ(tail, static_cast<std::size_t>(4 * round + 4));
    EXPECT_FALSE(q.try_push_single(99, tail)) << "full";
    EXPECT_EQ(tail, static_cast<std::size_t>(4 * round + 4)) << "a failed push keeps the tail";
    for (int i = 0; i < 4; ++i) {
      EXPECT_TRUE(q.may_hold_hint()) << "still queued: " << 4 - i;
      ASSERT_TRUE(q.try_pop_serial(v));
      EXPECT_EQ(v, 10 * round + i);
    }
  }
  EXPECT_FALSE(q.may_hold_hint());
  std::size_t racing_tail = 0;
  MpmcQueue<int> raced(64);
  expect_every_item_popped_once(
      raced, 1, 40000,
      [&](MpmcQueue<int>& queue, int item) { return queue.try_push_single(item, racing_tail); },
      pop_any);
}

// may_hold_hint on a queue pushed with try_push answers as empty_hint does: false when empty,
// true while anything is queued, over wraps of the ring.
TEST(MpmcQueue, HeadCellHintAgreesWithTheTailHint) {
  MpmcQueue<int> q(4);
  int v = -1;
  for (int round = 0; round < 3; ++round) {
    EXPECT_FALSE(q.may_hold_hint());
    EXPECT_TRUE(q.empty_hint());
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(q.try_push(i));
      EXPECT_TRUE(q.may_hold_hint());
      EXPECT_FALSE(q.empty_hint());
    }
    for (int i = 0; i < 3; ++i) {
      EXPECT_TRUE(q.may_hold_hint());
      ASSERT_TRUE(q.try_pop(v));
    }
    EXPECT_FALSE(q.may_hold_hint());
  }
}

// A queue with spread cells (the ready queues' lanes): FIFO and full at capacity over wraps, with
// either push and either pop, and every item popped once against racing pops.
TEST(MpmcQueue, SpreadCellsKeepFifoOverWraps) {
  MpmcQueue<int, true> q(16);
  EXPECT_EQ(q.capacity(), 16u);
  std::size_t tail = 0;
  int v = -1;
  for (int round = 0; round < 4; ++round) {
    EXPECT_FALSE(q.may_hold_hint());
    for (int i = 0; i < 16; ++i)
      ASSERT_TRUE(q.try_push_single(100 * round + i, tail));
    EXPECT_FALSE(q.try_push_single(99, tail)) << "full";
    for (int i = 0; i < 16; ++i) {
      EXPECT_TRUE(q.may_hold_hint());
      ASSERT_TRUE(i % 2 == 0 ? q.try_pop(v) : q.try_pop_serial(v));
      EXPECT_EQ(v, 100 * round + i);
    }
    EXPECT_FALSE(q.try_pop(v)) << "empty";
  }
  MpmcQueue<int, true> small(2);
  EXPECT_EQ(small.capacity(), 8u) << "at least 8 cells";
  MpmcQueue<int, true> raced(64);
  std::size_t raced_tail = 0;
  constexpr int kItems = 40000;
  std::vector<std::atomic<int>> seen(kItems);
  std::atomic<int> popped{0};
  std::vector<std::thread> poppers;
  for (int p = 0; p < 2; ++p) {
    poppers.emplace_back([&] {
      int item = -1;
      while (popped.load() < kItems) {
        if (raced.try_pop(item)) {
          seen[static_cast<std::size_t>(item)].fetch_add(1);
          popped.fetch_add(1);
        }
      }
    });
  }
  for (int i = 0; i < kItems; ++i) {
    while (!raced.try_push_single(i, raced_tail)) {
    }
  }
  for (std::thread& t : poppers)
    t.join();
  for (auto& s : seen)
    EXPECT_EQ(s.load(), 1);
}

// Serial pops from several threads taking turns under one lock (as the threads platform's gate
// serialises its steps), while two producers push: every item popped exactly once.
TEST(MpmcQueue, SerialPopsUnderOneLockWithRacingPushes) {
  MpmcQueue<int> q(256);
  std::mutex gate;
  expect_every_item_popped_once(q, 2, 20000, push_any, [&](MpmcQueue<int>& queue, int& v) {
    const std::lock_guard lock(gate);
    return queue.try_pop_serial(v);
  });
}

}  // namespace
}  // namespace tmr::detail
