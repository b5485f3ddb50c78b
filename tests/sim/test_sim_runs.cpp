// Whole runs on the sim platform: determinism, the dependency oracle in virtual time,
// back-pressure with tiny rings, and the two sanity checks of docs/sim.md.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "sim/sim_test_support.hpp"
#include "support/pattern_cells.hpp"
#include "support/random_program.hpp"
#include "support/test_scale.hpp"
#include "tmr/tmr.hpp"

namespace tmr::testing {
namespace {

void touch(const KernelArgs& args) {
  float* x = args.tensor(0).data_as<float>();
  x[0] += 1.0f;
}

TEST(SimDeterminism, TwoRunsOfOneProgramGiveIdenticalTraces) {
  for (std::uint64_t seed = 1; seed <= static_cast<std::uint64_t>(scaled(20, 3)); ++seed) {
    std::vector<std::shared_ptr<const Trace>> traces;
    Runtime first(sim_config());
    register_program_kernels(first.kernels());
    Runtime second(sim_config());
    register_program_kernels(second.kernels());
    // Two fresh runtimes and a second run on the first one (virtual time moved on meanwhile).
    for (Runtime* runtime : {&first, &second, &first}) {
      const ProgramResult result = run_random_program(*runtime, seed, ProgramShape{});
      ASSERT_TRUE(result.status.ok()) << result.status.to_string();
      ASSERT_NE(result.trace, nullptr);
      traces.push_back(result.trace);
    }
    EXPECT_EQ(trace_difference(*traces[0], *traces[1]), "") << "seed " << seed;
    EXPECT_EQ(trace_difference(*traces[0], *traces[2]), "") << "seed " << seed;
  }
}

// kernel_jitter (issue 12, the #2279 spread): a seed fixes the noise, so a seed repeats its
// timeline exactly, another seed gives another one, and every duration stays within +-jitter.
TEST(SimDeterminism, KernelJitterIsFixedBySeedAndBounded) {
  auto durations = [](double jitter, double seed) {
    RuntimeConfig config = sim_config();
    config.clusters = 1;
    config.scheduler_threads = 1;
    config.sim.timing_only = true;
    config.sim.costs.kernel_ns["noisy"] = 10'000;
    config.sim.costs.kernel_start_ns = 0;
    config.sim.costs.kernel_jitter = jitter;
    config.sim.costs.jitter_seed = seed;
    Runtime runtime(config);
    const KernelId k = runtime.kernels().add("noisy", CoreType::aiv, &touch);
    const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      for (int i = 0; i < 40; ++i)
        o.submit_aiv(k, Args());
    });
    EXPECT_TRUE(r.ok()) << r.status.to_string();
    std::vector<std::uint64_t> ns;
    for (const SubtaskEvent& e : r.trace->subtasks)
      ns.push_back(e.end_ns - e.start_ns);
    return ns;
  };
  const std::vector<std::uint64_t> exact = durations(0, 1);
  ASSERT_EQ(exact.size(), 40u);
  for (const std::uint64_t ns : exact)
    EXPECT_EQ(ns, 10'000u);
  const std::vector<std::uint64_t> a = durations(0.2, 1);
  EXPECT_EQ(a, durations(0.2, 1));
  EXPECT_NE(a, durations(0.2, 2));
  for (const std::uint64_t ns : a) {
    EXPECT_GE(ns, 8'000u);
    EXPECT_LE(ns, 12'000u);
  }
}

// The books of a run: what the loop analysis did (counts and reasons), what the submits and the
// rings did, and the virtual times.
std::string books(const RunStats& s) {
  std::string out =
      "tasks " + std::to_string(s.tasks_submitted) + " inline " + std::to_string(s.inline_tasks) +
      " ring waits " + std::to_string(s.orchestrator_ring_waits) + " loops " +
      std::to_string(s.loops) + "/" + std::to_string(s.loops_analysed) + " iterations " +
      std::to_string(s.loop_iterations) + "/" + std::to_string(s.loop_iterations_analysed) +
      " analysed " + std::to_string(s.loop_tasks_analysed) + " wide " +
      std::to_string(s.loop_tasks_replayed_wide) + " named " + std::to_string(s.loop_tasks_named) +
      " patterns " + std::to_string(s.pattern_loops) + " trusted " +
      std::to_string(s.pattern_tasks_trusted) + " reused " +
      std::to_string(s.loop_templates_reused) + " plans " + std::to_string(s.loop_plans_reused) +
      " rejected " + std::to_string(s.loop_templates_rejected) + " us " +
      std::to_string(s.wall_us) + " " + std::to_string(s.orchestration_us) + " " +
      std::to_string(s.scheduler_us) + " " + std::to_string(s.orchestrator_blocked_us);
  for (const auto* reasons :
       {&s.loop_fallback_reasons, &s.pattern_lambda_reasons, &s.loop_template_rejections}) {
    out += " |";
    for (const auto& [why, n] : *reasons)
      out += " " + why + "=" + std::to_string(n);
  }
  return out;
}

// Loops whose analysis keeps templates from run to run (a lambda loop of fresh rows with a
// carried accumulator, a pattern loop, a nested pair), a run argument (the engine's device copy,
// at a new address every run) and wrapped buffers, in tiny rings: run after run on one runtime,
// the wrapped buffers elsewhere than the last run's in runs 1 and 3 and at its addresses in runs 2
// and 4 (a kept template takes a buffer at the last run's address for the same one: docs/sim.md,
// "Buffer addresses"). Repeated on fresh runtimes while a host thread keeps a CPU busy (the
// kernels run on host threads and finish at host times): every repetition gives the same books,
// the same trace (order, producers and virtual times) and the same values.
TEST(SimDeterminism, LoopsWithKeptTemplatesInTinyRingsRepeatUnderABusyHost) {
  constexpr std::uint32_t kRows = 24;
  constexpr std::uint32_t kCols = 4;
  constexpr int kRuns = 5;
  struct Cells {
    std::vector<std::int32_t> a, b, c;
    bool operator==(const Cells&) const = default;
  };
  const auto cells = [&](std::int32_t k) {
    Cells x;
    for (std::uint32_t e = 0; e < kRows * kCols; ++e) {
      x.a.push_back(static_cast<std::int32_t>(e) * 7 + k);
      x.b.push_back(static_cast<std::int32_t>(e) * 3 + k);
      x.c.push_back(static_cast<std::int32_t>(e) + k);
    }
    return x;
  };
  const Cells initial = cells(1);
  Cells places[2] = {initial, initial};  // where the wrapped buffers lie, run by run
  struct Repetition {
    std::vector<std::string> books;
    std::vector<RunStats> stats;
    std::vector<std::shared_ptr<const Trace>> traces;
    std::vector<Cells> values;
  };
  const auto repeat = [&] {
    Repetition out;
    RuntimeConfig config = with_tiny_rings(sim_config(), 8);
    config.clusters = 4;
    config.scheduler_threads = 2;
    Runtime runtime(config);
    const KernelId k = runtime.kernels().add("cells", CoreType::aiv, &cells_kernel);
    const KernelId cube = runtime.kernels().add("cells_cube", CoreType::aic, &cells_kernel);
    for (Cells& place : places)
      place = initial;  // a copy: the storage stays
    for (int run = 0; run < kRuns; ++run) {
      Cells& place = places[(run + 1) / 2 % 2];
      std::vector<std::int32_t> argument = cells(run).a;
      RunArgs args;
      args.inout(argument.data(), {kRows, kCols}, DType::i32);
      const RunResult r = runtime.run(
          [&](Orchestrator& o, const OrchestrationArgs& a) {
            const Tensor arg = a.tensor(0);
            const Tensor b = Tensor::wrap(place.b.data(), {kRows, kCols}, DType::i32);
            const Tensor c = Tensor::wrap(place.c.data(), {kRows, kCols}, DType::i32);
            const TensorSpec row(Shape{1, kCols}, DType::i32);
            o.parallel_for(
                12,
                [&](Orchestrator& o, std::int64_t i) {
                  const auto at = static_cast<std::uint32_t>(i);
                  const TaskOutputs s =
                      o.submit_aiv(k, Args().in(arg, {1, kCols}, {at, 0}).out(row));
                  o.submit_aic(
                      cube,
                      Args().in(s[0]).inout(b, {1, kCols}, {at, 0}).inout(c, {1, kCols}, {0, 0}));
                },
                LoopOptions{true});
            TaskPattern pattern({kNoKernel, k, kNoKernel});
            pattern.in(b, {2, kCols}, {0, 0}, {1, 0}).out(TensorSpec(Shape{2, kCols}, DType::i32));
            pattern.then({cube, kNoKernel, kNoKernel})
                .in_output(0, 0)
                .inout(arg, {1, kCols}, {1, 0}, {1, 0})
                .out_existing(c, {1, kCols}, {2, 0}, {0, 0})
                .scalar_bits(3, 1);
            o.parallel_for(16, pattern, LoopOptions{true});
            o.parallel_for(6, [&](Orchestrator& o, std::int64_t j) {
              o.parallel_for(4, [&](Orchestrator& o, std::int64_t i) {
                const auto at = static_cast<std::uint32_t>(i + 2 * j);
                o.submit_aiv(k,
                             Args().in(c, {1, kCols}, {at, 0}).inout(b, {1, kCols}, {at + 1, 0}));
              });
            });
          },
          args);
      EXPECT_TRUE(r.ok()) << r.status.to_string();
      out.books.push_back(books(r.stats));
      out.stats.push_back(r.stats);
      out.traces.push_back(r.trace);
      out.values.push_back(Cells{argument, place.b, place.c});
    }
    return out;
  };
  std::atomic<bool> done{false};
  std::thread busy([&] {
    while (!done.load(std::memory_order_relaxed)) {
    }
  });
  struct Stop {
    std::atomic<bool>& done;
    std::thread& busy;
    ~Stop() {
      done.store(true);
      busy.join();
    }
  } stop{done, busy};
  const Repetition first = repeat();
  // The program does what it is here for: templates kept and reused, trusted pattern submits,
  // full rings waited for.
  std::uint64_t reused = 0, plans = 0, trusted = 0, ring_waits = 0;
  for (const RunStats& s : first.stats) {
    EXPECT_GT(s.loop_tasks_analysed, 0u);
    reused += s.loop_templates_reused;
    plans += s.loop_plans_reused;
    trusted += s.pattern_tasks_trusted;
    ring_waits += s.orchestrator_ring_waits;
  }
  EXPECT_GT(reused, 0u);
  EXPECT_GT(plans, 0u);
  EXPECT_GT(trusted, 0u);
  EXPECT_GT(ring_waits, 0u);
  for (int repetition = 1; repetition < scaled(8, 3); ++repetition) {
    const Repetition again = repeat();
    for (int run = 0; run < kRuns; ++run) {
      EXPECT_EQ(again.books[run], first.books[run])
          << "repetition " << repetition << ", run " << run;
      EXPECT_EQ(trace_difference(*again.traces[run], *first.traces[run]), "")
          << "repetition " << repetition << ", run " << run;
      EXPECT_TRUE(again.values[run] == first.values[run])
          << "repetition " << repetition << ", run " << run;
    }
  }
}

TEST(SimDependencyOracle, RandomProgramsRespectEveryDependencyInVirtualTime) {
  for (const int clusters : {24, 4}) {
    RuntimeConfig config = sim_config();
    config.clusters = clusters;
    config.scheduler_threads = clusters == 24 ? 3 : 2;
    Runtime runtime(config);
    register_program_kernels(runtime.kernels());
    EXPECT_EQ(run_and_check_programs(runtime, ProgramShape{}, scaled(200, 10), 1000), "")
        << clusters << " clusters";
  }
}

// Whole rows read by many live tasks and now and then written (merged reader entries in the
// TensorMap): every write after reads still waits for each reader still running.
TEST(SimDependencyOracle, ManyReadersOfWholeRows) {
  RuntimeConfig config = sim_config();
  config.clusters = 4;
  config.scheduler_threads = 2;
  Runtime runtime(config);
  register_program_kernels(runtime.kernels());
  EXPECT_EQ(run_and_check_programs(runtime, hot_rows_shape(), scaled(100, 5), 300000), "");
}

// Programs whose arguments switch between missing their slot lines and having them (the threads
// test of the same name says why).
TEST(SimDependencyOracle, ALinePathThatPausesAndComesBack) {
  RuntimeConfig config = sim_config();
  config.clusters = 4;
  config.scheduler_threads = 2;
  Runtime runtime(config);
  register_program_kernels(runtime.kernels());
  EXPECT_EQ(run_and_check_programs(runtime, line_phases_shape(), scaled(10, 3), 400000), "");
}

// A dependency pool that fills while tasks are being wired (the threads test of the same name
// says why): the task being wired stays live while the orchestrator waits for nodes.
TEST(SimDependencyOracle, TinyDependencyPoolsStillMatch) {
  Runtime runtime(with_tiny_dependency_pool(sim_config()));
  register_program_kernels(runtime.kernels());
  const int programs = scaled(100, 10);
  int overflows = 0;
  EXPECT_EQ(run_and_check_programs(runtime, tiny_ring_shape(8), programs, 210000, &overflows), "");
  EXPECT_LT(overflows, programs / 2);
}

TEST(SimBackPressure, TinyRingsComplete) {
  for (const std::uint32_t window : {4u, 8u, 16u}) {
    Runtime runtime(with_tiny_rings(sim_config(), window));
    register_program_kernels(runtime.kernels());
    EXPECT_EQ(
        run_and_check_programs(runtime, tiny_ring_shape(window), scaled(30, 3), 200000 + window),
        "")
        << "window " << window;
  }
  // A flat loop far longer than the window: the orchestrator waits (in virtual time) for room.
  RuntimeConfig config = sim_config(false);
  config.ring.task_window = 16;
  config.sim.costs.kernel_ns["touch"] = 50'000;  // slow kernels: the window fills
  Runtime runtime(config);
  const KernelId k = runtime.kernels().add("touch", CoreType::aiv, touch);
  std::vector<float> x(64, 0.0f);
  RunArgs args;
  args.inout(x.data(), {64}, DType::f32);
  const int tasks = scaled(2000, 100);
  const RunResult result = runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        for (int i = 0; i < tasks; ++i)
          o.submit_aiv(k,
                       Args().inout(a.tensor(0).view({1}, {static_cast<std::uint32_t>(i % 64)})));
      },
      args);
  ASSERT_TRUE(result.ok()) << result.status.to_string();
  EXPECT_GT(result.stats.orchestrator_blocked_us, 0.0);
  // All of it for ring room (no other wait here); the sim's orchestrator steps no scheduler.
  EXPECT_GT(result.stats.orchestrator_ring_waits, 0u);
  EXPECT_EQ(result.stats.orchestrator_ring_wait_us, result.stats.orchestrator_blocked_us);
  EXPECT_EQ(result.stats.orchestrator_wait_steps, 0u);
  EXPECT_EQ(result.stats.orchestrator_placement_steps, 0u);
  float total = 0;
  for (const float v : x)
    total += v;
  EXPECT_EQ(total, static_cast<float>(tasks));
}

// Sanity check 1 (docs/sim.md): 1000 independent tasks on the a2a3 model are orchestration-bound
// and take about 1000 x the submit cost.
TEST(SimSanity, IndependentTasksAreOrchestrationBound) {
  RuntimeConfig config = sim_config(false);
  config.sim.costs.kernel_ns["touch"] = 1000;
  Runtime runtime(config);
  const KernelId k = runtime.kernels().add("touch", CoreType::aiv, touch);
  constexpr std::uint32_t kTasks = 1000;
  std::vector<float> x(kTasks * 16, 0.0f);
  RunArgs args;
  args.inout(x.data(), {kTasks, 16}, DType::f32);
  const RunResult result = runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        for (std::uint32_t i = 0; i < kTasks; ++i)
          o.submit_aiv(k, Args().inout(a.tensor(0).view({1, 16}, {i, 0})));
      },
      args);
  ASSERT_TRUE(result.ok()) << result.status.to_string();
  const SimCostModel& c = config.sim.costs;
  const double submit_us = (c.submit_ns + c.submit_per_tensor_ns) / 1e3;  // one tensor each
  const double expected_us = kTasks * submit_us;
  EXPECT_NEAR(result.stats.wall_us, expected_us, 0.02 * expected_us);
  EXPECT_NEAR(result.stats.orchestration_us, expected_us, 0.01 * expected_us);
  // Orchestration-bound: the orchestrator is busy for more than 95% of the makespan, each
  // scheduler thread (on average) and every core for less.
  const double orchestration = result.stats.orchestration_us / result.stats.wall_us;
  EXPECT_GT(orchestration, 0.95);
  EXPECT_LT(result.stats.scheduler_us / 3 / result.stats.wall_us, 0.8 * orchestration);
  const double aiv_busy_us = kTasks * 1.0;  // 1 us kernels on 48 AIV cores
  EXPECT_LT(aiv_busy_us / (48 * result.stats.wall_us), 0.1);
  RecordProperty("makespan_us", std::to_string(result.stats.wall_us));
  std::printf("[sanity] 1000 independent tasks: makespan %.1f us, 1000 x submit %.1f us\n",
              result.stats.wall_us, expected_us);
}

