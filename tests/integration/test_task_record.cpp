// The compact task record (docs/design.md, "Task records"): a record holds kInlineTensorArgs
// tensors and kInlineScalarArgs scalars inline; a task with more keeps them in its slot's spill
// area (tensors and scalars spill independently). On both platforms: tasks at each boundary, the
// limits (16 tensors, 128 scalars), slots of a tiny ring alternating between spilled and inline
// tasks as it wraps, and parallel_for's replayed submits (their tensors copied into the record the
// next admit fills, before that admit) with spilled arguments, a replay mismatch included. Every
// kernel checks every argument value: it returns a weighted sum of all of them and its counts.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/task.hpp"
#include "support/platforms.hpp"
#include "support/task_window.hpp"
#include "tmr/tmr.hpp"

namespace tmr::testing {
namespace {

using detail::kInlineScalarArgs;
using detail::kInlineTensorArgs;

std::uint32_t fold(std::uint64_t bits) {
  return static_cast<std::uint32_t>(bits) ^ static_cast<std::uint32_t>(bits >> 32);
}

// Tensors 0..n-2 are inputs (i32 views), the last is an i32 output of 2 elements (a single task)
// or a 1 x `cols` row (a loop's). Along each one's last dimension, out[c] = sum_j (j+1) *
// in_j[c mod len_j] +
// sum_s (s+1) * scalar_s, in 32-bit unsigned arithmetic (wrapping, exact on both sides); out[1]
// of a single task is tensor_count * 1000 + scalar_count.
void weighted_sum(const KernelArgs& a) {
  const Tensor& out = a.tensor(a.tensor_count() - 1);
  std::uint32_t scalar_part = 0;
  for (int s = 0; s < a.scalar_count(); ++s)
    scalar_part += std::uint32_t(s + 1) * fold(a.scalar_bits(s));
  auto* y = out.data_as<std::int32_t>();
  const int od = out.ndims() - 1;  // along the last dimension (a loop's row views are 1 x n)
  for (std::uint32_t c = 0; c < out.dim(od); ++c) {
    std::uint32_t sum = scalar_part;
    for (int j = 0; j + 1 < a.tensor_count(); ++j) {
      const Tensor& in = a.tensor(j);
      const int d = in.ndims() - 1;
      sum += std::uint32_t(j + 1) *
             std::uint32_t(in.data_as<std::int32_t>()[(c % in.dim(d)) * in.stride(d)]);
    }
    y[c * out.stride(od)] = static_cast<std::int32_t>(sum);
  }
}
void weighted_sum_with_counts(const KernelArgs& a) {
  weighted_sum(a);
  const Tensor& out = a.tensor(a.tensor_count() - 1);
  out.data_as<std::int32_t>()[out.stride(0)] = a.tensor_count() * 1000 + a.scalar_count();
}

RuntimeConfig config_for(PlatformKind platform, std::uint32_t window) {
  RuntimeConfig config;
  config.platform = platform;
  config.clusters = 2;
  config.scheduler_threads = 2;
  config.stall_timeout_s = 30;
  config.parallel_for_analysis = true;
  config.ring.task_window = window;
  return config;
}

struct Shape2 {
  int tensors;  // including the output
  int scalars;
};

// Boundaries of the inline storage, each side, and the limits.
std::vector<Shape2> boundary_shapes() {
  return {{1, 0},
          {kInlineTensorArgs, kInlineScalarArgs},
          {kInlineTensorArgs + 1, kInlineScalarArgs},  // tensors spill
          {kInlineTensorArgs, kInlineScalarArgs + 1},  // scalars spill
          {kInlineTensorArgs + 1, kInlineScalarArgs + 1},
          {2, kInlineScalarArgs + 1},  // only scalars spill, few tensors
          {7, 2},                      // only tensors spill (paged attention's update task)
          {4, 8},
          {4, 9},
          {kMaxTensorArgs, 0},
          {1, kMaxScalarArgs},
          {kMaxTensorArgs, kMaxScalarArgs},
          {3, 1}};
}

constexpr std::uint32_t kInputs = 97;

// Input j of task t reads x[(7 t + 3 j) mod kInputs]; scalar s is 11 t + 5 s + 1.
std::uint32_t input_index(std::uint32_t t, int j) {
  return (7 * t + 3 * static_cast<std::uint32_t>(j)) % kInputs;
}
std::uint64_t scalar_value(std::uint32_t t, int s) {
  return 11ull * t + 5ull * static_cast<std::uint64_t>(s) + 1;
}
std::int32_t expected_sum(std::uint32_t t, const Shape2& shape,
                          const std::vector<std::int32_t>& x) {
  std::uint32_t sum = 0;
  for (int s = 0; s < shape.scalars; ++s)
    sum += std::uint32_t(s + 1) * fold(scalar_value(t, s));
  for (int j = 0; j + 1 < shape.tensors; ++j)
    sum += std::uint32_t(j + 1) * std::uint32_t(x[input_index(t, j)]);
  return static_cast<std::int32_t>(sum);
}

// Submits `tasks` tasks cycling through `shapes`, task t writing row t of an output [tasks, 2].
void run_shapes(PlatformKind platform, std::uint32_t window, const std::vector<Shape2>& shapes,
                std::uint32_t tasks) {
  Runtime runtime(config_for(platform, window));
  const KernelId k =
      runtime.kernels().add("weighted_sum", CoreType::aiv, &weighted_sum_with_counts);
  std::vector<std::int32_t> x(kInputs);
  for (std::uint32_t i = 0; i < kInputs; ++i)
    x[i] = static_cast<std::int32_t>(i * 2654435761u >> 8);
  std::vector<std::int32_t> y(std::size_t{tasks} * 2, -1);
  RunArgs args;
  args.input(x.data(), {kInputs}, DType::i32);
  args.output(y.data(), {tasks, 2}, DType::i32);
  const RunResult r = runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        for (std::uint32_t t = 0; t < tasks; ++t) {
          const Shape2& shape = shapes[t % shapes.size()];
          Args task_args;
          for (int j = 0; j + 1 < shape.tensors; ++j)
            task_args.in(a.tensor(0).view({1}, {input_index(t, j)}));
          task_args.out_existing(a.tensor(1).view({1, 2}, {t, 0}).reshape({2}));
          for (int s = 0; s < shape.scalars; ++s)
            task_args.scalar(scalar_value(t, s));
          o.submit_aiv(k, task_args);
        }
      },
      args);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  for (std::uint32_t t = 0; t < tasks; ++t) {
    const Shape2& shape = shapes[t % shapes.size()];
    ASSERT_EQ(y[2 * t], expected_sum(t, shape, x))
        << "task " << t << " (" << shape.tensors << " tensors, " << shape.scalars << " scalars)";
    ASSERT_EQ(y[2 * t + 1], shape.tensors * 1000 + shape.scalars) << "task " << t;
  }
}

