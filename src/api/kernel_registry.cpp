// The kernel registry: names to dense ids, so tasks carry a small integer instead of a name.
#include <string>
#include <utility>

#include "tmr/error.hpp"
#include "tmr/kernel.hpp"

namespace tmr {

std::string_view core_type_name(CoreType type) {
  switch (type) {
    case CoreType::aic:
      return "aic";
    case CoreType::aiv:
      return "aiv";
  }
  return "?";
}

ArgTag KernelArgs::tag(int i) const {
  if (i < 0 || i >= tensor_count_) {
    throw Error(ErrorCode::invalid_args, "KernelArgs::tag(" + std::to_string(i) +
                                             "): the task has " + std::to_string(tensor_count_) +
                                             " tensors; pass an index below tensor_count()");
  }
  if (tags_ == nullptr) {
    throw Error(ErrorCode::invalid_args,
                "KernelArgs::tag: these arguments were built without tags; pass the tag array "
                "as the last KernelArgs constructor argument");
  }
  return tags_[i];
}

KernelId KernelRegistry::add(std::string name, CoreType core_type, KernelFn fn) {
  return add_owned(std::move(name), core_type, fn, nullptr);
}

KernelId KernelRegistry::add_owned(std::string name, CoreType core_type, KernelFn fn,
                                   std::shared_ptr<void> owner) {
  if (name.empty()) {
    throw Error(ErrorCode::invalid_args,
                "kernel name is empty; give every kernel a unique, non-empty name");
  }
  if (fn == nullptr) {
    throw Error(ErrorCode::invalid_args, "kernel '" + name +
                                             "' has a null function; pass a function or callable "
                                             "void(const tmr::KernelArgs&)");
  }
  if (const auto found = by_name_.find(name); found != by_name_.end()) {
    const KernelInfo& existing = kernels_[static_cast<std::size_t>(found->second)];
    throw Error(ErrorCode::invalid_args,
                "kernel '" + name + "' is already registered (id " + std::to_string(existing.id) +
                    ", " + std::string(core_type_name(existing.core_type)) +
                    "); give each kernel a unique name or look it up with id()");
  }
  const auto id = static_cast<KernelId>(kernels_.size());
  kernels_.push_back(KernelInfo{id, name, core_type, fn, KernelCost{}, std::move(owner)});
  try {
    by_name_.emplace(std::move(name), id);
  } catch (...) {
    kernels_.pop_back();  // keep the two indexes consistent if the map cannot grow
    throw;
  }
  return id;
}

void KernelRegistry::set_cost(KernelId id, KernelCost cost) {
  if (find(id) == nullptr) {
    throw Error(ErrorCode::invalid_args, "set_cost: kernel id " + std::to_string(id) +
                                             " is not registered; pass an id returned by add()");
  }
  if (!(cost.fixed_ns >= 0)) {
    throw Error(ErrorCode::invalid_args, "set_cost: kernel '" + kernels_[id].name +
                                             "' has a negative or NaN fixed_ns; use 0 (roofline) "
                                             "or a duration in nanoseconds");
  }
  kernels_[static_cast<std::size_t>(id)].cost = cost;
}

KernelId KernelRegistry::id(std::string_view name) const {
  if (const auto found = by_name_.find(std::string(name)); found != by_name_.end()) {
    return found->second;
  }
  // Name every known kernel (bounded) so a typo is obvious from the message alone.
  constexpr std::size_t kListed = 32;
  std::string known;
  for (std::size_t i = 0; i < kernels_.size() && i < kListed; ++i) {
    known += (i > 0 ? ", " : "") + kernels_[i].name;
  }
  if (kernels_.size() > kListed) {
    known += ", ... (" + std::to_string(kernels_.size() - kListed) + " more)";
  }
  throw Error(
      ErrorCode::unknown_kernel,
      "no kernel named '" + std::string(name) + "' is registered" +
          (kernels_.empty() ? std::string(" (the registry is empty)") : " (known: " + known + ")") +
          "; register it with KernelRegistry::add or fix the name");
}

}  // namespace tmr
