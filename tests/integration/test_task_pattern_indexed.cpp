// parallel_for(n, TaskPattern) with views indexed by a host i32 table (in_indexed: offset +
// table[row, i] * scale in one dimension), on the threads and sim platforms: random tables and
// views (plain and transposed) against the same loop written as plain submits
// (TaskPattern::submit_iteration, whose reads are get_tensor_data) with equal final contents and
// the lambda form's oracle (every conflicting pair ordered, no edge without a conflict); a table
// written by a slow task before the loop (read only after it), a table a task of the loop writes
// (the plain loop's reads), and a bad entry, which ends the run with the plain loop's error
// after the same tasks.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/loop_tests.hpp"
#include "support/pattern_cells.hpp"
#include "support/platforms.hpp"
#include "support/random_program.hpp"
#include "support/test_scale.hpp"
#include "tmr/tmr.hpp"

namespace tmr::testing {
namespace {

constexpr std::uint32_t kRows = 16;
constexpr std::uint32_t kCols = 6;
constexpr std::uint32_t kTableRows = 3;
constexpr std::uint32_t kMaxN = 12;

// table[r, i] = (table[r, i] * 5 + 3) mod `valid` for every entry (scalar 0: `valid`), after a
// pause on the threads platform (so a reader that does not wait sees the old entries).
void bump_table(const KernelArgs& a) {
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const Tensor& t = a.tensor(0);
  const auto valid = static_cast<std::int32_t>(a.scalar_bits(0));
  auto* p = t.data_as<std::int32_t>();
  for (std::uint32_t r = 0; r < t.dim(0); ++r) {
    for (std::uint32_t c = 0; c < t.dim(1); ++c) {
      std::int32_t& e = p[r * t.stride(0) + c * t.stride(1)];
      e = static_cast<std::int32_t>((static_cast<std::uint32_t>(e) * 5u + 3u) %
                                    static_cast<std::uint32_t>(valid));
    }
  }
}

struct Declared {
  std::int64_t n = 0;
  std::uint32_t row = 0;    // the table row
  std::uint32_t rows = 1;   // the indexed view's extent in the indexed dimension
  std::int64_t offset = 0;  // its offset before the entry
  std::int64_t scale = 1;
  bool transposed = false;  // task 1 reads A^T's [kCols, rows] view at columns offset + e * s
  bool scoped = false;
  bool fill_first = false;  // bump_table writes the table before the loop
  std::vector<std::int32_t> table = std::vector<std::int32_t>(kTableRows * kMaxN);
};

// The largest entry with offset + e * scale + rows <= kRows.
std::int32_t entry_limit(const Declared& d) {
  return static_cast<std::int32_t>((kRows - d.rows - d.offset) / d.scale);
}

Declared random_declared(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Declared d;
  d.n = 1 + static_cast<std::int64_t>(rng() % kMaxN);
  d.row = static_cast<std::uint32_t>(rng() % kTableRows);
  d.rows = 1 + static_cast<std::uint32_t>(rng() % 3);
  d.scale = 1 + static_cast<std::int64_t>(rng() % 3);
  d.offset = static_cast<std::int64_t>(rng() % 3);
  d.transposed = rng() % 2 == 0;
  d.scoped = rng() % 2 == 0;
  d.fill_first = rng() % 3 == 0;
  const std::int32_t limit = entry_limit(d);
  for (std::int32_t& e : d.table)
    e = static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(limit + 1));
  return d;
}

struct Buffers {
  std::vector<std::int32_t> a = std::vector<std::int32_t>(kRows * kCols);
  std::vector<std::int32_t> c = std::vector<std::int32_t>(kRows * kCols);
  std::vector<std::int32_t> table;
  explicit Buffers(const Declared& d) : table(d.table) {
    for (std::uint32_t e = 0; e < kRows * kCols; ++e) {
      a[e] = static_cast<std::int32_t>(e * 31 + 7);
      c[e] = static_cast<std::int32_t>(e * 5 + 1);
    }
  }
  friend bool operator==(const Buffers&, const Buffers&) = default;
};

struct Fixture {
  explicit Fixture(RuntimeConfig config) : runtime(config) {
    kernel = runtime.kernels().add("cells", CoreType::aiv, &cells_kernel);
    bump = runtime.kernels().add("bump_table", CoreType::aiv, &bump_table);
  }
  Runtime runtime;
  KernelId kernel = kNoKernel;
  KernelId bump = kNoKernel;
};

// task 0: in_indexed(A, {rows, kCols}, {offset, 0}, dim 0), out(S [2, kCols]);
// task 1: in_output(0, 0), in_indexed(A or A^T, the same rows), out_existing(C row i);
// with `bump_in_loop`, a task before them bumps the table (it writes what the loop reads).
TaskPattern make_pattern(const Fixture& f, const Declared& d, const Tensor& a, const Tensor& c,
                         const Tensor& table, bool bump_in_loop) {
  const auto offset = static_cast<std::uint32_t>(d.offset);
  TaskPattern p({kNoKernel, f.kernel, kNoKernel});
  if (bump_in_loop) {
    p = TaskPattern({kNoKernel, f.bump, kNoKernel});
    p.inout(table).scalar_bits(static_cast<std::uint64_t>(entry_limit(d) + 1));
    p.then({kNoKernel, f.kernel, kNoKernel});
  }
  const int first = bump_in_loop ? 1 : 0;
  p.in_indexed(a, {d.rows, kCols}, {offset, 0}, 0, table, {d.row}, d.scale)
      .out(TensorSpec(Shape{2, kCols}, DType::i32));
  p.then({kNoKernel, f.kernel, kNoKernel}).in_output(first, 0);
  if (d.transposed) {
    p.in_indexed(a.transpose(0, 1), {kCols, d.rows}, {0, offset}, 1, table, {d.row}, d.scale);
  } else {
    p.in_indexed(a, {d.rows, kCols}, {offset, 0}, 0, table, {d.row}, d.scale);
  }
  p.out_existing(c, {1, kCols}, {0, 0}, {1, 0});
  return p;
}

std::vector<std::vector<Access>> accesses(const Declared& d, const std::vector<std::int32_t>& t) {
  const auto box = [](int buffer, bool write, std::uint32_t r0, std::uint32_t rows) {
    Access x;
    x.buffer = buffer;
    x.write = write;
    x.r0 = r0;
    x.rows = rows;
    x.cols = kCols;
    return x;
  };
  std::vector<std::vector<Access>> out;
  if (d.fill_first) out.push_back({box(3, true, 0, kTableRows)});
  for (std::int64_t i = 0; i < d.n; ++i) {
    const auto e = t[d.row * kMaxN + static_cast<std::size_t>(i)];
    const auto r0 = static_cast<std::uint32_t>(d.offset + e * d.scale);
    const int fresh = 10 + static_cast<int>(i);
    out.push_back({box(0, false, r0, d.rows), box(fresh, true, 0, 2)});
    out.push_back({box(fresh, false, 0, 2), box(0, false, r0, d.rows),
                   box(2, true, static_cast<std::uint32_t>(i), 1)});
  }
  return out;
}

RunResult run_declared(Fixture& f, const Declared& d, Buffers* buffers, bool plain,
                       bool bump_in_loop = false) {
  return f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor a = Tensor::wrap(buffers->a.data(), {kRows, kCols}, DType::i32);
    const Tensor c = Tensor::wrap(buffers->c.data(), {kRows, kCols}, DType::i32);
    const Tensor table = Tensor::wrap(buffers->table.data(), {kTableRows, kMaxN}, DType::i32);
    if (d.fill_first) {
      o.submit_aiv(f.bump,
                   Args().inout(table).scalar_bits(static_cast<std::uint64_t>(entry_limit(d) + 1)));
    }
    const TaskPattern pattern = make_pattern(f, d, a, c, table, bump_in_loop);
    run_pattern_loop(o, pattern, d.n, d.scoped, plain);
  });
}

