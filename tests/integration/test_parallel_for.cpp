// parallel_for end to end, on the threads and sim platforms: random programs with loops
// (independent and carried iterations, partially overlapping and transposed views, fresh
// per-iteration buffers and chains, nested loops, per-iteration scopes, tiny rings, and every
// fall-back trigger) must order every conflicting pair (recorded start/end), leave the buffers a
// sequential execution leaves, and record no edge without a real conflict (so an independent
// loop has no edge between iterations); directed loops check the statistics, the switch, and
// errors in a loop body.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <list>
#include <map>
#include <string>
#include <vector>

#include "support/ended_scope_loop.hpp"
#include "support/loop_tests.hpp"
#include "support/platforms.hpp"
#include "support/random_program.hpp"
#include "support/test_scale.hpp"

namespace tmr::testing {
namespace {

ProgramShape loop_shape() {
  ProgramShape shape;
  shape.buffers = 3;
  shape.max_dim = 16;
  shape.operations = 24;
  shape.loop_chance = 0.15;
  shape.max_scope_depth = 3;
  return shape;
}

struct Totals {
  std::uint64_t loops = 0, analysed = 0, tasks_analysed = 0, fallbacks = 0;
  std::map<std::string, std::uint64_t> reasons;
};

std::string run_loop_programs(Runtime& runtime, const ProgramShape& shape, int count,
                              std::uint64_t seed0, Totals* totals) {
  for (int p = 0; p < count; ++p) {
    const std::uint64_t seed = seed0 + static_cast<std::uint64_t>(p);
    const ProgramResult result = run_random_program(runtime, seed, shape);
    const std::string where = "seed " + std::to_string(seed) + ": ";
    if (!result.status.ok()) return where + result.status.to_string();
    if (!result.mismatch.empty()) return where + result.mismatch;
    if (result.buffers != result.reference) return where + "final buffers differ from reference";
    if (std::string why = check_trace_order(result); !why.empty()) return where + why;
    if (std::string why = check_edges_exact(result); !why.empty()) return where + why;
    if (result.stats.loops != static_cast<std::uint64_t>(result.loops)) {
      return where + "stats count " + std::to_string(result.stats.loops) + " loops, program has " +
             std::to_string(result.loops);
    }
    totals->loops += result.stats.loops;
    totals->analysed += result.stats.loops_analysed;
    totals->tasks_analysed += result.stats.loop_tasks_analysed;
    totals->fallbacks += result.stats.loop_fallbacks;
    for (const auto& [reason, n] : result.stats.loop_fallback_reasons)
      totals->reasons[reason] += n;
  }
  return "";
}

class ParallelFor : public ::testing::TestWithParam<PlatformKind> {};

TEST_P(ParallelFor, RandomLoopProgramsMatchSequentialExecution) {
  Runtime runtime(loop_config(GetParam()));
  register_program_kernels(runtime.kernels());
  Totals totals;
  EXPECT_EQ(run_loop_programs(runtime, loop_shape(), scaled(400, 20), 7000, &totals), "");
  EXPECT_GT(totals.loops, 0u);
  EXPECT_GT(totals.analysed, 0u);
  EXPECT_GT(totals.tasks_analysed, 0u);
  std::cout << totals.loops << " loops, " << totals.analysed << " analysed, "
            << totals.tasks_analysed << " tasks analysed, fall-backs:";
  for (const auto& [reason, n] : totals.reasons)
    std::cout << " " << reason << " " << n << ";";
  std::cout << "\n";
  if (test_scale() >= 1) {
    // Every trigger the generator plants shows up as its reason.
    EXPECT_GT(totals.reasons["iteration differs from the template"], 0u);
    EXPECT_GT(totals.reasons["set_tensor_data in the body"], 0u);
  }
}

TEST_P(ParallelFor, SwitchedOffRunsEveryTaskThroughTheMap) {
  Runtime runtime(loop_config(GetParam(), false));
  register_program_kernels(runtime.kernels());
  Totals totals;
  EXPECT_EQ(run_loop_programs(runtime, loop_shape(), scaled(100, 5), 7000, &totals), "");
  EXPECT_GT(totals.loops, 0u);
  EXPECT_EQ(totals.analysed, 0u);
  EXPECT_EQ(totals.tasks_analysed, 0u);
}

TEST_P(ParallelFor, TinyRingsWithScopedIterations) {
  for (const std::uint32_t window : {8u, 16u}) {
    Runtime runtime(with_tiny_rings(loop_config(GetParam()), window));
    register_program_kernels(runtime.kernels());
    ProgramShape shape = tiny_ring_shape(window);
    shape.loop_chance = 0.15;
    shape.max_loop_iterations = 40;
    shape.tiny_loops = true;
    Totals totals;
    EXPECT_EQ(run_loop_programs(runtime, shape, scaled(100, 5), 9000 + window, &totals), "")
        << "window " << window;
    if (test_scale() >= 1) {
      EXPECT_GT(totals.tasks_analysed, 0u) << "window " << window;
    }
  }
}

// ---------------------------------------------------------------- directed loops

void throw_kernel(const KernelArgs&) {
  throw std::runtime_error("kernel failed on purpose");
}

// The directed loops hold a few hundred tasks at most: loop_config's 1,024-task window.
struct Directed {
  explicit Directed(PlatformKind platform, bool analysis = true)
      : runtime(loop_config(platform, analysis)) {
    add = runtime.kernels().add("add_one", CoreType::aiv, &add_one);
    acc = runtime.kernels().add("accumulate", CoreType::aiv, &accumulate);
    boom = runtime.kernels().add("boom", CoreType::aiv, &throw_kernel);
  }
  // A loop whose iteration i adds row i of `blocks` ([n, width]) into `sum` ([width]) in place:
  // the accumulator chain every iteration carries to the next.
  void accumulate_rows(Orchestrator& o, const Tensor& blocks, const Tensor& sum) const {
    const std::uint32_t width = blocks.dim(1);
    o.parallel_for(blocks.dim(0), [&](Orchestrator& o, std::int64_t i) {
      const auto row = static_cast<std::uint32_t>(i);
      o.submit_aiv(acc, Args().in(blocks.view({1, width}, {row, 0}).reshape({width})).inout(sum));
    });
  }
  Runtime runtime;
  KernelId add, acc, boom;
};

// A slice-write loop of `rows` iterations (iteration i: row i of argument 0 plus one into row i of
// argument 1, [rows, 4]) that leaves its template at iteration `departs` (-1: never) with one
// task more than the template (`extra`: the fall-back met at a submit with every template
// position passed) or none (met at the iteration's end). Checks the written rows.
RunResult run_slice_writes(Directed& d, std::uint32_t rows, std::int64_t departs, bool extra,
                           const std::string& what) {
  const std::uint32_t kRows = rows;
  constexpr std::uint32_t kCols = 4;
  std::vector<float> in(kRows * kCols), out(kRows * kCols, -1.0f);
  for (std::size_t k = 0; k < in.size(); ++k)
    in[k] = static_cast<float>(k);
  RunArgs args;
  args.input(in.data(), {kRows, kCols}, DType::f32);
  args.output(out.data(), {kRows, kCols}, DType::f32);
  const RunResult r = d.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
          const auto row = static_cast<std::uint32_t>(i);
          const auto add_row = [&] {
            o.submit_aiv(
                d.add, Args()
                           .in(a.tensor(0).view({1, kCols}, {row, 0}).reshape({kCols}))
                           .out_existing(a.tensor(1).view({1, kCols}, {row, 0}).reshape({kCols})));
          };
          if (i != departs || extra) add_row();
          if (i == departs && extra) add_row();  // the same row again: the same values
        });
      },
      args);
  EXPECT_TRUE(r.ok()) << what << ": " << r.status.to_string();
  for (std::size_t k = 0; k < in.size() && r.ok(); ++k) {
    if (!extra && static_cast<std::int64_t>(k / kCols) == departs) continue;  // not written
    EXPECT_EQ(out[k], in[k] + 1.0f) << what << ", element " << k;
  }
  EXPECT_EQ(r.stats.loop_iterations, kRows) << what;
  return r;
}

TEST_P(ParallelFor, IndependentSliceWritesHaveNoEdges) {
  Directed d(GetParam());
  constexpr std::uint32_t kRows = 256;
  const RunResult r = run_slice_writes(d, kRows, -1, false, "independent");
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.stats.loops, 1u);
  EXPECT_EQ(r.stats.loops_analysed, 1u);
  EXPECT_EQ(r.stats.loop_iterations, kRows);
  EXPECT_EQ(r.stats.loop_iterations_analysed, kRows - 2);
  EXPECT_EQ(r.stats.loop_tasks_analysed, kRows - 2);
  EXPECT_EQ(r.stats.loop_fallbacks, 0u);
  for (const TaskEvent& e : r.trace->tasks)
    EXPECT_TRUE(e.producers.empty()) << "task " << e.sequence;
}

// The replayed submit's first check compares every byte of each argument with its prediction
// (TaskPlan::exact). Views equal in every field the analysis reads but not in every byte (here
// buffer_bytes: the input is a reshaped view of a wrap twice its size from iteration 100 on, and
// every 7th iteration after) miss that check and are covered by the masked one: the loop stays
// analysed, with no fall-back and no edge, and computes what a sequential loop computes.
TEST_P(ParallelFor, ViewsEqualOnlyInTheirFieldsStayAnalysed) {
  Directed d(GetParam());
  constexpr std::uint32_t kRows = 256;
  constexpr std::uint32_t kCols = 4;
  std::vector<float> in(2 * kRows * kCols), out(kRows * kCols, -1.0f);
  for (std::size_t k = 0; k < in.size(); ++k)
    in[k] = static_cast<float>(k);
  const RunResult r = d.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor small = Tensor::wrap(in.data(), {kRows, kCols}, DType::f32);
    const Tensor large = Tensor::wrap(in.data(), {2 * kRows, kCols}, DType::f32)
                             .view({kRows, kCols}, {0, 0})
                             .reshape({kRows, kCols});
    ASSERT_NE(small.buffer_bytes(), large.buffer_bytes());
    const Tensor y = Tensor::wrap(out.data(), {kRows, kCols}, DType::f32);
    o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
      const auto row = static_cast<std::uint32_t>(i);
      const Tensor& x = i < 100 || i % 7 == 0 ? small : large;
      o.submit_aiv(d.add, Args()
                              .in(x.view({1, kCols}, {row, 0}).reshape({kCols}))
                              .out_existing(y.view({1, kCols}, {row, 0}).reshape({kCols})));
    });
  });
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  for (std::size_t k = 0; k < out.size(); ++k)
    ASSERT_EQ(out[k], in[k] + 1.0f) << "element " << k;
  EXPECT_EQ(r.stats.loops_analysed, 1u);
  EXPECT_EQ(r.stats.loop_tasks_analysed, kRows - 2);
  EXPECT_EQ(r.stats.loop_fallbacks, 0u);
  for (const TaskEvent& e : r.trace->tasks)
    EXPECT_TRUE(e.producers.empty()) << "task " << e.sequence;
}

// `sum` holds the column sums of `blocks` (`rows` rows of sum.size() columns), as the
// sequential accumulator loop leaves them.
void expect_column_sums(const std::vector<float>& blocks, const std::vector<float>& sum,
                        std::uint32_t rows, const std::string& context) {
  const std::size_t width = sum.size();
  for (std::size_t c = 0; c < width; ++c) {
    float expected = 0;
    for (std::uint32_t b = 0; b < rows; ++b)
      expected += blocks[b * width + c];
    EXPECT_EQ(sum[c], expected) << context << ", column " << c;
  }
}

TEST_P(ParallelFor, AccumulatorChainKeepsExactlyTheCarriedEdges) {
  Directed d(GetParam());
  constexpr std::uint32_t kBlocks = 64;
  constexpr std::uint32_t kWidth = 8;
  std::vector<float> blocks(kBlocks * kWidth), sum(kWidth, 0.0f);
  for (std::size_t k = 0; k < blocks.size(); ++k)
    blocks[k] = static_cast<float>(k % 7);
  RunArgs args;
  args.input(blocks.data(), {kBlocks, kWidth}, DType::f32);
  args.inout(sum.data(), {kWidth}, DType::f32);
  const RunResult r = d.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        d.accumulate_rows(o, a.tensor(0), a.tensor(1));
      },
      args);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  expect_column_sums(blocks, sum, kBlocks, "one run");
  EXPECT_EQ(r.stats.loop_tasks_analysed, kBlocks - 2);
  // Iteration i waits for iteration i - 1 only (or for nothing, when i - 1 already retired).
  for (const TaskEvent& e : r.trace->tasks) {
    ASSERT_LE(e.producers.size(), 1u) << "task " << e.sequence;
    if (!e.producers.empty()) {
      EXPECT_EQ(e.producers[0], e.sequence - 1);
    }
  }
}

