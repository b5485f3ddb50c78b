// Chrome / Perfetto trace-event JSON of one recorded run (open in ui.perfetto.dev or
// chrome://tracing).
#pragma once

#include <iosfwd>

#include "tmr/kernel.hpp"
#include "tmr/trace.hpp"

namespace tmr::profile {

// Lane ids, stable so tools and tests can find a lane. Process 0 ("runtime") holds the
// orchestrator (thread 0) and the scheduler threads (thread 1 + t); process 1 + c is cluster c
// with threads 0 (AIC), 1 (AIV0) and 2 (AIV1).
inline constexpr int kRuntimeProcess = 0;
inline constexpr int kOrchestratorThread = 0;
constexpr int scheduler_tid(int scheduler_thread) {
  return 1 + scheduler_thread;
}
constexpr int cluster_pid(int cluster) {
  return 1 + cluster;
}

// Writes {"traceEvents": [...]}:
//  * one complete ("X") event per subtask on its core's lane, named by subtask_label(), with the
//    dispatch/retire times, ready time and producers in "args";
//  * on the orchestrator lane, one "X" per task from the previous submit to its own (how long
//    the orchestration took to produce it);
//  * on each scheduler lane, "dispatch" and "retire" instants per subtask it handled;
//  * one flow pair ("s" then "f", same id) per dependency edge, from the producer's last-ending
//    subtask to the consumer's first-starting one (hidden alloc tasks: their orchestrator slice).
// Timestamps are microseconds since the run start, with nanosecond precision.
void write_chrome_trace(std::ostream& out, const Trace& trace, const KernelRegistry& kernels);

}  // namespace tmr::profile
