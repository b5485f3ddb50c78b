// Every case of every registered example, end to end on the threads platform: seeded inputs,
// the orchestration on a real runtime, and the golden check. Large cases run on a smaller
// topology and, under sanitizers (TMR_TEST_SCALE < 1), with fewer requests.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "batch_paged_attention/batch.hpp"
#include "common/catalog.hpp"
#include "paged_attention/attention_cases.hpp"
#include "paged_attention_unroll/unroll.hpp"
#include "support/platforms.hpp"
#include "test_support.hpp"
#include "tmr/error.hpp"
#include "tmr/runtime.hpp"
#include "tmr/trace.hpp"

namespace tmr::examples {
namespace {

using testing::failures;
using testing::small_config;
using testing::test_scale;

struct CaseRef {
  std::string example;
  std::size_t index;
  std::string name;
};

std::vector<CaseRef> every_case() {
  std::vector<CaseRef> refs;
  for (const Example& example : all_examples()) {
    for (std::size_t i = 0; i < example.cases.size(); ++i) {
      if (example.cases[i].production) continue;  // timing-only sim scale (tests/sim covers it)
      refs.push_back({example.name, i, example.name + "_" + example.cases[i].name});
    }
  }
  return refs;
}

void PrintTo(const CaseRef& ref, std::ostream* out) {
  *out << ref.name;
}

// The problem of a case; a large case shrinks (fewer requests) under TMR_TEST_SCALE when the
// example knows how.
Problem problem_for(const Example& example, std::size_t index, std::uint64_t seed) {
  const double scale = test_scale();
  if (example.cases[index].large && example.make_scaled_problem && scale < 1.0) {
    return example.make_scaled_problem(index, seed, scale);
  }
  return example.make_problem(index, seed);
}

// The test topology, with the example's own ring sizes (the ring-stress case).
RuntimeConfig config_for(const Example& example, bool large) {
  RuntimeConfig config = large ? small_config(2, 1) : small_config();
  if (example.ring) config.ring = *example.ring;
  if (config.clusters < example.min_clusters) {  // start-together cohorts sized for a2a3
    config.clusters = example.min_clusters;
    config.scheduler_threads = 3;
  }
  return config;
}

class ExampleRun : public ::testing::TestWithParam<CaseRef> {};

TEST_P(ExampleRun, MatchesGoldenOverTwoRoundsOnOneRuntime) {
  const Example* example = find_example(GetParam().example);
  ASSERT_NE(example, nullptr);
  const bool large = example->cases[GetParam().index].large;
  KernelRegistry kernels;
  example->register_kernels(kernels);
  Runtime runtime(config_for(*example, large), std::move(kernels));
  Problem problem = problem_for(*example, GetParam().index, /*seed=*/1234);
  const RunArgs args = problem.run_args();
  const int rounds = large ? 1 : 2;  // the second round proves outputs are reset and re-made
  for (int round = 0; round < rounds; ++round) {
    problem.reset_outputs();
    const RunResult result = runtime.run(example->orchestration, args);
    ASSERT_TRUE(result.ok()) << result.status.to_string();
    EXPECT_GT(result.stats.tasks_submitted, 0u);
    const std::vector<OutputCheck> checks = problem.check();
    EXPECT_EQ(failures(checks), "") << "round " << round + 1;
  }
}

INSTANTIATE_TEST_SUITE_P(AllExamples, ExampleRun, ::testing::ValuesIn(every_case()),
                         [](const auto& info) { return info.param.name; });

TEST(ExampleCatalog, HoldsTheExamplesEachWithCases) {
  for (const char* name : {"bgemm", "paged_attention", "paged_attention_mix",
                           "paged_attention_ringbuffer", "scalar_data", "vector_example"}) {
    const Example* example = find_example(name);
    ASSERT_NE(example, nullptr) << name;
    EXPECT_FALSE(example->cases.empty());
    EXPECT_TRUE(example->register_kernels && example->orchestration && example->make_problem);
  }
  EXPECT_EQ(find_example("no_such_example"), nullptr);
}

// Runs case `case_name` of `example_name` once and returns the run's result.
RunResult run_once(const std::string& example_name, const std::string& case_name,
                   Problem* problem_out = nullptr) {
  const Example* example = find_example(example_name);
  KernelRegistry kernels;
  example->register_kernels(kernels);
  Runtime runtime(small_config(), std::move(kernels));
  Problem problem =
      example->make_problem(static_cast<std::size_t>(example->find_case(case_name)), 99);
  const RunResult result = runtime.run(example->orchestration, problem.run_args());
  if (problem_out != nullptr) *problem_out = std::move(problem);
  return result;
}

TEST(PagedAttention, TaskCountsIncludeTheHiddenAllocs) {
  const std::uint64_t expected[] = {13, 33, 22, 68};
  const char* names[] = {"Case1", "Case2", "VarSeq2", "VarSeq4"};
  for (int i = 0; i < 4; ++i) {
    const RunResult result = run_once("paged_attention", names[i]);
    ASSERT_TRUE(result.ok()) << result.status.to_string();
    EXPECT_EQ(result.stats.tasks_submitted, expected[i]) << names[i];
    EXPECT_EQ(result.stats.inline_tasks, i == 3 ? 4u : (i == 2 ? 2u : 1u)) << names[i];
  }
}

TEST(PagedAttentionUnroll, SubmitsFourTasksPerGroupOfUpTo64Blocks) {
  // MultiGroup: 69 and 44 blocks -> (1 + 4 * 2) + (1 + 4 * 1); the reference's Case1/Case2 counts.
  const auto& cases = paged_attention_unroll::unroll_cases();
  EXPECT_EQ(paged_attention_unroll::expected_tasks(cases.at(2)), 14u);
  EXPECT_EQ(paged_attention_unroll::expected_tasks(cases.at(3)), 1280u);
  EXPECT_EQ(paged_attention_unroll::expected_tasks(cases.at(4)), 576u);
  const RunResult result = run_once("paged_attention_unroll", "MultiGroup");
  ASSERT_TRUE(result.ok()) << result.status.to_string();
  EXPECT_EQ(result.stats.tasks_submitted, 14u);
}

TEST(BatchPagedAttention, SubmitsChunksTimesTheLongestRequestsBlocks) {
  // TwoChunks: 20 requests (2 chunks), longest 128 tokens = 8 blocks -> 2 * (1 + 4 * 8).
  const auto& cases = batch_paged_attention::batch_cases();
  EXPECT_EQ(batch_paged_attention::expected_tasks(cases.at(5)), 66u);
  EXPECT_EQ(batch_paged_attention::expected_tasks(cases.at(6)), 4112u);  // the reference's Case1
  const RunResult result = run_once("batch_paged_attention", "TwoChunks");
  ASSERT_TRUE(result.ok()) << result.status.to_string();
  EXPECT_EQ(result.stats.tasks_submitted, 66u);
}

TEST(PagedAttentionMix, SubmitsOneAllocAndOneMixTaskPerBlock) {
  const RunResult result = run_once("paged_attention_mix", "Case1");
  ASSERT_TRUE(result.ok()) << result.status.to_string();
  EXPECT_EQ(result.stats.tasks_submitted, 4u);  // 1 alloc + 3 blocks
}

TEST(ScalarData, SubmitsAsManySquareTasksAsTheKernelCounted) {
  Problem problem;
  const RunResult result = run_once("scalar_data", "Default", &problem);
  ASSERT_TRUE(result.ok()) << result.status.to_string();
  const std::int32_t count = problem.data<std::int32_t>(1)[0];
  EXPECT_GT(count, 0);
  EXPECT_EQ(result.stats.tasks_submitted, static_cast<std::uint64_t>(count) + 3);
}

TEST(PagedAttention, BadContextLengthFailsTheRunAndLeavesTheOutputAlone) {
  const Example* example = find_example("paged_attention");
  KernelRegistry kernels;
  example->register_kernels(kernels);
  Runtime runtime(small_config(), std::move(kernels));
  Problem problem = example->make_problem(0, 5);
  problem.data<std::int32_t>(4)[0] = 100000;  // context_lens[0] beyond the block table
  std::fill(problem.data<float>(5).begin(), problem.data<float>(5).end(), 7.0f);
  const RunResult result = runtime.run(example->orchestration, problem.run_args());
  EXPECT_EQ(result.status.code, ErrorCode::invalid_args) << result.status.to_string();
  EXPECT_NE(result.status.message.find("context_lens"), std::string::npos) << result.status.message;
  EXPECT_EQ(problem.data<float>(5)[0], 7.0f) << "outputs must not be copied back after an error";
}

// paged_attention_pattern (each tile's full blocks one TaskPattern): a block table entry outside
// the cache ends the run with the example's own message, the one paged_attention gives, with the
// loop analysis on and off (the pattern loop's view error is not what the user sees).
TEST(PagedAttentionPattern, BadBlockTableEntryIsTheExamplesError) {
  for (const std::int32_t bad : {-1, 1 << 20}) {
    for (const bool analysis : {true, false}) {
      std::string message[2];
      int k = 0;
      for (const char* name : {"paged_attention", "paged_attention_pattern"}) {
        const Example* example = find_example(name);
        KernelRegistry kernels;
        example->register_kernels(kernels);
        RuntimeConfig config = small_config();
        config.parallel_for_analysis = analysis;
        Runtime runtime(config, std::move(kernels));
        Problem problem = example->make_problem(0, 5);
        problem.data<std::int32_t>(3)[1] = bad;  // block_table[0, 1]: a full block of request 0
        const RunResult result = runtime.run(example->orchestration, problem.run_args());
        EXPECT_EQ(result.status.code, ErrorCode::invalid_args) << name;
        message[k++] = result.status.message;
      }
      EXPECT_NE(message[1].find("block_table[0, 1] = " + std::to_string(bad) +
                                " is not a block of the cache"),
                std::string::npos)
          << message[1];
      EXPECT_EQ(message[0], message[1]);
    }
  }
}

// A paged attention case built as `tmr run --param` builds it (base Case1: 16 heads, head_dim
// 16, block size 16), run once on `platform` with parallel_for analysis on or off and events
// recorded; the golden check's failures go to *failed.
RunResult run_attention(const std::string& example_name, const CaseParams& params,
                        PlatformKind platform, bool analysis, std::string* failed) {
  const Example* example = find_example(example_name);
  KernelRegistry kernels;
  example->register_kernels(kernels);
  RuntimeConfig config = small_config();
  config.platform = platform;
  config.record_events = true;
  config.parallel_for_analysis = analysis;
  Runtime runtime(config, std::move(kernels));
  Problem problem = example->make_param_case(0, params).make_problem(7);
  const RunResult result = runtime.run(example->orchestration, problem.run_args());
  *failed = failures(problem.check());
  return result;
}

// Every task's producers, by submission sequence, from the recorded trace.
std::vector<std::vector<std::uint64_t>> producers_of(const RunResult& result) {
  std::vector<std::vector<std::uint64_t>> producers;
  for (const TaskEvent& task : result.trace->tasks) {
    if (producers.size() <= task.sequence) producers.resize(task.sequence + 1);
    std::vector<std::uint64_t> sorted = task.producers;
    std::sort(sorted.begin(), sorted.end());
    producers[task.sequence] = std::move(sorted);
  }
  return producers;
}

// Per task (by sequence), the producers that were certainly live when it was submitted in both
// runs: finished after its submit in each. On the threads platform a producer that finished
// earlier may have retired by then and is then (rightly) not reported, in either run; which ones
// did depends on timing, so only the certainly-live ones must agree between two runs.
std::vector<std::vector<std::uint64_t>> live_in_both(
    const RunResult& a, const RunResult& b,
    const std::vector<std::vector<std::uint64_t>>& producers) {
  const auto times = [](const RunResult& r) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> submit_complete;
    for (const TaskEvent& task : r.trace->tasks) {
      if (submit_complete.size() <= task.sequence) submit_complete.resize(task.sequence + 1);
      submit_complete[task.sequence] = {task.submit_ns, task.complete_ns};
    }
    return submit_complete;
  };
  const auto ta = times(a);
  const auto tb = times(b);
  std::vector<std::vector<std::uint64_t>> kept(producers.size());
  for (std::size_t t = 0; t < producers.size() && t < ta.size() && t < tb.size(); ++t) {
    for (const std::uint64_t p : producers[t]) {
      if (ta[p].second > ta[t].first && tb[p].second > tb[t].first) kept[t].push_back(p);
    }
  }
  return kept;
}

std::string reason_counts(const RunStats& stats) {
  std::string text;
  for (const auto& [reason, n] : stats.loop_fallback_reasons)
    text += reason + " x" + std::to_string(n) + "; ";
  return text;
}

class AttentionLoops : public ::testing::TestWithParam<PlatformKind> {};

// Equal context lengths: the request loop owns the analysis (one template of a whole request,
// its head-tile and block loops inside), and its reduced same-iteration edges are exactly the
// per-task map's: each online update waits for the previous one, not for every earlier one.
// On the sim (deterministic) the producer lists are equal; on threads, the producers certainly
// live at each submit in both runs are (live_in_both).
TEST_P(AttentionLoops, RequestLoopWiresTheSameEdgesAsThePerTaskPath) {
  const CaseParams params = {{"batch", "6"}, {"context_lens", "64"}};
  std::string failed_on;
  std::string failed_off;
  const RunResult on = run_attention("paged_attention", params, GetParam(), true, &failed_on);
  const RunResult off = run_attention("paged_attention", params, GetParam(), false, &failed_off);
  ASSERT_TRUE(on.ok()) << on.status.to_string();
  ASSERT_TRUE(off.ok()) << off.status.to_string();
  EXPECT_EQ(failed_on, "");
  EXPECT_EQ(failed_off, "");
  // The 4-block loops of requests 0 and 1 (learning) have 8 tasks left: too short to analyse.
  EXPECT_EQ(on.stats.loop_fallbacks, 2u) << reason_counts(on.stats);
  EXPECT_EQ(reason_counts(on.stats), "nested loop too short to repay its analysis x2; ");
  EXPECT_EQ(on.stats.loops_analysed, 1u);
  EXPECT_EQ(on.stats.loop_iterations_analysed, 4u);  // requests 2..5 (0 and 1 teach it)
  EXPECT_EQ(on.stats.loop_tasks_analysed, 4u * (1 + 4 * 4));
  const bool exact = GetParam() == PlatformKind::sim;
  const auto edges_on = exact ? producers_of(on) : live_in_both(on, off, producers_of(on));
  const auto edges_off = exact ? producers_of(off) : live_in_both(on, off, producers_of(off));
  ASSERT_EQ(edges_on.size(), edges_off.size());
  std::size_t count_on = 0;
  std::size_t count_off = 0;
  for (std::size_t t = 0; t < edges_on.size(); ++t) {
    EXPECT_EQ(edges_on[t], edges_off[t]) << "task " << t;
    count_on += edges_on[t].size();
    count_off += edges_off[t].size();
  }
  EXPECT_EQ(count_on, count_off);
  if (exact) {
    EXPECT_GT(count_on, 0u);
  }
}

// Different context lengths (block counts): the request loop gives up after its first two
// requests (their nested loops ran different lengths) and every later request's block loop
// analyses itself; the results still match the golden on both platforms.
TEST_P(AttentionLoops, UnequalContextLengthsFallBackToTheBlockLoops) {
  const CaseParams params = {{"batch", "6"}, {"context_lens", "64,48,64,80,33,64"}};
  for (const char* example : {"paged_attention", "paged_attention_mix"}) {
    std::string failed;
    const RunResult on = run_attention(example, params, GetParam(), true, &failed);
    ASSERT_TRUE(on.ok()) << example << ": " << on.status.to_string();
    EXPECT_EQ(failed, "") << example;
    // 1 request loop, and per request 1 head-tile loop and 1 block loop.
    EXPECT_EQ(on.stats.loops, 13u) << example;
    const std::map<std::string, std::uint64_t> reasons(on.stats.loop_fallback_reasons.begin(),
                                                       on.stats.loop_fallback_reasons.end());
    EXPECT_EQ(reasons.count("nested loops of different lengths") != 0
                  ? reasons.at("nested loops of different lengths")
                  : 0u,
              1u)
        << example << ": " << reason_counts(on.stats);
    // Requests 2..5 (4, 5, 3 and 4 blocks): their block loops analyse all but the first two
    // blocks. Request 4's last block is partial: paged_attention's softmax view of it differs
    // from the template (a fall-back, still exact), the MIX task takes it as a scalar.
    const bool mix = std::string(example) == "paged_attention_mix";
    EXPECT_EQ(on.stats.loops_analysed, mix ? 4u : 3u) << example << ": " << reason_counts(on.stats);
    EXPECT_EQ(on.stats.loop_iterations_analysed, mix ? 2u + 3u + 1u + 2u : 2u + 3u + 2u) << example;
  }
}

// Runs of one Runtime whose data change: from the third run on the request loop's kept template
// serves the run from its first request (every request analysed); another block table and other
// inputs (another seed) keep it; other context lengths (another block count per request) and
// another batch (another trip count) must not reuse a stale proof: they relearn, fall back or
// rebind. Every run matches the golden.
TEST_P(AttentionLoops, KeptTemplateStaysExactWhenLaterRunsChangeTheirData) {
  struct Run {
    const char* what;
    CaseParams params;
    std::uint64_t seed;
    std::uint64_t requests_analysed;  // 0: not checked
  };
  const Run runs[] = {
      {"first", {{"batch", "6"}, {"context_lens", "64"}}, 7, 4},
      {"second (rebinds)", {{"batch", "6"}, {"context_lens", "64"}}, 7, 5},
      {"third (from the start)", {{"batch", "6"}, {"context_lens", "64"}}, 7, 6},
      {"another block table", {{"batch", "6"}, {"context_lens", "64"}}, 11, 6},
      {"other context lengths", {{"batch", "6"}, {"context_lens", "64,48,64,80,33,64"}}, 7, 0},
      {"equal again", {{"batch", "6"}, {"context_lens", "64"}}, 13, 0},
      {"another batch", {{"batch", "5"}, {"context_lens", "64"}}, 7, 0},
  };
  for (const char* example_name : {"paged_attention", "paged_attention_mix"}) {
    const Example* example = find_example(example_name);
    KernelRegistry kernels;
    example->register_kernels(kernels);
    RuntimeConfig config = small_config();
    config.platform = GetParam();
    Runtime runtime(config, std::move(kernels));
    for (const Run& run : runs) {
      SCOPED_TRACE(std::string(example_name) + ", " + run.what);
      Problem problem = example->make_param_case(0, run.params).make_problem(run.seed);
      const RunResult r = runtime.run(example->orchestration, problem.run_args());
      ASSERT_TRUE(r.ok()) << r.status.to_string();
      EXPECT_EQ(failures(problem.check()), "");
      if (run.requests_analysed != 0) {
        // The request loop's analysed iterations (nested loops analyse only while it learns).
        EXPECT_GE(r.stats.loop_iterations_analysed, run.requests_analysed);
      }
      if (&run == runs + 2 || &run == runs + 3) {
        EXPECT_EQ(r.stats.loop_iterations_analysed, 6u) << reason_counts(r.stats);
        EXPECT_EQ(r.stats.loop_templates_rejected, 0u);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Platforms, AttentionLoops, tmr::testing::both_platforms(),
                         tmr::testing::platform_name);

TEST(Problem, CheckReportsMismatchesAndCorruptionIsCaught) {
  Problem problem;
  const int out =
      problem.add_tensor("out", {3}, Problem::Direction::out, std::vector<float>{1, 2, 3});
  problem.expect(out, {1.0, 2.0, 3.5}, {0.1, 0.0});
  std::vector<OutputCheck> checks = problem.check();
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0].mismatched, 1u);
  EXPECT_EQ(checks[0].first_mismatch, 2u);
  EXPECT_DOUBLE_EQ(checks[0].max_abs_error, 0.5);
  problem.data<float>(out)[2] = 3.5f;
  EXPECT_TRUE(problem.check()[0].passed());
  problem.corrupt_first_output();
  EXPECT_FALSE(problem.check()[0].passed());
  problem.reset_outputs();
  EXPECT_EQ(problem.data<float>(out)[2], 3.0f);
}

}  // namespace
}  // namespace tmr::examples
