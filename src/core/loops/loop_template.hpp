// parallel_for analysis, the part that needs no engine: iteration templates and their proofs.
//
// The orchestrator records what the first iterations of a loop submit (per task: kernels; per
// tensor argument: tag, where its buffer comes from, the view). Two consecutive iterations with
// the same structure and offsets that differ by a constant vector give an affine template:
// argument `a` touches `box(a) + (i - base) * stride(a)` in iteration `i`. The proof then finds,
// for every ordered pair of conflicting template accesses, the exact set of iteration distances
// at which they overlap (an interval: per-dimension interval conditions, intersected), so an
// iteration's producers inside the loop follow from its index alone. Anything the proof cannot
// decide exactly (unequal strides or different layouts on one buffer, mixed versions) is a
// fall-back, never a guess. Later iterations are checked against the prediction argument by
// argument before the template is trusted for them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>
#include <vector>

#include "tmr/args.hpp"
#include "tmr/kernel.hpp"
#include "tmr/tensor.hpp"

namespace tmr::detail::loops {

inline constexpr std::int64_t kUnbounded = std::numeric_limits<std::int64_t>::max();
// A pair carried at more distances than this (and not reducible to a chain) falls back: replaying
// it would cost as much as the per-task map.
inline constexpr std::int64_t kMaxCarriedWindow = 64;
// Templates of more tasks than this keep every conflicting same-iteration edge (exact, not
// reduced): the reduction's ancestor bit sets grow with the square of the task count.
inline constexpr std::size_t kMaxReducedTasks = 4096;

// Why a loop (or the rest of it) runs under per-task analysis.
enum class Fallback : std::uint8_t {
  none,
  no_template,      // no two consecutive iterations of the same structure within the first few
  mismatch,         // an iteration broke the learned template (tasks, kernels, buffers, offsets)
  element_access,   // set_tensor_data in the body
  element_read,     // get_tensor_data in the body of a buffer the loop writes
  unequal_strides,  // two accesses of one buffer move at different strides
  layouts,          // two accesses of one buffer use different raw layouts (after reshape)
  versions,         // two accesses of one buffer use different versions
  wide_window,      // a carried dependence spans too many distances to replay cheaply
  nested_lengths,   // two iterations ran their nested loops with different trip counts
  too_short,        // a loop nested in a learning loop has too few tasks left to repay a set-up
  count
};
const char* fallback_name(Fallback reason);

// Whether a template kept from an earlier run of the same orchestration fits a loop's first
// iteration in this run (LoopTemplate::rebind), or why not.
enum class Rebind : std::uint8_t {
  fits,
  structure,  // other tasks, kernels, argument tags or counts
  nested,     // nested loops of other trip counts
  buffers,    // a buffer outside the bijection (two kept buffers on one, or a fresh one elsewhere)
  views,      // a view the kept template does not predict (box, layout, version)
  carried,    // the kept template reads buffers made by earlier iterations
  mismatch,   // it fit the first iteration, but the first analysed one differed from it
  count
};
const char* rebind_name(Rebind reason);

// Where a tensor argument's buffer comes from.
struct BufferRef {
  enum class Kind : std::uint8_t { outer, fresh };
  Kind kind = Kind::outer;
  std::uintptr_t address = 0;  // outer: the buffer's identity, as the TensorMap keys it
  std::uint64_t owner = 0;
  std::int64_t iteration = 0;  // fresh: the iteration whose task created it
  std::uint32_t task = 0;      // fresh: that task's position in its iteration
  std::uint32_t arg = 0;       // fresh: the `out` argument's index in that task
};

struct AccessRecord {
  AccessRecord() = default;
  // For emplace_back (built in place): clang has no parenthesised aggregate initialisation.
  AccessRecord(ArgTag t, const BufferRef& b, const Tensor& view)
      : tag(t), buffer(b), tensor(view) {}
  ArgTag tag = ArgTag::in;
  BufferRef buffer;
  Tensor tensor;  // the view (for `out`: the spec placeholder)
};

struct TaskRecordLite {
  KernelId kernels[3] = {kNoKernel, kNoKernel, kNoKernel};
  bool inline_task = false;
  std::uint32_t first_access = 0;
  std::uint32_t access_count = 0;
};

// One iteration as it was submitted.
struct IterationRecord {
  std::int64_t index = 0;
  std::vector<TaskRecordLite> tasks;
  std::vector<AccessRecord> accesses;
  // Trip counts of the loops nested in the iteration, in the order they began.
  std::vector<std::int64_t> nested_loops;