// The same accumulator on a kept template (the run after the first), where every iteration is
// replayed: its one carried edge (distance 1, no other producer) is listed inline
// (LoopDriver::one_edge_producer). Each task waits for the one before while that one lives, and
// starts only after it ended.
TEST_P(ParallelFor, ReplayedAccumulatorChainWaitsForItsPredecessor) {
  Directed d(GetParam());
  constexpr std::uint32_t kBlocks = 64;
  constexpr std::uint32_t kWidth = 8;
  std::vector<float> blocks(kBlocks * kWidth);
  for (std::size_t k = 0; k < blocks.size(); ++k)
    blocks[k] = static_cast<float>(k % 5);
  for (int run = 0; run < 2; ++run) {
    std::vector<float> sum(kWidth, 0.0f);
    RunArgs args;
    args.input(blocks.data(), {kBlocks * kWidth}, DType::f32);
    args.inout(sum.data(), {kWidth}, DType::f32);
    // Flat rows (no reshape), so every submit is replayed (a reshaped row is another spelling of
    // the template's view, left to the prediction check).
    const RunResult r = d.runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          o.parallel_for(kBlocks, [&](Orchestrator& o, std::int64_t i) {
            const auto first = static_cast<std::uint32_t>(i) * kWidth;
            o.submit_aiv(d.acc, Args().in(a.tensor(0).view({kWidth}, {first})).inout(a.tensor(1)));
          });
        },
        args);
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    expect_column_sums(blocks, sum, kBlocks, "run " + std::to_string(run));
    if (run == 0) continue;
    EXPECT_EQ(r.stats.loop_templates_reused, 1u);
    EXPECT_EQ(r.stats.loop_tasks_analysed, kBlocks);
    std::map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> span;  // start, end
    for (const SubtaskEvent& s : r.trace->subtasks)
      span[s.task_sequence] = {s.start_ns, s.end_ns};
    std::uint32_t waited = 0;
    for (const TaskEvent& e : r.trace->tasks) {
      ASSERT_LE(e.producers.size(), 1u) << "task " << e.sequence;
      if (!e.producers.empty()) {
        EXPECT_EQ(e.producers[0], e.sequence - 1);
        ++waited;
      }
      if (e.sequence > 0) {
        EXPECT_GE(span[e.sequence].first, span[e.sequence - 1].second) << "task " << e.sequence;
      }
    }
    // The sim's orchestrator submits faster than the chain runs: every predecessor still lives.
    if (GetParam() == PlatformKind::sim) {
      EXPECT_EQ(waited, kBlocks - 1);
    }
  }
}

// A lookup after the loop of an accumulator that every analysed iteration wrote in place: each
// iteration's write covers the one before (the map would keep only the last writer), so of the
// analysed iterations only the last is its producer. (The learning iterations' map entries are
// not dropped by the analysed writes that cover them: one of them may still be reported.)
TEST_P(ParallelFor, AccumulatorFamilyReportsOnlyItsLastWriter) {
  Directed d(GetParam());
  constexpr std::uint32_t kBlocks = 16;
  constexpr std::uint32_t kWidth = 8;
  std::vector<float> blocks(kBlocks * kWidth, 1.0f), sum(kWidth, 0.0f), copy(kWidth, 0.0f);
  RunArgs args;
  args.input(blocks.data(), {kBlocks, kWidth}, DType::f32);
  args.inout(sum.data(), {kWidth}, DType::f32);
  args.output(copy.data(), {kWidth}, DType::f32);
  const RunResult r = d.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        d.accumulate_rows(o, a.tensor(0), a.tensor(1));
        o.submit_aiv(d.add, Args().in(a.tensor(1)).out_existing(a.tensor(2)));
      },
      args);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(copy[0], static_cast<float>(kBlocks) + 1.0f);
  EXPECT_EQ(r.stats.loop_tasks_analysed, kBlocks - 2);
  const TaskEvent& last = r.trace->tasks.back();
  ASSERT_EQ(last.sequence, kBlocks);
  std::vector<std::uint64_t> analysed;  // producers among iterations 2 .. kBlocks - 1
  for (const std::uint64_t p : last.producers) {
    if (p >= 2) analysed.push_back(p);
  }
  ASSERT_LE(analysed.size(), 1u);
  if (!analysed.empty()) {
    EXPECT_EQ(analysed[0], kBlocks - 1);
  }
}

TEST_P(ParallelFor, FallbackReasonsAreReported) {
  Directed d(GetParam());
  constexpr std::uint32_t kRows = 32;
  std::vector<float> in(kRows * 2, 1.0f), out(kRows * 2, 0.0f);
  RunArgs args;
  args.input(in.data(), {kRows, 2}, DType::f32);
  args.output(out.data(), {kRows, 2}, DType::f32);
  const RunResult r = d.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        auto row = [&](int t, std::uint32_t i) {
          return a.tensor(t).view({1, 2}, {i, 0}).reshape({2});
        };
        // Offsets that break the learned stride at iteration 10.
        o.parallel_for(16, [&](Orchestrator& o, std::int64_t i) {
          const auto r0 = static_cast<std::uint32_t>(i < 10 ? i : 2 * i - 10);
          o.submit_aiv(d.add, Args().in(row(0, r0)).out_existing(row(1, r0)));
        });
        // An element written in the body (reading one the loop never writes is fine: the
        // template does not depend on it, and the lookup sees the loop's families).
        o.parallel_for(8, [&](Orchestrator& o, std::int64_t i) {
          o.submit_aiv(d.add, Args().in(row(0, 24)).out_existing(row(1, 24)));
          if (i == 3) (void)o.get_tensor_data<float>(a.tensor(0), {24, 0});
          if (i == 4) o.set_tensor_data<float>(a.tensor(1), {25, 1}, 5.0f);
        });
        // An element read in the body of a buffer the loop writes: data-dependent iterations.
        o.parallel_for(8, [&](Orchestrator& o, std::int64_t i) {
          const auto r1 = static_cast<std::uint32_t>(i);
          o.submit_aiv(d.add, Args().in(row(0, r1)).out_existing(row(1, r1)));
          if (i == 4) (void)o.get_tensor_data<float>(a.tensor(1), {2, 0});
        });
        // Two iterations never repeat: no template.
        o.parallel_for(6, [&](Orchestrator& o, std::int64_t i) {
          for (std::int64_t k = 0; k <= i; ++k)
            o.submit_aiv(d.add, Args().in(row(0, 30)).out_existing(row(1, 31)));
        });
        // Plain 2-D row views (no reshape: the replayed record's field test decides) whose
        // offset leaves the stride at iteration 5: only the box offset differs.
        o.parallel_for(8, [&](Orchestrator& o, std::int64_t i) {
          const auto r2 = static_cast<std::uint32_t>(i < 5 ? 16 + i : 20 + i);
          o.submit_aiv(d.add, Args()
                                  .in(a.tensor(0).view({1, 2}, {r2, 0}))
                                  .out_existing(a.tensor(1).view({1, 2}, {r2, 0})));
        });
      },
      args);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.stats.loops, 5u);
  EXPECT_EQ(r.stats.loop_fallbacks, 5u);
  std::map<std::string, std::uint64_t> reasons(r.stats.loop_fallback_reasons.begin(),
                                               r.stats.loop_fallback_reasons.end());
  EXPECT_EQ(reasons["iteration differs from the template"], 2u);
  EXPECT_EQ(reasons["set_tensor_data in the body"], 1u);
  EXPECT_EQ(reasons["get_tensor_data in the body of a buffer the loop writes"], 1u);
  EXPECT_EQ(reasons["no repeating iteration template"], 1u);
  for (std::uint32_t i = 0; i < 16; ++i) {
    const std::uint32_t r0 = i < 10 ? i : 2 * i - 10;
    EXPECT_EQ(out[r0 * 2], 2.0f) << "row " << r0;
  }
}

// When task `consumer` started and task `producer` ended (from the recorded subtasks).
struct Span {
  std::uint64_t start = ~std::uint64_t{0};
  std::uint64_t end = 0;
};
std::map<std::uint64_t, Span> spans(const Trace& trace) {
  std::map<std::uint64_t, Span> out;
  for (const SubtaskEvent& s : trace.subtasks) {
    Span& span = out[s.task_sequence];
    span.start = std::min(span.start, s.start_ns);
    span.end = std::max(span.end, s.end_ns);
  }
  return out;
}

// Analysed iterations leave one affine-family entry per access instead of a TensorMap entry per
// task: tasks after the loop (RAW, WAR, WAW, a covering write), a fallen-back rest of the loop,
// get_tensor_data and wait_for must still find exactly the iterations they conflict with.
TEST_P(ParallelFor, AffineFamiliesAreFoundByLookupsOutsideTheLoop) {
  Directed d(GetParam());
  constexpr std::uint32_t kRows = 300;
  constexpr std::uint32_t kCols = 4;
  std::vector<float> in(kRows * kCols), out(kRows * kCols, -1.0f);
  for (std::size_t k = 0; k < in.size(); ++k)
    in[k] = static_cast<float>(k % 11);
  const std::vector<float> in0 = in;
  RunArgs args;
  args.inout(in.data(), {kRows, kCols}, DType::f32);
  args.output(out.data(), {kRows, kCols}, DType::f32);
  float element = 0;
  // One task per iteration: iteration i is sequence i; the two later tasks follow.
  constexpr std::uint64_t kFallen = 250, kLaterRead = kRows, kLaterWrite = kRows + 1;
  const RunResult r = d.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        auto row = [&](int t, std::uint32_t i) {
          return a.tensor(t).view({1, kCols}, {i, 0}).reshape({kCols});
        };
        // Iterations 0..249 write row i of out from row i of in; from 250 on, the offsets break
        // the stride (rows 10, 12, ...: RAW on rows analysed iterations wrote) and the rest of
        // the loop falls back to per-task lookups, which must find the families.
        o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
          if (i < 250) {
            const auto k = static_cast<std::uint32_t>(i);
            o.submit_aiv(d.add, Args().in(row(0, k)).out_existing(row(1, k)));
          } else {
            const auto k = static_cast<std::uint32_t>(2 * (i - 250) + 10);
            o.submit_aiv(d.acc, Args().in(row(0, k)).inout(row(1, k)));
          }
        });
        // RAW after the loop: row 100 of out (written by iteration 100).
        o.submit_aiv(d.add, Args().in(row(1, 100)).out_existing(row(1, 299)));
        // WAR after the loop: overwrite row 120 of in (read by iteration 120).
        o.submit_aiv(d.add, Args().in(row(1, 200)).out_existing(row(0, 120)));
        // get_tensor_data of a row an analysed iteration wrote.
        element = o.get_tensor_data<float>(a.tensor(1), {150, 2});
      },
      args);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_GT(r.stats.loop_tasks_analysed, 200u);
  EXPECT_EQ(r.stats.loop_fallbacks, 1u);
  // Final contents equal a sequential execution.
  std::vector<float> want_out(kRows * kCols, 0.0f), want_in = in0;  // outputs start zeroed
  for (std::uint32_t i = 0; i < 250; ++i)
    for (std::uint32_t c = 0; c < kCols; ++c)
      want_out[i * kCols + c] = in0[i * kCols + c] + 1.0f;
  for (std::uint32_t i = 250; i < kRows; ++i) {
    const std::uint32_t k = 2 * (i - 250) + 10;
    for (std::uint32_t c = 0; c < kCols; ++c)
      want_out[k * kCols + c] += in0[k * kCols + c];
  }
  for (std::uint32_t c = 0; c < kCols; ++c) {
    want_out[299 * kCols + c] = want_out[100 * kCols + c] + 1.0f;
    want_in[120 * kCols + c] = want_out[200 * kCols + c] + 1.0f;
  }
  for (std::size_t k = 0; k < out.size(); ++k)
    ASSERT_EQ(out[k], want_out[k]) << "out element " << k;
  for (std::size_t k = 0; k < in.size(); ++k)
    ASSERT_EQ(in[k], want_in[k]) << "in element " << k;
  EXPECT_EQ(element, want_out[150 * kCols + 2]);
  // Every conflicting pair ordered: producer ended before the consumer started.
  const std::map<std::uint64_t, Span> when = spans(*r.trace);
  auto ordered = [&](std::uint64_t producer, std::uint64_t consumer) {
    return when.at(producer).end <= when.at(consumer).start;
  };
  for (std::uint64_t i = 250; i < kRows; ++i) {
    const std::uint64_t k = 2 * (i - 250) + 10;  // iteration k wrote row k (sequence k)
    EXPECT_TRUE(ordered(k, i)) << "fallen-back iteration " << i;
  }
  EXPECT_TRUE(ordered(100, kLaterRead));
  EXPECT_TRUE(ordered(295, kLaterRead));  // the fallen-back iteration that updated row 100
  EXPECT_TRUE(ordered(120, kLaterWrite));
  EXPECT_TRUE(ordered(200, kLaterWrite));
  // And no edge without a conflict: the later tasks wait only for what they touch.
  for (const TaskEvent& e : r.trace->tasks) {
    if (e.sequence == kLaterRead) {
      for (const std::uint64_t p : e.producers)
        EXPECT_TRUE(p == 100 || p == 295) << "producer " << p;
    }
    if (e.sequence == kLaterWrite) {
      for (const std::uint64_t p : e.producers)
        EXPECT_TRUE(p == 120 || p == 200) << "producer " << p;
    }
    if (e.sequence < kFallen) {
      EXPECT_TRUE(e.producers.empty()) << "task " << e.sequence;
    }
  }
}

