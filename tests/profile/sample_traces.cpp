#include "profile/sample_traces.hpp"

#include <random>

namespace tmr::testing {

namespace {

void no_op(const KernelArgs&) {}

// Appends task `sequence` with its producers to `trace`; returns it.
TaskEvent& add_task(Trace& trace, std::uint64_t sequence, KernelId aic, KernelId aiv0,
                    KernelId aiv1, std::uint32_t blocks, std::uint64_t submit, std::uint64_t ready,
                    std::uint64_t complete, const std::vector<std::uint64_t>& producers) {
  TaskEvent t;
  t.id = TaskId(0, static_cast<std::uint32_t>(sequence));
  t.sequence = sequence;
  t.kernels[0] = aic;
  t.kernels[1] = aiv0;
  t.kernels[2] = aiv1;
  t.block_count = blocks;
  t.submit_ns = submit;
  t.ready_ns = ready;
  t.complete_ns = complete;
  trace.tasks.push_back(t);
  trace.set_producers(trace.tasks.back(), producers);
  return trace.tasks.back();
}

// Cores as the engine numbers them with one cluster: 0 AIC, 1 AIV0, 2 AIV1.
SubtaskEvent subtask(std::uint64_t sequence, std::uint32_t block, std::uint8_t slot,
                     std::uint16_t core, std::uint64_t dispatch, std::uint64_t start,
                     std::uint64_t end, std::uint64_t retire) {
  SubtaskEvent s;
  s.task_sequence = sequence;
  s.block = block;
  s.slot = slot;
  s.core = core;
  s.cluster = 0;
  s.core_type = core == 0 ? CoreType::aic : CoreType::aiv;
  s.scheduler_thread = 0;
  s.dispatch_ns = dispatch;
  s.start_ns = start;
  s.end_ns = end;
  s.retire_ns = retire;
  return s;
}

}  // namespace

void register_sample_kernels(KernelRegistry& registry) {
  registry.add("matmul", CoreType::aic, &no_op);
  registry.add("vadd", CoreType::aiv, &no_op);
  registry.add("vmix", CoreType::aiv, &no_op);
}

Trace small_sample_trace() {
  Trace trace;
  trace.clusters = 1;
  trace.scheduler_threads = 1;
  add_task(trace, 0, kNoKernel, kNoKernel, kNoKernel, 1, 0, 0, 0, {}).inline_task = true;
  add_task(trace, 1, kMatmul, kNoKernel, kNoKernel, 1, 10, 10, 140, {0});
  add_task(trace, 2, kNoKernel, kVadd, kNoKernel, 2, 15, 140, 250, {1});
  add_task(trace, 3, kNoKernel, kVadd, kNoKernel, 1, 20, 20, 80, {});
  add_task(trace, 4, kMatmul, kVmix, kVmix, 1, 25, 250, 390, {2, 3});
  //                              seq block slot core dispatch start end retire
  trace.subtasks.push_back(subtask(3, 0, 1, 1, 30, 40, 70, 80));
  trace.subtasks.push_back(subtask(1, 0, 0, 0, 20, 30, 130, 140));
  trace.subtasks.push_back(subtask(2, 0, 1, 1, 150, 160, 210, 215));
  trace.subtasks.push_back(subtask(2, 1, 1, 2, 150, 170, 240, 250));
  trace.subtasks.push_back(subtask(4, 0, 1, 1, 260, 275, 335, 390));
  trace.subtasks.push_back(subtask(4, 0, 0, 0, 260, 272, 372, 380));
  trace.subtasks.push_back(subtask(4, 0, 2, 2, 260, 280, 380, 390));
  return trace;
}

Trace large_sample_trace(int tasks, int clusters, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  std::uniform_int_distribution<std::uint64_t> duration(50, 300);
  Trace trace;
  trace.clusters = clusters;
  trace.scheduler_threads = 2;
  const int cores = 3 * clusters;
  std::vector<std::uint64_t> core_free(static_cast<std::size_t>(cores), 0);
  for (int i = 0; i < tasks; ++i) {
    const auto seq = static_cast<std::uint64_t>(i);
    const int core = i % cores;
    const int cluster = core < clusters ? core : (core - clusters) / 2;
    const bool aic = core < clusters;
    const KernelId kernel = aic ? kMatmul : (i % 2 == 0 ? kVadd : kVmix);
    std::vector<std::uint64_t> producers;
    if (i >= cores) producers.push_back(seq - static_cast<std::uint64_t>(cores));
    const std::uint64_t ready = core_free[static_cast<std::size_t>(core)];
    const std::uint64_t start = ready + 40;
    const std::uint64_t end = start + duration(random);
    core_free[static_cast<std::size_t>(core)] = end + 30;
    add_task(trace, seq, aic ? kernel : kNoKernel, aic ? kNoKernel : kernel, kNoKernel, 1, seq * 20,
             ready, end + 20, producers);
    SubtaskEvent s;
    s.task_sequence = seq;
    s.slot = aic ? 0 : 1;
    s.core = static_cast<std::uint16_t>(core);
    s.cluster = static_cast<std::uint16_t>(cluster);
    s.core_type = aic ? CoreType::aic : CoreType::aiv;
    s.scheduler_thread = static_cast<std::uint16_t>(cluster % 2);
    s.dispatch_ns = start - 20;
    s.start_ns = start;
    s.end_ns = end;
    s.retire_ns = end + 20;
    trace.subtasks.push_back(s);
  }
  return trace;
}

}  // namespace tmr::testing
