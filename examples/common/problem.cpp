#include "common/problem.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "tmr/error.hpp"

namespace tmr::examples {

int Problem::add_bytes(std::string name, const Shape& shape, DType dtype, Direction direction,
                       std::span<const std::byte> initial) {
  const std::uint64_t expected_bytes = shape.elements() * dtype_size(dtype);
  if (initial.size() != expected_bytes) {
    throw Error(ErrorCode::invalid_args,
                "host tensor '" + name + "' of shape " + shape.to_string() + " needs " +
                    std::to_string(expected_bytes) + " bytes of initial data, got " +
                    std::to_string(initial.size()));
  }
  HostTensor tensor{std::move(name),
                    shape,
                    dtype,
                    direction,
                    std::vector<std::byte>(initial.begin(), initial.end()),
                    std::vector<std::byte>(initial.begin(), initial.end()),
                    nullptr};
  tensors_.push_back(std::move(tensor));
  return static_cast<int>(tensors_.size()) - 1;
}

int Problem::add_placeholder(std::string name, const Shape& shape, DType dtype,
                             Direction direction) {
  HostTensor tensor{std::move(name), shape, dtype, direction, {}, {}, nullptr};
  // Default-initialised: large blocks come from fresh, untouched pages.
  tensor.placeholder.reset(new std::byte[shape.elements() * dtype_size(dtype)]);
  tensors_.push_back(std::move(tensor));
  return static_cast<int>(tensors_.size()) - 1;
}

void Problem::expect(int index, std::vector<double> golden, Tolerance tolerance) {
  const HostTensor& tensor = tensors_.at(static_cast<std::size_t>(index));
  if (tensor.direction == Direction::in) {
    throw Error(ErrorCode::invalid_args,
                "golden given for input tensor '" + tensor.name + "'; only outputs are checked");
  }
  if (golden.size() != tensor.shape.elements()) {
    throw Error(ErrorCode::invalid_args,
                "golden for '" + tensor.name + "' has " + std::to_string(golden.size()) +
                    " values, tensor has " + std::to_string(tensor.shape.elements()));
  }
  expectations_.push_back({index, std::move(golden), tolerance});
}

RunArgs Problem::run_args() {
  RunArgs args;
  for (HostTensor& tensor : tensors_) {
    std::byte* const host = tensor.placeholder ? tensor.placeholder.get() : tensor.bytes.data();
    switch (tensor.direction) {
      case Direction::in:
        args.input(host, tensor.shape, tensor.dtype);
        break;
      case Direction::out:
        args.output(host, tensor.shape, tensor.dtype);
        break;
      case Direction::inout:
        args.inout(host, tensor.shape, tensor.dtype);
        break;
    }
  }
  for (const std::uint64_t bits : scalars_)
    args.scalar(bits);
  return args;
}

void Problem::reset_outputs() {
  for (HostTensor& tensor : tensors_) {
    if (tensor.direction != Direction::in) {
      std::copy(tensor.initial.begin(), tensor.initial.end(), tensor.bytes.begin());
    }
  }
}

double Problem::element(const HostTensor& tensor, std::uint64_t i) const {
  const std::byte* at = tensor.bytes.data() + i * dtype_size(tensor.dtype);
  auto load = [at]<class T>(T) {
    T value;
    std::memcpy(&value, at, sizeof(T));
    return static_cast<double>(static_cast<float>(value));
  };
  switch (tensor.dtype) {
    case DType::f32:
      return load(float{});
    case DType::f16:
      return load(f16{});
    case DType::bf16:
      return load(bf16{});
    case DType::i32: {
      std::int32_t value;
      std::memcpy(&value, at, sizeof(value));
      return value;
    }
    case DType::i8:
      return static_cast<double>(static_cast<std::int8_t>(*at));
    case DType::u8:
      return static_cast<double>(static_cast<std::uint8_t>(*at));
  }
  return std::numeric_limits<double>::quiet_NaN();
}

std::vector<OutputCheck> Problem::check() const {
  std::vector<OutputCheck> results;
  for (const Expectation& expectation : expectations_) {
    const HostTensor& tensor = tensors_[static_cast<std::size_t>(expectation.index)];
    OutputCheck result;
    result.name = tensor.name;
    result.elements = expectation.golden.size();
    result.tolerance = expectation.tolerance;
    const double atol = expectation.tolerance.atol;
    const double rtol = expectation.tolerance.rtol;
    for (std::uint64_t i = 0; i < result.elements; ++i) {
      const double actual = element(tensor, i);
      const double expected = expectation.golden[i];
      const double abs_error = std::fabs(actual - expected);
      const bool within = abs_error <= atol + rtol * std::fabs(expected);  // false for NaN
      if (!within) {
        if (result.mismatched == 0) {
          result.first_mismatch = i;
          result.first_actual = actual;
          result.first_expected = expected;
        }
        ++result.mismatched;
      }
      const double abs_reported =
          std::isnan(abs_error) ? std::numeric_limits<double>::infinity() : abs_error;
      result.max_abs_error = std::max(result.max_abs_error, abs_reported);
      if (expected != 0) {
        result.max_rel_error = std::max(result.max_rel_error, abs_reported / std::fabs(expected));
      }
    }
    results.push_back(std::move(result));
  }
  return results;
}

void Problem::corrupt_first_output() {
  if (expectations_.empty()) return;
  const Expectation& expectation = expectations_.front();
  HostTensor& tensor = tensors_[static_cast<std::size_t>(expectation.index)];
  // Move the element well outside its tolerance, whatever its type.
  const double wrong = expectation.golden[0] + 1.0 + 2.0 * std::fabs(expectation.golden[0]);
  std::byte* at = tensor.bytes.data();
  auto store = [at]<class T>(T value) { std::memcpy(at, &value, sizeof(T)); };
  switch (tensor.dtype) {
    case DType::f32:
      store(static_cast<float>(wrong));
      break;
    case DType::f16:
      store(f16(static_cast<float>(wrong)));
      break;
    case DType::bf16:
      store(bf16(static_cast<float>(wrong)));
      break;
    case DType::i32:
      store(static_cast<std::int32_t>(std::lround(wrong)));
      break;
    case DType::i8:
      store(static_cast<std::int8_t>(std::lround(wrong)));
      break;
    case DType::u8:
      store(static_cast<std::uint8_t>(std::lround(wrong)));
      break;
  }
}

}  // namespace tmr::examples
