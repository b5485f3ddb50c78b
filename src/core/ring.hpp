// One ring of the multi-ring memory: a task window, an output heap and a dependency pool, all
// reclaimed by one retire watermark that advances over consecutive consumed tasks.
//
// The orchestrator alone allocates (head, heap top, pool top); any thread may advance the
// watermark (tail) with a compare-exchange; the orchestrator derives the heap and pool tails from
// it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#include "core/prefetch.hpp"
#include "core/task.hpp"
#include "tmr/config.hpp"

namespace tmr::detail {

// Frees what zeroed_array gave: unmaps a mapping, frees a calloc block.
struct ZeroedDeleter {
  std::size_t mapped_bytes = 0;  // 0: the block came from calloc
  void operator()(void* memory) const;
};

// `bytes` of zero-filled memory that cost nothing until touched (mapped_bytes says how it came).
// Large blocks are mapped from the kernel directly: calloc would serve them from the heap once
// glibc's mmap threshold has grown past them (it rises to the largest block freed, so for every
// Runtime after the first) and then zero them all with a memset, ~40 MB a Runtime of which a run
// touches little.
void* allocate_zeroed(std::size_t bytes, std::size_t& mapped_bytes);

template <class T>
std::unique_ptr<T[], ZeroedDeleter> zeroed_array(std::size_t count) {
  std::size_t mapped_bytes = 0;
  void* memory = allocate_zeroed(count * sizeof(T), mapped_bytes);
  return std::unique_ptr<T[], ZeroedDeleter>(static_cast<T*>(memory), ZeroedDeleter{mapped_bytes});
}

// zeroed_array for `count` objects of a 64-byte aligned type (calloc promises 16): one spare line,
// and the aligned start inside it.
template <class T>
struct AlignedArray {
  explicit AlignedArray(std::size_t count)
      : storage(zeroed_array<std::byte>(count * sizeof(T) + 64)) {
    const auto address = reinterpret_cast<std::uintptr_t>(storage.get());
    items = reinterpret_cast<T*>(storage.get() + ((64 - address % 64) % 64));
  }
  std::unique_ptr<std::byte[], ZeroedDeleter> storage;
  T* items = nullptr;
};

class Ring {
 public:
  // The ring's memory bookkeeping of one slot (orchestrator side). Dependence state (dedup
  // stamps, TensorMap entries, creator retention) lives in src/core/dependence/.
  struct SlotInfo {
    std::uint64_t heap_end;    // heap top (linear) after this task's outputs
    std::uint64_t heap_bytes;  // bytes this task's outputs took, wrap waste included
    std::uint64_t dep_end;     // pool top (linear) after this task's fanin nodes
    std::uint64_t sequence;    // the orchestrator's submit order (traces, loops/); off the slot
  };

  Ring(std::uint32_t index, const RingConfig& config);
  // Slots point back at their ring (bound once): a ring never moves.
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // Forgets every task; only while no other thread touches the ring.
  void reset();

