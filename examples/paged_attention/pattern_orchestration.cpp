#include "paged_attention/pattern_orchestration.hpp"

#include <algorithm>

#include "paged_attention/attention_cases.hpp"
#include "paged_attention/attention_views.hpp"
#include "tmr/task_pattern.hpp"

namespace tmr::examples::paged_attention_pattern {

using namespace paged_attention;

namespace {

// One (request, tile): its accumulators, its full blocks as one pattern loop, and a partial last
// block's four tasks in a scope of their own (its softmax sees only the valid columns).
struct Tile {
  const AttentionViews& v;
  KernelId qk, softmax, pv, update;
  std::uint32_t b;
  std::uint32_t context;
  std::uint32_t blocks;
  std::uint32_t rows;
  Tensor q_tile;
  Tensor out_tile;
};

// The block loop's four tasks for block `bn` written out (the partial last block).
void submit_block(Orchestrator& o, const Tile& t, const Tensor& o_i, const Tensor& l_i,
                  const Tensor& m_i, std::uint32_t bn) {
  const AttentionViews& v = t.v;
  const std::uint32_t dim = v.head_dim;
  const std::uint32_t bs = v.block_size;
  const std::optional<KvBlock> kv = kv_block(o, v, t.b, bn, t.context);
  if (!kv) return;
  const TensorSpec scores(Shape{t.rows, bs}, DType::f32);
  const TensorSpec probs(Shape{t.rows, bs}, DType::bf16);
  const TensorSpec row_values(Shape{t.rows}, DType::f32);
  const TensorSpec tile_values(Shape{t.rows, dim}, DType::f32);
  const TaskOutputs s =
      o.submit_aic(t.qk, Args().in(t.q_tile).in(v.key_cols, {dim, bs}, {0, kv->row}).out(scores));
  if (!s.valid()) return;
  const TaskOutputs sf = o.submit_aiv(t.softmax, Args()
                                                     .in(s[0], {t.rows, kv->valid}, {0, 0})
                                                     .out(probs)
                                                     .out(row_values)
                                                     .out(row_values)
                                                     .scalar(v.scale));
  if (!sf.valid()) return;
  const TaskOutputs o_new = o.submit_aic(
      t.pv, Args().in(sf[0]).in(v.value_rows, {bs, dim}, {kv->row, 0}).out(tile_values));
  if (!o_new.valid()) return;
  o.submit_aiv(t.update, Args()
                             .in(sf[1])
                             .in(sf[2])
                             .in(o_new[0])
                             .inout(m_i)
                             .inout(l_i)
                             .inout(o_i)
                             .out_existing(t.out_tile)
                             .scalar(static_cast<std::int32_t>(bn == 0))
                             .scalar(static_cast<std::int32_t>(bn + 1 == t.blocks)));
}

// The full blocks 0 .. full - 1: K^T and V through the block table (in_indexed), S read as its
// {rows, bs} view, the first and last block flags as scalar_if.
TaskPattern block_pattern(const Tile& t, const Tensor& o_i, const Tensor& l_i, const Tensor& m_i) {
  const AttentionViews& v = t.v;
  const std::uint32_t dim = v.head_dim;
  const std::uint32_t bs = v.block_size;
  const TensorSpec scores(Shape{t.rows, bs}, DType::f32);
  const TensorSpec probs(Shape{t.rows, bs}, DType::bf16);
  const TensorSpec row_values(Shape{t.rows}, DType::f32);
  const TensorSpec tile_values(Shape{t.rows, dim}, DType::f32);
  TaskPattern p({t.qk, kNoKernel, kNoKernel});
  p.in(t.q_tile).in_indexed(v.key_cols, {dim, bs}, {0, 0}, 1, v.block_table, {t.b}, bs).out(scores);
  p.then({kNoKernel, t.softmax, kNoKernel})
      .in_output(0, 0, {t.rows, bs}, {0, 0})
      .out(probs)
      .out(row_values)
      .out(row_values)
      .scalar(v.scale);
  p.then({t.pv, kNoKernel, kNoKernel})
      .in_output(1, 0)
      .in_indexed(v.value_rows, {bs, dim}, {0, 0}, 0, v.block_table, {t.b}, bs)
      .out(tile_values);
  p.then({kNoKernel, t.update, kNoKernel})
      .in_output(1, 1)
      .in_output(1, 2)
      .in_output(2, 0)
      .inout(m_i)
      .inout(l_i)
      .inout(o_i)
      .out_existing(t.out_tile)
      .scalar_if(0, 1, 0)
      .scalar_if(static_cast<std::int64_t>(t.blocks) - 1, 1, 0);
  return p;
}

void run_tile(Orchestrator& o, const Tile& t) {
  const AttentionViews& v = t.v;
  const TensorSpec row_values(Shape{t.rows}, DType::f32);
  const TensorSpec tile_values(Shape{t.rows, v.head_dim}, DType::f32);
  const TaskOutputs acc = o.alloc(Args().out(tile_values).out(row_values).out(row_values));
  if (!acc.valid()) return;
  const Tensor& o_i = acc[0];
  const Tensor& l_i = acc[1];
  const Tensor& m_i = acc[2];
  const std::uint32_t full = t.context / v.block_size;  // blocks with bs valid tokens
  LoopOptions per_iteration;
  per_iteration.scope_per_iteration = true;
  if (full > 0) {
    const TaskPattern pattern = block_pattern(t, o_i, l_i, m_i);
    try {
      o.parallel_for(full, pattern, per_iteration);
    } catch (const Error&) {
      // A block table entry whose K/V view does not fit the cache: the pattern's view names the
      // view; the example names the entry, as paged_attention::orchestrate()'s kv_block does. (Only
      // the bad entry throws, so the first one outside the cache is the one.)
      for (std::uint32_t bn = 0; bn < full; ++bn) {
        if (!kv_block(o, v, t.b, bn, t.context)) return;
      }
      throw;
    }
  }
  if (full < t.blocks) {
    const ScopeGuard scope(o);
    submit_block(o, t, o_i, l_i, m_i, full);
  }
}

}  // namespace

void orchestrate(Orchestrator& o, const OrchestrationArgs& args) {
  const std::optional<AttentionViews> views = attention_views(o, args);
  if (!views) return;
  const AttentionViews& v = *views;
  const KernelId qk = o.kernel("pa_qk");
  const KernelId softmax = o.kernel("pa_softmax_prepare");
  const KernelId pv = o.kernel("pa_pv");
  const KernelId update = o.kernel("pa_online_update");
  LoopOptions per_iteration;
  per_iteration.scope_per_iteration = true;
  // The request and tile loops as paged_attention::orchestrate's: the request loop owns the
  // analysis when the requests repeat one shape, and each tile's block pattern is verified at its
  // first two blocks and trusted from the third (a nested run: docs/design.md, "A compare-free
  // wide submit"); otherwise each pattern loop analyses itself.
  o.parallel_for(v.batch, [&](Orchestrator& o, std::int64_t request) {
    const auto b = static_cast<std::uint32_t>(request);
    const std::optional<std::uint32_t> context = context_length(o, v, b);
    if (!context) return;
    const std::uint32_t blocks = (*context + v.block_size - 1) / v.block_size;
    if (blocks == 0) return;  // an empty request leaves its rows of `out` untouched
    const std::uint32_t tile_rows = head_tile(v.heads);
    const std::uint32_t tiles = (v.heads + tile_rows - 1) / tile_rows;
    o.parallel_for(
        tiles,
        [&](Orchestrator& o, std::int64_t tile_index) {
          const std::uint32_t head = static_cast<std::uint32_t>(tile_index) * tile_rows;
          const std::uint32_t rows = std::min(tile_rows, v.heads - head);
          const Shape tile{rows, v.head_dim};
          const Shape tile_at{b * v.heads + head, 0};
          const Tile t{v,
                       qk,
                       softmax,
                       pv,
                       update,
                       b,
                       *context,
                       blocks,
                       rows,
                       v.query_rows.view(tile, tile_at),
                       v.out_rows.view(tile, tile_at)};
          run_tile(o, t);
        },
        per_iteration);
  });
}

}  // namespace tmr::examples::paged_attention_pattern
