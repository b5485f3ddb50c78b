// Property test: random orchestration programs (several buffers, random views and tags, nested
// scopes, MIX and SPMD tasks, element reads and writes) must (1) order every pair of conflicting
// tasks (RAW, WAW, WAR on overlapping regions) in the recorded events, and (2) leave exactly the
// buffers a sequential execution leaves.
#include <gtest/gtest.h>

#include "support/platforms.hpp"
#include "support/random_program.hpp"
#include "support/test_scale.hpp"

namespace tmr::testing {
namespace {

RuntimeConfig oracle_config() {
  RuntimeConfig config;
  config.clusters = 4;
  config.scheduler_threads = 2;
  config.record_events = true;
  config.stall_timeout_s = 30;
  return config;
}

TEST(DependencyOracle, ThousandRandomProgramsMatchSequentialExecution) {
  Runtime runtime(oracle_config());
  register_program_kernels(runtime.kernels());
  EXPECT_EQ(run_and_check_programs(runtime, ProgramShape{}, scaled(1000, 20), 1), "");
}

TEST(DependencyOracle, ManySmallViewsOfFewBuffers) {
  Runtime runtime(oracle_config());
  register_program_kernels(runtime.kernels());
  ProgramShape shape;
  shape.buffers = 1;
  shape.max_dim = 24;
  shape.operations = 80;
  EXPECT_EQ(run_and_check_programs(runtime, shape, scaled(200, 5), 100000), "");
}

// Whole rows read by many live tasks and now and then written, alongside random views (the
// TensorMap's merged reader entries, readers retiring while others still run, partial overlaps).
TEST(DependencyOracle, ManyReadersOfWholeRows) {
  Runtime runtime(oracle_config());
  register_program_kernels(runtime.kernels());
  EXPECT_EQ(run_and_check_programs(runtime, hot_rows_shape(), scaled(200, 5), 300000), "");
}

// Programs that switch between arguments that miss their slot lines (partial boxes, transposes,
// fresh outputs) and arguments that have them (whole rows of one buffer), and back: the plain
// submit's line path pauses in the one and comes back in the other (Dependence,
// collect_and_record), and every dependency is still ordered.
TEST(DependencyOracle, ALinePathThatPausesAndComesBack) {
  Runtime runtime(oracle_config());
  register_program_kernels(runtime.kernels());
  EXPECT_EQ(run_and_check_programs(runtime, line_phases_shape(), scaled(20, 3), 400000), "");
}

// A dependency pool that fills while a task is being wired: the orchestrator waits for nodes
// after the task was admitted and before its producers are wired, and reclaims retired tasks
// meanwhile. The task being wired must stay live through that wait (its TensorMap entries order
// later tasks), however far the watermark moves. A pool this small also runs some programs into
// a real dep_pool_overflow (scopes holding every node): those end with that named error and are
// not checked further; most programs complete and must match.
TEST(DependencyOracle, TinyDependencyPoolsStillMatch) {
  Runtime runtime(with_tiny_dependency_pool(oracle_config()));
  register_program_kernels(runtime.kernels());
  const int programs = scaled(200, 10);
  int overflows = 0;
  EXPECT_EQ(run_and_check_programs(runtime, tiny_ring_shape(8), programs, 210000, &overflows), "");
  EXPECT_LT(overflows, programs / 2);  // most programs fit the pool and are checked
}

TEST(DependencyOracle, TinyRingsStillComplete) {
  for (const std::uint32_t window : {4u, 8u, 16u}) {
    Runtime runtime(with_tiny_rings(oracle_config(), window));
    register_program_kernels(runtime.kernels());
    EXPECT_EQ(
        run_and_check_programs(runtime, tiny_ring_shape(window), scaled(100, 5), 200000 + window),
        "")
        << "window " << window;
  }
}

// A plain submit (no trace recorded) takes its producers' dependency nodes at once when the pool
// has room, and otherwise the out-of-line steps: it waits for nodes while retiring tasks can free
// them, and names a task that depends on more tasks than the pool holds. On both platforms.
void add_one(const KernelArgs& a) {
  a.tensor(0).data_as<float>()[0] += 1.0f;
}
void no_work(const KernelArgs&) {}

class PlainSubmitPool : public ::testing::TestWithParam<PlatformKind> {
 protected:
  RuntimeConfig config() const {
    RuntimeConfig c;
    c.platform = GetParam();
    c.clusters = 1;
    c.scheduler_threads = 1;
    c.ring.dep_pool = 16;  // the smallest pool
    c.stall_timeout_s = 30;
    return c;
  }
};

TEST_P(PlainSubmitPool, WaitsForDependencyNodesAndKeepsTheOrder) {
  Runtime runtime(config());
  const KernelId k = runtime.kernels().add("add_one", CoreType::aiv, &add_one);
  float cell = 0.0f;
  // Each task waits for the one before (one node each): 300 nodes pass through a pool of 16.
  const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor t = Tensor::wrap(&cell, {1}, DType::f32);
    for (int i = 0; i < 300; ++i)
      o.submit_aiv(k, Args().inout(t));
  });
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.stats.tasks_submitted, 300u);
  EXPECT_EQ(cell, 300.0f);  // every increment, one after another
}