class TaskPatternIndexed : public ::testing::TestWithParam<PlatformKind> {};

TEST_P(TaskPatternIndexed, RandomTablesMatchThePlainLoop) {
  Fixture f(loop_config(GetParam()));
  Fixture plain(loop_config(GetParam(), false));
  std::uint64_t analysed = 0;
  for (int s = 0; s < scaled(150, 20); ++s) {
    const std::uint64_t seed = 300 + static_cast<std::uint64_t>(s);
    const Declared d = random_declared(seed);
    Buffers got(d), want(d);
    const RunResult run = run_declared(f, d, &got, false);
    ASSERT_TRUE(run.ok()) << "seed " << seed << ": " << run.status.to_string();
    ASSERT_TRUE(run_declared(plain, d, &want, true).ok()) << "seed " << seed;
    ASSERT_EQ(got, want) << "seed " << seed;
    ProgramResult oracle;
    oracle.accesses = accesses(d, got.table);
    oracle.has_no_dep.assign(oracle.accesses.size(), false);
    oracle.trace = run.trace;
    ASSERT_EQ(run.trace->tasks.size(), oracle.accesses.size()) << "seed " << seed;
    EXPECT_EQ(check_trace_order(oracle), "") << "seed " << seed;
    EXPECT_EQ(check_edges_exact(oracle), "") << "seed " << seed;
    EXPECT_EQ(route_reasons(run), "several tasks or fresh outputs (compared until verified)=1;")
        << "seed " << seed;
    analysed += run.stats.loop_tasks_analysed;
  }
  EXPECT_GT(analysed, 0u);
}

