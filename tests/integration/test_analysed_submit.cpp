// The analysed submit path (OrchestratorCore::submit_analysed, docs/design.md "parallel_for"):
// tasks a parallel_for template covers are built from their position's prepared record and, for
// direct positions, wired straight from the template's producer list. On both platforms, with and
// without recorded traces: results equal a sequential run with fresh outputs, chains and direct
// positions; a full task window or dependency pool makes it wait; an open scope that outgrows
// the heap, a bad argument and a throwing kernel in an analysed iteration end the run with the
// usual named error.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/orchestrator_core.hpp"
#include "support/ended_scope_loop.hpp"
#include "support/loop_tests.hpp"
#include "support/platforms.hpp"
#include "tmr/tmr.hpp"

namespace tmr::testing {
namespace {

RuntimeConfig analysed_config(PlatformKind platform, bool record) {
  RuntimeConfig config = loop_config(platform);
  config.record_events = record;
  return config;
}

void plus_one(const KernelArgs& a) {
  const Tensor& in = a.tensor(0);
  const Tensor& out = a.tensor(a.tensor_count() - 1);
  const auto* src = in.data_as<float>();
  auto* dst = out.data_as<float>();
  for (std::uint32_t k = 0; k < in.dim(0); ++k)
    dst[k * out.stride(0)] = src[k * in.stride(0)] + 1.0f;
}
// out = a + b (three 1-D tensors).
void add_two(const KernelArgs& a) {
  const Tensor& x = a.tensor(0);
  const Tensor& y = a.tensor(1);
  const Tensor& out = a.tensor(2);
  for (std::uint32_t k = 0; k < x.dim(0); ++k) {
    out.data_as<float>()[k * out.stride(0)] =
        x.data_as<float>()[k * x.stride(0)] + y.data_as<float>()[k * y.stride(0)];
  }
}
void throws(const KernelArgs&) {
  throw std::runtime_error("kernel failed on purpose");
}
// Held until `released` (or 5 s: a test never hangs), so the tasks behind it stay live. An SPMD
// task's blocks are all held, and block 0 alone writes (the blocks would race on the output).
std::atomic<bool> released{true};
void held_plus_one(const KernelArgs& a) {
  wait_until_open(released);
  if (a.block_index() == 0) plus_one(a);
}

// out = in + 1 over 1 x n row views (2-D).
// A row of floats (any 4-byte dtype read as f32) along its one long logical dimension, plus one;
// plus two when either view is transposed (so the kernel shows it saw the submitted view).
void row_plus_one(const KernelArgs& a) {
  const Tensor& in = a.tensor(0);
  const Tensor& out = a.tensor(a.tensor_count() - 1);
  const int di = in.dim(0) > 1 ? 0 : 1;
  const int dout = out.dim(0) > 1 ? 0 : 1;
  const float add = in.perm(0) != 0 || out.perm(0) != 0 ? 2.0f : 1.0f;
  const auto* x = static_cast<const float*>(in.data());
  auto* y = static_cast<float*>(out.data());
  for (std::uint32_t k = 0; k < in.dim(di); ++k)
    y[k * out.stride(dout)] = x[k * in.stride(di)] + add;
}

// out = in + 1 over every element of a rank-3 view.
void plus_one_3d(const KernelArgs& a) {
  const Tensor& in = a.tensor(0);
  const Tensor& out = a.tensor(a.tensor_count() - 1);
  const auto* x = static_cast<const float*>(in.data());
  auto* y = static_cast<float*>(out.data());
  for (std::uint32_t p = 0; p < in.dim(0); ++p) {
    for (std::uint32_t q = 0; q < in.dim(1); ++q) {
      for (std::uint32_t r = 0; r < in.dim(2); ++r) {
        y[p * out.stride(0) + q * out.stride(1) + r * out.stride(2)] =
            x[p * in.stride(0) + q * in.stride(1) + r * in.stride(2)] + 1.0f;
      }
    }
  }
}

// out = in * K or in + K (1-D), one kernel per K: which kernel ran shows in the result.
template <int K, bool Add>
void scale_or_shift(const KernelArgs& a) {
  const Tensor& in = a.tensor(0);
  const Tensor& out = a.tensor(a.tensor_count() - 1);
  for (std::uint32_t k = 0; k < in.dim(0); ++k) {
    const float v = in.data_as<float>()[k * in.stride(0)];
    out.data_as<float>()[k * out.stride(0)] = Add ? v + K : v * K;
  }
}

struct Fixture {
  Fixture(PlatformKind platform, bool record, RingConfig ring = few_tasks_ring())
      : runtime([&] {
          RuntimeConfig c = analysed_config(platform, record);
          c.ring = ring;
          return c;
        }()) {
    inc = runtime.kernels().add("plus_one", CoreType::aiv, &plus_one);
    add = runtime.kernels().add("add_two", CoreType::aiv, &add_two);
    boom = runtime.kernels().add("throws", CoreType::aiv, &throws);
    held = runtime.kernels().add("held_plus_one", CoreType::aiv, &held_plus_one);
    accum = runtime.kernels().add("accumulate", CoreType::aiv, &accumulate);
  }
  Runtime runtime;
  KernelId inc, add, boom, held, accum;
};

// `x` filled 1, 2, ..., `period`, 1, 2, ... as the run's input 0 and `y` as its output 1.
RunArgs input_and_output(std::vector<float>& x, std::vector<float>& y, std::size_t period) {
  for (std::size_t k = 0; k < x.size(); ++k)
    x[k] = static_cast<float>(k % period + 1);
  RunArgs args;
  args.input(x.data(), {static_cast<std::uint32_t>(x.size())}, DType::f32);
  args.output(y.data(), {static_cast<std::uint32_t>(y.size())}, DType::f32);
  return args;
}

struct Param {
  PlatformKind platform;
  bool record;
  // The replay's exact compare in 32-byte words where the CPU has AVX2 (the default), or the
  // 16-byte compare on any CPU (detail::set_wide_replay_compare(false)): both must decide alike.
  bool wide = true;
};

class ParallelForAnalysedSubmit : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override { detail::set_wide_replay_compare(GetParam().wide); }
  void TearDown() override { detail::set_wide_replay_compare(true); }
};

// Three positions per iteration: a direct slice write reading a fixed external buffer written
// before the loop (its producer comes from the template's list), a task making a fresh output,
// and its consumer writing the result row (a buffer made by the loop: not direct).
TEST_P(ParallelForAnalysedSubmit, FreshOutputsChainsAndDirectPositionsMatchSequential) {
  Fixture f(GetParam().platform, GetParam().record);
  constexpr std::uint32_t kRows = 64;
  constexpr std::uint32_t kCols = 8;
  std::vector<float> x(kRows * kCols), g(kCols, 2.0f), y(kRows * kCols, 0.0f),
      z(kRows * kCols, 0.0f);
  for (std::size_t k = 0; k < x.size(); ++k)
    x[k] = static_cast<float>(k % 7);
  RunArgs args;
  args.input(x.data(), {kRows, kCols}, DType::f32);
  args.inout(g.data(), {kCols}, DType::f32);
  args.output(y.data(), {kRows, kCols}, DType::f32);
  args.output(z.data(), {kRows, kCols}, DType::f32);
  for (const bool scope_per_iteration : {false, true}) {
    std::fill(g.begin(), g.end(), 2.0f);
    const RunResult r = f.runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          o.submit_aiv(f.inc, Args().in(a.tensor(1)).out_existing(a.tensor(1)));  // g = 3
          auto body = [&](Orchestrator& o, std::int64_t i) {
            const auto row = static_cast<std::uint32_t>(i);
            const Tensor xr = a.tensor(0).view({1, kCols}, {row, 0}).reshape({kCols});
            // y[i] = x[i] + g (direct: every visited access is outer, in its family)
            o.submit_aiv(
                f.add, Args()
                           .in(xr)
                           .in(a.tensor(1))
                           .out_existing(a.tensor(2).view({1, kCols}, {row, 0}).reshape({kCols})));
            // t = x[i] + 1 (fresh), z[i] = t + 1
            const TaskOutputs t =
                o.submit_aiv(f.inc, Args().in(xr).out(TensorSpec({kCols}, DType::f32)));
            if (!t.valid()) return;
            o.submit_aiv(f.inc, Args().in(t[0]).out_existing(
                                    a.tensor(3).view({1, kCols}, {row, 0}).reshape({kCols})));
          };
          LoopOptions options;
          options.scope_per_iteration = scope_per_iteration;
          o.parallel_for(kRows, body, options);
        },
        args);
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    // The second run takes the first's template, kept rebased on iteration 0, before its first
    // iteration (LoopDriver::try_kept_from_start): every task analysed.
    EXPECT_EQ(r.stats.loop_tasks_analysed, 3u * (scope_per_iteration ? kRows : kRows - 2));
    for (std::size_t k = 0; k < x.size(); ++k) {
      ASSERT_EQ(y[k], x[k] + 3.0f) << "element " << k;
      ASSERT_EQ(z[k], x[k] + 2.0f) << "element " << k;
    }
    if (GetParam().record) {
      // The direct position names the task that wrote g (sequence 0) while it is live, and no
      // other task; the consumer of t names its maker.
      for (const TaskEvent& e : r.trace->tasks) {
        if (e.sequence == 0) continue;
        const std::uint64_t position = (e.sequence - 1) % 3;
        if (position == 0) {
          EXPECT_LE(e.producers.size(), 1u) << "task " << e.sequence;
          if (!e.producers.empty()) {
            EXPECT_EQ(e.producers[0], 0u) << "task " << e.sequence;
          }
        } else if (position == 1) {
          EXPECT_TRUE(e.producers.empty()) << "task " << e.sequence;
        } else {
          EXPECT_LE(e.producers.size(), 1u) << "task " << e.sequence;
          if (!e.producers.empty()) {
            EXPECT_EQ(e.producers[0], e.sequence - 1) << "task " << e.sequence;
          }
        }
      }
    }
  }
}

// Positions whose arguments are buffers the same iteration made or a read through a permutation
// (its family closes: the rows jump) are wired from their steps (TaskPlan::created): each names
// its creators, the alloc included where no template edge does (the second accumulation and the
// final read of the accumulator follow other writers of it), and, when a held writer of the
// whole source runs before the loop, every permuted read names that writer (its route has
// external entries: not created).
TEST_P(ParallelForAnalysedSubmit, CreatedPositionsNameTheirCreatorsAndTheWriterBeforeTheLoop) {
  Fixture f(GetParam().platform, GetParam().record);
  constexpr std::uint32_t kRows = 12;
  constexpr std::uint32_t kCols = 4;
  constexpr std::uint64_t kPerIteration = 5;
  const auto permuted = [](std::uint32_t i) { return (i * 5) % kRows; };
  for (const bool writer : {false, true}) {
    std::vector<float> x(kRows * kCols), y(kRows * kCols, 0.0f);
    for (std::size_t k = 0; k < x.size(); ++k)
      x[k] = static_cast<float>(k % 7 + 1);
    const std::vector<float> x0 = x;
    RunArgs args;
    args.inout(x.data(), {kRows * kCols}, DType::f32);
    args.output(y.data(), {kRows * kCols}, DType::f32);
    released = !writer;
    std::thread opener([] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      released = true;
    });
    const RunResult r = f.runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          // x += 1, held: live while the loop is submitted.
          if (writer) o.submit_aiv(f.held, Args().in(a.tensor(0)).out_existing(a.tensor(0)));
          LoopOptions options;
          options.scope_per_iteration = true;
          o.parallel_for(
              kRows,
              [&](Orchestrator& o, std::int64_t i) {
                const auto row = static_cast<std::uint32_t>(i);
                const TaskOutputs acc =
                    o.alloc(Args().out(TensorSpec({kCols}, DType::f32).fill(0.0f)));
                if (!acc.valid()) return;
                const TaskOutputs t =
                    o.submit_aiv(f.inc, Args()
                                            .in(a.tensor(0).view({kCols}, {permuted(row) * kCols}))
                                            .out(TensorSpec({kCols}, DType::f32)));
                if (!t.valid()) return;
                o.submit_aiv(f.accum, Args().in(t[0]).inout(acc[0]));  // acc = t
                o.submit_aiv(f.accum, Args().in(t[0]).inout(acc[0]));  // acc = 2t
                o.submit_aiv(f.inc, Args().in(acc[0]).out_existing(
                                        a.tensor(1).view({kCols}, {row * kCols})));
              },
              options);
        },
        args);
    opener.join();
    released = true;
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(r.stats.loop_fallbacks, 0u);
    EXPECT_GE(r.stats.loop_tasks_analysed, kPerIteration * (kRows - 3));
    const float w = writer ? 1.0f : 0.0f;
    for (std::uint32_t row = 0; row < kRows; ++row) {
      for (std::uint32_t c = 0; c < kCols; ++c) {
        const float t = x0[permuted(row) * kCols + c] + w + 1.0f;
        ASSERT_EQ(y[row * kCols + c], 2.0f * t + 1.0f) << "row " << row << " column " << c;
      }
    }
    if (!GetParam().record) continue;
    const std::uint64_t first = writer ? 1 : 0;
    std::size_t checked = 0;
    for (const TaskEvent& e : r.trace->tasks) {
      if (e.sequence < first) continue;
      const std::uint64_t position = (e.sequence - first) % kPerIteration;
      const std::uint64_t alloc = e.sequence - position;
      std::vector<std::uint64_t> got = e.producers;
      std::sort(got.begin(), got.end());
      // Live for certain: the writer (held, threads), the alloc and the maker of t (held by the
      // scope).
      std::vector<std::uint64_t> must;
      std::vector<std::uint64_t> may;  // besides: producers that may have retired
      // The sim lets the held writer finish in virtual time: named only while it lives there.
      if (position == 1 && writer) (GetParam().platform == PlatformKind::sim ? may : must) = {0};
      if (position == 2) must = {alloc, alloc + 1};
      if (position == 3) must = {alloc, alloc + 1}, may = {alloc + 2};
      if (position == 4) must = {alloc}, may = {alloc + 3};
      for (const std::uint64_t p : must) {
        EXPECT_TRUE(std::binary_search(got.begin(), got.end(), p))
            << "task " << e.sequence << " (position " << position << ") misses " << p;
      }
      for (const std::uint64_t p : got) {
        EXPECT_TRUE(std::find(must.begin(), must.end(), p) != must.end() ||
                    std::find(may.begin(), may.end(), p) != may.end())
            << "task " << e.sequence << " (position " << position << ") names " << p;
      }
      ++checked;
    }
    EXPECT_EQ(checked, kPerIteration * kRows);
  }
}

// The replay check of a buffer the loop made compares the buffer, not only its creator and view:
// from iteration kSwitch on the consumer reads the other output of the same alloc (same shape,
// same view), which is not the template's record, so the loop falls back there (and every
// result is still right).
TEST_P(ParallelForAnalysedSubmit, AnotherOutputOfTheSameCreatorIsNotTheTemplatesBuffer) {
  Fixture f(GetParam().platform, GetParam().record);
  constexpr std::uint32_t kRows = 32;
  constexpr std::uint32_t kCols = 8;
  constexpr std::uint32_t kSwitch = 20;
  std::vector<float> z(kRows * kCols, 0.0f);
  RunArgs args;
  args.output(z.data(), {kRows, kCols}, DType::f32);
  const RunResult r = f.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
          const auto row = static_cast<std::uint32_t>(i);
          const TaskOutputs made = o.alloc(Args()
                                               .out(TensorSpec({kCols}, DType::f32).fill(1.0f))
                                               .out(TensorSpec({kCols}, DType::f32).fill(5.0f)));
          if (!made.valid()) return;
          const Tensor& source = row < kSwitch ? made[0] : made[1];
          o.submit_aiv(f.inc, Args().in(source).out_existing(
                                  a.tensor(0).view({1, kCols}, {row, 0}).reshape({kCols})));
        });
      },
      args);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.stats.loop_fallbacks, 1u);
  EXPECT_EQ(r.stats.loop_tasks_analysed, 2u * (kSwitch - 2) + 1u);  // up to the alloc of kSwitch
  for (std::uint32_t row = 0; row < kRows; ++row) {
    for (std::uint32_t c = 0; c < kCols; ++c)
      ASSERT_EQ(z[row * kCols + c], row < kSwitch ? 2.0f : 6.0f) << "row " << row;
  }
}

