#include "core/dependence/tensor_map.hpp"

#include <algorithm>
#include <bit>
#include <numeric>

namespace tmr::detail {
namespace {

constexpr std::size_t kEntryChunk = 4096;
constexpr std::size_t kBufferChunk = 256;

std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

std::uint64_t buffer_hash(std::uintptr_t address, std::uint64_t owner) {
  return mix(address ^ (owner * 0x9E3779B97F4A7C15ull));
}

}  // namespace

TensorMap::TensorMap(RetirementView rings, std::uint32_t bucket_bits)
    : rings_(rings),
      bucket_shift_(64 - bucket_bits),
      buckets_(std::size_t{1} << bucket_bits, nullptr),
      buffer_table_(1024, nullptr),
      blocks_(1) {
  // Reader blocks for a ring window's readers up front: a run whose lines each keep a block
  // (the peers' attention graph: its KV lines, 8,192 a run) grew the pool by doubling, ~10
  // instructions a task of copies in a process's first run. Untouched capacity costs address space
  // only.
  blocks_.reserve(std::size_t{1} + rings.largest_window());
  std::fill(std::begin(by_arg_), std::end(by_arg_), &no_buffer_);
  std::fill(std::begin(by_arg_before_), std::end(by_arg_before_), &no_buffer_);
}

TensorMap::~TensorMap() = default;

void TensorMap::reset() {
  ++layout_epoch_;
  std::fill(std::begin(recent_), std::end(recent_), &no_buffer_);
  std::fill(std::begin(by_arg_), std::end(by_arg_), &no_buffer_);
  std::fill(std::begin(by_arg_before_), std::end(by_arg_before_), &no_buffer_);
  blocks_.resize(1);  // every block is free again (capacity kept)
  free_blocks_ = 0;
  line_table_lines_ = 0;
  // Every block is free: no line names one any more, and every line is empty. The line tables
  // stay (like the slot tables), so the next run neither allocates nor zeroes them again.
  for (auto& chunk : buffer_chunks_) {
    for (std::size_t i = 0; i < kBufferChunk; ++i) {
      BufferInfo& info = chunk[i];
      for (std::uint64_t l = 0; l < info.line_capacity; ++l)
        info.line_storage[l].older = 0;
      info.line_gen = next_line_gen(&info);
      info.lines = nullptr;
      info.line_phase = BufferInfo::kNoLinePhase;
      info.anchor = nullptr;
    }
  }
  if (allocated_ == 0 && buffer_count_ == 0) {
    // Every entry was freed (so every bucket and the buffer table are empty): nothing to rebuild.
    stats_ = {};
    return;
  }
  allocated_ = 0;
  std::fill(buckets_.begin(), buckets_.end(), nullptr);
  std::fill(buffer_table_.begin(), buffer_table_.end(), nullptr);
  buffer_count_ = 0;
  // Rebuild the free lists over every chunk: nothing is live any more.
  free_entries_ = nullptr;
  for (auto& chunk : entry_chunks_) {
    for (std::size_t i = 0; i < kEntryChunk; ++i) {
      chunk[i].chain_next = free_entries_;
      free_entries_ = &chunk[i];
    }
  }
  free_buffers_ = nullptr;
  for (auto& chunk : buffer_chunks_) {
    for (std::size_t i = 0; i < kBufferChunk; ++i) {
      // (The line table stays, its lines empty: see above.)
      std::unique_ptr<SlotLine[]> lines = std::move(chunk[i].line_storage);
      const std::uint64_t line_capacity = chunk[i].line_capacity;
      const std::uint16_t line_gen = chunk[i].line_gen;
      chunk[i] = BufferInfo{};
      chunk[i].line_storage = std::move(lines);
      chunk[i].line_capacity = line_capacity;
      chunk[i].line_gen = line_gen;
      chunk[i].next_free = free_buffers_;
      free_buffers_ = &chunk[i];
    }
  }
  stats_ = {};
}

BufferInfo* TensorMap::probe_buffer(std::uintptr_t address, std::uint64_t owner) const {
  const std::size_t mask = buffer_table_.size() - 1;
  for (std::size_t i = buffer_hash(address, owner) & mask;; i = (i + 1) & mask) {
    BufferInfo* const info = buffer_table_[i];
    if (info == nullptr) return nullptr;
    if (info->address == address && info->owner == owner) return info;
  }
}

void TensorMap::grow_buffer_table() {
  std::vector<BufferInfo*> old(buffer_table_.size() * 2, nullptr);
  old.swap(buffer_table_);
  const std::size_t mask = buffer_table_.size() - 1;
  for (BufferInfo* info : old) {
    if (info == nullptr) continue;
    std::size_t i = info->hash & mask;
    while (buffer_table_[i] != nullptr)
      i = (i + 1) & mask;
    buffer_table_[i] = info;
  }
}

void TensorMap::add_buffer_chunk() {
  auto chunk = std::make_unique<BufferInfo[]>(kBufferChunk);
  for (std::size_t i = 0; i < kBufferChunk; ++i) {
    chunk[i].next_free = free_buffers_;
    free_buffers_ = &chunk[i];
  }
  buffer_chunks_.push_back(std::move(chunk));
}

BufferInfo* TensorMap::add_buffer(std::uintptr_t address, std::uint64_t owner) {
  if ((buffer_count_ + 1) * 2 > buffer_table_.size()) [[unlikely]]
    grow_buffer_table();
  if (free_buffers_ == nullptr) [[unlikely]]
    add_buffer_chunk();
  BufferInfo* const info = free_buffers_;
  free_buffers_ = info->next_free;
  // Counts and masks are already zero: a buffer returns to the free list only when empty.
  ++layout_epoch_;  // (a hint that found no buffer is stale: see SlotHint::absent)
  const std::uint64_t hash = buffer_hash(address, owner);
  info->address = address;
  info->owner = owner;
  info->hash = hash;
  info->next_free = nullptr;
  info->min_version = ~std::uint32_t{0};
  info->max_version = 0;
  remember(info);
  const std::size_t mask = buffer_table_.size() - 1;
  std::size_t i = hash & mask;
  while (buffer_table_[i] != nullptr)
    i = (i + 1) & mask;
  buffer_table_[i] = info;
  ++buffer_count_;
  return info;
}

void TensorMap::erase_buffer_if_empty(BufferInfo* info) {
  if (info->total[0] != 0 || info->total[1] != 0 || info->anchor != nullptr) return;
  const std::size_t mask = buffer_table_.size() - 1;
  std::size_t i = info->hash & mask;
  while (buffer_table_[i] != info)
    i = (i + 1) & mask;
  // Backward-shift deletion keeps probe chains intact without tombstones.
  std::size_t hole = i;
  for (std::size_t j = (i + 1) & mask; buffer_table_[j] != nullptr; j = (j + 1) & mask) {
    const std::size_t home = buffer_table_[j]->hash & mask;
    const bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
    if (movable) {
      buffer_table_[hole] = buffer_table_[j];
      hole = j;
    }
  }
  buffer_table_[hole] = nullptr;
  --buffer_count_;
  for (BufferInfo*& cached : recent_) {
    if (cached == info) cached = &no_buffer_;
  }
  info->address = 0;
  ++layout_epoch_;
  info->next_free = free_buffers_;
  free_buffers_ = info;
}

void TensorMap::grow_entries() {
  // Not zero-filled (512 KiB): link_entry writes every field of an entry it takes.
  auto chunk = std::make_unique_for_overwrite<MapEntry[]>(kEntryChunk);
  for (std::size_t i = 0; i < kEntryChunk; ++i) {
    chunk[i].chain_next = free_entries_;
    free_entries_ = &chunk[i];
  }
  entry_chunks_.push_back(std::move(chunk));
}

void TensorMap::free_entry(MapEntry* e) {
  --allocated_;
  e->chain_next = free_entries_;
  free_entries_ = e;
}

void TensorMap::link_entry_slow(const AccessRegion& region, std::uint8_t kind, BufferInfo* buffer,
                                SlotHeads heads, TaskId id, MapEntry*& task_entries) {
  if (buffer->total[0] == 0 && buffer->total[1] == 0) {
    // An empty buffer starts as a grid of this entry's length and alignment.
    buffer->start_grid(region.lo, region.hi);
    presize_slots(buffer, region.tensor->buffer_bytes() / buffer->grid_length + 1);
    ++layout_epoch_;
    heads = kNoHeads;  // found on the old grid, if any
  } else if (heads.at == nullptr && buffer->grid && !buffer->on_grid(region.lo, region.hi)) {
    leave_grid(buffer);  // (known heads mean the caller found the region on the grid)
  }
  if (buffer->grid && heads.at == nullptr) {
    heads = insert_heads(buffer, buffer->slot_of(region.lo));  // (before the entry is listed)
  }
  MapEntry* const e = allocate_entry();
  fill_entry(e, region, kind, buffer, id);
  if (!buffer->grid) {
    link_chain(e, &buckets_[bucket_of(buffer, kind, e->size_class, e->cell())]);
  } else {
    link_chain(e, heads.at + kind);
  }
  list_entry(e, region, kind, buffer, task_entries);
}

void TensorMap::presize_slots(BufferInfo* info, std::uint64_t slots) {
  const std::uint64_t capacity = std::bit_ceil(std::min(slots, presize_limit_));
  if (capacity <= info->slot_capacity) return;
  // (An empty buffer has no heads: the inline ones are null.)
  if (capacity <= BufferInfo::kInlineSlots) {
    info->slot_heads = info->inline_heads;
  } else {
    info->table_storage = std::make_unique<MapEntry*[]>(2 * capacity);
    info->slot_heads = info->table_storage.get();
  }
  info->slot_capacity = capacity;
}

void TensorMap::grow_slots(BufferInfo* info, std::uint64_t slot) {
  // Every entry of the buffer is in its table (no slot hashed): the grown table takes the heads
  // over and no entry moves.
  if (info->hashed_slots) return;
  const std::uint64_t entries = std::uint64_t{info->total[0]} + info->total[1];
  const std::uint64_t want = std::bit_ceil(slot + 1);
  // Sparse slots (few entries far apart) are hashed: a table holds at most a few heads per entry
  // past its first kFreeTableSlots.
  if (want > kMaxTableSlots || (want > kFreeTableSlots && want > 4 * (entries + 1))) return;
  const std::uint64_t capacity =
      std::min(kMaxTableSlots, std::max({want, 2 * info->slot_capacity, std::uint64_t{4}}));
  auto heads = std::make_unique<MapEntry*[]>(2 * capacity);  // (all null)
  for (std::uint64_t h = 0; h < 2 * info->slot_capacity; ++h) {
    heads[h] = info->slot_heads[h];
    if (heads[h] != nullptr) heads[h]->head = &heads[h];  // (only a chain's first entry names it)
  }
  info->table_storage = std::move(heads);
  info->slot_heads = info->table_storage.get();
  info->slot_capacity = capacity;
  ++layout_epoch_;
  ++stats_.table_grows;
}

bool TensorMap::chains_consistent(std::uint64_t* linked, std::uint64_t* hashed) const {
  std::uint64_t count = 0;
  std::uint64_t hashed_grid = 0;
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    const MapEntry* prev = nullptr;
    for (const MapEntry* e = buckets_[b]; e != nullptr; prev = e, e = e->chain_next) {
      if (e->chain_prev != prev || e->kind != (b & 1)) return false;
      if (prev == nullptr && e->head != &buckets_[b]) return false;
      // A grid entry is hashed only when its buffer's table does not cover its slot.
      if (e->buffer->grid) {
        if (e->buffer->slot_of(e->lo) < e->buffer->slot_capacity) return false;
        if (!e->buffer->hashed_slots) return false;
        ++hashed_grid;
      }
      ++count;
    }
  }
  for (const BufferInfo* info : buffer_table_) {
    if (info == nullptr) continue;
    for (std::uint64_t h = 0; h < 2 * info->slot_capacity; ++h) {
      const MapEntry* prev = nullptr;
      for (const MapEntry* e = info->slot_heads[h]; e != nullptr; prev = e, e = e->chain_next) {
        // Only grid entries of this buffer and slot, of the head's kind.
        if (e->chain_prev != prev || (prev == nullptr && e->head != &info->slot_heads[h]) ||
            e->kind != (h & 1) || e->buffer != info || !info->grid ||
            info->slot_of(e->lo) != h / 2) {
          return false;
        }
        ++count;
      }
    }
  }
  if (linked != nullptr) *linked = count;
  if (hashed != nullptr) *hashed = hashed_grid;
  return true;
}