// Sanity check 2 (docs/sim.md): a chain of N tasks costs about N x (kernel + FIN visible to the
// scheduler + the step that completes one task and dispatches the next + core pickup).
TEST(SimSanity, ChainCostsKernelPlusDispatchPlusCompletionLatencyPerTask) {
  RuntimeConfig config = sim_config(false);
  config.sim.costs.kernel_ns["touch"] = 2000;
  Runtime runtime(config);
  const KernelId k = runtime.kernels().add("touch", CoreType::aiv, touch);
  const int n = scaled(500, 50);
  std::vector<float> x(16, 0.0f);
  RunArgs args;
  args.inout(x.data(), {16}, DType::f32);
  const RunResult result = runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        for (int i = 0; i < n; ++i)
          o.submit_aiv(k, Args().inout(a.tensor(0)));
      },
      args);
  ASSERT_TRUE(result.ok()) << result.status.to_string();
  EXPECT_EQ(x[0], static_cast<float>(n));
  const SimCostModel& c = config.sim.costs;
  // The step: a poll, a completion, a retirement, a released edge, a pop and a dispatch.
  const double step_ns = c.step_base_ns + c.poll_ns + c.completion_ns + c.retire_ns + c.edge_ns +
                         c.pop_ns + c.dispatch_write_ns + c.doorbell_ns;
  const double per_task_ns = 2000 + c.kernel_start_ns + c.fin_visible_ns + step_ns + c.pickup_ns;
  const double expected_us = n * per_task_ns / 1e3;
  EXPECT_NEAR(result.stats.wall_us, expected_us, 0.10 * expected_us);
  std::printf("[sanity] chain of %d: makespan %.1f us, N x %.0f ns = %.1f us\n", n,
              result.stats.wall_us, per_task_ns, expected_us);
}

