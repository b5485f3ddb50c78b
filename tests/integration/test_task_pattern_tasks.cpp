// parallel_for(n, TaskPattern) with several tasks an iteration, fresh outputs, references to an
// earlier task's outputs (whole and fixed views) and conditional scalars (scalar_if), on the
// threads and sim platforms: random patterns against the same loop written as plain submits
// (TaskPattern::submit_iteration with the analysis off): equal final contents, every conflicting
// pair ordered and no edge without a conflict (the oracle of the lambda form's tests), the route
// and the analysed counts in RunStats; a reference to a later task and a fresh output that
// cannot fit give the plain loop's named errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/loop_tests.hpp"
#include "support/pattern_cells.hpp"
#include "support/platforms.hpp"
#include "support/random_program.hpp"
#include "support/test_scale.hpp"
#include "tmr/tmr.hpp"

namespace tmr::testing {
namespace {

constexpr std::uint32_t kRows = 48;  // room for 40 iterations' rows
constexpr std::uint32_t kCols = 6;

// Three tasks an iteration, PA's shape on cells:
//   task 0: in(A rows [a_rows] at a_at + i * a_step), out(S [2, kCols])
//   task 1: in_output(0, 0) whole or as its view {1, s_cols} at {1, s_col}, [in(A)], out(P [1,
//           kCols]), out(Q [2, kCols]), scalar_if(flag_at, 5, 9)
//   task 2: in_output(1, 0), in_output(1, 1), inout(B whole or its row i), out_existing(C row
//           c_at + i * c_step), scalar_bits(base, step), scalar_if(n - 1, 1, 0)
struct Declared {
  std::int64_t n = 0;
  std::uint32_t a_rows = 1;
  std::int64_t a_at = 0;
  std::int64_t a_step = 1;
  bool s_view = false;
  std::uint32_t s_cols = 1;
  std::uint32_t s_col = 0;
  bool a_whole_in_1 = false;
  std::int64_t flag_at = 0;
  bool b_whole = true;  // a carried accumulator; otherwise row i of B (independent)
  std::int64_t c_at = 0;
  std::int64_t c_step = 1;
  std::uint64_t base = 0;
  std::uint64_t step = 0;
  bool scoped = false;
};

// n in [min_n, max_n].
Declared random_declared(std::uint64_t seed, std::int64_t min_n = 1, std::int64_t max_n = 12) {
  std::mt19937_64 rng(seed);
  Declared d;
  d.n = min_n + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(max_n - min_n + 1));
  d.a_rows = 1 + static_cast<std::uint32_t>(rng() % 3);
  d.a_step = static_cast<std::int64_t>(rng() % 2);
  d.a_at = static_cast<std::int64_t>(rng() % (kRows - d.a_rows - d.a_step * (d.n - 1) + 1));
  d.s_view = rng() % 2 == 0;
  d.s_cols = 1 + static_cast<std::uint32_t>(rng() % (kCols - 1));
  d.s_col = static_cast<std::uint32_t>(rng() % (kCols - d.s_cols + 1));
  d.a_whole_in_1 = rng() % 3 == 0;
  d.flag_at = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(d.n + 1)) - 0;
  d.b_whole = rng() % 2 == 0;
  d.c_at = static_cast<std::int64_t>(rng() % (kRows - static_cast<std::uint64_t>(d.n) + 1));
  d.base = rng() % 1000;
  d.step = rng() % 3;
  d.scoped = rng() % 2 == 0;
  return d;
}

struct Buffers {
  std::vector<std::int32_t> a = std::vector<std::int32_t>(kRows * kCols);
  std::vector<std::int32_t> b = std::vector<std::int32_t>(kRows * kCols);
  std::vector<std::int32_t> c = std::vector<std::int32_t>(kRows * kCols);
  Buffers() {
    for (std::uint32_t e = 0; e < kRows * kCols; ++e) {
      a[e] = static_cast<std::int32_t>(e * 31 + 7);
      b[e] = static_cast<std::int32_t>(e * 17 + 3);
      c[e] = static_cast<std::int32_t>(e * 5 + 1);
    }
  }
  friend bool operator==(const Buffers&, const Buffers&) = default;
};

TaskPattern make_pattern(KernelId k, KernelId cube, const Declared& d, const Tensor& a,
                         const Tensor& b, const Tensor& c) {
  const TensorSpec s_spec(Shape{2, kCols}, DType::i32);
  const TensorSpec p_spec(Shape{1, kCols}, DType::i32);
  TaskPattern p({kNoKernel, k, kNoKernel});
  p.in(a, {d.a_rows, kCols}, {static_cast<std::uint32_t>(d.a_at), 0}, {d.a_step, 0}).out(s_spec);
  p.then({cube, kNoKernel, kNoKernel});
  if (d.s_view) {
    p.in_output(0, 0, {1, d.s_cols}, {1, d.s_col});
  } else {
    p.in_output(0, 0);
  }
  if (d.a_whole_in_1) p.in(a);
  p.out(p_spec).out(s_spec).scalar_if(d.flag_at, 5, 9);
  p.then({kNoKernel, k, kNoKernel}).in_output(1, 0).in_output(1, 1);
  if (d.b_whole) {
    p.inout(b);
  } else {
    p.inout(b, {1, kCols}, {0, 0}, {1, 0});
  }
  p.out_existing(c, {1, kCols}, {static_cast<std::uint32_t>(d.c_at), 0}, {d.c_step, 0})
      .scalar_bits(d.base, d.step)
      .scalar_if(d.n - 1, 1, 0);
  return p;
}

// The oracle's rows: A = 0, B = 1, C = 2, iteration i's fresh S, P, Q = 10 + 3 i + 0, 1, 2.
std::vector<std::vector<Access>> accesses(const Declared& d) {
  const auto box = [](int buffer, bool write, std::uint32_t r0, std::uint32_t rows,
                      std::uint32_t c0, std::uint32_t cols) {
    Access x;
    x.buffer = buffer;
    x.write = write;
    x.r0 = r0;
    x.rows = rows;
    x.c0 = c0;
    x.cols = cols;
    return x;
  };
  std::vector<std::vector<Access>> out;
  for (std::int64_t i = 0; i < d.n; ++i) {
    const int fresh = 10 + 3 * static_cast<int>(i);
    const auto ui = static_cast<std::uint32_t>(i);
    out.push_back(
        {box(0, false, static_cast<std::uint32_t>(d.a_at + d.a_step * i), d.a_rows, 0, kCols),
         box(fresh, true, 0, 2, 0, kCols)});
    std::vector<Access> t1;
    t1.push_back(d.s_view ? box(fresh, false, 1, 1, d.s_col, d.s_cols)
                          : box(fresh, false, 0, 2, 0, kCols));
    if (d.a_whole_in_1) t1.push_back(box(0, false, 0, kRows, 0, kCols));
    t1.push_back(box(fresh + 1, true, 0, 1, 0, kCols));
    t1.push_back(box(fresh + 2, true, 0, 2, 0, kCols));
    out.push_back(t1);
    out.push_back({box(fresh + 1, false, 0, 1, 0, kCols), box(fresh + 2, false, 0, 2, 0, kCols),
                   d.b_whole ? box(1, true, 0, kRows, 0, kCols) : box(1, true, ui, 1, 0, kCols),
                   box(2, true, static_cast<std::uint32_t>(d.c_at + d.c_step * i), 1, 0, kCols)});
  }
  return out;
}

