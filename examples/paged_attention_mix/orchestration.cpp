#include "paged_attention_mix/orchestration.hpp"

#include <algorithm>

#include "common/cluster_pipe.hpp"
#include "paged_attention/attention_cases.hpp"
#include "paged_attention/attention_views.hpp"

namespace tmr::examples::paged_attention_mix {

namespace pa = paged_attention;

void orchestrate(Orchestrator& o, const OrchestrationArgs& args) {
  const std::optional<pa::AttentionViews> views = pa::attention_views(o, args);
  if (!views) return;
  const pa::AttentionViews& v = *views;
  const KernelId cube = o.kernel("pam_cube");
  const KernelId vector = o.kernel("pam_vector");
  const MixKernels fused{cube, vector, vector};

  LoopOptions per_iteration;
  per_iteration.scope_per_iteration = true;
  // Independent requests and head tiles, each tile a chain over the KV blocks: parallel_for
  // analyses all three (docs/design.md); the request loop owns the analysis when the requests
  // repeat one shape, else each request's loops analyse themselves. One scope per tile; a block
  // submits no fresh outputs, so needs none.
  o.parallel_for(v.batch, [&](Orchestrator& o, std::int64_t request) {
    const auto b = static_cast<std::uint32_t>(request);
    const std::optional<std::uint32_t> context = pa::context_length(o, v, b);
    if (!context) return;
    const std::uint32_t blocks = (*context + v.block_size - 1) / v.block_size;
    if (blocks == 0) return;
    const std::uint32_t tile_rows = pa::head_tile(v.heads);
    o.parallel_for((v.heads + tile_rows - 1) / tile_rows,
                   [&](Orchestrator& o, std::int64_t tile_index) {
                     const std::uint32_t head = static_cast<std::uint32_t>(tile_index) * tile_rows;
                     const std::uint32_t rows = std::min(tile_rows, v.heads - head);
                     const Shape tile{rows, v.head_dim};
                     const Shape tile_at{b * v.heads + head, 0};
                     const TaskOutputs acc = o.alloc(Args()
                                                         .out(TensorSpec(tile, DType::f32))
                                                         .out(TensorSpec({rows}, DType::f32))
                                                         .out(TensorSpec({rows}, DType::f32)));
                     if (!acc.valid()) return;
                     o.parallel_for(blocks, [&](Orchestrator& o, std::int64_t block) {
                       const auto bn = static_cast<std::uint32_t>(block);
                       const std::optional<pa::KvBlock> kv = pa::kv_block(o, v, b, bn, *context);
                       if (!kv) return;
                       o.submit(fused,
                                Args()
                                    .in(v.query_rows, tile, tile_at)
                                    .in(v.key_cols, {v.head_dim, v.block_size}, {0, kv->row})
                                    .in(v.value_rows, {v.block_size, v.head_dim}, {kv->row, 0})
                                    .inout(acc[2])
                                    .inout(acc[1])
                                    .inout(acc[0])
                                    .out_existing(v.out_rows, tile, tile_at)
                                    .scalar(v.scale)
                                    .scalar(static_cast<std::int32_t>(kv->valid))
                                    .scalar(static_cast<std::int32_t>(bn == 0))
                                    .scalar(static_cast<std::int32_t>(bn + 1 == blocks))
                                    .scalar(next_pipe_tag()));
                     });
                   },
                   per_iteration);
  });
}

}  // namespace tmr::examples::paged_attention_mix
