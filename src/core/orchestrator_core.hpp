// The orchestrator side of the engine: runs on the caller's thread and turns each submit into a
// task in a handful of named steps — reserve ring memory (waiting on the watermark when full),
// fill the task record, discover producers (dependence/), wire fanout edges (graph/), record the
// task's accesses, publish it and hand it to the schedulers once it has no producers left.
// It sees the rest of the engine only through the narrow interfaces of seams.hpp.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/dependence/dependence.hpp"
#include "core/graph/fanout.hpp"
#include "core/loops/loop_driver.hpp"
#include "core/loops/pattern_loop.hpp"
#include "core/ring.hpp"
#include "core/seams.hpp"
#include "tmr/kernel.hpp"
#include "tmr/orchestrator.hpp"
#include "tmr/trace.hpp"

namespace tmr::detail {

// Whether analysed submits may use the AVX2 replay compare where the CPU has it (default true;
// LoopDriver::set_wide_compare); tests turn it off to run the 16-byte compare on the same host.
// Read at every run's start.
void set_wide_replay_compare(bool allowed);

// Everything the orchestrator uses, given by the composition root.
struct OrchestratorPorts {
  std::span<Ring* const> rings;  // kRingCount rings, by scope depth
  int clusters;                  // bounds a start-together task's blocks
  const KernelRegistry& kernels;
  double stall_timeout_s;
  double tensor_wait_timeout_s;
  const RunClock& clock;
  Waker& waker;
  CompletionSink& sink;
  OrchestratorHost& host;
  bool parallel_for_analysis;  // RuntimeConfig::parallel_for_analysis (TMR_PARALLEL_FOR)
  // What sink.has_error() reads (set once an error is latched), read directly on the submit
  // path instead of through the virtual call.
  const std::atomic<bool>& error_latched;
};

// An Orchestrator used after its run ended (runtime_api.cpp: every call's run test).
[[noreturn, gnu::cold, gnu::noinline]] void throw_run_ended();

class OrchestratorCore {
  friend class tmr::Orchestrator;  // its submit() calls submit_plain* when plain_ready()

 public:
  explicit OrchestratorCore(const OrchestratorPorts& ports);

  // Forgets everything and opens the outermost scope. Only between runs.
  void begin_run();
  // The run's argument tensors, after begin_run (kept parallel_for templates name them by index).
  void run_arguments(std::span<const Tensor> tensors) { loops_.run_arguments(tensors); }
  // Closes every scope still open (reporting unbalanced user scopes).
  void end_orchestration();
  // Between begin_run and end_orchestration: the public Orchestrator may be used.
  bool in_run() const { return in_run_; }
  // The public face handed to the orchestration. It lives as long as the engine, so one kept
  // past its run still reaches in_run() and reports the misuse instead of reading a dead stack.
  Orchestrator& api() { return api_; }
  // The core behind a run's Orchestrator (tests read loop state through loops()).
  static const OrchestratorCore& of(const Orchestrator& orchestrator) {
    return *orchestrator.core_;
  }

  // Orchestrator::submit when plain_ready() fails (its only caller): the run test (throws), then
  // the checks and dispatch. Hidden: called directly, not through the PLT.
  [[gnu::visibility("hidden")]] TaskOutputs submit(const MixKernels& kernels, const Args& args);
  // Orchestrator::submit's own test, inline there (it is defined beside submit()): true when
  // submit() would take submit_plain or submit_plain_outputs straight away (plain_ready_, the
  // kernels of the submit before, plain_args, no error latched).
  [[gnu::always_inline]] bool plain_ready(const MixKernels& kernels, const Args& args) const {
    return plain_ready_ == kPlainReady && same_plan(kernels, args);
  }
  // Orchestrator::submit's third test, after loop_ready(): plain_ready() for a run that records
  // (submit_plain_recorded or submit_plain_outputs_recorded straight away). Third, so that
  // neither a plain submit nor a loop's pays for it.
  [[gnu::always_inline]] bool recorded_ready(const MixKernels& kernels, const Args& args) const {
    return plain_ready_ == kRecordedReady && same_plan(kernels, args);
  }
  [[gnu::always_inline]] bool same_plan(const MixKernels& kernels, const Args& args) const {
    return kernels.aic == planned_kernels_.aic && kernels.aiv0 == planned_kernels_.aiv0 &&
           kernels.aiv1 == planned_kernels_.aiv1 && plain_args(args) && !fatal();
  }
  // Orchestrator::submit's second test, when plain_ready() failed: a parallel_for's owner is
  // analysing and no learning loop records its submits (LoopDriver::replaying()), so
  // submit_looped may skip what that implies of submit()'s tests.
  [[gnu::always_inline]] bool loop_ready() const { return loops_.replaying(); }
  // submit() inside a replaying loop (loop_ready()): its tests and dispatch's but those
  // loop_ready() implies (a run, an active loop analysing, no recorders). Hidden, as submit();
  // not inline, so Orchestrator::submit's plain path keeps its frame (none).
  [[gnu::visibility("hidden"), gnu::noinline]] TaskOutputs submit_looped(const MixKernels& kernels,
                                                                         const Args& args);
  TaskOutputs alloc(const Args& args);
  void scope_begin();
  void scope_end();
  // parallel_for: runs body(context, orchestrator, i) for i in [0, n) under loop analysis.
  using LoopBody = void (*)(void* context, Orchestrator& orchestrator, std::int64_t index);
  void parallel_for(std::int64_t n, bool scope_per_iteration, LoopBody body, void* context,
                    Orchestrator& orchestrator);
  // parallel_for with a TaskPattern (Orchestrator::parallel_for(n, pattern)): the lambda loop of
  // pattern.args(i) submits, or, when the pattern's steps are checked (loops::AffineLoop), its
  // arguments moved in place and, once verified, submitted without the replay compare.
  void parallel_for(std::int64_t n, const TaskPattern& pattern, bool scope_per_iteration,
                    Orchestrator& orchestrator);
  // parallel_for(n, pattern) for a pattern past the first version's (several tasks, fresh
  // outputs, output references, indexed views, conditional scalars): loops::PatternLoop's
  // iterations (arguments moved in place, index tables read directly after one wait), or, when
  // the analysis is off or PatternLoop cannot take it, pattern.submit_iteration(o, i).
  void parallel_for_tasks(std::int64_t n, const TaskPattern& pattern, bool scope_per_iteration,
                          Orchestrator& orchestrator);
  // get_tensor_data's wait for every element of `rows` at once (a pattern's index-table row):
  // false when the run has failed.
  bool wait_table(const Tensor& rows);
  int scope_depth() const { return static_cast<int>(scope_starts_.size()) - 1; }

