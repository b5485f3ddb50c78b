#include <algorithm>

#include "paged_attention/attention_views.hpp"
#include "paged_attention_unroll/unroll.hpp"

namespace tmr::examples::paged_attention_unroll {

namespace pa = paged_attention;

void orchestrate(Orchestrator& o, const OrchestrationArgs& args) {
  const std::optional<pa::AttentionViews> views = pa::attention_views(o, args);
  if (!views) return;
  const pa::AttentionViews& v = *views;
  const KernelId qk = o.kernel("pau_qk");
  const KernelId softmax = o.kernel("pau_softmax_prepare");
  const KernelId pv = o.kernel("pau_pv");
  const KernelId update = o.kernel("pau_online_update");
  const std::uint32_t tile_rows = pa::head_tile(v.heads);

  for (std::uint32_t b = 0; b < v.batch; ++b) {
    const std::optional<std::uint32_t> context = pa::context_length(o, v, b);
    if (!context) return;
    const std::uint32_t blocks = (*context + v.block_size - 1) / v.block_size;
    if (blocks == 0) continue;  // an empty request leaves its rows of `out` untouched
    for (std::uint32_t head = 0; head < v.heads; head += tile_rows) {
      TMR_SCOPE(o);  // as the reference: one scope per (request, head tile)
      const std::uint32_t rows = std::min(tile_rows, v.heads - head);
      const Shape tile{rows, v.head_dim};
      const Shape tile_at{b * v.heads + head, 0};
      const Tensor q_tile = v.query_rows.view(tile, tile_at);
      const Tensor out_tile = v.out_rows.view(tile, tile_at);
      const TaskOutputs acc = o.alloc(Args()
                                          .out(TensorSpec(tile, DType::f32))
                                          .out(TensorSpec({rows}, DType::f32))
                                          .out(TensorSpec({rows}, DType::f32)));
      if (!acc.valid()) return;
      for (std::uint32_t bn = 0; bn < blocks; bn += kUnroll) {
        const std::uint32_t n = std::min(kUnroll, blocks - bn);
        const std::uint32_t valid_last =
            std::min(v.block_size, *context - (bn + n - 1) * v.block_size);
        const auto first = static_cast<std::int64_t>(b) * v.blocks_per_request + bn;
        const std::uint32_t width = n * v.block_size;
        const TaskOutputs s = o.submit_aic(qk, Args()
                                                   .in(q_tile)
                                                   .in(v.key_rows)
                                                   .in(v.block_table)
                                                   .out(TensorSpec({rows, width}, DType::f32))
                                                   .scalar(static_cast<std::int32_t>(n))
                                                   .scalar(first));
        if (!s.valid()) return;
        const TaskOutputs sf =
            o.submit_aiv(softmax, Args()
                                      .in(s[0])
                                      .out(TensorSpec({rows, width}, DType::bf16))
                                      .out(TensorSpec({rows}, DType::f32))
                                      .out(TensorSpec({rows}, DType::f32))
                                      .scalar(v.scale)
                                      .scalar(static_cast<std::int32_t>(n))
                                      .scalar(static_cast<std::int32_t>(valid_last)));
        if (!sf.valid()) return;
        const TaskOutputs o_new = o.submit_aic(pv, Args()
                                                       .in(sf[0])
                                                       .in(v.value_rows)
                                                       .in(v.block_table)
                                                       .out(TensorSpec(tile, DType::f32))
                                                       .scalar(static_cast<std::int32_t>(n))
                                                       .scalar(first));
        if (!o_new.valid()) return;
        o.submit_aiv(update, Args()
                                 .in(sf[1])
                                 .in(sf[2])
                                 .in(o_new[0])
                                 .inout(acc[2])
                                 .inout(acc[1])
                                 .inout(acc[0])
                                 .out_existing(out_tile)
                                 .scalar(static_cast<std::int32_t>(bn == 0))
                                 .scalar(static_cast<std::int32_t>(bn + n >= blocks)));
      }
    }
  }
}

}  // namespace tmr::examples::paged_attention_unroll