// The oracle's verdict on a run of these tasks' accesses (in submit order): "" when its trace
// orders every conflicting pair and no other, else why not.
std::string ordered_exactly(const RunResult& run, std::vector<std::vector<Access>> tasks) {
  ProgramResult oracle;
  oracle.accesses = std::move(tasks);
  oracle.has_no_dep.assign(oracle.accesses.size(), false);
  oracle.trace = run.trace;
  if (run.trace->tasks.size() != oracle.accesses.size()) return "task count";
  if (std::string why = check_trace_order(oracle); !why.empty()) return why;
  return check_edges_exact(oracle);
}

// cells_kernel after a pause (threads platform: the task stays running meanwhile).
void slow_cells_kernel(const KernelArgs& a) {
  std::this_thread::sleep_for(std::chrono::microseconds(300));
  cells_kernel(a);
}

// cells_kernel for task 1, whose first argument is task 0's output S (whole or a view): a
// descriptor without its creator (Tensor::producer) throws, which ends the run.
void creator_cells_kernel(const KernelArgs& a) {
  if (!a.tensor(0).producer().valid()) throw std::runtime_error("S without its creator");
  cells_kernel(a);
}

struct Fixture {
  explicit Fixture(RuntimeConfig config, KernelFn fn = &cells_kernel, KernelFn cube_fn = nullptr)
      : runtime(config) {
    kernel = runtime.kernels().add("cells", CoreType::aiv, fn);
    cube = runtime.kernels().add("cells_cube", CoreType::aic, cube_fn != nullptr ? cube_fn : fn);
  }
  Runtime runtime;
  KernelId kernel = kNoKernel;
  KernelId cube = kNoKernel;
};

// The pattern loop (or, `plain`, the loop of submit_iteration; `lambda`, that loop as a lambda
// parallel_for, analysed) on `buffers`.
RunResult run_declared(Fixture& f, const Declared& d, Buffers* buffers, bool plain,
                       bool lambda = false) {
  return f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor a = Tensor::wrap(buffers->a.data(), {kRows, kCols}, DType::i32);
    const Tensor b = Tensor::wrap(buffers->b.data(), {kRows, kCols}, DType::i32);
    const Tensor c = Tensor::wrap(buffers->c.data(), {kRows, kCols}, DType::i32);
    TaskPattern pattern = make_pattern(f.kernel, f.cube, d, a, b, c);
    if (lambda) {
      o.parallel_for(
          d.n, [&](Orchestrator& o, std::int64_t i) { pattern.submit_iteration(o, i); },
          LoopOptions{d.scoped});
      return;
    }
    run_pattern_loop(o, pattern, d.n, d.scoped, plain);
  });
}

// A run's loop fall-backs by reason.
std::string fallbacks(const RunResult& r) {
  std::string books = "fallbacks";
  for (const auto& [why, count] : r.stats.loop_fallback_reasons)
    books += " " + why + "=" + std::to_string(count);
  return books;
}

// The analysis's books of a run: the analysed and wide counts and the fall-backs.
std::string analysed_books(const RunResult& r) {
  return "analysed " + std::to_string(r.stats.loop_tasks_analysed) + ", wide " +
         std::to_string(r.stats.loop_tasks_replayed_wide) + ", " + fallbacks(r);
}

std::string check_random(Fixture& f, Fixture& plain, int count, std::uint64_t seed0,
                         std::uint64_t* analysed, int* failed) {
  for (int s = 0; s < count; ++s) {
    const std::uint64_t seed = seed0 + static_cast<std::uint64_t>(s);
    const Declared d = random_declared(seed);
    const std::string where = "seed " + std::to_string(seed) + ": ";
    Buffers got, want;
    const RunResult run = run_declared(f, d, &got, false);
    const RunResult ref = run_declared(plain, d, &want, true);
    if (!ref.ok()) {
      // Tiny rings: an unscoped loop's fresh outputs fill the window; the pattern loop must fail
      // as the plain loop fails.
      if (run.ok() || run.status.code != ref.status.code)
        return where + "plain: " + ref.status.to_string() + ", pattern: " + run.status.to_string();
      ++*failed;
      continue;
    }
    if (!run.ok()) return where + run.status.to_string();
    if (!(got == want)) return where + "buffers differ from the plain loop's";
    if (std::string why = ordered_exactly(run, accesses(d)); !why.empty()) return where + why;
    if (run.stats.pattern_loops != 1) return where + "pattern_loops is not 1";
    if (route_reasons(run) != "several tasks or fresh outputs (compared until verified)=1;")
      return where + "route " + route_reasons(run);
    *analysed += run.stats.loop_tasks_analysed;
  }
  return "";
}

class TaskPatternTasks : public ::testing::TestWithParam<PlatformKind> {};

TEST_P(TaskPatternTasks, RandomPatternsMatchThePlainLoop) {
  Fixture f(loop_config(GetParam()));
  Fixture plain(loop_config(GetParam(), false));
  std::uint64_t analysed = 0;
  int failed = 0;
  EXPECT_EQ(check_random(f, plain, scaled(200, 25), 100, &analysed, &failed), "");
  EXPECT_GT(analysed, 0u);
  EXPECT_EQ(failed, 0);  // the loop analysis covered the moved arguments' submits
}

TEST_P(TaskPatternTasks, RandomPatternsUnderTinyRings) {
  Fixture f(with_tiny_rings(loop_config(GetParam()), 8));
  Fixture plain(with_tiny_rings(loop_config(GetParam(), false), 8));
  std::uint64_t analysed = 0;
  int failed = 0;
  const int count = scaled(80, 10);
  EXPECT_EQ(check_random(f, plain, count, 7000, &analysed, &failed), "");
  EXPECT_LT(failed, count);  // most fit (scoped ones and short loops)
}