void TensorMap::leave_grid(BufferInfo* info) {
  for (MapEntry* list : info->list) {
    for (MapEntry* e = list; e != nullptr; e = e->list_next) {
      // Out of its slot's chain, into its size-class cell's.
      chain_remove(e);
      link_chain(e, &buckets_[bucket_of(info, e->kind, e->size_class, e->cell())]);
    }
  }
  info->stop_grid();
  ++layout_epoch_;
  ++stats_.grid_exits;
}

void TensorMap::unlink(MapEntry& e) {
  if (e.kind == MapEntry::kDead) return;
  const std::uint8_t k = e.kind;
  chain_remove(&e);

  BufferInfo* const buffer = e.buffer;
  if (e.list_prev != nullptr) {
    e.list_prev->list_next = e.list_next;
  } else {
    buffer->list[k] = e.list_next;
  }
  if (e.list_next != nullptr) e.list_next->list_prev = e.list_prev;

  if (--buffer->class_count[k][e.size_class] == 0) {
    buffer->class_mask[k] &= ~(std::uint64_t{1} << e.size_class);
  }
  --buffer->total[k];
  if (e.older != 0) free_readers(e);
  e.kind = MapEntry::kDead;
  --stats_.live_entries;
}

void TensorMap::release_entry(MapEntry* e) {
  if (e->kind != MapEntry::kDead) {
    BufferInfo* const buffer = e->buffer;
    unlink(*e);
    erase_buffer_if_empty(buffer);
  }
  free_entry(e);
}

