// TensorMap: which live tasks read or write which regions of which buffers.
//
// Entries are keyed by buffer identity (address + creating task, so a recycled heap address is a
// new buffer). Each entry's region is indexed by its byte interval: entries of length in
// [2^k, 2^(k+1)) live in cells of 2^(k+1) bytes, so a lookup visits a bounded number of cells per
// size class instead of every live view of the buffer; when the cells to visit outnumber the
// entries, the buffer's own entry list is scanned instead. Exact box tests in the shared raw
// layout follow (byte-interval overlap when layouts differ — conservative, never a missed hit).
//
// Grid buffers: most programs cut a buffer into equal, aligned pieces (rows, blocks, one gate
// cell). While every live entry of a buffer has the same length L and the same start modulo L,
// the buffer is a *grid*: entries are chained by their grid slot, so a lookup of an on-grid region
// visits exactly the chains of its own slot (the only slot it can overlap), and an off-grid lookup
// visits the slots its interval spans. A grid buffer's slots are found by index in the buffer's
// own slot table (no hash, and a chain holds entries of its slot only) as long as the table stays
// dense (a few slots per live entry; see grow_slots); the entries of slots past it are hashed
// into the map's buckets with everything else. The first off-grid insert re-indexes the buffer's
// entries into size-class cells (once; the buffer stays there until it is empty again).
//
// Merged readers: a read of exactly the region of a live read entry of the same grid slot (same
// interval, box and version, same ring) joins that entry as its newest reader instead of adding an
// entry; a later write still reports every live reader (see MapEntry). Likewise a write that
// covers a live write entry of exactly its grid slot takes that entry over.
//
// Entries die lazily: a lookup skips (and unlinks) entries whose task has retired; cleanup frees
// every entry of a retired task through the task's own entry list.
//
// Slot lines (plain submits, lookup_insert): a buffer whose first access is contiguous keeps its
// grid slots' state in a table of 16-byte lines instead of entries (see SlotLine): lookup and
// insert of an access that is exactly one slot touch that line only. What the lines cannot
// express (off-grid or non-contiguous accesses, another version, readers of two rings, and every
// lookup()/insert()/for_each_live_entry()) first turns the buffer's live line state into entries
// (leave_lines); the buffer keeps entries until it empties. An anchor entry in a task's list keeps
// a line-mode buffer until every task that touched a line has retired. A write to a line with live
// readers reports those readers and not the line's writer, which each of them is ordered after
// (a transitive edge left out; entries still report every overlapping live access).
// Spans: a contiguous access of a line-mode buffer whose bytes are several whole slots (after the
// grid is cut finer, if the old slots and the access fit finer ones) takes one line per slot.
#pragma once

#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#include "core/dependence/retirement_view.hpp"
#include "core/prefetch.hpp"
#include "core/task.hpp"
#include "tmr/tensor.hpp"

