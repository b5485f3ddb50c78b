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
    auto index_of = [&](TaskSlot* t) { return static_cast<int>(t - consumers[0]); };
    std::atomic<bool> go{false};

    std::thread completer([&] {
      while (!go.load(std::memory_order_acquire)) {
      }
      for (TaskSlot* p : producers) {
        graph::complete(*p, [&](TaskSlot* c) { ready[index_of(c)].fetch_add(1); });
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
        TaskSlot& producer = *producers[(c * 7 + e * 3) % kProducers];
        tally.add(graph::wire(consumer, producer, ring.dep_node(first + tally.held)));
      }
      consumer.dep_begin = first;
      consumer.dep_count = tally.held;
      if (graph::finish_wiring(consumer, tally.resolved)) ready[c].fetch_add(1);
    }
    completer.join();
    for (int c = 0; c < kConsumers; ++c) {
      ASSERT_EQ(ready[c].load(), 1) << "consumer " << c << " round " << round;
      EXPECT_EQ(consumers[c]->fanin_remaining.load(), 0);
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

TEST(GraphFanout, WiringBehindAFinishedOrConsumedProducerResolvesAtOnce) {
  RingConfig config;
  config.task_window = 16;
  config.heap_bytes = 1024;
  config.dep_pool = 16;
  Ring ring(0, config);
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

}  // namespace
}  // namespace tmr::detail
