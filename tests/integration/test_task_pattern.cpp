// parallel_for(n, TaskPattern) end to end, on the threads and sim platforms: random patterns
// (shapes, offsets, zero, negative and overlapping steps, in / inout / out_existing mixes, whole
// tensors, affine scalars, scopes, tiny rings) must order every conflicting pair (recorded
// start/end), add no edge without a conflict (so an independent loop has none between its
// iterations) and leave what the sequential loop of pattern.args(i) submits leaves; directed
// tests check each route that runs the lambda loop, the trusted submits' count, a template kept
// from a run with another step, and bad patterns' errors.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/loop_tests.hpp"
#include "support/platforms.hpp"
#include "support/random_program.hpp"
#include "support/test_scale.hpp"
#include "tmr/tmr.hpp"

namespace tmr::testing {
namespace {

// Order-sensitive over int32 cells (wrapping): h = scalar + the sum of every element it reads
// (in and inout arguments, weighted by argument); each inout element becomes e * 3 + h + k and
// each out_existing element h + 7 * k + 1 (k: the argument). RAW, WAR and WAW reorderings all
// change some result.
std::uint32_t read_sum(const Tensor& t) {
  std::uint32_t sum = 0;
  const auto* p = t.data_as<std::int32_t>();
  for (std::uint32_t r = 0; r < t.dim(0); ++r) {
    for (std::uint32_t c = 0; c < t.dim(1); ++c)
      sum += static_cast<std::uint32_t>(p[r * t.stride(0) + c * t.stride(1)]);
  }
  return sum;
}
void write_cells(const Tensor& t, ArgTag tag, std::uint32_t h, std::uint32_t k) {
  auto* p = t.data_as<std::int32_t>();
  for (std::uint32_t r = 0; r < t.dim(0); ++r) {
    for (std::uint32_t c = 0; c < t.dim(1); ++c) {
      std::int32_t& e = p[r * t.stride(0) + c * t.stride(1)];
      const std::uint32_t old = static_cast<std::uint32_t>(e);
      e = static_cast<std::int32_t>(tag == ArgTag::inout ? old * 3u + h + k : h + 7u * k + 1u);
    }
  }
}
void pattern_kernel(const KernelArgs& a) {
  std::uint32_t h = static_cast<std::uint32_t>(a.scalar_bits(0));
  for (int k = 0; k < a.tensor_count(); ++k) {
    const ArgTag tag = a.tag(k);
    if (tag == ArgTag::in || tag == ArgTag::inout)
      h += read_sum(a.tensor(k)) * static_cast<std::uint32_t>(k + 1);
  }
  for (int k = 0; k < a.tensor_count(); ++k) {
    const ArgTag tag = a.tag(k);
    if (tag == ArgTag::inout || tag == ArgTag::out_existing)
      write_cells(a.tensor(k), tag, h, static_cast<std::uint32_t>(k));
  }
}

constexpr std::uint32_t kRows = 24;
constexpr std::uint32_t kCols = 6;

struct PatternAccess {
  int buffer = 0;
  ArgTag tag = ArgTag::in;
  bool whole = false;
  std::uint32_t shape[2] = {kRows, kCols};
  std::int64_t offset[2] = {0, 0};
  std::int64_t step[2] = {0, 0};
};
struct RandomPattern {
  std::int64_t n = 0;
  int buffers = 0;
  std::vector<PatternAccess> accesses;
  std::uint64_t scalar_base = 0;
  std::uint64_t scalar_step = 0;
  bool scoped = false;       // LoopOptions::scope_per_iteration
  bool outer_scope = false;  // the loop inside a user scope
  bool whole_first = false;  // a whole-buffer task before the loop (an external producer)
};

// One access whose every iteration lies in its buffer: a step (zero, small, its extent, or
// negative) and then an offset at i = 0 that keeps both ends in range.
PatternAccess random_access(std::mt19937_64& rng, int buffers, std::int64_t n) {
  PatternAccess a;
  a.buffer = static_cast<int>(rng() % static_cast<std::uint64_t>(buffers));
  static constexpr ArgTag kTags[3] = {ArgTag::in, ArgTag::inout, ArgTag::out_existing};
  a.tag = kTags[rng() % 3];
  if (rng() % 8 == 0) {
    a.whole = true;
    return a;
  }
  const std::uint32_t dims[2] = {kRows, kCols};
  for (int d = 0; d < 2; ++d) {
    a.shape[d] = 1 + static_cast<std::uint32_t>(rng() % (d == 0 ? 3 : dims[d]));
    const std::int64_t extent = a.shape[d];
    const std::int64_t choices[5] = {0, 1, extent, -1, 2};
    std::int64_t step = d == 0 ? choices[rng() % 5] : (rng() % 4 == 0 ? 1 : 0);
    const std::int64_t room = dims[d] - extent;  // offsets 0..room fit
    if (std::abs(step) * (n - 1) > room) step = 0;
    a.step[d] = step;
    const std::int64_t span = std::abs(step) * (n - 1);
    const std::int64_t lowest = step < 0 ? span : 0;
    const std::int64_t highest = step > 0 ? room - span : room;
    a.offset[d] = lowest + static_cast<std::int64_t>(
                               rng() % static_cast<std::uint64_t>(highest - lowest + 1));
  }
  return a;
}

RandomPattern random_pattern(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  RandomPattern p;
  p.n = 1 + static_cast<std::int64_t>(rng() % 24);
  p.buffers = 1 + static_cast<int>(rng() % 3);
  const int count = 1 + static_cast<int>(rng() % 4);
  for (int k = 0; k < count; ++k)
    p.accesses.push_back(random_access(rng, p.buffers, p.n));
  p.scalar_base = rng() % 1000;
  p.scalar_step = rng() % 2 == 0 ? 0 : rng() % 5;
  p.scoped = rng() % 3 == 0;
  p.outer_scope = rng() % 3 == 0;
  p.whole_first = rng() % 2 == 0;
  return p;
}

struct Cells {
  std::vector<std::vector<std::int32_t>> buffers;
};
Cells initial_cells(int buffers) {
  Cells cells;
  for (int b = 0; b < buffers; ++b) {
    cells.buffers.emplace_back(kRows * kCols);
    for (std::uint32_t e = 0; e < kRows * kCols; ++e)
      cells.buffers.back()[e] = static_cast<std::int32_t>(e * 31 + static_cast<std::uint32_t>(b));
  }
  return cells;
}

TaskPattern make_pattern(KernelId kernel, const RandomPattern& p, const std::vector<Tensor>& t) {
  TaskPattern pattern({kNoKernel, kernel, kNoKernel});
  for (const PatternAccess& a : p.accesses) {
    const Tensor& x = t[static_cast<std::size_t>(a.buffer)];
    if (a.whole) {
      if (a.tag == ArgTag::in) pattern.in(x);
      if (a.tag == ArgTag::inout) pattern.inout(x);
      if (a.tag == ArgTag::out_existing) pattern.out_existing(x);
      continue;
    }
    const Shape shape{a.shape[0], a.shape[1]};
    const Shape offsets{static_cast<std::uint32_t>(a.offset[0]),
                        static_cast<std::uint32_t>(a.offset[1])};
    const TaskPattern::Steps step{a.step[0], a.step[1]};
    if (a.tag == ArgTag::in) pattern.in(x, shape, offsets, step);
    if (a.tag == ArgTag::inout) pattern.inout(x, shape, offsets, step);
    if (a.tag == ArgTag::out_existing) pattern.out_existing(x, shape, offsets, step);
  }
  pattern.scalar_bits(p.scalar_base, p.scalar_step);
  return pattern;
}

// The boxes of iteration i (Access rows for the oracles).
std::vector<Access> boxes(const RandomPattern& p, std::int64_t i) {
  std::vector<Access> out;
  for (const PatternAccess& a : p.accesses) {
    Access x;
    x.buffer = a.buffer;
    x.write = a.tag != ArgTag::in;
    x.r0 = static_cast<std::uint32_t>(a.offset[0] + a.step[0] * i);
    x.c0 = static_cast<std::uint32_t>(a.offset[1] + a.step[1] * i);
    x.rows = a.shape[0];
    x.cols = a.shape[1];
    out.push_back(x);
  }
  return out;
}

struct PatternRun {
  RunResult result;
  ProgramResult oracle;  // accesses and trace, for check_trace_order / check_edges_exact
};

// Runs the pattern (or, `sequential`, the plain loop of pattern.args(i) submits) on `cells`.
PatternRun run_pattern(Runtime& runtime, KernelId kernel, KernelId whole_kernel,
                       const RandomPattern& p, Cells* cells, bool sequential) {
  PatternRun run;
  run.result = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    std::vector<Tensor> t;
    for (auto& b : cells->buffers)
      t.push_back(Tensor::wrap(b.data(), {kRows, kCols}, DType::i32));
    const TaskPattern pattern = make_pattern(kernel, p, t);
    if (p.whole_first) o.submit_aiv(whole_kernel, Args().inout(t[0]).scalar_bits(5));
    const auto loop = [&] {
      if (sequential) {
        for (std::int64_t i = 0; i < p.n; ++i)
          o.submit(pattern.kernels(), pattern.args(i));
      } else {
        o.parallel_for(p.n, pattern, LoopOptions{p.scoped});
      }
    };
    if (p.outer_scope) {
      TMR_SCOPE(o);
      loop();
    } else {
      loop();
    }
  });
  if (p.whole_first) {
    Access whole;
    whole.buffer = 0;
    whole.rows = kRows;
    whole.cols = kCols;
    whole.write = true;
    run.oracle.accesses.push_back({whole});
  }
  for (std::int64_t i = 0; i < p.n; ++i)
    run.oracle.accesses.push_back(boxes(p, i));
  run.oracle.has_no_dep.assign(run.oracle.accesses.size(), false);
  run.oracle.trace = run.result.trace;
  return run;
}

