// What an orchestration receives: the run's arguments and the outputs of its submits.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <vector>

#include "tmr/orchestrator.hpp"
#include "unit/expect_error.hpp"

namespace tmr {
namespace {

using test::throws_error;

TEST(OrchestrationArgs, TensorsAndScalars) {
  std::vector<float> data(8);
  OrchestrationArgs args;
  args.tensors_.push_back(Tensor::wrap(data.data(), Shape{2, 4}, DType::f32));
  args.scalars_.push_back(std::bit_cast<std::uint32_t>(0.25f));
  args.scalars_.push_back(7);
  EXPECT_EQ(args.tensor_count(), 1);
  EXPECT_EQ(args.scalar_count(), 2);
  EXPECT_EQ(args.tensor(0).shape(), (Shape{2, 4}));
  EXPECT_EQ(args.scalar<float>(0), 0.25f);
  EXPECT_EQ(args.scalar<std::int32_t>(1), 7);
  EXPECT_EQ(args.scalar_bits(1), 7u);
}

TEST(OrchestrationArgs, IndicesAreChecked) {
  OrchestrationArgs args;
  EXPECT_TRUE(throws_error([&] { (void)args.tensor(0); }, ErrorCode::invalid_args,
                           "orchestration tensor #0 does not exist; the run passed 0 tensors, or "
                           "pass more with RunArgs::input/output/inout"));
  args.scalars_.push_back(1);
  EXPECT_TRUE(throws_error([&] { (void)args.scalar_bits(1); }, ErrorCode::invalid_args,
                           "orchestration scalar #1 does not exist; the run passed 1 scalars, so "
                           "use 0 to 0"));
  EXPECT_TRUE(throws_error([&] { (void)args.scalar<float>(-1); }, ErrorCode::invalid_args,
                           "scalar #-1 does not exist"));
}

TEST(TaskOutputs, EmptyOutputsAreChecked) {
  const TaskOutputs outputs{};
  EXPECT_EQ(outputs.size(), 0);
  EXPECT_FALSE(outputs.valid());
  EXPECT_FALSE(outputs.task().valid());
  EXPECT_TRUE(throws_error([&] { (void)outputs[0]; }, ErrorCode::invalid_args,
                           "task output #0 does not exist; the submit produced no outputs"));
  EXPECT_TRUE(throws_error([&] { (void)outputs[-1]; }, ErrorCode::invalid_args,
                           "check Orchestrator::status()"));
}

}  // namespace
}  // namespace tmr
