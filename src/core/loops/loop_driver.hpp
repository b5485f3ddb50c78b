// parallel_for inside the orchestrator: the loop stack, learning, and analysed submits.
//
// The owner of a loop's analysis is the outermost running loop that has not fallen back (inner
// loops of an analysed loop are part of its iterations). The first iterations run under per-task
// analysis while their submits are recorded; once two consecutive iterations form an affine
// template and its proof is exact, each later task is checked against the prediction and, when
// it matches, its producers come from the template (same-iteration and carried edges to analysed
// iterations), from the external producers found once for the loop's footprint, and from the
// creators of its tensors — no TensorMap lookup. Its accesses to outer buffers are not inserted
// into the TensorMap either: one affine-family entry per template access stands for all analysed
// iterations (affine_families.hpp), and every later lookup asks the family table too.
// The driver wraps the dependence unit (dependence/): it adds producers to the discovery in
// progress and reads the map only through it; of the rest of the engine it sees the rings.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "core/dependence/dependence.hpp"
#include "core/loops/affine_families.hpp"
#include "core/loops/affine_loop.hpp"
#include "core/loops/loop_template.hpp"
#include "core/ring.hpp"
#include "tmr/runtime.hpp"

// The AVX2 replay compare (LoopDriver::exact_wide) exists on x86-64 only; elsewhere the 16-byte
// compare is the one there is.
#if defined(__x86_64__)
#define TMR_WIDE_REPLAY 1
#define TMR_WIDE_TARGET [[gnu::target("avx2")]]
#else
#define TMR_WIDE_REPLAY 0
#define TMR_WIDE_TARGET
#endif

namespace tmr::detail {

// What a submit's kernels resolve to once checked against the registry (OrchestratorCore::Plan):
// here so a template position can keep the one its first submit of a run was checked with.
struct SubmitPlan {
  KernelFn fns[3] = {nullptr, nullptr, nullptr};
  KernelId kernels[3] = {kNoKernel, kNoKernel, kNoKernel};
  std::uint8_t mask = 0;
  std::uint8_t active = 0;  // active_slot_count(mask): subtasks per block
  TaskShape shape = TaskShape::aiv;
  bool inline_task = false;
  // `fns` as the orchestrator keeps them for its lifetime (OrchestratorCore::kept_fns), set
  // with them by replan; null for a plan made elsewhere (alloc). A wide replayed record names
  // them instead of copying them into its own (OrchestratorCore::submit_wide).
  const KernelFn* kept = nullptr;
};

class LoopDriver {
  struct TaskPlan;  // one template task (below)

 public:
  // A template position's plan as the replayed submit holds it (fast_position(), replay_into).
  using ReplayPlan = TaskPlan;
  // What one template position's tasks share, prepared once for the orchestrator's analysed
  // submit (OrchestratorCore::submit_analysed): the task record's header (kernel ids, tensor
  // count, tags: its first 32 bytes; the kernel functions come from the plan or the record's
  // image, the counts and pointers after it from each admit), copied into each later task's
  // record in one go. The kernels and
  // tags are what the replay check compares, so every task of the position has this header.
  // Filled by the position's first analysed submit (`ready` false until then).
  struct PreparedTask {
    static constexpr std::size_t kHeaderBytes = offsetof(TaskRecord, scalar_count);
    alignas(8) unsigned char header[kHeaderBytes];
    bool ready = false;
    // Where the position's fresh outputs go in its heap range (OrchestratorCore::OutputLayout's
    // offsets and total), made by the position's first wide replayed submit
    // (OrchestratorCore::submit_wide) from its outputs' specs. replay_wide compares every
    // output spec byte for byte with the template's, so the layout is every such submit's.
    // Cleared with `ready` (reuse_plans).
    bool layout_ready = false;
    // The checked plan of the position's kernels (OrchestratorCore::submit_wide keeps its first
    // one of the run): a later submit naming the same kernels at this wide position skips
    // OrchestratorCore::replan (wide_plan()). Cleared with `ready` (reuse_plans).
    bool plan_ready = false;
    // `ready`, `plan_ready` and (for a position with fresh outputs) `layout_ready` all set by
    // this position's wide replayed submits: OrchestratorCore::submit_wide's one test for them.
    // Cleared with each of them.
    bool wide_ready = false;
    std::uint64_t out_total = 0;
    std::uint64_t out_at[kMaxTensorArgs];
    SubmitPlan plan;
  };

  // `enabled`: RuntimeConfig::parallel_for_analysis (off: every loop runs per task).
  LoopDriver(std::span<Ring* const> rings, Dependence& dependence, bool enabled);

  void reset();  // between runs
  // Whether replay_into's exact compare runs in 32-byte words (exact_wide: the CPU has AVX2);
  // the orchestrator sets it at every run's start.
  void set_wide_compare(bool wide) { wide_compare_ = wide; }
  // The run's argument tensors (OrchestrationArgs), after reset(): a template kept by an earlier
  // run names its run-argument buffers by index too, so a later run can offer it under this
  // run's buffers before the loop's first iteration (try_kept_from_start).
  void run_arguments(std::span<const Tensor> tensors);
  void fill_stats(RunStats* stats) const;

  // ---- parallel_for ----
  // `next_sequence`: the sequence number the loop's first task will get.
  void begin_loop(std::int64_t iterations, std::uint64_t next_sequence);
  // Inline for an analysed iteration (the common case); the rest out of line. True when it took
  // the slow path, which may start an analysis (started()).
  bool begin_iteration(std::int64_t index) {
    Loop& loop = *top_;
    if (!loop.steady) [[unlikely]] {
      // A transparent loop (inside an owning one, or the analysis off) begins nothing: tested
      // here, since the call's saved registers alone were ~19 instructions an iteration.
      if (!loop.transparent) begin_iteration_slow(index);
      return true;
    }
    ++iterations_;
    loop.iteration = index;
    loop.position = 0;
    loop.table->iteration_start.push_back(loop.table->tasks.size());
    return false;
  }
  // The end of an iteration, and the next one's begin, for a steady loop, inline; the caller
  // (OrchestratorCore::parallel_for's steady stretch) counts them (count_steady). end_steady:
  // true when the iteration that ran ends as a steady analysed one (steady, every template task
  // submitted); the entries it deferred, if any, are compacted when due (settle_deferred, as
  // end_iteration_slow would). False changes nothing: end_iteration_slow ends the iteration.
  // A steady loop's iterations need no more: its state, template and owner stay as they are.
  bool end_steady() {
    const Loop& loop = *top_;
    if (!loop.steady || loop.position != loop.plan_count) [[unlikely]] {
      return false;
    }
    // deferred_.size() changed this iteration, compared in bytes: no scaling by the entry size.
    if (deferred_bytes() != iteration_deferred_bytes_) settle_deferred();
    return true;
  }
  // After end_steady() returned true: begins iteration `index` as begin_iteration would.
  void begin_steady(std::int64_t index) {
    Loop& loop = *top_;
    loop.iteration = index;
    loop.position = 0;
    loop.table->iteration_start.push_back(loop.table->tasks.size());
  }
  // `ended` end_steady() calls that returned true and `begun` begin_steady() calls.
  void count_steady(std::uint64_t ended, std::uint64_t begun) {
    iterations_analysed_ += ended;
    iterations_ += begun;
  }
  // Ends an iteration end_steady() did not (it may start an analysis: started()).
  // A transparent loop ends nothing (as begin_iteration: no call).
  void end_iteration() {
    if (!top_->transparent) end_iteration_slow();
  }
  // The deferred list's length (tests: its compaction, settle_deferred).
  std::size_t deferred_count() const { return deferred_.size(); }
  // The template whose analysis the last begin_iteration() or end_iteration() started, once
  // (nullptr otherwise): the orchestrator charges its set-up on a virtual-time platform
  // (OrchestratorWork::loop_setup).
  bool started() const { return started_ != nullptr; }
  const loops::LoopTemplate* take_started() {
    const loops::LoopTemplate* started = started_;
    started_ = nullptr;
    return started;
  }
  void end_loop();
  // get/set_tensor_data in a body: after a set, or a get of a buffer the loop writes (its value
  // would depend on the loop's own tasks), the rest of the loop runs per task. True when the
  // access needs no dependence discovery: a read, in an analysed iteration, of an external buffer
  // that had no live writer when the analysis first saw it (none can appear while it lasts).
  // Inline for the read that repeats the loop's last quiet one (the block table read once per
  // iteration): the slow path's tests in the same order, its search as one compare.
  bool element_access(bool write, const Tensor& tensor) {
    if (!write && repeats_quiet_read(tensor)) return true;
    return element_access_slow(write, tensor);
  }
  // element_access(false, tensor)'s inline case alone, changing nothing: also the orchestrator's
  // quiet element read (OrchestratorCore::read_quiet_element).
  bool repeats_quiet_read(const Tensor& tensor) const {
    if (owner_ == nullptr || !recorders_.empty()) return false;
    const Loop& loop = *owner_;
    return loop.state == Loop::State::analysing &&
           reinterpret_cast<std::uintptr_t>(tensor.buffer()) == loop.last_quiet &&
           !tensor.producer().valid();
  }
  [[gnu::noinline]] bool element_access_slow(bool write, const Tensor& tensor);

