// Property test: random orchestration programs (several buffers, random views and tags, nested
// scopes, MIX and SPMD tasks, element reads and writes) must (1) order every pair of conflicting
// tasks (RAW, WAW, WAR on overlapping regions) in the recorded events, and (2) leave exactly the
// buffers a sequential execution leaves.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <random>
#include <thread>
#include <vector>

#include "support/platforms.hpp"
#include "support/random_program.hpp"
#include "support/test_scale.hpp"

// Every allocation through the global operator new in this test binary, counted (the runtime's
// library included), for RecordedRuns.AllocateNothingATask. Otherwise the usual behaviour.
namespace {
std::atomic<std::uint64_t> allocations{0};
}  // namespace

// Out of line: inlined into a caller, GCC would pair the caller's `new` with free() and warn.
[[gnu::noinline]] void* operator new(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace tmr::testing {
namespace {

RuntimeConfig oracle_config() {
  RuntimeConfig config;
  config.clusters = 4;
  config.scheduler_threads = 2;
  config.record_events = true;
  config.stall_timeout_s = 30;
  config.ring = few_tasks_ring();  // 445 tasks a run at most (the large map sets its own window)
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
    // 300 tasks a run at most, ~17 of them live behind the 16-record pool: a wait for nodes
    // resumes when every submitted task is done (min(done + window / 8, submitted)) at either
    // window.
    c.ring = few_tasks_ring();
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

// The peers' random graph in small (bench/peers/graphs.hpp): tasks of 1-3 disjoint spans of 1-4
// cells of rank-1 buffers, read, written or both, every task writing something. Spans of several
// cells are recorded on the plain submit's slot lines in place (TensorMap::find_span,
// access_span), one-cell accesses on their lines: the buffers must end as a sequential
// execution leaves them, whatever order the cores ran the tasks in.
struct CellSpan {
  int buffer = 0;
  std::uint32_t lo = 0, count = 1;
  ArgTag tag = ArgTag::in;
};
// Scalar 0: the task's index. Mixes every cell it reads (in, inout) into one value, then writes
// each cell of its written spans (inout, out_existing) from that value, the span and the cell:
// a task that ran before a conflicting earlier one, or a read that saw a later write, leaves
// other values.
std::uint32_t span_mix(std::uint32_t value, std::int32_t cell) {
  return value * 31u + static_cast<std::uint32_t>(cell);
}
void span_body(const KernelArgs& a) {
  std::uint32_t value = static_cast<std::uint32_t>(a.scalar<std::int64_t>(0));
  for (int i = 0; i < a.tensor_count(); ++i) {
    if (a.tag(i) == ArgTag::out_existing) continue;
    const std::int32_t* cells = a.tensor(i).data_as<std::int32_t>();
    for (std::uint32_t c = 0; c < a.tensor(i).dim(0); ++c)
      value = span_mix(value, cells[c]);
  }
  for (int i = 0; i < a.tensor_count(); ++i) {
    if (a.tag(i) == ArgTag::in) continue;
    std::int32_t* cells = a.tensor(i).data_as<std::int32_t>();
    for (std::uint32_t c = 0; c < a.tensor(i).dim(0); ++c)
      cells[c] = static_cast<std::int32_t>(value + 7u * c + 101u * static_cast<std::uint32_t>(i));
  }
}

// Runs `tasks` (each task's spans, scalar 0 its index, span_body its kernel) on rank-1 i32
// buffers holding `cells` and expects them to end as a sequential execution leaves them.
void expect_spans_match_sequential(Runtime& runtime, KernelId body,
                                   const std::vector<std::vector<CellSpan>>& tasks,
                                   std::vector<std::vector<std::int32_t>>& cells, int program) {
  std::vector<std::vector<std::int32_t>> reference = cells;
  for (std::size_t t = 0; t < tasks.size(); ++t) {
    auto value = static_cast<std::uint32_t>(t);
    for (const CellSpan& s : tasks[t]) {
      if (s.tag == ArgTag::out_existing) continue;
      for (std::uint32_t c = 0; c < s.count; ++c)
        value = span_mix(value, reference[s.buffer][s.lo + c]);
    }
    for (std::size_t i = 0; i < tasks[t].size(); ++i) {
      const CellSpan& s = tasks[t][i];
      if (s.tag == ArgTag::in) continue;
      for (std::uint32_t c = 0; c < s.count; ++c) {
        reference[s.buffer][s.lo + c] =
            static_cast<std::int32_t>(value + 7u * c + 101u * static_cast<std::uint32_t>(i));
      }
    }
  }
  const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    std::vector<Tensor> buffers;
    for (std::vector<std::int32_t>& b : cells)
      buffers.push_back(Tensor::wrap(b.data(), {static_cast<std::uint32_t>(b.size())}, DType::i32));
    for (std::size_t t = 0; t < tasks.size(); ++t) {
      Args args;
      for (const CellSpan& s : tasks[t]) {
        const Tensor& whole = buffers[static_cast<std::size_t>(s.buffer)];
        if (s.tag == ArgTag::in) args.in(whole, {s.count}, {s.lo});
        if (s.tag == ArgTag::inout) args.inout(whole, {s.count}, {s.lo});
        if (s.tag == ArgTag::out_existing) args.out_existing(whole, {s.count}, {s.lo});
      }
      o.submit_aiv(body, args.scalar(static_cast<std::int64_t>(t)));
    }
  });
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  ASSERT_EQ(r.stats.tasks_submitted, tasks.size());
  for (std::size_t b = 0; b < cells.size(); ++b)
    EXPECT_EQ(cells[b], reference[b]) << "program " << program << ", buffer " << b;
}

class CellSpans : public ::testing::TestWithParam<PlatformKind> {
 protected:
  // Two clusters, one scheduler thread, a ring of few tasks (the window wraps often).
  static RuntimeConfig config_for(PlatformKind platform) {
    RuntimeConfig config;
    config.platform = platform;
    config.clusters = 2;
    config.scheduler_threads = 1;
    config.stall_timeout_s = 30;
    config.ring = few_tasks_ring();
    return config;
  }
};

// The random spans programs' run: `programs` programs of 700 tasks over three 96-cell buffers,
// each buffer's first access `first_counts[b]` cells (its line grid's first length), then 1-3
// disjoint spans of 1-4 cells anywhere.
void run_random_span_programs(const RuntimeConfig& config,
                              const std::array<std::uint32_t, 3>& first_counts, int seed) {
  Runtime runtime(config);
  const KernelId body = runtime.kernels().add("span_body", CoreType::aiv, &span_body);
  constexpr std::uint32_t kCells = 96;
  constexpr int kBuffers = 3;
  const int programs = scaled(12, 3);
  for (int program = 0; program < programs; ++program) {
    std::mt19937 rng(static_cast<std::uint32_t>(seed + program));
    auto pick = [&](std::uint32_t lo, std::uint32_t hi) {
      return std::uniform_int_distribution<std::uint32_t>(lo, hi)(rng);
    };
    std::vector<std::vector<CellSpan>> tasks;
    for (int t = 0; t < 700; ++t) {
      std::vector<CellSpan> spans;
      const std::uint32_t wanted = t < kBuffers ? 1 : pick(1, 3);
      for (std::uint32_t k = 0; k < wanted; ++k) {
        CellSpan s;
        s.buffer = t < kBuffers ? t : static_cast<int>(pick(0, kBuffers - 1));
        s.count = t < kBuffers ? first_counts[static_cast<std::size_t>(t)] : pick(1, 4);
        s.lo = pick(0, kCells - s.count);
        const std::uint32_t m = pick(0, 9);
        s.tag = m < 5 ? ArgTag::in : m < 7 ? ArgTag::out_existing : ArgTag::inout;
        const bool clash = std::any_of(spans.begin(), spans.end(), [&](const CellSpan& o) {
          return o.buffer == s.buffer && o.lo < s.lo + s.count && s.lo < o.lo + o.count;
        });
        if (!clash) spans.push_back(s);
      }
      if (spans[0].tag == ArgTag::in) spans[0].tag = ArgTag::inout;  // every task writes
      tasks.push_back(spans);
    }
    std::vector<std::vector<std::int32_t>> cells(kBuffers, std::vector<std::int32_t>(kCells));
    for (int b = 0; b < kBuffers; ++b) {
      for (std::uint32_t c = 0; c < kCells; ++c)
        cells[b][c] = static_cast<std::int32_t>(c * 3 + static_cast<std::uint32_t>(b));
    }
    expect_spans_match_sequential(runtime, body, tasks, cells, program);
  }
}

TEST_P(CellSpans, RandomSpansOfCellsMatchSequentialExecution) {
  // (A one-cell grid first: every later span is whole slots.)
  run_random_span_programs(config_for(GetParam()), {1, 1, 1}, 5100);
}

// The same on coarse first grids (four, three and two cells, as the peers' random graph starts
// them): later accesses of the grid's length off its phase are spans of a finer grid
// (TensorMap::span_access cuts it), and the others cut it too.
TEST_P(CellSpans, RandomSpansOnCoarseFirstGridsMatchSequentialExecution) {
  run_random_span_programs(config_for(GetParam()), {4, 3, 2}, 5200);
}

// The peers' stencil in small, past the end of a line table: one buffer of `width` x `rows`
// cells written forward, row after row; task (r, i) reads 1-3 cells of row r - 1 around i (now
// and then writes them) and writes cell i of row r, or cells i and i + 1. A line table starts at
// 64 lines and doubles: each access past its end grows it on the plain submit's line path
// (TensorMap::grow_lines_for). The buffer must end as a sequential execution leaves it.
TEST_P(CellSpans, ForwardRowsPastTheLineTableMatchSequentialExecution) {
  Runtime runtime(config_for(GetParam()));
  const KernelId body = runtime.kernels().add("span_body", CoreType::aiv, &span_body);
  const int programs = scaled(4, 2);
  for (int program = 0; program < programs; ++program) {
    std::mt19937 rng(static_cast<std::uint32_t>(5300 + program));
    auto pick = [&](std::uint32_t lo, std::uint32_t hi) {
      return std::uniform_int_distribution<std::uint32_t>(lo, hi)(rng);
    };
    const std::uint32_t width = pick(3, 8);
    const std::uint32_t rows = 2400 / width;
    std::vector<std::vector<CellSpan>> tasks;
    for (std::uint32_t r = 0; r < rows; ++r) {
      for (std::uint32_t i = 0; i < width; ++i) {
        std::vector<CellSpan> spans;
        CellSpan write;
        write.lo = r * width + i;
        write.count = r > 0 && i + 1 < width && pick(0, 4) == 0 ? 2 : 1;
        write.tag = ArgTag::out_existing;
        if (r > 0) {  // (the first row only written: a one-cell grid from the first task)
          CellSpan read;
          const std::uint32_t lo = i == 0 ? 0 : pick(i - 1, i);
          read.lo = (r - 1) * width + lo;
          read.count = std::min(pick(1, 3), width - lo);
          read.tag = pick(0, 5) == 0 ? ArgTag::inout : ArgTag::in;
          spans.push_back(read);
        }
        spans.push_back(write);
        tasks.push_back(spans);
      }
    }
    std::vector<std::vector<std::int32_t>> cells(1, std::vector<std::int32_t>(width * rows));
    for (std::uint32_t c = 0; c < width * rows; ++c)
      cells[0][c] = static_cast<std::int32_t>(c * 5 + 1);
    expect_spans_match_sequential(runtime, body, tasks, cells, program);
  }
}

INSTANTIATE_TEST_SUITE_P(Platforms, CellSpans, both_platforms(), platform_name);

// Completed producers left out on threads (Dependence::set_skip_completed; an untraced run): a
// large map (8,192 rows of one buffer in slot lines) whose writers have all completed and none
// retired (a held task submitted first keeps the watermark), then readers of 256 rows. The
// readers of completed writers leave them out (RunStats::completed_producers_left_out), and the
// reader of the one row whose second writer has not completed (it runs until the orchestration
// ends) still waits for it.
std::atomic<std::uint32_t> rows_set{0};
std::atomic<bool> holds_open{false};
void hold_until_open() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!holds_open.load(std::memory_order_acquire) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}
void set_row(const KernelArgs& a) {
  a.tensor(0).data_as<float>()[0] = static_cast<float>(a.scalar<std::int64_t>(0));
  rows_set.fetch_add(1, std::memory_order_release);
}
void held_set_row(const KernelArgs& a) {
  hold_until_open();
  a.tensor(0).data_as<float>()[0] = static_cast<float>(a.scalar<std::int64_t>(0));
}
void held_gate(const KernelArgs&) {
  hold_until_open();
}
void copy_cell(const KernelArgs& a) {
  a.tensor(1).data_as<float>()[0] = a.tensor(0).data_as<float>()[0];
}

TEST(DependencyOracle, UntracedLargeMapLeavesOutCompletedWritersOnly) {
  RuntimeConfig config;
  config.clusters = 1;
  config.scheduler_threads = 1;
  config.record_events = false;
  config.ring.task_window = 1 << 15;
  config.ring.dep_pool = 1 << 16;
  config.stall_timeout_s = 30;
  Runtime runtime(config);
  const KernelId set = runtime.kernels().add("set_row", CoreType::aiv, &set_row);
  const KernelId held = runtime.kernels().add("held_set_row", CoreType::aiv, &held_set_row);
  const KernelId gate = runtime.kernels().add("held_gate", CoreType::aic, &held_gate);
  const KernelId copy = runtime.kernels().add("copy_cell", CoreType::aiv, &copy_cell);
  constexpr std::uint32_t kRows = 8192;
  constexpr std::uint32_t kRow = 16;
  constexpr std::uint32_t kRead = 256;
  std::vector<float> data(std::size_t{kRows} * kRow);
  std::vector<float> cells(kRead, -1.0f);
  float gate_cell = 0.0f;
  rows_set = 0;
  holds_open = false;
  const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor buffer = Tensor::wrap(data.data(), {kRows, kRow}, DType::f32);
    auto row = [&](std::uint32_t v) { return buffer.view({1, kRow}, {v, 0}); };
    o.submit_aic(gate, Args().out_existing(Tensor::wrap(&gate_cell, {1}, DType::f32)));
    for (std::uint32_t v = 0; v < kRows; ++v)
      o.submit_aiv(set, Args().inout(row(v)).scalar(static_cast<std::int64_t>(v + 1)));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (rows_set.load(std::memory_order_acquire) < kRows &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // (their completion steps)
    o.submit_aiv(held, Args().inout(row(0)).scalar(std::int64_t{5000}));
    for (std::uint32_t v = 0; v < kRead; ++v) {
      o.submit_aiv(copy, Args().in(row(v)).out_existing(Tensor::wrap(&cells[v], {1}, DType::f32)));
    }
    holds_open = true;
  });
  holds_open = true;
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(cells[0], 5000.0f) << "the reader of row 0 did not wait for its running writer";
  for (std::uint32_t v = 1; v < kRead; ++v)
    ASSERT_EQ(cells[v], static_cast<float>(v + 1)) << "row " << v;
  EXPECT_GT(r.stats.completed_producers_left_out, kRead / 2);
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

// Recorded runs (RuntimeConfig::record_events) on both platforms: on threads their submits take
// the plain path with its recording hook (OrchestratorCore::submit_plain_recorded), on sim the
// general one; either way a run's events go to one flat producer array, reserved from the runs
// before it and handed to the run's Trace.
class RecordedRuns : public ::testing::TestWithParam<PlatformKind> {
 protected:
  RuntimeConfig config() const {
    // A 1,024-task window (few_tasks_ring): the longer runs below wrap it several times.
    RuntimeConfig c = two_cluster_config(GetParam());
    c.record_events = true;
    return c;
  }
};

// One task of a random program on a 64 x 4 int32 buffer: a block of rows read or written, and
// with `held` a fresh output (the task creates a buffer: its scope holds it until it ends).
struct RowsTask {
  std::uint32_t r0 = 0;
  std::uint32_t rows = 1;
  bool write = false;
  bool held = false;
};

bool rows_conflict(const RowsTask& a, const RowsTask& b) {
  return (a.write || b.write) && a.r0 < b.r0 + b.rows && b.r0 < a.r0 + a.rows;
}

std::vector<RowsTask> random_rows_tasks(std::uint64_t seed, int count) {
  std::mt19937_64 random(seed);
  std::vector<RowsTask> tasks(static_cast<std::size_t>(count));
  for (RowsTask& t : tasks) {
    t.rows = 1 + static_cast<std::uint32_t>(random() % 4);
    t.r0 = static_cast<std::uint32_t>(random() % (64 - t.rows + 1));
    t.write = random() % 2 == 0;
    t.held = random() % 2 == 0;
  }
  return tasks;
}

// The brute-force oracle of a recorded run of `tasks` (submitted in order, 32 to a scope): one
// event a task, by sequence; every producer an earlier task that conflicts with it (no spurious
// edge); and every conflicting pair ordered by a path of recorded edges unless the earlier task
// had finished before the later one's submit (it may have retired then, and a retired task is
// nobody's producer). "" or the first disagreement.
std::string check_recorded_rows(const Trace& trace, const std::vector<RowsTask>& tasks) {
  const std::size_t n = tasks.size();
  if (trace.tasks.size() != n) return "events: " + std::to_string(trace.tasks.size());
  // Row j of `reach`: bit i set when a path of edges leads from task i to task j.
  const std::size_t words = (n + 63) / 64;
  std::vector<std::uint64_t> reach(n * words, 0);
  const auto reaches = [&](std::size_t i, std::size_t j) {
    return ((reach[j * words + i / 64] >> (i % 64)) & 1u) != 0;
  };
  for (std::size_t j = 0; j < n; ++j) {
    const TaskEvent& e = trace.tasks[j];
    if (e.sequence != j)
      return "event " + std::to_string(j) + " names sequence " + std::to_string(e.sequence);
    for (const std::uint64_t p : e.producers) {
      if (p >= j) return "task " + std::to_string(j) + " waits for later task " + std::to_string(p);
      if (!rows_conflict(tasks[p], tasks[j])) {
        return "task " + std::to_string(j) + " waits for task " + std::to_string(p) +
               " without a conflict";
      }
      reach[j * words + p / 64] |= std::uint64_t{1} << (p % 64);
      for (std::size_t w = 0; w < words; ++w)
        reach[j * words + w] |= reach[p * words + w];
    }
  }
  for (std::size_t j = 0; j < n; ++j) {
    for (std::size_t i = 0; i < j; ++i) {
      if (!rows_conflict(tasks[i], tasks[j]) || reaches(i, j)) continue;
      if (trace.tasks[i].complete_ns <= trace.tasks[j].submit_ns) continue;
      return "conflicting tasks " + std::to_string(i) + " and " + std::to_string(j) +
             " have no path of edges and " + std::to_string(i) + " finished after " +
             std::to_string(j) + "'s submit";
    }
  }
  return "";
}

RunResult run_rows_tasks(Runtime& runtime, KernelId kernel, const std::vector<RowsTask>& tasks,
                         std::vector<std::int32_t>* cells) {
  return runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor whole = Tensor::wrap(cells->data(), {64, 4}, DType::i32);
    for (std::size_t first = 0; first < tasks.size(); first += 32) {
      TMR_SCOPE(o);
      for (std::size_t k = first; k < std::min(tasks.size(), first + 32); ++k) {
        const RowsTask& t = tasks[k];
        const Tensor rows = whole.view({t.rows, 4}, {t.r0, 0});
        Args args;
        if (t.write) {
          args.inout(rows);
        } else {
          args.in(rows);
        }
        if (t.held) args.out(TensorSpec({1}, DType::i32));
        o.submit_aiv(kernel, args);
      }
    }
  });
}

