#include <algorithm>
#include <string>

#include "common/tile_ops.hpp"
#include "paged_attention/attention_math.hpp"
#include "paged_attention/kernels.hpp"
#include "paged_attention_unroll/unroll.hpp"
#include "tmr/error.hpp"

namespace tmr::examples::paged_attention_unroll {

namespace {

[[noreturn]] void invalid(const std::string& message) {
  throw Error(ErrorCode::invalid_args, "paged_attention_unroll: " + message);
}

// The group's n physical block ids, checked against the cache's block count.
std::vector<std::uint32_t> group_blocks(const KernelArgs& args, const Tensor& table,
                                        std::uint32_t cache_rows, std::uint32_t block_size) {
  const auto n = args.scalar<std::int32_t>(0);
  const auto first = args.scalar<std::int64_t>(1);
  if (table.dtype() != DType::i32 || !table.is_contiguous() || n <= 0 || first < 0 ||
      static_cast<std::uint64_t>(first) + static_cast<std::uint64_t>(n) > table.elements()) {
    invalid("block table " + table.to_string() + " has no entries " + std::to_string(first) +
            " + " + std::to_string(n));
  }
  const std::int32_t* ids = table.data_as<std::int32_t>() + first;
  const std::uint32_t total = cache_rows / block_size;
  std::vector<std::uint32_t> blocks(static_cast<std::size_t>(n));
  for (std::int32_t j = 0; j < n; ++j) {
    if (ids[j] < 0 || static_cast<std::uint32_t>(ids[j]) >= total) {
      invalid("block id " + std::to_string(ids[j]) + " is not a block of the cache (0 to " +
              std::to_string(total - 1) + ")");
    }
    blocks[static_cast<std::size_t>(j)] = static_cast<std::uint32_t>(ids[j]);
  }
  return blocks;
}

std::uint32_t group_block_size(const KernelArgs& args, const Tensor& wide) {
  const auto n = static_cast<std::uint32_t>(std::max(1, args.scalar<std::int32_t>(0)));
  if (wide.ndims() != 2 || wide.dim(1) % n != 0) {
    invalid(wide.to_string() + " is not n = " + std::to_string(n) + " blocks wide");
  }
  return wide.dim(1) / n;
}

}  // namespace

void qk_kernel(const KernelArgs& args) {
  const Tensor& q = args.tensor(0);
  const Tensor& keys = args.tensor(1);
  const Tensor& s = args.tensor(3);
  const std::uint32_t bs = group_block_size(args, s);
  const std::vector<std::uint32_t> blocks = group_blocks(args, args.tensor(2), keys.dim(0), bs);
  const FloatRows out = float_rows(s, "S");
  for (std::size_t j = 0; j < blocks.size(); ++j) {
    const Tensor k_t = keys.view({bs, keys.dim(1)}, {blocks[j] * bs, 0}).transpose(0, 1);
    packed_matmul(q, k_t, out.data + j * bs, out.row_stride);
  }
}

void softmax_kernel(const KernelArgs& args) {
  const Tensor& s = args.tensor(0);
  const Tensor& p = args.tensor(1);
  const std::uint32_t rows = s.dim(0);
  const std::uint32_t width = s.dim(1);
  const auto n = static_cast<std::uint32_t>(std::max(1, args.scalar<std::int32_t>(1)));
  const auto valid_last = static_cast<std::uint32_t>(args.scalar<std::int32_t>(2));
  const std::uint32_t bs = width / n;
  if (p.shape() != s.shape() || p.stride(1) != 1 || valid_last > bs || width % n != 0) {
    invalid("softmax: P must be " + s.shape().to_string() +
            " with contiguous rows and the last "
            "block's valid length at most the block size");
  }
  const Tensor& m = args.tensor(2);
  const Tensor& l = args.tensor(3);
  if (m.shape() != Shape{rows} || l.shape() != Shape{rows} || m.dtype() != DType::f32 ||
      l.dtype() != DType::f32) {
    invalid("softmax: m and l must be f32 [" + std::to_string(rows) + "]");
  }
  const FloatRows scores = float_rows(s, "S");
  // One pass over the group: the padding of the last block is set to -inf.
  paged_attention::softmax_prepare(
      {scores.data, scores.row_stride}, rows, (n - 1) * bs + valid_last, args.scalar<float>(0),
      p.data_as<bf16>(), p.stride(0), width, m.data_as<float>(), l.data_as<float>());
}

void pv_kernel(const KernelArgs& args) {
  const Tensor& p = args.tensor(0);
  const Tensor& values = args.tensor(1);
  const Tensor& o_new = args.tensor(3);
  const std::uint32_t bs = group_block_size(args, p);
  const std::vector<std::uint32_t> blocks = group_blocks(args, args.tensor(2), values.dim(0), bs);
  const std::uint32_t rows = p.dim(0);
  const std::uint32_t dim = values.dim(1);
  if (o_new.shape() != Shape{rows, dim}) invalid("PV: O_new must be [rows, D]");
  const FloatRows out = float_rows(o_new, "O_new");
  const std::span<float> partial = scratch_floats(2, std::size_t{rows} * dim);
  for (std::size_t j = 0; j < blocks.size(); ++j) {
    const Tensor p_j = p.view({rows, bs}, {0, static_cast<std::uint32_t>(j) * bs});
    const Tensor v_j = values.view({bs, dim}, {blocks[j] * bs, 0});
    if (j == 0) {
      packed_matmul(p_j, v_j, out.data, out.row_stride);
      continue;
    }
    packed_matmul(p_j, v_j, partial.data(), dim);
    for (std::uint32_t r = 0; r < rows; ++r) {
      float* row = out.row(r);
      const float* add = partial.data() + std::size_t{r} * dim;
      for (std::uint32_t c = 0; c < dim; ++c)
        row[c] += add[c];
    }
  }
}

namespace {

// Sim cost hints: flops at the core's peak; bytes of global memory (HBM) traffic and tiles moved.
// Only the group's K/V blocks and Q come from HBM (the whole cache is an argument, but only n
// blocks of it move); S, P and O_new are written and read back within microseconds and stay in
// the chip's L2 (192 MB class), so they cost tiles, not HBM bandwidth.
std::uint32_t group_n(const KernelArgs& a, int scalar) {
  return static_cast<std::uint32_t>(std::max(1, a.scalar<std::int32_t>(scalar)));
}
double qk_flops(const KernelArgs& a) {
  return 2.0 * a.tensor(0).dim(0) * a.tensor(0).dim(1) * a.tensor(3).dim(1);
}
double qk_bytes(const KernelArgs& a) {  // Q and n K blocks (bf16)
  const double rows = a.tensor(0).dim(0);
  const double dim = a.tensor(0).dim(1);
  const double width = a.tensor(3).dim(1);
  return 2.0 * rows * dim + 2.0 * width * dim;
}
double qk_tiles(const KernelArgs& a) {  // Q once; per block a K load and an S store
  return 1.0 + 2.0 * group_n(a, 0);
}
double softmax_flops(const KernelArgs& a) {
  return 5.0 * static_cast<double>(a.tensor(0).elements());
}
double softmax_tiles(const KernelArgs& a) {  // per block an S load and a P store; m and l
  return 2.0 + 2.0 * group_n(a, 1);
}
double pv_flops(const KernelArgs& a) {
  return 2.0 * a.tensor(0).dim(0) * a.tensor(0).dim(1) * a.tensor(1).dim(1);
}
double pv_bytes(const KernelArgs& a) {  // n V blocks (bf16)
  return 2.0 * a.tensor(0).dim(1) * a.tensor(1).dim(1);
}
double intermediates_only(const KernelArgs&) {  // S in, P, m, l out: all in L2
  return 0;
}
double pv_tiles(const KernelArgs& a) {  // per block a P and a V load; O_new once
  return 1.0 + 2.0 * group_n(a, 0);
}

}  // namespace

void register_kernels(KernelRegistry& kernels) {
  kernels.set_cost(kernels.add("pau_qk", CoreType::aic, qk_kernel),
                   {.flops = qk_flops, .bytes = qk_bytes, .tiles = qk_tiles});
  kernels.set_cost(kernels.add("pau_softmax_prepare", CoreType::aiv, softmax_kernel),
                   {.flops = softmax_flops, .bytes = intermediates_only, .tiles = softmax_tiles});
  kernels.set_cost(kernels.add("pau_pv", CoreType::aic, pv_kernel),
                   {.flops = pv_flops, .bytes = pv_bytes, .tiles = pv_tiles});
  kernels.set_cost(
      kernels.add("pau_online_update", CoreType::aiv, paged_attention::online_update_kernel),
      {.flops = paged_attention::update_flops});
}

}  // namespace tmr::examples::paged_attention_unroll
