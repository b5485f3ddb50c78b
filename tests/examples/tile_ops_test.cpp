// The CPU building blocks of the example kernels: matmul (blocked and edge paths) and packing.
#include <gtest/gtest.h>

#include <vector>

#include "common/seeded_random.hpp"
#include "common/tile_ops.hpp"
#include "tmr/error.hpp"

namespace tmr::examples {
namespace {

std::vector<double> naive_product(const std::vector<float>& a, const std::vector<float>& b, int m,
                                  int n, int k) {
  std::vector<double> c(static_cast<std::size_t>(m) * n, 0.0);
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      for (int p = 0; p < k; ++p)
        c[i * n + j] += double{a[i * k + p]} * b[p * n + j];
    }
  }
  return c;
}

TEST(TileOps, MatmulMatchesNaiveProductOnBlockedAndEdgeShapes) {
  SeededRandom random(7);
  for (const auto& [m, n, k] : {std::tuple{16, 128, 128}, std::tuple{5, 19, 7},
                                std::tuple{4, 16, 1}, std::tuple{1, 1, 3}, std::tuple{9, 33, 16}}) {
    const auto a = random.floats(static_cast<std::size_t>(m) * k, -1, 1);
    const auto b = random.floats(static_cast<std::size_t>(k) * n, -1, 1);
    const int ldc = n + 3;  // a wider destination row than the product
    std::vector<float> c(static_cast<std::size_t>(m) * ldc, 99.0f);
    matmul(a.data(), b.data(), c.data(), m, n, k, ldc, false);
    const auto expected = naive_product(a, b, m, n, k);
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < n; ++j) {
        ASSERT_NEAR(c[i * ldc + j], expected[i * n + j], 1e-4) << m << "x" << n << "x" << k;
      }
      for (int j = n; j < ldc; ++j)
        ASSERT_EQ(c[i * ldc + j], 99.0f) << "wrote past the row";
    }
    matmul(a.data(), b.data(), c.data(), m, n, k, ldc, true);  // accumulate: now twice
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < n; ++j)
        ASSERT_NEAR(c[i * ldc + j], 2 * expected[i * n + j], 2e-4);
    }
  }
}

TEST(TileOps, PackReadsRowMajorTransposedAndStridedViews) {
  std::vector<bf16> data(6 * 8);
  for (std::size_t i = 0; i < data.size(); ++i)
    data[i] = bf16(static_cast<float>(i));
  const Tensor whole = Tensor::wrap(data.data(), {6, 8}, DType::bf16);
  std::vector<float> packed(48);

  pack_2d(whole.view({2, 3}, {1, 2}), packed);  // rows contiguous
  EXPECT_EQ(packed[0], 10.0f);
  EXPECT_EQ(packed[5], 20.0f);

  const Tensor transposed = whole.transpose(0, 1);  // [8, 6]; column stride 8, row stride 1
  pack_2d(transposed, packed);
  for (int r = 0; r < 8; ++r) {
    for (int c = 0; c < 6; ++c)
      ASSERT_EQ(packed[r * 6 + c], static_cast<float>(c * 8 + r));
  }

  const Tensor view_of_transposed = transposed.view({3, 2}, {4, 1});
  pack_2d(view_of_transposed, packed);
  EXPECT_EQ(packed[0], 12.0f);  // element (4, 1) of the transpose = (1, 4) of the original
  EXPECT_EQ(packed[1], 20.0f);
  EXPECT_EQ(packed[2], 13.0f);
}

TEST(TileOps, PackRejectsWrongRankAndShortDestination) {
  std::vector<float> data(8);
  std::vector<float> small(3);
  EXPECT_THROW(pack_2d(Tensor::wrap(data.data(), {8}, DType::f32), data), Error);
  EXPECT_THROW(pack_2d(Tensor::wrap(data.data(), {2, 4}, DType::f32), small), Error);
}

}  // namespace
}  // namespace tmr::examples
