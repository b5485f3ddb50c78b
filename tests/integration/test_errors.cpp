// Bad input gets a named error that says what to change; nothing hangs, nothing keeps running,
// results are not copied back, and the runtime stays usable.
#include <gtest/gtest.h>

#include <dirent.h>

#include <chrono>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/platforms.hpp"
#include "tmr/tmr.hpp"

namespace tmr {
namespace {

void copy_kernel(const KernelArgs& a) {
  const Tensor& in = a.tensor(0);
  const Tensor& out = a.tensor(1);
  for (std::uint64_t i = 0; i < in.elements(); ++i)
    out.data_as<float>()[i] = in.data_as<float>()[i];
}
void throwing_kernel(const KernelArgs&) {
  throw std::runtime_error("bad tile");
}
void noop(const KernelArgs&) {}

// Threads of this process the runtime started (they are named tmr-core-N / tmr-sched-N).
int runtime_thread_count() {
  int count = 0;
  if (DIR* dir = opendir("/proc/self/task")) {
    while (dirent* entry = readdir(dir)) {
      if (entry->d_name[0] == '.') continue;
      std::ifstream comm(std::string("/proc/self/task/") + entry->d_name + "/comm");
      std::string name;
      std::getline(comm, name);
      count += name.rfind("tmr-", 0) == 0;
    }
    closedir(dir);
  }
  return count;
}

struct Fixture : ::testing::Test {
  RuntimeConfig config() {
    RuntimeConfig c;
    c.clusters = 2;
    c.scheduler_threads = 1;
    c.ring = testing::few_tasks_ring();  // 300 tasks a run at most
    return c;
  }
  void SetUp() override {
    runtime = std::make_unique<Runtime>(config());
    copy_aiv = runtime->kernels().add("copy", CoreType::aiv, &copy_kernel);
    noop_aic = runtime->kernels().add("noop_aic", CoreType::aic, &noop);
    noop_aiv = runtime->kernels().add("noop_aiv", CoreType::aiv, &noop);
    thrower = runtime->kernels().add("thrower", CoreType::aiv, &throwing_kernel);
  }
  RunResult run(const Orchestration& o) { return runtime->run(o); }
  // The runtime still works after an error.
  void expect_healthy() {
    std::vector<float> x(16, 2.0f), y(16, 0.0f);
    RunArgs args;
    args.input(x.data(), {16}, DType::f32);
    args.output(y.data(), {16}, DType::f32);
    const RunResult r = runtime->run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          o.submit_aiv(copy_aiv, Args().in(a.tensor(0)).out_existing(a.tensor(1)));
        },
        args);
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(y[5], 2.0f);
  }
  std::unique_ptr<Runtime> runtime;
  KernelId copy_aiv = kNoKernel, noop_aic = kNoKernel, noop_aiv = kNoKernel, thrower = kNoKernel;
};

TEST_F(Fixture, UnknownKernelIsNamed) {
  const RunResult r =
      run([&](Orchestrator& o, const OrchestrationArgs&) { o.submit_aiv(99, Args()); });
  EXPECT_EQ(r.status.code, ErrorCode::unknown_kernel);
  EXPECT_NE(r.status.message.find("99"), std::string::npos);
  expect_healthy();
}

TEST_F(Fixture, KernelInTheWrongSlotIsRejected) {
  const RunResult r =
      run([&](Orchestrator& o, const OrchestrationArgs&) { o.submit_aic(noop_aiv, Args()); });
  EXPECT_EQ(r.status.code, ErrorCode::invalid_args);
  EXPECT_NE(r.status.message.find("noop_aiv"), std::string::npos);
}

TEST_F(Fixture, TooManyTensorArgumentsAreReportedAtSubmit) {
  std::vector<float> data(4);
  const RunResult r = run([&](Orchestrator& o, const OrchestrationArgs&) {
    Args args;
    for (int i = 0; i <= kMaxTensorArgs; ++i)
      args.in(Tensor::wrap(data.data(), {4}, DType::f32));
    o.submit_aiv(noop_aiv, args);
  });
  EXPECT_EQ(r.status.code, ErrorCode::invalid_args);
}

