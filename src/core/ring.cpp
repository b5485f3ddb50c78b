#include "core/ring.hpp"

#include <sys/mman.h>

#include <algorithm>

#include "core/prefetch.hpp"

namespace tmr::detail {

namespace {

// Asks the kernel to back the 2 MiB-aligned part of a large array with transparent huge pages
// (THP "madvise" mode, the usual default, gives them only where asked). For the task records: with
// 4 KiB pages a window of records (10 MB at the default 16,384 tasks, 640 bytes each) is far past
// what the TLB maps, and each new page a submit writes into paid a page walk, which no prefetch
// hides (with the 2.8 KB records of before, every submit). Likewise the spill areas, which a
// program whose tasks all spill walks as it walks the records. Smaller arrays are left alone:
// below a few huge pages the TLB maps them anyway, and a huge page costs 2 MiB of memory at its
// first touch (never more than the array: untouched parts stay unbacked).
void advise_huge_pages([[maybe_unused]] const void* memory, [[maybe_unused]] std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr std::uintptr_t kHugePage = std::uintptr_t{2} << 20;
  if (bytes < 4 * kHugePage) return;
  const auto begin = reinterpret_cast<std::uintptr_t>(memory);
  const std::uintptr_t first = (begin + kHugePage - 1) & ~(kHugePage - 1);
  const std::uintptr_t last = (begin + bytes) & ~(kHugePage - 1);
  // Only a hint: where the kernel refuses it (THP off, an old kernel), 4 KiB pages remain.
  if (last > first) (void)madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#endif
}

}  // namespace

void* allocate_zeroed(std::size_t bytes, std::size_t& mapped_bytes) {
  constexpr std::size_t kMapAtLeast = std::size_t{1} << 20;
  mapped_bytes = 0;
  if (bytes >= kMapAtLeast) {
    void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory != MAP_FAILED) {
      mapped_bytes = bytes;
      return memory;
    }
  }
  void* memory = std::calloc(bytes == 0 ? 1 : bytes, 1);
  if (memory == nullptr) throw std::bad_alloc();
  return memory;
}

void ZeroedDeleter::operator()(void* memory) const {
  if (mapped_bytes != 0)
    (void)munmap(memory, mapped_bytes);
  else
    std::free(memory);
}

Ring::Ring(std::uint32_t index, const RingConfig& config)
    : index_(index),
      window_(config.task_window),
      window_mask_(config.task_window - 1),
      heap_bytes_(config.heap_bytes),
      dep_capacity_(config.dep_pool),
      dep_mask_(config.dep_pool - 1),
      slots_(std::make_unique<TaskSlot[]>(config.task_window)),
      records_(config.task_window),
      spill_tensors_(std::size_t{config.task_window} * kMaxTensorArgs),
      spill_scalars_(std::size_t{config.task_window} * kMaxScalarArgs),
      spill_lines_(zeroed_array<std::uint16_t>(config.task_window)),
      infos_(zeroed_array<SlotInfo>(config.task_window)),
      ready_ns_(zeroed_array<std::uint64_t>(config.task_window)),
      dep_pool_(zeroed_array<FanoutNode>(config.dep_pool)),
      heap_storage_(zeroed_array<std::byte>(config.heap_bytes + 64)) {
  const auto address = reinterpret_cast<std::uintptr_t>(heap_storage_.get());
  heap_ = heap_storage_.get() + ((64 - address % 64) % 64);
  // A quarter of the window at most: ahead of the head, not among the oldest live tasks.
  prefetch_ahead_ = std::min(kPrefetchAhead, std::max(window_ / 4, 1u));
  advise_huge_pages(records_.items, sizeof(TaskRecord) * window_);
  advise_huge_pages(spill_tensors_.items, sizeof(Tensor) * kMaxTensorArgs * window_);
  advise_huge_pages(spill_scalars_.items, sizeof(std::uint64_t) * kMaxScalarArgs * window_);
  // Bind-once fields: no admit writes them again. (A record's argument pointers are set at each
  // admit, bind_arguments: binding them here would touch every record page up front.)
  for (std::uint32_t i = 0; i < window_; ++i) {
    slots_[i].ring = this;
    slots_[i].record = &records_.items[i];
  }
}

