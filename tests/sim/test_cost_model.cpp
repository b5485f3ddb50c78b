// Unit tests of the sim cost model: orchestrator and step costs, kernel durations (fixed, cost
// hint, roofline compute- and memory-bound, shared bandwidth) and cost files.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "platform/sim/cost_model.hpp"
#include "platform/sim/event_queue.hpp"
#include "tmr/config.hpp"
#include "tmr/error.hpp"

namespace tmr::detail::sim {
namespace {

double fixed_flops(const KernelArgs&) {
  return 13e6;
}  // 1000 ns on a 13,000 GFLOP/s AIC

void noop(const KernelArgs&) {}

// KernelArgs over one f32 tensor of `elements` elements.
struct OneTensor {
  explicit OneTensor(std::uint32_t elements, std::uint32_t blocks = 1)
      : data(elements), tensor(Tensor::wrap(data.data(), {elements}, DType::f32)), blocks(blocks) {}
  KernelArgs args() const { return KernelArgs(&tensor, 1, nullptr, 0, 0, blocks, 0, 0); }
  std::vector<float> data;
  Tensor tensor;
  std::uint32_t blocks;
};

TEST(SimCostModel, OrchestratorCostsFollowTheTable) {
  const SimCostModel c;
  EXPECT_EQ(orchestrator_cost_ns(c, OrchestratorWork::submit, 3),
            static_cast<std::uint64_t>(c.submit_ns + 3 * c.submit_per_tensor_ns));
  EXPECT_EQ(orchestrator_cost_ns(c, OrchestratorWork::alloc, 2),
            static_cast<std::uint64_t>(c.alloc_ns + 2 * c.alloc_per_output_ns));
  EXPECT_EQ(orchestrator_cost_ns(c, OrchestratorWork::wire, 5),
            static_cast<std::uint64_t>(5 * c.wire_edge_ns));
  EXPECT_EQ(orchestrator_cost_ns(c, OrchestratorWork::scope_end, 4),
            static_cast<std::uint64_t>(c.scope_end_ns + 4 * c.scope_end_per_task_ns));
  EXPECT_EQ(orchestrator_cost_ns(c, OrchestratorWork::element_access, 1),
            static_cast<std::uint64_t>(c.element_access_ns));
  EXPECT_EQ(
      orchestrator_cost_ns(c, OrchestratorWork::loop_setup_base, 10),
      static_cast<std::uint64_t>(std::llround((c.loop_setup_fixed + c.loop_setup_square * 100) *
                                              (c.submit_ns + 4 * c.submit_per_tensor_ns))));
  EXPECT_EQ(orchestrator_cost_ns(c, OrchestratorWork::element_read_quiet, 1),
            static_cast<std::uint64_t>(std::llround(c.quiet_read_ratio * c.element_access_ns)));
  EXPECT_EQ(orchestrator_cost_ns(c, OrchestratorWork::submit_analysed, 4),
            static_cast<std::uint64_t>(std::llround(c.analysed_submit_ratio *
                                                    (c.submit_ns + 4 * c.submit_per_tensor_ns))));
  EXPECT_EQ(orchestrator_cost_ns(c, OrchestratorWork::submit_wide, 4),
            static_cast<std::uint64_t>(
                std::llround(c.wide_submit_ratio * (c.submit_ns + 4 * c.submit_per_tensor_ns))));
  EXPECT_EQ(orchestrator_cost_ns(c, OrchestratorWork::submit_pattern, 4),
            static_cast<std::uint64_t>(
                std::llround(c.pattern_submit_ratio * (c.submit_ns + 4 * c.submit_per_tensor_ns))));
  // All are measured shares of an ordinary submit (docs/sim.md): a replayed submit is cheaper,
  // and a trusted pattern submit (no replay compare) cheaper than a compared one.
  EXPECT_GT(c.analysed_submit_ratio, 0.0);
  EXPECT_LT(c.analysed_submit_ratio, 1.0);
  EXPECT_GT(c.wide_submit_ratio, 0.0);
  EXPECT_LT(c.wide_submit_ratio, 1.0);
  EXPECT_GT(c.pattern_submit_ratio, 0.0);
  EXPECT_LT(c.pattern_submit_ratio, c.analysed_submit_ratio);
  EXPECT_EQ(orchestrator_cost_ns(c, OrchestratorWork::loop_setup, 4),
            static_cast<std::uint64_t>(
                std::llround(c.loop_setup_ratio * (c.submit_ns + 4 * c.submit_per_tensor_ns))));
  // A rebound template's set-up: kept_setup_ratio of both parts of a learned one's.
  EXPECT_EQ(orchestrator_cost_ns(c, OrchestratorWork::loop_rebind, 4),
            static_cast<std::uint64_t>(std::llround(c.kept_setup_ratio * c.loop_setup_ratio *
                                                    (c.submit_ns + 4 * c.submit_per_tensor_ns))));
  EXPECT_EQ(orchestrator_cost_ns(c, OrchestratorWork::loop_rebind_base, 10),
            static_cast<std::uint64_t>(std::llround(
                c.kept_setup_base_ratio * (c.loop_setup_fixed + c.loop_setup_square * 100) *
                (c.submit_ns + 4 * c.submit_per_tensor_ns))));
  EXPECT_LT(c.kept_setup_ratio, 1.0);  // measured below a learned template's (docs/sim.md)
  EXPECT_LT(c.kept_setup_base_ratio, 1.0);
  // Calibration (`tmr fit`): a 3-tensor submit is about alternating_matmul_add's 0.77 us per
  // task, and 1 to 7 tensors stay within the reference's 0.56-0.93 us per-submit figures.
  EXPECT_NEAR(static_cast<double>(orchestrator_cost_ns(c, OrchestratorWork::submit, 3)), 770, 40);
  for (std::uint32_t tensors = 1; tensors <= 7; ++tensors) {
    const auto ns = orchestrator_cost_ns(c, OrchestratorWork::submit, tensors);
    EXPECT_GE(ns, 560u);
    EXPECT_LE(ns, 930u);
  }
}

TEST(SimCostModel, StepCostChargesEveryCounterDelta) {
  const SimCostModel c;
  Scheduler::StepCounters before;
  before.polls = 10;  // only deltas count
  Scheduler::StepCounters after = before;
  after.polls += 2;
  after.completions += 1;
  after.tasks_completed += 1;
  after.dispatches += 3;
  after.pops += 3;
  after.pushes += 1;
  after.edges += 4;
  const double expected = c.step_base_ns + 2 * c.poll_ns + c.completion_ns + c.retire_ns +
                          3 * (c.dispatch_write_ns + c.doorbell_ns) + 3 * c.pop_ns + c.push_ns +
                          4 * c.edge_ns;
  EXPECT_EQ(step_cost_ns(c, before, after), static_cast<std::uint64_t>(expected));
  EXPECT_EQ(step_cost_ns(c, before, before), static_cast<std::uint64_t>(c.step_base_ns));
}

TEST(SimCostModel, FixedDurationsWinAndNamesOverrideHints) {
  KernelRegistry kernels;
  const KernelId a = kernels.add("a", CoreType::aic, noop);
  const KernelId b = kernels.add("b", CoreType::aiv, noop);
  kernels.set_cost(a, {5000, nullptr});
  kernels.set_cost(b, {7000, nullptr});
  SimCostModel c;
  c.kernel_start_ns = 0;  // added to fixed durations too (checked below)
  c.kernel_ns["b"] = 1234;
  const std::vector<KernelTiming> timings = resolve_kernel_timings(c, kernels);
  ASSERT_EQ(timings.size(), 2u);
  const OneTensor t(1 << 20);
  EXPECT_EQ(kernel_duration_ns(c, timings[a], CoreType::aic, t.args(), 1), 5000u);
  EXPECT_EQ(kernel_duration_ns(c, timings[b], CoreType::aiv, t.args(), 1), 1234u);
  c.kernel_start_ns = 100;
  EXPECT_EQ(kernel_duration_ns(c, timings[a], CoreType::aic, t.args(), 1), 5100u);
}

TEST(SimCostModel, RooflineTakesTheSlowerOfComputeAndMemory) {
  SimCostModel c;
  c.kernel_start_ns = 0;  // the roofline alone (the start and tile terms: next test)
  c.tile_ns = 0;
  const OneTensor small(16);  // 64 bytes: compute-bound
  const KernelTiming compute{0, fixed_flops, CoreType::aic};
  EXPECT_EQ(kernel_duration_ns(c, compute, CoreType::aic, small.args(), 1), 1000u);
  // The same flops on an AIV run at the vector rate.
  EXPECT_EQ(kernel_duration_ns(c, compute, CoreType::aiv, small.args(), 1),
            static_cast<std::uint64_t>(13e6 / c.aiv_gflops));
  // 4 MB with no flops: memory-bound at the per-core cap...
  const OneTensor big(1 << 20);
  const KernelTiming memory{0, nullptr, CoreType::aiv};
  const double bytes = 4.0 * (1 << 20);
  EXPECT_EQ(kernel_duration_ns(c, memory, CoreType::aiv, big.args(), 1),
            static_cast<std::uint64_t>(bytes / c.core_max_gbps + 0.5));
  // ...and slower when 72 cores share the memory bandwidth.
  EXPECT_EQ(kernel_duration_ns(c, memory, CoreType::aiv, big.args(), 72),
            static_cast<std::uint64_t>(bytes / (c.memory_gbps / 72) + 0.5));
  // SPMD: each of 4 blocks moves a quarter of the bytes.
  const OneTensor spmd(1 << 20, 4);
  EXPECT_EQ(kernel_duration_ns(c, memory, CoreType::aiv, spmd.args(), 1),
            static_cast<std::uint64_t>(bytes / 4 / c.core_max_gbps + 0.5));
  // Almost nothing to go on: the minimum.
  const OneTensor none(1);
  EXPECT_EQ(kernel_duration_ns(c, memory, CoreType::aiv, none.args(), 1),
            static_cast<std::uint64_t>(c.min_kernel_ns));
}

// A kernel start costs kernel_start_ns on top; every tile moved costs tile_ns on the memory side,
// which overlaps with compute; the kernel's own bytes and tiles hints replace the defaults.
double no_flops(const KernelArgs&) {
  return 0;
}
double hinted_bytes(const KernelArgs&) {
  return 4000;  // 10 ns at 400 GB/s
}
double hinted_tiles(const KernelArgs&) {
  return 10;
}

TEST(SimCostModel, StartCostAndTilesAddToTheMemorySide) {
  SimCostModel c;
  c.kernel_start_ns = 700;
  c.tile_ns = 50;
  c.core_max_gbps = 400;
  c.memory_gbps = 4000;
  c.min_kernel_ns = 0;
  const OneTensor t(1000);  // 4000 bytes, 1 tensor argument = 1 tile by default
  const KernelTiming plain{0, no_flops, CoreType::aiv};
  EXPECT_EQ(kernel_duration_ns(c, plain, CoreType::aiv, t.args(), 1), 700u + 50u + 10u);
  KernelTiming hinted{0, no_flops, CoreType::aiv};
  hinted.bytes = hinted_bytes;
  hinted.tiles = hinted_tiles;
  EXPECT_EQ(kernel_duration_ns(c, hinted, CoreType::aiv, t.args(), 1), 700u + 500u + 10u);
  // 20 running cores share 4000 GB/s: 200 GB/s each, below the per-core cap.
  EXPECT_EQ(kernel_duration_ns(c, hinted, CoreType::aiv, t.args(), 20), 700u + 500u + 20u);
  // Compute-bound: 13e6 flops at 13,000 GFLOP/s = 1000 ns hides the 510 ns of memory.
  const KernelTiming compute{0, fixed_flops, CoreType::aic};
  EXPECT_EQ(kernel_duration_ns(c, compute, CoreType::aic, t.args(), 1), 700u + 1000u);
}

TEST(SimCostModel, JsonOverridesOnlyTheKeysItSets) {
  SimCostModel c;
  c.apply_json_text(R"({"submit_ns": 900, "pickup_ns": 1390, "kernel_ns": {"pa_qk": 2500}})",
                    "test");
  EXPECT_EQ(c.submit_ns, 900);
  EXPECT_EQ(c.pickup_ns, 1390);
  EXPECT_EQ(c.kernel_ns.at("pa_qk"), 2500);
  EXPECT_EQ(c.poll_ns, SimCostModel{}.poll_ns);
  // Every ratio of a replayed submit is its own key.
  c.apply_json_text(R"({"pattern_submit_ratio": 0.5, "wide_submit_ratio": 0.7})", "test");
  EXPECT_EQ(c.pattern_submit_ratio, 0.5);
  EXPECT_EQ(c.wide_submit_ratio, 0.7);
  EXPECT_EQ(c.analysed_submit_ratio, SimCostModel{}.analysed_submit_ratio);
  EXPECT_EQ(orchestrator_cost_ns(c, OrchestratorWork::submit_pattern, 0), 450u);  // 0.5 x 900
}

TEST(SimCostModel, BadFilesAreErrorsThatNameTheProblem) {
  auto message = [](const std::string& text) {
    SimCostModel c;
    try {
      c.apply_json_text(text, "'x.json'");
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_config);
      EXPECT_EQ(c.submit_ns, SimCostModel{}.submit_ns) << "a failed file changes nothing";
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(R"({"submit_ns": 1, "sumbit_ns": 2})").find("unknown key 'sumbit_ns'"),
            std::string::npos);
  EXPECT_NE(message(R"({"poll_ns": -5})").find("'poll_ns' must be a finite number >= 0"),
            std::string::npos);
  EXPECT_NE(message(R"({"poll_ns": "fast"})").find("must be a number"), std::string::npos);
  EXPECT_NE(message(R"({"pattern_submit_ratio": -0.1})")
                .find("'pattern_submit_ratio' must be a finite number >= 0"),
            std::string::npos);
  EXPECT_NE(
      message(R"({"pattern_submit_ratio": "low"})").find("'pattern_submit_ratio' must be a number"),
      std::string::npos);
  EXPECT_NE(message("{nope").find("not valid JSON"), std::string::npos);
  EXPECT_NE(message(R"({"kernel_jitter": 1})").find("'kernel_jitter' must be below 1"),
            std::string::npos);
  EXPECT_NE(message("[1, 2]").find("JSON object"), std::string::npos);
  SimCostModel c;
  EXPECT_THROW(c.apply_json_file("/nonexistent/costs.json"), Error);
}

TEST(SimCostModel, FileIsReadThroughTheEnvironment) {
  const std::string path = ::testing::TempDir() + "tmr_sim_costs.json";
  {
    std::ofstream file(path);
    file << R"({"submit_ns": 700})";
  }
  ::setenv("TMR_SIM_COST_MODEL", path.c_str(), 1);
  ::setenv("TMR_PLATFORM", "sim", 1);
  RuntimeConfig config;
  config.apply_env();
  ::unsetenv("TMR_SIM_COST_MODEL");
  ::unsetenv("TMR_PLATFORM");
  std::remove(path.c_str());
  EXPECT_EQ(config.platform, PlatformKind::sim);
  EXPECT_EQ(config.sim.costs.submit_ns, 700);
}

TEST(SimEventQueue, OrdersByTimeThenBySchedulingOrder) {
  EventQueue q;
  q.push(20, EventKind::core_finish, 1);
  q.push(10, EventKind::core_pickup, 2);
  q.push(20, EventKind::scheduler_step, 3);
  q.push(10, EventKind::scheduler_step, 4);
  std::vector<int> order;
  while (!q.empty())
    order.push_back(q.pop().index);
  EXPECT_EQ(order, (std::vector<int>{2, 4, 1, 3}));
}

}  // namespace
}  // namespace tmr::detail::sim
