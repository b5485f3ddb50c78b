// A bounded lock-free multi-producer multi-consumer queue (per-slot sequence numbers, after
// D. Vyukov's design). Capacity is a power of two.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/prefetch.hpp"

namespace tmr::detail {

// `kSpread`: consecutive positions on different cache lines (a line's four 16-byte cells hold
// positions a quarter of the capacity apart), for a queue whose pusher and popper run on
// different CPUs one position apart: with adjacent cells each push wrote the line the last pop
// had just taken to the popper's CPU. A single pusher (push_single_at) then asks for the line of
// the position 4 ahead for write, so the line is its own before its fence waits for the store
// (ReadyQueues' lanes; docs/performance.md, "Session 33, branch run37"). At least 8 cells.
template <class T, bool kSpread = false>
class MpmcQueue {
 public:
  explicit MpmcQueue(std::size_t capacity = 1024) { reset(capacity); }

  // Not thread-safe: only while no other thread uses the queue. Two cells at least: with one, a
  // pop leaves the sequence the next push expects while the push before may still be unpopped.
  void reset(std::size_t capacity) {
    std::size_t rounded = 2;
    while (rounded < capacity)
      rounded <<= 1;
    if constexpr (kSpread) {
      if (rounded < 8) rounded = 8;
      spread_shift_ = 0;
      while ((std::size_t{4} << spread_shift_) < rounded)
        ++spread_shift_;
    }
    mask_ = rounded - 1;
    cells_ = std::make_unique<Cell[]>(rounded);
    for (std::size_t i = 0; i < rounded; ++i)
      cells_[index(i)].sequence.store(i, std::memory_order_relaxed);
    head_.store(0, std::memory_order_relaxed);
    tail_.store(0, std::memory_order_relaxed);
  }
  std::size_t capacity() const { return mask_ + 1; }

  bool try_push(const T& value) {
    std::size_t pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      Cell& cell = cells_[index(pos)];
      const std::size_t seq = cell.sequence.load(std::memory_order_acquire);
      const auto diff = static_cast<std::intptr_t>(seq) - static_cast<std::intptr_t>(pos);
      if (diff == 0) {
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          cell.value = value;
          cell.sequence.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false;  // full
      } else {
        pos = tail_.load(std::memory_order_relaxed);
      }
    }
  }

  // try_push for the queue's only pusher (one producer, the orchestrator's lane: ReadyQueues):
  // the tail is a load and a store, not a compare-exchange. Pops may race it as with try_push.
  bool try_push_single(const T& value) {
    std::size_t tail = tail_.load(std::memory_order_relaxed);
    return push_single_at<true>(value, tail);
  }
  // The same with the pusher's own copy of the tail (`tail`, advanced on success; 0 after
  // reset()): tail_ is neither loaded nor stored. Its line is what the pops' owners read for
  // empty_hint (ReadyQueues): a store there on every push moved the line to the pusher's CPU and
  // back, and the pusher's next fence (Scheduler::others_have_room) waited for that store.
  // A queue pushed only this way keeps tail_ at 0: ask it may_hold_hint(), not empty_hint().
  bool try_push_single(const T& value, std::size_t& tail) {
    return push_single_at<false>(value, tail);
  }

  // Always inlined: a worker's completion step (Scheduler::core_step) pops once per task, and
  // out of line the call and its frame were ~8 of its instructions.
  [[gnu::always_inline]] bool try_pop(T& out) {
    std::size_t pos = head_.load(std::memory_order_relaxed);
    for (;;) {
      Cell& cell = cells_[index(pos)];
      // seq_cst (a plain load on x86, as acquire): a popper that published itself idle with a
      // seq_cst RMW just before must see a push whose pusher then fenced and found it busy
      // (Scheduler::others_have_room): store-buffering needs seq_cst on both sides.
      const std::size_t seq = cell.sequence.load(std::memory_order_seq_cst);
      const auto diff = static_cast<std::intptr_t>(seq) - static_cast<std::intptr_t>(pos + 1);
      if (diff == 0) {
        if (head_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          out = cell.value;
          cell.sequence.store(pos + mask_ + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false;  // empty
      } else {
        pos = head_.load(std::memory_order_relaxed);
      }
    }
  }

  // try_pop for a caller whose pops never overlap (each pop of the queue under one lock, whose
  // acquire/release hands the head from one popper to the next; pushes may still race it): the
  // head is a load and a store, not a compare-exchange (one locked instruction a pop fewer). The
  // cell is read as try_pop reads it; a cell whose push has claimed it but not yet stored it
  // reads as empty, as there.
  [[gnu::always_inline]] bool try_pop_serial(T& out) {
    const std::size_t pos = head_.load(std::memory_order_relaxed);
    Cell& cell = cells_[index(pos)];
    if (cell.sequence.load(std::memory_order_seq_cst) != pos + 1) return false;  // empty
    head_.store(pos + 1, std::memory_order_relaxed);
    out = cell.value;
    cell.sequence.store(pos + mask_ + 1, std::memory_order_release);
    return true;
  }

  // A hint only: may be stale by the time the caller acts on it.
  [[gnu::always_inline]] bool empty_hint() const {
    return head_.load(std::memory_order_relaxed) >= tail_.load(std::memory_order_relaxed);
  }
  // The same hint from the head's cell instead of tail_, for any queue (one pushed with the
  // pusher's own tail needs it): false only when the cell at the head awaits the push of exactly
  // that position, i.e. nothing was queued there at the look. A head read stale (a pop moved it
  // since) finds its cell filled or already popped, and answers true, as a stale head does in
  // empty_hint. Reads the line the next pop reads anyway, not tail_'s.
  [[gnu::always_inline]] bool may_hold_hint() const {
    const std::size_t head = head_.load(std::memory_order_relaxed);
    return cells_[index(head)].sequence.load(std::memory_order_relaxed) != head;
  }

 private:
  // The single pusher's push at `tail` (advanced on success); `kKeepTail`: tail_ follows it.
  template <bool kKeepTail>
  [[gnu::always_inline]] bool push_single_at(const T& value, std::size_t& tail) {
    const std::size_t pos = tail;
    Cell& cell = cells_[index(pos)];
    if (cell.sequence.load(std::memory_order_acquire) != pos) return false;  // full
    tail = pos + 1;
    if constexpr (kKeepTail) tail_.store(pos + 1, std::memory_order_relaxed);
    if constexpr (kSpread) prefetch_for_write(&cells_[index(pos + 4)]);
    cell.value = value;
    cell.sequence.store(pos + 1, std::memory_order_release);
    return true;
  }

  // The cell of position `pos` (a bijection of the positions modulo the capacity): with kSpread
  // the low bits pick the line and the top two bits the cell in it.
  [[gnu::always_inline]] std::size_t index(std::size_t pos) const {
    if constexpr (kSpread) return ((pos << 2) & mask_) | ((pos >> spread_shift_) & 3);
    return pos & mask_;
  }
  std::size_t spread_shift_ = 0;  // kSpread: log2(capacity) - 2
  struct Cell {
    std::atomic<std::size_t> sequence{0};
    T value{};
  };
  std::unique_ptr<Cell[]> cells_;
  std::size_t mask_ = 0;
  alignas(64) std::atomic<std::size_t> head_{0};
  alignas(64) std::atomic<std::size_t> tail_{0};
};

}  // namespace tmr::detail