TEST_P(PlainSubmitPool, NamesATaskWithMoreProducersThanThePoolHolds) {
  Runtime runtime(config());
  const KernelId k = runtime.kernels().add("no_work", CoreType::aiv, &no_work);
  float cell = 0.0f;
  const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor t = Tensor::wrap(&cell, {1}, DType::f32);
    TMR_SCOPE(o);
    // 20 readers that create buffers: their scope holds them (none retires), so the write after
    // them has 20 live producers, past the pool's 16 nodes.
    for (int i = 0; i < 20; ++i)
      o.submit_aiv(k, Args().in(t).out(TensorSpec({4}, DType::f32)));
    o.submit_aiv(k, Args().inout(t));
  });
  EXPECT_EQ(r.status.code, ErrorCode::dependency_overflow) << r.status.to_string();
  EXPECT_NE(r.status.message.find("depends on 20 earlier tasks"), std::string::npos)
      << r.status.message;
  EXPECT_NE(r.status.message.find("TMR_RING_DEP_POOL"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Platforms, PlainSubmitPool, both_platforms(), platform_name);

// The random programs without a trace on threads (a run that neither records nor charges): every
// plain submit without out(...) arguments outside a parallel_for takes
// OrchestratorCore::submit_plain, the others (fresh outputs, loops) the generic steps, in the
// same programs. Element reads and the final buffers must match the sequential execution.
std::string run_and_check_untraced(Runtime& runtime, const ProgramShape& shape, int count,
                                   std::uint64_t seed0) {
  for (int p = 0; p < count; ++p) {
    const std::uint64_t seed = seed0 + static_cast<std::uint64_t>(p);
    const std::string why = check_values(run_random_program(runtime, seed, shape));
    if (!why.empty()) return "seed " + std::to_string(seed) + ": " + why;
  }
  return "";
}

TEST(DependencyOracle, UntracedPlainSubmitsMatchSequentialExecution) {
  RuntimeConfig config = oracle_config();
  config.record_events = false;
  Runtime runtime(config);
  register_program_kernels(runtime.kernels());
  EXPECT_EQ(run_and_check_untraced(runtime, ProgramShape{}, scaled(400, 10), 500000), "");
  EXPECT_EQ(run_and_check_untraced(runtime, hot_rows_shape(), scaled(100, 5), 600000), "");
  ProgramShape no_outputs;  // every submit outside a loop takes submit_plain
  no_outputs.fresh_outputs = false;
  no_outputs.loop_chance = 0.1;  // and loops end between them (their deferred entries)
  EXPECT_EQ(run_and_check_untraced(runtime, no_outputs, scaled(200, 5), 700000), "");
}

TEST(DependencyOracle, UntracedPlainSubmitsOnTinyRings) {
  for (const std::uint32_t window : {4u, 8u}) {
    RuntimeConfig config = with_tiny_rings(oracle_config(), window);
    config.record_events = false;
    Runtime runtime(config);
    register_program_kernels(runtime.kernels());
    EXPECT_EQ(
        run_and_check_untraced(runtime, tiny_ring_shape(window), scaled(100, 5), 800000 + window),
        "")
        << "window " << window;
  }
}

// Untraced programs whose tasks mostly create buffers (OrchestratorCore::submit_plain_outputs
// on threads; sim charges work, so there the same programs take the generic steps): scoped tasks
// held until their scope ends, on windows of 4 and 8 tasks with a 16 KiB heap that every program
// wraps (it creates more than all rings' heaps hold), and with a dependency pool of 32 nodes (its
// waits; a program whose scopes hold more than the pool ends with dep_pool_overflow, a named
// error, and is not checked).
class UntracedFreshOutputs : public ::testing::TestWithParam<PlatformKind> {};

TEST_P(UntracedFreshOutputs, MatchSequentialExecutionOnTinyRings) {
  for (const std::uint32_t window : {4u, 8u}) {
    RuntimeConfig config = with_tiny_rings(oracle_config(), window);
    config.platform = GetParam();
    config.record_events = false;
    Runtime runtime(config);
    register_program_kernels(runtime.kernels());
    const ProgramShape shape = fresh_outputs_shape(window);
    const int programs = scaled(40, 4);
    for (int p = 0; p < programs; ++p) {
      const std::uint64_t seed = 900000 + 1000 * window + static_cast<std::uint64_t>(p);
      const ProgramResult result = run_random_program(runtime, seed, shape);
      ASSERT_EQ(check_values(result), "") << "window " << window << ", seed " << seed;
      // More than every ring's heap: at least one ring's heap wrapped in the run.
      EXPECT_GT(result.fresh_bytes, std::uint64_t{kRingCount} * config.ring.heap_bytes)
          << "seed " << seed;
    }
  }
}

TEST_P(UntracedFreshOutputs, MatchSequentialExecutionWithATinyDependencyPool) {
  RuntimeConfig config = with_tiny_dependency_pool(oracle_config());
  config.platform = GetParam();
  config.record_events = false;
  Runtime runtime(config);
  register_program_kernels(runtime.kernels());
  const ProgramShape shape = fresh_outputs_shape(8);
  const int programs = scaled(40, 4);
  int overflows = 0;
  for (int p = 0; p < programs; ++p) {
    const std::uint64_t seed = 950000 + static_cast<std::uint64_t>(p);
    const ProgramResult result = run_random_program(runtime, seed, shape);
    if (result.status.code == ErrorCode::dep_pool_overflow) {
      ++overflows;
      continue;
    }
    ASSERT_EQ(check_values(result), "") << "seed " << seed;
  }
  EXPECT_LT(overflows, programs / 2);  // most programs fit the pool and are checked
}

INSTANTIATE_TEST_SUITE_P(Platforms, UntracedFreshOutputs, both_platforms(), platform_name);

}  // namespace
}  // namespace tmr::testing