  // ---- submit hooks ----
  // True when this submit is covered by the template (its producers come from collect()). Records
  // the submit when the loop is still learning. Call after validation, before admission.
  bool plan_submit(const KernelId kernels[3], bool inline_task, const Args& args) {
    planned_analysed_ = false;
    if (owner_ == nullptr) return false;
    if (!recorders_.empty()) record_outer(kernels, inline_task, args);
    Loop& loop = *owner_;
    if (loop.state == Loop::State::learning) {
      plan_learning(loop, kernels, inline_task, args);
      return false;
    }
    // Inline when every argument is the template's record replayed (the common case); anything
    // else (a mismatch, another spelling of a view, a free read leaving its stride) out of line.
    // The position's plan is indexed once here and handed on.
    if (loop.position < loop.plan_count) {
      TaskPlan& task = loop.task_plans[loop.position];
      if ((task.replayable && replays<false>(loop, task, kernels, inline_task, args)) ||
          (task.closed_replayable && replays<true>(loop, task, kernels, inline_task, args))) {
        return true;
      }
    }
    return plan_analysed(loop, kernels, inline_task, args);
  }
  // The fast analysed submit's check (OrchestratorCore::submit_in_loop, before plan_submit), only
  // after fast_position() said yes (the current position is one TaskPlan::fast allows and no
  // learning loop records the submit; not tested again here): true when every argument is the
  // template's record replayed (replays<false>'s test, or a stricter one: TaskPlan::exact).
  // Inline: OrchestratorCore::submit_replayed runs it first, so a replayed submit makes one call
  // past the dispatcher. The exact compare copies nothing: the submit's record names the
  // position's record image (named_tensors). The masked one copies each argument tensor as it
  // compares it to where the next admit's record of `ring` keeps its tensors (Ring::tensor_storage
  // for that slot and this count: inline or the slot's spill area; the caller checked the ring
  // has room, so that slot's task has retired). On true the submit is covered as after
  // plan_submit (prepared(), direct_producers, submitted_covered, grow_covered; cover_masks
  // before collect() or record()). On false that storage may hold a partial copy (the record of
  // no live task, rewritten by whatever admits next) and the position's images are stale, as
  // after a failed replays: plan_submit decides as if this had not run.
  // `task`: the current position's plan (fast_position()'s), indexed once per submit. `fns`: the
  // kernel functions of `kernels`, which an image taken for this submit keeps (RecordImage::fns).
  // No inline-task (alloc) test: a fast position is a kernel task with no fresh outputs, whose
  // kernels name at least one kernel, and an alloc names none and passes only `out` tensors, so
  // the kernels' and the tags' compares already refuse it.
  bool replay_into(ReplayPlan& task, const KernelId kernels[3], const KernelFn fns[3],
                   const Args& args, Ring& ring);
  // ---- the pattern form (OrchestratorCore::parallel_for with a TaskPattern) ----
  bool enabled() const { return enabled_; }
  // After a submit of the owner loop (its position moved on): the plan of the position it took,
  // when that submit passed the exact replay compare in this iteration and named the position's
  // record image (replay_into's exact branch, name_record); a null plan otherwise.
  loops::TrustKey exact_pass() const {
    if (owner_ == nullptr || owner_ != top_ || !replaying_) return {};
    const Loop& loop = *owner_;
    if (loop.position == 0 || loop.position > loop.plan_count) return {};
    const TaskPlan& task = loop.task_plans[loop.position - 1];
    if (!task.exact || task.image_iteration != loop.iteration ||
        task.record_iteration != loop.iteration) {
      return {};
    }
    return {&task, loop.first_analysed};
  }
  // The current position, when a pattern loop's submit may take it without the compare: the
  // owner is the pattern's loop and analysing, the position is the one `key` verified
  // (loops::AffineLoop::trusted), still fast and exact, and its images and record image stand for
  // the previous iteration.
  [[gnu::always_inline]] bool trusted_position(ReplayPlan** out, const loops::TrustKey& key) {
    if (!replaying_ || owner_ != top_) return false;
    Loop& loop = *owner_;
    if (loop.position >= loop.plan_count || loop.first_analysed != key.first_analysed) return false;
    TaskPlan& task = loop.task_plans[loop.position];
    if (&task != key.plan || !task.fast || !task.exact ||
        task.image_iteration + 1 != loop.iteration || task.record_iteration + 1 != loop.iteration) {
      return false;
    }
    *out = &task;
    return true;
  }
  // trusted_position for an iteration that a steady stretch began right after the same loop's
  // trusted submit of `key`'s position in the iteration before (OrchestratorCore::run_loop's
  // trusted pattern loop, docs/design.md "A verified single-task pattern in the loop"): the
  // owner, its analysis, the position and the key are that submit's (each changes only where
  // the loop stops being steady), so only the position's own state is tested again: `fast`,
  // and the image and the record named one iteration back.
  [[gnu::always_inline]] bool trusted_again(ReplayPlan** out, const loops::TrustKey& key) {
    const Loop& loop = *owner_;
    TaskPlan& task = *const_cast<TaskPlan*>(static_cast<const TaskPlan*>(key.plan));
    if (!task.fast || task.image_iteration + 1 != loop.iteration ||
        task.record_iteration + 1 != loop.iteration) {
      return false;
    }
    *out = &task;
    return true;
  }
  // replay_into's exact branch without its compare, for a trusted_position: the images move one
  // iteration on (as the compare moves them) and the record names the position's image.
  void replay_trusted(ReplayPlan& task, const KernelFn fns[3], const Args& args, Ring& ring);
  // ---- the compare-free wide submit (loops::PatternLoop, OrchestratorCore::submit_pattern_task)
  // After a submit of the owner loop, with clear_wide_pass() before it: that submit's position,
  // when its replay_wide compare passed (its images, fresh-output specs, creators and closed reads
  // checked) and the position's routes are ones the pattern proves structurally: no argument in
  // `indexed` (a view the pattern moves by a table entry, not by a step) compared by image, and
  // no reference to an earlier task's output (`refs`) an outer or closed read. A null key
  // otherwise.
  void clear_wide_pass() { wide_passed_ = nullptr; }
  loops::WidePass wide_pass(std::uint32_t indexed, std::uint32_t refs) const {
    if (wide_passed_ == nullptr || owner_ == nullptr || !replaying_) return {};
    const Loop& loop = *owner_;
    if (loop.position == 0 || loop.position > loop.plan_count) return {};
    const TaskPlan& task = loop.task_plans[loop.position - 1];
    if (wide_passed_ != &task || task.fast || !task.wide) return {};
    if (((task.outer_tracked | task.fresh_tracked) & indexed) != 0 ||
        ((task.outer_tracked | task.deferred_reads) & refs) != 0) {
      return {};
    }
    return {{&task, loop.first_analysed}, loop.iteration, loop.position - 1};
  }
  // Whether the template positions first + j * stride (j < count) repeat position `first` moved
  // affinely in j: the same kernels, tags and routes (argument masks, wide and not fast); per
  // compared argument the same mask, the same image bytes outside the box-offset words, and
  // start and stride in those words, and (a buffer the iteration made) the creator's position,
  // affine in j; per closed read the same buffer, creator, version and dtype; per fresh output
  // the same spec. A nested pattern's tasks at one iteration of the owner (PatternLoop's runs).
  // Remembered (run_proofs_) until the plans may change (forget_runs): a nested pattern loop
  // runs once per owner iteration over the same positions.
  bool run_affine(std::uint32_t first, std::uint32_t stride, std::uint32_t count);
  // The current position, when a pattern loop's submit may take the wide path without the
  // compare: the owner analysing with no recorder, in iteration `iteration` at position
  // `position` (what the pattern's verified task predicts for this submit), of the analysis of
  // `key`; the position wide, not fast, with its plan, layout and header prepared
  // (PreparedTask::wide_ready). `same`: the position `key` verified (a pattern loop that owns the
  // analysis: one position a task, verified at consecutive iterations), else a position of a run
  // run_affine proved (nested: verified at consecutive positions of one iteration).
  bool trusted_wide(ReplayPlan** out, const loops::TrustKey& key, std::int64_t iteration,
                    std::uint32_t position, bool same) {
    if (!replaying_) return false;
    Loop& loop = *owner_;
    if (loop.position != position || position >= loop.plan_count || loop.iteration != iteration ||
        loop.first_analysed != key.first_analysed) {
      return false;
    }
    TaskPlan& task = loop.task_plans[position];
    if (task.fast || !task.wide || !task.prepared.wide_ready) return false;
    if (same && (&task != key.plan || owner_ != top_)) return false;
    // A run: the verified position is one of this loop's (the same plans, not another owner's).
    const auto plan = reinterpret_cast<std::uintptr_t>(key.plan);
    const auto plans = reinterpret_cast<std::uintptr_t>(loop.task_plans.data());
    if (plan < plans || plan >= plans + sizeof(TaskPlan) * loop.plan_count) return false;
    *out = &task;
    return true;
  }
  // trusted_wide for the tasks of one pattern iteration at once (OrchestratorCore::
  // submit_pattern_iteration), before any of them is submitted: how many leading tasks t of
  // `loop` (a loops::PatternLoop: key, owner_iteration, owner_position, same_position) pass
  // trusted_wide's tests at the position `t` on from the current one, which is where task t
  // stands once the t before it took the trusted wide submit (each counts one position:
  // submitted_covered). Nothing such a submit does changes what the tests read (replaying_, the
  // owner's iteration, first_analysed, plan_count, a position's fast, wide and wide_ready, the
  // plans' storage: only a fall-back, a new analysis, build_plans, place_images and
  // plan_analysed write them, none of which the trusted wide path reaches), so task t would
  // pass trusted_wide after those submits exactly when it passes here. `*first`: the current
  // position's plan (task t's is first[t]); set when the count is not zero.
  template <class Pattern>
  int trusted_tasks(ReplayPlan** first, const Pattern& loop, std::int64_t i) const {
    if (!replaying_) return 0;
    Loop& owner = *owner_;
    const std::uint32_t start = owner.position;
    const std::int64_t iteration = owner.iteration;
    const std::int64_t analysed = owner.first_analysed;
    const std::uint32_t plan_count = owner.plan_count;
    TaskPlan* const plans = owner.task_plans.data();
    const auto lowest = reinterpret_cast<std::uintptr_t>(plans);
    const std::uintptr_t end = lowest + sizeof(TaskPlan) * plan_count;
    const bool innermost = owner_ == top_;
    const int count = loop.task_count();
    int t = 0;
    for (; t < count; ++t) {
      const std::uint32_t position = start + static_cast<std::uint32_t>(t);
      const loops::TrustKey& key = loop.key(t);
      if (loop.owner_position(t, i) != position || position >= plan_count ||
          loop.owner_iteration(t, i) != iteration || key.first_analysed != analysed) {
        break;
      }
      const TaskPlan& task = plans[position];
      if (task.fast || !task.wide || !task.prepared.wide_ready) break;
      if (loop.same_position(t) && (&task != key.plan || !innermost)) break;
      const auto plan = reinterpret_cast<std::uintptr_t>(key.plan);
      if (plan < lowest || plan >= end) break;
    }
    if (t > 0) *first = plans + start;
    return t;
  }
  // replay_wide's outcome for a trusted_wide position, without its compare and checks: every
  // argument copied to `tensors`, the position's images left stale (a later compare places them
  // afresh), and what the wide path reads set as replay_wide sets it.
  ReplayPlan* replay_wide_trusted(const Args& args, Tensor* tensors) {
    Loop& loop = *owner_;
    TaskPlan& task = loop.task_plans[loop.position];  // trusted_wide() or trusted_tasks() held
    std::memcpy(static_cast<void*>(tensors), &args.tensor(0),
                sizeof(Tensor) * static_cast<std::size_t>(task.access_count));
    task.image_iteration = kStaleImages;
    family_mask_ = task.family;
    deferred_mask_ = task.deferred_reads | task.fresh_tracked;
    covered_ = &task;  // analysed: submitted_covered counts it
    ++tasks_wide_;
    return &task;
  }
  // Counts a pattern loop's route (RunStats::pattern_loops, pattern_lambda_reasons).
  void note_pattern(loops::PatternRoute route) {
    ++patterns_;
    ++pattern_routes_[static_cast<int>(route)];
  }
  void note_trusted() { ++tasks_trusted_; }
  void note_trusted_iteration() { ++iterations_trusted_; }

