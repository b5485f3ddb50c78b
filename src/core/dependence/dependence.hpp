// Dependence discovery: which earlier tasks a new task (or an element access) must wait for.
//
// Two sources, behind one small interface:
//   - creator retention: a tensor created by a task depends on that task, and may only be named
//     while the creating task's scope is open (retain_creator / release_creator);
//   - the TensorMap: earlier conflicting accesses (RAW, WAW, WAR) to overlapping regions.
// A caller starts a discovery with begin(), adds what it touches (collect() for a submit's whole
// argument list, or add_creator / add_accessors for one tensor), reads producers(), and — for a
// task — records the task's own accesses with record(). The unit owns every task's TensorMap
// entry list and frees the entries of retired tasks (forget_retired), seeing ring retirement
// only through a RetirementView. A loop analysis (parallel_for) can wrap this unit: it is all a
// submit asks of dependence discovery.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "core/completion_log.hpp"
#include "core/dependence/retirement_view.hpp"
#include "core/dependence/tensor_map.hpp"
#include "core/loops/affine_families.hpp"
#include "core/prefetch.hpp"
#include "core/task.hpp"
#include "tmr/args.hpp"
#include "tmr/error.hpp"

namespace tmr::detail {

// The producers a discovery found, in order: a growable array whose append is a compare and a
// store (the growth is out of line), so it inlines into the map's chain walks without the
// call, spills and reallocation code of std::vector::push_back (~13 instructions a producer).
class ProducerList {
 public:
  ProducerList() { grow(); }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  TaskSlot* operator[](std::size_t i) const { return data_[i]; }
  TaskSlot* const* begin() const { return data_.get(); }
  TaskSlot* const* end() const { return data_.get() + size_; }
  void clear() { size_ = 0; }
  [[gnu::always_inline]] void push_back(TaskSlot* slot) {
    if (size_ == capacity_) [[unlikely]]
      grow();
    data_[size_++] = slot;
  }
  // push_back while size() < kFirstCapacity (the list starts with that room): no room test.
  static constexpr std::size_t kFirstCapacity = 64;
  [[gnu::always_inline]] void push_back_short(TaskSlot* slot) { data_[size_++] = slot; }

 private:
  [[gnu::noinline]] void grow();
  std::unique_ptr<TaskSlot*[]> data_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

class Dependence {
 public:
  // `window`: task slots per ring (a power of two), for the per-task bookkeeping.
  Dependence(RetirementView rings, std::uint32_t window);

  // Forgets every task. Only between runs.
  void reset();