  // `out` holds type.size zero bytes (Orchestrator::get_tensor_data's value-initialised T), which
  // a read that fails leaves as they are.
  void read_element(const Tensor& tensor, const Shape& indices, void* out,
                    const ElementRequest& type);
  // read_element's quiet case (an analysed loop's repeated read of an external buffer that no
  // task writes, the block table read per iteration), inline in Orchestrator::read_element: true
  // when it read the element; false, having changed nothing, for read_element to take the steps.
  [[gnu::always_inline]] bool read_quiet_element(const Tensor& tensor, const Shape& indices,
                                                 void* out, const ElementRequest& type);
  void write_element(const Tensor& tensor, const Shape& indices, const void* in,
                     const ElementRequest& type);
  void wait_for(const Tensor& tensor);

  void fail(ErrorCode code, const std::string& message);
  bool fatal() const { return ports_.error_latched.load(std::memory_order_acquire); }
  Status status() const;
  const KernelRegistry& kernels() const;

  std::uint64_t tasks_submitted() const { return sequence_; }
  std::uint64_t kernel_tasks_submitted() const { return kernel_tasks_; }
  std::uint64_t inline_tasks() const { return inline_tasks_; }
  // Producers a plain discovery left out because they had completed (Dependence::left_out).
  std::uint64_t completed_producers_left_out() const { return dependence_.left_out(); }
  // Where the completed tasks' ids come from (Engine: the scheduler's logs). Only between runs.
  void read_completions_from(CompletionLogs* logs) { dependence_.read_completions_from(logs); }
  // Whether this run's discoveries may read the completion logs (set by begin_run: a run that
  // neither records nor charges leaves completed producers out; Engine gives the scheduler the
  // logs only then).
  bool reads_completions() const { return plain_run_; }
  std::uint64_t blocked_ns() const { return blocked_ns_; }
  // The waits for ring room (wait_for_room): how many, wall and thread CPU nanoseconds.
  struct RingWaits {
    std::uint64_t count = 0;
    std::uint64_t ns = 0;
    std::uint64_t cpu_ns = 0;
  };
  const RingWaits& ring_waits() const { return ring_waits_; }
  // How many room credits replaying submits took this run (grant_room): far fewer than the
  // loop's submits when the batch path runs.
  std::uint64_t room_grants() const { return room_grants_; }
  // Heap credits granted this run (submit_wide's heap credit): a wide submit with outputs that
  // did not grant one took the credit.
  std::uint64_t heap_grants() const { return heap_grants_; }
  // Moves the run's recorded events (TaskEvent, one a submit, in submission order) and their
  // producers into `trace`; the next run reserves as many of each as this one recorded.
  void take_events(Trace* trace);
  const TensorMap& tensor_map() const { return dependence_.map(); }
  const LoopDriver& loops() const { return loops_; }

