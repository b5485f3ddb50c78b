#include "tmr/profile/trace_stats.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <ostream>

#include "tmr/profile/task_naming.hpp"

namespace tmr::profile {

namespace {

// Signed difference: a hand-built or clock-skewed trace must not wrap to 2^64.
double diff_ns(std::uint64_t later, std::uint64_t earlier) {
  return static_cast<double>(later) - static_cast<double>(earlier);
}

struct KernelSamples {
  CoreType core_type = CoreType::aiv;
  std::vector<double> exec;
  double ready_sum = 0;
  double head_sum = 0;
  double tail_sum = 0;
};

std::string format_line(const char* fmt, auto... values) {
  char buffer[256];
  std::snprintf(buffer, sizeof buffer, fmt, values...);
  return buffer;
}

}  // namespace

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::ceil(p / 100.0 * static_cast<double>(values.size()));
  const std::size_t index = rank < 1 ? 0 : static_cast<std::size_t>(rank) - 1;
  return values[std::min(index, values.size() - 1)];
}

std::uint64_t makespan_ns(const Trace& trace) {
  std::uint64_t end = 0;
  for (const TaskEvent& t : trace.tasks)
    end = std::max(end, t.complete_ns);
  for (const SubtaskEvent& s : trace.subtasks)
    end = std::max(end, s.end_ns);
  return end;
}

TraceStats compute_trace_stats(const Trace& trace, const KernelRegistry& kernels) {
  TraceStats stats;
  stats.tasks = trace.tasks.size();
  stats.subtasks = trace.subtasks.size();
  stats.makespan_ns = makespan_ns(trace);

  std::map<KernelId, KernelSamples> samples;  // ordered: the table lists kernels by id
  std::vector<double> longest_subtask(trace.tasks.size(), 0.0);
  double busy[2] = {0, 0};
  for (const SubtaskEvent& s : trace.subtasks) {
    if (s.task_sequence >= trace.tasks.size()) continue;
    const TaskEvent& task = trace.tasks[s.task_sequence];
    const KernelId kernel = s.slot < 3 ? task.kernels[s.slot] : kNoKernel;
    KernelSamples& k = samples[kernel];
    k.core_type = s.core_type;
    const double exec = diff_ns(s.end_ns, s.start_ns);
    k.exec.push_back(exec);
    k.ready_sum += diff_ns(s.start_ns, task.ready_ns);
    k.head_sum += diff_ns(s.start_ns, s.dispatch_ns);
    k.tail_sum += diff_ns(s.retire_ns, s.end_ns);
    busy[s.core_type == CoreType::aic ? 0 : 1] += exec;
    int kernels_used = 0;
    for (const KernelId used : task.kernels)
      kernels_used += used != kNoKernel;
    const int shape = kernels_used >= 2 ? 2 : (task.kernels[0] != kNoKernel ? 0 : 1);
    ++stats.shape_subtasks[shape];
    stats.staged_subtasks[shape] += s.staged;
    longest_subtask[s.task_sequence] = std::max(longest_subtask[s.task_sequence], exec);
  }
  for (const auto& [kernel, k] : samples) {
    KernelStats row;
    row.kernel = kernel;
    row.name = kernel_name(kernels, kernel);
    row.core_type = k.core_type;
    row.count = k.exec.size();
    const double n = static_cast<double>(row.count);
    double exec_sum = 0;
    for (const double e : k.exec)
      exec_sum += e;
    row.mean_exec_ns = exec_sum / n;
    row.p50_exec_ns = percentile(k.exec, 50);
    row.p99_exec_ns = percentile(k.exec, 99);
    row.mean_ready_ns = k.ready_sum / n;
    row.mean_head_ns = k.head_sum / n;
    row.mean_tail_ns = k.tail_sum / n;
    stats.kernels.push_back(std::move(row));
  }

  const int core_counts[2] = {trace.clusters, 2 * trace.clusters};
  for (int t = 0; t < 2; ++t) {
    CoreTypeStats c;
    c.core_type = t == 0 ? CoreType::aic : CoreType::aiv;
    c.cores = core_counts[t];
    c.busy_ns = busy[t];
    const double capacity = static_cast<double>(c.cores) * static_cast<double>(stats.makespan_ns);
    c.utilisation = capacity > 0 ? busy[t] / capacity : 0;
    stats.core_types.push_back(c);
  }

  // Producers precede their consumers in submission order, so one pass in sequence order sees
  // every producer's finish before its consumers.
  std::vector<double> finish(trace.tasks.size(), 0.0);
  std::vector<std::int64_t> via(trace.tasks.size(), -1);
  std::int64_t last = -1;
  for (std::size_t i = 0; i < trace.tasks.size(); ++i) {
    const TaskEvent& task = trace.tasks[i];
    if (task.inline_task) ++stats.inline_tasks;
    double start = 0;
    for (const std::uint64_t p : task.producers) {
      ++stats.edges;
      if (p >= i) continue;  // not a valid producer: ignore rather than read ahead
      if (via[i] < 0 || finish[p] > start) {
        via[i] = static_cast<std::int64_t>(p);
        start = finish[p];
      }
    }
    finish[i] = start + longest_subtask[i];
    if (last < 0 || finish[i] > finish[static_cast<std::size_t>(last)]) {
      last = static_cast<std::int64_t>(i);
    }
  }
  if (last >= 0) {
    stats.critical_path_ns = static_cast<std::uint64_t>(finish[static_cast<std::size_t>(last)]);
    for (std::int64_t t = last; t >= 0; t = via[static_cast<std::size_t>(t)]) {
      stats.critical_path.push_back(static_cast<std::uint64_t>(t));
    }
    std::reverse(stats.critical_path.begin(), stats.critical_path.end());
  }
  return stats;
}

