// How a paged-attention orchestration sees its arguments: 2-D views of the inputs, the request
// lengths and block ids read on the orchestrator, and the K/V views of one KV block.
#pragma once

#include <cstdint>
#include <optional>

#include "tmr/orchestrator.hpp"

namespace tmr::examples::paged_attention {

struct AttentionViews {
  Tensor query_rows;    // [B * H, D] bf16
  Tensor key_rows;      // [blocks * bs, D] bf16
  Tensor key_cols;      // key_rows transposed, [D, blocks * bs]: block b's K^T is columns b * bs..
  Tensor value_rows;    // [blocks * bs, D] bf16
  Tensor block_table;   // [B, blocks_per_request] i32
  Tensor context_lens;  // [B] i32
  Tensor out_rows;      // [B * H, D] f32
  std::uint32_t batch = 0;
  std::uint32_t heads = 0;
  std::uint32_t head_dim = 0;
  std::uint32_t block_size = 0;
  std::uint32_t total_blocks = 0;
  std::uint32_t blocks_per_request = 0;
  float scale = 1.0f;
};

// Checks the arguments (see attention_cases.hpp for their order); on misuse latches a fatal
// invalid_args error on `o` and returns nothing.
std::optional<AttentionViews> attention_views(Orchestrator& o, const OrchestrationArgs& args);

// Context length of request `b` (read with get_tensor_data); nothing (and a fatal error) when it
// is negative or longer than the block table allows.
std::optional<std::uint32_t> context_length(Orchestrator& o, const AttentionViews& v,
                                            std::uint32_t b);

// Logical block `bn` of a request: its K^T is v.key_cols's [D, bs] view at columns {0, row} (a
// transposed view: the cache itself is not transposed), its V v.value_rows's [bs, D] view at rows
// {row, 0}; a submit names them as views, args.in(v.key_cols, {D, bs}, {0, row}).
struct KvBlock {
  std::uint32_t row;    // the block's first cache row (physical block id x bs)
  std::uint32_t valid;  // real tokens in the block (< bs for a partial last block)
};
// Logical block `bn` of request `b` (its physical id read from the block table).
std::optional<KvBlock> kv_block(Orchestrator& o, const AttentionViews& v, std::uint32_t b,
                                std::uint32_t bn, std::uint32_t context);

}  // namespace tmr::examples::paged_attention