struct Fixture {
  explicit Fixture(RuntimeConfig config) : runtime(config) {
    kernel = runtime.kernels().add("pattern", CoreType::aiv, &pattern_kernel);
    whole = runtime.kernels().add("pattern_whole", CoreType::aiv, &pattern_kernel);
  }
  Runtime runtime;
  KernelId kernel = kNoKernel;
  KernelId whole = kNoKernel;
};

std::string check_random_patterns(Fixture& f, Fixture& reference, int count, std::uint64_t seed0,
                                  std::uint64_t* trusted, std::uint64_t* lambda) {
  for (int s = 0; s < count; ++s) {
    const std::uint64_t seed = seed0 + static_cast<std::uint64_t>(s);
    const RandomPattern p = random_pattern(seed);
    const std::string where = "seed " + std::to_string(seed) + ": ";
    Cells got = initial_cells(p.buffers);
    Cells want = initial_cells(p.buffers);
    const PatternRun run = run_pattern(f.runtime, f.kernel, f.whole, p, &got, false);
    const PatternRun seq =
        run_pattern(reference.runtime, reference.kernel, reference.whole, p, &want, true);
    if (!run.result.ok()) return where + run.result.status.to_string();
    if (!seq.result.ok()) return where + "sequential: " + seq.result.status.to_string();
    if (got.buffers != want.buffers) return where + "buffers differ from the sequential loop's";
    if (std::string why = check_trace_order(run.oracle); !why.empty()) return where + why;
    if (std::string why = check_edges_exact(run.oracle); !why.empty()) return where + why;
    if (run.result.stats.pattern_loops != 1) return where + "pattern_loops is not 1";
    *trusted += run.result.stats.pattern_tasks_trusted;
    for (const auto& [reason, n] : run.result.stats.pattern_lambda_reasons)
      *lambda += n;
  }
  return "";
}