namespace tmr::detail {

enum class AccessKind : std::uint8_t { read = 0, write = 1 };

struct BufferInfo;

// Earlier readers of a merged read entry (see MapEntry::older): local ids of one ring, oldest
// first. One cache line; a merged entry's blocks form a list from its oldest block, whose `last`
// names the block that takes the next reader. Blocks are named by their index in the map's block
// pool (0: none), so an entry holds a 4-byte index, not a pointer.
struct alignas(64) ReaderBlock {
  static constexpr std::uint32_t kCapacity = 13;
  std::uint32_t next;
  std::uint32_t last;  // valid in an entry's first block only
  std::uint32_t count;
  std::uint32_t local[kCapacity];
};

// One recorded access: two cache lines (128 bytes) instead of a whole Tensor copy. The box itself
// is read through `region`, which points at the tensor in a task's own record, and only when
// byte intervals partly overlap (identical or disjoint intervals are decided from the entry
// alone). What a chain walk and an overlap test read is in the first line (see the layout).
//
// Merged readers: reads of one region (same interval, box and version) by several live tasks of
// one ring share one entry. `task_id` is its newest reader, `region` points at that reader's
// record (all readers' boxes are identical), and `older` lists the earlier readers; since a ring
// retires in order, the entry is dead exactly when its newest reader is. A write covering a
// write entry of exactly its interval takes the entry over the same way (new `task_id` and
// `region`). The entry stays in the task list of whichever task inserted it; when that task is
// released while the entry's current task is live, the entry moves to that task's list
// (TensorMap::release_task).
struct alignas(64) MapEntry {
  // ---- line 0: what a chain walk, a merge and a take-over read and write
  MapEntry* chain_next;
  BufferInfo* buffer;
  std::uint64_t lo;
  std::uint64_t hi;
  TaskId task_id;
  std::uint32_t version;  // the access's tensor version
  std::uint32_t older;    // first ReaderBlock of a merged read entry's earlier readers, or 0
  std::uint32_t spare;    // (keeps `region` in line 0)
  std::uint8_t size_class;
  std::uint8_t kind;     // AccessKind, or kDead once unlinked
  bool contiguous;       // every byte in [lo, hi) belongs to the box
  const Tensor* region;  // valid while the task is live: test dead() before reading it
  // ---- line 1: links only linking, unlinking and releasing follow
  MapEntry* chain_prev;
  MapEntry** head;  // the first entry of a chain only: where it is named (a bucket or a table slot)
  MapEntry* list_prev;
  MapEntry* list_next;
  MapEntry* task_next;
  static constexpr std::uint8_t kDead = 0xFF;
  static constexpr std::uint8_t kAnchor = 0xFE;  // a line-mode buffer's anchor (BufferInfo)
  // The cell of the entry's size class that holds its first byte.
  std::uint64_t cell() const { return lo >> (size_class + 1); }
};
static_assert(offsetof(MapEntry, chain_prev) == 64 && sizeof(MapEntry) == 128,
              "a chain walk reads one line of an entry (see MapEntry)");

// Slot lines (see the top of this file): the state of one grid slot of a buffer in line mode,
// instead of map entries. The writer is the newest write of the slot, the reader the newest read
// of the current version since it, and `older` (ReaderBlocks, the reader's ring) the earlier
// readers since it. 16 bytes, four to a cache line (a 16,384-slot table in 256 KiB, not 512): a
// task is kept as its 32-bit local id and a tag byte (arg << 3 | ring, or kNone, whose ring bits
// are kNoRing: a line's liveness test indexes a watermark snapshot with those bits, and the
// snapshot's kNoRing entry calls no local id live, so "no task" needs no test of its own), and
// neither its slot nor its access's tensor is kept but found from its id
// (RetirementView::slot, and the argument place in the task's record: RetirementView::tensor,
// read only when the buffer leaves line mode). So every access put in a line must be its task
// record's tensor `arg` (lookup_insert's and access_line's contract).
// A line is empty unless `gen` is its buffer's `line_gen` (16 bits: next_line_gen renumbers the
// table's lines before the buffer's gen would wrap); a task in it is dead once its ring's
// retirement watermark passes it, so dead state is overwritten in place. Every access recorded in
// a line is contiguous, exactly the line's slot (the same bytes) and of its buffer's line_version
// (versions of one buffer are ordered whatever their regions: another version leaves the lines).
struct alignas(16) SlotLine {
  static constexpr std::uint8_t kNone = 0xFF;           // no task (a tag no ring and place make)
  static constexpr std::uint32_t kNoRing = kNone & 7u;  // the ring bits of kNone
  std::uint32_t writer_local = 0;
  std::uint32_t reader_local = 0;
  std::uint32_t older = 0;  // first ReaderBlock of the earlier readers, or 0 (owned whatever `gen`)
  std::uint16_t gen = 0;
  std::uint8_t writer_tag = kNone;  // arg << 3 | ring, or kNone
  std::uint8_t reader_tag = kNone;
  static std::uint8_t tag(TaskId id, int arg) {
    return static_cast<std::uint8_t>((static_cast<std::uint32_t>(arg) << 3) | id.ring());
  }
  // A tag's ring, or kNoRing for kNone. Opaque to the compiler once masked: GCC otherwise kept
  // the masked byte twice, a 64-bit index and an 8-bit value that each report zero-extended
  // again (+3 instructions a report).
  static std::size_t ring_of(std::uint8_t tag) {
    std::size_t ring = tag & 7u;
    asm("" : "+r"(ring));
    return ring;
  }
  static TaskId id_of(std::uint8_t tag, std::uint32_t local) {
    return TaskId(static_cast<std::uint32_t>(ring_of(tag)), local);
  }
  bool has_writer() const { return writer_tag != kNone; }
  bool has_reader() const { return reader_tag != kNone; }
  // The tasks (valid only with has_writer() / has_reader()), and their argument places.
  TaskId writer_id() const { return id_of(writer_tag, writer_local); }
  TaskId reader_id() const { return id_of(reader_tag, reader_local); }
  std::size_t writer_ring() const { return ring_of(writer_tag); }
  std::size_t reader_ring() const { return ring_of(reader_tag); }
  int writer_arg() const { return writer_tag >> 3; }
  int reader_arg() const { return reader_tag >> 3; }
  // The same, an invalid TaskId for none.
  TaskId writer() const { return has_writer() ? writer_id() : TaskId(); }
  TaskId reader() const { return has_reader() ? reader_id() : TaskId(); }
  void set_writer(TaskId id, int arg) {
    writer_local = id.local();
    writer_tag = tag(id, arg);
  }
  void set_reader(TaskId id, int arg) {
    reader_local = id.local();
    reader_tag = tag(id, arg);
  }
};
static_assert(sizeof(SlotLine) == 16, "four lines per cache line");
static_assert(
    kRingCount <= SlotLine::kNoRing && kMaxTensorArgs <= 31,
    "a ring and an argument place fit a tag byte, and none is kNone or has its ring bits");

struct BufferInfo {
  std::uintptr_t address = 0;
  std::uint64_t owner = 0;
  // buffer_hash(address, owner), kept while the info is in the buffer table: erasing an info and
  // growing the table hash no identity again (a fresh output's buffer is added and erased once
  // each; the erase's backward shift needed every moved neighbour's hash).
  std::uint64_t hash = 0;
  std::uint64_t class_mask[2] = {0, 0};
  std::uint32_t class_count[2][64] = {};
  MapEntry* list[2] = {nullptr, nullptr};
  std::uint32_t total[2] = {0, 0};
  std::uint32_t min_version = 0;
  std::uint32_t max_version = 0;
  BufferInfo* next_free = nullptr;
  // Grid indexing (see the top of this file): valid while `grid` is set.
  bool grid = false;
  std::uint8_t grid_shift = 0;    // log2(L) when L is a power of two (no divisions), else kNoShift
  std::uint64_t grid_length = 0;  // L: every live entry's byte length (0 while not a grid)
  std::uint64_t grid_phase = 0;   // every live entry's first byte modulo L
  // The grid's slot table: slot s < slot_capacity has its read chain at slot_heads[2s] and its
  // write chain at slot_heads[2s + 1]; the entries of slots past it hash into the map's buckets
  // (`hashed_slots`: some may have; the table then stops growing until the grid starts again, so
  // that a growing table never has entries to move in from the buckets). Every chain of a table
  // is empty while the buffer is off a grid or empty, so the table (and its capacity) stays with
  // the BufferInfo when the buffer leaves its grid or is erased. Tables of up to kInlineSlots
  // slots (a buffer one task writes whole, as most fresh outputs are) live in `inline_heads`, so
  // a new small buffer allocates nothing; larger ones in `table_storage`.
  static constexpr std::uint64_t kInlineSlots = 2;
  MapEntry** slot_heads = nullptr;  // inline_heads or table_storage's array
  std::unique_ptr<MapEntry*[]> table_storage;
  MapEntry* inline_heads[2 * kInlineSlots] = {};
  std::uint64_t slot_capacity = 0;
  bool hashed_slots = false;
  // Line mode (TensorMap::start_lines): while `lines` is set the buffer has no entries; each grid
  // slot's state is lines[slot] (slots below line_capacity), and `anchor` (a map entry of kind
  // kAnchor in a task's entry list) keeps the buffer until every task that touched a line (the
  // newest per ring: line_last, its local id + 1, or 0 for a ring none touched) has retired.
  SlotLine* lines = nullptr;
  std::unique_ptr<SlotLine[]> line_storage;  // kept with the BufferInfo, like table_storage
  std::uint64_t line_capacity = 0;
  std::uint64_t line_limit = 0;  // the most lines this grid's table may grow to
  std::uint16_t line_gen = 1;    // next_line_gen when line mode ends: every line is empty again
  std::uint64_t line_low = 0;    // the lines used since line mode began are in [low, high)
  std::uint64_t line_high = 0;
  std::uint32_t line_version = 0;  // the version of every access in the lines
  std::uint32_t line_last[kRingCount] = {};
  // A line-mode grid's slot test in one mask compare (TensorMap::find_line): with a power-of-two
  // length L, [lo, lo + L) is slot lo >> grid_shift when lo & line_mask == line_phase. Set by
  // find_line's first try in a line-mode episode (set_line_phase), not by start_lines, which the
  // path by regions takes too; until then, and for other grids, the phase is kNoLinePhase, which
  // no interval matches (lo & mask < mask < ~0). Every end of line mode puts it back, so a set
  // phase implies line mode (find_line tests line mode by the phase alone).
  static constexpr std::uint64_t kNoLinePhase = ~std::uint64_t{0};
  std::uint64_t line_mask = 0;
  std::uint64_t line_phase = kNoLinePhase;
  bool set_line_phase() {
    if (grid_shift == kNoShift || grid_length == 0) return false;
    line_mask = grid_length - 1;
    line_phase = grid_phase;
    return true;
  }
  MapEntry* anchor = nullptr;
  static constexpr std::uint8_t kNoShift = 0xFF;
  void start_grid(std::uint64_t lo, std::uint64_t hi) {
    grid = true;
    hashed_slots = false;  // (the buffer is empty)
    grid_length = hi - lo;
    const bool power_of_two = (grid_length & (grid_length - 1)) == 0;
    grid_shift = power_of_two ? static_cast<std::uint8_t>(__builtin_ctzll(grid_length)) : kNoShift;
    grid_phase = power_of_two ? lo & (grid_length - 1) : lo % grid_length;
  }
  // x / L, by a shift where L allows it (a 64-bit division costs tens of cycles).
  std::uint64_t grid_div(std::uint64_t x) const {
    return grid_shift != kNoShift ? x >> grid_shift : x / grid_length;
  }
  // The grid slot of an entry starting at `lo` (lo - phase is a multiple of L).
  std::uint64_t slot_of(std::uint64_t lo) const { return grid_div(lo); }
  // The slot of [lo, hi) when it is exactly one slot of the grid, else kOffGrid (always while
  // the buffer is no grid: no region has length 0). One test of the shift for both answers.
  static constexpr std::uint64_t kOffGrid = ~std::uint64_t{0};
  std::uint64_t grid_slot(std::uint64_t lo, std::uint64_t hi) const {
    if (hi - lo != grid_length) return kOffGrid;
    if (grid_shift != kNoShift) {
      return (lo & (grid_length - 1)) == grid_phase ? lo >> grid_shift : kOffGrid;
    }
    return lo % grid_length == grid_phase ? lo / grid_length : kOffGrid;
  }
  bool on_grid(std::uint64_t lo, std::uint64_t hi) const { return grid_slot(lo, hi) != kOffGrid; }
  void stop_grid() {
    grid = false;
    grid_length = 0;
  }
};

// A tensor argument's identity and byte interval, computed once per submit argument. For
// insert(), `tensor` must stay valid while the inserting task is live (the orchestrator points
// it at the task record's copy).
struct AccessRegion {
  const Tensor* tensor;
  std::uintptr_t address;
  std::uint64_t owner;
  std::uint64_t lo;  // first byte of the box, from the buffer start
  std::uint64_t hi;  // one past its last byte
  std::uint32_t version;
  bool contiguous;  // every byte in [lo, hi) belongs to the box
};

inline AccessRegion make_region(const Tensor& t) {
  // One pass from the innermost raw dimension outwards: strides, first and last element. The
  // innermost dimension (stride 1; every tensor has one) is taken out of the loop.
  const int inner = t.ndims() - 1;
  std::uint64_t first = t.box_offset(inner);
  std::uint64_t last = first + t.box_extent(inner) - 1;
  std::uint64_t stride = t.raw_dim(inner);
  std::uint64_t elements = t.box_extent(inner);
  for (int r = inner - 1; r >= 0; --r) {
    first += std::uint64_t{t.box_offset(r)} * stride;
    last += (std::uint64_t{t.box_offset(r)} + t.box_extent(r) - 1) * stride;
    stride *= t.raw_dim(r);
    elements *= t.box_extent(r);
  }
  const std::uint64_t size = t.element_size();
  const std::uint64_t lo = (t.layout_offset() + first) * size;
  const std::uint64_t hi = (t.layout_offset() + last + 1) * size;
  // The box's elements are distinct raw positions between first and last: as many of them as
  // the interval holds means the box leaves no gap.
  return AccessRegion{&t,
                      reinterpret_cast<std::uintptr_t>(t.buffer()),
                      t.producer().value(),
                      lo,
                      hi,
                      t.version(),
                      elements * size == hi - lo};
}

struct TensorMapStats {
  std::uint64_t merged_reads = 0;   // reads recorded as one more reader of an existing entry
  std::uint64_t reused_writes = 0;  // writes that took over the entry of the write they cover
  std::uint64_t entries_visited = 0;
  std::uint64_t live_entries = 0;
  std::uint64_t grid_exits = 0;     // grid buffers re-indexed into size-class cells
  std::uint64_t table_grows = 0;    // grid slot tables grown (their buffer's entries relinked)
  std::uint64_t line_starts = 0;    // buffers put into line mode
  std::uint64_t line_exits = 0;     // line-mode buffers whose state went into entries
  std::uint64_t line_refines = 0;   // line-mode grids cut into finer slots (refine_lines)
  std::uint64_t span_accesses = 0;  // accesses of several lines recorded line by line
};

class TensorMap {
 public:
  explicit TensorMap(RetirementView rings, std::uint32_t bucket_bits = 17);
  ~TensorMap();
  TensorMap(const TensorMap&) = delete;
  TensorMap& operator=(const TensorMap&) = delete;

  void reset();

  // Turns slot lines on (see SlotLine): `head_of(ctx, id)` returns task `id`'s entry list head,
  // where an entry made from a line goes when its buffer leaves line mode. Off by default (a map
  // without task lists keeps entries only).
  using TaskListOf = MapEntry*& (*)(void* ctx, TaskId id);
  void enable_lines(void* ctx, TaskListOf head_of) {
    task_lists_ctx_ = ctx;
    task_list_of_ = head_of;
  }

  // The two chain heads of one grid slot: at[0] its reads, at[1] its writes (null: none known;
  // link_entry then finds the entry's own). In the buffer's slot table (`exact`: every entry of
  // both chains is of this slot), or a bucket pair (the chains hold other slots' entries too).
  struct SlotHeads {
    MapEntry** at;
    bool exact;
  };
  static constexpr SlotHeads kNoHeads{nullptr, false};
  // What find_slot learnt of a region: its buffer (null: none yet) and, when the region is one
  // slot of the buffer's grid, that slot's heads (else kNoHeads). Valid while `epoch` is the
  // map's layout epoch: no buffer started or left a grid, grew its slot table or was erased since.
  // `absent`: find_slot found no buffer, and none was added since while the epoch holds (every
  // add_buffer bumps it), so lookup_insert adds it without a second search (the first access of
  // a fresh output's buffer).
  struct SlotHint {
    BufferInfo* info;
    SlotHeads heads;
    std::uint32_t epoch;
    bool absent;
  };