  void clear(std::int64_t iteration) {
    index = iteration;
    tasks.clear();
    accesses.clear();
    nested_loops.clear();
  }
  void add_task(const KernelId kernels[3], bool inline_task);
  // Adds an argument to the last task added.
  void add_access(ArgTag tag, const BufferRef& buffer, const Tensor& tensor);
};

// A view's box in a buffer-wide coordinate system: the layout offset (what `reshape` of a slice
// leaves behind) is folded into raw dimension 0 when it is a whole number of dimension-0 steps,
// so reshaped row slices of one buffer compare box by box; otherwise it stays apart (`rest`).
struct Placement {
  std::int64_t offset[kMaxDims] = {};
  std::uint64_t rest = 0;
};
Placement placement(const Tensor& t);
// Two views whose placements are boxes of one coordinate system (the size of raw dimension 0
// never moves an element, so it may differ).
bool comparable(const Tensor& a, const Tensor& b);
// The same, given their placements (placement(a), placement(b)): no second computation.
bool comparable(const Tensor& a, const Tensor& b, const Placement& pa, const Placement& pb);

inline bool is_write(ArgTag tag) {
  return tag == ArgTag::inout || tag == ArgTag::out_existing;
}
inline bool is_tracked(ArgTag tag) {
  return tag == ArgTag::in || is_write(tag);
}

// The distances `delta` (iteration i against iteration i - delta) at which a box of extent `ex`
// at offset `ox + delta * stride` and a box of extent `ey` at `oy` overlap in one dimension:
// -ex < ox - oy + delta * stride < ey. Returns false when no distance satisfies it; an empty
// interval otherwise never comes back. `kUnbounded` / -kUnbounded for an open side.
bool overlap_distances(std::int64_t ox, std::int64_t ex, std::int64_t oy, std::int64_t ey,
                       std::int64_t stride, std::int64_t* lo, std::int64_t* hi);

// A producer `producer` (template position) of the same iteration, or of iteration i - d for
// every d in [min_distance, max_distance].
struct CarriedEdge {
  std::uint32_t producer = 0;
  std::int64_t min_distance = 1;
  std::int64_t max_distance = 1;
};
struct TemplateTaskDeps {
  // Earlier positions this task conflicts with, less those another kept edge orders it after
  // (a transitive reduction: the same pairs ordered, as the per-task map's last-writer edges).
  std::vector<std::uint32_t> same_iteration;
  std::vector<CarriedEdge> carried;  // edges into earlier iterations (implied ones dropped)
};

class LoopTemplate {
 public:
  // Learns a template from two consecutive iterations. Fallback::none on success; the template is
  // based on `current` (its iteration index is the base). Fallback::nested_lengths when their
  // nested loops ran different trip counts (a data-dependent shape: paged attention's requests
  // of different context lengths), which no later pair is likely to repeat.
  static Fallback learn(const IterationRecord& previous, const IterationRecord& current,
                        LoopTemplate* out);
  // The same, taking `current` over on success (the loop driver's records: no copy of an
  // iteration's accesses); on any fallback `current` is left as it was.
  static Fallback learn(const IterationRecord& previous, IterationRecord&& current,
                        LoopTemplate* out);
  // Finds every pair's carried distances and the edges to replay for a loop that runs iterations
  // [first, last]. Fallback::none when exact.
  Fallback prove(std::int64_t first, std::int64_t last);
  // Whether prove(first, last) succeeded last, for this range: its edges stand.
  bool proven_for(std::int64_t first, std::int64_t last) const {
    return proven_ && first_ == first && last_ == last;
  }
  // A template kept from an earlier run (a learned one, maybe proven) made the template of
  // `current`, the first iteration of a loop in this run, when `current` is exactly what this
  // template predicts for its index up to the names of outer buffers: the same tasks, kernels,
  // tags and nested trip counts; every outer buffer renamed by one bijection (so the same accesses
  // share a buffer); every view the predicted one (a free read: its version); no buffer made by
  // an earlier iteration (the first iteration can read none). Then the template takes `current`
  // over as its base (the buffers' new names and views) and keeps its strides, free reads and,
  // moved with the base, its proof's range, so proven_for() tells whether its edges stand for the
  // new range: they order the same pairs, since conflicts depend only on which accesses share a
  // buffer and on their boxes relative to each other. Otherwise it returns why not and changes
  // nothing.
  Rebind rebind(IterationRecord& current);
  // Takes `neighbour` as the base, when it is the other record of the two learn() compared (the
  // iteration just before the base; after a first call, the old base just after it): the same
  // tasks, kernels, tags, nested trip counts and buffers (a fresh one at the same distance) are
  // checked, and its views are what the template predicts by construction (the strides are the
  // two records' difference). `neighbour` gets the old base, so a second call undoes the first.
  // Every prediction is the same after it, but the proof is not kept (prove() again). False,
  // changing nothing, when the records differ. A template learned from a loop's iterations 0 and
  // 1, rebased on iteration 0, can be proved for the whole loop and serve a later run from its
  // first iteration (LoopDriver::analyse_with_template).
  bool rebase(IterationRecord& neighbour);