class TaskRecordArgs : public ::testing::TestWithParam<PlatformKind> {};

TEST_P(TaskRecordArgs, EveryBoundaryShapeSeesItsArguments) {
  // Each shape alone (a fresh ring: each record first used by it), then all of them mixed; at
  // most 400 tasks, so the few-tasks window never wraps.
  for (const Shape2& shape : boundary_shapes()) {
    SCOPED_TRACE(std::to_string(shape.tensors) + " tensors, " + std::to_string(shape.scalars) +
                 " scalars");
    run_shapes(GetParam(), kFewTasksWindow, {shape}, 40);
  }
  run_shapes(GetParam(), kFewTasksWindow, boundary_shapes(), 400);
}

// A ring of 8 slots and a cycle of 13 shapes: as the ring wraps, each slot's tasks go from
// inline to spilled and back, for tensors and scalars separately, while the 7 tasks before it are
// still live (the spill area of one slot is never another's).
TEST_P(TaskRecordArgs, SlotsAlternateSpilledAndInlineAcrossWrapAround) {
  run_shapes(GetParam(), 8, boundary_shapes(), 1000);
  // Runs of neighbouring spilled tasks (their spill areas are neighbours too), on 8 and 4 slots.
  const std::vector<Shape2> runs = {{kInlineTensorArgs + 2, kInlineScalarArgs + 2},
                                    {kInlineTensorArgs + 2, 1},
                                    {2, kInlineScalarArgs + 2},
                                    {kInlineTensorArgs + 1, kInlineScalarArgs + 1},
                                    {3, 2}};
  run_shapes(GetParam(), 8, runs, 1000);
  run_shapes(GetParam(), 4, runs, 300);
}

