// The fanout protocol (src/core/graph/fanout.hpp) on its own: one thread wires consumers behind
// producers while another completes the producers at the same time. Every consumer must become
// ready exactly once (by whichever side resolves its last edge), and every reference must be
// dropped in the end. Run under TSan (the tsan preset) this also checks the memory orderings.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "core/graph/fanout.hpp"
#include "core/ring.hpp"
#include "support/test_scale.hpp"

namespace tmr::detail {
namespace {

// A 16-task ring with a small heap and dependency pool: enough for the hand-made graphs below.
RingConfig small_ring_config() {
  RingConfig config;
  config.task_window = 16;
  config.heap_bytes = 1024;
  config.dep_pool = 16;
  return config;
}

TaskSlot& admit(Ring& ring) {
  const std::uint32_t local = ring.admit(0);
  TaskSlot& t = ring.slot(local);
  t.id = TaskId(ring.index(), local);
  ring.info(local).sequence = local;
  t.ring = &ring;
  t.dep_count = 0;
  t.dep_begin = 0;
  t.state.store(TaskState::pending, std::memory_order_relaxed);
  t.release_remaining.store(1, std::memory_order_relaxed);  // its own completion
  ring.publish(local);
  return t;
}

TEST(GraphFanout, ConcurrentWiringAndCompletionMakeEachConsumerReadyOnce) {
  const int rounds = tmr::testing::scaled(200, 10);
  constexpr int kProducers = 16;
  constexpr int kConsumers = 32;
  constexpr int kEdges = 4;  // producers per consumer
  RingConfig config;
  config.task_window = 256;
  config.heap_bytes = 1024;
  config.dep_pool = 1024;
  Ring ring(0, config);
  for (int round = 0; round < rounds; ++round) {
    ring.reset();
    std::vector<TaskSlot*> producers;
    std::vector<TaskSlot*> consumers;
    for (int p = 0; p < kProducers; ++p)
      producers.push_back(&admit(ring));
    for (int c = 0; c < kConsumers; ++c)
      consumers.push_back(&admit(ring));
    std::vector<std::atomic<int>> ready(kConsumers);
    std::atomic<int> early{0};  // made ready before every producer of it had completed
    auto index_of = [&](TaskSlot* t) { return static_cast<int>(t - consumers[0]); };
    auto producer_of = [&](int c, int e) -> TaskSlot& {
      return *producers[(c * 7 + e * 3) % kProducers];
    };
    auto made_ready = [&](int c) {
      for (int e = 0; e < kEdges; ++e)
        early += producer_of(c, e).fanout_head.load() != closed_fanout() ? 1 : 0;
      ready[c].fetch_add(1);
    };
    std::atomic<bool> go{false};

    std::thread completer([&] {
      while (!go.load(std::memory_order_acquire)) {
      }
      for (TaskSlot* p : producers) {
        graph::complete(*p, [&](TaskSlot* c) { made_ready(index_of(c)); });
        graph::release_producers(*p);  // no producers of its own: drops its completion ref
      }
    });
    go.store(true, std::memory_order_release);
    for (int c = 0; c < kConsumers; ++c) {
      TaskSlot& consumer = *consumers[c];
      graph::begin_wiring(consumer, kEdges);
      const std::uint64_t first = ring.take_dep_nodes(kEdges);
      graph::WiringTally tally;
      for (int e = 0; e < kEdges; ++e) {
        tally.add(graph::wire(consumer, producer_of(c, e), ring.dep_node(first + tally.held)));
      }
      consumer.dep_begin = first;
      consumer.dep_count = tally.held;
      if (graph::finish_wiring(consumer, tally.resolved)) made_ready(c);
    }
    completer.join();
    EXPECT_EQ(early.load(), 0) << "round " << round;
    for (int c = 0; c < kConsumers; ++c) {
      ASSERT_EQ(ready[c].load(), 1) << "consumer " << c << " round " << round;
      // 0, or 1 when its last producer took the last edge without the decrement (a count of 1
      // is that producer's own: resolve_listed).
      EXPECT_LE(consumers[c]->fanin_remaining.load(), 1);
      EXPECT_GE(consumers[c]->fanin_remaining.load(), 0);
      graph::complete(*consumers[c], [](TaskSlot*) { FAIL() << "nobody waits on consumers"; });
      graph::release_producers(*consumers[c]);
    }
    for (TaskSlot* t : producers)
      EXPECT_EQ(t->release_remaining.load(), 0) << "a reference on a producer was leaked";
    for (TaskSlot* t : consumers)
      EXPECT_EQ(t->release_remaining.load(), 0);
    EXPECT_EQ(ring.retired(), static_cast<std::uint32_t>(kProducers + kConsumers));
  }
}

// The last edge of a consumer is resolved without a locked decrement: a count of 1 is the
// resolving producer's own (resolve_listed). A one-producer consumer (every task of a chain),
// guarded or not, is made ready by a plain look and keeps its count of 1; a two-producer one
// pays the decrement for the first edge only.
TEST(GraphFanout, TheLastEdgeIsResolvedWithoutTheDecrement) {
  Ring ring(0, small_ring_config());
  TaskSlot& p1 = admit(ring);
  TaskSlot& p2 = admit(ring);
  TaskSlot& guarded = admit(ring);    // behind p1
  TaskSlot& unguarded = admit(ring);  // behind p1
  TaskSlot& both = admit(ring);       // behind p1 and p2
  const std::uint64_t first = ring.take_dep_nodes(4);
  graph::begin_wiring(guarded, 1);
  ASSERT_EQ(graph::wire(guarded, p1, ring.dep_node(first)), graph::Edge::wired);
  EXPECT_FALSE(graph::finish_wiring(guarded, 0));
  graph::begin_unguarded(unguarded, 1);
  ASSERT_EQ(graph::wire_unguarded(unguarded, p1, ring.dep_node(first + 1), 1), graph::Edge::wired);
  EXPECT_FALSE(graph::finish_unguarded(unguarded, 1, 0));
  graph::begin_unguarded(both, 2);
  ASSERT_EQ(graph::wire_unguarded(both, p1, ring.dep_node(first + 2), 1), graph::Edge::wired);
  ASSERT_EQ(graph::wire_unguarded(both, p2, ring.dep_node(first + 3), 2), graph::Edge::wired);
  EXPECT_FALSE(graph::finish_unguarded(both, 2, 0));

  std::vector<TaskSlot*> made_ready;
  auto ready = [&](TaskSlot* t) { made_ready.push_back(t); };
  EXPECT_EQ(graph::complete(p1, ready), 3u);
  EXPECT_EQ(made_ready, (std::vector<TaskSlot*>{&unguarded, &guarded})) << "newest first";
  EXPECT_EQ(guarded.fanin_remaining.load(), 1) << "made ready by a look: no decrement";
  EXPECT_EQ(unguarded.fanin_remaining.load(), 1);
  EXPECT_EQ(both.fanin_remaining.load(), 1) << "its first edge: decremented";
  EXPECT_EQ(graph::complete(p2, ready), 1u);
  EXPECT_EQ(made_ready, (std::vector<TaskSlot*>{&unguarded, &guarded, &both}));
  EXPECT_EQ(both.fanin_remaining.load(), 1) << "its last edge: a look";
}

TEST(GraphFanout, WiringBehindAFinishedOrConsumedProducerResolvesAtOnce) {
  Ring ring(0, small_ring_config());
  TaskSlot& finished = admit(ring);
  TaskSlot& consumed = admit(ring);
  TaskSlot& consumer = admit(ring);
  graph::complete(finished, [](TaskSlot*) {});
  graph::complete(consumed, [](TaskSlot*) {});
  graph::release(consumed);
  graph::begin_wiring(consumer, 2);
  const std::uint64_t first = ring.take_dep_nodes(2);
  EXPECT_EQ(graph::wire(consumer, finished, ring.dep_node(first)), graph::Edge::finished);
  EXPECT_EQ(graph::wire(consumer, consumed, ring.dep_node(first + 1)), graph::Edge::consumed);
  EXPECT_EQ(finished.release_remaining.load(), 2) << "the consumer holds the finished producer";
  EXPECT_TRUE(graph::finish_wiring(consumer, 2));
}

// A consumer on a producer's list holds no reference of its own until the producer completes:
// the push is the edge's only locked instruction, and the producer takes one reference per
// listed consumer at completion, before any of them can run. Guarded (wire) and unguarded
// (wire_unguarded) consumers alike; the producer is consumed only when the last consumer that
// was on its list lets go.
TEST(GraphFanout, AListedConsumersReferenceIsTakenWhenTheProducerCompletes) {
  Ring ring(0, small_ring_config());
  TaskSlot& producer = admit(ring);
  TaskSlot& guarded = admit(ring);
  TaskSlot& unguarded = admit(ring);
  TaskSlot& late = admit(ring);
  const std::uint64_t first = ring.take_dep_nodes(3);

  graph::begin_wiring(guarded, 1);
  ASSERT_EQ(graph::wire(guarded, producer, ring.dep_node(first)), graph::Edge::wired);
  guarded.dep_begin = static_cast<std::uint32_t>(first);
  guarded.dep_count = 1;
  unguarded.dep_begin = static_cast<std::uint32_t>(first + 1);
  unguarded.dep_count = 0;
  graph::begin_unguarded(unguarded, 1);
  ASSERT_EQ(graph::wire_unguarded(unguarded, producer, ring.dep_node(first + 1), 1),
            graph::Edge::wired);
  EXPECT_EQ(unguarded.dep_count, 1u);
  EXPECT_EQ(producer.release_remaining.load(), 1) << "a push takes no reference";

  std::vector<TaskSlot*> made_ready;
  EXPECT_EQ(graph::complete(producer, [&](TaskSlot* c) { made_ready.push_back(c); }), 2u);
  EXPECT_EQ(made_ready, std::vector<TaskSlot*>{&unguarded})
      << "the guarded one waits for its guard";
  EXPECT_EQ(producer.release_remaining.load(), 3) << "its own and one per listed consumer";
  graph::release_producers(producer);  // its completion reference
  EXPECT_NE(producer.release_remaining.load(), 0);

  // Wired after the completion: the consumer takes its reference itself (finished).
  graph::begin_wiring(late, 1);
  ASSERT_EQ(graph::wire(late, producer, ring.dep_node(first + 2)), graph::Edge::finished);
  late.dep_begin = static_cast<std::uint32_t>(first + 2);
  late.dep_count = 1;
  EXPECT_EQ(producer.release_remaining.load(), 3);
  EXPECT_TRUE(graph::finish_wiring(late, 1));
  EXPECT_TRUE(graph::finish_wiring(guarded, 0));

  for (TaskSlot* consumer : {&unguarded, &guarded, &late}) {
    EXPECT_NE(producer.release_remaining.load(), 0);
    graph::complete(*consumer, [](TaskSlot*) { FAIL() << "nobody waits on consumers"; });
    graph::release_producers(*consumer);
  }
  EXPECT_EQ(producer.release_remaining.load(), 0);
  EXPECT_EQ(producer.release_remaining.load(), 0);
  EXPECT_EQ(ring.retired(), 4u);
}

// wire_unguarded behind a consumed producer: nothing held, and the count it wrote ahead of the
// push is taken back (the consumer cannot run before the edge resolves, so nobody read it).
TEST(GraphFanout, AnUnguardedWiringBehindAConsumedProducerTakesItsCountBack) {
  Ring ring(0, small_ring_config());
  TaskSlot& consumed = admit(ring);
  TaskSlot& live = admit(ring);
  TaskSlot& consumer = admit(ring);
  graph::complete(consumed, [](TaskSlot*) {});
  graph::release(consumed);
  const std::uint64_t first = ring.take_dep_nodes(2);
  consumer.dep_begin = static_cast<std::uint32_t>(first);
  consumer.dep_count = 0;
  graph::begin_unguarded(consumer, 2);
  EXPECT_EQ(graph::wire_unguarded(consumer, live, ring.dep_node(first), 1), graph::Edge::wired);
  EXPECT_EQ(graph::wire_unguarded(consumer, consumed, ring.dep_node(first + 1), 2),
            graph::Edge::consumed);
  EXPECT_EQ(consumer.dep_count, 1u);
  EXPECT_FALSE(graph::finish_unguarded(consumer, 2, 1));
  bool ready = false;
  graph::complete(live, [&](TaskSlot* c) { ready = c == &consumer; });
  EXPECT_TRUE(ready);
  graph::release_producers(live);
  graph::complete(consumer, [](TaskSlot*) {});
  graph::release_producers(consumer);
  EXPECT_EQ(live.release_remaining.load(), 0);
  EXPECT_EQ(ring.retired(), 3u);
}

// complete_and_release: a producer's listed consumers take over its own completion reference.
// One consumer: no RMW on its count, consumed when that consumer lets go. Two: one reference
// added, consumed after both. None: its own reference dropped at once (consumed then).
TEST(GraphFanout, CompleteAndReleaseHandsTheOwnReferenceToTheConsumers) {
  Ring ring(0, small_ring_config());
  TaskSlot& one = admit(ring);  // one consumer: a
  TaskSlot& a = admit(ring);    // consumer of `one`, producer of nothing
  TaskSlot& two = admit(ring);  // two consumers: b, c
  TaskSlot& b = admit(ring);
  TaskSlot& c = admit(ring);
  TaskSlot& none = admit(ring);  // no consumer
  const std::uint64_t first = ring.take_dep_nodes(3);
  auto wire_one = [&](TaskSlot& consumer, TaskSlot& producer, std::uint64_t node) {
    graph::begin_wiring(consumer, 1);
    ASSERT_EQ(graph::wire(consumer, producer, ring.dep_node(node)), graph::Edge::wired);
    consumer.dep_begin = static_cast<std::uint32_t>(node);
    consumer.dep_count = 1;
    EXPECT_FALSE(graph::finish_wiring(consumer, 0));
  };
  wire_one(a, one, first);
  wire_one(b, two, first + 1);
  wire_one(c, two, first + 2);

  std::vector<TaskSlot*> made_ready;
  auto ready = [&](TaskSlot* t) { made_ready.push_back(t); };
  graph::release_held_producers(one);
  EXPECT_EQ(graph::complete_and_release(one, ready), 1u);
  EXPECT_EQ(made_ready, std::vector<TaskSlot*>{&a});
  EXPECT_EQ(one.release_remaining.load(), 1) << "a's reference in place of its own";
  EXPECT_EQ(one.state.load(), TaskState::completed);

  graph::release_held_producers(two);
  EXPECT_EQ(graph::complete_and_release(two, ready), 2u);
  EXPECT_EQ(made_ready, (std::vector<TaskSlot*>{&a, &c, &b})) << "the list is newest first";
  EXPECT_EQ(two.release_remaining.load(), 2) << "one per consumer, its own folded in";

  graph::release_held_producers(none);
  EXPECT_EQ(graph::complete_and_release(none, ready), 0u);
  EXPECT_EQ(none.release_remaining.load(), 0);
  EXPECT_EQ(none.release_remaining.load(), 0);

  // The consumers complete: each lets go of its producer, then of itself (no consumers).
  for (TaskSlot* consumer : {&a, &b}) {
    graph::release_held_producers(*consumer);
    EXPECT_EQ(graph::complete_and_release(*consumer, ready), 0u);
  }
  EXPECT_EQ(one.release_remaining.load(), 0);
  EXPECT_EQ(two.state.load(), TaskState::completed) << "c still holds it";
  EXPECT_EQ(ring.retired(), 2u) << "`two` (2) keeps the watermark";
  graph::release_held_producers(c);
  graph::complete_and_release(c, ready);
  EXPECT_EQ(two.release_remaining.load(), 0);
  EXPECT_EQ(two.release_remaining.load(), 0);
  EXPECT_EQ(ring.retired(), 6u);
}

}  // namespace
}  // namespace tmr::detail