  // After replay_into returned true: the RecordImage base the submit's record names instead of
  // holding its tensors (TaskRecord::tensors), and how many iterations its tensors lie past that
  // base (TaskRecord::image_distance); null when the record's own storage got the copy (a masked
  // compare, or no image to be had: kMaxRecordImages in use).
  Tensor* named_tensors() const { return named_; }
  std::uint32_t named_distance() const { return named_distance_; }
  // The named image's kernel functions (RecordImage::fns): its tensors are its first member.
  const KernelFn* named_fns() const {
    static_assert(offsetof(RecordImage, base) == 0);
    return reinterpret_cast<const RecordImage*>(named_)->fns;
  }
  // replay_into's first tests, inline: whether the current position may take it at all
  // (TaskPlan::fast). On true `*task` is the position's plan, handed on to replay_into so the
  // position is indexed once. (A bool and the plan apart, not a pointer that may be null: the
  // dispatcher's wide_position() test then shares these loads, and no null test is added.)
  bool fast_position(ReplayPlan** task) {
    Loop& loop = *owner_;
    if (loop.state != Loop::State::analysing || !recorders_.empty() ||
        loop.position >= loop.plan_count) {
      return false;
    }
    TaskPlan& plan = loop.task_plans[loop.position];
    *task = &plan;
    return plan.fast;
  }
  // Whether the owner of the submits is analysing and no learning loop records them
  // (fast_position()'s and wide_position()'s first tests), kept as one byte: refreshed wherever
  // owner_, recorders_ or the owner's state may change (refresh_replaying). Read by
  // Orchestrator::submit (OrchestratorCore::loop_ready).
  bool replaying() const { return replaying_; }
  // fast_position() when replaying() holds: the position tests alone.
  bool replay_position(ReplayPlan** task) {
    Loop& loop = *owner_;
    if (loop.position >= loop.plan_count) return false;
    TaskPlan& plan = loop.task_plans[loop.position];
    *task = &plan;
    return plan.fast;
  }
  // The wide replayed path's position test (OrchestratorCore::submit_wide), after
  // fast_position() said no: TaskPlan::wide.
  bool wide_position() const {
    const Loop& loop = *owner_;
    return loop.state == Loop::State::analysing && recorders_.empty() &&
           loop.position < loop.plan_count && loop.task_plans[loop.position].wide;
  }
  // The plan a wide position (not TaskPlan::fast) kept from its first submit this run
  // (PreparedTask::plan_ready), or null: OrchestratorCore::submit_checked's test before replan.
  const SubmitPlan* wide_plan() const {
    const Loop& loop = *owner_;
    if (loop.state != Loop::State::analysing || !recorders_.empty()) return nullptr;
    return replaying_wide_plan();
  }
  // wide_plan() when replaying() holds (OrchestratorCore::submit_looped's new kernels): the
  // position's tests alone, as replay_position() beside fast_position().
  const SubmitPlan* replaying_wide_plan() const {
    const Loop& loop = *owner_;
    if (loop.position >= loop.plan_count) return nullptr;
    const TaskPlan& task = loop.task_plans[loop.position];
    return !task.fast && task.wide && task.prepared.plan_ready ? &task.prepared.plan : nullptr;
  }
  // replay_into for a TaskPlan::wide position (out of line): the same tests and copy, and also
  // fresh outputs (their specs byte for byte the template's), buffers the same iteration made
  // (their creator by the loop's table, as wide_fresh_view) and closed free reads (buffer,
  // version, dtype, as replays<true>). On true it has set what the wide path reads (family_mask_,
  // deferred_mask_, covered_); after wide_state(), which sets the rest replays sets (the other
  // masks, made_), direct_producers, collect() and record() take it as any covered submit (its
  // fresh buffers' and closed reads' entries deferred). On false as
  // replay_into: plan_submit decides as if this had not run. Returns the position's plan
  // (covered_), which the caller then holds in a register, or null on a miss. Hidden: its one
  // caller (OrchestratorCore::submit_wide) is in the library, which then calls it directly, not
  // through the PLT. Not inline: inlined, submit_wide grew past GCC's limits, which then left
  // graph::push a call (+10 instructions a wide submit in all, measured).
  [[gnu::visibility("hidden")]] ReplayPlan* replay_wide(const KernelId kernels[3], const Args& args,
                                                        Tensor* tensors);
  // The fresh outputs of the submit replay_wide covered (argument bits).
  std::uint32_t covered_outs() const { return covered_->outs; }
  static std::uint32_t covered_outs(const ReplayPlan& task) { return task.outs; }
  // After replay_into: what plan_submit sets for collect() and record() (the fast path's fall-out).
  void cover_masks() {
    const TaskPlan& task = *covered_;
    family_mask_ = task.family;
    quiet_mask_ = task.family & task.quiet;
    deferred_mask_ = 0;  // TaskPlan::fast: no fresh buffers, no closed free reads
    tracked_mask_ = task.tracked;
    fresh_mask_ = 0;
  }
  // After replay_into, once the task is admitted: submitted() for the loop that owns it (no
  // learning loop records it), and record() for a position TaskPlan::fast allows (families take
  // every tracked access, nothing is deferred or goes into the map).
  // replay_into covered it, so it is an analysed task (no planned_analysed_ flag to test).
  [[gnu::always_inline]] void submitted_covered(TaskId id) {
    Loop& loop = *owner_;
    loop.table->tasks.push_back(id);
    ++loop.position;
    ++tasks_analysed_;
    planned_analysed_ = false;
  }
  // direct_producers for a submit replay_into covered (a TaskPlan::fast position, so direct):
  // without template edges (TaskPlan::edges) its position's producer list, each once already, is
  // filtered by liveness alone.
  [[gnu::always_inline]] int fast_producers(TaskSlot** out, int capacity) const {
    const TaskPlan& task = *covered_;
    if (task.edges) {
      if (task.one_edge && task.producers.empty()) return one_edge_producer(task, out, capacity);
      return direct_producers_with_edges(out, capacity);
    }
    int n = 0;
    for (const TaskId id : task.producers) {
      if (!live(id)) continue;
      if (n == capacity) return -1;
      out[n++] = &rings_[id.ring()]->slot(id.local());
    }
    return n;
  }
  // grow_families for the replayed submit: once every family has its first iteration and the
  // position has at most four (a slice write's tasks have two to four), four unconditional
  // increments, no count, branch or jump per family: the list is padded to four with
  // spare_family_, which nothing reads (TaskPlan::grow_four). Otherwise pad_grow, out of line.
  // `task`: the plan replay_into covered (covered_), as the caller holds it.
  [[gnu::always_inline]] void grow_covered(ReplayPlan& task, const Args& args) {
    if (!task.grow_four) [[unlikely]] {
      pad_grow(args);
      return;
    }
    const TaskPlan::Grow* const grow = task.grow;
    loops::FamilyTable::grow(grow[0].family);
    loops::FamilyTable::grow(grow[1].family);
    loops::FamilyTable::grow(grow[2].family);
    loops::FamilyTable::grow(grow[3].family);
  }
  // grow_covered's other case: grow_families, then, with at most four families, the list padded
  // with spare_family_ and grow_four set.
  [[gnu::noinline]] void pad_grow(const Args& args);
  // The one producer fast_producers may list for the submit replay_into covered: its position's
  // single fixed external producer when it has no template edges (whether it is still live is
  // not tested); TaskId() otherwise.
  // `task`: the plan replay_into covered (covered_), as the caller holds it.
  static TaskId single_producer(const ReplayPlan& task) { return task.single; }
  // Adds the producers of a covered submit (plan_submit returned true) to the dependence
  // discovery in progress (instead of Dependence::collect): its tensors' creators, template
  // edges, the loop's external producers, and map lookups only for accesses the template does not
  // cover. Fills `regions[k]` for every tracked argument no affine family stands for. A non-ok
  // Status names a tensor whose creator's scope has ended.
  Status collect(const Args& args, AccessRegion* regions);
  // The producers of a covered submit when none needs a TensorMap or family lookup: template
  // edges, then collect()'s routes that need none (a direct position's list; creators that are
  // live with their scope open; fresh buffers made by analysed iterations; stationary writes;
  // fixed or absent external producers), each live one once, into `out`, in collect()'s order.
  // Returns how many, or -1 when some access needs a lookup, a creator would be an error, or
  // there are more than `capacity` (then collect() decides, as for any covered submit).
  // When it returns n >= 0 it has also filled `regions` as collect() would for record().
  // Always inlined: GCC left it a call in OrchestratorCore::submit_wide (~49 instructions a wide
  // submit with the call's own).
  [[gnu::always_inline]] int direct_producers(const Args& args, TaskSlot** out, int capacity,
                                              AccessRegion* regions) const;
  // direct_producers for the submit replay_wide covered (OrchestratorCore::submit_wide): the
  // same producers (a set: each live one once; the order may differ) from the position's wide
  // list (TaskPlan::wide_listed), with no duplicate search: replay_wide proved every creator of
  // an argument is the list's task of its position. -1 as direct_producers. Fills no region
  // (none is read: a wide position's accesses all go into families or are deferred).
  [[gnu::always_inline]] int wide_producers(const Args& args, TaskSlot** out, int capacity,
                                            AccessRegion* regions);
  // After a replay_wide that passed, before any step other than the wide path's own that reads
  // the covered submit's state (direct_producers, collect, record): what replay_wide leaves
  // unwritten, since OrchestratorCore::submit_wide's usual steps read none of it. quiet_mask_,
  // tracked_mask_ and fresh_mask_ from the position's plan, and made_[k] of each fresh argument,
  // the iteration, as replay_wide proved (its stores there cost its loop ~3 reloads an
  // argument).
  void wide_state() {
    const TaskPlan& task = *covered_;
    quiet_mask_ = task.family & task.quiet;
    tracked_mask_ = task.tracked;
    fresh_mask_ = task.fresh_tracked;
    for (std::uint32_t todo = task.fresh_tracked; todo != 0; todo &= todo - 1)
      made_[std::countr_zero(todo)] = owner_->iteration;
  }
  // direct_producers out of line (wide_producers for a position without a wide list).
  [[gnu::noinline]] int direct_producers_call(const Args& args, TaskSlot** out, int capacity,
                                              AccessRegion* regions) const;
  // direct_producers past the template edges (`n` listed) for a position that is not direct.
  int routed_producers(const Args& args, TaskSlot** out, int n, int capacity,
                       AccessRegion* regions) const;
  // direct_producers past the template edges for a TaskPlan::created position: its steps.
  // Always inlined with direct_producers (a call in submit_wide cost ~25 instructions a submit).
  [[gnu::always_inline]] int created_producers(const Args& args, TaskSlot** out, int n,
                                               int capacity) const;
  [[gnu::always_inline]] bool list_once(TaskSlot** out, int* n, int capacity, TaskId id) const;
  // direct_producers' template edges, then a direct position's list (each live one once).
  int direct_producers_with_edges(TaskSlot** out, int capacity) const;
  // direct_producers_with_edges for a TaskPlan::one_edge position without a producer list (a
  // chain of accumulating tasks, one an iteration): the one task its carried edge names while
  // it lives, inline. The out-of-line walk cost a replayed chain task ~80 instructions, more
  // than the plain submit's lookup saved.
  [[gnu::always_inline]] int one_edge_producer(const TaskPlan& task, TaskSlot** out,
                                               int capacity) const {
    const Loop& loop = *owner_;
    const std::int64_t from = loop.iteration - task.edge_distance;
    if (from < loop.first_analysed) return 0;  // edge_producers: its distance past `last`
    const TaskId id = loop.table->at(from, task.edge_producer);
    if (!live(id)) return 0;
    if (capacity < 1) return -1;
    out[0] = &rings_[id.ring()]->slot(id.local());
    return 1;
  }
  // Sets TaskPlan::edges and the one_edge fields from the template's edges of `position`.
  static void set_edges(const loops::LoopTemplate& tmpl, TaskPlan& task, std::uint32_t position);
  // direct_producers' template edges alone: how many listed, or -1 past `capacity`. Always
  // inlined: as a call in direct_producers it cost paged attention's analysed orchestration 1.3%
  // more instructions (an15).
  [[gnu::always_inline]] int edge_producers(TaskSlot** out, int capacity) const;
  // Records a covered submit's accesses (instead of Dependence::record): accesses an affine family
  // stands for grow it, the rest go into the TensorMap.
  // Inline when families take every tracked access and nothing is deferred (slice writes).
  void record(TaskSlot& task, const Args& args, const AccessRegion* regions) {
    if (deferred_mask_ != 0 || (tracked_mask_ & ~family_mask_) != 0) {
      record_slow(task, args, regions);
      return;
    }
    grow_families(args);
  }
  // record() when records_into_map() is false (OrchestratorCore::submit_wide: every access of a
  // wide replayed submit goes into a family or is deferred), inline: the deferred entry and the
  // families' growth, what record_slow does then, without its call and tests.
  [[gnu::always_inline]] void record_unmapped(TaskSlot& task, const Args& args) {
    if (deferred_mask_ != 0) deferred_.push_back(Deferred{&task, task.id, deferred_mask_});
    if (family_mask_ != 0) grow_families(args);
  }
  // Whether record() puts any of the covered submit's accesses into the TensorMap (whose entries
  // read the box through regions[k].tensor); false when families and deferral take them all.
  // Always false after a replay_wide that passed (see there): OrchestratorCore::submit_wide
  // records by record_unmapped() without asking.
  bool records_into_map() const {
    const std::uint32_t skip = family_mask_ | deferred_mask_;
    return (skip & tracked_mask_) != tracked_mask_;
  }
  // Every submit while a loop is active, after admission.
  [[gnu::always_inline]] void submitted(TaskId id) {
    if (owner_ != nullptr) {
      note_submitted(id);
      if (!recorders_.empty()) note_recorders(id);
    }
  }
  bool active() const { return owner_ != nullptr; }
  // The prepared record of the position plan_submit just covered (it returned true); valid until
  // submitted().
  PreparedTask& prepared() { return covered_->prepared; }
  // prepared() for the plan replay_into covered, as the caller holds it (`task`: covered_).
  static PreparedTask& prepared(ReplayPlan& task) { return task.prepared; }
  // Inserts the TensorMap entries analysed submits deferred (accesses to buffers made inside the
  // analysed loop) before anything may look them up: at a fall-back, and after the loop ended
  // before the first per-task lookup (a plain submit, an element access, wait_for) or the next
  // loop. Until then they wait: a scope that ends first drops those nobody can name any more.
  void flush_deferred() {
    if (!deferred_.empty()) flush_deferred_entries();
  }
  // After a scope ended: with no analysis running, drops the waiting deferred entries whose
  // buffers can no longer be named (every creator's scope has ended) or whose task retired.
  void scope_ended() {
    if (owner_ == nullptr && !deferred_.empty()) {
      prune_deferred(0);
      iteration_deferred_bytes_ = deferred_bytes();
    }
  }

