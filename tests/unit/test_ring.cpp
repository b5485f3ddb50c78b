// Rings: window admission, a heap that wraps without straddling the end, and reclamation that
// follows the retire watermark over consecutive consumed tasks only.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/cpu_relax.hpp"
#include "core/graph/fanout.hpp"
#include "core/ring.hpp"

namespace tmr::detail {
namespace {

Ring make_ring(std::uint32_t window, std::uint64_t heap) {
  RingConfig config;
  config.task_window = window;
  config.heap_bytes = heap;
  config.dep_pool = 16;
  return Ring(0, config);
}

void consume(Ring& ring, std::uint32_t local) {
  ring.slot(local).release_remaining.store(0);
}

void admit_published(Ring& ring, std::uint64_t consumed) {
  const std::uint32_t local = ring.admit(consumed);
  ring.slot(local).release_remaining.store(1);
  ring.publish(local);
}

// A record keeps up to kInlineTensorArgs tensors and kInlineScalarArgs scalars inline; more go
// to its slot's spill area, chosen by count alone (each kind on its own), the same for a slot's
// every task as the ring wraps, and never another slot's.
TEST(Ring, RecordArgumentStorageByCount) {
  Ring ring = make_ring(8, 1024);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(&ring.record(0)) % 64, 0u);
  static_assert(sizeof(TaskRecord) % 64 == 0);
  for (std::uint32_t local = 0; local < 8; ++local) {
    TaskRecord& r = ring.record(local);
    EXPECT_EQ(ring.tensor_storage(local, 0), r.inline_tensors);
    EXPECT_EQ(ring.tensor_storage(local, kInlineTensorArgs), r.inline_tensors);
    EXPECT_EQ(ring.scalar_storage(local, kInlineScalarArgs), r.inline_scalars);
    Tensor* const tensors = ring.tensor_storage(local, kInlineTensorArgs + 1);
    std::uint64_t* const scalars = ring.scalar_storage(local, kInlineScalarArgs + 1);
    EXPECT_EQ(ring.tensor_storage(local, kMaxTensorArgs), tensors);
    EXPECT_EQ(ring.scalar_storage(local, kMaxScalarArgs), scalars);
    EXPECT_EQ(ring.tensor_storage(local + 8, kMaxTensorArgs), tensors);  // wrapped: same slot
    // Outside the record, and disjoint from the neighbouring slot's area.
    const auto* record_begin = reinterpret_cast<const char*>(&r);
    const auto* t = reinterpret_cast<const char*>(tensors);
    EXPECT_TRUE(t + kMaxTensorArgs * sizeof(Tensor) <= record_begin ||
                t >= record_begin + sizeof(TaskRecord));
    if (local + 1 < 8) {
      EXPECT_GE(ring.tensor_storage(local + 1, kMaxTensorArgs), tensors + kMaxTensorArgs);
      EXPECT_GE(ring.scalar_storage(local + 1, kMaxScalarArgs), scalars + kMaxScalarArgs);
    }
    ring.bind_arguments(local, kInlineTensorArgs + 1, 1);  // only the tensors spill
    EXPECT_EQ(r.tensors, tensors);
    EXPECT_EQ(r.scalars, r.inline_scalars);
    ring.bind_arguments(local, 2, kInlineScalarArgs + 1);  // only the scalars spill
    EXPECT_EQ(r.tensors, r.inline_tensors);
    EXPECT_EQ(r.scalars, scalars);
  }
}

TEST(Ring, WindowAdmitsAtMostWindowMinusOneLiveTasks) {
  Ring ring = make_ring(4, 1024);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(ring.window_has_room());
    admit_published(ring, 0);
  }
  EXPECT_FALSE(ring.window_has_room());
  consume(ring, 0);
  ring.try_advance();
  ring.refresh();
  EXPECT_TRUE(ring.window_has_room());
}

TEST(Ring, WatermarkOnlyPassesConsecutiveConsumedTasks) {
  Ring ring = make_ring(8, 1024);
  for (int i = 0; i < 4; ++i)
    admit_published(ring, 0);
  consume(ring, 1);
  consume(ring, 2);
  EXPECT_FALSE(ring.try_advance());
  EXPECT_EQ(ring.retired(), 0u);
  consume(ring, 0);
  EXPECT_TRUE(ring.try_advance());
  EXPECT_EQ(ring.retired(), 3u);
}

