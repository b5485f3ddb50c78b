#include "paged_attention_mix/kernels.hpp"

#include <string>
#include <vector>

#include "common/cluster_pipe.hpp"
#include "common/tile_ops.hpp"
#include "paged_attention/attention_math.hpp"
#include "tmr/error.hpp"

namespace tmr::examples::paged_attention_mix {

namespace {

namespace pa = paged_attention;

// Scalar positions.
constexpr int kScale = 0;
constexpr int kValid = 1;
constexpr int kIsFirst = 2;
constexpr int kIsLast = 3;
constexpr int kTag = 4;

struct RowRange {
  std::uint32_t begin;
  std::uint32_t count;
};

// The rows of the tile that AIV `sub_block` owns.
RowRange rows_of_vector(std::uint32_t rows, std::uint32_t sub_block) {
  const std::uint32_t first_half = (rows + 1) / 2;
  return sub_block == 0 ? RowRange{0, first_half} : RowRange{first_half, rows - first_half};
}

int to_vector(std::uint32_t sub_block) {
  return sub_block == 0 ? kChannelToVector0 : kChannelToVector1;
}
int from_vector(std::uint32_t sub_block) {
  return sub_block == 0 ? kChannelFromVector0 : kChannelFromVector1;
}

[[noreturn]] void invalid(const std::string& message) {
  throw Error(ErrorCode::invalid_args, "paged_attention_mix: " + message);
}

void expect_payload(const PipeMessage& message, std::size_t floats, const char* what) {
  if (message.payload.size() != floats) {
    invalid(std::string(what) + " tile holds " + std::to_string(message.payload.size()) +
            " values, expected " + std::to_string(floats));
  }
}

}  // namespace

void cube_kernel(const KernelArgs& args) {
  const Tensor& q = args.tensor(0);
  const Tensor& k_t = args.tensor(1);
  const Tensor& v = args.tensor(2);
  const std::uint32_t rows = q.dim(0);
  const std::uint32_t dim = q.dim(1);
  const std::uint32_t width = k_t.dim(1);
  if (k_t.shape() != Shape{dim, width} || v.shape() != Shape{width, dim}) {
    invalid("K^T must be [D, bs] and V [bs, D]; got " + k_t.to_string() + ", " + v.to_string());
  }
  const std::uint64_t tag = args.scalar<std::uint64_t>(kTag);
  const std::uint32_t cluster = args.cluster();
  const auto timeout = pipe_timeout();

  std::vector<float> scores(std::size_t{rows} * width);
  packed_matmul(q, k_t, scores.data(), width);
  for (std::uint32_t sub = 0; sub < 2; ++sub) {
    const RowRange range = rows_of_vector(rows, sub);
    const auto begin =
        scores.begin() + static_cast<std::ptrdiff_t>(std::size_t{range.begin} * width);
    cluster_pipe(cluster, to_vector(sub))
        .push({tag, std::vector<float>(begin, begin + static_cast<std::ptrdiff_t>(
                                                          std::size_t{range.count} * width))},
              timeout);
  }

  const std::span<float> v_packed = scratch_floats(2, std::size_t{width} * dim);
  pack_2d(v, v_packed);
  for (std::uint32_t sub = 0; sub < 2; ++sub) {
    const RowRange range = rows_of_vector(rows, sub);
    const PipeMessage p = cluster_pipe(cluster, from_vector(sub)).pop(tag, timeout);
    expect_payload(p, std::size_t{range.count} * width, "P");
    std::vector<float> o_new(std::size_t{range.count} * dim);
    matmul(p.payload.data(), v_packed.data(), o_new.data(), static_cast<int>(range.count),
           static_cast<int>(dim), static_cast<int>(width), static_cast<int>(dim), false);
    cluster_pipe(cluster, to_vector(sub)).push({tag, std::move(o_new)}, timeout);
  }
}

void vector_kernel(const KernelArgs& args) {
  const Tensor& q = args.tensor(0);
  const Tensor& k_t = args.tensor(1);
  const std::uint32_t rows = q.dim(0);
  const std::uint32_t dim = q.dim(1);
  const std::uint32_t width = k_t.dim(1);
  const Tensor& m_i = args.tensor(3);
  const Tensor& l_i = args.tensor(4);
  const FloatRows o_i = float_rows(args.tensor(5), "O_i");
  const FloatRows out = float_rows(args.tensor(6), "out");
  if (m_i.shape() != Shape{rows} || l_i.shape() != Shape{rows} ||
      args.tensor(5).shape() != Shape{rows, dim} || args.tensor(6).shape() != Shape{rows, dim}) {
    invalid("accumulators must be m_i, l_i [rows] and O_i, out [rows, D] for rows " +
            std::to_string(rows) + ", D " + std::to_string(dim));
  }
  const auto valid = static_cast<std::uint32_t>(args.scalar<std::int32_t>(kValid));
  if (valid == 0 || valid > width) {
    invalid("valid length " + std::to_string(valid) + " must be in [1, " + std::to_string(width) +
            "]");
  }
  const std::uint32_t sub = args.sub_block_id();
  const RowRange range = rows_of_vector(rows, sub);
  const std::uint64_t tag = args.scalar<std::uint64_t>(kTag);
  const std::uint32_t cluster = args.cluster();
  const auto timeout = pipe_timeout();

  const PipeMessage s = cluster_pipe(cluster, to_vector(sub)).pop(tag, timeout);
  expect_payload(s, std::size_t{range.count} * width, "S");
  std::vector<bf16> p(std::size_t{range.count} * width);
  std::vector<float> m_block(range.count);
  std::vector<float> l_block(range.count);
  pa::softmax_prepare({s.payload.data(), width}, range.count, valid, args.scalar<float>(kScale),
                      p.data(), width, width, m_block.data(), l_block.data());
  // P travels as floats holding bf16 values, which is exactly what the cube multiplies.
  cluster_pipe(cluster, from_vector(sub))
      .push({tag, std::vector<float>(p.begin(), p.end())}, timeout);

  const PipeMessage o_new = cluster_pipe(cluster, to_vector(sub)).pop(tag, timeout);
  expect_payload(o_new, std::size_t{range.count} * dim, "O_new");
  const pa::BlockResult block{m_block.data(), l_block.data(), {o_new.payload.data(), dim}};
  const pa::Accumulators acc{m_i.data_as<float>() + range.begin,
                             l_i.data_as<float>() + range.begin,
                             {o_i.row(range.begin), o_i.row_stride}};
  pa::online_update(block, acc, range.count, dim, args.scalar<std::int32_t>(kIsFirst) != 0,
                    args.scalar<std::int32_t>(kIsLast) != 0,
                    {out.row(range.begin), out.row_stride});
}

namespace {

// Sim cost hints. Cube: QK^T and PV, 2*M*N*K each. Vector: softmax and update on half the rows.
double cube_flops(const KernelArgs& a) {
  const double rows = a.tensor(0).dim(0);
  const double dim = a.tensor(0).dim(1);
  const double width = a.tensor(1).dim(1);
  return 4.0 * rows * dim * width;
}
double vector_flops(const KernelArgs& a) {
  const double rows = a.tensor(0).dim(0) / 2.0;
  const double dim = a.tensor(0).dim(1);
  const double width = a.tensor(1).dim(1);
  return rows * (5.0 * width + 4.0 * dim);
}

}  // namespace

void register_kernels(KernelRegistry& kernels) {
  kernels.set_cost(kernels.add("pam_cube", CoreType::aic, cube_kernel), {0, cube_flops});
  kernels.set_cost(kernels.add("pam_vector", CoreType::aiv, vector_kernel), {0, vector_flops});
}

}  // namespace tmr::examples::paged_attention_mix
