// The per-row math of paged attention, shared by the four-kernel pipeline (paged_attention) and
// the fused MIX kernels (paged_attention_mix): softmax-prepare and the online-softmax update.
#pragma once

#include <cstdint>

#include "tmr/dtype.hpp"

namespace tmr::examples::paged_attention {

// Row-major float rows with a stride (elements between row starts).
struct Rows {
  float* data;
  std::int64_t stride;
  float* row(std::uint32_t r) const { return data + static_cast<std::int64_t>(r) * stride; }
};
struct ConstRows {
  const float* data;
  std::int64_t stride;
  const float* row(std::uint32_t r) const { return data + static_cast<std::int64_t>(r) * stride; }
};

// For each of `rows` rows of scores `s` (the first `valid` columns are real, the rest padding):
// x = s * scale, m = max x (at least -1e30), p = exp(x - m) rounded to bf16 (0 for padding),
// l = sum of the rounded p. `p` has rows x `width` elements with row stride `p_stride`.
void softmax_prepare(ConstRows s, std::uint32_t rows, std::uint32_t valid, float scale, bf16* p,
                     std::int64_t p_stride, std::uint32_t width, float* m, float* l);

// One KV block's results for a set of rows: row max, row sum and O_new = P V.
struct BlockResult {
  const float* m;
  const float* l;
  ConstRows o;
};
// The running state of the online softmax for the same rows.
struct Accumulators {
  float* m;
  float* l;
  Rows o;
};

// Merges a block into the accumulators (the first block initialises them) and, for the last
// block, writes out = O / l into `out`.
void online_update(const BlockResult& block, const Accumulators& acc, std::uint32_t rows,
                   std::uint32_t dim, bool first, bool last, Rows out);

}  // namespace tmr::examples::paged_attention