  std::int64_t base_iteration() const { return base_.index; }
  std::uint32_t task_count() const { return static_cast<std::uint32_t>(base_.tasks.size()); }
  const TaskRecordLite& task(std::uint32_t position) const { return base_.tasks[position]; }
  const AccessRecord& access(std::uint32_t index) const { return base_.accesses[index]; }
  std::uint32_t access_count() const { return static_cast<std::uint32_t>(base_.accesses.size()); }
  const std::array<std::int64_t, kMaxDims>& stride(std::uint32_t access) const {
    return strides_[access];
  }
  const TemplateTaskDeps& deps(std::uint32_t position) const { return deps_[position]; }
  // Names the template's edges as they stand: a new value (unique in the process, never 0)
  // whenever learn(), rebase() or prove() may have changed them. What was derived from deps() under
  // one value (LoopDriver's routes) holds while it is the same.
  std::uint64_t deps_id() const { return deps_id_; }
  // True when some pair of tasks in different iterations conflicts (the proof's verdict).
  bool carries_dependence() const { return carries_; }
  // True when the template was kept from an earlier run (its base from rebind(), or a kept one
  // serving a run from its first iteration: reused()) and its kept proof stands (no prove()
  // since); false after learn() or prove(). The sim charges such a template's set-up apart
  // (OrchestratorWork::loop_rebind; docs/sim.md, kept_setup_ratio).
  bool rebound() const { return rebound_; }
  // A kept template serves this run as it is (LoopDriver::try_kept_from_start, before the
  // analysis starts): its proof, if it stands for the range, is a kept one.
  void reused() { rebound_ = true; }
  // Gives the outer buffers without a creator named `from` the name `to` (pairs, each `from`
  // once; the caller checks that distinct buffers keep distinct names), in the access records and
  // their tensors'
  // identity bytes: a kept template offered to a run before its first iteration under this run's
  // names of the run arguments (LoopDriver::try_kept_from_start). Every view stays as it was, so
  // the proof stands (conflicts depend on which accesses share a buffer and their boxes).
  void rename_outer(std::span<const std::pair<std::uintptr_t, std::uintptr_t>> renames);

  // The distances d at which access `x` in iteration i overlaps access `y` in iteration i - d (both
  // of one buffer): [*lo, *hi], open sides as +-kUnbounded. False when they never overlap, or
  // when the question has no exact answer here (then *why says which fall-back).
  bool pair_distances(std::uint32_t x, std::uint32_t y, std::int64_t* lo, std::int64_t* hi,
                      Fallback* why) const;
  std::uint32_t task_of_access(std::uint32_t access) const { return task_of_access_[access]; }

  // Prediction checks for iteration `iteration`, before the template is trusted for a task.
  bool predicts_task(std::uint32_t position, const KernelId kernels[3], bool inline_task,
                     int tensor_count) const;
  bool predicts_access(std::int64_t iteration, std::uint32_t access, ArgTag tag,
                       const BufferRef& buffer, const Tensor& tensor) const;
  // Whether `tensor` is exactly the view `access` predicts for `iteration` (box, layout, version).
  bool predicts_view(std::int64_t iteration, std::uint32_t access, const Tensor& tensor) const;

