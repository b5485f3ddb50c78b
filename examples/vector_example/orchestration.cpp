#include "vector_example/orchestration.hpp"

#include <algorithm>
#include <string>

namespace tmr::examples::vector_example {

void orchestrate(Orchestrator& o, const OrchestrationArgs& args) {
  if (args.tensor_count() != 3 || args.scalar_count() != 1) {
    o.report_fatal(ErrorCode::invalid_args,
                   "vector_example expects tensors a, b, f and one scalar (tile rows); got " +
                       std::to_string(args.tensor_count()) + " tensors and " +
                       std::to_string(args.scalar_count()) + " scalars");
    return;
  }
  const Tensor& a = args.tensor(0);
  const Tensor& b = args.tensor(1);
  const Tensor& f = args.tensor(2);
  const auto tile_rows = args.scalar<std::int32_t>(0);
  if (tile_rows <= 0) {
    o.report_fatal(ErrorCode::invalid_args,
                   "vector_example: tile rows must be positive, got " + std::to_string(tile_rows));
    return;
  }
  const KernelId add = o.kernel("vec_add");
  const KernelId add_scalar = o.kernel("vec_add_scalar");
  const KernelId mul = o.kernel("vec_mul");
  const std::uint32_t rows = f.dim(0);
  const std::uint32_t cols = f.dim(1);
  // Independent row tiles, each its own scope (its intermediates are released once its last
  // task has run); parallel_for proves the independence (docs/design.md).
  const auto step = static_cast<std::uint32_t>(tile_rows);
  LoopOptions per_tile;
  per_tile.scope_per_iteration = true;
  o.parallel_for((rows + step - 1) / step,
                 [&](Orchestrator& o, std::int64_t tile_index) {
                   const std::uint32_t row = static_cast<std::uint32_t>(tile_index) * step;
                   const std::uint32_t height = std::min<std::uint32_t>(tile_rows, rows - row);
                   const Shape tile{height, cols};
                   const Shape at{row, 0};
                   const TensorSpec scratch(tile, DType::f32);
                   const Tensor sum =
                       o.submit_aiv(add, Args().in(a, tile, at).in(b, tile, at).out(scratch))[0];
                   const Tensor plus_one =
                       o.submit_aiv(add_scalar, Args().in(sum).out(scratch).scalar(1.0f))[0];
                   const Tensor plus_two =
                       o.submit_aiv(add_scalar, Args().in(sum).out(scratch).scalar(2.0f))[0];
                   o.submit_aiv(mul, Args().in(plus_one).in(plus_two).out_existing(f, tile, at));
                 },
                 per_tile);
}

}  // namespace tmr::examples::vector_example
