// Faults a user can trigger through the public API, on both platforms: a kernel that never
// returns, run() re-entered or called from several threads, rings larger than the machine, an
// Orchestrator kept past its run, and element access with the wrong element type. Each gets a
// named error (or, for concurrent runs, correct results) in bounded time; the runtime stays usable,
// or (after a kernel that never returned) says on every run that it is not.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/platforms.hpp"
#include "support/test_scale.hpp"
#include "tmr/tmr.hpp"

namespace tmr {
namespace {

void increment_kernel(const KernelArgs& a) {
  std::int32_t* data = a.tensor(0).data_as<std::int32_t>();
  for (std::uint64_t i = 0; i < a.tensor(0).elements(); ++i)
    data[i] += 1;
}

// A kernel that does not return until the test lets it (so no thread spins on after the test).
// It notes when it started (steady clock, ns; 0 until then).
std::atomic<bool> stuck_kernels_released{false};
std::atomic<std::int64_t> stuck_kernel_started_ns{0};
void stuck_kernel(const KernelArgs&) {
  std::int64_t unset = 0;
  stuck_kernel_started_ns.compare_exchange_strong(
      unset, std::chrono::steady_clock::now().time_since_epoch().count());
  while (!stuck_kernels_released.load())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}
void throwing_kernel(const KernelArgs&) {
  throw std::runtime_error("bad tile");
}
void write_seven(const KernelArgs& a) {
  *a.tensor(0).data_as<std::int32_t>() = 7;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class Faults : public ::testing::TestWithParam<PlatformKind> {
 protected:
  // A few hundred tasks a run at most: the 1,024-task window is enough.
  RuntimeConfig config() const { return testing::two_cluster_config(GetParam()); }
  void SetUp() override {
    runtime = std::make_unique<Runtime>(config());
    increment = runtime->kernels().add("increment", CoreType::aiv, &increment_kernel);
  }
  // `count` increments of a 16-element i32 tensor, one task each, in order.
  RunResult run_increments(std::vector<std::int32_t>& data, int count) {
    RunArgs args;
    args.inout(data.data(), {16}, DType::i32);
    return runtime->run(
        [&, count](Orchestrator& o, const OrchestrationArgs& a) {
          for (int i = 0; i < count; ++i)
            o.submit_aiv(increment, Args().inout(a.tensor(0)));
        },
        args);
  }
  void expect_healthy() {
    std::vector<std::int32_t> data(16, 5);
    const RunResult r = run_increments(data, 3);
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(data[7], 8);
  }
  std::unique_ptr<Runtime> runtime;
  KernelId increment = kNoKernel;
};

// ---------------------------------------------------------------- a kernel that never returns

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct FaultKernels {
  KernelId stuck = kNoKernel;    // returns when the test ends
  KernelId thrower = kNoKernel;  // throws
  KernelId seven = kNoKernel;    // writes 7 to its i32 output
};

// Runs `orchestration` on a runtime with a 1 s stall timeout whose "stuck" kernel does not return
// until the test ends; expects `code`, then that the runtime refuses every later run and that
// destroying it neither hangs nor crashes. Returns what the run wrote to stderr. `stuck_cost_ns`:
// the sim's model of the stuck kernel (0: the default roofline, a few ns).
std::string expect_stuck_kernel_handled(
    PlatformKind platform, ErrorCode code,
    const std::function<void(Orchestrator&, const FaultKernels&)>& body,
    double tensor_wait_timeout_s = 60, double stuck_cost_ns = 0) {
  stuck_kernels_released = false;
  stuck_kernel_started_ns = 0;
  RuntimeConfig c;
  c.platform = platform;
  c.clusters = 2;
  c.scheduler_threads = 1;
  c.stall_timeout_s = 1.0;
  c.tensor_wait_timeout_s = tensor_wait_timeout_s;
  c.ring = testing::few_tasks_ring();  // two tasks
  auto runtime = std::make_unique<Runtime>(c);
  FaultKernels kernels;
  kernels.stuck = runtime->kernels().add("stuck", CoreType::aiv, &stuck_kernel);
  kernels.thrower = runtime->kernels().add("thrower", CoreType::aiv, &throwing_kernel);
  kernels.seven = runtime->kernels().add("seven", CoreType::aiv, &write_seven);
  if (stuck_cost_ns > 0) runtime->kernels().set_cost(kernels.stuck, KernelCost{stuck_cost_ns});

  ::testing::internal::CaptureStderr();
  const Clock::time_point start = Clock::now();
  const RunResult r =
      runtime->run([&](Orchestrator& o, const OrchestrationArgs&) { body(o, kernels); });
  const double took = seconds_since(start);
  const std::string reported = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(r.status.code, code) << r.status.to_string();
  EXPECT_LT(took, 20.0);  // 1 s stall timeout, generous for sanitizer builds
  if (code == ErrorCode::scheduler_timeout) {
    for (const char* part : {"kernel 'stuck'", "task r", "block 0", "on core ",
                             "past stall_timeout_s", "unusable until destroyed"}) {
      EXPECT_TRUE(contains(r.status.message, part)) << part << " in " << r.status.message;
    }
  }
  // Before the timeout the long-running kernel was reported on stderr (at stall_timeout_s / 2).
  EXPECT_TRUE(contains(reported, "tmr: kernel 'stuck'")) << reported;
  EXPECT_TRUE(contains(reported, "has been running on core")) << reported;

  for (int attempt = 0; attempt < 2; ++attempt) {
    const RunResult again = runtime->run([](Orchestrator&, const OrchestrationArgs&) {});
    EXPECT_EQ(again.status.code, ErrorCode::runtime_unusable) << again.status.to_string();
    EXPECT_TRUE(contains(again.status.message, "kernel 'stuck'")) << again.status.message;
  }
  const Clock::time_point destroy = Clock::now();
  runtime.reset();
  EXPECT_LT(seconds_since(destroy), 5.0);
  stuck_kernels_released = true;  // the abandoned core thread leaves now
  return reported;
}

TEST_P(Faults, KernelThatNeverReturnsFailsTheRunByNameAndLeavesTheRuntimeUnusable) {
  expect_stuck_kernel_handled(
      GetParam(), ErrorCode::scheduler_timeout,
      [](Orchestrator& o, const FaultKernels& k) { o.submit_aiv(k.stuck, Args()); });
  expect_healthy();  // other runtimes are not affected
}

// On the sim, virtual time cannot pass the modelled end of a kernel that has not returned, so the
// stuck kernel is what the run reports there; on threads the first error wins.
ErrorCode first_error_on(PlatformKind platform, ErrorCode threads_error) {
  return platform == PlatformKind::sim ? ErrorCode::scheduler_timeout : threads_error;
}

TEST_P(Faults, KernelThatNeverReturnsWhileAnotherThrowsDoesNotHangTheRun) {
  expect_stuck_kernel_handled(GetParam(), first_error_on(GetParam(), ErrorCode::kernel_exception),
                              [](Orchestrator& o, const FaultKernels& k) {
                                o.submit_aiv(k.stuck, Args());
                                o.submit_aiv(k.thrower, Args());
                              });
}

TEST_P(Faults, KernelThatNeverReturnsWhileTheOrchestratorWaitsForItsOutput) {
  expect_stuck_kernel_handled(
      GetParam(), first_error_on(GetParam(), ErrorCode::tensor_wait_timeout),
      [](Orchestrator& o, const FaultKernels& k) {
        const TaskOutputs out = o.submit_aiv(k.stuck, Args().out(TensorSpec({4}, DType::f32)));
        (void)o.get_tensor_data<float>(out[0], {0});
      },
      /*tensor_wait_timeout_s=*/0.6);
}

// A loaded host can keep the orchestrator thread off its CPU from a stuck kernel's start until past
// stall_timeout_s, so the watch's first look finds the kernel already overrun (seen under load: the
// run failed by name, but stderr had no report). The kernel is still reported before the run
// fails. Here the orchestration keeps its thread away from the watch (waiting outside tmr) until
// the stuck kernel has run 1.5 stall timeouts.
TEST_P(Faults, KernelFirstWatchedPastTheStallTimeoutIsReportedBeforeTheRunFails) {
  const PlatformKind platform = GetParam();
  const std::string reported = expect_stuck_kernel_handled(
      platform, ErrorCode::scheduler_timeout,
      [platform](Orchestrator& o, const FaultKernels& k) {
        o.submit_aiv(k.stuck, Args());
        if (platform == PlatformKind::sim) {
          // Virtual time moves with the orchestrator's waits: the wait for another task's output
          // carries it past the stuck kernel's start (modelled at 5 s: not to its end).
          const TaskOutputs out = o.submit_aiv(k.seven, Args().out(TensorSpec({1}, DType::i32)));
          EXPECT_EQ(o.get_tensor_data<std::int32_t>(out[0], {0}), 7);
        }
        const Clock::time_point bound = Clock::now() + std::chrono::seconds(10);
        while (stuck_kernel_started_ns.load() == 0 && Clock::now() < bound)
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        ASSERT_NE(stuck_kernel_started_ns.load(), 0) << "the stuck kernel never started";
        const Clock::time_point started{Clock::duration(stuck_kernel_started_ns.load())};
        std::this_thread::sleep_until(started + std::chrono::milliseconds(1500));
      },
      /*tensor_wait_timeout_s=*/60, /*stuck_cost_ns=*/5e9);
  // The premise held: the one report came when the kernel had already passed the stall timeout.
  // On threads nothing looks at the watch before the orchestration returns. On the sim the wait
  // above does if the other kernel (run in real time) takes 0.5 s, which only a loaded host makes
  // it take: the report then came in time (the helper checked it), and the premise did not hold.
  const bool looked_early = contains(reported, "if it passes");
  if (platform == PlatformKind::threads || !looked_early) {
    EXPECT_TRUE(contains(reported, "the run fails now: it passed stall_timeout_s")) << reported;
    EXPECT_FALSE(looked_early) << reported;
  }
}

// A kernel that truly never returns (`for (;;) {}`), in a child process so its spinning thread
// dies with it: the run fails by name within the stall timeout, and destruction returns.
void spin_forever(const KernelArgs&) {
  for (volatile bool forever = true; forever;) {
  }
}

TEST_P(Faults, KernelSpinningForeverInAChildProcessEndsTheRunAndTheProcessExits) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const PlatformKind platform = GetParam();
  EXPECT_EXIT(
      {
        RuntimeConfig c;
        c.platform = platform;
        c.clusters = 1;
        c.scheduler_threads = 1;
        c.stall_timeout_s = 0.5;
        auto runtime = std::make_unique<Runtime>(c);
        const KernelId spin = runtime->kernels().add("spin", CoreType::aic, &spin_forever);
        const RunResult r = runtime->run(
            [&](Orchestrator& o, const OrchestrationArgs&) { o.submit_aic(spin, Args()); });
        const bool named = r.status.code == ErrorCode::scheduler_timeout &&
                           contains(r.status.message, "kernel 'spin'");
        const bool refused =
            runtime->run([](Orchestrator&, const OrchestrationArgs&) {}).status.code ==
            ErrorCode::runtime_unusable;
        runtime.reset();
        std::fprintf(stderr, "named=%d refused=%d\n", named, refused);
        std::_Exit(named && refused ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "named=1 refused=1");
}

// ---------------------------------------------------------------- run() re-entered, concurrent

TEST_P(Faults, RunCalledFromInsideItsOwnRunIsRefusedAndFailsTheOuterRun) {
  for (int attempt = 0; attempt < testing::scaled(10); ++attempt) {
    RunResult inner;
    const RunResult outer = runtime->run([&](Orchestrator& o, const OrchestrationArgs&) {
      inner = runtime->run([](Orchestrator&, const OrchestrationArgs&) {});
      o.submit_aiv(increment, Args());  // a no-op after the latched error
    });
    EXPECT_EQ(inner.status.code, ErrorCode::runtime_busy) << inner.status.to_string();
    EXPECT_TRUE(contains(inner.status.message, "inside a run of the same runtime"));
    EXPECT_EQ(outer.status.code, ErrorCode::runtime_busy) << outer.status.to_string();
  }
  expect_healthy();
}

TEST_P(Faults, RunsFromSeveralThreadsTakeTurnsAndAllAreCorrect) {
  constexpr int kThreads = 4;
  const int runs = testing::scaled(20, 2);
  std::vector<std::vector<std::int32_t>> data(kThreads, std::vector<std::int32_t>(16, 0));
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < runs; ++r) {
        const RunResult result = run_increments(data[t], 16);
        if (!result.ok() && failures[t].empty()) failures[t] = result.status.to_string();
      }
    });
  }
  for (std::thread& thread : threads)
    thread.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(failures[t], "") << "thread " << t;
    for (const std::int32_t value : data[t])
      EXPECT_EQ(value, 16 * runs) << "thread " << t;
  }
}