// The same loop as a lambda parallel_for of plain submits: the same analysed count (the pattern
// form's submits take the same replay path), and with the analysis off the plain loop's route.
TEST_P(TaskPatternTasks, AnalysedAsTheLambdaLoopAndPlainWhenOff) {
  Declared d;
  d.n = 12;
  d.s_view = true;
  d.s_cols = 3;
  d.s_col = 2;
  d.flag_at = 4;
  d.b_whole = false;
  d.step = 2;
  Fixture f(loop_config(GetParam()));
  Buffers got;
  const RunResult run = run_declared(f, d, &got, false);
  ASSERT_TRUE(run.ok()) << run.status.to_string();
  Fixture g(loop_config(GetParam()));
  Buffers lambda_buffers;
  const RunResult lambda = g.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor a = Tensor::wrap(lambda_buffers.a.data(), {kRows, kCols}, DType::i32);
    const Tensor b = Tensor::wrap(lambda_buffers.b.data(), {kRows, kCols}, DType::i32);
    const Tensor c = Tensor::wrap(lambda_buffers.c.data(), {kRows, kCols}, DType::i32);
    const TaskPattern pattern = make_pattern(g.kernel, g.cube, d, a, b, c);
    o.parallel_for(d.n, [&](Orchestrator& o, std::int64_t i) { pattern.submit_iteration(o, i); });
  });
  ASSERT_TRUE(lambda.ok()) << lambda.status.to_string();
  EXPECT_EQ(got, lambda_buffers);
  EXPECT_GT(run.stats.loop_tasks_analysed, 0u);
  EXPECT_EQ(run.stats.loop_tasks_analysed, lambda.stats.loop_tasks_analysed);
  // Iterations 0 and 1 learn, 2 and 3 verify (the wide compare passes at each task's position),
  // 4 to 11 skip it: 8 iterations of 3 tasks.
  EXPECT_EQ(run.stats.pattern_tasks_trusted, 24u);
  // Each of those iterations in one call (OrchestratorCore::submit_pattern_iteration).
  EXPECT_EQ(run.stats.pattern_iterations_trusted, 8u);
  EXPECT_EQ(analysed_books(run), analysed_books(lambda));
  Fixture off(loop_config(GetParam(), false));
  Buffers plain_buffers;
  const RunResult plain = run_declared(off, d, &plain_buffers, false);
  ASSERT_TRUE(plain.ok()) << plain.status.to_string();
  EXPECT_EQ(route_reasons(plain), "analysis off=1;");
  EXPECT_EQ(plain.stats.loop_tasks_analysed, 0u);
  EXPECT_EQ(got, plain_buffers);
}

// Inside a lambda parallel_for the moved arguments serve too; the route says why none is trusted.
TEST_P(TaskPatternTasks, NestedPatternMatchesThePlainLoop) {
  Declared d;
  d.n = 5;
  d.b_whole = true;
  d.flag_at = 0;
  Fixture f(loop_config(GetParam()));
  Fixture plain(loop_config(GetParam(), false));
  Buffers got, want;
  const auto run = [&](Fixture& fx, Buffers* buffers, bool nested) {
    return fx.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Tensor a = Tensor::wrap(buffers->a.data(), {kRows, kCols}, DType::i32);
      const Tensor b = Tensor::wrap(buffers->b.data(), {kRows, kCols}, DType::i32);
      const Tensor c = Tensor::wrap(buffers->c.data(), {kRows, kCols}, DType::i32);
      const TaskPattern pattern = make_pattern(fx.kernel, fx.cube, d, a, b, c);
      for (int outer = 0; outer < 3; ++outer) {
        if (nested) {
          o.parallel_for(3, [&](Orchestrator& o, std::int64_t) { o.parallel_for(d.n, pattern); });
        } else {
          for (int k = 0; k < 3; ++k) {
            for (std::int64_t i = 0; i < d.n; ++i)
              pattern.submit_iteration(o, i);
          }
        }
      }
    });
  };
  const RunResult r = run(f, &got, true);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  ASSERT_TRUE(run(plain, &want, false).ok());
  EXPECT_EQ(got, want);
  EXPECT_EQ(route_reasons(r), "inside another parallel_for=9;");
}

// No iteration (paged attention's request shorter than a block): nothing submitted, and the
// route says so rather than naming the analysis off.
TEST_P(TaskPatternTasks, EmptyLoopSubmitsNothing) {
  Fixture f(loop_config(GetParam()));
  Declared d;
  d.n = 0;
  Buffers got, want;
  const RunResult r = run_declared(f, d, &got, false);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.trace->tasks.size(), 0u);
  EXPECT_EQ(got, want);
  EXPECT_EQ(route_reasons(r), "fewer than three iterations=1;");
}

TEST_P(TaskPatternTasks, ReferenceToALaterTaskIsANamedError) {
  Fixture f(loop_config(GetParam()));
  Buffers buffers;
  for (const int task : {0, 1, -1}) {
    const RunResult r = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Tensor a = Tensor::wrap(buffers.a.data(), {kRows, kCols}, DType::i32);
      TaskPattern p({kNoKernel, f.kernel, kNoKernel});
      p.in(a).out(TensorSpec(Shape{1, kCols}, DType::i32));
      p.then({kNoKernel, f.kernel, kNoKernel}).in_output(task, 0);
      p.then({kNoKernel, f.kernel, kNoKernel}).in_output(0, 1);  // task 0 has one output
      o.parallel_for(4, p);
    });
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status.code, ErrorCode::invalid_args);
    const std::string message = r.status.to_string();
    if (task == 0) {
      EXPECT_NE(message.find("names output 1 of task 0, which has 1"), std::string::npos)
          << message;
    } else {
      EXPECT_NE(message.find("names task " + std::to_string(task) + ", not one before task 1"),
                std::string::npos)
          << message;
    }
    EXPECT_EQ(r.trace->tasks.size(), 0u);
  }
}

// A fresh output larger than the output heap: the plain loop's error, at the same task.
TEST_P(TaskPatternTasks, FreshOutputThatCannotFitIsThePlainLoopsError) {
  const auto run = [&](bool plain) {
    RuntimeConfig config = with_tiny_rings(loop_config(GetParam(), !plain), 8);
    Fixture f(config);
    Buffers buffers;
    return f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Tensor a = Tensor::wrap(buffers.a.data(), {kRows, kCols}, DType::i32);
      TaskPattern p({kNoKernel, f.kernel, kNoKernel});
      p.in(a, {1, kCols}, {0, 0}, {1, 0}).out(TensorSpec(Shape{2, kCols}, DType::i32));
      p.then({kNoKernel, f.kernel, kNoKernel})
          .in_output(0, 0)
          .out(TensorSpec(Shape{1u << 12, 1u << 12}, DType::i32));
      if (plain) {
        for (std::int64_t i = 0; i < 6; ++i)
          p.submit_iteration(o, i);
      } else {
        o.parallel_for(6, p);
      }
    });
  };
  const RunResult got = run(false);
  const RunResult want = run(true);
  ASSERT_FALSE(want.ok());
  EXPECT_EQ(got.status.code, want.status.code);
  EXPECT_EQ(got.status.to_string(), want.status.to_string());
  EXPECT_EQ(got.trace->tasks.size(), want.trace->tasks.size());
}