void print_trace_stats(std::ostream& out, const TraceStats& stats) {
  out << format_line(
      "  recorded: %llu tasks (%llu hidden alloc), %llu subtasks, %llu dependency edges\n",
      static_cast<unsigned long long>(stats.tasks),
      static_cast<unsigned long long>(stats.inline_tasks),
      static_cast<unsigned long long>(stats.subtasks),
      static_cast<unsigned long long>(stats.edges));
  out << format_line("  %-20s %-4s %7s %9s %9s %9s %10s %8s %8s\n", "kernel", "core", "count",
                     "mean_us", "p50_us", "p99_us", "ready_us", "head_us", "tail_us");
  for (const KernelStats& k : stats.kernels) {
    out << format_line("  %-20s %-4s %7llu %9.2f %9.2f %9.2f %10.2f %8.2f %8.2f\n", k.name.c_str(),
                       k.core_type == CoreType::aic ? "AIC" : "AIV",
                       static_cast<unsigned long long>(k.count), k.mean_exec_ns / 1e3,
                       k.p50_exec_ns / 1e3, k.p99_exec_ns / 1e3, k.mean_ready_ns / 1e3,
                       k.mean_head_ns / 1e3, k.mean_tail_ns / 1e3);
  }
  out << "  core utilisation:";
  for (const CoreTypeStats& c : stats.core_types) {
    out << format_line(" %s %.1f%% of %d cores;", c.core_type == CoreType::aic ? "AIC" : "AIV",
                       100.0 * c.utilisation, c.cores);
  }
  out << "\n";
  out << "  started from a pending slot:";
  const char* const shape_names[3] = {"AIC", "AIV", "MIX"};
  for (int shape = 0; shape < 3; ++shape) {
    out << format_line(" %s %llu of %llu;", shape_names[shape],
                       static_cast<unsigned long long>(stats.staged_subtasks[shape]),
                       static_cast<unsigned long long>(stats.shape_subtasks[shape]));
  }
  out << "\n";
  const double makespan = static_cast<double>(stats.makespan_ns);
  out << format_line(
      "  critical path: %.2f us over %zu tasks; makespan %.2f us (critical path %.1f%% of it)\n",
      static_cast<double>(stats.critical_path_ns) / 1e3, stats.critical_path.size(), makespan / 1e3,
      makespan > 0 ? 100.0 * static_cast<double>(stats.critical_path_ns) / makespan : 0.0);
}

}  // namespace tmr::profile