// A write after the loop that covers every row the loop wrote supersedes the whole family: a
// later reader waits for that write only.
TEST_P(ParallelFor, ACoveringWriteSupersedesAFamily) {
  Directed d(GetParam());
  constexpr std::uint32_t kRows = 64;
  std::vector<float> in(kRows, 1.0f), out(kRows, 0.0f), sink(kRows, 0.0f);
  RunArgs args;
  args.input(in.data(), {kRows}, DType::f32);
  args.output(out.data(), {kRows}, DType::f32);
  args.output(sink.data(), {kRows}, DType::f32);
  constexpr std::uint64_t cover = kRows, reader = kRows + 1;  // after one task per iteration
  const RunResult r = d.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
          const auto k = static_cast<std::uint32_t>(i);
          o.submit_aiv(
              d.add,
              Args().in(a.tensor(0).view({1}, {k})).out_existing(a.tensor(1).view({1}, {k})));
        });
        o.submit_aiv(d.add, Args().in(a.tensor(0)).out_existing(a.tensor(1)));
        o.submit_aiv(
            d.add, Args().in(a.tensor(1).view({8}, {16})).out_existing(a.tensor(2).view({8}, {0})));
      },
      args);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(out, std::vector<float>(kRows, 2.0f));
  for (std::uint32_t k = 0; k < 8; ++k)
    EXPECT_EQ(sink[k], 3.0f);
  const std::map<std::uint64_t, Span> when = spans(*r.trace);
  for (std::uint64_t k = 0; k < kRows; ++k)
    EXPECT_LE(when.at(k).end, when.at(cover).start) << "iteration " << k;
  EXPECT_LE(when.at(cover).end, when.at(reader).start);
  for (const TaskEvent& e : r.trace->tasks) {
    if (e.sequence != reader) continue;
    for (const std::uint64_t p : e.producers)
      EXPECT_EQ(p, cover);
  }
}

// A read of a buffer the loop never writes may move freely (a KV block through a block table):
// its family holds while the view keeps its stride, then the access goes into the map. A later
// write of the whole buffer must wait for every reader, from the family and from the map.
TEST_P(ParallelFor, AFreeReadThatLeavesItsStrideEndsItsFamily) {
  Directed d(GetParam());
  constexpr std::uint32_t kRows = 64;
  std::vector<float> in(kRows), out(kRows, 0.0f), sink(kRows, 0.0f);
  for (std::uint32_t k = 0; k < kRows; ++k)
    in[k] = static_cast<float>(k);
  RunArgs args;
  args.inout(in.data(), {kRows}, DType::f32);
  args.output(out.data(), {kRows}, DType::f32);
  args.input(sink.data(), {kRows}, DType::f32);
  auto source = [](std::uint32_t i) { return i < 40 ? i : (i * 7) % kRows; };
  const RunResult r = d.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
          const auto k = static_cast<std::uint32_t>(i);
          o.submit_aiv(d.add, Args()
                                  .in(a.tensor(0).view({1}, {source(k)}))
                                  .out_existing(a.tensor(1).view({1}, {k})));
        });
        o.submit_aiv(d.add, Args().in(a.tensor(2)).out_existing(a.tensor(0)));  // sequence kRows
      },
      args);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.stats.loop_tasks_analysed, kRows - 2);
  EXPECT_EQ(r.stats.loop_fallbacks, 0u);
  for (std::uint32_t k = 0; k < kRows; ++k) {
    EXPECT_EQ(out[k], static_cast<float>(source(k)) + 1.0f) << "row " << k;
    EXPECT_EQ(in[k], 1.0f) << "row " << k;
  }
  const std::map<std::uint64_t, Span> when = spans(*r.trace);
  for (std::uint64_t k = 0; k < kRows; ++k)
    EXPECT_LE(when.at(k).end, when.at(kRows).start) << "reader " << k;
}

// Replayed records of analysed submits: accesses to buffers the loop makes are not put into the
// TensorMap per task but once the analysis ends (loop end, fall-back, wait_for). Tasks after the
// loop, a fallen-back iteration and wait_for must find them; the replayed tasks must see exactly
// the boxes and buffers the body gave them.
TEST_P(ParallelFor, ReplayedRecordsAndDeferredEntriesOfLoopMadeBuffers) {
  Directed d(GetParam());
  constexpr std::uint32_t kRows = 64;
  constexpr std::uint32_t kCols = 4;
  constexpr std::uint32_t kBreak = 40;  // this iteration submits an extra task: fall-back
  std::vector<float> in(kRows * kCols), out(kRows * kCols, -1.0f), sink(2 * kCols, 0.0f);
  for (std::size_t k = 0; k < in.size(); ++k)
    in[k] = static_cast<float>(k % 13);
  RunArgs args;
  args.input(in.data(), {kRows, kCols}, DType::f32);
  args.output(out.data(), {kRows, kCols}, DType::f32);
  args.output(sink.data(), {2, kCols}, DType::f32);
  float waited = 0, waited_in_body = 0;
  constexpr std::uint32_t kWaitIn = 20;
  // Iteration i < kBreak is tasks 3i .. 3i+2; iteration kBreak has a fourth; then 3 again.
  auto seq = [](std::uint64_t i, std::uint64_t p) { return 3 * i + p + (i > kBreak ? 1 : 0); };
  constexpr std::uint64_t kReader = 3 * kRows + 1, kWriter = kReader + 1;
  const RunResult r = d.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        auto row = [&](int t, std::uint32_t i) {
          return a.tensor(t).view({1, kCols}, {i, 0}).reshape({kCols});
        };
        std::vector<Tensor> made;  // the loop's fresh buffers, alive in the outer scope
        o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
          const auto k = static_cast<std::uint32_t>(i);
          const TaskOutputs f = o.submit_aiv(
              d.add, Args().in(row(0, k)).out(TensorSpec({kCols}, DType::f32)));  // F = in + 1
          if (!f.valid()) return;
          made.push_back(f[0]);
          o.submit_aiv(d.acc, Args().in(row(0, k)).inout(f[0]));  // F = 2 in + 1
          if (k == kWaitIn) {  // inside an analysed iteration: the deferred write must be found
            o.wait_for(f[0]);
            waited_in_body = static_cast<const float*>(f[0].data())[2];
          }
          o.submit_aiv(d.add, Args().in(f[0]).out_existing(row(1, k)));  // out = 2 in + 2
          // Breaks the template: WAW/WAR on the previous iteration's buffer, whose accesses
          // were deferred and must be in the map by now.
          if (k == kBreak) o.submit_aiv(d.acc, Args().in(row(0, k)).inout(made[k - 1]));
        });
        if (made.size() != kRows) return;
        o.submit_aiv(d.add, Args().in(made[50]).out_existing(
                                a.tensor(2).view({1, kCols}, {0, 0}).reshape({kCols})));
        o.submit_aiv(d.acc, Args().in(row(0, 0)).inout(made[60]));
        o.wait_for(made[55]);
        waited = static_cast<const float*>(made[55].data())[1];
      },
      args);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.stats.loop_fallbacks, 1u);
  EXPECT_EQ(r.stats.loop_tasks_analysed, 3u * (kBreak - 2) + 3u);  // iterations 2 .. kBreak
  for (std::uint32_t i = 0; i < kRows; ++i)
    for (std::uint32_t c = 0; c < kCols; ++c)
      ASSERT_EQ(out[i * kCols + c], 2 * in[i * kCols + c] + 2) << "row " << i << " col " << c;
  for (std::uint32_t c = 0; c < kCols; ++c)
    EXPECT_EQ(sink[c], 2 * in[50 * kCols + c] + 2) << "col " << c;
  EXPECT_EQ(waited, 2 * in[55 * kCols + 1] + 1);
  EXPECT_EQ(waited_in_body, 2 * in[kWaitIn * kCols + 2] + 1);
  const std::map<std::uint64_t, Span> when = spans(*r.trace);
  auto ordered = [&](std::uint64_t producer, std::uint64_t consumer) {
    return when.at(producer).end <= when.at(consumer).start;
  };
  EXPECT_TRUE(ordered(seq(kBreak - 1, 2), seq(kBreak, 3)));  // WAR on F of iteration kBreak - 1
  EXPECT_TRUE(ordered(seq(kBreak - 1, 1), seq(kBreak, 3)));  // WAW
  EXPECT_TRUE(ordered(seq(50, 1), kReader));                 // RAW after the loop
  EXPECT_TRUE(ordered(seq(60, 2), kWriter));                 // WAR after the loop
  for (const TaskEvent& e : r.trace->tasks) {
    std::vector<std::uint64_t> want;
    if (e.sequence == kReader) want = {seq(50, 0), seq(50, 1)};
    if (e.sequence == kWriter) want = {seq(60, 0), seq(60, 1), seq(60, 2)};
    if (e.sequence == kReader || e.sequence == kWriter) {
      std::vector<std::uint64_t> got = e.producers;
      std::sort(got.begin(), got.end());
      // Producers that already retired are skipped; none other than these may appear.
      for (const std::uint64_t p : got)
        EXPECT_NE(std::find(want.begin(), want.end(), p), want.end())
            << "task " << e.sequence << " producer " << p;
    }
  }
}

// Held closed while the orchestrator submits, so the tasks it holds cannot retire (and drop
// their edges) before their consumers are wired; opens by itself after 5 s (a test never hangs).
std::atomic<bool> gate_open{false};
void held_accumulate(const KernelArgs& a) {
  wait_until_open(gate_open);
  accumulate(a);
}

// The accumulate a test holds back until gate_open, on threads only: there its task is still live
// when later submits look it up. On the sim a started kernel runs to its end (holding it would
// only stall the run), so there it is the plain accumulate and the recorded spans show the order.
KernelId held_accumulate_on_threads(Directed& d, PlatformKind platform) {
  return platform == PlatformKind::threads
             ? d.runtime.kernels().add("held_accumulate", CoreType::aiv, &held_accumulate)
             : d.acc;
}

// A finished loop's deferred entries (accesses to the buffers it made) wait until something may
// look them up: a scope that ends first drops those nobody can name; an inner scope's end keeps
// those still nameable; plain submits and an element read after the loop find them.
TEST_P(ParallelFor, DeferredEntriesWaitForTheirFirstLookupOrTheirScopeEnd) {
  Directed d(GetParam());
  const KernelId held = d.runtime.kernels().add("held_accumulate", CoreType::aiv, &held_accumulate);
  constexpr std::uint32_t kRows = 24;
  constexpr std::uint32_t kCols = 4;
  constexpr std::uint32_t kRead = 7;
  std::vector<float> in(kRows * kCols), out(kRows * kCols, -1.0f);
  for (std::size_t k = 0; k < in.size(); ++k)
    in[k] = static_cast<float>(k % 11);
  RunArgs args;
  args.input(in.data(), {kRows, kCols}, DType::f32);
  args.output(out.data(), {kRows, kCols}, DType::f32);
  std::vector<float> final_values(kRows * kCols, 0.0f);
  float read_after_loop = 0;
  // Tasks in submit order: loop 1 (2 per row), loop 2 (2 per row), the inner scope's task, then
  // one plain accumulate per row but kRead.
  constexpr std::uint64_t kLoop2 = 2 * kRows, kInner = 4 * kRows, kPlain = kInner + 1;
  // Held only on threads: the sim's event loop waits for each kernel it starts (its timeline never
  // depends on a kernel's wall time), so a held kernel there would only stall the run 5 s a task.
  gate_open = GetParam() == PlatformKind::sim;
  const RunResult r = d.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        auto row = [&](int t, std::uint32_t i) {
          return a.tensor(t).view({1, kCols}, {i, 0}).reshape({kCols});
        };
        o.scope_begin();  // loop 1: its fresh buffers die with this scope
        o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
          const auto k = static_cast<std::uint32_t>(i);
          const TaskOutputs f =
              o.submit_aiv(d.add, Args().in(row(0, k)).out(TensorSpec({kCols}, DType::f32)));
          if (f.valid()) o.submit_aiv(d.add, Args().in(f[0]).out_existing(row(1, k)));
        });
        o.scope_end();
        std::vector<Tensor> made;  // loop 2's fresh buffers, alive in the outer scope
        o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
          const auto k = static_cast<std::uint32_t>(i);
          const TaskOutputs f =
              o.submit_aiv(d.add, Args().in(row(0, k)).out(TensorSpec({kCols}, DType::f32)));
          if (!f.valid()) return;
          made.push_back(f[0]);
          o.submit_aiv(held, Args().in(row(0, k)).inout(f[0]));  // F = 2 in + 1
        });
        if (made.size() != kRows) return;
        o.scope_begin();  // ends while loop 2's buffers can still be named: nothing dropped
        o.submit_aiv(d.add, Args().in(row(0, 0)).out(TensorSpec({kCols}, DType::f32)));
        o.scope_end();
        for (std::uint32_t k = 0; k < kRows; ++k) {  // WAW on loop 2's held accumulates
          if (k != kRead) o.submit_aiv(d.acc, Args().in(row(0, k)).inout(made[k]));
        }
        gate_open = true;
        read_after_loop = o.get_tensor_data<float>(made[kRead], {1});  // RAW
        for (std::uint32_t k = 0; k < kRows; ++k) {
          o.wait_for(made[k]);
          for (std::uint32_t c = 0; c < kCols; ++c)
            final_values[k * kCols + c] = static_cast<const float*>(made[k].data())[c];
        }
      },
      args);
  gate_open = true;
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.stats.loops_analysed, 2u);
  EXPECT_EQ(r.stats.loop_fallbacks, 0u);
  EXPECT_EQ(read_after_loop, 2 * in[kRead * kCols + 1] + 1);
  for (std::uint32_t k = 0; k < kRows; ++k) {
    for (std::uint32_t c = 0; c < kCols; ++c) {
      const float x = in[k * kCols + c];
      ASSERT_EQ(out[k * kCols + c], x + 2) << "row " << k << " col " << c;
      ASSERT_EQ(final_values[k * kCols + c], (k == kRead ? 2 : 3) * x + 1)
          << "row " << k << " col " << c;
    }
  }
  // Each plain accumulate names its held producer (held: it cannot have retired unseen).
  std::map<std::uint64_t, std::vector<std::uint64_t>> producers;
  for (const TaskEvent& e : r.trace->tasks)
    producers[e.sequence] = e.producers;
  for (std::uint64_t k = 0, plain = kPlain; k < kRows; ++k) {
    if (k == kRead) continue;
    const std::vector<std::uint64_t>& got = producers[plain++];
    EXPECT_NE(std::find(got.begin(), got.end(), kLoop2 + 2 * k + 1), got.end()) << "row " << k;
  }
}