 private:
  using Plan = SubmitPlan;  // (loop_driver.hpp: a wide template position keeps one)
  // Where a submit's outputs go: one heap range, each output 64-byte aligned.
  struct OutputLayout {
    std::uint64_t offsets[kMaxTensorArgs];  // set for `out` arguments only (not zeroed per submit)
    std::uint64_t total = 0;
    int count = 0;
  };
  // The generic steps of a submit the loop analysis does not cover (every submit outside a
  // parallel_for; learning and fallen-back iterations, after submit_in_loop's plan_submit).
  TaskOutputs submit_planned(const Plan& plan, const Args& args);
  // submit_planned for dispatch's usual submit: planned_ (a kernel task), no out(...) argument,
  // no parallel_for active, in a run that neither charges work nor records events (plain_run_).
  // The same steps as a straight line: no output layout, heap or scope-hold tests, no charge,
  // no recording or inline-task tests (~40 instructions a submit).
  TaskOutputs submit_plain(const Args& args);
  // submit_plain for a submit with out(...) arguments: the layout, fit, heap and scope hold
  // stay (the task is scoped), the charge, recording, inline-task and loop tests go.
  TaskOutputs submit_plain_outputs(const Args& args);
  // submit_plain and submit_plain_outputs in a run that records events and charges no work
  // (plain_recorded_, threads with RuntimeConfig::record_events): the same straight line with
  // record_event before the wiring (a plain task may run from its last edge's push) and the
  // ready time stamped when the submit itself makes the task ready. dispatch's second branch
  // (Orchestrator::submit's plain_ready() stays false in such a run: no test a plain submit).
  TaskOutputs submit_plain_recorded(const Args& args);
  TaskOutputs submit_plain_outputs_recorded(const Args& args);
  // Which instance of submit_planned's body: the generic steps, or one of dispatch's straight
  // lines (plain_run_ or plain_recorded_, no parallel_for active, a kernel task) without or with
  // fresh outputs.
  enum class Steps { generic, plain, plain_outputs, plain_recorded, plain_outputs_recorded };
  template <Steps kSteps>
  TaskOutputs submit_planned_as(const Plan& plan, const Args& args);
  // submit() and alloc() while a parallel_for runs (LoopDriver::active()).
  TaskOutputs submit_in_loop(const Plan& plan, const Args& args);
  // submit()'s steps once planned_ holds the submit's checked plan: submit_planned, or inside a
  // parallel_for submit_replayed when its fast test passes, else submit_in_loop_slow
  // (submit_in_loop_general outside every scope or when the periodic sync is due). Inline.
  TaskOutputs dispatch(const Args& args);
  // submit() for new kernels or arguments past plain_args(): replan, validate_args, dispatch.
  [[gnu::noinline]] TaskOutputs submit_checked(const MixKernels& kernels, const Args& args,
                                               bool same_kernels);
  // submit() for kernels other than the last submit's while a loop is active: at a wide replayed
  // position whose kept plan names them, submit_wide with that plan; anything else
  // submit_checked. Apart from submit_checked so a wide submit's way in saves no registers for
  // replan's and dispatch's calls (submit_checked's frame cost ~12 instructions a wide submit).
  [[gnu::noinline]] TaskOutputs submit_new_kernels(const MixKernels& kernels, const Args& args);
  // submit_new_kernels for submit_looped (loop_ready(): the owner analysing, no recorders), whose
  // position test is then LoopDriver::replaying_wide_plan.
  [[gnu::noinline]] TaskOutputs submit_new_kernels_looped(const MixKernels& kernels,
                                                          const Args& args);
  // submit_new_kernels' steps past the position test: `kept` the position's kept plan or null.
  [[gnu::always_inline]] TaskOutputs submit_kept(const SubmitPlan* kept, const MixKernels& kernels,
                                                 const Args& args);
  // submit_in_loop out of line (dispatch's call outside every scope or with the sync due).
  [[gnu::noinline]] TaskOutputs submit_in_loop_general(const Plan& plan, const Args& args);
  // submit_in_loop past the fast path (in a scope, ring `ring_index`): plan_submit decides.
  [[gnu::noinline]] TaskOutputs submit_in_loop_slow(const Plan& plan, const Args& args,
                                                    int ring_index, Ring& ring);
  // A submit a parallel_for template covers (LoopDriver::plan_submit returned true): the same
  // steps with what the template position fixes prepared once (docs/design.md, "parallel_for").
  TaskOutputs submit_analysed(const Plan& plan, const Args& args, int ring_index, Ring& ring);
  // A submit at a position LoopDriver::fast_position() allows (`fast`: its plan), the ring's window
  // having room: LoopDriver::replay_into first (copying its tensors into the record at the ring's
  // head; on a miss submit_in_loop_slow decides), then submit_analysed's steps for a kernel task of
  // a TaskPlan::fast position, in a straight line (no outputs, layout, scope, map or deferred
  // entries); a producer list that is not direct or a dependency pool short of room take
  // submit_analysed's generic steps.
  // kTrusted (a pattern loop's verified position, submit_pattern): LoopDriver::replay_trusted
  // instead of replay_into, which cannot miss.
  template <bool kTrusted = false>
  TaskOutputs submit_replayed(const Plan& plan, const Args& args, Ring& ring,
                              LoopDriver::ReplayPlan& fast);
  // A pattern loop's iteration `i` (AffineLoop::at): submit_replayed<true> at a trusted position
  // with room at once, else the public submit (whose exact pass, if any, AffineLoop::checked
  // counts).
  // `settled`: the pattern's trust, the plan's kernels and the error test known to pass (the
  // steady stretch's iteration after a trusted one). True when the task took the trusted submit.
  bool submit_pattern(loops::AffineLoop& loop, const TaskPattern& pattern,
                      const MixKernels& kernels, std::int64_t i, bool settled);
  // submit_replayed for a position LoopDriver::wide_position() allows (fresh outputs, buffers its
  // own iteration made, closed free reads): LoopDriver::replay_wide first, then submit_analysed's
  // steps with the position's output layout prepared once (LoopDriver::PreparedTask) and its
  // producers from LoopDriver::wide_producers (the position's precomputed list).
  // With trusted_wide_ set (a pattern loop's verified wide position, the current one, whose
  // kept plan the caller passes: submit_pattern_task, submit_pattern_iteration):
  // LoopDriver::replay_wide_trusted replaces replay_wide (no compare, no miss); every later step
  // is the compared path's. (A flag, not a second instance: two instances of this function left
  // the scope list's push_back a call in both, +17 instructions a wide submit, measured.)
  TaskOutputs submit_wide(const Plan& plan, const Args& args, int ring_index, Ring& ring);
  // submit_wide's steps after the admit when its unguarded wiring does not apply (wide_producers
  // gave no list, the dependency pool is short, an error is latched, or a run records): the
  // producers wired with the guard (wire_direct) or discovered (discover_producers), record(),
  // the scope, the publish, record_event and the release. Out of line and cold.
  [[gnu::noinline, gnu::cold]] void submit_wide_generic(TaskOutputs& outputs, TaskSlot& task,
                                                        const Plan& plan, const Args& args,
                                                        int ring_index, Ring& ring,
                                                        std::uint64_t heap_consumed, bool scoped,
                                                        TaskSlot** direct, int direct_count,
                                                        AccessRegion* regions);
  bool trusted_wide_ = false;
  // Task `task` of a several-task pattern loop's iteration (loops::PatternLoop::iterate): at a
  // position the loop verified (PatternLoop::trusted, LoopDriver::trusted_wide) with room at
  // once, submit_wide with trusted_wide_ set; else the public submit, whose wide pass
  // (LoopDriver::wide_pass) PatternLoop::checked counts (a nested run's positions then proven
  // by LoopDriver::run_affine).
  TaskOutputs submit_pattern_task(loops::PatternLoop& loop, int task, std::int64_t i,
                                  const MixKernels& kernels, const Args& args);
  // Iteration `i` of a several-task pattern loop in one call. When every task is verified
  // (PatternLoop::all_trusted), no error is latched and the scope's ring has room for the whole
  // iteration at once (a room credit covering its task count, granted here if the window has the
  // room and no periodic sync falls inside it), each task's moves are written
  // (PatternLoop::move_trusted) and it goes straight to submit_wide with trusted_wide_ set, the
  // positions of all its tasks tested once before the first (LoopDriver::trusted_tasks:
  // trusted_wide's tests, which no trusted wide submit can change the outcome of); the first
  // task that cannot (a bad table entry, a position not predicted, the credit revoked by a heap
  // wait, an error) and every later one go PatternLoop::iterate's way (submit_pattern_task), as
  // does the whole iteration otherwise.
  void submit_pattern_iteration(loops::PatternLoop& loop, Orchestrator& o, std::int64_t i);
  // A room credit on the scope's ring for `count` submits at once (room_credited for each).
  bool room_for(int count);
  // The several-task pattern loops' PatternLoop, kept across loops (its storage reused). One
  // pattern loop at a time: the orchestration is one thread, and while a pattern loop runs no
  // code of the user's does (a TaskPattern holds no callable: its iterations' arguments are
  // data, its kernels run on the cores), so nothing can begin a second one until it returns.
  loops::PatternLoop pattern_loop_;
  // The record's header: the position's prepared copy, or made from the plan and the tags (and
  // kept as the position's prepared copy) by its first analysed submit; and the plan's kernel
  // functions into the record's own (TaskRecord::own_fns).
  static void write_header(TaskRecord& record, LoopDriver::PreparedTask& prepared, const Plan& plan,
                           const Args& args);
  // write_header without the kernel functions: a record naming its image (TaskRecord::fns).
  static void write_shared_header(TaskRecord& record, LoopDriver::PreparedTask& prepared,
                                  const Plan& plan, const Args& args);
  // ---- the steps of a submit, in order
  static OutputLayout layout_outputs(const Args& args);
  // Fails at once what could never fit (instead of waiting for room that never comes).
  bool check_fits(int ring_index, const OutputLayout& layout, bool scoped);
  // check_fits' passing case, inline for the analysed path: the outputs fit the heap, and a
  // scoped task fits beside what open scopes hold.
  bool fits_at_once(int ring_index, const OutputLayout& layout, bool scoped) const {
    const Ring& r = ring(ring_index);
    return layout.total <= r.heap_capacity() &&
           (!scoped || (open_scope_tasks_[ring_index] + 2 <= r.window() &&
                        open_scope_heap_[ring_index] + layout.total <= r.heap_capacity()));
  }
  TaskSlot& admit_task(Ring& ring, int ring_index, std::uint64_t heap_consumed,
                       std::uint64_t heap_offset, const Plan& plan, const Args& args,
                       const OutputLayout& layout, TaskOutputs* outputs,
                       bool outputs_possible = true, const KernelFn* kept_fns = nullptr,
                       bool may_be_inline = true);
  // admit_task's slot fields (everything but the record).
  // `dep_nodes`: dependency nodes taken with the admit (Ring::admit), the last ones of the pool.
  // `replayed`: a submit_replayed task, which needs no dependence state
  // (Dependence::admitted_without_state). `kept_fns`: as Ring::bind_arguments'.
  // `may_be_inline` false: `plan` is a kernel task's (planned_: its inline_task test goes).
  // `set_dep_end` false: the wiring that follows writes the slot's dep_end (Ring::admit).
  TaskSlot& admit_slot(Ring& ring, int ring_index, std::uint64_t heap_consumed, const Plan& plan,
                       const Args& args, std::uint64_t dep_nodes = 0, bool replayed = false,
                       const KernelFn* kept_fns = nullptr, bool may_be_inline = true,
                       bool set_dep_end = true, bool retained = false);
  // admit_task's fresh outputs: materialised in the heap at `heap_offset`, into the record and
  // `outputs`. The record's tensors must hold the arguments' already (copy_tensors).
  static void materialise_outputs(TaskRecord& record, Ring& ring, std::uint64_t heap_offset,
                                  const Args& args, const OutputLayout& layout, TaskId id,
                                  TaskOutputs* outputs);
  // The producers of a task a parallel_for template covers, from the loop analysis (loops_).
  bool discover_producers(Ring& ring, const Args& args, AccessRegion* regions);
  // A discovery's end (`found`: its result): the error named, or the producers' dependency nodes
  // checked to fit. Out of line: the plain submit calls it only when a check fails at once.
  [[gnu::noinline]] bool finish_discovery(Ring& ring, const Status& found);
  // The producers found fit the ring's dependency pool (waiting for room); false on error.
  bool check_dep_nodes(Ring& ring);
  // Wires the task behind its producers; returns the edges already resolved.
  std::int32_t wire_producers(Ring& ring, TaskSlot& task, bool ok);
  // wire_producers for a kernel task of a direct template position: `producers` (each once,
  // live when listed), dependency nodes already checked to fit.
  std::int32_t wire_direct(Ring& ring, TaskSlot& task, TaskSlot* const* producers, int count);
  // wire_direct for submit_replayed, whose task the orchestrator touches no more once wired
  // but for its own books: without the wiring guard (graph::begin_unguarded) unless recording
  // (record_event writes the task's ready time after the wiring). release_replayed ends it.
  std::int32_t wire_replayed(Ring& ring, TaskSlot& task, TaskSlot* const* producers, int count);
  // The unguarded wiring itself (wire_replayed when not recording, wire_plain, submit_wide's
  // direct list): the task's first count holds its completion reference and, when `scoped` (it
  // creates buffers), its scope's, so neither is a locked instruction later. Everything a worker
  // reads of the task is written before the call; from its first push the task may run.
  // `may_charge` false: a caller whose run charges nothing (the plain instances) drops the test.
  // `info`: the task's Ring::SlotInfo when the caller has it (else found by the task's id).
  std::int32_t wire_unguarded_list(Ring& ring, TaskSlot& task, TaskSlot* const* producers,
                                   int count, bool scoped, bool may_charge = true,
                                   Ring::SlotInfo* info = nullptr);
  // release_kernel_task after wire_replayed (`count`: its producers).
  void release_replayed(TaskSlot& task, std::int32_t resolved, int count);
  // release_replayed's unguarded release when not recording (the pinned path, which tested
  // recording_ already).
  void release_untraced(TaskSlot& task, std::int32_t resolved, int count);
  // The pinned producer: a replayed position's single fixed external producer, still running
  // when a task was wired to it, on which the orchestrator holds one reference (graph::hold,
  // once per pin). While it holds it the slot cannot be consumed and reused, so the position's
  // later replayed tasks push their edge onto it directly (wire_pinned): no fast_producers walk,
  // no liveness test. The reference stops its ring's watermark at the producer, so release_pin
  // drops it at every ring sync (every kSubmitsPerSync submits), before any wait (wait_blocked),
  // at the orchestration's end, and as soon as a push finds the producer finished.
  // Each pinned edge is pushed at once (one CAS): a chain of them kept back by the orchestrator
  // (session 20) saved ~7 ns a task but left a loop body that waits outside tmr for an earlier
  // iteration's task waiting for ever once the producer had finished (session 35).
  struct Pin {
    TaskId producer;
    TaskSlot* slot = nullptr;
  };
  // How many nodes ahead wire_pinned asks for the pool's line (Ring::prefetch_dep_node): as
  // many tasks, as far as Ring::prefetch_head asks for the slot and record.
  static constexpr std::uint64_t kPinnedNodeAhead = 8;
  Pin pin_;
  void release_pin() {
    if (pin_.slot == nullptr) return;
    if (pin_.slot->ring->release(*pin_.slot)) ports_.waker.notify_progress();
    pin_.slot = nullptr;
  }
  // wire_replayed for a task whose one edge is to the pinned producer, admitted with its one
  // dependency node (admit_slot's dep_nodes: the pool's last node, its dep_end already set).
  std::int32_t wire_pinned(Ring& ring, TaskSlot& task);
  static constexpr int kDirectProducers = 16;
  void enter_scope(TaskSlot& task, int ring_index, std::uint64_t heap_consumed, bool scoped);
  // enter_scope's books, for a task whose scope reference is already counted (wire_plain).
  void hold_in_scope(TaskSlot& task, int ring_index, std::uint64_t heap_consumed);
  // hold_in_scope's body, inlined into submit_wide and submit_plain_outputs (the call's frame
  // cost ~12 instructions a submit); hold_in_scope stays a call for the other paths.
  [[gnu::always_inline]] void hold_in_scope_inline(TaskSlot& task, int ring_index,
                                                   std::uint64_t heap_consumed) {
    dependence_.retain_creator(task.id);
    hold_retained_inline(task, ring_index, heap_consumed);
  }
  // hold_in_scope_inline for a task admitted retained (admit_slot's `retained`): the scope's
  // books alone.
  [[gnu::always_inline]] void hold_retained_inline(TaskSlot& task, int ring_index,
                                                   std::uint64_t heap_consumed) {
    ++open_scope_tasks_[ring_index];
    open_scope_heap_[ring_index] += heap_consumed;
    scope_tasks_.push_back(&task);
  }
  // wire_producers for a plain kernel task, not recording: without the wiring guard (see
  // wire_replayed); `scoped`: the task creates buffers (its scope's reference comes with it);
  // `may_charge`: as wire_unguarded_list's.
  // `info`: the task's Ring::SlotInfo (its dep_end written here).
  std::int32_t wire_plain(Ring& ring, TaskSlot& task, bool scoped, bool may_charge,
                          Ring::SlotInfo& info);
  // `producers`: any sized range of TaskSlot* (Dependence::producers(), or a direct list).
  template <class Producers>
  void record_event(const TaskSlot& task, const Plan& plan, const Args& args,
                    const Producers& producers);
  // Hands the task to the schedulers if it has no producers left (or retires a failed one).
  void release_wiring_guard(TaskSlot& task, std::int32_t resolved, bool ok);
  // release_wiring_guard for a kernel task wired without error, inline.
  void release_kernel_task(TaskSlot& task, std::int32_t resolved) {
    ++kernel_tasks_;
    if (graph::finish_wiring(task, resolved)) {
      if (recording_) task.ring->set_ready_ns(task.id.local(), ports_.clock.now_ns());
      ports_.host.push_ready(&task);
    }
  }

