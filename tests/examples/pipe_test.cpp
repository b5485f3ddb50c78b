// The cluster pipe: bounded, blocking, tagged, and never hangs.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "common/cluster_pipe.hpp"
#include "tmr/config.hpp"
#include "tmr/error.hpp"

namespace tmr::examples {
namespace {

using namespace std::chrono_literals;

// Tests use the last cluster, away from the clusters of runs in other tests of this process.
constexpr std::uint32_t kTestCluster = kMaxClusters - 1;

TEST(ClusterPipe, DeliversInOrderAcrossThreadsAndBlocksWhenFull) {
  ClusterPipe& pipe = cluster_pipe(kTestCluster, 0);
  const std::uint64_t tag = next_pipe_tag();
  constexpr int kMessages = 50;
  std::thread writer([&] {
    for (int i = 0; i < kMessages; ++i)
      pipe.push({tag, {static_cast<float>(i)}}, 5000ms);
  });
  for (int i = 0; i < kMessages; ++i) {
    const PipeMessage message = pipe.pop(tag, 5000ms);
    ASSERT_EQ(message.payload.at(0), static_cast<float>(i));
  }
  writer.join();
}

TEST(ClusterPipe, PopTimesOutWithAnErrorInsteadOfHanging) {
  ClusterPipe& pipe = cluster_pipe(kTestCluster, 1);
  try {
    pipe.pop(next_pipe_tag(), 50ms);
    FAIL() << "pop on an empty pipe returned";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kernel_exception);
    EXPECT_NE(std::string(e.what()).find("run at the same time"), std::string::npos) << e.what();
  }
}

TEST(ClusterPipe, PushTimesOutWhenNobodyReads) {
  ClusterPipe& pipe = cluster_pipe(kTestCluster, 2);
  const std::uint64_t tag = next_pipe_tag();
  for (std::size_t i = 0; i < kPipeCapacity; ++i)
    pipe.push({tag, {}}, 50ms);
  EXPECT_THROW(pipe.push({tag, {}}, 50ms), Error);
  for (std::size_t i = 0; i < kPipeCapacity; ++i)
    pipe.pop(tag, 50ms);  // leave it empty
}

TEST(ClusterPipe, DropsMessagesOfAnAbortedEarlierTaskAndRejectsANewerOne) {
  ClusterPipe& pipe = cluster_pipe(kTestCluster, 3);
  const std::uint64_t stale = next_pipe_tag();
  const std::uint64_t current = next_pipe_tag();
  const std::uint64_t newer = next_pipe_tag();
  pipe.push({stale, {1.0f}}, 50ms);
  pipe.push({current, {2.0f}}, 50ms);
  EXPECT_EQ(pipe.pop(current, 50ms).payload.at(0), 2.0f);
  pipe.push({newer, {3.0f}}, 50ms);
  EXPECT_THROW(pipe.pop(current, 50ms), Error);
  EXPECT_EQ(pipe.pop(newer, 50ms).payload.at(0), 3.0f);
}

TEST(ClusterPipe, RejectsClustersAndChannelsOutOfRange) {
  EXPECT_THROW(cluster_pipe(kMaxClusters, 0), Error);
  EXPECT_THROW(cluster_pipe(0, kPipeChannels), Error);
}

}  // namespace
}  // namespace tmr::examples