// An alloc with as many arguments as the replayed kernel task of its position is not replayed as
// that task: a replayed (fast) position is a kernel task, whose kernels the alloc's (none) and
// whose tags the alloc's (`out` only) differ from, so the replay check refuses it (with no test of
// its own for an inline task) and the loop falls back; the alloc's outputs and the rows are right.
TEST_P(ParallelForAnalysedSubmit, AllocAtAReplayedKernelPositionIsNotReplayed) {
  Fixture f(GetParam().platform, GetParam().record);
  constexpr std::uint32_t kRows = 32;
  constexpr std::uint32_t kCols = 8;
  constexpr std::uint32_t kSwitch = 20;
  std::vector<float> x(kRows * kCols);
  std::vector<float> z(kRows * kCols, 0.0f);
  for (std::size_t k = 0; k < x.size(); ++k)
    x[k] = static_cast<float>(k);
  RunArgs args;
  args.input(x.data(), {kRows, kCols}, DType::f32);
  args.output(z.data(), {kRows, kCols}, DType::f32);
  const RunResult r = f.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
          const auto row = static_cast<std::uint32_t>(i);
          const Tensor out = a.tensor(1).view({1, kCols}, {row, 0}).reshape({kCols});
          if (row != kSwitch) {
            o.submit_aiv(f.inc, Args()
                                    .in(a.tensor(0).view({1, kCols}, {row, 0}).reshape({kCols}))
                                    .out_existing(out));
            return;
          }
          // Two arguments, as the template's task has, at its position.
          const TaskOutputs made = o.alloc(Args()
                                               .out(TensorSpec({kCols}, DType::f32).fill(7.0f))
                                               .out(TensorSpec({kCols}, DType::f32).fill(9.0f)));
          ASSERT_TRUE(made.valid());
          ASSERT_EQ(made.size(), 2);
          o.submit_aiv(f.inc, Args().in(made[1]).out_existing(out));
        });
      },
      args);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_GE(r.stats.loop_fallbacks, 1u);
  EXPECT_GT(r.stats.loop_tasks_analysed, 0u);  // the position was replayed before kSwitch
  for (std::uint32_t row = 0; row < kRows; ++row) {
    for (std::uint32_t c = 0; c < kCols; ++c) {
      ASSERT_EQ(z[row * kCols + c], row == kSwitch ? 10.0f : x[row * kCols + c] + 1.0f)
          << "row " << row << " column " << c;
    }
  }
}

// An analysed task with a fresh output that fails after its outputs were made (it names a buffer
// whose creator's scope has ended, from iteration 5 on) returns no outputs, as a failing plain
// submit does, and the run ends with the named error.
TEST_P(ParallelForAnalysedSubmit, FailedAnalysedTaskReturnsNoOutputs) {
  Fixture f(GetParam().platform, GetParam().record);
  std::int64_t failed_at = -1;
  bool failed_seen = false;
  bool failed_outputs_valid = true;
  int failed_outputs_size = -1;
  int analysed_outputs_size = 0;
  const RunResult r = run_ended_scope_loop(
      f.runtime, f.inc,
      [&](Orchestrator& o, std::int64_t i, const Tensor& made, const Tensor& out_row) {
        const TaskOutputs g = o.submit_aiv(
            f.inc,
            Args().in(made).out(TensorSpec(out_row.shape(), DType::f32)).out_existing(out_row));
        if (i == 3) analysed_outputs_size = g.size();
        if (o.fatal() && !failed_seen) {
          failed_seen = true;
          failed_outputs_valid = g.valid();
          failed_outputs_size = g.size();
        }
      },
      &failed_at);
  EXPECT_EQ(r.status.code, ErrorCode::invalid_args) << r.status.to_string();
  EXPECT_NE(r.status.message.find("whose scope has ended"), std::string::npos)
      << r.status.to_string();
  EXPECT_EQ(analysed_outputs_size, 1);  // an analysed iteration's consumer has its output
  EXPECT_EQ(failed_at, 5);
  EXPECT_FALSE(failed_outputs_valid);
  EXPECT_EQ(failed_outputs_size, 0);
}

// A submit after an error is latched, at a replayed position of a steady analysed loop (the
// public submit's inline replay entry, OrchestratorCore::replay_ready), is a no-op as every
// submit then is: no task (invalid outputs), its row not written; the loop stops after it. Its
// read of `g` has a held writer on threads, so the position is pinned there (the replayed
// path that tests no error itself).
TEST_P(ParallelForAnalysedSubmit, SubmitAfterALatchedErrorAtAReplayedPositionIsANoOp) {
  Fixture f(GetParam().platform, GetParam().record);
  std::vector<float> buf(64, 0.0f), g(1, 1.0f);
  for (std::size_t k = 0; k < 32; ++k)
    buf[k] = static_cast<float>(k + 1);
  RunArgs args;
  args.inout(buf.data(), {64}, DType::f32);
  args.input(g.data(), {1}, DType::f32);
  constexpr std::int64_t kBad = 12;
  bool before_valid = false;
  bool after_valid = true;
  std::int64_t last = -1;
  released = GetParam().platform != PlatformKind::threads;
  const RunResult r = f.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        o.submit_aiv(f.held, Args().in(a.tensor(1)).out_existing(a.tensor(1)));  // g = 2
        o.parallel_for(20, [&](Orchestrator& o, std::int64_t i) {
          last = i;
          const auto k = static_cast<std::uint32_t>(i);
          if (i == kBad) o.report_fatal(ErrorCode::invalid_args, "latched on purpose");
          const TaskOutputs t =
              o.submit_aiv(f.add, Args()
                                      .in(a.tensor(0).view({1}, {k}))
                                      .in(a.tensor(1))
                                      .out_existing(a.tensor(0).view({1}, {32 + k})));
          if (i == kBad - 1) before_valid = t.valid();
          if (i == kBad) after_valid = t.valid();
        });
        released = true;
      },
      args);
  released = true;
  EXPECT_EQ(r.status.code, ErrorCode::invalid_args) << r.status.to_string();
  EXPECT_NE(r.status.message.find("latched on purpose"), std::string::npos) << r.status.to_string();
  EXPECT_GT(r.stats.loop_tasks_analysed, 0u);
  EXPECT_TRUE(before_valid);  // a replayed task
  EXPECT_FALSE(after_valid);
  EXPECT_EQ(last, kBad);
  EXPECT_EQ(buf[32 + kBad], 0.0f);
}

// Tasks that alternate among as many kernels as submit() remembers plans for (4), and among more
// (6: every plan is replaced before it is used again), AIV and AIC kernels, one per row, in a
// plain loop and in a parallel_for, each run their own kernel; afterwards a kernel in the wrong
// slot still gets the named error.
TEST_P(ParallelForAnalysedSubmit, KernelsAlternatingAmongAFewRunTheirOwnPlans) {
  Fixture f(GetParam().platform, GetParam().record);
  KernelRegistry& registry = f.runtime.kernels();
  const KernelId kernels[6] = {registry.add("times2", CoreType::aiv, &scale_or_shift<2, false>),
                               registry.add("times3", CoreType::aiv, &scale_or_shift<3, false>),
                               registry.add("plus10_aic", CoreType::aic, &scale_or_shift<10, true>),
                               registry.add("times5", CoreType::aiv, &scale_or_shift<5, false>),
                               registry.add("plus20_aic", CoreType::aic, &scale_or_shift<20, true>),
                               registry.add("times7", CoreType::aiv, &scale_or_shift<7, false>)};
  const auto expected = [](int kernel, float v) {
    switch (kernel) {
      case 0:
        return v * 2;
      case 1:
        return v * 3;
      case 2:
        return v + 10;
      case 3:
        return v * 5;
      case 4:
        return v + 20;
      default:
        return v * 7;
    }
  };
  constexpr std::uint32_t kRows = 48;
  constexpr std::uint32_t kCols = 4;
  std::vector<float> x(kRows * kCols), y(kRows * kCols, 0.0f);
  for (std::size_t k = 0; k < x.size(); ++k)
    x[k] = static_cast<float>(k % 5 + 1);
  for (const std::uint32_t cycle : {4u, 6u}) {
    for (const bool analysed : {false, true}) {
      std::fill(y.begin(), y.end(), 0.0f);
      RunArgs args;
      args.input(x.data(), {kRows, kCols}, DType::f32);
      args.output(y.data(), {kRows, kCols}, DType::f32);
      const RunResult r = f.runtime.run(
          [&](Orchestrator& o, const OrchestrationArgs& a) {
            const auto body = [&](Orchestrator& o, std::int64_t i) {
              const auto row = static_cast<std::uint32_t>(i);
              const KernelId kernel = kernels[row % cycle];
              const Args task =
                  Args()
                      .in(a.tensor(0).view({1, kCols}, {row, 0}).reshape({kCols}))
                      .out_existing(a.tensor(1).view({1, kCols}, {row, 0}).reshape({kCols}));
              if (row % cycle == 2 || row % cycle == 4) {
                o.submit_aic(kernel, task);
              } else {
                o.submit_aiv(kernel, task);
              }
            };
            if (analysed) {
              o.parallel_for(kRows, body);
            } else {
              for (std::uint32_t i = 0; i < kRows; ++i)
                body(o, i);
            }
          },
          args);
      ASSERT_TRUE(r.ok()) << r.status.to_string();
      for (std::uint32_t row = 0; row < kRows; ++row) {
        for (std::uint32_t c = 0; c < kCols; ++c) {
          const std::size_t k = row * kCols + c;
          ASSERT_EQ(y[k], expected(static_cast<int>(row % cycle), x[k]))
              << "row " << row << ", cycle " << cycle << (analysed ? ", parallel_for" : "");
        }
      }
    }
  }
  // After plans for these kernels were made: an AIV kernel given as the AIC one is named.
  std::vector<float> cell(4, 1.0f);  // outlives the run's tasks
  const RunResult bad = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor t = Tensor::wrap(cell.data(), {4}, DType::f32);
    o.submit_aiv(kernels[0], Args().in(t).out_existing(t));
    o.submit_aic(kernels[2], Args().in(t).out_existing(t));
    o.submit_aic(kernels[0], Args().in(t).out_existing(t));
  });
  EXPECT_EQ(bad.status.code, ErrorCode::invalid_args) << bad.status.to_string();
  EXPECT_NE(bad.status.message.find("times2"), std::string::npos) << bad.status.to_string();
}

// Mix tasks whose kernels differ only in the second AIV kernel (MixKernels::aiv1) from row
// kSwitch on: the submit takes a new plan (the dispatcher's kernel compare covers aiv1) and the
// position departs (the replay check's does), so each row shows the kernel it was given; in a
// plain loop and under parallel_for.
TEST_P(ParallelForAnalysedSubmit, ASecondAivKernelAloneTellsMixTasksApart) {
  Fixture f(GetParam().platform, GetParam().record);
  KernelRegistry& registry = f.runtime.kernels();
  // Over 1 x n row views: aiv0 writes the middle tensor (times 2), aiv1 the last (plus 10 or
  // plus 20).
  const auto row_of = [](const KernelArgs& a, int i) { return a.tensor(i).data_as<float>(); };
  const KernelId middle = registry.add("middle_times2", CoreType::aiv, [=](const KernelArgs& a) {
    for (std::uint32_t k = 0; k < a.tensor(0).dim(1); ++k)
      row_of(a, 1)[k] = row_of(a, 0)[k] * 2;
  });
  const KernelId plus10 = registry.add("last_plus10", CoreType::aiv, [=](const KernelArgs& a) {
    for (std::uint32_t k = 0; k < a.tensor(0).dim(1); ++k)
      row_of(a, 2)[k] = row_of(a, 0)[k] + 10;
  });
  const KernelId plus20 = registry.add("last_plus20", CoreType::aiv, [=](const KernelArgs& a) {
    for (std::uint32_t k = 0; k < a.tensor(0).dim(1); ++k)
      row_of(a, 2)[k] = row_of(a, 0)[k] + 20;
  });
  constexpr std::uint32_t kRows = 24;
  constexpr std::uint32_t kCols = 4;
  constexpr std::uint32_t kSwitch = 14;
  std::vector<float> x(kRows * kCols), mid(x.size()), last(x.size());
  for (std::size_t k = 0; k < x.size(); ++k)
    x[k] = static_cast<float>(k % 7 + 1);
  for (const bool analysed : {false, true}) {
    std::fill(mid.begin(), mid.end(), 0.0f);
    std::fill(last.begin(), last.end(), 0.0f);
    const RunResult r = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Tensor tx = Tensor::wrap(x.data(), {kRows, kCols}, DType::f32);
      const Tensor tm = Tensor::wrap(mid.data(), {kRows, kCols}, DType::f32);
      const Tensor tl = Tensor::wrap(last.data(), {kRows, kCols}, DType::f32);
      const auto body = [&](Orchestrator& o, std::int64_t i) {
        const auto row = static_cast<std::uint32_t>(i);
        const MixKernels kernels{kNoKernel, middle, row < kSwitch ? plus10 : plus20};
        o.submit(kernels, Args()
                              .in(tx.view({1, kCols}, {row, 0}))
                              .out_existing(tm.view({1, kCols}, {row, 0}))
                              .out_existing(tl.view({1, kCols}, {row, 0})));
      };
      if (analysed) {
        o.parallel_for(kRows, body);
      } else {
        for (std::uint32_t i = 0; i < kRows; ++i)
          body(o, i);
      }
    });
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    if (analysed) {
      EXPECT_EQ(r.stats.loop_fallbacks, 1u);
      EXPECT_EQ(r.stats.loop_tasks_analysed, kSwitch - 2);
    }
    for (std::uint32_t row = 0; row < kRows; ++row) {
      for (std::uint32_t c = 0; c < kCols; ++c) {
        const std::size_t k = row * kCols + c;
        ASSERT_EQ(mid[k], x[k] * 2) << "row " << row << (analysed ? ", parallel_for" : "");
        ASSERT_EQ(last[k], x[k] + (row < kSwitch ? 10.0f : 20.0f))
            << "row " << row << (analysed ? ", parallel_for" : "");
      }
    }
  }
}

// A window of 16 task slots and a dependency pool of 16 records under a loop of 400 direct
// tasks, each behind one held producer: the analysed path waits for room (the generic wait)
// and every result is right.
TEST_P(ParallelForAnalysedSubmit, FullWindowAndDependencyPoolMakeItWait) {
  RingConfig ring;
  ring.task_window = 16;
  ring.heap_bytes = 16384;
  ring.dep_pool = 16;
  Fixture f(GetParam().platform, GetParam().record, ring);
  constexpr std::uint32_t kRows = 400;
  std::vector<float> x(kRows, 1.0f), g(1, 0.0f), y(kRows, 0.0f);
  RunArgs args;
  args.input(x.data(), {kRows}, DType::f32);
  args.inout(g.data(), {1}, DType::f32);
  args.output(y.data(), {kRows}, DType::f32);
  released = false;
  std::thread opener([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    released = true;
  });
  const RunResult r = f.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        o.submit_aiv(f.held, Args().in(a.tensor(1)).out_existing(a.tensor(1)));  // g = 1
        o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
          const auto k = static_cast<std::uint32_t>(i);
          o.submit_aiv(f.add, Args()
                                  .in(a.tensor(0).view({1}, {k}))
                                  .in(a.tensor(1))
                                  .out_existing(a.tensor(2).view({1}, {k})));
        });
      },
      args);
  opener.join();
  released = true;
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.stats.loop_tasks_analysed, kRows - 2);
  for (std::uint32_t k = 0; k < kRows; ++k)
    ASSERT_EQ(y[k], 2.0f) << "row " << k;
}

