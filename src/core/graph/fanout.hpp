// The dependency graph's lock-free fanout protocol, both halves in one place.
//
// Consumer side (the orchestrator, one thread): a new task starts with fanin = producers + 1
// (a guard, so it cannot become ready while still being wired). For each producer it pushes an
// edge node onto the producer's fanout list with a CAS; if the list is already closed the
// producer has finished, and the edge counts as resolved at once (the consumer then takes its
// reference on the producer itself: hold). Finally it drops the guard and the resolved edges in
// one step; whoever brings fanin to zero makes the task ready.
//
// Producer side (any scheduler thread): at completion the producer closes its list with one
// exchange (later consumers see it closed and count it as finished), takes one reference on
// itself for every node on the list (the references those consumers hold), and decrements every
// consumer on it; then the consumer, when it completes itself, drops the references it held on
// its producers, and its own. A consumer on the list needs no reference of its own before that:
// until the producer completes, its own completion reference keeps it from being consumed. So a
// wired edge costs the orchestrator one locked instruction (the push), not two (hold and push),
// and the producer one per completion (the references of all its consumers at once).
//
// Orderings: the exchange and the CAS are acq_rel, so a consumer that saw the list open has its
// node (and the node's `next`) visible to the producer that later closes it, and a consumer
// that saw it closed sees everything the producer wrote before finishing. fanin decrements are
// acq_rel so the thread that makes a task ready sees all its producers' writes.
#pragma once

#include <atomic>
#include <cstdint>

#include "core/ring.hpp"
#include "core/task.hpp"

