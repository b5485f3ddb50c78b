#include <algorithm>
#include <string>

#include "batch_paged_attention/batch.hpp"
#include "common/tile_ops.hpp"
#include "paged_attention/attention_math.hpp"
#include "tmr/error.hpp"

namespace tmr::examples::batch_paged_attention {

namespace pa = paged_attention;

namespace {

[[noreturn]] void invalid(const std::string& message) {
  throw Error(ErrorCode::invalid_args, "batch_paged_attention: " + message);
}

std::uint32_t scalar_u32(const KernelArgs& args, int i) {
  const auto value = args.scalar<std::int32_t>(i);
  if (value < 0) invalid("scalar " + std::to_string(i) + " is negative");
  return static_cast<std::uint32_t>(value);
}

// Rows per request of a chunk-stacked tensor.
std::uint32_t rows_per_request(const Tensor& stacked, std::uint32_t chunk) {
  if (chunk == 0 || stacked.dim(0) % chunk != 0) {
    invalid(stacked.to_string() + " does not stack " + std::to_string(chunk) + " requests");
  }
  return stacked.dim(0) / chunk;
}

// Physical block of request b at block index bn, checked against the cache.
std::uint32_t block_of(const Tensor& table, std::uint32_t b, std::uint32_t bn,
                       std::uint32_t cache_rows, std::uint32_t block_size) {
  if (table.dtype() != DType::i32 || table.ndims() != 2 || !table.is_contiguous() ||
      b >= table.dim(0) || bn >= table.dim(1)) {
    invalid("block table " + table.to_string() + " has no entry [" + std::to_string(b) + ", " +
            std::to_string(bn) + "]");
  }
  const std::int32_t id = table.data_as<std::int32_t>()[std::size_t{b} * table.dim(1) + bn];
  if (id < 0 || static_cast<std::uint32_t>(id) >= cache_rows / block_size) {
    invalid("block id " + std::to_string(id) + " is not a block of the cache");
  }
  return static_cast<std::uint32_t>(id);
}

}  // namespace

void qk_kernel(const KernelArgs& args) {
  const Tensor& query = args.tensor(0);
  const Tensor& keys = args.tensor(1);
  const Tensor& s = args.tensor(3);
  const std::uint32_t chunk = scalar_u32(args, 0);
  const std::uint32_t bn = scalar_u32(args, 1);
  const std::uint32_t batch_start = scalar_u32(args, 2);
  const std::uint32_t q_offset = scalar_u32(args, 3);
  const std::uint32_t heads = scalar_u32(args, 4);
  const std::uint32_t rows = rows_per_request(s, chunk);
  const std::uint32_t bs = s.dim(1);
  const std::uint32_t dim = query.dim(1);
  const FloatRows out = float_rows(s, "S");
  for (std::uint32_t i = 0; i < chunk; ++i) {
    const std::uint32_t b = batch_start + i;
    const std::uint32_t block = block_of(args.tensor(2), b, bn, keys.dim(0), bs);
    const Tensor q = query.view({rows, dim}, {b * heads + q_offset, 0});
    const Tensor k_t = keys.view({bs, dim}, {block * bs, 0}).transpose(0, 1);
    packed_matmul(q, k_t, out.row(i * rows), out.row_stride);
  }
}

void softmax_kernel(const KernelArgs& args) {
  const Tensor& s = args.tensor(0);
  const Tensor& lens = args.tensor(1);
  const Tensor& p = args.tensor(2);
  const std::uint32_t chunk = scalar_u32(args, 1);
  const std::uint32_t bn = scalar_u32(args, 2);
  const std::uint32_t batch_start = scalar_u32(args, 3);
  const std::uint32_t rows = rows_per_request(s, chunk);
  const std::uint32_t bs = s.dim(1);
  if (p.shape() != s.shape() || p.stride(1) != 1 || lens.dtype() != DType::i32 ||
      !lens.is_contiguous() || batch_start + chunk > lens.elements()) {
    invalid(
        "softmax: P must be shaped as S with contiguous rows and context_lens must hold the "
        "chunk's requests");
  }
  const FloatRows scores = float_rows(s, "S");
  float* m = args.tensor(3).data_as<float>();
  float* l = args.tensor(4).data_as<float>();
  for (std::uint32_t i = 0; i < chunk; ++i) {
    const std::int64_t left =
        std::int64_t{lens.data_as<std::int32_t>()[batch_start + i]} - std::int64_t{bn} * bs;
    const auto valid = static_cast<std::uint32_t>(std::clamp<std::int64_t>(left, 0, bs));
    pa::softmax_prepare({scores.row(i * rows), scores.row_stride}, rows, valid,
                        args.scalar<float>(0),
                        p.data_as<bf16>() + std::size_t{i} * rows * p.stride(0), p.stride(0), bs,
                        m + std::size_t{i} * rows, l + std::size_t{i} * rows);
  }
}

void pv_kernel(const KernelArgs& args) {
  const Tensor& p = args.tensor(0);
  const Tensor& values = args.tensor(1);
  const Tensor& o_new = args.tensor(3);
  const std::uint32_t chunk = scalar_u32(args, 0);
  const std::uint32_t bn = scalar_u32(args, 1);
  const std::uint32_t batch_start = scalar_u32(args, 2);
  const std::uint32_t rows = rows_per_request(p, chunk);
  const std::uint32_t bs = p.dim(1);
  const std::uint32_t dim = values.dim(1);
  if (o_new.shape() != Shape{chunk * rows, dim}) invalid("PV: O_new must be [chunk*rows, D]");
  const FloatRows out = float_rows(o_new, "O_new");
  for (std::uint32_t i = 0; i < chunk; ++i) {
    const std::uint32_t block = block_of(args.tensor(2), batch_start + i, bn, values.dim(0), bs);
    packed_matmul(p.view({rows, bs}, {i * rows, 0}), values.view({bs, dim}, {block * bs, 0}),
                  out.row(i * rows), out.row_stride);
  }
}

void update_kernel(const KernelArgs& args) {
  const Tensor& o_new = args.tensor(2);
  const Tensor& out = args.tensor(6);
  const bool first = args.scalar<std::int32_t>(0) != 0;
  const bool last = args.scalar<std::int32_t>(1) != 0;
  const std::uint32_t chunk = scalar_u32(args, 2);
  const std::uint32_t batch_start = scalar_u32(args, 3);
  const std::uint32_t q_offset = scalar_u32(args, 4);
  const std::uint32_t heads = scalar_u32(args, 5);
  const std::uint32_t rows = rows_per_request(o_new, chunk);
  const std::uint32_t dim = o_new.dim(1);
  if (args.tensor(5).shape() != o_new.shape() || out.dim(1) != dim ||
      (batch_start + chunk) * heads > out.dim(0)) {
    invalid("update: O_i must be shaped as O_new and out must hold the chunk's rows");
  }
  const FloatRows o_new_rows = float_rows(o_new, "O_new");
  const FloatRows o_i = float_rows(args.tensor(5), "O_i");
  const FloatRows out_rows = float_rows(out, "out");
  for (std::uint32_t i = 0; i < chunk; ++i) {
    const std::size_t at = std::size_t{i} * rows;
    const pa::BlockResult block{args.tensor(0).data_as<float>() + at,
                                args.tensor(1).data_as<float>() + at,
                                {o_new_rows.row(i * rows), o_new_rows.row_stride}};
    const pa::Accumulators acc{args.tensor(3).data_as<float>() + at,
                               args.tensor(4).data_as<float>() + at,
                               {o_i.row(i * rows), o_i.row_stride}};
    const std::uint32_t out_row = (batch_start + i) * heads + q_offset;
    pa::online_update(block, acc, rows, dim, first, last,
                      {out_rows.row(out_row), out_rows.row_stride});
  }
}

namespace {

// Sim cost hints. Per request of the chunk one tile of each operand. Bytes are HBM traffic: the
// chunk's Q rows and K/V blocks (the caches are whole-tensor arguments) and the final `out` rows;
// S, P, O_new and the accumulators stay in L2 between producer and consumer (as in
// paged_attention_unroll).
double chunk_of(const KernelArgs& a, int scalar) {
  return std::max(1, a.scalar<std::int32_t>(scalar));
}
double qk_flops(const KernelArgs& a) {  // [chunk*rows, D] x [D, bs]
  return 2.0 * a.tensor(3).dim(0) * a.tensor(0).dim(1) * a.tensor(3).dim(1);
}
double qk_bytes(const KernelArgs& a) {
  const double chunk = chunk_of(a, 0);
  const double dim = a.tensor(0).dim(1);
  const double stacked = a.tensor(3).dim(0);
  const double bs = a.tensor(3).dim(1);
  return 2.0 * stacked * dim + chunk * 2.0 * bs * dim;
}
double qk_tiles(const KernelArgs& a) {  // per request a Q and a K load and an S store
  return 3.0 * chunk_of(a, 0);
}
double softmax_flops(const KernelArgs& a) {
  return 5.0 * static_cast<double>(a.tensor(0).elements());
}
double pv_flops(const KernelArgs& a) {  // [chunk*rows, bs] x [bs, D]
  return 2.0 * a.tensor(0).dim(0) * a.tensor(0).dim(1) * a.tensor(1).dim(1);
}
double pv_bytes(const KernelArgs& a) {
  return chunk_of(a, 0) * 2.0 * a.tensor(0).dim(1) * a.tensor(1).dim(1);
}
double intermediates_only(const KernelArgs&) {
  return 0;
}
double pv_tiles(const KernelArgs& a) {  // per request a P and a V load and an O_new store
  return 3.0 * chunk_of(a, 0);
}
double update_flops(const KernelArgs& a) {
  return 4.0 * static_cast<double>(a.tensor(2).elements());
}
double update_bytes(const KernelArgs& a) {  // the final out rows, on the last block only
  const bool last = a.scalar<std::int32_t>(1) != 0;
  return last ? 4.0 * static_cast<double>(a.tensor(2).elements()) : 0.0;
}
double update_tiles(const KernelArgs& a) {
  // m_ij, l_ij, O_new, m, l, O loaded and m, l, O stored (stacked); on the last block one `out`
  // tile per request.
  const bool last = a.scalar<std::int32_t>(1) != 0;
  return 9.0 + (last ? chunk_of(a, 2) : 0.0);
}

}  // namespace

void register_kernels(KernelRegistry& kernels) {
  kernels.set_cost(kernels.add("bpa_qk", CoreType::aic, qk_kernel),
                   {.flops = qk_flops, .bytes = qk_bytes, .tiles = qk_tiles});
  // Softmax: S, P, m and l are stacked (one tile each): the default of one per argument.
  kernels.set_cost(kernels.add("bpa_softmax_prepare", CoreType::aiv, softmax_kernel),
                   {.flops = softmax_flops, .bytes = intermediates_only});
  kernels.set_cost(kernels.add("bpa_pv", CoreType::aic, pv_kernel),
                   {.flops = pv_flops, .bytes = pv_bytes, .tiles = pv_tiles});
  kernels.set_cost(kernels.add("bpa_online_update", CoreType::aiv, update_kernel),
                   {.flops = update_flops, .bytes = update_bytes, .tiles = update_tiles});
}

}  // namespace tmr::examples::batch_paged_attention