// Fresh outputs held by the loop's open scope outgrow the ring heap in an analysed iteration:
// check_fits names it (scope_deadlock) as for a plain submit.
TEST_P(ParallelForAnalysedSubmit, OpenScopeOutgrowingTheHeapIsNamed) {
  RingConfig ring = few_tasks_ring();  // 16 tasks before the heap is full
  ring.heap_bytes = 16384;
  Fixture f(GetParam().platform, GetParam().record, ring);
  std::vector<float> x(64 * 256, 1.0f);
  RunArgs args;
  args.input(x.data(), {64, 256}, DType::f32);
  std::int64_t failed_at = -1;
  const RunResult r = f.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        o.parallel_for(64, [&](Orchestrator& o, std::int64_t i) {
          const auto k = static_cast<std::uint32_t>(i);
          o.submit_aiv(f.inc, Args()
                                  .in(a.tensor(0).view({1, 256}, {k, 0}).reshape({256}))
                                  .out(TensorSpec({256}, DType::f32)));  // 1 KiB each
          if (o.fatal() && failed_at < 0) failed_at = i;
        });
      },
      args);
  EXPECT_EQ(r.status.code, ErrorCode::scope_deadlock) << r.status.to_string();
  EXPECT_NE(r.status.message.find("heap bytes"), std::string::npos) << r.status.to_string();
  EXPECT_GE(failed_at, 3);  // an analysed iteration
  EXPECT_GT(r.stats.loop_tasks_analysed, 0u);
}

// A bad argument and a throwing kernel in analysed iterations of a direct position, then a run
// that works.
TEST_P(ParallelForAnalysedSubmit, ErrorsInAnalysedIterationsAreNamed) {
  Fixture f(GetParam().platform, GetParam().record);
  std::vector<float> buf(64, 0.0f), g(1, 1.0f);
  RunArgs args;
  args.inout(buf.data(), {64}, DType::f32);
  args.input(g.data(), {1}, DType::f32);
  const auto run = [&](std::int64_t bad_at, bool throw_at) {
    return f.runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          o.parallel_for(20, [&](Orchestrator& o, std::int64_t i) {
            const auto k = static_cast<std::uint32_t>(i);
            const bool here = i == bad_at;
            o.submit_aiv(here && throw_at ? f.boom : f.add,
                         Args()
                             .in(here && !throw_at ? Tensor() : a.tensor(0).view({1}, {k}))
                             .in(a.tensor(1))
                             .out_existing(a.tensor(0).view({1}, {32 + k})));
          });
        },
        args);
  };
  RunResult r = run(9, false);
  EXPECT_EQ(r.status.code, ErrorCode::invalid_args) << r.status.to_string();
  r = run(9, true);
  EXPECT_EQ(r.status.code, ErrorCode::kernel_exception) << r.status.to_string();
  EXPECT_GT(r.stats.loop_tasks_analysed, 0u);
  r = run(-1, false);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  // The template the runs before kept serves from the second iteration on.
  EXPECT_EQ(r.stats.loop_templates_reused, 1u);
  EXPECT_EQ(r.stats.loop_tasks_analysed, 19u);
  for (std::uint32_t k = 0; k < 20; ++k)
    ASSERT_EQ(buf[32 + k], buf[k] + 1.0f) << "row " << k;
}

// The inline replay check (LoopDriver::replays) passes only a submit whose every argument is the
// template's record replayed: from iteration kSwitch on, one argument departs from it in one way
// (the read's tag, buffer or version; the written row's box or extent), and the loop falls back
// once, there; the iterations before are analysed and the result equals the sequential
// program's. The read's box may move freely (the loop never writes its buffer): its family
// closes and the loop goes on, that position now checked by plan_analysed (buffer and version
// for the moved read), which still falls back when the version changes.
// The written row departs in the fields the wide compare (LoopDriver::same_image) covers besides
// those: its dtype, the raw shape's inner dimension, ndims (a trailing 1), the layout offset (a
// reshaped tensor one row on) — each a fall-back, as predicts_view rejects them — and in ways the
// full check accepts after the inline one missed: another outer raw dimension (the same placement),
// a reshaped row (another layout offset and raw shape, the same elements), a transposed row (perm:
// the kernel sees it and adds 2).
TEST_P(ParallelForAnalysedSubmit, InlineReplayFallsBackOnEachKindOfDeparture) {
  constexpr std::uint32_t kRows = 24;
  constexpr std::uint32_t kCols = 8;
  constexpr std::uint32_t kSwitch = 12;
  constexpr std::uint32_t kLater = 18;
  // moved_read: the read leaves its stride (it may: its family closes, no fall-back);
  // moved_read_version: and from kLater on, its version changes too (a fall-back there).
  enum Departure {
    tag,
    buffer,
    version,
    box,
    extent,
    moved_read,
    moved_read_version,
    out_dtype,
    out_raw_inner,
    out_ndims,
    out_layout,
    out_raw_outer,
    out_reshaped,
    out_transposed,
    none
  };
  for (int d = tag; d <= none; ++d) {
    SCOPED_TRACE("departure " + std::to_string(d));
    Fixture f(GetParam().platform, GetParam().record);
    const KernelId row_inc = f.runtime.kernels().add("row_plus_one", CoreType::aiv, &row_plus_one);
    // z has room for a second layout of twice the rows or twice the columns.
    std::vector<float> x(kRows * kCols), y(kRows * kCols), z(2 * kRows * kCols, 0.0f);
    for (std::uint32_t k = 0; k < x.size(); ++k) {
      x[k] = static_cast<float>(k);
      y[k] = 1000.0f + static_cast<float>(k);
    }
    std::vector<float> want = z;  // the sequential program, iteration by iteration
    const RunResult r = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Tensor tx = Tensor::wrap(x.data(), {kRows, kCols}, DType::f32);
      const Tensor ty = Tensor::wrap(y.data(), {kRows, kCols}, DType::f32);
      const Tensor tz = Tensor::wrap(z.data(), {kRows, kCols}, DType::f32);
      o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
        const auto row = static_cast<std::uint32_t>(i);
        const bool away = row >= kSwitch;
        const std::vector<float>& from = away && d == buffer ? y : x;
        const std::uint32_t to = away && d == box ? (row + 1) % kRows : row;
        const std::uint32_t cols = away && d == extent ? kCols - 1 : kCols;
        const bool moved = away && (d == moved_read || d == moved_read_version);
        const std::uint32_t at = moved ? (row * 7) % kRows : row;
        Tensor in = (away && d == buffer ? ty : tx).view({1, cols}, {at, 0});
        if ((away && d == version) || (d == moved_read_version && row >= kLater))
          in = in.with_version(1);
        Tensor out = tz.view({1, cols}, {to, 0});
        std::uint32_t z_cols = kCols;  // the row length of the layout `out` is written in
        std::uint32_t z_row = to;      // the row of that layout it writes
        float add = 1.0f;
        if (away && d == out_dtype) {
          out = Tensor::wrap(z.data(), {kRows, kCols}, DType::i32).view({1, cols}, {to, 0});
        } else if (away && d == out_raw_inner) {
          z_cols = 2 * kCols;
          out = Tensor::wrap(z.data(), {kRows, z_cols}, DType::f32).view({1, cols}, {to, 0});
        } else if (away && d == out_ndims) {
          out =
              Tensor::wrap(z.data(), {kRows, kCols, 1}, DType::f32).view({1, cols, 1}, {to, 0, 0});
        } else if (away && d == out_layout) {
          // The same raw shape and box one row further on: only the layout offset differs.
          out = Tensor::wrap(z.data(), {2 * kRows, kCols}, DType::f32)
                    .view({kRows, kCols}, {1, 0})
                    .reshape({kRows, kCols})
                    .view({1, cols}, {to, 0});
          z_row = to + 1;
        } else if (away && d == out_raw_outer) {
          out = Tensor::wrap(z.data(), {2 * kRows, kCols}, DType::f32).view({1, cols}, {to, 0});
        } else if (away && d == out_reshaped) {
          out = out.reshape({1, cols});
        } else if (away && d == out_transposed) {
          out = out.transpose(0, 1);
          add = 2.0f;
        }
        Args args;
        if (away && d == tag) {
          args.inout(in);
        } else {
          args.in(in);
        }
        o.submit_aiv(row_inc, args.out_existing(out));
        for (std::uint32_t c = 0; c < cols; ++c)
          want[z_row * z_cols + c] = from[at * kCols + c] + add;
      });
    });
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    const bool falls_back = d != none && d != moved_read && d != out_raw_outer &&
                            d != out_reshaped && d != out_transposed;
    EXPECT_EQ(r.stats.loop_fallbacks, falls_back ? 1u : 0u);
    const std::uint32_t analysed_until =
        d == moved_read_version ? kLater : (falls_back ? kSwitch : kRows);
    EXPECT_EQ(r.stats.loop_tasks_analysed, analysed_until - 2);
    for (std::uint32_t k = 0; k < z.size(); ++k)
      ASSERT_EQ(z[k], want[k]) << "row " << k / kCols << " column " << k % kCols;
  }
}

// A position whose views have rank 3 compares the image word a rank-2 position skips
// (TaskPlan::narrow: the box extents of dimensions 2 and 3): from iteration kSwitch on, the last
// dimension's extent of both views shrinks by one, and the loop falls back once, there, with the
// result of the sequential program; without the departure every task after the learning
// iterations is analysed.
TEST_P(ParallelForAnalysedSubmit, RankThreeViewsDepartInTheWordRankTwoSkips) {
  constexpr std::uint32_t kRows = 20;
  constexpr std::uint32_t kMid = 2;
  constexpr std::uint32_t kInner = 4;
  constexpr std::uint32_t kSwitch = 10;
  for (const bool depart : {true, false}) {
    SCOPED_TRACE(depart ? "departure" : "none");
    Fixture f(GetParam().platform, GetParam().record);
    const KernelId inc3 = f.runtime.kernels().add("plus_one_3d", CoreType::aiv, &plus_one_3d);
    constexpr std::uint32_t kSize = kRows * kMid * kInner;
    std::vector<float> x(kSize), z(kSize, 0.0f);
    for (std::uint32_t k = 0; k < kSize; ++k)
      x[k] = static_cast<float>(k);
    std::vector<float> want = z;
    const RunResult r = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Tensor tx = Tensor::wrap(x.data(), {kRows, kMid, kInner}, DType::f32);
      const Tensor tz = Tensor::wrap(z.data(), {kRows, kMid, kInner}, DType::f32);
      o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
        const auto row = static_cast<std::uint32_t>(i);
        const std::uint32_t inner = depart && row >= kSwitch ? kInner - 1 : kInner;
        o.submit_aiv(inc3, Args()
                               .in(tx.view({1, kMid, inner}, {row, 0, 0}))
                               .out_existing(tz.view({1, kMid, inner}, {row, 0, 0})));
        for (std::uint32_t m = 0; m < kMid; ++m) {
          for (std::uint32_t c = 0; c < inner; ++c) {
            const std::uint32_t at = (row * kMid + m) * kInner + c;
            want[at] = x[at] + 1.0f;
          }
        }
      });
    });
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(r.stats.loop_fallbacks, depart ? 1u : 0u);
    EXPECT_EQ(r.stats.loop_tasks_analysed, (depart ? kSwitch : kRows) - 2);
    for (std::uint32_t k = 0; k < kSize; ++k)
      ASSERT_EQ(z[k], want[k]) << "element " << k;
  }
}

// out (1-D) = in 0 (1-D) + the sum of every element of tensor 1 (a rank-3 view), which is then
// incremented element by element.
void row_plus_sum_3d(const KernelArgs& a) {
  const Tensor& x = a.tensor(0);
  const Tensor& w = a.tensor(1);
  const Tensor& out = a.tensor(2);
  float sum = 0.0f;
  for (std::uint32_t p = 0; p < w.dim(0); ++p) {
    for (std::uint32_t q = 0; q < w.dim(1); ++q) {
      for (std::uint32_t r = 0; r < w.dim(2); ++r) {
        float& e = w.data_as<float>()[p * w.stride(0) + q * w.stride(1) + r * w.stride(2)];
        sum += e;
        e += 1.0f;
      }
    }
  }
  for (std::uint32_t k = 0; k < x.dim(0); ++k)
    out.data_as<float>()[k * out.stride(0)] = x.data_as<float>()[k * x.stride(0)] + sum;
}

// A wide position (a fresh output) reading a rank-1 view and updating a rank-3 one: each access
// is compared under its own rank's mask (LoopDriver::AccessImage::mask, one copy of each mask per
// driver), so when the rank-3 view's last extent shrinks from iteration kSwitch on (bytes the
// rank-1 mask does not cover, in words whose first bytes both masks cover alike) the wide
// compare misses and the loop falls back, with every result as the plain path's.
TEST_P(ParallelForAnalysedSubmit, WideReplayComparesEachAccessUnderItsOwnRanksMask) {
  constexpr std::uint32_t kRows = 20;
  constexpr std::uint32_t kCols = 4;
  constexpr std::uint32_t kMid = 2;
  constexpr std::uint32_t kInner = 4;
  constexpr std::uint32_t kSwitch = 10;
  for (const bool depart : {true, false}) {
    SCOPED_TRACE(depart ? "departure" : "none");
    Fixture f(GetParam().platform, GetParam().record);
    const KernelId sum3 =
        f.runtime.kernels().add("row_plus_sum_3d", CoreType::aiv, &row_plus_sum_3d);
    std::vector<float> x(kRows * kCols), w(kRows * kMid * kInner), y(kRows * kCols, 0.0f);
    for (std::size_t k = 0; k < x.size(); ++k)
      x[k] = static_cast<float>(k);
    for (std::size_t k = 0; k < w.size(); ++k)
      w[k] = static_cast<float>(k % 7);
    std::vector<float> want(y.size());
    std::vector<float> want_w = w;
    const RunResult r = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Tensor tx = Tensor::wrap(x.data(), {kRows * kCols}, DType::f32);
      const Tensor tw = Tensor::wrap(w.data(), {kRows, kMid, kInner}, DType::f32);
      const Tensor ty = Tensor::wrap(y.data(), {kRows * kCols}, DType::f32);
      o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
        const auto row = static_cast<std::uint32_t>(i);
        const std::uint32_t inner = depart && row >= kSwitch ? kInner - 1 : kInner;
        const TaskOutputs made =
            o.submit_aiv(sum3, Args()
                                   .in(tx.view({kCols}, {row * kCols}))
                                   .inout(tw.view({1, kMid, inner}, {row, 0, 0}))
                                   .out(TensorSpec({kCols}, DType::f32)));
        if (!made.valid()) return;
        o.submit_aiv(f.inc, Args().in(made[0]).out_existing(ty.view({kCols}, {row * kCols})));
        float sum = 0.0f;
        for (std::uint32_t m = 0; m < kMid; ++m) {
          for (std::uint32_t c = 0; c < inner; ++c) {
            sum += want_w[(row * kMid + m) * kInner + c];
            want_w[(row * kMid + m) * kInner + c] += 1.0f;
          }
        }
        for (std::uint32_t c = 0; c < kCols; ++c)
          want[row * kCols + c] = x[row * kCols + c] + sum + 1.0f;
      });
    });
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(r.stats.loop_fallbacks, depart ? 1u : 0u);
    // Both positions of every analysed iteration took the wide path, up to the departure.
    const std::uint32_t wide_rows = depart ? kSwitch : kRows;
    EXPECT_GE(r.stats.loop_tasks_replayed_wide, 2u * (wide_rows - 2));
    EXPECT_LE(r.stats.loop_tasks_replayed_wide, 2u * wide_rows);
    for (std::size_t k = 0; k < y.size(); ++k)
      ASSERT_EQ(y[k], want[k]) << "element " << k;
    for (std::size_t k = 0; k < w.size(); ++k)
      ASSERT_EQ(w[k], want_w[k]) << "w element " << k;
  }
}

// out = in + scalar 0 (a float) over 1-D views.
void plus_scalar(const KernelArgs& a) {
  const Tensor& in = a.tensor(0);
  const Tensor& out = a.tensor(a.tensor_count() - 1);
  const float add = a.scalar<float>(0);
  for (std::uint32_t k = 0; k < in.dim(0); ++k)
    out.data_as<float>()[k * out.stride(0)] = in.data_as<float>()[k * in.stride(0)] + add;
}
// out = the sum of every element of tensors 0 .. count - 2 (each 1-D), written to each element of
// the last one.
void sum_all(const KernelArgs& a) {
  float sum = 0.0f;
  for (int t = 0; t + 1 < a.tensor_count(); ++t) {
    const Tensor& in = a.tensor(t);
    for (std::uint32_t k = 0; k < in.dim(0); ++k)
      sum += in.data_as<float>()[k * in.stride(0)];
  }
  const Tensor& out = a.tensor(a.tensor_count() - 1);
  for (std::uint32_t k = 0; k < out.dim(0); ++k)
    out.data_as<float>()[k * out.stride(0)] = sum;
}

