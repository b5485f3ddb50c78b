// The placement rules and pass orders of dispatch_policy.hpp.
#include "core/dispatch/dispatch_policy.hpp"

namespace tmr::detail {

DispatchPolicy::DispatchPolicy(const DualSlotPolicy& dual_slot) {
  for (int parity = 0; parity < 2; ++parity) {
    const TaskShape first = parity == 0 ? TaskShape::aic : TaskShape::aiv;
    const TaskShape second = parity == 0 ? TaskShape::aiv : TaskShape::aic;
    int n = 0;
    orders_[parity][n++] = {TaskShape::mix, SlotTarget::idle};
    orders_[parity][n++] = {first, SlotTarget::idle};
    orders_[parity][n++] = {second, SlotTarget::idle};
    if (dual_slot.aic) orders_[parity][n++] = {TaskShape::aic, SlotTarget::pending};
    if (dual_slot.aiv) orders_[parity][n++] = {TaskShape::aiv, SlotTarget::pending};
    order_length_ = n;
  }
}

std::span<const PlacementPass> DispatchPolicy::staging_order(int thread) const {
  return {orders_[thread % 2], static_cast<std::size_t>(order_length_)};
}

bool DispatchPolicy::may_prestage(const TaskSlot& task) const {
  // MIX parts are never staged (issue 12 adds it with a deadlock-freedom rule); the pass list
  // holds no pending pass for MIX, and this keeps a MIX task out of one if that ever changes.
  return !task.sync_start && task.shape != TaskShape::mix;
}

namespace {

bool usable(const CoreSlot& core, SlotTarget target) {
  return target == SlotTarget::idle ? core.idle() : core.stageable();
}

}  // namespace

int DispatchPolicy::find_unit(const PlacementView& view, TaskShape shape, std::uint8_t active_mask,
                              SlotTarget target) {
  auto ok = [&](int core) { return usable(view.cores[static_cast<std::size_t>(core)], target); };
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
      case TaskShape::mix:
        if ((active_mask & 1) && !ok(cl.aic)) break;
        if ((active_mask & 2) && !ok(cl.aiv[0])) break;
        if ((active_mask & 4) && !ok(cl.aiv[1])) break;
        return c;
    }
  }
  return -1;
}

int DispatchPolicy::count_idle_units(const PlacementView& view, TaskShape shape,
                                     std::uint8_t active_mask) {
  auto idle = [&](int core) { return view.cores[static_cast<std::size_t>(core)].idle(); };
  int count = 0;
  for (const int c : view.owned_clusters) {
    const ClusterCores& cl = view.clusters[static_cast<std::size_t>(c)];
    switch (shape) {
      case TaskShape::aic:
        count += idle(cl.aic);
        break;
      case TaskShape::aiv:
        count += idle(cl.aiv[0]) + idle(cl.aiv[1]);
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