  // ---- discovery ----
  // Starts a new discovery: producers() becomes empty.
  void begin() {
    ++stamp_;
    producers_.clear();
    self_ = nullptr;
    filter_ = 0;
    map_.refresh_retired(retired_);
  }
  // Adds the producers of a submit's tensor arguments: creators of every non-out argument, then
  // conflicting earlier accesses of every argument that takes part in dependence tracking
  // (`regions[i]` is filled for those). A non-ok Status names a tensor whose creator's scope has
  // ended (discovery stops there).
  Status collect(const Args& args, AccessRegion* regions);
  // collect() and record() in one pass, for a plain submit of the admitted task `task` whose
  // record holds the argument tensors (`record_tensors`, which the entries point at): each
  // argument's lookup and insert share one buffer search and one bucket hash. Creators are
  // checked first, so a named error leaves the map untouched. A task naming overlapping regions
  // in two arguments finds its own first entry; it is not its own producer. (No region array:
  // nothing after a plain submit's discovery reads its regions.)
  //
  // Two ways to the same result: by slot lines (collect_on_lines: each argument's line found
  // straight from the record's tensor, for the usual rank-1/2 contiguous argument of a line-mode
  // buffer that its argument place named last) or by regions (collect_by_regions: make_region and
  // TensorMap::lookup_insert per argument). The line way saves ~25 instructions an argument that
  // has its line and costs more than that for one that misses it (a first access, another rank,
  // a non-contiguous box), so a submit with such an argument pauses it (see line_retry_): a
  // program whose arguments keep missing their lines pays one compare here.
  Status collect_and_record(TaskSlot& task, const Args& args, const Tensor* record_tensors) {
    const int lines = collect_lines_first(task, args, record_tensors);
    if (lines_done(lines)) [[likely]]
      return Status{};
    return collect_rest(lines, task, args, record_tensors);
  }
  // collect_and_record in two steps, for a caller that needs a Status only when discovery did
  // not pass on the line path (an empty Status is a string's 40 bytes made and then destroyed,
  // ~10 instructions a submit): the line path's code (kLinesByRegions while it is paused), and
  // for any code but lines_done() the Status collect_and_record returns.
  [[gnu::always_inline]] int collect_lines_first(TaskSlot& task, const Args& args,
                                                 const Tensor* record_tensors) {
    if (stamp_ < line_retry_) return kLinesByRegions;
    // A submit naming created tensors takes the walks' instances with creator checks and fresh
    // reads, out of line (collect_on_created_lines), so the usual submit's keep their registers.
    const std::uint32_t created = args.created_mask();
    if (created != 0) [[unlikely]]
      return collect_on_created_lines(task, args, record_tensors, created);
    return collect_on_lines(task, args, record_tensors);
  }
  static bool lines_done(int lines) { return lines == kLinesDone; }
  Status collect_rest(int lines, TaskSlot& task, const Args& args, const Tensor* record_tensors) {
    if (lines == kLinesByRegions) return collect_by_regions(task, args, record_tensors);
    return creator_error(args.tensor(lines), lines);
  }
  // Releases the entries of a task whose submit failed after collect_and_record (never run;
  // counted finished): those another live task shares stay until it retires.
  void discard_entries(TaskId id) { release_entries(id); }
  // collect() without TensorMap lookups: creators only, `regions` filled the same way (for a
  // task whose other producers a loop analysis supplies).
  Status collect_creators(const Args& args, AccessRegion* regions);
  // Adds a live task as a producer, once a discovery (see listed() below): every report, creator
  // and task found by other means (a loop template) comes here.
  [[gnu::always_inline]] void add_producer(TaskId id) { add_producer(id.ring(), id.local()); }
  // The same for task (ring, local): a slot line's report, whose task id is never built. (The
  // ring a size_t: an index, as a line's tag gives it, with no zero-extension.)
  [[gnu::always_inline]] void add_producer(std::size_t ring, std::uint32_t local) {
    if (producers_.size() < kScanProducers) {
      TaskSlot* const slot = rings_.slot(ring, local);
      const std::uint32_t b = local & 63;
      const std::uint64_t bit = std::uint64_t{1} << b;
      if ((filter_ & bit) != 0 && (by_bit_[b] == slot || listed(slot))) return;
      filter_ |= bit;
      by_bit_[b] = slot;
      prefetch_for_write(slot);
      producers_.push_back_short(slot);  // (size() < kScanProducers < its first capacity)
      if (producers_.size() == kScanProducers) stamp_listed();
      return;
    }
    std::uint64_t& s = stamps_[ring][local & window_mask_];
    if (s == stamp_) return;
    s = stamp_;
    TaskSlot* const slot = rings_.slot(ring, local);
    prefetch_for_write(slot);
    producers_.push_back(slot);
  }
  // Every live TensorMap entry of one buffer (a loop analysis's footprint lookup).
  template <class Visit>
  void for_each_live_entry(std::uintptr_t address, std::uint64_t owner, Visit&& visit) {
    settle_fresh(TaskId::from_value(owner));
    map_.for_each_live_entry(address, owner, std::forward<Visit>(visit));
  }
  // The creator of `tensor` (argument `arg_index`, for the message), if it has one.
  Status add_creator(const Tensor& tensor, int arg_index);
  // Earlier accesses conflicting with an access of `kind` to `region`.
  // Also asks the parallel_for affine families (loops/), which stand for analysed accesses.
  void add_accessors(const AccessRegion& region, AccessKind kind) {
    settle_fresh(TaskId::from_value(region.owner));
    map_.lookup(region, kind, retired_, [this](TaskId id) { add_producer(id); });
    if (families_ != nullptr && families_->live()) add_family_accessors(region, kind);
  }
  // The family table every lookup also asks (set once by the loop driver).
  void attach_families(loops::FamilyTable* families) { families_ = families; }
  // The producers found since begin(), each once, in discovery order.
  const ProducerList& producers() const { return producers_; }