// Several recorded runs of one engine, of different lengths (shorter and longer than the
// reservation the runs before left, the longer ones wrapping the ring): each run's events and
// producers match the oracle, and each run's Trace keeps its own producers after the runs that
// follow it (the engine's arrays go to the trace, and the next run starts new ones).
TEST_P(RecordedRuns, EveryRunsProducersMatchTheOracle) {
  Runtime runtime(config());
  const KernelId kernel = runtime.kernels().add("no_work", CoreType::aiv, &no_work);
  std::vector<std::int32_t> cells(64 * 4, 0);
  struct Kept {
    std::shared_ptr<const Trace> trace;
    std::vector<std::vector<std::uint64_t>> producers;  // copies, taken right after the run
  };
  std::vector<Kept> kept;
  const int lengths[] = {300, 5000, 40, 6000, 1200};
  for (int run = 0; run < 5; ++run) {
    const std::vector<RowsTask> tasks =
        random_rows_tasks(710000 + static_cast<std::uint64_t>(run), lengths[run]);
    const RunResult r = run_rows_tasks(runtime, kernel, tasks, &cells);
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    ASSERT_NE(r.trace, nullptr);
    ASSERT_EQ(check_recorded_rows(*r.trace, tasks), "") << "run " << run;
    Kept k{r.trace, {}};
    for (const TaskEvent& e : r.trace->tasks)
      k.producers.push_back(e.producers);
    kept.push_back(std::move(k));
  }
  for (std::size_t run = 0; run < kept.size(); ++run) {
    const Trace& trace = *kept[run].trace;
    for (std::size_t i = 0; i < trace.tasks.size(); ++i)
      ASSERT_EQ(trace.tasks[i].producers, kept[run].producers[i]) << "run " << run << " task " << i;
  }
}