// The batched publish stores the watermark's limit without advancing it. When every task of a
// batch was consumed before the batch was published, no releaser is left to move the watermark:
// the next refresh must (CI once saw a tiny-ring loop program end in flow_control_deadlock with
// its oldest "live" task consumed).
TEST(Ring, RefreshRetiresABatchConsumedBeforeItWasPublished) {
  Ring ring = make_ring(32, 1024);
  for (std::uint32_t i = 0; i < 16; ++i) {
    const std::uint32_t local = ring.admit(0);
    ring.slot(local).release_remaining.store(1);
    if (i < 15) {
      ring.publish_batched(local);
      consume(ring, local);
      ring.try_advance();  // what a releasing worker does: nothing is published yet
    } else {
      consume(ring, local);
      ring.publish_batched(local);  // the 16th submit stores the batch, all of it consumed
    }
  }
  EXPECT_EQ(ring.retired(), 0u);
  EXPECT_EQ(ring.refresh(), 16u);
  EXPECT_EQ(ring.live_tasks(), 0u);
}

TEST(Ring, HeapWrapsWithoutStraddlingTheEnd) {
  Ring ring = make_ring(16, 1024);
  std::uint64_t offset = 0, consumed = 0;
  ASSERT_TRUE(ring.heap_fits(384, &offset, &consumed));
  EXPECT_EQ(offset, 0u);
  admit_published(ring, consumed);
  ASSERT_TRUE(ring.heap_fits(384, &offset, &consumed));
  EXPECT_EQ(offset, 384u);
  admit_published(ring, consumed);
  // 256 bytes remain at the end, 384 do not fit there and the start is still held.
  EXPECT_FALSE(ring.heap_fits(384, &offset, &consumed));
  consume(ring, 0);
  ring.try_advance();
  ring.refresh();
  ASSERT_TRUE(ring.heap_fits(384, &offset, &consumed));
  EXPECT_EQ(offset, 0u) << "a buffer never straddles the end: it wraps to the start";
  EXPECT_EQ(consumed, 256u + 384u) << "the skipped tail counts as used until reclaimed";
  admit_published(ring, consumed);
  EXPECT_EQ(ring.heap_used(), 384u + 256u + 384u);
}

// heap_fits keeps the heap's position without dividing (Ring::heap_position_): over many wraps of
// a heap whose size is no power of two, with buffers of many sizes retiring in order, every
// answer (fits, offset, bytes consumed) is the one the position heap_top % capacity gives.
TEST(Ring, HeapPositionMatchesTheLinearTopModuloTheCapacityOverManyWraps) {
  constexpr std::uint64_t kHeap = 13 * 64;
  Ring ring = make_ring(64, kHeap);
  std::uint64_t top = 0;  // the model: linear heap top and tail
  std::uint64_t tail = 0;
  std::vector<std::uint64_t> ends;  // heap top after each admitted task
  std::uint32_t seed = 12345;
  auto next = [&] { return seed = seed * 1103515245u + 12345u; };
  int wraps = 0;
  for (int step = 0; step < 4000; ++step) {
    if (next() % 3 == 0 && ring.live_tasks() > 0) {
      // The oldest task finishes: the tail moves to its end.
      const std::uint32_t local = ring.retired_seen();
      consume(ring, local);
      ring.try_advance();
      ring.refresh();
      tail = ends[local];
      ASSERT_EQ(ring.heap_used(), top - tail);
      continue;
    }
    const std::uint64_t bytes = 64 * (next() % 6);  // 0 (no outputs) to 320 bytes
    const std::uint64_t position = top % kHeap;
    const std::uint64_t waste = position + bytes > kHeap ? kHeap - position : 0;
    const bool fits = top + waste + bytes - tail <= kHeap;
    std::uint64_t offset = ~0ull, consumed = ~0ull;
    ASSERT_EQ(ring.heap_fits(bytes, &offset, &consumed), fits) << "step " << step;
    if (!fits || !ring.window_has_room()) continue;
    ASSERT_EQ(offset, (position + waste) % kHeap) << "step " << step;
    ASSERT_EQ(consumed, waste + bytes) << "step " << step;
    admit_published(ring, consumed);
    wraps += waste != 0 || (position + bytes == kHeap && bytes != 0);
    top += consumed;
    ends.push_back(top);
  }
  EXPECT_GT(wraps, 20) << "the heap wrapped too rarely to test the position";
}

TEST(Ring, ReleaseConsumesOnLastReferenceAndHoldFailsAfterwards) {
  Ring ring = make_ring(8, 1024);
  admit_published(ring, 0);
  TaskSlot& slot = ring.slot(0);
  slot.ring = &ring;
  slot.release_remaining.store(2);
  EXPECT_TRUE(graph::hold(slot));
  EXPECT_FALSE(ring.release(slot));
  EXPECT_FALSE(ring.release(slot));
  EXPECT_TRUE(ring.release(slot));  // last reference: consumed, watermark moves
  EXPECT_EQ(ring.retired(), 1u);
  EXPECT_FALSE(graph::hold(slot)) << "a consumed task cannot be held again";
}

