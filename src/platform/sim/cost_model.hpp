// How the sim platform turns work into virtual time: orchestrator operations, scheduler steps
// (from the step's counters) and kernel durations (fixed, or a start cost plus the slower of
// compute at the core's peak and data movement: a fixed cost per tile plus bytes over the
// bandwidth left to this core by the running ones).
// The numbers live in tmr::SimCostModel (include/tmr/sim.hpp, documented in docs/sim.md).
#pragma once

#include <cstdint>
#include <vector>

#include "core/scheduler/scheduler.hpp"
#include "platform/platform.hpp"
#include "tmr/kernel.hpp"
#include "tmr/sim.hpp"

namespace tmr::detail::sim {

// Nanoseconds the orchestrator spends on `work` (count as in Platform::orchestrator_work).
std::uint64_t orchestrator_cost_ns(const SimCostModel& costs, OrchestratorWork work,
                                   std::uint32_t count);

// Nanoseconds of one scheduler step that did the work `after - before` counts.
std::uint64_t step_cost_ns(const SimCostModel& costs, const Scheduler::StepCounters& before,
                           const Scheduler::StepCounters& after);

// What a kernel costs before the shape of one share is known: resolved once per run.
struct KernelTiming {
  double fixed_ns = 0;  // > 0: every share takes this long
  double (*flops)(const KernelArgs&) = nullptr;
  CoreType core_type = CoreType::aiv;
  double (*bytes)(const KernelArgs&) = nullptr;  // null: share_bytes
  double (*tiles)(const KernelArgs&) = nullptr;  // null: share_tiles
};

// Per kernel id: the cost model's fixed duration by name, else the kernel's own hint.
std::vector<KernelTiming> resolve_kernel_timings(const SimCostModel& costs,
                                                 const KernelRegistry& kernels);

// Bytes one share moves: its tensor arguments' bytes divided among the task's blocks.
double share_bytes(const KernelArgs& args);

// Tiles one share moves by default: one per tensor argument.
double share_tiles(const KernelArgs& args);

// Duration of one share on a core of `core_type` while `running_cores` cores (this one included)
// share the memory bandwidth.
std::uint64_t kernel_duration_ns(const SimCostModel& costs, const KernelTiming& timing,
                                 CoreType core_type, const KernelArgs& args, int running_cores);

}  // namespace tmr::detail::sim