void TensorMap::drop_task(MapEntry*& task_entries) {
  for (MapEntry* e = task_entries; e != nullptr;) {
    MapEntry* const next = e->task_next;
    if (e->kind == MapEntry::kAnchor) {
      release_anchor(e);  // (its buffer's lines are dropped with it)
    } else {
      release_entry(e);
    }
    e = next;
  }
  task_entries = nullptr;
}

bool TensorMap::same_elements(const Query& q, const MapEntry& e) {
  const Tensor& t = *q.tensor;
  const Tensor& r = *e.region;
  if (!same_layout(t, r)) return false;
  for (int d = 0; d < t.ndims(); ++d) {
    if (t.box_offset(d) != r.box_offset(d) || t.box_extent(d) != r.box_extent(d)) return false;
  }
  return true;
}

std::uint32_t TensorMap::allocate_block() {
  if (free_blocks_ != 0) {
    const std::uint32_t b = free_blocks_;
    free_blocks_ = blocks_[b].next;
    return b;
  }
  blocks_.emplace_back();  // amortised growth, like the entry chunks
  return static_cast<std::uint32_t>(blocks_.size() - 1);
}

void TensorMap::free_readers(MapEntry& e) {
  free_block_list(e.older);
}

void TensorMap::free_block_list(std::uint32_t& older) {
  std::uint32_t b = older;
  while (b != 0) {
    const std::uint32_t next = blocks_[b].next;
    blocks_[b].next = free_blocks_;
    free_blocks_ = b;
    b = next;
  }
  older = 0;
}

