// Task arguments. Misuse is recorded, not thrown, so a chained builder expression stays valid and
// the submit that receives the arguments reports the first mistake as its error.
#include "tmr/args.hpp"

#include <cstddef>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include "tmr/error.hpp"

namespace tmr {

std::string_view arg_tag_name(ArgTag tag) {
  switch (tag) {
    case ArgTag::in:
      return "in";
    case ArgTag::out:
      return "out";
    case ArgTag::inout:
      return "inout";
    case ArgTag::out_existing:
      return "out_existing";
    case ArgTag::no_dep:
      return "no_dep";
  }
  return "?";
}

namespace {

std::string describe(ArgTag tag, int index) {
  return std::string(arg_tag_name(tag)) + " tensor #" + std::to_string(index);
}

// Why tensor argument #index cannot be added, or "" when it can. Built only on failure, so the
// common path allocates nothing.
std::string slot_error(ArgTag tag, int index, int scalar_count) {
  if (index >= kMaxTensorArgs) {
    return "too many tensor arguments: " + describe(tag, index) + " exceeds kMaxTensorArgs (" +
           std::to_string(kMaxTensorArgs) + "); split the task or pack tensors into one buffer";
  }
  if (scalar_count > 0) {
    return describe(tag, index) + " follows a scalar; add every tensor before the first scalar";
  }
  return {};
}

}  // namespace

const std::string& Args::error() const {
  static const std::string none;
  return error_ != nullptr ? *error_ : none;
}

Args& Args::add_checked(ArgTag tag, const Tensor& t) {
  if (has_error()) return *this;  // keep the first mistake: later ones are often its echo
  // The message is built only when there is a mistake.
  if (tensor_count_ >= kMaxTensorArgs || scalar_count_ > 0) {
    set_error(slot_error(tag, tensor_count_, scalar_count_));
    return *this;
  }
  if (!t.valid()) {
    set_error(describe(tag, tensor_count_) +
              " is a null tensor; pass a tensor from Tensor::wrap, an earlier task's outputs or "
              "alloc");
    return *this;
  }
  const auto i = static_cast<std::size_t>(tensor_count_++);
  ::new (&tensor_storage_[i]) Tensor(t);
  tags_[i] = tag;
  created_[i] = t.producer().valid();
  return *this;
}

Args& Args::add_view_refused(ArgTag tag, const Tensor& t, const std::uint32_t* shape, int n,
                             const std::uint32_t* offsets, int m) {
  // As add(tag, t.view(shape, offsets)): the view first (a bad one throws), then the argument.
  if (!t.valid()) {
    if (n > kMaxDims || m > kMaxDims) t.view_error(shape, n, offsets, m);  // Shape's message
    return add(tag, t);                                                    // a null view
  }
  alignas(Tensor) std::byte view[sizeof(Tensor)];
  if (!t.view_into(view, shape, n, offsets, m)) t.view_error(shape, n, offsets, m);
  return add(tag, *std::launder(reinterpret_cast<const Tensor*>(view)));
}

Args& Args::out_rejected(const TensorSpec& spec) {
  // wrap_into refused the shape: wrap names why (it throws for every shape wrap_into refuses).
  const auto i = static_cast<std::size_t>(tensor_count_);
  try {
    ::new (&tensor_storage_[i])
        Tensor(Tensor::wrap(out_placeholder_address(), spec.shape, spec.dtype));
  } catch (const Error& e) {
    set_error(describe(ArgTag::out, tensor_count_) + ": " + e.what());
    return *this;
  }
  return out_added(i, spec);  // not reached while wrap_into and wrap accept the same shapes
}

Args& Args::out_refused() {
  if (has_error()) return *this;                                     // keep the first mistake
  set_error(slot_error(ArgTag::out, tensor_count_, scalar_count_));  // after a scalar, or a 17th
  return *this;
}

Args& Args::scalar_refused() {
  if (has_error()) return *this;
  set_error("too many scalar arguments: scalar #" + std::to_string(scalar_count_) +
            " exceeds kMaxScalarArgs (" + std::to_string(kMaxScalarArgs) +
            "); pass bulk values in a tensor instead");
  return *this;
}

void Args::copy_from(const Args& other) {
  // Only the used prefix is initialised; copying the rest would read indeterminate bytes.
  const auto tensors = static_cast<std::size_t>(other.tensor_count_);
  for (std::size_t i = 0; i < tensors; ++i) {
    ::new (&tensor_storage_[i]) Tensor(other.tensor(static_cast<int>(i)));
    tags_[i] = other.tags_[i];
    if ((other.filled_ >> i) & 1u) fill_bits_[i] = other.fill_bits_[i];
  }
  filled_ = other.filled_;
  out_mask_ = other.out_mask_;
  created_ = other.created_;  // all 16: those past the count are zero in `other`
  const auto scalars = static_cast<std::size_t>(other.scalar_count_);
  for (std::size_t i = 0; i < scalars; ++i)
    scalars_[i] = other.scalars_[i];
  error_ = other.error_ != nullptr ? std::make_unique<std::string>(*other.error_) : nullptr;
  tensor_limit_ = other.tensor_limit_;
  tensor_count_ = other.tensor_count_;
  scalar_count_ = other.scalar_count_;
  block_count_ = other.block_count_;
  sync_start_ = other.sync_start_;
}

}  // namespace tmr