// A recorded run allocates per run, not per task: once a run as long has reserved the engine's
// arrays, a run of 4,000 chained and held tasks allocates at most a few more times than one of
// 1,000 (a vector's growth; one allocation a task would be 3,000 more).
TEST_P(RecordedRuns, AllocateNothingATask) {
  Runtime runtime(config());
  const KernelId kernel = runtime.kernels().add("no_work", CoreType::aiv, &no_work);
  std::vector<std::int32_t> cells(64 * 4, 0);
  const auto allocations_of = [&](int count) {
    std::vector<RowsTask> tasks(static_cast<std::size_t>(count));
    for (std::size_t k = 0; k < tasks.size(); ++k) {
      tasks[k].r0 = static_cast<std::uint32_t>(k % 8);  // each writes one of 8 rows: edges
      tasks[k].write = true;
      tasks[k].held = k % 2 == 0;
    }
    const std::uint64_t before = allocations.load();
    const RunResult r = run_rows_tasks(runtime, kernel, tasks, &cells);
    const std::uint64_t after = allocations.load();
    EXPECT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(r.trace->tasks.size(), tasks.size());
    return after - before;
  };
  allocations_of(4000);  // reserves the engine's arrays (and warms everything else)
  const std::uint64_t short_run = allocations_of(1000);
  const std::uint64_t long_run = allocations_of(4000);
  EXPECT_LT(long_run, short_run + 100) << "1,000 tasks: " << short_run << ", 4,000: " << long_run;
}

INSTANTIATE_TEST_SUITE_P(Platforms, RecordedRuns, both_platforms(), platform_name);

}  // namespace
}  // namespace tmr::testing