void TensorMap::add_reader(MapEntry& e, const Query& q, TaskId id, const std::uint32_t* retired) {
  const std::uint32_t previous = e.task_id.local();
  e.task_id = id;
  e.region = q.tensor;  // the same box; this record lives as long as the entry
  push_older(e.older, previous, retired[id.ring()]);
}

void TensorMap::push_older(std::uint32_t& older, std::uint32_t previous, std::uint32_t floor) {
  if (older != 0) {
    const std::uint32_t last = blocks_[older].last;
    if (ReaderBlock& block = blocks_[last]; block.count < ReaderBlock::kCapacity) {
      block.local[block.count++] = previous;
      return;
    }
    // Full: drop the blocks whose readers have all retired (the oldest ones) before growing, so
    // a region read by one task after another forever holds only its live readers.
    std::uint32_t first = older;
    while (first != 0 && blocks_[first].local[blocks_[first].count - 1] < floor) {
      const std::uint32_t next = blocks_[first].next;
      blocks_[first].next = free_blocks_;
      free_blocks_ = first;
      first = next;
    }
    if (first != 0) {
      const std::uint32_t b = allocate_block();  // (may move blocks_)
      blocks_[b].next = 0;
      blocks_[b].count = 1;
      blocks_[b].local[0] = previous;
      blocks_[last].next = b;
      blocks_[first].last = b;
      older = first;
      return;
    }
  }
  const std::uint32_t b = allocate_block();
  blocks_[b].next = 0;
  blocks_[b].last = b;
  blocks_[b].count = 1;
  blocks_[b].local[0] = previous;
  older = b;
}