// Long random loops (8 to 40 iterations), so the wide positions reach the compare-free submit
// (docs/design.md, "A compare-free wide submit"): against the plain loop (values, every
// conflicting pair ordered, no edge without a conflict), the lambda loop's books (on the sim all
// of them; on threads, where what has completed varies, the fall-backs), and trusted submits
// counted: at most the iterations past the two learning and two verifying ones, and some in all.
// A kept template takes a buffer at the last run's address for the same buffer (docs/sim.md,
// "Buffer addresses"), so both forms' buffers lie alike: an odd seed's are the last seed's, an
// even seed's lie elsewhere.
// Iterations submitted in one call (pattern_iterations_trusted) are counted in `whole`: each is
// three trusted submits.
std::string check_long(Fixture& f, Fixture& plain, Fixture& lambda, int count, std::uint64_t seed0,
                       std::uint64_t* trusted, int* failed, std::uint64_t* whole = nullptr) {
  const bool sim = f.runtime.config().platform == PlatformKind::sim;
  const Buffers initial;
  Buffers places[2][2];  // [pattern, lambda][slot]
  for (int s = 0; s < count; ++s) {
    const std::uint64_t seed = seed0 + static_cast<std::uint64_t>(s);
    const Declared d = random_declared(seed, 8, 40);
    const std::string where = "seed " + std::to_string(seed) + ": ";
    Buffers& got = places[0][(s / 2) % 2] = initial;  // a copy: the storage stays
    Buffers& by_lambda = places[1][(s / 2) % 2] = initial;
    Buffers want;
    const RunResult run = run_declared(f, d, &got, false);
    const RunResult ref = run_declared(plain, d, &want, true);
    const RunResult lam = run_declared(lambda, d, &by_lambda, false, true);
    if (!ref.ok()) {
      if (run.ok() || run.status.to_string() != ref.status.to_string())
        return where + "plain: " + ref.status.to_string() + ", pattern: " + run.status.to_string();
      if (run.trace->tasks.size() != ref.trace->tasks.size()) return where + "failed task count";
      ++*failed;
      continue;
    }
    if (!run.ok()) return where + run.status.to_string();
    if (!(got == want)) return where + "buffers differ from the plain loop's";
    if (!lam.ok() || !(by_lambda == want)) return where + "the lambda loop differs";
    const auto books = [&](const RunResult& r) { return sim ? analysed_books(r) : fallbacks(r); };
    if (books(run) != books(lam)) return where + "pattern " + books(run) + ", lambda " + books(lam);
    if (std::string why = ordered_exactly(run, accesses(d)); !why.empty()) return where + why;
    if (run.stats.pattern_tasks_trusted > 3 * static_cast<std::uint64_t>(d.n - 4))
      return where + "trusted " + std::to_string(run.stats.pattern_tasks_trusted);
    if (3 * run.stats.pattern_iterations_trusted > run.stats.pattern_tasks_trusted)
      return where + "whole iterations " + std::to_string(run.stats.pattern_iterations_trusted);
    *trusted += run.stats.pattern_tasks_trusted;
    if (whole != nullptr) *whole += run.stats.pattern_iterations_trusted;
  }
  return "";
}

TEST_P(TaskPatternTasks, LongRandomPatternsSkipTheCompareExactly) {
  Fixture f(loop_config(GetParam()));
  Fixture plain(loop_config(GetParam(), false));
  Fixture lambda(loop_config(GetParam()));
  std::uint64_t trusted = 0;
  std::uint64_t whole = 0;
  int failed = 0;
  EXPECT_EQ(check_long(f, plain, lambda, scaled(60, 10), 5000, &trusted, &failed, &whole), "");
  EXPECT_EQ(failed, 0);
  EXPECT_GT(trusted, 0u);
  EXPECT_GT(whole, 0u);  // iterations in one call
}

// Tiny rings (an 8-task window): trusted submits meet full rings and heaps, and a loop whose
// fresh outputs cannot fit fails as the plain loop fails, after the same tasks; an iteration
// whose tasks do not fit at once goes task by task.
TEST_P(TaskPatternTasks, LongRandomPatternsUnderTinyRings) {
  Fixture f(with_tiny_rings(loop_config(GetParam()), 8));
  Fixture plain(with_tiny_rings(loop_config(GetParam(), false), 8));
  Fixture lambda(with_tiny_rings(loop_config(GetParam()), 8));
  std::uint64_t trusted = 0;
  std::uint64_t whole = 0;
  int failed = 0;
  const int count = scaled(40, 8);
  EXPECT_EQ(check_long(f, plain, lambda, count, 9000, &trusted, &failed, &whole), "");
  EXPECT_LT(failed, count);
  EXPECT_GT(trusted, 0u);
  // The window seldom has room for a whole iteration at once: trusted submits go task by task
  // (the iteration's fall-back before anything is submitted), with the same results.
  EXPECT_GT(trusted, 3 * whole);
}

// A trusted iteration in one call (docs/design.md, "A trusted iteration in one call"): a long
// loop of independent iterations, each its own scope, whose three tasks are all trusted from
// iteration 4 on. Every such iteration goes in one call (the rings are large), with the plain
// loop's values, the oracle's order and the lambda loop's books; task 1's kernel sees S's view
// with its creator, as the plain loop passes it.
TEST_P(TaskPatternTasks, TrustedIterationsGoInOneCall) {
  Declared d;
  d.n = 20;
  d.s_view = true;
  d.s_cols = 4;
  d.s_col = 1;
  d.flag_at = 7;
  d.b_whole = false;
  d.c_at = 5;
  d.step = 3;
  d.scoped = true;
  Fixture f(loop_config(GetParam()), &cells_kernel, &creator_cells_kernel);
  Fixture lambda(loop_config(GetParam()), &cells_kernel, &creator_cells_kernel);
  Fixture plain(loop_config(GetParam(), false), &cells_kernel, &creator_cells_kernel);
  Buffers got, by_lambda, want;
  const RunResult run = run_declared(f, d, &got, false);
  const RunResult lam = run_declared(lambda, d, &by_lambda, false, true);
  ASSERT_TRUE(run.ok()) << run.status.to_string();
  ASSERT_TRUE(lam.ok()) << lam.status.to_string();
  ASSERT_TRUE(run_declared(plain, d, &want, true).ok());
  EXPECT_EQ(got, want);
  EXPECT_EQ(by_lambda, want);
  EXPECT_EQ(ordered_exactly(run, accesses(d)), "");
  EXPECT_EQ(analysed_books(run), analysed_books(lam));
  EXPECT_EQ(run.stats.pattern_tasks_trusted, 48u);       // iterations 4-19
  EXPECT_EQ(run.stats.pattern_iterations_trusted, 16u);  // each in one call
}