  std::uint32_t index() const { return index_; }
  std::uint32_t window() const { return window_; }
  std::uint64_t heap_capacity() const { return heap_bytes_; }
  std::uint64_t dep_capacity() const { return dep_capacity_; }
  TaskSlot& slot(std::uint32_t local) { return slots_[local & window_mask_]; }
  TaskRecord& record(std::uint32_t local) { return records_.items[local & window_mask_]; }
  // Where task `local`'s `count` tensors (scalars) go: its record's inline storage, or its slot's
  // spill area when they do not fit there. A function of the slot and the count alone, so a
  // caller may fill them before the admit (LoopDriver::replay_into) and the admit then points
  // the record at the same place (bind_arguments). Spill areas are calloc'ed: a program whose
  // tasks all fit inline never touches their pages.
  Tensor* tensor_storage(std::uint32_t local, int count) {
    const std::uint32_t i = local & window_mask_;
    return count <= kInlineTensorArgs ? records_.items[i].inline_tensors
                                      : spill_tensors_.items + std::size_t{i} * kMaxTensorArgs;
  }
  std::uint64_t* scalar_storage(std::uint32_t local, int count) {
    const std::uint32_t i = local & window_mask_;
    return count <= kInlineScalarArgs ? records_.items[i].inline_scalars
                                      : spill_scalars_.items + std::size_t{i} * kMaxScalarArgs;
  }
  // Points task `local`'s record at the storage of its argument counts and at its own kernel
  // functions (at admit), or at `kept_fns` when given (the orchestrator's kept copy of the plan's,
  // which outlives the task: the record's own are then not written). The common case (nothing
  // spills) is four stores.
  [[gnu::always_inline]] void bind_arguments(std::uint32_t local, int tensor_count,
                                             int scalar_count, const KernelFn* kept_fns = nullptr) {
    const std::uint32_t i = local & window_mask_;
    TaskRecord& r = records_.items[i];
    named_last_ = false;   // prefetch_head: the next record's tensor lines
    r.image_distance = 0;  // the record's own tensors (a replayed submit may name an image)
    r.fns = kept_fns != nullptr ? kept_fns : r.own_fns;  // and its kernel functions
    r.tensors = r.inline_tensors;
    r.scalars = r.inline_scalars;
    if (tensor_count > kInlineTensorArgs || scalar_count > kInlineScalarArgs) [[unlikely]] {
      bind_spilled(i, tensor_count, scalar_count);
    }
  }
  // bind_arguments for a replayed task whose record names an image (RecordImage: `base`, `fns`)
  // `distance` iterations on (OrchestratorCore::submit_replayed): only its scalars are its own.
  // `r`: task `local`'s record, as its slot names it (TaskSlot::record; no index computed here).
  // Writes the record's scalar count too: with the header, its first line is then written whole.
  [[gnu::always_inline]] void bind_named(TaskRecord& r, std::uint32_t local, Tensor* base,
                                         const KernelFn* fns, std::uint32_t distance,
                                         int scalar_count) {
    named_last_ = true;  // prefetch_head: most likely the next record writes its first line alone
    r.scalar_count = scalar_count;
    r.image_distance = distance;
    r.fns = fns;
    r.tensors = base;
    r.scalars = r.inline_scalars;
    if (scalar_count > kInlineScalarArgs) [[unlikely]] {
      bind_spilled(local & window_mask_, 0, scalar_count);
    }
  }
  // A slot's spill area, in bytes (RuntimeConfig's memory estimate).
  static constexpr std::size_t kSpillBytes =
      kMaxTensorArgs * sizeof(Tensor) + kMaxScalarArgs * sizeof(std::uint64_t);
  SlotInfo& info(std::uint32_t local) { return infos_[local & window_mask_]; }
  FanoutNode& dep_node(std::uint64_t linear) { return dep_pool_[linear & dep_mask_]; }
  // The pool's base and mask as values: a loop that wires several producers keeps them in
  // registers (each producer's lock cmpxchg makes the compiler reload members through the ring).
  struct DepPool {
    FanoutNode* base;
    std::uint64_t mask;
    FanoutNode& operator[](std::uint64_t linear) const { return base[linear & mask]; }
  };
  DepPool dep_pool() { return {dep_pool_.get(), dep_mask_}; }
  // Asks for the line of dependency node `linear` ahead of the wiring that writes it: nodes are
  // taken in order, so a submit that takes one node a task (a pinned slice write, 24 bytes a
  // node) meets a new line every third task, last written there one pool wrap ago and since read
  // by the worker that walked its producer's fanout.
  [[gnu::always_inline]] void prefetch_dep_node(std::uint64_t linear) {
    prefetch_for_write(&dep_pool_[linear & dep_mask_]);
  }
  // Submit order of task `local` (set at admit).
  std::uint64_t sequence(std::uint32_t local) const {
    return infos_[local & window_mask_].sequence;
  }
  // When task `local` became ready, for traces only: written and read only while recording, so
  // the slot line stays free of it.
  std::uint64_t ready_ns(std::uint32_t local) const {
    return std::atomic_ref<std::uint64_t>(ready_ns_[local & window_mask_])
        .load(std::memory_order_relaxed);
  }
  void set_ready_ns(std::uint32_t local, std::uint64_t ns) {
    std::atomic_ref<std::uint64_t>(ready_ns_[local & window_mask_])
        .store(ns, std::memory_order_relaxed);
  }

