// Shape: construction, limits, element counts and printing.
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <ranges>
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

TEST(Shape, FromAnyRangeOfIntegers) {
  const std::vector<std::int64_t> wide{2, 3, 4};
  EXPECT_EQ(Shape(wide), (Shape{2, 3, 4}));
  const std::vector<int> narrow{7};
  EXPECT_EQ(Shape(narrow), Shape{7});
  EXPECT_EQ(Shape(std::views::iota(1, 4)), (Shape{1, 2, 3}));
  const std::array<std::size_t, 2> sizes{5, 6};
  EXPECT_EQ(Shape(sizes), (Shape{5, 6}));
}

TEST(Shape, FromRangeRejectsValuesOutsideUnsigned32) {
  EXPECT_TRUE(throws_error(
      [] {
        Shape shape(std::vector<int>{4, -1});
      },
      ErrorCode::invalid_args, "shape value -1 at position 1 is outside [0, 2^32)"));
  EXPECT_TRUE(throws_error([] { Shape shape(std::vector<std::uint64_t>{1ull << 32}); },
                           ErrorCode::invalid_args, "shape value 4294967296 at position 0"));
  EXPECT_TRUE(throws_error([] { Shape shape(std::vector<int>(6, 1)); }, ErrorCode::invalid_args,
                           "at most 5"));
}

}  // namespace
}  // namespace tmr