TEST_F(Fixture, NullTensorIsRejected) {
  const RunResult r = run([&](Orchestrator& o, const OrchestrationArgs&) {
    o.submit_aiv(noop_aiv, Args().in(Tensor()));
  });
  EXPECT_EQ(r.status.code, ErrorCode::invalid_args);
  EXPECT_NE(r.status.message.find("null"), std::string::npos);
}

TEST_F(Fixture, StartTogetherLargerThanTheMachineFails) {
  const RunResult r = run([&](Orchestrator& o, const OrchestrationArgs&) {
    o.submit_aic(noop_aic, Args().blocks(3).sync_start());  // 2 clusters only
  });
  EXPECT_EQ(r.status.code, ErrorCode::sync_start_invalid);
}

TEST_F(Fixture, FatalLatchTurnsLaterCallsIntoNoOps) {
  int after = 0;
  const RunResult r = run([&](Orchestrator& o, const OrchestrationArgs&) {
    o.report_fatal(ErrorCode::explicit_fatal, "user says stop");
    const TaskOutputs out = o.submit_aiv(noop_aiv, Args().out(TensorSpec({4}, DType::f32)));
    after = out.size();
    EXPECT_TRUE(o.fatal());
  });
  EXPECT_EQ(r.status.code, ErrorCode::explicit_fatal);
  EXPECT_EQ(r.status.message, "user says stop");
  EXPECT_EQ(after, 0);
  expect_healthy();
}

TEST_F(Fixture, KernelExceptionFailsTheRunAndSkipsCopyBack) {
  std::vector<float> y(8, -1.0f);
  RunArgs args;
  args.output(y.data(), {8}, DType::f32);
  const RunResult r = runtime->run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        o.submit_aiv(thrower, Args().out_existing(a.tensor(0)));
        for (int i = 0; i < 50; ++i)
          o.submit_aiv(noop_aiv, Args().inout(a.tensor(0)));
      },
      args);
  EXPECT_EQ(r.status.code, ErrorCode::kernel_exception);
  EXPECT_NE(r.status.message.find("bad tile"), std::string::npos);
  EXPECT_NE(r.status.message.find("'thrower'"), std::string::npos) << r.status.message;
  EXPECT_EQ(y[0], -1.0f) << "outputs must not be copied back after an error";
  expect_healthy();
}

// A kernel that throws in the middle of a chain: every task before it was an early hand-off
// on one core, which keeps its stepping flag set through each latched successor
// (ThreadsPlatform::core_main); the run must still end, name the kernel and leave the runtime
// usable, with successors already latched when the failure was seen.
TEST_F(Fixture, KernelExceptionInTheMiddleOfAChainEndsTheRun) {
  std::vector<float> y(8, -1.0f);
  RunArgs args;
  args.output(y.data(), {8}, DType::f32);
  for (int attempt = 0; attempt < 3; ++attempt) {
    const RunResult r = runtime->run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          for (int i = 0; i < 300; ++i)
            o.submit_aiv(i == 150 ? thrower : noop_aiv, Args().inout(a.tensor(0)));
        },
        args);
    EXPECT_EQ(r.status.code, ErrorCode::kernel_exception);
    EXPECT_NE(r.status.message.find("'thrower'"), std::string::npos) << r.status.message;
    EXPECT_EQ(y[0], -1.0f) << "outputs must not be copied back after an error";
  }
  expect_healthy();
}

TEST_F(Fixture, OrchestrationExceptionIsReported) {
  const RunResult r =
      run([&](Orchestrator&, const OrchestrationArgs&) { throw std::logic_error("oops"); });
  EXPECT_EQ(r.status.code, ErrorCode::orchestration_exception);
  EXPECT_NE(r.status.message.find("oops"), std::string::npos);
  expect_healthy();
}

TEST_F(Fixture, OutOfBoundsViewThrownInsideOrchestrationBecomesTheStatus) {
  std::vector<float> data(16);
  const RunResult r = run([&](Orchestrator&, const OrchestrationArgs&) {
    Tensor::wrap(data.data(), {4, 4}, DType::f32).view({2, 2}, {3, 3});
  });
  EXPECT_EQ(r.status.code, ErrorCode::invalid_args);
}

TEST_F(Fixture, ElementAccessOutOfBoundsIsAnError) {
  std::vector<float> data(16);
  const RunResult r = run([&](Orchestrator& o, const OrchestrationArgs&) {
    o.get_tensor_data<float>(Tensor::wrap(data.data(), {4, 4}, DType::f32), {4, 0});
  });
  EXPECT_EQ(r.status.code, ErrorCode::invalid_args);
}

