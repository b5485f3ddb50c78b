// The DOT graph of a hand-built trace: one node per task coloured by kind, the expected edges.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "profile/sample_traces.hpp"
#include "tmr/profile/task_graph_dot.hpp"

namespace tmr::testing {
namespace {

std::string dot_of(const Trace& trace) {
  KernelRegistry kernels;
  register_sample_kernels(kernels);
  std::ostringstream out;
  profile::write_task_graph_dot(out, trace, kernels);
  return out.str();
}

std::string node_line(const std::string& dot, const std::string& node) {
  const std::size_t at = dot.find("\n  " + node + " [");
  if (at == std::string::npos) return "";
  return dot.substr(at + 1, dot.find('\n', at + 1) - at - 1);
}

TEST(TaskGraphDot, HasEveryEdge) {
  const std::string dot = dot_of(small_sample_trace());
  for (const char* edge : {"t0 -> t1;", "t1 -> t2;", "t2 -> t4;", "t3 -> t4;"}) {
    EXPECT_NE(dot.find(edge), std::string::npos) << edge << "\n" << dot;
  }
  std::size_t arrows = 0;
  for (std::size_t at = dot.find("->"); at != std::string::npos; at = dot.find("->", at + 1))
    ++arrows;
  EXPECT_EQ(arrows, 4u);
  EXPECT_EQ(dot.rfind("digraph tmr_tasks {", std::string::npos) != std::string::npos, true);
  EXPECT_EQ(std::count(dot.begin(), dot.end(), '{'), std::count(dot.begin(), dot.end(), '}'));
}

TEST(TaskGraphDot, ColoursByKind) {
  const std::string dot = dot_of(small_sample_trace());
  const std::string aic = node_line(dot, "t1");
  const std::string aiv = node_line(dot, "t2");
  const std::string mix = node_line(dot, "t4");
  const std::string alloc = node_line(dot, "t0");
  EXPECT_NE(aic.find("label=\"matmul #1\""), std::string::npos) << aic;
  EXPECT_NE(aiv.find("label=\"vadd #2 x2\""), std::string::npos) << aiv;
  EXPECT_NE(mix.find("label=\"matmul+vmix #4\""), std::string::npos) << mix;
  EXPECT_NE(aic.find("#9ecae1"), std::string::npos) << aic;
  EXPECT_NE(aiv.find("#a1d99b"), std::string::npos) << aiv;
  EXPECT_NE(mix.find("#cbc9e2"), std::string::npos) << mix;
  EXPECT_NE(alloc.find("dashed"), std::string::npos) << alloc;
  EXPECT_EQ(aic.find("dashed"), std::string::npos) << aic;
}

TEST(TaskGraphDot, EmptyTraceIsAValidGraph) {
  const std::string dot = dot_of(Trace{});
  EXPECT_NE(dot.find("digraph tmr_tasks {"), std::string::npos);
  EXPECT_EQ(dot.find("->"), std::string::npos);
}

}  // namespace
}  // namespace tmr::testing