// parallel_for's analysed submits with spilled arguments: `kIns` row views of one input and the
// output row, and `scalars` scalars. Each iteration's task is
// one position whose every argument is an outer view moving by one row per iteration, so after
// the learning iterations it takes the replayed path (LoopDriver::replay_into copies its tensors
// into the storage the next admit binds: the spill area when they do not fit inline).
// `mismatch_at` >= 0: that iteration's last input reads another row (the replay check copies and
// then rejects it; the submit takes the generic steps and the loop falls back).
struct LoopRun {
  RunStats stats;
  bool ok = false;
};
template <int kIns>
LoopRun run_loop(PlatformKind platform, std::uint32_t window, int scalars, std::int64_t mismatch_at,
                 std::uint32_t rows) {
  constexpr std::uint32_t kCols = 4;
  Runtime runtime(config_for(platform, window));
  const KernelId k = runtime.kernels().add("weighted_sum", CoreType::aiv, &weighted_sum);
  // xs[j]: input j, [rows, kCols]; iteration i reads row i of each (or, at the mismatch, row
  // (i + 1) % rows of the last), as the benchmarks' slice writes do (one buffer per argument).
  std::vector<std::vector<std::int32_t>> xs(kIns, std::vector<std::int32_t>(rows * kCols));
  for (int j = 0; j < kIns; ++j) {
    for (std::size_t e = 0; e < xs[j].size(); ++e) {
      xs[j][e] = static_cast<std::int32_t>(
          (static_cast<std::uint32_t>(e) + 977u * static_cast<std::uint32_t>(j)) * 2654435761u >>
          4);
    }
  }
  std::vector<std::int32_t> y(std::size_t{rows} * kCols, -1);
  auto row_of = [&](std::uint32_t i, int j) {
    const bool moved = static_cast<std::int64_t>(i) == mismatch_at && j == kIns - 1;
    return moved ? (i + 1) % rows : i;
  };
  const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    std::vector<Tensor> ins;
    for (int j = 0; j < kIns; ++j)
      ins.push_back(Tensor::wrap(xs[j].data(), {rows, kCols}, DType::i32));
    const Tensor out = Tensor::wrap(y.data(), {rows, kCols}, DType::i32);
    o.parallel_for(rows, [&](Orchestrator& o, std::int64_t iteration) {
      const auto i = static_cast<std::uint32_t>(iteration);
      Args task_args;
      for (int j = 0; j < kIns; ++j)
        task_args.in(ins[j].view({1, kCols}, {row_of(i, j), 0}));
      task_args.out_existing(out.view({1, kCols}, {i, 0}));
      for (int s = 0; s < scalars; ++s)
        task_args.scalar(scalar_value(i, s));
      o.submit_aiv(k, task_args);
    });
  });
  LoopRun run;
  run.ok = r.ok();
  run.stats = r.stats;
  EXPECT_TRUE(r.ok()) << r.status.to_string();
  if (!r.ok()) return run;
  for (std::uint32_t i = 0; i < rows; ++i) {
    for (std::uint32_t c = 0; c < kCols; ++c) {
      std::uint32_t folded = 0;
      for (int s = 0; s < scalars; ++s)
        folded += std::uint32_t(s + 1) * fold(scalar_value(i, s));
      for (int j = 0; j < kIns; ++j)
        folded +=
            std::uint32_t(j + 1) * std::uint32_t(xs[j][std::size_t{row_of(i, j)} * kCols + c]);
      const auto sum = static_cast<std::int32_t>(folded);
      EXPECT_EQ(y[std::size_t{i} * kCols + c], sum) << "iteration " << i << " column " << c;
      if (y[std::size_t{i} * kCols + c] != sum) return run;
    }
  }
  return run;
}