  // Reports (visit(TaskId)) every live task whose recorded access conflicts with an access of
  // `kind` to `t`:
  // a read conflicts with writes (RAW); a write with writes and reads (WAW, WAR). For a write,
  // entries the new region fully covers are dropped: the caller will insert the new write, which
  // is ordered after them, so later accesses still get ordered through it.
  template <class Visit>
  void lookup(const AccessRegion& region, AccessKind kind, Visit&& visit) {
    std::uint32_t retired[kRetiredSlots];
    snapshot_retired(retired);
    lookup(region, kind, retired, visit);
  }
  // The same with a snapshot of the rings' watermarks taken by the caller (once per discovery).
  // The watermarks only grow: an older snapshot may call a just-retired entry live, which costs
  // at most an edge to a finished task.
  template <class Visit>
  void lookup(const AccessRegion& region, AccessKind kind, const std::uint32_t* retired,
              Visit&& visit) {
    BufferInfo* const info = find_buffer(region.address, region.owner);
    if (info == nullptr) return;
    if (info->lines != nullptr) leave_lines(info);
    lookup_in(region, info, kind == AccessKind::write, retired, visit);
    if (info->total[0] == 0 && info->total[1] == 0) erase_buffer_if_empty(info);
  }
  // lookup() then insert() of the same access, with one buffer search and, on a grid buffer, one
  // search of the slot's chain heads (the insert links into the slot chain the lookup walked, or
  // merges the read into a reader entry of that slot). `visit` may see the inserting task's own
  // earlier entries (a task naming overlapping regions twice): the caller ignores those.
  // `region.tensor` must already point at the task record's copy: with slot lines on, exactly
  // tensor `arg` of task `id`'s record (RetirementView::tensor; a line keeps the place, see
  // SlotLine). `hint`: find_slot(region), taken before this submit's first lookup_insert. `arg`:
  // the access's argument index in its submit (the buffer the same argument of the previous
  // submit named is tried first). `visit` is called with each reported task's id (or with its
  // ring and local id, where it takes those: see report). `retired`: a snapshot_retired snapshot
  // (kRetiredSlots entries), as for access_line and access_span.
  template <class Visit>
  void lookup_insert(const AccessRegion& region, AccessKind kind, const std::uint32_t* retired,
                     TaskId id, MapEntry*& task_entries, const SlotHint& hint, int arg,
                     Visit&& visit);
  // No hint: lookup_insert finds the buffer and slot itself.
  static constexpr SlotHint kNoHint{nullptr, kNoHeads, 0, false};
  // Finds `q`'s buffer and grid slot for a lookup_insert of `q` that follows soon, and asks
  // memory ahead for the line of the slot's heads. With many live views those lines and the
  // entries are cold:
  // finding every argument's slot first lets their misses overlap instead of each argument's
  // walk waiting for its own.
  SlotHint find_slot(const AccessRegion& q, int arg) {
    BufferInfo* const info = find_buffer_at(q.address, q.owner, arg);
    if (info == nullptr) return {info, kNoHeads, layout_epoch_, true};
    if (info->lines != nullptr) {
      const std::uint64_t line = info->grid_slot(q.lo, q.hi);
      if (line < info->line_capacity) prefetch_for_write(&info->lines[line]);
      return {info, kNoHeads, layout_epoch_, false};
    }
    const std::uint64_t slot = info->grid_slot(q.lo, q.hi);
    if (slot == BufferInfo::kOffGrid) return {info, kNoHeads, layout_epoch_, false};
    const SlotHeads heads = insert_heads(info, slot);
    prefetch_for_read(heads.at);
    return {info, heads, layout_epoch_, false};  // (after insert_heads, which may grow the table)
  }
  // Then the first entry of both chains of a found slot (reading the line find_slot asked for).
  void prefetch_chains(const SlotHint& hint) const {
    if (hint.heads.at == nullptr) return;
    if (const MapEntry* e = hint.heads.at[0]) prefetch_for_read(e);
    if (const MapEntry* e = hint.heads.at[1]) prefetch_for_read(e);
  }
  // A snapshot of the rings' watermarks for lookups and slot lines: kRingCount watermarks, then
  // kNeverLive up to kRetiredSlots, so that a slot line's tag indexes it directly (SlotLine's
  // kNoRing: no local id is at or past kNeverLive, every run's ids stay below it).
  static constexpr int kRetiredSlots = 8;
  static constexpr std::uint32_t kNeverLive = ~std::uint32_t{0};
  static_assert(SlotLine::kNoRing < kRetiredSlots);
  void snapshot_retired(std::uint32_t (&retired)[kRetiredSlots]) const {
    for (int r = kRingCount; r < kRetiredSlots; ++r)
      retired[r] = kNeverLive;
    refresh_retired(retired);
  }
  // The watermarks again, into a snapshot that snapshot_retired filled before (the rest stays).
  void refresh_retired(std::uint32_t (&retired)[kRetiredSlots]) const { rings_.snapshot(retired); }

  // The byte interval [lo, lo + count * size) of a contiguous box of rank 1 or 2 (`size` its
  // element's bytes); false for any other box (make_region's general walk for the rest: the
  // caller's lookup_insert).
  [[gnu::always_inline]] static bool line_interval(const Tensor& t, std::uint64_t& size,
                                                   std::uint64_t& count, std::uint64_t& lo) {
    size = detail::kElementSizes[static_cast<std::uint8_t>(t.dtype())];
    std::uint64_t first;
    if (t.ndims() == 2) {
      const std::uint64_t rows = t.box_extent(0);
      const std::uint64_t columns = t.box_extent(1);
      const std::uint64_t width = t.raw_dim(1);
      if (rows != 1 && columns != width) return false;  // gaps between rows
      first = std::uint64_t{t.box_offset(0)} * width + t.box_offset(1);
      count = rows * columns;
    } else if (t.ndims() == 1) {
      first = t.box_offset(0);
      count = t.box_extent(0);
    } else {
      return false;
    }
    lo = (t.layout_offset() + first) * size;
    return true;
  }
  // A line-path miss (find_line null) whose only cause is that the buffer's line table ends
  // before the access's slots (a buffer written forward: stencil rows, each past the last):
  // grows the table to cover them, as the access by regions would (line_access, grow_lines),
  // and returns true; the walk then finds the lines again (the table moved: no line found
  // before is valid). False, with nothing changed, for any other miss (or a slot past the
  // grid's line_limit, where the access by regions leaves line mode). Without it such a miss
  // paused the line path, and a table that doubles as often as the pause did kept the stencil's
  // first 4,096 submits of each run by regions. Out of line: misses are rare.
  [[gnu::noinline]] bool grow_lines_for(const Tensor& t, int arg);
  // A plain submit's argument in two steps, for the usual case: a rank-1 or rank-2 contiguous
  // access to exactly one slot of a line-mode buffer that the same argument place named last.
  // find_line reads what it needs of the tensor once (no AccessRegion), finds the slot's line by
  // one identity compare, the version and one mask compare, and asks memory for the line; null
  // when the access does not take this path (then lookup_insert, which finds everything itself).
  // `info` is set to the buffer tried. A found line stays valid until an access of its buffer
  // other than access_line (which may leave line mode or grow the table). kPrefetch: the line is
  // asked from memory (a large map's; a small map's is in the caches).
  // kSpans (the walks' span tries): a rank-1 access of 2 to kMaxSpanLines whole slots
  // (span_access's case, on a grid that needs no cut) returns its first line and sets `*lines`
  // to the slot count (left as it was for one slot); the caller records it line by line
  // (access_span).
  // kMarkSpans (the warm walk's one-slot try): an access of another length than the grid's
  // keeps its buffer, first byte and length (null as before) for take_marked_span: the walk's
  // miss then tries the span without finding the buffer again.
  template <bool kPrefetch = true, bool kSpans = false, bool kMarkSpans = false>
  [[gnu::always_inline]] SlotLine* find_line(const Tensor& t, int arg, BufferInfo*& info,
                                             std::uint64_t* lines = nullptr) {
    // (An argument index: no wrap of `arg` into the place table to compute.)
    assert(arg >= 0 && arg < kMaxTensorArgs);
    if (static_cast<unsigned>(arg) >= kMaxTensorArgs) __builtin_unreachable();
    BufferInfo* guess = by_arg_[arg];
    if (guess->address != reinterpret_cast<std::uintptr_t>(t.buffer()) ||
        guess->owner != t.producer().value()) [[unlikely]] {
      // Two task kinds taking turns in one place: the place's guess before is the buffer.
      BufferInfo* const before = by_arg_before_[arg];
      if (before->address == reinterpret_cast<std::uintptr_t>(t.buffer()) &&
          before->owner == t.producer().value()) {
        by_arg_before_[arg] = guess;
        by_arg_[arg] = before;
        guess = before;
      } else {
        guess = retarget(t, arg);
        if (guess == nullptr) return nullptr;
      }
    }
    info = guess;
    // Line mode itself is tested by the phase compare below: a buffer off its lines always has
    // the phase kNoLinePhase (see line_phase), which no interval matches.
    assert(guess->lines != nullptr || guess->line_phase == BufferInfo::kNoLinePhase);
    if (guess->line_version != t.version()) return nullptr;
    std::uint64_t size;
    std::uint64_t count;
    std::uint64_t lo;
    if (!line_interval(t, size, count, lo)) return nullptr;
    if (count * size != guess->grid_length) {
      if constexpr (kSpans) {
        SlotLine* const first = find_span(t, guess, lo, count * size, lines);
        if constexpr (kPrefetch) {
          if (first != nullptr) {
            for (std::uint64_t k = 0; k < *lines; k += 4)  // (four lines to a cache line)
              prefetch_for_write(first + k);
            prefetch_for_write(first + *lines - 1);
          }
        }
        return first;
      }
      if constexpr (kMarkSpans) {
        marked_ = {guess, lo, count * size};
      }
      return nullptr;
    }
    if ((lo & guess->line_mask) != guess->line_phase) [[unlikely]] {
      // (The episode's first try sets the test up; off line mode the phase stays unset.)
      if (guess->line_phase != BufferInfo::kNoLinePhase || guess->lines == nullptr ||
          !guess->set_line_phase() || (lo & guess->line_mask) != guess->line_phase) {
        return nullptr;
      }
    }
    const std::uint64_t slot = lo >> guess->grid_shift;
    if (slot >= guess->line_capacity) return nullptr;
    SlotLine* const line = &guess->lines[slot];
    // (A table covers the slot: never null, which spares the caller's test.)
    if (line == nullptr) __builtin_unreachable();
    if constexpr (kPrefetch) prefetch_for_write(line);
    return line;
  }
  // find_line's span case (kSpans): `t` (rank 1) is `bytes` at `lo` of line-mode buffer `info`,
  // `bytes` not the grid's length. Its first line when the bytes are 2 to kMaxSpanLines whole
  // slots of the power-of-two grid, all in the table (`*lines`: how many); null otherwise (a grid
  // to cut finer, a table to grow, a longer or shorter access: span_access decides, by regions).
  // Rank 1 only, as span_access. Out of line: the one-slot walk keeps its registers.
  [[gnu::noinline]] static SlotLine* find_span(const Tensor& t, BufferInfo* info, std::uint64_t lo,
                                               std::uint64_t bytes, std::uint64_t* lines) {
    return span_lines(t, info, lo, bytes, lines);
  }
  // find_span's body (inline in take_marked_span, which the warm walk calls out of line).
  [[gnu::always_inline]] static SlotLine* span_lines(const Tensor& t, BufferInfo* info,
                                                     std::uint64_t lo, std::uint64_t bytes,
                                                     std::uint64_t* lines) {
    if (t.ndims() != 1 || bytes == 0 || bytes > kMaxSpanLines * info->grid_length) return nullptr;
    if ((lo & info->line_mask) != info->line_phase) {
      if (info->line_phase != BufferInfo::kNoLinePhase || info->lines == nullptr ||
          !info->set_line_phase() || (lo & info->line_mask) != info->line_phase) {
        return nullptr;
      }
    }
    // (line_mask is the grid's length less one: a power of two, set with the phase.)
    if ((bytes & info->line_mask) != 0) return nullptr;
    const std::uint64_t slot = lo >> info->grid_shift;
    const std::uint64_t count = bytes >> info->grid_shift;
    if (slot + count > info->line_capacity) return nullptr;
    *lines = count;
    return &info->lines[slot];
  }
  // find_span of the access find_line<.., kMarkSpans> marked (`t`, the same tensor; `info` set to
  // its buffer), the mark then cleared; null when the last find_line marked none (it missed for
  // another reason, or found its line): such a miss is no span either (find_line<kSpans> would
  // miss as the one-slot try did: the same guess, version, rank and length, or a phase unset
  // after access_line left line mode).
  SlotLine* take_marked_span(const Tensor& t, BufferInfo*& info, std::uint64_t* lines) {
    info = marked_.info;
    if (info == nullptr) return nullptr;
    marked_.info = nullptr;
    return span_lines(t, info, marked_.lo, marked_.bytes, lines);
  }
  // How recently `line` (of buffer `info`) was touched, for task `id`: 1 when a task of `id`'s
  // ring at most `span` tasks before `id` touched it last (likely in the caches), -1 when not
  // (long ago, or another ring), 0 when it is new to its buffer's line-mode episode (its state
  // tells nothing).
  static int line_recency(const SlotLine& line, const BufferInfo* info, TaskId id,
                          std::uint64_t span) {
    if (line.gen != info->line_gen) return 0;
    // (An invalid id, ~0, is one past every id: id - ~0 = id + 1, recent only at the first
    // `span` ids of ring 0, where nothing is cold yet.)
    const bool recent =
        id.value() - line.writer().value() <= span || id.value() - line.reader().value() <= span;
    return recent ? 1 : -1;
  }
  // Records task `id`'s access of `tensor` (its record's tensor `arg`) in the line find_line found
  // for it (`info` its buffer), reporting the live tasks it conflicts with, as lookup_insert
  // would. False when the buffer left line mode instead (live readers of another ring): then
  // lookup_insert.
  // kNoteLast false (access_span): the buffer's line_last is left to the caller.
  template <bool kNoteLast = true, class Visit>
  [[gnu::always_inline]] bool access_line(SlotLine& line, BufferInfo* info, const Tensor* tensor,
                                          int arg, bool is_write, const std::uint32_t* retired,
                                          TaskId id, Visit&& visit) {
    Query q{};
    q.tensor = tensor;
    return line_access<true, kNoteLast>(q, arg, is_write, info, retired, id, visit, 0, &line);
  }

