// The golden reference of paged attention, computed independently of the kernels (double
// precision, per-head loops) but with the same block structure and bf16 rounding of P.
#pragma once

#include <cstdint>
#include <vector>

#include "tmr/dtype.hpp"

namespace tmr::examples::paged_attention {

struct AttentionInputs {
  std::uint32_t batch = 0;
  std::uint32_t heads = 0;
  std::uint32_t head_dim = 0;
  std::uint32_t block_size = 0;
  std::uint32_t total_blocks = 0;
  std::uint32_t blocks_per_request = 0;  // columns of the block table
  float scale = 1.0f;
  std::vector<bf16> query;                 // [batch, heads, head_dim]
  std::vector<bf16> key_cache;             // [total_blocks, block_size, 1, head_dim]
  std::vector<bf16> value_cache;           // same shape
  std::vector<std::int32_t> block_table;   // [batch, blocks_per_request]
  std::vector<std::int32_t> context_lens;  // [batch]
};

// out [batch, heads, head_dim]; rows of requests with context length 0 are zero.
std::vector<double> attention_golden(const AttentionInputs& in);

}  // namespace tmr::examples::paged_attention
