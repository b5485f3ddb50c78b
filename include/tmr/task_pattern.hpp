// A declarative parallel_for body: one task per iteration, its arguments affine in the index.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "tmr/args.hpp"
#include "tmr/kernel.hpp"
#include "tmr/shape.hpp"
#include "tmr/tensor.hpp"

namespace tmr {

struct MixKernels;

// What Orchestrator::parallel_for(n, pattern) submits in iteration i: one task of `kernels()`
// whose arguments are `args(i)`. A view access names its tensor's view(shape, offsets + i * step)
// (offsets and step per logical dimension; a step may be zero or negative); a whole-tensor access
// names the tensor itself; a scalar is base + i * step as 64-bit bits (wrapping). The loop is
// exactly
//     for (std::int64_t i = 0; i < n; ++i) o.submit(pattern.kernels(), pattern.args(i));
// with the same dependences, results and errors (docs/design.md, "The pattern form").
// First version: existing tensors (in, inout, out_existing, no_dep) and scalars only; no fresh
// outputs (out(spec)) and no SPMD blocks.
// Mistakes (a null tensor, more than kMaxTensorArgs tensors or kMaxScalarArgs scalars, a tensor
// after a scalar, offsets and steps of different lengths) are recorded, the first one kept, and
// reported by parallel_for as Error(invalid_args) when it has iterations to run.
class TaskPattern {
 public:
  using Steps = std::initializer_list<std::int64_t>;
  explicit TaskPattern(const MixKernels& kernels);

  // The whole tensor in every iteration.
  TaskPattern& in(const Tensor& t) { return add(ArgTag::in, t, nullptr, {}, {}); }
  TaskPattern& inout(const Tensor& t) { return add(ArgTag::inout, t, nullptr, {}, {}); }
  TaskPattern& out_existing(const Tensor& t) {
    return add(ArgTag::out_existing, t, nullptr, {}, {});
  }
  TaskPattern& no_dep(const Tensor& t) { return add(ArgTag::no_dep, t, nullptr, {}, {}); }
  // t.view(shape, offsets + i * step) in iteration i.
  TaskPattern& in(const Tensor& t, const Shape& shape, const Shape& offsets, Steps step) {
    return add(ArgTag::in, t, &shape, offsets, step);
  }
  TaskPattern& inout(const Tensor& t, const Shape& shape, const Shape& offsets, Steps step) {
    return add(ArgTag::inout, t, &shape, offsets, step);
  }
  TaskPattern& out_existing(const Tensor& t, const Shape& shape, const Shape& offsets, Steps step) {
    return add(ArgTag::out_existing, t, &shape, offsets, step);
  }
  TaskPattern& no_dep(const Tensor& t, const Shape& shape, const Shape& offsets, Steps step) {
    return add(ArgTag::no_dep, t, &shape, offsets, step);
  }
  // base_bits + i * step_bits in iteration i.
  TaskPattern& scalar_bits(std::uint64_t base_bits, std::uint64_t step_bits = 0);

  MixKernels kernels() const;
  // Iteration i's arguments. Throws Error(invalid_args) when an offset of iteration i lies outside
  // [0, 2^32); a view that does not fit its tensor throws view()'s Error, as Args::in(t, shape,
  // offsets) does. A recorded mistake is recorded in the result (its submit reports it).
  Args args(std::int64_t i) const;
  int tensor_count() const { return static_cast<int>(accesses_.size()); }
  int scalar_count() const { return static_cast<int>(scalars_.size()); }
  bool has_error() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  struct Access {
    ArgTag tag = ArgTag::in;
    Tensor tensor;
    bool view = false;  // false: the whole tensor
    int ndims = 0;
    std::uint32_t shape[kMaxDims] = {};
    std::int64_t offset[kMaxDims] = {};
    std::int64_t step[kMaxDims] = {};
  };
  struct Scalar {
    std::uint64_t base = 0;
    std::uint64_t step = 0;
  };
  TaskPattern& add(ArgTag tag, const Tensor& t, const Shape* shape, const Shape& offsets,
                   Steps step);
  void set_error(std::string message);

  KernelId kernels_[3] = {kNoKernel, kNoKernel, kNoKernel};
  std::vector<Access> accesses_;
  std::vector<Scalar> scalars_;
  std::string error_;
};

}  // namespace tmr