  // Records task `id`'s access of `tensor` (its record's tensor `arg`) that find_line<kSpans>
  // found to span `lines` slots from `first`, line by line as span_access does: each line an
  // access of exactly its slot (the visitor drops repeated reports). False when the buffer left
  // line mode on the way (the slots recorded before are then entries of the task, which a lookup
  // reports as the task's own): the caller records the access by regions.
  // kByKind (the warm walk's out-of-line span try): a loop for writes and one for reads, and the
  // buffer's line_last, the same for every line, set once (a buffer that left line mode on the
  // way has no use for it, see line_holder). Without (the cold walk's spans instance, where two
  // loops did not stay inline): one loop, each line as access_line records it.
  template <bool kByKind = true, class Visit>
  bool access_span(SlotLine* first, std::uint64_t lines, BufferInfo* info, const Tensor* tensor,
                   int arg, bool is_write, const std::uint32_t* retired, TaskId id, Visit&& visit) {
    ++stats_.span_accesses;
    if constexpr (!kByKind) {
      for (std::uint64_t k = 0; k < lines; ++k) {
        if (!access_line(first[k], info, tensor, arg, is_write, retired, id, visit)) return false;
      }
      return true;
    }
    const auto each_line = [&](auto write) {
      for (std::uint64_t k = 0; k < lines; ++k) {
        if (!access_line<false>(first[k], info, tensor, arg, write, retired, id, visit))
          return false;
      }
      return true;
    };
    if (!(is_write ? each_line(std::true_type{}) : each_line(std::false_type{}))) return false;
    info->line_last[id.ring()] = id.local() + 1;
    return true;
  }

  void insert(const AccessRegion& region, AccessKind kind, TaskId id, MapEntry*& task_entries) {
    BufferInfo* const info = find_or_add_buffer(region.address, region.owner);
    if (info->lines != nullptr) leave_lines(info);
    SlotHeads heads = kNoHeads;
    if (kind == AccessKind::read && info->grid && info->total[0] != 0 &&
        info->on_grid(region.lo, region.hi)) {
      std::uint32_t retired[kRetiredSlots];
      snapshot_retired(retired);
      heads = insert_heads(info, info->slot_of(region.lo));
      if (merge_reader(region, info, heads, id, retired)) return;
    }
    link_entry(region, static_cast<std::uint8_t>(kind), info, heads, id, task_entries);
  }

  // Releases the entries in the list of a task that retired (or whose submit failed): frees
  // them, except an entry whose current task (a newer reader merged into it, a write that took
  // it over, or the failed task itself) is still live, which moves to that task's list
  // (`head_of(TaskId)` returns a task's list head).
  template <class HeadOf>
  void release_task(MapEntry*& task_entries, HeadOf&& head_of);
  // Frees every entry of a task's list, live readers or not (only when no task is left live).
  void drop_task(MapEntry*& task_entries);

  const TensorMapStats& stats() const { return stats_; }
  // Tests: whether every bucket chain is well linked (each entry's chain_prev and bucket name
  // where it is) and holds live entries of the bucket's kind only (a bucket's parity), which the
  // walks rely on instead of testing each entry's kind; counts them into `linked`.
  // Also checks that the chains of a grid buffer's slot table hold only entries of their slot,
  // and that a grid entry is hashed only past its buffer's table (counts those into `hashed`).
  bool chains_consistent(std::uint64_t* linked = nullptr, std::uint64_t* hashed = nullptr) const;
  std::uint64_t live_entries() const { return stats_.live_entries; }
  // Lines in the tables of buffers in line mode (a 16-byte line each): with live_entries(), how
  // much of the map a lookup may find cold.
  std::uint64_t line_table_lines() const { return line_table_lines_; }
  // Tests: reader blocks taken from the pool so far (free or not) and the pool's capacity.
  std::size_t reader_blocks() const { return blocks_.size() - 1; }
  std::size_t reader_block_capacity() const { return blocks_.capacity() - 1; }
  // Tests: buffers the map knows (with entries, or in line mode).
  std::uint64_t buffer_count() const { return buffer_count_; }
  // Tests: the most slots a new grid's table is sized for from its buffer's bytes (small: tables
  // grow, and sparse slots are hashed, with small buffers too).
  void set_presize_limit(std::uint64_t slots) {
    presize_limit_ = slots;
    line_limit_cap_ = slots;
  }

  // Every live entry of one buffer, both kinds (parallel_for's footprint lookup, once per loop).
  template <class Visit>
  void for_each_live_entry(std::uintptr_t address, std::uint64_t owner, Visit&& visit);
  // Whether an access to `q` and the entry's region may share an element (exact for one layout).
  static bool overlaps(const AccessRegion& q, const MapEntry& e);
  // Calls visit(TaskId) for each earlier reader of a merged entry not yet retired per `retired`.
  template <class Visit>
  void for_each_older_reader(const MapEntry& e, const std::uint32_t* retired, Visit&& visit) const {
    for_each_older_reader(e.task_id.ring(), e.older, retired, visit);
  }
  // The same for the reader block list `older` of ring `ring`.
  template <class Visit>
  void for_each_older_reader(std::uint32_t ring, std::uint32_t older, const std::uint32_t* retired,
                             Visit&& visit) const;

