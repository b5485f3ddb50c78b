// The runtime: owns the platform (worker and scheduler threads) and runs orchestrations.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tmr/config.hpp"
#include "tmr/error.hpp"
#include "tmr/kernel.hpp"
#include "tmr/orchestrator.hpp"
#include "tmr/trace.hpp"

namespace tmr {

namespace detail {
class Engine;
class RunGate;
}  // namespace detail

// Host tensors and scalars for one run. Tensors are copied into runtime ("device") memory before
// the orchestration starts; outputs are copied back only when the run succeeds.
class RunArgs {
 public:
  enum class Direction : std::uint8_t { in, out, inout };
  int input(const void* host, const Shape& shape, DType dtype) {
    return add(const_cast<void*>(host), shape, dtype, Direction::in);
  }
  int output(void* host, const Shape& shape, DType dtype) {
    return add(host, shape, dtype, Direction::out);
  }
  int inout(void* host, const Shape& shape, DType dtype) {
    return add(host, shape, dtype, Direction::inout);
  }
  template <class T>
  void scalar(T value) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>);
    std::uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof(T));
    scalars_.push_back(bits);
  }

  struct HostTensor {
    void* host;
    Shape shape;
    DType dtype;
    Direction direction;
  };
  const std::vector<HostTensor>& tensors() const { return tensors_; }
  const std::vector<std::uint64_t>& scalars() const { return scalars_; }

 private:
  int add(void* host, const Shape& shape, DType dtype, Direction direction);
  std::vector<HostTensor> tensors_;
  std::vector<std::uint64_t> scalars_;
};

