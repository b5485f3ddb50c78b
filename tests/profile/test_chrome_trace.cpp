// The Chrome/Perfetto trace parsed back: one complete event per subtask on the lane of its core,
// no overlap on a core lane, one flow pair per dependency; on a hand-built trace and on the
// traces of random programs run by the engine.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "profile/chrome_trace_check.hpp"
#include "profile/sample_traces.hpp"
#include "support/random_program.hpp"
#include "support/test_scale.hpp"
#include "tmr/profile/chrome_trace.hpp"

namespace tmr::testing {
namespace {

using nlohmann::json;

json trace_json(const Trace& trace, const KernelRegistry& kernels) {
  std::ostringstream out;
  profile::write_chrome_trace(out, trace, kernels);
  return json::parse(out.str());  // throws, failing the test, on invalid JSON
}

std::set<std::string> thread_names(const json& document) {
  std::set<std::string> names;
  for (const json& e : document["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "thread_name") names.insert(e["args"]["name"]);
  }
  return names;
}

TEST(ChromeTrace, HandBuiltTraceChecksOut) {
  KernelRegistry kernels;
  register_sample_kernels(kernels);
  const Trace trace = small_sample_trace();
  const json document = trace_json(trace, kernels);
  EXPECT_EQ(check_chrome_trace(document, trace), "");
  const std::set<std::string> names = thread_names(document);
  for (const char* lane :
       {"orchestrator", "scheduler 0", "cluster 0 AIC", "cluster 0 AIV0", "cluster 0 AIV1"}) {
    EXPECT_TRUE(names.count(lane)) << lane;
  }
}

TEST(ChromeTrace, EventsNameKernelAndIndices) {
  KernelRegistry kernels;
  register_sample_kernels(kernels);
  const json document = trace_json(small_sample_trace(), kernels);
  std::set<std::string> core_names;
  int dispatches = 0, retires = 0;
  for (const json& e : document["traceEvents"]) {
    if (e["ph"] == "X" && e["pid"] != profile::kRuntimeProcess) core_names.insert(e["name"]);
    if (e["ph"] == "i" && e["cat"] == "dispatch") ++dispatches;
    if (e["ph"] == "i" && e["cat"] == "retire") ++retires;
  }
  EXPECT_TRUE(core_names.count("vadd #2 b1/2"));
  EXPECT_TRUE(core_names.count("matmul #4"));
  EXPECT_TRUE(core_names.count("vmix #4"));
  EXPECT_EQ(dispatches, 7);
  EXPECT_EQ(retires, 7);
}

TEST(ChromeTrace, AllocProducerFlowStartsOnTheOrchestrator) {
  KernelRegistry kernels;
  register_sample_kernels(kernels);
  const json document = trace_json(small_sample_trace(), kernels);
  bool found = false;
  for (const json& e : document["traceEvents"]) {
    if (e["ph"] == "s" && e["args"]["producer"] == 0) {
      EXPECT_EQ(e["pid"], profile::kRuntimeProcess);
      EXPECT_EQ(e["tid"], profile::kOrchestratorThread);
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

TEST(ChromeTrace, LargeTraceChecksOut) {
  KernelRegistry kernels;
  register_sample_kernels(kernels);
  const Trace trace = large_sample_trace(scaled(5000, 200), 4, 7);
  EXPECT_EQ(check_chrome_trace(trace_json(trace, kernels), trace), "");
}

TEST(ChromeTrace, RandomProgramsOnTheEngine) {
  RuntimeConfig config;
  config.clusters = 4;
  config.scheduler_threads = 2;
  config.record_events = true;
  config.stall_timeout_s = 30;
  Runtime runtime(config);
  register_program_kernels(runtime.kernels());
  const int programs = scaled(30, 3);
  for (int p = 0; p < programs; ++p) {
    const std::uint64_t seed = 500 + static_cast<std::uint64_t>(p);
    const ProgramResult result = run_random_program(runtime, seed, ProgramShape{});
    ASSERT_TRUE(result.status.ok()) << "seed " << seed << ": " << result.status.to_string();
    ASSERT_TRUE(result.trace) << "seed " << seed;
    const json document = trace_json(*result.trace, runtime.kernels());
    ASSERT_EQ(check_chrome_trace(document, *result.trace), "") << "seed " << seed;
  }
}

}  // namespace
}  // namespace tmr::testing
