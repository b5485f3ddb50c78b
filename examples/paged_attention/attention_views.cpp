#include "paged_attention/attention_views.hpp"

#include <algorithm>
#include <string>

namespace tmr::examples::paged_attention {

namespace {

bool fail(Orchestrator& o, const std::string& message) {
  o.report_fatal(ErrorCode::invalid_args, "paged attention: " + message);
  return false;
}

bool has(const Tensor& t, int ndims, DType dtype) {
  return t.ndims() == ndims && t.dtype() == dtype;
}

}  // namespace

std::optional<AttentionViews> attention_views(Orchestrator& o, const OrchestrationArgs& args) {
  if (args.tensor_count() != 6 || args.scalar_count() != 1) {
    fail(o,
         "expects 6 tensors (query, key_cache, value_cache, block_table, context_lens, out) "
         "and 1 scalar (scale); got " +
             std::to_string(args.tensor_count()) + " and " + std::to_string(args.scalar_count()));
    return std::nullopt;
  }
  const Tensor& query = args.tensor(0);
  const Tensor& key = args.tensor(1);
  const Tensor& value = args.tensor(2);
  const Tensor& table = args.tensor(3);
  const Tensor& lens = args.tensor(4);
  const Tensor& out = args.tensor(5);
  if (!has(query, 3, DType::bf16) || !has(key, 4, DType::bf16) || !has(value, 4, DType::bf16) ||
      !has(table, 2, DType::i32) || !has(lens, 1, DType::i32) || !has(out, 3, DType::f32)) {
    fail(o,
         "expects query bf16 [B,H,D], key/value cache bf16 [blocks,bs,kvH,D], block_table "
         "i32 [B,n], context_lens i32 [B], out f32 [B,H,D]");
    return std::nullopt;
  }
  AttentionViews v;
  v.batch = query.dim(0);
  v.heads = query.dim(1);
  v.head_dim = query.dim(2);
  v.total_blocks = key.dim(0);
  v.block_size = key.dim(1);
  v.blocks_per_request = table.dim(1);
  v.scale = args.scalar<float>(0);
  if (key.dim(2) != 1 || key.dim(3) != v.head_dim || value.shape() != key.shape()) {
    fail(o, "only kv_head_num = 1 is supported and K, V must be [blocks, bs, 1, D]; got key " +
                key.to_string() + ", value " + value.to_string());
    return std::nullopt;
  }
  if (table.dim(0) != v.batch || lens.dim(0) != v.batch || out.shape() != query.shape()) {
    fail(o, "batch sizes disagree: block_table " + table.to_string() + ", context_lens " +
                lens.to_string() + ", out " + out.to_string());
    return std::nullopt;
  }
  const std::uint32_t token_rows = v.total_blocks * v.block_size;
  v.query_rows = query.reshape({v.batch * v.heads, v.head_dim});
  v.key_rows = key.reshape({token_rows, v.head_dim});
  v.key_cols = v.key_rows.transpose(0, 1);
  v.value_rows = value.reshape({token_rows, v.head_dim});
  v.block_table = table;
  v.context_lens = lens;
  v.out_rows = out.reshape({v.batch * v.heads, v.head_dim});
  return v;
}

std::optional<std::uint32_t> context_length(Orchestrator& o, const AttentionViews& v,
                                            std::uint32_t b) {
  const auto context = o.get_tensor_data<std::int32_t>(v.context_lens, {b});
  const std::int64_t limit = std::int64_t{v.blocks_per_request} * v.block_size;
  if (context < 0 || context > limit) {
    fail(o, "context_lens[" + std::to_string(b) + "] = " + std::to_string(context) +
                " is outside [0, " + std::to_string(limit) +
                "] (block_table columns x block size)");
    return std::nullopt;
  }
  return static_cast<std::uint32_t>(context);
}

std::optional<KvBlock> kv_block(Orchestrator& o, const AttentionViews& v, std::uint32_t b,
                                std::uint32_t bn, std::uint32_t context) {
  const auto physical = o.get_tensor_data<std::int32_t>(v.block_table, {b, bn});
  if (physical < 0 || static_cast<std::uint32_t>(physical) >= v.total_blocks) {
    fail(o, "block_table[" + std::to_string(b) + ", " + std::to_string(bn) +
                "] = " + std::to_string(physical) + " is not a block of the cache (0 to " +
                std::to_string(v.total_blocks - 1) + ")");
    return std::nullopt;
  }
  return KvBlock{static_cast<std::uint32_t>(physical) * v.block_size,
                 std::min(v.block_size, context - bn * v.block_size)};
}

}  // namespace tmr::examples::paged_attention