  // ---- recording ----
  // Records the accesses of task `task` (argument regions from collect()).
  void record(TaskSlot& task, const Args& args, const AccessRegion* regions);
  // record() except the arguments whose bit is set in `skip` (an affine family stands for them).
  void record_except(TaskSlot& task, const Args& args, const AccessRegion* regions,
                     std::uint32_t skip);
  // Records one access of `task` (a loop analysis that deferred it; region from make_region on
  // the task record's tensor, which outlives the entry).
  void record_access(TaskSlot& task, const AccessRegion& region, AccessKind kind) {
    settle_fresh(TaskId::from_value(region.owner));
    map_.insert(region, kind, task.id, state(task.id).entries);
  }
  // A task whose outputs stay valid while its scope is open: tensors it created may be named.
  void retain_creator(TaskId id) { state(id).retained = true; }
  void release_creator(TaskId id) { state(id).retained = false; }
  bool creator_retained(TaskId id) const {
    const SlotState& s = state(id);
    return s.retained && s.local == id.local();
  }
  // A task was admitted into its slot (task.id set): forget what the slot's previous task left.
  // `retained`: retain_creator's store too, on the line admitted() writes anyway
  // (OrchestratorCore::submit_wide, for a task that creates buffers).
  void admitted(TaskSlot& task, bool retained = false) {
    const TaskId id = task.id;  // (a local: the stores below cannot change it)
    admitted_[id.ring()] = id.local() + 1;
    SlotState& s = state(id);
    s.entries = nullptr;
    s.local = id.local();
    s.retained = retained;
    // The next task's state (cold with a large window), like Ring::admit's prefetch.
    __builtin_prefetch(&states_[id.ring()][(id.local() + 1) & window_mask_], 1);
  }
  // admitted() for a task that will never have dependence state: no TensorMap entries (an
  // affine family stands for each of its accesses), no buffer it creates (no creator retention),
  // and no discovery of its own (it is nobody's `self_`): a replayed task of a TaskPlan::fast
  // position (OrchestratorCore::submit_replayed). Nothing to do, so a replayed submit skips the
  // state's cold line. Its slot's state keeps what the slot's previous task left: that task's
  // entries were released (the list emptied) before the slot could be reused (forget_retired
  // runs at every ring refresh, the only place the ring's room grows), and its `local` is not
  // this task's, so creator_retained() is false for both. admitted_ is not advanced (reset()
  // starts past the retired tasks). (Its slot's completion mark was cleared when the slot's
  // last task retired: forget_retired.)
  void admitted_without_state(const TaskSlot&) {}
  // Frees the TensorMap entries of ring `ring`'s tasks that retired since the last call, up to
  // local id `retired` (what the ring's owner has seen retire), and clears their slots'
  // completion marks (a refresh is the only place the ring's room grows: see completed_).
  void forget_retired(int ring, std::uint32_t retired);

  const TensorMap& map() const { return map_; }
  // Live entries above which a plain submit finds every argument's slot first (kColdMapEntries);
  // tests set 0 to take that path with small maps.
  void set_slot_first_above(std::uint64_t entries) { slot_first_above_ = entries; }
  // The line path's pauses (collect_and_record): after a miss, `first` submits by regions, up to
  // `last` while the probes keep missing (tests: 0, 0 tries the lines on every submit).
  void set_line_pauses(std::uint64_t first, std::uint64_t last) {
    line_first_pause_ = first;
    line_last_pause_ = last;
    line_pause_ = first / 2;
    line_retry_ = 0;
  }
  // The line path's warm runs on a large map (see warm_until_): `submits` a run, 0 for none;
  // a probe every `probe_every` cold walks outside a row of recent probes (tests of the large
  // map's walk).
  void set_warm_run(std::uint64_t submits, std::uint64_t probe_every = kProbeEvery) {
    warm_run_ = submits;
    probe_every_ = probe_every;
    warm_until_ = 0;
    cold_mark_ = 0;
    cold_spans_ = false;
    recent_probes_ = 0;
  }
  // Whether the next plain submit takes the line path (tests).
  bool line_path_open() const { return stamp_ + 1 >= line_retry_; }
  // Tests: reads kept with their creators (see FreshBuffer), and fresh buffers whose reads moved
  // into the map.
  std::uint64_t fresh_reads() const { return fresh_reads_; }
  std::uint64_t fresh_moves() const { return fresh_moves_; }
  // Whether grid buffers keep their slots' state in slot lines (TensorMap::enable_lines; on by
  // default). Tests of the entries themselves turn it off before the first submit.
  void set_slot_lines(bool on);
  // Completed producers left out (docs/design.md, "Completed producers are left out"): a plain
  // discovery on a large map (past slot_first_above_) leaves out a producer the map reports that
  // has completed, as far as the completion logs told (drained into this unit's own per-slot
  // marks, completed_, every kDrainEvery large discoveries): no edge, and none of the
  // producer's lines read. Off by default; the orchestrator turns it on for runs that neither
  // record events nor charge work (a trace keeps every edge of the program; a sim run must not
  // depend on host timing). `logs`: null, or the scheduler's (Engine).
  void read_completions_from(CompletionLogs* logs) { completions_ = logs; }
  void set_skip_completed(bool on);
  // Reads the completion logs now (tests; discoveries do it themselves). Out of line: inlined,
  // it changed what GCC inlined into the path by regions (paged attention +95K instructions).
  [[gnu::noinline]] void drain_completions();
  // Producers left out because they had completed, since the last reset().
  std::uint64_t left_out() const { return left_out_; }