 private:
  struct External {
    MapEntry entry;  // a copy: region, byte interval, task
  };
  // The wide replay check compares an argument's Tensor bytes with its predicted image in
  // 16-byte words (four uint32 lanes; SSE2 on x86-64) at these byte positions: the last word
  // overlaps the one before it (whose mask covers only the bytes before the last word's), so no
  // load passes the end of the Tensor. The box offsets lie in words kStepWord and kStepWord + 1.
  using Word = std::uint32_t __attribute__((vector_size(16)));
  static constexpr int kWords = 7;
  static constexpr std::size_t kWordAt[kWords] = {0, 16, 32, 48, 64, 80, sizeof(Tensor) - 16};
  static constexpr int kStepWord = 3;
  static_assert(std::is_trivially_copyable_v<Tensor> && std::is_standard_layout_v<Tensor>);
  static bool zero_word(const Word& w) {
    std::uint64_t halves[2];
    std::memcpy(halves, &w, sizeof(halves));
    return (halves[0] | halves[1]) == 0;
  }
  static_assert(sizeof(Word) == 16 && kWordAt[kWords - 2] == 16 * (kWords - 2) &&
                kWordAt[kWords - 1] < kWordAt[kWords - 2] + 16);
  static_assert(sizeof(Tensor) > 80 && sizeof(Tensor) <= 112 && sizeof(Tensor) % 4 == 0);
  // compare_exact compares every byte but the trailing padding: the fields lie back to back.
  static_assert(
      [] {
        constexpr Tensor::FieldOffsets at = Tensor::field_offsets();
        return at.base == 0 && at.buffer_bytes == at.base + sizeof(void*) &&
               at.owner == at.buffer_bytes + sizeof(std::uint64_t) &&
               at.layout_offset == at.owner + sizeof(TaskId) &&
               at.raw_shape == at.layout_offset + sizeof(std::uint64_t) &&
               at.offsets == at.raw_shape + 4 * kMaxDims &&
               at.extents == at.offsets + 4 * kMaxDims && at.version == at.extents + 4 * kMaxDims &&
               at.dtype == at.version + sizeof(std::uint32_t) &&
               at.ndims == at.dtype + sizeof(DType) && at.perm == at.ndims + 1 &&
               at.perm + kMaxDims <= sizeof(Tensor) && at.perm + kMaxDims > kWordAt[kWords - 1];
      }(),
      "compare_exact's mask assumes padding only after perm");
  static_assert(Tensor::field_offsets().offsets % 4 == 0 &&
                Tensor::field_offsets().offsets >= kWordAt[kStepWord] &&
                Tensor::field_offsets().offsets + 4 * kMaxDims <= kWordAt[kStepWord + 2]);
  // One template access as an analysed submit reads it, flattened when the analysis starts so
  // the per-task check and producer collection touch one small record per argument: the fields
  // the replay compares (the template's view and its stride) and the access's producer route.
  struct AccessPlan {
    std::uintptr_t address = 0;  // outer: the buffer's identity (address, creator id)
    std::uint64_t owner = 0;
    std::uint64_t layout_offset = 0;
    std::int64_t back = 0;   // fresh: made `back` iterations before the current one
    std::uint32_t task = 0;  // fresh: by this template position, as its output `arg`
    std::uint32_t arg = 0;
    std::uint32_t version = 0;
    ArgTag tag = ArgTag::in;
    DType dtype = DType::f32;
    std::uint8_t ndims = 0;
    bool tracked = false;
    bool outer = false;
    bool free_read = false;   // LoopTemplate::free_read
    bool stationary = false;  // LoopTemplate::stationary_write
    bool dense = false;       // Loop::dense
    bool fixed = false;       // Loop::fixed
    // An outer buffer with no creator, no external producers and no per-task lookup: while its
    // family stands for it, collect() has nothing to do for it.
    bool quiet = false;
    std::uint32_t raw[kMaxDims] = {};
    std::uint32_t extent[kMaxDims] = {};
    std::int64_t offset[kMaxDims] = {};  // box offsets in the template's iteration
    std::int64_t stride[kMaxDims] = {};
    // The wide replay check (same_image, wide_fresh_view): the template's tensor moved by
    // the stride, as bytes, for iteration TaskPlan::image_iteration; the bytes that matter (for
    // an outer buffer its identity; the layout offset, version, dtype, ndims, and raw shape,
    // offset, extent and perm of the first ndims dimensions: every field same_view compares, and
    // perm); the stride in the box-offset lanes of words kStepWord, kStepWord + 1; and those
    // words in the template's iteration. Lane-wise uint32 arithmetic is exact: build_plans
    // proves every predicted offset of the loop's iterations lies in [0, 2^32).
    // Filled by build_image for a tracked access (read for no other), so not initialised here:
    // build_plans makes the plans with the user-provided constructor below, which leaves them.
    Word image[kWords];
    Word mask[kWords];
    Word step[2];
    Word start[2];
    AccessPlan() {}
  };
  // One template task: what predicts_task compares, and its arguments' routes as bit masks
  // (bit k: argument k), so a submit's masks are read, not rebuilt argument by argument.
  // An exact_wide instance (exact_wide_for).
  using ExactWide = bool (*)(AccessPlan* plans, const Args& args, int count);
  // A masked_wide instance (masked_wide_for).
  using MaskedWide = bool (*)(AccessPlan* plans, const Args& args, int count, Tensor* out,
                              std::uint32_t imaged, std::uint32_t stepped);
  struct TaskPlan {
    KernelId kernels[3] = {kNoKernel, kNoKernel, kNoKernel};
    bool inline_task = false;
    std::uint32_t first_access = 0;
    std::uint32_t access_count = 0;
    std::uint32_t tracked = 0;  // in / inout / out_existing
    std::uint32_t collect = 0;  // every argument but fresh outputs: a creator or producers
    std::uint32_t quiet = 0;    // AccessPlan::quiet
    // Arguments whose affine family still stands (cleared when a free read closes its family).
    std::uint32_t family = 0;
    // Free reads whose family closed: their map entries are deferred like a fresh buffer's (the
    // template never writes their buffer, so only a lookup from outside the analysis can want
    // them, and every such lookup flushes first). Any view of the template's buffer at its
    // version is theirs (what plan_analysed accepts): replays checks them by buffer, version and
    // dtype, not by image (they leave outer_tracked).
    std::uint32_t deferred_reads = 0;
    // Every argument collect() visits is an outer buffer with no creator, in its family, and
    // not dense or stationary, with no external producers or the same box in every iteration:
    // its producers past the template's edges are `producers` (the fixed external entries its
    // accesses meet, filtered once), each while it lives. Cleared when a family of the task ends.
    bool direct = false;
    std::vector<TaskId> producers;  // each once (deduplicated when built)
    // single_producer()'s answer, set with `producers` (route_producers): one load for the
    // replayed submit's pin test instead of the vector's size and first element.
    TaskId single;
    // Not direct only because some arguments are buffers the same iteration made (their creator
    // is a producer; their entries are deferred) or free reads whose family closed with no
    // external entries and no creator (nothing to collect; deferred): `steps` is collect()'s
    // route for it in argument order (route_producers), so direct_producers walks that list
    // instead of routed_producers' per-argument tests. Cleared with `direct` when a family ends.
    bool created = false;
    // Each creator once (by its template position: the replay check proved every argument's
    // creator is the template's); `edge`: the position's same-iteration template edges list it
    // already when it is live.
    struct Step {
      TaskId id;               // a fixed external producer (arg == kExternalStep)
      std::uint32_t arg;       // or the argument whose creator (its tensor's producer) is one
      std::uint32_t position;  // that creator's template position
      bool edge;
    };
    static constexpr std::uint32_t kExternalStep = ~std::uint32_t{0};
    std::vector<Step> steps;
    // wide_producers' list for a direct or `created` position (route_wide): its fixed external
    // producers and its same-iteration producer positions (template edges and creators, each
    // position once; `creator`: its scope must still be open); with the template's carried
    // edges, every one a different task from every other, so the submit lists them without
    // list_once's search. `wide_listed` false (not direct or created, two carried edges of one
    // producer position, which may reach one task twice, or more than the arrays hold):
    // direct_producers. Arrays, not vectors: every run's start rebuilds them (reuse_plans).
    static constexpr std::uint32_t kWideSame = 8;
    static constexpr std::uint32_t kWideExternal = 4;
    struct WideSame {
      std::uint32_t position;
      bool creator;
    };
    TaskId wide_external[kWideExternal];
    WideSame wide_same[kWideSame] = {};
    std::uint32_t wide_external_count = 0;
    std::uint32_t wide_same_count = 0;
    // The template's carried edges of the position, copied with wide_same (the two change only
    // together, with the template): wide_producers reads them here, not through the template's
    // per-position vector (two loads and its bounds a submit).
    static constexpr std::uint32_t kWideCarried = 2;
    loops::CarriedEdge wide_carried[kWideCarried] = {};
    std::uint32_t wide_carried_count = 0;
    bool wide_listed = false;
    PreparedTask prepared;
    // Whether replays<false>() may decide this position: cleared when an image could not be
    // built or placed exactly (build_image, place_images), or when a free read's family closed
    // (deferred_reads: then replays<true> decides while closed_replayable stands, so positions
    // without closed reads pay nothing for their check).
    bool replayable = true;
    bool closed_replayable = false;
    // The iteration its accesses' AccessPlan::image predict after replays passed it
    // (kStaleImages after one that did not: some images may have moved, some not).
    std::int64_t image_iteration = kStaleImages;
    // The families of `family`'s arguments, in argument order: what record() grows per task
    // (list_families rebuilds it whenever `family` changes).
    struct Grow {
      loops::Family* family;
      std::uint32_t arg;
    };
    Grow grow[kMaxTensorArgs] = {};
    std::uint32_t grow_count = 0;
    // Every family in `grow` has grown at least once (its first tensor is set): grow_families
    // only counts. Cleared by list_families (a family is counted from zero only when created).
    bool grow_started = false;
    // grow_started, at most four families, and grow[grow_count..3] name the driver's
    // spare_family_ (pad_grow): grow_covered grows grow[0..3]. Cleared by list_families.
    bool grow_four = false;
    // What replays reads instead of each access's flags: the template's tags as 16 bytes, the
    // first access_count of them under the mask (same_tags); the tracked accesses to outer
    // buffers and to buffers the loop made, as argument bit masks; and whether every tracked
    // access's image has nothing to compare in word kWords - 2 and no step in word
    // kStepWord + 1 (ranks up to 2), so same_image skips both.
    std::uint64_t tag_word[2] = {};
    std::uint64_t tag_mask[2] = {};
    std::uint32_t outer_tracked = 0;
    std::uint32_t fresh_tracked = 0;
    bool narrow = false;
    // The exact_wide instance for access_count and narrow (set with narrow, narrow_images):
    // replay_into's exact compare on a CPU with AVX2.
    ExactWide exact_compare = nullptr;
    // The masked_wide instance for access_count (set with exact_compare, narrow_images):
    // replay_wide's one call, no switch on the count (~6 instructions a wide submit).
    MaskedWide masked_compare = nullptr;
    // The arguments whose image has a nonzero step (narrow_images): masked_wide moves only these.
    std::uint32_t stepped = 0;
    // narrow, and every argument is an outer tracked one (outer_tracked holds all access_count
    // bits): replays walks plans and tensors side by side (set with narrow, narrow_images).
    bool outer_only = false;
    // Whether replay_into may cover the position (refresh_fast): a kernel task, replayable, every
    // argument an outer tracked one, direct, and every tracked access in a standing family. Its
    // submits then need no masks, regions, fresh outputs, map entries or deferred entries.
    bool fast = false;
    // Whether replay_wide may cover the position (refresh_fast), when `fast` does not: a kernel
    // task, replayable (closed_replayable: its closed free reads aside), every argument an outer
    // tracked one in a standing family, a closed free read (deferred_reads), a buffer the same
    // iteration made (fresh_tracked, fresh_here) or a fresh output (outs), and its producers
    // direct or `created` (a step list: no lookup).
    bool wide = false;
    bool fresh_here = false;  // every fresh_tracked access's buffer was made by its own iteration
    std::uint32_t outs = 0;   // fresh outputs (ArgTag::out), whose AccessPlan::image is the spec
    // The template gives the position same-iteration or carried edges (set by build_plans).
    bool edges = false;
    // Its edges are one carried edge of a single distance, to `edge_producer` `edge_distance`
    // iterations back, and no same-iteration edge (set_edges, with `edges`): one_edge_producer.
    bool one_edge = false;
    std::uint32_t edge_producer = 0;
    std::int64_t edge_distance = 0;
    // replay_into compares every byte of each argument but the Tensor's trailing padding with its
    // image (compare_exact: no masks, so fewer instructions), which implies the masked compare.
    // Cleared the first time that misses at this position; from then on replay_into compares
    // under the masks (copy_image). A miss of the exact compare alone (a byte no mask covers
    // differs from the template's, e.g. buffer_bytes of a view reshaped out of a larger buffer)
    // leaves the submit to plan_submit, whose masked replays covers it.
    bool exact = true;
    // The record image this position's exact replayed tasks name (name_record): its base holds
    // the arguments of iteration record_base, and the exact compare passed at every iteration
    // since, up to record_iteration, so the images moved by their steps alone (a task of
    // iteration i is that base moved by i - record_base). Retired when the position takes
    // another, or the loop ends or relearns (retire_images); a kept plan names none.
    RecordImage* record_image = nullptr;
    std::int64_t record_base = 0;
    std::int64_t record_iteration = kStaleImages;  // kStaleImages: none named
  };
  struct Loop {
    std::int64_t iterations = 0;
    bool transparent = false;  // inside an owning loop: its tasks are the owner's
    enum class State : std::uint8_t { learning, analysing, fallback } state = State::learning;
    // Analysing, not transparent, its first analysed iteration counted (counted_analysed) and no
    // rebind pending (rebound): begin_iteration's and end_steady's fast tests in one flag.
    // Set only by end_iteration_slow; cleared wherever one of the four may change (a loop that is
    // not steady takes the slow paths, which handle every case).
    bool steady = false;
    std::int64_t iteration = -1;
    std::uint32_t position = 0;  // tasks submitted in this iteration
    std::uint64_t first_sequence = 0;
    // Every task of the loop in submit order, per iteration; shared with its families.
    std::shared_ptr<loops::LoopTasks> table;
    loops::IterationRecord previous;
    loops::IterationRecord current;
    int learn_attempts = 0;
    loops::LoopTemplate tmpl;
    std::int64_t first_analysed = 0;
    std::vector<std::vector<MapEntry>> external;  // per template access
    std::vector<bool> dense;                      // per template access: look up per task
    std::vector<bool> fixed;  // per template access: the same box in every iteration
    std::vector<std::vector<MapEntry>> fixed_external;  // fixed: the external entries it meets
    // The accesses whose external (and fixed_external) entries start_analysis filled: the only
    // ones the next start clears.
    std::vector<std::uint32_t> filled;
    std::vector<loops::Family*> families;         // per template access, or nullptr
    std::vector<AccessPlan> plans;                // per template access
    std::vector<TaskPlan> task_plans;             // per template position
    std::uint32_t plan_count = 0;                 // task_plans.size()
    std::vector<loops::BufferRef> element_reads;  // buffers read with get_tensor_data (learning)
    std::vector<std::uintptr_t> quiet_reads;      // external buffers read with no live writer
    // The quiet read element_access found last, one of quiet_reads (0: none; a read buffer is
    // never null): cleared with them.
    std::uintptr_t last_quiet = 0;
    bool counted_analysed = false;
    // What names the loop across runs of one orchestration (kept templates): its place among
    // the loops the run began, and how deep it is nested.
    std::uint64_t ordinal = 0;
    std::size_t depth = 0;
    bool proven = false;  // tmpl was learned (or rebound) and proven: worth keeping
    // tmpl was kept from an earlier run and no analysed iteration has passed yet: a mismatch
    // relearns (relearn) instead of falling back.
    bool rebound = false;
    // The plans kept with the template (Kept::plans), handed over by try_kept when this run's
    // first iteration is the kept base access for access (same_base): start_analysis reuses them
    // (reuse_plans) instead of build_plans when the loop's range and per-run routes match.
    bool plans_kept = false;
    std::int64_t kept_iterations = 0;
    // The template edges (LoopTemplate::deps_id) the task plans' routes were derived from
    // (set_edges, route_producers, route_wide): reuse_plans keeps a position's routes while they
    // stand (0: none derived).
    std::uint64_t routes_deps = 0;
    // place_images found an iteration outside the proven range (a position no longer
    // replayable): the plans are not kept. A free read's family that plan_analysed closed is
    // kept closed (TaskPlan::deferred_reads), as build_plans would start it.
    bool plans_changed = false;
    // The analysis started before the first iteration with a kept template (try_kept_from_start);
    // `start_failed`: this loop's template once missed that way, in this run or in the run that
    // kept the template it rebound, so its later runs learn their first iteration and rebind
    // instead (kept with the template). It belongs to that template's line: a template learned
    // afresh (none kept, or the kept one rejected, or relearned after a rebind's miss) starts
    // without it, so the next run starts from iteration 0 again.
    bool from_start = false;
    bool start_failed = false;
  };
  // A template kept from an earlier run for the loop of that ordinal and depth.
  struct Kept {
    std::uint64_t ordinal = 0;
    std::size_t depth = 0;
    std::uint64_t used = 0;  // the run that kept it (the oldest goes first)
    loops::LoopTemplate tmpl;
    // The loop's plans as build_plans left them (none when something changed them, or the loop
    // fell back), for `iterations` iterations of the template's base.
    std::vector<AccessPlan> plans;
    std::vector<TaskPlan> task_plans;
    std::int64_t iterations = 0;
    std::uint64_t routes_deps = 0;  // Loop::routes_deps of the plans
    bool start_failed = false;      // Loop::start_failed of the run that kept it
    // A template based on iteration 0: its outer buffers without a creator that were the run's
    // argument k (address, k), each buffer once.
    std::vector<std::pair<std::uintptr_t, std::uint32_t>> arguments;
    // A template based on iteration 0: its outer buffers (address, owner), each once, in the
    // order of their first access (try_kept_from_start checks that renaming keeps them distinct,
    // without a walk of every access).
    std::vector<std::pair<std::uintptr_t, std::uint64_t>> outer_names;
  };
  // Whether `now` (this run's first iteration, before rebind) repeats `kept` (the kept template's
  // base) in everything build_plans reads but the names of outer buffers (rebind checks they are
  // renamed by one bijection; reuse_plans renames the plans): the same index, tasks, tags, buffer
  // kinds (a fresh one by its creator's place; an outer one with or without a creator) and views
  // (layout, version, dtype, shape, box, permutation).
  static bool same_base(const loops::LoopTemplate& kept, const loops::IterationRecord& now);
  // start_analysis with the kept plans (Loop::plans_kept): checks what differs between runs
  // (range; dense, fixed and quiet routes), then redoes only the per-run parts (families closed
  // at build, family masks and lists, direct producers, images placed afresh, prepared headers).
  // False, with the plans cleared, when build_plans must run.
  bool reuse_plans(Loop& loop);
  // Gives a kept plan of an outer buffer this run's name of it (the rebound template's access
  // `rec`): its identity and the identity bytes of its image.
  static void rename(AccessPlan& plan, const loops::AccessRecord& rec);
  // build_plans' producer route for one position: `direct` and its deduplicated `producers`.
  void route_producers(const Loop& loop, TaskPlan& task) const;
  // route_producers' last step: the position's wide list (TaskPlan::wide_external, wide_same,
  // wide_listed) from its route and the template's edges.
  static void route_wide(const Loop& loop, TaskPlan& task, std::uint32_t position);
  // Whether a position's routes, last derived with the same template edges and family mask, hold
  // for this run's start as they are: they listed no fixed external producer (a task of an earlier
  // run) and none of its accesses meets one now. Every other input of route_producers (the plans'
  // flags: tracked, outer, back, task, stationary, dense, fixed, quiet, whether the buffer has a
  // creator) is the kept plans' by reuse_plans' checks.
  static bool routes_stand(const Loop& loop, const TaskPlan& task);

