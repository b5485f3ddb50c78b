// Shape: a bounded list of dimension sizes; exceeding kMaxDims is a user error, never truncation.
#include "tmr/shape.hpp"

#include <string>

#include "tmr/error.hpp"

namespace tmr {

void Shape::throw_too_many_dims(std::size_t requested) {
  throw Error(ErrorCode::invalid_args,
              "shape has " + std::to_string(requested) + " dimensions but tmr supports at most " +
                  std::to_string(kMaxDims) + " (kMaxDims); merge adjacent dimensions first");
}

Shape::Shape(std::span<const std::uint32_t> dims) {
  if (dims.size() > static_cast<std::size_t>(kMaxDims)) throw_too_many_dims(dims.size());
  for (const std::uint32_t dim : dims)
    dims_[static_cast<std::size_t>(size_++)] = dim;
}

// The empty product is 1: a 0-d shape describes a single (scalar) element.
std::uint64_t Shape::elements() const {
  std::uint64_t product = 1;
  for (const std::uint32_t dim : *this)
    product *= dim;
  return product;
}

std::string Shape::to_string() const {
  std::string text = "[";
  for (int d = 0; d < size_; ++d) {
    if (d > 0) text += ", ";
    text += std::to_string((*this)[d]);
  }
  return text + "]";
}

void Shape::throw_bad_dim(const std::string& value, int position) {
  throw Error(
      ErrorCode::invalid_args,
      "shape value " + value + " at position " + std::to_string(position) +
          " is outside [0, 2^32); dimension sizes, offsets and indices are unsigned 32-bit");
}

void Shape::push_back(std::uint32_t dim) {
  if (size_ >= kMaxDims) throw_too_many_dims(static_cast<std::size_t>(size_) + 1);
  dims_[static_cast<std::size_t>(size_++)] = dim;
}

}  // namespace tmr