 private:
  // What a task slot's current task needs of this unit, 16 bytes (four to a cache line: every
  // admit writes one, so with a large window the array's lines are written cold). The per-task
  // dedup stamps, read only by discoveries past kScanProducers, are a separate array.
  struct SlotState {
    MapEntry* entries = nullptr;  // TensorMap entries this task inserted
    std::uint32_t local = 0;      // which task the slot holds (its ring's local id)
    bool retained = false;        // creator retention: its scope is open
  };
  static_assert(sizeof(SlotState) == 16, "four task states to a cache line");
  // Fresh buffers: a buffer a task created (an `out` argument) is written by its creator, and
  // every later access names the creator as a producer (creator retention). While every access
  // since is a read, nothing else can conflict with them, so the reads are kept here, with the
  // creator, instead of in the map (a BufferInfo, a line table and an anchor for each output):
  // one record per creator slot, for the reads of all its buffers (a task with several outputs,
  // as paged attention's softmax: each read names its buffer in its region). The first access
  // of any of the creator's buffers that needs more (a write, a fourth live reader, a two-pass or
  // analysed lookup, a footprint) moves every kept read into the map as ordinary entries, each in
  // its reader's list (move_fresh_to_map), and from then on every buffer of that creator goes by
  // the map (`mapped`): a creator's buffers are fresh only while the map has never held any of
  // them. The record is its creator's only while `creator` is the creator's local id (slots are
  // reused), which is how an untouched record reads; reset() clears those of the run.
  static constexpr int kFreshReaders = 3;
  static constexpr std::uint32_t kNoCreator = ~std::uint32_t{0};
  struct alignas(64) FreshBuffer {
    std::uint32_t creator = kNoCreator;
    std::uint32_t count = 0;  // readers kept, oldest first
    bool mapped = false;      // the creator's buffers go by the map
    TaskId reader[kFreshReaders];
    const Tensor* region[kFreshReaders] = {};  // each reader's record tensor (live with it)
  };
  static_assert(sizeof(FreshBuffer) == 64, "one line per creator slot");
  // (always_inline: the line path's walks are large enough that GCC would call it.)
  [[gnu::always_inline]] FreshBuffer& fresh(TaskId creator) {
    return fresh_[creator.ring()][creator.local() & window_mask_];
  }
  // A plain submit's read of created tensor `t` (the reader's record copy; its creator already
  // checked and listed) by task `id`: true when kept with the creator (nothing to report). False
  // when the creator's buffers go by the map (its kept reads moved there first if it had some).
  [[gnu::always_inline]] bool keep_fresh_read(const Tensor* t, TaskId id) {
    const TaskId creator = t->producer();
    FreshBuffer& f = fresh(creator);
    if (f.creator != creator.local()) {
      // The first access of any buffer of this creator: its buffers are fresh.
      f.creator = creator.local();
      f.mapped = false;
      f.count = 0;
    } else if (f.mapped) {
      return false;
    } else if (f.count == kFreshReaders && !drop_dead_fresh_readers(f)) [[unlikely]] {
      move_fresh_to_map(f);
      return false;
    }
    f.reader[f.count] = id;
    f.region[f.count] = t;
    ++f.count;
    ++fresh_reads_;
    return true;
  }
  // Before any other access or lookup by the map of a buffer that `creator` made: its fresh
  // buffers' kept reads move into the map, and its buffers go by the map from now on.
  void settle_fresh(TaskId creator) {
    if (!creator.valid() || creator.ring() >= static_cast<std::uint32_t>(rings_.ring_count())) {
      return;
    }
    FreshBuffer& f = fresh(creator);
    if (f.creator == creator.local()) {
      if (!f.mapped) [[unlikely]]
        move_fresh_to_map(f);
      return;
    }
    // The record is not the creator's yet: make it so, mapped, if the slot is still the
    // creator's (a retired creator's buffer can no longer be named: its slot's record is left to
    // the slot's task).
    if (state(creator).local != creator.local()) return;
    f.creator = creator.local();
    f.mapped = true;
    f.count = 0;
  }
  void settle_fresh(const Tensor& t) { settle_fresh(t.producer()); }
  // The path by regions' created arguments (`created`, bit i for argument i), before the rest:
  // reads of fresh buffers kept with their creators (returned), other accesses of created
  // buffers settled (settle_fresh). Out of line: the path by regions compiles as before.
  [[gnu::noinline]] std::uint32_t settle_created(TaskSlot& task, const Args& args,
                                                 const Tensor* record_tensors,
                                                 std::uint32_t created, bool families);
  // The rest of a submit by regions after settle_created kept some of its reads (`kept`): each
  // other tracked argument looked up and recorded in order.
  [[gnu::noinline]] Status record_rest_by_regions(TaskSlot& task, const Args& args,
                                                  const Tensor* record_tensors, std::uint32_t kept,
                                                  bool families);
  // Forgets the kept readers that have retired; true when room is left.
  bool drop_dead_fresh_readers(FreshBuffer& f);
  [[gnu::noinline]] void move_fresh_to_map(FreshBuffer& f);

