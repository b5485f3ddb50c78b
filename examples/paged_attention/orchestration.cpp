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
          // One block's four tasks: S = Q K^T (K^T the block's columns of key_cols, at the
          // physical block the table names), softmax over S, O_new = P V, the online update.
          const auto block_tasks = [&](TaskPattern& p, std::uint32_t valid) -> TaskPattern& {
            return p.in(q_tile)
                .in_indexed(v.key_cols, {dim, bs}, {0, 0}, 1, v.block_table, {b}, bs)
                .out(scores)
                .then({kNoKernel, softmax, kNoKernel})
                .in_output(0, 0, {rows, valid}, {0, 0})
                .out(probs)
                .out(row_values)
                .out(row_values)
                .scalar(v.scale)
                .then({pv, kNoKernel, kNoKernel})
                .in_output(1, 0)
                .in_indexed(v.value_rows, {bs, dim}, {0, 0}, 0, v.block_table, {b}, bs)
                .out(tile_values)
                .then({kNoKernel, update, kNoKernel})
                .in_output(1, 1)
                .in_output(1, 2)
                .in_output(2, 0)
                .inout(m_i)
                .inout(l_i)
                .inout(o_i)
                .out_existing(out_tile);
          };
          // The full blocks as one pattern loop (no body per block: the runtime builds and
          // submits each block's tasks); a partial last block, which sees fewer valid columns,
          // after it as the same tasks in a scope of its own.
          const std::uint32_t full = *context / bs;
          TaskPattern block({qk, kNoKernel, kNoKernel});
          block_tasks(block, bs).scalar_if(0, 1, 0).scalar_if(std::int64_t{blocks} - 1, 1, 0);
          o.parallel_for(full, block, per_iteration);
          if (full == blocks) return;
          const std::uint32_t valid = *context - full * bs;
          TaskPattern last({qk, kNoKernel, kNoKernel});
          block_tasks(last, valid).scalar_bits(full == 0 ? 1 : 0).scalar_bits(1);
          TMR_SCOPE(o);
          last.submit_iteration(o, full);
        },
        per_iteration);
  });
}

}  // namespace tmr::examples::paged_attention