class TaskPatterns : public ::testing::TestWithParam<PlatformKind> {};

// The buffers the plain loop of the same pattern leaves (analysis off), for `got` to equal.
void expect_plain_loop_buffers(PlatformKind platform, const RandomPattern& p, const Cells& got) {
  Fixture reference(loop_config(platform, false));
  Cells want = initial_cells(p.buffers);
  ASSERT_TRUE(run_pattern(reference.runtime, reference.kernel, reference.whole, p, &want, true)
                  .result.ok());
  EXPECT_EQ(got.buffers, want.buffers);
}

TEST_P(TaskPatterns, RandomPatternsMatchTheSequentialLoop) {
  Fixture f(loop_config(GetParam()));
  Fixture reference(loop_config(GetParam(), false));
  std::uint64_t trusted = 0, lambda = 0;
  EXPECT_EQ(check_random_patterns(f, reference, scaled(300, 30), 1000, &trusted, &lambda), "");
  EXPECT_GT(trusted, 0u);  // the compare-free path ran
  EXPECT_GT(lambda, 0u);   // and short loops ran as the lambda loop
}

TEST_P(TaskPatterns, RandomPatternsUnderTinyRings) {
  Fixture f(with_tiny_rings(loop_config(GetParam()), 8));
  Fixture reference(loop_config(GetParam(), false));
  std::uint64_t trusted = 0, lambda = 0;
  EXPECT_EQ(check_random_patterns(f, reference, scaled(120, 15), 5000, &trusted, &lambda), "");
  EXPECT_GT(trusted, 0u);
}

