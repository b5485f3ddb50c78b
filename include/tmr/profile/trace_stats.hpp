// Per-kernel statistics, core utilisation and the critical path of one recorded run.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "tmr/kernel.hpp"
#include "tmr/trace.hpp"

namespace tmr::profile {

// Figures are per subtask (one core's share of one block of a task), in nanoseconds.
struct KernelStats {
  KernelId kernel = kNoKernel;
  std::string name;
  CoreType core_type = CoreType::aiv;
  std::uint64_t count = 0;  // subtasks that ran this kernel
  double mean_exec_ns = 0;  // end - start
  double p50_exec_ns = 0;   // nearest-rank percentiles of end - start
  double p99_exec_ns = 0;
  double mean_ready_ns = 0;  // start - the task's ready time: waiting for a core
  double mean_head_ns = 0;   // start - dispatch: scheduler to core hand-off
  double mean_tail_ns = 0;   // retire - end: until the scheduler saw it finish
};

struct CoreTypeStats {
  CoreType core_type = CoreType::aic;
  int cores = 0;
  double busy_ns = 0;      // summed end - start of the subtasks on these cores
  double utilisation = 0;  // busy_ns / (cores * makespan), 0..1
};

struct TraceStats {
  std::vector<KernelStats> kernels;       // kernels that ran, by kernel id
  std::vector<CoreTypeStats> core_types;  // AIC, then AIV
  std::uint64_t tasks = 0;
  std::uint64_t inline_tasks = 0;  // hidden alloc tasks
  std::uint64_t subtasks = 0;
  std::uint64_t edges = 0;  // producer -> consumer dependencies
  // Subtasks by the shape of their task (AIC, AIV, MIX), and how many of them started from a
  // pending slot (pre-staged behind the core's previous subtask, TMR_DUAL_SLOT).
  std::uint64_t shape_subtasks[3] = {0, 0, 0};
  std::uint64_t staged_subtasks[3] = {0, 0, 0};
  std::uint64_t makespan_ns = 0;  // run start to the last subtask end / task completion
  // Longest producer chain, each task weighted by its longest subtask (its blocks could run in
  // parallel): no schedule on any number of cores can finish faster.
  std::uint64_t critical_path_ns = 0;
  std::vector<std::uint64_t> critical_path;  // its task sequences, first to last
};

// Nearest-rank percentile (p in 0..100) of unsorted values; 0 for none.
double percentile(std::vector<double> values, double p);

std::uint64_t makespan_ns(const Trace& trace);

TraceStats compute_trace_stats(const Trace& trace, const KernelRegistry& kernels);

// The table `tmr run --stats` prints.
void print_trace_stats(std::ostream& out, const TraceStats& stats);

}  // namespace tmr::profile