  SlotState& state(TaskId id) { return states_[id.ring()][id.local() & window_mask_]; }
  const SlotState& state(TaskId id) const { return states_[id.ring()][id.local() & window_mask_]; }
  // The last discovery that listed task `id` (dedup past kScanProducers).
  std::uint64_t& stamp(TaskId id) { return stamps_[id.ring()][id.local() & window_mask_]; }
  // add_producer (public above) lists each producer once, without reading anything of the
  // producer while the list is short (the usual case: a handful of producers; with a large task
  // window a per-slot dedup stamp is a cold line per producer): a 64-bit filter on the local id
  // says "certainly new" for most producers, a filter hit compares the one task last listed under
  // that bit (a repeat: by id, so a repeat needs not even the slot's address), and only a
  // collision of two tasks on one bit scans the list. Past kScanProducers, per-slot stamps take
  // over. The producer's slot is prefetched for the wiring that follows (hold and fanout CAS write
  // it).
  // Whether `slot` is listed already or is the discovering task itself.
  bool listed(const TaskSlot* slot) const {
    if (slot == self_) return true;
    for (const TaskSlot* p : producers_) {
      if (p == slot) return true;
    }
    return false;
  }
  // The map's report of a producer (always inline: each report then inlines into the map's
  // walks). It takes the id alone, also where the map could hand the slot (slot lines): the slot
  // is found from the id only for a producer that is listed (not for a repeat or one left out).
  // kLeaveOutCompleted: a large map's discovery (past slot_first_above_: the map's lines are
  // cold, and so most likely are its producers' slots), which leaves out a producer known to have
  // completed (add_reported). A small map's reports skip the test (its producers are recent).
  template <bool kLeaveOutCompleted>
  struct Report {
    Dependence* self;
    [[gnu::always_inline]] void operator()(TaskId id) const {
      self->add_reported<kLeaveOutCompleted>(id.ring(), id.local());
    }
    // A slot line's report (TensorMap::report): ring and local id as the line keeps them.
    [[gnu::always_inline]] void operator()(std::size_t ring, std::uint32_t local) const {
      self->add_reported<kLeaveOutCompleted>(ring, local);
    }
  };
  // A producer the map reported: left out when it is known to have completed (its writes are
  // visible: the log's acquire load) and skip_completed_ allows it; its slot is not touched.
  // A reported producer is live (per the discovery's snapshot): its slot's mark is its own
  // local id + 1 once a log named it, and an older task's (smaller) before. Creators
  // (add_creator_fast) are always added: their edge keeps the buffer the task reads alive.
  template <bool kLeaveOutCompleted>
  [[gnu::always_inline]] void add_reported(std::size_t ring, std::uint32_t local) {
    if (kLeaveOutCompleted && skip_completed_ && completed(ring, local)) {
      ++left_out_;
      return;
    }
    add_producer(ring, local);
  }
  // drain_completions when skipping is on and kDrainEvery discoveries have passed since the last.
  [[gnu::always_inline]] void maybe_drain_completions() {
    if (skip_completed_ && stamp_ >= next_drain_) drain_completions();
  }
  static constexpr std::uint64_t kDrainEvery = 16;
  static constexpr std::size_t kScanProducers = 16;
  static_assert(kScanProducers < ProducerList::kFirstCapacity);
  // Live TensorMap entries (128 bytes each) above which a plain submit finds every argument's
  // slot first and prefetches the lines it will walk (2,048 entries: 256 KiB, past what the L1
  // and much of the L2 keep); below, each argument is looked up in one go.
  static constexpr std::uint64_t kColdMapEntries = 2048;
  // Switches the running discovery from scanning to stamps: stamps what is listed (and the task
  // itself).
  void stamp_listed();