// 20 iterations each writing its own row from its own input row: no edge at all, every
// iteration from the third on submitted without the compare (two verify the template).
// `n` iterations, iteration i reading row i of buffer 0 and writing row i of buffer 1, its scalar
// i * scalar_step.
RandomPattern slice_writes(std::int64_t n, std::uint64_t scalar_step) {
  RandomPattern p;
  p.n = n;
  p.buffers = 2;
  PatternAccess in;
  in.buffer = 0;
  in.tag = ArgTag::in;
  in.shape[0] = 1;
  in.step[0] = 1;
  PatternAccess out = in;
  out.buffer = 1;
  out.tag = ArgTag::out_existing;
  p.accesses = {in, out};
  p.scalar_step = scalar_step;
  return p;
}
TEST_P(TaskPatterns, IndependentSliceWritesAreTrustedWithoutEdges) {
  Fixture f(loop_config(GetParam()));
  const RandomPattern p = slice_writes(20, 3);
  Cells got = initial_cells(2);
  const PatternRun run = run_pattern(f.runtime, f.kernel, f.whole, p, &got, false);
  ASSERT_TRUE(run.result.ok()) << run.result.status.to_string();
  for (const TaskEvent& e : run.result.trace->tasks)
    EXPECT_TRUE(e.producers.empty()) << "task " << e.sequence;
  EXPECT_EQ(run.result.stats.pattern_loops, 1u);
  EXPECT_TRUE(run.result.stats.pattern_lambda_reasons.empty());
  EXPECT_EQ(run.result.stats.loop_tasks_analysed, 18u);    // iterations 0 and 1 learn
  EXPECT_EQ(run.result.stats.pattern_tasks_trusted, 16u);  // 2 and 3 verify
  expect_plain_loop_buffers(GetParam(), p, got);
}