  // ---- orchestrator side ----
  std::uint32_t head() const { return head_; }
  std::uint32_t retired_seen() const { return retired_seen_; }
  // Reads the watermark and reclaims heap and pool space behind it. Returns how many tasks
  // retired since the last call.
  std::uint32_t refresh();
  std::uint32_t live_tasks() const { return head_ - retired_seen_; }
  bool window_has_room() const { return live_tasks() + 1 < window_; }
  // Where `bytes` (a multiple of 64, <= capacity) would go; false if the heap is full now.
  // Inline, and without a division (heap_position_): every submit with outputs asks.
  bool heap_fits(std::uint64_t bytes, std::uint64_t* offset, std::uint64_t* consumed) const {
    const std::uint64_t position = heap_position_;
    // A buffer never straddles the end: skip the tail of the heap when it does not fit there.
    const std::uint64_t waste = position + bytes > heap_bytes_ ? heap_bytes_ - position : 0;
    if (heap_top_ + waste + bytes - heap_tail_ > heap_bytes_) return false;
    *offset = waste != 0 ? 0 : position;  // (position + waste) % heap_bytes_
    *consumed = waste + bytes;
    return true;
  }
  std::uint64_t heap_used() const { return heap_top_ - heap_tail_; }
  // The heap's linear top and tail, and where the next buffer goes when it does not wrap
  // (heap_top_ % heap_bytes_): the orchestrator's heap credit (submit_wide) is stated in them.
  std::uint64_t heap_top() const { return heap_top_; }
  std::uint64_t heap_tail() const { return heap_tail_; }
  std::uint64_t heap_position() const { return heap_position_; }
  bool dep_fits(std::uint64_t nodes) const { return dep_top_ + nodes - dep_tail_ <= dep_capacity_; }
  std::uint64_t dep_used() const { return dep_top_ - dep_tail_; }
  // Commits a task at the head: `consumed` heap bytes (from heap_fits) and `dep_nodes`
  // dependency nodes (dep_fits; take_dep_nodes' nodes, from dep_top() - dep_nodes on). Returns
  // its local id. Prefetches what the next admit will write (prefetch_head). `set_dep_end` false:
  // the caller's wiring writes the slot's dep_end itself (every wiring does; only a task
  // admitted with its nodes, a pinned one, has none after it), so the admit's store goes.
  [[gnu::always_inline]] std::uint32_t admit(std::uint64_t consumed, std::uint64_t dep_nodes = 0,
                                             bool set_dep_end = true) {
    heap_top_ += consumed;
    if (consumed != 0) {  // (a task without outputs: one test)
      // consumed <= heap_bytes_ (heap_fits): one subtraction keeps the position below it.
      heap_position_ += consumed;
      if (heap_position_ >= heap_bytes_) heap_position_ -= heap_bytes_;
    }
    dep_top_ += dep_nodes;
    const std::uint32_t local = head_++;
    SlotInfo& slot_info = info(local);
    slot_info.heap_end = heap_top_;
    slot_info.heap_bytes = consumed;
    if (set_dep_end) slot_info.dep_end = dep_top_;
    prefetch_head();
    return local;
  }
  void* heap_at(std::uint64_t offset) { return heap_ + offset; }
  // Also asks for the first and last node of the span a wiring kNodeSubmitsAhead wirings on
  // will take if it takes as many (the pool is taken in order). Nothing else asks for those
  // lines: each was last read on a worker's CPU (its producer's and its consumer's completions,
  // one pool wrap or one run ago), and the node stores come right before the first push, whose
  // locked instruction waits until every store of the submit has drained. A 4-argument submit
  // takes 3 nodes (72 bytes, never more than 2 lines). Measured: without it BM_Submit 4/16 ran at
  // ~200 ns in about half of the processes, with it at 80-100 ns in all (docs/performance.md,
  // "Session 46, branch lock46", where the plain wiring alone asked; here every wiring that takes
  // nodes does: plain, replayed, wide and guarded. A pinned task's node comes with its admit.)
  // Always inline: GCC left it a call in OrchestratorCore::submit_wide's wiring (the argument's
  // moves and the registers saved around it, ~11 instructions a wide submit).
  [[gnu::always_inline]] std::uint64_t take_dep_nodes(std::uint64_t nodes) {
    constexpr std::uint64_t kNodeSubmitsAhead = 8;
    const std::uint64_t first = dep_top_;
    dep_top_ += nodes;
    const std::uint64_t ahead = first + kNodeSubmitsAhead * nodes;
    prefetch_dep_node(ahead);
    prefetch_dep_node(ahead + nodes - 1);
    return first;
  }
  std::uint64_t dep_top() const { return dep_top_; }
  // Makes task `local` visible to watermark advancers.
  void publish(std::uint32_t local) {
    published_.store(local + 1, std::memory_order_release);
    published_seen_ = submitted_ = local + 1;
  }
  // The submit path's publish: stores only every kPublishBatch tasks, so the line every
  // releasing worker reads (try_advance) changes once per batch instead of once per task. It
  // does not advance the watermark itself: tasks consumed before their batch was published wait
  // for publish_all (refresh, the end of a run).
  void publish_batched(std::uint32_t local) {
    submitted_ = local + 1;
    if ((submitted_ & (kPublishBatch - 1)) == 0) publish(local);
  }
  // Publishes every task whose submit has finished and advances the watermark over those
  // already consumed. Not up to head(): a task admitted but still being wired (e.g. waiting for
  // dependency nodes, which refreshes the rings) still carries its slot's previous state, and the
  // watermark must not pass it. Advances even when nothing new was published: a batch store
  // (publish_batched) may have published tasks that were all consumed before it, and no releaser
  // is left to move the watermark over them.
  // A seq_cst RMW of the limit orders the publish (this one or a batch's) before try_advance's
  // loads of the counts: a releaser whose seq_cst load read the limit before it (and so stopped
  // short) precedes the RMW in the single total order, and so does its decrement to zero, which
  // the loads here then see (store-buffering; try_advance). An RMW, not a fence: the same order
  // in a form ThreadSanitizer checks (GCC rejects fences under it). Once a refresh, not a submit.
  void publish_all() {
    if (published_seen_ != submitted_) publish(submitted_ - 1);
    if (retired() != published_seen_) {
      published_.fetch_add(0, std::memory_order_seq_cst);
      try_advance();
    }
  }

