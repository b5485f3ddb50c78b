// The kernels of vector_example, bgemm and scalar_data called directly, against small goldens.
#include <gtest/gtest.h>

#include <numeric>

#include "bgemm/kernels.hpp"
#include "common/seeded_random.hpp"
#include "scalar_data/kernels.hpp"
#include "test_support.hpp"
#include "tmr/error.hpp"
#include "vector_example/kernels.hpp"

namespace tmr::examples {
namespace {

using testing::DirectCall;

TEST(VectorKernels, AddAddScalarAndMulComputeTheFormulaOnAStridedTile) {
  SeededRandom random(5);
  std::vector<float> a = random.floats(4 * 8, -1, 1);
  std::vector<float> b = random.floats(4 * 8, -1, 1);
  std::vector<float> sum(2 * 8), plus_one(2 * 8), plus_two(2 * 8), f(4 * 8, 0.0f);
  const Shape tile{2, 8};
  const Shape at{1, 0};  // rows 1 and 2 of the [4, 8] inputs
  const Tensor t_sum = Tensor::wrap(sum.data(), tile, DType::f32);
  const Tensor t_one = Tensor::wrap(plus_one.data(), tile, DType::f32);
  const Tensor t_two = Tensor::wrap(plus_two.data(), tile, DType::f32);
  vector_example::add_kernel(DirectCall{
      {Tensor::wrap(a.data(), {4, 8}, DType::f32).view(tile, at),
       Tensor::wrap(b.data(), {4, 8}, DType::f32).view(tile, at), t_sum},
      {}}.args());
  vector_example::add_scalar_kernel(DirectCall{{t_sum, t_one}, {}}.scalar(1.0f).args());
  vector_example::add_scalar_kernel(DirectCall{{t_sum, t_two}, {}}.scalar(2.0f).args());
  vector_example::mul_kernel(DirectCall{
      {t_one, t_two, Tensor::wrap(f.data(), {4, 8}, DType::f32).view(tile, at)},
      {}}.args());
  for (int i = 0; i < 32; ++i) {
    const bool in_tile = i >= 8 && i < 24;
    const double s = double{a[i]} + b[i];
    EXPECT_NEAR(f[i], in_tile ? (s + 1) * (s + 2) : 0.0, 1e-5) << i;
  }
}

TEST(VectorKernels, RejectMismatchedShapes) {
  std::vector<float> x(8), y(4);
  EXPECT_THROW(
      vector_example::add_scalar_kernel(DirectCall{
          {Tensor::wrap(x.data(), {2, 4}, DType::f32), Tensor::wrap(y.data(), {1, 4}, DType::f32)},
          {}}.scalar(1.0f)
                                            .args()),
      Error);
}

TEST(BgemmKernels, SpmdBlocksComputeEveryTileAndAccumulateOverKSteps) {
  constexpr std::uint32_t kM = 8, kN = 12, kK = 8, kTile = 4;
  constexpr std::uint32_t kTiles = (kM / kTile) * (kN / kTile);
  SeededRandom random(11);
  const std::vector<float> a = random.floats(kM * kK, -1, 1);
  const std::vector<float> b = random.floats(kK * kN, -1, 1);
  std::vector<float> c(kM * kN, 123.0f), products(kTiles * kTile * kTile);
  const Tensor t_a = Tensor::wrap(a.data(), {kM, kK}, DType::f32);
  const Tensor t_b = Tensor::wrap(b.data(), {kK, kN}, DType::f32);
  const Tensor t_c = Tensor::wrap(c.data(), {kM, kN}, DType::f32);
  const Tensor t_products = Tensor::wrap(products.data(), {kTiles, kTile, kTile}, DType::f32);
  for (std::uint32_t step = 0; step < kK / kTile; ++step) {
    const DirectCall product{{t_a.view({kM, kTile}, {0, step * kTile}),
                              t_b.view({kTile, kN}, {step * kTile, 0}), t_products},
                             {}};
    DirectCall accumulate{{t_products, t_c}, {}};
    accumulate.scalar<std::int32_t>(step == 0);
    for (std::uint32_t block = 0; block < kTiles; ++block)
      bgemm::tile_product_kernel(product.args(block, kTiles));
    for (std::uint32_t block = 0; block < kTiles; ++block) {
      bgemm::tile_accumulate_kernel(accumulate.args(block, kTiles));
    }
  }
  for (std::uint32_t i = 0; i < kM; ++i) {
    for (std::uint32_t j = 0; j < kN; ++j) {
      double expected = 0;
      for (std::uint32_t p = 0; p < kK; ++p)
        expected += double{a[i * kK + p]} * b[p * kN + j];
      EXPECT_NEAR(c[i * kN + j], expected, 1e-5) << i << "," << j;
    }
  }
}

TEST(BgemmKernels, RejectABlockCountThatDoesNotMatchTheTiles) {
  std::vector<float> a(16), b(16), products(16);
  const DirectCall call{
      {Tensor::wrap(a.data(), {4, 4}, DType::f32), Tensor::wrap(b.data(), {4, 4}, DType::f32),
       Tensor::wrap(products.data(), {1, 4, 4}, DType::f32)},
      {}};
  EXPECT_THROW(bgemm::tile_product_kernel(call.args(0, 2)), Error);
}

TEST(ScalarDataKernels, SelectCountsAndCompactsThenSquareReduceFinalize) {
  const std::vector<float> values = {0.9f, -0.2f, 0.7f, 0.1f, 0.6f};
  std::int32_t count = -1;
  std::vector<float> selected(values.size(), 5.0f);
  scalar_data::select_above_kernel(DirectCall{
      {Tensor::wrap(values.data(), {5}, DType::f32), Tensor::wrap(&count, {1}, DType::i32),
       Tensor::wrap(selected.data(), {5}, DType::f32)},
      {}}.scalar(0.5f)
                                       .args());
  ASSERT_EQ(count, 3);
  EXPECT_EQ(selected, (std::vector<float>{0.9f, 0.7f, 0.6f, 0.0f, 0.0f}));

  float squared = 0;
  scalar_data::square_kernel(DirectCall{
      {Tensor::wrap(&selected[1], {1}, DType::f32), Tensor::wrap(&squared, {1}, DType::f32)},
      {}}.args());
  EXPECT_FLOAT_EQ(squared, 0.7f * 0.7f);

  std::vector<float> summary = {3.0f, 1.0f, 0.0f, 7.0f};
  const Tensor t_summary = Tensor::wrap(summary.data(), {4}, DType::f32);
  scalar_data::reduce_kernel(
      DirectCall{{Tensor::wrap(selected.data(), {5}, DType::f32), t_summary}, {}}.args());
  EXPECT_FLOAT_EQ(summary[1], 1.0f + 0.9f + 0.7f + 0.6f);
  scalar_data::finalize_kernel(DirectCall{{t_summary}, {}}.args());
  EXPECT_FLOAT_EQ(summary[2], 3.0f * summary[1]);
  EXPECT_FLOAT_EQ(summary[3], 8.0f);
}

}  // namespace
}  // namespace tmr::examples
