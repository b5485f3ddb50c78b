// Tensor descriptors: layout arithmetic of views, reshapes and transposes checked against
// hand-computed flat indices, and every misuse reported as Error(invalid_args).
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "tmr/error.hpp"
#include "tmr/tensor.hpp"
#include "unit/expect_error.hpp"
#include "unit/same_tensor.hpp"

namespace tmr {
namespace {

using test::throws_error;

std::string hex(const void* pointer) {
  std::ostringstream text;
  text << "0x" << std::hex << reinterpret_cast<std::uintptr_t>(pointer);
  return text.str();
}

// A row-major f32 matrix [4, 10] over a buffer whose element i sits at buffer[i].
class Matrix : public ::testing::Test {
 protected:
  std::vector<float> buffer = std::vector<float>(40);
  Tensor t = Tensor::wrap(buffer.data(), Shape{4, 10}, DType::f32);
  const float* at(std::size_t flat) const { return buffer.data() + flat; }
};

TEST_F(Matrix, WrapDescribesTheWholeBuffer) {
  EXPECT_TRUE(t.valid());
  EXPECT_TRUE(static_cast<bool>(t));
  EXPECT_EQ(t.dtype(), DType::f32);
  EXPECT_EQ(t.element_size(), 4u);
  EXPECT_EQ(t.ndims(), 2);
  EXPECT_EQ(t.shape(), (Shape{4, 10}));
  EXPECT_EQ(t.dim(0), 4u);
  EXPECT_EQ(t.dim(1), 10u);
  EXPECT_EQ(t.stride(0), 10);
  EXPECT_EQ(t.stride(1), 1);
  EXPECT_EQ(t.raw_stride(0), 10);
  EXPECT_EQ(t.raw_stride(1), 1);
  EXPECT_EQ(t.elements(), 40u);
  EXPECT_EQ(t.buffer(), buffer.data());
  EXPECT_EQ(t.buffer_bytes(), 160u);
  EXPECT_EQ(t.layout_offset(), 0u);
  EXPECT_EQ(t.raw_dim(0), 4u);
  EXPECT_EQ(t.raw_dim(1), 10u);
  EXPECT_EQ(t.box_offset(0), 0u);
  EXPECT_EQ(t.box_offset(1), 0u);
  EXPECT_EQ(t.box_extent(0), 4u);
  EXPECT_EQ(t.box_extent(1), 10u);
  EXPECT_EQ(t.perm(0), 0);
  EXPECT_EQ(t.perm(1), 1);
  EXPECT_EQ(t.first_element(), 0u);
  EXPECT_EQ(t.end_element(), 40u);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.version(), 0u);
  EXPECT_FALSE(t.producer().valid());
  EXPECT_EQ(t.data(), buffer.data());
  EXPECT_EQ(t.data_as<float>(), buffer.data());
  EXPECT_EQ(t.element_address(Shape{2, 7}), at(27));
  EXPECT_EQ(t.element_address(Shape{3, 9}), at(39));
}

// wrap writes each field once (no zero fill first): for every rank, the descriptor must match
// the one reshape builds field by field from a flat wrap of the same memory.
TEST(Tensor, WrapOfEveryRankMatchesAReshapedFlatWrap) {
  std::vector<std::uint8_t> bytes(720);
  const Shape shapes[] = {Shape{720}, Shape{24, 30}, Shape{4, 6, 30}, Shape{4, 6, 5, 6},
                          Shape{2, 2, 6, 5, 6}};
  const Tensor flat = Tensor::wrap(bytes.data(), Shape{720}, DType::u8);
  for (const Shape& shape : shapes) {
    const Tensor t = Tensor::wrap(bytes.data(), shape, DType::u8, 3);
    const Tensor reshaped = flat.reshape(shape).with_version(3);
    EXPECT_EQ(t.ndims(), shape.size());
    EXPECT_EQ(t.shape(), shape);
    EXPECT_EQ(t.buffer_bytes(), 720u);
    EXPECT_EQ(t.layout_offset(), 0u);
    EXPECT_EQ(t.version(), 3u);
    EXPECT_FALSE(t.producer().valid());
    for (int r = 0; r < shape.size(); ++r) {
      EXPECT_EQ(t.raw_dim(r), shape[r]) << shape.to_string() << " " << r;
      EXPECT_EQ(t.box_offset(r), 0u) << shape.to_string() << " " << r;
      EXPECT_EQ(t.box_extent(r), shape[r]) << shape.to_string() << " " << r;
      EXPECT_EQ(t.perm(r), r) << shape.to_string() << " " << r;
    }
    EXPECT_TRUE(t.same_layout(reshaped)) << shape.to_string();
    EXPECT_EQ(t.to_string(), reshaped.to_string());
    EXPECT_EQ(t.end_element(), 720u);
    EXPECT_TRUE(t.is_contiguous());
  }
}

TEST_F(Matrix, WrapOfConstMemoryAndVersion) {
  const float* constant = buffer.data();
  const Tensor c = Tensor::wrap(constant, Shape{40}, DType::f32, 3);
  EXPECT_EQ(c.buffer(), buffer.data());
  EXPECT_EQ(c.version(), 3u);
}

TEST_F(Matrix, ViewOffsetsAndBounds) {
  const Tensor v = t.view(Shape{2, 5}, Shape{1, 3});
  EXPECT_EQ(v.shape(), (Shape{2, 5}));
  EXPECT_EQ(v.stride(0), 10);
  EXPECT_EQ(v.stride(1), 1);
  EXPECT_EQ(v.box_offset(0), 1u);
  EXPECT_EQ(v.box_offset(1), 3u);
  EXPECT_EQ(v.box_extent(0), 2u);
  EXPECT_EQ(v.box_extent(1), 5u);
  EXPECT_EQ(v.raw_dim(1), 10u);  // the raw layout is the buffer's
  EXPECT_EQ(v.elements(), 10u);
  EXPECT_EQ(v.first_element(), 13u);
  EXPECT_EQ(v.end_element(), 28u);  // last element (2, 7) is flat 27
  EXPECT_EQ(v.data(), at(13));
  EXPECT_EQ(v.element_address(Shape{0, 0}), at(13));
  EXPECT_EQ(v.element_address(Shape{1, 4}), at(27));
  EXPECT_FALSE(v.is_contiguous());
  EXPECT_TRUE(v.same_layout(t));
  EXPECT_EQ(v.buffer_bytes(), 160u);
}

TEST_F(Matrix, ViewOfAViewIsRelativeToIt) {
  const Tensor v = t.view(Shape{2, 5}, Shape{1, 3});
  const Tensor w = v.view(Shape{1, 2}, Shape{1, 1});
  EXPECT_EQ(w.box_offset(0), 2u);
  EXPECT_EQ(w.box_offset(1), 4u);
  EXPECT_EQ(w.first_element(), 24u);
  EXPECT_EQ(w.end_element(), 26u);
  EXPECT_EQ(w.element_address(Shape{0, 1}), at(25));
  EXPECT_TRUE(w.is_contiguous());  // a single row segment
  // Bounds are this view's dims, not the buffer's: column 3 + 3 > 5 although 3 + 3 + 3 <= 10.
  EXPECT_TRUE(throws_error(
      [&] {
        (void)v.view(Shape{2, 3}, Shape{0, 3});
      },
      ErrorCode::invalid_args,
      "view offset 3 + extent 3 exceeds dimension 1 of size 5 (shape [2, 5]); "
      "shrink the view or its offset"));
}

TEST_F(Matrix, ViewWithoutOffsetsStartsAtZero) {
  const Tensor v = t.view(Shape{2, 10}, Shape{});
  EXPECT_EQ(v.first_element(), 0u);
  EXPECT_EQ(v.end_element(), 20u);
  EXPECT_TRUE(v.is_contiguous());
  const Tensor rows = t.view(Shape{2, 10}, Shape{1, 0});
  EXPECT_EQ(rows.first_element(), 10u);
  EXPECT_EQ(rows.end_element(), 30u);
  EXPECT_TRUE(rows.is_contiguous());  // whole rows are adjacent
}

TEST_F(Matrix, BadViewsAreErrors) {
  EXPECT_TRUE(throws_error([&] { (void)t.view(Shape{4}, Shape{}); }, ErrorCode::invalid_args,
                           "give one extent per dimension"));
  EXPECT_TRUE(throws_error(
      [&] {
        (void)t.view(Shape{2, 2}, Shape{1});
      },
      ErrorCode::invalid_args, "give one offset per dimension"));
  EXPECT_TRUE(throws_error(
      [&] {
        (void)t.view(Shape{0, 2}, Shape{});
      },
      ErrorCode::invalid_args, "view extent 0 in dimension 0"));
  EXPECT_TRUE(throws_error(
      [&] {
        (void)t.view(Shape{1, 11}, Shape{});
      },
      ErrorCode::invalid_args, "view offset 0 + extent 11 exceeds dimension 1 of size 10"));
  EXPECT_TRUE(throws_error(
      [&] {
        (void)t.view(Shape{2, 1}, Shape{3, 0});
      },
      ErrorCode::invalid_args, "view offset 3 + extent 2 exceeds dimension 0"));
  // The sum is checked in 64 bits, so a huge offset cannot wrap around into range.
  EXPECT_TRUE(throws_error(
      [&] {
        (void)t.view(Shape{1, 1}, Shape{0xFFFFFFFFu, 0});
      },
      ErrorCode::invalid_args, "exceeds dimension 0"));
}

// view(shape, offsets) with braced lists, checked field by field against the Shape form and
// element by element against the source (the view's element idx is the source's idx + offsets).
void expect_list_view(const Tensor& source, std::initializer_list<std::uint32_t> shape,
                      std::initializer_list<std::uint32_t> offsets) {
  const Tensor listed = source.view(shape, offsets);  // the initializer_list overload
  const Tensor shaped = source.view(Shape(shape), Shape(offsets));
  EXPECT_TRUE(test::same_tensor(listed, shaped));
  ASSERT_EQ(listed.shape(), Shape(shape));
  Shape at = Shape(offsets);
  while (at.size() < listed.ndims())
    at.push_back(0);
  for (std::uint64_t flat = 0; flat < listed.elements(); ++flat) {
    Shape index = at;
    Shape inner = at;
    std::uint64_t rest = flat;
    for (int d = listed.ndims() - 1; d >= 0; --d) {
      inner[d] = static_cast<std::uint32_t>(rest % listed.dim(d));
      index[d] = at[d] + inner[d];
      rest /= listed.dim(d);
    }
    ASSERT_EQ(listed.element_address(inner), source.element_address(index))
        << source.to_string() << " element " << index.to_string();
  }
}

TEST_F(Matrix, ListViewsMatchShapeViewsAndTheSourceElements) {
  std::vector<float> cube_buffer(2 * 3 * 4);
  const Tensor cube =  // logical [4, 3, 2] over raw [2, 3, 4], version 7
      Tensor::wrap(cube_buffer.data(), Shape{2, 3, 4}, DType::f32, 7).transpose(0, 2);
  const Tensor inner = t.view(Shape{3, 8}, Shape{1, 2});
  const Tensor shifted = t.reshape(Shape{40}).view(Shape{30}, Shape{10}).reshape(Shape{3, 10});
  ASSERT_EQ(shifted.layout_offset(), 10u);
  std::vector<float> owned(40);
  const Tensor created =
      Tensor::make_owned(owned.data(), sizeof(float) * 40, Shape{4, 10}, DType::f32, TaskId(2, 9));
  for (const Tensor& source : {t, created, t.transpose(0, 1).transpose(0, 1)}) {
    expect_list_view(source, {1, 10}, {3, 0});
    expect_list_view(source, {4, 10}, {});     // the whole tensor, no offsets
    expect_list_view(source, {2, 3}, {2, 7});  // ends at the last row and column
  }
  expect_list_view(t.transpose(0, 1), {10, 1}, {0, 3});
  expect_list_view(t.transpose(0, 1), {2, 4}, {8, 0});
  expect_list_view(inner, {2, 3}, {1, 5});  // offsets add to the source's box
  expect_list_view(inner.transpose(0, 1), {3, 1}, {5, 2});
  expect_list_view(shifted, {1, 10}, {2, 0});
  expect_list_view(cube, {2, 1, 2}, {1, 2, 0});
  expect_list_view(cube, {4, 3, 2}, {});
  expect_list_view(t.reshape(Shape{40}), {5}, {35});
  EXPECT_EQ(created.view({1, 10}, {3, 0}).producer(), TaskId(2, 9));
  EXPECT_EQ(cube.view({1, 1, 1}, {3, 2, 1}).version(), 7u);
  EXPECT_FALSE(Tensor().view({1, 2}, {0, 0}).valid());  // a null tensor's views are null
}

TEST_F(Matrix, ListViewErrorsAreTheShapeViewErrors) {
  const auto message = [](auto&& call) -> std::string {
    try {
      call();
    } catch (const Error& e) {
      return e.code() == ErrorCode::invalid_args ? e.what() : "another code";
    }
    return "no error";
  };
  const auto expect_same_error = [&](const Tensor& source,
                                     std::initializer_list<std::uint32_t> shape,
                                     std::initializer_list<std::uint32_t> offsets) {
    const std::string listed = message([&] { (void)source.view(shape, offsets); });
    const std::string shaped = message([&] { (void)source.view(Shape(shape), Shape(offsets)); });
    EXPECT_NE(listed, "no error") << Shape(shape).to_string();
    EXPECT_EQ(listed, shaped);
  };
  expect_same_error(t, {4}, {});
  expect_same_error(t, {2, 2}, {1});
  expect_same_error(t, {2, 2}, {1, 1, 1});
  expect_same_error(t, {0, 2}, {});
  expect_same_error(t, {2, 0}, {1, 1});
  expect_same_error(t, {1, 11}, {});
  expect_same_error(t, {2, 1}, {3, 0});
  expect_same_error(t, {1, 1}, {4, 0});  // one past the last row
  expect_same_error(t, {1, 1}, {0xFFFFFFFFu, 0});
  expect_same_error(t, {1, 0xFFFFFFFFu}, {0, 1});
  expect_same_error(t.transpose(0, 1), {11, 1}, {});
  expect_same_error(t.view({2, 5}, {1, 5}), {2, 5}, {0, 1});
  // More entries than a Shape holds: the Shape constructor's message, also for a null tensor.
  expect_same_error(t, {1, 1, 1, 1, 1, 1}, {});
  expect_same_error(Tensor(), {1, 1, 1, 1, 1, 1}, {});
  expect_same_error(Tensor(), {1, 1}, {0, 0, 0, 0, 0, 0});
  EXPECT_TRUE(throws_error(
      [&] {
        (void)t.view({3, 10}, {2, 0});
      },
      ErrorCode::invalid_args, "view offset 2 + extent 3 exceeds dimension 0 of size 4"));
}

TEST_F(Matrix, TransposeIsAStridedView) {
  const Tensor tt = t.transpose(0, 1);
  EXPECT_EQ(tt.shape(), (Shape{10, 4}));
  EXPECT_EQ(tt.stride(0), 1);
  EXPECT_EQ(tt.stride(1), 10);
  EXPECT_EQ(tt.perm(0), 1);
  EXPECT_EQ(tt.perm(1), 0);
  EXPECT_EQ(tt.element_address(Shape{7, 2}), at(27));
  EXPECT_EQ(tt.first_element(), 0u);
  EXPECT_EQ(tt.end_element(), 40u);
  EXPECT_FALSE(tt.is_contiguous());
  EXPECT_TRUE(tt.same_layout(t));
  const Tensor back = tt.transpose(1, 0);
  EXPECT_EQ(back.shape(), t.shape());
  EXPECT_TRUE(back.is_contiguous());
  EXPECT_EQ(t.transpose(1, 1).shape(), t.shape());
}

TEST_F(Matrix, ViewOfATransposeUsesLogicalDims) {
  const Tensor w = t.transpose(0, 1).view(Shape{3, 2}, Shape{5, 1});
  EXPECT_EQ(w.shape(), (Shape{3, 2}));
  EXPECT_EQ(w.box_offset(0), 1u);  // raw row = logical dim 1
  EXPECT_EQ(w.box_offset(1), 5u);  // raw column = logical dim 0
  EXPECT_EQ(w.box_extent(0), 2u);
  EXPECT_EQ(w.box_extent(1), 3u);
  EXPECT_EQ(w.first_element(), 15u);
  EXPECT_EQ(w.end_element(), 28u);  // last element: row 2, column 7
  EXPECT_EQ(w.element_address(Shape{2, 1}), at(27));
  EXPECT_EQ(w.element_address(Shape{1, 0}), at(16));
}

TEST_F(Matrix, BadTransposeIsAnError) {
  EXPECT_TRUE(throws_error([&] { (void)t.transpose(0, 2); }, ErrorCode::invalid_args,
                           "dimension 2 does not exist in a tensor with 2 dimensions"));
  EXPECT_TRUE(throws_error([&] { (void)t.transpose(-1, 0); }, ErrorCode::invalid_args,
                           "use dimensions 0 to 1"));
}

TEST_F(Matrix, ReshapeOfTheWholeTensor) {
  const Tensor r = t.reshape(Shape{2, 20});
  EXPECT_EQ(r.shape(), (Shape{2, 20}));
  EXPECT_EQ(r.raw_dim(0), 2u);
  EXPECT_EQ(r.raw_dim(1), 20u);
  EXPECT_EQ(r.stride(0), 20);
  EXPECT_EQ(r.layout_offset(), 0u);
  EXPECT_EQ(r.element_address(Shape{1, 3}), at(23));
  EXPECT_EQ(r.end_element(), 40u);
  EXPECT_FALSE(r.same_layout(t));  // another raw shape
  EXPECT_EQ(r.buffer(), t.buffer());
  EXPECT_EQ(r.buffer_bytes(), t.buffer_bytes());

  const Tensor flat = t.reshape(Shape{40});
  EXPECT_EQ(flat.element_address(Shape{39}), at(39));
  const Tensor cube = t.reshape(Shape{2, 2, 10});
  EXPECT_EQ(cube.stride(0), 20);
  EXPECT_EQ(cube.stride(1), 10);
  EXPECT_EQ(cube.element_address(Shape{1, 1, 9}), at(39));
}

TEST_F(Matrix, ReshapeOfAContiguousViewStartsAtTheView) {
  const Tensor rows = t.view(Shape{2, 10}, Shape{1, 0}).reshape(Shape{20});
  EXPECT_EQ(rows.layout_offset(), 10u);
  EXPECT_EQ(rows.box_offset(0), 0u);
  EXPECT_EQ(rows.first_element(), 10u);
  EXPECT_EQ(rows.end_element(), 30u);
  EXPECT_EQ(rows.element_address(Shape{5}), at(15));
  const Tensor part = rows.view(Shape{4}, Shape{3});
  EXPECT_EQ(part.first_element(), 13u);
  EXPECT_EQ(part.end_element(), 17u);
  EXPECT_EQ(part.data(), at(13));
  EXPECT_NE(rows.to_string().find("+10 elements"), std::string::npos);
}

TEST_F(Matrix, ReshapeKeepsVersionAndOwner) {
  std::vector<std::byte> memory(160);
  const Tensor owned =
      Tensor::make_owned(memory.data(), 160, Shape{4, 10}, DType::f32, TaskId(2, 9))
          .with_version(4);
  const Tensor r = owned.reshape(Shape{40});
  EXPECT_EQ(r.version(), 4u);
  EXPECT_EQ(r.producer(), TaskId(2, 9));
  EXPECT_EQ(r.dtype(), DType::f32);
}

TEST_F(Matrix, ReshapeOfATransposedVectorIsContiguous) {
  const Tensor column = Tensor::wrap(buffer.data(), Shape{1, 40}, DType::f32).transpose(0, 1);
  EXPECT_EQ(column.shape(), (Shape{40, 1}));
  EXPECT_TRUE(column.is_contiguous());  // the size-1 dim is never stepped over
  EXPECT_EQ(column.reshape(Shape{40}).element_address(Shape{7}), at(7));
}

TEST_F(Matrix, BadReshapesAreErrors) {
  EXPECT_TRUE(throws_error(
      [&] {
        (void)t.view(Shape{2, 5}, Shape{1, 3}).reshape(Shape{10});
      },
      ErrorCode::invalid_args, "cannot reshape a non-contiguous view"));
  EXPECT_TRUE(throws_error([&] { (void)t.transpose(0, 1).reshape(Shape{40}); },
                           ErrorCode::invalid_args, "non-contiguous"));
  EXPECT_TRUE(throws_error(
      [&] {
        (void)t.reshape(Shape{3, 10});
      },
      ErrorCode::invalid_args, "cannot reshape [4, 10] (40 elements) to [3, 10] (30 elements)"));
  EXPECT_TRUE(
      throws_error([&] { (void)t.reshape(Shape{}); }, ErrorCode::invalid_args, "no dimensions"));
  EXPECT_TRUE(throws_error(
      [&] {
        (void)t.reshape(Shape{40, 0});
      },
      ErrorCode::invalid_args, "dimension 1 of shape [40, 0] is 0"));
}

TEST_F(Matrix, ElementAddressIsBoundsChecked) {
  EXPECT_TRUE(throws_error(
      [&] {
        (void)t.element_address(Shape{4, 0});
      },
      ErrorCode::invalid_args, "index 4 is out of bounds for dimension 0 of size 4"));
  EXPECT_TRUE(throws_error(
      [&] {
        (void)t.element_address(Shape{0, 10});
      },
      ErrorCode::invalid_args, "dimension 1 of size 10"));
  EXPECT_TRUE(throws_error([&] { (void)t.element_address(Shape{1}); }, ErrorCode::invalid_args,
                           "give one index per dimension"));
  const Tensor v = t.view(Shape{2, 5}, Shape{1, 3});
  EXPECT_TRUE(throws_error(
      [&] {
        (void)v.element_address(Shape{0, 5});
      },
      ErrorCode::invalid_args, "dimension 1 of size 5"));
}

TEST_F(Matrix, DataAsChecksTheType) {
  EXPECT_TRUE(throws_error([&] { (void)t.data_as<bf16>(); }, ErrorCode::invalid_args,
                           "tensor holds f32 but the kernel asked for bf16"));
  EXPECT_TRUE(throws_error([&] { (void)t.data_as<std::int32_t>(); }, ErrorCode::invalid_args,
                           "read it as data_as<float>()"));
}

TEST_F(Matrix, VersionsAndSameLayout) {
  const Tensor v7 = t.with_version(7);
  EXPECT_EQ(v7.version(), 7u);
  EXPECT_EQ(t.version(), 0u);
  EXPECT_TRUE(v7.same_layout(t));
  EXPECT_NE(v7.to_string().find(" v7 "), std::string::npos);

  const Tensor as_int = Tensor::wrap(buffer.data(), Shape{4, 10}, DType::i32);
  EXPECT_FALSE(as_int.same_layout(t));  // same bytes, another element type
  std::vector<float> other(40);
  EXPECT_FALSE(Tensor::wrap(other.data(), Shape{4, 10}, DType::f32).same_layout(t));
  EXPECT_FALSE(Tensor::wrap(buffer.data(), Shape{40}, DType::f32).same_layout(t));
  EXPECT_FALSE(t.same_layout(Tensor()));
}

TEST_F(Matrix, ToString) {
  const std::string whole = t.to_string();
  EXPECT_EQ(whole, "f32[4, 10] of buffer " + hex(buffer.data()) + " (external)");
  EXPECT_EQ(t.view(Shape{2, 5}, Shape{1, 3}).to_string(),
            "f32[2, 5] view@(1, 3) of buffer " + hex(buffer.data()) + " (external)");
  EXPECT_EQ(t.transpose(0, 1).to_string(),
            "f32[10, 4] perm(1, 0) of buffer " + hex(buffer.data()) + " (external)");

  std::vector<std::byte> memory(96);
  const Tensor owned =
      Tensor::make_owned(memory.data(), 96, Shape{4, 12}, DType::bf16, TaskId(1, 5));
  EXPECT_EQ(owned.view(Shape{4, 10}, Shape{0, 2}).to_string(),
            "bf16[4, 10] view@(0, 2) of buffer " + hex(memory.data()) + " (task r1:5)");
}

TEST(Tensor, ThreeDimensionalTranspose) {
  std::vector<float> buffer(24);
  const Tensor t = Tensor::wrap(buffer.data(), Shape{2, 3, 4}, DType::f32);
  EXPECT_EQ(t.stride(0), 12);
  EXPECT_EQ(t.stride(1), 4);
  EXPECT_EQ(t.stride(2), 1);
  const Tensor tr = t.transpose(0, 2);
  EXPECT_EQ(tr.shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(tr.stride(0), 1);
  EXPECT_EQ(tr.stride(1), 4);
  EXPECT_EQ(tr.stride(2), 12);
  EXPECT_EQ(tr.element_address(Shape{3, 2, 1}), buffer.data() + 23);
  EXPECT_EQ(tr.element_address(Shape{1, 0, 1}), buffer.data() + 13);
  EXPECT_FALSE(tr.is_contiguous());
  // A view of the transpose, then transposed back: offsets follow their dimensions.
  const Tensor box = tr.view(Shape{2, 2, 1}, Shape{1, 1, 1}).transpose(0, 2);
  EXPECT_EQ(box.shape(), (Shape{1, 2, 2}));
  EXPECT_EQ(box.first_element(), 12u + 4u + 1u);
  EXPECT_EQ(box.element_address(Shape{0, 1, 1}), buffer.data() + 12 + 8 + 2);
}

TEST(Tensor, FiveDimensionalView) {
  std::vector<std::int8_t> buffer(720);
  const Tensor t = Tensor::wrap(buffer.data(), Shape{2, 3, 4, 5, 6}, DType::i8);
  EXPECT_EQ(t.stride(0), 360);
  EXPECT_EQ(t.stride(1), 120);
  EXPECT_EQ(t.stride(2), 30);
  EXPECT_EQ(t.stride(3), 6);
  EXPECT_EQ(t.stride(4), 1);
  EXPECT_EQ(t.buffer_bytes(), 720u);
  const Tensor v = t.view(Shape{1, 2, 2, 3, 4}, Shape{1, 1, 2, 1, 2});
  EXPECT_EQ(v.first_element(), 360u + 120u + 60u + 6u + 2u);
  EXPECT_EQ(v.end_element(), 714u);  // last element (1, 2, 3, 3, 5) = 713
  EXPECT_EQ(v.element_address(Shape{0, 1, 1, 2, 3}), buffer.data() + 713);
  EXPECT_EQ(v.elements(), 48u);
  EXPECT_FALSE(v.is_contiguous());
}

TEST(Tensor, WrapErrors) {
  float x = 0;
  EXPECT_TRUE(
      throws_error([] { (void)Tensor::wrap(static_cast<void*>(nullptr), Shape{4}, DType::f32); },
                   ErrorCode::invalid_args, "null data pointer"));
  EXPECT_TRUE(throws_error([&] { (void)Tensor::wrap(&x, Shape{}, DType::f32); },
                           ErrorCode::invalid_args, "shape [] has no dimensions"));
  EXPECT_TRUE(throws_error(
      [&] {
        (void)Tensor::wrap(&x, Shape{4, 0}, DType::f32);
      },
      ErrorCode::invalid_args, "dimension 1 of shape [4, 0] is 0"));
  const std::uint32_t big = 1u << 16;
  EXPECT_TRUE(throws_error(
      [&] {
        (void)Tensor::wrap(&x, Shape{big, big, big, big, big}, DType::f32);
      },
      ErrorCode::invalid_args, "more than 2^62 bytes"));
}

// The size check of wrap (and of Args::out's placeholder, which shares it) tests the 2^62-byte
// limit once, after the product: it must accept and size exactly what the check of every step
// (zero dimension, 64-bit overflow, limit) accepts. Shapes near the limit, products that overflow
// to a small or zero value, a zero after an overflow, every dtype and an unknown one (size 0).
TEST(Tensor, WrapAcceptsWhatTheStepwiseCheckAccepts) {
  const auto stepwise = [](const Shape& shape, DType dtype, std::uint64_t& bytes) {
    if (shape.size() < 1 || shape.size() > kMaxDims) return false;
    bytes = dtype_size(dtype);
    for (int d = 0; d < shape.size(); ++d) {
      if (shape[d] == 0 || __builtin_mul_overflow(bytes, std::uint64_t{shape[d]}, &bytes) ||
          bytes > (std::uint64_t{1} << 62)) {
        return false;
      }
    }
    return true;
  };
  constexpr std::uint32_t kMax = 0xffffffffu;
  const std::vector<Shape> shapes = {
      Shape{1},
      Shape{3, 5},
      Shape{1, 2, 3, 4, 5},
      Shape{1u << 31, 1u << 31},                      // 2^62 elements
      Shape{1u << 31, 1u << 30},                      // 2^61 elements
      Shape{1u << 20, 1u << 20, 1u << 20},            // 2^60 elements
      Shape{1u << 20, 1u << 20, 1u << 20, 2},         // 2^61 elements
      Shape{1u << 20, 1u << 20, 1u << 20, 1, 4},      // 2^62 elements
      Shape{1u << 31, 1u << 31, 1, 1, 2},             // 2^63 elements
      Shape{(1u << 31) + 1, 1u << 31},                // just past 2^62 elements
      Shape{1u << 16, 1u << 16, 1u << 16, 1u << 16},  // 2^64 elements: wraps to 0
      Shape{1u << 16, 1u << 16, 1u << 16, 1u << 16, 3},
      Shape{kMax, kMax, kMax},     // overflows to a small value
      Shape{kMax, kMax, kMax, 0},  // a zero after the overflow
      Shape{kMax, kMax, 0},
      Shape{0, kMax, kMax},
      Shape{kMax, 1, kMax},
      Shape{},
      Shape{0},
      Shape{2, 3, 4, 5, 0},
  };
  std::uint64_t cell = 0;
  for (const DType dtype : {DType::f32, DType::f16, DType::bf16, DType::i32, DType::i8, DType::u8,
                            static_cast<DType>(200)}) {
    for (const Shape& shape : shapes) {
      const std::string what = std::to_string(static_cast<int>(dtype)) + " " + shape.to_string();
      std::uint64_t expected_bytes = 0;
      const bool expected = stepwise(shape, dtype, expected_bytes);
      std::uint64_t bytes = 0;
      EXPECT_EQ(detail::shape_bytes(shape, dtype, bytes), expected) << what;
      bool accepted = true;
      try {
        const Tensor t = Tensor::wrap(&cell, shape, dtype);
        EXPECT_EQ(t.buffer_bytes(), expected_bytes) << what;
      } catch (const Error& e) {
        accepted = false;
        EXPECT_EQ(e.code(), ErrorCode::invalid_args) << what;
      }
      EXPECT_EQ(accepted, expected) << what;
      if (expected) {
        EXPECT_EQ(bytes, expected_bytes) << what;
      }
    }
  }
}

// element_address (one pass over the raw dimensions) against the strides and first element that
// the public accessors give, for every index of a transposed, offset view of a reshaped view (a
// layout offset), and its three errors.
TEST(Tensor, ElementAddressFollowsStridesAndNamesEachMistake) {
  std::vector<std::uint16_t> buffer(2 * 3 * 4 * 5 + 7);
  const Tensor flat = Tensor::wrap(buffer.data(), Shape{7 + 120}, DType::bf16);
  const Tensor cube = flat.view(Shape{120}, Shape{7}).reshape(Shape{2, 3, 4, 5});
  const Tensor v = cube.transpose(0, 3).transpose(1, 2).view(Shape{4, 3, 2, 2}, Shape{1, 1, 1, 0});
  ASSERT_EQ(v.shape(), (Shape{4, 3, 2, 2}));
  ASSERT_EQ(v.layout_offset(), 7u);
  std::size_t checked = 0;
  for (std::uint32_t a = 0; a < 4; ++a) {
    for (std::uint32_t b = 0; b < 3; ++b) {
      for (std::uint32_t c = 0; c < 2; ++c) {
        for (std::uint32_t d = 0; d < 2; ++d) {
          const std::int64_t flat_index = static_cast<std::int64_t>(v.first_element()) +
                                          a * v.stride(0) + b * v.stride(1) + c * v.stride(2) +
                                          d * v.stride(3);
          // Logical (a, b, c, d) of v is raw (d, c + 1, b + 1, a + 1) of cube, 7 elements in.
          const std::int64_t by_hand = 7 + d * 60 + (c + 1) * 20 + (b + 1) * 5 + (a + 1);
          ASSERT_EQ(flat_index, by_hand);
          ASSERT_EQ(v.element_address(Shape{a, b, c, d}), buffer.data() + by_hand);
          ++checked;
        }
      }
    }
  }
  EXPECT_EQ(checked, 48u);
  EXPECT_TRUE(throws_error(
      [&] {
        (void)v.element_address(Shape{0, 3, 0, 0});
      },
      ErrorCode::invalid_args,
      "index 3 is out of bounds for dimension 1 of size 3 (shape [4, 3, 2, "
      "2]); indices run from 0 to size - 1"));
  EXPECT_TRUE(throws_error(
      [&] {
        (void)v.element_address(Shape{4, 0, 0, 0});
      },
      ErrorCode::invalid_args, "index 4 is out of bounds for dimension 0"));
  EXPECT_TRUE(throws_error(
      [&] {
        (void)v.element_address(Shape{0, 0, 0, 2});
      },
      ErrorCode::invalid_args, "index 2 is out of bounds for dimension 3"));
  // Several bad indices: the first in logical order is named.
  EXPECT_TRUE(throws_error(
      [&] {
        (void)v.element_address(Shape{0, 3, 2, 2});
      },
      ErrorCode::invalid_args, "index 3 is out of bounds for dimension 1"));
  EXPECT_TRUE(throws_error(
      [&] {
        (void)v.element_address(Shape{0, 0, 0});
      },
      ErrorCode::invalid_args,
      "element_address: 3 indices [0, 0, 0] for a tensor with 4 dimensions "
      "(shape [4, 3, 2, 2]); give one index per dimension"));
  EXPECT_TRUE(throws_error([&] { (void)Tensor().element_address(Shape{}); },
                           ErrorCode::invalid_args, "element_address on a null tensor"));
}

TEST(Tensor, MakeOwned) {
  std::vector<std::byte> memory(256);
  const Tensor owned =
      Tensor::make_owned(memory.data(), 256, Shape{4, 10}, DType::f32, TaskId(1, 5));
  EXPECT_EQ(owned.producer(), TaskId(1, 5));
  EXPECT_EQ(owned.buffer_bytes(), 256u);  // padded allocations are allowed
  EXPECT_EQ(owned.end_element(), 40u);
  EXPECT_TRUE(throws_error(
      [&] {
        (void)Tensor::make_owned(memory.data(), 100, Shape{4, 10}, DType::f32, TaskId(1, 5));
      },
      ErrorCode::invalid_args, "buffer of 100 bytes is smaller than f32[4, 10] needs (160 bytes)"));
  EXPECT_TRUE(throws_error(
      [] {
        (void)Tensor::make_owned(nullptr, 160, Shape{4, 10}, DType::f32, TaskId(1, 5));
      },
      ErrorCode::invalid_args, "null data pointer"));
}

TEST(Tensor, PlacedKeepsTheLayoutAndTakesTheBufferAndTask) {
  // How the engine turns an `out` placeholder into the output (Tensor::placed): the layout as it
  // is, another buffer and the creating task.
  std::vector<float> scratch(4 * 10), memory(4 * 10);
  const Tensor view = Tensor::wrap(scratch.data(), Shape{4, 10}, DType::f32, 3)
                          .view(Shape{2, 5}, Shape{1, 4})
                          .transpose(0, 1);
  const Tensor placed = view.placed(memory.data(), TaskId(2, 9));
  EXPECT_EQ(placed.buffer(), memory.data());
  EXPECT_EQ(placed.producer(), TaskId(2, 9));
  EXPECT_EQ(placed.shape(), view.shape());
  EXPECT_EQ(placed.dtype(), DType::f32);
  EXPECT_EQ(placed.version(), 3u);
  EXPECT_EQ(placed.buffer_bytes(), view.buffer_bytes());
  EXPECT_TRUE(placed.same_layout(view.placed(memory.data(), TaskId())));
  EXPECT_FALSE(placed.same_layout(view));  // another buffer
  EXPECT_EQ(placed.first_element(), view.first_element());
  EXPECT_EQ(placed.end_element(), view.end_element());
  EXPECT_EQ(placed.stride(0), view.stride(0));
  EXPECT_EQ(placed.data(), static_cast<void*>(memory.data() + 1 * 10 + 4));
  EXPECT_FALSE(view.producer().valid());  // the source is unchanged
}

TEST(Tensor, NullTensor) {
  const Tensor null;
  EXPECT_FALSE(null.valid());
  EXPECT_FALSE(static_cast<bool>(null));
  EXPECT_EQ(null.ndims(), 0);
  EXPECT_EQ(null.elements(), 0u);
  EXPECT_EQ(null.end_element(), 0u);
  EXPECT_FALSE(null.is_contiguous());
  EXPECT_EQ(null.to_string(), "null tensor");
  // Tensor-producing operations pass the null through without throwing.
  EXPECT_FALSE(null.view(Shape{1, 2}, Shape{}).valid());
  EXPECT_FALSE(null.reshape(Shape{4}).valid());
  EXPECT_FALSE(null.transpose(0, 7).valid());
  EXPECT_FALSE(null.with_version(3).valid());
  EXPECT_FALSE(null.same_layout(null));
  // Element access does throw.
  EXPECT_TRUE(throws_error([&] { (void)null.element_address(Shape{}); }, ErrorCode::invalid_args,
                           "null tensor"));
  EXPECT_TRUE(
      throws_error([&] { (void)null.data_as<float>(); }, ErrorCode::invalid_args, "null tensor"));
}

// view() tests for a null tensor only after narrow() fails (a null tensor has no dimensions, so
// narrow() accepts it only with empty lists, whose answer is the null copy as well): a null
// tensor's views are null for every list, empty and mismatched ones included, with both
// overloads; a valid tensor's empty lists are a view error.
TEST(Tensor, NullTensorViewsOfEveryListAreNull) {
  const Tensor null;
  EXPECT_FALSE(null.view({}, {}).valid());
  EXPECT_FALSE(null.view(Shape{}, Shape{}).valid());
  EXPECT_FALSE(null.view({1, 2}, {0}).valid());
  EXPECT_FALSE(null.view(Shape{1, 2}, Shape{0, 0, 0}).valid());
  EXPECT_FALSE(null.view({0}, {}).valid());
  EXPECT_EQ(null.view({}, {}).ndims(), 0);
  std::vector<float> data(4);
  const Tensor t = Tensor::wrap(data.data(), Shape{4}, DType::f32);
  EXPECT_TRUE(throws_error([&] { (void)t.view({}, {}); }, ErrorCode::invalid_args,
                           "view shape [] has 0 dimensions but the tensor has 1"));
  EXPECT_TRUE(throws_error([&] { (void)t.view(Shape{}, Shape{}); }, ErrorCode::invalid_args,
                           "view shape [] has 0 dimensions but the tensor has 1"));
  // The error path copies the lists before naming them: each value where it was given.
  EXPECT_TRUE(throws_error([&] { (void)t.view({3}, {2}); }, ErrorCode::invalid_args,
                           "view offset 2 + extent 3 exceeds dimension 0 of size 4"));
  EXPECT_TRUE(throws_error([&] { (void)t.view(Shape{3}, Shape{2}); }, ErrorCode::invalid_args,
                           "view offset 2 + extent 3 exceeds dimension 0 of size 4"));
}

TEST(TensorSpec, BytesAndFill) {
  TensorSpec spec(Shape{4, 10}, DType::f32);
  EXPECT_EQ(spec.bytes(), 160u);
  EXPECT_FALSE(spec.initial_bits.has_value());
  spec.fill(1.0f);
  EXPECT_EQ(spec.initial_bits, 0x3F800000u);

  TensorSpec half(Shape{8}, DType::bf16);
  EXPECT_EQ(half.bytes(), 16u);
  EXPECT_EQ(half.fill(bf16(1.0f)).initial_bits, 0x3F80u);
  TensorSpec bytes(Shape{8}, DType::u8);
  EXPECT_EQ(bytes.fill(std::uint8_t{0xAB}).initial_bits, 0xABu);
}

TEST(TensorSpec, FillWithTheWrongSizeIsAnError) {
  TensorSpec half(Shape{8}, DType::bf16);
  EXPECT_TRUE(throws_error([&] { half.fill(1.0f); }, ErrorCode::invalid_args,
                           "a 4-byte value cannot fill a bf16 tensor (2 bytes per element); "
                           "pass a tmr::bf16 value"));
  TensorSpec single(Shape{8}, DType::f32);
  EXPECT_TRUE(
      throws_error([&] { single.fill(1.0); }, ErrorCode::invalid_args, "pass a float value"));
  EXPECT_FALSE(single.initial_bits.has_value());
}

// Every byte of a descriptor's fields is defined whatever the storage held before: the replay
// check compares argument bytes with a predicted image. Built over storage filled with two
// different patterns, a null tensor, a wrap of every rank (entries past the rank zero) and an
// `out` placeholder come out byte-equal, with the shape in the raw dimensions and the extents.
TEST(Tensor, DescriptorsDefineEveryFieldByte) {
  constexpr std::size_t kFieldBytes = Tensor::field_offsets().perm + kMaxDims;
  struct alignas(Tensor) Storage {
    std::byte bytes[sizeof(Tensor)];
  };
  const auto fields_equal = [](const Storage& a, const Storage& b) {
    return std::memcmp(a.bytes, b.bytes, kFieldBytes) == 0;
  };
  Storage first;
  Storage second;
  // The fill must reach memory: a constructor starts a new object, which would let the compiler
  // drop the stores before it as dead (GCC's lifetime DSE).
  const auto fill = [&] {
    std::memset(first.bytes, 0xa5, sizeof(first.bytes));
    std::memset(second.bytes, 0x5a, sizeof(second.bytes));
    asm volatile("" : : "r"(first.bytes), "r"(second.bytes) : "memory");
  };
  fill();
  const Tensor* null = ::new (first.bytes) Tensor();
  ::new (second.bytes) Tensor();
  EXPECT_TRUE(fields_equal(first, second));
  for (int r = 0; r < kMaxDims; ++r) {
    EXPECT_EQ(null->raw_dim(r), 0u) << r;
    EXPECT_EQ(null->box_offset(r), 0u) << r;
    EXPECT_EQ(null->box_extent(r), 0u) << r;
  }
  std::uint64_t cell = 0;
  const Shape shapes[] = {Shape{7}, Shape{7, 6}, Shape{7, 6, 5}, Shape{7, 6, 5, 4},
                          Shape{7, 6, 5, 4, 3}};
  for (const Shape& shape : shapes) {
    fill();
    ASSERT_TRUE(Tensor::wrap_into(first.bytes, &cell, shape, DType::u8)) << shape.to_string();
    ASSERT_TRUE(Tensor::wrap_into(second.bytes, &cell, shape, DType::u8)) << shape.to_string();
    EXPECT_TRUE(fields_equal(first, second)) << shape.to_string();
    const Tensor* t = std::launder(reinterpret_cast<const Tensor*>(first.bytes));
    for (int r = 0; r < kMaxDims; ++r) {
      const std::uint32_t expected = r < shape.size() ? shape[r] : 0u;
      EXPECT_EQ(t->raw_dim(r), expected) << shape.to_string() << " " << r;
      EXPECT_EQ(t->box_offset(r), 0u) << shape.to_string() << " " << r;
      EXPECT_EQ(t->box_extent(r), expected) << shape.to_string() << " " << r;
    }
    const Tensor wrapped = Tensor::wrap(&cell, shape, DType::u8);
    EXPECT_EQ(std::memcmp(&wrapped, first.bytes, kFieldBytes), 0) << shape.to_string();
  }
}

// element_size() reads a table built from dtype_size: the same size for every type, and the
// null tensor's default type.
TEST(TensorElementSize, MatchesDTypeSizeForEveryType) {
  std::uint64_t cell = 0;
  for (const DType type : {DType::f32, DType::f16, DType::bf16, DType::i32, DType::i8, DType::u8}) {
    const Tensor t = Tensor::wrap(&cell, Shape{1}, type);
    EXPECT_EQ(t.element_size(), dtype_size(type)) << dtype_name(type);
    EXPECT_EQ(t.view(Shape{1}, Shape{0}).element_size(), dtype_size(type)) << dtype_name(type);
  }
  EXPECT_EQ(Tensor().element_size(), dtype_size(DType::f32));
}

}  // namespace
}  // namespace tmr