// Holds held_plus_one's tasks for 50 ms from its construction (the orchestration meanwhile
// submits behind them; on the simulator the event loop may wait for a held kernel's end).
struct HoldBriefly {
  HoldBriefly() {
    released = false;
    opener = std::thread([] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      released = true;
    });
  }
  ~HoldBriefly() {
    opener.join();
    released = true;
  }
  std::thread opener;
};

// The last tensor (a 1 x n or n x 1 row) = tensor 0 + tensor 1 (1-D); any tensors between are
// only read for ordering.
void add_two_to_row(const KernelArgs& a) {
  const Tensor& x = a.tensor(0);
  const Tensor& y = a.tensor(1);
  const Tensor& out = a.tensor(a.tensor_count() - 1);
  const int d = out.dim(0) > 1 ? 0 : 1;
  auto* dst = static_cast<float*>(out.data());
  for (std::uint32_t k = 0; k < x.dim(0); ++k) {
    dst[k * out.stride(d)] =
        x.data_as<float>()[k * x.stride(0)] + y.data_as<float>()[k * y.stride(0)];
  }
}

// The fast analysed submit (OrchestratorCore::submit_replayed: every argument an outer buffer,
// checked while it is copied into the next record) carries each task's own scalars: they differ
// per iteration (the template fixes only their count), and every analysed task gets its own.
TEST_P(ParallelForAnalysedSubmit, ReplayedTasksCarryTheirOwnScalars) {
  Fixture f(GetParam().platform, GetParam().record);
  const KernelId add_scalar = f.runtime.kernels().add("plus_scalar", CoreType::aiv, &plus_scalar);
  constexpr std::uint32_t kRows = 48;
  constexpr std::uint32_t kCols = 4;
  std::vector<float> x(kRows * kCols), z(kRows * kCols, 0.0f);
  for (std::uint32_t k = 0; k < x.size(); ++k)
    x[k] = static_cast<float>(k);
  const RunResult r = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor tx = Tensor::wrap(x.data(), {kRows * kCols}, DType::f32);
    const Tensor tz = Tensor::wrap(z.data(), {kRows * kCols}, DType::f32);
    o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
      const auto row = static_cast<std::uint32_t>(i);
      o.submit_aiv(add_scalar, Args()
                                   .in(tx.view({kCols}, {row * kCols}))
                                   .out_existing(tz.view({kCols}, {row * kCols}))
                                   .scalar(static_cast<float>(100 * row)));
    });
  });
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.stats.loop_tasks_analysed, kRows - 2);
  for (std::uint32_t k = 0; k < z.size(); ++k)
    ASSERT_EQ(z[k], x[k] + static_cast<float>(100 * (k / kCols))) << "element " << k;
}

// out = in + the sum of (s + 1) x scalar s over its scalars (floats): a missing, stale or
// swapped scalar changes the result.
void plus_weighted_scalars(const KernelArgs& a) {
  const Tensor& in = a.tensor(0);
  const Tensor& out = a.tensor(a.tensor_count() - 1);
  float add = 0.0f;
  for (int s = 0; s < a.scalar_count(); ++s)
    add += static_cast<float>(s + 1) * a.scalar<float>(s);
  for (std::uint32_t k = 0; k < in.dim(0); ++k)
    out.data_as<float>()[k * out.stride(0)] = in.data_as<float>()[k * in.stride(0)] + add;
}

// Each iteration's task z = in + the weighted sum of 0 to 3 scalars that differ per iteration,
// on row i: `wide`: `in` is t = x + 1, a fresh output of the iteration (the reader's position is
// replayed wide), else `in` is x itself (a fast position, replayed by submit_replayed). Either
// path copies up to two scalars by plain moves, more by one copy (copy_scalars).
void check_replayed_scalars(const Param& param, bool wide) {
  constexpr std::uint32_t kRows = 24;
  constexpr std::uint32_t kCols = 4;
  const auto scalar = [](std::uint32_t row, int s) { return static_cast<float>(8 * row + s); };
  for (const int scalars : {0, 1, 2, 3}) {
    Fixture f(param.platform, param.record);  // each count learns its own template
    const KernelId weighted =
        f.runtime.kernels().add("plus_weighted_scalars", CoreType::aiv, &plus_weighted_scalars);
    std::vector<float> x(kRows * kCols), z(kRows * kCols, -1.0f);
    for (std::uint32_t k = 0; k < x.size(); ++k)
      x[k] = static_cast<float>(k % 5);
    const RunResult r = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Tensor tx = Tensor::wrap(x.data(), {kRows * kCols}, DType::f32);
      const Tensor tz = Tensor::wrap(z.data(), {kRows * kCols}, DType::f32);
      o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
        const auto row = static_cast<std::uint32_t>(i);
        Tensor in = tx.view({kCols}, {row * kCols});
        if (wide) {
          const TaskOutputs t =
              o.submit_aiv(f.inc, Args().in(in).out(TensorSpec({kCols}, DType::f32)));
          if (!t.valid()) return;
          in = t[0];
        }
        Args args = Args().in(in).out_existing(tz.view({kCols}, {row * kCols}));
        for (int s = 0; s < scalars; ++s)
          args.scalar(scalar(row, s));
        o.submit_aiv(weighted, args);
      });
    });
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(r.stats.loop_fallbacks, 0u);
    if (wide) {
      EXPECT_EQ(r.stats.loop_tasks_replayed_wide, 2u * (kRows - 2)) << scalars << " scalars";
    } else {
      EXPECT_EQ(r.stats.loop_tasks_analysed, kRows - 2) << scalars << " scalars";
    }
    for (std::uint32_t k = 0; k < z.size(); ++k) {
      const std::uint32_t row = k / kCols;
      float add = wide ? 1.0f : 0.0f;
      for (int s = 0; s < scalars; ++s)
        add += static_cast<float>(s + 1) * scalar(row, s);
      ASSERT_EQ(z[k], x[k] + add) << scalars << " scalars, element " << k;
    }
  }
}

// (session 24, pa28) The wide replayed path (OrchestratorCore::submit_wide).
TEST_P(ParallelForAnalysedSubmit, WideReplayedTasksCarryTheirOwnScalars) {
  check_replayed_scalars(GetParam(), true);
}

// The fast replayed path (OrchestratorCore::submit_replayed).
TEST_P(ParallelForAnalysedSubmit, ReplayedTasksCarryZeroToThreeScalars) {
  check_replayed_scalars(GetParam(), false);
}

// A fast position whose fixed external producers are more than the direct list holds (two whole
// buffers, each written by kWriters live tasks before the loop: 2 x kWriters > 16) is admitted
// and copied by the fast path, then takes the generic producer collection: every task waits for
// every writer (held while the loop is submitted, so a missed edge reads a partial sum).
TEST_P(ParallelForAnalysedSubmit, ReplayedTaskWithMoreProducersThanTheDirectListCollectsThemAll) {
  Fixture f(GetParam().platform, GetParam().record);
  const KernelId sum = f.runtime.kernels().add("sum_all", CoreType::aiv, &sum_all);
  constexpr std::uint32_t kWriters = 10;
  constexpr std::uint32_t kWriterBlocks = 256;
  constexpr std::uint32_t kRows = 24;
  std::vector<float> a(kWriters, 0.0f), b(kWriters, 0.0f), ones(kWriters, 1.0f), z(kRows, 0.0f);
  // On threads the writers are held until the orchestration has submitted everything (they stay
  // live: every task lists all of them); the simulator's event loop may wait for a held kernel,
  // so there they are held for 50 ms, and kept live in virtual time by their many blocks.
  const bool threads = GetParam().platform == PlatformKind::threads;
  std::optional<HoldBriefly> hold;
  if (threads) {
    released = false;
  } else {
    hold.emplace();
  }
  const RunResult r = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor ta = Tensor::wrap(a.data(), {kWriters}, DType::f32);
    const Tensor tb = Tensor::wrap(b.data(), {kWriters}, DType::f32);
    const Tensor tones = Tensor::wrap(ones.data(), {kWriters}, DType::f32);
    const Tensor tz = Tensor::wrap(z.data(), {kRows}, DType::f32);
    for (std::uint32_t w = 0; w < kWriters; ++w) {  // a[w] = b[w] = 2, each by a held task
      o.submit_aiv(
          f.held,
          Args().in(tones.view({1}, {w})).out_existing(ta.view({1}, {w})).blocks(kWriterBlocks));
      o.submit_aiv(
          f.held,
          Args().in(tones.view({1}, {w})).out_existing(tb.view({1}, {w})).blocks(kWriterBlocks));
    }
    o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
      const auto row = static_cast<std::uint32_t>(i);
      o.submit_aiv(sum, Args().in(ta).in(tb).out_existing(tz.view({1}, {row})));
    });
    released = true;
  });
  hold.reset();
  released = true;
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.stats.loop_tasks_analysed, kRows - 2);
  for (std::uint32_t row = 0; row < kRows; ++row)
    ASSERT_EQ(z[row], 4.0f * kWriters) << "row " << row;
  if (GetParam().record) {
    for (const TaskEvent& e : r.trace->tasks) {
      if (e.sequence < 2 * kWriters) continue;
      EXPECT_EQ(e.producers.size(), 2u * kWriters) << "task " << e.sequence;
    }
  }
}

// Fast positions with two fixed external producers each, held while the loop runs: the dependency
// pool (16 nodes) fills after eight tasks, long before the task window (64), so the fast path
// finds no room for a task's nodes and takes the generic collection, which waits for them.
TEST_P(ParallelForAnalysedSubmit, ReplayedTasksWaitForDependencyNodes) {
  RingConfig ring;
  ring.task_window = 64;
  ring.dep_pool = 16;
  Fixture f(GetParam().platform, GetParam().record, ring);
  const KernelId sum = f.runtime.kernels().add("sum_all", CoreType::aiv, &sum_all);
  constexpr std::uint32_t kRows = 200;
  std::vector<float> x(kRows, 1.0f), g1(1, 0.0f), g2(1, 0.0f), y(kRows, 0.0f);
  std::optional<HoldBriefly> hold(std::in_place);
  const RunResult r = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor tx = Tensor::wrap(x.data(), {kRows}, DType::f32);
    const Tensor t1 = Tensor::wrap(g1.data(), {1}, DType::f32);
    const Tensor t2 = Tensor::wrap(g2.data(), {1}, DType::f32);
    const Tensor ty = Tensor::wrap(y.data(), {kRows}, DType::f32);
    o.submit_aiv(f.held, Args().in(t1).out_existing(t1));  // g1 = 1
    o.submit_aiv(f.held, Args().in(t2).out_existing(t2));  // g2 = 1
    o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
      const auto k = static_cast<std::uint32_t>(i);
      o.submit_aiv(sum, Args().in(tx.view({1}, {k})).in(t1).in(t2).out_existing(ty.view({1}, {k})));
    });
  });
  hold.reset();
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.stats.loop_tasks_analysed, kRows - 2);
  for (std::uint32_t k = 0; k < kRows; ++k)
    ASSERT_EQ(y[k], 3.0f) << "row " << k;
}

// Replayed tasks whose one producer has finished but is still live (a held reader of its output
// keeps it): each edge resolves at once, and the wiring without the guard
// (OrchestratorCore::wire_replayed, graph::finish_unguarded) drops it after wiring, so the task
// is ready then. On threads the reader stays held until every loop task is submitted, so each
// finds g's writer finished and live; on the sim it covers whatever the virtual clock gives.
TEST_P(ParallelForAnalysedSubmit, ReplayedTasksBehindAFinishedProducerRun) {
  Fixture f(GetParam().platform, GetParam().record);
  const KernelId sum = f.runtime.kernels().add("sum_all", CoreType::aiv, &sum_all);
  const bool threads = GetParam().platform == PlatformKind::threads;
  constexpr std::uint32_t kRows = 64;
  std::vector<float> x(kRows), two(1, 2.0f), g(1, 0.0f), h(1, 0.0f), y(kRows, 0.0f);
  for (std::uint32_t k = 0; k < kRows; ++k)
    x[k] = static_cast<float>(k);
  released = !threads;
  const RunResult r = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor tx = Tensor::wrap(x.data(), {kRows}, DType::f32);
    const Tensor ttwo = Tensor::wrap(two.data(), {1}, DType::f32);
    const Tensor tg = Tensor::wrap(g.data(), {1}, DType::f32);
    const Tensor th = Tensor::wrap(h.data(), {1}, DType::f32);
    const Tensor ty = Tensor::wrap(y.data(), {kRows}, DType::f32);
    o.submit_aiv(sum, Args().in(ttwo).out_existing(tg));   // g = 2
    o.submit_aiv(f.held, Args().in(tg).out_existing(th));  // h = g + 1, held: keeps g's writer
    o.wait_for(tg);                                        // g's writer has finished
    o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
      const auto k = static_cast<std::uint32_t>(i);
      o.submit_aiv(sum, Args().in(tx.view({1}, {k})).in(tg).out_existing(ty.view({1}, {k})));
    });
    released = true;
  });
  released = true;
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.stats.loop_tasks_analysed, kRows - 2);
  EXPECT_EQ(h[0], 3.0f);
  for (std::uint32_t k = 0; k < kRows; ++k)
    ASSERT_EQ(y[k], static_cast<float>(k) + 2.0f) << "row " << k;
}

// Replayed tasks behind the pinned producer push their edges onto its list at once
// (OrchestratorCore::wire_pinned; until session 35 they were kept on a chain of the
// orchestrator's and pushed in batches). Loop 1 (20 tasks) behind a held writer of g, then a
// get_tensor_data of one of its rows, which waits for a pinned task: on threads the writer is
// released first, so the wait returns only if the edge reached g's list. Loop 2 (100 tasks: ring
// syncs) behind another held writer that the body releases at iteration 40, so later submits may
// find it finished (timing decides on threads). Every row and the read value equal the
// sequential program's.
TEST_P(ParallelForAnalysedSubmit, PinnedEdgesReachTheProducerBeforeEveryWait) {
  Fixture f(GetParam().platform, GetParam().record);
  const KernelId sum = f.runtime.kernels().add("sum_all", CoreType::aiv, &sum_all);
  const bool threads = GetParam().platform == PlatformKind::threads;
  constexpr std::uint32_t kShort = 20;
  constexpr std::uint32_t kLong = 100;
  std::vector<float> x(kLong), g(1, 0.0f), y(kLong, 0.0f), z(kLong, 0.0f);
  for (std::uint32_t k = 0; k < kLong; ++k)
    x[k] = static_cast<float>(k);
  float read = 0.0f;
  released = !threads;
  const RunResult r = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor tx = Tensor::wrap(x.data(), {kLong}, DType::f32);
    const Tensor tg = Tensor::wrap(g.data(), {1}, DType::f32);
    const Tensor ty = Tensor::wrap(y.data(), {kLong}, DType::f32);
    const Tensor tz = Tensor::wrap(z.data(), {kLong}, DType::f32);
    o.submit_aiv(f.held, Args().in(tg).out_existing(tg));  // g = 1, held on threads
    o.parallel_for(kShort, [&](Orchestrator& o, std::int64_t i) {
      const auto k = static_cast<std::uint32_t>(i);
      o.submit_aiv(sum, Args().in(tx.view({1}, {k})).in(tg).out_existing(ty.view({1}, {k})));
    });
    released = true;
    read = o.get_tensor_data<float>(ty, {kShort - 3});  // a pinned task's row
    released = !threads;
    o.submit_aiv(f.held, Args().in(tg).out_existing(tg));  // g = 2, held on threads
    o.parallel_for(kLong, [&](Orchestrator& o, std::int64_t i) {
      const auto k = static_cast<std::uint32_t>(i);
      if (k == 40) released = true;
      o.submit_aiv(sum, Args().in(tx.view({1}, {k})).in(tg).out_existing(tz.view({1}, {k})));
    });
    released = true;
  });
  released = true;
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(read, static_cast<float>(kShort - 3) + 1.0f);
  EXPECT_EQ(g[0], 2.0f);
  for (std::uint32_t k = 0; k < kShort; ++k)
    ASSERT_EQ(y[k], static_cast<float>(k) + 1.0f) << "loop 1, row " << k;
  for (std::uint32_t k = 0; k < kLong; ++k)
    ASSERT_EQ(z[k], static_cast<float>(k) + 2.0f) << "loop 2, row " << k;
  EXPECT_GE(r.stats.loop_tasks_analysed, kShort - 3 + kLong - 3);
}