 private:
  using Query = AccessRegion;
  // ---- slot lines
  // Reports task (ring, local) of a line to `visit`: as the line keeps it, where the visitor
  // takes ring and local id apart (Dependence::Report: no TaskId built and split again), else as
  // a TaskId.
  template <class Visit>
  [[gnu::always_inline]] static void report(Visit& visit, std::size_t ring, std::uint32_t local) {
    if constexpr (std::is_invocable_v<Visit&, std::size_t, std::uint32_t>) {
      visit(ring, local);
    } else {
      visit(TaskId(static_cast<std::uint32_t>(ring), local));
    }
  }
  // Records an access of `q` (contiguous) in its slot's line of line-mode buffer `info`, reporting
  // the live tasks it conflicts with. False when the access does not fit the lines (off the grid
  // or past the table, another version live in the slot, live readers of another ring): the
  // buffer has then left line mode (leave_lines) and the caller records the access in entries.
  // `slot`: q's grid slot (the caller found q on the grid: each caller knows it without a
  // second grid_slot, whose modulo and division a grid of a length not a power of two pays).
  // kLineFound (access_line): `found` is q's line, found by find_line (`slot` unused), and q
  // holds only the tensor. `arg`: q's place in its task record (see SlotLine). (One body for
  // both, not a helper function: with a helper GCC compiled the path by regions differently,
  // ~+60K instructions over paged attention's three rounds.)
  template <bool kLineFound = false, bool kNoteLast = true, class Visit>
  [[gnu::always_inline]] bool line_access(const Query& q, int arg, bool is_write, BufferInfo* info,
                                          const std::uint32_t* retired, TaskId id, Visit& visit,
                                          std::uint64_t slot, SlotLine* found = nullptr) {
    // (q.tensor is task `id`'s record tensor `arg`: a line keeps the place, not the pointer.)
    assert(task_list_of_ == nullptr || q.tensor == rings_.tensor(id, arg));
    if constexpr (kLineFound) {
      slot = static_cast<std::uint64_t>(found - info->lines);
    } else {
      // Versions of one buffer are always ordered, whatever their regions: lines hold one.
      if (q.version != info->line_version) [[unlikely]] {
        leave_lines(info);
        return false;
      }
      assert(slot == info->grid_slot(q.lo, q.hi) && slot != BufferInfo::kOffGrid);
      if (slot >= info->line_capacity) [[unlikely]] {
        if (!grow_lines(info, slot)) return false;
      }
    }
    SlotLine& line = kLineFound ? *found : info->lines[slot];
    if (line.gen != info->line_gen) [[unlikely]] {
      clear_line(line, info->line_gen);
      // (every line used in this mode passes here once: leave_lines visits only their span)
      if (slot < info->line_low) info->line_low = slot;
      if (slot >= info->line_high) info->line_high = slot + 1;
    }
    // (The writer's liveness is read where it is used: a write with a live reader needs none.)
    // (No task: its ring bits index kNeverLive in `retired`, see SlotLine.)
    // (Each ring once, in a local: GCC masked a tag again for each use of its ring.)
    const auto writer_live = [&](std::size_t ring) { return line.writer_local >= retired[ring]; };
    const std::size_t reader_ring = line.reader_ring();
    const bool reader = line.reader_local >= retired[reader_ring];
    if (!is_write) {
      if (reader && (reader_ring != id.ring() || line.reader_local > id.local())) [[unlikely]] {
        leave_lines(info);
        return false;
      }
      const std::size_t writer_ring = line.writer_ring();
      if (writer_live(writer_ring)) report(visit, writer_ring, line.writer_local);
      if (!reader) {
        if (line.older != 0) free_block_list(line.older);
        line.set_reader(id, arg);
      } else if (line.reader_local != id.local()) {  // (a live reader is of id's ring)
        ++stats_.merged_reads;
        // (Block 0, never used, has `last` 0: with no blocks `last` is block 0, not read.)
        ReaderBlock* const last = &blocks_[blocks_[line.older].last];
        if (line.older != 0 && last->count < ReaderBlock::kCapacity) {
          last->local[last->count++] = line.reader_local;  // the usual case: room in the last block
        } else {
          push_older(line.older, line.reader_local, retired[id.ring()]);
        }
        line.set_reader(id, arg);  // (the same bytes)
      }
    } else {
      // A live reader stands for the writer: every read in the line came after the writer and
      // was ordered after it when recorded (or the writer had retired), so a write waits for
      // the writer through its readers and needs no edge of its own (one report, one wiring
      // CAS and one dependency node fewer).
      // (The line's reused writes count the writes that took a live writer's place directly.)
      if (reader) {
        report(visit, reader_ring, line.reader_local);
        if (line.older != 0) {
          for_each_older_reader(reader_ring, line.older, retired, Visit(visit));
        }
      } else if (const std::size_t writer_ring = line.writer_ring(); writer_live(writer_ring)) {
        report(visit, writer_ring, line.writer_local);
        ++stats_.reused_writes;
      }
      if (line.older != 0) free_block_list(line.older);
      line.reader_tag = SlotLine::kNone;
      line.set_writer(id, arg);
    }
    if constexpr (kNoteLast) info->line_last[id.ring()] = id.local() + 1;
    return true;
  }
  // Spans: a contiguous access of another length than the grid's,
  // of a line-mode buffer. When its bytes are whole slots (after refine_lines, if the grid can
  // be cut finer so that they are), it is recorded slot by slot, each slot as line_access
  // records an access of exactly that slot: two accesses share a byte exactly when they share a
  // slot, so the union of the slots' reports is the access's (the visitor drops repeats). False
  // when it does not fit (the caller leaves line mode, if line_access has not, and records the
  // access in entries; slots recorded before a line_access that left line mode are entries of
  // the task then, which the caller's lookup reports as the task's own).
  static constexpr std::uint64_t kMaxSpanLines = 8;  // the most slots of one span access
  template <class Visit>
  [[gnu::noinline]] bool span_access(const Query& q, int arg, bool is_write, BufferInfo* info,
                                     const std::uint32_t* retired, TaskId id, Visit& visit) {
    // Rank 1 only: with rank-2 views the suite's ParallelFor.TinyRingsWithScopedIterations found
    // an edge without a conflict that is not understood yet (docs/performance.md, regions43).
    if (q.tensor->ndims() != 1) return false;
    if (q.version != info->line_version) return false;
    if (q.lo < info->grid_phase || (q.lo - info->grid_phase) % info->grid_length != 0 ||
        (q.hi - q.lo) % info->grid_length != 0) {
      if (!refine_lines(info, q)) return false;
    }
    const std::uint64_t length = info->grid_length;
    if (q.hi - q.lo > kMaxSpanLines * length) return false;
    ++stats_.span_accesses;
    Query part = q;
    // (On the grid now: q.lo's slot by one shift or division, the next ones by an increment.)
    std::uint64_t slot = info->slot_of(q.lo);
    for (part.lo = q.lo; part.lo < q.hi; part.lo += length, ++slot) {
      part.hi = part.lo + length;
      if (!line_access(part, arg, is_write, info, retired, id, visit, slot)) return false;
    }
    return true;
  }
  // Cuts the slots of line-mode buffer `info` into slots of `unit` bytes, the largest that the
  // grid's slots and `q`'s bytes are whole numbers of, each new line a copy of the line it is
  // part of (every access in a line covered all of its bytes). False (nothing changed) when a
  // slot would be cut into more than kMaxSpanLines, when a live line has earlier readers (their
  // blocks are not copied), or when the finer table would pass the buffer's line limit.
  bool refine_lines(BufferInfo* info, const Query& q);
  // Puts empty buffer `info` into line mode with `q` (contiguous) as its grid's first access;
  // false when the access's slot is past what its table may hold (the buffer keeps entries).
  bool start_lines(const Query& q, BufferInfo* info, TaskId id, MapEntry*& task_entries);
  // start_lines' table of `want` empty lines in place of a smaller one (out of line: most
  // starts reuse the table their BufferInfo kept, and the hot path then saves fewer registers).
  [[gnu::noinline]] void replace_lines(BufferInfo* info, std::uint64_t want);
  // Makes the line table cover `slot` if the grid allows (line_limit); else leaves line mode.
  [[gnu::noinline]] bool grow_lines(BufferInfo* info, std::uint64_t slot);
  static void clear_line(SlotLine& line, std::uint16_t gen) {
    line.gen = gen;
    line.writer_tag = SlotLine::kNone;
    line.reader_tag = SlotLine::kNone;
  }
  // The generation that follows `info`'s line_gen (the caller makes it line_gen): a line's gen is
  // 16 bits, so before line_gen would wrap back to a gen that a stale line of the table may still
  // hold, every line is renumbered (renumber_lines): lines of the current gen to 1, every other
  // line to 0 (empty under every gen), and line_gen to 1.
  static std::uint16_t next_line_gen(BufferInfo* info) {
    if (info->line_gen == kLastLineGen) [[unlikely]]
      renumber_lines(info);
    return static_cast<std::uint16_t>(info->line_gen + 1);
  }
  static constexpr std::uint16_t kLastLineGen = 0xFFFF;
  [[gnu::noinline]] static void renumber_lines(BufferInfo* info);
  // Converts a line-mode buffer's live line state into entries (each in its task's list) and ends
  // line mode; its anchor is left to be freed when released.
  [[gnu::noinline]] void leave_lines(BufferInfo* info);
  // Ends line mode of a buffer whose lines are all dead (or dropped) and erases it if empty.
  void end_lines(BufferInfo* info);
  // The newest live task that touched a line of the anchor's buffer, or an invalid id when none
  // is left (or the anchor is no longer its buffer's).
  TaskId line_holder(const MapEntry& anchor) const;
  void release_anchor(MapEntry* anchor);
  // Appends reader `local` (of one ring; `floor` its watermark) to the reader block list `older`.
  void push_older(std::uint32_t& older, std::uint32_t local, std::uint32_t floor);
  void free_block_list(std::uint32_t& older);
  // Links an entry made from a line's state into `info`'s slot chain and its task's list.
  void line_entry(BufferInfo* info, std::uint64_t slot, const AccessRegion& region,
                  std::uint8_t kind, TaskId task, std::uint32_t older);
  static constexpr std::uint64_t kFirstLines = 64;  // a new line table's lines (it grows)
  void* task_lists_ctx_ = nullptr;
  TaskListOf task_list_of_ = nullptr;
  std::uint64_t line_table_lines_ = 0;
  // find_line's guess for argument place `arg` names another buffer than `t`'s. Task kinds that
  // name different buffers in one argument place take turns (attention: the KV cache, then the
  // accumulator): `t`'s buffer is then usually among the few named last (recent_), and becomes
  // the place's guess. Null when it is not there (out of line: the usual guess is right).
  [[gnu::noinline]] BufferInfo* retarget(const Tensor& t, int arg) {
    BufferInfo* const found =
        find_recent(reinterpret_cast<std::uintptr_t>(t.buffer()), t.producer().value());
    if (found != nullptr) {
      const unsigned place = static_cast<unsigned>(arg) % kMaxTensorArgs;
      by_arg_before_[place] = by_arg_[place];
      by_arg_[place] = found;
    }
    return found;
  }
  // Most submits touch a few buffers again and again: a tiny cache in front of the table.
  BufferInfo* find_recent(std::uintptr_t address, std::uint64_t owner) const {
    // Freed infos have address 0, which no buffer has: no null test needed.
    for (BufferInfo* cached : recent_) {
      if (cached->address == address && cached->owner == owner) return cached;
    }
    return nullptr;
  }
  BufferInfo* find_buffer(std::uintptr_t address, std::uint64_t owner) {
    if (BufferInfo* cached = find_recent(address, owner)) return cached;
    BufferInfo* const found = probe_buffer(address, owner);
    if (found != nullptr) remember(found);
    return found;
  }
  // find_buffer, trying first the buffer that argument `arg` of an earlier submit named (a loop
  // names the same buffers in the same argument places: one compare instead of a cache scan).
  // A freed info has address 0 and a reused one its new buffer's identity, so the guess is
  // checked like a cache place.
  BufferInfo* find_buffer_at(std::uintptr_t address, std::uint64_t owner, int arg) {
    BufferInfo*& guess = by_arg_[static_cast<unsigned>(arg) % kMaxTensorArgs];
    if (guess->address == address && guess->owner == owner) return guess;
    BufferInfo* const found = find_buffer(address, owner);
    if (found != nullptr) guess = found;
    return found;
  }
  void remember(BufferInfo* info) {
    recent_[recent_next_] = info;
    recent_next_ = (recent_next_ + 1) & (kRecent - 1);  // (a power of two: no signed modulo)
  }
  BufferInfo* probe_buffer(std::uintptr_t address, std::uint64_t owner) const;
  BufferInfo* find_or_add_buffer(std::uintptr_t address, std::uint64_t owner) {
    if (BufferInfo* found = find_buffer(address, owner)) return found;
    return add_buffer(address, owner);
  }
  // Adds a buffer the caller just failed to find (find_buffer returned null): no second search.
  BufferInfo* add_buffer(std::uintptr_t address, std::uint64_t owner);
  // add_buffer's rare steps, out of line (the usual add then saves fewer registers): the table
  // doubled, and a chunk of free BufferInfos.
  [[gnu::noinline]] void grow_buffer_table();
  [[gnu::noinline]] void add_buffer_chunk();
  void erase_buffer_if_empty(BufferInfo* info);
  // A grid slot hashes like a cell of a size class no entry has (classes are 0..63).
  static constexpr std::uint8_t kGridClass = 64;
  // The chain heads of grid slot `slot` of a grid buffer: its slot table's when the table covers
  // the slot, else the slot's bucket pair (lookups: they never grow a table).
  SlotHeads slot_heads(const BufferInfo* info, std::uint64_t slot) {
    if (slot < info->slot_capacity) return {&info->slot_heads[2 * slot], true};
    return {&buckets_[bucket_pair(info, kGridClass, slot)], false};
  }
  // The same for an insert into the slot: a slot past the table grows the table first when the
  // buffer's entries are dense enough for it (grow_slots), else the slot is hashed.
  SlotHeads insert_heads(BufferInfo* info, std::uint64_t slot) {
    if (slot >= info->slot_capacity) [[unlikely]] {
      grow_slots(info, slot);
      if (slot >= info->slot_capacity) info->hashed_slots = true;
    }
    return slot_heads(info, slot);
  }
  // Makes the table of grid buffer `info` cover `slot` if the table stays within its bounds
  // (kMaxTableSlots, and a few slots per live entry) and no slot of the buffer is hashed: the
  // heads move to a larger table. Bumps the layout epoch (hints hold table addresses).
  [[gnu::noinline]] void grow_slots(BufferInfo* info, std::uint64_t slot);
  // When an empty buffer starts a grid: a table for the slots its bytes hold (up to
  // kPresizeSlots), so that a buffer cut into pieces one after another does not grow its table
  // again and again. (The table stays with the BufferInfo: done once per buffer info and size.)
  void presize_slots(BufferInfo* info, std::uint64_t slots);
  static constexpr std::uint64_t kPresizeSlots = std::uint64_t{1} << 14;
  std::uint64_t presize_limit_ = kPresizeSlots;
  // The most lines one buffer's table may grow to (32 bytes each, grown by doubling as slots are
  // used): a buffer cut into more slots than this leaves line mode for entries, which cost ~3x
  // a line's lookup and insert (200,000 one-element tasks on one buffer: docs/performance.md).
  static constexpr std::uint64_t kMaxLines = std::uint64_t{1} << 18;
  std::uint64_t line_limit_cap_ = kMaxLines;
  static constexpr std::uint64_t kMaxTableSlots = std::uint64_t{1} << 20;
  static constexpr std::uint64_t kFreeTableSlots = 64;  // a table may always have this many
  // Fills and links a new entry of `buffer`. `heads`: the chain heads of the entry's grid slot
  // when the caller's lookup already found them on the buffer's current grid, else kNoHeads.
  // Inline for the usual case (a known slot of a grid buffer that keeps entries); the rest (a
  // buffer that starts or leaves a grid, size-class cells) out of line in link_entry_slow.
  [[gnu::always_inline]] void link_entry(const AccessRegion& region, std::uint8_t kind,
                                         BufferInfo* buffer, SlotHeads heads, TaskId id,
                                         MapEntry*& task_entries) {
    if (heads.at == nullptr || !buffer->grid || (buffer->total[0] == 0 && buffer->total[1] == 0)) {
      link_entry_slow(region, kind, buffer, heads, id, task_entries);
      return;
    }
    MapEntry* const e = allocate_entry();
    fill_entry(e, region, kind, buffer, id);
    link_chain(e, heads.at + kind);
    list_entry(e, region, kind, buffer, task_entries);
  }
  void link_entry_slow(const AccessRegion& region, std::uint8_t kind, BufferInfo* buffer,
                       SlotHeads heads, TaskId id, MapEntry*& task_entries);
  // link_entry's steps around the chain link: the entry's fields, then the buffer's list and
  // counts and the task's list.
  [[gnu::always_inline]] static void fill_entry(MapEntry* e, const AccessRegion& region,
                                                std::uint8_t kind, BufferInfo* buffer, TaskId id) {
    e->region = region.tensor;
    e->version = region.version;
    e->buffer = buffer;
    e->task_id = id;
    e->contiguous = region.contiguous;
    e->older = 0;
    e->lo = region.lo;
    e->hi = region.hi;
    e->size_class = static_cast<std::uint8_t>(std::bit_width(region.hi - region.lo) - 1);
    e->kind = kind;
  }
  [[gnu::always_inline]] void list_entry(MapEntry* e, const AccessRegion& region, std::uint8_t kind,
                                         BufferInfo* buffer, MapEntry*& task_entries) {
    e->list_prev = nullptr;
    e->list_next = buffer->list[kind];
    if (e->list_next != nullptr) e->list_next->list_prev = e;
    buffer->list[kind] = e;
    ++buffer->class_count[kind][e->size_class];
    buffer->class_mask[kind] |= std::uint64_t{1} << e->size_class;
    ++buffer->total[kind];
    if (region.version < buffer->min_version) buffer->min_version = region.version;
    if (region.version > buffer->max_version) buffer->max_version = region.version;
    e->task_next = task_entries;
    task_entries = e;
    ++stats_.live_entries;
  }
  // Merges a read of `q` by task `id` into a live reader entry of the same region in the read
  // chain `heads.at[read]` of its grid slot; false when there is none to merge into.
  bool merge_reader(const Query& q, const BufferInfo* info, SlotHeads heads, TaskId id,
                    const std::uint32_t* retired) {
    constexpr auto kRead = static_cast<std::uint8_t>(AccessKind::read);
    int candidates = kMergeCandidates;
    for (MapEntry* e = heads.at[kRead]; e != nullptr;) {
      MapEntry* const next = e->chain_next;
      // (a read chain holds only reads; a table's chain only entries of its slot)
      if (heads.exact || (e->lo == q.lo && e->buffer == info)) {
        if (dead(*e, retired)) {
          unlink(*e);
        } else if (same_reader_region(q, *e, id)) {
          ++stats_.merged_reads;
          if (e->task_id == id) return true;  // the task's own earlier read of the region
          if (e->older != 0) {
            // The usual case: room in the last reader block.
            ReaderBlock& last = blocks_[blocks_[e->older].last];
            if (last.count < ReaderBlock::kCapacity) {
              last.local[last.count++] = e->task_id.local();
              e->task_id = id;
              e->region = q.tensor;  // the same box; this record lives as long as the entry
              return true;
            }
          }
          add_reader(*e, q, id, retired);
          return true;
        } else if (--candidates == 0) {
          return false;
        }
      }
      e = next;
    }
    return false;
  }
  // Whether a read of `q` by `id` may join the live read entry `e` (same ring, not older than its
  // newest reader, and the same interval, version and elements).
  static bool same_reader_region(const Query& q, const MapEntry& e, TaskId id) {
    if (e.task_id.ring() != id.ring() || e.task_id.local() > id.local()) return false;
    if (e.version != q.version || e.hi != q.hi) return false;  // (the caller matched lo)
    // One contiguous interval is one set of bytes, whatever the layouts.
    return (q.contiguous && e.contiguous) || same_elements(q, e);
  }
  // The same box in the same layout (read through the entry's region: the entry must be live).
  static bool same_elements(const Query& q, const MapEntry& e);
  // Makes `id` the entry's newest reader (the previous one joins `older`).
  void add_reader(MapEntry& e, const Query& q, TaskId id, const std::uint32_t* retired);
  void free_readers(MapEntry& e);
  std::uint32_t allocate_block();
  void release_entry(MapEntry* e);
  // The lookup behind lookup() and lookup_insert(), on a found buffer (which it may empty).
  template <class Visit>
  void lookup_in(const Query& q, BufferInfo* info, bool is_write, const std::uint32_t* retired,
                 Visit& visit);
  // Checks the entries of one grid slot's chain (one kind).
  template <class Visit>
  [[gnu::always_inline]] void walk_slot(const Query& q, BufferInfo* info, MapEntry** head,
                                        bool exact, std::uint64_t lo, bool is_write,
                                        const std::uint32_t* retired, Visit& visit) {
    for (MapEntry* e = *head; e != nullptr;) {
      MapEntry* const next = e->chain_next;
      // (a chain holds one kind: see bucket_pair; a table's chain one slot)
      if (exact || (e->lo == lo && e->buffer == info)) {
        check(q, *e, is_write, retired, visit);
      }
      e = next;
    }
  }
  // The fast path's walk of one grid slot's chain (one kind), where every live entry of the slot
  // has the query's interval and version: dead entries are unlinked, each live one is reported
  // and then handed to `on_live` (which may unlink it).
  template <class Visit, class OnLive>
  [[gnu::always_inline]] void walk_slot_live(BufferInfo* info, MapEntry** head, bool exact,
                                             std::uint64_t lo, const std::uint32_t* retired,
                                             Visit& visit, OnLive&& on_live) {
    for (MapEntry* e = *head; e != nullptr;) {
      MapEntry* const next = e->chain_next;
      // (a chain holds one kind: see bucket_pair; a table's chain one slot)
      if (exact || (e->lo == lo && e->buffer == info)) {
        ++stats_.entries_visited;
        if (dead(*e, retired)) {
          unlink(*e);
        } else {
          visit(e->task_id);
          on_live(*e);
        }
      }
      e = next;
    }
  }
  // Moves a grid buffer's entries into size-class cells (before its first off-grid insert).
  void leave_grid(BufferInfo* info);
  void link_chain(MapEntry* e, MapEntry** head) {
    e->head = head;
    e->chain_prev = nullptr;
    e->chain_next = *head;
    if (e->chain_next != nullptr) e->chain_next->chain_prev = e;
    *head = e;
  }
  // Takes an entry out of its chain (only). The first entry's successor takes over its `head`.
  static void chain_remove(MapEntry* e) {
    MapEntry* const next = e->chain_next;
    if (e->chain_prev != nullptr) {
      e->chain_prev->chain_next = next;
    } else {
      *e->head = next;
      if (next != nullptr) next->head = e->head;  // (next's line is written below anyway)
    }
    if (next != nullptr) next->chain_prev = e->chain_prev;
  }
  template <class Visit>
  void lookup_grid(const Query& q, BufferInfo* info, bool is_write, const std::uint32_t* retired,
                   Visit& visit);
  // Both kinds of one cell hash to one pair of buckets (even: reads, odd: writes): a write's
  // lookup and its insert need one hash, and both chain heads share a cache line. A chain thus
  // holds entries of one kind only (unlinked entries leave their chain), so walks test no kind.
  // The hash is (base + cell * kCellStep) * kHashMul: linear in the cell, so a walk over
  // consecutive cells steps it by one add (cell_hash, kCellHashStep) instead of hashing each.
  static constexpr std::uint64_t kCellStep = 0xD6E8FEB86659FD93ull;
  static constexpr std::uint64_t kHashMul = 0x9E3779B97F4A7C15ull;
  static constexpr std::uint64_t kCellHashStep = kCellStep * kHashMul;  // (mod 2^64)
  static std::uint64_t cell_hash(const BufferInfo* info, std::uint8_t size_class,
                                 std::uint64_t cell) {
    const std::uint64_t base =
        (reinterpret_cast<std::uintptr_t>(info) >> 6) ^ (std::uint64_t{size_class} << 52);
    return (base + cell * kCellStep) * kHashMul;
  }
  std::uint32_t pair_of_hash(std::uint64_t hash) const {
    return static_cast<std::uint32_t>(hash >> bucket_shift_) & ~1u;
  }
  std::uint32_t bucket_pair(const BufferInfo* info, std::uint8_t size_class,
                            std::uint64_t cell) const {
    return pair_of_hash(cell_hash(info, size_class, cell));
  }
  std::uint32_t bucket_of(const BufferInfo* info, std::uint8_t kind, std::uint8_t size_class,
                          std::uint64_t cell) const {
    return bucket_pair(info, size_class, cell) | kind;
  }
  // Read entries of a slot compared for a merge before giving up (mixed layouts of one slot).
  static constexpr int kMergeCandidates = 4;
  bool dead(const MapEntry& e, const std::uint32_t* retired) const {
    return e.task_id.local() < retired[e.task_id.ring()];
  }
  static bool dead(TaskId id, const std::uint32_t* retired) {
    return id.local() < retired[id.ring()];
  }
  void unlink(MapEntry& e);
  MapEntry* allocate_entry() {
    if (free_entries_ == nullptr) grow_entries();
    MapEntry* const e = free_entries_;
    free_entries_ = e->chain_next;
    // The next allocation's entry is a cold line with many live entries: ask for it now.
    if (free_entries_ != nullptr) prefetch_for_read(free_entries_);
    ++allocated_;
    return e;
  }
  void grow_entries();
  void free_entry(MapEntry* e);
  static bool covers(const Query& q, const MapEntry& e);
  // Returns true when the entry should be reported.
  template <class Visit>
  void check(const Query& q, MapEntry& e, bool drop_covered, const std::uint32_t* retired,
             Visit& visit);