// ---------------------------------------------------------------- slot lines

bool TensorMap::start_lines(const Query& q, BufferInfo* info, TaskId id, MapEntry*& task_entries) {
  info->start_grid(q.lo, q.hi);
  ++layout_epoch_;
  const std::uint64_t limit =
      std::bit_ceil(std::min(q.tensor->buffer_bytes() / info->grid_length + 1, line_limit_cap_));
  const std::uint64_t slot = info->slot_of(q.lo);
  if (slot >= limit) return false;
  info->line_limit = limit;
  const std::uint64_t want = std::min(limit, std::max(std::bit_ceil(slot + 1), kFirstLines));
  if (info->line_capacity < want) [[unlikely]]
    replace_lines(info, want);
  info->lines = info->line_storage.get();
  line_table_lines_ += info->line_capacity;
  std::fill(std::begin(info->line_last), std::end(info->line_last), 0u);
  info->line_version = q.version;
  info->line_low = ~std::uint64_t{0};
  info->line_high = 0;
  MapEntry* const anchor = allocate_entry();
  anchor->kind = MapEntry::kAnchor;
  anchor->buffer = info;
  anchor->task_id = id;
  anchor->older = 0;
  anchor->task_next = task_entries;
  task_entries = anchor;
  info->anchor = anchor;
  ++stats_.line_starts;
  return true;
}

void TensorMap::replace_lines(BufferInfo* info, std::uint64_t want) {
  // (The old table's lines are all empty: their reader blocks go back.)
  for (std::uint64_t s = 0; s < info->line_capacity; ++s) {
    if (info->line_storage[s].older != 0) free_block_list(info->line_storage[s].older);
  }
  info->line_storage = std::make_unique<SlotLine[]>(want);
  info->line_capacity = want;
}

bool TensorMap::grow_lines(BufferInfo* info, std::uint64_t slot) {
  if (slot >= info->line_limit) {  // (kOffGrid is past every limit)
    leave_lines(info);
    return false;
  }
  const std::uint64_t want =
      std::min(info->line_limit, std::max(std::bit_ceil(slot + 1), 2 * info->line_capacity));
  auto lines = std::make_unique<SlotLine[]>(want);
  std::copy_n(info->line_storage.get(), info->line_capacity, lines.get());
  line_table_lines_ += want - info->line_capacity;
  info->line_storage = std::move(lines);
  info->lines = info->line_storage.get();
  info->line_capacity = want;
  return true;
}

