#include "paged_attention/attention_math.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tmr::examples::paged_attention {

void softmax_prepare(ConstRows s, std::uint32_t rows, std::uint32_t valid, float scale, bf16* p,
                     std::int64_t p_stride, std::uint32_t width, float* m, float* l) {
  for (std::uint32_t r = 0; r < rows; ++r) {
    const float* scores = s.row(r);
    bf16* probabilities = p + static_cast<std::int64_t>(r) * p_stride;
    float row_max = -std::numeric_limits<float>::infinity();
    for (std::uint32_t j = 0; j < valid; ++j)
      row_max = std::max(row_max, scores[j] * scale);
    row_max = std::max(row_max, -1e30f);  // a fully padded row must not give exp(-inf + inf)
    float row_sum = 0.0f;
    for (std::uint32_t j = 0; j < valid; ++j) {
      // Round P to bf16 before summing, so l matches the P that PV multiplies with.
      const bf16 rounded(std::exp(scores[j] * scale - row_max));
      probabilities[j] = rounded;
      row_sum += static_cast<float>(rounded);
    }
    std::fill(probabilities + valid, probabilities + width, bf16(0.0f));
    m[r] = row_max;
    l[r] = row_sum;
  }
}

void online_update(const BlockResult& block, const Accumulators& acc, std::uint32_t rows,
                   std::uint32_t dim, bool first, bool last, Rows out) {
  for (std::uint32_t r = 0; r < rows; ++r) {
    const float* o_new = block.o.row(r);
    float* o = acc.o.row(r);
    if (first) {
      acc.m[r] = block.m[r];
      acc.l[r] = block.l[r];
      std::copy(o_new, o_new + dim, o);
    } else {
      const float merged_max = std::max(acc.m[r], block.m[r]);
      const float old_weight = std::exp(acc.m[r] - merged_max);
      const float new_weight = std::exp(block.m[r] - merged_max);
      acc.m[r] = merged_max;
      acc.l[r] = old_weight * acc.l[r] + new_weight * block.l[r];
      for (std::uint32_t d = 0; d < dim; ++d)
        o[d] = old_weight * o[d] + new_weight * o_new[d];
    }
    if (last) {
      const float inverse = 1.0f / acc.l[r];
      float* out_row = out.row(r);
      for (std::uint32_t d = 0; d < dim; ++d)
        out_row[d] = o[d] * inverse;
    }
  }
}

}  // namespace tmr::examples::paged_attention