  bool validate_kernels(const MixKernels& kernels, Plan* plan);
  bool validate_args(const Args& args, const Plan& plan);
  // validate_args' passing case for a kernel task with the usual arguments, inline (no error
  // recorded, blocks, not start-together): nothing else to check.
  static bool plain_args(const Args& args) {
    return !args.has_error() && args.block_count() >= 1 && !args.is_sync_start();
  }
  // Refreshes every ring's watermark and frees dependence entries of retired tasks.
  void sync_rings();
  // Waits until `ring` has a task slot and `bytes` of heap. False on error (latched).
  bool wait_for_room(Ring& ring, std::uint64_t bytes, std::uint64_t* offset,
                     std::uint64_t* consumed);
  // wait_for_room's passing case, inline for the analysed path: no periodic sync due and room at
  // once (no heap test without outputs). False leaves everything as it was.
  bool room_at_once(Ring& ring, std::uint64_t bytes, std::uint64_t* offset,
                    std::uint64_t* consumed) {
    if (!slot_at_once(ring)) return false;
    if (bytes != 0 && !ring.heap_fits(bytes, offset, consumed)) return false;
    ++submits_since_sync_;
    return true;
  }
  // room_at_once's sync and window tests, without its count of the submit: also a plain
  // submit's before its credit (credit_room computes its limit from the count before the submit).
  [[gnu::always_inline]] bool slot_at_once(const Ring& ring) const {
    return submits_since_sync_ + 1 < kSubmitsPerSync && ring.window_has_room();
  }
  // Reclaiming (and freeing TensorMap entries of retired tasks) is batched: every this many
  // submits, or whenever the ring looks full.
  static constexpr std::uint32_t kSubmitsPerSync = 64;
  // Room credit (submit_looped): its sync and window tests are passed once for a batch of
  // replaying submits instead of once a submit. A grant after both passed on `ring` proves them
  // for every later submit on that ring while submits_since_sync_ < credit_limit_: every admit on
  // any path counts one submit (room_at_once, wait_for_room, submit_replayed, submit_wide, the
  // plain submit's credited or credit_room'd admit), the
  // limit is at most kSubmitsPerSync - 1 (no sync due) and at most the window's free slots past
  // the count at the grant, and a ring's live tasks only shrink between admits (a sync only
  // retires more). Wherever the count restarts (the periodic sync) and at a run's start it is
  // revoked. So a credited submit is one whose tests
  // would have passed: no decision changes, the tests are only skipped.
  [[gnu::always_inline]] bool room_credited(const Ring* ring) const {
    return ring == credit_ring_ && submits_since_sync_ < credit_limit_;
  }
  // After submit_looped's tests passed on `ring` for this submit.
  void grant_room(Ring& ring) {
    credit_room(ring);
    ++room_grants_;
  }
  // grant_room without the count (room_grants_ counts replaying submits' grants): a plain
  // submit's (submit_planned_as), whose tests are the same.
  void credit_room(Ring& ring) {
    const std::uint32_t free_slots = ring.window() - 1 - ring.live_tasks();  // >= 1: room now
    credit_limit_ = std::min(submits_since_sync_ + free_slots, kSubmitsPerSync - 1);
    credit_ring_ = &ring;
  }
  void revoke_room() { credit_limit_ = 0; }
  const Ring* credit_ring_ = nullptr;  // the ring of the last grant (never null in a run)
  std::uint32_t credit_limit_ = 0;     // credited while submits_since_sync_ is below it
  std::uint64_t room_grants_ = 0;      // grants this run (tests: the batch path ran)
  // Heap credit (submit_wide): the fit and heap tests of a replayed task's outputs passed once
  // for a run of wide submits (the iterations of a loop) instead of once a submit. A grant
  // (heap_credit_end in the .cpp, out of line), after a wide submit's tests passed on `ring`,
  // covers every later reservation on that ring that ends at or below heap_credit_end_ (a linear
  // heap top): from the ring's heap top up to there the heap does not wrap (the buffer goes at
  // heap_position(), no waste), is free (the tail only advances), and fits the open scopes' books
  // (open_scope_heap_ + (end - top) <= capacity at the grant; every admit on the ring moves the top
  // by what it consumed and adds at most that to the books, a scope's end only subtracts). An admit
  // by another path that wrapped puts the top past the end, so its test fails. A credited
  // reservation is thus one whose tests would have passed, at the same offset: no decision changes.
  // Revoked at a run's start.
  const Ring* heap_credit_ring_ = nullptr;
  std::uint64_t heap_credit_end_ = 0;
  std::uint64_t heap_grants_ = 0;  // grants this run (tests: fewer than the wide submits)
  bool wait_for_dep_nodes(Ring& ring, std::uint64_t nodes);
  // Blocks until `ready()`; diagnoses a deadlock when nothing can move. False on error.
  template <class Ready, class Describe>
  bool wait_blocked(Ready ready, Describe describe, ErrorCode code);
  bool all_kernel_tasks_finished() const;
  // Starts an element access's discovery: the creator of `tensor` and conflicting accesses.
  bool discover_access(const Tensor& tensor, const Tensor& region, AccessKind kind);
  // Waits until every producer found finished.
  bool wait_producers_finished(const char* what);
  void release_scope_task(TaskSlot* task);
  // scope_end's steps once its error test passed: the innermost scope's tasks released (the
  // list's bounds read once: a release changes neither), the scope popped. Inline in scope_end
  // and in parallel_for's per-iteration scope (IterationScope).
  [[gnu::always_inline]] void close_innermost_scope();
  // A scoped parallel_for's iteration scope, one level below the scope the loop began in: its
  // ring and the loop's, found once for the loop, so an iteration whose body left the scopes
  // balanced opens and closes its scope without scope_begin's depth test and ring lookup or
  // scope_end's call (docs/design.md, "parallel_for"). Anything else takes scope_begin/scope_end.
  // The fast open also notes the inner ring's scope books (and where the scope's list starts):
  // the fast close gives them back in one step when they grew by exactly the scope's tasks
  // (close_iteration_scope).
  struct IterationScope {
    static constexpr std::size_t kNotNoted = ~std::size_t{0};  // no scope list starts there
    std::size_t depth = 0;  // scope_starts_.size() when the loop began; 0: never the fast steps
    Ring* outer_ring = nullptr;
    Ring* inner_ring = nullptr;
    int outer_index = 0;
    int inner_index = 0;
    // scope_tasks_.size() at the fast open (its list's start), kNotNoted after a slow one.
    std::size_t start = kNotNoted;
    std::uint32_t tasks = 0;  // open_scope_tasks_[inner_index] at the open
    std::uint64_t heap = 0;   // open_scope_heap_[inner_index] at the open
  };
  IterationScope iteration_scope() const;
  // parallel_for's loop (analysis, steady stretches, scopes) around `body(orchestrator, i)`, and
  // `body.steady(orchestrator, i)` for the iterations a steady stretch begins: both parallel_for
  // forms' (the trusted pattern loop's with submit_pattern inline; orchestrator_core.cpp only).
  template <class Body>
  void run_loop(std::int64_t n, bool scope_per_iteration, Body body, Orchestrator& orchestrator);
  [[gnu::always_inline]] void open_iteration_scope(IterationScope& scope);
  [[gnu::always_inline]] void close_iteration_scope(IterationScope& scope);
  // Charges the set-up of a parallel_for analysis that just started (virtual-time platforms).
  void charge_loop_setup();
  // OrchestratorHost::charge, skipped on a platform that charges nothing (charges_).
  void charge(OrchestratorWork work, std::uint32_t count) {
    if (charges_) ports_.host.charge(work, count);
  }
  bool charges_ = true;     // OrchestratorHost::charges_work(), asked at every run's start
  bool recording_ = false;  // RunClock::recording(), asked at every run's start (fixed per run)
  bool plain_run_ = false;  // !charges_ && !recording_: dispatch may take submit_plain
  // !charges_ && recording_: dispatch may take submit_plain_recorded (completed producers are
  // kept then: a trace names every producer found, as the generic path's recording did).
  bool plain_recorded_ = false;
  // in_run_ && planned_valid_ && plain_run_ && no parallel_for active && no deferred loop
  // entries: one byte for Orchestrator::submit to test (plain_ready) instead of five. Set by
  // dispatch's plain branch (where all five hold), cleared wherever one may stop holding
  // (begin_run, end_orchestration, parallel_for around every loop call); a clear flag only
  // sends a submit the long way, through submit(). kRecordedReady: the same with
  // plain_recorded_ for plain_run_ (recorded_ready), set by dispatch's recorded branch. (A
  // byte compared with a constant: the plain test costs what the flag's did.)
  static constexpr std::uint8_t kPlainReady = 1;
  static constexpr std::uint8_t kRecordedReady = 2;
  std::uint8_t plain_ready_ = 0;  // 0 (false): neither
  std::string describe_ring(Ring& ring) const;
  std::string describe_task(TaskSlot& task) const;
  Ring& ring(int index) const { return *ports_.rings[static_cast<std::size_t>(index)]; }

