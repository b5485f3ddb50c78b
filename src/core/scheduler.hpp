// The scheduler: per thread, a set of clusters it alone dispatches to. One step polls its cores'
// status words (completion), dispatches ready tasks to idle cores or into pending slots, and
// flushes its local ready buffers. Platforms call step() from threads or from an event loop.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "core/mailbox.hpp"
#include "core/task.hpp"
#include "tmr/trace.hpp"

namespace tmr::detail {

class Engine;

class Scheduler {
 public:
  explicit Scheduler(Engine& engine);

  // Builds per-thread state from the engine's topology. Only while no thread steps.
  void configure();
  // Forgets running work and statistics between runs. Only while no thread steps.
  void reset();

  // One iteration for scheduler thread `thread`. Returns true when anything happened.
  bool step(int thread);
  // True when none of the thread's cores holds a running or pending subtask.
  bool idle(int thread) const { return threads_[thread].busy_cores == 0; }
  int thread_count() const { return static_cast<int>(threads_.size()); }

  // Cycles (cycle_clock) spent in steps that made progress.
  std::uint64_t busy_cycles(int thread) const { return threads_[thread].busy_cycles; }
  std::uint64_t subtasks_done(int thread) const { return threads_[thread].subtasks_done; }

  // Work a step did, for platforms that charge modelled costs (and for statistics).
  struct StepCounters {
    std::uint64_t polls = 0;        // status words read
    std::uint64_t completions = 0;  // subtasks seen finished
    std::uint64_t tasks_completed = 0;
    std::uint64_t dispatches = 0;  // dispatch words written (pending slots included)
    std::uint64_t pops = 0;        // ready tasks taken from a queue
    std::uint64_t pushes = 0;      // ready tasks put on a queue
    std::uint64_t edges = 0;       // consumers released at completion
  };
  const StepCounters& counters(int thread) const { return threads_[thread].counters; }
  // Trace records gathered by each thread (when recording).
  std::vector<SubtaskEvent>& subtask_events(int thread) { return threads_[thread].subtask_events; }
  struct Completion {
    std::uint64_t sequence;
    std::uint64_t ready_ns;
    std::uint64_t complete_ns;
  };
  std::vector<Completion>& completions(int thread) { return threads_[thread].completions; }

  // Makes a task ready from the orchestrator thread (no producers left).
  void push_ready_global(TaskSlot* task);

 private:
  struct Subtask {
    TaskSlot* task = nullptr;
    std::uint32_t token = 0;
    std::uint32_t block = 0;
    std::uint8_t slot = 0;
    std::uint64_t dispatch_ns = 0;
  };
  struct CoreState {
    Mailbox* mailbox = nullptr;
    Subtask running;
    Subtask pending;
    bool awaiting_ack = false;  // the running subtask has not been latched by the core yet
    bool cohort_reserved = false;
    std::uint32_t token = 1;
  };
  struct ClusterCores {
    int aic;
    int aiv[2];
  };
  static constexpr int kLocalCapacity = 64;
  struct LocalReady {
    TaskSlot* tasks[kLocalCapacity];
    int count = 0;
  };
  struct alignas(64) ThreadState {
    std::vector<int> clusters;  // global cluster indices
    std::vector<int> cores;     // global core indices, AIC first
    LocalReady local[kShapeCount];
    int busy_cores = 0;
    // Idle AIC / AIV cores of this thread, read by other threads deciding whether to wake it.
    std::atomic<int> free_cores[2] = {0, 0};
    std::uint64_t busy_cycles = 0;
    std::uint64_t subtasks_done = 0;
    std::uint64_t cohort_done_generation = 0;
    StepCounters counters;
    std::vector<SubtaskEvent> subtask_events;
    std::vector<Completion> completions;
  };

  bool poll_core(int thread, int core);
  void finish_subtask(int thread, int core, const Subtask& subtask);
  void complete_task(int thread, TaskSlot* task);
  void release(TaskSlot* task);
  void make_ready(int thread, TaskSlot* task);
  bool pop_ready(int thread, TaskShape shape, TaskSlot** task);
  void push_back_global(TaskSlot* task);
  bool dispatch_ready(int thread);
  bool dispatch_shape(int thread, TaskShape shape);
  bool dispatch_pending(int thread, TaskShape shape);
  bool cohort_step(int thread);
  void start_cohort(TaskSlot* task);
  // Free "units" of a shape on this thread: clusters (AIC, MIX) or AIV cores.
  int find_unit(int thread, const TaskSlot& task, bool for_pending) const;
  int find_unit(int thread, TaskShape shape, std::uint8_t active_mask, bool for_pending) const;
  int count_free_units(int thread, const TaskSlot& task) const;
  bool core_free(int core) const {
    const CoreState& c = cores_[core];
    return c.running.task == nullptr && !c.cohort_reserved;
  }
  void dispatch_block(int thread, int unit, TaskSlot* task, std::uint32_t block, bool pending);
  void dispatch_subtask(int thread, int core, TaskSlot* task, std::uint8_t slot,
                        std::uint32_t block, std::uint32_t sub_block, bool pending);
  void flush_local(int thread);
  void core_became_busy(int thread, int core);
  void core_became_idle(int thread, int core);
  // True when another thread reports idle cores that could run `task`.
  bool others_have_room(int thread, const TaskSlot& task);

  Engine& engine_;
  std::vector<CoreState> cores_;
  std::vector<ClusterCores> clusters_;
  std::vector<ThreadState> threads_;

  // A start-together (sync_start) task that no single thread can place: every thread reserves
  // its idle units until enough are reserved, then each places blocks on what it reserved.
  struct Cohort {
    std::mutex mutex;
    std::atomic<bool> active{false};
    std::atomic<std::uint64_t> generation{0};
    TaskSlot* task = nullptr;
    TaskShape shape = TaskShape::aic;
    std::uint8_t active_mask = 0;
    std::uint32_t block_count = 0;
    std::atomic<std::uint32_t> reserved{0};
    std::atomic<std::uint32_t> next_block{0};
    std::atomic<bool> go{false};
    std::atomic<std::uint32_t> finished_threads{0};
  } cohort_;
};

}  // namespace tmr::detail