// The loop both window tests run: 40 scoped iterations of S (a view), a flag read and C.
Declared long_scoped_loop() {
  Declared d;
  d.n = 40;
  d.s_view = true;
  d.s_cols = 2;
  d.s_col = 3;
  d.flag_at = 9;
  d.b_whole = false;
  d.c_at = 4;
  d.scoped = true;
  return d;
}

// Slow tasks under an 8-task window: the window stays full of running tasks, so an iteration
// seldom has room for its three tasks at once (none did in the runs seen) and its trusted tasks
// go task by task, each waiting for room. The plain loop's values and the oracle's order.
TEST_P(TaskPatternTasks, SlowTasksUnderATinyWindowKeepTheWindow) {
  const Declared d = long_scoped_loop();
  Fixture f(with_tiny_rings(loop_config(GetParam()), 8), &slow_cells_kernel);
  Fixture plain(with_tiny_rings(loop_config(GetParam(), false), 8), &slow_cells_kernel);
  Buffers got, want;
  const RunResult run = run_declared(f, d, &got, false);
  ASSERT_TRUE(run.ok()) << run.status.to_string();
  ASSERT_TRUE(run_declared(plain, d, &want, true).ok());
  EXPECT_EQ(got, want);
  EXPECT_EQ(ordered_exactly(run, accesses(d)), "");
  // (Fewer than iterations 4-39's: a task that waited for room took the compared submit.)
  EXPECT_GT(run.stats.pattern_tasks_trusted, 0u);
  EXPECT_LE(3 * run.stats.pattern_iterations_trusted, run.stats.pattern_tasks_trusted);
}

// How full a ring's window was, from a run's trace. A task's slot is free again only once the
// task is consumed: its own completion, its scope's and each consumer's releases done
// (docs/design.md, "Tasks and their references"), and a consumer releases its producers when
// it completes. So no slot frees before its task's complete_ns and each consumer's (a task whose
// trace lists it among its producers), and the ring's watermark passes a slot only after every
// earlier one of its ring freed. An admit (submit_ns is taken after it) needs fewer than
// window - 1 live tasks (Ring::window_has_room): at most window - 2 before it that are not
// provably retired by then. `most`: the largest such count at an admit; `overrun`: the first
// admit with more than `limit`.
struct WindowUse {
  std::uint32_t most = 0;
  std::string overrun;  // "" when none exceeded the limit
};

WindowUse window_use(const Trace& trace, std::uint32_t limit) {
  // Per task (by sequence): the earliest its slot could have been free.
  std::vector<std::uint64_t> freed(trace.tasks.size(), 0);
  for (const TaskEvent& task : trace.tasks) {
    freed[task.sequence] = std::max(freed[task.sequence], task.complete_ns);
    for (const std::uint64_t producer : task.producers)
      freed[producer] = std::max(freed[producer], task.complete_ns);
  }
  WindowUse use;
  for (const TaskEvent& task : trace.tasks) {
    // The earlier tasks of its ring in ring order, and the latest free time of each prefix: the
    // watermark is past task j only once every task up to j freed.
    std::vector<const TaskEvent*> earlier;
    for (const TaskEvent& e : trace.tasks) {
      if (e.id.ring() == task.id.ring() && e.id.local() < task.id.local()) earlier.push_back(&e);
    }
    std::sort(earlier.begin(), earlier.end(),
              [](const TaskEvent* x, const TaskEvent* y) { return x->id.local() < y->id.local(); });
    std::uint64_t prefix = 0;
    std::size_t retired = 0;  // earlier tasks provably behind the watermark at the admit
    for (std::size_t j = 0; j < earlier.size(); ++j) {
      prefix = std::max(prefix, freed[earlier[j]->sequence]);
      if (prefix <= task.submit_ns) retired = j + 1;
    }
    const auto live = static_cast<std::uint32_t>(earlier.size() - retired);
    use.most = std::max(use.most, live);
    if (live > limit && use.overrun.empty()) {
      use.overrun = "task " + std::to_string(task.sequence) + " admitted at " +
                    std::to_string(task.submit_ns) + " ns with " + std::to_string(live) +
                    " earlier tasks of its ring not provably retired";
    }
  }
  return use;
}

// A trusted stretch under a small window genuinely full of running tasks: long kernels (threads:
// a pause in the kernel; sim: a modelled 20 us each) keep every admitted task running or waiting
// while the orchestrator runs ahead, so the window is full at admits, and an iteration's room
// test in one call (OrchestratorCore::room_for: a room credit for its three submits, or room for
// three at once) meets credits of one or two slots left by the task-by-task waits. From the
// trace (window_use): no admit ever found more than window - 2 earlier tasks of its ring not
// provably retired (the window was kept) and some found exactly that many (it was full), some
// iterations went in one call, and the plain loop's values and the oracle's order.
TEST_P(TaskPatternTasks, TrustedIterationsKeepAWindowFullOfRunningTasks) {
  const Declared d = long_scoped_loop();
  const bool sim = GetParam() == PlatformKind::sim;
  const KernelFn fn = sim ? KernelFn(&cells_kernel) : KernelFn(&slow_cells_kernel);
  std::uint64_t whole = 0;  // iterations submitted in one call, both windows
  for (const std::uint32_t window : {16u, 32u}) {
    SCOPED_TRACE("window " + std::to_string(window));
    Fixture f(with_tiny_rings(loop_config(GetParam()), window), fn);
    Fixture plain(with_tiny_rings(loop_config(GetParam(), false), window), fn);
    if (sim) {
      for (Fixture* x : {&f, &plain}) {
        x->runtime.kernels().set_cost(x->kernel, KernelCost{20000});
        x->runtime.kernels().set_cost(x->cube, KernelCost{20000});
      }
    }
    Buffers got, want;
    const RunResult run = run_declared(f, d, &got, false);
    ASSERT_NE(run.trace, nullptr) << run.status.to_string();
    // (Before the status: an overrun may also end the run, e.g. as a flow_control_deadlock.)
    const WindowUse use = window_use(*run.trace, window - 2);
    EXPECT_EQ(use.overrun, "");
    ASSERT_TRUE(run.ok()) << run.status.to_string();
    EXPECT_EQ(use.most, window - 2);
    ASSERT_TRUE(run_declared(plain, d, &want, true).ok());
    EXPECT_EQ(got, want);
    EXPECT_EQ(ordered_exactly(run, accesses(d)), "");
    EXPECT_GT(run.stats.pattern_tasks_trusted, 0u);
    EXPECT_LE(3 * run.stats.pattern_iterations_trusted, run.stats.pattern_tasks_trusted);
    whole += run.stats.pattern_iterations_trusted;
  }
  EXPECT_GT(whole, 0u);
}