// The trusted loop's steady stretch (OrchestratorCore::run_loop: each iteration after a trusted one
// tests only its room and its position's own state): 24 slice writes, iterations 4-23 trusted
// one after another with the oracle's order and the plain loop's values; under tiny rings (room
// for fewer tasks than the loop: an iteration without room goes the public submit's way and the
// next one tests everything again) the same values and order; and a kernel that throws inside the
// stretch ends the run with its named error.
void throw_at_twelve(const KernelArgs& a) {
  if (a.scalar_bits(0) == 12) throw std::runtime_error("slice 12 failed");
  pattern_kernel(a);
}
TEST_P(TaskPatterns, SteadyTrustedStretchKeepsRoomOrderAndErrors) {
  const RandomPattern p = slice_writes(24, 1);
  for (const std::uint32_t window : {0u, 8u}) {
    RuntimeConfig config = loop_config(GetParam());
    if (window != 0) config = with_tiny_rings(config, window);
    Fixture f(config);
    Cells got = initial_cells(2);
    const PatternRun run = run_pattern(f.runtime, f.kernel, f.whole, p, &got, false);
    ASSERT_TRUE(run.result.ok()) << run.result.status.to_string();
    EXPECT_EQ(check_trace_order(run.oracle), "") << "window " << window;
    EXPECT_EQ(check_edges_exact(run.oracle), "") << "window " << window;
    if (window == 0) {
      EXPECT_EQ(run.result.stats.pattern_tasks_trusted, 20u);  // 0, 1 learn; 2, 3 verify
    } else {
      EXPECT_GT(run.result.stats.pattern_tasks_trusted, 0u);
      // On the sim (deterministic) some steady iterations found no room and took the public
      // submit, and trust resumed after them.
      if (GetParam() == PlatformKind::sim) {
        EXPECT_LT(run.result.stats.pattern_tasks_trusted, 20u);
      }
    }
    expect_plain_loop_buffers(GetParam(), p, got);
  }
  Fixture f(loop_config(GetParam()));
  const KernelId failing =
      f.runtime.kernels().add("throw_at_twelve", CoreType::aiv, &throw_at_twelve);
  Cells got = initial_cells(2);
  const PatternRun run = run_pattern(f.runtime, failing, f.whole, p, &got, false);
  ASSERT_FALSE(run.result.ok());
  EXPECT_EQ(run.result.status.code, ErrorCode::kernel_exception) << run.result.status.to_string();
  EXPECT_NE(run.result.status.to_string().find("slice 12 failed"), std::string::npos)
      << run.result.status.to_string();
}

// A sweep that reads row i and writes row i + 1 of one buffer: the carried edge at distance 1,
// each task waiting for the one before and for nothing else. Analysed, not trusted: a position
// with carried edges on its own buffer is not one replay_into covers (LoopDriver::TaskPlan::fast),
// so the pattern form submits it as the lambda form would.
TEST_P(TaskPatterns, CarriedSweepKeepsItsChain) {
  Fixture f(loop_config(GetParam()));
  RandomPattern p;
  p.n = 16;
  p.buffers = 1;
  PatternAccess in;
  in.shape[0] = 1;
  in.step[0] = 1;
  PatternAccess out = in;
  out.tag = ArgTag::out_existing;
  out.offset[0] = 1;
  p.accesses = {in, out};
  Cells got = initial_cells(1);
  const PatternRun run = run_pattern(f.runtime, f.kernel, f.whole, p, &got, false);
  ASSERT_TRUE(run.result.ok()) << run.result.status.to_string();
  for (const TaskEvent& e : run.result.trace->tasks) {
    if (e.sequence == 0) continue;
    ASSERT_EQ(e.producers.size(), 1u) << "task " << e.sequence;
    EXPECT_EQ(e.producers[0], e.sequence - 1);
  }
  EXPECT_EQ(run.result.stats.loop_tasks_analysed, 14u);
  EXPECT_EQ(check_trace_order(run.oracle), "");
  expect_plain_loop_buffers(GetParam(), p, got);
}