// Workers' releases retire in groups of 8 (Ring::release_in_group): only the one that consumes a
// group's last task advances, over the whole group when it is consumed by then. A task consumed
// after its group's end waits for a later group end or the orchestrator's look (refresh). Fails
// with release_in_group advancing on every consumption.
TEST(Ring, WorkersReleasesAdvanceTheWatermarkAtGroupEnds) {
  Ring ring = make_ring(32, 1024);
  for (std::uint32_t i = 0; i < 24; ++i) {
    admit_published(ring, 0);
    ring.slot(i).id = TaskId(0, i);
  }
  for (std::uint32_t i = 0; i < 7; ++i)
    EXPECT_FALSE(ring.release_in_group(ring.slot(i))) << i;
  EXPECT_EQ(ring.retired(), 0u) << "consumed, left for the group's end";
  EXPECT_TRUE(ring.release_in_group(ring.slot(7)));
  EXPECT_EQ(ring.retired(), 8u) << "the group's end passes the whole group";

  EXPECT_FALSE(ring.release_in_group(ring.slot(9)));
  EXPECT_FALSE(ring.release_in_group(ring.slot(15))) << "task 8 is held: the scan stops there";
  EXPECT_FALSE(ring.release_in_group(ring.slot(8))) << "not a group's end: no advance";
  EXPECT_EQ(ring.retired(), 8u);
  ring.refresh();
  EXPECT_EQ(ring.retired(), 10u) << "the orchestrator's look passes 8 and 9";
  for (std::uint32_t i = 10; i < 15; ++i)
    EXPECT_FALSE(ring.release_in_group(ring.slot(i)));
  EXPECT_EQ(ring.retired(), 10u) << "15 was consumed before them: no group end left to come";
  for (std::uint32_t i = 16; i < 24; ++i)
    ring.release_in_group(ring.slot(i));
  EXPECT_EQ(ring.retired(), 24u) << "the next group's end passes them all";
  // An orchestrator's release (Ring::release) advances at once.
  admit_published(ring, 0);
  ring.slot(24).id = TaskId(0, 24);
  EXPECT_TRUE(ring.release(ring.slot(24)));
  EXPECT_EQ(ring.retired(), 25u);
}

// The watermark moves with a compare-exchange from any releaser (Ring::try_advance). Three
// threads drop the three references of every task, each in its own order (submit order,
// reversed, a stride through the round), while the orchestrator admits a round of tasks,
// publishing in batches as the submit path does (tasks may be consumed before their batch is
// published), then publishes the rest (publish_all) without waiting. Checked, while they run:
// the watermark never passes a task one of whose references is still held (its slot would be
// reused early); and at the end of each round, with every task published and released, it
// stands at the round's end without another look by the orchestrator (no advance lost between
// racing releasers). Fails with try_advance returning after its first successful exchange (an
// advance is lost) or treating a held task as consumed.
TEST(Ring, ConcurrentReleasersLoseNoAdvanceAndPassNoHeldTask) {
  constexpr std::uint32_t kRound = 24;  // fits the window: a round never waits for room
  constexpr std::uint32_t kRounds = 2000;
  constexpr int kReleasers = 3;
  Ring ring = make_ring(32, 1024);
  std::vector<std::atomic<std::uint8_t>> dropped(kRound * kRounds);  // references let go of
  std::atomic<std::uint32_t> admitted{0};
  std::atomic<std::uint32_t> rounds_done{0};  // releasers' finished rounds, all of them summed
  auto releaser = [&](int who) {
    for (std::uint32_t round = 0; round < kRounds; ++round) {
      const std::uint32_t begin = round * kRound;
      for (std::uint32_t i = 0; i < kRound; ++i) {
        const std::uint32_t offset = who == 0 ? i : who == 1 ? kRound - 1 - i : (i * 7) % kRound;
        const std::uint32_t task = begin + offset;
        while (admitted.load(std::memory_order_acquire) <= task)
          std::this_thread::yield();
        dropped[task].fetch_add(1, std::memory_order_relaxed);
        ring.release(ring.slot(task));
      }
      rounds_done.fetch_add(1, std::memory_order_release);
    }
  };
  std::vector<std::thread> threads;
  for (int who = 0; who < kReleasers; ++who)
    threads.emplace_back(releaser, who);
  std::uint32_t passed_held = 0, stopped_short = 0, checked = 0;
  auto check_behind_watermark = [&] {
    for (const std::uint32_t retired = ring.retired(); checked < retired; ++checked)
      passed_held += dropped[checked].load(std::memory_order_relaxed) != kReleasers ? 1 : 0;
  };
  for (std::uint32_t round = 0; round < kRounds; ++round) {
    for (std::uint32_t i = 0; i < kRound; ++i) {
      do {
        ring.refresh();
        check_behind_watermark();
      } while (!ring.window_has_room());
      const std::uint32_t local = ring.admit(0);
      ring.slot(local).release_remaining.store(kReleasers, std::memory_order_relaxed);
      ring.publish_batched(local);
      admitted.store(local + 1, std::memory_order_release);
    }
    ring.publish_all();
    while (rounds_done.load(std::memory_order_acquire) < kReleasers * (round + 1))
      check_behind_watermark();
    check_behind_watermark();
    stopped_short += ring.retired() != (round + 1) * kRound ? 1 : 0;
    ring.refresh();  // the next round's room
  }
  for (std::thread& t : threads)
    t.join();
  EXPECT_EQ(passed_held, 0u);
  EXPECT_EQ(stopped_short, 0u) << "rounds whose watermark stopped before a consumed task";
  EXPECT_EQ(ring.retired(), kRound * kRounds);
}

