// The orchestrator side of the engine: runs on the caller's thread, turns submits into task
// records, discovers dependencies through creator retention and the TensorMap, allocates from
// the rings (waiting on the watermark when full), wires fanout edges and publishes ready tasks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/loops/loop_driver.hpp"
#include "core/ring.hpp"
#include "core/tensor_map.hpp"
#include "tmr/orchestrator.hpp"
#include "tmr/trace.hpp"

namespace tmr::detail {

class Engine;

class OrchestratorCore {
 public:
  explicit OrchestratorCore(Engine& engine);

  // Forgets everything and opens the outermost scope. Only between runs.
  void begin_run();
  // Closes every scope still open (reporting unbalanced user scopes).
  void end_orchestration();

  TaskOutputs submit(const MixKernels& kernels, const Args& args);
  TaskOutputs alloc(const Args& args);
  void scope_begin();
  void scope_end();
  // parallel_for: runs body(context, orchestrator, i) for i in [0, n) under loop analysis.
  using LoopBody = void (*)(void* context, Orchestrator& orchestrator, std::int64_t index);
  void parallel_for(std::int64_t n, bool scope_per_iteration, LoopBody body, void* context,
                    Orchestrator& orchestrator);
  int scope_depth() const { return static_cast<int>(scope_starts_.size()) - 1; }

  void read_element(const Tensor& tensor, const Shape& indices, void* out, std::size_t size);
  void write_element(const Tensor& tensor, const Shape& indices, const void* in, std::size_t size);
  void wait_for(const Tensor& tensor);

  void fail(ErrorCode code, const std::string& message);
  bool fatal() const;
  Status status() const;
  const KernelRegistry& kernels() const;

  std::uint64_t tasks_submitted() const { return sequence_; }
  std::uint64_t kernel_tasks_submitted() const { return kernel_tasks_; }
  std::uint64_t inline_tasks() const { return inline_tasks_; }
  std::uint64_t blocked_ns() const { return blocked_ns_; }
  std::vector<TaskEvent>& task_events() { return task_events_; }
  const TensorMap& tensor_map() const { return map_; }
  const LoopDriver& loops() const { return loops_; }

 private:
  struct Plan {
    KernelFn fns[3] = {nullptr, nullptr, nullptr};
    KernelId kernels[3] = {kNoKernel, kNoKernel, kNoKernel};
    std::uint8_t mask = 0;
    TaskShape shape = TaskShape::aiv;
    bool inline_task = false;
  };
  TaskOutputs submit_planned(const Plan& plan, const Args& args);
  bool validate_kernels(const MixKernels& kernels, Plan* plan);
  bool validate_args(const Args& args, const Plan& plan);
  // Refreshes every ring's watermark and frees TensorMap entries of retired tasks.
  void sync_rings();
  // Waits until `ring` has a task slot and `bytes` of heap. False on error (latched).
  bool wait_for_room(Ring& ring, std::uint64_t bytes, std::uint64_t* offset,
                     std::uint64_t* consumed);
  bool wait_for_dep_nodes(Ring& ring, std::uint64_t nodes);
  // Blocks until `ready()`; diagnoses a deadlock when nothing can move. False on error.
  template <class Ready, class Describe>
  bool wait_blocked(Ready ready, Describe describe, ErrorCode code);
  bool all_kernel_tasks_finished() const;
  // Adds `slot` to the current producer list unless it is already there.
  void add_producer(TaskSlot* slot, TaskId id);
  bool add_creator(const Tensor& tensor, int arg_index);
  // Waits until every task in producers_ finished.
  bool wait_producers_finished(const char* what);
  void collect_accessors(const AccessRegion& region, AccessKind kind);
  void release_scope_task(TaskSlot* task);
  std::string describe_ring(Ring& ring) const;
  std::string describe_task(TaskSlot& task) const;

  Engine& engine_;
  TensorMap map_;
  LoopDriver loops_;
  std::vector<TaskSlot*> scope_tasks_;
  std::vector<std::size_t> scope_starts_;
  std::uint32_t open_scope_tasks_[kRingCount] = {};
  std::uint64_t open_scope_heap_[kRingCount] = {};
  std::uint32_t cleaned_[kRingCount] = {};
  std::vector<TaskSlot*> producers_;
  std::uint64_t stamp_ = 0;
  std::uint32_t submits_since_sync_ = 0;
  std::uint64_t sequence_ = 0;
  std::uint64_t kernel_tasks_ = 0;
  std::uint64_t inline_tasks_ = 0;
  std::uint64_t blocked_ns_ = 0;
  std::vector<TaskEvent> task_events_;
};

}  // namespace tmr::detail