// Every route that runs the lambda loop, by its reason.
TEST_P(TaskPatterns, LambdaRoutesAreCountedByReason) {
  const auto reasons = [](const RunResult& r) {
    std::string out;
    for (const auto& [reason, n] : r.stats.pattern_lambda_reasons)
      out += reason + "=" + std::to_string(n) + ";";
    return out;
  };
  RandomPattern p;
  p.n = 10;
  p.buffers = 1;
  PatternAccess row;
  row.tag = ArgTag::inout;
  row.shape[0] = 1;
  row.step[0] = 1;
  p.accesses = {row};
  {
    Fixture off(loop_config(GetParam(), false));
    Cells cells = initial_cells(1);
    const PatternRun run = run_pattern(off.runtime, off.kernel, off.whole, p, &cells, false);
    ASSERT_TRUE(run.result.ok());
    EXPECT_EQ(reasons(run.result), "analysis off=1;");
    EXPECT_EQ(run.result.stats.pattern_tasks_trusted, 0u);
  }
  Fixture f(loop_config(GetParam()));
  {
    RandomPattern short_loop = p;
    short_loop.n = 2;
    Cells cells = initial_cells(1);
    const PatternRun run = run_pattern(f.runtime, f.kernel, f.whole, short_loop, &cells, false);
    ASSERT_TRUE(run.result.ok());
    EXPECT_EQ(reasons(run.result), "fewer than three iterations=1;");
  }
  {
    // Inside a lambda parallel_for: the outer loop owns its iterations' tasks.
    Cells cells = initial_cells(1);
    const RunResult r = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Tensor t = Tensor::wrap(cells.buffers[0].data(), {kRows, kCols}, DType::i32);
      TaskPattern pattern({kNoKernel, f.kernel, kNoKernel});
      pattern.inout(t, {1, kCols}, {0, 0}, {1, 0}).scalar_bits(1);
      o.parallel_for(4, [&](Orchestrator& o, std::int64_t) { o.parallel_for(6, pattern); });
    });
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(reasons(r), "inside another parallel_for=4;");
    EXPECT_EQ(r.stats.pattern_loops, 4u);
  }
}

// A pattern whose iteration 7 leaves its tensor (rows 21-24 of 24), and one whose iteration 7
// has an offset below zero: the run ends with the view's named error after iterations 0-6 were
// submitted, as the plain loop of pattern.args(i) submits ends (which of those ran before the
// error ended the run is a matter of timing: no row past them is written).
TEST_P(TaskPatterns, OutOfRangeIterationEndsTheRunWhereAPlainLoopWould) {
  Fixture f(loop_config(GetParam()));
  Fixture reference(loop_config(GetParam(), false));
  for (const bool negative : {false, true}) {
    const auto run = [&](Fixture& fx, bool sequential, Cells* cells) {
      return fx.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
        const Tensor t = Tensor::wrap(cells->buffers[0].data(), {kRows, kCols}, DType::i32);
        TaskPattern pattern({kNoKernel, fx.kernel, kNoKernel});
        if (negative) {
          pattern.out_existing(t, {1, kCols}, {6, 0}, {-1, 0});
        } else {
          pattern.out_existing(t, {4, kCols}, {0, 0}, {3, 0});
        }
        pattern.scalar_bits(0);
        if (sequential) {
          for (std::int64_t i = 0; i < 10; ++i)
            o.submit(pattern.kernels(), pattern.args(i));
        } else {
          o.parallel_for(10, pattern);
        }
      });
    };
    Cells got = initial_cells(1);
    Cells want = initial_cells(1);
    const RunResult r = run(f, false, &got);
    const RunResult plain = run(reference, true, &want);
    ASSERT_FALSE(r.ok()) << "negative " << negative;
    EXPECT_EQ(r.status.code, ErrorCode::invalid_args) << r.status.to_string();
    EXPECT_EQ(r.status.to_string(), plain.status.to_string());
    EXPECT_EQ(r.trace->tasks.size(), 7u) << "negative " << negative;
    EXPECT_EQ(plain.trace->tasks.size(), 7u) << "negative " << negative;
    const Cells before = initial_cells(1);
    for (std::uint32_t row = 0; row < kRows; ++row) {
      if (negative ? row <= 6 : row < 22) continue;  // the rows of iterations 0-6
      for (std::uint32_t c = 0; c < kCols; ++c) {
        EXPECT_EQ(got.buffers[0][row * kCols + c], before.buffers[0][row * kCols + c])
            << "row " << row;
      }
    }
    ASSERT_EQ(r.stats.pattern_lambda_reasons.size(), 1u);
    EXPECT_EQ(r.stats.pattern_lambda_reasons[0].first, "a view out of range");
  }
}