  void add_family_accessors(const AccessRegion& region, AccessKind kind);
  // collect_and_record's two ways (out of line, so each keeps its own registers), and the line
  // path's parts (line_path.cpp).
  // The line path's results: kLinesDone, kLinesByRegions (nothing done: the submit goes by
  // regions), or the index of the argument whose creator cannot be named (nothing recorded).
  static constexpr int kLinesDone = -1;
  static constexpr int kLinesByRegions = -2;
  int collect_on_lines(TaskSlot& task, const Args& args, const Tensor* record_tensors);
  // collect_on_lines for a submit naming created tensors (`created`: args.created_mask(), not 0;
  // collect_on_lines itself takes those naming none): the walks' instances with creator checks
  // and fresh reads in a function of their own, so the usual submit's keep their registers.
  [[gnu::noinline]] int collect_on_created_lines(TaskSlot& task, const Args& args,
                                                 const Tensor* record_tensors,
                                                 std::uint32_t created);
  Status collect_by_regions(TaskSlot& task, const Args& args, const Tensor* record_tensors);
  // collect_by_regions on a map above slot_first_above_ (`entries`: the task's list): in
  // line_path.cpp, out of line, so that the path by regions compiles as it did without the
  // large map's reports (Report<true>: GCC inlined less into it, +95K instructions over paged
  // attention's three rounds, which never get here).
  [[gnu::noinline]] Status collect_slot_first(TaskSlot& task, const Args& args,
                                              const Tensor* record_tensors, MapEntry*& entries,
                                              bool families);
  // The line path's two walks, for a map at most slot_first_above_ (warm: each argument's line
  // found where it is used) and above it (cold: every line found first). `created`: the
  // arguments with a creator (args.created_mask()); inline at each of collect_on_lines' calls,
  // so where it is the constant 0 (the usual submit) creator checks and fresh reads fold away;
  // `probe`: a constant at each call (the cold walk that probes is a copy of its own).
  [[gnu::always_inline]] inline int collect_on_warm_lines(TaskSlot& task, const Args& args,
                                                          const Tensor* record_tensors,
                                                          std::uint32_t created);
  template <bool kSpans>
  [[gnu::always_inline]] inline int collect_on_cold_lines(TaskSlot& task, const Args& args,
                                                          const Tensor* record_tensors,
                                                          std::uint32_t created, bool probe);
  // Spans on the line path (a rank-1 access of several whole slots: TensorMap::find_line's
  // kSpans, access_span), each out of line so that the one-slot walks keep their registers.
  // The warm walk's argument `arg` whose one-slot try failed: recorded on its lines if it is a
  // span (each slot as access_line records it) or an access past the end of its buffer's line
  // table (the table grown first: TensorMap::grow_lines_for), else as record_off_lines records it.
  [[gnu::noinline]] void record_span_or_off_lines(TaskSlot& task, const Args& args, int arg,
                                                  const Tensor* record_tensors);
  // The cold walk after an argument missed its one-slot line (nothing recorded yet): the walk
  // again, finding spans too (collect_on_cold_lines<true>), and again after a line table grew.
  [[gnu::noinline]] int collect_on_cold_span_lines(TaskSlot& task, const Args& args,
                                                   const Tensor* record_tensors,
                                                   std::uint32_t created, bool probe);
  // The warm-run probe of a cold walk (see warm_until_): the state of its last line (`lines`,
  // `infos` by argument place; `skipped`: places without one), before its access. Out of line:
  // most cold walks do not probe, and theirs keeps its registers.
  [[gnu::noinline]] void probe_last_line(const Args& args, SlotLine* const* lines,
                                         BufferInfo* const* infos, std::uint32_t skipped,
                                         TaskId id);
  // The line path's first step (collect_on_lines, before it picks a walk): the task whose
  // discovery runs is its own first dedup entry (its earlier arguments' entries dedup away like a
  // producer already listed; nothing was listed since begin(), so the filter is stored, not
  // merged). Once for every walk, not inside each walk's copy: fewer spills in the warm walk.
  void list_self(TaskSlot& task) {
    const TaskId id = task.id;
    self_ = &task;
    filter_ = std::uint64_t{1} << (id.local() & 63);
    by_bit_[id.local() & 63] = &task;
  }
  // The line path's start of a task's recording (after list_self): creators checked (the index
  // of the argument whose creator cannot be named, or -1).
  [[gnu::always_inline]] inline int begin_recording(TaskSlot& task, const Args& args,
                                                    std::uint32_t created_mask);
  // The line path's reads of created buffers (`reads`, bit i for argument i): each kept with its
  // creator if its buffer is fresh (keep_fresh_read); returns those kept.
  [[gnu::always_inline]] inline std::uint32_t keep_fresh_reads(TaskSlot& task, std::uint32_t reads,
                                                               const Tensor* record_tensors);
  // The warm walk's begin_recording and keep_fresh_reads in one step: the index of the argument
  // whose creator cannot be named, or -1 with `kept` set to the created reads kept with their
  // creators. A submit naming one created tensor (attention's softmax, PV and update tasks) checks
  // that creator and keeps its read from the record's copy at once: no loop over the masks.
  [[gnu::always_inline]] inline int begin_with_fresh_reads(TaskSlot& task, const Args& args,
                                                           const Tensor* record_tensors,
                                                           std::uint32_t created,
                                                           std::uint32_t& kept);
  // A submit on the line path had an argument off the lines: the next submits go by regions
  // (line_pause_ of them), and the one after tries the lines again. Once a submit.
  [[gnu::noinline]] void pause_lines();
  // The line path's way for the tracked arguments among `args_mask` (bit i for argument i; bits
  // of untracked or absent arguments are passed over) that have no line, in order, each a read
  // or a write as its tag says: make_region and lookup_insert each, as the path by regions;
  // pauses the line path (out of line: the line path keeps its registers).
  [[gnu::noinline]] void record_off_lines(TaskSlot& task, const Args& args, std::uint32_t args_mask,
                                          const Tensor* record_tensors);
  // Releases a task's TensorMap entries; one that a newer live task took over (a merged reader,
  // a write of the same region) moves to that task's list.
  void release_entries(TaskId id) {
    map_.release_task(state(id).entries,
                      [this](TaskId reader) -> MapEntry*& { return state(reader).entries; });
  }
  // Adds the creator of `tensor` if it has one; false when naming it is an error.
  bool add_creator_fast(const Tensor& tensor) {
    const TaskId owner = tensor.producer();
    if (!owner.valid()) return true;
    if (owner.ring() >= static_cast<std::uint32_t>(rings_.ring_count())) return false;
    if (!creator_retained(owner) || rings_.is_retired(owner)) return false;
    add_producer(owner);
    return true;
  }
  // The error add_creator_fast reported for `tensor` (argument `arg_index`).
  Status creator_error(const Tensor& tensor, int arg_index) const;

