// Property test: random orchestration programs (several buffers, random views and tags, nested
// scopes, MIX and SPMD tasks, element reads and writes) must (1) order every pair of conflicting
// tasks (RAW, WAW, WAR on overlapping regions) in the recorded events, and (2) leave exactly the
// buffers a sequential execution leaves.
#include <gtest/gtest.h>

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

void run_programs(Runtime& runtime, const ProgramShape& shape, int count, std::uint64_t seed0) {
  for (int p = 0; p < count; ++p) {
    const std::uint64_t seed = seed0 + static_cast<std::uint64_t>(p);
    const ProgramResult result = run_random_program(runtime, seed, shape);
    ASSERT_TRUE(result.status.ok()) << "seed " << seed << ": " << result.status.to_string();
    ASSERT_EQ(result.mismatch, "") << "seed " << seed;
    ASSERT_EQ(result.buffers, result.reference) << "seed " << seed << ": final buffers differ";
    ASSERT_EQ(check_trace_order(result), "") << "seed " << seed;
  }
}

TEST(DependencyOracle, ThousandRandomProgramsMatchSequentialExecution) {
  Runtime runtime(oracle_config());
  register_program_kernels(runtime.kernels());
  run_programs(runtime, ProgramShape{}, scaled(1000, 20), 1);
}

TEST(DependencyOracle, ManySmallViewsOfFewBuffers) {
  Runtime runtime(oracle_config());
  register_program_kernels(runtime.kernels());
  ProgramShape shape;
  shape.buffers = 1;
  shape.max_dim = 24;
  shape.operations = 80;
  run_programs(runtime, shape, scaled(200, 5), 100000);
}

TEST(DependencyOracle, TinyRingsStillComplete) {
  for (const std::uint32_t window : {4u, 8u, 16u}) {
    RuntimeConfig config = oracle_config();
    config.ring.task_window = window;
    config.ring.heap_bytes = 16384;
    config.ring.dep_pool = window * 16;  // room for every live task's producers
    Runtime runtime(config);
    register_program_kernels(runtime.kernels());
    ProgramShape shape;
    shape.top_level_tasks = false;
    shape.max_tasks_per_scope = static_cast<int>(window) - 2;
    shape.max_dim = 6;                       // outputs of one full scope fit the 16 KiB heap
    shape.max_scope_depth = kRingCount - 1;  // one open scope per ring
    shape.operations = 60;
    SCOPED_TRACE("window " + std::to_string(window));
    run_programs(runtime, shape, scaled(100, 5), 200000 + window);
  }
}

}  // namespace
}  // namespace tmr::testing