TEST_F(Fixture, ElementAccessWithTheWrongTypeIsAnError) {
  std::vector<float> data(16);
  const RunResult r = run([&](Orchestrator& o, const OrchestrationArgs&) {
    o.get_tensor_data<double>(Tensor::wrap(data.data(), {4, 4}, DType::f32), {0, 0});
  });
  EXPECT_EQ(r.status.code, ErrorCode::invalid_args);
}

TEST_F(Fixture, TensorUsedAfterItsScopeEndedIsAnError) {
  const RunResult r = run([&](Orchestrator& o, const OrchestrationArgs&) {
    Tensor escaped;
    {
      TMR_SCOPE(o);
      escaped = o.submit_aiv(noop_aiv, Args().out(TensorSpec({4}, DType::f32)))[0];
    }
    o.submit_aiv(noop_aiv, Args().in(escaped));
  });
  EXPECT_EQ(r.status.code, ErrorCode::invalid_args);
  EXPECT_NE(r.status.message.find("scope"), std::string::npos);
}

TEST_F(Fixture, UnbalancedScopesAreReported) {
  RunResult r = run([&](Orchestrator& o, const OrchestrationArgs&) { o.scope_end(); });
  EXPECT_EQ(r.status.code, ErrorCode::scope_error);
  r = run([&](Orchestrator& o, const OrchestrationArgs&) {
    o.scope_begin();
    o.submit_aiv(noop_aiv, Args());
  });
  EXPECT_EQ(r.status.code, ErrorCode::scope_error);
  expect_healthy();
}

TEST_F(Fixture, BadConfigurationIsRejectedWithTheFieldName) {
  RuntimeConfig c;
  c.ring.task_window = 100;  // not a power of two
  try {
    Runtime bad(c);
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_config);
    EXPECT_NE(std::string(e.what()).find("task_window"), std::string::npos);
  }
}

// One cluster, one scheduler thread and the given task window per ring.
RuntimeConfig one_cluster(std::uint32_t window = RingConfig{}.task_window) {
  RuntimeConfig c;
  c.clusters = 1;
  c.scheduler_threads = 1;
  c.ring.task_window = window;
  return c;
}

using Clock = std::chrono::steady_clock;

TEST(RingErrors, ImpossibleScopeFailsAtOnceAndLeavesNoThread) {
  {
    RuntimeConfig c;
    c.clusters = 2;
    c.scheduler_threads = 1;
    c.ring.task_window = 8;
    Runtime runtime(c);
    EXPECT_EQ(runtime_thread_count(), 2 * 3 + 1) << "2 clusters of 3 cores, 1 scheduler";
    const KernelId k = runtime.kernels().add("noop", CoreType::aiv, &noop);
    const auto start = Clock::now();
    const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      TMR_SCOPE(o);
      // Tasks that create buffers are held by their scope until it ends.
      for (int i = 0; i < 20; ++i)
        o.submit_aiv(k, Args().out(TensorSpec({4}, DType::f32)));
    });
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(1));
    EXPECT_EQ(r.status.code, ErrorCode::scope_deadlock);
    EXPECT_NE(r.status.message.find("TMR_RING_TASK_WINDOW"), std::string::npos);
  }
  EXPECT_EQ(runtime_thread_count(), 0) << "every runtime thread must be joined";
}

TEST(RingErrors, OutputLargerThanTheHeapFailsAtOnce) {
  RuntimeConfig c = one_cluster(testing::kFewTasksWindow);  // one task
  c.ring.heap_bytes = 4096;
  Runtime runtime(c);
  const KernelId k = runtime.kernels().add("noop", CoreType::aiv, &noop);
  const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    o.submit_aiv(k, Args().out(TensorSpec({2048}, DType::f32)));
  });
  EXPECT_EQ(r.status.code, ErrorCode::heap_ring_deadlock);
  EXPECT_NE(r.status.message.find("TMR_RING_HEAP"), std::string::npos);
}