  static constexpr std::uint32_t kScanBelow = 4;
  RetirementView rings_;
  std::uint32_t bucket_shift_;
  std::vector<MapEntry*> buckets_;

  // Buffer table: open addressing with linear probing, keyed by (address, owner).
  static constexpr int kRecent = 4;
  static_assert((kRecent & (kRecent - 1)) == 0, "remember() wraps with a mask");
  BufferInfo no_buffer_;  // address 0: what empty cache places point at
  BufferInfo* recent_[kRecent] = {&no_buffer_, &no_buffer_, &no_buffer_, &no_buffer_};
  int recent_next_ = 0;
  // Per argument place, the buffer it named last (find_buffer_at); set to no_buffer_ by the
  // constructor and reset().
  BufferInfo* by_arg_[kMaxTensorArgs] = {};
  // find_line's guess each place had before its last retarget (task kinds that take turns).
  BufferInfo* by_arg_before_[kMaxTensorArgs] = {};
  // The access find_line<.., kMarkSpans> marked (take_marked_span; info null when none: every
  // mark is taken by the miss that follows it).
  struct MarkedSpan {
    BufferInfo* info;
    std::uint64_t lo;
    std::uint64_t bytes;
  };
  MarkedSpan marked_{nullptr, 0, 0};
  std::vector<BufferInfo*> buffer_table_;
  std::uint64_t buffer_count_ = 0;
  std::vector<std::unique_ptr<BufferInfo[]>> buffer_chunks_;
  BufferInfo* free_buffers_ = nullptr;