// A parallel_for is charged as measured (docs/sim.md): its learning iterations as ordinary
// submits, each analysed submit analysed_submit_ratio of one, and the analysis set-up once per
// loop, loop_setup_ratio times what the template iteration costs as ordinary submits plus
// (loop_setup_fixed + loop_setup_square * T^2) ordinary 4-tensor submits.
TEST(SimSanity, AnalysedLoopChargesLearningSetupAndAnalysedSubmits) {
  constexpr std::uint32_t kRows = 200;
  const auto orchestration_us = [&](double setup_ratio, double fixed = 0) {
    RuntimeConfig config = sim_config(false);
    config.sim.costs.kernel_ns["touch"] = 1000;
    config.sim.costs.loop_setup_ratio = setup_ratio;
    config.sim.costs.loop_setup_fixed = fixed;
    config.sim.costs.loop_setup_square = fixed / 2;
    Runtime runtime(config);
    const KernelId k = runtime.kernels().add("touch", CoreType::aiv, touch);
    std::vector<float> x(kRows * 16, 0.0f);
    RunArgs args;
    args.inout(x.data(), {kRows, 16}, DType::f32);
    const RunResult result = runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
            const auto row = static_cast<std::uint32_t>(i);
            o.submit_aiv(k, Args().inout(a.tensor(0).view({1, 16}, {row, 0})));
          });
        },
        args);
    EXPECT_TRUE(result.ok()) << result.status.to_string();
    EXPECT_EQ(result.stats.loop_tasks_analysed, kRows - 2);
    return result.stats.orchestration_us;
  };
  const SimCostModel c;
  const double submit_ns = c.submit_ns + c.submit_per_tensor_ns;  // one tensor each
  const double without_setup = orchestration_us(0);
  const double expected_us =
      (2 * submit_ns + (kRows - 2) * c.analysed_submit_ratio * submit_ns) / 1e3;
  EXPECT_NEAR(without_setup, expected_us, 0.01 * expected_us);
  // The template has one task of one tensor: the set-up is charged once, as ratio x that submit.
  const double with_setup = orchestration_us(40);
  EXPECT_NEAR(with_setup - without_setup, 40 * submit_ns / 1e3, 0.002);
  // The per-loop part: (fixed + square * 1^2) 4-tensor submits.
  const double with_base = orchestration_us(0, 10);
  EXPECT_NEAR(with_base - without_setup, 15 * (c.submit_ns + 4 * c.submit_per_tensor_ns) / 1e3,
              0.002);
}