// ---------------------------------------------------------------- rings too large

void expect_ring_config_refused(const RuntimeConfig& config, const std::string& names) {
  try {
    Runtime runtime(config);
    FAIL() << "expected Error(invalid_config)";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_config) << e.what();
    EXPECT_TRUE(contains(e.what(), names)) << e.what();
    EXPECT_TRUE(contains(e.what(), "memory")) << e.what();
  }
}

TEST_P(Faults, RingsLargerThanTheMachineAreRefusedWithANamedError) {
  RuntimeConfig c = config();
  c.ring.heap_bytes = std::uint64_t{1} << 44;  // 16 TiB per ring
  expect_ring_config_refused(c, "TMR_RING_HEAP");
  c = config();
  c.ring.task_window = std::uint32_t{1} << 30;
  expect_ring_config_refused(c, "TMR_RING_TASK_WINDOW");
  c = config();
  c.ring.dep_pool = std::uint32_t{1} << 31;
  c.ring.heap_bytes = std::uint64_t{1} << 40;
  expect_ring_config_refused(c, "TMR_RING_DEP_POOL");
  expect_healthy();  // the other runtime is untouched
}

TEST_P(Faults, RingEnvironmentLargerThanTheMachineIsRefused) {
  ::setenv("TMR_RING_HEAP", "16384G", 1);
  RuntimeConfig c = config();
  try {
    c.apply_env();
  } catch (...) {
    ::unsetenv("TMR_RING_HEAP");
    throw;
  }
  ::unsetenv("TMR_RING_HEAP");
  expect_ring_config_refused(c, "TMR_RING_HEAP");
}

