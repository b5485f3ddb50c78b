// The kernel registry: dense ids, lookups, and errors for duplicates and unknown names.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tmr/kernel.hpp"
#include "unit/expect_error.hpp"

namespace tmr {
namespace {

using test::throws_error;

// Adds scalar 0 to every element of the contiguous f32 tensor 0.
void add_scalar(const KernelArgs& args) {
  const Tensor& t = args.tensor(0);
  float* data = t.data_as<float>();
  for (std::uint64_t i = 0; i < t.elements(); ++i)
    data[i] += args.scalar<float>(0);
}
void nothing(const KernelArgs&) {}

TEST(CoreType, Names) {
  EXPECT_EQ(core_type_name(CoreType::aic), "aic");
  EXPECT_EQ(core_type_name(CoreType::aiv), "aiv");
}

TEST(KernelRegistry, IdsAreDenseAndFound) {
  KernelRegistry kernels;
  EXPECT_EQ(kernels.size(), 0u);
  EXPECT_EQ(kernels.add("matmul", CoreType::aic, nothing), 0);
  EXPECT_EQ(kernels.add("add_scalar", CoreType::aiv, add_scalar), 1);
  EXPECT_EQ(kernels.add("softmax", CoreType::aiv, nothing), 2);
  EXPECT_EQ(kernels.size(), 3u);
  EXPECT_EQ(kernels.id("matmul"), 0);
  EXPECT_EQ(kernels.id("softmax"), 2);

  const KernelInfo* info = kernels.find(1);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->id, 1);
  EXPECT_EQ(info->name, "add_scalar");
  EXPECT_EQ(info->core_type, CoreType::aiv);
  EXPECT_EQ(info->fn, &add_scalar);
  EXPECT_EQ(kernels.find(3), nullptr);
  EXPECT_EQ(kernels.find(kNoKernel), nullptr);
  ASSERT_EQ(kernels.all().size(), 3u);
  EXPECT_EQ(kernels.all()[2].name, "softmax");
}

TEST(KernelRegistry, RegisteredFunctionRuns) {
  KernelRegistry kernels;
  const KernelId id = kernels.add("add_scalar", CoreType::aiv, add_scalar);
  std::vector<float> data{1, 2, 3};
  const Tensor t = Tensor::wrap(data.data(), Shape{3}, DType::f32);
  const std::uint64_t half = std::bit_cast<std::uint32_t>(0.5f);
  kernels.find(id)->fn(KernelArgs(&t, 1, &half, 1, 0, 1, 0, 0));
  EXPECT_EQ(data, (std::vector<float>{1.5f, 2.5f, 3.5f}));
}

TEST(KernelRegistry, CallableWithCapturesRuns) {
  KernelRegistry kernels;
  const float offset = 10.0f;
  const KernelId id = kernels.add("add_offset", CoreType::aiv, [offset](const KernelArgs& args) {
    float* data = args.tensor(0).data_as<float>();
    for (std::uint64_t i = 0; i < args.tensor(0).elements(); ++i)
      data[i] += offset;
  });
  std::vector<float> data{1, 2};
  const Tensor t = Tensor::wrap(data.data(), Shape{2}, DType::f32);
  KernelRegistry copy = kernels;  // the copy shares the callable
  kernels = KernelRegistry{};     // ...which outlives the original registry
  copy.find(id)->fn(KernelArgs(&t, 1, nullptr, 0, 0, 1, 0, 0));
  EXPECT_EQ(data, (std::vector<float>{11, 12}));
}

TEST(KernelRegistry, FunctionWithContextRuns) {
  KernelRegistry kernels;
  float factor = 3.0f;
  const KernelId id = kernels.add(
      "scale_by_context", CoreType::aic,
      [](void* context, const KernelArgs& args) {
        args.tensor(0).data_as<float>()[0] *= *static_cast<const float*>(context);
      },
      &factor);
  EXPECT_EQ(kernels.find(id)->fn.context(), &factor);
  std::vector<float> data{2};
  const Tensor t = Tensor::wrap(data.data(), Shape{1}, DType::f32);
  kernels.find(id)->fn(KernelArgs(&t, 1, nullptr, 0, 0, 1, 0, 0));
  EXPECT_EQ(data[0], 6.0f);
  EXPECT_TRUE(throws_error(
      [&] { kernels.add("null_with_context", CoreType::aic, KernelFn::WithContext{}, &factor); },
      ErrorCode::invalid_args, "has a null function"));
}

TEST(KernelArgs, TagsAreExposedAndChecked) {
  std::vector<float> data{0, 0};
  const Tensor tensors[2] = {Tensor::wrap(data.data(), Shape{1}, DType::f32),
                             Tensor::wrap(data.data() + 1, Shape{1}, DType::f32)};
  const ArgTag tags[2] = {ArgTag::in, ArgTag::inout};
  const KernelArgs tagged(tensors, 2, nullptr, 0, 0, 1, 0, 0, tags);
  EXPECT_EQ(tagged.tag(0), ArgTag::in);
  EXPECT_EQ(tagged.tag(1), ArgTag::inout);
  EXPECT_TRUE(throws_error([&] { (void)tagged.tag(2); }, ErrorCode::invalid_args,
                           "the task has 2 tensors"));
  const KernelArgs untagged(tensors, 2, nullptr, 0, 0, 1, 0, 0);
  EXPECT_TRUE(
      throws_error([&] { (void)untagged.tag(0); }, ErrorCode::invalid_args, "built without tags"));
}

TEST(KernelRegistry, CopiesAreIndependent) {
  KernelRegistry kernels;
  kernels.add("a", CoreType::aic, nothing);
  KernelRegistry copy = kernels;
  copy.add("b", CoreType::aiv, nothing);
  EXPECT_EQ(kernels.size(), 1u);
  EXPECT_EQ(copy.id("b"), 1);
}

TEST(KernelRegistry, DuplicateNameIsAnError) {
  KernelRegistry kernels;
  kernels.add("matmul", CoreType::aic, nothing);
  EXPECT_TRUE(throws_error([&] { kernels.add("matmul", CoreType::aiv, nothing); },
                           ErrorCode::invalid_args,
                           "kernel 'matmul' is already registered (id 0, aic)"));
  EXPECT_EQ(kernels.size(), 1u);  // unchanged
}

TEST(KernelRegistry, NullFunctionOrEmptyNameIsAnError) {
  KernelRegistry kernels;
  EXPECT_TRUE(throws_error([&] { kernels.add("broken", CoreType::aiv, nullptr); },
                           ErrorCode::invalid_args, "kernel 'broken' has a null function"));
  EXPECT_TRUE(throws_error([&] { kernels.add("", CoreType::aiv, nothing); },
                           ErrorCode::invalid_args, "kernel name is empty"));
  EXPECT_EQ(kernels.size(), 0u);
}

TEST(KernelRegistry, UnknownNameListsTheKnownKernels) {
  KernelRegistry kernels;
  EXPECT_TRUE(throws_error([&] { (void)kernels.id("matmul"); }, ErrorCode::unknown_kernel,
                           "no kernel named 'matmul' is registered (the registry is empty)"));
  kernels.add("matmul", CoreType::aic, nothing);
  kernels.add("softmax", CoreType::aiv, nothing);
  EXPECT_TRUE(throws_error([&] { (void)kernels.id("matmull"); }, ErrorCode::unknown_kernel,
                           "no kernel named 'matmull' is registered (known: matmul, softmax); "
                           "register it with KernelRegistry::add or fix the name"));
}

TEST(KernelRegistry, LongListsAreTruncated) {
  KernelRegistry kernels;
  for (int i = 0; i < 40; ++i) {
    std::string name = "k";  // appended, not `"k" + ...`: GCC 12 -Wrestrict misfires on that
    name += std::to_string(i);
    kernels.add(std::move(name), CoreType::aiv, nothing);
  }
  EXPECT_TRUE(throws_error([&] { (void)kernels.id("missing"); }, ErrorCode::unknown_kernel,
                           "k31, ... (8 more)"));
}

}  // namespace
}  // namespace tmr
