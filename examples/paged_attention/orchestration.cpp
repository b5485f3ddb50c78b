#include "paged_attention/orchestration.hpp"

#include <algorithm>

#include "paged_attention/attention_cases.hpp"
#include "paged_attention/attention_views.hpp"

namespace tmr::examples::paged_attention {

void orchestrate(Orchestrator& o, const OrchestrationArgs& args) {
  const std::optional<AttentionViews> views = attention_views(o, args);
  if (!views) return;
  const AttentionViews& v = *views;
  const KernelId qk = o.kernel("pa_qk");
  const KernelId softmax = o.kernel("pa_softmax_prepare");
  const KernelId pv = o.kernel("pa_pv");
  const KernelId update = o.kernel("pa_online_update");
  const std::uint32_t dim = v.head_dim;
  const std::uint32_t bs = v.block_size;

  LoopOptions per_iteration;
  per_iteration.scope_per_iteration = true;
  // Requests and head tiles are independent and the block loop carries the accumulator chain: all
  // three run as parallel_for, whose analysis proves that (docs/design.md). The request loop owns
  // the analysis when the requests repeat one shape (equal context lengths); otherwise it falls
  // back and each request's loops analyse themselves.
  o.parallel_for(v.batch, [&](Orchestrator& o, std::int64_t request) {
    const auto b = static_cast<std::uint32_t>(request);
    const std::optional<std::uint32_t> context = context_length(o, v, b);
    if (!context) return;
    const std::uint32_t blocks = (*context + v.block_size - 1) / v.block_size;
    if (blocks == 0) return;  // an empty request leaves its rows of `out` untouched
    // Each tile is its own scope, so its intermediates are reclaimed once its chain is done; as
    // the reference, each block's S, P, m, l and O_new live in a scope of their own too, so a
    // request no longer pins a ring slot per block (a 64-task window holds the ring-stress case).
    const std::uint32_t tile_rows = head_tile(v.heads);
    const std::uint32_t tiles = (v.heads + tile_rows - 1) / tile_rows;
    o.parallel_for(
        tiles,
        [&](Orchestrator& o, std::int64_t tile_index) {
          const std::uint32_t head = static_cast<std::uint32_t>(tile_index) * tile_rows;
          const std::uint32_t rows = std::min(tile_rows, v.heads - head);
          const Shape tile{rows, dim};
          const Shape tile_at{b * v.heads + head, 0};
          const Tensor q_tile = v.query_rows.view(tile, tile_at);
          const Tensor out_tile = v.out_rows.view(tile, tile_at);
          // What each block's tasks make, the same for the whole chain: S, P, a row vector (m, l)
          // and a tile (O).
          const TensorSpec scores(Shape{rows, v.block_size}, DType::f32);
          const TensorSpec probs(Shape{rows, v.block_size}, DType::bf16);
          const TensorSpec row_values(Shape{rows}, DType::f32);
          const TensorSpec tile_values(tile, DType::f32);
          // One hidden alloc task for the online-softmax accumulators of the whole chain.
          const TaskOutputs acc = o.alloc(Args().out(tile_values).out(row_values).out(row_values));
          if (!acc.valid()) return;
          const Tensor& o_i = acc[0];
          const Tensor& l_i = acc[1];
          const Tensor& m_i = acc[2];
          o.parallel_for(
              blocks,
              [&](Orchestrator& o, std::int64_t block) {
                const auto bn = static_cast<std::uint32_t>(block);
                const std::optional<KvBlock> kv = kv_block(o, v, b, bn, *context);
                if (!kv) return;
                // K^T and V of the block, as views given straight to Args (KvBlock).
                const TaskOutputs s = o.submit_aic(
                    qk, Args().in(q_tile).in(v.key_cols, {dim, bs}, {0, kv->row}).out(scores));
                if (!s.valid()) return;
                // Softmax sees only the valid columns of a partial last block.
                const TaskOutputs sf =
                    o.submit_aiv(softmax, Args()
                                              .in(s[0], {rows, kv->valid}, {0, 0})
                                              .out(probs)
                                              .out(row_values)
                                              .out(row_values)
                                              .scalar(v.scale));
                if (!sf.valid()) return;
                const TaskOutputs o_new = o.submit_aic(
                    pv,
                    Args().in(sf[0]).in(v.value_rows, {bs, dim}, {kv->row, 0}).out(tile_values));
                if (!o_new.valid()) return;
                o.submit_aiv(update, Args()
                                         .in(sf[1])
                                         .in(sf[2])
                                         .in(o_new[0])
                                         .inout(m_i)
                                         .inout(l_i)
                                         .inout(o_i)
                                         .out_existing(out_tile)
                                         .scalar(static_cast<std::int32_t>(bn == 0))
                                         .scalar(static_cast<std::int32_t>(bn + 1 == blocks)));
              },
              per_iteration);
        },
        per_iteration);
  });
}

}  // namespace tmr::examples::paged_attention