// ---------------------------------------------------------------- Orchestrator kept past its run

// A kept Orchestrator whose last submits took the plain path (the same kernel, plain arguments):
// a submit like them after the run still reports the misuse (the plain-ready flag is cleared when
// the orchestration returns) instead of admitting a task into a run that has ended; the runtime
// stays healthy.
TEST_P(Faults, OrchestratorKeptPastItsRunThrowsOnAPlainSubmit) {
  std::vector<std::int32_t> data(16, 0);
  RunArgs args;
  args.inout(data.data(), {16}, DType::i32);
  Orchestrator* kept = nullptr;
  Tensor kept_tensor;
  ASSERT_TRUE(runtime
                  ->run(
                      [&](Orchestrator& o, const OrchestrationArgs& a) {
                        kept = &o;
                        kept_tensor = a.tensor(0);
                        for (int i = 0; i < 3; ++i)
                          o.submit_aiv(increment, Args().inout(a.tensor(0)));
                      },
                      args)
                  .ok());
  try {
    kept->submit_aiv(increment, Args().inout(kept_tensor));
    ADD_FAILURE() << "expected Error(scope_error)";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::scope_error);
    EXPECT_TRUE(contains(e.what(), "run that has ended")) << e.what();
  }
  EXPECT_EQ(data, std::vector<std::int32_t>(16, 3));
  expect_healthy();
}

