#include <algorithm>

#include "batch_paged_attention/batch.hpp"
#include "paged_attention/attention_views.hpp"

namespace tmr::examples::batch_paged_attention {

namespace pa = paged_attention;

void orchestrate(Orchestrator& o, const OrchestrationArgs& args) {
  const std::optional<pa::AttentionViews> views = pa::attention_views(o, args);
  if (!views) return;
  const pa::AttentionViews& v = *views;
  // Every chunk runs up to the longest request's block count; shorter requests get no-op merges.
  std::uint32_t max_blocks = 0;
  for (std::uint32_t b = 0; b < v.batch; ++b) {
    const std::optional<std::uint32_t> context = pa::context_length(o, v, b);
    if (!context) return;
    if (*context == 0) {
      o.report_fatal(ErrorCode::invalid_args,
                     "batch_paged_attention: context_lens[" + std::to_string(b) +
                         "] = 0; every request of a chunk needs at least one token");
      return;
    }
    max_blocks = std::max(max_blocks, (*context + v.block_size - 1) / v.block_size);
  }
  const KernelId qk = o.kernel("bpa_qk");
  const KernelId softmax = o.kernel("bpa_softmax_prepare");
  const KernelId pv = o.kernel("bpa_pv");
  const KernelId update = o.kernel("bpa_online_update");
  const std::uint32_t tile_rows = pa::head_tile(v.heads);
  const auto i32 = [](std::uint32_t x) { return static_cast<std::int32_t>(x); };

  for (std::uint32_t head = 0; head < v.heads; head += tile_rows) {
    const std::uint32_t rows = std::min(tile_rows, v.heads - head);
    for (std::uint32_t batch_start = 0; batch_start < v.batch; batch_start += kChunk) {
      TMR_SCOPE(o);  // one scope per chunk (its accumulators)...
      const std::uint32_t chunk = std::min(kChunk, v.batch - batch_start);
      const std::uint32_t stacked = chunk * rows;
      const TaskOutputs acc = o.alloc(Args()
                                          .out(TensorSpec({stacked, v.head_dim}, DType::f32))
                                          .out(TensorSpec({stacked}, DType::f32))
                                          .out(TensorSpec({stacked}, DType::f32)));
      if (!acc.valid()) return;
      for (std::uint32_t bn = 0; bn < max_blocks; ++bn) {
        TMR_SCOPE(o);  // ...and one per block index (its intermediates)
        const TaskOutputs s =
            o.submit_aic(qk, Args()
                                 .in(v.query_rows)
                                 .in(v.key_rows)
                                 .in(v.block_table)
                                 .out(TensorSpec({stacked, v.block_size}, DType::f32))
                                 .scalar(i32(chunk))
                                 .scalar(i32(bn))
                                 .scalar(i32(batch_start))
                                 .scalar(i32(head))
                                 .scalar(i32(v.heads)));
        if (!s.valid()) return;
        const TaskOutputs sf =
            o.submit_aiv(softmax, Args()
                                      .in(s[0])
                                      .in(v.context_lens)
                                      .out(TensorSpec({stacked, v.block_size}, DType::bf16))
                                      .out(TensorSpec({stacked}, DType::f32))
                                      .out(TensorSpec({stacked}, DType::f32))
                                      .scalar(v.scale)
                                      .scalar(i32(chunk))
                                      .scalar(i32(bn))
                                      .scalar(i32(batch_start)));
        if (!sf.valid()) return;
        const TaskOutputs o_new =
            o.submit_aic(pv, Args()
                                 .in(sf[0])
                                 .in(v.value_rows)
                                 .in(v.block_table)
                                 .out(TensorSpec({stacked, v.head_dim}, DType::f32))
                                 .scalar(i32(chunk))
                                 .scalar(i32(bn))
                                 .scalar(i32(batch_start)));
        if (!o_new.valid()) return;
        o.submit_aiv(update, Args()
                                 .in(sf[1])
                                 .in(sf[2])
                                 .in(o_new[0])
                                 .inout(acc[2])
                                 .inout(acc[1])
                                 .inout(acc[0])
                                 .inout(v.out_rows)
                                 .scalar(static_cast<std::int32_t>(bn == 0))
                                 .scalar(static_cast<std::int32_t>(bn + 1 == max_blocks))
                                 .scalar(i32(chunk))
                                 .scalar(i32(batch_start))
                                 .scalar(i32(head))
                                 .scalar(i32(v.heads)));
      }
    }
  }
}

}  // namespace tmr::examples::batch_paged_attention
