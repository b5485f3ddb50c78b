// Property test: random orchestration programs (several buffers, random views and tags, nested
// scopes, MIX and SPMD tasks, element reads and writes) must (1) order every pair of conflicting
// tasks (RAW, WAW, WAR on overlapping regions) in the recorded events, and (2) leave exactly the
// buffers a sequential execution leaves.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

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
// Runs until the orchestration opens the gate (or 10 s passed): a task that stays unfinished.
std::atomic<bool> held_open{false};
void held_work(const KernelArgs&) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!held_open.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::microseconds(50));
}

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
  // (sim keeps every producer: a held kernel there would only slow the test down)
  const KernelId held = GetParam() == PlatformKind::sim
                            ? k
                            : runtime.kernels().add("held_work", CoreType::aiv, &held_work);
  float cell = 0.0f;
  held_open = false;
  const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor t = Tensor::wrap(&cell, {1}, DType::f32);
    TMR_SCOPE(o);
    // 20 readers that create buffers: their scope holds them (none retires), and they run until
    // the gate opens (a plain run leaves out producers that completed), so the write after them
    // has 20 live, unfinished producers, past the pool's 16 nodes.
    for (int i = 0; i < 20; ++i)
      o.submit_aiv(held, Args().in(t).out(TensorSpec({4}, DType::f32)));
    o.submit_aiv(k, Args().inout(t));
    held_open = true;
  });
  EXPECT_EQ(r.status.code, ErrorCode::dependency_overflow) << r.status.to_string();
  EXPECT_NE(r.status.message.find("depends on 20 earlier tasks"), std::string::npos)
      << r.status.message;
  EXPECT_NE(r.status.message.find("TMR_RING_DEP_POOL"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Platforms, PlainSubmitPool, both_platforms(), platform_name);

// A large map (8,192 rows of one buffer in slot lines, past Dependence's cold-map threshold) whose
// writers have mostly completed when later tasks name their rows: an untraced run leaves those
// producers out (Dependence::add_reported) and must still order every task behind the ones it
// conflicts with that have not completed. Updates of a few hot rows that are not commutative
// (x = 2x, x = x + 1, and a row added to another) and take a while each, so two of them on one
// row running together would lose one; the rows must end as the sequential order leaves them.
void set_row(const KernelArgs& a) {
  float* row = a.tensor(0).data_as<float>();
  row[0] = static_cast<float>(a.scalar<std::int64_t>(0));
}
// Reads, waits ~20 us, writes: overlapping updates of one row would lose one.
void slow_update(const KernelArgs& a) {
  float* row = a.tensor(0).data_as<float>();
  const float before = row[0];
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
  while (std::chrono::steady_clock::now() < until) {
  }
  const std::int64_t op = a.scalar<std::int64_t>(0);
  row[0] = op == 0   ? before * 2.0f
           : op == 1 ? before + 1.0f
                     : before + a.tensor(1).data_as<float>()[0];
}

TEST(DependencyOracle, UntracedLargeMapLeavesOutOnlyCompletedProducers) {
  RuntimeConfig config = oracle_config();
  config.record_events = false;
  Runtime runtime(config);
  const KernelId set = runtime.kernels().add("set_row", CoreType::aiv, &set_row);
  const KernelId update = runtime.kernels().add("slow_update", CoreType::aiv, &slow_update);
  constexpr std::uint32_t kRows = 8192;
  constexpr std::uint32_t kRow = 16;
  constexpr int kHot = 4;
  const int updates = scaled(1500, 300);
  std::vector<float> data(std::size_t{kRows} * kRow);
  // The sequential reference of the hot rows (rows 0, 2048, 4096, 6144; values stay small
  // integers, exact in float: x = 2x is taken only while the row is below 1000).
  std::vector<float> expected(kHot);
  struct Update {
    int row;
    int op;
    int source;
  };
  std::vector<Update> plan;
  std::uint64_t state = 12345;
  auto next = [&](std::uint64_t bound) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<int>((state >> 33) % bound);
  };
  for (int h = 0; h < kHot; ++h)
    expected[static_cast<std::size_t>(h)] = static_cast<float>(h * 2048 % 7);
  for (int i = 0; i < updates; ++i) {
    const int row = next(kHot);
    int op = next(3);
    const int source = (row + 1 + next(kHot - 1)) % kHot;
    float& x = expected[static_cast<std::size_t>(row)];
    if (op == 0 && x >= 1000.0f) op = 1;
    if (op == 2 && x + expected[static_cast<std::size_t>(source)] >= 1e6f) op = 1;
    x = op == 0 ? 2.0f * x : op == 1 ? x + 1.0f : x + expected[static_cast<std::size_t>(source)];
    plan.push_back({row, op, source});
  }
  const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor buffer = Tensor::wrap(data.data(), {kRows, kRow}, DType::f32);
    auto row_of = [&](int hot) {
      return buffer.view({1, kRow}, {static_cast<std::uint32_t>(hot) * 2048u, 0});
    };
    for (std::uint32_t v = 0; v < kRows; ++v) {
      o.submit_aiv(
          set,
          Args().inout(buffer.view({1, kRow}, {v, 0})).scalar(static_cast<std::int64_t>(v % 7)));
    }
    for (const Update& u : plan) {
      Args args;
      args.inout(row_of(u.row));
      if (u.op == 2) args.in(row_of(u.source));
      o.submit_aiv(update, args.scalar(static_cast<std::int64_t>(u.op)));
    }
  });
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  for (int h = 0; h < kHot; ++h) {
    EXPECT_EQ(data[std::size_t{static_cast<std::uint32_t>(h) * 2048u} * kRow],
              expected[static_cast<std::size_t>(h)])
        << "hot row " << h;
  }
}

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
