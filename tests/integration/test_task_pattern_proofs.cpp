// A nested pattern loop's run proof (LoopDriver::run_affine / prove_run) on the threads and sim
// platforms: an outer parallel_for of five iterations owns the analysis and learns its template
// from iterations 0 and 1, whose pattern iterations are written out as the plain loop (a lambda
// inner loop of TaskPattern::submit_iteration) from tiles that differ from the later ones at some
// positions; iterations 2-4 run the uniform pattern. Where the template's positions are not the
// first one moved affinely (a different footprint, an offset off the line), the run must not be
// trusted: its compares run, with the lambda loop's books. A carried dependence inside the
// pattern is trusted and still ordered. Each against the plain loop (final values) and the
// oracle (every conflicting pair ordered, no edge without a conflict).
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "support/loop_tests.hpp"
#include "support/pattern_cells.hpp"
#include "support/platforms.hpp"
#include "support/random_program.hpp"
#include "tmr/tmr.hpp"

namespace tmr::testing {
namespace {

constexpr std::uint32_t kRows = 40;
constexpr std::uint32_t kCols = 4;
constexpr std::int64_t kN = 8;    // pattern iterations a tile
constexpr int kOuter = 5;         // tiles (outer iterations)
constexpr std::uint32_t kA = 4;   // A row of pattern iteration 0
constexpr std::uint32_t kC = 20;  // C row of pattern iteration 0

// How the template's tiles (outer iterations 0 and 1) differ from the pattern at pattern
// iterations i >= kFrom.
enum class Tile {
  same,       // nowhere
  footprint,  // task 0 reads two rows of A, not one
  offset,     // task 0 reads A three rows further on
  stride,     // task 0's A row jumps by two in tile 0, by one in tile 1 (below)
  carried,    // nowhere; task 0 reads C's row of the previous pattern iteration (see below)
};
constexpr std::int64_t kFrom = 4;

// One pattern iteration i of outer iteration r:
//   task 0 (AIV): in(A rows [rows] at a_row(i)) (carried: also in(C row kC - 1 + i)), out(S [2])
//   task 1 (AIC): in_output(0, 0), out(P [1])
//   task 2 (AIV): in_output(1, 0), inout(B row i), out_existing(C row kC + i)
struct Layout {
  Tile tile = Tile::same;
  bool differs(std::int64_t r, std::int64_t i) const { return r < 2 && i >= kFrom; }
  std::uint32_t a_rows(std::int64_t r, std::int64_t i) const {
    return tile == Tile::footprint && differs(r, i) ? 2 : 1;
  }
  std::uint32_t a_row(std::int64_t r, std::int64_t i) const {
    const auto ui = static_cast<std::uint32_t>(i);
    if (tile == Tile::stride) return kA + (differs(r, i) ? 2 : static_cast<std::uint32_t>(r)) + ui;
    return kA + ui + (tile == Tile::offset && differs(r, i) ? 3 : 0);
  }
};

struct Buffers {
  std::vector<std::int32_t> a = std::vector<std::int32_t>(kRows * kCols);
  std::vector<std::int32_t> b = std::vector<std::int32_t>(kRows * kCols);
  std::vector<std::int32_t> c = std::vector<std::int32_t>(kRows * kCols);
  Buffers() {
    for (std::uint32_t e = 0; e < kRows * kCols; ++e) {
      a[e] = static_cast<std::int32_t>(e * 29 + 5);
      b[e] = static_cast<std::int32_t>(e * 13 + 2);
      c[e] = static_cast<std::int32_t>(e * 7 + 1);
    }
  }
  friend bool operator==(const Buffers&, const Buffers&) = default;
};

struct Fixture {
  explicit Fixture(RuntimeConfig config) : runtime(config) {
    kernel = runtime.kernels().add("cells", CoreType::aiv, &cells_kernel);
    cube = runtime.kernels().add("cells_cube", CoreType::aic, &cells_kernel);
  }
  Runtime runtime;
  KernelId kernel = kNoKernel;
  KernelId cube = kNoKernel;
};

// The pattern of outer iteration r whose iteration `at` is the tile's: the views of iteration i
// are those of `at` moved by i - at.
TaskPattern make_pattern(const Fixture& f, const Layout& l, std::int64_t r, std::int64_t at,
                         const Tensor& a, const Tensor& b, const Tensor& c) {
  const TensorSpec s_spec(Shape{2, kCols}, DType::i32);
  const TensorSpec p_spec(Shape{1, kCols}, DType::i32);
  const auto back = [&](std::int64_t row) { return static_cast<std::uint32_t>(row - at); };
  TaskPattern p({kNoKernel, f.kernel, kNoKernel});
  p.in(a, {l.a_rows(r, at), kCols}, {back(l.a_row(r, at)), 0}, {1, 0});
  if (l.tile == Tile::carried) p.in(c, {1, kCols}, {back(kC - 1 + at), 0}, {1, 0});
  p.out(s_spec);
  p.then({f.cube, kNoKernel, kNoKernel}).in_output(0, 0).out(p_spec);
  p.then({kNoKernel, f.kernel, kNoKernel})
      .in_output(1, 0)
      .inout(b, {1, kCols}, {0, 0}, {1, 0})
      .out_existing(c, {1, kCols}, {kC, 0}, {1, 0});
  return p;
}

enum class Form { pattern, lambda, plain };

RunResult run(Fixture& f, const Layout& l, Buffers* buffers, Form form) {
  return f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor a = Tensor::wrap(buffers->a.data(), {kRows, kCols}, DType::i32);
    const Tensor b = Tensor::wrap(buffers->b.data(), {kRows, kCols}, DType::i32);
    const Tensor c = Tensor::wrap(buffers->c.data(), {kRows, kCols}, DType::i32);
    const auto body = [&](Orchestrator& o, std::int64_t r) {
      if (r >= 2 && form == Form::pattern) {
        o.parallel_for(kN, make_pattern(f, l, r, 0, a, b, c));
        return;
      }
      const auto iteration = [&](Orchestrator& o, std::int64_t i) {
        make_pattern(f, l, r, i, a, b, c).submit_iteration(o, i);
      };
      if (form == Form::plain) {
        for (std::int64_t i = 0; i < kN; ++i)
          iteration(o, i);
      } else {
        o.parallel_for(kN, iteration);
      }
    };
    if (form == Form::plain) {
      for (int r = 0; r < kOuter; ++r)
        body(o, r);
    } else {
      o.parallel_for(kOuter, body);
    }
  });
}

