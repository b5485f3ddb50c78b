// Dependence discovery (dependence.hpp).
#include "core/dependence/dependence.hpp"

#include <string>

namespace tmr::detail {
namespace {

std::string task_name(TaskId id) {
  return "r" + std::to_string(id.ring()) + ":" + std::to_string(id.local());
}

}  // namespace

Dependence::Dependence(RetirementView rings, std::uint32_t window)
    : rings_(rings), window_mask_(window - 1), map_(rings) {
  for (int r = 0; r < rings_.ring_count(); ++r)
    states_[r].assign(window, SlotState{});
}

void Dependence::reset() {
  map_.reset();
  for (int r = 0; r < rings_.ring_count(); ++r) {
    states_[r].assign(states_[r].size(), SlotState{});
    cleaned_[r] = 0;
  }
  producers_.clear();
}

Status Dependence::add_creator(const Tensor& tensor, int arg_index) {
  const TaskId owner = tensor.producer();
  if (!owner.valid()) return Status{};
  if (owner.ring() >= static_cast<std::uint32_t>(rings_.ring_count())) {
    return Status{ErrorCode::invalid_args,
                  "tensor argument " + std::to_string(arg_index) +
                      " names an impossible producer task; build tensors with Tensor::wrap or "
                      "take them from submit outputs"};
  }
  if (!creator_retained(owner) || rings_.is_retired(owner)) {
    return Status{ErrorCode::invalid_args,
                  "tensor argument " + std::to_string(arg_index) + " was created by task " +
                      task_name(owner) +
                      " whose scope has ended, so its buffer may already be reused; use a tensor "
                      "only inside the scope that created it (allocate it in an enclosing scope, "
                      "or copy it into an external tensor with out_existing)"};
  }
  add_producer(state(owner).task, owner);
  return Status{};
}

Status Dependence::collect(const Args& args, AccessRegion* regions) {
  for (int i = 0; i < args.tensor_count(); ++i) {
    const ArgTag tag = args.tag(i);
    if (tag == ArgTag::out) continue;
    const Tensor& t = args.tensor(i);
    Status status = add_creator(t, i);
    if (!status.ok()) return status;
    if (tag == ArgTag::no_dep) continue;
    regions[i] = make_region(t);
    add_accessors(regions[i], tag == ArgTag::in ? AccessKind::read : AccessKind::write);
  }
  return Status{};
}

Status Dependence::collect_creators(const Args& args, AccessRegion* regions) {
  for (int i = 0; i < args.tensor_count(); ++i) {
    const ArgTag tag = args.tag(i);
    if (tag == ArgTag::out) continue;
    const Tensor& t = args.tensor(i);
    Status status = add_creator(t, i);
    if (!status.ok()) return status;
    if (tag != ArgTag::no_dep) regions[i] = make_region(t);
  }
  return Status{};
}

void Dependence::record(TaskSlot& task, const Args& args, const AccessRegion* regions) {
  MapEntry*& entries = state(task.id).entries;
  for (int i = 0; i < args.tensor_count(); ++i) {
    const ArgTag tag = args.tag(i);
    if (tag == ArgTag::in) map_.insert(regions[i], AccessKind::read, &task, task.id, entries);
    if (tag == ArgTag::inout || tag == ArgTag::out_existing) {
      map_.insert(regions[i], AccessKind::write, &task, task.id, entries);
    }
  }
}

void Dependence::record_except(TaskSlot& task, const Args& args, const AccessRegion* regions,
                               std::uint32_t skip) {
  MapEntry*& entries = state(task.id).entries;
  for (int i = 0; i < args.tensor_count(); ++i) {
    if ((skip >> i) & 1u) continue;
    const ArgTag tag = args.tag(i);
    if (tag == ArgTag::in) map_.insert(regions[i], AccessKind::read, &task, task.id, entries);
    if (tag == ArgTag::inout || tag == ArgTag::out_existing) {
      map_.insert(regions[i], AccessKind::write, &task, task.id, entries);
    }
  }
}

void Dependence::add_family_accessors(const AccessRegion& region, AccessKind kind) {
  families_->lookup(
      region, kind, [](void* self, TaskId id) { static_cast<Dependence*>(self)->add_producer(id); },
      this);
}

void Dependence::forget_retired(int ring, std::uint32_t retired) {
  for (std::uint32_t local = cleaned_[ring]; local != retired; ++local)
    map_.release_task(states_[ring][local & window_mask_].entries);
  cleaned_[ring] = retired;
}

}  // namespace tmr::detail
