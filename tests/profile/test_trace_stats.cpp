// Statistics of a hand-built trace with fixed times against values worked out by hand.
#include <gtest/gtest.h>

#include <sstream>

#include "profile/sample_traces.hpp"
#include "tmr/profile/trace_stats.hpp"

namespace tmr::testing {
namespace {

const profile::KernelStats& row(const profile::TraceStats& stats, KernelId kernel) {
  for (const profile::KernelStats& k : stats.kernels) {
    if (k.kernel == kernel) return k;
  }
  throw std::runtime_error("no row for kernel " + std::to_string(kernel));
}

class TraceStatsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    register_sample_kernels(kernels);
    stats = profile::compute_trace_stats(small_sample_trace(), kernels);
  }
  KernelRegistry kernels;
  profile::TraceStats stats;
};

TEST_F(TraceStatsTest, CountsAndMakespan) {
  EXPECT_EQ(stats.tasks, 5u);
  EXPECT_EQ(stats.inline_tasks, 1u);
  EXPECT_EQ(stats.subtasks, 7u);
  EXPECT_EQ(stats.edges, 4u);
  EXPECT_EQ(stats.makespan_ns, 390u);  // task #4 completes at 390, after its last end (380)
  ASSERT_EQ(stats.kernels.size(), 3u);
}

TEST_F(TraceStatsTest, MatmulRow) {
  // Subtasks: #1 (dispatch 20, start 30, end 130, retire 140; ready 10) and #4's AIC share
  // (260, 272, 372, 380; ready 250).
  const profile::KernelStats& k = row(stats, kMatmul);
  EXPECT_EQ(k.name, "matmul");
  EXPECT_EQ(k.core_type, CoreType::aic);
  EXPECT_EQ(k.count, 2u);
  EXPECT_DOUBLE_EQ(k.mean_exec_ns, 100);
  EXPECT_DOUBLE_EQ(k.p50_exec_ns, 100);
  EXPECT_DOUBLE_EQ(k.p99_exec_ns, 100);
  EXPECT_DOUBLE_EQ(k.mean_ready_ns, (20 + 22) / 2.0);
  EXPECT_DOUBLE_EQ(k.mean_head_ns, (10 + 12) / 2.0);
  EXPECT_DOUBLE_EQ(k.mean_tail_ns, (10 + 8) / 2.0);
}

TEST_F(TraceStatsTest, VaddRow) {
  // Executions 50 and 70 (#2's blocks, ready 140) and 30 (#3, ready 20).
  const profile::KernelStats& k = row(stats, kVadd);
  EXPECT_EQ(k.core_type, CoreType::aiv);
  EXPECT_EQ(k.count, 3u);
  EXPECT_DOUBLE_EQ(k.mean_exec_ns, 50);
  EXPECT_DOUBLE_EQ(k.p50_exec_ns, 50);  // nearest rank: ceil(0.5 * 3) = 2nd of 30, 50, 70
  EXPECT_DOUBLE_EQ(k.p99_exec_ns, 70);
  EXPECT_DOUBLE_EQ(k.mean_ready_ns, (20 + 30 + 20) / 3.0);
  EXPECT_DOUBLE_EQ(k.mean_head_ns, (10 + 20 + 10) / 3.0);
  EXPECT_DOUBLE_EQ(k.mean_tail_ns, (5 + 10 + 10) / 3.0);
}

TEST_F(TraceStatsTest, VmixRow) {
  // #4's two AIV shares: start 275 end 335 and start 280 end 380, both retired at 390.
  const profile::KernelStats& k = row(stats, kVmix);
  EXPECT_EQ(k.count, 2u);
  EXPECT_DOUBLE_EQ(k.mean_exec_ns, 80);
  EXPECT_DOUBLE_EQ(k.p50_exec_ns, 60);
  EXPECT_DOUBLE_EQ(k.p99_exec_ns, 100);
  EXPECT_DOUBLE_EQ(k.mean_ready_ns, 27.5);
  EXPECT_DOUBLE_EQ(k.mean_head_ns, 17.5);
  EXPECT_DOUBLE_EQ(k.mean_tail_ns, 32.5);
}

TEST_F(TraceStatsTest, UtilisationPerCoreType) {
  ASSERT_EQ(stats.core_types.size(), 2u);
  EXPECT_EQ(stats.core_types[0].core_type, CoreType::aic);
  EXPECT_EQ(stats.core_types[0].cores, 1);
  EXPECT_DOUBLE_EQ(stats.core_types[0].busy_ns, 200);
  EXPECT_DOUBLE_EQ(stats.core_types[0].utilisation, 200.0 / 390.0);
  EXPECT_EQ(stats.core_types[1].cores, 2);
  EXPECT_DOUBLE_EQ(stats.core_types[1].busy_ns, 50 + 70 + 30 + 60 + 100);
  EXPECT_DOUBLE_EQ(stats.core_types[1].utilisation, 310.0 / 780.0);
}

TEST_F(TraceStatsTest, CriticalPath) {
  // Weights (longest subtask): #0 0, #1 100, #2 70, #3 30, #4 100. Longest chain 0-1-2-4 = 270.
  EXPECT_EQ(stats.critical_path_ns, 270u);
  EXPECT_EQ(stats.critical_path, (std::vector<std::uint64_t>{0, 1, 2, 4}));
}

TEST_F(TraceStatsTest, PrintsTheTable) {
  std::ostringstream out;
  profile::print_trace_stats(out, stats);
  const std::string text = out.str();
  EXPECT_NE(text.find("matmul"), std::string::npos);
  EXPECT_NE(text.find("vmix"), std::string::npos);
  EXPECT_NE(text.find("p99_us"), std::string::npos);
  EXPECT_NE(text.find("critical path: 0.27 us over 4 tasks; makespan 0.39 us"), std::string::npos)
      << text;
  EXPECT_NE(text.find("AIC 51.3% of 1 cores"), std::string::npos) << text;
}

TEST(TraceStats, NearestRankPercentiles) {
  std::vector<double> values;
  for (int i = 100; i >= 1; --i)
    values.push_back(i);
  EXPECT_DOUBLE_EQ(profile::percentile(values, 50), 50);
  EXPECT_DOUBLE_EQ(profile::percentile(values, 99), 99);
  EXPECT_DOUBLE_EQ(profile::percentile(values, 100), 100);
  EXPECT_DOUBLE_EQ(profile::percentile({7}, 99), 7);
  EXPECT_DOUBLE_EQ(profile::percentile({}, 50), 0);
}

TEST(TraceStats, EmptyTrace) {
  const profile::TraceStats stats = profile::compute_trace_stats(Trace{}, KernelRegistry{});
  EXPECT_EQ(stats.makespan_ns, 0u);
  EXPECT_EQ(stats.critical_path_ns, 0u);
  EXPECT_TRUE(stats.kernels.empty());
  std::ostringstream out;
  profile::print_trace_stats(out, stats);  // must not divide by zero
  EXPECT_NE(out.str().find("critical path"), std::string::npos);
}

}  // namespace
}  // namespace tmr::testing