  // ---- any thread ----
  std::uint32_t retired() const { return retired_.load(std::memory_order_acquire); }
  // The watermark itself, for a reader that snapshots every ring (RetirementView::snapshot).
  const std::atomic<std::uint32_t>& retired_watermark() const { return retired_; }
  bool is_retired(TaskId id) const { return id.local() < retired(); }
  // Advances the watermark over consecutive consumed tasks (release_remaining == 0). Returns
  // true if it moved.
  bool try_advance();
  // Drops one reference of a task of this ring; the last one consumes it and advances the
  // watermark. Returns true if the watermark moved. The decrement to zero is the consumption
  // itself (no separate state to store): seq_cst, so that try_advance's seq_cst loads of the
  // watermark and the publish limit after it pair with every other advancer's (see there).
  bool release(TaskSlot& task) {
    if (task.release_remaining.fetch_sub(1, std::memory_order_seq_cst) != 1) return false;
    return try_advance();
  }
  // release() for the workers' completions, which retire in groups: only the release that
  // consumes the last task of a group of kAdvanceGroup (by local id) advances the watermark, its
  // scan passing the whole group when it is consumed by then (a chain's: in submit order). A
  // task whose group end was consumed before it waits for a later group end, or for the
  // orchestrator, which advances over everything consumed whenever it looks for room
  // (publish_all, refresh) and at the end of a run: the only ones that wait for the watermark.
  // Every worker completion is counted after its releases (StepGate, Engine), so an orchestrator
  // woken by the count finds them. Saves the exchange (and the scan) on the other tasks.
  bool release_in_group(TaskSlot& task) {
    // Read before the decrement: once consumed, the slot may be reused (its id rewritten).
    const bool group_end = (task.id.local() & (kAdvanceGroup - 1)) == kAdvanceGroup - 1;
    if (task.release_remaining.fetch_sub(1, std::memory_order_seq_cst) != 1) return false;
    return group_end && try_advance();
  }
  // Whether task `local` (published, not yet retired) is consumed.
  bool consumed(std::uint32_t local) {
    return slot(local).release_remaining.load(std::memory_order_seq_cst) == 0;
  }

