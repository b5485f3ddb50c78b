#include "platform/sim/cost_model.hpp"

#include <algorithm>
#include <cmath>

namespace tmr::detail::sim {

namespace {

std::uint64_t to_ns(double ns) {
  return ns <= 0 ? 0 : static_cast<std::uint64_t>(std::llround(ns));
}

}  // namespace

std::uint64_t orchestrator_cost_ns(const SimCostModel& costs, OrchestratorWork work,
                                   std::uint32_t count) {
  const double n = count;
  switch (work) {
    case OrchestratorWork::submit:
      return to_ns(costs.submit_ns + n * costs.submit_per_tensor_ns);
    case OrchestratorWork::submit_analysed:
      return to_ns(costs.analysed_submit_ratio *
                   (costs.submit_ns + n * costs.submit_per_tensor_ns));
    case OrchestratorWork::submit_wide:
      return to_ns(costs.wide_submit_ratio * (costs.submit_ns + n * costs.submit_per_tensor_ns));
    case OrchestratorWork::submit_pattern:
      return to_ns(costs.pattern_submit_ratio * (costs.submit_ns + n * costs.submit_per_tensor_ns));
    case OrchestratorWork::loop_setup:
      return to_ns(costs.loop_setup_ratio * (costs.submit_ns + n * costs.submit_per_tensor_ns));
    case OrchestratorWork::loop_setup_base:
      return to_ns((costs.loop_setup_fixed + costs.loop_setup_square * n * n) *
                   (costs.submit_ns + 4 * costs.submit_per_tensor_ns));
    case OrchestratorWork::loop_rebind:
      return to_ns(costs.kept_setup_ratio * costs.loop_setup_ratio *
                   (costs.submit_ns + n * costs.submit_per_tensor_ns));
    case OrchestratorWork::loop_rebind_base:
      return to_ns(costs.kept_setup_base_ratio *
                   (costs.loop_setup_fixed + costs.loop_setup_square * n * n) *
                   (costs.submit_ns + 4 * costs.submit_per_tensor_ns));
    case OrchestratorWork::alloc:
      return to_ns(costs.alloc_ns + n * costs.alloc_per_output_ns);
    case OrchestratorWork::wire:
      return to_ns(n * costs.wire_edge_ns);
    case OrchestratorWork::scope_end:
      return to_ns(costs.scope_end_ns + n * costs.scope_end_per_task_ns);
    case OrchestratorWork::element_access:
      return to_ns(n * costs.element_access_ns);
    case OrchestratorWork::element_read_quiet:
      return to_ns(n * costs.quiet_read_ratio * costs.element_access_ns);
  }
  return 0;
}

std::uint64_t step_cost_ns(const SimCostModel& costs, const Scheduler::StepCounters& before,
                           const Scheduler::StepCounters& after) {
  auto delta = [&](std::uint64_t Scheduler::StepCounters::*field) {
    return static_cast<double>(after.*field - before.*field);
  };
  using C = Scheduler::StepCounters;
  return to_ns(costs.step_base_ns + delta(&C::polls) * costs.poll_ns +
               delta(&C::dispatches) * (costs.dispatch_write_ns + costs.doorbell_ns) +
               delta(&C::completions) * costs.completion_ns +
               delta(&C::tasks_completed) * costs.retire_ns + delta(&C::edges) * costs.edge_ns +
               delta(&C::pops) * costs.pop_ns + delta(&C::pushes) * costs.push_ns);
}

std::vector<KernelTiming> resolve_kernel_timings(const SimCostModel& costs,
                                                 const KernelRegistry& kernels) {
  std::vector<KernelTiming> timings;
  timings.reserve(kernels.size());
  for (const KernelInfo& info : kernels.all()) {
    KernelTiming timing{info.cost.fixed_ns, info.cost.flops, info.core_type, info.cost.bytes,
                        info.cost.tiles};
    if (const auto named = costs.kernel_ns.find(info.name); named != costs.kernel_ns.end()) {
      timing.fixed_ns = named->second;
    }
    timings.push_back(timing);
  }
  return timings;
}

double share_bytes(const KernelArgs& args) {
  double bytes = 0;
  for (int i = 0; i < args.tensor_count(); ++i) {
    const Tensor& t = args.tensor(i);
    bytes += static_cast<double>(t.elements() * t.element_size());
  }
  return bytes / std::max<std::uint32_t>(1, args.block_count());
}

double share_tiles(const KernelArgs& args) {
  return static_cast<double>(args.tensor_count());
}

std::uint64_t kernel_duration_ns(const SimCostModel& costs, const KernelTiming& timing,
                                 CoreType core_type, const KernelArgs& args, int running_cores) {
  double ns = timing.fixed_ns;
  if (ns <= 0) {
    const double flops = timing.flops != nullptr ? timing.flops(args) : 0.0;
    const double gflops = core_type == CoreType::aic ? costs.aic_gflops : costs.aiv_gflops;
    const double compute_ns = gflops > 0 ? flops / gflops : 0.0;  // GFLOP/s = flop per ns
    const double bandwidth =                                      // GB/s = bytes per ns
        std::min(costs.core_max_gbps, costs.memory_gbps / std::max(1, running_cores));
    const double bytes = timing.bytes != nullptr ? timing.bytes(args) : share_bytes(args);
    const double tiles = timing.tiles != nullptr ? timing.tiles(args) : share_tiles(args);
    // DMA and compute overlap (double buffering): the slower of the two sets the pace.
    const double memory_ns = tiles * costs.tile_ns + (bandwidth > 0 ? bytes / bandwidth : 0.0);
    ns = std::max({compute_ns, memory_ns, costs.min_kernel_ns});
  }
  return to_ns(ns + costs.kernel_start_ns);
}

}  // namespace tmr::detail::sim