// A bad table entry inside a trusted iteration: task 1 reads A's row table[i] (in_indexed) with
// irregular entries, so its view's family closes and the task is trusted after task 0 (task 0
// from iteration 4, task 1 from iteration 5); entry 12 lies outside A's 48 rows. Iterations 5-11
// go in one call, iteration 12 begins in one call (task 0) and task 1 takes the plain loop's
// arguments, whose view names the error: the plain loop's error after the same tasks.
TEST_P(TaskPatternTasks, BadEntryInATrustedIterationIsThePlainLoops) {
  std::vector<std::int32_t> table(16);
  for (std::size_t i = 0; i < table.size(); ++i)
    table[i] = static_cast<std::int32_t>((i * i * 7 + 3) % kRows);
  table[12] = static_cast<std::int32_t>(kRows) + 3;
  const auto run = [&](bool plain, bool analysed) {
    Fixture f(loop_config(GetParam(), analysed));
    Buffers buffers;
    return f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Tensor a = Tensor::wrap(buffers.a.data(), {kRows, kCols}, DType::i32);
      TaskPattern p({kNoKernel, f.kernel, kNoKernel});
      p.in(a, {1, kCols}, {0, 0}, {1, 0}).out(TensorSpec(Shape{2, kCols}, DType::i32));
      p.then({kNoKernel, f.kernel, kNoKernel})
          .in_output(0, 0)
          .in_indexed(a, {1, kCols}, {0, 0}, 0, Tensor::wrap(table.data(), {1, 16}, DType::i32),
                      {0}, 1)
          .out(TensorSpec(Shape{1, kCols}, DType::i32));
      if (plain) {
        for (std::int64_t i = 0; i < 16; ++i)
          p.submit_iteration(o, i);
      } else {
        o.parallel_for(16, p, LoopOptions{true});
      }
    });
  };
  const RunResult got = run(false, true);
  const RunResult want = run(true, false);
  ASSERT_FALSE(want.ok());
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status.to_string(), want.status.to_string());
  EXPECT_EQ(got.trace->tasks.size(), want.trace->tasks.size());
  EXPECT_EQ(got.trace->tasks.size(), 25u);  // iterations 0-11 and task 0 of iteration 12
  EXPECT_EQ(got.stats.pattern_iterations_trusted, 7u);
  EXPECT_EQ(got.stats.pattern_tasks_trusted, 16u);  // 4: task 0; 5-11: both; 12: task 0
}

// A template kept from a run whose C row moved by one each iteration, rebound by a run whose C
// row stands still (the same iteration 0): the kept image agrees with the pattern at one
// iteration only, so no submit is trusted before two consecutive compares pass under the new
// analysis, and the books are the lambda loop's (one pass alone would trust the old step: the
// WAW chain on C row c_at would lose its edges). Each run's buffers lie elsewhere than the other's
// (docs/sim.md, "Buffer addresses"): the second run rebinds the template after its first iteration.
TEST_P(TaskPatternTasks, KeptTemplateOfAnotherStepIsVerifiedAgain) {
  Declared d;
  d.n = 14;
  d.b_whole = false;
  d.c_at = 3;
  Fixture f(loop_config(GetParam()));
  Fixture lambda(loop_config(GetParam()));
  Fixture plain(loop_config(GetParam(), false));
  Buffers places[2][2];  // [c_step][pattern, lambda]
  for (const std::int64_t c_step : {1, 0}) {
    d.c_step = c_step;
    Buffers& got = places[c_step][0];
    Buffers& by_lambda = places[c_step][1];
    Buffers want;
    const RunResult run = run_declared(f, d, &got, false);
    const RunResult lam = run_declared(lambda, d, &by_lambda, false, true);
    ASSERT_TRUE(run.ok()) << run.status.to_string();
    ASSERT_TRUE(lam.ok()) << lam.status.to_string();
    ASSERT_TRUE(run_declared(plain, d, &want, true).ok());
    EXPECT_EQ(got, want) << c_step;
    EXPECT_EQ(by_lambda, want) << c_step;
    EXPECT_EQ(ordered_exactly(run, accesses(d)), "") << c_step;
    EXPECT_EQ(analysed_books(run), analysed_books(lam)) << c_step;
    if (c_step == 1) {
      EXPECT_EQ(run.stats.pattern_tasks_trusted, 30u);  // iterations 4-13
    } else {
      // The kept image passes at iteration 0 and misses at 1: the first two consecutive passes
      // can be iterations 2 and 3 at the earliest, so nothing before iteration 4 is trusted.
      EXPECT_LE(run.stats.pattern_tasks_trusted, 30u);
      EXPECT_GT(run.stats.pattern_tasks_trusted, 0u);
    }
  }
}

// An error in the middle of a trusted stretch: task 1 reads A's row table[i] (in_indexed; the
// table is C's first 16 cells, 5 i + 1, affine, so that view is compared by image and task 1 is
// never trusted), and entry 10 (51) lies outside A's 48 rows; task 0 is trusted from iteration 4
// on. The run ends with the plain loop's error, after the same tasks.
TEST_P(TaskPatternTasks, ErrorAfterTrustedIterationsIsThePlainLoops) {
  const auto run = [&](bool plain, bool analysed) {
    Fixture f(loop_config(GetParam(), analysed));
    Buffers buffers;
    return f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Tensor a = Tensor::wrap(buffers.a.data(), {kRows, kCols}, DType::i32);
      TaskPattern p({kNoKernel, f.kernel, kNoKernel});
      p.in(a, {1, kCols}, {0, 0}, {1, 0}).out(TensorSpec(Shape{2, kCols}, DType::i32));
      p.then({kNoKernel, f.kernel, kNoKernel})
          .in_output(0, 0)
          .in_indexed(a, {1, kCols}, {0, 0}, 0, Tensor::wrap(buffers.c.data(), {1, 16}, DType::i32),
                      {0}, 1)
          .out(TensorSpec(Shape{1, kCols}, DType::i32));
      if (plain) {
        for (std::int64_t i = 0; i < 16; ++i)
          p.submit_iteration(o, i);
      } else {
        o.parallel_for(16, p);
      }
    });
  };
  const RunResult got = run(false, true);
  const RunResult want = run(true, false);
  ASSERT_FALSE(want.ok());
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status.code, want.status.code);
  EXPECT_EQ(got.status.to_string(), want.status.to_string());
  EXPECT_EQ(got.trace->tasks.size(), want.trace->tasks.size());
  EXPECT_EQ(got.trace->tasks.size(), 21u);  // iterations 0-9 and task 0 of iteration 10
  EXPECT_GT(got.stats.pattern_tasks_trusted, 0u);
}