 private:
  static constexpr std::uint32_t kPublishBatch = 16;
  static constexpr std::uint32_t kAdvanceGroup = 8;  // release_in_group
  // How many admits ahead prefetch_head asks for the lines every admit writes.
  static constexpr std::uint32_t kPrefetchAhead = 8;
  // The record lines a submit writes: all of them for a task of kInlineTensorArgs tensors. A
  // spilling task's area is prefetched as the slot's last task used it (spill_lines_).
  static constexpr std::size_t kRecordPrefetchBytes = sizeof(TaskRecord);
  // With a large task window the slot, bookkeeping and record the next admit fills are cold
  // (a run walks megabytes of records): ask for their lines before the submits that write them.
  // The slot, its bookkeeping and the record's first line (every admit writes them) are asked for
  // prefetch_ahead_ admits ahead: one admit (~70 ns of a replayed submit) is less than a miss
  // takes on a loaded host. The record's other lines hold its own tensors, scalars and functions:
  // asked for one admit ahead, and not at all after a record that named an image (bind_named),
  // whose successor most likely names one too and writes the first line alone (a named slice
  // write then reads 3 lines a task from memory instead of 12). (An earlier try asked for the
  // first line alone one admit ahead: slower, docs/performance.md sessions 23-24.) Ahead lies a
  // slot the window may not have retired yet when it is nearly full: the prefetch then only
  // takes a line from a worker early.
  [[gnu::always_inline]] void prefetch_head() {
    const std::uint32_t next = head_ & window_mask_;
    const std::uint32_t ahead = (head_ + prefetch_ahead_) & window_mask_;
    prefetch_for_write(&slots_[ahead]);
    prefetch_for_write(&infos_[ahead]);
    prefetch_for_write(&records_.items[ahead]);
    if (!named_last_) {
      const auto* record = reinterpret_cast<const char*>(&records_.items[next]);
      for (std::size_t line = 64; line < kRecordPrefetchBytes; line += 64)
        prefetch_for_write(record + line);
    }
    if (spill_lines_[next] != 0) [[unlikely]]
      prefetch_spill(next);
  }

  void bind_spilled(std::uint32_t i, int tensor_count, int scalar_count);
  void prefetch_spill(std::uint32_t i);

  std::uint32_t index_;
  std::uint32_t window_;
  std::uint32_t window_mask_;
  std::uint64_t heap_bytes_;
  std::uint64_t dep_capacity_;
  std::uint64_t dep_mask_;

  std::unique_ptr<TaskSlot[]> slots_;
  AlignedArray<TaskRecord> records_;
  // Per slot: kMaxTensorArgs tensors and kMaxScalarArgs scalars for a task that has more than its
  // record holds inline (tensor_storage, scalar_storage). Cold: touched only by such tasks.
  AlignedArray<Tensor> spill_tensors_;
  AlignedArray<std::uint64_t> spill_scalars_;
  // Per slot: the spill lines its last task wrote (tensor lines in the low byte, scalar lines in
  // the high one; zero: none), set by bind_spilled. prefetch_head prefetches them for the slot's
  // next task and clears them (a slot whose tasks stop spilling stops being prefetched): a
  // program whose wide tasks recur with the ring's period (paged attention's update task, one in
  // four) finds them in cache, as it found the lines of the one large record before.
  std::unique_ptr<std::uint16_t[], ZeroedDeleter> spill_lines_;
  std::unique_ptr<SlotInfo[], ZeroedDeleter> infos_;
  std::unique_ptr<std::uint64_t[], ZeroedDeleter> ready_ns_;
  std::unique_ptr<FanoutNode[], ZeroedDeleter> dep_pool_;
  std::unique_ptr<std::byte[], ZeroedDeleter> heap_storage_;
  std::byte* heap_ = nullptr;  // 64-byte aligned start inside heap_storage_

  // Orchestrator-only.
  // prefetch_head's distance (kPrefetchAhead, less in a small window), and whether the last
  // binding was bind_named's.
  std::uint32_t prefetch_ahead_ = 1;
  bool named_last_ = false;
  std::uint32_t head_ = 0;
  std::uint32_t retired_seen_ = 0;
  std::uint64_t heap_top_ = 0;
  std::uint64_t heap_tail_ = 0;
  std::uint64_t dep_top_ = 0;
  std::uint64_t dep_tail_ = 0;
  std::uint32_t published_seen_ = 0;  // what published_ holds (only the orchestrator stores it)
  std::uint32_t submitted_ = 0;       // one past the last task whose submit finished
  std::uint64_t heap_position_ = 0;   // heap_top_ % heap_bytes_, kept by admit (no division)

  // Shared.
  alignas(64) std::atomic<std::uint32_t> published_{0};
  alignas(64) std::atomic<std::uint32_t> retired_{0};
};

}  // namespace tmr::detail
