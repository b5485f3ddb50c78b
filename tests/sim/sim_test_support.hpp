// Helpers shared by the sim tests: configurations and trace comparison.
#pragma once

#include <sstream>
#include <string>

#include "tmr/config.hpp"
#include "tmr/trace.hpp"

namespace tmr::testing {

// The a2a3 chip model (24 clusters, 3 scheduler threads) on the sim platform.
inline RuntimeConfig sim_config(bool record_events = true) {
  RuntimeConfig config;
  config.platform = PlatformKind::sim;
  config.record_events = record_events;
  config.stall_timeout_s = 30;
  return config;
}

// "" when the two traces hold identical events; otherwise the first difference.
inline std::string trace_difference(const Trace& a, const Trace& b) {
  std::ostringstream why;
  if (a.tasks.size() != b.tasks.size()) {
    why << "task counts " << a.tasks.size() << " vs " << b.tasks.size();
    return why.str();
  }
  for (std::size_t i = 0; i < a.tasks.size(); ++i) {
    const TaskEvent& x = a.tasks[i];
    const TaskEvent& y = b.tasks[i];
    const bool same = x.id == y.id && x.sequence == y.sequence && x.kernels[0] == y.kernels[0] &&
                      x.kernels[1] == y.kernels[1] && x.kernels[2] == y.kernels[2] &&
                      x.block_count == y.block_count && x.inline_task == y.inline_task &&
                      x.submit_ns == y.submit_ns && x.ready_ns == y.ready_ns &&
                      x.complete_ns == y.complete_ns && x.producers == y.producers;
    if (!same) {
      why << "task " << i << " differs (submit " << x.submit_ns << "/" << y.submit_ns << ", ready "
          << x.ready_ns << "/" << y.ready_ns << ", complete " << x.complete_ns << "/"
          << y.complete_ns << ")";
      return why.str();
    }
  }
  if (a.subtasks.size() != b.subtasks.size()) {
    why << "subtask counts " << a.subtasks.size() << " vs " << b.subtasks.size();
    return why.str();
  }
  for (std::size_t i = 0; i < a.subtasks.size(); ++i) {
    const SubtaskEvent& x = a.subtasks[i];
    const SubtaskEvent& y = b.subtasks[i];
    const bool same = x.task_sequence == y.task_sequence && x.block == y.block &&
                      x.slot == y.slot && x.core == y.core && x.cluster == y.cluster &&
                      x.core_type == y.core_type && x.scheduler_thread == y.scheduler_thread &&
                      x.dispatch_ns == y.dispatch_ns && x.start_ns == y.start_ns &&
                      x.end_ns == y.end_ns && x.retire_ns == y.retire_ns;
    if (!same) {
      why << "subtask " << i << " differs (task " << x.task_sequence << "/" << y.task_sequence
          << ", core " << x.core << "/" << y.core << ", start " << x.start_ns << "/" << y.start_ns
          << ", end " << x.end_ns << "/" << y.end_ns << ")";
      return why.str();
    }
  }
  return "";
}

}  // namespace tmr::testing
