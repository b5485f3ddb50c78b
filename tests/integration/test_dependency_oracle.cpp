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

}  // namespace
}  // namespace tmr::testing