// The oracle's rows: A = 0, B = 1, C = 2, (r, i)'s fresh S, P = 10 + 2 (r kN + i) + 0, 1.
std::vector<std::vector<Access>> accesses(const Layout& l) {
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
  std::vector<std::vector<Access>> out;
  for (std::int64_t r = 0; r < kOuter; ++r) {
    for (std::int64_t i = 0; i < kN; ++i) {
      const int fresh = 10 + 2 * static_cast<int>(r * kN + i);
      const auto ui = static_cast<std::uint32_t>(i);
      std::vector<Access> t0 = {box(0, false, l.a_row(r, i), l.a_rows(r, i))};
      if (l.tile == Tile::carried) t0.push_back(box(2, false, kC - 1 + ui, 1));
      t0.push_back(box(fresh, true, 0, 2));
      out.push_back(std::move(t0));
      out.push_back({box(fresh, false, 0, 2), box(fresh + 1, true, 0, 1)});
      out.push_back({box(fresh + 1, false, 0, 1), box(1, true, ui, 1), box(2, true, kC + ui, 1)});
    }
  }
  return out;
}

std::string ordered_exactly(const RunResult& run, std::vector<std::vector<Access>> tasks) {
  ProgramResult oracle;
  oracle.accesses = std::move(tasks);
  oracle.has_no_dep.assign(oracle.accesses.size(), false);
  oracle.trace = run.trace;
  if (run.trace->tasks.size() != oracle.accesses.size()) return "task count";
  if (std::string why = check_trace_order(oracle); !why.empty()) return why;
  return check_edges_exact(oracle);
}

std::string books(const RunResult& r) {
  std::string out = "analysed " + std::to_string(r.stats.loop_tasks_analysed) + ", wide " +
                    std::to_string(r.stats.loop_tasks_replayed_wide) + ", fallbacks";
  for (const auto& [why, count] : r.stats.loop_fallback_reasons)
    out += " " + why + "=" + std::to_string(count);
  return out;
}