// An analysed submit the wide replayed path covers (a fresh output, a read of the buffer its own
// iteration made) is charged wide_submit_ratio of an ordinary submit, not analysed_submit_ratio:
// lowering the one moves the orchestration by exactly those submits' share.
TEST(SimSanity, WideReplayedSubmitsAreChargedTheirOwnRatio) {
  constexpr std::uint32_t kRows = 64;
  constexpr std::uint32_t kW = 4;
  std::uint64_t wide = 0;
  const auto orchestration_us = [&](double wide_ratio) {
    RuntimeConfig config = sim_config(false);
    config.sim.costs.kernel_ns["idle"] = 1000;
    config.sim.costs.wide_submit_ratio = wide_ratio;
    Runtime runtime(config);
    const KernelId k = runtime.kernels().add("idle", CoreType::aiv, [](const KernelArgs&) {});
    std::vector<float> x(kRows * kW, 1.0f), y(kRows * kW, 0.0f);
    RunArgs args;
    args.input(x.data(), {kRows * kW}, DType::f32);
    args.inout(y.data(), {kRows * kW}, DType::f32);
    const RunResult result = runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          LoopOptions per_iteration;
          per_iteration.scope_per_iteration = true;
          o.parallel_for(
              kRows,
              [&](Orchestrator& o, std::int64_t i) {
                const auto at = static_cast<std::uint32_t>(i) * kW;
                const TaskOutputs t = o.submit_aiv(
                    k, Args().in(a.tensor(0).view({kW}, {at})).out(TensorSpec({kW}, DType::f32)));
                o.submit_aiv(k, Args().in(t[0]).out_existing(a.tensor(1).view({kW}, {at})));
              },
              per_iteration);
        },
        args);
    EXPECT_TRUE(result.ok()) << result.status.to_string();
    wide = result.stats.loop_tasks_replayed_wide;
    return result.stats.orchestration_us;
  };
  const SimCostModel c;
  // Half the analysed ratio lower: a positive charge whatever the default (a negative one would
  // be clamped to nothing and break the proportion).
  const double step = c.analysed_submit_ratio / 2;
  const double as_analysed = orchestration_us(c.analysed_submit_ratio);
  const double lower = orchestration_us(c.analysed_submit_ratio - step);
  EXPECT_GT(wide, kRows);  // both positions of most iterations
  // Every task has two tensors.
  const double submit_ns = c.submit_ns + 2 * c.submit_per_tensor_ns;
  // Each charge is rounded to a whole nanosecond: at most 1 ns a wide submit between the runs.
  EXPECT_NEAR(as_analysed - lower, static_cast<double>(wide) * step * submit_ns / 1e3,
              static_cast<double>(wide) / 1e3 + 0.01);
}