  // Whether an argument is the template's record replayed for the current iteration: the same
  // buffer (outer by identity; a fresh one by the creator task id the loop's table predicts) and
  // the template's view moved by its stride, tested field by field. `moved`: a free read whose
  // view left the affine prediction (still predicted; its family may end). `no`: the full
  // prediction check decides.
  enum class Replay : std::uint8_t { no, exact, moved };
  Replay replay_access(const Loop& loop, std::uint32_t access, const Tensor& t,
                       std::int64_t* made) const;
  static bool same_view(const AccessPlan& plan, const Tensor& t, std::int64_t moved_by);
  // same_outer_view's view test and identity as one masked compare of the Tensor's bytes against
  // the image, after moving the image one iteration on (replays keeps the position's images one
  // iteration behind until then).
  // `narrow`: the position's images have no bytes to compare in word kWords - 2 and no step in
  // word kStepWord + 1 (TaskPlan::narrow), so both are skipped.
  template <bool narrow = false>
  static bool same_image(AccessPlan& plan, const Tensor& t);
  // same_image, storing each word of `t` into `out` as it loads it (replay_into): `out` holds
  // t's bytes whether or not it matches. The difference is or-ed into `diff` (zero: every
  // argument so far matched), tested once for all arguments.
  template <bool narrow>
  static void copy_image(AccessPlan& plan, const Tensor& t, Tensor* out, Word* diff);
  // copy_image's compare of every byte of `t` but its trailing padding with the image, without
  // the masks and without a copy (TaskPlan::exact): the image holds the template's bytes moved by
  // the stride, so this passes only where the masked compare passes too, and then `t` is its
  // image (what a record naming a RecordImage rebuilds). Every word is compared (the narrow
  // template argument only skips moving word kStepWord + 1, whose step is zero then).
  template <bool narrow>
  static void compare_exact(AccessPlan& plan, const Tensor& t, Word* diff);
  // compare_exact over a submit's `count` arguments; up to 4 with a constant count (unrolled: no
  // loop counter or pointer steps between arguments).
  template <bool narrow>
  [[gnu::always_inline]] static void compare_all_exact(AccessPlan* plans, const Args& args,
                                                       int count, Word* diff) {
    switch (count) {
      case 1:
        return compare_n_exact<narrow, 1>(plans, args, diff);
      case 2:
        return compare_n_exact<narrow, 2>(plans, args, diff);
      case 3:
        return compare_n_exact<narrow, 3>(plans, args, diff);
      case 4:
        return compare_n_exact<narrow, 4>(plans, args, diff);
      default:
        for (int k = 0; k < count; ++k)
          compare_exact<narrow>(plans[k], args.tensor(k), diff);
    }
  }
  template <bool narrow, int kCount>
  [[gnu::always_inline]] static void compare_n_exact(AccessPlan* plans, const Args& args,
                                                     Word* diff) {
#pragma GCC unroll 4
    for (int k = 0; k < kCount; ++k)
      compare_exact<narrow>(plans[k], args.tensor(k), diff);
  }
  // compare_all_exact for a CPU with AVX2, out of line (compiled for AVX2; one call instead of
  // the 16-byte compare inline): each argument's first 96 bytes as three 32-byte words against its
  // image (whose first 96 bytes mirror the Tensor's), the last 16 against the image's last word
  // under the padding mask; the box-offset lanes move as compare_exact moves them. True when
  // every argument matched. `narrow` as compare_exact's; `kCount` arguments (0: `count`,
  // looped). One function per instance, which a position names (TaskPlan::exact_compare,
  // exact_wide_for): its submits make one direct call, no switch on the count or test of
  // `narrow` (session 27). Hidden: called only inside the library.
  template <bool narrow, int kCount>
  TMR_WIDE_TARGET [[gnu::noinline, gnu::visibility("hidden")]] static bool exact_wide(
      AccessPlan* plans, const Args& args, int count);
  // The exact_wide instance for `count` arguments and `narrow`.
  static ExactWide exact_wide_for(std::uint32_t count, bool narrow);
  // replay_wide's compare and copy for a CPU with AVX2, out of line (compiled for AVX2): every
  // argument copied to `out`; each `imaged` one moved and compared as copy_image<false> does, in
  // three 32-byte words (the Tensor's first 96 bytes, which the image's and mask's first six words
  // mirror; word kWords - 2's mask leaves out the bytes the last word covers) and the last 16-byte
  // word under its mask. The same bytes under the same masks: true when every imaged argument
  // matched. Only the `stepped` ones (TaskPlan::stepped) are moved: moving the others adds zero.
  // One function per argument count (`kCount`: 0 looped, for `count`), which a position names
  // (TaskPlan::masked_compare, masked_wide_for), as exact_wide's.
  template <int kCount>
  TMR_WIDE_TARGET [[gnu::noinline, gnu::visibility("hidden")]] static bool masked_wide(
      AccessPlan* plans, const Args& args, int count, Tensor* out, std::uint32_t imaged,
      std::uint32_t stepped);
  // The masked_wide instance for `count` arguments.
  static MaskedWide masked_wide_for(std::uint32_t count);
  // masked_wide for `kCount` arguments (0: `count`, looped).
  template <int kCount>
  TMR_WIDE_TARGET static bool masked_wide_n(AccessPlan* plans, const Args& args, int count,
                                            Tensor* out, std::uint32_t imaged,
                                            std::uint32_t stepped);
  // exact_wide's body (inline there).
  template <bool narrow, int kCount>
  TMR_WIDE_TARGET static bool exact_wide_n(AccessPlan* plans, const Args& args, int count);
  // The bytes of the last word that are a Tensor field (not its trailing padding), as lanes.
  static constexpr std::uint32_t defined_lane(int lane) {
    constexpr std::size_t end = Tensor::field_offsets().perm + kMaxDims;
    const std::size_t from = kWordAt[kWords - 1] + 4 * static_cast<std::size_t>(lane);
    const std::size_t n = end <= from ? 0 : std::min<std::size_t>(end - from, 4);
    return n == 4 ? 0xffffffffu : (std::uint32_t{1} << (8 * n)) - 1u;
  }
  static bool zero_diff(const Word& diff) {
    return zero_word(diff);
  }
  // Whether the submit's argument tags are the position's (one 16-byte masked compare).
  static bool same_tags(const TaskPlan& task, const Args& args);
  // Whether two kernel triples are equal: one 8-byte and one 4-byte compare, or-ed, and one
  // branch (three compares and branches as written field by field). Only for triples stored
  // long before (a position's plan, the orchestrator's planned_): an 8-byte load across two
  // 4-byte fields just stored waits for those stores (the dispatcher's compare stays per field).
  static bool same_kernels(const KernelId* a, const KernelId* b) {
    static_assert(sizeof(KernelId) == 4);
    std::uint64_t a01;
    std::uint64_t b01;
    std::memcpy(&a01, a, sizeof(a01));
    std::memcpy(&b01, b, sizeof(b01));
    return ((a01 ^ b01) | static_cast<std::uint64_t>(a[2] ^ b[2])) == 0;
  }
  // same_fresh_view with the view compared by same_image.
  bool wide_fresh_view(const Loop& loop, AccessPlan& plan, const Tensor& t,
                       std::int64_t* made) const;
  // Places a position's images one iteration before the current one (computed from the start),
  // when the last replays of the position was not the previous iteration's or did not pass.
  // False when the iteration is outside what build_image proved exact (the position is then no
  // longer replayable). Out of line: once per position a run, not in the replay's own path.
  [[gnu::noinline]] static bool place_images(Loop& loop, TaskPlan& task);
  // replay_into's naming, after its exact compare passed: the position's record image when it
  // still stands for this iteration (its last task was the previous iteration's, named the
  // same way), else name_record_slow.
  void name_record(Loop& loop, TaskPlan& task, const Args& args, Ring& ring, const KernelFn fns[3]);
  // Retires the position's image, if any, and takes another for the arguments of this iteration
  // (their bytes, their steps, the kernel functions `fns`). With none to be had, copies them into
  // the record the next admit of `ring` fills (Ring::tensor_storage) and names nothing.
  [[gnu::noinline]] void name_record_slow(Loop& loop, TaskPlan& task, const Args& args, Ring& ring,
                                          const KernelFn fns[3]);
  // A free image (one whose retirement every ring has passed), a new one, or null at
  // kMaxRecordImages.
  RecordImage* take_image();
  // Moves the position's image to the retired list, with every ring's head (the tasks that named
  // it are below those heads), and counts the tasks it named.
  void retire_image(TaskPlan& task);
  // retire_image for every position of the loop that names one (its end, a relearn).
  void retire_images(Loop& loop);
  static constexpr std::int64_t kStaleImages = -2;
  // Fills plan's image, mask, step and start from the template's tensor `v`; false when some
  // predicted box offset of the loop's iterations leaves [0, 2^32) (the wide check would not be
  // exact: the position is not replayable).
  static bool build_image(const Loop& loop, AccessPlan& plan, const Tensor& v);
  // A fresh output's image (TaskPlan::outs): the template's spec `spec`, every byte but the
  // trailing padding under the mask, with no step (replay_wide compares it as it is).
  static void build_spec_image(AccessPlan& plan, const Tensor& spec);
  // Packs a Tensor-sized image and mask into plan's words (the last word's mask covers its bytes,
  // the one before it only those before them; clears that overlap in `mask`) and sets plan.start.
  static void pack_image(AccessPlan& plan, const unsigned char* image, unsigned char* mask);
  static bool same_outer_view(const AccessPlan& plan, const Tensor& t, std::int64_t moved_by);
  bool same_fresh_view(const Loop& loop, const AccessPlan& plan, const Tensor& t,
                       std::int64_t moved_by, std::int64_t* made) const;
  bool made_by_template(const Loop& loop, const AccessPlan& plan, const Tensor& t,
                        std::int64_t* made) const;
  void build_plans(Loop& loop);
  // begin_iteration's and end_iteration's steps for a loop that is not transparent.
  void begin_iteration_slow(std::int64_t index);
  void end_iteration_slow();
  // An analysed iteration deferred entries: the list is compacted whenever it doubles, keeping
  // the entries of live tasks (drop_retired_deferred), and the iteration's mark moves on.
  void settle_deferred() {
    if (deferred_.size() >= deferred_compact_at_) compact_deferred();
    iteration_deferred_bytes_ = deferred_bytes();
  }
  [[gnu::noinline]] void compact_deferred();
  // plan_submit for a learning loop: records the submit.
  void plan_learning(Loop& loop, const KernelId kernels[3], bool inline_task, const Args& args);
  // plan_submit for an analysing loop when every argument passes its inline replay test
  // (same_outer_view, same_fresh_view): sets what plan_analysed sets and returns true. False
  // changes nothing plan_analysed reads (it decides, and calls fall_back when it must).
  // `closed`: the position has closed free reads (TaskPlan::deferred_reads), checked by buffer,
  // version and dtype.
  // `task`: the current position's plan (loop.task_plans[loop.position], position < plan_count).
  template <bool closed>
  bool replays(Loop& loop, TaskPlan& task, const KernelId kernels[3], bool inline_task,
               const Args& args);
  // plan_submit for an analysing loop.
  bool plan_analysed(Loop& loop, const KernelId kernels[3], bool inline_task, const Args& args);
  // An analysed task's accesses to buffers made by analysed iterations, not yet in the map.
  struct Deferred {
    TaskSlot* task;
    TaskId id;
    std::uint32_t mask;  // its arguments to insert
  };
  void flush_deferred_entries();
  void record_slow(TaskSlot& task, const Args& args, const AccessRegion* regions);
  // Adds the planned submit's iteration to the families of its family_mask_ arguments (its
  // position's `grow` list: the same set).
  [[gnu::always_inline]] void grow_families(const Args& args) {
    TaskPlan& task = *covered_;  // the plan of the task submitted last
    if (task.grow_started) {     // every listed family has its first iteration
      for (std::uint32_t g = 0; g < task.grow_count; ++g)
        loops::FamilyTable::grow(task.grow[g].family);
      return;
    }
    for (std::uint32_t g = 0; g < task.grow_count; ++g) {
      loops::Family* const f = task.grow[g].family;
      if (f->shape.count == 0) f->shape.first = args.tensor(static_cast<int>(task.grow[g].arg));
      loops::FamilyTable::grow(f);
    }
    task.grow_started = true;
  }
  // Rebuilds task.grow from task.family and the loop's families.
  static void list_families(const Loop& loop, TaskPlan& task);
  // Sets task.narrow from the images replays compares (outer_tracked, fresh_tracked).
  static void narrow_images(const Loop& loop, TaskPlan& task);
  // Sets task.fast from the fields it summarises; called wherever one of them changes
  // (build_plans, place_images, plan_analysed's closing of a free read's family).
  static void refresh_fast(TaskPlan& task) {
    const auto every = static_cast<std::uint32_t>((std::uint64_t{1} << task.access_count) - 1);
    task.fast = !task.inline_task && task.replayable && task.outer_tracked == every &&
                task.deferred_reads == 0 && task.fresh_tracked == 0 && task.direct &&
                (task.tracked & ~task.family) == 0;
    task.wide =
        !task.fast && !task.inline_task && (task.replayable || task.closed_replayable) &&
        (task.outer_tracked | task.deferred_reads | task.fresh_tracked | task.outs) == every &&
        (task.fresh_tracked == 0 || task.fresh_here) && (task.direct || task.created) &&
        (task.outer_tracked & ~task.family) == 0;
  }
  // Drops deferred entries no lookup can want any more: every buffer they name has a creator
  // whose scope has ended (naming it is an error), or the task has retired.
  void prune_deferred(std::size_t from);
  // Drops the deferred entries of retired tasks only (no record read): a live task's entry is
  // dropped by prune_deferred or skipped by the flush when its buffers cannot be named. A ring
  // retires its tasks in order, so when the last entry is live the retired entries of its ring
  // are a prefix of the list's: only that prefix is dropped then, and only when it is at least
  // half the list (no per-entry test or move of a mostly live rest); otherwise every retired
  // entry is.
  void drop_retired_deferred();
  void note_submitted(TaskId id);
  std::shared_ptr<loops::LoopTasks> take_table(std::int64_t iterations);
  void recycle_table(std::shared_ptr<loops::LoopTasks> table);
  void fall_back(Loop& loop, loops::Fallback reason);
  // Learning step at the end of an iteration: learn, prove, start the analysis or count the try.
  // Returns false when the iteration is to be kept as the next comparison's `previous`.
  bool try_template(Loop& loop);
  // At the end of a loop's first iteration, when an earlier run kept a template for the loop:
  // rebinds it to this iteration (LoopTemplate::rebind) and starts the analysis with it (proved
  // again only for a new range). False when there is none or it does not fit (counted): the loop
  // learns as usual, this iteration its first record.
  bool try_kept(Loop& loop);
  // At the start of a loop's first iteration: when an earlier run kept a template whose base is
  // iteration 0 (rebound to a first iteration, so it reads no buffer made by an earlier one), with
  // its plans, for this trip count, the analysis starts at once from iteration 0 (no learning
  // record, no rebind): every submit of the iteration is checked by replay like any analysed one
  // (outer buffers by identity), the external producers come from the map as the loop begins, and
  // a miss before the first analysed iteration ends relearns (Loop::rebound). Only an owner with
  // no learning loop around it.
  void try_kept_from_start(Loop& loop);
  // Keeps a proven loop's template for later runs (bounded: kMaxKept templates, kMaxKeptAccesses
  // accesses in all, the oldest dropped first).
  void keep_template(Loop& loop);
  // Starts the analysis of a loop whose template (tmpl) is learned or rebound, unless it has too
  // little left or the proof falls back (try_template's tail).
  void analyse_with_template(Loop& loop);
  // A rebound template's first analysed iteration did not match: the loop learns again from the
  // next iterations (its analysed tasks stay in closed families and the map), counted as a
  // rejection (Rebind::mismatch).
  void relearn(Loop& loop);
  void start_analysis(Loop& loop);
  void update_owner();
  // Sets replaying_ from owner_, its state and recorders_ (update_owner, start_analysis, reset).
  void refresh_replaying() {
    replaying_ = owner_ != nullptr && owner_->state == Loop::State::analysing && recorders_.empty();
  }
  // The learning loops around the owner (recorders_) record a submit, and take its task id.
  void record_outer(const KernelId kernels[3], bool inline_task, const Args& args);
  void note_recorders(TaskId id);
  // element_access's rules for a learning loop's read: a buffer its iterations made ends the
  // learning; any other is remembered (start_analysis checks the template does not write it).
  void learn_element_read(Loop& loop, const Tensor& tensor);
  void close_families(Loop& loop);
  // Whether the template writes the buffer `ref` names (or it is one the loop made).
  bool loop_writes(const Loop& loop, const loops::BufferRef& ref) const;
  loops::BufferRef buffer_of(const Loop& loop, const Tensor& tensor) const;
  // The loop iteration of a loop task index.
  std::int64_t iteration_of(const Loop& loop, std::uint64_t task_index) const;
  bool live(TaskId id) const {
    return !rings_[id.ring()]->is_retired(id);
  }
  void add_task(const Loop& loop, std::int64_t iteration, std::uint32_t position);

