// Task arguments: tags, out placeholders, scalars, copies, and recorded (not thrown) misuse.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tmr/args.hpp"
#include "tmr/error.hpp"
#include "unit/same_tensor.hpp"

namespace tmr {
namespace {

bool contains(const std::string& text, const std::string& fragment) {
  return text.find(fragment) != std::string::npos;
}

// What call() throws (the Error's message), or "no error".
template <class Call>
std::string message(Call&& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

class ArgsTest : public ::testing::Test {
 protected:
  std::vector<float> a = std::vector<float>(40);
  std::vector<float> b = std::vector<float>(40);
  Tensor ta = Tensor::wrap(a.data(), Shape{4, 10}, DType::f32);
  Tensor tb = Tensor::wrap(b.data(), Shape{40}, DType::f32);
};

TEST(ArgTag, Names) {
  EXPECT_EQ(arg_tag_name(ArgTag::in), "in");
  EXPECT_EQ(arg_tag_name(ArgTag::out), "out");
  EXPECT_EQ(arg_tag_name(ArgTag::inout), "inout");
  EXPECT_EQ(arg_tag_name(ArgTag::out_existing), "out_existing");
  EXPECT_EQ(arg_tag_name(ArgTag::no_dep), "no_dep");
}

TEST_F(ArgsTest, TensorsKeepTheirTagsAndOrder) {
  Args args;
  args.in(ta).inout(tb).out_existing(ta).no_dep(tb);
  ASSERT_FALSE(args.has_error()) << args.error();
  ASSERT_EQ(args.tensor_count(), 4);
  EXPECT_EQ(args.tag(0), ArgTag::in);
  EXPECT_EQ(args.tag(1), ArgTag::inout);
  EXPECT_EQ(args.tag(2), ArgTag::out_existing);
  EXPECT_EQ(args.tag(3), ArgTag::no_dep);
  EXPECT_EQ(args.tensor(0).buffer(), a.data());
  EXPECT_EQ(args.tensor(0).shape(), (Shape{4, 10}));
  EXPECT_EQ(args.tensor(1).buffer(), b.data());
  EXPECT_EQ(args.tensor(3).shape(), (Shape{40}));
  EXPECT_FALSE(args.initial_bits(0).has_value());
  EXPECT_EQ(args.scalar_count(), 0);
  EXPECT_EQ(args.block_count(), 1u);
  EXPECT_FALSE(args.is_sync_start());
}

TEST_F(ArgsTest, OutIsAPlaceholderWithShapeAndType) {
  Args args;
  args.in(ta)
      .out(TensorSpec(Shape{8, 16}, DType::bf16).fill(bf16(1.0f)))
      .out(TensorSpec(Shape{3}, DType::i32));
  ASSERT_FALSE(args.has_error()) << args.error();
  ASSERT_EQ(args.tensor_count(), 3);
  EXPECT_EQ(args.tag(1), ArgTag::out);
  const Tensor& placeholder = args.tensor(1);
  EXPECT_TRUE(placeholder.valid());
  EXPECT_EQ(placeholder.shape(), (Shape{8, 16}));
  EXPECT_EQ(placeholder.dtype(), DType::bf16);
  EXPECT_EQ(placeholder.buffer_bytes(), 8u * 16u * 2u);
  EXPECT_FALSE(placeholder.producer().valid());
  EXPECT_EQ(args.initial_bits(1), 0x3F80u);
  EXPECT_EQ(args.tensor(2).shape(), (Shape{3}));
  EXPECT_EQ(args.tensor(2).dtype(), DType::i32);
  EXPECT_FALSE(args.initial_bits(2).has_value());
}

TEST_F(ArgsTest, ScalarsAndLaunch) {
  Args args;
  args.in(ta).scalar(1.5f).scalar(std::int32_t{-2}).scalar(2.25).scalar_bits(0xDEADBEEFu);
  args.blocks(24).sync_start();
  ASSERT_FALSE(args.has_error()) << args.error();
  ASSERT_EQ(args.scalar_count(), 4);
  EXPECT_EQ(args.scalars()[0], 0x3FC00000u);          // 1.5f, zero-extended
  EXPECT_EQ(args.scalars()[1], 0xFFFFFFFEu);          // int32 -2: only its 4 bytes
  EXPECT_EQ(args.scalars()[2], 0x4002000000000000u);  // 2.25 as a double
  EXPECT_EQ(args.scalars()[3], 0xDEADBEEFu);
  EXPECT_EQ(args.block_count(), 24u);
  EXPECT_TRUE(args.is_sync_start());
  args.sync_start(false);
  EXPECT_FALSE(args.is_sync_start());
}

TEST_F(ArgsTest, TooManyTensorsIsRecorded) {
  Args args;
  for (int i = 0; i < kMaxTensorArgs; ++i)
    args.in(ta);
  EXPECT_FALSE(args.has_error());
  args.in(tb);  // does not throw
  EXPECT_TRUE(args.has_error());
  EXPECT_EQ(args.tensor_count(), kMaxTensorArgs);
  EXPECT_TRUE(contains(args.error(),
                       "too many tensor arguments: in tensor #16 exceeds "
                       "kMaxTensorArgs (16)"))
      << args.error();
  EXPECT_TRUE(contains(args.error(), "split the task"));

  Args outs;
  for (int i = 0; i < kMaxTensorArgs; ++i)
    outs.out(TensorSpec(Shape{1}, DType::f32));
  outs.out(TensorSpec(Shape{1}, DType::f32));
  EXPECT_TRUE(contains(outs.error(), "out tensor #16 exceeds kMaxTensorArgs")) << outs.error();
}

TEST_F(ArgsTest, TensorAfterScalarIsRecorded) {
  Args args;
  args.in(ta).scalar(1).inout(tb);
  EXPECT_TRUE(args.has_error());
  EXPECT_EQ(args.tensor_count(), 1);
  EXPECT_TRUE(contains(args.error(),
                       "inout tensor #1 follows a scalar; add every tensor before "
                       "the first scalar"))
      << args.error();
  Args outs;
  outs.scalar(1).out(TensorSpec(Shape{1}, DType::f32));
  EXPECT_TRUE(contains(outs.error(), "out tensor #0 follows a scalar")) << outs.error();
}

TEST_F(ArgsTest, NullTensorIsRecorded) {
  Args args;
  args.in(ta).no_dep(Tensor());
  EXPECT_TRUE(args.has_error());
  EXPECT_EQ(args.tensor_count(), 1);
  EXPECT_TRUE(contains(args.error(), "no_dep tensor #1 is a null tensor")) << args.error();
}

TEST_F(ArgsTest, EmptyOutShapesAreRecorded) {
  Args no_dims;
  no_dims.out(TensorSpec(Shape{}, DType::f32));
  EXPECT_TRUE(contains(no_dims.error(), "out tensor #0: ")) << no_dims.error();
  EXPECT_TRUE(contains(no_dims.error(), "no dimensions")) << no_dims.error();
  EXPECT_EQ(no_dims.tensor_count(), 0);
  Args zero;
  zero.in(ta).out(TensorSpec(Shape{4, 0}, DType::f32));
  EXPECT_TRUE(contains(zero.error(), "out tensor #1: ")) << zero.error();
  EXPECT_TRUE(contains(zero.error(), "dimension 1 of shape [4, 0] is 0")) << zero.error();
  EXPECT_EQ(zero.tensor_count(), 1);
}

// out()'s inline placeholder (Tensor::wrap_into) is what Tensor::wrap builds, and it refuses
// exactly the shapes wrap refuses, with wrap's message (the limit of 2^62 bytes on both sides of
// it, a product that overflows 64 bits, a zero dimension in every place, 1 to kMaxDims
// dimensions, every dtype).
TEST_F(ArgsTest, OutPlaceholdersAreWrapsOfTheSpec) {
  void* const placeholder = Args().out(TensorSpec(Shape{1}, DType::f32)).tensor(0).buffer();
  const std::vector<Shape> shapes = {
      Shape{1},
      Shape{7},
      Shape{3, 5},
      Shape{2, 3, 4},
      Shape{2, 1, 3, 1},
      Shape{1, 2, 3, 4, 5},
      Shape{1u << 30, 1u << 30, 1u << 2},             // 2^62 elements
      Shape{1u << 31, 1u << 31},                      // 2^62 elements
      Shape{1u << 30, 1u << 30, 1u << 1},             // 2^61 elements
      Shape{0xffffffffu, 0xffffffffu, 0xffffffffu},   // overflows 64 bits
      Shape{1u << 16, 1u << 16, 1u << 16, 1u << 16},  // 2^64 elements: wraps to 0
      Shape{},
      Shape{0},
      Shape{0, 4},
      Shape{4, 0},
      Shape{2, 3, 0},
      Shape{2, 3, 4, 5, 0},
  };
  for (const DType dtype :
       {DType::f32, DType::f16, DType::bf16, DType::i32, DType::i8, DType::u8}) {
    for (const Shape& shape : shapes) {
      const std::string what = std::string(dtype_name(dtype)) + shape.to_string();
      Args args;
      args.in(ta).out(TensorSpec(shape, dtype));
      std::string wrap_error;
      Tensor wrapped;
      try {
        wrapped = Tensor::wrap(placeholder, shape, dtype);
      } catch (const Error& e) {
        wrap_error = e.what();
      }
      if (wrap_error.empty()) {
        ASSERT_FALSE(args.has_error()) << what << ": " << args.error();
        ASSERT_EQ(args.tensor_count(), 2) << what;
        EXPECT_TRUE(test::same_tensor(args.tensor(1), wrapped)) << what;
        EXPECT_EQ(args.tag(1), ArgTag::out) << what;
        EXPECT_EQ(args.out_mask(), 0b10u) << what;
      } else {
        EXPECT_EQ(args.error(), "out tensor #1: " + wrap_error) << what;
        EXPECT_EQ(args.tensor_count(), 1) << what;
        EXPECT_EQ(args.out_mask(), 0u) << what;
        args.in(tb);  // the list is closed after the mistake
        EXPECT_EQ(args.tensor_count(), 1) << what;
      }
    }
  }
}

// scalar_bits()'s inline path: after a recorded mistake a scalar is dropped and the first
// mistake stays; every scalar closes the tensor list.
TEST_F(ArgsTest, ScalarsAfterAMistakeAreDropped) {
  Args args;
  args.in(Tensor()).scalar(1);
  EXPECT_EQ(args.scalar_count(), 0);
  EXPECT_TRUE(contains(args.error(), "in tensor #0 is a null tensor")) << args.error();
  Args open;
  open.in(ta).scalar(2).scalar(3);
  EXPECT_EQ(open.scalar_count(), 2);
  EXPECT_EQ(open.scalars()[1], 3u);
  open.out(TensorSpec(Shape{1}, DType::f32));
  EXPECT_TRUE(contains(open.error(), "out tensor #1 follows a scalar")) << open.error();
  open.scalar(4);  // after the mistake: dropped
  EXPECT_EQ(open.scalar_count(), 2);
}

TEST_F(ArgsTest, TooManyScalarsIsRecorded) {
  Args args;
  for (int i = 0; i < kMaxScalarArgs; ++i)
    args.scalar(i);
  EXPECT_FALSE(args.has_error());
  args.scalar(7);
  EXPECT_TRUE(args.has_error());
  EXPECT_EQ(args.scalar_count(), kMaxScalarArgs);
  EXPECT_TRUE(contains(args.error(), "scalar #128 exceeds kMaxScalarArgs (128)")) << args.error();
}

TEST_F(ArgsTest, FirstMistakeIsKept) {
  Args args;
  args.in(Tensor()).scalar(1).in(ta);
  EXPECT_TRUE(contains(args.error(), "in tensor #0 is a null tensor")) << args.error();
  EXPECT_EQ(args.tensor_count(), 0);
  EXPECT_EQ(args.scalar_count(), 0);  // arguments after the mistake are dropped
}

TEST_F(ArgsTest, CopiesCarryEverything) {
  Args args;
  args.in(ta).out(TensorSpec(Shape{5}, DType::u8).fill(std::uint8_t{7})).scalar(3).blocks(4);
  const Args copy(args);  // NOLINT(performance-unnecessary-copy-initialization): the point
  ASSERT_EQ(copy.tensor_count(), 2);
  EXPECT_EQ(copy.tag(0), ArgTag::in);
  EXPECT_EQ(copy.tag(1), ArgTag::out);
  EXPECT_EQ(copy.tensor(0).buffer(), a.data());
  EXPECT_EQ(copy.tensor(1).shape(), (Shape{5}));
  EXPECT_EQ(copy.initial_bits(1), 7u);
  ASSERT_EQ(copy.scalar_count(), 1);
  EXPECT_EQ(copy.scalars()[0], 3u);
  EXPECT_EQ(copy.block_count(), 4u);

  // Assignment replaces a longer argument list entirely, the recorded error included.
  Args longer;
  longer.in(tb).in(tb).out(TensorSpec(Shape{2}, DType::f32).fill(0.5f)).scalar(1).scalar(2);
  longer.sync_start();
  Args broken;
  broken.in(Tensor());
  longer = broken;
  EXPECT_EQ(longer.tensor_count(), 0);
  EXPECT_EQ(longer.scalar_count(), 0);
  EXPECT_FALSE(longer.is_sync_start());
  EXPECT_TRUE(longer.has_error());
  EXPECT_EQ(longer.error(), broken.error());
  longer = copy;
  EXPECT_FALSE(longer.has_error());
  EXPECT_EQ(longer.tensor_count(), 2);
  EXPECT_FALSE(longer.initial_bits(2).has_value());  // the old third entry is gone

  Args& self = longer;
  longer = self;
  EXPECT_EQ(longer.tensor_count(), 2);
}

TEST_F(ArgsTest, MasksNameOutArgumentsAndTensorsATaskCreated) {
  // What a submit reads instead of a pass over the tags: out(...) arguments, and tensors whose
  // creator's scope it must check (external tensors have none).
  std::vector<float> owned(8);
  const Tensor created =
      Tensor::make_owned(owned.data(), 8 * sizeof(float), Shape{8}, DType::f32, TaskId(1, 5));
  Args args;
  args.in(ta).out(TensorSpec(Shape{2}, DType::f32)).inout(created).no_dep(created).out_existing(tb);
  ASSERT_FALSE(args.has_error()) << args.error();
  EXPECT_EQ(args.out_mask(), 0b00010u);
  EXPECT_EQ(args.created_mask(), 0b01100u);
  const Args copy(args);  // NOLINT(performance-unnecessary-copy-initialization): the point
  EXPECT_EQ(copy.out_mask(), 0b00010u);
  EXPECT_EQ(copy.created_mask(), 0b01100u);
  Args none;
  none.in(ta).in(Tensor()).out(TensorSpec(Shape{2}, DType::f32));  // dropped after the mistake
  EXPECT_EQ(none.out_mask(), 0u);
  EXPECT_EQ(none.created_mask(), 0u);
  Args replaced = args;
  replaced = none;
  EXPECT_EQ(replaced.out_mask(), 0u);
  EXPECT_EQ(replaced.created_mask(), 0u);
}

// created_mask() is gathered from one byte per argument in two 8-byte halves: created tensors in
// both halves (and at their ends), after outs and views, through copies, and an assignment from a
// shorter list (whose bytes past its count must not survive from the longer one).
TEST_F(ArgsTest, CreatedMaskCoversAllSixteenArguments) {
  std::vector<float> owned(8);
  const Tensor created =
      Tensor::make_owned(owned.data(), 8 * sizeof(float), Shape{8}, DType::f32, TaskId(2, 9));
  Args full;
  std::uint32_t expected = 0;
  for (int i = 0; i < kMaxTensorArgs; ++i) {
    const bool made = i == 0 || i == 7 || i == 8 || i == 13 || i == 15;
    if (i == 3) {
      full.out(TensorSpec(Shape{2}, DType::f32));
    } else if (made && i % 2 == 1) {
      full.in(created, {4}, {2});  // a view built in its slot
    } else if (made) {
      full.inout(created);
    } else {
      full.in(tb.view({8}, {static_cast<std::uint32_t>(i)}));
    }
    if (made) expected |= 1u << i;
  }
  ASSERT_FALSE(full.has_error()) << full.error();
  EXPECT_EQ(full.created_mask(), expected);
  const Args copy(full);  // NOLINT(performance-unnecessary-copy-initialization): the point
  EXPECT_EQ(copy.created_mask(), expected);
  Args shorter;
  shorter.in(ta).in(created);
  Args assigned = full;
  assigned = shorter;
  EXPECT_EQ(assigned.created_mask(), 0b10u);
  full.in(created);  // a 17th tensor: recorded as a mistake, no bit past the sixteenth
  EXPECT_TRUE(full.has_error());
  EXPECT_EQ(full.created_mask(), expected);
}

// add()'s inline path tests one flag for "a mistake is recorded or a scalar was added" (and the
// count): the flag must be set by every way of getting there and carried by copies and
// assignment, or a tensor would be accepted where add_checked names a mistake.
TEST_F(ArgsTest, NoTensorAfterAScalarOrAMistakeAlsoInCopies) {
  Args scalar_first;
  scalar_first.in(ta).scalar(1);
  const Args copied(scalar_first);  // NOLINT(performance-unnecessary-copy-initialization)
  Args assigned;
  assigned.in(tb).in(tb);
  assigned = scalar_first;
  for (Args args : {scalar_first, copied, assigned}) {
    args.inout(tb);
    EXPECT_EQ(args.tensor_count(), 1);
    EXPECT_TRUE(contains(args.error(), "inout tensor #1 follows a scalar")) << args.error();
  }
  // Each recorded mistake closes the list: a null tensor, an empty out shape, a 129th scalar.
  Args null_tensor;
  null_tensor.in(Tensor());
  Args empty_out;
  empty_out.out(TensorSpec(Shape{}, DType::f32));
  Args scalars;
  for (int i = 0; i <= kMaxScalarArgs; ++i)
    scalars.scalar(i);
  for (const Args& broken : {null_tensor, empty_out, scalars}) {
    Args args(broken);
    const std::string first = args.error();
    ASSERT_FALSE(first.empty());
    args.in(ta).inout(tb);
    EXPECT_EQ(args.error(), first);  // the first mistake is kept
    EXPECT_EQ(args.tensor_count(), 0);
    args.out(TensorSpec(Shape{2}, DType::f32));  // out() keeps it too
    EXPECT_EQ(args.error(), first);
    EXPECT_EQ(args.tensor_count(), 0);
    EXPECT_EQ(args.out_mask(), 0u);
  }
  // A full list refuses a seventeenth tensor, in a copy too; a fresh list accepts sixteen.
  Args full;
  for (int i = 0; i < kMaxTensorArgs; ++i)
    full.in(ta);
  Args full_copy(full);
  full_copy.in(tb);
  EXPECT_EQ(full_copy.tensor_count(), kMaxTensorArgs);
  EXPECT_TRUE(contains(full_copy.error(), "in tensor #16 exceeds kMaxTensorArgs"))
      << full_copy.error();
  EXPECT_FALSE(full.has_error());
  EXPECT_EQ(full.tensor(kMaxTensorArgs - 1).buffer(), a.data());
}

TEST_F(ArgsTest, ErrorsAreOwnedByEachCopy) {
  Args clean;
  EXPECT_FALSE(clean.has_error());
  EXPECT_EQ(clean.error(), "");
  Args copy;
  {
    Args broken;
    broken.in(Tensor());
    copy = broken;
    const Args constructed(broken);  // NOLINT(performance-unnecessary-copy-initialization)
    EXPECT_EQ(constructed.error(), broken.error());
  }  // the original and its other copy are gone: this copy's message is its own
  EXPECT_TRUE(contains(copy.error(), "in tensor #0 is a null tensor")) << copy.error();
  copy = clean;  // assigning an Args without a mistake clears it, and the list reopens
  EXPECT_FALSE(copy.has_error());
  EXPECT_EQ(copy.error(), "");
  copy.in(ta);
  EXPECT_EQ(copy.tensor_count(), 1);
}

// in(t, shape, offsets) and the other tags' forms build t.view(shape, offsets) in their slot:
// the same tensors, tags and masks as adding the views, from Shapes and from braced lists.
TEST_F(ArgsTest, ViewArgumentsEqualArgumentsOfViews) {
  std::vector<float> owned(40);
  const Tensor created =
      Tensor::make_owned(owned.data(), sizeof(float) * 40, Shape{4, 10}, DType::f32, TaskId(3, 1));
  const Tensor across = ta.transpose(0, 1).view(Shape{8, 3}, Shape{1, 1});  // logical [8, 3]
  const Shape row{1, 10};
  const Shape row_at{2, 0};
  Args views;
  views.in(ta, {1, 10}, {3, 0})
      .in(created, row, row_at)
      .inout(across, {2, 3}, {6, 0})
      .inout(tb, Shape{5}, Shape{})
      .out_existing(created, {2, 4}, {2, 6})
      .out_existing(ta, row, Shape{})
      .no_dep(tb, {40}, {})
      .no_dep(across, Shape{1, 1}, Shape{7, 2})
      .scalar(5);
  Args copies;
  copies.in(ta.view(Shape{1, 10}, Shape{3, 0}))
      .in(created.view(row, row_at))
      .inout(across.view(Shape{2, 3}, Shape{6, 0}))
      .inout(tb.view(Shape{5}, Shape{}))
      .out_existing(created.view(Shape{2, 4}, Shape{2, 6}))
      .out_existing(ta.view(row, Shape{}))
      .no_dep(tb.view(Shape{40}, Shape{}))
      .no_dep(across.view(Shape{1, 1}, Shape{7, 2}))
      .scalar(5);
  ASSERT_FALSE(views.has_error()) << views.error();
  ASSERT_EQ(views.tensor_count(), 8);
  ASSERT_EQ(copies.tensor_count(), 8);
  for (int i = 0; i < 8; ++i) {
    EXPECT_TRUE(test::same_tensor(views.tensor(i), copies.tensor(i))) << "tensor " << i;
    EXPECT_EQ(views.tag(i), copies.tag(i)) << "tensor " << i;
  }
  EXPECT_EQ(views.tag(2), ArgTag::inout);
  EXPECT_EQ(views.tag(5), ArgTag::out_existing);
  EXPECT_EQ(views.tag(7), ArgTag::no_dep);
  EXPECT_EQ(views.created_mask(), 0b10010u);
  EXPECT_EQ(views.created_mask(), copies.created_mask());
  EXPECT_EQ(views.out_mask(), 0u);
  EXPECT_EQ(views.scalar_count(), 1);
  // Values against the source, not only against the other form.
  EXPECT_EQ(views.tensor(0).data(), a.data() + 30);
  EXPECT_EQ(views.tensor(4).data(), owned.data() + 26);
  EXPECT_EQ(views.tensor(4).shape(), (Shape{2, 4}));
  EXPECT_EQ(views.tensor(7).data(), a.data() + 3 * 10 + 8);  // across (7, 2): raw row 3, column 8
}

// A view that does not fit throws view()'s Error and leaves the arguments as they were; a null
// tensor, a scalar before it or a seventeenth tensor is recorded as by in(t.view(...)).
TEST_F(ArgsTest, ViewArgumentsCheckLikeViews) {
  Args args;
  args.in(ta, {1, 10}, {0, 0});
  const std::string expected = message([&] { (void)ta.view(Shape{2, 10}, Shape{3, 0}); });
  ASSERT_NE(expected, "no error");
  EXPECT_EQ(message([&] { args.in(ta, {2, 10}, {3, 0}); }), expected);
  EXPECT_EQ(message([&] { args.out_existing(ta, Shape{2, 10}, Shape{3, 0}); }), expected);
  EXPECT_EQ(message([&] {
              args.inout(ta, {0, 10}, {});
            }),
            message([&] {
              (void)ta.view(Shape{0, 10}, Shape{});
            }));
  EXPECT_EQ(message([&] {
              args.no_dep(ta, {1, 1, 1, 1, 1, 1}, {});
            }),
            message([&] {
              (void)ta.view(Shape{1, 1, 1, 1, 1, 1}, Shape{});
            }));
  EXPECT_FALSE(args.has_error());
  ASSERT_EQ(args.tensor_count(), 1);
  args.inout(ta, {1, 10}, {3, 0});  // the slot a failed view wrote is used again
  ASSERT_EQ(args.tensor_count(), 2);
  EXPECT_EQ(args.tensor(1).data(), a.data() + 30);
  EXPECT_EQ(args.tensor(1).shape(), (Shape{1, 10}));

  Args null_view;
  null_view.in(ta, {1, 10}, {0, 0}).no_dep(Tensor(), {1, 2}, {3, 4});
  EXPECT_EQ(null_view.tensor_count(), 1);
  EXPECT_TRUE(contains(null_view.error(), "no_dep tensor #1 is a null tensor"))
      << null_view.error();
  // Too many entries for a Shape: thrown even for a null tensor, as Shape{...} would.
  EXPECT_EQ(message([&] {
              Args().in(Tensor(), {1, 1, 1, 1, 1, 1}, {});
            }),
            message([&] { (void)Shape{1, 1, 1, 1, 1, 1}; }));

  Args after_scalar;
  after_scalar.in(ta, {1, 10}, {0, 0}).scalar(1).out_existing(ta, {1, 10}, {1, 0});
  EXPECT_EQ(after_scalar.tensor_count(), 1);
  EXPECT_TRUE(contains(after_scalar.error(), "out_existing tensor #1 follows a scalar"))
      << after_scalar.error();
  // A closed list still throws for a view that does not fit: the view comes first.
  EXPECT_EQ(message([&] { after_scalar.in(ta, {2, 10}, {3, 0}); }), expected);

  Args full;
  for (int i = 0; i < kMaxTensorArgs; ++i)
    full.in(ta, {1, 10}, {static_cast<std::uint32_t>(i % 4), 0});
  ASSERT_FALSE(full.has_error()) << full.error();
  EXPECT_EQ(full.tensor(kMaxTensorArgs - 1).data(), a.data() + 30);
  full.inout(tb, {4}, {0});
  EXPECT_EQ(full.tensor_count(), kMaxTensorArgs);
  EXPECT_TRUE(contains(full.error(), "inout tensor #16 exceeds kMaxTensorArgs")) << full.error();
}

// add_view tests for a null tensor only after view_into fails, and view_into accepts a null
// tensor with empty lists (it has no dimensions): that one must still be recorded as a null
// tensor, not added; a valid tensor's empty lists throw view()'s error.
TEST_F(ArgsTest, NullTensorWithEmptyViewListsIsRecorded) {
  Args braced;
  braced.in(ta, {1, 10}, {0, 0}).inout(Tensor(), {}, {});
  EXPECT_EQ(braced.tensor_count(), 1);
  EXPECT_TRUE(contains(braced.error(), "inout tensor #1 is a null tensor")) << braced.error();
  Args shaped;
  shaped.out_existing(Tensor(), Shape{}, Shape{});
  EXPECT_EQ(shaped.tensor_count(), 0);
  EXPECT_TRUE(contains(shaped.error(), "out_existing tensor #0 is a null tensor"))
      << shaped.error();
  Args valid;
  const std::string expected = message([&] { (void)ta.view(Shape{}, Shape{}); });
  EXPECT_TRUE(contains(expected, "view shape [] has 0 dimensions")) << expected;
  EXPECT_EQ(message([&] { valid.in(ta, {}, {}); }), expected);
  EXPECT_EQ(message([&] { valid.no_dep(ta, Shape{}, Shape{}); }), expected);
  EXPECT_EQ(valid.tensor_count(), 0);
  EXPECT_FALSE(valid.has_error());
}

}  // namespace
}  // namespace tmr