struct RunStats {
  std::uint64_t tasks_submitted = 0;  // all tasks, hidden alloc tasks included
  std::uint64_t inline_tasks = 0;     // hidden alloc tasks (completed on the orchestrator)
  std::uint64_t subtasks_executed = 0;
  // Earlier conflicting tasks that a submit did not wait for because they had completed
  // (untraced threads runs with many live accesses; docs/design.md, "Completed producers are
  // left out").
  std::uint64_t completed_producers_left_out = 0;
  double wall_us = 0;           // from run start to the last task retired
  double orchestration_us = 0;  // time inside the orchestration function
  double scheduler_us = 0;      // busy time summed over scheduler threads
  // Time the orchestrator waited: for room in full rings, and in get/set_tensor_data and
  // wait_for for the tensor's producers (and, for set, its readers) to finish.
  double orchestrator_blocked_us = 0;
  // Of those waits, the ones for room in a full ring (task window or output heap): how many, how
  // long (wall), and the orchestrator thread's CPU time in them (helping the schedulers, polling
  // the rings; the rest of the wall time it was parked). Threads platform: real CPU time; sim:
  // the host's CPU time of the simulated waits.
  std::uint64_t orchestrator_ring_waits = 0;
  double orchestrator_ring_wait_us = 0;
  double orchestrator_ring_wait_cpu_us = 0;
  // Scheduler steps the orchestrator thread took during the orchestration (threads platform; 0
  // on the sim): while it waited (ring room, producers), and those that did something; and when
  // it published ready work with no scheduler thread awake (it places the work itself,
  // Platform::notify_new_work).
  std::uint64_t orchestrator_wait_steps = 0;
  std::uint64_t orchestrator_wait_steps_progress = 0;
  std::uint64_t orchestrator_placement_steps = 0;
  // Of the orchestrator's placements, those that found a scheduler thread's step gate held by
  // another thread (a core's step after its FIN, the scheduler thread's own step, possibly
  // preempted): it left a request there, which that holder serves with one more step before it
  // lets go, and took no step itself (threads platform; 0 on the sim, whose steps take no gate).
  std::uint64_t orchestrator_placements_gate_held = 0;
  // MIX blocks taken back from pending slots before their cores latched them, to run on a
  // cluster that was idle (TMR_DUAL_SLOT with mix; docs/design.md, "Stranding").
  std::uint64_t mix_blocks_taken_back = 0;
  // Threads platform: tasks placed on an idle core that had not latched them when another core of
  // its scheduler thread went idle, which took them back and ran them (a core thread without a
  // CPU; docs/performance.md, "Run side, session 23").
  std::uint64_t unlatched_taken_back = 0;
  // parallel_for (docs/design.md, "parallel_for"): loops run (loops nested in an analysed loop are
  // part of its iterations and count here too), loops with at least one analysed iteration,
  // iterations of loops that did their own analysis, how many of those used the template, the
  // submits whose producers came from a template, and the fall-backs by reason.
  std::uint64_t loops = 0;
  std::uint64_t loops_analysed = 0;
  std::uint64_t loop_iterations = 0;
  std::uint64_t loop_iterations_analysed = 0;
  std::uint64_t loop_tasks_analysed = 0;
  // Of those, the tasks the wide replayed path took (analysed positions with fresh outputs,
  // buffers their own iteration made, or closed free reads; docs/design.md, "Wide replay").
  std::uint64_t loop_tasks_replayed_wide = 0;
  // Of those, the tasks whose record names its template position's image instead of holding
  // its tensors (docs/design.md, "Records that name their template position").
  std::uint64_t loop_tasks_named = 0;
  std::uint64_t loop_fallbacks = 0;
  std::vector<std::pair<std::string, std::uint64_t>> loop_fallback_reasons;
  // Loop templates kept from an earlier run of this Runtime (the same loop: its place among the
  // run's loops and its depth) that made a loop's template in this run after its first iteration,
  // and those that did not fit that iteration (the loop then learned), by reason.
  // parallel_for(n, TaskPattern) (docs/design.md, "The pattern form"): pattern loops run, their
  // tasks submitted without the replay compare, and the pattern loops that ran as the lambda
  // loop (no compare skipped), by reason.
  std::uint64_t pattern_loops = 0;
  std::uint64_t pattern_tasks_trusted = 0;
  // Of those, the pattern iterations whose tasks were all submitted in one call (every task
  // verified and the ring's room for the whole iteration at once; docs/design.md, "A trusted
  // iteration in one call").
  std::uint64_t pattern_iterations_trusted = 0;
  std::vector<std::pair<std::string, std::uint64_t>> pattern_lambda_reasons;
  std::uint64_t loop_templates_reused = 0;
  // Of those, the loops whose analysis also reused the per-access plans kept with the template
  // (this run's first iteration repeated the kept one's views and buffers, and its range and
  // external routes were the same): no plan building.
  std::uint64_t loop_plans_reused = 0;
  std::uint64_t loop_templates_rejected = 0;
  std::vector<std::pair<std::string, std::uint64_t>> loop_template_rejections;
};

struct RunResult {
  Status status;
  RunStats stats;
  std::shared_ptr<const Trace> trace;  // set when config.record_events
  bool ok() const { return status.ok(); }
};

// One runtime runs one orchestration at a time. run() may be called from several threads: the
// runs take turns (a caller waits at most stall_timeout_s for its turn, then gets runtime_busy).
// run() called from inside a run of the same runtime returns runtime_busy and fails that run too.
// After a run whose kernel overran stall_timeout_s and never returned, the runtime is unusable:
// every later run() returns runtime_unusable; destroy it (that does not wait for the kernel).
class Runtime {
 public:
  // Throws Error(invalid_config) for a bad configuration, including rings larger than the
  // machine's memory.
  explicit Runtime(RuntimeConfig config = {}, KernelRegistry kernels = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  KernelRegistry& kernels();
  const RuntimeConfig& config() const;

  RunResult run(const Orchestration& orchestration, const RunArgs& args);
  RunResult run(const Orchestration& orchestration) { return run(orchestration, RunArgs{}); }

 private:
  std::unique_ptr<detail::RunGate> gate_;
  std::unique_ptr<detail::Engine> engine_;
};

}  // namespace tmr