TEST_P(TaskRecordArgs, ReplayedLoopTasksWithSpilledArguments) {
  // Inline (3 inputs + output), tensors spilled (5 + 1, 15 + 1), scalars spilled, both; a large
  // ring (64 tasks a run: never wraps) and a tiny one (the replayed copy goes into a slot the
  // ring just reclaimed).
  for (const std::uint32_t window : {kFewTasksWindow, 8u}) {
    SCOPED_TRACE("window " + std::to_string(window));
    const LoopRun inline_run = run_loop<3>(GetParam(), window, 2, -1, 64);
    EXPECT_GT(inline_run.stats.loop_tasks_analysed, 0u);
    const LoopRun spilled = run_loop<5>(GetParam(), window, 2, -1, 64);
    EXPECT_GT(spilled.stats.loop_tasks_analysed, 0u);
    EXPECT_EQ(spilled.stats.loop_fallbacks, 0u);
    const LoopRun widest = run_loop<15>(GetParam(), window, kMaxScalarArgs, -1, 64);
    EXPECT_GT(widest.stats.loop_tasks_analysed, 0u);
    EXPECT_EQ(widest.stats.loop_fallbacks, 0u);
    const LoopRun scalars_only = run_loop<3>(GetParam(), window, kInlineScalarArgs + 1, -1, 64);
    EXPECT_GT(scalars_only.stats.loop_tasks_analysed, 0u);
  }
}

TEST_P(TaskRecordArgs, ReplayMismatchWithSpilledArguments) {
  // The replay check of iteration 40 copies all 6 (or 16) tensors into the spill area of the slot
  // the next admit fills, then rejects the task (its last input is another row); the generic path
  // submits it with its own arguments (that read leaves its family: no fall-back, later
  // iterations are analysed without the replayed path for it).
  for (const std::uint32_t window : {kFewTasksWindow, 8u}) {
    SCOPED_TRACE("window " + std::to_string(window));
    const LoopRun wide = run_loop<5>(GetParam(), window, kInlineScalarArgs + 2, 40, 64);
    EXPECT_GT(wide.stats.loop_tasks_analysed, 40u);
    const LoopRun widest = run_loop<15>(GetParam(), window, 3, 40, 64);
    EXPECT_GT(widest.stats.loop_tasks_analysed, 40u);
    const LoopRun at_inline = run_loop<3>(GetParam(), window, 1, 40, 64);
    EXPECT_GT(at_inline.stats.loop_tasks_analysed, 40u);
  }
}

// A kernel that writes its context's value at its context's element of the task's one tensor:
// which function ran in which subtask slot, read back per task.
struct Mark {
  std::uint32_t element;
  std::int32_t value;
};
void write_mark(void* context, const KernelArgs& a) {
  const auto& mark = *static_cast<const Mark*>(context);
  a.tensor(0).data_as<std::int32_t>()[mark.element] = mark.value;
}

