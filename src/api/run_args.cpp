// Host tensors handed to a run: checked when added, so a bad argument is reported at the line
// that made it rather than when the run copies it to device memory.
#include <string>

#include "tmr/error.hpp"
#include "tmr/runtime.hpp"

namespace tmr {

namespace {

std::string_view direction_name(RunArgs::Direction direction) {
  switch (direction) {
    case RunArgs::Direction::in:
      return "input";
    case RunArgs::Direction::out:
      return "output";
    case RunArgs::Direction::inout:
      return "inout";
  }
  return "?";
}

}  // namespace

int RunArgs::add(void* host, const Shape& shape, DType dtype, Direction direction) {
  const std::string what = "RunArgs::" + std::string(direction_name(direction)) + " #" +
                           std::to_string(tensors_.size()) + " (" + std::string(dtype_name(dtype)) +
                           shape.to_string() + ")";
  if (host == nullptr) {
    throw Error(ErrorCode::invalid_args,
                what + " has a null host pointer; pass the address of the host array");
  }
  if (shape.size() == 0) {
    throw Error(ErrorCode::invalid_args, what + " has no dimensions; give 1 to " +
                                             std::to_string(kMaxDims) +
                                             " dimensions (use [1] for a single element)");
  }
  std::uint64_t bytes = dtype_size(dtype);
  for (int d = 0; d < shape.size(); ++d) {
    if (shape[d] == 0) {
      throw Error(ErrorCode::invalid_args,
                  what + " has dimension " + std::to_string(d) +
                      " of size 0; every dimension must hold at least one element");
    }
    if (__builtin_mul_overflow(bytes, std::uint64_t{shape[d]}, &bytes) ||
        bytes > (std::uint64_t{1} << 62)) {
      throw Error(ErrorCode::invalid_args,
                  what + " describes more than 2^62 bytes; use a smaller shape");
    }
  }
  tensors_.push_back(HostTensor{host, shape, dtype, direction});
  return static_cast<int>(tensors_.size()) - 1;
}

}  // namespace tmr