  RetirementView rings_;
  loops::FamilyTable* families_ = nullptr;
  std::uint32_t window_mask_;
  TensorMap map_;
  std::vector<SlotState> states_[kRingCount];
  std::vector<FreshBuffer> fresh_[kRingCount];
  std::uint64_t fresh_reads_ = 0;
  std::uint64_t fresh_moves_ = 0;
  // Never cleared: stamp_ only grows, so a stamp from an earlier discovery or run is stale.
  std::vector<std::uint64_t> stamps_[kRingCount];
  std::uint32_t cleaned_[kRingCount] = {};
  // One past the last local id admitted this run with state (admitted(), not
  // admitted_without_state(): cleaned_ may pass it).
  std::uint32_t admitted_[kRingCount] = {};
  ProducerList producers_;
  // The task whose discovery runs (collect_and_record): never its own producer.
  TaskSlot* self_ = nullptr;
  std::uint64_t filter_ = 0;  // bit (local id mod 64) of every listed producer and of self_
  // The slot of the task last listed under each bit set in filter_ (a slot names one live task:
  // a report needs no TaskId built to compare).
  const TaskSlot* by_bit_[64];
  std::uint64_t stamp_ = 0;
  std::uint64_t slot_first_above_ = kColdMapEntries;
  // The line path's gate: plain submits take it from discovery (stamp_) line_retry_ on. A miss
  // sets it line_pause_ discoveries ahead; the pause doubles (up to line_last_pause_) while the
  // probes after it keep missing, and starts again from line_first_pause_ after a longer run of
  // line submits.
  static constexpr std::uint64_t kFirstLinePause = 32;
  static constexpr std::uint64_t kLastLinePause = 4096;
  std::uint64_t line_retry_ = 0;
  std::uint64_t line_pause_ = kFirstLinePause / 2;
  std::uint64_t line_first_pause_ = kFirstLinePause;
  std::uint64_t line_last_pause_ = kLastLinePause;
  // Warm runs: a large map (past slot_first_above_) has its lines walked cold (collect_on_cold_
  // lines: every line asked for first, completed producers left out), as they are most likely
  // out of the caches. A map whose lines the submits walk in order (paged attention: each block's
  // KV line read by two tasks in a row, the accumulator by every fourth) has them in the caches
  // (or on their way, by the hardware's prefetch) whatever its table's size: a cold walk may read
  // the state of its last line first (probe_last_line, TensorMap::line_recency), and after
  // kRecentProbes probes in a row whose line a task at most kRecentTasks before touched (lines
  // new to their episode do not count either way), the next warm_run_ submits walk warm; the
  // first cold walk after them probes again. Random lines of a large set (BM_Submit 4/16,384:
  // ~1% of its lines recent by chance) pass four in a row almost never, and there a probe is
  // taken only every probe_every_ cold walks (a row in progress probes every walk): the cold
  // walk's only cost is one compare with cold_mark_ (the next discovery that probes or may walk
  // warm), which also gates the warm run (collect_on_lines).
  static constexpr std::uint64_t kRecentTasks = 64;
  static constexpr std::uint32_t kRecentProbes = 4;
  static constexpr std::uint64_t kWarmRun = 256;
  // (Odd: task kinds that repeat with an even period take turns at the probes.)
  static constexpr std::uint64_t kProbeEvery = 31;
  std::uint64_t cold_mark_ = 0;      // cold walks from discovery (stamp_) cold_mark_ probe
  std::uint64_t warm_until_ = 0;     // ... or walk warm while stamp_ < warm_until_
  std::uint32_t recent_probes_ = 0;  // probes in a row that met a recent line
  // Whether the last cold walk that found every argument's lines took a span: the next cold walk
  // then starts as the spans instance (collect_on_cold_span_lines), not after the one-slot
  // instance has missed its first span (the stencil's reads, every submit: ~30 instructions).
  // A spans walk that takes none clears it (the one-slot instance is the cheaper walk).
  bool cold_spans_ = false;
  std::uint64_t warm_run_ = kWarmRun;
  std::uint64_t probe_every_ = kProbeEvery;
  // The rings' watermarks when the discovery began (TensorMap::snapshot_retired's layout; the
  // entries past the rings' are set once, in the constructor).
  std::uint32_t retired_[TensorMap::kRetiredSlots] = {};
  CompletionLogs* completions_ = nullptr;
  bool skip_completed_ = false;
  // The orchestrator's completion marks: per ring one bit a slot, set only for the slot's own
  // task (16,384 live tasks in 2 KiB, lines the L1 keeps; a 4-byte mark a slot, 64 KiB, took a
  // cold line a reported producer, BM_Submit 4/16,384). The marks of the tasks that retired since
  // the last refresh are cleared by it (forget_retired, a word at a time: the slots of local ids
  // cleaned_ to the new watermark), before the room it gives lets any of those slots take a new
  // task, so an admit tests nothing; a drain sets a task's bit only while the task is at or past
  // cleaned_ (not yet retired as the orchestrator last saw), so a bit set is always cleared
  // before its slot's next task. No live task's mark is ever cleared.
  std::vector<std::uint64_t> completed_[kRingCount];
  bool completed(TaskId id) const { return completed(id.ring(), id.local()); }
  bool completed(std::size_t ring, std::uint32_t local) const {
    const std::uint32_t slot = local & window_mask_;
    return ((completed_[ring][slot >> 6] >> (slot & 63)) & 1u) != 0;
  }
  std::uint64_t next_drain_ = 0;  // the discovery (stamp_) from which the logs are read again
  std::uint64_t left_out_ = 0;
};

}  // namespace tmr::detail
