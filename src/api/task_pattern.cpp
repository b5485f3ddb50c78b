#include "tmr/task_pattern.hpp"

#include <limits>
#include <string>
#include <utility>

#include "tmr/error.hpp"
#include "tmr/orchestrator.hpp"

namespace tmr {

TaskPattern::TaskPattern(const MixKernels& kernels)
    : kernels_{kernels.aic, kernels.aiv0, kernels.aiv1} {}

MixKernels TaskPattern::kernels() const {
  return {kernels_[0], kernels_[1], kernels_[2]};
}

void TaskPattern::set_error(std::string message) {
  if (error_.empty()) error_ = "TaskPattern: " + std::move(message);
}

TaskPattern& TaskPattern::add(ArgTag tag, const Tensor& t, const Shape* shape, const Shape& offsets,
                              Steps step) {
  if (has_error()) return *this;  // the first mistake is kept, as Args keeps it
  const std::string what = "tensor argument " + std::to_string(accesses_.size()) + " (" +
                           std::string(arg_tag_name(tag)) + ")";
  if (accesses_.size() >= static_cast<std::size_t>(kMaxTensorArgs)) {
    set_error(what + " is one more than the " + std::to_string(kMaxTensorArgs) + " a task takes");
    return *this;
  }
  if (!scalars_.empty()) {
    set_error(what + " follows a scalar; add every tensor before the scalars");
    return *this;
  }
  if (!t.valid()) {
    set_error(what + " is a null tensor");
    return *this;
  }
  Access access;
  access.tag = tag;
  access.tensor = t;
  if (shape != nullptr) {
    if (step.size() != static_cast<std::size_t>(offsets.size())) {
      set_error(what + " has " + std::to_string(offsets.size()) + " offsets but " +
                std::to_string(step.size()) + " steps; give one step per offset");
      return *this;
    }
    if (shape->size() != offsets.size()) {
      set_error(what + " has a shape of " + std::to_string(shape->size()) + " dimensions but " +
                std::to_string(offsets.size()) + " offsets");
      return *this;
    }
    access.view = true;
    access.ndims = shape->size();
    int d = 0;
    for (const std::int64_t s : step) {
      access.shape[d] = (*shape)[d];
      access.offset[d] = offsets[d];
      access.step[d] = s;
      ++d;
    }
  }
  accesses_.push_back(access);
  return *this;
}

TaskPattern& TaskPattern::scalar_bits(std::uint64_t base_bits, std::uint64_t step_bits) {
  if (has_error()) return *this;
  if (scalars_.size() >= static_cast<std::size_t>(kMaxScalarArgs)) {
    set_error("scalar " + std::to_string(scalars_.size()) + " is one more than the " +
              std::to_string(kMaxScalarArgs) + " a task takes");
    return *this;
  }
  scalars_.push_back({base_bits, step_bits});
  return *this;
}

Args TaskPattern::args(std::int64_t i) const {
  if (has_error()) throw Error(ErrorCode::invalid_args, error_);
  Args args;
  for (std::size_t k = 0; k < accesses_.size(); ++k) {
    const Access& a = accesses_[k];
    if (!a.view) {
      args.add(a.tag, a.tensor);
      continue;
    }
    std::uint32_t offsets[kMaxDims];
    for (int d = 0; d < a.ndims; ++d) {
      // Exact in 64 bits for any index the loop runs (|i| < 2^63 / |step| is what a view of
      // at most 2^32 per dimension allows); outside [0, 2^32) the offset has no view.
      const __int128 at = static_cast<__int128>(a.offset[d]) + static_cast<__int128>(a.step[d]) * i;
      if (at < 0 || at > std::numeric_limits<std::uint32_t>::max()) {
        throw Error(ErrorCode::invalid_args,
                    "TaskPattern: tensor argument " + std::to_string(k) + " in iteration " +
                        std::to_string(i) + " has an offset " +
                        (at < 0 ? "below 0" : "of 2^32 or more") + " in dimension " +
                        std::to_string(d) + ", outside [0, 2^32)");
      }
      offsets[d] = static_cast<std::uint32_t>(at);
    }
    args.add_view(a.tag, a.tensor, a.shape, a.ndims, offsets, a.ndims);
  }
  for (const Scalar& s : scalars_)
    args.scalar_bits(s.base + s.step * static_cast<std::uint64_t>(i));
  return args;
}

}  // namespace tmr
