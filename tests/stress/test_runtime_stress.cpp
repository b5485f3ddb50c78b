// Stress: one runtime through many runs that alternate random programs on the full-chip
// topology, runs that fail (kernel exceptions, deadlocked scopes, user fatal errors), and tiny
// rings, checking every successful run against its sequential reference.
#include <gtest/gtest.h>

#include <random>
#include <stdexcept>

#include "support/random_program.hpp"
#include "support/task_window.hpp"
#include "support/test_scale.hpp"

namespace tmr::testing {
namespace {

void throwing(const KernelArgs&) {
  throw std::runtime_error("injected");
}

TEST(RuntimeStress, RunsAlternatingWithFailuresStayCorrect) {
  RuntimeConfig config;  // full chip: 24 clusters (72 core threads), 3 scheduler threads
  config.record_events = true;
  config.ring.task_window = 256;
  config.ring.heap_bytes = 1 << 16;
  Runtime runtime(config);
  register_program_kernels(runtime.kernels());
  const KernelId thrower = runtime.kernels().add("thrower", CoreType::aiv, &throwing);
  std::mt19937 rng(7);
  ProgramShape shape;
  shape.operations = 60;
  for (int round = 0; round < scaled(120, 8); ++round) {
    switch (rng() % 4) {
      case 0: {  // a kernel throws halfway through a busy graph
        const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
          for (int i = 0; i < 40; ++i) {
            TMR_SCOPE(o);
            o.submit_aiv(i == 20 ? thrower : o.kernel("prop_aiv_noop"),
                         Args().out(TensorSpec({4}, DType::i32)));
          }
        });
        ASSERT_EQ(r.status.code, ErrorCode::kernel_exception) << r.status.to_string();
        break;
      }
      case 1: {  // a scope that can never fit its ring
        const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
          TMR_SCOPE(o);
          for (int i = 0; i < 400; ++i)
            o.submit_aiv(o.kernel("prop_aiv_noop"), Args().out(TensorSpec({4}, DType::i32)));
        });
        ASSERT_EQ(r.status.code, ErrorCode::scope_deadlock) << r.status.to_string();
        break;
      }
      case 2: {  // the orchestration gives up
        const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
          for (int i = 0; i < 30; ++i)
            o.submit_aic(o.kernel("prop_aic_noop"), Args());
          o.report_fatal(ErrorCode::explicit_fatal, "stop");
        });
        ASSERT_EQ(r.status.code, ErrorCode::explicit_fatal);
        break;
      }
      default: {
        const std::uint64_t seed = 900000 + static_cast<std::uint64_t>(round);
        const ProgramResult result = run_random_program(runtime, seed, shape);
        ASSERT_TRUE(result.status.ok()) << "seed " << seed << ": " << result.status.to_string();
        ASSERT_EQ(result.mismatch, "") << "seed " << seed;
        ASSERT_EQ(result.buffers, result.reference) << "seed " << seed;
        ASSERT_EQ(check_trace_order(result), "") << "seed " << seed;
      }
    }
  }
}

TEST(RuntimeStress, ManyShortRunsOnOneRuntime) {
  RuntimeConfig config;
  config.clusters = 3;
  config.scheduler_threads = 3;
  config.ring = few_tasks_ring();  // 12 operations a program
  Runtime runtime(config);
  register_program_kernels(runtime.kernels());
  ProgramShape shape;
  shape.operations = 12;
  shape.buffers = 2;
  shape.max_blocks = 3;  // start-together blocks must fit 3 clusters
  for (int p = 0; p < scaled(400, 20); ++p) {
    const ProgramResult result =
        run_random_program(runtime, 5000000 + static_cast<std::uint64_t>(p), shape);
    ASSERT_TRUE(result.status.ok()) << result.status.to_string();
    ASSERT_EQ(result.buffers, result.reference) << "program " << p;
  }
}

}  // namespace
}  // namespace tmr::testing