// A pattern loop (parallel_for(n, TaskPattern)) is charged as the same loop's lambda form but for
// its trusted submits (verified positions, no replay compare: RunStats::pattern_tasks_trusted),
// which cost pattern_submit_ratio of an ordinary submit instead of analysed_submit_ratio: the
// two forms differ by exactly those submits' share, and changing the ratio moves only the
// pattern form, by exactly that share.
TEST(SimSanity, TrustedPatternSubmitsAreChargedTheirOwnRatio) {
  constexpr std::uint32_t kRows = 200;
  struct Charged {
    double orchestration_us;
    std::uint64_t trusted;
  };
  const auto run = [&](bool pattern_form, double pattern_ratio) {
    RuntimeConfig config = sim_config(false);
    config.sim.costs.kernel_ns["touch"] = 1000;
    config.sim.costs.pattern_submit_ratio = pattern_ratio;
    Runtime runtime(config);
    const KernelId k = runtime.kernels().add("touch", CoreType::aiv, touch);
    std::vector<float> x(kRows * 16, 0.0f);
    RunArgs args;
    args.inout(x.data(), {kRows, 16}, DType::f32);
    const RunResult result = runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          TaskPattern pattern({kNoKernel, k, kNoKernel});
          pattern.inout(a.tensor(0), {1, 16}, {0, 0}, {1, 0});
          if (pattern_form) {
            o.parallel_for(kRows, pattern);
          } else {
            o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
              o.submit(pattern.kernels(), pattern.args(i));
            });
          }
        },
        args);
    EXPECT_TRUE(result.ok()) << result.status.to_string();
    EXPECT_EQ(result.stats.loop_tasks_analysed, kRows - 2);  // iterations 0 and 1 learn
    return Charged{result.stats.orchestration_us, result.stats.pattern_tasks_trusted};
  };
  const SimCostModel c;
  const double submit_ns = c.submit_ns + c.submit_per_tensor_ns;  // one tensor each
  const auto rounded = [&](double ratio) { return std::llround(ratio * submit_ns) / 1e3; };
  const Charged lambda = run(false, c.pattern_submit_ratio);
  const Charged pattern = run(true, c.pattern_submit_ratio);
  const Charged lower = run(true, c.pattern_submit_ratio - 0.2);
  EXPECT_EQ(lambda.trusted, 0u);
  // Iterations 0 and 1 learn, 2 and 3 verify (compared), and a submit with a periodic sync due
  // (one in 64) takes the public submit (compared): the rest are trusted.
  EXPECT_LE(pattern.trusted, kRows - 4);
  EXPECT_GE(pattern.trusted, kRows - 8);
  const auto trusted = static_cast<double>(pattern.trusted);
  EXPECT_NEAR(lambda.orchestration_us - pattern.orchestration_us,
              trusted * (rounded(c.analysed_submit_ratio) - rounded(c.pattern_submit_ratio)), 0.01);
  EXPECT_NEAR(pattern.orchestration_us - lower.orchestration_us,
              trusted * (rounded(c.pattern_submit_ratio) - rounded(c.pattern_submit_ratio - 0.2)),
              0.01);
  // The lambda form has no trusted submit: the ratio does not touch it.
  EXPECT_EQ(run(false, c.pattern_submit_ratio - 0.2).orchestration_us, lambda.orchestration_us);
}