// A loop body that waits outside tmr (its own code, no tmr call) for tasks of earlier
// iterations sees them run once their producer finishes, as after plain submits
// (Scheduling.SubmittedTasksRunWhileTheOrchestratorWaitsOutsideTmr): iterations 3-19 replay
// behind the pinned writer of g, which iteration 20's body releases and then waits for rows
// 0-19. Edges kept back on a chain of the orchestrator's until its next call into tmr left 17
// of them waiting (session 35); without the 10 s bound the body would wait for ever. The wait
// needs cores that run by themselves: the threads platform.
std::atomic<std::uint32_t> rows_written{0};

// The body's own wait, no tmr call: until `count` reaches `at_least` or 10 s passed (a test never
// hangs); returns the count then.
std::uint32_t wait_outside_tmr(const std::atomic<std::uint32_t>& count, std::uint32_t at_least) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (count.load(std::memory_order_acquire) < at_least &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  return count.load(std::memory_order_acquire);
}

void sum_and_count(const KernelArgs& a) {
  sum_all(a);
  rows_written.fetch_add(1, std::memory_order_release);
}

TEST(ParallelForPinned, TasksOfEarlierIterationsRunWhileTheBodyWaitsOutsideTmr) {
  for (const bool record : {false, true}) {
    Fixture f(PlatformKind::threads, record);
    const KernelId sum = f.runtime.kernels().add("sum_and_count", CoreType::aiv, &sum_and_count);
    rows_written = 0;
    constexpr std::uint32_t kRows = 30;
    constexpr std::uint32_t kWaitAt = 20;
    std::vector<float> x(kRows, 1.0f), g(1, 0.0f), z(kRows, 0.0f);
    released = false;
    std::uint32_t ran_in_time = 0;
    const RunResult r = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Tensor tx = Tensor::wrap(x.data(), {kRows}, DType::f32);
      const Tensor tg = Tensor::wrap(g.data(), {1}, DType::f32);
      const Tensor tz = Tensor::wrap(z.data(), {kRows}, DType::f32);
      o.submit_aiv(f.held, Args().in(tg).out_existing(tg));  // g = 1 once released
      o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
        const auto k = static_cast<std::uint32_t>(i);
        if (k == kWaitAt) {
          released = true;
          ran_in_time = wait_outside_tmr(rows_written, kWaitAt);
        }
        o.submit_aiv(sum, Args().in(tx.view({1}, {k})).in(tg).out_existing(tz.view({1}, {k})));
      });
    });
    released = true;
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(ran_in_time, kWaitAt) << (record ? "traced" : "untraced")
                                    << ": rows of earlier iterations written while the body waited";
    for (std::uint32_t k = 0; k < kRows; ++k)
      ASSERT_EQ(z[k], 2.0f) << "row " << k;
    EXPECT_GE(r.stats.loop_tasks_analysed, kRows - 3);
  }
}

// A body that waits outside tmr for a task its own iteration submitted sees it run before its
// next submit (the same promise within an iteration: nothing a verified iteration submits is held
// back until the iteration's end). Iteration 20 of a wide replayed loop (a fresh output, read by
// the next position, one scope an iteration) waits after its first submit until that task has
// run, then submits the second. A design that admitted a verified iteration's tasks as one image
// at its end (docs/design.md, "An iteration admitted as one image: not built") would leave the
// task unsubmitted here: the body would wait its full 10 s. Threads: the wait needs cores that run
// by themselves.
std::atomic<std::uint32_t> firsts_ran{0};

void plus_one_and_count(const KernelArgs& a) {
  plus_one(a);
  firsts_ran.fetch_add(1, std::memory_order_release);
}

TEST(ParallelForWide, ATaskOfTheBodysOwnIterationRunsWhileTheBodyWaitsOutsideTmr) {
  for (const bool record : {false, true}) {
    Fixture f(PlatformKind::threads, record);
    const KernelId first =
        f.runtime.kernels().add("plus_one_and_count", CoreType::aiv, &plus_one_and_count);
    firsts_ran = 0;
    constexpr std::uint32_t kRows = 30;
    constexpr std::uint32_t kWaitAt = 20;
    std::vector<float> x(kRows), z(kRows, 0.0f);
    for (std::uint32_t k = 0; k < kRows; ++k)
      x[k] = static_cast<float>(k);
    std::uint32_t ran_in_time = 0;
    LoopOptions per_iteration;
    per_iteration.scope_per_iteration = true;
    const RunResult r = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Tensor tx = Tensor::wrap(x.data(), {kRows}, DType::f32);
      const Tensor tz = Tensor::wrap(z.data(), {kRows}, DType::f32);
      o.parallel_for(
          kRows,
          [&](Orchestrator& o, std::int64_t i) {
            const auto k = static_cast<std::uint32_t>(i);
            const TaskOutputs made = o.submit_aiv(
                first, Args().in(tx.view({1}, {k})).out(TensorSpec(Shape{1}, DType::f32)));
            if (!made.valid()) return;
            if (k == kWaitAt) {
              ran_in_time = wait_outside_tmr(firsts_ran, kWaitAt + 1);
            }
            o.submit_aiv(f.inc, Args().in(made[0]).out_existing(tz.view({1}, {k})));
          },
          per_iteration);
    });
    EXPECT_EQ(ran_in_time, kWaitAt + 1)
        << (record ? "traced" : "untraced")
        << ": iteration 20's first task (and every earlier one) ran while the body waited";
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    for (std::uint32_t k = 0; k < kRows; ++k)
      ASSERT_EQ(z[k], static_cast<float>(k) + 2.0f) << "row " << k;
    // The waiting iteration was a verified one on the wide replayed path.
    EXPECT_GE(r.stats.loop_tasks_replayed_wide, 2 * (kRows - 3));
  }
}

// Replayed tasks of two to six arguments, every one in an affine family (the replayed submit
// grows up to four families unrolled, more in a loop), behind a held writer of their first
// argument (the pinned producer: each task takes its one dependency node with its admit). After
// the loop, with every loop task still waiting on threads, a plain reader of the whole output
// finds each iteration's writer through the output's family only if that family grew with every
// task: it must sum the rows after all are written, and (traced) list every loop task as a
// producer. On the sim, the same program and values.
TEST_P(ParallelForAnalysedSubmit, EveryFamilyOfAReplayedTaskGrowsForALaterReader) {
  Fixture f(GetParam().platform, GetParam().record);
  const KernelId sum = f.runtime.kernels().add("sum_all", CoreType::aiv, &sum_all);
  const bool threads = GetParam().platform == PlatformKind::threads;
  constexpr std::uint32_t kRows = 48;
  for (int n = 2; n <= 6; ++n) {  // the gate, n - 2 input rows, the output row
    std::vector<std::vector<float>> x(4, std::vector<float>(kRows));
    for (std::size_t j = 0; j < x.size(); ++j) {
      for (std::uint32_t k = 0; k < kRows; ++k)
        x[j][k] = static_cast<float>(k + j);
    }
    std::vector<float> g(1, 0.0f), y(kRows, 0.0f), z(1, 0.0f);
    released = !threads;
    const RunResult r = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Tensor tg = Tensor::wrap(g.data(), {1}, DType::f32);
      const Tensor ty = Tensor::wrap(y.data(), {kRows}, DType::f32);
      const Tensor tz = Tensor::wrap(z.data(), {1}, DType::f32);
      std::vector<Tensor> tx;
      for (auto& v : x)
        tx.push_back(Tensor::wrap(v.data(), {kRows}, DType::f32));
      o.submit_aiv(f.held, Args().in(tg).out_existing(tg));  // g = 1, held on threads
      o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
        const auto k = static_cast<std::uint32_t>(i);
        Args args;
        args.in(tg);
        for (int j = 0; j < n - 2; ++j)
          args.in(tx[static_cast<std::size_t>(j)].view({1}, {k}));
        o.submit_aiv(sum, args.out_existing(ty.view({1}, {k})));
      });
      o.submit_aiv(sum, Args().in(ty).out_existing(tz));  // z = the sum of every row
      released = true;
    });
    released = true;
    ASSERT_TRUE(r.ok()) << n << " arguments: " << r.status.to_string();
    // Each n is another loop at the same place: the run after n = 2 is offered n = 2's template
    // before its first iteration, misses there and relearns from iterations 1 and 2 (the later
    // ones learn their first iteration, are rejected and learn from iterations 0 and 1).
    EXPECT_GE(r.stats.loop_tasks_analysed, kRows - 3) << n << " arguments";
    float expected_z = 0.0f;
    for (std::uint32_t k = 0; k < kRows; ++k) {
      float row = 1.0f;
      for (int j = 0; j < n - 2; ++j)
        row += static_cast<float>(k + static_cast<std::uint32_t>(j));
      ASSERT_EQ(y[k], row) << n << " arguments, row " << k;
      expected_z += row;
    }
    EXPECT_EQ(z[0], expected_z) << n << " arguments";
    if (threads && GetParam().record) {
      // Every loop task (sequences 1 to kRows) still waited when the reader was submitted: it
      // must list each one (the values above alone could pass by timing).
      ASSERT_TRUE(r.trace) << n << " arguments";
      const auto reader = std::find_if(r.trace->tasks.begin(), r.trace->tasks.end(),
                                       [&](const TaskEvent& e) { return e.sequence == kRows + 1; });
      ASSERT_NE(reader, r.trace->tasks.end()) << n << " arguments";
      for (std::uint64_t s = 1; s <= kRows; ++s) {
        EXPECT_NE(std::find(reader->producers.begin(), reader->producers.end(), s),
                  reader->producers.end())
            << n << " arguments: the reader does not wait for loop task " << s;
      }
    }
  }
}

// Replayed tasks set up no dependence state when admitted (Dependence::admitted_without_state):
// their slots keep what the plain tasks before them left. Under a 16-slot window, each round
// submits plain tasks that leave TensorMap entries (reads merged, writes of rows), then an
// analysed loop whose replayed tasks take over those slots, then plain tasks that read the
// loop's rows (through its families) and write rows the first plain tasks wrote; each run ends
// with a loop (its tasks retire past the last plain admit), and the runtime runs twice (the reset
// between runs). Values equal the sequential program's; traced, every conflicting pair is ordered
// (the earlier task ended before the later one started) and every edge joins a conflicting pair.
TEST_P(ParallelForAnalysedSubmit, ReplayedTasksTakeOverSlotsOfPlainTasksWithMapEntries) {
  RingConfig ring;
  ring.task_window = 16;
  Fixture f(GetParam().platform, GetParam().record, ring);
  constexpr std::uint32_t kRows = 32;
  constexpr std::uint32_t kCols = 4;
  constexpr std::uint32_t kPlain = 40;
  constexpr int kRounds = 3;
  // Buffers by index; one access: buffer, row (kWhole: all of it), whether it writes.
  enum Buffer { kA, kP, kQ, kG, kC0 };  // kC0 + r: round r's loop output (kRounds: the last loop)
  constexpr std::uint32_t kWhole = ~std::uint32_t{0};
  struct Access {
    int buffer;
    std::uint32_t row;
    bool write;
  };
  for (int run = 0; run < 2; ++run) {
    SCOPED_TRACE("run " + std::to_string(run));
    std::vector<float> a(kRows * kCols), p(kRows * kCols), q(kRows * kCols, 0.0f), g(kCols, 1.0f);
    std::vector<std::vector<float>> c(kRounds + 1, std::vector<float>(kRows * kCols, 0.0f));
    for (std::size_t k = 0; k < a.size(); ++k) {
      a[k] = static_cast<float>(k % 5);
      p[k] = static_cast<float>(k % 3 + 1);
    }
    // The sequential program on copies, and every task's accesses in submit order.
    std::vector<float> want_q = q, want_g = g;
    std::vector<std::vector<float>> want_c = c;
    std::vector<std::vector<Access>> accesses;
    const auto plain_row = [](int r, std::uint32_t k) { return (k * 5 + r) % kRows; };
    for (int r = 0; r <= kRounds; ++r) {
      if (r < kRounds) {
        for (std::uint32_t k = 0; k < kPlain; ++k) {
          const std::uint32_t row = plain_row(r, k);
          for (std::uint32_t j = 0; j < kCols; ++j)
            want_q[row * kCols + j] += p[row * kCols + j];
          accesses.push_back({{kP, row, false}, {kQ, row, true}});
        }
        const std::uint32_t row = static_cast<std::uint32_t>(r) % kRows;
        for (std::uint32_t j = 0; j < kCols; ++j)
          want_g[j] += want_q[row * kCols + j];
        accesses.push_back({{kQ, row, false}, {kG, kWhole, true}});
      }
      for (std::uint32_t i = 0; i < kRows; ++i) {
        for (std::uint32_t j = 0; j < kCols; ++j)
          want_c[static_cast<std::size_t>(r)][i * kCols + j] = a[i * kCols + j] + want_g[j];
        accesses.push_back({{kA, i, false}, {kG, kWhole, false}, {kC0 + r, i, true}});
      }
      if (r == kRounds) break;
      for (std::uint32_t k = 0; k < kRows; ++k) {
        for (std::uint32_t j = 0; j < kCols; ++j)
          want_q[k * kCols + j] += want_c[static_cast<std::size_t>(r)][k * kCols + j];
        accesses.push_back({{kC0 + r, k, false}, {kQ, k, true}});
      }
    }

    const RunResult result = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const auto wrap = [](std::vector<float>& v) {
        return Tensor::wrap(v.data(), {kRows, kCols}, DType::f32);
      };
      const Tensor ta = wrap(a), tp = wrap(p), tq = wrap(q);
      const Tensor tg = Tensor::wrap(g.data(), {kCols}, DType::f32);
      std::vector<Tensor> tc;
      for (auto& v : c)
        tc.push_back(wrap(v));
      const auto row = [&](const Tensor& t, std::uint32_t k) {
        return t.view({1, kCols}, {k, 0}).reshape({kCols});
      };
      for (int r = 0; r <= kRounds; ++r) {
        const Tensor& out = tc[static_cast<std::size_t>(r)];
        if (r < kRounds) {
          for (std::uint32_t k = 0; k < kPlain; ++k) {
            const std::uint32_t pr = plain_row(r, k);
            o.submit_aiv(f.accum, Args().in(row(tp, pr)).inout(row(tq, pr)));
          }
          o.submit_aiv(f.accum,
                       Args().in(row(tq, static_cast<std::uint32_t>(r) % kRows)).inout(tg));
        }
        o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
          const auto k = static_cast<std::uint32_t>(i);
          o.submit_aiv(f.add, Args().in(row(ta, k)).in(tg).out_existing(row(out, k)));
        });
        if (r == kRounds) break;
        for (std::uint32_t k = 0; k < kRows; ++k)
          o.submit_aiv(f.accum, Args().in(row(out, k)).inout(row(tq, k)));
      }
    });
    ASSERT_TRUE(result.ok()) << result.status.to_string();
    // Run 0 learns each loop from iterations 0 and 1. Run 1 first offers each loop the template
    // run 0 kept; its buffers are this run's vectors, wherever the allocator put them: where they
    // moved the template is rejected (first analysed iteration differs) and the loop learns from
    // iterations 1 and 2.
    const std::uint32_t learned = run == 0 ? 2 : 3;
    EXPECT_GE(result.stats.loop_tasks_analysed, (kRounds + 1) * (kRows - learned));
    EXPECT_EQ(result.stats.loop_fallbacks, 0u);
    for (std::size_t k = 0; k < q.size(); ++k)
      ASSERT_EQ(q[k], want_q[k]) << "q element " << k;
    for (std::size_t k = 0; k < g.size(); ++k)
      ASSERT_EQ(g[k], want_g[k]) << "g element " << k;
    for (std::size_t r = 0; r < c.size(); ++r) {
      for (std::size_t k = 0; k < c[r].size(); ++k)
        ASSERT_EQ(c[r][k], want_c[r][k]) << "loop " << r << ", element " << k;
    }
    if (!GetParam().record) continue;
    ASSERT_TRUE(result.trace);
    ASSERT_EQ(result.trace->tasks.size(), accesses.size());
    const auto conflict = [&](std::uint64_t x, std::uint64_t y) {
      for (const Access& u : accesses[x]) {
        for (const Access& v : accesses[y]) {
          if (u.buffer == v.buffer && (u.write || v.write) &&
              (u.row == v.row || u.row == kWhole || v.row == kWhole)) {
            return true;
          }
        }
      }
      return false;
    };
    std::vector<std::uint64_t> start(accesses.size(), ~std::uint64_t{0}), end(accesses.size(), 0);
    for (const SubtaskEvent& e : result.trace->subtasks) {
      ASSERT_LT(e.task_sequence, accesses.size());
      start[e.task_sequence] = std::min(start[e.task_sequence], e.start_ns);
      end[e.task_sequence] = std::max(end[e.task_sequence], e.end_ns);
    }
    for (std::uint64_t y = 0; y < accesses.size(); ++y) {
      for (std::uint64_t x = 0; x < y; ++x) {
        if (conflict(x, y)) {
          ASSERT_LE(end[x], start[y])
              << "task " << y << " started before conflicting task " << x << " ended";
        }
      }
    }
    for (const TaskEvent& e : result.trace->tasks) {
      for (const std::uint64_t producer : e.producers) {
        EXPECT_TRUE(producer < e.sequence && conflict(producer, e.sequence))
            << "edge " << producer << " -> " << e.sequence << " joins no conflicting pair";
      }
    }
  }
}

