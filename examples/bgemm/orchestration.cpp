#include "bgemm/orchestration.hpp"

#include <string>

namespace tmr::examples::bgemm {

void orchestrate(Orchestrator& o, const OrchestrationArgs& args) {
  if (args.tensor_count() != 3 || args.scalar_count() != 1) {
    o.report_fatal(ErrorCode::invalid_args, "bgemm expects tensors a, b, c and a tile size");
    return;
  }
  const Tensor& a = args.tensor(0);
  const Tensor& b = args.tensor(1);
  const Tensor& c = args.tensor(2);
  const auto tile = static_cast<std::uint32_t>(args.scalar<std::int32_t>(0));
  const bool shapes_ok = a.ndims() == 3 && b.ndims() == 3 && c.ndims() == 3 &&
                         b.dim(0) == a.dim(0) && c.dim(0) == a.dim(0) && b.dim(1) == a.dim(2) &&
                         c.dim(1) == a.dim(1) && c.dim(2) == b.dim(2);
  if (!shapes_ok || tile == 0 || a.dim(1) % tile != 0 || a.dim(2) % tile != 0 ||
      b.dim(2) % tile != 0) {
    o.report_fatal(ErrorCode::invalid_args,
                   "bgemm: a " + a.to_string() + ", b " + b.to_string() + ", c " + c.to_string() +
                       " must be [batch,M,K], [batch,K,N], [batch,M,N] with M, N, K multiples of "
                       "the tile size " +
                       std::to_string(tile));
    return;
  }
  const std::uint32_t batch = a.dim(0);
  const std::uint32_t m = a.dim(1);
  const std::uint32_t k = a.dim(2);
  const std::uint32_t n = b.dim(2);
  const Tensor a_rows = a.reshape({batch * m, k});
  const Tensor b_rows = b.reshape({batch * k, n});
  const Tensor c_rows = c.reshape({batch * m, n});
  const std::uint32_t tiles = (m / tile) * (n / tile);
  const KernelId product = o.kernel("bgemm_tile_product");
  const KernelId accumulate = o.kernel("bgemm_tile_accumulate");

  // Batches are independent (one scope each); parallel_for proves it (docs/design.md).
  LoopOptions per_batch;
  per_batch.scope_per_iteration = true;
  o.parallel_for(
      batch,
      [&](Orchestrator& o, std::int64_t batch_index) {
        const auto i = static_cast<std::uint32_t>(batch_index);
        const Tensor c_batch = c_rows.view({m, n}, {i * m, 0});
        for (std::uint32_t step = 0; step < k / tile; ++step) {
          // A's [m, tile] and B's [tile, n] panels of this step, as views given to Args straight.
          const TaskOutputs products =
              o.submit_aic(product, Args()
                                        .in(a_rows, {m, tile}, {i * m, step * tile})
                                        .in(b_rows, {tile, n}, {i * k + step * tile, 0})
                                        .out(TensorSpec({tiles, tile, tile}, DType::f32))
                                        .blocks(tiles));
          if (!products.valid()) return;
          Args sum = Args().in(products[0]);
          // The first k-step overwrites C, so C needs no zeroing; later steps read it back.
          if (step == 0) {
            sum.out_existing(c_batch);
          } else {
            sum.inout(c_batch);
          }
          o.submit_aiv(accumulate, sum.scalar(static_cast<std::int32_t>(step == 0)).blocks(tiles));
        }
      },
      per_batch);
}

}  // namespace tmr::examples::bgemm
