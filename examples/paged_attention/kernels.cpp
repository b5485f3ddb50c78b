#include "paged_attention/kernels.hpp"

#include <string>

#include "common/tile_ops.hpp"
#include "paged_attention/attention_math.hpp"
#include "tmr/error.hpp"

namespace tmr::examples::paged_attention {

namespace {

[[noreturn]] void invalid(const std::string& message) {
  throw Error(ErrorCode::invalid_args, message);
}

void expect_shape(const Tensor& t, const Shape& shape, const char* what) {
  if (t.shape() != shape) {
    invalid(std::string("paged attention: ") + what + " must have shape " + shape.to_string() +
            ", got " + t.to_string());
  }
}

// A 1-D f32 tensor of `rows` adjacent elements (row statistics m and l).
float* row_vector(const Tensor& t, std::uint32_t rows, const char* what) {
  expect_shape(t, {rows}, what);
  if (rows > 1 && t.stride(0) != 1) invalid(std::string(what) + " must be contiguous");
  return t.data_as<float>();
}

Rows rows_of(const Tensor& t, const char* what) {
  const FloatRows rows = float_rows(t, what);
  return {rows.data, rows.row_stride};
}

}  // namespace

void qk_kernel(const KernelArgs& args) {
  const Tensor& q = args.tensor(0);
  const Tensor& k_t = args.tensor(1);  // K^T as [D, bs]: a transposed view of the cache
  const Tensor& s = args.tensor(2);
  expect_shape(k_t, {q.dim(1), k_t.dim(1)}, "K^T block");
  expect_shape(s, {q.dim(0), k_t.dim(1)}, "S");
  const FloatRows out = float_rows(s, "S");
  packed_matmul(q, k_t, out.data, out.row_stride);
}

void softmax_prepare_kernel(const KernelArgs& args) {
  const Tensor& s = args.tensor(0);
  const Tensor& p = args.tensor(1);
  const std::uint32_t rows = s.dim(0);
  const std::uint32_t valid = s.dim(1);
  const std::uint32_t width = p.dim(1);
  if (p.ndims() != 2 || p.dim(0) != rows || width < valid || p.stride(1) != 1) {
    invalid("paged attention: P must be [" + std::to_string(rows) +
            ", >= " + std::to_string(valid) + "] with contiguous rows, got " + p.to_string());
  }
  const FloatRows scores = float_rows(s, "S view");
  float* m = row_vector(args.tensor(2), rows, "m_ij");
  float* l = row_vector(args.tensor(3), rows, "l_ij");
  softmax_prepare({scores.data, scores.row_stride}, rows, valid, args.scalar<float>(0),
                  p.data_as<bf16>(), p.stride(0), width, m, l);
}

void pv_kernel(const KernelArgs& args) {
  const Tensor& p = args.tensor(0);
  const Tensor& v = args.tensor(1);
  const Tensor& o_new = args.tensor(2);
  expect_shape(v, {p.dim(1), v.dim(1)}, "V block");
  expect_shape(o_new, {p.dim(0), v.dim(1)}, "O_new");
  const FloatRows out = float_rows(o_new, "O_new");
  packed_matmul(p, v, out.data, out.row_stride);
}

void online_update_kernel(const KernelArgs& args) {
  const Tensor& o_new = args.tensor(2);
  const std::uint32_t rows = o_new.dim(0);
  const std::uint32_t dim = o_new.dim(1);
  for (int i = 5; i <= 6; ++i)
    expect_shape(args.tensor(i), {rows, dim}, "O_i and out");
  const Rows o_new_rows = rows_of(o_new, "O_new");
  const BlockResult block{row_vector(args.tensor(0), rows, "m_ij"),
                          row_vector(args.tensor(1), rows, "l_ij"),
                          {o_new_rows.data, o_new_rows.stride}};
  const Accumulators acc{row_vector(args.tensor(3), rows, "m_i"),
                         row_vector(args.tensor(4), rows, "l_i"), rows_of(args.tensor(5), "O_i")};
  online_update(block, acc, rows, dim, args.scalar<std::int32_t>(0) != 0,
                args.scalar<std::int32_t>(1) != 0, rows_of(args.tensor(6), "out"));
}

// Cost hints for the sim platform's roofline (flops of one task; bytes come from the tensors).
double qk_flops(const KernelArgs& a) {  // [rows, D] x [D, bs]
  return 2.0 * a.tensor(0).dim(0) * a.tensor(0).dim(1) * a.tensor(1).dim(1);
}
double softmax_flops(const KernelArgs& a) {  // scale, max, exp, sum per score
  return 5.0 * static_cast<double>(a.tensor(0).elements());
}
double pv_flops(const KernelArgs& a) {  // [rows, bs] x [bs, D]
  return 2.0 * a.tensor(0).dim(0) * a.tensor(0).dim(1) * a.tensor(1).dim(1);
}
double update_flops(const KernelArgs& a) {  // rescale O_i and add O_new, per element
  return 4.0 * static_cast<double>(a.tensor(2).elements());
}

void register_kernels(KernelRegistry& kernels) {
  kernels.set_cost(kernels.add("pa_qk", CoreType::aic, qk_kernel), {0, qk_flops});
  kernels.set_cost(kernels.add("pa_softmax_prepare", CoreType::aiv, softmax_prepare_kernel),
                   {0, softmax_flops});
  kernels.set_cost(kernels.add("pa_pv", CoreType::aic, pv_kernel), {0, pv_flops});
  kernels.set_cost(kernels.add("pa_online_update", CoreType::aiv, online_update_kernel),
                   {0, update_flops});
}

}  // namespace tmr::examples::paged_attention