// A fast position's task that departs from the template in its last argument, after the fast
// check has copied the others into the next record: from iteration kSwitch on, each even
// iteration writes another row than predicted (the full check rejects it: a fall-back) or, in
// the second run, the same row spelled another way (the full check accepts it: still analysed);
// either way the record is then written again by the path that admits the task, and the result
// is the sequential program's. While the gate is held every task stays live, so the copies land
// in records the ring has room for right behind live ones.
TEST_P(ParallelForAnalysedSubmit, ReplayedCopyOfADepartingTaskIsRewritten) {
  for (const bool accepted : {false, true}) {
    SCOPED_TRACE(accepted ? "accepted" : "fall-back");
    Fixture f(GetParam().platform, GetParam().record);
    const KernelId add_row =
        f.runtime.kernels().add("add_two_to_row", CoreType::aiv, &add_two_to_row);
    constexpr std::uint32_t kRows = 40;
    constexpr std::uint32_t kCols = 4;
    constexpr std::uint32_t kSwitch = 20;
    std::vector<float> x(kRows * kCols), y(kRows * kCols), g(1, 0.0f), z(kRows * kCols, 0.0f);
    for (std::uint32_t k = 0; k < x.size(); ++k) {
      x[k] = static_cast<float>(k);
      y[k] = 1000.0f + static_cast<float>(k);
    }
    std::vector<float> want = z;
    std::optional<HoldBriefly> hold(std::in_place);
    const RunResult r = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Tensor tx = Tensor::wrap(x.data(), {kRows * kCols}, DType::f32);
      const Tensor ty = Tensor::wrap(y.data(), {kRows * kCols}, DType::f32);
      const Tensor tg = Tensor::wrap(g.data(), {1}, DType::f32);
      const Tensor tz = Tensor::wrap(z.data(), {kRows, kCols}, DType::f32);
      o.submit_aiv(f.held, Args().in(tg).out_existing(tg));  // g = 1, held
      o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
        const auto row = static_cast<std::uint32_t>(i);
        const bool away = row >= kSwitch && row % 2 == 0;
        Tensor out = tz.view({1, kCols}, {row, 0});
        std::uint32_t to = row;
        if (away && accepted) {
          out = out.reshape({1, kCols});  // the same elements, another spelling
        } else if (away) {
          to = kRows - 1 - row;
          out = tz.view({1, kCols}, {to, 0});
        }
        // z[to] = x[row] + y[row] + g: three arguments copied before the departing one.
        o.submit_aiv(add_row, Args()
                                  .in(tx.view({kCols}, {row * kCols}))
                                  .in(ty.view({kCols}, {row * kCols}))
                                  .in(tg)
                                  .out_existing(out));
        for (std::uint32_t c = 0; c < kCols; ++c)
          want[to * kCols + c] = x[row * kCols + c] + y[row * kCols + c];
      });
    });
    hold.reset();
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(r.stats.loop_fallbacks, accepted ? 0u : 1u);
    EXPECT_EQ(r.stats.loop_tasks_analysed, (accepted ? kRows : kSwitch) - 2);
    for (std::uint32_t k = 0; k < z.size(); ++k)
      ASSERT_EQ(z[k], want[k]) << "row " << k / kCols << " column " << k % kCols;
  }
}

// The wide replay tests' loop: `rows` iterations, each its own scope, each a fresh-output chain
// over its row of `cols` floats: acc = zeros (alloc), t = `first`(reads(row)) (a fresh output),
// u = t + t (two reads of a buffer the iteration made, a fresh output), acc = u, then row `row`
// of the run's tensor `out` = acc + 1.
template <class Reads>
RunResult run_fresh_chains(Fixture& f, const RunArgs& args, std::uint32_t rows, std::uint32_t cols,
                           KernelId first, const Reads& reads, std::size_t out) {
  return f.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        LoopOptions options;
        options.scope_per_iteration = true;
        o.parallel_for(
            rows,
            [&](Orchestrator& o, std::int64_t i) {
              const auto row = static_cast<std::uint32_t>(i);
              const TensorSpec row_spec({cols}, DType::f32);
              const TaskOutputs acc =
                  o.alloc(Args().out(TensorSpec({cols}, DType::f32).fill(0.0f)));
              if (!acc.valid()) return;
              const TaskOutputs t = o.submit_aiv(first, reads(a, row).out(row_spec));
              if (!t.valid()) return;
              const TaskOutputs u = o.submit_aiv(f.add, Args().in(t[0]).in(t[0]).out(row_spec));
              if (!u.valid()) return;
              o.submit_aiv(f.accum, Args().in(u[0]).inout(acc[0]));  // acc = u
              o.submit_aiv(
                  f.inc, Args().in(acc[0]).out_existing(a.tensor(out).view({cols}, {row * cols})));
            },
            options);
      },
      args);
}

// The wide replayed path (OrchestratorCore::submit_wide, LoopDriver::replay_wide): positions
// that make fresh outputs, read buffers their own iteration made, or read through a permutation
// (a free read whose family closed) are covered like slice writes (RunStats::
// loop_tasks_replayed_wide), with the analysed path's producers and results: each names the
// creators of what it reads and nothing else but producers that may have retired.
TEST_P(ParallelForAnalysedSubmit, WideReplayCoversFreshOutputsTheirReadersAndClosedReads) {
  Fixture f(GetParam().platform, GetParam().record);
  constexpr std::uint32_t kRows = 24;
  constexpr std::uint32_t kCols = 4;
  constexpr std::uint64_t kPerIteration = 5;
  const auto permuted = [](std::uint32_t i) { return (i * 5) % kRows; };
  std::vector<float> x(kRows * kCols), y(kRows * kCols, 0.0f);
  RunArgs args = input_and_output(x, y, 7);
  for (int run = 0; run < 2; ++run) {  // the second run reuses the kept template and plans
    std::fill(y.begin(), y.end(), 0.0f);
    // t = x[perm] + 1: a closed read
    const RunResult r = run_fresh_chains(
        f, args, kRows, kCols, f.inc,
        [&](const OrchestrationArgs& a, std::uint32_t row) {
          return Args().in(a.tensor(0).view({kCols}, {permuted(row) * kCols}));
        },
        1);
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(r.stats.loop_fallbacks, 0u);
    // Every kernel position of the analysed iterations but those before the permuted read's
    // family closed (the first departure from its learned stride).
    EXPECT_GE(r.stats.loop_tasks_replayed_wide, (kPerIteration - 1) * (kRows - 4));
    EXPECT_LE(r.stats.loop_tasks_replayed_wide, r.stats.loop_tasks_analysed);
    for (std::uint32_t row = 0; row < kRows; ++row) {
      for (std::uint32_t c = 0; c < kCols; ++c) {
        const float t = x[permuted(row) * kCols + c] + 1.0f;
        ASSERT_EQ(y[row * kCols + c], 2.0f * t + 1.0f) << "row " << row << " column " << c;
      }
    }
    if (!GetParam().record) continue;
    std::size_t checked = 0;
    for (const TaskEvent& e : r.trace->tasks) {
      const std::uint64_t position = e.sequence % kPerIteration;
      const std::uint64_t alloc = e.sequence - position;
      std::vector<std::uint64_t> must;  // held by the iteration's scope: live
      std::vector<std::uint64_t> may;   // besides: producers that may have retired
      if (position == 2) must = {alloc + 1};
      if (position == 3) must = {alloc, alloc + 2};
      if (position == 4) must = {alloc}, may = {alloc + 3};
      std::vector<std::uint64_t> got = e.producers;
      std::sort(got.begin(), got.end());
      for (const std::uint64_t p : must) {
        EXPECT_TRUE(std::binary_search(got.begin(), got.end(), p))
            << "task " << e.sequence << " (position " << position << ") misses " << p;
      }
      for (const std::uint64_t p : got) {
        EXPECT_TRUE(std::find(must.begin(), must.end(), p) != must.end() ||
                    std::find(may.begin(), may.end(), p) != may.end())
            << "task " << e.sequence << " (position " << position << ") names " << p;
      }
      ++checked;
    }
    EXPECT_EQ(checked, kPerIteration * kRows);
  }
}

// (session 56, pack56) replay_wide checks a closed read by the position's own copies of its
// buffer, version and dtype and a read of a buffer the iteration made by its copy of the creator's
// position and output (TaskPlan::closed, fresh_from), not by the AccessPlan: those copies must
// follow the plans wherever they change. A position with two closed reads of two run arguments
// and one that reads its iteration's fresh output twice, three runs: the second reuses the kept
// template and plans under the same buffers, the third under other buffers (the template's
// outer buffers renamed, reuse_plans): every run's results hold, and the third replays as many
// tasks wide as the second (a stale copy would send the closed reads' position to the analysed
// path in every iteration).
TEST_P(ParallelForAnalysedSubmit, WideReplayChecksClosedReadsByTheRunsOwnBuffers) {
  Fixture f(GetParam().platform, GetParam().record);
  constexpr std::uint32_t kRows = 32;
  constexpr std::uint32_t kCols = 4;
  const auto p = [](std::uint32_t i) { return (i * 5) % kRows; };
  const auto q = [](std::uint32_t i) { return (i * 7 + 3) % kRows; };
  std::vector<float> x[2], z[2];
  for (int set = 0; set < 2; ++set) {
    x[set].resize(kRows * kCols);
    z[set].resize(kRows * kCols);
    for (std::size_t k = 0; k < x[set].size(); ++k) {
      x[set][k] = static_cast<float>(k % 11 + 1 + 20 * set);
      z[set][k] = static_cast<float>(k % 7 + 100 + 40 * set);
    }
  }
  std::vector<float> y(kRows * kCols);
  std::uint64_t wide[3] = {};
  for (int run = 0; run < 3; ++run) {
    const int set = run < 2 ? 0 : 1;  // the third run's inputs are other buffers
    std::fill(y.begin(), y.end(), 0.0f);
    RunArgs args;
    args.input(x[set].data(), {kRows * kCols}, DType::f32);
    args.input(z[set].data(), {kRows * kCols}, DType::f32);
    args.output(y.data(), {kRows * kCols}, DType::f32);
    // t = x[p] + z[q]: two closed reads
    const RunResult r = run_fresh_chains(
        f, args, kRows, kCols, f.add,
        [&](const OrchestrationArgs& a, std::uint32_t row) {
          return Args()
              .in(a.tensor(0).view({kCols}, {p(row) * kCols}))
              .in(a.tensor(1).view({kCols}, {q(row) * kCols}));
        },
        2);
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(r.stats.loop_fallbacks, 0u) << "run " << run;
    wide[run] = r.stats.loop_tasks_replayed_wide;
    for (std::uint32_t row = 0; row < kRows; ++row) {
      for (std::uint32_t c = 0; c < kCols; ++c) {
        const float t = x[set][p(row) * kCols + c] + z[set][q(row) * kCols + c];
        ASSERT_EQ(y[row * kCols + c], 2.0f * t + 1.0f)
            << "run " << run << " row " << row << " column " << c;
      }
    }
  }
  // Every kernel position of the analysed iterations but those before the closed reads' families
  // closed, in each run; the renamed run as the one before it.
  EXPECT_GE(wide[0], 4u * (kRows - 8));
  EXPECT_GE(wide[1], 4u * (kRows - 8));
  EXPECT_EQ(wide[2], wide[1]);
}

// A wide position's submit that departs from the template leaves it to the analysed path, with
// the same results: from iteration kSwitch on, (a) the consumer reads the fresh row the previous
// iteration's maker made (another creator: the loop falls back), (b) the maker's output spec
// asks for another fill (not in the spec's bytes: the wide path fills it as asked), (c) the
// maker's output spec has twice the columns (its layout is not the position's prepared one),
// (d) the maker's output spec has another 4-byte dtype (the same layout; only the bytes of the
// Tensor's last 16-byte word differ, which the wide compare checks apart: LoopDriver::masked_wide;
// maker and consumer are then row_plus_one, which reads and writes any 4-byte dtype as f32).
TEST_P(ParallelForAnalysedSubmit, WideReplayDepartsOnAnotherCreatorFillOrSpec) {
  Fixture f(GetParam().platform, GetParam().record);
  constexpr std::uint32_t kRows = 24;
  constexpr std::uint32_t kCols = 4;
  constexpr std::uint32_t kSwitch = 12;
  std::vector<float> x(kRows * kCols), y(kRows * kCols, 0.0f);
  RunArgs args = input_and_output(x, y, 5);
  const auto row = [](const Tensor& t, std::uint32_t k) { return t.view({kCols}, {k * kCols}); };
  const KernelId row_inc = f.runtime.kernels().add("row_plus_one", CoreType::aiv, &row_plus_one);
  for (const char variant : {'a', 'b', 'c', 'd'}) {
    std::fill(y.begin(), y.end(), 0.0f);
    const RunResult r = f.runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          std::optional<Tensor> previous;  // no scope per iteration: still valid
          o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
            const auto k = static_cast<std::uint32_t>(i);
            const bool departs = k >= kSwitch;
            // made = fill + x[k] (the kernel adds its input to the filled output)
            const float fill = variant == 'b' && departs ? 10.0f : 0.0f;
            const std::uint32_t cols = variant == 'c' && departs ? 2 * kCols : kCols;
            const DType dtype = variant == 'd' && departs ? DType::i32 : DType::f32;
            const TaskOutputs made = o.submit_aiv(
                variant == 'd' ? row_inc : f.accum,
                Args().in(row(a.tensor(0), k)).out(TensorSpec({cols}, dtype).fill(fill)));
            if (!made.valid()) return;
            const Tensor source = variant == 'a' && departs && previous ? *previous
                                  : cols == kCols                       ? made[0]
                                                  : made[0].view({kCols}, {0});
            previous = made[0];
            o.submit_aiv(variant == 'd' ? row_inc : f.inc,
                         Args().in(source).out_existing(row(a.tensor(1), k)));
          });
        },
        args);
    ASSERT_TRUE(r.ok()) << variant << ": " << r.status.to_string();
    // The maker and the consumer of each analysed iteration before kSwitch took the wide path.
    // (d's kernels are not the kept template's: it learns once more before the analysis starts.)
    EXPECT_GE(r.stats.loop_tasks_replayed_wide, 2u * (kSwitch - (variant == 'd' ? 3 : 2)))
        << variant;
    // Another creator is not the template's (the loop falls back); another fill, or another
    // spec whose view the consumer reads as the template's box, is analysed (not replayed wide).
    // The consumer's view of d's buffer has another dtype than the template's: a fall-back too.
    EXPECT_EQ(r.stats.loop_fallbacks, variant == 'a' || variant == 'd' ? 1u : 0u) << variant;
    if (variant == 'c' || variant == 'd') {
      // Only iterations before kSwitch (from the first, when the run reuses a kept template;
      // from iteration 0 when it starts with it, LoopDriver::try_kept_from_start).
      EXPECT_LE(r.stats.loop_tasks_replayed_wide, 2u * kSwitch) << variant;
    }
    if (variant == 'b') {
      EXPECT_GE(r.stats.loop_tasks_replayed_wide, 2u * (kRows - 2));
    }
    for (std::uint32_t k = 0; k < kRows; ++k) {
      const std::uint32_t from = variant == 'a' && k >= kSwitch ? k - 1 : k;
      const float fill = variant == 'b' && k >= kSwitch ? 10.0f : 0.0f;
      const float maker_adds = variant == 'd' ? 1.0f : 0.0f;  // row_plus_one, not accumulate
      for (std::uint32_t c = 0; c < kCols; ++c) {
        ASSERT_EQ(y[k * kCols + c], x[from * kCols + c] + fill + maker_adds + 1.0f)
            << variant << ": row " << k << " column " << c;
      }
    }
  }
}