TEST_P(Faults, OrchestratorKeptPastItsRunThrowsAScopeError) {
  Orchestrator* kept = nullptr;
  ASSERT_TRUE(runtime->run([&](Orchestrator& o, const OrchestrationArgs&) { kept = &o; }).ok());
  const auto expect_scope_error = [](auto call) {
    try {
      call();
      ADD_FAILURE() << "expected Error(scope_error)";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::scope_error);
      EXPECT_TRUE(contains(e.what(), "run that has ended")) << e.what();
    }
  };
  expect_scope_error([&] { kept->submit_aiv(increment, Args()); });
  expect_scope_error([&] { kept->scope_begin(); });
  expect_scope_error([&] { (void)kept->status(); });
  expect_scope_error([&] { (void)kept->kernel("increment"); });
  std::vector<std::int32_t> data(4, 0);
  expect_scope_error([&] {
    (void)kept->get_tensor_data<std::int32_t>(Tensor::wrap(data.data(), {4}, DType::i32), {0});
  });
  // A copy kept past the run behaves the same.
  Orchestrator copy = *kept;
  expect_scope_error([&] { copy.scope_end(); });
  expect_healthy();
}

// ---------------------------------------------------------------- element access dtype

TEST_P(Faults, ElementAccessWithAnotherElementTypeIsRefused) {
  std::vector<float> host(4, 1.0f);
  RunArgs args;
  args.inout(host.data(), {4}, DType::f32);
  std::int32_t seen = -7;
  RunResult r = runtime->run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        seen = o.get_tensor_data<std::int32_t>(a.tensor(0), {0});
      },
      args);
  EXPECT_EQ(r.status.code, ErrorCode::invalid_args);
  EXPECT_TRUE(contains(r.status.message, "get_tensor_data<float>")) << r.status.message;
  EXPECT_EQ(seen, 0);

  r = runtime->run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        o.set_tensor_data<std::int32_t>(a.tensor(0), {0}, 2);
      },
      args);
  EXPECT_EQ(r.status.code, ErrorCode::invalid_args);
  EXPECT_TRUE(contains(r.status.message, "set_tensor_data<float>")) << r.status.message;
  EXPECT_EQ(host[0], 1.0f);  // nothing copied back

  // Same size, not an element type: refused too (as Tensor::data_as refuses it).
  std::vector<std::int32_t> ints(4, 3);
  r = runtime->run([&](Orchestrator& o, const OrchestrationArgs&) {
    (void)o.get_tensor_data<std::uint32_t>(Tensor::wrap(ints.data(), {4}, DType::i32), {1});
  });
  EXPECT_EQ(r.status.code, ErrorCode::invalid_args);

  // The right type works, for reads and writes.
  float read = 0;
  r = runtime->run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        o.set_tensor_data(a.tensor(0), {2}, 4.5f);
        read = o.get_tensor_data<float>(a.tensor(0), {2});
      },
      args);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(read, 4.5f);
  EXPECT_EQ(host[2], 4.5f);

  // Every element size reads its own bytes (1, 2 and 4: the read copies each inline), and a read
  // after the run has failed gives the type's zero.
  std::vector<std::uint8_t> bytes{0, 0xfe, 7};
  std::vector<bf16> halves{bf16(0.0f), bf16(0.0f), bf16(-2.5f)};
  std::vector<std::int32_t> words{0, -123456789};
  std::uint8_t byte_read = 0;
  float half_read = 0;
  std::int32_t word_read = 0;
  std::int32_t after_failure = -7;
  r = runtime->run([&](Orchestrator& o, const OrchestrationArgs&) {
    byte_read = o.get_tensor_data<std::uint8_t>(Tensor::wrap(bytes.data(), {3}, DType::u8), {1});
    half_read = static_cast<float>(
        o.get_tensor_data<bf16>(Tensor::wrap(halves.data(), {3}, DType::bf16), {2}));
    word_read = o.get_tensor_data<std::int32_t>(Tensor::wrap(words.data(), {2}, DType::i32), {1});
    o.report_fatal(ErrorCode::invalid_args, "stop here");
    after_failure =
        o.get_tensor_data<std::int32_t>(Tensor::wrap(words.data(), {2}, DType::i32), {1});
  });
  EXPECT_EQ(r.status.code, ErrorCode::invalid_args);
  EXPECT_EQ(byte_read, 0xfe);
  EXPECT_EQ(half_read, -2.5f);
  EXPECT_EQ(word_read, -123456789);
  EXPECT_EQ(after_failure, 0);
}

INSTANTIATE_TEST_SUITE_P(Platforms, Faults, testing::both_platforms(), testing::platform_name);

}  // namespace
}  // namespace tmr