class TaskPatternProofs : public ::testing::TestWithParam<PlatformKind> {};

// The pattern run of layout `l`: the plain loop's values, the oracle's order, the lambda loop's
// books; returns its trusted task count.
std::uint64_t check_layout(const Layout& l) {
  Fixture f(loop_config(TaskPatternProofs::GetParam()));
  Fixture lambda(loop_config(TaskPatternProofs::GetParam()));
  Fixture plain(loop_config(TaskPatternProofs::GetParam(), false));
  Buffers got, by_lambda, want;
  const RunResult r = run(f, l, &got, Form::pattern);
  const RunResult lr = run(lambda, l, &by_lambda, Form::lambda);
  EXPECT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_TRUE(lr.ok()) << lr.status.to_string();
  EXPECT_TRUE(run(plain, l, &want, Form::plain).ok());
  EXPECT_EQ(got, want);
  EXPECT_EQ(by_lambda, want);
  if (r.ok()) {
    EXPECT_EQ(ordered_exactly(r, accesses(l)), "");
  }
  EXPECT_EQ(books(r), books(lr));
  EXPECT_EQ(r.stats.pattern_loops, 3u);
  return r.stats.pattern_tasks_trusted;
}

// The control: every template position the first moved affinely. Outer iteration 2 (the first
// analysed) prepares the positions; in iterations 3 and 4 tasks 0 and 1 are verified at pattern
// iterations 0 and 1 and their runs proven, so iterations 2-7 of both are trusted: 2 x 6 x 2.
// (Task 2 writes only outer buffers besides its reference: its position is not a wide one here,
// and it is never trusted, as in NestedRunThatIsNotAffineKeepsTheCompare.)
TEST_P(TaskPatternProofs, AffineTilesAreTrustedFromTheThirdIteration) {
  EXPECT_EQ(check_layout(Layout{Tile::same}), 24u);
}

// The template's tiles read two rows of A from pattern iteration 4 on (a free read: the
// positions' images differ in the row extent, and the compare of outer iteration 2 closes their
// family). Task 0's positions are not one moved affinely, so its run is not proven and it keeps
// the compare; task 1 is trusted as in the control: 2 x 6.
TEST_P(TaskPatternProofs, DifferentFootprintIsNotTrusted) {
  EXPECT_EQ(check_layout(Layout{Tile::footprint}), 12u);
}

// The template's tiles read A three rows further on from pattern iteration 4 on: an offset off
// the line of iterations 0-3. Task 0 keeps the compare; task 1 is trusted: 2 x 6.
TEST_P(TaskPatternProofs, OffsetOffTheLineIsNotTrusted) {
  EXPECT_EQ(check_layout(Layout{Tile::offset}), 12u);
}

// Task 0 reads A row 4 + r + i in tile r but, in the template's tiles 0 and 1, row 6 + i from
// pattern iteration 4 on: each position's row is start + r x stride with start 4 + i, stride 1
// before iteration 4 and start 6 + i, stride 0 from it on. Outer iteration 2 meets every
// prediction (row 6 + i everywhere), so its compares pass and no family closes; but the
// positions are not the first one moved affinely (the start jumps by two, the stride changes),
// so in iteration 3 the run proof refuses task 0, whose compares miss from pattern iteration 4 on
// (row 7 + i against 6 + i), as the lambda loop's do.
// Task 1 is trusted as in the control: 2 x 6.
TEST_P(TaskPatternProofs, StrideOffTheLineIsNotTrusted) {
  EXPECT_EQ(check_layout(Layout{Tile::stride}), 12u);
}

// Task 0 also reads the C row task 2 of the previous pattern iteration wrote (and, at iteration
// 0, the row before the loop's): a dependence carried at distance 1 inside each tile, and every
// tile writes the same C rows (carried across tiles). The template's positions are affine, so
// the runs are proven; the trusted submits keep every edge (the oracle).
TEST_P(TaskPatternProofs, CarriedDependenceInsideATileIsOrdered) {
  EXPECT_EQ(check_layout(Layout{Tile::carried}), 24u);
}

INSTANTIATE_TEST_SUITE_P(Platforms, TaskPatternProofs, both_platforms(), platform_name);

}  // namespace
}  // namespace tmr::testing