// A template kept from an earlier run with its proof (LoopTemplate::rebound()) is charged
// kept_setup_ratio of a learned template's per-task set-up and kept_setup_base_ratio of its
// per-loop part (docs/sim.md). The first run's template, learned from iterations 0 and 1, is kept
// rebased on iteration 0 and proved for the whole loop, so the second run of the same trip count
// takes it and its proof before its first iteration (LoopDriver::try_kept_from_start): every
// submit analysed, the set-up charged as a kept one. A third run of another trip count runs its
// first iteration per task and rebinds the template, which proves again for its range: charged
// as a learned one.
TEST(SimSanity, KeptTemplateSetupIsChargedItsMeasuredShare) {
  constexpr std::uint32_t kRows = 200;
  constexpr std::uint32_t kShorter = 190;  // the third run's trip count
  struct Later {
    double second_us;
    double third_us;
  };
  // Orchestration time of the second and third runs of one loop on one Runtime.
  const auto later_runs = [&](double setup_ratio, double fixed, double kept, double kept_base) {
    RuntimeConfig config = sim_config(false);
    config.sim.costs.kernel_ns["touch"] = 1000;
    config.sim.costs.loop_setup_ratio = setup_ratio;
    config.sim.costs.loop_setup_fixed = fixed;
    config.sim.costs.loop_setup_square = fixed / 2;
    config.sim.costs.kept_setup_ratio = kept;
    config.sim.costs.kept_setup_base_ratio = kept_base;
    Runtime runtime(config);
    const KernelId k = runtime.kernels().add("touch", CoreType::aiv, touch);
    std::vector<float> x(kRows * 16, 0.0f);
    RunArgs args;
    args.inout(x.data(), {kRows, 16}, DType::f32);
    Later later{};
    for (int run = 1; run <= 3; ++run) {
      const std::uint32_t rows = run == 3 ? kShorter : kRows;
      const auto body = [&](Orchestrator& o, const OrchestrationArgs& a) {
        o.parallel_for(rows, [&](Orchestrator& o, std::int64_t i) {
          const auto row = static_cast<std::uint32_t>(i);
          o.submit_aiv(k, Args().inout(a.tensor(0).view({1, 16}, {row, 0})));
        });
      };
      const RunResult r = runtime.run(body, args);
      EXPECT_TRUE(r.ok()) << r.status.to_string();
      EXPECT_EQ(r.stats.loop_templates_reused, run == 1 ? 0u : 1u) << run;
      EXPECT_EQ(r.stats.loop_tasks_analysed, run == 1   ? kRows - 2
                                             : run == 2 ? kRows
                                                        : kShorter - 1)
          << run;
      if (run == 2) later.second_us = r.stats.orchestration_us;
      if (run == 3) later.third_us = r.stats.orchestration_us;
    }
    return later;
  };
  const SimCostModel c;
  const double submit_ns = c.submit_ns + c.submit_per_tensor_ns;  // one tensor each
  const double four = c.submit_ns + 4 * c.submit_per_tensor_ns;
  const Later none = later_runs(0, 0, 1, 1);
  const double from_start_us = kRows * c.analysed_submit_ratio * submit_ns / 1e3;
  EXPECT_NEAR(none.second_us, from_start_us, 0.01 * from_start_us);
  const double rebound_us =
      (submit_ns + (kShorter - 1) * c.analysed_submit_ratio * submit_ns) / 1e3;
  EXPECT_NEAR(none.third_us, rebound_us, 0.01 * rebound_us);
  // The per-task part: ratio x the template's one submit; the second run's times
  // kept_setup_ratio, the third's (proved again) in full.
  const Later per_task = later_runs(40, 0, 0.25, 0.5);
  EXPECT_NEAR(per_task.second_us - none.second_us, 10 * submit_ns / 1e3, 0.002);
  EXPECT_NEAR(per_task.third_us - none.third_us, 40 * submit_ns / 1e3, 0.002);
  // The per-loop part: (fixed + square * 1^2) 4-tensor submits; the second run's times
  // kept_setup_base_ratio, the third's in full.
  const Later per_loop = later_runs(0, 10, 0.25, 0.5);
  EXPECT_NEAR(per_loop.second_us - none.second_us, 7.5 * four / 1e3, 0.002);
  EXPECT_NEAR(per_loop.third_us - none.third_us, 15 * four / 1e3, 0.002);
}

}  // namespace
}  // namespace tmr::testing