void Ring::bind_spilled(std::uint32_t i, int tensor_count, int scalar_count) {
  TaskRecord& r = records_.items[i];
  std::uint32_t lines = 0;
  if (tensor_count > kInlineTensorArgs) {
    r.tensors = spill_tensors_.items + std::size_t{i} * kMaxTensorArgs;
    lines = static_cast<std::uint32_t>(tensor_count) * sizeof(Tensor) / 64 + 1;
  }
  if (scalar_count > kInlineScalarArgs) {
    r.scalars = spill_scalars_.items + std::size_t{i} * kMaxScalarArgs;
    lines |= (static_cast<std::uint32_t>(scalar_count) * 8 / 64 + 1) << 8;
  }
  spill_lines_[i] = static_cast<std::uint16_t>(lines);
}

void Ring::prefetch_spill(std::uint32_t i) {
  const std::uint32_t lines = spill_lines_[i];
  spill_lines_[i] = 0;
  const auto* tensors =
      reinterpret_cast<const char*>(spill_tensors_.items + std::size_t{i} * kMaxTensorArgs);
  // Unrolled by four: a wide task's area is ~12 lines (7 tensors), a loop turn a line cost ~5
  // instructions each (session 27: -18 a call; two a turn by hand, -11).
#pragma GCC unroll 4
  for (std::uint32_t l = 0; l < (lines & 0xff); ++l)
    prefetch_for_write(tensors + 64 * l);
  const auto* scalars =
      reinterpret_cast<const char*>(spill_scalars_.items + std::size_t{i} * kMaxScalarArgs);
  for (std::uint32_t l = 0; l < (lines >> 8); ++l)
    prefetch_for_write(scalars + 64 * l);
}

void Ring::reset() {
  // Only slots the last run used need clearing (all of them once the ring wrapped).
  const std::uint32_t used = head_ < window_ ? head_ : window_;
  for (std::uint32_t i = 0; i < used; ++i) {
    TaskSlot& s = slots_[i];
    s.state.store(TaskState::consumed, std::memory_order_relaxed);
    s.release_remaining.store(0, std::memory_order_relaxed);
    s.fanout_head.store(nullptr, std::memory_order_relaxed);
  }
  head_ = retired_seen_ = published_seen_ = submitted_ = 0;
  heap_top_ = heap_position_ = heap_tail_ = dep_top_ = dep_tail_ = 0;
  published_.store(0, std::memory_order_relaxed);
  retired_.store(0, std::memory_order_release);
}

std::uint32_t Ring::refresh() {
  publish_all();  // tasks consumed since the last batch retire now
  const std::uint32_t now = retired();
  const std::uint32_t moved = now - retired_seen_;
  if (moved != 0) {
    const SlotInfo& last = info(now - 1);
    heap_tail_ = last.heap_end;
    dep_tail_ = last.dep_end;
    retired_seen_ = now;
  }
  return moved;
}

// Lock-free: scan from the watermark while the tasks are consumed, then move it with one
// compare-exchange from where the scan began. A failed exchange means another thread moved it
// meanwhile: scan again from there. A success is safe: the watermark was still `from`, so no slot
// at or past it had been reused, and each count read as zero was its task's own (the load of the
// publish limit orders the task's admit before the read).
//
// No advance is lost. Every access that decides (the counts' decrement and loads, the
// watermark's loads and exchange, the limit's loads) is seq_cst, and the orchestrator's publish
// is followed by a seq_cst RMW of the limit (publish_all). Say the watermark rests at w with task w
// consumed and published. The last exchange to w read w's count before its decrement to zero (or
// the limit before w's publish); in the single total order the decrement (the publish) comes later,
// and the thread that made it then reads the watermark. Had it read w, it would have found the task
// consumed and published and moved on; so it read an older value and failed every exchange that
// would have moved it (the one to w came after its load), and any scan of its that stopped
// short of w met a slot reused behind a moved watermark: a scan that stops where it began loads
// the watermark again and goes on from there when it moved. Either way it ends at w, and moves.
bool Ring::try_advance() {
  std::uint32_t from = retired_.load(std::memory_order_seq_cst);
  for (;;) {
    const std::uint32_t limit = published_.load(std::memory_order_seq_cst);
    std::uint32_t to = from;
    while (to != limit && consumed(to))
      ++to;
    if (to == from) {
      const std::uint32_t now = retired_.load(std::memory_order_seq_cst);
      if (now == from) return false;
      from = now;
    } else if (retired_.compare_exchange_strong(from, to, std::memory_order_seq_cst)) {
      return true;
    }
  }
}

}  // namespace tmr::detail
