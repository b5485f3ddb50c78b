// One orchestration run again and again on one Runtime (decode steps; `tmr run --rounds N`), with
// the same shapes and with shapes or sizes changed between runs, on the threads and sim platforms.
// A loop template kept from an earlier run serves a later one only where it is proven for that
// run (the same trip count, views and buffers, checked per submit); anything else relearns or
// falls back. Every run must leave what the same run with parallel_for off (plain submits) leaves,
// order every conflicting pair of tasks (RAW, WAR, WAW on overlapping elements) by the recorded
// spans, and record no edge without such a conflict, as the plain run does; the run statistics
// must say where the kept template was used and why not elsewhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "support/loop_tests.hpp"
#include "support/platforms.hpp"
#include "tmr/tmr.hpp"

namespace tmr::testing {
namespace {

// The program's shape in one run: `requests` iterations of the outer loop; request i runs a
// nested loop of blocks(i) iterations.
struct Sizes {
  std::uint32_t requests = 12;
  std::uint32_t blocks = 4;
  std::uint32_t width = 8;
  bool ragged = false;  // request i has blocks - i % 2 blocks (nested loops of other lengths)
  std::uint32_t blocks_of(std::uint32_t i) const { return ragged ? blocks - i % 2 : blocks; }
};

// One element range a task touches: buffer 0 q, 1 kv, 2 out, 3 sum, 4 scan (run arguments), or 100
// + k for output 0 of task k (a fresh buffer).
struct Touch {
  std::uint64_t buffer = 0;
  bool write = false;
  std::uint64_t lo = 0;
  std::uint64_t hi = 0;
};
bool conflict(const std::vector<Touch>& x, const std::vector<Touch>& y) {
  for (const Touch& a : x) {
    for (const Touch& b : y) {
      if (a.buffer == b.buffer && (a.write || b.write) && a.lo < b.hi && b.lo < a.hi) return true;
    }
  }
  return false;
}

struct Outcome {
  RunResult result;
  std::vector<float> out, sum, scan;
  std::vector<std::vector<Touch>> touches;  // per task, by submit sequence
};

// The paged-attention-like program: per request, a fresh row from q, a nested block loop adding
// kv rows into it (the carried chain of the nested loop), the row written to out (disjoint per
// request), q's row added into sum (the carried chain of the request loop), and row i + 1 of
// scan made from row i (a carried dependence that moves with i). `seed` sets the inputs.
Outcome run_program(Runtime& runtime, KernelId add, KernelId acc, const Sizes& s, int seed) {
  const std::uint32_t w = s.width;
  const std::uint32_t kv_rows = s.requests * s.blocks;
  std::vector<float> q(std::size_t{s.requests} * w), kv(std::size_t{kv_rows} * w);
  for (std::size_t k = 0; k < q.size(); ++k)
    q[k] = static_cast<float>((k * 7 + static_cast<std::size_t>(seed)) % 19);
  for (std::size_t k = 0; k < kv.size(); ++k)
    kv[k] = static_cast<float>((k * 5 + 3 * static_cast<std::size_t>(seed)) % 23);
  Outcome o;
  o.out.assign(std::size_t{s.requests} * w, -1.0f);
  o.sum.assign(w, 0.25f);
  o.scan.assign(std::size_t{s.requests + 1} * w, 0.5f);
  RunArgs args;
  args.input(q.data(), {s.requests, w}, DType::f32);
  args.input(kv.data(), {kv_rows, w}, DType::f32);
  args.inout(o.out.data(), {s.requests, w}, DType::f32);
  args.inout(o.sum.data(), {w}, DType::f32);
  args.inout(o.scan.data(), {s.requests + 1, w}, DType::f32);
  o.result = runtime.run(
      [&](Orchestrator& orch, const OrchestrationArgs& a) {
        const auto row = [&](int arg, std::uint32_t r) {
          return a.tensor(arg).view({1, w}, {r, 0}).reshape({w});
        };
        const auto rows = [&](std::uint64_t buffer, std::uint32_t r, bool write) {
          return Touch{buffer, write, std::uint64_t{r} * w, (std::uint64_t{r} + 1) * w};
        };
        orch.parallel_for(s.requests, [&](Orchestrator& orch, std::int64_t i) {
          const auto r = static_cast<std::uint32_t>(i);
          const TaskOutputs t =
              orch.submit_aiv(add, Args().in(row(0, r)).out(TensorSpec(Shape{w}, DType::f32)));
          const std::uint64_t fresh = 100 + o.touches.size();
          o.touches.push_back({rows(0, r, false), Touch{fresh, true, 0, w}});
          orch.parallel_for(s.blocks_of(r), [&](Orchestrator& orch, std::int64_t j) {
            const std::uint32_t kv_row = r * s.blocks + static_cast<std::uint32_t>(j);
            orch.submit_aiv(acc, Args().in(row(1, kv_row)).inout(t[0]));
            o.touches.push_back({rows(1, kv_row, false), Touch{fresh, true, 0, w}});
          });
          orch.submit_aiv(add, Args().in(t[0]).out_existing(row(2, r)));
          o.touches.push_back({Touch{fresh, false, 0, w}, rows(2, r, true)});
          orch.submit_aiv(acc, Args().in(row(0, r)).inout(a.tensor(3)));
          o.touches.push_back({rows(0, r, false), Touch{3, true, 0, w}});
          // Row r + 1 of scan from row r, which the request before wrote: a carried RAW at
          // distance 1 that moves with the request (and a WAR back to that request's read).
          orch.submit_aiv(add, Args().in(row(4, r)).out_existing(row(4, r + 1)));
          o.touches.push_back({rows(4, r, false), rows(4, r + 1, true)});
        });
      },
      args);
  return o;
}

// What the run's graph must satisfy: every recorded edge is a conflict, every conflicting pair
// is ordered by the recorded spans.
std::string check_order(const Outcome& o) {
  if (!o.result.trace) return "no trace";
  std::map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> span;  // start, end
  for (const SubtaskEvent& e : o.result.trace->subtasks) {
    auto [it, fresh] = span.try_emplace(e.task_sequence, e.start_ns, e.end_ns);
    if (!fresh) {
      it->second.first = std::min(it->second.first, e.start_ns);
      it->second.second = std::max(it->second.second, e.end_ns);
    }
  }
  const std::size_t n = o.touches.size();
  if (o.result.trace->tasks.size() != n || span.size() != n) {
    return "trace has " + std::to_string(o.result.trace->tasks.size()) + " tasks, the program " +
           std::to_string(n);
  }
  for (const TaskEvent& e : o.result.trace->tasks) {
    const std::uint64_t k = e.sequence;
    for (const std::uint64_t p : e.producers) {
      if (p >= k || !conflict(o.touches[p], o.touches[k]))
        return "edge " + std::to_string(p) + " -> " + std::to_string(k) + " without a conflict";
    }
    for (std::uint64_t j = 0; j < k; ++j) {
      if (conflict(o.touches[j], o.touches[k]) && span.at(j).second > span.at(k).first)
        return "tasks " + std::to_string(j) + " and " + std::to_string(k) + " overlap";
    }
  }
  return "";
}

std::string reasons(const std::vector<std::pair<std::string, std::uint64_t>>& list) {
  std::string text;
  for (const auto& [reason, n] : list)
    text += reason + " x" + std::to_string(n) + "; ";
  return text;
}

class LoopsRerun : public ::testing::TestWithParam<PlatformKind> {};

// The request loop's template, learned from requests 0 and 1 in the first run, is kept based on
// request 0 and proved for the whole loop, so the second run of the same shapes analyses every
// request from the first (LoopDriver::try_kept_from_start); another trip count waits for the
// first request's record and rebinds (proved again); other sizes are rejected by rebind or miss
// from the start and relearn (counted), after which that loop learns its first request and
// rebinds in later runs; ragged requests make the request loop fall back and the nested loops
// analyse themselves. Each run against the same run with parallel_for off, on its own Runtime.
TEST_P(LoopsRerun, ProgramRunAgainMatchesPlainWithSameAndChangedShapes) {
  struct Run {
    const char* what;
    Sizes shape;
    std::uint64_t reused;        // loop_templates_reused
    std::uint64_t plans_reused;  // loop_plans_reused
    std::string rejected;        // loop_template_rejections
    std::uint64_t analysed;      // loop_iterations_analysed
    std::string fallbacks;       // loop_fallback_reasons
  };
  const Sizes same;
  Sizes longer = same;
  longer.requests = 16;
  Sizes wider = same;
  wider.width = 16;
  Sizes more_blocks = same;
  more_blocks.blocks = 5;
  Sizes ragged = same;
  ragged.ragged = true;
  const std::string differs = "first analysed iteration differs x1; ";
  // A nested loop of a learning request has too few blocks left to analyse itself.
  const std::string short1 = "nested loop too short to repay its analysis x1; ";
  const std::string short2 = "nested loop too short to repay its analysis x2; ";
  const Run runs[] = {
      // Learns from requests 0 and 1 (their nested loops per task): requests 2-11 analysed. The
      // template is kept based on request 0, proved for requests 0-11.
      {"first", same, 0, 0, "", 10, short2},
      // From the first request with the kept template. Its plans are built again: the first
      // run's were built with the learned requests' accumulates of sum as external producers,
      // this run has none before the loop (another route for sum).
      {"same shapes", same, 1, 0, "", 12, ""},
      {"same shapes again", same, 1, 1, "", 12, ""},
      // Another trip count: not offered before the first request, which runs per task and
      // rebinds the template (proved again for 0-15; plans are kept for one trip count).
      {"more requests", longer, 1, 0, "", 15, short1},
      // From the first request; plans built again (request 0's accumulate was external before).
      {"more requests again", longer, 1, 0, "", 16, ""},
      // Rows twice as wide, 12 requests again: request 0 runs per task (the kept template is
      // for 16), rebind finds other views, and the loop learns from requests 0 and 1.
      {"wider rows", wider, 0, 0, "other views x1; ", 10, short2},
      {"wider rows again", wider, 1, 0, "", 12, ""},
      {"wider rows, third", wider, 1, 1, "", 12, ""},
      // Narrow rows and 5 blocks, offered the wide template from the start (with its plans):
      // request 0's reads of q pass (free reads: only their buffer is checked), its first block
      // misses on the fresh row's view and the loop relearns from requests 1 and 2 (requests
      // 3-11 analysed); that loop learns its first request from now on.
      {"more blocks", more_blocks, 0, 1, differs, 9, short2},
      // Ragged: request 0 per task, rebind finds another task count; requests 0 and 1 have
      // nested loops of other lengths, so the request loop falls back and each later request's
      // nested loop analyses itself (4 blocks: 2 analysed, 3 blocks: 1).
      {"ragged", ragged, 0, 0, "other tasks or arguments x1; ", 15,
       "nested loops of different lengths x1; " + short2},
      // The kept template is still run 9's (5 blocks, its start failed): rejected after request
      // 0, learned again from requests 0 and 1. The start failure was that template's: the new
      // one starts without it, so the next run starts from the first request again (its plans
      // built again, as in the second run).
      {"same shapes after all that", same, 0, 0, "other tasks or arguments x1; ", 10, short2},
      {"same shapes, last", same, 1, 0, "", 12, ""},
      {"same shapes, once more", same, 1, 1, "", 12, ""},
  };
  Runtime on(loop_config(GetParam(), true));
  Runtime off(loop_config(GetParam(), false));
  const KernelId add_on = on.kernels().add("add_one", CoreType::aiv, &add_one);
  const KernelId acc_on = on.kernels().add("accumulate", CoreType::aiv, &accumulate);
  const KernelId add_off = off.kernels().add("add_one", CoreType::aiv, &add_one);
  const KernelId acc_off = off.kernels().add("accumulate", CoreType::aiv, &accumulate);
  int seed = 0;
  for (const Run& run : runs) {
    SCOPED_TRACE(run.what);
    ++seed;
    const Outcome a = run_program(on, add_on, acc_on, run.shape, seed);
    const Outcome p = run_program(off, add_off, acc_off, run.shape, seed);
    ASSERT_TRUE(a.result.ok()) << a.result.status.to_string();
    ASSERT_TRUE(p.result.ok()) << p.result.status.to_string();
    EXPECT_EQ(a.out, p.out);
    EXPECT_EQ(a.sum, p.sum);
    EXPECT_EQ(a.scan, p.scan);
    EXPECT_EQ(check_order(a), "");
    EXPECT_EQ(check_order(p), "");
    EXPECT_EQ(p.result.stats.loop_tasks_analysed, 0u);
    const RunStats& st = a.result.stats;
    EXPECT_EQ(st.loop_templates_reused, run.reused);
    EXPECT_EQ(st.loop_plans_reused, run.plans_reused);
    EXPECT_EQ(reasons(st.loop_template_rejections), run.rejected);
    EXPECT_EQ(reasons(st.loop_fallback_reasons), run.fallbacks);
    EXPECT_EQ(st.loop_iterations_analysed, run.analysed);
  }
}

// Iteration i writes row i of b and reads row 2i + 8: the two strides differ, and the sweeps
// meet only if iteration 0 is in the range (its read of row 8 against iteration 8's write). The
// template learned from iterations 0 and 1 is rebased on iteration 0 and its proof for the whole
// loop falls back (unequal strides); rebase goes back on iteration 1 and the rest of the loop
// (iterations 2-9, whose sweeps do not meet) is analysed as before. The write of row 8 must wait
// for iteration 0's read (through the map: iterations 0 and 1 ran per task).
TEST_P(LoopsRerun, RebasedTemplateWhoseWholeLoopProofFailsIsProvedForTheRest) {
  Runtime runtime(loop_config(GetParam(), true));
  const KernelId add = runtime.kernels().add("add_one", CoreType::aiv, &add_one);
  constexpr std::uint32_t kN = 10;
  constexpr std::uint32_t kRows = 2 * kN + 8;
  constexpr std::uint32_t kW = 4;
  std::vector<float> b(std::size_t{kRows} * kW);
  for (std::size_t k = 0; k < b.size(); ++k)
    b[k] = static_cast<float>(k % 17);
  std::vector<float> expect = b;
  for (std::uint32_t i = 0; i < kN; ++i) {
    for (std::uint32_t c = 0; c < kW; ++c)
      expect[i * kW + c] = expect[(2 * i + 8) * kW + c] + 1.0f;
  }
  Outcome o;
  RunArgs args;
  args.inout(b.data(), {kRows, kW}, DType::f32);
  o.result = runtime.run(
      [&](Orchestrator& orch, const OrchestrationArgs& a) {
        orch.parallel_for(kN, [&](Orchestrator& orch, std::int64_t i) {
          const auto r = static_cast<std::uint32_t>(i);
          const auto row = [&](std::uint32_t at) {
            return a.tensor(0).view({1, kW}, {at, 0}).reshape({kW});
          };
          orch.submit_aiv(add, Args().in(row(2 * r + 8)).out_existing(row(r)));
          o.touches.push_back({Touch{0, false, std::uint64_t{2 * r + 8} * kW, (2 * r + 9) * kW},
                               Touch{0, true, std::uint64_t{r} * kW, (std::uint64_t{r} + 1) * kW}});
        });
      },
      args);
  ASSERT_TRUE(o.result.ok()) << o.result.status.to_string();
  EXPECT_EQ(b, expect);
  EXPECT_EQ(check_order(o), "");
  EXPECT_EQ(o.result.stats.loop_iterations_analysed, kN - 2);
  EXPECT_EQ(reasons(o.result.stats.loop_fallback_reasons), "");
}

// A wide replayed position keeps the plan its first submit of the run was checked with, and a
// later submit there that names the same kernels takes it without replan. One that names other
// kernels must not: iteration `odd` of the second position submits `accumulate` (y += t) where
// the template has `add_one` (y = t + 1), and in the next run an unregistered kernel, which must
// end the run with the usual named error. Two runs each on one Runtime (the second starts from
// the kept template, whose positions check their plans again).
TEST_P(LoopsRerun, WidePositionKeepsItsCheckedPlanOnlyForTheSameKernels) {
  Runtime runtime(loop_config(GetParam(), true));
  const KernelId add = runtime.kernels().add("add_one", CoreType::aiv, &add_one);
  const KernelId acc = runtime.kernels().add("accumulate", CoreType::aiv, &accumulate);
  constexpr std::uint32_t kN = 12;
  constexpr std::uint32_t kW = 4;
  constexpr std::int64_t kOdd = 9;
  const auto run = [&](KernelId odd_kernel, std::vector<float>* y) {
    std::vector<float> x(std::size_t{kN} * kW);
    for (std::size_t k = 0; k < x.size(); ++k)
      x[k] = static_cast<float>(k % 13);
    y->assign(std::size_t{kN} * kW, 2.0f);
    RunArgs args;
    args.input(x.data(), {kN * kW}, DType::f32);
    args.inout(y->data(), {kN * kW}, DType::f32);
    return runtime.run(
        [&](Orchestrator& orch, const OrchestrationArgs& a) {
          LoopOptions per_iteration;
          per_iteration.scope_per_iteration = true;  // as paged attention's loops
          orch.parallel_for(
              kN,
              [&](Orchestrator& orch, std::int64_t i) {
                const auto r = static_cast<std::uint32_t>(i);
                const auto row = [&](int arg) { return a.tensor(arg).view({kW}, {r * kW}); };
                // Both positions are wide: a fresh output, then a read of the buffer it made.
                const TaskOutputs t =
                    orch.submit_aiv(add, Args().in(row(0)).out(TensorSpec(Shape{kW}, DType::f32)));
                orch.submit_aiv(i == kOdd ? odd_kernel : add, Args().in(t[0]).out_existing(row(1)));
              },
              per_iteration);
        },
        args);
  };
  const auto expected = [&](bool odd_accumulates) {
    std::vector<float> y(std::size_t{kN} * kW);
    for (std::uint32_t i = 0; i < kN; ++i) {
      for (std::uint32_t c = 0; c < kW; ++c) {
        const float t = static_cast<float>((i * kW + c) % 13) + 1.0f;
        y[i * kW + c] = i == kOdd && odd_accumulates ? 2.0f + t : t + 1.0f;
      }
    }
    return y;
  };
  for (int pass = 0; pass < 2; ++pass) {
    SCOPED_TRACE(pass);
    std::vector<float> y;
    const RunResult same = run(add, &y);
    ASSERT_TRUE(same.ok()) << same.status.to_string();
    EXPECT_EQ(y, expected(false));
    EXPECT_GT(same.stats.loop_tasks_replayed_wide, 0u);
    const RunResult other = run(acc, &y);
    ASSERT_TRUE(other.ok()) << other.status.to_string();
    EXPECT_EQ(y, expected(true));
    EXPECT_GT(other.stats.loop_tasks_replayed_wide, 0u);
    EXPECT_NE(reasons(other.stats.loop_fallback_reasons), "");
  }
  std::vector<float> y;
  const RunResult unknown = run(KernelId{4242}, &y);
  EXPECT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status.code, ErrorCode::unknown_kernel) << unknown.status.to_string();
}

// get_tensor_data of an external buffer nothing writes is quiet in an analysed loop (no
// dependence discovery), and a repeated read of the loop's last quiet buffer takes that answer
// inline (LoopDriver::element_access). The answer is the loop's for its template: when the kept
// template misses at once and the loop relearns a template that writes the buffer, the same
// buffer's later reads must be asked again (the loop writes it now: they fall back and wait for
// the writer). Run 1 reads table[i] every iteration and writes y; run 2 reads table[0] first in
// iteration 0 (from the kept template, which it then misses), writes table rows instead, and
// reads table[i] back from iteration 5 on, after its own write: every value read is checked.
TEST_P(LoopsRerun, QuietReadIsAskedAgainAfterTheLoopRelearnsATemplateThatWritesIt) {
  Runtime runtime(loop_config(GetParam(), true));
  const KernelId add = runtime.kernels().add("add_one", CoreType::aiv, &add_one);
  constexpr std::uint32_t kN = 12;
  constexpr std::uint32_t kW = 4;
  std::vector<float> x(std::size_t{kN} * kW);
  for (std::size_t k = 0; k < x.size(); ++k)
    x[k] = static_cast<float>(k % 13);
  const auto run = [&](bool write_table, std::vector<float>* table, std::vector<float>* y,
                       std::vector<float>* read) {
    read->assign(kN, -1.0f);
    RunArgs args;
    args.input(x.data(), {kN, kW}, DType::f32);
    args.inout(y->data(), {kN, kW}, DType::f32);
    args.inout(table->data(), {kN, kW}, DType::f32);
    return runtime.run(
        [&](Orchestrator& orch, const OrchestrationArgs& a) {
          orch.parallel_for(kN, [&](Orchestrator& orch, std::int64_t i) {
            const auto r = static_cast<std::uint32_t>(i);
            const auto row = [&](int arg) {
              return a.tensor(arg).view({1, kW}, {r, 0}).reshape({kW});
            };
            if (!write_table) {
              (*read)[r] = orch.get_tensor_data<float>(a.tensor(2), {r, 1});
              orch.submit_aiv(add, Args().in(row(0)).out_existing(row(1)));
              return;
            }
            if (i == 0) (*read)[r] = orch.get_tensor_data<float>(a.tensor(2), {r, 1});
            orch.submit_aiv(add, Args().in(row(0)).out_existing(row(2)));
            if (i >= 5) (*read)[r] = orch.get_tensor_data<float>(a.tensor(2), {r, 1});
          });
        },
        args);
  };
  std::vector<float> table(std::size_t{kN} * kW);
  for (std::size_t k = 0; k < table.size(); ++k)
    table[k] = 100.0f + static_cast<float>(k);
  std::vector<float> y(std::size_t{kN} * kW, 0.0f);
  std::vector<float> read;
  const RunResult first = run(false, &table, &y, &read);
  ASSERT_TRUE(first.ok()) << first.status.to_string();
  EXPECT_GT(first.stats.loop_iterations_analysed, 0u);
  EXPECT_EQ(reasons(first.stats.loop_fallback_reasons), "");
  for (std::uint32_t i = 0; i < kN; ++i) {
    EXPECT_EQ(read[i], 100.0f + static_cast<float>(i * kW + 1)) << "run 1, table row " << i;
    for (std::uint32_t c = 0; c < kW; ++c)
      EXPECT_EQ(y[i * kW + c], x[i * kW + c] + 1.0f) << "run 1, y row " << i;
  }
  const std::vector<float> y_before = y;
  const RunResult second = run(true, &table, &y, &read);
  ASSERT_TRUE(second.ok()) << second.status.to_string();
  // The kept template served iteration 0 from the start and missed there: counted as rejected.
  EXPECT_EQ(second.stats.loop_templates_reused, 0u);
  EXPECT_EQ(second.stats.loop_templates_rejected, 1u);
  EXPECT_EQ(reasons(second.stats.loop_fallback_reasons),
            "get_tensor_data in the body of a buffer the loop writes x1; ");
  EXPECT_EQ(read[0], 100.0f + 1.0f);  // before iteration 0's write
  for (std::uint32_t i = 5; i < kN; ++i)
    EXPECT_EQ(read[i], x[i * kW + 1] + 1.0f) << "run 2 reads its own write of table row " << i;
  for (std::uint32_t i = 0; i < kN; ++i) {
    for (std::uint32_t c = 0; c < kW; ++c)
      EXPECT_EQ(table[i * kW + c], x[i * kW + c] + 1.0f) << "run 2, table row " << i;
  }
  EXPECT_EQ(y, y_before);
}

// The quiet read's inline case (Orchestrator::read_element, Tensor::element_address_or_null)
// reads the same element as the full steps, a transposed view's included, and leaves every
// mistake to them: an index out of bounds and a wrong element type in an iteration whose reads
// of the buffer are quiet latch the errors the full steps name, with nothing read.
TEST_P(LoopsRerun, QuietReadsInlineReadTheElementAndLeaveMistakesToTheFullSteps) {
  Runtime runtime(loop_config(GetParam(), true));
  const KernelId add = runtime.kernels().add("add_one", CoreType::aiv, &add_one);
  constexpr std::uint32_t kN = 12;
  constexpr std::uint32_t kW = 4;
  std::vector<float> x(std::size_t{kN} * kW, 1.0f);
  std::vector<float> table(std::size_t{kN} * kW);
  for (std::size_t k = 0; k < table.size(); ++k)
    table[k] = 100.0f + static_cast<float>(k);
  enum class Mistake { none, out_of_bounds, wrong_type };
  const auto run = [&](Mistake mistake, std::vector<float>* read, std::vector<float>* transposed) {
    read->assign(kN, -1.0f);
    transposed->assign(kN, -1.0f);
    std::vector<float> y(std::size_t{kN} * kW, 0.0f);
    RunArgs args;
    args.input(x.data(), {kN, kW}, DType::f32);
    args.inout(y.data(), {kN, kW}, DType::f32);
    args.input(table.data(), {kN, kW}, DType::f32);
    return runtime.run(
        [&](Orchestrator& orch, const OrchestrationArgs& a) {
          orch.parallel_for(kN, [&](Orchestrator& orch, std::int64_t i) {
            const auto r = static_cast<std::uint32_t>(i);
            const Tensor& t = a.tensor(2);
            (*read)[r] = orch.get_tensor_data<float>(t, {r, 1});
            (*transposed)[r] = orch.get_tensor_data<float>(t.transpose(0, 1), {2, r});
            if (i == 8 && mistake == Mistake::out_of_bounds) {
              (*read)[r] = orch.get_tensor_data<float>(t, {r, kW});
            }
            if (i == 8 && mistake == Mistake::wrong_type) {
              (*read)[r] = static_cast<float>(orch.get_tensor_data<std::int32_t>(t, {r, 1}));
            }
            orch.submit_aiv(add, Args()
                                     .in(a.tensor(0).view({1, kW}, {r, 0}))
                                     .out_existing(a.tensor(1).view({1, kW}, {r, 0})));
          });
        },
        args);
  };
  std::vector<float> read;
  std::vector<float> transposed;
  const RunResult good = run(Mistake::none, &read, &transposed);
  ASSERT_TRUE(good.ok()) << good.status.to_string();
  EXPECT_GT(good.stats.loop_iterations_analysed, 0u);
  EXPECT_EQ(reasons(good.stats.loop_fallback_reasons), "");
  for (std::uint32_t i = 0; i < kN; ++i) {
    EXPECT_EQ(read[i], 100.0f + static_cast<float>(i * kW + 1)) << "row " << i;
    EXPECT_EQ(transposed[i], 100.0f + static_cast<float>(i * kW + 2)) << "row " << i;
  }
  const RunResult bounds = run(Mistake::out_of_bounds, &read, &transposed);
  EXPECT_EQ(bounds.status.code, ErrorCode::invalid_args) << bounds.status.to_string();
  EXPECT_NE(bounds.status.message.find("index 4 is out of bounds for dimension 1"),
            std::string::npos)
      << bounds.status.to_string();
  EXPECT_EQ(read[8], 0.0f);  // a failed read returns T{}
  const RunResult type = run(Mistake::wrong_type, &read, &transposed);
  EXPECT_EQ(type.status.code, ErrorCode::invalid_args) << type.status.to_string();
  EXPECT_NE(type.status.message.find("get_tensor_data asked for a i32 element"), std::string::npos)
      << type.status.to_string();
  EXPECT_EQ(read[8], 0.0f);
}

INSTANTIATE_TEST_SUITE_P(Platforms, LoopsRerun, testing::both_platforms(), testing::platform_name);

}  // namespace
}  // namespace tmr::testing