bool TensorMap::grow_lines_for(const Tensor& t, int arg) {
  // find_line's tests again, up to its table test: the same buffer (the place's guess, which
  // find_line retargeted), version, line mode with its phase set, and a box of whole slots on
  // the phase (one slot, or a rank-1 span of at most kMaxSpanLines).
  BufferInfo* const info = by_arg_[static_cast<unsigned>(arg) % kMaxTensorArgs];
  if (info->address != reinterpret_cast<std::uintptr_t>(t.buffer()) ||
      info->owner != t.producer().value() || info->lines == nullptr ||
      info->line_phase == BufferInfo::kNoLinePhase || info->line_version != t.version()) {
    return false;
  }
  std::uint64_t size;
  std::uint64_t count;
  std::uint64_t lo;
  if (!line_interval(t, size, count, lo)) return false;
  const std::uint64_t bytes = count * size;
  if (bytes != info->grid_length &&
      (t.ndims() != 1 || bytes == 0 || bytes > kMaxSpanLines * info->grid_length)) {
    return false;
  }
  if ((lo & info->line_mask) != info->line_phase || (bytes & info->line_mask) != 0) return false;
  const std::uint64_t last = (lo >> info->grid_shift) + (bytes >> info->grid_shift) - 1;
  if (last < info->line_capacity || last >= info->line_limit) return false;
  return grow_lines(info, last);
}

bool TensorMap::refine_lines(BufferInfo* info, const Query& q) {
  const std::uint64_t length = info->grid_length;
  const std::uint64_t phase = info->grid_phase;
  const std::uint64_t offset = q.lo >= phase ? (q.lo - phase) % length : (phase - q.lo) % length;
  const std::uint64_t unit = std::gcd(std::gcd(length, offset), q.hi - q.lo);
  const std::uint64_t factor = length / unit;
  if (factor > kMaxSpanLines) return false;
  SlotLine* const old = info->lines;
  const bool used = info->line_low < info->line_high;
  if (used) {
    for (std::uint64_t s = info->line_low; s < info->line_high; ++s) {
      if (old[s].gen == info->line_gen && old[s].older != 0) return false;
    }
  }
  // Old slot s is new slots s * factor + first .. + factor - 1 (the new phase is phase % unit).
  const std::uint64_t first = phase / unit;
  const std::uint64_t limit =
      std::bit_ceil(std::min(q.tensor->buffer_bytes() / unit + 1, line_limit_cap_));
  const std::uint64_t high = used ? info->line_high * factor + first : 0;
  if (high > limit) return false;
  const std::uint64_t want = std::min(limit, std::max(std::bit_ceil(high), kFirstLines));
  // Each live line becomes `factor` copies stamped with a new generation, which empties every
  // other line at once. The table is cut in place when it is large enough: a buffer refines at
  // each line-mode episode (its grid starts from the episode's first access), and a fresh table
  // each time, grown again slot by slot, cost the stencil run fresh pages (session 38).
  const std::uint16_t gen = next_line_gen(info);
  if (want <= info->line_capacity) {
    // Old slot s goes to new slots >= s: from the top down, no copy overwrites a line not yet
    // copied. An overwritten line is empty (live ones were copied already) but may still own
    // reader blocks (owned whatever its gen).
    for (std::uint64_t s = used ? info->line_high : 0; s-- > (used ? info->line_low : 0);) {
      const SlotLine line = old[s];
      if (line.gen != info->line_gen) continue;  // empty: stays empty under the new gen
      for (std::uint64_t j = 0; j < factor; ++j) {
        SlotLine& to = old[s * factor + first + j];
        if (to.older != 0) free_block_list(to.older);
        to = line;
        to.gen = gen;
      }
    }
  } else {
    auto lines = std::make_unique<SlotLine[]>(want);
    for (std::uint64_t s = 0; s < info->line_capacity; ++s) {
      SlotLine& line = old[s];
      if (line.gen != info->line_gen) {
        if (line.older != 0) free_block_list(line.older);  // (owned whatever its gen)
        continue;
      }
      for (std::uint64_t j = 0; j < factor; ++j) {
        lines[s * factor + first + j] = line;
        lines[s * factor + first + j].gen = gen;
      }
    }
    line_table_lines_ += want;
    line_table_lines_ -= info->line_capacity;
    info->line_storage = std::move(lines);
    info->lines = info->line_storage.get();
    info->line_capacity = want;
  }
  info->line_gen = gen;
  info->line_limit = limit;
  if (used) {
    info->line_low = info->line_low * factor + first;
    info->line_high = high;
  }
  info->grid_length = unit;
  info->grid_shift = std::has_single_bit(unit) ? static_cast<std::uint8_t>(std::countr_zero(unit))
                                               : BufferInfo::kNoShift;
  info->grid_phase = phase % unit;
  info->line_phase = BufferInfo::kNoLinePhase;  // (find_line's next try sets it up again)
  ++layout_epoch_;
  ++stats_.line_refines;
  return true;
}