// Nested (paged attention's shape): a lambda loop of `outer` iterations owns the analysis, each
// of its iterations one pattern loop of d.n iterations, so a pattern task's submits take
// different template positions, one iteration's task count apart. In an analysed outer
// iteration each task is verified at its first two pattern iterations and, once the template's
// positions are proven affine in the pattern's index (LoopDriver::run_affine), trusted from the
// third. Random patterns against the plain loop with the oracle, and trusted counts.
TEST_P(TaskPatternTasks, NestedRandomPatternsSkipTheCompareExactly) {
  Fixture f(loop_config(GetParam()));
  Fixture plain(loop_config(GetParam(), false));
  std::uint64_t trusted = 0;
  for (int s = 0; s < scaled(40, 8); ++s) {
    const std::uint64_t seed = 7000 + static_cast<std::uint64_t>(s);
    const Declared d = random_declared(seed, 3, 30);
    const int outer = 2 + static_cast<int>(seed % 5);
    const auto run = [&](Fixture& fx, Buffers* buffers, bool nested) {
      return fx.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
        const Tensor a = Tensor::wrap(buffers->a.data(), {kRows, kCols}, DType::i32);
        const Tensor b = Tensor::wrap(buffers->b.data(), {kRows, kCols}, DType::i32);
        const Tensor c = Tensor::wrap(buffers->c.data(), {kRows, kCols}, DType::i32);
        if (nested) {
          o.parallel_for(outer, [&](Orchestrator& o, std::int64_t) {
            const TaskPattern pattern = make_pattern(fx.kernel, fx.cube, d, a, b, c);
            o.parallel_for(d.n, pattern, LoopOptions{d.scoped});
          });
        } else {
          const TaskPattern pattern = make_pattern(fx.kernel, fx.cube, d, a, b, c);
          for (int r = 0; r < outer; ++r)
            run_pattern_loop(o, pattern, d.n, d.scoped, true);
        }
      });
    };
    Buffers got, want;
    const RunResult r = run(f, &got, true);
    ASSERT_TRUE(r.ok()) << "seed " << seed << ": " << r.status.to_string();
    ASSERT_TRUE(run(plain, &want, false).ok()) << "seed " << seed;
    ASSERT_EQ(got, want) << "seed " << seed;
    std::vector<std::vector<Access>> tasks;
    for (int k = 0; k < outer; ++k) {
      for (std::vector<Access> task : accesses(d)) {
        for (Access& x : task) {
          if (x.buffer >= 10) x.buffer += 3 * static_cast<int>(d.n) * k;  // each iteration's own
        }
        tasks.push_back(task);
      }
    }
    EXPECT_EQ(ordered_exactly(r, std::move(tasks)), "") << "seed " << seed;
    // At most the pattern iterations past two of each pattern loop (verified at its first two
    // when the outer loop owns the analysis; past four when a pattern loop owns its own, while
    // the outer one learns).
    EXPECT_LE(r.stats.pattern_tasks_trusted,
              3u * static_cast<std::uint64_t>(outer) * static_cast<std::uint64_t>(d.n - 2))
        << "seed " << seed;
    trusted += r.stats.pattern_tasks_trusted;
  }
  EXPECT_GT(trusted, 0u);
}

// Nested, with a template whose positions are not affine in the pattern's index. The outer loop
// (5 iterations, each one inner parallel_for of 8) learns from iterations 0 and 1, whose task 0
// reads A rows (8, 9, 8, 9, ..., 13) and (9, 10, 10, 11, ..., 15) (a free read: any strides):
// its positions' images are not affine in the pattern's index from i = 2 on. Iterations 2-4 run
// the pattern of A row 8 + r + i. Two passes at i = 0 and 1 do not make task 0's run trusted
// (LoopDriver::run_affine refuses it), so its compares run (iteration 3's miss from i = 2 on,
// closing those positions' families, as the lambda loop's do); task 1, whose positions are
// affine, is trusted from i = 2 in iterations 3 and 4 (iteration 2, the first analysed, prepares
// the positions). Equal to the plain loop, with the lambda loop's books.
TEST_P(TaskPatternTasks, NestedRunThatIsNotAffineKeepsTheCompare) {
  Declared d;
  d.n = 8;
  d.b_whole = false;
  const int outer = 5;
  // A row a_at + i read by iteration r's pattern iteration i.
  const auto a_at = [](std::int64_t r, std::int64_t i) -> std::int64_t {
    if (r == 0) return i < 2 ? 8 : 6;
    if (r == 1) return i < 2 ? 9 : 8;
    return 8 + r;
  };
  const auto run = [&](Fixture& fx, Buffers* buffers, int form) {  // 0 pattern, 1 lambda, 2 plain
    return fx.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Tensor a = Tensor::wrap(buffers->a.data(), {kRows, kCols}, DType::i32);
      const Tensor b = Tensor::wrap(buffers->b.data(), {kRows, kCols}, DType::i32);
      const Tensor c = Tensor::wrap(buffers->c.data(), {kRows, kCols}, DType::i32);
      const auto pattern_at = [&](std::int64_t r, std::int64_t i) {
        Declared at = d;
        at.a_at = a_at(r, i);
        return make_pattern(fx.kernel, fx.cube, at, a, b, c);
      };
      // Every outer iteration one inner parallel_for (the outer template's shape).
      const auto body = [&](Orchestrator& o, std::int64_t r) {
        if (r >= 2 && form == 0) {
          o.parallel_for(d.n, pattern_at(r, 0));
          return;
        }
        const auto iteration = [&](Orchestrator& o, std::int64_t i) {
          pattern_at(r, i).submit_iteration(o, i);
        };
        if (form == 2) {
          for (std::int64_t i = 0; i < d.n; ++i)
            iteration(o, i);
        } else {
          o.parallel_for(d.n, iteration);
        }
      };
      if (form == 2) {
        for (int r = 0; r < outer; ++r)
          body(o, r);
      } else {
        o.parallel_for(outer, body);
      }
    });
  };
  Fixture f(loop_config(GetParam()));
  Fixture lambda(loop_config(GetParam()));
  Fixture plain(loop_config(GetParam(), false));
  Buffers got, by_lambda, want;
  const RunResult r = run(f, &got, 0);
  const RunResult l = run(lambda, &by_lambda, 1);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  ASSERT_TRUE(l.ok()) << l.status.to_string();
  ASSERT_TRUE(run(plain, &want, 2).ok());
  EXPECT_EQ(got, want);
  EXPECT_EQ(by_lambda, want);
  EXPECT_EQ(analysed_books(r), analysed_books(l));
  // Task 1 at i = 2-7 of iterations 3 and 4 (task 2's C row write is not a wide position here).
  EXPECT_EQ(r.stats.pattern_tasks_trusted, 12u);
}

