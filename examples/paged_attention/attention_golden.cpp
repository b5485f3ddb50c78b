#include "paged_attention/attention_golden.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tmr::examples::paged_attention {

std::vector<double> attention_golden(const AttentionInputs& in) {
  const std::uint32_t heads = in.heads;
  const std::uint32_t dim = in.head_dim;
  const std::uint32_t bs = in.block_size;
  std::vector<double> out(std::size_t{in.batch} * heads * dim, 0.0);
  // Per block: K transposed to [dim, bs] and V as [bs, dim], in double, shared by every head.
  std::vector<double> key_t(std::size_t{dim} * bs);
  std::vector<double> value(std::size_t{bs} * dim);
  std::vector<double> scores(bs);
  std::vector<double> o_block(dim);
  std::vector<double> query(dim);
  // Running state per head of one request.
  std::vector<double> m(heads), l(heads), o(std::size_t{heads} * dim);

  for (std::uint32_t b = 0; b < in.batch; ++b) {
    const auto context = static_cast<std::uint32_t>(std::max(in.context_lens[b], 0));
    const std::uint32_t blocks = (context + bs - 1) / bs;
    for (std::uint32_t bn = 0; bn < blocks; ++bn) {
      const auto physical =
          static_cast<std::size_t>(in.block_table[std::size_t{b} * in.blocks_per_request + bn]);
      const std::uint32_t valid = std::min(bs, context - bn * bs);
      const bf16* k_block = in.key_cache.data() + physical * bs * dim;
      const bf16* v_block = in.value_cache.data() + physical * bs * dim;
      for (std::uint32_t j = 0; j < bs; ++j) {
        for (std::uint32_t d = 0; d < dim; ++d) {
          key_t[std::size_t{d} * bs + j] = static_cast<float>(k_block[std::size_t{j} * dim + d]);
          value[std::size_t{j} * dim + d] = static_cast<float>(v_block[std::size_t{j} * dim + d]);
        }
      }
      for (std::uint32_t h = 0; h < heads; ++h) {
        const bf16* q = in.query.data() + (std::size_t{b} * heads + h) * dim;
        for (std::uint32_t d = 0; d < dim; ++d)
          query[d] = static_cast<float>(q[d]);
        std::fill(scores.begin(), scores.end(), 0.0);
        for (std::uint32_t d = 0; d < dim; ++d) {
          const double qd = query[d];
          const double* k_row = key_t.data() + std::size_t{d} * bs;
          for (std::uint32_t j = 0; j < valid; ++j)
            scores[j] += qd * k_row[j];
        }
        double block_max = -std::numeric_limits<double>::infinity();
        for (std::uint32_t j = 0; j < valid; ++j) {
          scores[j] *= in.scale;
          block_max = std::max(block_max, scores[j]);
        }
        block_max = std::max(block_max, -1e30);
        double block_sum = 0.0;
        std::fill(o_block.begin(), o_block.end(), 0.0);
        for (std::uint32_t j = 0; j < valid; ++j) {
          // P goes through bf16, as the kernel feeds it to the PV matmul.
          const double p =
              static_cast<float>(bf16(static_cast<float>(std::exp(scores[j] - block_max))));
          block_sum += p;
          const double* v_row = value.data() + std::size_t{j} * dim;
          for (std::uint32_t d = 0; d < dim; ++d)
            o_block[d] += p * v_row[d];
        }
        double* o_head = o.data() + std::size_t{h} * dim;
        if (bn == 0) {
          m[h] = block_max;
          l[h] = block_sum;
          std::copy(o_block.begin(), o_block.end(), o_head);
        } else {
          const double merged = std::max(m[h], block_max);
          const double alpha = std::exp(m[h] - merged);
          const double beta = std::exp(block_max - merged);
          l[h] = alpha * l[h] + beta * block_sum;
          for (std::uint32_t d = 0; d < dim; ++d)
            o_head[d] = alpha * o_head[d] + beta * o_block[d];
          m[h] = merged;
        }
      }
    }
    if (blocks == 0) continue;
    for (std::uint32_t h = 0; h < heads; ++h) {
      double* out_head = out.data() + (std::size_t{b} * heads + h) * dim;
      for (std::uint32_t d = 0; d < dim; ++d)
        out_head[d] = o[std::size_t{h} * dim + d] / l[h];
    }
  }
  return out;
}

}  // namespace tmr::examples::paged_attention