  // The placement offset of `access` in `iteration` along raw dimension `r`.
  std::int64_t offset(std::uint32_t access, int r, std::int64_t iteration) const {
    return places_[access].offset[r] +
           (iteration - base_.index) * strides_[access][static_cast<std::size_t>(r)];
  }
  // A write to the same box in every iteration: iteration i is ordered after iteration i - 1 by
  // its own edge, so only the first analysed iteration needs the producers from before.
  bool stationary_write(std::uint32_t access) const {
    const AccessRecord& a = base_.accesses[access];
    if (!is_write(a.tag) || a.buffer.kind != BufferRef::Kind::outer) return false;
    for (const std::int64_t s : strides_[access]) {
      if (s != 0) return false;
    }
    return true;
  }
  // A read of a buffer no task of the template writes: it conflicts with nothing inside the
  // loop, so its view may move freely (a paged KV cache read through a block table).
  bool free_read(std::uint32_t access) const { return free_[access]; }
  // The layout offset not folded into the placement (the same in every iteration).
  std::uint64_t rest(std::uint32_t access) const { return places_[access].rest; }
  // The box `access` sweeps over iterations [first, last], per raw dimension [lo, hi).
  struct Box {
    std::int64_t lo[kMaxDims] = {};
    std::int64_t hi[kMaxDims] = {};
  };
  Box footprint(std::uint32_t access, std::int64_t first, std::int64_t last) const;
  // Two accesses of one buffer with the same view in every iteration.
  bool same_view(std::uint32_t x, std::uint32_t y) const;

  // The tracked accesses to outer buffers, in access order, with what a start of analysis asks of
  // each that the template alone decides (LoopDriver::start_analysis): which earlier access asks
  // the same external-producer question, which buffer it names, whether its box is the same in
  // every iteration. Derived once and kept with the template until learn(), rebind() or rebase()
  // changes an access or a stride; rename_outer() keeps it (a bijection: no two buffers become
  // one or one two, and no view or stride moves).
  struct OuterAccess {
    std::uint32_t access = 0;
    // The first access whose question is the same (same_external_query): `access` itself when
    // it asks its own.
    std::uint32_t leader = 0;
    std::uint32_t buffer = 0;  // index into OuterAccesses::buffer_accesses
    bool fixed = false;        // every stride 0
  };
  struct OuterAccesses {
    std::vector<OuterAccess> list;
    std::vector<std::uint32_t> buffer_accesses;  // per distinct buffer: its accesses in `list`
  };
  const OuterAccesses& outer_accesses() {
    if (!outer_ready_) derive_outer();
    return outer_;
  }
  // Whether start_analysis's external-producer question is the same for accesses `a` and `b`
  // (both tracked, to outer buffers): the same buffer, both reads or both writes, and both free
  // reads (every write entry of the buffer, whatever the view) or neither with the same view in
  // every iteration (the same footprint, layout and version: the same entries meet both).
  bool same_external_query(std::uint32_t a, std::uint32_t b) const;

 private:
  // Drops the edges that other template edges imply (same reachability, fewer edges).
  void reduce_edges();
  void derive_outer();  // outer_accesses()

  IterationRecord base_;
  std::vector<std::array<std::int64_t, kMaxDims>> strides_;
  std::vector<Placement> places_;
  std::vector<bool> free_;
  std::vector<std::uint32_t> task_of_access_;
  std::vector<TemplateTaskDeps> deps_;
  std::uint64_t deps_id_ = 0;  // deps_id()
  bool carries_ = false;
  bool proven_ = false;   // prove() succeeded for [first_, last_]
  bool rebound_ = false;  // see rebound()
  std::int64_t first_ = 0;
  std::int64_t last_ = kUnbounded / 4;
  OuterAccesses outer_;       // outer_accesses(), when outer_ready_
  bool outer_ready_ = false;  // cleared wherever an access or a stride may change
};

// All iterations of one template access after the loop: a later access finds exactly the
// iterations whose box overlaps its own by division, not by visiting one entry per iteration.
struct AffineFamily {
  Tensor first;  // the view in the family's first iteration
  std::array<std::int64_t, kMaxDims> stride{};
  std::int64_t count = 0;  // iterations 0 .. count-1 of the family
  // The family iterations whose box may overlap `query` (same buffer): [*first_iteration,
  // *last_iteration]. Exact for the same raw layout; by byte interval otherwise (conservative).
  bool overlapping(const Tensor& query, std::int64_t* first_iteration,
                   std::int64_t* last_iteration) const;
};

}  // namespace tmr::detail::loops