TEST(RingErrors, DeadlockThroughAnOuterScopeIsDiagnosedWithinASecond) {
  // Depth >= 3 shares ring 3: a task held by the depth-3 scope pins the watermark, so inner
  // scopes that end still cannot free the ring. Nothing can move: a named error, fast.
  Runtime runtime(one_cluster(8));
  const KernelId k = runtime.kernels().add("noop", CoreType::aiv, &noop);
  const auto start = Clock::now();
  const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    TMR_SCOPE(o);
    TMR_SCOPE(o);
    TMR_SCOPE(o);  // depth 3: ring 3
    const TensorSpec spec({4}, DType::f32);
    o.submit_aiv(k, Args().out(spec));  // pinned by the depth-3 scope until the end
    for (int i = 0; i < 20; ++i) {
      TMR_SCOPE(o);  // depth 4: also ring 3; each of these scopes ends, yet nothing retires
      o.submit_aiv(k, Args().out(spec));
    }
  });
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(1));
  EXPECT_EQ(r.status.code, ErrorCode::flow_control_deadlock) << r.status.to_string();
  EXPECT_NE(r.status.message.find("ring 3"), std::string::npos) << r.status.message;
}

TEST(RingErrors, TasksWithoutFreshOutputsAreNotHeldByTheirScope) {
  // 100 tasks in one scope with a window of 8: they create no buffer, so each retires once
  // done and the scope never pins the ring.
  Runtime runtime(one_cluster(8));
  const KernelId k = runtime.kernels().add("noop", CoreType::aiv, &noop);
  std::vector<float> data(100);
  const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor t = Tensor::wrap(data.data(), {100}, DType::f32);
    TMR_SCOPE(o);
    for (std::uint32_t i = 0; i < 100; ++i)
      o.submit_aiv(k, Args().inout(t.view({1}, {i})));
  });
  EXPECT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.stats.tasks_submitted, 100u);
}

TEST(RingErrors, BackPressureWaitsInsteadOfFailingWhenProgressIsPossible) {
  RuntimeConfig c = one_cluster(4);
  c.ring.heap_bytes = 1024;
  Runtime runtime(c);
  const KernelId k = runtime.kernels().add("copy", CoreType::aiv, &copy_kernel);
  std::vector<float> x(64, 1.0f), y(64, 0.0f);
  RunArgs args;
  args.input(x.data(), {64}, DType::f32);
  args.output(y.data(), {64}, DType::f32);
  const RunResult r = runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        for (int i = 0; i < 200; ++i) {
          TMR_SCOPE(o);
          const Tensor t =
              o.submit_aiv(k, Args().in(a.tensor(0)).out(TensorSpec({64}, DType::f32)))[0];
          o.submit_aiv(k, Args().in(t).out_existing(a.tensor(1)));
        }
      },
      args);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.stats.tasks_submitted, 400u);
  EXPECT_EQ(y[63], 1.0f);
  // The ring waits are some of the blocked time (whether any happens depends on the kernels'
  // pace); steps with progress are some of the steps.
  const RunStats& s = r.stats;
  EXPECT_LE(s.orchestrator_ring_wait_us, s.orchestrator_blocked_us);
  if (s.orchestrator_ring_waits == 0) {
    EXPECT_EQ(s.orchestrator_ring_wait_us, 0.0);
  }
  EXPECT_LE(s.orchestrator_wait_steps_progress, s.orchestrator_wait_steps);
}

