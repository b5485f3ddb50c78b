// Run arguments: host tensors are checked when added and keep their order and direction.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "tmr/runtime.hpp"
#include "unit/expect_error.hpp"

namespace tmr {
namespace {

using test::throws_error;

TEST(RunArgs, AddReturnsIndicesInOrder) {
  std::vector<float> a(40);
  std::vector<float> b(40);
  std::vector<std::int32_t> c(8);
  RunArgs args;
  EXPECT_EQ(args.input(a.data(), Shape{4, 10}, DType::f32), 0);
  EXPECT_EQ(args.output(b.data(), Shape{40}, DType::f32), 1);
  EXPECT_EQ(args.inout(c.data(), Shape{2, 4}, DType::i32), 2);
  args.scalar(2.5f);
  args.scalar(std::int64_t{-1});
  ASSERT_EQ(args.tensors().size(), 3u);
  EXPECT_EQ(args.tensors()[0].host, a.data());
  EXPECT_EQ(args.tensors()[0].shape, (Shape{4, 10}));
  EXPECT_EQ(args.tensors()[0].direction, RunArgs::Direction::in);
  EXPECT_EQ(args.tensors()[1].direction, RunArgs::Direction::out);
  EXPECT_EQ(args.tensors()[2].dtype, DType::i32);
  EXPECT_EQ(args.tensors()[2].direction, RunArgs::Direction::inout);
  ASSERT_EQ(args.scalars().size(), 2u);
  EXPECT_EQ(args.scalars()[0], 0x40200000u);
  EXPECT_EQ(args.scalars()[1], ~std::uint64_t{0});
}

TEST(RunArgs, BadTensorsAreErrors) {
  std::vector<float> a(40);
  RunArgs args;
  EXPECT_TRUE(throws_error([&] { args.input(nullptr, Shape{4}, DType::f32); },
                           ErrorCode::invalid_args,
                           "RunArgs::input #0 (f32[4]) has a null host pointer"));
  EXPECT_TRUE(throws_error([&] { args.output(a.data(), Shape{}, DType::f32); },
                           ErrorCode::invalid_args,
                           "RunArgs::output #0 (f32[]) has no dimensions"));
  EXPECT_TRUE(throws_error(
      [&] {
        args.inout(a.data(), Shape{4, 0}, DType::bf16);
      },
      ErrorCode::invalid_args, "RunArgs::inout #0 (bf16[4, 0]) has dimension 1 of size 0"));
  const std::uint32_t big = 1u << 16;
  EXPECT_TRUE(throws_error(
      [&] {
        args.input(a.data(), Shape{big, big, big, big, big}, DType::u8);
      },
      ErrorCode::invalid_args, "more than 2^62 bytes"));
  EXPECT_TRUE(args.tensors().empty());  // nothing was added
}

}  // namespace
}  // namespace tmr