// A task of the loop bumps the table before each iteration's reads: the plain loop's reads
// (each waits for that task), counted by their reason; equal to the plain loop.
TEST_P(TaskPatternIndexed, TableWrittenInTheLoopRunsThePlainReads) {
  Fixture f(loop_config(GetParam()));
  Fixture plain(loop_config(GetParam(), false));
  Declared d = random_declared(41);
  d.n = 8;
  d.fill_first = false;
  Buffers got(d), want(d);
  const RunResult run = run_declared(f, d, &got, false, true);
  ASSERT_TRUE(run.ok()) << run.status.to_string();
  ASSERT_TRUE(run_declared(plain, d, &want, true, true).ok());
  EXPECT_EQ(got, want);
  EXPECT_EQ(route_reasons(run), "an index table written in the loop=1;");
}

// Entry 5 of the row leaves A (or, negative, puts the offset below 0): the run ends with the
// plain loop's error after the same tasks (iterations 0-4 and nothing of iteration 5).
TEST_P(TaskPatternIndexed, BadEntryIsThePlainLoopsError) {
  for (const std::int32_t bad : {static_cast<std::int32_t>(kRows), -1, 1 << 30}) {
    Declared d;
    d.n = 9;
    d.row = 1;
    d.rows = 2;
    d.scale = 1;
    d.transposed = true;
    for (std::size_t k = 0; k < d.table.size(); ++k)
      d.table[k] = static_cast<std::int32_t>(k % 7);
    d.table[d.row * kMaxN + 5] = bad;
    Fixture f(loop_config(GetParam()));
    Fixture plain(loop_config(GetParam(), false));
    Buffers got(d), want(d);
    const RunResult run = run_declared(f, d, &got, false);
    const RunResult ref = run_declared(plain, d, &want, true);
    ASSERT_FALSE(ref.ok()) << bad;
    ASSERT_FALSE(run.ok()) << bad;
    EXPECT_EQ(run.status.code, ref.status.code) << bad;
    EXPECT_EQ(run.status.to_string(), ref.status.to_string()) << bad;
    EXPECT_EQ(run.trace->tasks.size(), 10u) << bad;
    EXPECT_EQ(ref.trace->tasks.size(), 10u) << bad;
  }
}

// The table is written by a slow task just before the loop: the loop reads it only after that
// task (its one wait), as every get_tensor_data of the plain loop would.
TEST_P(TaskPatternIndexed, TableProducedBeforeTheLoopIsWaitedFor) {
  Fixture f(loop_config(GetParam()));
  Fixture plain(loop_config(GetParam(), false));
  for (int s = 0; s < 6; ++s) {
    Declared d = random_declared(900 + static_cast<std::uint64_t>(s));
    d.n = kMaxN;
    d.fill_first = true;
    // Valid entries before the bump too (bump_table maps each to another one in [0, limit]): a
    // read before the bump would see a valid, stale entry, not an error that the plain read path
    // then repairs.
    Buffers got(d), want(d);
    const RunResult run = run_declared(f, d, &got, false);
    ASSERT_TRUE(run.ok()) << run.status.to_string();
    ASSERT_TRUE(run_declared(plain, d, &want, true).ok());
    EXPECT_EQ(got, want);
  }
}