// A free read whose family closed (it left its stride: a KV block picked through a block table)
// defers its map entries like a fresh buffer's: the template never writes its buffer, so only a
// lookup from outside the analysis can want them. Held readers (threads) must be found by a write
// in the body that ends the analysis (mismatch: an extra task) and by a write after the loop.
// With `backwards`, the read's learned stride goes backwards out of the buffer (rows 10, then 3:
// the wide compare cannot hold it), so its family is closed from the first analysed iteration and
// its position replays with the read checked by buffer (LoopDriver::build_plans).
TEST_P(ParallelFor, ClosedFreeReadsDeferTheirEntriesUntilALookup) {
  for (const bool backwards : {false, true}) {
    SCOPED_TRACE(backwards ? "backwards" : "forwards");
    Directed d(GetParam());
    const KernelId held = held_accumulate_on_threads(d, GetParam());
    constexpr std::uint32_t kRows = 64;
    constexpr std::uint32_t kClose = 40;  // from here the read leaves its stride
    constexpr std::uint32_t kBreak = 50;  // this iteration writes `in` row source(45): fall-back
    auto source = [&](std::uint32_t i) -> std::uint32_t {
      if (backwards) return i == 0 ? 10 : i == 1 ? 3 : (i * 7) % kRows;
      return i < kClose ? i : (i * 7) % kRows;
    };
    constexpr std::uint32_t kRow = (45 * 7) % kRows;  // 59: no other iteration reads it
    std::vector<float> in(kRows), out(kRows, 0.0f), sink(kRows, 0.0f);
    for (std::uint32_t k = 0; k < kRows; ++k)
      in[k] = static_cast<float>(k % 5 + 1);
    const std::vector<float> in0 = in;
    RunArgs args;
    args.inout(in.data(), {kRows}, DType::f32);
    args.output(out.data(), {kRows}, DType::f32);
    args.input(sink.data(), {kRows}, DType::f32);
    // Tasks: iteration k < kBreak is task k; iteration kBreak its reader (kBreak) and the extra
    // writer (kBreak + 1); iteration k > kBreak is task k + 1; the writer after the loop is last.
    auto reader = [](std::uint32_t k) -> std::uint64_t { return k + (k > kBreak ? 1 : 0); };
    constexpr std::uint64_t kInBody = kBreak + 1, kAfter = kRows + 1;
    gate_open = GetParam() == PlatformKind::sim;
    const RunResult r = d.runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
            const auto k = static_cast<std::uint32_t>(i);
            o.submit_aiv(
                held,
                Args().in(a.tensor(0).view({1}, {source(k)})).inout(a.tensor(1).view({1}, {k})));
            if (k == kBreak) {  // WAR on a row a closed free read read in iteration 45
              o.submit_aiv(d.add, Args()
                                      .in(a.tensor(2).view({1}, {0}))
                                      .out_existing(a.tensor(0).view({1}, {kRow})));
            }
          });
          o.submit_aiv(d.add, Args().in(a.tensor(2)).out_existing(a.tensor(0)));  // WAR on them all
          gate_open = true;
        },
        args);
    gate_open = true;
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(r.stats.loop_fallbacks, 1u);
    EXPECT_EQ(r.stats.loop_tasks_analysed, kBreak - 2 + 1);  // iterations 2 .. kBreak's reader
    for (std::uint32_t k = 0; k < kRows; ++k) {
      EXPECT_EQ(out[k], in0[source(k)]) << "row " << k;
      EXPECT_EQ(in[k], 1.0f) << "row " << k;
    }
    const std::map<std::uint64_t, Span> when = spans(*r.trace);
    std::map<std::uint64_t, std::vector<std::uint64_t>> producers;
    for (const TaskEvent& e : r.trace->tasks)
      producers[e.sequence] = e.producers;
    auto names = [&](std::uint64_t consumer, std::uint64_t producer) {
      const std::vector<std::uint64_t>& got = producers[consumer];
      return std::find(got.begin(), got.end(), producer) != got.end();
    };
    const bool threads = GetParam() == PlatformKind::threads;  // held there: every reader is live
    EXPECT_LE(when.at(reader(45)).end, when.at(kInBody).start);
    if (threads) {
      EXPECT_TRUE(names(kInBody, reader(45)));
    }
    for (std::uint32_t k = 0; k < kRows; ++k) {
      EXPECT_LE(when.at(reader(k)).end, when.at(kAfter).start) << "reader " << k;
      // Readers 2 .. kClose - 1 are the family's; kClose .. kBreak deferred; the rest the map's.
      // (Reader 45 is covered by the in-body write, which the writer after the loop names.)
      if (threads) {
        EXPECT_TRUE(names(kAfter, k == 45 ? kInBody : reader(k))) << "reader " << k;
      }
    }
  }
}

// Positions whose free read closed its family replay (replays checks the read by buffer, version
// and dtype only): a read of another buffer at that position (written before the loop by a held
// task) must still fall back and wait for its writer, and a write of the read buffer in the body
// must still wait for the closed reads of that row (WAR), on both loops' tasks.
// With `backwards`, the reads' learned stride leaves the buffer (rows 10, then 3): closed from the
// first analysed iteration (LoopDriver::build_plans), checked the same way.
TEST_P(ParallelFor, ReplayedClosedFreeReadsStillMeetOtherBuffersAndWrites) {
  for (const bool backwards : {false, true}) {
    SCOPED_TRACE(backwards ? "backwards" : "forwards");
    Directed d(GetParam());
    const KernelId held = held_accumulate_on_threads(d, GetParam());
    constexpr std::uint32_t kRows = 64;
    constexpr std::uint32_t kClose = 20;  // from here the reads leave their stride
    constexpr std::uint32_t kOther = 44;  // loop 1 reads `other` here instead of `kv`
    constexpr std::uint32_t kRead = 30;   // loop 2's reader of the row its iteration kWrite writes
    constexpr std::uint32_t kWrite = 50;
    auto source = [&](std::uint32_t i) -> std::uint32_t {
      if (backwards) return i == 0 ? 10 : i == 1 ? 3 : (i * 7) % kRows;
      return i < kClose ? i : (i * 7) % kRows;
    };
    constexpr std::uint32_t kRow =
        (kRead * 7) % kRows;  // 18: no later iteration of loop 2 reads it
    std::vector<float> kv(kRows), other(kRows, 10.0f), out1(kRows, 0.0f), out2(kRows, 0.0f),
        ones(kRows, 1.0f);
    for (std::uint32_t k = 0; k < kRows; ++k)
      kv[k] = static_cast<float>(k % 5 + 1);
    const std::vector<float> kv0 = kv;
    RunArgs args;
    args.inout(kv.data(), {kRows}, DType::f32);
    args.inout(other.data(), {kRows}, DType::f32);
    args.output(out1.data(), {kRows}, DType::f32);
    args.output(out2.data(), {kRows}, DType::f32);
    args.input(ones.data(), {kRows}, DType::f32);
    // Tasks: the writer of `other` (0), loop 1 (1 .. kRows), loop 2 (kRows + 1 ..; its iteration
    // kWrite adds the writer of `kv` after its reader).
    constexpr std::uint64_t kWriterOfOther = 0, kLoop2 = kRows + 1;
    constexpr std::uint64_t kWriterOfKv = kLoop2 + kWrite + 1;
    gate_open = GetParam() == PlatformKind::sim;
    const RunResult r = d.runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          o.submit_aiv(held, Args().in(a.tensor(4)).inout(a.tensor(1)));  // other += 1, held
          o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
            const auto k = static_cast<std::uint32_t>(i);
            const Tensor read = k == kOther ? a.tensor(1).view({1}, {5})  // another buffer
                                            : a.tensor(0).view({1}, {source(k)});
            o.submit_aiv(d.acc, Args().in(read).inout(a.tensor(2).view({1}, {k})));  // not held
          });
          o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
            const auto k = static_cast<std::uint32_t>(i);
            o.submit_aiv(
                held,
                Args().in(a.tensor(0).view({1}, {source(k)})).inout(a.tensor(3).view({1}, {k})));
            if (k == kWrite) {  // WAR on the row loop 2's iteration kRead read (closed, replayed)
              o.submit_aiv(
                  d.acc,
                  Args().in(a.tensor(4).view({1}, {0})).inout(a.tensor(0).view({1}, {kRow})));
            }
          });
          gate_open = true;
        },
        args);
    gate_open = true;
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(r.stats.loop_fallbacks, 2u);
    for (std::uint32_t k = 0; k < kRows; ++k) {
      EXPECT_EQ(out1[k], k == kOther ? 11.0f : kv0[source(k)]) << "loop 1 row " << k;
      const bool late = k > kWrite && source(k) == kRow;
      EXPECT_EQ(out2[k], kv0[source(k)] + (late ? 1.0f : 0.0f)) << "loop 2 row " << k;
    }
    const std::map<std::uint64_t, Span> when = spans(*r.trace);
    EXPECT_LE(when.at(kWriterOfOther).end, when.at(1 + kOther).start);
    EXPECT_LE(when.at(kLoop2 + kRead).end, when.at(kWriterOfKv).start);
    for (std::uint32_t k = 0; k < kWrite; ++k) {
      if (source(k) == kRow) {
        EXPECT_LE(when.at(kLoop2 + k).end, when.at(kWriterOfKv).start) << "reader " << k;
        EXPECT_LE(when.at(1 + k).end, when.at(kWriterOfKv).start) << "loop 1 reader " << k;
      }
    }
  }
}

// An analysed read of a buffer that earlier loops' affine families cover asks the families per
// task only when one of them writes it: reads never conflict with read families (the paged KV
// cache that every request's block loop reads), but a write family must still be found (RAW).
TEST_P(ParallelFor, AnalysedReadsLookUpOnlyWriteFamiliesOfEarlierLoops) {
  Directed d(GetParam());
  // On threads loop 3's tasks are held until everything is submitted, so loop 4 must name them;
  // on the sim a kernel runs to its end when started (holding would only stall it), so there the
  // order is checked on the recorded spans.
  const bool threads = GetParam() == PlatformKind::threads;
  const KernelId held = held_accumulate_on_threads(d, GetParam());
  constexpr std::uint32_t kRows = 16;
  constexpr std::uint32_t kCols = 4;
  std::vector<float> x(kRows * kCols), y(kRows * kCols, 0.0f), z(kRows * kCols, 0.0f),
      w(kRows * kCols, 0.0f);
  for (std::size_t k = 0; k < x.size(); ++k)
    x[k] = static_cast<float>(k % 13);
  RunArgs args;
  args.input(x.data(), {kRows, kCols}, DType::f32);
  args.inout(y.data(), {kRows, kCols}, DType::f32);
  args.output(z.data(), {kRows, kCols}, DType::f32);
  args.output(w.data(), {kRows, kCols}, DType::f32);
  // Tasks in submit order: one per row in each of the four loops.
  constexpr std::uint64_t kLoop2 = kRows, kLoop3 = 2 * kRows, kLoop4 = 3 * kRows;
  gate_open = false;
  const RunResult r = d.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        auto row = [&](int t, std::int64_t i) {
          return a.tensor(t).view({1, kCols}, {static_cast<std::uint32_t>(i), 0}).reshape({kCols});
        };
        // 1: reads x (a read family), writes y (a write family).
        o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
          o.submit_aiv(d.add, Args().in(row(0, i)).out_existing(row(1, i)));
        });
        // 2: reads x again: loop 1's read family cannot conflict, no edge.
        o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
          o.submit_aiv(d.add, Args().in(row(0, i)).out_existing(row(2, i)));
        });
        // 3: y += x, held until everything is submitted (a write family on y that stays live).
        o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
          o.submit_aiv(held, Args().in(row(0, i)).inout(row(1, i)));
        });
        // 4: reads y: loop 3's write family holds each row's producer.
        o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
          o.submit_aiv(d.add, Args().in(row(1, i)).out_existing(row(3, i)));
        });
        gate_open = true;
      },
      args);
  gate_open = true;
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.stats.loops_analysed, 4u);
  EXPECT_EQ(r.stats.loop_fallbacks, 0u);
  for (std::size_t k = 0; k < x.size(); ++k) {
    ASSERT_EQ(y[k], 2 * x[k] + 1) << k;
    ASSERT_EQ(z[k], x[k] + 1) << k;
    ASSERT_EQ(w[k], 2 * x[k] + 2) << k;
  }
  std::map<std::uint64_t, std::vector<std::uint64_t>> producers;
  for (const TaskEvent& e : r.trace->tasks)
    producers[e.sequence] = e.producers;
  const std::map<std::uint64_t, Span> span = spans(*r.trace);
  for (std::uint64_t i = 0; i < kRows; ++i) {
    EXPECT_TRUE(producers[kLoop2 + i].empty()) << "loop 2, row " << i;
    const std::vector<std::uint64_t>& got = producers[kLoop4 + i];
    EXPECT_GE(span.at(kLoop4 + i).start, span.at(kLoop3 + i).end) << "loop 4, row " << i;
    if (threads) {
      EXPECT_NE(std::find(got.begin(), got.end(), kLoop3 + i), got.end()) << "loop 4, row " << i;
    }
    for (const std::uint64_t p : got) {
      EXPECT_TRUE(p == kLoop3 + i || p == i) << "loop 4, row " << i << ": producer " << p;
    }
  }
}