namespace tmr::detail::graph {

// ---- consumer side (orchestrator) ----

// Starts wiring `consumer` with `producers` edges to come: the guard keeps it from becoming
// ready until finish_wiring.
inline void begin_wiring(TaskSlot& consumer, std::uint32_t producers) {
  consumer.fanout_head.store(nullptr, std::memory_order_relaxed);
  consumer.fanin_remaining.store(static_cast<std::int32_t>(producers) + 1,
                                 std::memory_order_relaxed);
}

// Takes one more reference on `task` unless it is already consumed (then false: it finished,
// and its writes are visible to the caller).
inline bool hold(TaskSlot& task) {
  std::int32_t refs = task.release_remaining.load(std::memory_order_acquire);
  while (refs > 0) {
    if (task.release_remaining.compare_exchange_weak(refs, refs + 1, std::memory_order_acq_rel,
                                                     std::memory_order_acquire)) {
      return true;
    }
  }
  return false;
}

enum class Edge : std::uint8_t {
  consumed,  // the producer was already consumed: nothing held, the edge is resolved
  finished,  // held, but the producer has finished: the edge is resolved (node keeps the hold)
  wired,     // held and on the producer's list: the producer will resolve it
};

// wire()'s push: `node` onto the producer's fan-out list (wired: the producer takes the node's
// reference when it completes), or, when the producer closed it (finished), a reference taken
// here, unless the producer is consumed already.
inline Edge push(TaskSlot& consumer, TaskSlot& producer, FanoutNode& node) {
  // The two pointers stored on either side of the head's load: GCC joined the adjacent stores
  // into one vector store (two moves to vector registers and a shuffle, 4 instructions an edge
  // for 2); the acquire load keeps the second store after it.
  node.consumer = &consumer;
  FanoutNode* head = producer.fanout_head.load(std::memory_order_acquire);
  node.producer = &producer;
  while (head != closed_fanout()) {
    node.next = head;
    if (producer.fanout_head.compare_exchange_weak(head, &node, std::memory_order_acq_rel,
                                                   std::memory_order_acquire)) {
      return Edge::wired;
    }
  }
  return hold(producer) ? Edge::finished : Edge::consumed;
}

// Wires `consumer` behind `producer` using `node` (owned by the consumer). For consumed and
// finished, the caller counts the edge as resolved; for finished and wired the node records the
// reference, which release_producers drops.
inline Edge wire(TaskSlot& consumer, TaskSlot& producer, FanoutNode& node) {
  return push(consumer, producer, node);
}

// Wiring without the guard, for a consumer the orchestrator touches no more once wired (a
// replayed analysed task: no scope to enter, no access to record, no trace event; see
// OrchestratorCore::wire_replayed). fanin starts at the edge count alone, and wire_unguarded
// writes everything a worker reads of the consumer (dep_count, with dep_begin and the rest
// written before) ahead of each push: once its last edge is on a producer's list, the consumer
// may become ready, run and complete at any moment. While an edge is still to be wired, or one
// resolved at once is not yet dropped (finish_unguarded), fanin stays above zero. Saves the
// guard's locked decrement when every edge is wired (the producers make it ready) or there are
// none (fanin starts at zero).
inline void begin_unguarded(TaskSlot& consumer, std::uint32_t producers) {
  consumer.fanout_head.store(nullptr, std::memory_order_relaxed);
  consumer.fanin_remaining.store(static_cast<std::int32_t>(producers), std::memory_order_relaxed);
}

// wire() for an unguarded consumer: `held` (the nodes that hold a producer, this one included)
// into consumer.dep_count, then the push. A producer found consumed takes the count back: the
// consumer cannot run before this edge is resolved (fanin counts it), so nothing read it yet.
inline Edge wire_unguarded(TaskSlot& consumer, TaskSlot& producer, FanoutNode& node,
                           std::uint32_t held) {
  consumer.dep_count = held;
  const Edge edge = push(consumer, producer, node);
  if (edge == Edge::consumed) consumer.dep_count = held - 1;
  return edge;
}

// Ends an unguarded wiring of `edges` edges, `resolved` of them resolved at once: drops those.
// True when the consumer is ready now (the caller hands it over); false when its producers will
// make it ready.
inline bool finish_unguarded(TaskSlot& consumer, std::uint32_t edges, std::int32_t resolved) {
  if (resolved == 0) return edges == 0;
  return consumer.fanin_remaining.fetch_sub(resolved, std::memory_order_acq_rel) == resolved;
}

// One consumer's wiring so far: edges already resolved (they count against its fan-in at once)
// and dependency nodes that hold a producer (the next one to use is `held` past the first).
struct WiringTally {
  std::int32_t resolved = 0;
  std::uint32_t held = 0;
  void add(Edge edge) {
    if (edge != Edge::wired) ++resolved;
    if (edge != Edge::consumed) ++held;
  }
};

// Drops the guard and `resolved` edges. True when the consumer is ready now.
inline bool finish_wiring(TaskSlot& consumer, std::int32_t resolved) {
  return consumer.fanin_remaining.fetch_sub(resolved + 1, std::memory_order_acq_rel) ==
         resolved + 1;
}

// A task that never runs (an alloc task, or one whose submit failed) counts as finished at once.
inline void mark_finished(TaskSlot& task, std::memory_order order = std::memory_order_release) {
  task.state.store(TaskState::completed, order);
  task.fanout_head.store(closed_fanout(), order);
}

// ---- producer side (schedulers) ----

// Takes one fan-in of every consumer on a closed list, calling `on_ready(consumer)` for each
// that this made ready. Returns the edges resolved.
// A count of 1 is this edge's own: every other unit (edges, the guard, the ones resolved at
// once) was dropped already, and the count only falls, so nobody else can take it. The consumer
// is then ready without the locked decrement (the count stays 1; nothing reads it again), and
// the acquire load takes the other decrements' releases (a release sequence of RMWs). Every
// task of a chain has one producer: its fan-in costs no locked instruction.
template <class OnReady>
[[gnu::always_inline]] inline std::uint32_t resolve_listed(FanoutNode* node, OnReady& on_ready) {
  std::uint32_t edges = 0;
  while (node != nullptr) {
    FanoutNode* const next = node->next;  // read first: the node dies with its consumer
    TaskSlot* const consumer = node->consumer;
    ++edges;
    if (consumer->fanin_remaining.load(std::memory_order_acquire) == 1 ||
        consumer->fanin_remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      on_ready(consumer);
    }
    node = next;
  }
  return edges;
}

// Completes `producer`: closes its fanout list and resolves one edge of every consumer on it,
// calling `on_ready(consumer)` for each that this made ready. Returns the edges resolved.
template <class OnReady>
std::uint32_t complete(TaskSlot& producer, OnReady&& on_ready) {
  producer.state.store(TaskState::completed, std::memory_order_release);
  FanoutNode* node = producer.fanout_head.exchange(closed_fanout(), std::memory_order_acq_rel);
  // The references of the consumers on the list (push took none), before any of them can run
  // and drop its own: counted first, then taken in one step.
  std::int32_t listed = 0;
  for (const FanoutNode* n = node; n != nullptr; n = n->next)
    ++listed;
  if (listed != 0) producer.release_remaining.fetch_add(listed, std::memory_order_relaxed);
  return resolve_listed(node, on_ready);
}

// How a release that consumes a task moves its ring's watermark: at once (Ring::release), or
// when it ends a group (Ring::release_in_group: the workers' completions).
enum class Advance : std::uint8_t { each, in_groups };

// Drops one reference of `task`; the last one consumes it (its ring may then retire it).
// True when the ring's watermark moved.
inline bool release(TaskSlot& task, Advance advance = Advance::each) {
  return advance == Advance::each ? task.ring->release(task) : task.ring->release_in_group(task);
}

// After `consumer` completed: lets go of the producers it held (their buffers may now be
// reclaimed), not of its own completion reference.
inline void release_held_producers(TaskSlot& consumer, Advance advance = Advance::each) {
  Ring& ring = *consumer.ring;
  for (std::uint32_t i = 0; i < consumer.dep_count; ++i)
    release(*ring.dep_node(consumer.dep_begin + i).producer, advance);
}

// After `consumer` completed: lets go of the producers it held, then of its own completion
// reference.
inline void release_producers(TaskSlot& consumer) {
  release_held_producers(consumer);
  release(consumer);
}

// complete() and the release of `producer`'s own completion reference in one: its listed
// consumers' references replace it, so a producer with one consumer (every task of a chain)
// makes neither the add nor the drop, and one with several adds one reference fewer (two locked
// instructions, resp. one, fewer per completion). With none it drops its reference as before.
// The caller releases the producers `producer` held first (release_held_producers): once a
// consumer is made ready it may run, complete and consume `producer`, whose slot (and its
// dependency nodes) may then be reused, so nothing of `producer` is read after the first
// consumer's fan-in decrement.
template <class OnReady>
[[gnu::always_inline]] inline std::uint32_t complete_and_release(TaskSlot& producer,
                                                                 OnReady&& on_ready,
                                                                 Advance advance = Advance::each) {
  producer.state.store(TaskState::completed, std::memory_order_release);
  FanoutNode* node = producer.fanout_head.exchange(closed_fanout(), std::memory_order_acq_rel);
  if (node == nullptr) {
    release(producer, advance);
    return 0;
  }
  if (node->next != nullptr) {  // one consumer (a chain's every task) needs no count at all
    std::int32_t more = 0;
    for (const FanoutNode* n = node->next; n != nullptr; n = n->next)
      ++more;
    producer.release_remaining.fetch_add(more, std::memory_order_relaxed);
  }
  return resolve_listed(node, on_ready);
}

}  // namespace tmr::detail::graph
