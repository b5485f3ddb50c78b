// One prepared case: host tensors (inputs and outputs with their initial contents), scalars, and
// the golden values its outputs are checked against.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tmr/dtype.hpp"
#include "tmr/runtime.hpp"
#include "tmr/shape.hpp"

namespace tmr::examples {

// An element passes when |actual - expected| <= atol + rtol * |expected| (numpy's allclose).
struct Tolerance {
  double atol = 0;
  double rtol = 0;
};

// The outcome of comparing one output tensor with its golden values.
struct OutputCheck {
  std::string name;
  std::uint64_t elements = 0;
  std::uint64_t mismatched = 0;
  double max_abs_error = 0;
  // max |actual - expected| / |expected| over the elements whose expected value is not zero.
  double max_rel_error = 0;
  std::uint64_t first_mismatch = 0;  // flat index, when mismatched > 0
  double first_actual = 0;
  double first_expected = 0;
  Tolerance tolerance;
  bool passed() const { return mismatched == 0; }
};

class Problem {
 public:
  using Direction = RunArgs::Direction;

  // Adds a host tensor; the index is also the orchestration's tensor index.
  template <class T>
  int add_tensor(std::string name, const Shape& shape, Direction direction,
                 std::span<const T> initial) {
    return add_bytes(std::move(name), shape, dtype_of<T>(), direction, std::as_bytes(initial));
  }
  template <class T>
  int add_tensor(std::string name, const Shape& shape, Direction direction,
                 const std::vector<T>& initial) {
    return add_tensor<T>(std::move(name), shape, direction, std::span<const T>(initial));
  }
  template <class T>
  void add_scalar(T value) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>);
    std::uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof(T));
    scalars_.push_back(bits);
  }
  // Adds a tensor whose contents nobody reads (timing-only sim runs execute no kernel): its memory
  // is allocated but never initialised or touched, so even GiBs cost nothing.
  int add_placeholder(std::string name, const Shape& shape, DType dtype, Direction direction);
  // Checks tensor `index` (an output or inout) against `golden` after every run.
  void expect(int index, std::vector<double> golden, Tolerance tolerance);

  // Floating-point operations of one run, for GFLOP/s (0: not reported).
  void set_flops(double flops) { flops_ = flops; }
  double flops() const { return flops_; }

  // Host tensors and scalars for Runtime::run; valid while this problem lives (also when moved).
  RunArgs run_args();
  // Restores every out/inout tensor to its initial contents (before each round).
  void reset_outputs();
  std::vector<OutputCheck> check() const;
  // Test hook: disturbs one element of the first checked output, so the check must fail.
  void corrupt_first_output();

  // Typed access to a tensor's host contents (tests, goldens).
  template <class T>
  std::span<T> data(int index) {
    HostTensor& tensor = tensors_.at(static_cast<std::size_t>(index));
    return {reinterpret_cast<T*>(tensor.bytes.data()), tensor.bytes.size() / sizeof(T)};
  }
  std::size_t tensor_count() const { return tensors_.size(); }

 private:
  struct HostTensor {
    std::string name;
    Shape shape;
    DType dtype;
    Direction direction;
    std::vector<std::byte> bytes;              // what the run reads and writes
    std::vector<std::byte> initial;            // restored before each round
    std::shared_ptr<std::byte[]> placeholder;  // instead of `bytes` (add_placeholder)
  };
  struct Expectation {
    int index;
    std::vector<double> golden;
    Tolerance tolerance;
  };
  int add_bytes(std::string name, const Shape& shape, DType dtype, Direction direction,
                std::span<const std::byte> initial);
  double element(const HostTensor& tensor, std::uint64_t i) const;

  std::vector<HostTensor> tensors_;
  std::vector<std::uint64_t> scalars_;
  std::vector<Expectation> expectations_;
  double flops_ = 0;
};

}  // namespace tmr::examples