// A template task whose every visited access is an outer buffer in its family, with a fixed
// box, takes its external producers from a list made once per loop (TaskPlan::direct): every
// analysed iteration still names the task that wrote its fixed input before the loop (held
// until the loop is submitted on threads; on the sim the recorded spans show the order).
TEST_P(ParallelFor, DirectTasksNameTheirFixedExternalProducers) {
  Directed d(GetParam());
  const bool threads = GetParam() == PlatformKind::threads;
  const KernelId held = held_accumulate_on_threads(d, GetParam());
  constexpr std::uint32_t kRows = 16;
  constexpr std::uint32_t kCols = 4;
  std::vector<float> x(kRows * kCols), g(kCols, 1.0f), out(kRows * kCols, 0.0f);
  for (std::size_t k = 0; k < x.size(); ++k)
    x[k] = static_cast<float>(k % 5);
  RunArgs args;
  args.input(x.data(), {kRows, kCols}, DType::f32);
  args.inout(g.data(), {kCols}, DType::f32);
  args.output(out.data(), {kRows, kCols}, DType::f32);
  gate_open = false;
  const RunResult r = d.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        // Task 0: g += x[0] (held), the external producer of every read of g below.
        o.submit_aiv(
            held,
            Args().in(a.tensor(0).view({1, kCols}, {0, 0}).reshape({kCols})).inout(a.tensor(1)));
        o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
          const auto k = static_cast<std::uint32_t>(i);
          o.submit_aiv(d.add,
                       Args()
                           .in(a.tensor(1))
                           .out_existing(a.tensor(2).view({1, kCols}, {k, 0}).reshape({kCols})));
        });
        gate_open = true;
      },
      args);
  gate_open = true;
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.stats.loop_tasks_analysed, kRows - 2);
  for (std::uint32_t k = 0; k < kRows; ++k) {
    for (std::uint32_t c = 0; c < kCols; ++c)
      ASSERT_EQ(out[k * kCols + c], 1.0f + x[c] + 1.0f) << "row " << k << " col " << c;
  }
  const std::map<std::uint64_t, Span> span = spans(*r.trace);
  for (const TaskEvent& e : r.trace->tasks) {
    if (e.sequence == 0) continue;
    EXPECT_GE(span.at(e.sequence).start, span.at(0).end) << "task " << e.sequence;
    if (threads) {
      ASSERT_EQ(e.producers.size(), 1u) << "task " << e.sequence;
      EXPECT_EQ(e.producers[0], 0u) << "task " << e.sequence;
    } else {
      EXPECT_LE(e.producers.size(), 1u) << "task " << e.sequence;
    }
  }
}

// The data of the two nested-loop tests below: kOuter x kInner iterations over rows of kCols
// floats. x (kInner rows, read) holds k % 7 + 1, `second` (kInner rows, read or updated) holds
// `fill`, z has one zeroed row per (outer, inner) pair; the run's tensors are x, second, z.
struct NestedRows {
  static constexpr std::uint32_t kOuter = 6;
  static constexpr std::uint32_t kInner = 40;  // 2 tasks each: 76 to analyse (>= 64)
  static constexpr std::uint32_t kCols = 4;
  std::vector<float> x = std::vector<float>(kInner * kCols);
  std::vector<float> second;
  std::vector<float> z = std::vector<float>(kOuter * kInner * kCols, 0.0f);
  RunArgs args;

  NestedRows(float fill, bool second_updated) : second(kInner * kCols, fill) {
    for (std::size_t k = 0; k < x.size(); ++k)
      x[k] = static_cast<float>(k % 7 + 1);
    args.input(x.data(), {kInner, kCols}, DType::f32);
    if (second_updated) {
      args.inout(second.data(), {kInner, kCols}, DType::f32);
    } else {
      args.input(second.data(), {kInner, kCols}, DType::f32);
    }
    args.output(z.data(), {kOuter * kInner, kCols}, DType::f32);
  }
  // Row k of run tensor t, as a rank-1 view.
  static Tensor row(const OrchestrationArgs& a, int t, std::uint32_t k) {
    return a.tensor(t).view({1, kCols}, {k, 0}).reshape({kCols});
  }
};

// While an outer loop learns from its first two iterations, its nested loops analyse themselves
// (their tasks are recorded for the outer template all the same), and the families they leave
// count for the outer analysis wherever they may meet its footprint: here every outer iteration
// adds into the same rows of y, so the first analysed outer iteration must find the inner
// families' tasks of the last learning one (per-task lookups), while the rows of z, which each
// outer iteration writes apart, leave the outer loop no lookup to make.
TEST_P(ParallelFor, NestedLoopsOfLearningIterationsAnalyseThemselves) {
  Directed d(GetParam());
  const bool threads = GetParam() == PlatformKind::threads;
  const KernelId held = held_accumulate_on_threads(d, GetParam());
  constexpr std::uint32_t kOuter = NestedRows::kOuter;
  constexpr std::uint32_t kInner = NestedRows::kInner;
  constexpr std::uint32_t kCols = NestedRows::kCols;
  NestedRows data(1.0f, true);
  const std::vector<float>& x = data.x;
  const std::vector<float>& y = data.second;
  const std::vector<float>& z = data.z;
  // Tasks in submit order: per outer iteration i and inner j, the add into y (2 (i * kInner + j))
  // and the write of z's row (2 (i * kInner + j) + 1).
  auto adder = [](std::uint32_t i, std::uint32_t j) -> std::uint64_t {
    return 2 * (std::uint64_t{i} * kInner + j);
  };
  gate_open = !threads;
  const RunResult r = d.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        auto row = [&](int t, std::uint32_t k) { return NestedRows::row(a, t, k); };
        o.parallel_for(kOuter, [&](Orchestrator& o, std::int64_t outer) {
          const auto i = static_cast<std::uint32_t>(outer);
          o.parallel_for(kInner, [&](Orchestrator& o, std::int64_t inner) {
            const auto j = static_cast<std::uint32_t>(inner);
            o.submit_aiv(held, Args().in(row(0, j)).inout(row(1, j)));
            o.submit_aiv(d.add, Args().in(row(0, j)).out_existing(row(2, i * kInner + j)));
          });
        });
        gate_open = true;
      },
      data.args);
  gate_open = true;
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.stats.loop_fallbacks, 0u);
  // The outer loop (iterations 2..5) and the inner loops of outer iterations 0 and 1 (their
  // iterations 2..7); later inner loops are part of the outer analysis.
  EXPECT_EQ(r.stats.loops_analysed, 3u);
  EXPECT_EQ(r.stats.loop_iterations_analysed, (kOuter - 2) + 2 * (kInner - 2));
  EXPECT_EQ(r.stats.loop_tasks_analysed, 2 * ((kOuter - 2) * kInner + 2 * (kInner - 2)));
  for (std::uint32_t j = 0; j < kInner; ++j) {
    for (std::uint32_t c = 0; c < kCols; ++c) {
      const std::size_t k = j * kCols + c;
      EXPECT_EQ(y[k], 1.0f + kOuter * x[k]) << "y row " << j;
      for (std::uint32_t i = 0; i < kOuter; ++i)
        EXPECT_EQ(z[(i * kInner + j) * kCols + c], x[k] + 1) << "z row " << i * kInner + j;
    }
  }
  const std::map<std::uint64_t, Span> when = spans(*r.trace);
  for (std::uint32_t i = 1; i < kOuter; ++i) {
    for (std::uint32_t j = 0; j < kInner; ++j) {
      EXPECT_LE(when.at(adder(i - 1, j)).end, when.at(adder(i, j)).start)
          << "outer " << i << ", row " << j;
    }
  }
}

// A nested loop with fewer than 64 tasks left to analyse after learning stays per task while
// its outer loop learns (its set-up would cost more than it saves); with 64 or more it analyses.
TEST_P(ParallelFor, ShortNestedLoopsOfLearningIterationsStayPerTask) {
  for (const std::uint32_t inner : {33u, 34u}) {  // 2 tasks each: 62 or 64 left after 2
    Directed d(GetParam());
    std::vector<float> x(inner), y(inner, 0.0f);
    RunArgs args;
    args.input(x.data(), {inner}, DType::f32);
    args.inout(y.data(), {inner}, DType::f32);
    const RunResult r = d.runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          o.parallel_for(4, [&](Orchestrator& o, std::int64_t) {
            o.parallel_for(inner, [&](Orchestrator& o, std::int64_t j) {
              const auto row = static_cast<std::uint32_t>(j);
              o.submit_aiv(
                  d.acc,
                  Args().in(a.tensor(0).view({1}, {row})).inout(a.tensor(1).view({1}, {row})));
              o.submit_aiv(
                  d.acc,
                  Args().in(a.tensor(0).view({1}, {row})).inout(a.tensor(1).view({1}, {row})));
            });
          });
        },
        args);
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    // With 33, the inner loops of outer iterations 0 and 1 fall back after learning, counted
    // with their reason.
    const std::uint64_t short_loops = inner == 34 ? 0u : 2u;
    EXPECT_EQ(r.stats.loop_fallbacks, short_loops) << inner;
    std::map<std::string, std::uint64_t> reasons(r.stats.loop_fallback_reasons.begin(),
                                                 r.stats.loop_fallback_reasons.end());
    EXPECT_EQ(reasons["nested loop too short to repay its analysis"], short_loops) << inner;
    // The outer loop (iterations 2 and 3), and with 34 the inner loops of iterations 0 and 1.
    EXPECT_EQ(r.stats.loops_analysed, inner == 34 ? 3u : 1u) << inner;
    EXPECT_EQ(r.stats.loop_tasks_analysed, 2 * 2 * inner + (inner == 34 ? 2 * 64u : 0u)) << inner;
  }
}

// What the nested loops of a learning iteration deferred (their readers of the buffers they
// made) goes into the map before the outer analysis starts: the first analysed outer iteration
// overwrites the buffers the last learning one made, and must wait for their (held) readers.
TEST_P(ParallelFor, OuterAnalysisSeesWhatNestedLoopsOfLearningIterationsDeferred) {
  Directed d(GetParam());
  const KernelId held = held_accumulate_on_threads(d, GetParam());
  constexpr std::uint32_t kOuter = NestedRows::kOuter;
  constexpr std::uint32_t kInner = NestedRows::kInner;
  constexpr std::uint32_t kCols = NestedRows::kCols;
  NestedRows data(100.0f, false);
  const std::vector<float>& x = data.x;
  const std::vector<float>& z = data.z;
  // Tasks: outer iteration i >= 1 first overwrites the kInner buffers iteration i - 1 made (one
  // task each), then its inner loop makes kInner buffers and reads each into a row of z.
  auto first_of = [](std::uint32_t i) -> std::uint64_t {
    return std::uint64_t{i} * 2 * kInner + (i == 0 ? 0 : std::uint64_t{i - 1} * kInner);
  };
  auto reader = [&](std::uint32_t i, std::uint32_t j) {
    return first_of(i) + (i == 0 ? 0 : kInner) + 2 * j + 1;
  };
  auto overwrite = [&](std::uint32_t i, std::uint32_t j) { return first_of(i) + j; };
  std::vector<Tensor> made(kOuter * kInner);
  const TensorSpec spec(Shape{kCols}, DType::f32);
  gate_open = GetParam() == PlatformKind::sim;
  const RunResult r = d.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        auto row = [&](int t, std::uint32_t k) { return NestedRows::row(a, t, k); };
        o.parallel_for(kOuter, [&](Orchestrator& o, std::int64_t outer) {
          const auto i = static_cast<std::uint32_t>(outer);
          for (std::uint32_t j = 0; i > 0 && j < kInner; ++j)  // WAR on the readers of i - 1
            o.submit_aiv(d.add, Args().in(row(1, j)).out_existing(made[(i - 1) * kInner + j]));
          o.parallel_for(kInner, [&](Orchestrator& o, std::int64_t inner) {
            const auto j = static_cast<std::uint32_t>(inner);
            const TaskOutputs m = o.submit_aiv(d.add, Args().in(row(0, j)).out(spec));
            if (!m.valid()) return;
            made[i * kInner + j] = m[0];
            o.submit_aiv(held, Args().in(m[0]).inout(row(2, i * kInner + j)));
          });
        });
        gate_open = true;
      },
      data.args);
  gate_open = true;
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.stats.loop_fallbacks, 0u);
  EXPECT_GE(r.stats.loops_analysed, 2u);
  for (std::uint32_t i = 0; i < kOuter; ++i) {
    for (std::uint32_t j = 0; j < kInner; ++j) {
      for (std::uint32_t c = 0; c < kCols; ++c) {
        EXPECT_EQ(z[(i * kInner + j) * kCols + c], x[j * kCols + c] + 1)
            << "outer " << i << ", row " << j;
      }
    }
  }
  const std::map<std::uint64_t, Span> when = spans(*r.trace);
  std::map<std::uint64_t, std::vector<std::uint64_t>> producers;
  for (const TaskEvent& e : r.trace->tasks)
    producers[e.sequence] = e.producers;
  for (std::uint32_t i = 1; i < kOuter; ++i) {
    for (std::uint32_t j = 0; j < kInner; ++j) {
      EXPECT_LE(when.at(reader(i - 1, j)).end, when.at(overwrite(i, j)).start)
          << "outer " << i << ", row " << j;
      // On threads every reader is held, so still live when the overwrite is submitted.
      if (GetParam() == PlatformKind::threads) {
        const std::vector<std::uint64_t>& got = producers[overwrite(i, j)];
        EXPECT_NE(std::find(got.begin(), got.end(), reader(i - 1, j)), got.end())
            << "outer " << i << ", row " << j;
      }
    }
  }
}

