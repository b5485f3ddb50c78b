#include "vector_example/kernels.hpp"

#include "common/tile_ops.hpp"
#include "tmr/error.hpp"

namespace tmr::examples::vector_example {

namespace {

void check_same_shape(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) {
    throw Error(ErrorCode::invalid_args,
                "vector_example: tiles differ in shape: " + a.to_string() + " vs " + b.to_string());
  }
}

// Applies `op(x, y)` element by element over tiles with contiguous rows.
template <class Op>
void binary(const KernelArgs& args, Op op) {
  const Tensor& x = args.tensor(0);
  const Tensor& y = args.tensor(1);
  const Tensor& out = args.tensor(2);
  check_same_shape(x, out);
  check_same_shape(y, out);
  const FloatRows xs = float_rows(x, "vector_example input x");
  const FloatRows ys = float_rows(y, "vector_example input y");
  const FloatRows outs = float_rows(out, "vector_example output");
  const std::uint32_t cols = out.dim(1);
  for (std::uint32_t r = 0; r < out.dim(0); ++r) {
    const float* x_row = xs.row(r);
    const float* y_row = ys.row(r);
    float* out_row = outs.row(r);
    for (std::uint32_t c = 0; c < cols; ++c)
      out_row[c] = op(x_row[c], y_row[c]);
  }
}

}  // namespace

void add_kernel(const KernelArgs& args) {
  binary(args, [](float x, float y) { return x + y; });
}

void mul_kernel(const KernelArgs& args) {
  binary(args, [](float x, float y) { return x * y; });
}

void add_scalar_kernel(const KernelArgs& args) {
  const Tensor& x = args.tensor(0);
  const Tensor& out = args.tensor(1);
  check_same_shape(x, out);
  const float addend = args.scalar<float>(0);
  const FloatRows xs = float_rows(x, "vector_example input x");
  const FloatRows outs = float_rows(out, "vector_example output");
  const std::uint32_t cols = out.dim(1);
  for (std::uint32_t r = 0; r < out.dim(0); ++r) {
    const float* x_row = xs.row(r);
    float* out_row = outs.row(r);
    for (std::uint32_t c = 0; c < cols; ++c)
      out_row[c] = x_row[c] + addend;
  }
}

void register_kernels(KernelRegistry& kernels) {
  kernels.add("vec_add", CoreType::aiv, add_kernel);
  kernels.add("vec_add_scalar", CoreType::aiv, add_scalar_kernel);
  kernels.add("vec_mul", CoreType::aiv, mul_kernel);
}

}  // namespace tmr::examples::vector_example