// The records of plain submits name their kernel functions as the orchestrator keeps them, one
// copy per distinct kernel ids and functions (OrchestratorCore::kept_fns), instead of holding
// their own. Tasks cycle through more kernel combinations than the orchestrator keeps recent
// plans (so plans are validated again and again, and find their kept functions), then through
// three (recent plans, with their kept functions), through MIX tasks and a lone second-AIV kernel
// (moved to the first AIV slot), on a ring of 8 slots; the same
// program runs three times on one runtime, the third after more kernels were registered. Every
// task must have run exactly its kernels' functions, each in its own slot.
TEST_P(TaskRecordArgs, PlainTasksRunTheirKernelsThroughManyCombinations) {
  Runtime runtime(config_for(GetParam(), 8));
  // Six AIV kernels and two AIC kernels, all of them the same function with their own context.
  std::vector<Mark> marks;
  for (int k = 0; k < 8; ++k)
    marks.push_back(Mark{k < 2 ? 0u : 1u, 100 + k});
  std::vector<KernelId> ids;
  for (int k = 0; k < 8; ++k) {
    ids.push_back(runtime.kernels().add("mark" + std::to_string(k),
                                        k < 2 ? CoreType::aic : CoreType::aiv, &write_mark,
                                        &marks[static_cast<std::size_t>(k)]));
  }
  // aiv1 writes element 2: its own marks (a kernel's context fixes its element).
  std::vector<Mark> second_marks;
  for (int k = 0; k < 6; ++k)
    second_marks.push_back(Mark{2u, 200 + k});
  std::vector<KernelId> second;
  for (int k = 0; k < 6; ++k) {
    second.push_back(runtime.kernels().add("mark2_" + std::to_string(k), CoreType::aiv, &write_mark,
                                           &second_marks[static_cast<std::size_t>(k)]));
  }
  const KernelId aic0 = ids[0];
  const KernelId aic1 = ids[1];
  // Eight combinations (more than the four recent plans), each with its expected elements (an
  // output element no kernel writes reads 0).
  struct Combination {
    MixKernels kernels;
    std::int32_t expected[3];
  };
  const std::vector<Combination> combinations = {
      {{kNoKernel, ids[2], kNoKernel}, {0, 102, 0}},
      {{kNoKernel, ids[3], kNoKernel}, {0, 103, 0}},
      {{aic0, ids[4], second[0]}, {100, 104, 200}},
      {{kNoKernel, ids[5], kNoKernel}, {0, 105, 0}},
      {{aic1, kNoKernel, kNoKernel}, {101, 0, 0}},
      {{aic0, ids[6], second[1]}, {100, 106, 201}},
      {{kNoKernel, ids[7], second[2]}, {0, 107, 202}},
      {{kNoKernel, kNoKernel, second[3]}, {0, 0, 203}},  // a lone second AIV kernel
  };
  // The first half cycles through all of them (every plan validated again), the second through
  // three (each plan found among the recent ones, from its fourth task on).
  constexpr std::uint32_t kTasks = 700;
  const auto combination_of = [&](std::uint32_t t) -> std::size_t {
    if (t < kTasks / 2) return t % combinations.size();
    constexpr std::size_t kFew[3] = {2, 4, 7};
    return kFew[t % 3];
  };
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("run " + std::to_string(round));
    if (round == 2) {  // the registry changed between runs
      for (int k = 0; k < 3; ++k)
        runtime.kernels().add("later" + std::to_string(k), CoreType::aiv, &write_mark, &marks[2]);
    }
    std::vector<std::int32_t> y(std::size_t{kTasks} * 3, 0);
    RunArgs args;
    args.output(y.data(), {kTasks, 3}, DType::i32);
    const RunResult r = runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          for (std::uint32_t t = 0; t < kTasks; ++t) {
            Args task_args;
            task_args.out_existing(a.tensor(0).view({1, 3}, {t, 0}).reshape({3}));
            o.submit(combinations[combination_of(t)].kernels, task_args);
          }
        },
        args);
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    for (std::uint32_t t = 0; t < kTasks; ++t) {
      const Combination& c = combinations[combination_of(t)];
      for (int e = 0; e < 3; ++e)
        ASSERT_EQ(y[3 * t + static_cast<std::uint32_t>(e)], c.expected[e])
            << "task " << t << " element " << e;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Platforms, TaskRecordArgs, both_platforms(), platform_name);

}  // namespace
}  // namespace tmr::testing