  std::span<Ring* const> rings_;
  Dependence& dependence_;
  loops::FamilyTable families_;
  // The per-access vectors of the last analysed loop that ended, for the next start_analysis
  // (which clears them): a loop's start makes them again no more.
  struct SpareStarts {
    std::vector<std::vector<MapEntry>> external;
    std::vector<std::vector<MapEntry>> fixed_external;
    std::vector<loops::Family*> families;
    std::vector<std::uint32_t> filled;  // Loop::filled of `external`
  };
  SpareStarts spare_starts_;
  // What TaskPlan::grow lists past a position's families (pad_grow): grown by grow_covered,
  // never looked up (it is in no table).
  loops::Family spare_family_;
  bool config_enabled_;
  std::vector<std::unique_ptr<Loop>> stack_;
  // stack_.back() (null when empty): begin_iteration's and end_steady's one load of it.
  Loop* top_ = nullptr;
  std::vector<Kept> kept_;                   // templates kept across runs (freed with the driver)
  std::vector<std::uintptr_t> run_buffers_;  // this run's argument buffers (run_arguments)
  std::uint64_t run_ = 0;                    // runs begun (reset() calls)
  std::vector<std::shared_ptr<loops::LoopTasks>> spare_tables_;  // tables of ended loops
  Loop* owner_ = nullptr;
  bool replaying_ = false;  // replaying()
  // Learning loops below the owner, innermost first: each records every submit of its current
  // iteration (its nested loops analyse themselves meanwhile).
  std::vector<Loop*> recorders_;
  const loops::LoopTemplate* started_ = nullptr;  // see take_started()
  bool enabled_ = true;
  bool wide_compare_ = false;  // see set_wide_compare
  // Pattern loops begun, by route, and the tasks they submitted without the compare.
  std::uint64_t patterns_ = 0;
  std::uint64_t pattern_routes_[static_cast<int>(loops::PatternRoute::count)] = {};
  std::uint64_t tasks_trusted_ = 0;
  std::uint64_t iterations_trusted_ = 0;  // of a pattern, in one call
  bool planned_analysed_ = false;
  // The plan of the position plan_submit covered last (set with planned_analysed_, by replays
  // and plan_analysed): what prepared(), direct_producers, routed_producers and grow_families
  // read, instead of indexing task_plans again (~5 instructions each, TaskPlan's size is no
  // power of two). task_plans does not change between plan_submit and that submit's end.
  TaskPlan* covered_ = nullptr;
  // Record images (RecordImage, TaskPlan::record_image): every one made this driver's life
  // (at most kMaxRecordImages), those free, and those retired with every ring's head then (free
  // once each ring's watermark passed it: every task that named it has been consumed).
  struct RetiredImage {
    RecordImage* image;
    std::uint32_t heads[kRingCount];
  };
  static constexpr std::size_t kMaxRecordImages = 256;
  std::vector<std::unique_ptr<RecordImage>> record_pool_;
  std::vector<RecordImage*> free_images_;
  std::deque<RetiredImage> retired_images_;
  Tensor* named_ = nullptr;  // named_tensors()
  std::uint32_t named_distance_ = 0;
  std::uint32_t family_mask_ = 0;    // arguments of the planned submit an affine family takes
  std::uint32_t deferred_mask_ = 0;  // arguments of the planned submit whose entry is deferred
  std::uint32_t tracked_mask_ = 0;   // arguments of the planned submit that take part in tracking
  std::vector<Deferred> deferred_;
  // deferred_'s size in bytes before the current iteration's entries (end_steady's test).
  std::size_t iteration_deferred_bytes_ = 0;
  std::size_t deferred_bytes() const {
    const auto* first = reinterpret_cast<const char*>(std::to_address(deferred_.begin()));
    const auto* last = reinterpret_cast<const char*>(std::to_address(deferred_.end()));
    return static_cast<std::size_t>(last - first);
  }
  std::size_t deferred_compact_at_ = kDeferredCompact;  // see end_iteration_slow
  static constexpr std::size_t kDeferredCompact = 256;
  std::uint32_t quiet_mask_ = 0;  // arguments of the planned submit collect() may skip
  std::uint32_t fresh_mask_ = 0;  // arguments of the planned submit on a buffer the loop made
  loops::BufferRef refs_[kMaxTensorArgs];   // learning: each argument's buffer
  std::int64_t made_[kMaxTensorArgs] = {};  // fresh_mask_ arguments: the creator's iteration

