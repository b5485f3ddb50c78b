// The placement rules and pass orders of dispatch_policy.hpp.
#include "core/dispatch/dispatch_policy.hpp"

#include <algorithm>

namespace tmr::detail {

DispatchPolicy::DispatchPolicy(const DualSlotPolicy& dual_slot) {
  for (int parity = 0; parity < 2; ++parity) {
    const TaskShape first = parity == 0 ? TaskShape::aic : TaskShape::aiv;
    const TaskShape second = parity == 0 ? TaskShape::aiv : TaskShape::aic;
    int n = 0;
    // sync_start tasks are placed by the idle passes (cohorts) before anything is staged; MIX
    // comes first, staged right after its idle pass so single-core tasks cannot take the idle
    // cores a partly busy cluster offers it; then AIC/AIV, idle before pending.
    orders_[parity][n++] = {TaskShape::mix, SlotTarget::idle};
    if (dual_slot.mix == true) orders_[parity][n++] = {TaskShape::mix, SlotTarget::pending};
    orders_[parity][n++] = {first, SlotTarget::idle};
    orders_[parity][n++] = {second, SlotTarget::idle};
    if (dual_slot.aic) orders_[parity][n++] = {TaskShape::aic, SlotTarget::pending};
    if (dual_slot.aiv) orders_[parity][n++] = {TaskShape::aiv, SlotTarget::pending};
    order_length_ = n;
  }
  stage_mix_ = dual_slot.mix == true;
  take_back_mix_ = stage_mix_ && dual_slot.mix_take_back;
}

std::span<const PlacementPass> DispatchPolicy::staging_order(int thread) const {
  return {orders_[thread % 2], static_cast<std::size_t>(order_length_)};
}

namespace {

// For a single-core (AIC or AIV) block: a core held for a waiting MIX task takes none.
bool usable(const CoreSlot& core, SlotTarget target) {
  return target == SlotTarget::idle ? core.idle_for_single() : core.stageable_for_single();
}

// True when the (task, block) running on `core` has a part still waiting in a pending slot of
// its cluster, i.e. the MIX task has not fully started. Staging a MIX part behind it could close
// a cycle (docs/design.md, "MIX pre-staging"), so the deadlock rule forbids it.
bool runs_unstarted_mix(const PlacementView& view, const ClusterCores& cl, int core) {
  const Subtask& running = view.cores[static_cast<std::size_t>(core)].running;
  if (running.task == nullptr || running.task->shape != TaskShape::mix) return false;
  for (const int other : {cl.aic, cl.aiv[0], cl.aiv[1]}) {
    const Subtask& pending = view.cores[static_cast<std::size_t>(other)].pending;
    if (pending.task == running.task && pending.block == running.block) return true;
  }
  return false;
}

// Busy with a dispatch the core has not latched yet, nothing pending: stageable after its ACK.
bool awaits_ack(const CoreSlot& core) {
  return core.running.task != nullptr && core.awaiting_ack && core.pending.task == nullptr &&
         !core.cohort_reserved;
}

// Whether one core of a MIX block may take its part: idle (running slot), or, when staging,
// stageable behind something that is sure to end by itself.
bool mix_core_ok(const PlacementView& view, const ClusterCores& cl, int core, SlotTarget target) {
  const CoreSlot& slot = view.cores[static_cast<std::size_t>(core)];
  if (slot.idle()) return true;
  return target == SlotTarget::pending && slot.stageable() && !runs_unstarted_mix(view, cl, core);
}

}  // namespace

int DispatchPolicy::find_unit(const PlacementView& view, TaskShape shape, std::uint8_t active_mask,
                              SlotTarget target) {
  auto ok = [&](int core) { return usable(view.cores[static_cast<std::size_t>(core)], target); };
  int best = -1;  // a staged MIX block: the fitting cluster expected to free first
  std::uint64_t best_frees = 0;
  std::uint64_t soonest_waiting = ~std::uint64_t{0};
  for (const int c : view.owned_clusters) {
    const ClusterCores& cl = view.clusters[static_cast<std::size_t>(c)];
    switch (shape) {
      case TaskShape::aic:
        if (ok(cl.aic)) return c;
        break;
      case TaskShape::aiv:
        for (const int core : cl.aiv) {
          if (ok(core)) return core;
        }
        break;
      case TaskShape::mix: {
        const bool estimates = target == SlotTarget::pending && !view.expected_end_ns.empty();
        bool fits = true;
        bool soon = estimates;    // fits once its cores ACK what they were just given
        std::uint64_t frees = 0;  // staged: the block starts when the last busy core it uses frees
        for (int s = 0; s < 3; ++s) {
          if (!(active_mask & (1 << s))) continue;
          const int core = s == 0 ? cl.aic : cl.aiv[s - 1];
          const CoreSlot& slot = view.cores[static_cast<std::size_t>(core)];
          if (!mix_core_ok(view, cl, core, target)) {
            fits = false;
            soon &= awaits_ack(slot) && !runs_unstarted_mix(view, cl, core);
          }
          if (estimates && !slot.idle())
            frees = std::max(frees, view.expected_end_ns[static_cast<std::size_t>(core)]);
        }
        if (fits && !estimates) return c;
        if (fits && (best < 0 || frees < best_frees)) {
          best = c;
          best_frees = frees;
        } else if (!fits && soon && frees < soonest_waiting) {
          soonest_waiting = frees;
        }
        break;
      }
    }
  }
  // A cluster expected to free sooner only waits for its cores' ACK (a moment): wait for it
  // rather than commit the block to a cluster that frees later. The step after the ACK places it.
  if (best >= 0 && soonest_waiting < best_frees) return -1;
  return best;
}

int DispatchPolicy::reserve_unit(const PlacementView& view, std::uint8_t active_mask,
                                 bool staging) {
  const SlotTarget target = staging ? SlotTarget::pending : SlotTarget::idle;
  int best = -1;
  int best_usable = -1;
  std::uint64_t best_frees = 0;
  for (const int c : view.owned_clusters) {
    const ClusterCores& cl = view.clusters[static_cast<std::size_t>(c)];
    int usable_cores = 0;
    bool held = false;        // a core held for a cohort: not this one
    std::uint64_t frees = 0;  // the latest expected end of the busy cores it uses
    for (int s = 0; s < 3; ++s) {
      if (!(active_mask & (1 << s))) continue;
      const int core = s == 0 ? cl.aic : cl.aiv[s - 1];
      const CoreSlot& slot = view.cores[static_cast<std::size_t>(core)];
      held |= slot.cohort_reserved;
      usable_cores += mix_core_ok(view, cl, core, target);
      if (!view.expected_end_ns.empty() && !slot.idle())
        frees = std::max(frees, view.expected_end_ns[static_cast<std::size_t>(core)]);
    }
    if (held) continue;
    if (usable_cores > best_usable || (usable_cores == best_usable && frees < best_frees)) {
      best = c;
      best_usable = usable_cores;
      best_frees = frees;
    }
  }
  return best;
}

bool DispatchPolicy::may_have_mix_room(const PlacementView& view) {
  for (const int c : view.owned_clusters) {
    const ClusterCores& cl = view.clusters[static_cast<std::size_t>(c)];
    const int usable_cores = mix_core_ok(view, cl, cl.aic, SlotTarget::pending) +
                             mix_core_ok(view, cl, cl.aiv[0], SlotTarget::pending) +
                             mix_core_ok(view, cl, cl.aiv[1], SlotTarget::pending);
    if (usable_cores >= 2) return true;
  }
  return false;
}

int DispatchPolicy::count_idle_units(const PlacementView& view, TaskShape shape,
                                     std::uint8_t active_mask) {
  auto idle = [&](int core) { return view.cores[static_cast<std::size_t>(core)].idle(); };
  auto single = [&](int core) {
    return view.cores[static_cast<std::size_t>(core)].idle_for_single();
  };
  int count = 0;
  for (const int c : view.owned_clusters) {
    const ClusterCores& cl = view.clusters[static_cast<std::size_t>(c)];
    switch (shape) {
      case TaskShape::aic:
        count += single(cl.aic);
        break;
      case TaskShape::aiv:
        count += single(cl.aiv[0]) + single(cl.aiv[1]);
        break;
      case TaskShape::mix:
        count += (!(active_mask & 1) || idle(cl.aic)) && (!(active_mask & 2) || idle(cl.aiv[0])) &&
                 (!(active_mask & 4) || idle(cl.aiv[1]));
        break;
    }
  }
  return count;
}

}  // namespace tmr::detail
