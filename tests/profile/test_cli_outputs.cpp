// `tmr run paged_attention --case Case2 --trace --swimlane --stats --graph` writes four valid
// files and prints the table; with several cases each case gets its own files.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "profile/render.hpp"
#include "profile/xml_check.hpp"

namespace tmr::testing {
namespace {

#ifdef TMR_CLI

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(CliOutputs, PagedAttentionCase2WritesFourValidFiles) {
  const TempDir dir("tmr-cli-profile");
  const auto trace = dir.path() / "t.json";
  const auto swimlane = dir.path() / "s.svg";
  const auto graph = dir.path() / "g.dot";
  const CommandResult r =
      run_command(std::string(TMR_CLI) + " run paged_attention --case Case2 --clusters 4 " +
                  "--sched-threads 2 --trace '" + trace.string() + "' --swimlane '" +
                  swimlane.string() + "' --stats --graph '" + graph.string() + "'");
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* text : {"result: PASS", "mean_us", "p99_us", "core utilisation: AIC",
                           "critical path:", "trace: ", "swimlane: ", "graph: ",
                           "MIX blocks taken back from a pending slot to an idle cluster: "}) {
    EXPECT_NE(r.output.find(text), std::string::npos) << text << "\n" << r.output;
  }

  const nlohmann::json document = nlohmann::json::parse(read_file(trace));
  std::size_t complete = 0, flows = 0;
  for (const nlohmann::json& e : document["traceEvents"]) {
    complete += e["ph"] == "X" ? 1 : 0;
    flows += e["ph"] == "s" ? 1 : 0;
  }
  EXPECT_GT(complete, 32u);  // 33 submits on the orchestrator plus one per subtask
  EXPECT_GT(flows, 0u);

  const std::string svg = read_file(swimlane);
  EXPECT_EQ(check_xml(svg).error, "");
  EXPECT_EQ(render_png(swimlane, dir.path() / "s.png"), "");

  const std::string dot = read_file(graph);
  EXPECT_EQ(dot.rfind("// tmr task dependency graph", 0), 0u);
  EXPECT_NE(dot.find(" -> "), std::string::npos);
  EXPECT_EQ(dot.back(), '\n');
}

// --stats reads the same statistics from a sim run (virtual time), take-back count included.
TEST(CliOutputs, StatsOnTheSim) {
  const CommandResult r =
      run_command(std::string(TMR_CLI) + " run paged_attention_mix --platform sim --stats");
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* text : {"result: PASS", "mean_us", "core utilisation: AIC",
                           "MIX blocks taken back from a pending slot to an idle cluster: "}) {
    EXPECT_NE(r.output.find(text), std::string::npos) << text << "\n" << r.output;
  }
}

TEST(CliOutputs, SeveralCasesGetTheCaseNameInTheFileName) {
  const TempDir dir("tmr-cli-profile");
  const CommandResult r =
      run_command(std::string(TMR_CLI) + " run vector_example --all-cases --clusters 2 --trace '" +
                  (dir.path() / "t.json").string() + "'");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "t.Default.json")) << r.output;
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "t.Wide.json")) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "t.json"));
}

TEST(CliOutputs, UnwritablePathFails) {
  const CommandResult r = run_command(std::string(TMR_CLI) +
                                      " run vector_example --clusters 2 --graph "
                                      "/nonexistent-dir/g.dot");
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("cannot write the graph"), std::string::npos) << r.output;
}

#endif  // TMR_CLI

}  // namespace
}  // namespace tmr::testing
