// Shape: construction, limits, element counts and printing.
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <vector>

#include "tmr/shape.hpp"
#include "unit/expect_error.hpp"

namespace tmr {
namespace {

using test::throws_error;

TEST(Shape, ConstructionAndAccess) {
  const Shape shape{4, 10, 3};
  EXPECT_EQ(shape.size(), 3);
  EXPECT_EQ(shape[0], 4u);
  EXPECT_EQ(shape[1], 10u);
  EXPECT_EQ(shape[2], 3u);
  EXPECT_EQ(std::vector<std::uint32_t>(shape.begin(), shape.end()),
            (std::vector<std::uint32_t>{4, 10, 3}));

  const std::array<std::uint32_t, 2> dims{7, 9};
  const Shape from_span{std::span<const std::uint32_t>(dims)};
  EXPECT_EQ(from_span, (Shape{7, 9}));

  Shape mutable_shape{1, 2};
  mutable_shape[1] = 5;
  EXPECT_EQ(mutable_shape, (Shape{1, 5}));
}

TEST(Shape, ElementsIsTheProduct) {
  EXPECT_EQ((Shape{4, 10}).elements(), 40u);
  EXPECT_EQ((Shape{2, 3, 4, 5, 6}).elements(), 720u);
  EXPECT_EQ((Shape{3, 0, 2}).elements(), 0u);
  // Beyond 32 bits: the product is computed in 64 bits.
  EXPECT_EQ((Shape{65536, 65536, 4}).elements(), std::uint64_t{1} << 34);
  // The empty product: a 0-d shape describes one element.
  EXPECT_EQ(Shape().elements(), 1u);
}

TEST(Shape, ToString) {
  EXPECT_EQ((Shape{4, 10}).to_string(), "[4, 10]");
  EXPECT_EQ((Shape{7}).to_string(), "[7]");
  EXPECT_EQ(Shape().to_string(), "[]");
}

TEST(Shape, Equality) {
  EXPECT_EQ((Shape{4, 10}), (Shape{4, 10}));
  EXPECT_NE((Shape{4, 10}), (Shape{10, 4}));
  EXPECT_NE((Shape{4, 10}), (Shape{4, 10, 1}));
  EXPECT_EQ(Shape(), Shape{});
}

TEST(Shape, PushBackUpToTheLimit) {
  Shape shape;
  for (int d = 0; d < kMaxDims; ++d)
    shape.push_back(static_cast<std::uint32_t>(d + 1));
  EXPECT_EQ(shape.size(), kMaxDims);
  EXPECT_EQ(shape, (Shape{1, 2, 3, 4, 5}));
  EXPECT_TRUE(throws_error([&] { shape.push_back(6); }, ErrorCode::invalid_args, "at most 5"));
  EXPECT_EQ(shape.size(), kMaxDims);  // unchanged by the failed push
}

TEST(Shape, TooManyDimensionsIsAnError) {
  EXPECT_TRUE(throws_error([] { Shape shape{1, 2, 3, 4, 5, 6}; }, ErrorCode::invalid_args,
                           "shape has 6 dimensions but tmr supports at most 5"));
  const std::array<std::uint32_t, 7> dims{1, 1, 1, 1, 1, 1, 1};
  EXPECT_TRUE(throws_error([&] { Shape shape{std::span<const std::uint32_t>(dims)}; },
                           ErrorCode::invalid_args, "merge adjacent dimensions"));
}

}  // namespace
}  // namespace tmr