// An indexed view of a buffer the loop writes: task 0 reads A's row table[i], task 1 writes A's
// row i. The table is i for i < 7, so the template learns the read as a row moving by one, and
// i - 5 from iteration 7 on (the row iteration i - 5 wrote). Such a view is compared by image,
// and the pattern cannot prove a table entry's image (it is no step of the index): task 0 is
// never trusted (task 1 is, from iteration 4 until the miss), and iteration 7's compare misses
// as the lambda loop's does. Equal to the plain loop, with the lambda loop's books.
TEST_P(TaskPatternIndexed, IndexedViewOfAWrittenBufferKeepsTheCompare) {
  Declared d;
  d.n = static_cast<std::int64_t>(kMaxN);
  d.row = 2;
  for (std::int64_t i = 0; i < d.n; ++i)
    d.table[d.row * kMaxN + static_cast<std::size_t>(i)] =
        static_cast<std::int32_t>(i < 7 ? i : i - 5);
  const auto run = [&](Fixture& f, Buffers* buffers, int form) {  // 0 pattern, 1 lambda, 2 plain
    return f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Tensor a = Tensor::wrap(buffers->a.data(), {kRows, kCols}, DType::i32);
      const Tensor table = Tensor::wrap(buffers->table.data(), {kTableRows, kMaxN}, DType::i32);
      TaskPattern p({kNoKernel, f.kernel, kNoKernel});
      p.in_indexed(a, {1, kCols}, {0, 0}, 0, table, {d.row}, 1)
          .out(TensorSpec(Shape{2, kCols}, DType::i32));
      p.then({kNoKernel, f.kernel, kNoKernel}).in_output(0, 0).inout(a, {1, kCols}, {0, 0}, {1, 0});
      if (form == 0) {
        o.parallel_for(d.n, p);
      } else if (form == 1) {
        o.parallel_for(d.n, [&](Orchestrator& o, std::int64_t i) { p.submit_iteration(o, i); });
      } else {
        for (std::int64_t i = 0; i < d.n; ++i)
          p.submit_iteration(o, i);
      }
    });
  };
  Fixture f(loop_config(GetParam()));
  Fixture lambda(loop_config(GetParam()));
  Fixture plain(loop_config(GetParam(), false));
  Buffers got(d), by_lambda(d), want(d);
  const RunResult r = run(f, &got, 0);
  const RunResult l = run(lambda, &by_lambda, 1);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  ASSERT_TRUE(l.ok()) << l.status.to_string();
  ASSERT_TRUE(run(plain, &want, 2).ok());
  EXPECT_EQ(got, want);
  EXPECT_EQ(by_lambda, want);
  const auto books = [](const RunResult& x) {
    std::string b = "analysed " + std::to_string(x.stats.loop_tasks_analysed) + ", wide " +
                    std::to_string(x.stats.loop_tasks_replayed_wide) + ", fallbacks";
    for (const auto& [why, count] : x.stats.loop_fallback_reasons)
      b += " " + why + "=" + std::to_string(count);
    return b;
  };
  EXPECT_EQ(books(r), books(l));
  EXPECT_EQ(r.stats.pattern_tasks_trusted, 3u);  // task 1 of iterations 4, 5 and 6
  ProgramResult oracle;
  const auto box = [](int buffer, bool write, std::uint32_t r0, std::uint32_t rows) {
    Access x;
    x.buffer = buffer;
    x.write = write;
    x.r0 = r0;
    x.rows = rows;
    x.cols = kCols;
    return x;
  };
  for (std::int64_t i = 0; i < d.n; ++i) {
    const auto e = static_cast<std::uint32_t>(d.table[d.row * kMaxN + static_cast<std::size_t>(i)]);
    const int fresh = 10 + static_cast<int>(i);
    oracle.accesses.push_back({box(0, false, e, 1), box(fresh, true, 0, 2)});
    oracle.accesses.push_back(
        {box(fresh, false, 0, 2), box(0, true, static_cast<std::uint32_t>(i), 1)});
  }
  oracle.has_no_dep.assign(oracle.accesses.size(), false);
  oracle.trace = r.trace;
  ASSERT_EQ(r.trace->tasks.size(), oracle.accesses.size());
  EXPECT_EQ(check_trace_order(oracle), "");
  EXPECT_EQ(check_edges_exact(oracle), "");
}

INSTANTIATE_TEST_SUITE_P(Platforms, TaskPatternIndexed, both_platforms(), platform_name);

}  // namespace
}  // namespace tmr::testing