// An analysed task naming a buffer whose creator's scope has ended gets the usual named error,
// though its creator check is inline: from iteration 5 on, the buffer's inner scope ends before
// its consumer is submitted (the same tasks, views and template as before).
TEST_P(ParallelFor, AnalysedTaskNamingAnEndedScopesBufferFails) {
  Directed d(GetParam());
  std::int64_t failed_at = -1;
  const RunResult r = run_ended_scope_loop(
      d.runtime, d.add,
      [&](Orchestrator& o, std::int64_t, const Tensor& made, const Tensor& out_row) {
        o.submit_aiv(d.add, Args().in(made).out_existing(out_row));
      },
      &failed_at);
  EXPECT_EQ(r.status.code, ErrorCode::invalid_args) << r.status.to_string();
  EXPECT_NE(r.status.message.find("whose scope has ended"), std::string::npos)
      << r.status.to_string();
  EXPECT_EQ(failed_at, 5);
}

TEST_P(ParallelFor, ErrorsInTheBodyEndTheRunWithTheUsualError) {
  Directed d(GetParam());
  std::vector<float> buf(64, 0.0f);
  RunArgs args;
  args.inout(buf.data(), {64}, DType::f32);
  // A null tensor in iteration 5.
  RunResult r = d.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        o.parallel_for(10, [&](Orchestrator& o, std::int64_t i) {
          const auto k = static_cast<std::uint32_t>(i);
          o.submit_aiv(d.add, Args()
                                  .in(i == 5 ? Tensor() : a.tensor(0).view({1}, {k}))
                                  .out_existing(a.tensor(0).view({1}, {32 + k})));
        });
      },
      args);
  EXPECT_EQ(r.status.code, ErrorCode::invalid_args) << r.status.to_string();
  // A kernel that throws in an analysed iteration.
  r = d.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        o.parallel_for(10, [&](Orchestrator& o, std::int64_t i) {
          const auto k = static_cast<std::uint32_t>(i);
          o.submit_aiv(
              i == 6 ? d.boom : d.add,
              Args().in(a.tensor(0).view({1}, {k})).out_existing(a.tensor(0).view({1}, {32 + k})));
        });
      },
      args);
  EXPECT_EQ(r.status.code, ErrorCode::kernel_exception) << r.status.to_string();
  // A view out of bounds throws from the body.
  r = d.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        o.parallel_for(100, [&](Orchestrator& o, std::int64_t i) {
          const auto k = static_cast<std::uint32_t>(i);
          o.submit_aiv(
              d.add,
              Args().in(a.tensor(0).view({1}, {k})).out_existing(a.tensor(0).view({1}, {k})));
        });
      },
      args);
  EXPECT_EQ(r.status.code, ErrorCode::invalid_args) << r.status.to_string();
  // A negative count.
  r = d.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    o.parallel_for(-1, [](Orchestrator&, std::int64_t) {});
  });
  EXPECT_EQ(r.status.code, ErrorCode::invalid_args) << r.status.to_string();
  // The runtime still works afterwards.
  r = d.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        o.parallel_for(8, [&](Orchestrator& o, std::int64_t i) {
          const auto k = static_cast<std::uint32_t>(i);
          o.submit_aiv(
              d.add,
              Args().in(a.tensor(0).view({1}, {k})).out_existing(a.tensor(0).view({1}, {32 + k})));
        });
      },
      args);
  EXPECT_TRUE(r.ok()) << r.status.to_string();
}

// ---------------------------------------------------------------- templates kept across runs

// A loop of row copies plus one: iteration i reads row i * step of tensor `src` and writes row
// i * step + shift of tensor `dst` (both [kRows, kCols], inout).
struct RowLoop {
  int src = 0;
  int dst = 1;
  std::uint32_t n = 48;
  std::uint32_t step = 1;
  std::uint32_t shift = 0;
};
constexpr std::uint32_t kRowLoopRows = 64;
constexpr std::uint32_t kRowLoopCols = 4;

// Runs `l` on d's runtime and checks it against sequential execution: the final contents, every
// conflicting pair of tasks (RAW, WAR, WAW on a row) ordered by the recorded spans, and no edge
// between two tasks that do not conflict (so an independent loop has none).
RunResult run_row_loop(Directed& d, const RowLoop& l, const std::string& what) {
  constexpr std::uint32_t kCols = kRowLoopCols;
  std::vector<float> buf[2];
  for (int b = 0; b < 2; ++b) {
    buf[b].resize(std::size_t{kRowLoopRows} * kCols);
    for (std::size_t k = 0; k < buf[b].size(); ++k)
      buf[b][k] = static_cast<float>(1000 * b + static_cast<int>(k));
  }
  std::vector<float> expect[2] = {buf[0], buf[1]};
  for (std::uint32_t i = 0; i < l.n; ++i) {
    for (std::uint32_t c = 0; c < kCols; ++c) {
      expect[l.dst][(i * l.step + l.shift) * kCols + c] =
          expect[l.src][i * l.step * kCols + c] + 1.0f;
    }
  }
  RunArgs args;
  args.inout(buf[0].data(), {kRowLoopRows, kCols}, DType::f32);
  args.inout(buf[1].data(), {kRowLoopRows, kCols}, DType::f32);
  const RunResult r = d.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        o.parallel_for(l.n, [&](Orchestrator& o, std::int64_t i) {
          const auto row = static_cast<std::uint32_t>(i) * l.step;
          o.submit_aiv(
              d.add,
              Args()
                  .in(a.tensor(l.src).view({1, kCols}, {row, 0}).reshape({kCols}))
                  .out_existing(
                      a.tensor(l.dst).view({1, kCols}, {row + l.shift, 0}).reshape({kCols})));
        });
      },
      args);
  EXPECT_TRUE(r.ok()) << what << ": " << r.status.to_string();
  if (!r.ok()) return r;
  EXPECT_EQ(buf[0], expect[0]) << what;
  EXPECT_EQ(buf[1], expect[1]) << what;
  // Task i (sequence i) reads (src, i * step) and writes (dst, i * step + shift).
  const auto conflict = [&](std::uint32_t j, std::uint32_t k) {
    const auto read = [&](std::uint32_t t) { return std::pair(l.src, t * l.step); };
    const auto write = [&](std::uint32_t t) { return std::pair(l.dst, t * l.step + l.shift); };
    return write(j) == read(k) || read(j) == write(k) || write(j) == write(k);
  };
  const std::map<std::uint64_t, Span> when = spans(*r.trace);
  for (const TaskEvent& e : r.trace->tasks) {
    const auto k = static_cast<std::uint32_t>(e.sequence);
    for (const std::uint64_t p : e.producers)
      EXPECT_TRUE(conflict(static_cast<std::uint32_t>(p), k))
          << what << ": edge " << p << "->" << k;
    for (std::uint32_t j = 0; j < k; ++j) {
      if (conflict(j, k)) {
        EXPECT_LE(when.at(j).end, when.at(k).start) << what << ": tasks " << j << ", " << k;
      }
    }
  }
  return r;
}

std::string rejections(const RunStats& stats) {
  std::string text;
  for (const auto& [reason, n] : stats.loop_template_rejections)
    text += reason + " x" + std::to_string(n) + "; ";
  return text;
}

// A loop that falls back after many analysed iterations (the per-iteration fast tests in use:
// LoopDriver::Loop::steady) counts no iteration from the departure on as analysed.
TEST_P(ParallelFor, FallBackAfterAnalysedIterationsCountsNoneAfter) {
  for (const bool extra : {true, false}) {
    Directed d(GetParam());
    const std::string what = extra ? "one task more" : "no task";
    const RunResult r = run_slice_writes(d, 64, 40, extra, what);
    EXPECT_EQ(r.stats.loops_analysed, 1u) << what;
    // Iterations 2 .. 39: not the two learning ones, nor any from the departure on.
    EXPECT_EQ(r.stats.loop_iterations_analysed, 38u) << what;
    EXPECT_EQ(r.stats.loop_fallbacks, 1u) << what;
  }
}

// The same departure in a run whose loop starts from a kept template before its first iteration
// (the third run: LoopDriver::try_kept_from_start): once iteration 1 has confirmed the template
// (Loop::rebound cleared, not before), a departure falls back as in a learned loop; it does not
// relearn.
TEST_P(ParallelFor, KeptTemplateFallsBackAfterItsFirstIterations) {
  for (const bool extra : {true, false}) {
    Directed d(GetParam());
    const std::string what = extra ? "one task more" : "no task";
    run_slice_writes(d, 64, -1, extra, what + ", first run");
    run_slice_writes(d, 64, -1, extra, what + ", second run");
    const RunResult r = run_slice_writes(d, 64, 40, extra, what + ", third run");
    EXPECT_EQ(r.stats.loop_templates_reused, 1u) << what;
    EXPECT_EQ(rejections(r.stats), "") << what;
    EXPECT_EQ(r.stats.loop_fallbacks, 1u) << what;
    EXPECT_EQ(r.stats.loop_iterations_analysed, 40u) << what;  // iterations 0 .. 39
  }
}

// The same loop run again on one runtime takes the template the run before kept: the first run's,
// learned from iterations 0 and 1, is kept rebased on iteration 0 and proved for the whole loop,
// so every later run analyses every iteration from the first (try_kept_from_start), and stays
// exact.
TEST_P(ParallelFor, KeptTemplateServesTheNextRunOfTheLoop) {
  Directed d(GetParam());
  const RowLoop loop;
  const RunResult first = run_row_loop(d, loop, "first run");
  EXPECT_EQ(first.stats.loop_templates_reused, 0u);
  EXPECT_EQ(first.stats.loop_iterations_analysed, loop.n - 2);
  for (int again = 1; again <= 2; ++again) {
    const RunResult r = run_row_loop(d, loop, "run " + std::to_string(again + 1));
    EXPECT_EQ(r.stats.loop_templates_reused, 1u) << again;
    EXPECT_EQ(r.stats.loop_templates_rejected, 0u) << rejections(r.stats);
    EXPECT_EQ(r.stats.loop_iterations_analysed, loop.n) << again;
    EXPECT_EQ(r.stats.loop_tasks_analysed, loop.n) << again;
    EXPECT_EQ(r.stats.loop_fallbacks, 0u) << again;
  }
}

// A run whose loop differs from the runs' before: a template fits only up to the names of its
// buffers (another trip count is proved again), and anything else is rejected, counted with its
// reason, and learned again; every run is exact.
TEST_P(ParallelFor, KeptTemplateThatDoesNotFitIsLearnedAgain) {
  struct Case {
    const char* what;
    RowLoop first;
    RowLoop second;
    std::uint64_t reused;
    std::string rejected;
    std::uint64_t analysed;  // iterations of the third run
  };
  const Case cases[] = {
      {"other trip count", {0, 1, 48, 1, 0}, {0, 1, 40, 1, 0}, 1, "", 39},
      // The third run of the same trip count starts with the kept template before its first
      // iteration (try_kept_from_start, the arguments renamed by index): a loop that differs
      // misses there (or, for another stride, in iteration 1) and relearns from two later
      // iterations; rebind's own reasons are met only when it is not offered.
      {"buffers swapped",
       {0, 1, 48, 1, 0},
       {1, 0, 48, 1, 0},
       0,
       "first analysed iteration differs x1; ",
       45},
      {"other offsets",
       {0, 1, 24, 1, 0},
       {0, 1, 24, 2, 0},
       0,
       "first analysed iteration differs x1; ",
       21},
      {"shifted writes",
       {0, 1, 48, 1, 0},
       {0, 1, 48, 1, 1},
       0,
       "first analysed iteration differs x1; ",
       45},
      {"carried farther",
       {1, 1, 48, 1, 1},
       {1, 1, 48, 1, 2},
       0,
       "first analysed iteration differs x1; ",
       45},
      {"in place",
       {0, 1, 48, 1, 0},
       {1, 1, 48, 1, 0},
       0,
       "first analysed iteration differs x1; ",
       45},
      {"carried after independent",
       {0, 1, 48, 1, 0},
       {1, 1, 48, 1, 1},
       0,
       "first analysed iteration differs x1; ",
       45},
      {"independent after carried",
       {1, 1, 48, 1, 1},
       {0, 1, 48, 1, 1},
       0,
       "first analysed iteration differs x1; ",
       45},
  };
  for (const Case& c : cases) {
    Directed d(GetParam());
    // Twice: the template kept rebased on iteration 0 with its proof for the whole loop serves
    // the second run from its first iteration and is kept again, so the third would take its
    // edges as they are.
    run_row_loop(d, c.first, std::string(c.what) + ", first run");
    run_row_loop(d, c.first, std::string(c.what) + ", second run");
    const RunResult r = run_row_loop(d, c.second, std::string(c.what) + ", third run");
    EXPECT_EQ(r.stats.loop_templates_reused, c.reused) << c.what;
    EXPECT_EQ(rejections(r.stats), c.rejected) << c.what;
    EXPECT_EQ(r.stats.loop_iterations_analysed, c.analysed) << c.what;
    EXPECT_EQ(r.stats.loop_fallbacks, 0u) << c.what;
  }
}