  OrchestratorPorts ports_;
  Dependence dependence_;
  LoopDriver loops_;  // parallel_for analysis, wrapping dependence_
  // Checks the element type of get/set_tensor_data; false (error latched) on a mismatch.
  bool check_element_type(const Tensor& tensor, const ElementRequest& type, const char* call);
  Orchestrator api_{*this};
  bool in_run_ = false;
  // The last kernels submit() validated and their plan (see submit()).
  MixKernels planned_kernels_;
  Plan planned_;
  bool planned_valid_ = false;
  // submit() for kernels other than the last ones: their plan from the last few validated in this
  // run (a chain of kernels per block alternates among a few), or validate_kernels. False on error.
  bool replan(const MixKernels& kernels);
  struct RecentPlan {
    MixKernels kernels;
    Plan plan;
    const KernelFn* fns;  // kept_fns(plan)
  };
  // The plan's functions as kept for the core's lifetime, one copy per distinct kernel ids and
  // functions: the plain instances' records name them (TaskRecord::fns) instead of copying 72
  // bytes into each record's own_fns (~10 instructions and, for a task of up to 3 tensors, a
  // record line a submit). Asked only when a plan is validated (replan), so never on the
  // per-submit path; a task can never outlive the core that holds its functions.
  using KeptFns = std::array<KernelFn, 3>;
  const KernelFn* kept_fns(const Plan& plan);
  std::map<std::array<KernelId, 3>, std::vector<std::unique_ptr<KeptFns>>> kept_fns_;
  const KernelFn* planned_fns_ = nullptr;  // kept_fns(planned_)
  static constexpr int kRecentPlans = 4;
  RecentPlan recent_plans_[kRecentPlans];
  int recent_plan_count_ = 0;  // valid entries (forgotten at every run's start)
  int recent_plan_next_ = 0;   // the entry the next new plan replaces
  std::vector<TaskSlot*> scope_tasks_;
  std::vector<std::size_t> scope_starts_;
  // The ring the current scope's tasks go to (min(scope_depth(), kRingCount - 1)) and its index,
  // kept by scopes_changed() at every change of scope_starts_ so submit_in_loop reads them at
  // once; null outside every scope.
  Ring* scope_ring_ = nullptr;
  int scope_ring_index_ = 0;
  void scopes_changed() {
    if (scope_starts_.empty()) {
      scope_ring_ = nullptr;
      return;
    }
    scope_ring_index_ = std::min(scope_depth(), kRingCount - 1);
    scope_ring_ = &ring(scope_ring_index_);
  }
  std::uint32_t open_scope_tasks_[kRingCount] = {};
  std::uint64_t open_scope_heap_[kRingCount] = {};
  std::uint32_t submits_since_sync_ = 0;
  std::uint64_t sequence_ = 0;
  std::uint64_t kernel_tasks_ = 0;
  std::uint64_t inline_tasks_ = 0;
  std::uint64_t blocked_ns_ = 0;
  RingWaits ring_waits_;
  // A recording run's events and, flat, their producers' sequences (TaskEvent::first_producer
  // indexes producer_sequences_): reserved at the run's start for as many as the largest run so
  // far recorded (take_events moves both into the run's Trace), so that a recording submit
  // appends to them without an allocation of its own.
  std::vector<TaskEvent> task_events_;
  std::vector<std::uint64_t> producer_sequences_;
  std::size_t events_to_reserve_ = kFirstRunEvents;
  std::size_t producers_to_reserve_ = kFirstRunEvents;
  static constexpr std::size_t kFirstRunEvents = 4096;
};

}  // namespace tmr::detail
