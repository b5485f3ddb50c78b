#include "bgemm/kernels.hpp"

#include <string>

#include "common/tile_ops.hpp"
#include "tmr/error.hpp"

namespace tmr::examples::bgemm {

namespace {

struct TileGrid {
  std::uint32_t tile;     // T
  std::uint32_t tiles_n;  // tiles per row of C
  std::uint32_t tile_count;
};

// The grid of output tiles implied by the products tensor and C's width.
TileGrid tile_grid(const Tensor& products, std::uint32_t rows, std::uint32_t cols,
                   std::uint32_t block_count) {
  const std::uint32_t tile = products.dim(1);
  const bool ok = products.ndims() == 3 && products.dim(2) == tile && tile > 0 &&
                  rows % tile == 0 && cols % tile == 0 &&
                  products.dim(0) == (rows / tile) * (cols / tile) &&
                  block_count == products.dim(0) && products.is_contiguous();
  if (!ok) {
    throw Error(ErrorCode::invalid_args,
                "bgemm: products " + products.to_string() + " do not tile a [" +
                    std::to_string(rows) + ", " + std::to_string(cols) + "] output with " +
                    std::to_string(block_count) + " blocks (one block per square tile)");
  }
  return {tile, cols / tile, products.dim(0)};
}

}  // namespace

void tile_product_kernel(const KernelArgs& args) {
  const Tensor& a_panel = args.tensor(0);
  const Tensor& b_panel = args.tensor(1);
  const Tensor& products = args.tensor(2);
  const TileGrid grid = tile_grid(products, a_panel.dim(0), b_panel.dim(1), args.block_count());
  if (a_panel.dim(1) != grid.tile || b_panel.dim(0) != grid.tile) {
    throw Error(ErrorCode::invalid_args, "bgemm: panels " + a_panel.to_string() + " and " +
                                             b_panel.to_string() + " must share depth " +
                                             std::to_string(grid.tile));
  }
  const std::uint32_t block = args.block_index();
  const std::uint32_t t = grid.tile;
  const std::uint32_t tile_row = block / grid.tiles_n;
  const std::uint32_t tile_col = block % grid.tiles_n;
  const std::size_t tile_elements = std::size_t{t} * t;
  const std::span<float> a = scratch_floats(0, tile_elements);
  const std::span<float> b = scratch_floats(1, tile_elements);
  pack_2d(a_panel.view({t, t}, {tile_row * t, 0}), a);
  pack_2d(b_panel.view({t, t}, {0, tile_col * t}), b);
  float* out = products.data_as<float>() + block * tile_elements;
  matmul(a.data(), b.data(), out, static_cast<int>(t), static_cast<int>(t), static_cast<int>(t),
         static_cast<int>(t), false);
}

void tile_accumulate_kernel(const KernelArgs& args) {
  const Tensor& products = args.tensor(0);
  const Tensor& c = args.tensor(1);
  const TileGrid grid = tile_grid(products, c.dim(0), c.dim(1), args.block_count());
  const bool first = args.scalar<std::int32_t>(0) != 0;
  const std::uint32_t block = args.block_index();
  const std::uint32_t t = grid.tile;
  const FloatRows c_rows = float_rows(c, "bgemm C");
  const float* product = products.data_as<float>() + block * std::size_t{t} * t;
  const std::uint32_t row0 = (block / grid.tiles_n) * t;
  const std::uint32_t col0 = (block % grid.tiles_n) * t;
  for (std::uint32_t r = 0; r < t; ++r) {
    float* c_row = c_rows.row(row0 + r) + col0;
    const float* p_row = product + std::size_t{r} * t;
    if (first) {
      for (std::uint32_t q = 0; q < t; ++q)
        c_row[q] = p_row[q];
    } else {
      for (std::uint32_t q = 0; q < t; ++q)
        c_row[q] += p_row[q];
    }
  }
}

namespace {

// Sim cost hints, per block: one T x T x T product (2*T^3 flops), one T x T accumulate.
double product_flops(const KernelArgs& a) {
  const double t = a.tensor(2).dim(1);
  return 2.0 * t * t * t;
}
double accumulate_flops(const KernelArgs& a) {
  const double t = a.tensor(0).dim(1);
  return t * t;
}

}  // namespace

void register_kernels(KernelRegistry& kernels) {
  kernels.set_cost(kernels.add("bgemm_tile_product", CoreType::aic, tile_product_kernel),
                   {0, product_flops});
  kernels.set_cost(kernels.add("bgemm_tile_accumulate", CoreType::aiv, tile_accumulate_kernel),
                   {0, accumulate_flops});
}

}  // namespace tmr::examples::bgemm