  std::vector<std::unique_ptr<MapEntry[]>> entry_chunks_;
  MapEntry* free_entries_ = nullptr;
  std::uint64_t allocated_ = 0;  // entries taken from the free list and not yet returned

  // Reader blocks of merged entries, by index (block 0 is never used: index 0 means none).
  std::vector<ReaderBlock> blocks_;
  std::uint32_t free_blocks_ = 0;

  // Bumped whenever a buffer starts or leaves a grid or is erased: SlotHints taken before are
  // stale.
  std::uint32_t layout_epoch_ = 0;

  TensorMapStats stats_;
};

// ---------------------------------------------------------------- inline hot path

// Same buffer (the caller matched it), so the same raw layout means an exact box comparison.
inline bool same_layout(const Tensor& a, const Tensor& b) {
  if (a.layout_offset() != b.layout_offset() || a.ndims() != b.ndims() || a.dtype() != b.dtype()) {
    return false;
  }
  for (int r = 0; r < a.ndims(); ++r) {
    if (a.raw_dim(r) != b.raw_dim(r)) return false;
  }
  return true;
}

inline bool TensorMap::overlaps(const Query& q, const MapEntry& e) {
  // Different versions of one buffer are always ordered (the user's explicit override).
  if (q.version != e.version) return true;
  if (q.hi <= e.lo || e.hi <= q.lo) return false;
  // The same interval: the same box in one layout, and a byte overlap (be safe) across layouts.
  if (q.lo == e.lo && q.hi == e.hi) return true;
  // Two gapless intervals that meet share bytes, whatever the layouts (no box to read).
  if (q.contiguous && e.contiguous) return true;
  const Tensor& t = *q.tensor;
  const Tensor& r = *e.region;
  if (!same_layout(t, r)) return true;  // byte ranges overlap; layouts differ: be safe
  if (t.ndims() == 1) return true;      // one dimension: the byte test is exact
  for (int d = 0; d < t.ndims(); ++d) {
    const std::uint64_t a0 = t.box_offset(d);
    const std::uint64_t a1 = a0 + t.box_extent(d);
    const std::uint64_t b0 = r.box_offset(d);
    const std::uint64_t b1 = b0 + r.box_extent(d);
    if (a1 <= b0 || b1 <= a0) return false;
  }
  return true;
}

inline bool TensorMap::covers(const Query& q, const MapEntry& e) {
  if (q.version != e.version || e.lo < q.lo || q.hi < e.hi) return false;
  // A write covering every byte of the entry's interval supersedes it whatever its layout.
  if (q.contiguous) return true;
  const Tensor& t = *q.tensor;
  const Tensor& r = *e.region;
  if (!same_layout(t, r)) return false;
  if (q.lo == e.lo && q.hi == e.hi) return true;
  for (int d = 0; d < t.ndims(); ++d) {
    const std::uint64_t a0 = t.box_offset(d);
    const std::uint64_t b0 = r.box_offset(d);
    if (b0 < a0 || b0 + r.box_extent(d) > a0 + t.box_extent(d)) return false;
  }
  return true;
}

template <class Visit>
[[gnu::always_inline]] inline void TensorMap::check(const Query& q, MapEntry& e, bool drop_covered,
                                                    const std::uint32_t* retired, Visit& visit) {
  ++stats_.entries_visited;
  if (dead(e, retired)) {
    unlink(e);
    return;
  }
  if (!overlaps(q, e)) return;
  visit(e.task_id);
  if (e.older != 0) for_each_older_reader(e, retired, visit);
  if (drop_covered && covers(q, e)) unlink(e);
}

template <class Visit>
void TensorMap::for_each_live_entry(std::uintptr_t address, std::uint64_t owner, Visit&& visit) {
  BufferInfo* const info = find_buffer(address, owner);
  if (info == nullptr) return;
  if (info->lines != nullptr) {
    leave_lines(info);  // (then its live state is in entries)
    if (info->total[0] == 0 && info->total[1] == 0) {
      erase_buffer_if_empty(info);
      return;
    }
  }
  std::uint32_t retired[kRingCount];
  for (int r = 0; r < rings_.ring_count(); ++r)
    retired[r] = rings_.retired(r);
  for (const MapEntry* list : info->list) {
    for (const MapEntry* e = list; e != nullptr; e = e->list_next) {
      if (dead(*e, retired)) continue;
      visit(*e);
      if (e->older == 0) continue;
      // A merged entry stands for each of its live readers: one copy per reader.
      MapEntry reader = *e;
      for_each_older_reader(*e, retired, [&](TaskId id) {
        reader.task_id = id;
        visit(static_cast<const MapEntry&>(reader));
      });
    }
  }
}

template <class Visit>
void TensorMap::for_each_older_reader(std::uint32_t ring, std::uint32_t older,
                                      const std::uint32_t* retired, Visit&& visit) const {
  const std::uint32_t floor = retired[ring];
  for (std::uint32_t b = older; b != 0;) {
    const ReaderBlock& block = blocks_[b];
    b = block.next;
    // Readers are in submission order and a ring retires in order: skip retired blocks whole.
    if (block.local[block.count - 1] < floor) continue;
    for (std::uint32_t i = 0; i < block.count; ++i) {
      if (block.local[i] >= floor) report(visit, ring, block.local[i]);
    }
  }
}

template <class HeadOf>
void TensorMap::release_task(MapEntry*& task_entries, HeadOf&& head_of) {
  MapEntry* e = task_entries;
  task_entries = nullptr;
  while (e != nullptr) {
    MapEntry* const next = e->task_next;
    if (e->kind == MapEntry::kAnchor) [[unlikely]] {
      // A line-mode buffer's anchor: it moves to the list of a task that still holds a line.
      const TaskId holder = line_holder(*e);
      if (holder.valid()) {
        MapEntry*& head = head_of(holder);
        e->task_id = holder;
        e->task_next = head;
        head = e;
      } else {
        release_anchor(e);
      }
    } else if (e->kind != MapEntry::kDead && !rings_.is_retired(e->task_id)) {
      // A newer task took the entry over (a merged reader, a write of the same region) and is
      // live: the entry is its now. (The releasing task itself when its submit failed.)
      MapEntry*& head = head_of(e->task_id);
      e->task_next = head;
      head = e;
    } else {
      release_entry(e);
    }
    e = next;
  }
}

template <class Visit>
[[gnu::always_inline]] inline void TensorMap::lookup_insert(const AccessRegion& q, AccessKind kind,
                                                            const std::uint32_t* retired, TaskId id,
                                                            MapEntry*& task_entries,
                                                            const SlotHint& hint, int arg,
                                                            Visit&& visit) {
  const bool is_write = kind == AccessKind::write;
  BufferInfo* info = hint.info;
  SlotHeads heads = hint.heads;
  if (hint.epoch != layout_epoch_ || (info == nullptr && !hint.absent)) {
    // The hint is stale (an earlier argument may have added the buffer), or there is none.
    info = find_buffer_at(q.address, q.owner, arg);
    const std::uint64_t slot = info != nullptr && info->lines == nullptr
                                   ? info->grid_slot(q.lo, q.hi)
                                   : BufferInfo::kOffGrid;
    heads = slot != BufferInfo::kOffGrid ? insert_heads(info, slot) : kNoHeads;
  }
  bool fresh = false;
  if (info == nullptr) {
    info = add_buffer(q.address, q.owner);
    fresh = true;
  }
  if (info->lines != nullptr) {
    // Line mode: the slot's line is the whole state (see SlotLine). An access of the grid's
    // length off its phase is a span too (span_access cuts the grid finer): taken as one slot,
    // it had no slot and left line mode.
    if (q.contiguous) {
      const std::uint64_t slot = info->grid_slot(q.lo, q.hi);
      if (slot != BufferInfo::kOffGrid
              ? line_access(q, arg, is_write, info, retired, id, visit, slot)
              : span_access(q, arg, is_write, info, retired, id, visit)) {
        return;
      }
    }
    if (info->lines != nullptr) leave_lines(info);  // (a non-contiguous access)
    heads = kNoHeads;
    fresh = info->total[0] == 0 && info->total[1] == 0;
  } else if (q.contiguous && task_list_of_ != nullptr && info->total[0] == 0 &&
             info->total[1] == 0) {
    if (start_lines(q, info, id, task_entries)) {
      // (The grid starts at q: its slot is q.lo's, no phase to test.)
      line_access(q, arg, is_write, info, retired, id, visit, info->slot_of(q.lo));
      return;
    }
    heads = kNoHeads;
    fresh = true;
  }
  if (fresh) {
    // (nothing to look up)
  } else if (heads.exact && q.version == info->min_version &&
             info->min_version == info->max_version) {
    // The usual case: the region is one grid slot in its buffer's slot table. (A hashed slot,
    // past a table that may not grow, is rare: it takes lookup_in below, out of line, so that
    // the walks here test no entry's slot and keep one value fewer in registers.)
    constexpr auto kRead = static_cast<std::uint8_t>(AccessKind::read);
    constexpr auto kWrite = static_cast<std::uint8_t>(AccessKind::write);
    heads = SlotHeads{heads.at, true};
    // Every live entry of the slot has the query's interval and version (the grid and the
    // version test above), so each one overlaps it, and a contiguous query covers it.
    if (!is_write) {
      if (info->total[kWrite] != 0) {
        walk_slot_live(info, heads.at + kWrite, true, q.lo, retired, visit, [](MapEntry&) {});
      }
      if (info->total[kRead] != 0 && merge_reader(q, info, heads, id, retired)) return;
    } else {
      // A write covering a live write entry of exactly its interval takes that entry over
      // instead of unlinking it and linking a new one (the same region, bucket and lists).
      MapEntry* reuse = nullptr;
      if (info->total[kWrite] != 0) {
        walk_slot_live(info, heads.at + kWrite, true, q.lo, retired, visit, [&](MapEntry& e) {
          if (!q.contiguous && !covers(q, e)) return;
          if (reuse == nullptr) {
            reuse = &e;
          } else {
            unlink(e);
          }
        });
      }
      if (info->total[kRead] != 0) {
        walk_slot_live(info, heads.at + kRead, true, q.lo, retired, visit, [&](MapEntry& e) {
          // (A copy of the visitor for the out-of-line calls: if the visitor's own address escaped,
          // it would live on the stack and every inlined report would reload it from there.)
          if (e.older != 0) for_each_older_reader(e, retired, Visit(visit));
          if (q.contiguous || covers(q, e)) unlink(e);
        });
      }
      if (reuse != nullptr) {
        // Its old task's list still holds it: release_task passes it on to this task.
        reuse->task_id = id;
        reuse->region = q.tensor;
        reuse->contiguous = q.contiguous;
        ++stats_.reused_writes;
        return;
      }
    }
  } else {
    heads = kNoHeads;   // (a grid slot of another version, or hashed: link_entry finds its own)
    Visit copy(visit);  // (see above: the visitor's own address does not escape)
    lookup_in(q, info, is_write, retired, copy);
  }
  link_entry(q, static_cast<std::uint8_t>(kind), info, heads, id, task_entries);
}

template <class Visit>
void TensorMap::lookup_in(const Query& q, BufferInfo* info, bool is_write,
                          const std::uint32_t* retired, Visit& visit) {
  const std::uint32_t version = q.version;
  const bool any_version = version != info->min_version || info->min_version != info->max_version;
  if (info->grid && !any_version) {
    lookup_grid(q, info, is_write, retired, visit);
    return;
  }
  for (std::uint8_t k = 0; k < (is_write ? 2 : 1); ++k) {
    // Reads conflict with writes only; writes with both.
    const std::uint8_t entry_kind = is_write ? k : static_cast<std::uint8_t>(AccessKind::write);
    if (info->total[entry_kind] == 0) continue;
    // Few entries: scanning them beats computing cells.
    std::uint64_t cells = info->total[entry_kind] <= kScanBelow ? ~std::uint64_t{0} : 0;
    std::uint64_t mask = cells == 0 ? info->class_mask[entry_kind] : 0;
    // A class c holds at most ((hi - lo) >> (c + 1)) + 3 cells of the query: when even the
    // smallest class's bound for every class stays within the entries, the cells win uncounted
    // (a large map's usual case).
    if (mask != 0 && static_cast<std::uint64_t>(std::popcount(mask)) *
                             (((q.hi - q.lo) >> (std::countr_zero(mask) + 1)) + 3) <=
                         info->total[entry_kind]) {
      mask = 0;
    }
    while (mask != 0 && !any_version) {
      const int c = __builtin_ctzll(mask);
      mask &= mask - 1;
      const std::uint64_t span = std::uint64_t{2} << c;
      const std::uint64_t first = (q.lo + 1 > span ? q.lo + 1 - span : 0) >> (c + 1);
      const std::uint64_t last = (q.hi - 1) >> (c + 1);
      cells += last - first + 1;
    }
    if (any_version || cells > info->total[entry_kind]) {
      for (MapEntry* e = info->list[entry_kind]; e != nullptr;) {
        MapEntry* const next = e->list_next;
        check(q, *e, is_write, retired, visit);
        e = next;
      }
      continue;
    }
    mask = info->class_mask[entry_kind];
    while (mask != 0) {
      const int c = __builtin_ctzll(mask);
      mask &= mask - 1;
      const std::uint64_t span = std::uint64_t{2} << c;
      const std::uint64_t first = (q.lo + 1 > span ? q.lo + 1 - span : 0) >> (c + 1);
      const std::uint64_t last = (q.hi - 1) >> (c + 1);
      std::uint64_t hash = cell_hash(info, static_cast<std::uint8_t>(c), first);
      for (std::uint64_t cell = first; cell <= last; ++cell, hash += kCellHashStep) {
        assert((pair_of_hash(hash) | entry_kind) ==
               bucket_of(info, entry_kind, static_cast<std::uint8_t>(c), cell));
        for (MapEntry* e = buckets_[pair_of_hash(hash) | entry_kind]; e != nullptr;) {
          MapEntry* const next = e->chain_next;
          if (e->buffer == info && e->size_class == c && e->cell() == cell) {
            check(q, *e, is_write, retired, visit);
          }
          e = next;
        }
      }
    }
  }
}

template <class Visit>
void TensorMap::lookup_grid(const Query& q, BufferInfo* info, bool is_write,
                            const std::uint32_t* retired, Visit& visit) {
  const std::uint64_t length = info->grid_length;
  const std::uint64_t phase = info->grid_phase;
  // Entries sit at s * L + phase for s >= 0; the query [lo, hi) meets slots s with
  // s * L + phase < hi and s * L + phase + L > lo.
  if (q.hi <= phase) return;
  std::uint64_t first;
  std::uint64_t last;
  if (q.hi - q.lo == length && info->on_grid(q.lo, q.hi)) {
    first = last = info->slot_of(q.lo);  // the usual case: exactly one slot
  } else {
    last = info->grid_div(q.hi - phase - 1);
    first = q.lo < phase + length ? 0 : info->grid_div(q.lo - phase - length) + 1;
  }
  for (std::uint8_t k = 0; k < (is_write ? 2 : 1); ++k) {
    const std::uint8_t entry_kind = is_write ? k : static_cast<std::uint8_t>(AccessKind::write);
    if (info->total[entry_kind] == 0) continue;
    if (last - first + 1 > info->total[entry_kind]) {
      for (MapEntry* e = info->list[entry_kind]; e != nullptr;) {
        MapEntry* const next = e->list_next;
        check(q, *e, is_write, retired, visit);
        e = next;
      }
      continue;
    }
    for (std::uint64_t slot = first; slot <= last; ++slot) {
      const std::uint64_t lo =
          (info->grid_shift != BufferInfo::kNoShift ? slot << info->grid_shift : slot * length) +
          phase;
      const SlotHeads heads = slot_heads(info, slot);
      walk_slot(q, info, heads.at + entry_kind, heads.exact, lo, is_write, retired, visit);
    }
  }
}

}  // namespace tmr::detail