void TensorMap::leave_lines(BufferInfo* info) {
  std::uint32_t retired[TensorMap::kRetiredSlots];
  snapshot_retired(retired);
  SlotLine* const lines = info->lines;
  info->lines = nullptr;
  info->line_phase = BufferInfo::kNoLinePhase;
  info->anchor = nullptr;  // (its entry is freed when its task's list is released)
  line_table_lines_ -= info->line_capacity;
  ++layout_epoch_;
  ++stats_.line_exits;
  // Every live state of a line becomes an entry of the line's slot on the buffer's grid (which
  // line mode kept), in the list of its task: a write entry for a live writer, a merged read
  // entry for the live readers.
  presize_slots(info, info->line_capacity);
  const std::uint64_t length = info->grid_length;
  for (std::uint64_t s = info->line_low; s < info->line_high; ++s) {
    SlotLine& line = lines[s];
    if (line.gen != info->line_gen) continue;
    const std::uint64_t lo =
        (info->grid_shift != BufferInfo::kNoShift ? s << info->grid_shift : s * length) +
        info->grid_phase;
    AccessRegion region{nullptr,     info->address,      info->owner, lo,
                        lo + length, info->line_version, true};
    if (line.has_writer() && !dead(line.writer_id(), retired)) {
      region.tensor = rings_.tensor(line.writer_id(), line.writer_arg());
      line_entry(info, s, region, static_cast<std::uint8_t>(AccessKind::write), line.writer_id(),
                 0);
    }
    if (line.has_reader() && !dead(line.reader_id(), retired)) {
      region.tensor = rings_.tensor(line.reader_id(), line.reader_arg());
      line_entry(info, s, region, static_cast<std::uint8_t>(AccessKind::read), line.reader_id(),
                 line.older);
      line.older = 0;  // (the entry's now)
    } else if (line.older != 0) {
      free_block_list(line.older);
    }
  }
  info->line_gen = next_line_gen(info);
}

void TensorMap::renumber_lines(BufferInfo* info) {
  // (The table is line_storage's, whether or not the buffer is in line mode now.)
  for (std::uint64_t s = 0; s < info->line_capacity; ++s) {
    SlotLine& line = info->line_storage[s];
    line.gen = line.gen == info->line_gen ? 1 : 0;
  }
  info->line_gen = 1;
}

void TensorMap::line_entry(BufferInfo* info, std::uint64_t slot, const AccessRegion& region,
                           std::uint8_t kind, TaskId task, std::uint32_t older) {
  const SlotHeads heads = insert_heads(info, slot);
  MapEntry* const e = allocate_entry();
  fill_entry(e, region, kind, info, task);
  e->older = older;
  link_chain(e, heads.at + kind);
  list_entry(e, region, kind, info, task_list_of_(task_lists_ctx_, task));
}

void TensorMap::end_lines(BufferInfo* info) {
  line_table_lines_ -= info->line_capacity;
  info->lines = nullptr;
  info->line_phase = BufferInfo::kNoLinePhase;
  info->anchor = nullptr;
  info->line_gen = next_line_gen(info);
  ++layout_epoch_;
  erase_buffer_if_empty(info);
}

TaskId TensorMap::line_holder(const MapEntry& anchor) const {
  const BufferInfo* const info = anchor.buffer;
  if (info->anchor != &anchor) return TaskId();  // the buffer left line mode
  for (std::uint32_t ring = 0; ring < kRingCount; ++ring) {
    if (info->line_last[ring] == 0) continue;
    const TaskId newest(ring, info->line_last[ring] - 1);
    if (!rings_.is_retired(newest)) return newest;
  }
  return TaskId();
}

void TensorMap::release_anchor(MapEntry* anchor) {
  BufferInfo* const info = anchor->buffer;
  if (info->anchor == anchor) end_lines(info);
  free_entry(anchor);
}

}  // namespace tmr::detail
