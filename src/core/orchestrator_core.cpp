// The orchestrator (orchestrator_core.hpp): submit, scopes, element access, waiting.
#include "core/orchestrator_core.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <ctime>
#include <sstream>
#include <type_traits>

#include "core/graph/fanout.hpp"
#include "core/loops/pattern_loop.hpp"
#include "core/stall_wait.hpp"

namespace tmr::detail {
namespace {

constexpr std::uint64_t kOutputAlign = 64;
constexpr std::uint64_t kPollNs = 1'000'000;  // re-check a blocked condition every 1 ms

// The calling thread's CPU time (the orchestrator's, in its ring waits).
std::uint64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

std::uint64_t align_up(std::uint64_t value, std::uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

// Shrinks the scope list to its first `size` entries (size <= its size). Not resize(): GCC keeps
// resize out of line for its growing path, a call of ~32 instructions at every scope's end (once
// an iteration of a scoped parallel_for); erasing the tail of pointers is one store of the end.
[[gnu::always_inline]] inline void drop_tail(std::vector<TaskSlot*>& list, std::size_t size) {
  list.erase(list.begin() + static_cast<std::ptrdiff_t>(size), list.end());
}

std::string task_name(TaskId id) {
  return "r" + std::to_string(id.ring()) + ":" + std::to_string(id.local());
}

// Fills `bytes` with copies of one element of `element_size` bytes, doubling the filled prefix.
void fill_pattern(std::byte* data, std::uint64_t bytes, std::uint64_t bits,
                  std::size_t element_size) {
  if (bytes == 0) return;
  std::memcpy(data, &bits, std::min<std::uint64_t>(element_size, bytes));
  std::uint64_t filled = element_size;
  while (filled < bytes) {
    const std::uint64_t chunk = std::min(filled, bytes - filled);
    std::memcpy(data + filled, data, chunk);
    filled += chunk;
  }
}

std::atomic<bool> wide_replay_allowed{true};

// Copies a task's scalars into its record. Up to two (a peers task's spin, paged attention's
// softmax scale or its update's two flags) are plain moves, not a memcpy call of a variable size
// (~15 instructions a submit with scalars); a task without scalars pays one test, as before.
[[gnu::always_inline]] inline void copy_scalars(std::uint64_t* to, const std::uint64_t* from,
                                                int count) {
  if (count <= 0) return;
  if (count <= 2) [[likely]] {
    to[0] = from[0];
    if (count > 1) to[1] = from[1];
  } else {
    std::memcpy(to, from, static_cast<std::size_t>(count) * sizeof(std::uint64_t));
  }
}

}  // namespace

void set_wide_replay_compare(bool allowed) {
  wide_replay_allowed.store(allowed, std::memory_order_relaxed);
}

OrchestratorCore::OrchestratorCore(const OrchestratorPorts& ports)
    : ports_(ports),
      dependence_(RetirementView(ports.rings.data(), static_cast<int>(ports.rings.size())),
                  ports.rings[0]->window()),
      loops_(ports.rings, dependence_, ports.parallel_for_analysis) {}

void OrchestratorCore::begin_run() {
  dependence_.reset();
  loops_.reset();
  scope_tasks_.clear();
  scope_starts_.assign(1, 0);  // the outermost scope, depth 0
  scopes_changed();
  std::fill(std::begin(open_scope_tasks_), std::end(open_scope_tasks_), 0u);
  std::fill(std::begin(open_scope_heap_), std::end(open_scope_heap_), 0u);
  sequence_ = kernel_tasks_ = inline_tasks_ = blocked_ns_ = 0;
  // The reclaiming cadence restarts with the run: when a look at the rings falls decides what a
  // discovery finds retired, and a sim run must not depend on the run before it.
  submits_since_sync_ = 0;
  credit_ring_ = &ring(0);  // (rings were reset: no credit survives a run)
  revoke_room();
  room_grants_ = 0;
  heap_credit_ring_ = nullptr;  // (rings were reset: no heap credit survives a run)
  heap_credit_end_ = 0;
  heap_grants_ = 0;
  ring_waits_ = {};
  planned_valid_ = false;  // the kernel registry may have changed between runs
  recent_plan_count_ = recent_plan_next_ = 0;
  pin_ = Pin{};  // end_orchestration dropped the last run's pin
  charges_ = ports_.host.charges_work();
  recording_ = ports_.clock.recording();
  plain_run_ = !charges_ && !recording_;
  plain_recorded_ = !charges_ && recording_;
  task_events_.clear();  // (empty unless the last run's events were not taken)
  producer_sequences_.clear();
  if (recording_) {
    task_events_.reserve(events_to_reserve_);
    producer_sequences_.reserve(producers_to_reserve_);
  }
  dependence_.set_skip_completed(plain_run_);
  plain_ready_ = false;  // planned_valid_ is false: the first plain submit sets it
#if TMR_WIDE_REPLAY
  loops_.set_wide_compare(wide_replay_allowed.load(std::memory_order_relaxed) &&
                          __builtin_cpu_supports("avx2"));
#endif
  in_run_ = true;
}

void OrchestratorCore::end_orchestration() {
  release_pin();  // the drain waits for every ring to retire all it holds
  const std::size_t unbalanced = scope_starts_.size() - 1;
  while (scope_starts_.size() > 1)
    scope_end();
  if (unbalanced != 0 && !fatal()) {
    fail(ErrorCode::scope_error,
         std::to_string(unbalanced) +
             " scope(s) were still open when the orchestration returned; pair every "
             "scope_begin() with scope_end(), or use TMR_SCOPE / Orchestrator::scope()");
  }
  // The outermost scope.
  const std::size_t start = scope_starts_.back();
  for (std::size_t i = start; i < scope_tasks_.size(); ++i)
    release_scope_task(scope_tasks_[i]);
  drop_tail(scope_tasks_, start);
  scope_starts_.clear();
  scopes_changed();
  in_run_ = false;
  plain_ready_ = false;
}

void OrchestratorCore::fail(ErrorCode code, const std::string& message) {
  ports_.sink.latch_error(code, message);
}
Status OrchestratorCore::status() const {
  return ports_.sink.error();
}
const KernelRegistry& OrchestratorCore::kernels() const {
  return ports_.kernels;
}

// ---------------------------------------------------------------- scopes

void OrchestratorCore::scope_begin() {
  if (static_cast<int>(scope_starts_.size()) > kMaxScopeDepth) {
    if (!fatal()) {
      fail(ErrorCode::scope_error, "scope nesting deeper than " + std::to_string(kMaxScopeDepth) +
                                       "; close scopes before opening more");
    }
    return;
  }
  scope_starts_.push_back(scope_tasks_.size());
  scopes_changed();
}

void OrchestratorCore::scope_end() {
  if (scope_starts_.size() <= 1) {
    if (!fatal()) {
      fail(ErrorCode::scope_error,
           "scope_end() without a matching scope_begin(); pair them or use TMR_SCOPE");
    }
    return;
  }
  close_innermost_scope();
  scopes_changed();
  loops_.scope_ended();  // a finished loop's deferred entries on buffers nobody can name: dropped
}

[[gnu::always_inline]] inline void OrchestratorCore::close_innermost_scope() {
  // Scope ends run even after an error, so bookkeeping stays balanced for the drain.
  const std::size_t start = scope_starts_.back();
  TaskSlot* const* const first = scope_tasks_.data() + start;
  TaskSlot* const* const last = scope_tasks_.data() + scope_tasks_.size();
  charge(OrchestratorWork::scope_end, static_cast<std::uint32_t>(last - first));
  for (TaskSlot* const* task = first; task != last; ++task)
    release_scope_task(*task);
  drop_tail(scope_tasks_, start);
  scope_starts_.pop_back();
}

OrchestratorCore::IterationScope OrchestratorCore::iteration_scope() const {
  IterationScope scope;
  const std::size_t depth = scope_starts_.size();
  // Inside the run's outermost scope and room for one more level: else scope_begin/scope_end
  // name the errors.
  if (depth == 0 || static_cast<int>(depth) > kMaxScopeDepth) return scope;
  scope.depth = depth;
  scope.outer_index = std::min(static_cast<int>(depth) - 1, kRingCount - 1);
  scope.inner_index = std::min(static_cast<int>(depth), kRingCount - 1);
  scope.outer_ring = &ring(scope.outer_index);
  scope.inner_ring = &ring(scope.inner_index);
  return scope;
}

[[gnu::always_inline]] inline void OrchestratorCore::open_iteration_scope(IterationScope& scope) {
  if (scope_starts_.size() != scope.depth || scope.depth == 0) [[unlikely]] {
    scope.start = IterationScope::kNotNoted;
    scope_begin();
    return;
  }
  // scope_begin's steps at a depth known to be allowed, and scopes_changed's ring found once.
  scope.start = scope_tasks_.size();
  scope.tasks = open_scope_tasks_[scope.inner_index];
  scope.heap = open_scope_heap_[scope.inner_index];
  scope_starts_.push_back(scope.start);
  scope_ring_ = scope.inner_ring;
  scope_ring_index_ = scope.inner_index;
}

[[gnu::always_inline]] inline void OrchestratorCore::close_iteration_scope(IterationScope& scope) {
  if (scope_starts_.size() != scope.depth + 1 || scope.depth == 0) [[unlikely]] {
    scope_end();  // the body left scopes open or closed more than it opened
    return;
  }
  // The scope's books in one step. Since the open noted them, every hold added one task and
  // its heap bytes (what its ring's admit recorded as SlotInfo::heap_bytes) to its own ring's
  // books and listed it in the innermost scope, and every scope the body closed took its own
  // tasks back, all held since the note (a scope opened before it cannot have closed: the list
  // would start elsewhere). So when the list starts where the open put it and the inner ring's
  // count grew by exactly the scope's tasks, every one of them is on the inner ring and the books
  // are back at the noted values once they are released; else each task's own subtraction.
  const std::size_t count = scope_tasks_.size() - scope.start;
  const int inner = scope.inner_index;
  if (scope_starts_.back() == scope.start && open_scope_tasks_[inner] - scope.tasks == count)
      [[likely]] {
    TaskSlot* const* const first = scope_tasks_.data() + scope.start;
    TaskSlot* const* const last = first + count;
    charge(OrchestratorWork::scope_end, static_cast<std::uint32_t>(count));
    for (TaskSlot* const* task = first; task != last; ++task) {
      dependence_.release_creator((*task)->id);
      if (graph::release(**task)) ports_.waker.notify_progress();
    }
    open_scope_tasks_[inner] = scope.tasks;
    open_scope_heap_[inner] = scope.heap;
    drop_tail(scope_tasks_, scope.start);
    scope_starts_.pop_back();
  } else {
    close_innermost_scope();
  }
  scope_ring_ = scope.outer_ring;
  scope_ring_index_ = scope.outer_index;
  loops_.scope_ended();
}

// ---------------------------------------------------------------- parallel_for

// parallel_for's loop around `body`, told which iterations a steady stretch began
// (Body::steady): a function pointer's (the lambda loops) or a body known here (the trusted
// pattern loop's, with submit_pattern inline).
template <class Body>
[[gnu::always_inline]] inline void OrchestratorCore::run_loop(std::int64_t n,
                                                              bool scope_per_iteration, Body body,
                                                              Orchestrator& orchestrator) {
  if (fatal()) return;
  if (n < 0) {
    fail(ErrorCode::invalid_args,
         "parallel_for over " + std::to_string(n) + " iterations; the count must be zero or more");
    return;
  }
  // Balanced even when the body throws (the run then reports the exception).
  struct Unwind {
    OrchestratorCore& core;
    bool scope_open = false;
    ~Unwind() {
      if (scope_open) core.scope_end();
      core.loops_.end_loop();
      core.plain_ready_ = false;  // the loop's deferred entries
    }
  } unwind{*this};
  loops_.begin_loop(n, sequence_);
  // Counts a steady stretch's iterations (LoopDriver::count_steady) when it ends, also by an
  // exception from the body.
  // Each step ends an iteration and begins the next; the stretch's last iteration, when the loop
  // ends with it, is counted apart.
  struct Steady {
    LoopDriver& loops;
    std::uint64_t steps = 0;
    ~Steady() { loops.count_steady(steps, steps); }
  };
  // One loop per scope mode: the mode is no register held across the body's call, so `body` and
  // `orchestrator` stay in registers (not reloaded every iteration).
  const auto iterate = [&](auto scoped) {
    IterationScope scope;
    if constexpr (scoped) scope = iteration_scope();
    // Inline in both places (a copy outlined as its own function, as GCC made it without the
    // attribute, is one more call a task).
    // `after_steady`: begun by the steady stretch right after the last iteration ended
    // (Body::steady).
    const auto run_body = [&](std::int64_t i, auto after_steady) __attribute__((always_inline)) {
      plain_ready_ = false;  // the loop may be active now (the body's first submit asks again)
      if constexpr (scoped) {
        open_iteration_scope(scope);
        unwind.scope_open = true;
      }
      if constexpr (after_steady) {
        body.steady(orchestrator, i);
      } else {
        body(orchestrator, i);
      }
      if constexpr (scoped) {
        unwind.scope_open = false;
        close_iteration_scope(scope);
      }
    };
    Steady steady{loops_};
    for (std::int64_t i = 0; i < n && !fatal(); ++i) {
      // A kept template analysing from iteration 0: its set-up is charged (only a slow path
      // starts one).
      if (loops_.begin_iteration(i) && loops_.started()) charge_loop_setup();
      run_body(i, std::false_type{});
      // A steady analysed loop: each iteration's end and the next one's begin inline, counted
      // once for the loop (no slow path runs there, so none starts an analysis to charge).
      while (loops_.end_steady()) {
        if (i + 1 >= n || fatal()) {  // every iteration ran, or an error stops the loop
          loops_.count_steady(1, 0);
          return;
        }
        ++i;
        loops_.begin_steady(i);
        ++steady.steps;
        run_body(i, std::true_type{});
      }
      // Not steady: the slow path ends it (a template it starts is charged).
      loops_.end_iteration();
      if (loops_.started()) charge_loop_setup();
    }
  };
  if (scope_per_iteration) {
    iterate(std::true_type{});
  } else {
    iterate(std::false_type{});
  }
}

void OrchestratorCore::parallel_for(std::int64_t n, bool scope_per_iteration, LoopBody body,
                                    void* context, Orchestrator& orchestrator) {
  struct Call {
    LoopBody body;
    void* context;
    void operator()(Orchestrator& o, std::int64_t i) const { body(context, o, i); }
    void steady(Orchestrator& o, std::int64_t i) const { body(context, o, i); }
  };
  run_loop(n, scope_per_iteration, Call{body, context}, orchestrator);
}

void OrchestratorCore::parallel_for(std::int64_t n, const TaskPattern& pattern,
                                    bool scope_per_iteration, Orchestrator& orchestrator) {
  if (fatal()) return;
  if (n > 0 && pattern.has_error()) {
    fail(ErrorCode::invalid_args, pattern.error());
    return;
  }
  if (!pattern.single_task()) {
    parallel_for_tasks(n, pattern, scope_per_iteration, orchestrator);
    return;
  }
  loops::AffineLoop affine;
  loops::PatternRoute route = loops::PatternRoute::off;
  if (loops_.enabled()) {
    route = loops_.active() ? loops::PatternRoute::nested : affine.prepare(pattern, n);
  }
  loops_.note_pattern(route);
  struct Context {
    OrchestratorCore* core;
    const TaskPattern* pattern;
    loops::AffineLoop* affine;
    MixKernels kernels;
  } context{this, &pattern, &affine, pattern.kernels()};
  if (route != loops::PatternRoute::trusted) {
    // The lambda loop: what a plain loop of pattern.args(i) submits (and throws), analysed.
    parallel_for(
        n, scope_per_iteration,
        [](void* c, Orchestrator& o, std::int64_t i) {
          const Context& ctx = *static_cast<const Context*>(c);
          o.submit(ctx.kernels, ctx.pattern->args(i));
        },
        &context, orchestrator);
    return;
  }
  // The verified loop's body inline in the loop (run_loop): no call through a pointer, and
  // submit_pattern's tests and moves in the loop's frame.
  struct Trusted {
    OrchestratorCore* core;
    const TaskPattern* pattern;
    loops::AffineLoop* affine;
    MixKernels kernels;
    bool trusted = false;  // the last iteration's task took the trusted submit
    [[gnu::always_inline]] void operator()(Orchestrator&, std::int64_t i) {
      trusted = core->submit_pattern(*affine, *pattern, kernels, i, false);
    }
    // An iteration the steady stretch began right after the last one ended.
    [[gnu::always_inline]] void steady(Orchestrator&, std::int64_t i) {
      trusted = core->submit_pattern(*affine, *pattern, kernels, i, trusted);
    }
  };
  run_loop(n, scope_per_iteration, Trusted{this, &pattern, &affine, pattern.kernels()},
           orchestrator);
}

void OrchestratorCore::parallel_for_tasks(std::int64_t n, const TaskPattern& pattern,
                                          bool scope_per_iteration, Orchestrator& orchestrator) {
  // The kept PatternLoop (its storage reused): no other pattern loop can begin before this one
  // returns (pattern_loop_).
  loops::PatternLoop& built = pattern_loop_;
  loops::PatternRoute route = loops::PatternRoute::off;
  if (loops_.enabled()) {
    // No iteration (a request shorter than one block): nothing to build or trust.
    route = n > 0 ? built.prepare(pattern, n) : loops::PatternRoute::short_loop;
  }
  const bool in_place = route == loops::PatternRoute::compared;
  // Inside another running parallel_for the moved arguments serve as well: what the route
  // counts is why no submit skips the compare.
  if (in_place && loops_.active()) route = loops::PatternRoute::nested;
  loops_.note_pattern(route);
  struct Context {
    const TaskPattern* pattern;
    loops::PatternLoop* built;
    OrchestratorCore* core;
  } context{&pattern, &built, this};
  if (!in_place) {
    // The plain loop's iterations, analysed as a lambda loop (nothing skipped).
    parallel_for(
        n, scope_per_iteration,
        [](void* c, Orchestrator& o, std::int64_t i) {
          static_cast<const Context*>(c)->pattern->submit_iteration(o, i);
        },
        &context, orchestrator);
    return;
  }
  for (const Tensor& rows : built.table_rows()) {
    if (!wait_table(rows)) return;
  }
  parallel_for(
      n, scope_per_iteration,
      [](void* c, Orchestrator& o, std::int64_t i) {
        Context& ctx = *static_cast<Context*>(c);
        ctx.core->submit_pattern_iteration(*ctx.built, o, i);
      },
      &context, orchestrator);
}

bool OrchestratorCore::room_for(int count) {
  Ring* const ring = scope_ring_;
  if (ring == nullptr) return false;
  const auto wanted = static_cast<std::uint32_t>(count);
  if (ring == credit_ring_ && submits_since_sync_ + wanted <= credit_limit_) return true;
  // grant_room's tests for `count` submits: room in the window for all of them at once, and no
  // periodic sync due before the last (credit_room then credits at least `count`).
  if (submits_since_sync_ + wanted >= kSubmitsPerSync ||
      ring->live_tasks() + wanted >= ring->window()) {
    return false;
  }
  grant_room(*ring);
  return submits_since_sync_ + wanted <= credit_limit_;
}

void OrchestratorCore::submit_pattern_iteration(loops::PatternLoop& loop, Orchestrator& o,
                                                std::int64_t i) {
  const int count = loop.task_count();
  int t = 0;
  if (loop.all_trusted() && !fatal() && room_for(count)) {
    Ring& ring = *scope_ring_;
    const int ring_index = scope_ring_index_;
    // trusted_wide's tests for every task at once (what task t finds once the tasks before it
    // are submitted: LoopDriver::trusted_tasks), then per task submit_pattern_task's other
    // tests, in its order: no error, the credit (a heap wait inside an earlier submit_wide may
    // have revoked it); then the moves.
    LoopDriver::ReplayPlan* first = nullptr;
    const int trusted = loops_.trusted_tasks(&first, loop, i);
    for (; t < trusted; ++t) {
      if (fatal() || !room_credited(&ring) || !loop.move_trusted(t, i)) break;
      loops_.note_trusted();
      trusted_wide_ = true;
      TaskOutputs* const outputs = loop.output_slot(t);
      ::new (outputs) TaskOutputs(
          submit_wide(LoopDriver::prepared(first[t]).plan, loop.args(t), ring_index, ring));
      if (!outputs->valid()) return;
    }
    if (t == count) {
      loops_.note_trusted_iteration();
      return;
    }
  }
  // The rest of the iteration (all of it, or from the task that could not) task by task.
  loop.iterate(
      o, i,
      [](void* core, loops::PatternLoop& pattern, int task, std::int64_t at,
         const MixKernels& kernels, const Args& args) {
        return static_cast<OrchestratorCore*>(core)->submit_pattern_task(pattern, task, at, kernels,
                                                                         args);
      },
      this, t);
}

bool OrchestratorCore::wait_table(const Tensor& rows) {
  if (fatal()) return false;
  // read_element's steps for the whole row: no discovery for a buffer the loop analysis knows
  // has no writer (loops/), else its producers found and waited for.
  const bool quiet = loops_.element_access(false, rows);
  charge(quiet ? OrchestratorWork::element_read_quiet : OrchestratorWork::element_access, 1);
  if (!quiet) {
    if (!discover_access(rows, rows, AccessKind::read)) return false;
    if (!wait_producers_finished("get_tensor_data")) return false;
  }
  return !fatal();
}

[[gnu::always_inline]] inline bool OrchestratorCore::submit_pattern(loops::AffineLoop& loop,
                                                                    const TaskPattern& pattern,
                                                                    const MixKernels& kernels,
                                                                    std::int64_t i, bool settled) {
  const Args& args = loop.at(pattern, i);
  // dispatch's tests for a replaying submit (the plan of the kernels, a room credit or room at
  // once with no periodic sync due), then the verified position's; anything else submits as
  // the user would. `settled` (the steady stretch's iteration after a trusted one): the pattern's
  // trust, the dispatcher's plan and the error test are the previous iteration's (docs/design.md,
  // "A verified single-task pattern in the loop").
  if (settled || (loop.trusted() && planned_valid_ && kernels.aic == planned_kernels_.aic &&
                  kernels.aiv0 == planned_kernels_.aiv0 && kernels.aiv1 == planned_kernels_.aiv1 &&
                  !fatal())) {
    Ring* const ring = scope_ring_;
    bool room = room_credited(ring);
    if (!room && ring != nullptr && submits_since_sync_ + 1 < kSubmitsPerSync &&
        ring->window_has_room()) {
      grant_room(*ring);
      room = true;
    }
    LoopDriver::ReplayPlan* position = nullptr;
    if (room && (settled ? loops_.trusted_again(&position, loop.key())
                         : loops_.trusted_position(&position, loop.key()))) {
      loops_.note_trusted();
      submit_replayed<true>(planned_, args, *ring, *position);
      return true;
    }
  }
  api_.submit(kernels, args);
  loop.checked(loops_.exact_pass());
  return false;
}

TaskOutputs OrchestratorCore::submit_pattern_task(loops::PatternLoop& loop, int task,
                                                  std::int64_t i, const MixKernels& kernels,
                                                  const Args& args) {
  // dispatch's room tests for a replaying submit (a room credit, or room at once with no
  // periodic sync due), then the verified position's; anything else submits as the user would.
  if (loop.trusted(task) && !fatal()) {
    Ring* const ring = scope_ring_;
    bool room = room_credited(ring);
    if (!room && ring != nullptr && submits_since_sync_ + 1 < kSubmitsPerSync &&
        ring->window_has_room()) {
      grant_room(*ring);
      room = true;
    }
    LoopDriver::ReplayPlan* position = nullptr;
    if (room && loops_.trusted_wide(&position, loop.key(task), loop.owner_iteration(task, i),
                                    loop.owner_position(task, i), loop.same_position(task))) {
      loops_.note_trusted();
      trusted_wide_ = true;
      return submit_wide(LoopDriver::prepared(*position).plan, args, scope_ring_index_, *ring);
    }
  }
  loops_.clear_wide_pass();
  TaskOutputs outputs = api_.submit(kernels, args);
  if (loop.checked(task, i, loops_.wide_pass(loop.indexed_bits(task), loop.ref_bits(task)))) {
    // A nested pattern's run: its positions proven once (LoopDriver::run_affine).
    loop.set_run(task,
                 loops_.run_affine(loop.run_first(task), loop.stride(), loop.run_count(task)));
  }
  return outputs;
}

void OrchestratorCore::charge_loop_setup() {
  const loops::LoopTemplate* started = loops_.take_started();
  if (started == nullptr) return;
  const bool kept = started->rebound();  // a template kept from an earlier run: its own rate
  charge(kept ? OrchestratorWork::loop_rebind_base : OrchestratorWork::loop_setup_base,
         started->task_count());
  for (std::uint32_t q = 0; q < started->task_count(); ++q)
    charge(kept ? OrchestratorWork::loop_rebind : OrchestratorWork::loop_setup,
           started->task(q).access_count);
}

void OrchestratorCore::release_scope_task(TaskSlot* task) {
  Ring& ring = *task->ring;
  dependence_.release_creator(task->id);
  --open_scope_tasks_[ring.index()];
  open_scope_heap_[ring.index()] -= ring.info(task->id.local()).heap_bytes;
  if (graph::release(*task)) ports_.waker.notify_progress();
}

// ---------------------------------------------------------------- submit

bool OrchestratorCore::validate_kernels(const MixKernels& kernels, Plan* plan) {
  const KernelId ids[3] = {kernels.aic, kernels.aiv0, kernels.aiv1};
  static constexpr const char* kSlotNames[3] = {"AIC", "AIV0", "AIV1"};
  for (int s = 0; s < 3; ++s) {
    if (ids[s] == kNoKernel) continue;
    const KernelInfo* info = ports_.kernels.find(ids[s]);
    if (info == nullptr) {
      fail(ErrorCode::unknown_kernel, "kernel id " + std::to_string(ids[s]) + " given for the " +
                                          kSlotNames[s] +
                                          " slot is not registered; register it with "
                                          "KernelRegistry::add before running");
      return false;
    }
    const CoreType wanted = s == kSlotAic ? CoreType::aic : CoreType::aiv;
    if (info->core_type != wanted) {
      fail(ErrorCode::invalid_args,
           "kernel '" + info->name + "' runs on " + std::string(core_type_name(info->core_type)) +
               " cores but was given for the " + kSlotNames[s] + " slot; pass it as the " +
               (wanted == CoreType::aic ? "AIV0/AIV1" : "AIC") + " kernel instead");
      return false;
    }
    plan->fns[s] = info->fn;
    plan->kernels[s] = ids[s];
    plan->mask = static_cast<std::uint8_t>(plan->mask | (1u << s));
  }
  if (plan->mask == 0) {
    fail(ErrorCode::invalid_args, "a task needs at least one kernel (AIC, AIV0 or AIV1)");
    return false;
  }
  if (plan->mask == 4) {  // a lone second-AIV kernel runs as an ordinary AIV task
    plan->fns[kSlotAiv0] = plan->fns[kSlotAiv1];
    plan->kernels[kSlotAiv0] = plan->kernels[kSlotAiv1];
    plan->fns[kSlotAiv1] = nullptr;
    plan->kernels[kSlotAiv1] = kNoKernel;
    plan->mask = 2;
  }
  const int active = active_slot_count(plan->mask);
  plan->active = static_cast<std::uint8_t>(active);
  plan->shape = active >= 2 ? TaskShape::mix : (plan->mask == 1 ? TaskShape::aic : TaskShape::aiv);
  return true;
}

bool OrchestratorCore::validate_args(const Args& args, const Plan& plan) {
  if (args.has_error()) {
    fail(ErrorCode::invalid_args, args.error());
    return false;
  }
  if (args.block_count() < 1) {
    fail(ErrorCode::invalid_args,
         "a task needs at least one block; use Args::blocks(n) with n >= 1");
    return false;
  }
  if (!plan.inline_task && args.is_sync_start() && args.block_count() > 1) {
    const std::uint32_t capacity = plan.shape == TaskShape::aiv
                                       ? 2u * static_cast<std::uint32_t>(ports_.clusters)
                                       : static_cast<std::uint32_t>(ports_.clusters);
    if (args.block_count() > capacity) {
      fail(ErrorCode::sync_start_invalid,
           "a start-together task has " + std::to_string(args.block_count()) +
               " blocks but the machine can run at most " + std::to_string(capacity) +
               " at once; use fewer blocks, drop sync_start, or configure more clusters");
      return false;
    }
  }
  // Every tensor an Args holds is valid (Args::add and Args::out reject null ones): no
  // per-tensor pass here.
  const std::uint32_t all = (std::uint32_t{1} << args.tensor_count()) - 1;
  if (plan.inline_task && args.out_mask() != all) {
    const int i = std::countr_one(args.out_mask());  // the first argument that is not out(...)
    fail(ErrorCode::invalid_args, "alloc() takes only out(...) tensors; argument " +
                                      std::to_string(i) + " is " +
                                      std::string(arg_tag_name(args.tag(i))));
    return false;
  }
  if (plan.inline_task && args.scalar_count() != 0) {
    fail(ErrorCode::invalid_args, "alloc() takes no scalars");
    return false;
  }
  return true;
}

// A submit while a parallel_for runs: the loop decides first (LoopDriver::replay_into or
// LoopDriver::plan_submit records a learning iteration's submit, or matches an analysed one to
// its template position); a covered submit takes submit_replayed or submit_analysed, anything
// else the generic steps. Decided before the charge, which is smaller for an analysed submit.
// Inline in submit() and alloc(): the fast path's test is a few instructions and one call; the
// rest is submit_in_loop_slow.
[[gnu::always_inline]] inline TaskOutputs OrchestratorCore::submit_in_loop(const Plan& plan,
                                                                           const Args& args) {
  if (scope_ring_ == nullptr) [[unlikely]] {
    return submit_planned(plan, args);  // outside every scope: names the error
  }
  const int ring_index = scope_ring_index_;
  Ring& ring = *scope_ring_;
  // The fast analysed submit: room at once (room_at_once without a heap, after the periodic
  // sync wait_for_room would do first) and the replay check copying the tensors into the
  // record the admit will fill.
  if (submits_since_sync_ + 1 >= kSubmitsPerSync) [[unlikely]] {
    submits_since_sync_ = 0;
    revoke_room();  // the count restarts (room_credited)
    sync_rings();
  }
  if (ring.window_has_room()) {
    LoopDriver::ReplayPlan* position = nullptr;
    if (loops_.fast_position(&position)) return submit_replayed(plan, args, ring, *position);
    if (loops_.wide_position()) return submit_wide(plan, args, ring_index, ring);
  }
  return submit_in_loop_slow(plan, args, ring_index, ring);
}

TaskOutputs OrchestratorCore::submit_in_loop_slow(const Plan& plan, const Args& args,
                                                  int ring_index, Ring& ring) {
  if (loops_.plan_submit(plan.kernels, plan.inline_task, args))
    return submit_analysed(plan, args, ring_index, ring);
  return submit_planned(plan, args);
}

[[gnu::always_inline]] inline TaskOutputs OrchestratorCore::dispatch(const Args& args) {
  // Inside a parallel_for: the loop's own entry (an analysed submit skips submit_planned).
  if (!loops_.active()) {
    if (plain_run_) [[likely]] {
      // A finished loop's deferred entries go into the map before a per-task lookup may want
      // them (the plain instances do not flush); from here on plain_ready() holds until
      // something clears it.
      loops_.flush_deferred();
      plain_ready_ = kPlainReady;
      if (args.out_mask() == 0) [[likely]]
        return submit_plain(args);
      return submit_plain_outputs(args);
    }
    if (plain_recorded_) {
      loops_.flush_deferred();  // (as above, and recorded_ready() from here on)
      plain_ready_ = kRecordedReady;
      if (args.out_mask() == 0) [[likely]]
        return submit_plain_recorded(args);
      return submit_plain_outputs_recorded(args);
    }
    return submit_planned(planned_, args);
  }
  // submit_in_loop's steps, with a null scope ring (the error) and the periodic sync left to
  // submit_in_loop_general; a position neither replay covers (fast or wide) goes straight to
  // submit_in_loop_slow. The sync and room tests as submit_looped's: once a credit.
  Ring* const ring = scope_ring_;
  if (!room_credited(ring)) [[unlikely]] {
    if (ring == nullptr || submits_since_sync_ + 1 >= kSubmitsPerSync) [[unlikely]] {
      return submit_in_loop_general(planned_, args);
    }
    if (!ring->window_has_room()) {
      return submit_in_loop_slow(planned_, args, scope_ring_index_, *ring);
    }
    grant_room(*ring);
  }
  LoopDriver::ReplayPlan* position = nullptr;
  if (loops_.fast_position(&position)) [[likely]] {
    return submit_replayed(planned_, args, *ring, *position);  // replay_into first
  }
  if (loops_.wide_position()) return submit_wide(planned_, args, scope_ring_index_, *ring);
  return submit_in_loop_slow(planned_, args, scope_ring_index_, *ring);
}

// Every path of submit() ends in a tail call, so it has no frame of its own: a submit whose
// kernels are those of the one before and whose arguments need no check past plain_args()
// reaches submit_planned, or inside a parallel_for at a position replay may cover (the ring's
// window has room, no periodic sync due) submit_replayed, after a straight line of tests.
// New kernels take submit_new_kernels (a wide position's kept plan, else submit_checked),
// other arguments submit_checked; then the same dispatch.
TaskOutputs OrchestratorCore::submit(const MixKernels& kernels, const Args& args) {
  if (!in_run_) [[unlikely]]
    throw_run_ended();  // (Orchestrator::live_core's test: submit's only caller is Orchestrator's)
  if (fatal()) [[unlikely]]
    return {};
  // Most submits name the kernels of the one before: reuse its checked plan (registry lookups
  // and slot checks cost ~60 instructions a submit). Forgotten at every run's start.
  // Field by field: the caller has just stored `kernels` as three 4-byte fields (submit_aiv), so
  // one 8-byte load across two of them would wait for the stores (no store forwarding): +4-8%
  // CPU per plain task at the floor, measured.
  const bool same_kernels = planned_valid_ && kernels.aic == planned_kernels_.aic &&
                            kernels.aiv0 == planned_kernels_.aiv0 &&
                            kernels.aiv1 == planned_kernels_.aiv1;
  if (!same_kernels) [[unlikely]] {
    if (loops_.active()) return submit_new_kernels(kernels, args);
    return submit_checked(kernels, args, false);
  }
  if (!plain_args(args)) [[unlikely]] {
    return submit_checked(kernels, args, true);
  }
  return dispatch(args);
}

TaskOutputs OrchestratorCore::submit_looped(const MixKernels& kernels, const Args& args) {
  // loop_ready(): in a run, loops_.active(), the owner analysing, no recorders. The rest of
  // submit()'s and dispatch's tests, in their order, each leading where theirs lead.
  if (fatal()) [[unlikely]]
    return {};
  const bool same_kernels = planned_valid_ && kernels.aic == planned_kernels_.aic &&
                            kernels.aiv0 == planned_kernels_.aiv0 &&
                            kernels.aiv1 == planned_kernels_.aiv1;
  // (submit_new_kernels_looped stays a call: taking submit_kept inline here saved 5 instructions a
  // paged attention submit but cost the fast path a saved register, +3 a slice write, session 37.)
  if (!same_kernels) [[unlikely]]
    return submit_new_kernels_looped(kernels, args);
  if (!plain_args(args)) [[unlikely]]
    return submit_checked(kernels, args, true);
  // The sync and room tests, once for a batch of submits on this ring (room_credited; a null
  // ring is never the credit's).
  Ring* const ring = scope_ring_;
  if (!room_credited(ring)) [[unlikely]] {
    if (ring == nullptr || submits_since_sync_ + 1 >= kSubmitsPerSync) [[unlikely]] {
      return submit_in_loop_general(planned_, args);
    }
    if (!ring->window_has_room())
      return submit_in_loop_slow(planned_, args, scope_ring_index_, *ring);
    grant_room(*ring);
  }
  LoopDriver::ReplayPlan* position = nullptr;
  if (loops_.replay_position(&position)) [[likely]] {
    return submit_replayed(planned_, args, *ring, *position);
  }
  if (loops_.wide_position()) return submit_wide(planned_, args, scope_ring_index_, *ring);
  return submit_in_loop_slow(planned_, args, scope_ring_index_, *ring);
}

[[gnu::always_inline]] inline TaskOutputs OrchestratorCore::submit_kept(const Plan* const kept,
                                                                        const MixKernels& kernels,
                                                                        const Args& args) {
  // A wide replayed position whose first submit this run was checked (its kept plan names these
  // kernels): that plan, no replan. planned_ stays as it was, with its kernels. (dispatch's
  // tests: a scope ring, no periodic sync due, room in the window.)
  if (kept != nullptr && kept->kernels[0] == kernels.aic && kept->kernels[1] == kernels.aiv0 &&
      kept->kernels[2] == kernels.aiv1 && plain_args(args)) {
    Ring* const ring = scope_ring_;
    if (room_credited(ring)) return submit_wide(*kept, args, scope_ring_index_, *ring);
    if (ring != nullptr && submits_since_sync_ + 1 < kSubmitsPerSync && ring->window_has_room()) {
      grant_room(*ring);
      return submit_wide(*kept, args, scope_ring_index_, *ring);
    }
  }
  return submit_checked(kernels, args, false);
}

TaskOutputs OrchestratorCore::submit_new_kernels(const MixKernels& kernels, const Args& args) {
  // The position first: a loop that is not analysed (parallel_for off) leaves at once.
  return submit_kept(loops_.wide_plan(), kernels, args);
}

TaskOutputs OrchestratorCore::submit_new_kernels_looped(const MixKernels& kernels,
                                                        const Args& args) {
  return submit_kept(loops_.replaying_wide_plan(), kernels, args);
}

TaskOutputs OrchestratorCore::submit_checked(const MixKernels& kernels, const Args& args,
                                             bool same_kernels) {
  if (!same_kernels && !replan(kernels)) return {};
  if (!plain_args(args) && !validate_args(args, planned_)) return {};
  return dispatch(args);
}

TaskOutputs OrchestratorCore::submit_in_loop_general(const Plan& plan, const Args& args) {
  return submit_in_loop(plan, args);
}

bool OrchestratorCore::replan(const MixKernels& kernels) {
  // A program whose tasks alternate among a few kernels (paged attention's QK, softmax, PV and
  // update per block) finds the plan it validated a few submits ago; only a combination not seen
  // lately in this run is validated again (the same checks and named errors).
  for (int k = 0; k < recent_plan_count_; ++k) {
    const RecentPlan& recent = recent_plans_[k];
    if (kernels.aic == recent.kernels.aic && kernels.aiv0 == recent.kernels.aiv0 &&
        kernels.aiv1 == recent.kernels.aiv1) {
      planned_ = recent.plan;
      planned_fns_ = recent.fns;
      planned_kernels_ = kernels;
      planned_valid_ = true;
      return true;
    }
  }
  Plan plan;
  if (!validate_kernels(kernels, &plan)) return false;
  const KernelFn* const fns = kept_fns(plan);
  plan.kept = fns;
  recent_plans_[recent_plan_next_] = RecentPlan{kernels, plan, fns};
  recent_plan_next_ = (recent_plan_next_ + 1) % kRecentPlans;
  recent_plan_count_ = std::min(recent_plan_count_ + 1, kRecentPlans);
  planned_ = plan;
  planned_fns_ = fns;
  planned_kernels_ = kernels;
  planned_valid_ = true;
  return true;
}

const KernelFn* OrchestratorCore::kept_fns(const Plan& plan) {
  std::vector<std::unique_ptr<KeptFns>>& kept =
      kept_fns_[{plan.kernels[0], plan.kernels[1], plan.kernels[2]}];
  for (const auto& fns : kept) {
    if ((*fns)[0] == plan.fns[0] && (*fns)[1] == plan.fns[1] && (*fns)[2] == plan.fns[2]) {
      return fns->data();
    }
  }
  kept.push_back(std::make_unique<KeptFns>(KeptFns{plan.fns[0], plan.fns[1], plan.fns[2]}));
  return kept.back()->data();
}

TaskOutputs OrchestratorCore::alloc(const Args& args) {
  if (fatal()) return {};
  Plan plan;
  plan.inline_task = true;
  if (!validate_args(args, plan)) return {};
  if (loops_.active()) return submit_in_loop(plan, args);
  return submit_planned(plan, args);
}

template <class Producers>
void OrchestratorCore::record_event(const TaskSlot& task, const Plan& plan, const Args& args,
                                    const Producers& producers) {
  TaskEvent& event = task_events_.emplace_back();  // (reserved at the run's start)
  event.id = task.id;
  event.sequence = task.ring->sequence(task.id.local());
  task.ring->set_ready_ns(task.id.local(), 0);  // before the wiring guard drops: not ready yet
  for (int s = 0; s < 3; ++s)
    event.kernels[s] = plan.kernels[s];
  event.block_count = args.block_count();
  event.inline_task = plan.inline_task;
  event.submit_ns = ports_.clock.now_ns();
  if (plan.inline_task) event.ready_ns = event.complete_ns = event.submit_ns;
  // Its producers follow the earlier events' in producer_sequences_; take_events points the
  // list at them once the run's array is final.
  event.producers = tmr::ProducerList(nullptr, static_cast<std::uint32_t>(producers.size()));
  for (TaskSlot* p : producers)
    producer_sequences_.push_back(p->ring->sequence(p->id.local()));
}

void OrchestratorCore::take_events(Trace* trace) {
  events_to_reserve_ = std::max(events_to_reserve_, task_events_.size());
  producers_to_reserve_ = std::max(producers_to_reserve_, producer_sequences_.size());
  // The array becomes the trace's storage as it is (a move, no copy); each event's list is
  // pointed at its part, in recording order.
  auto storage = std::make_shared<const std::vector<std::uint64_t>>(std::move(producer_sequences_));
  const std::uint64_t* next = storage->data();
  for (TaskEvent& event : task_events_) {
    const auto count = static_cast<std::uint32_t>(event.producers.size());
    event.producers = tmr::ProducerList(next, count);
    next += count;
  }
  trace->producer_storage.push_back(std::move(storage));
  trace->tasks = std::move(task_events_);
  task_events_.clear();  // (moved from: valid, unspecified)
  producer_sequences_.clear();
}

// A submit, step by step: reserve ring memory, fill the task, discover its producers, wire it
// behind them, record its accesses, publish it, and let it go once wired.
//
// Steps::plain and Steps::plain_outputs (dispatch's tests): a kernel task, no parallel_for
// active, plain_run_. What that fixes: no charge (!charges_); not recording and not inline, so a
// task whose discovery passed is wired by wire_plain; no loop to tell of the submit. Without
// out(...) arguments (plain) also no layout, nothing to fit or place in the heap and no scope
// hold (scoped is false); with them (plain_outputs) the task is scoped.
template <OrchestratorCore::Steps kSteps>
[[gnu::always_inline]] inline TaskOutputs OrchestratorCore::submit_planned_as(const Plan& plan,
                                                                              const Args& args) {
  constexpr bool kPlain = kSteps != Steps::generic;
  constexpr bool kNoOutputs = kSteps == Steps::plain || kSteps == Steps::plain_recorded;
  constexpr bool kRecorded =
      kSteps == Steps::plain_recorded || kSteps == Steps::plain_outputs_recorded;
  // Every path returns `outputs`, so it is built in the caller's storage (a copy of a
  // TaskOutputs is a memcpy call, ~25 instructions a submit).
  TaskOutputs outputs;
  // The scope's ring as scopes_changed() keeps it (null outside every scope).
  if (scope_ring_ == nullptr) [[unlikely]] {
    fail(ErrorCode::scope_error, "submit outside any scope (after the orchestration returned)");
    return outputs;
  }
  const int ring_index = scope_ring_index_;
  Ring& ring = *scope_ring_;
  // (A submit a parallel_for template covers took submit_in_loop's analysed path instead.)
  // A finished loop's deferred entries go into the map before a per-task lookup may want them
  // (the plain instances: dispatch flushed them before it set plain_ready_).
  if constexpr (!kPlain) {
    loops_.flush_deferred();
    charge(plan.inline_task ? OrchestratorWork::alloc : OrchestratorWork::submit,
           static_cast<std::uint32_t>(args.tensor_count()));
  }
  // Built in place (an assignment copied the whole layout, ~20 instructions a submit).
  const OutputLayout layout = [&] {
    if constexpr (kNoOutputs) {
      OutputLayout none;  // total and count zero (offsets unset: no `out` argument reads them)
      return none;
    } else {
      return layout_outputs(args);
    }
  }();
  // Only tasks that create buffers are held by their scope (so their outputs stay valid while
  // the orchestration may still pass them on). A task without fresh outputs retires as soon as
  // it and its consumers are done, so long flat loops need no scopes at all.
  bool scoped = false;
  if constexpr (!kNoOutputs) {
    scoped = kPlain || layout.count > 0 || plan.inline_task;  // plain_outputs: out(...) given
    // The usual case inline (it fits, the ring has room, no periodic sync is due), as the
    // analysed path does; check_fits and wait_for_room (out of line) decide the rest.
    if (!fits_at_once(ring_index, layout, scoped) && !check_fits(ring_index, layout, scoped)) {
      return outputs;
    }
  }
  std::uint64_t heap_offset = 0;
  std::uint64_t heap_consumed = 0;
  if constexpr (kNoOutputs) {
    // No heap: offset and consumed stay the constant 0 (the admit's heap test folds away), and
    // what wait_for_room writes goes to its own words, which only the wait's path keeps on the
    // stack (two stores a submit fewer). The sync and window tests once for a batch of submits
    // on this ring, as a loop's (room_credited): a credit's two compares instead of the tests.
    if (room_credited(&ring)) [[likely]] {
      ++submits_since_sync_;
    } else if (slot_at_once(ring)) {
      credit_room(ring);  // (before the count: its limit is the free slots past it)
      ++submits_since_sync_;
    } else {
      std::uint64_t unused_offset;
      std::uint64_t unused_consumed;
      if (!wait_for_room(ring, 0, &unused_offset, &unused_consumed)) return outputs;
    }
  } else if (!room_at_once(ring, layout.total, &heap_offset, &heap_consumed) &&
             !wait_for_room(ring, layout.total, &heap_offset, &heap_consumed)) {
    return outputs;
  }
  // The plain instances: planned_, a kernel task, whose functions the record names (kept_fns,
  // never null with planned_: replan sets both, so the record's own-functions test goes).
  const KernelFn* const kept = kPlain ? planned_fns_ : nullptr;
  if (kPlain && kept == nullptr) __builtin_unreachable();
  // The task's local id and bookkeeping, as the admit takes them (head() is the id it gives):
  // the wiring writes the slot's dep_end through this, and the publish names `local`.
  const std::uint32_t local = ring.head();
  Ring::SlotInfo& info = ring.info(local);
  TaskSlot& task = admit_task(ring, ring_index, heap_consumed, heap_offset, plan, args, layout,
                              &outputs, !kNoOutputs, kept, !kPlain);

  // A plain submit records its TensorMap entries during discovery (collect_and_record);
  // the usual end inline, finish_discovery (out of line) for the rest.
  // The line path's usual success makes no Status (collect_lines_first); every other outcome
  // takes collect_and_record's Status and the same tests.
  dependence_.begin();
  const int lines = dependence_.collect_lines_first(task, args, task.record->tensors);
  bool ok;
  if (Dependence::lines_done(lines)) [[likely]] {
    ok = (!fatal() && ring.dep_fits(dependence_.producers().size())) ||
         finish_discovery(ring, Status{});
  } else {
    const Status found = dependence_.collect_rest(lines, task, args, task.record->tensors);
    ok = (found.ok() && !fatal() && ring.dep_fits(dependence_.producers().size())) ||
         finish_discovery(ring, found);
  }
  if constexpr (!kPlain) loops_.submitted(task.id);
  if (ok && (kPlain || (!recording_ && !plan.inline_task))) [[likely]] {
    // A kernel task that found its producers: wired without the guard (wire_plain), so from the
    // last push on it may run; what follows is the orchestrator's own books. Recorded before
    // that (its ready time cleared, its producers' sequences read while no slot can change).
    if constexpr (kRecorded) record_event(task, plan, args, dependence_.producers());
    const std::int32_t resolved = wire_plain(ring, task, scoped, !kPlain, info);
    if constexpr (kSteps == Steps::plain_outputs || kSteps == Steps::plain_outputs_recorded) {
      hold_in_scope_inline(task, ring_index, heap_consumed);  // its one instance: no call
    } else if (scoped) {
      hold_in_scope(task, ring_index, heap_consumed);
    }
    ring.publish_batched(local);
    ++kernel_tasks_;
    const auto edges = static_cast<std::uint32_t>(dependence_.producers().size());
    if (graph::finish_unguarded(task, edges, resolved)) {
      // (Stamped as release_kernel_task does: after the wiring, as the generic steps did.)
      if constexpr (kRecorded) task.ring->set_ready_ns(local, ports_.clock.now_ns());
      ports_.host.push_ready(&task);
    }
    return outputs;
  }
  const std::int32_t resolved = wire_producers(ring, task, ok);
  if (!ok) dependence_.discard_entries(task.id);  // the task never runs
  enter_scope(task, ring_index, heap_consumed, scoped);
  ring.publish_batched(local);
  if (recording_) record_event(task, plan, args, dependence_.producers());
  release_wiring_guard(task, resolved, ok);
  if (!ok) outputs = TaskOutputs{};  // (no outputs: the task never runs)
  return outputs;
}

TaskOutputs OrchestratorCore::submit_planned(const Plan& plan, const Args& args) {
  return submit_planned_as<Steps::generic>(plan, args);
}

TaskOutputs OrchestratorCore::submit_plain(const Args& args) {
  return submit_planned_as<Steps::plain>(planned_, args);
}

TaskOutputs OrchestratorCore::submit_plain_outputs(const Args& args) {
  return submit_planned_as<Steps::plain_outputs>(planned_, args);
}

TaskOutputs OrchestratorCore::submit_plain_recorded(const Args& args) {
  return submit_planned_as<Steps::plain_recorded>(planned_, args);
}

TaskOutputs OrchestratorCore::submit_plain_outputs_recorded(const Args& args) {
  return submit_planned_as<Steps::plain_outputs_recorded>(planned_, args);
}

[[gnu::always_inline]] inline std::int32_t OrchestratorCore::wire_direct(Ring& ring, TaskSlot& task,
                                                                         TaskSlot* const* producers,
                                                                         int count) {
  const std::uint64_t first_node = ring.take_dep_nodes(static_cast<std::uint64_t>(count));
  task.state.store(TaskState::pending, std::memory_order_relaxed);
  task.release_remaining.store(1, std::memory_order_relaxed);  // as wire_producers
  graph::begin_wiring(task, static_cast<std::uint32_t>(count));
  graph::WiringTally tally;
  for (int k = 0; k < count; ++k)
    tally.add(graph::wire(task, *producers[k], ring.dep_node(first_node + tally.held)));
  task.dep_begin = static_cast<std::uint32_t>(first_node);
  task.dep_count = tally.held;
  if (tally.held != 0) charge(OrchestratorWork::wire, tally.held);
  ring.info(task.id.local()).dep_end = ring.dep_top();
  return tally.resolved;
}

[[gnu::always_inline]] inline std::int32_t OrchestratorCore::wire_unguarded_list(
    Ring& ring, TaskSlot& task, TaskSlot* const* producers, int count, bool scoped, bool may_charge,
    Ring::SlotInfo* info) {
  const std::uint64_t first_node = ring.take_dep_nodes(static_cast<std::uint64_t>(count));
  task.state.store(TaskState::pending, std::memory_order_relaxed);
  // The task's completion reference, and its scope's when it creates buffers.
  task.release_remaining.store(scoped ? 2 : 1, std::memory_order_relaxed);
  task.dep_begin = static_cast<std::uint32_t>(first_node);  // before the first push
  task.dep_count = 0;                                       // wire_unguarded counts them
  graph::begin_unguarded(task, static_cast<std::uint32_t>(count));
  graph::WiringTally tally;
  const Ring::DepPool pool = ring.dep_pool();  // (locals: not reloaded after each cmpxchg)
  for (int k = 0; k < count; ++k) {
    tally.add(
        graph::wire_unguarded(task, *producers[k], pool[first_node + tally.held], tally.held + 1));
  }
  // From here on the task may be running: only the orchestrator's own books.
  if (may_charge && charges_ && tally.held != 0) {
    ports_.host.charge(OrchestratorWork::wire, tally.held);
  }
  (info != nullptr ? *info : ring.info(task.id.local())).dep_end = first_node + count;
  return tally.resolved;
}

[[gnu::always_inline]] inline std::int32_t OrchestratorCore::wire_replayed(
    Ring& ring, TaskSlot& task, TaskSlot* const* producers, int count) {
  if (recording_) return wire_direct(ring, task, producers, count);  // the guard: record_event
  return wire_unguarded_list(ring, task, producers, count, false);
}

[[gnu::always_inline]] inline std::int32_t OrchestratorCore::wire_pinned(Ring& ring,
                                                                         TaskSlot& task) {
  const std::uint64_t first_node = ring.dep_top() - 1;  // taken by the admit
  task.state.store(TaskState::pending, std::memory_order_relaxed);
  task.release_remaining.store(1, std::memory_order_relaxed);  // as wire_producers
  task.dep_begin = static_cast<std::uint32_t>(first_node);     // before the push
  graph::begin_unguarded(task, 1);
  if (charges_) ports_.host.charge(OrchestratorWork::wire, 1);
  TaskSlot& producer = *pin_.slot;
  FanoutNode& node = ring.dep_node(first_node);
  ring.prefetch_dep_node(first_node + kPinnedNodeAhead);  // the node a later pinned task writes
  // Pushed at once, one CAS: an edge kept back on a chain of the orchestrator's own until a
  // later call into tmr left a loop body that waits outside tmr for an earlier iteration's task
  // waiting forever once the producer had finished (docs/design.md, "The pinned producer").
  // The pin's reference keeps the producer from being consumed: running (wired) or finished.
  const graph::Edge edge = graph::wire_unguarded(task, producer, node, 1);
  if (edge == graph::Edge::wired) [[likely]]
    return 0;
  release_pin();  // it finished: let it retire once its consumers are done
  return 1;
}

[[gnu::always_inline]] inline void OrchestratorCore::release_replayed(TaskSlot& task,
                                                                      std::int32_t resolved,
                                                                      int count) {
  if (recording_) {
    release_kernel_task(task, resolved);
    return;
  }
  release_untraced(task, resolved, count);
}

[[gnu::always_inline]] inline void OrchestratorCore::release_untraced(TaskSlot& task,
                                                                      std::int32_t resolved,
                                                                      int count) {
  ++kernel_tasks_;
  if (graph::finish_unguarded(task, static_cast<std::uint32_t>(count), resolved)) {
    ports_.host.push_ready(&task);
  }
}

[[gnu::always_inline]] inline void OrchestratorCore::write_shared_header(
    TaskRecord& record, LoopDriver::PreparedTask& prepared, const Plan& plan, const Args& args) {
  if (prepared.ready) [[likely]] {
    std::memcpy(static_cast<void*>(&record), prepared.header, sizeof(prepared.header));
    return;
  }
  for (int s = 0; s < 3; ++s)
    record.kernels[s] = plan.kernels[s];
  record.tensor_count = args.tensor_count();
  for (int i = 0; i < args.tensor_count(); ++i)
    record.tags[i] = args.tag(i);
  std::memcpy(prepared.header, static_cast<const void*>(&record), sizeof(prepared.header));
  prepared.ready = true;
}

inline void OrchestratorCore::write_header(TaskRecord& record, LoopDriver::PreparedTask& prepared,
                                           const Plan& plan, const Args& args) {
  write_shared_header(record, prepared, plan, args);
  static_assert(sizeof(Plan::fns) == sizeof(TaskRecord::own_fns));
  std::memcpy(record.own_fns, plan.fns, sizeof(record.own_fns));  // bind_arguments: fns = own_fns
}

// submit_planned's steps for a task whose template position is known. What the position fixes
// is not redone: its record header (kernels, tags) is one copy of the position's prepared one; a
// position without fresh outputs has no layout, no fit check and no heap reservation, and its
// room check is the window test alone (the periodic ring sync and a full ring take the generic
// wait). Producers come from the loop analysis, accesses go into its families. Each error path
// is the generic one: check_fits, wait_for_room, the dependency-pool checks and a failed
// producer collection end the same way with the same named errors.
TaskOutputs OrchestratorCore::submit_analysed(const Plan& plan, const Args& args, int ring_index,
                                              Ring& ring) {
  // The one object every path returns (named return value: no copy of the outputs on return;
  // an error path returns it empty).
  TaskOutputs outputs;
  const int count = args.tensor_count();
  charge(plan.inline_task ? OrchestratorWork::alloc : OrchestratorWork::submit_analysed,
         static_cast<std::uint32_t>(count));
  LoopDriver::PreparedTask& prepared = loops_.prepared();
  // The tags are the template's (plan_submit compared them), so is the set of fresh outputs.
  const bool scoped = args.out_mask() != 0 || plan.inline_task;
  OutputLayout layout;
  std::uint64_t heap_offset = 0;
  std::uint64_t heap_consumed = 0;
  if (scoped) {
    layout = layout_outputs(args);
    // check_fits and wait_for_room, their passing case inline (the rest names the error or waits).
    if (!fits_at_once(ring_index, layout, true) && !check_fits(ring_index, layout, true)) {
      return outputs;
    }
  }
  if (!room_at_once(ring, layout.total, &heap_offset, &heap_consumed) &&
      !wait_for_room(ring, layout.total, &heap_offset, &heap_consumed)) {
    return outputs;
  }
  TaskSlot& task = admit_slot(ring, ring_index, heap_consumed, plan, args);
  TaskRecord& record = *task.record;
  write_header(record, prepared, plan, args);
  record.scalar_count = args.scalar_count();
  copy_tensors(record.tensors, args);
  outputs.task_ = task.id;
  if (scoped) materialise_outputs(record, ring, heap_offset, args, layout, task.id, &outputs);
  copy_scalars(record.scalars, args.scalars(), args.scalar_count());

  AccessRegion regions[kMaxTensorArgs];
  // A task whose producers need no lookup (LoopDriver::direct_producers: template edges, its
  // position's fixed external producers, live creators) is wired straight from that list: no
  // discovery, no producer vector, no deduplication filter. Alloc tasks, any task needing a map or
  // family lookup or a creator error, long lists and a dependency pool short of room take the
  // steps below (collect(), which waits or names the error).
  TaskSlot* direct[kDirectProducers];
  int direct_count =
      plan.inline_task ? -1 : loops_.direct_producers(args, direct, kDirectProducers, regions);
  bool ok = true;
  std::int32_t resolved = 0;
  if (direct_count >= 0 && ring.dep_fits(static_cast<std::uint64_t>(direct_count)) && !fatal()) {
    loops_.submitted(task.id);
    resolved = wire_direct(ring, task, direct, direct_count);
  } else {
    direct_count = -1;
    ok = discover_producers(ring, args, regions);
    loops_.submitted(task.id);
    resolved = wire_producers(ring, task, ok);
  }
  if (ok) {
    // TensorMap entries read the box through the task record's copy (alive while the task is).
    if (loops_.records_into_map()) {
      for (int i = 0; i < count; ++i)
        regions[i].tensor = &record.tensors[i];
    }
    // Accesses to outer buffers go into the loop's affine families (loops/).
    loops_.record(task, args, regions);
  }
  enter_scope(task, ring_index, heap_consumed, scoped);
  ring.publish_batched(task.id.local());
  if (recording_) {
    if (direct_count >= 0) {
      record_event(task, plan, args,
                   std::span<TaskSlot* const>(direct, static_cast<std::size_t>(direct_count)));
    } else {
      record_event(task, plan, args, dependence_.producers());
    }
  }
  if (direct_count >= 0) {
    release_kernel_task(task, resolved);  // wired from the direct list: a kernel task, no error
  } else {
    release_wiring_guard(task, resolved, ok);
  }
  if (!ok) {
    outputs.count_ = 0;
    outputs.task_ = TaskId();
  }
  return outputs;
}

template <bool kTrusted>
TaskOutputs OrchestratorCore::submit_replayed(const Plan& plan, const Args& args, Ring& ring,
                                              LoopDriver::ReplayPlan& fast) {
  // (The ring's index read here, not passed: with the result's pointer and `fast`, a sixth
  // argument would go through the stack.)
  const int ring_index = static_cast<int>(ring.index());
  // The replay check (inline here: one call for the check and the admit). An exact one names the
  // position's record image (LoopDriver::named_tensors); a masked one copies the tensors into the
  // record the admit below fills.
  TaskOutputs outputs;  // every path returns it: built in the caller's storage
  if constexpr (kTrusted) {
    loops_.replay_trusted(fast, plan.fns, args, ring);
  } else if (!loops_.replay_into(fast, plan.kernels, plan.fns, args, ring)) [[unlikely]] {
    outputs = submit_in_loop_slow(plan, args, ring_index, ring);
    return outputs;
  }
  charge(kTrusted ? OrchestratorWork::submit_pattern : OrchestratorWork::submit_analysed,
         static_cast<std::uint32_t>(args.tensor_count()));
  ++submits_since_sync_;  // room_at_once's count: the caller tested it with the window
  // The pinned producer's path is decided before the admit, which then takes its one dependency
  // node (one pool-end store, not two). `fast` is the plan replay_into covered (its covered_):
  // read through the register that holds it, not reloaded after the admit's stores.
  const TaskId single = LoopDriver::single_producer(fast);
  // (No recording_ test: a pin is never taken while recording, which is fixed per run. No
  // fatal() test: every caller has just tested it, and a worker may latch an error at any time,
  // so one latched since is the case of one latched just after this submit.)
  const bool pinned = pin_.slot != nullptr && single == pin_.producer && ring.dep_fits(1);
  TaskSlot& task = admit_slot(ring, ring_index, 0, plan, args, pinned ? 1 : 0, true);
  TaskRecord& record = *task.record;  // its tensors: replay_into's copy, or named below
  Tensor* const named = loops_.named_tensors();
  const int scalars = args.scalar_count();  // one load: the record's stores may alias args
  if (named != nullptr) [[likely]] {
    // The image's base moved by the distance: the tensors the body passed (RecordTensors
    // rebuilds them where the kernel runs), and the image's kernel functions (the plan's). One
    // record line instead of the fns' and tensors': the header, then the rest of the line.
    const KernelFn* const fns = loops_.named_fns();  // (read before the header's stores)
    const std::uint32_t distance = loops_.named_distance();
    write_shared_header(record, LoopDriver::prepared(fast), plan, args);
    ring.bind_named(record, task.id.local(), named, fns, distance, scalars);
  } else {
    ring.bind_arguments(task.id.local(), args.tensor_count(), scalars);
    write_header(record, LoopDriver::prepared(fast), plan, args);
    record.scalar_count = scalars;
  }
  copy_scalars(record.scalars, args.scalars(), scalars);
  outputs.task_ = task.id;
  if (pinned) [[likely]] {
    loops_.submitted_covered(task.id);
    const std::int32_t resolved = wire_pinned(ring, task);
    loops_.grow_covered(fast, args);
    ring.publish_batched(task.id.local());
    release_untraced(task, resolved, 1);  // pinned: not recording
    return outputs;
  }
  TaskSlot* direct[kDirectProducers];
  const int direct_count = loops_.fast_producers(direct, kDirectProducers);
  if (direct_count < 0 || !ring.dep_fits(static_cast<std::uint64_t>(direct_count)) || fatal())
      [[unlikely]] {
    // submit_analysed's generic steps: collect() lists the producers (and waits for dependency
    // nodes or names the error), record() grows the families.
    AccessRegion regions[kMaxTensorArgs];  // a direct position fills none
    if (named != nullptr) {
      // A task that may put accesses into the map holds its own tensors (an entry reads its
      // record's: RetirementView::tensor), and so its own kernel functions.
      record.image_distance = 0;
      record.fns = record.own_fns;
      std::memcpy(record.own_fns, plan.fns, sizeof(record.own_fns));
      record.tensors = ring.tensor_storage(task.id.local(), args.tensor_count());
      copy_tensors(record.tensors, args);
    }
    loops_.cover_masks();
    const bool ok = discover_producers(ring, args, regions);
    loops_.submitted_covered(task.id);
    const std::int32_t resolved = wire_producers(ring, task, ok);
    if (ok) loops_.record(task, args, regions);
    ring.publish_batched(task.id.local());
    if (recording_) record_event(task, plan, args, dependence_.producers());
    release_wiring_guard(task, resolved, ok);
    if (!ok) outputs.task_ = TaskId();
    return outputs;
  }
  loops_.submitted_covered(task.id);
  const std::int32_t resolved = wire_replayed(ring, task, direct, direct_count);
  if (resolved == 0 && direct_count == 1 && single.valid() && !recording_) {
    // Its one producer still runs: pin it for the position's next tasks (one CAS per pin).
    release_pin();
    if (graph::hold(*direct[0])) pin_ = Pin{single, direct[0]};
  }
  loops_.grow_covered(fast, args);
  ring.publish_batched(task.id.local());
  if (recording_) {
    record_event(task, plan, args,
                 std::span<TaskSlot* const>(direct, static_cast<std::size_t>(direct_count)));
  }
  release_replayed(task, resolved, direct_count);
  return outputs;
}

namespace {

// What Tensor::placed(data, owner) returns, made in place: `t` (a fresh output's spec) gets its
// buffer and creator. Tensor is trivially copyable and standard layout, its fields at
// field_offsets().
[[gnu::always_inline]] inline void place_in_record(Tensor& t, void* data, TaskId owner) {
  static_assert(std::is_trivially_copyable_v<Tensor> && std::is_standard_layout_v<Tensor> &&
                std::is_trivially_copyable_v<TaskId>);
  constexpr Tensor::FieldOffsets at = Tensor::field_offsets();
  static_assert(at.buffer_bytes - at.base == sizeof(void*) &&
                at.layout_offset - at.owner == sizeof(TaskId));
  auto* const bytes = reinterpret_cast<unsigned char*>(&t);
  std::memcpy(bytes + at.base, &data, sizeof(void*));
  std::memcpy(bytes + at.owner, &owner, sizeof(TaskId));
}

// The heap credit's end (OrchestratorCore::heap_credit_end_ (docs/design.md, "Heap credits"), for
// submit_wide: the top after this submit's admit plus the least of the bytes before the heap's end,
// the free bytes and the scope books' room.
[[gnu::noinline]] std::uint64_t heap_credit_end(const Ring& ring, std::uint64_t open_scope_heap,
                                                std::uint64_t position_after,
                                                std::uint64_t consumed) {
  const std::uint64_t capacity = ring.heap_capacity();
  const auto left = [capacity](std::uint64_t used) {
    return used < capacity ? capacity - used : std::uint64_t{0};
  };
  const std::uint64_t top = ring.heap_top() + consumed;
  return top + std::min({left(position_after), left(top - ring.heap_tail()),
                         left(open_scope_heap + consumed)});
}

}  // namespace

TaskOutputs OrchestratorCore::submit_wide(const Plan& plan, const Args& args, int ring_index,
                                          Ring& ring) {
  TaskOutputs outputs;  // every path returns it
  const int count = args.tensor_count();
  // Where replay_wide copies the tensors and the admit below points the record (bind_arguments:
  // the same place), kept in a register: the record's stores may alias record.tensors.
  Tensor* const tensors = ring.tensor_storage(ring.head(), count);
  LoopDriver::ReplayPlan* covered;
  if (trusted_wide_) [[unlikely]] {
    // A pattern loop's verified position (LoopDriver::trusted_wide, trusted_tasks): the copy
    // alone.
    trusted_wide_ = false;
    covered = loops_.replay_wide_trusted(args, tensors);
  } else {
    covered = loops_.replay_wide(plan.kernels, args, tensors);
  }
  if (covered == nullptr) [[unlikely]] {
    // `plan` may be the position's own (submit_checked), which a fall-back may rebuild.
    const Plan checked = plan;
    outputs = submit_in_loop_slow(checked, args, ring_index, ring);
    return outputs;
  }
  charge(OrchestratorWork::submit_wide, static_cast<std::uint32_t>(count));
  LoopDriver::PreparedTask& prepared = LoopDriver::prepared(*covered);
  // args.out_mask(): the tags are the template's.
  const std::uint32_t outs = LoopDriver::covered_outs(*covered);
  const bool scoped = outs != 0;
  // What the position's first wide submit prepares (plan, layout, header), tested once.
  const bool ready = prepared.wide_ready;
  if (!ready) [[unlikely]] {
    if (!prepared.plan_ready) {
      // replay_wide compared the plan's kernels with the position's: the later submits of this
      // position name them too, and submit_checked takes this plan for them (wide_plan()).
      prepared.plan = plan;
      prepared.plan_ready = true;
    }
    if (scoped && !prepared.layout_ready) {
      // replay_wide compared every output spec with the template's: this layout is every later
      // wide submit's at this position.
      const OutputLayout layout = layout_outputs(args);
      std::memcpy(prepared.out_at, layout.offsets, sizeof(prepared.out_at));
      prepared.out_total = layout.total;
      prepared.layout_ready = true;
    }
  }
  std::uint64_t heap_offset = 0;
  std::uint64_t heap_consumed = 0;
  if (scoped) {
    const std::uint64_t total = prepared.out_total;
    // `ring` is ring(ring_index): every caller passes the scope's (scope_ring_ and its index).
    // The heap credit (heap_credit_end_) covers the heap tests of most wide submits: those of
    // a loop's iterations after the first, until the heap wraps or its free room at the grant is
    // used. The scope's task count is tested each time (another path may hold a task there
    // without moving the heap top).
    if (&ring == heap_credit_ring_ && ring.heap_top() + total <= heap_credit_end_ &&
        open_scope_tasks_[ring_index] + 2 <= ring.window()) [[likely]] {
      heap_offset = ring.heap_position();
      heap_consumed = total;
      ++submits_since_sync_;
    } else {
      const bool fits = total <= ring.heap_capacity() &&
                        open_scope_tasks_[ring_index] + 2 <= ring.window() &&
                        open_scope_heap_[ring_index] + total <= ring.heap_capacity();
      if (!fits && !check_fits(ring_index, layout_outputs(args), true)) return outputs;
      // The window had room and no periodic sync was due (every caller tested both:
      // submit_in_loop, dispatch, submit_new_kernels); the heap is tested here, else the
      // generic wait.
      if (ring.heap_fits(total, &heap_offset, &heap_consumed)) [[likely]] {
        ++submits_since_sync_;
      } else if (!wait_for_room(ring, total, &heap_offset, &heap_consumed)) {
        return outputs;
      }
      // (Out of line: the grant's arithmetic inline here cost submit_wide a register for
      // `this`, reloaded from the stack 44 times.)
      heap_credit_end_ =
          heap_credit_end(ring, open_scope_heap_[ring_index], heap_offset + total, heap_consumed);
      heap_credit_ring_ = &ring;
      ++heap_grants_;
    }
  } else {
    ++submits_since_sync_;  // room_at_once's count: the caller tested it with the window
  }
  // Read before the admit's stores (which may alias args), as admit_slot reads it: one load.
  const int scalars = args.scalar_count();
  // The record names the plan's kept functions (Plan::kept: one store, not a 72-byte copy). A
  // kernel task (replay_wide compared its kernels with the position's): no inline_task test.
  // A task that creates buffers is admitted retained (retain_creator's store on the state line
  // the admit writes; nothing reads the task's own retention before its hold below, and the
  // other branch clears it first). Every wiring below writes the slot's dep_end
  // (wire_unguarded_list, wire_direct, wire_producers): the admit does not.
  TaskSlot& task = admit_slot(ring, ring_index, heap_consumed, plan, args, 0, false, plan.kept,
                              false, false, scoped);
  TaskRecord& record = *task.record;  // its tensors: replay_wide's copy
  if (ready) [[likely]] {
    std::memcpy(static_cast<void*>(&record), prepared.header, sizeof(prepared.header));
  } else {
    write_shared_header(record, prepared, plan, args);  // sets `ready`
    prepared.wide_ready = true;                         // with plan_ready and layout_ready (above)
  }
  if (plan.kept == nullptr) [[unlikely]] {
    std::memcpy(record.own_fns, plan.fns, sizeof(record.own_fns));  // bind_arguments: own_fns
  }
  record.scalar_count = scalars;
  copy_scalars(record.scalars, args.scalars(), scalars);
  outputs.task_ = task.id;
  if (scoped) {
    std::byte* const heap_base = static_cast<std::byte*>(ring.heap_at(heap_offset));
    // The outputs' count in a register, stored once (outputs may alias the record's stores).
    std::size_t n = 0;
    for (std::uint32_t todo = outs; todo != 0; todo &= todo - 1) {
      const int i = std::countr_zero(todo);
      std::byte* const data = heap_base + prepared.out_at[i];
      // replay_wide copied the spec into the record: placed() there is its base and owner set
      // (two stores instead of a second copy of the Tensor).
      place_in_record(tensors[i], data, task.id);
      std::memcpy(&outputs.storage_[n++], &tensors[i], sizeof(Tensor));
    }
    outputs.count_ = static_cast<int>(n);
    // Fill patterns, rare: one test for every output, not one each (and the loop above keeps
    // no register for `args`).
    if (args.filled_mask() != 0) [[unlikely]] {
      for (std::uint32_t todo = args.filled_mask() & outs; todo != 0; todo &= todo - 1) {
        const int i = std::countr_zero(todo);
        const Tensor& spec = args.tensor(i);
        fill_pattern(heap_base + prepared.out_at[i], spec.elements() * spec.element_size(),
                     *args.initial_bits(i), spec.element_size());
      }
    }
  }
  AccessRegion regions[kMaxTensorArgs];  // record() reads none: families and deferral take all
  TaskSlot* direct[kDirectProducers];
  const int direct_count = loops_.wide_producers(args, direct, kDirectProducers, regions);
  if (direct_count >= 0 && ring.dep_fits(static_cast<std::uint64_t>(direct_count)) && !fatal() &&
      !recording_) [[likely]] {
    // Wired without the guard (wire_unguarded_list, the scope's reference in the first count):
    // the orchestrator's books that read the record (families, deferred and map entries) come
    // first, since from the first push on the task may run.
    loops_.submitted_covered(task.id);
    // Families and deferred entries take every access (records_into_map() is false after every
    // replay_wide that passed, so it is not tested here).
    loops_.record_unmapped(task, args);
    const std::int32_t wired_resolved =
        wire_unguarded_list(ring, task, direct, direct_count, scoped);
    // From here on the task may be running: only the orchestrator's own books.
    if (scoped) hold_retained_inline(task, ring_index, heap_consumed);
    ring.publish_batched(task.id.local());
    release_untraced(task, wired_resolved, direct_count);  // release_replayed: not recording
    return outputs;
  }
  // Every other case (a producer list that does not fit or names no list, too few dependency
  // nodes, an error latched, a recording run): the generic steps, out of line, so that the
  // common path above keeps its registers (docs/performance.md, "Session 49, branch wide49").
  submit_wide_generic(outputs, task, plan, args, ring_index, ring, heap_consumed, scoped, direct,
                      direct_count, regions);
  return outputs;
}

void OrchestratorCore::submit_wide_generic(TaskOutputs& outputs, TaskSlot& task, const Plan& plan,
                                           const Args& args, int ring_index, Ring& ring,
                                           std::uint64_t heap_consumed, bool scoped,
                                           TaskSlot** direct, int direct_count,
                                           AccessRegion* regions) {
  const int count = args.tensor_count();
  TaskRecord& record = *task.record;
  bool ok = true;
  std::int32_t resolved = 0;
  // The admit's retention undone: this branch's steps see the task as every other path does
  // until enter_scope holds it (a wait's description of it, for one).
  if (scoped) dependence_.release_creator(task.id);
  loops_.wide_state();  // direct_producers, collect() and record() read it
  if (direct_count >= 0 && ring.dep_fits(static_cast<std::uint64_t>(direct_count)) && !fatal()) {
    loops_.submitted_covered(task.id);
    resolved = wire_direct(ring, task, direct, direct_count);
  } else {
    // submit_analysed's generic steps: collect() lists the producers (and waits for dependency
    // nodes or names the error).
    direct_count = -1;
    ok = discover_producers(ring, args, regions);
    loops_.submitted_covered(task.id);
    resolved = wire_producers(ring, task, ok);
  }
  if (ok) {
    if (loops_.records_into_map()) {
      for (int i = 0; i < count; ++i)
        regions[i].tensor = &record.tensors[i];
    }
    loops_.record(task, args, regions);  // grows the families, defers the fresh buffers' entries
  }
  enter_scope(task, ring_index, heap_consumed, scoped);
  ring.publish_batched(task.id.local());
  if (recording_) {
    if (direct_count >= 0) {
      record_event(task, plan, args,
                   std::span<TaskSlot* const>(direct, static_cast<std::size_t>(direct_count)));
    } else {
      record_event(task, plan, args, dependence_.producers());
    }
  }
  if (direct_count >= 0) {
    release_kernel_task(task, resolved);
  } else {
    release_wiring_guard(task, resolved, ok);
  }
  if (!ok) {
    outputs.count_ = 0;
    outputs.task_ = TaskId();
  }
}

OrchestratorCore::OutputLayout OrchestratorCore::layout_outputs(const Args& args) {
  OutputLayout layout;
  // The sums in registers, stored once (the layout's address goes to check_fits, so each
  // iteration stored them). An `out` placeholder's buffer_bytes is its elements times its
  // element size (Args::out wraps the spec), so no product over the dimensions.
  std::uint64_t total = 0;
  int count = 0;
  for (std::uint32_t outs = args.out_mask(); outs != 0; outs &= outs - 1) {
    const int i = std::countr_zero(outs);
    ++count;
    layout.offsets[i] = total;
    total += align_up(args.tensor(i).buffer_bytes(), kOutputAlign);
  }
  layout.total = total;
  layout.count = count;
  return layout;
}

bool OrchestratorCore::check_fits(int ring_index, const OutputLayout& layout, bool scoped) {
  Ring& ring = this->ring(ring_index);
  if (layout.total > ring.heap_capacity()) {
    fail(ErrorCode::heap_ring_deadlock,
         "a task's outputs need " + std::to_string(layout.total) + " bytes but ring " +
             std::to_string(ring_index) + "'s heap holds " + std::to_string(ring.heap_capacity()) +
             "; raise TMR_RING_HEAP (RuntimeConfig::ring.heap_bytes)");
    return false;
  }
  if (scoped && open_scope_tasks_[ring_index] + 2 > ring.window()) {
    fail(ErrorCode::scope_deadlock,
         "open scopes on ring " + std::to_string(ring_index) + " already hold " +
             std::to_string(open_scope_tasks_[ring_index]) +
             " tasks and the ring's task window is " + std::to_string(ring.window()) +
             " (at most window-1 live); a scope's tasks are only released when it ends, so this "
             "can never fit. Raise TMR_RING_TASK_WINDOW (RuntimeConfig::ring.task_window) or "
             "split the work into smaller (nested) scopes");
    return false;
  }
  if (scoped && open_scope_heap_[ring_index] + layout.total > ring.heap_capacity()) {
    fail(ErrorCode::scope_deadlock,
         "open scopes on ring " + std::to_string(ring_index) + " already hold " +
             std::to_string(open_scope_heap_[ring_index]) + " heap bytes; " +
             std::to_string(layout.total) + " more exceed the ring heap of " +
             std::to_string(ring.heap_capacity()) +
             " bytes. Raise TMR_RING_HEAP (RuntimeConfig::ring.heap_bytes) or split the work "
             "into smaller (nested) scopes");
    return false;
  }
  return true;
}

// Inline in submit_planned, its one caller: a call's frame (saved registers, the arguments
// passed) cost ~35 instructions a submit.
[[gnu::always_inline]] inline TaskSlot& OrchestratorCore::admit_task(
    Ring& ring, int ring_index, std::uint64_t heap_consumed, std::uint64_t heap_offset,
    const Plan& plan, const Args& args, const OutputLayout& layout, TaskOutputs* outputs,
    bool outputs_possible, const KernelFn* kept_fns, bool may_be_inline) {
  // The counts read once, before any store (a store through a record or slot may alias the
  // Args' byte-sized fields, so each later use reloaded them: 5 loads a submit).
  const int tensor_count = args.tensor_count();
  const int scalar_count = args.scalar_count();
  // Every wiring after this (wire_plain, wire_producers) writes the slot's dep_end.
  TaskSlot& slot = admit_slot(ring, ring_index, heap_consumed, plan, args, 0, false, kept_fns,
                              may_be_inline, false);
  const TaskId id = slot.id;
  TaskRecord& record = *slot.record;  // slot.ring and slot.record are bound once by the ring

  // Task record: kernels, tensors (fresh outputs materialised in the heap), scalars.
  outputs->task_ = id;
  // The plan's kernel ids and functions (bind_arguments pointed fns at own_fns, or at kept_fns:
  // nothing to copy), and every tag slot at once (Args keeps unused ones zero; the record's past
  // tensor_count are never read).
  static_assert(sizeof(Plan::fns) == sizeof(TaskRecord::own_fns) &&
                sizeof(Plan::kernels) == sizeof(TaskRecord::kernels));
  std::memcpy(record.kernels, plan.kernels, sizeof(record.kernels));
  if (kept_fns == nullptr) std::memcpy(record.own_fns, plan.fns, sizeof(record.own_fns));
  record.tensor_count = tensor_count;
  record.scalar_count = scalar_count;
  static_assert(sizeof(TaskRecord::tags) == kMaxTensorArgs * sizeof(ArgTag));
  std::memcpy(record.tags, args.tags(), sizeof(record.tags));
  // One copy of the argument tensors; out placeholders are replaced below.
  copy_tensors(record.tensors, args, tensor_count);
  if (outputs_possible) materialise_outputs(record, ring, heap_offset, args, layout, id, outputs);
  copy_scalars(record.scalars, args.scalars(), scalar_count);
  return slot;
}

[[gnu::always_inline]] inline TaskSlot& OrchestratorCore::admit_slot(
    Ring& ring, int ring_index, std::uint64_t heap_consumed, const Plan& plan, const Args& args,
    std::uint64_t dep_nodes, bool replayed, const KernelFn* kept_fns, bool may_be_inline,
    bool set_dep_end, bool retained) {
  // Read before the stores below (see admit_task).
  const int tensor_count = args.tensor_count();
  const int scalar_count = args.scalar_count();
  const std::uint32_t local = ring.admit(heap_consumed, dep_nodes, set_dep_end);
  const TaskId id(static_cast<std::uint32_t>(ring_index), local);
  TaskSlot& slot = ring.slot(local);
  slot.id = id;
  ring.info(local).sequence = sequence_++;
  // The record's argument pointers: inline or the slot's spill area, by count (a replayed submit
  // copied its tensors to the same place, Ring::tensor_storage, or names an image: it binds them
  // itself).
  if (!replayed) ring.bind_arguments(local, tensor_count, scalar_count, kept_fns);
  slot.block_count = args.block_count();
  slot.active_mask = plan.mask;
  slot.shape = plan.shape;
  slot.sync_start = args.is_sync_start();
  slot.next_block = 0;
  // dep_begin and dep_count: set by the wiring every admitted task gets (wire_producers,
  // wire_direct, wire_replayed), before anything can read them.
  // (A replayed task is a kernel task: TaskPlan::fast positions are not allocs.)
  slot.subtasks_remaining.store(
      !replayed && may_be_inline && plan.inline_task ? 0 : args.block_count() * plan.active,
      std::memory_order_relaxed);
  if (replayed) {
    dependence_.admitted_without_state(slot);  // nothing to set up (submit_replayed)
  } else {
    dependence_.admitted(slot, retained);
  }
  return slot;
}

inline void OrchestratorCore::materialise_outputs(TaskRecord& record, Ring& ring,
                                                  std::uint64_t heap_offset, const Args& args,
                                                  const OutputLayout& layout, TaskId id,
                                                  TaskOutputs* outputs) {
  std::byte* const heap_base = static_cast<std::byte*>(ring.heap_at(heap_offset));
  // The outputs' count in a register, stored once (as submit_wide: the stores through the
  // record and the outputs may alias it, so outputs->count_++ was a load and a store an output).
  std::size_t n = 0;
  for (std::uint32_t outs = args.out_mask(); outs != 0; outs &= outs - 1) {
    const int i = std::countr_zero(outs);
    std::byte* const data = heap_base + layout.offsets[i];
    // The record holds the placeholder already (copy_tensors, before every call): placed there
    // (place_in_record, as submit_wide), then copied once into the caller's outputs (building it
    // in the outputs and copying it back was one 104-byte copy more an output, ~15 instructions).
    Tensor& placed = record.tensors[i];
    place_in_record(placed, data, id);
    ::new (&outputs->storage_[n++]) Tensor(placed);
    if (args.initial_bits(i)) {  // (buffer_bytes: the elements times the element size)
      const Tensor& spec = args.tensor(i);
      fill_pattern(data, spec.buffer_bytes(), *args.initial_bits(i), spec.element_size());
    }
  }
  outputs->count_ = static_cast<int>(n);
}

bool OrchestratorCore::discover_producers(Ring& ring, const Args& args, AccessRegion* regions) {
  dependence_.begin();
  // Creators, template edges and the loop's external producers, without TensorMap lookups.
  return finish_discovery(ring, loops_.collect(args, regions));
}

bool OrchestratorCore::finish_discovery(Ring& ring, const Status& found) {
  if (!found.ok()) {
    fail(found.code, found.message);
    return false;
  }
  if (fatal()) return false;
  return check_dep_nodes(ring);
}

bool OrchestratorCore::check_dep_nodes(Ring& ring) {
  const auto producer_count = static_cast<std::uint64_t>(dependence_.producers().size());
  if (producer_count > ring.dep_capacity()) {
    fail(ErrorCode::dependency_overflow,
         "a task depends on " + std::to_string(producer_count) + " earlier tasks but ring " +
             std::to_string(ring.index()) + "'s dependency pool holds " +
             std::to_string(ring.dep_capacity()) +
             " records; raise TMR_RING_DEP_POOL (RuntimeConfig::ring.dep_pool)");
    return false;
  }
  return wait_for_dep_nodes(ring, producer_count);
}

std::int32_t OrchestratorCore::wire_producers(Ring& ring, TaskSlot& task, bool ok) {
  const auto& producers = dependence_.producers();
  const auto producer_count = static_cast<std::uint32_t>(producers.size());
  const std::uint64_t first_node = ring.take_dep_nodes(ok ? producer_count : 0);
  const bool inline_task = task.subtasks_remaining.load(std::memory_order_relaxed) == 0;
  graph::WiringTally tally;
  if (inline_task) {
    graph::mark_finished(task, std::memory_order_relaxed);       // an alloc task never runs
    task.release_remaining.store(1, std::memory_order_relaxed);  // its scope only
    task.fanin_remaining.store(0, std::memory_order_relaxed);
  } else {
    task.state.store(TaskState::pending, std::memory_order_relaxed);
    // Its completion, plus its scope when it creates buffers (enter_scope adds that one).
    task.release_remaining.store(1, std::memory_order_relaxed);
    graph::begin_wiring(task, producer_count);
    if (ok) {
      for (TaskSlot* producer : producers)
        tally.add(graph::wire(task, *producer, ring.dep_node(first_node + tally.held)));
    } else {
      tally.resolved = static_cast<std::int32_t>(producer_count);  // failed: never dispatched
    }
  }
  task.dep_begin = static_cast<std::uint32_t>(first_node);
  task.dep_count = tally.held;
  if (tally.held != 0) charge(OrchestratorWork::wire, tally.held);
  ring.info(task.id.local()).dep_end = ring.dep_top();
  return tally.resolved;
}

// wire_producers for submit_planned's kernel task when not recording: graph::begin_unguarded,
// as wire_replayed, with the scope's reference (a task that creates buffers) in the task's
// first count, so neither the guard's decrement nor the scope's increment is a locked
// instruction. Everything a worker reads of the task is written before the first push.
[[gnu::always_inline]] inline std::int32_t OrchestratorCore::wire_plain(Ring& ring, TaskSlot& task,
                                                                        bool scoped,
                                                                        bool may_charge,
                                                                        Ring::SlotInfo& info) {
  const auto& producers = dependence_.producers();
  return wire_unguarded_list(ring, task, producers.begin(), static_cast<int>(producers.size()),
                             scoped, may_charge, &info);
}

void OrchestratorCore::enter_scope(TaskSlot& task, int ring_index, std::uint64_t heap_consumed,
                                   bool scoped) {
  if (!scoped) return;  // creates nothing: no tensor can name it as creator
  if (task.subtasks_remaining.load(std::memory_order_relaxed) != 0) {
    task.release_remaining.fetch_add(1, std::memory_order_relaxed);  // published below
  }
  hold_in_scope(task, ring_index, heap_consumed);
}

void OrchestratorCore::hold_in_scope(TaskSlot& task, int ring_index, std::uint64_t heap_consumed) {
  hold_in_scope_inline(task, ring_index, heap_consumed);
}

void OrchestratorCore::release_wiring_guard(TaskSlot& task, std::int32_t resolved, bool ok) {
  if (task.subtasks_remaining.load(std::memory_order_relaxed) == 0) {
    ++inline_tasks_;
    return;
  }
  if (!ok) {
    ++kernel_tasks_;
    // Never dispatched: count it finished so the drain does not wait for it.
    graph::mark_finished(task);
    graph::release(task);
    ports_.sink.kernel_task_completed();
    return;
  }
  release_kernel_task(task, resolved);
}

// ---------------------------------------------------------------- rings and waiting

void OrchestratorCore::sync_rings() {
  release_pin();  // the pinned producer may retire from here on
  for (int r = 0; r < kRingCount; ++r) {
    Ring& ring = this->ring(r);
    ring.refresh();
    dependence_.forget_retired(r, ring.retired_seen());
  }
}

bool OrchestratorCore::all_kernel_tasks_finished() const {
  return ports_.host.kernel_tasks_completed() == kernel_tasks_;
}

template <class Ready, class Describe>
bool OrchestratorCore::wait_blocked(Ready ready, Describe describe, ErrorCode code) {
  release_pin();  // nothing waited for may wait on the pinned producer's retirement
  OrchestratorHost& host = ports_.host;
  const std::uint64_t start = host.wait_clock_ns();
  // Resume only after a batch of completions (or when none is left to wait for), so a full ring
  // does not turn into one sleep and one wake-up per task.
  const std::uint64_t batch = std::max<std::uint64_t>(1, ring(0).window() / 8);
  host.wake_orchestrator_at(std::min(host.kernel_tasks_completed() + batch, kernel_tasks_));
  int quiet_checks = 0;
  const auto stall_ns = static_cast<std::uint64_t>(ports_.stall_timeout_s * 1e9);
  wait_with_stall_check(
      host, kPollNs, [&] { return fatal() || ready(); },
      [&](const WaitProgress& p) {
        if (p.progressed) {
          quiet_checks = 0;
          host.wake_orchestrator_at(std::min(p.completed + batch, kernel_tasks_));
          return true;
        }
        // Every submitted task has finished and the watermark still does not move: only the
        // orchestrator could free space (by ending scopes), and it is the one waiting.
        if (all_kernel_tasks_finished() && ++quiet_checks >= 3) {
          fail(code, describe() +
                         "; every submitted task has finished, so what remains is held by scopes "
                         "that are still open");
          return false;
        }
        if (p.quiet_ns > stall_ns) {
          fail(code, describe() + "; no task finished for " +
                         std::to_string(ports_.stall_timeout_s) + " s (a kernel may never return)");
          return false;
        }
        return true;
      });
  host.wake_orchestrator_at(OrchestratorHost::kNotWaiting);
  blocked_ns_ += host.wait_clock_ns() - start;
  return !fatal();
}

bool OrchestratorCore::wait_for_room(Ring& ring, std::uint64_t bytes, std::uint64_t* offset,
                                     std::uint64_t* consumed) {
  if (++submits_since_sync_ >= kSubmitsPerSync) {  // batched reclaiming (kSubmitsPerSync)
    submits_since_sync_ = 0;
    revoke_room();  // the count restarts (room_credited)
    sync_rings();
  }
  auto fits = [&] { return ring.window_has_room() && ring.heap_fits(bytes, offset, consumed); };
  if (fits()) return true;
  sync_rings();
  if (fits()) return true;
  const bool heap_short = ring.window_has_room();
  // Hysteresis: once blocked, wait for an eighth of the window (unless nothing more can finish).
  const std::uint32_t slack = ring.window() / 8;
  auto ready = [&] {
    sync_rings();
    if (!fits()) return false;
    return ring.live_tasks() + 1 + slack < ring.window() || all_kernel_tasks_finished();
  };
  auto describe = [&] {
    return std::string(heap_short ? "output heap" : "task window") + " of ring " +
           std::to_string(ring.index()) + " is full (" + describe_ring(ring) + "); raise " +
           (heap_short ? "TMR_RING_HEAP (RuntimeConfig::ring.heap_bytes)"
                       : "TMR_RING_TASK_WINDOW (RuntimeConfig::ring.task_window)") +
           " or end scopes sooner";
  };
  // Accounted apart from the other waits (RunStats::orchestrator_ring_wait_*: wait_blocked's
  // own measure, and the thread's CPU time, read twice per wait, not per submit).
  const std::uint64_t blocked = blocked_ns_;
  const std::uint64_t cpu = thread_cpu_ns();
  const bool ok =
      wait_blocked(ready, describe,
                   heap_short ? ErrorCode::heap_ring_deadlock : ErrorCode::flow_control_deadlock);
  ++ring_waits_.count;
  ring_waits_.ns += blocked_ns_ - blocked;
  ring_waits_.cpu_ns += thread_cpu_ns() - cpu;
  return ok;
}

bool OrchestratorCore::wait_for_dep_nodes(Ring& ring, std::uint64_t nodes) {
  if (ring.dep_fits(nodes)) return true;
  auto ready = [&] {
    sync_rings();
    return ring.dep_fits(nodes);
  };
  auto describe = [&] {
    return "dependency pool of ring " + std::to_string(ring.index()) + " is full (" +
           std::to_string(ring.dep_used()) + " of " + std::to_string(ring.dep_capacity()) +
           " records held, " + std::to_string(nodes) + " more needed; " + describe_ring(ring) +
           "); raise TMR_RING_DEP_POOL (RuntimeConfig::ring.dep_pool) or end scopes sooner";
  };
  return wait_blocked(ready, describe, ErrorCode::dep_pool_overflow);
}

std::string OrchestratorCore::describe_ring(Ring& ring) const {
  std::ostringstream out;
  out << ring.live_tasks() << " of " << ring.window() << " task slots live, " << ring.heap_used()
      << " of " << ring.heap_capacity() << " heap bytes held, " << open_scope_tasks_[ring.index()]
      << " tasks held by open scopes";
  if (ring.live_tasks() > 0) {
    TaskSlot& oldest = ring.slot(ring.retired_seen());
    out << "; oldest live task " << describe_task(oldest);
  }
  return out.str();
}

std::string OrchestratorCore::describe_task(TaskSlot& task) const {
  std::string state;
  TaskState now = task.state.load(std::memory_order_acquire);
  // A consumed task keeps its last state: its count is what says it (Ring::release).
  if (now == TaskState::completed && task.release_remaining.load(std::memory_order_acquire) == 0)
    now = TaskState::consumed;
  switch (now) {
    case TaskState::pending:
      state = "waiting for producers";
      break;
    case TaskState::ready:
      state = "ready or running";
      break;
    case TaskState::completed:
      state = "finished but still referenced";
      break;
    case TaskState::consumed:
      state = "consumed";
      break;
  }
  std::string kernels;
  for (KernelId k : task.record->kernels) {
    if (const KernelInfo* info = ports_.kernels.find(k)) {
      kernels += (kernels.empty() ? "" : "+") + info->name;
    }
  }
  if (kernels.empty()) kernels = "alloc";
  const bool scope_open = dependence_.creator_retained(task.id);
  return task_name(task.id) + " (" + kernels + ", " + state +
         (scope_open ? ", its scope is open" : "") + ")";
}

// ---------------------------------------------------------------- element access

bool OrchestratorCore::discover_access(const Tensor& tensor, const Tensor& region,
                                       AccessKind kind) {
  loops_.flush_deferred();  // what a finished loop deferred, before the map is asked (loops/)
  sync_rings();
  dependence_.begin();
  const Status found = dependence_.add_creator(tensor, 0);
  if (!found.ok()) {
    fail(found.code, found.message);
    return false;
  }
  dependence_.add_accessors(make_region(region), kind);
  return true;
}

bool OrchestratorCore::wait_producers_finished(const char* what) {
  const auto& producers = dependence_.producers();
  auto finished = [&] {
    for (TaskSlot* p : producers) {
      if (p->state.load(std::memory_order_acquire) < TaskState::completed) return false;
    }
    return true;
  };
  if (finished()) return true;
  OrchestratorHost& host = ports_.host;
  const auto timeout = static_cast<std::uint64_t>(ports_.tensor_wait_timeout_s * 1e9);
  const std::uint64_t start = host.wait_clock_ns();
  host.wake_orchestrator_at(0);  // any completion may be the awaited one
  wait_with_stall_check(
      host, kPollNs, [&] { return fatal() || finished(); },
      [&](const WaitProgress& p) {
        if (p.waited_ns <= timeout) return true;
        std::string blocking;
        for (TaskSlot* t : producers) {
          if (t->state.load(std::memory_order_acquire) < TaskState::completed) {
            blocking = describe_task(*t);
            break;
          }
        }
        fail(ErrorCode::tensor_wait_timeout,
             std::string(what) + " waited " + std::to_string(ports_.tensor_wait_timeout_s) +
                 " s for task " + blocking +
                 "; raise RuntimeConfig::tensor_wait_timeout_s if kernels are that slow");
        return false;
      });
  host.wake_orchestrator_at(OrchestratorHost::kNotWaiting);
  blocked_ns_ += host.wait_clock_ns() - start;
  return !fatal();
}

bool OrchestratorCore::check_element_type(const Tensor& tensor, const ElementRequest& type,
                                          const char* call) {
  if (!tensor.valid()) {
    fail(ErrorCode::invalid_args, std::string(call) + " on a null tensor");
    return false;
  }
  if (type.is_element_type && type.dtype == tensor.dtype()) return true;
  const std::string given =
      type.is_element_type
          ? "a " + std::string(dtype_name(type.dtype)) + " element"
          : "a type of " + std::to_string(type.size) + " bytes that is no tmr element type";
  fail(ErrorCode::invalid_args,
       std::string(call) + " asked for " + given + " but the tensor holds " +
           std::string(dtype_name(tensor.dtype())) + "; use " + call + "<" +
           std::string(dtype_cpp_name(tensor.dtype())) + "> (the tensor's element type)");
  return false;
}

namespace {

// One element's bytes (a tmr element type: 1, 2 or 4 bytes), copied without a library call.
[[gnu::always_inline]] inline void copy_element(void* out, const void* from, std::size_t size) {
  switch (size) {
    case 1:
      std::memcpy(out, from, 1);
      return;
    case 2:
      std::memcpy(out, from, 2);
      return;
    case 4:
      std::memcpy(out, from, 4);
      return;
    default:
      std::memcpy(out, from, size);
  }
}

}  // namespace

[[gnu::always_inline]] inline bool OrchestratorCore::read_quiet_element(
    const Tensor& tensor, const Shape& indices, void* out, const ElementRequest& type) {
  // read_element's tests, each failure leaving the steps to it (nothing changes before the
  // charge, so their order is free): the loop's first, so that a read outside an analysed loop
  // (every read with parallel_for off) leaves after one test.
  if (!loops_.repeats_quiet_read(tensor)) return false;
  if (fatal() || !type.is_element_type || type.dtype != tensor.dtype()) return false;
  const void* const address = tensor.element_address_or_null(indices);  // null: not valid too
  if (address == nullptr) return false;
  charge(OrchestratorWork::element_read_quiet, 1);
  copy_element(out, address, type.size);
  return true;
}

void OrchestratorCore::read_element(const Tensor& tensor, const Shape& indices, void* out,
                                    const ElementRequest& type) {
  // `out` is its caller's value-initialised T (Orchestrator::get_tensor_data): every early return
  // leaves it zero, as a failed read promises.
  if (fatal()) return;
  // The usual request first, inline; check_element_type names what is wrong.
  if (!(type.is_element_type && tensor.valid() && type.dtype == tensor.dtype())) [[unlikely]] {
    check_element_type(tensor, type, "get_tensor_data");
    return;
  }
  const void* address = tensor.element_address(indices);  // throws Error when out of bounds
  // Inside an analysed loop, a buffer with no possible writer needs no discovery (loops/).
  const bool quiet = loops_.element_access(false, tensor);
  charge(quiet ? OrchestratorWork::element_read_quiet : OrchestratorWork::element_access, 1);
  if (!quiet) {
    if (!discover_access(tensor, tensor, AccessKind::read)) return;
    if (!wait_producers_finished("get_tensor_data")) return;
  }
  copy_element(out, address, type.size);
}

void OrchestratorCore::write_element(const Tensor& tensor, const Shape& indices, const void* in,
                                     const ElementRequest& type) {
  if (fatal()) return;
  if (!check_element_type(tensor, type, "set_tensor_data")) return;
  void* const address = tensor.element_address(indices);
  loops_.element_access(true, tensor);
  charge(OrchestratorWork::element_access, 1);
  // Writers and readers of the element must be done before it changes under them.
  Shape ones;
  for (int d = 0; d < tensor.ndims(); ++d)
    ones.push_back(1);
  const Tensor element = tensor.view(ones, indices);
  if (!discover_access(tensor, element, AccessKind::write)) return;
  if (!wait_producers_finished("set_tensor_data")) return;
  std::memcpy(address, in, type.size);
}

void OrchestratorCore::wait_for(const Tensor& tensor) {
  if (fatal()) return;
  if (!tensor.valid()) {
    fail(ErrorCode::invalid_args, "wait_for on a null tensor");
    return;
  }
  loops_.flush_deferred();  // the map must hold what an analysed loop deferred (loops/)
  if (!discover_access(tensor, tensor, AccessKind::read)) return;
  wait_producers_finished("wait_for");
}

}  // namespace tmr::detail

namespace tmr {

// The public submit, in the core's file so plain_ready() and the call to the plain instance are
// inline in it: one function with its tests (one byte for five conditions) between the caller and
// submit_plain, where it was Orchestrator::submit (the run test), then submit() (the latch, the
// kernels, plain_args, the loop, plain_run_, the out mask): ~15 instructions a submit fewer.
// Anything else calls submit() straight from the tests (the run test moved into it), with the
// arguments still in their registers: a loop's submit pays the flag test (a separate slow-path
// function cost it ~11 instructions, paged attention's replayed submits among them).
TaskOutputs Orchestrator::submit(const MixKernels& kernels, const Args& args) {
  detail::OrchestratorCore& core = *core_;
  if (core.plain_ready(kernels, args)) [[likely]] {
    if (args.out_mask() == 0) [[likely]]
      return core.submit_plain(args);
    return core.submit_plain_outputs(args);
  }
  if (core.loop_ready()) return core.submit_looped(kernels, args);
  if (core.recorded_ready(kernels, args)) {
    if (args.out_mask() == 0) [[likely]]
      return core.submit_plain_recorded(args);
    return core.submit_plain_outputs_recorded(args);
  }
  return core.submit(kernels, args);
}

namespace {

// Orchestrator::read_element past its quiet case, out of line (the quiet case then saves no
// registers): live_core's test, then the core's steps, an Error latched as the run's.
[[gnu::noinline]] void read_element_steps(detail::OrchestratorCore& core, const Tensor& tensor,
                                          const Shape& indices, void* out,
                                          const detail::ElementRequest& type) {
  if (!core.in_run()) detail::throw_run_ended();
  try {
    core.read_element(tensor, indices, out, type);
  } catch (const Error& e) {
    core.fail(e.code(), e.what());
  }
}

}  // namespace

// The public element read, beside the core's (as submit): its quiet case inline, a leaf; anything
// else read_element_steps.
void Orchestrator::read_element(const Tensor& tensor, const Shape& indices, void* out,
                                const detail::ElementRequest& type) {
  detail::OrchestratorCore& core = *core_;
  if (core.in_run() && core.read_quiet_element(tensor, indices, out, type)) [[likely]]
    return;
  read_element_steps(core, tensor, indices, out, type);
}

}  // namespace tmr