// A loop run again on the same buffers, whose first iteration repeats the kept template's base,
// also takes the plans kept with it (LoopDriver::reuse_plans): from the second run on (the first
// run's template is kept rebased on iteration 0; its plans' routes hold for a run from the first
// iteration, as the learning iterations' tasks meet no later iteration of this loop).
// Other buffers take the plans renamed (rebind's bijection). Plans built for runs without an
// external producer are not reused when one appears (here a held writer of the whole source
// before the loop: its readers' routes change), nor the other way round. Each run stays exact:
// every loop task names only its conflicting producers and runs after them.
TEST_P(ParallelFor, KeptPlansServeARunThatRepeatsTheLoop) {
  Directed d(GetParam());
  const KernelId held = held_accumulate_on_threads(d, GetParam());
  const bool threads = GetParam() == PlatformKind::threads;
  constexpr std::uint32_t kRows = 64;
  constexpr std::uint32_t kCols = 4;
  constexpr std::uint32_t kIterations = 48;
  std::vector<float> src(kRows * kCols), aux(kRows * kCols), dst(kRows * kCols);
  std::vector<float> src2(src.size()), aux2(aux.size()), dst2(dst.size());
  struct Run {
    const char* what;
    bool writer_before;  // a held accumulate of aux into the whole of src before the loop
    bool other_buffers;
    std::uint64_t plans_reused;
  };
  const Run runs[] = {{"first", false, false, 0},
                      {"second (from the start)", false, false, 1},
                      {"third", false, false, 1},
                      {"other buffers", false, true, 1},
                      {"the first buffers", false, false, 1},
                      {"writer before", true, false, 0},
                      {"writer gone", false, false, 0},
                      {"again", false, false, 1}};
  for (const Run& run : runs) {
    SCOPED_TRACE(run.what);
    std::vector<float>& s = run.other_buffers ? src2 : src;
    std::vector<float>& x = run.other_buffers ? aux2 : aux;
    std::vector<float>& o = run.other_buffers ? dst2 : dst;
    for (std::size_t k = 0; k < s.size(); ++k) {
      s[k] = static_cast<float>(k % 13);
      x[k] = static_cast<float>(k % 7 + 1);
      o[k] = -1.0f;
    }
    std::vector<float> expect = o;
    for (std::uint32_t k = 0; k < kIterations * kCols; ++k)
      expect[k] = s[k] + (run.writer_before ? x[k] : 0.0f) + 2.0f;
    RunArgs args;
    args.inout(s.data(), {kRows, kCols}, DType::f32);
    args.input(x.data(), {kRows, kCols}, DType::f32);
    args.inout(o.data(), {kRows, kCols}, DType::f32);
    gate_open = !threads;
    const RunResult r = d.runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          if (run.writer_before) {
            o.submit_aiv(held, Args()
                                   .in(a.tensor(1).reshape({kRows * kCols}))
                                   .inout(a.tensor(0).reshape({kRows * kCols})));
          }
          o.parallel_for(kIterations, [&](Orchestrator& o, std::int64_t i) {
            const auto row = static_cast<std::uint32_t>(i);
            const TaskOutputs t =
                o.submit_aiv(d.add, Args()
                                        .in(a.tensor(0).view({1, kCols}, {row, 0}).reshape({kCols}))
                                        .out(TensorSpec(Shape{kCols}, DType::f32)));
            o.submit_aiv(d.add, Args().in(t[0]).out_existing(
                                    a.tensor(2).view({1, kCols}, {row, 0}).reshape({kCols})));
          });
          gate_open = true;
        },
        args);
    gate_open = true;
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    for (std::size_t k = 0; k < o.size(); ++k)
      ASSERT_EQ(o[k], expect[k]) << "element " << k;
    EXPECT_EQ(r.stats.loop_templates_reused, &run == runs ? 0u : 1u);
    EXPECT_EQ(r.stats.loop_plans_reused, run.plans_reused);
    EXPECT_EQ(r.stats.loop_fallbacks, 0u);
    // Tasks: the writer (sequence 0) when there is one, then per iteration its reader of src and
    // its writer of dst.
    const std::uint64_t first = run.writer_before ? 1 : 0;
    const std::map<std::uint64_t, Span> when = spans(*r.trace);
    for (const TaskEvent& e : r.trace->tasks) {
      if (e.sequence < first) continue;
      const std::uint64_t k = e.sequence - first;
      if (k % 2 == 0) {  // a reader: only the writer before the loop (while it lives)
        for (const std::uint64_t p : e.producers)
          EXPECT_EQ(p, 0u) << "reader " << k / 2;
        if (run.writer_before) {
          EXPECT_LE(when.at(0).end, when.at(e.sequence).start) << "reader " << k / 2;
          if (threads) {  // held: live when the reader is submitted
            EXPECT_EQ(e.producers, std::vector<std::uint64_t>{0}) << "reader " << k / 2;
          }
        }
      } else {  // a writer: its reader, whose output it reads
        EXPECT_EQ(e.producers, std::vector<std::uint64_t>{e.sequence - 1}) << "writer " << k / 2;
        EXPECT_LE(when.at(e.sequence - 1).end, when.at(e.sequence).start) << "writer " << k / 2;
      }
    }
  }
}

// Kept plans take this run's names of the outer buffers (LoopDriver::rename). A run whose first
// iteration reads another buffer (b) than the kept template's (a), renamed by rebind, and whose
// later iterations read a again, is another loop: its first analysed iteration must not pass as
// a replay of the kept plans' old name (it relearns, counted as a rejection), and the writer of a
// after the loop meets every reader of a.
TEST_P(ParallelFor, KeptPlansNameThisRunsBuffers) {
  Directed d(GetParam());
  constexpr std::uint32_t kRows = 64;
  constexpr std::uint32_t kCols = 4;
  constexpr std::uint32_t kIterations = 48;
  std::vector<float> a(kRows * kCols), b(kRows * kCols), dst(kRows * kCols);
  for (int run = 0; run < 4; ++run) {
    SCOPED_TRACE("run " + std::to_string(run + 1));
    const bool switched = run == 3;
    for (std::size_t k = 0; k < a.size(); ++k) {
      a[k] = static_cast<float>(k % 13);
      b[k] = static_cast<float>(k % 5 + 20);
      dst[k] = -1.0f;
    }
    std::vector<float> expect_dst = dst;
    for (std::uint32_t k = 0; k < kIterations * kCols; ++k)
      expect_dst[k] = (switched && k < kCols ? b[k] : a[k]) + 1.0f;
    std::vector<float> expect_a(a.size());
    for (std::size_t k = 0; k < a.size(); ++k)
      expect_a[k] = b[k] + 1.0f;
    RunArgs args;
    args.inout(a.data(), {kRows, kCols}, DType::f32);
    args.input(b.data(), {kRows, kCols}, DType::f32);
    args.inout(dst.data(), {kRows, kCols}, DType::f32);
    const RunResult r = d.runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& t) {
          o.parallel_for(kIterations, [&](Orchestrator& o, std::int64_t i) {
            const auto row = static_cast<std::uint32_t>(i);
            const Tensor& src = switched && row == 0 ? t.tensor(1) : t.tensor(0);
            o.submit_aiv(
                d.add, Args()
                           .in(src.view({1, kCols}, {row, 0}).reshape({kCols}))
                           .out_existing(t.tensor(2).view({1, kCols}, {row, 0}).reshape({kCols})));
          });
          // WAR on every reader of a.
          o.submit_aiv(d.add, Args()
                                  .in(t.tensor(1).reshape({kRows * kCols}))
                                  .out_existing(t.tensor(0).reshape({kRows * kCols})));
        },
        args);
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(dst, expect_dst);
    EXPECT_EQ(a, expect_a);
    EXPECT_EQ(r.stats.loop_templates_reused, run == 0 || switched ? 0u : 1u);
    // From the second run on, from the start with the kept plans; run 4 starts with them (renamed
    // to b), then relearns.
    EXPECT_EQ(r.stats.loop_plans_reused, run >= 1 ? 1u : 0u);
    EXPECT_EQ(rejections(r.stats), switched ? "first analysed iteration differs x1; " : "");
    const std::map<std::uint64_t, Span> when = spans(*r.trace);
    const std::uint64_t writer = kIterations;
    // Every reader of a; run 4's first iteration reads b, which the writer only reads too: no
    // conflict, so no order to check (it may still be running when the writer starts).
    for (std::uint64_t k = switched ? 1 : 0; k < kIterations; ++k)
      EXPECT_LE(when.at(k).end, when.at(writer).start) << "reader " << k;
  }
}

// From the second run on, a kept template based on iteration 0 serves the loop from its first
// iteration (LoopDriver::try_kept_from_start): every iteration analysed, the run's argument
// buffers (new device copies each run) renamed by argument index, the external producers taken
// from the map as the loop begins (a held writer of the whole source before the loop is waited
// for by iteration 0's tasks). A body that reads another argument is another loop: its first
// iteration misses, relearns (counted) and stays exact, and later runs learn the first iteration
// and rebind instead. Each run: contents as sequential, every conflicting pair of tasks ordered,
// and no producer without a conflict.
TEST_P(ParallelFor, KeptTemplateServesLaterRunsFromTheirFirstIteration) {
  Directed d(GetParam());
  const KernelId held = held_accumulate_on_threads(d, GetParam());
  const bool threads = GetParam() == PlatformKind::threads;
  constexpr std::uint32_t kRows = 48;
  constexpr std::uint32_t kCols = 4;
  struct Run {
    const char* what;
    bool writer_before;  // a held accumulate of aux into the whole of the source before the loop
    int source;          // the argument the loop reads
    std::uint64_t iterations_analysed;
    std::uint64_t rejected;
  };
  const Run runs[] = {{"first", false, 0, kRows - 2, 0},
                      {"second (from the start)", false, 0, kRows, 0},
                      {"third", false, 0, kRows, 0},
                      {"writer before", true, 0, kRows, 0},
                      {"fourth", false, 0, kRows, 0},
                      {"another argument", false, 3, kRows - 3, 1},
                      {"after the miss (rebinds)", false, 0, kRows - 1, 0},
                      {"again (rebinds)", false, 0, kRows - 1, 0}};
  std::vector<float> src(kRows * kCols), aux(kRows * kCols), dst(kRows * kCols), sum(kCols),
      alt(kRows * kCols);
  for (const Run& run : runs) {
    SCOPED_TRACE(run.what);
    for (std::size_t k = 0; k < src.size(); ++k) {
      src[k] = static_cast<float>(k % 13);
      alt[k] = static_cast<float>(k % 5 + 20);
      aux[k] = static_cast<float>(k % 7 + 1);
      dst[k] = -1.0f;
    }
    std::fill(sum.begin(), sum.end(), 0.5f);
    // Sequential: the writer adds aux into the source; iteration i writes dst row i = source row
    // i + 2 and adds source row i into sum.
    std::vector<float> source = run.source == 0 ? src : alt;
    if (run.writer_before) {
      for (std::size_t k = 0; k < source.size(); ++k)
        source[k] += aux[k];
    }
    std::vector<float> expect_dst(dst.size()), expect_sum = sum;
    for (std::uint32_t i = 0; i < kRows; ++i) {
      for (std::uint32_t c = 0; c < kCols; ++c) {
        expect_dst[i * kCols + c] = source[i * kCols + c] + 2.0f;
        expect_sum[c] += source[i * kCols + c];
      }
    }
    RunArgs args;
    args.inout(src.data(), {kRows, kCols}, DType::f32);
    args.input(aux.data(), {kRows, kCols}, DType::f32);
    args.inout(dst.data(), {kRows, kCols}, DType::f32);
    args.inout(alt.data(), {kRows, kCols}, DType::f32);
    args.inout(sum.data(), {kCols}, DType::f32);
    gate_open = !threads;
    const RunResult r = d.runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          const Tensor& from = a.tensor(run.source);
          if (run.writer_before) {
            o.submit_aiv(held, Args()
                                   .in(a.tensor(1).reshape({kRows * kCols}))
                                   .inout(from.reshape({kRows * kCols})));
          }
          o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
            const auto row = static_cast<std::uint32_t>(i);
            const Tensor in = from.view({1, kCols}, {row, 0}).reshape({kCols});
            const TaskOutputs t =
                o.submit_aiv(d.add, Args().in(in).out(TensorSpec(Shape{kCols}, DType::f32)));
            o.submit_aiv(d.add, Args().in(t[0]).out_existing(
                                    a.tensor(2).view({1, kCols}, {row, 0}).reshape({kCols})));
            o.submit_aiv(d.acc, Args().in(in).inout(a.tensor(4)));
          });
          gate_open = true;
        },
        args);
    gate_open = true;
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(dst, expect_dst);
    EXPECT_EQ(sum, expect_sum);
    if (run.source == 0) {
      std::vector<float> expect_src(src.size());
      for (std::size_t k = 0; k < src.size(); ++k)
        expect_src[k] = static_cast<float>(k % 13) + (run.writer_before ? aux[k] : 0.0f);
      EXPECT_EQ(src, expect_src);
    }
    EXPECT_EQ(r.stats.loop_templates_reused, &run == runs ? 0u : 1u - run.rejected);
    EXPECT_EQ(r.stats.loop_templates_rejected, run.rejected) << rejections(r.stats);
    EXPECT_EQ(r.stats.loop_iterations_analysed, run.iterations_analysed);
    EXPECT_EQ(r.stats.loop_fallbacks, 0u);
    // Tasks: the writer (sequence 0) when there is one, then per iteration its reader of the
    // source row, its writer of dst and its accumulate (reads the source row, writes sum).
    const std::uint64_t first = run.writer_before ? 1 : 0;
    struct Access {
      bool writer_before = false;
      int kind = 0;  // 0 reader, 1 dst writer, 2 accumulate
      std::uint64_t iteration = 0;
    };
    const auto access = [&](std::uint64_t sequence) {
      Access x;
      if (sequence < first) {
        x.writer_before = true;
        return x;
      }
      x.kind = static_cast<int>((sequence - first) % 3);
      x.iteration = (sequence - first) / 3;
      return x;
    };
    const auto conflict = [&](std::uint64_t j, std::uint64_t k) {
      const Access x = access(j);
      const Access y = access(k);
      if (x.writer_before || y.writer_before) {  // the whole source, and dst writers do not read it
        const Access& other = x.writer_before ? y : x;
        return other.kind != 1;
      }
      if (x.kind == 2 && y.kind == 2) return true;  // sum
      return x.iteration == y.iteration && (x.kind == 0) != (y.kind == 0) &&
             (x.kind == 1 || y.kind == 1);  // the fresh row
    };
    const std::map<std::uint64_t, Span> when = spans(*r.trace);
    for (const TaskEvent& e : r.trace->tasks) {
      for (const std::uint64_t p : e.producers)
        EXPECT_TRUE(conflict(p, e.sequence)) << "edge " << p << "->" << e.sequence;
      for (std::uint64_t j = 0; j < e.sequence; ++j) {
        if (conflict(j, e.sequence)) {
          EXPECT_LE(when.at(j).end, when.at(e.sequence).start) << j << " before " << e.sequence;
        }
      }
    }
    if (run.writer_before && threads) {  // held: live when iteration 0's tasks are submitted
      for (const TaskEvent& e : r.trace->tasks) {
        if (e.sequence == 1 || e.sequence == 3) {
          EXPECT_EQ(e.producers, std::vector<std::uint64_t>{0}) << e.sequence;
        }
      }
    }
  }
}