// Two threads consume neighbouring tasks at nearly the same moment, over and over (the second
// thread's start is swept across the first's by a varying delay): whichever exchange loses must
// scan again from where the winner left the watermark, so after each pair it stands past both.
// Fails with try_advance giving up after a failed exchange.
TEST(Ring, TwoReleasersRacingForTheWatermarkBothGetPast) {
  constexpr std::uint32_t kPairs = 100000;
  Ring ring = make_ring(8, 1024);
  std::atomic<std::uint32_t> go{0};    // pairs the other thread may release
  std::atomic<std::uint32_t> done{0};  // pairs it released
  std::thread other([&] {
    for (std::uint32_t pair = 0; pair < kPairs; ++pair) {
      for (int spins = 0; go.load(std::memory_order_acquire) <= pair; ++spins) {
        if (spins > 1000) std::this_thread::yield();  // a host with one CPU free
      }
      ring.release(ring.slot(2 * pair + 1));
      done.store(pair + 1, std::memory_order_release);
    }
  });
  std::uint32_t stopped_short = 0;
  for (std::uint32_t pair = 0; pair < kPairs; ++pair) {
    for (int i = 0; i < 2; ++i) {
      const std::uint32_t local = ring.admit(0);
      ring.slot(local).release_remaining.store(1, std::memory_order_relaxed);
      ring.publish(local);
    }
    go.store(pair + 1, std::memory_order_release);
    for (std::uint32_t delay = pair % 32; delay > 0; --delay)
      cpu_relax();
    ring.release(ring.slot(2 * pair));
    for (int spins = 0; done.load(std::memory_order_acquire) <= pair; ++spins) {
      if (spins > 1000) std::this_thread::yield();
    }
    stopped_short += ring.retired() != 2 * pair + 2 ? 1 : 0;
    ring.refresh();  // room for the next pair (and past anything the check above found left)
  }
  other.join();
  EXPECT_EQ(stopped_short, 0u) << "pairs after which the watermark stopped before a consumed task";
}

// The VmFlags line of the mapping of /proc/self/smaps that holds `address` ("" if none).
std::string mapping_flags(const void* address) {
  const auto at = reinterpret_cast<std::uintptr_t>(address);
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    std::uintptr_t begin = 0, end = 0;
    char dash = 0;
    std::istringstream range(line);
    if (range >> std::hex >> begin >> dash >> end && dash == '-') {
      inside = begin <= at && at < end;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line;
    }
  }
  return "";
}

// A large window of task records (2.8 KB each: one page per submit with 4 KiB pages) asks for
// transparent huge pages; a small one does not (the TLB maps it anyway).
TEST(Ring, LargeRecordWindowsAskForHugePages) {
  if (!std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled") ||
      !std::ifstream("/proc/self/smaps")) {
    GTEST_SKIP() << "no transparent huge pages or no /proc/self/smaps here";
  }
  RingConfig config;
  config.task_window = 16384;
  config.heap_bytes = 1024;
  config.dep_pool = 16;
  Ring large(0, config);
  const std::string flags = mapping_flags(&large.record(config.task_window / 2));
  ASSERT_NE(flags, "");
  EXPECT_NE((flags + " ").find(" hg "), std::string::npos) << flags;

  config.task_window = 64;
  Ring small(1, config);
  EXPECT_EQ((mapping_flags(&small.record(32)) + " ").find(" hg "), std::string::npos);
}

}  // namespace
}  // namespace tmr::detail