// Every named error a submit with fresh outputs (out(...)) can meet, on both platforms: on threads
// (no trace, no charge) such a submit takes OrchestratorCore::submit_plain_outputs, on sim the
// generic steps; the same code and message either way, and the runtime runs the next program.
class FreshOutputErrors : public ::testing::TestWithParam<PlatformKind> {
 protected:
  // The runtime (one cluster, the given task window and heap, a pool of 16 dependency records)
  // with a copy kernel and a no-op one.
  Runtime& start(std::uint32_t window, std::uint64_t heap) {
    RuntimeConfig c = one_cluster(window);
    c.platform = GetParam();
    c.ring.heap_bytes = heap;
    c.ring.dep_pool = 16;
    c.stall_timeout_s = 30;
    runtime_ = std::make_unique<Runtime>(c);
    copy_ = runtime_->kernels().add("copy", CoreType::aiv, &copy_kernel);
    noop_ = runtime_->kernels().add("noop", CoreType::aiv, &noop);
    return *runtime_;
  }
  // The run failed with `code` and a message naming `text`; then a healthy run: a chain through
  // fresh outputs, its values checked.
  void expect_error_then_healthy(const RunResult& r, ErrorCode code, const std::string& text) {
    EXPECT_EQ(r.status.code, code) << r.status.to_string();
    EXPECT_NE(r.status.message.find(text), std::string::npos) << r.status.message;
    std::vector<float> x(64, 3.0f), y(64, 0.0f);
    RunArgs args;
    args.input(x.data(), {64}, DType::f32);
    args.output(y.data(), {64}, DType::f32);
    const RunResult healthy = runtime_->run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          TMR_SCOPE(o);
          Tensor t = a.tensor(0);
          for (int i = 0; i < 3; ++i)
            t = o.submit_aiv(copy_, Args().in(t).out(TensorSpec({64}, DType::f32)))[0];
          o.submit_aiv(copy_, Args().in(t).out_existing(a.tensor(1)));
        },
        args);
    ASSERT_TRUE(healthy.ok()) << healthy.status.to_string();
    EXPECT_EQ(y[0], 3.0f);
    EXPECT_EQ(y[63], 3.0f);
  }
  std::unique_ptr<Runtime> runtime_;
  KernelId copy_ = kNoKernel, noop_ = kNoKernel;
};

TEST_P(FreshOutputErrors, OutputLargerThanTheHeap) {
  const RunResult r = start(8, 4096).run([&](Orchestrator& o, const OrchestrationArgs&) {
    o.submit_aiv(noop_,
                 Args().out(TensorSpec({64}, DType::f32)).out(TensorSpec({1024}, DType::f32)));
  });
  expect_error_then_healthy(r, ErrorCode::heap_ring_deadlock, "need 4352 bytes");
}

TEST_P(FreshOutputErrors, OpenScopesHoldingTheHeap) {
  const RunResult r = start(16, 4096).run([&](Orchestrator& o, const OrchestrationArgs&) {
    TMR_SCOPE(o);
    for (int i = 0; i < 3; ++i)  // 3 x 1536 bytes held by the scope: the third cannot fit
      o.submit_aiv(noop_, Args().out(TensorSpec({384}, DType::f32)));
  });
  expect_error_then_healthy(r, ErrorCode::scope_deadlock, "already hold 3072 heap bytes");
}

TEST_P(FreshOutputErrors, OpenScopesHoldingTheWindow) {
  const RunResult r = start(8, 1 << 16).run([&](Orchestrator& o, const OrchestrationArgs&) {
    TMR_SCOPE(o);
    for (int i = 0; i < 20; ++i)  // held by the scope: the eighth cannot fit a window of 8
      o.submit_aiv(noop_, Args().out(TensorSpec({4}, DType::f32)));
  });
  expect_error_then_healthy(r, ErrorCode::scope_deadlock, "already hold 7 tasks");
}

TEST_P(FreshOutputErrors, MoreProducersThanTheDependencyPool) {
  float cell = 0.0f;
  const RunResult r = start(64, 1 << 16).run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor t = Tensor::wrap(&cell, {1}, DType::f32);
    TMR_SCOPE(o);
    for (int i = 0; i < 20; ++i)  // held readers of t: 20 live producers for the write after
      o.submit_aiv(noop_, Args().in(t).out(TensorSpec({1}, DType::f32)));
    o.submit_aiv(noop_, Args().out(TensorSpec({1}, DType::f32)).out_existing(t));
  });
  expect_error_then_healthy(r, ErrorCode::dependency_overflow, "depends on 20 earlier tasks");
}

TEST_P(FreshOutputErrors, TensorUsedAfterItsScopeEnded) {
  const RunResult r = start(8, 1 << 16).run([&](Orchestrator& o, const OrchestrationArgs&) {
    Tensor escaped;
    {
      TMR_SCOPE(o);
      escaped = o.submit_aiv(noop_, Args().out(TensorSpec({4}, DType::f32)))[0];
    }
    o.submit_aiv(noop_, Args().in(escaped).out(TensorSpec({4}, DType::f32)));
  });
  expect_error_then_healthy(r, ErrorCode::invalid_args, "scope");
}

INSTANTIATE_TEST_SUITE_P(Platforms, FreshOutputErrors, testing::both_platforms(),
                         testing::platform_name);

}  // namespace
}  // namespace tmr