TEST_P(TaskPatterns, BadPatternsAreNamedErrors) {
  Fixture f(loop_config(GetParam()));
  std::vector<std::int32_t> cells(kRows * kCols);
  const auto run = [&](auto&& build, std::int64_t n) {
    return f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Tensor t = Tensor::wrap(cells.data(), {kRows, kCols}, DType::i32);
      TaskPattern pattern({kNoKernel, f.kernel, kNoKernel});
      build(pattern, t);
      o.parallel_for(n, pattern);
    });
  };
  const RunResult null_tensor = run([](TaskPattern& p, const Tensor&) { p.in(Tensor()); }, 4);
  EXPECT_EQ(null_tensor.status.code, ErrorCode::invalid_args);
  EXPECT_NE(null_tensor.status.to_string().find("null tensor"), std::string::npos);
  const RunResult steps = run(
      [](TaskPattern& p, const Tensor& t) {
        p.in(t, {1, kCols}, {0, 0}, {1});
      },
      4);
  EXPECT_EQ(steps.status.code, ErrorCode::invalid_args);
  EXPECT_NE(steps.status.to_string().find("steps"), std::string::npos);
  const RunResult after_scalar =
      run([](TaskPattern& p, const Tensor& t) { p.scalar_bits(1).in(t); }, 4);
  EXPECT_EQ(after_scalar.status.code, ErrorCode::invalid_args);
  // No iteration, no error: the plain loop submits nothing.
  const RunResult empty = run([](TaskPattern& p, const Tensor&) { p.in(Tensor()); }, 0);
  EXPECT_TRUE(empty.ok()) << empty.status.to_string();
  const RunResult negative = run([](TaskPattern& p, const Tensor& t) { p.in(t); }, -1);
  EXPECT_EQ(negative.status.code, ErrorCode::invalid_args);
}

// A template kept from a run whose pattern had another step (the same loop of the same
// orchestration) is checked, not trusted: the second run computes its own loop's result.
TEST_P(TaskPatterns, KeptTemplateOfAnotherStepIsNotTrusted) {
  Fixture f(loop_config(GetParam()));
  Fixture reference(loop_config(GetParam(), false));
  for (const std::int64_t step : {1, 2, 1, 3}) {
    RandomPattern p;
    p.n = 8;
    p.buffers = 2;
    PatternAccess in;
    in.shape[0] = 2;
    in.step[0] = step;
    PatternAccess out = in;
    out.buffer = 1;
    out.tag = ArgTag::inout;
    p.accesses = {in, out};
    Cells got = initial_cells(2);
    Cells want = initial_cells(2);
    const PatternRun run = run_pattern(f.runtime, f.kernel, f.whole, p, &got, false);
    ASSERT_TRUE(run.result.ok()) << run.result.status.to_string();
    ASSERT_TRUE(run_pattern(reference.runtime, reference.kernel, reference.whole, p, &want, true)
                    .result.ok());
    EXPECT_EQ(got.buffers, want.buffers) << "step " << step;
  }
}

INSTANTIATE_TEST_SUITE_P(Platforms, TaskPatterns, both_platforms(), platform_name);

}  // namespace
}  // namespace tmr::testing