// out 0 = in + 1; the task's other outputs are left as their fill made them.
void first_out_plus_one(const KernelArgs& a) {
  const Tensor& in = a.tensor(0);
  const Tensor& out = a.tensor(1);
  for (std::uint32_t k = 0; k < in.dim(0); ++k) {
    out.data_as<float>()[k * out.stride(0)] = in.data_as<float>()[k * in.stride(0)] + 1.0f;
  }
}

// A wide position whose task makes three outputs, the first without a fill and the others with
// one that changes each iteration (OrchestratorCore::submit_wide fills after placing every
// output, one test for all): each filled output holds its own iteration's fill when its reader
// runs, and the unfilled one what its maker wrote.
TEST_P(ParallelForAnalysedSubmit, WideReplayFillsEachFilledOutputWithItsIterationsFill) {
  Fixture f(GetParam().platform, GetParam().record);
  constexpr std::uint32_t kRows = 24;
  constexpr std::uint32_t kCols = 4;
  std::vector<float> x(kRows * kCols), y(kRows * kCols, 0.0f), z(kRows * kCols, 0.0f);
  RunArgs args = input_and_output(x, y, 5);
  args.output(z.data(), {kRows * kCols}, DType::f32);
  const auto row = [](const Tensor& t, std::uint32_t k) { return t.view({kCols}, {k * kCols}); };
  const KernelId maker =
      f.runtime.kernels().add("first_out_plus_one", CoreType::aiv, &first_out_plus_one);
  const KernelId add_rows =
      f.runtime.kernels().add("add_two_to_row", CoreType::aiv, &add_two_to_row);
  const RunResult r = f.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
          const auto k = static_cast<std::uint32_t>(i);
          const TaskOutputs made = o.submit_aiv(
              maker, Args()
                         .in(row(a.tensor(0), k))
                         .out(TensorSpec({kCols}, DType::f32))
                         .out(TensorSpec({kCols}, DType::f32).fill(static_cast<float>(k)))
                         .out(TensorSpec({kCols}, DType::f32).fill(100.0f)));
          if (!made.valid()) return;
          o.submit_aiv(add_rows, Args().in(made[1]).in(made[2]).out_existing(row(a.tensor(1), k)));
          o.submit_aiv(f.inc, Args().in(made[0]).out_existing(row(a.tensor(2), k)));
        });
      },
      args);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  // The three tasks of every iteration after the first two took the wide path.
  EXPECT_GE(r.stats.loop_tasks_replayed_wide, 3u * (kRows - 2));
  for (std::uint32_t k = 0; k < kRows; ++k) {
    for (std::uint32_t c = 0; c < kCols; ++c) {
      ASSERT_EQ(y[k * kCols + c], static_cast<float>(k) + 100.0f) << "row " << k << " col " << c;
      ASSERT_EQ(z[k * kCols + c], x[k * kCols + c] + 2.0f) << "row " << k << " col " << c;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Platforms, ParallelForAnalysedSubmit,
                         ::testing::Values(Param{PlatformKind::threads, false},
                                           Param{PlatformKind::threads, true},
                                           Param{PlatformKind::sim, false},
                                           Param{PlatformKind::sim, true},
                                           Param{PlatformKind::threads, false, false},
                                           Param{PlatformKind::sim, false, false}),
                         [](const auto& info) {
                           return platform_suffix(info.param.platform) +
                                  (info.param.record ? "_traced" : "") +
                                  (info.param.wide ? "" : "_narrow_compare");
                         });

// (session 22, pa26) c += a; d += b; y = c + 2 d (five 1-D tensors a, c, d, b, y).
void combine(const KernelArgs& k) {
  const Tensor& a = k.tensor(0);
  const Tensor& c = k.tensor(1);
  const Tensor& d = k.tensor(2);
  const Tensor& b = k.tensor(3);
  const Tensor& y = k.tensor(4);
  for (std::uint32_t e = 0; e < a.dim(0); ++e) {
    float& ce = c.data_as<float>()[e * c.stride(0)];
    float& de = d.data_as<float>()[e * d.stride(0)];
    ce += a.data_as<float>()[e * a.stride(0)];
    de += b.data_as<float>()[e * b.stride(0)];
    y.data_as<float>()[e * y.stride(0)] = ce + 2.0f * de;
  }
}

// A wide position whose reads of buffers its own iteration made come from three creators, one
// of them twice in a row (paged attention's update: softmax's m and l, the chain's accumulators
// of one alloc): LoopDriver::replay_wide looks each creator up once per run of its arguments and
// still checks every argument's buffer. Iteration 9 of another run passes the alloc's two
// outputs swapped, of a third its first and third output (same creator, same spec, another
// buffer: only the second argument of the run differs): not the template's, so the loop falls
// back there and the run's results follow the program. Counted exactly: every kernel position of
// each analysed iteration is wide, and iteration 9's first two positions.
TEST_P(ParallelForAnalysedSubmit, WideReplayChecksEveryBufferOfACreatorsRunOfArguments) {
  constexpr std::uint32_t kRows = 16;
  constexpr std::uint32_t kCols = 4;
  constexpr std::uint64_t kPerIteration = 4;  // alloc, t, u, combine
  // The iteration that departs (kRows: none) and how: 1 swapped, 2 the third output for d.
  for (const auto& [depart, how] : {std::pair{kRows, 0}, std::pair{9u, 1}, std::pair{9u, 2}}) {
    Fixture f(GetParam().platform, GetParam().record);  // each case its own first run
    const KernelId combine_kernel = f.runtime.kernels().add("combine", CoreType::aiv, &combine);
    std::vector<float> x(kRows * kCols), y(kRows * kCols, -1.0f);
    RunArgs args = input_and_output(x, y, 11);
    const RunResult r = f.runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          LoopOptions options;
          options.scope_per_iteration = true;
          o.parallel_for(
              kRows,
              [&](Orchestrator& o, std::int64_t i) {
                const auto row = static_cast<std::uint32_t>(i);
                const TensorSpec zeros = TensorSpec({kCols}, DType::f32).fill(0.0f);
                const TaskOutputs acc = o.alloc(Args().out(zeros).out(zeros).out(zeros));
                if (!acc.valid()) return;
                const TaskOutputs t =
                    o.submit_aiv(f.inc, Args()
                                            .in(a.tensor(0).view({kCols}, {row * kCols}))
                                            .out(TensorSpec({kCols}, DType::f32)));
                if (!t.valid()) return;
                const TaskOutputs u =
                    o.submit_aiv(f.inc, Args().in(t[0]).out(TensorSpec({kCols}, DType::f32)));
                if (!u.valid()) return;
                const int odd = row == depart ? how : 0;
                o.submit_aiv(combine_kernel,
                             Args()
                                 .in(t[0])
                                 .inout(acc[odd == 1 ? 1 : 0])
                                 .inout(acc[odd == 0   ? 1
                                            : odd == 1 ? 0
                                                       : 2])
                                 .in(u[0])
                                 .out_existing(a.tensor(1).view({kCols}, {row * kCols})));
              },
              options);
        },
        args);
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    // c = t = x + 1 and d = u = x + 2 either way (a departure only renames the accumulators).
    for (std::uint32_t k = 0; k < kRows * kCols; ++k)
      ASSERT_EQ(y[k], 3.0f * x[k] + 5.0f) << "depart " << how << " element " << k;
    const bool departs = depart < kRows;
    EXPECT_EQ(r.stats.loop_fallbacks, departs ? 1u : 0u) << "depart " << how;
    // Iterations 2 on are analysed, up to the departing combine.
    const std::uint64_t wide = (kPerIteration - 1) * (depart - 2) + (departs ? 2 : 0);
    EXPECT_EQ(r.stats.loop_tasks_replayed_wide, wide) << "depart " << how;
    if (!GetParam().record) continue;
    // Each combine names the iteration's alloc, t and u, and nothing else.
    std::size_t checked = 0;
    for (const TaskEvent& e : r.trace->tasks) {
      if (e.sequence % kPerIteration != 3) continue;
      const std::uint64_t alloc = e.sequence - 3;
      std::vector<std::uint64_t> got = e.producers;
      std::sort(got.begin(), got.end());
      EXPECT_EQ(got, (std::vector<std::uint64_t>{alloc, alloc + 1, alloc + 2}))
          << "task " << e.sequence;
      ++checked;
    }
    EXPECT_EQ(checked, kRows);
  }
}

// (session 53, cmp53) A wide replayed reader of a buffer its iteration's earlier position made
// must check that buffer's identity (base and owner), whichever part of the replay compares it.
// Each iteration splits its row of x into x + 1 and x + 2 (position 0) and writes y = x + 2 from
// the first (position 1). At iteration kDepart position 1 reads instead the previous iteration's
// first output (another owner and base: how 1) or this iteration's second one (the same owner,
// another base: how 2): neither is the template's buffer, so the loop falls back there once, and
// every row is right.
void plus_one_and_two(const KernelArgs& a) {
  const Tensor& in = a.tensor(0);
  const Tensor& one = a.tensor(1);
  const Tensor& two = a.tensor(2);
  for (std::uint32_t k = 0; k < in.dim(0); ++k) {
    const float v = in.data_as<float>()[k * in.stride(0)];
    one.data_as<float>()[k * one.stride(0)] = v + 1.0f;
    two.data_as<float>()[k * two.stride(0)] = v + 2.0f;
  }
}
TEST_P(ParallelForAnalysedSubmit, WideReplayComparesAFreshInputsOwnerAndBuffer) {
  constexpr std::uint32_t kRows = 16;
  constexpr std::uint32_t kCols = 4;
  constexpr std::uint32_t kDepart = 9;
  for (const int how : {0, 1, 2}) {
    Fixture f(GetParam().platform, GetParam().record);
    const KernelId split =
        f.runtime.kernels().add("plus_one_and_two", CoreType::aiv, &plus_one_and_two);
    std::vector<float> x(kRows * kCols), y(kRows * kCols, -1.0f);
    RunArgs args = input_and_output(x, y, 7);
    const RunResult r = f.runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          std::optional<Tensor> previous;  // the last iteration's first output
          o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
            const auto row = static_cast<std::uint32_t>(i);
            const TaskOutputs s =
                o.submit_aiv(split, Args()
                                        .in(a.tensor(0).view({kCols}, {row * kCols}))
                                        .out(TensorSpec({kCols}, DType::f32))
                                        .out(TensorSpec({kCols}, DType::f32)));
            if (!s.valid()) return;
            const Tensor& read = row != kDepart || how == 0 ? s[0] : how == 1 ? *previous : s[1];
            o.submit_aiv(f.inc,
                         Args().in(read).out_existing(a.tensor(1).view({kCols}, {row * kCols})));
            previous = s[0];
          });
        },
        args);
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    for (std::uint32_t k = 0; k < kRows * kCols; ++k) {
      const std::uint32_t row = k / kCols;
      const float want = row != kDepart || how == 0 ? x[k] + 2.0f
                         : how == 1                 ? x[k - kCols] + 2.0f
                                                    : x[k] + 3.0f;
      ASSERT_EQ(y[k], want) << "how " << how << " element " << k;
    }
    const bool departs = how != 0;
    EXPECT_EQ(r.stats.loop_fallbacks, departs ? 1u : 0u) << "how " << how;
    // Iterations 2 on are analysed, up to the departing reader.
    const std::uint64_t wide = departs ? 2 * (kDepart - 2) + 1 : 2 * (kRows - 2);
    EXPECT_EQ(r.stats.loop_tasks_replayed_wide, wide) << "how " << how;
  }
}

// (session 22, pa26) The deferred entries of wide replayed readers (OrchestratorCore::submit_wide
// records them inline, LoopDriver::record_unmapped): each iteration makes F = x + 1 and a held
// reader writes y = F + 1; after the loop, a plain accumulate per row writes F += x, which must
// wait for that row's reader (WAR), found only through the reader's deferred entry once the loop
// ended. On threads the readers are held until every writer is submitted: a writer wired
// without the edge would change F under its reader (y would be 2 x + 3). (A traced run wires
// through submit_wide's guarded branch, which records as before.)
// (session 24, pa28) 300 rows: past 256 entries the list is compacted at an iteration's end
// (LoopDriver::drop_retired_deferred); on threads every reader is live (held), so the compaction
// must keep every entry.
TEST_P(ParallelForAnalysedSubmit, WideReadersDeferredEntriesOrderWritersAfterTheLoop) {
  for (const std::uint32_t kRows : {16u, 300u}) {
    Fixture f(GetParam().platform, GetParam().record);
    // Makers and writers on the AIC cores, which the held readers leave free.
    const KernelId inc_aic = f.runtime.kernels().add("plus_one_aic", CoreType::aic, &plus_one);
    const KernelId accum_aic =
        f.runtime.kernels().add("accumulate_aic", CoreType::aic, &accumulate);
    constexpr std::uint32_t kCols = 4;
    std::vector<float> x(kRows * kCols), y(kRows * kCols, -1.0f), after(kRows * kCols, 0.0f);
    RunArgs args = input_and_output(x, y, 7);
    released = GetParam().platform == PlatformKind::sim;  // the sim would only stall on it
    const RunResult r = f.runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          const auto row = [&](int arg, std::uint32_t k) {
            return a.tensor(arg).view({kCols}, {k * kCols});
          };
          std::vector<Tensor> made;  // alive in the run's scope after the loop
          o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
            const auto k = static_cast<std::uint32_t>(i);
            const TaskOutputs t =
                o.submit_aic(inc_aic, Args().in(row(0, k)).out(TensorSpec({kCols}, DType::f32)));
            if (!t.valid()) return;
            made.push_back(t[0]);
            o.submit_aiv(f.held, Args().in(t[0]).out_existing(row(1, k)));
          });
          if (made.size() != kRows) return;
          for (const Tensor& t : made)
            o.wait_for(t);  // every maker done: a writer without its reader's edge would run now
          for (std::uint32_t k = 0; k < kRows; ++k)
            o.submit_aic(accum_aic, Args().in(row(0, k)).inout(made[k]));
          released = true;
          for (std::uint32_t k = 0; k < kRows; ++k) {
            o.wait_for(made[k]);
            for (std::uint32_t c = 0; c < kCols; ++c)
              after[k * kCols + c] = static_cast<const float*>(made[k].data())[c];
          }
        },
        args);
    released = true;
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(r.stats.loop_fallbacks, 0u);
    EXPECT_EQ(r.stats.loop_tasks_replayed_wide, 2u * (kRows - 2));
    for (std::uint32_t k = 0; k < kRows * kCols; ++k) {
      ASSERT_EQ(y[k], x[k] + 2.0f) << "rows " << kRows << ", element " << k;
      ASSERT_EQ(after[k], 2.0f * x[k] + 1.0f) << "rows " << kRows << ", element " << k;
    }
    if (!GetParam().record) continue;
    // Writer k (sequence 2 kRows + k) names reader k (2 k + 1), live while held on threads; on
    // the sim it may have retired, so there the recorded spans show the order.
    std::map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> span;
    for (const SubtaskEvent& e : r.trace->subtasks) {
      auto [it, fresh] = span.try_emplace(e.task_sequence, e.start_ns, e.end_ns);
      if (!fresh) it->second.second = std::max(it->second.second, e.end_ns);
    }
    for (const TaskEvent& e : r.trace->tasks) {
      if (e.sequence < 2 * kRows) continue;
      const std::uint64_t reader = 2 * (e.sequence - 2 * kRows) + 1;
      if (GetParam().platform == PlatformKind::threads) {
        EXPECT_NE(std::find(e.producers.begin(), e.producers.end(), reader), e.producers.end())
            << "rows " << kRows << ", writer " << e.sequence;
      }
      EXPECT_LE(span.at(reader).second, span.at(e.sequence).first)
          << "rows " << kRows << ", writer " << e.sequence;
    }
  }
}