// Nested as paged attention: every task of the pattern a wide position (fresh outputs, a view of
// task 0's output, the outer iteration's accumulator and a fixed C row), so each pattern loop's
// tasks are verified as runs at i = 0 and 1 and the whole iteration is trusted from i = 2. The
// outer loop (5 iterations) learns from 0 and 1; in iteration 2, its first analysed, the
// positions past i = 1 are not prepared yet (PreparedTask::wide_ready: a position's first wide
// submit prepares it), so LoopDriver::trusted_tasks refuses those iterations, which go the
// checked way (submit_pattern_task, the public submit's compare); iterations 3 and 4 go in one
// call from i = 2. Equal to the plain loop, ordered as the oracle says, with the lambda loop's
// books.
TEST_P(TaskPatternTasks, NestedRunAtUnpreparedPositionsIsCompared) {
  constexpr int kOuter = 5;
  constexpr std::int64_t kInner = 8;
  const TensorSpec acc_spec(Shape{2, kCols}, DType::i32);
  const TensorSpec s_spec(Shape{2, kCols}, DType::i32);
  const TensorSpec p_spec(Shape{1, kCols}, DType::i32);
  const auto pattern_of = [&](const Fixture& fx, const Tensor& a, const Tensor& acc,
                              const Tensor& c, std::int64_t r) {
    const auto row = static_cast<std::uint32_t>(r);
    TaskPattern p({kNoKernel, fx.kernel, kNoKernel});
    p.in(a, {1, kCols}, {row, 0}, {1, 0}).out(s_spec);
    p.then({fx.cube, kNoKernel, kNoKernel})
        .in_output(0, 0, {1, kCols}, {1, 0})
        .out(p_spec)
        .scalar_if(0, 5, 9);
    p.then({kNoKernel, fx.kernel, kNoKernel})
        .in_output(1, 0)
        .inout(acc)
        .out_existing(c, {1, kCols}, {row, 0}, {0, 0})
        .scalar_if(kInner - 1, 1, 0);
    return p;
  };
  const auto run = [&](Fixture& fx, Buffers* buffers, int form) {  // 0 pattern, 1 lambda, 2 plain
    return fx.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Tensor a = Tensor::wrap(buffers->a.data(), {kRows, kCols}, DType::i32);
      const Tensor c = Tensor::wrap(buffers->c.data(), {kRows, kCols}, DType::i32);
      const auto body = [&](Orchestrator& o, std::int64_t r) {
        const TaskOutputs acc =
            o.submit_aiv(fx.kernel, Args().out(acc_spec).scalar(static_cast<std::int32_t>(r)));
        if (!acc.valid()) return;
        const TaskPattern pattern = pattern_of(fx, a, acc[0], c, r);
        if (form == 0) {
          o.parallel_for(kInner, pattern, LoopOptions{true});
        } else if (form == 1) {
          o.parallel_for(
              kInner, [&](Orchestrator& o, std::int64_t i) { pattern.submit_iteration(o, i); },
              LoopOptions{true});
        } else {
          run_pattern_loop(o, pattern, kInner, true, true);
        }
      };
      if (form == 2) {
        for (int r = 0; r < kOuter; ++r) {
          TMR_SCOPE(o);
          body(o, r);
        }
      } else {
        o.parallel_for(kOuter, body, LoopOptions{true});
      }
    });
  };
  Fixture f(loop_config(GetParam()));
  Fixture lambda(loop_config(GetParam()));
  Fixture plain(loop_config(GetParam(), false));
  Buffers got, by_lambda, want;
  const RunResult r = run(f, &got, 0);
  const RunResult l = run(lambda, &by_lambda, 1);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  ASSERT_TRUE(l.ok()) << l.status.to_string();
  ASSERT_TRUE(run(plain, &want, 2).ok());
  EXPECT_EQ(got, want);
  EXPECT_EQ(by_lambda, want);
  // The oracle's rows: A = 0, C = 2, outer iteration r's accumulator 100 + r, its pattern
  // iteration i's fresh S and P 10 + 2 (r kInner + i) + 0, 1.
  const auto box = [](int buffer, bool write, std::uint32_t r0, std::uint32_t rows) {
    Access x;
    x.buffer = buffer;
    x.write = write;
    x.r0 = r0;
    x.rows = rows;
    x.c0 = 0;
    x.cols = kCols;
    return x;
  };
  std::vector<std::vector<Access>> tasks;
  for (int k = 0; k < kOuter; ++k) {
    const auto row = static_cast<std::uint32_t>(k);
    tasks.push_back({box(100 + k, true, 0, 2)});
    for (std::int64_t i = 0; i < kInner; ++i) {
      const int fresh = 10 + 2 * (k * static_cast<int>(kInner) + static_cast<int>(i));
      tasks.push_back(
          {box(0, false, row + static_cast<std::uint32_t>(i), 1), box(fresh, true, 0, 2)});
      tasks.push_back({box(fresh, false, 1, 1), box(fresh + 1, true, 0, 1)});
      tasks.push_back(
          {box(fresh + 1, false, 0, 1), box(100 + k, true, 0, 2), box(2, true, row, 1)});
    }
  }
  EXPECT_EQ(ordered_exactly(r, std::move(tasks)), "");
  EXPECT_EQ(analysed_books(r), analysed_books(l));
  EXPECT_EQ(r.stats.pattern_tasks_trusted, 36u);       // i = 2-7 of outer iterations 3 and 4
  EXPECT_EQ(r.stats.pattern_iterations_trusted, 12u);  // each in one call
}

INSTANTIATE_TEST_SUITE_P(Platforms, TaskPatternTasks, both_platforms(), platform_name);

}  // namespace
}  // namespace tmr::testing