// Repeated runs of one loop on one runtime, as LLM decoding repeats its orchestration, where the
// kept template serves the run from its first iteration (try_kept_from_start) with its kept plans
// (reuse_plans, which keeps a position's routes while the template's edges, its families and its
// fixed external producers are the same). Between runs nothing changes; or the arguments are new
// buffers (renamed); or a held writer before the loop appears and goes, of the bias every
// iteration reads (a fixed external producer, in two runs in a row, the second with another task
// id: its routes must name its own writer) or of the whole source; or the trip count changes; or
// the body changes. Each run: the buffers as a sequential run leaves them, every producer a
// conflicting task, every conflicting pair ordered, a held writer named by every task that
// conflicts with it, and the reuse counters.
TEST_P(ParallelFor, KeptStartFollowsWhatChangesBetweenRuns) {
  Directed d(GetParam());
  const KernelId held = held_accumulate_on_threads(d, GetParam());
  const bool threads = GetParam() == PlatformKind::threads;
  constexpr std::uint32_t kRows = 48;
  constexpr std::uint32_t kCols = 4;
  enum Writer { none, of_bias, of_source };
  struct Run {
    const char* what;
    std::uint32_t iterations;
    bool new_buffers;
    Writer writer;
    bool reads_fresh;  // the body's accumulate adds the iteration's fresh row, not the bias
    bool shifted;      // an unrelated task before the writer (which then has another task id)
    std::uint64_t reused, plans_reused, rejected, analysed;
  };
  const Run runs[] = {
      {"first", kRows, false, none, false, false, 0, 0, 0, kRows - 2},
      {"again", kRows, false, none, false, false, 1, 1, 0, kRows},
      {"new buffers", kRows, true, none, false, false, 1, 1, 0, kRows},
      {"writer of the bias", kRows, true, of_bias, false, false, 1, 0, 0, kRows},
      {"writer of the bias again, new buffers", kRows, true, of_bias, false, true, 1, 1, 0, kRows},
      {"writer gone", kRows, false, none, false, false, 1, 0, 0, kRows},
      {"writer of the source", kRows, true, of_source, false, false, 1, 0, 0, kRows},
      {"writer of the source again", kRows, false, of_source, false, false, 1, 1, 0, kRows},
      {"shorter", kRows - 8, true, none, false, false, 1, 0, 0, kRows - 8 - 1},
      {"shorter again", kRows - 8, false, none, false, false, 1, 1, 0, kRows - 8},
      {"body changes", kRows - 8, true, none, true, false, 0, 1, 1, kRows - 8 - 3},
      {"body back", kRows - 8, true, none, false, false, 0, 0, 1, kRows - 8 - 2},
      {"and again", kRows - 8, true, none, false, false, 1, 1, 0, kRows - 8}};
  struct Buffers {
    std::vector<float> src, aux, dst, bias;
  };
  std::list<Buffers> sets;  // every set lives to the end: new buffers have new addresses
  sets.emplace_back();
  for (const Run& run : runs) {
    SCOPED_TRACE(run.what);
    if (run.new_buffers) sets.emplace_back();
    Buffers& b = sets.back();
    b.src.assign(kRows * kCols, 0.0f);
    b.aux.assign(kRows * kCols, 0.0f);
    b.dst.assign(kRows * kCols, -1.0f);
    b.bias.assign(kCols, 0.5f);
    for (std::size_t k = 0; k < b.src.size(); ++k) {
      b.src[k] = static_cast<float>(k % 13);
      b.aux[k] = static_cast<float>(k % 7 + 1);
    }
    // Sequential: the writer adds aux into the source (or aux's row 0 into the bias); iteration i
    // writes fresh row i = source row i + 1, dst row i = fresh row i + 1, and adds the bias (or
    // the fresh row) into dst row i.
    std::vector<float> expect_src = b.src, expect_dst = b.dst, expect_bias = b.bias;
    if (run.writer == of_source) {
      for (std::size_t k = 0; k < expect_src.size(); ++k)
        expect_src[k] += b.aux[k];
    }
    if (run.writer == of_bias) {
      for (std::uint32_t c = 0; c < kCols; ++c)
        expect_bias[c] += b.aux[c];
    }
    for (std::uint32_t i = 0; i < run.iterations; ++i) {
      for (std::uint32_t c = 0; c < kCols; ++c) {
        const float s = expect_src[i * kCols + c];
        expect_dst[i * kCols + c] = s + 2.0f + (run.reads_fresh ? s + 1.0f : expect_bias[c]);
      }
    }
    RunArgs args;
    args.inout(b.src.data(), {kRows, kCols}, DType::f32);
    args.input(b.aux.data(), {kRows, kCols}, DType::f32);
    args.inout(b.dst.data(), {kRows, kCols}, DType::f32);
    args.inout(b.bias.data(), {kCols}, DType::f32);
    gate_open = !threads;
    const RunResult r = d.runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          if (run.shifted) {
            o.submit_aiv(d.add, Args()
                                    .in(a.tensor(1).view({1, kCols}, {1, 0}).reshape({kCols}))
                                    .out(TensorSpec(Shape{kCols}, DType::f32)));
          }
          if (run.writer == of_source) {
            o.submit_aiv(held, Args()
                                   .in(a.tensor(1).reshape({kRows * kCols}))
                                   .inout(a.tensor(0).reshape({kRows * kCols})));
          } else if (run.writer == of_bias) {
            o.submit_aiv(held, Args()
                                   .in(a.tensor(1).view({1, kCols}, {0, 0}).reshape({kCols}))
                                   .inout(a.tensor(3)));
          }
          o.parallel_for(run.iterations, [&](Orchestrator& o, std::int64_t i) {
            const auto row = static_cast<std::uint32_t>(i);
            const Tensor in = a.tensor(0).view({1, kCols}, {row, 0}).reshape({kCols});
            const TaskOutputs t =
                o.submit_aiv(d.add, Args().in(in).out(TensorSpec(Shape{kCols}, DType::f32)));
            o.submit_aiv(d.add, Args().in(t[0]).out_existing(
                                    a.tensor(2).view({1, kCols}, {row, 0}).reshape({kCols})));
            o.submit_aiv(d.acc,
                         Args()
                             .in(run.reads_fresh ? t[0] : a.tensor(3))
                             .inout(a.tensor(2).view({1, kCols}, {row, 0}).reshape({kCols})));
          });
          gate_open = true;
        },
        args);
    gate_open = true;
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(b.src, expect_src);
    EXPECT_EQ(b.dst, expect_dst);
    EXPECT_EQ(b.bias, expect_bias);
    EXPECT_EQ(r.stats.loop_templates_reused, run.reused);
    EXPECT_EQ(r.stats.loop_plans_reused, run.plans_reused);
    EXPECT_EQ(r.stats.loop_templates_rejected, run.rejected) << rejections(r.stats);
    EXPECT_EQ(r.stats.loop_iterations_analysed, run.analysed);
    EXPECT_EQ(r.stats.loop_fallbacks, 0u);
    // Tasks: the unrelated task and the writer (sequence first - 1) when there are, then per
    // iteration its reader of the
    // source row (kind 0), its writer of the dst row (1) and its accumulate into it (2).
    const std::uint64_t first = (run.writer == none ? 0 : 1) + (run.shifted ? 1 : 0);
    const std::uint64_t writer = first - 1;
    const auto kind = [&](std::uint64_t s) { return static_cast<int>((s - first) % 3); };
    const auto iteration = [&](std::uint64_t s) { return (s - first) / 3; };
    const auto conflict = [&](std::uint64_t j, std::uint64_t k) {
      if (j < first || k < first) {
        if ((j < first && j != writer) || (k < first && k != writer)) return false;  // unrelated
        if (j < first && k < first) return false;
        const int other = kind(j < first ? k : j);  // the writer and a loop task
        if (run.writer == of_bias) return other == 2 && !run.reads_fresh;
        return other == 0;  // the source's readers
      }
      if (iteration(j) != iteration(k)) return false;  // rows of their own; the bias only read
      const int x = std::min(kind(j), kind(k));
      const int y = std::max(kind(j), kind(k));
      return (x == 0 && (y == 1 || (y == 2 && run.reads_fresh))) ||  // the fresh row
             (x == 1 && y == 2);                                     // the dst row
    };
    const std::map<std::uint64_t, Span> when = spans(*r.trace);
    ASSERT_EQ(r.trace->tasks.size(), first + 3 * run.iterations);
    for (const TaskEvent& e : r.trace->tasks) {
      for (const std::uint64_t p : e.producers)
        EXPECT_TRUE(conflict(p, e.sequence)) << "edge " << p << "->" << e.sequence;
      for (std::uint64_t j = 0; j < e.sequence; ++j) {
        if (conflict(j, e.sequence)) {
          EXPECT_LE(when.at(j).end, when.at(e.sequence).start) << j << " before " << e.sequence;
        }
      }
      // Held until the orchestration ends: every task that conflicts with it names it.
      if (threads && run.writer != none && e.sequence > writer && conflict(writer, e.sequence)) {
        EXPECT_NE(std::find(e.producers.begin(), e.producers.end(), writer), e.producers.end())
            << e.sequence;
      }
    }
  }
}

// Random loop programs, each run twice on one runtime (the second run may take the first's
// templates), then the next program on the same runtime (other loops at the same places: every
// kept template must fit exactly or be rejected): every run passes the oracle.
TEST_P(ParallelFor, KeptTemplatesOfRandomProgramsStayExact) {
  Runtime runtime(loop_config(GetParam()));
  register_program_kernels(runtime.kernels());
  std::uint64_t reused = 0;
  std::uint64_t rejected = 0;
  for (int p = 0; p < scaled(150, 8); ++p) {
    const std::uint64_t seed = 11000 + static_cast<std::uint64_t>(p);
    for (int again = 0; again < 2; ++again) {
      const ProgramResult result = run_random_program(runtime, seed, loop_shape());
      const std::string where =
          "seed " + std::to_string(seed) + ", run " + std::to_string(again + 1) + ": ";
      ASSERT_TRUE(result.status.ok()) << where << result.status.to_string();
      ASSERT_EQ(result.mismatch, "") << where;
      ASSERT_TRUE(result.buffers == result.reference) << where << "final buffers differ";
      ASSERT_EQ(check_trace_order(result), "") << where;
      ASSERT_EQ(check_edges_exact(result), "") << where;
      reused += result.stats.loop_templates_reused;
      rejected += result.stats.loop_templates_rejected;
    }
  }
  std::cout << reused << " templates reused, " << rejected << " rejected\n";
  EXPECT_GT(reused, 0u);
  if (test_scale() >= 1) {
    EXPECT_GT(rejected, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Platforms, ParallelFor, testing::both_platforms(), testing::platform_name);

}  // namespace
}  // namespace tmr::testing