  // Statistics of the run.
  std::uint64_t loops_ = 0;
  std::uint64_t loops_analysed_ = 0;
  std::uint64_t iterations_ = 0;
  std::uint64_t iterations_analysed_ = 0;
  std::uint64_t tasks_analysed_ = 0;
  std::uint64_t tasks_wide_ = 0;  // of those, covered by replay_wide
  // The position whose replay_wide compare passed last (wide_pass(); cleared by clear_wide_pass).
  const TaskPlan* wide_passed_ = nullptr;
  // run_affine's answers, each for a loop's analysis and the plans as they stood: forgotten
  // (forget_runs) wherever that loop's positions' routes, flags or images may change (its
  // analysis starts or falls back, a free read's family closes; place_images leaving the proven
  // range clears `wide`, which trusted_wide tests per submit).
  bool prove_run(const Loop& loop, std::uint32_t first, std::uint32_t stride,
                 std::uint32_t count) const;
  struct RunProof {
    const Loop* loop = nullptr;
    std::int64_t first_analysed = 0;
    std::uint32_t first = 0;
    std::uint32_t stride = 0;
    std::uint32_t count = 0;
    bool ok = false;
  };
  static constexpr int kRunProofs = 8;
  RunProof run_proofs_[kRunProofs] = {};
  int next_run_proof_ = 0;
  void forget_runs(const Loop& loop) {
    for (RunProof& p : run_proofs_) {
      if (p.loop == &loop) p.loop = nullptr;
    }
  }
  // Of those, the tasks whose records named an image (counted when the image retires).
  std::uint64_t tasks_named_ = 0;
  std::uint64_t fallbacks_[static_cast<int>(loops::Fallback::count)] = {};
  std::uint64_t templates_reused_ = 0;
  std::uint64_t plans_reused_ = 0;  // analyses started with kept plans (reuse_plans)
  std::uint64_t rejected_[static_cast<int>(loops::Rebind::count)] = {};
};

// ---------------------------------------------------------------- inline hot path

// The view part of replay_access's test: the template's view moved by `moved_by` strides, field
// by field.
[[gnu::always_inline]] inline bool LoopDriver::same_view(const AccessPlan& plan, const Tensor& t,
                                                         std::int64_t moved_by) {
  if (t.version() != plan.version || t.layout_offset() != plan.layout_offset ||
      t.ndims() != plan.ndims || t.dtype() != plan.dtype) {
    return false;
  }
  for (int r = 0; r < plan.ndims; ++r) {
    if (t.raw_dim(r) != plan.raw[r] || t.box_extent(r) != plan.extent[r] ||
        std::int64_t{t.box_offset(r)} != plan.offset[r] + moved_by * plan.stride[r]) {
      return false;
    }
  }
  return true;
}

// replay_access's test for an outer buffer, all of it: identity and the view field by field.
[[gnu::always_inline]] inline bool LoopDriver::same_outer_view(const AccessPlan& plan,
                                                               const Tensor& t,
                                                               std::int64_t moved_by) {
  return reinterpret_cast<std::uintptr_t>(t.buffer()) == plan.address &&
         t.producer().value() == plan.owner && same_view(plan, t, moved_by);
}

// The identity half of same_fresh_view and wide_fresh_view: t's buffer is output `arg` of
// template task `task`, made `back` iterations before the current one (the creator's id from the
// loop's table, live, and that output's buffer). Sets `*made` to the creator's iteration.
[[gnu::always_inline]] inline bool LoopDriver::made_by_template(const Loop& loop,
                                                                const AccessPlan& plan,
                                                                const Tensor& t,
                                                                std::int64_t* made) const {
  const std::int64_t m = loop.iteration - plan.back;
  if (m < loop.tmpl.base_iteration() - 1 || (m == loop.iteration && plan.task >= loop.position)) {
    return false;
  }
  const TaskId creator = loop.table->at(m, plan.task);
  if (t.producer() != creator || !live(creator) ||
      rings_[creator.ring()]->record(creator.local()).tensors[plan.arg].buffer() != t.buffer()) {
    return false;
  }
  *made = m;
  return true;
}

// replay_access's test for a buffer the loop made, when it passes: made by the template
// (made_by_template) and the template's view moved by the stride. Sets `*made` to the creator's
// iteration.
[[gnu::always_inline]] inline bool LoopDriver::same_fresh_view(const Loop& loop,
                                                               const AccessPlan& plan,
                                                               const Tensor& t,
                                                               std::int64_t moved_by,
                                                               std::int64_t* made) const {
  std::int64_t m = 0;
  if (!made_by_template(loop, plan, t, &m) || !same_view(plan, t, moved_by)) return false;
  *made = m;
  return true;
}

template <bool narrow>
[[gnu::always_inline]] inline bool LoopDriver::same_image(AccessPlan& plan, const Tensor& t) {
  plan.image[kStepWord] += plan.step[0];
  if constexpr (!narrow) plan.image[kStepWord + 1] += plan.step[1];
  const auto* const bytes = reinterpret_cast<const unsigned char*>(&t);
  Word diff = {};
  // Unrolled whatever the caller's size (GCC stopped unrolling it when replays grew).
#pragma GCC unroll 8
  for (int w = 0; w < kWords; ++w) {
    if (narrow && w == kWords - 2) continue;
    Word word;
    std::memcpy(&word, bytes + kWordAt[w], sizeof(Word));
    diff |= (word ^ plan.image[w]) & plan.mask[w];
  }
  std::uint64_t halves[2];
  std::memcpy(halves, &diff, sizeof(halves));
  return (halves[0] | halves[1]) == 0;
}

template <bool narrow>
[[gnu::always_inline]] inline void LoopDriver::copy_image(AccessPlan& plan, const Tensor& t,
                                                          Tensor* out, Word* diff) {
  plan.image[kStepWord] += plan.step[0];
  if constexpr (!narrow) plan.image[kStepWord + 1] += plan.step[1];
  const auto* const bytes = reinterpret_cast<const unsigned char*>(&t);
  auto* const to = reinterpret_cast<unsigned char*>(out);
  Word d = *diff;
#pragma GCC unroll 8
  for (int w = 0; w < kWords; ++w) {
    Word word;
    std::memcpy(&word, bytes + kWordAt[w], sizeof(Word));
    std::memcpy(to + kWordAt[w], &word, sizeof(Word));  // every word: the copy is the whole Tensor
    if (narrow && w == kWords - 2) continue;
    d |= (word ^ plan.image[w]) & plan.mask[w];
  }
  *diff = d;
}

template <bool narrow>
[[gnu::always_inline]] inline void LoopDriver::compare_exact(AccessPlan& plan, const Tensor& t,
                                                             Word* diff) {
  plan.image[kStepWord] += plan.step[0];
  if constexpr (!narrow) plan.image[kStepWord + 1] += plan.step[1];
  const auto* const bytes = reinterpret_cast<const unsigned char*>(&t);
  constexpr Word kDefined = {defined_lane(0), defined_lane(1), defined_lane(2), defined_lane(3)};
  Word words[kWords];
#pragma GCC unroll 8
  for (int w = 0; w < kWords; ++w)
    std::memcpy(&words[w], bytes + kWordAt[w], sizeof(Word));
  Word d = (words[kWords - 1] ^ plan.image[kWords - 1]) & kDefined;
#pragma GCC unroll 8
  for (int w = 0; w < kWords - 1; ++w)
    d |= words[w] ^ plan.image[w];
  *diff |= d;
}

[[gnu::always_inline]] inline bool LoopDriver::same_tags(const TaskPlan& task, const Args& args) {
  std::uint64_t given[2];
  static_assert(sizeof(ArgTag) == 1 && kMaxTensorArgs == 16);
  std::memcpy(given, args.tags(), sizeof(given));
  return (((given[0] ^ task.tag_word[0]) & task.tag_mask[0]) |
          ((given[1] ^ task.tag_word[1]) & task.tag_mask[1])) == 0;
}

[[gnu::always_inline]] inline bool LoopDriver::wide_fresh_view(const Loop& loop, AccessPlan& plan,
                                                               const Tensor& t,
                                                               std::int64_t* made) const {
  std::int64_t m = 0;
  if (!made_by_template(loop, plan, t, &m) || !same_image(plan, t)) return false;
  *made = m;
  return true;
}

[[gnu::always_inline]] inline bool LoopDriver::replay_into(ReplayPlan& task,
                                                           const KernelId kernels[3],
                                                           const KernelFn fns[3], const Args& args,
                                                           Ring& ring) {
  Loop& loop = *owner_;  // task: loop.task_plans[loop.position] (fast_position())
  const int count = args.tensor_count();
  // (task.fast: never an inline task; see the declaration.)
  if (static_cast<int>(task.access_count) != count || !same_kernels(task.kernels, kernels) ||
      !same_tags(task, args)) {
    return false;
  }
  if (task.image_iteration + 1 != loop.iteration && !place_images(loop, task)) return false;
  AccessPlan* const plans = loop.plans.data() + task.first_access;
  // Every argument is compared (and, under the masks, copied); the difference is tested once (a
  // miss has copied what it copied: the record is no live task's). Each compare moves the images
  // as it goes, so a miss leaves them stale (as in replays).
  Word diff = {};
  if (task.exact) {
    // Every byte but the padding, no masks to apply (TaskPlan::exact), and no copy: the record
    // names the position's image (name_record). In 32-byte words out of line, or inline.
    bool same;
    if (wide_compare_) {
      same = task.exact_compare(plans, args, count);
    } else {
      if (task.narrow) {
        compare_all_exact<true>(plans, args, count, &diff);
      } else {
        compare_all_exact<false>(plans, args, count, &diff);
      }
      same = zero_diff(diff);
    }
    if (!same) {
      task.image_iteration = kStaleImages;
      task.exact = false;  // the masked compare from now on; plan_submit decides this submit
      return false;
    }
    task.image_iteration = loop.iteration;
    covered_ = &task;  // analysed: submitted_covered counts it
    name_record(loop, task, args, ring, fns);
    return true;
  } else {
    Tensor* const tensors = ring.tensor_storage(ring.head(), count);  // the next admit's
    if (task.narrow) {
      for (int k = 0; k < count; ++k)
        copy_image<true>(plans[k], args.tensor(k), tensors + k, &diff);
    } else {
      for (int k = 0; k < count; ++k)
        copy_image<false>(plans[k], args.tensor(k), tensors + k, &diff);
    }
    if (!zero_diff(diff)) {
      task.image_iteration = kStaleImages;
      return false;
    }
  }
  task.image_iteration = loop.iteration;
  covered_ = &task;  // analysed: submitted_covered counts it
  named_ = nullptr;  // the record holds the copy
  return true;
}

[[gnu::always_inline]] inline void LoopDriver::replay_trusted(ReplayPlan& task,
                                                              const KernelFn fns[3],
                                                              const Args& args, Ring& ring) {
  Loop& loop = *owner_;
  // The plans walked by pointer to an end read once (the image stores may alias the count).
  AccessPlan* plan = loop.plans.data() + task.first_access;
  AccessPlan* const end = plan + task.access_count;
  for (; plan != end; ++plan) {
    plan->image[kStepWord] += plan->step[0];
    plan->image[kStepWord + 1] += plan->step[1];  // zero for a narrow position
  }
  task.image_iteration = loop.iteration;
  covered_ = &task;  // analysed: submitted_covered counts it
  name_record(loop, task, args, ring, fns);
}

[[gnu::always_inline]] inline void LoopDriver::name_record(Loop& loop, TaskPlan& task,
                                                           const Args& args, Ring& ring,
                                                           const KernelFn fns[3]) {
  // record_iteration is kStaleImages while none is named (no iteration follows it). The
  // distance fits 32 bits (name_record_slow names an image only where every one does).
  if (task.record_iteration + 1 != loop.iteration) [[unlikely]] {
    name_record_slow(loop, task, args, ring, fns);
    return;
  }
  task.record_iteration = loop.iteration;
  named_ = task.record_image->base;
  named_distance_ = static_cast<std::uint32_t>(loop.iteration - task.record_base);
}

[[gnu::always_inline]] inline void LoopDriver::note_submitted(TaskId id) {
  Loop& loop = *owner_;
  loop.table->tasks.push_back(id);
  ++loop.position;
  if (planned_analysed_) {
    ++tasks_analysed_;
    planned_analysed_ = false;
  }
}

inline void LoopDriver::add_task(const Loop& loop, std::int64_t iteration, std::uint32_t position) {
  const TaskId id = loop.table->at(iteration, position);
  if (live(id)) dependence_.add_producer(id);
}

// Adds `id` to `out` unless listed (each task once, as Dependence lists them); false when full.
inline bool LoopDriver::list_once(TaskSlot** out, int* n, int capacity, TaskId id) const {
  TaskSlot* const slot = &rings_[id.ring()]->slot(id.local());
  for (int k = 0; k < *n; ++k) {
    if (out[k] == slot) return true;
  }
  if (*n == capacity) return false;
  out[(*n)++] = slot;
  return true;
}

inline int LoopDriver::edge_producers(TaskSlot** out, int capacity) const {
  const Loop& loop = *owner_;
  const std::uint32_t p = loop.position;
  const std::int64_t i = loop.iteration;
  const loops::TemplateTaskDeps& deps = loop.tmpl.deps(p);
  int n = 0;
  for (const std::uint32_t q : deps.same_iteration) {
    const TaskId id = loop.table->at(i, q);
    if (live(id) && !list_once(out, &n, capacity, id)) return -1;
  }
  for (const loops::CarriedEdge& e : deps.carried) {
    const std::int64_t last = std::min(e.max_distance, i - loop.first_analysed);
    for (std::int64_t d = e.min_distance; d <= last; ++d) {
      const TaskId id = loop.table->at(i - d, e.producer);
      if (live(id) && !list_once(out, &n, capacity, id)) return -1;
    }
  }
  return n;
}

inline int LoopDriver::created_producers(const Args& args, TaskSlot** out, int n,
                                         int capacity) const {
  // Every tracked access goes into a family or is deferred (route_producers' condition, checked
  // here against this submit's masks): record() reads no region.
  if ((tracked_mask_ & ~(family_mask_ | deferred_mask_)) != 0) return -1;
  for (const TaskPlan::Step& step : covered_->steps) {
    if (step.arg == TaskPlan::kExternalStep) {
      if (live(step.id) && !list_once(out, &n, capacity, step.id)) return -1;
      continue;
    }
    // A buffer the same iteration made (routed_producers' test): its creator, live with its
    // scope open; anything else is collect()'s (which names the error).
    const TaskId creator = args.tensor(static_cast<int>(step.arg)).producer();
    if (creator.ring() >= rings_.size() || !dependence_.creator_retained(creator) ||
        !live(creator)) {
      return -1;
    }
    // Live, so edge_producers listed it (the same task: table.at(i, position)).
    if (!step.edge && !list_once(out, &n, capacity, creator)) return -1;
  }
  return n;
}

inline int LoopDriver::direct_producers(const Args& args, TaskSlot** out, int capacity,
                                        AccessRegion* regions) const {
  int n = edge_producers(out, capacity);
  if (n < 0) return -1;
  const TaskPlan& task = *covered_;  // loop.task_plans[p]
  if (!task.direct) {
    if (!task.created) return routed_producers(args, out, n, capacity, regions);
    return created_producers(args, out, n, capacity);
  }
  for (const TaskId id : task.producers) {
    if (live(id) && !list_once(out, &n, capacity, id)) return -1;
  }
  return n;
}

inline int LoopDriver::wide_producers(const Args& args, TaskSlot** out, int capacity,
                                      AccessRegion* regions) {
  const TaskPlan& task = *covered_;
  if (!task.wide_listed) [[unlikely]] {
    wide_state();  // direct_producers reads it
    return direct_producers_call(args, out, capacity, regions);
  }
  // created_producers' condition, every tracked access goes into a family or is deferred, holds
  // after every replay_wide that passed (records_into_map() is false).
  const Loop& loop = *owner_;
  const std::int64_t i = loop.iteration;
  const loops::LoopTasks& table = *loop.table;
  // The fixed lists (externals and same-iteration positions) fit in `capacity` at once, so
  // neither loop tests it per entry.
  if (capacity < static_cast<int>(TaskPlan::kWideExternal + TaskPlan::kWideSame)) [[unlikely]] {
    return -1;
  }
  int n = 0;
  for (std::uint32_t k = 0; k < task.wide_external_count; ++k) {
    const TaskId id = task.wide_external[k];
    if (live(id)) out[n++] = &rings_[id.ring()]->slot(id.local());
  }
  const std::uint64_t row = table.iteration_start[static_cast<std::size_t>(i)];
  for (std::uint32_t k = 0; k < task.wide_same_count; ++k) {
    const TaskPlan::WideSame same = task.wide_same[k];
    const TaskId id = table.tasks[row + same.position];
    if (same.creator) {
      // A creator (replay_wide: the argument's producer is this task) must be retained, its
      // scope open, else collect() decides (it names the error). Retained implies live: its
      // scope's reference keeps it from being consumed until release_scope_task, which ends the
      // retention first.
      if (!dependence_.creator_retained(id)) return -1;
    } else if (!live(id)) {
      continue;  // an edge alone only while its producer lives
    }
    out[n++] = &rings_[id.ring()]->slot(id.local());
  }
  const std::int64_t analysed = i - loop.first_analysed;
  for (std::uint32_t k = 0; k < task.wide_carried_count; ++k) {
    const loops::CarriedEdge& e = task.wide_carried[k];
    const std::int64_t last = std::min(e.max_distance, analysed);
    for (std::int64_t d = e.min_distance; d <= last; ++d) {
      const TaskId id = table.at(i - d, e.producer);
      if (!live(id)) continue;
      if (n == capacity) return -1;
      out[n++] = &rings_[id.ring()]->slot(id.local());
    }
  }
  return n;
}

inline int LoopDriver::direct_producers_with_edges(TaskSlot** out, int capacity) const {
  int n = edge_producers(out, capacity);
  if (n < 0) return -1;
  for (const TaskId id : covered_->producers) {
    if (live(id) && !list_once(out, &n, capacity, id)) return -1;
  }
  return n;
}

inline Status LoopDriver::collect(const Args& args, AccessRegion* regions) {
  Loop& loop = *owner_;
  const std::int64_t i = loop.iteration;
  const std::uint32_t p = loop.position;
  const loops::TemplateTaskDeps& deps = loop.tmpl.deps(p);
  for (const std::uint32_t q : deps.same_iteration)
    add_task(loop, i, q);
  for (const loops::CarriedEdge& e : deps.carried) {
    const std::int64_t last = std::min(e.max_distance, i - loop.first_analysed);
    for (std::int64_t d = e.min_distance; d <= last; ++d)
      add_task(loop, i - d, e.producer);
  }
  const TaskPlan& task = *covered_;  // loop.task_plans[p]
  if (task.direct) {
    for (const TaskId id : task.producers) {
      if (live(id)) dependence_.add_producer(id);
    }
    return Status{};
  }
  const AccessPlan* const plans = loop.plans.data() + task.first_access;
  // Fresh outputs have nothing to collect, nor do quiet accesses (AccessPlan::quiet).
  for (std::uint32_t todo = task.collect & ~quiet_mask_; todo != 0; todo &= todo - 1) {
    const int k = std::countr_zero(todo);
    const AccessPlan& plan = plans[k];
    const ArgTag tag = plan.tag;  // plan_analysed checked it is the argument's
    const Tensor& t = args.tensor(k);
    // The creator, as for any submit (a wrapped tensor has none): inline when it is live and
    // its scope is open, as the replay check found for a buffer the loop made; otherwise
    // Dependence::add_creator adds it or names the error.
    const TaskId creator = t.producer();
    if (creator.valid()) {
      if (creator.ring() < rings_.size() && dependence_.creator_retained(creator) &&
          live(creator)) {
        dependence_.add_producer(creator);
      } else {
        Status status = dependence_.add_creator(t, k);
        if (!status.ok()) return status;
      }
    }
    if (!plan.tracked) continue;
    const AccessKind kind = tag == ArgTag::in ? AccessKind::read : AccessKind::write;
    // An access a family stands for needs no region unless the map is asked for it below.
    const bool in_family = (family_mask_ >> k) & 1u;
    if ((fresh_mask_ >> k) & 1u) {
      // A buffer made before analysis started: its earlier accessors are in the map. One made
      // since meets only the loop's tasks (template edges); its entry is deferred.
      if (made_[k] < loop.first_analysed) {
        regions[k] = make_region(t);
        dependence_.add_accessors(regions[k], kind);
      }
      continue;
    }
    // Ordered after iteration i - 1's same write, which waited for these already.
    if (plan.stationary && i > loop.first_analysed) {
      if (!in_family) regions[k] = make_region(t);
      continue;
    }
    if (plan.dense) {
      regions[k] = make_region(t);
      dependence_.add_accessors(regions[k], kind);
      continue;
    }
    const std::uint32_t a = static_cast<std::uint32_t>(&plan - loop.plans.data());
    const std::vector<MapEntry>& external = loop.external[a];
    if (external.empty() || (plan.fixed && (in_family || !plan.free_read))) {
      // Nothing outside the loop, or the same box as the template's, whose external producers
      // were filtered once: only their retirement is left to check.
      for (const MapEntry& e : plan.fixed ? loop.fixed_external[a] : external) {
        if (live(e.task_id)) dependence_.add_producer(e.task_id);
      }
      if (!in_family) regions[k] = make_region(t);
      continue;
    }
    regions[k] = make_region(t);
    const AccessRegion& region = regions[k];
    for (const MapEntry& e : external) {
      if (kind == AccessKind::read && e.kind != static_cast<std::uint8_t>(AccessKind::write)) {
        continue;
      }
      if (live(e.task_id) && TensorMap::overlaps(region, e)) dependence_.add_producer(e.task_id);
    }
  }
  return Status{};
}

}  // namespace tmr::detail