// (session 30, iter34) A steady analysed loop compacts its deferred entries as it goes: each
// iteration makes F = x + 1 and a wide replayed reader writes y = F + 1, whose access to F is
// deferred (LoopDriver::record_unmapped). Under a 16-slot window nearly every earlier task has
// retired when an iteration ends, so the list, compacted whenever it doubles past 256 entries
// (LoopDriver::end_steady, settle_deferred, drop_retired_deferred), stays far below the loop's
// 1,200 readers; a steady end that skipped the compaction of an iteration that deferred entries
// would keep them all (memory only: no result shows it). Its length is read in the body.
TEST_P(ParallelForAnalysedSubmit, SteadyLoopCompactsItsDeferredEntries) {
  constexpr std::uint32_t kRows = 1200;
  constexpr std::uint32_t kCols = 4;
  RingConfig ring;
  ring.task_window = 16;
  Fixture f(GetParam().platform, GetParam().record, ring);
  std::vector<float> x(kRows * kCols), y(kRows * kCols, -1.0f);
  RunArgs args = input_and_output(x, y, 7);
  std::size_t peak = 0;
  const RunResult r = f.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        const auto row = [&](int arg, std::uint32_t k) {
          return a.tensor(arg).view({kCols}, {k * kCols});
        };
        LoopOptions options;
        options.scope_per_iteration = true;  // each F is released with its iteration's scope
        o.parallel_for(
            kRows,
            [&](Orchestrator& o, std::int64_t i) {
              const auto k = static_cast<std::uint32_t>(i);
              peak = std::max(peak, detail::OrchestratorCore::of(o).loops().deferred_count());
              const TaskOutputs t =
                  o.submit_aiv(f.inc, Args().in(row(0, k)).out(TensorSpec({kCols}, DType::f32)));
              if (!t.valid()) return;
              o.submit_aiv(f.inc, Args().in(t[0]).out_existing(row(1, k)));
            },
            options);
      },
      args);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.stats.loop_fallbacks, 0u);
  EXPECT_GE(r.stats.loop_iterations_analysed, kRows - 2);
  EXPECT_GE(r.stats.loop_tasks_replayed_wide, kRows - 2);
  for (std::uint32_t k = 0; k < kRows * kCols; ++k)
    ASSERT_EQ(y[k], x[k] + 2.0f) << "element " << k;
  EXPECT_LT(peak, kRows / 2) << "the deferred list was not compacted";
}

// (session 23, pa27) A wide position's producers come from its precomputed list
// (LoopDriver::wide_producers: same-iteration edges and creators, each position once, carried
// edges, no duplicate search). Each iteration: t = x + 1 (held on threads until the iteration
// that fails, if any), u = t + 1, and a wide combine reading t, two accumulators of the
// iteration's alloc and u (t and u: creators and template edges; the alloc: a creator). Results
// against the formula; traced, each combine's producers are exactly the iteration's alloc, t
// and u, and each u's its t. In a second run,
// iteration 9 makes t inside a scope of its own that ends before u and combine read it: the run
// ends naming it (its creator's scope ended; on threads t is still live, held), never by wiring
// a reader to it.
TEST_P(ParallelForAnalysedSubmit, WideProducersListEachTaskOnceAndNameAScopeEndedCreator) {
  constexpr std::uint32_t kRows = 14;
  constexpr std::uint32_t kCols = 4;
  constexpr std::uint64_t kPerIteration = 4;        // alloc, t, u, combine
  for (const std::uint32_t closed : {kRows, 9u}) {  // kRows: no scope ends early
    Fixture f(GetParam().platform, GetParam().record);
    const KernelId combine_kernel = f.runtime.kernels().add("combine", CoreType::aiv, &combine);
    const KernelId held_aic = f.runtime.kernels().add("held_aic", CoreType::aic, &held_plus_one);
    std::vector<float> x(kRows * kCols), y(kRows * kCols, -1.0f);
    RunArgs args = input_and_output(x, y, 5);
    released = GetParam().platform == PlatformKind::sim || closed == kRows;
    const RunResult r = f.runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          LoopOptions options;
          options.scope_per_iteration = true;
          o.parallel_for(
              kRows,
              [&](Orchestrator& o, std::int64_t i) {
                const auto row = static_cast<std::uint32_t>(i);
                const TensorSpec zeros = TensorSpec({kCols}, DType::f32).fill(0.0f);
                const TaskOutputs acc = o.alloc(Args().out(zeros).out(zeros).out(zeros));
                if (!acc.valid()) return;
                const Args make_t = Args()
                                        .in(a.tensor(0).view({kCols}, {row * kCols}))
                                        .out(TensorSpec({kCols}, DType::f32));
                TaskOutputs t;
                if (row == closed) {
                  o.scope_begin();
                  t = o.submit_aic(held_aic, make_t);
                  o.scope_end();
                } else {
                  t = o.submit_aic(held_aic, make_t);
                }
                if (!t.valid()) return;
                const TaskOutputs u =
                    o.submit_aiv(f.inc, Args().in(t[0]).out(TensorSpec({kCols}, DType::f32)));
                if (row == closed) released = true;  // the error is named (or not) by now
                if (!u.valid()) return;
                o.submit_aiv(combine_kernel,
                             Args().in(t[0]).inout(acc[0]).inout(acc[1]).in(u[0]).out_existing(
                                 a.tensor(1).view({kCols}, {row * kCols})));
              },
              options);
        },
        args);
    released = true;
    if (closed < kRows) {
      EXPECT_EQ(r.status.code, ErrorCode::invalid_args) << r.status.to_string();
      // Iterations 2 to 8 went wide, then t of iteration 9 and, t being live (held), u's check.
      if (GetParam().platform == PlatformKind::threads) {
        EXPECT_EQ(r.stats.loop_tasks_replayed_wide, (kPerIteration - 1) * (closed - 2) + 2);
      }
      continue;
    }
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(r.stats.loop_fallbacks, 0u);
    EXPECT_EQ(r.stats.loop_tasks_replayed_wide, (kPerIteration - 1) * (kRows - 2));
    // c = t = x + 1 and d = u = x + 2: y = c + 2 d.
    for (std::uint32_t k = 0; k < kRows * kCols; ++k)
      ASSERT_EQ(y[k], 3.0f * x[k] + 5.0f) << "element " << k;
    if (!GetParam().record) continue;
    std::size_t checked = 0;
    for (const TaskEvent& e : r.trace->tasks) {
      const std::uint64_t alloc = e.sequence - e.sequence % kPerIteration;
      std::vector<std::uint64_t> got = e.producers;
      std::sort(got.begin(), got.end());
      if (e.sequence % kPerIteration == 2) {
        EXPECT_EQ(got, (std::vector<std::uint64_t>{alloc + 1})) << "task " << e.sequence;
      } else if (e.sequence % kPerIteration == 3) {
        EXPECT_EQ(got, (std::vector<std::uint64_t>{alloc, alloc + 1, alloc + 2}))
            << "task " << e.sequence;
      } else {
        continue;
      }
      ++checked;
    }
    EXPECT_EQ(checked, 2 * kRows);
  }
}

// Wide submits whose iteration scopes sit on a deeper ring than the run's (the loop inside an
// explicit scope: ring 2), with a heap of a few iterations' outputs and more submits than the
// periodic sync's count: OrchestratorCore::submit_wide places the outputs in its scope ring's
// heap (the ring its callers pass, whose window and sync they tested), waiting for room when
// the heap is full. Two runs: the second starts from the kept template. Every value checked.
TEST_P(ParallelForAnalysedSubmit, WideSubmitsOfANestedScopeUseItsRingsHeap) {
  constexpr std::uint32_t kRows = 160;
  constexpr std::uint32_t kCols = 16;  // 64 bytes an output: the heap holds 32 of them
  RingConfig ring;
  ring.heap_bytes = 2048;
  Fixture f(GetParam().platform, GetParam().record, ring);
  std::vector<float> x(kRows * kCols), y(kRows * kCols);
  RunArgs args = input_and_output(x, y, 9);
  for (int run = 0; run < 2; ++run) {
    std::fill(y.begin(), y.end(), 0.0f);
    const RunResult r = f.runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          LoopOptions options;
          options.scope_per_iteration = true;
          o.scope_begin();
          o.parallel_for(
              kRows,
              [&](Orchestrator& o, std::int64_t i) {
                const auto row = static_cast<std::uint32_t>(i);
                // t = x + 1, u = t + t (fresh outputs), y = u + 1
                const TaskOutputs t =
                    o.submit_aiv(f.inc, Args()
                                            .in(a.tensor(0).view({kCols}, {row * kCols}))
                                            .out(TensorSpec({kCols}, DType::f32)));
                if (!t.valid()) return;
                const TaskOutputs u = o.submit_aiv(
                    f.add, Args().in(t[0]).in(t[0]).out(TensorSpec({kCols}, DType::f32)));
                if (!u.valid()) return;
                o.submit_aiv(
                    f.inc, Args().in(u[0]).out_existing(a.tensor(1).view({kCols}, {row * kCols})));
              },
              options);
          o.scope_end();
        },
        args);
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(r.stats.loop_fallbacks, 0u);
    // Every position of the analysed iterations goes wide (the first run learns two).
    EXPECT_GE(r.stats.loop_tasks_replayed_wide, 3u * (kRows - 2)) << "run " << run;
    for (std::uint32_t k = 0; k < kRows * kCols; ++k)
      ASSERT_EQ(y[k], 2.0f * (x[k] + 1.0f) + 1.0f) << "run " << run << " element " << k;
  }
}

// (session 31, batch35) A replaying loop passes the periodic-sync and window tests once for a
// batch of submits (OrchestratorCore::grant_room: a room credit), not once a submit: 2,048
// one-task iterations of slice writes under the default window take at most one grant per 16
// submits (one per sync period of 64 expected). Counted in the orchestration after the loop.
TEST_P(ParallelForAnalysedSubmit, ReplayingLoopTestsRoomOncePerBatch) {
  constexpr std::uint32_t kRows = 2048;
  Fixture f(GetParam().platform, GetParam().record, RingConfig{});  // every task live at once
  std::vector<float> x(kRows), y(kRows, -1.0f);
  RunArgs args = input_and_output(x, y, 9);
  std::uint64_t grants = 0;
  const RunResult r = f.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
          const auto k = static_cast<std::uint32_t>(i);
          o.submit_aiv(
              f.inc,
              Args().in(a.tensor(0).view({1}, {k})).out_existing(a.tensor(1).view({1}, {k})));
        });
        grants = detail::OrchestratorCore::of(o).room_grants();
      },
      args);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.stats.loop_fallbacks, 0u);
  EXPECT_EQ(r.stats.loop_tasks_analysed, kRows - 2);
  for (std::uint32_t k = 0; k < kRows; ++k)
    ASSERT_EQ(y[k], x[k] + 1.0f) << "row " << k;
  EXPECT_GE(grants, 1u) << "no replaying submit took a room credit";
  EXPECT_LE(grants, kRows / 16) << "room tested once a submit, not once a batch";
}

// The two programs of the room-credit tests, in parallel_for loops (`loops`) or plain ones.
// Program 1: a 16-slot window whose tasks are held on threads for the first 50 ms, so the
// orchestrator fills the window and waits. Program 2: each row submits on its scope's ring and
// then inside a nested scope on the next ring. Checks the results against the sequential
// program's and, on threads, that the orchestrator waited for room and that the window held no
// more than its room (15 tasks of 16 slots: a credit of one submit more admits a 16th) while
// its tasks were held; returns the room grants of each program.
struct RoomCreditGrants {
  std::uint64_t window = 0;
  std::uint64_t rings = 0;
};
RoomCreditGrants run_room_credit_programs(const Param& param, bool loops, std::size_t period) {
  constexpr std::uint32_t kRows = 600;
  RingConfig ring;
  ring.task_window = 16;
  Fixture f(param.platform, param.record, ring);
  const bool threads = param.platform == PlatformKind::threads;
  std::vector<float> x(kRows), y(kRows, -1.0f), z(kRows, -1.0f);
  RunArgs args = input_and_output(x, y, period);
  args.output(z.data(), {kRows}, DType::f32);
  RoomCreditGrants grants;
  released = !threads;
  // Program 1's submits that returned: while the tasks are held none retires, so these are the
  // window's live tasks when the opener releases them.
  std::atomic<std::uint32_t> admitted{0};
  std::uint32_t admitted_while_held = 0;
  std::thread opener([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    admitted_while_held = admitted.load();
    released = true;
  });
  const RunResult r = f.runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        const auto row = [&](int arg, std::uint32_t k) { return a.tensor(arg).view({1}, {k}); };
        const auto rows = [&](const std::function<void(Orchestrator&, std::uint32_t)>& body) {
          if (loops) {
            o.parallel_for(kRows, [&](Orchestrator& lo, std::int64_t i) {
              body(lo, static_cast<std::uint32_t>(i));
            });
          } else {
            for (std::uint32_t k = 0; k < kRows; ++k)
              body(o, k);
          }
        };
        rows([&](Orchestrator& o, std::uint32_t k) {
          o.submit_aiv(f.held, Args().in(row(0, k)).out_existing(row(1, k)));
          admitted.fetch_add(1);
        });
        grants.window = detail::OrchestratorCore::of(o).room_grants();
        rows([&](Orchestrator& o, std::uint32_t k) {
          o.submit_aiv(f.inc, Args().in(row(1, k)).out_existing(row(1, k)));
          o.scope_begin();
          o.submit_aiv(f.inc, Args().in(row(1, k)).out_existing(row(2, k)));
          o.scope_end();
        });
        grants.rings = detail::OrchestratorCore::of(o).room_grants() - grants.window;
      },
      args);
  opener.join();
  released = true;
  EXPECT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.stats.loop_fallbacks, 0u);
  for (std::uint32_t k = 0; k < kRows; ++k) {
    EXPECT_EQ(y[k], x[k] + 2.0f) << "row " << k;
    EXPECT_EQ(z[k], x[k] + 3.0f) << "row " << k;
    if (y[k] != x[k] + 2.0f || z[k] != x[k] + 3.0f) break;
  }
  if (threads) {
    EXPECT_GE(r.stats.orchestrator_ring_waits, 1u);
    EXPECT_LE(admitted_while_held, ring.task_window - 1) << "a credit covered more than the room";
  }
  return grants;
}

// (session 31, batch35) A room credit never outlasts what its tests proved: it covers at most
// the window's free slots at its grant and only the ring it was granted on, so the full tests
// (and, when the window is full, the wait for room) come back. In program 1 each grant covers at
// most 15 submits; in program 2 every submit finds the credit on the other ring and takes a
// grant of its own.
TEST_P(ParallelForAnalysedSubmit, RoomCreditsEndAtTheWindowAndAtAnotherRing) {
  constexpr std::uint32_t kRows = 600;
  const RoomCreditGrants grants = run_room_credit_programs(GetParam(), true, 11);
  EXPECT_GE(grants.window, (kRows - 10) / 15) << "a credit covered more than the window's room";
  // About two an iteration (less the submits that find a sync due and take the general path);
  // a credit used on the other ring would leave one per sync period.
  EXPECT_GE(grants.rings, kRows) << "a credit was used on another ring";
}

// (session 32, plain36) Plain submits take the same room credits (credit_room): the sync and
// window tests once a batch. The same two programs without parallel_for: a credit past the
// window's free slots would admit over a live slot, and a credit of one ring used on the other
// would overfill it; either breaks the results checked against the sequential program's. A
// credit of one submit more (the count taken before credit_room's limit) fills the reserved
// slot: program 1's 16th admit while its tasks are held (session 33, tidy37).
TEST_P(ParallelForAnalysedSubmit, PlainRoomCreditsEndAtTheWindowAndAtAnotherRing) {
  run_room_credit_programs(GetParam(), false, 13);
}

}  // namespace
}  // namespace tmr::testing
