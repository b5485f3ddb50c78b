// (session 38, iter38) The wide replayed submit's heap credit (OrchestratorCore::heap_credit_end_):
// the fit and heap tests of a loop's fresh outputs are passed once for a run of wide submits. A
// credited reservation must be exactly the one the tests would have made: every buffer is its
// own while its task lives (values of whole buffers checked through a chain of consumers), a full
// heap still blocks and helps (tiny heaps, iteration scopes), another path's admit in the middle
// of an iteration (a deviating task, a wrap) leaves the credit exact, and an open scope outgrowing
// the heap is named at the very submit the tests would name it. On both platforms, analysed and
// not.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/orchestrator_core.hpp"
#include "support/platforms.hpp"
#include "tmr/tmr.hpp"

namespace tmr::testing {
namespace {

float sum_of(const Tensor& t) {
  const float* const x = t.data_as<float>();
  float s = 0.0f;
  for (std::uint64_t j = 0; j < t.elements(); ++j)
    s += x[j];
  return s;
}
// out[j] = sum(in) + j over the whole output (every byte of the buffer written).
void spread(const KernelArgs& a) {
  const float s = sum_of(a.tensor(0));
  float* const y = a.tensor(1).data_as<float>();
  for (std::uint64_t j = 0; j < a.tensor(1).elements(); ++j)
    y[j] = s + static_cast<float>(j);
}
// out[0] = sum(in).
void total(const KernelArgs& a) {
  a.tensor(1).data_as<float>()[0] = sum_of(a.tensor(0));
}

// sum_j (s + j) for j < n: what a spread's output of n elements sums to.
float spread_sum(float s, std::uint32_t n) {
  float r = 0.0f;
  for (std::uint32_t j = 0; j < n; ++j)
    r += s + static_cast<float>(j);
  return r;
}

using Param = PlatformAndAnalysis;

class HeapCredit : public ::testing::TestWithParam<Param> {
 protected:
  static RuntimeConfig config(std::uint32_t window, std::uint64_t heap_bytes) {
    RuntimeConfig config = two_cluster_config(GetParam());
    config.ring.task_window = window;
    config.ring.heap_bytes = heap_bytes;
    return config;
  }
};

// Iteration i: a = spread(x[i]) ([kA], fresh), b = spread(a) ([kB], fresh), y[i] = total(b).
// Iterations with i % 7 == 3 put a deviating pair between a and b: d = spread(a) ([kD], fresh,
// another output shape: not the template's, so another path admits it), w[i] = total(d).
// 128 + 192 bytes an iteration (640 more with the deviation) in a heap of `heap_bytes`.
struct Chain {
  static constexpr std::uint32_t kA = 24;  // 96 bytes -> 128
  static constexpr std::uint32_t kB = 40;  // 160 bytes -> 192
  static constexpr std::uint32_t kD = 160;
  KernelId spread_k;
  KernelId total_k;

  RunResult run(Runtime& runtime, std::uint32_t iterations, bool deviate, bool own_scope,
                std::uint64_t* grants) const {
    std::vector<float> x(iterations), y(iterations, -1.0f), w(iterations, -1.0f);
    for (std::uint32_t i = 0; i < iterations; ++i)
      x[i] = static_cast<float>(i);
    RunArgs args;
    args.input(x.data(), {iterations}, DType::f32);
    args.output(y.data(), {iterations}, DType::f32);
    args.output(w.data(), {iterations}, DType::f32);
    const RunResult r = runtime.run(
        [&](Orchestrator& o, const OrchestrationArgs& in) {
          o.parallel_for(
              iterations,
              [&](Orchestrator& o, std::int64_t i) {
                const auto k = static_cast<std::uint32_t>(i);
                if (own_scope) o.scope_begin();
                const Tensor a = o.submit_aiv(
                    spread_k,
                    Args().in(in.tensor(0).view({1}, {k})).out(TensorSpec({kA}, DType::f32)))[0];
                if (deviate && k % 7 == 3) {
                  const Tensor d =
                      o.submit_aiv(spread_k, Args().in(a).out(TensorSpec({kD}, DType::f32)))[0];
                  o.submit_aiv(total_k, Args().in(d).out_existing(in.tensor(2).view({1}, {k})));
                }
                const Tensor b =
                    o.submit_aiv(spread_k, Args().in(a).out(TensorSpec({kB}, DType::f32)))[0];
                o.submit_aiv(total_k, Args().in(b).out_existing(in.tensor(1).view({1}, {k})));
                if (own_scope) o.scope_end();
              },
              LoopOptions{.scope_per_iteration = !own_scope});
          *grants = detail::OrchestratorCore::of(o).heap_grants();
        },
        args);
    if (!r.ok()) return r;
    for (std::uint32_t i = 0; i < iterations; ++i) {
      const float a_sum = spread_sum(static_cast<float>(i), kA);
      EXPECT_EQ(y[i], spread_sum(a_sum, kB)) << "iteration " << i;
      if (deviate && i % 7 == 3) {
        EXPECT_EQ(w[i], spread_sum(a_sum, kD)) << "iteration " << i;
      }
    }
    return r;
  }
};

// A large heap never wraps in the loop: the first wide submit with outputs grants the one credit
// and every later one takes it, deviating admits in the middle of iterations included (they move
// the top inside the credit).
TEST_P(HeapCredit, OneGrantCoversALoopOnALargeHeap) {
  for (const bool deviate : {false, true}) {
    Runtime runtime(config(1024, 1u << 20));
    const Chain chain{runtime.kernels().add("spread", CoreType::aiv, &spread),
                      runtime.kernels().add("total", CoreType::aiv, &total)};
    std::uint64_t grants = 0;
    const RunResult r = chain.run(runtime, 200, deviate, false, &grants);
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    if (GetParam().analysed) {
      EXPECT_GT(r.stats.loop_tasks_replayed_wide, 0u) << "deviate " << deviate;
      EXPECT_EQ(grants, 1u) << "deviate " << deviate;
    } else {
      EXPECT_EQ(grants, 0u);
    }
    // A second run: the rings were reset, no credit survives.
    const RunResult again = chain.run(runtime, 50, deviate, false, &grants);
    ASSERT_TRUE(again.ok()) << again.status.to_string();
    if (GetParam().analysed) {
      EXPECT_EQ(grants, 1u) << "deviate " << deviate;
    }
  }
}

// Tiny heaps (the minimum, 1024 bytes, and 1536) and windows: the heap wraps every few
// iterations, with waste, and a full heap blocks until the iteration scopes end; a deviating
// task's 640 bytes often wrap the heap inside a credit. Iteration scopes and the body's own.
TEST_P(HeapCredit, TinyHeapsWrapAndBlock) {
  for (const std::uint64_t heap : {1024u, 1536u}) {
    for (const std::uint32_t window : {8u, 16u}) {
      for (const bool deviate : {false, true}) {
        for (const bool own_scope : {false, true}) {
          Runtime runtime(config(window, heap));
          const Chain chain{runtime.kernels().add("spread", CoreType::aiv, &spread),
                            runtime.kernels().add("total", CoreType::aiv, &total)};
          std::uint64_t grants = 0;
          const RunResult r = chain.run(runtime, 120, deviate, own_scope, &grants);
          const std::string what = "heap " + std::to_string(heap) + " window " +
                                   std::to_string(window) + " deviate " + std::to_string(deviate) +
                                   " own scope " + std::to_string(own_scope);
          ASSERT_TRUE(r.ok()) << what << ": " << r.status.to_string();
          if (GetParam().analysed) {
            EXPECT_GT(r.stats.loop_tasks_replayed_wide, 0u) << what;
            EXPECT_GT(grants, 0u) << what;
          }
        }
      }
    }
  }
}

// The loop's own open scope keeps every iteration's 1 KiB output: with a 16 KiB heap the
// 17th does not fit the scope's books, and the error is named at that submit (iteration 16),
// credited or not, as the per-submit tests name it; then the runtime runs again.
TEST_P(HeapCredit, OpenScopeOutgrowingTheHeapIsNamedAtTheSameSubmit) {
  Runtime runtime(config(1024, 16384));
  const KernelId spread_k = runtime.kernels().add("spread", CoreType::aiv, &spread);
  std::vector<float> x(64, 1.0f);
  RunArgs args;
  args.input(x.data(), {64}, DType::f32);
  std::int64_t failed_at = -1;
  // 64 iterations, each one spread of `elements` outputs in the loop's one scope; failed_at is
  // the first iteration whose submit found the run failed.
  const auto spread_all = [&](Runtime& rt, KernelId kernel, std::uint32_t elements) {
    failed_at = -1;
    return rt.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          o.parallel_for(64, [&](Orchestrator& o, std::int64_t i) {
            const auto k = static_cast<std::uint32_t>(i);
            o.submit_aiv(
                kernel,
                Args().in(a.tensor(0).view({1}, {k})).out(TensorSpec({elements}, DType::f32)));
            if (o.fatal() && failed_at < 0) failed_at = i;
          });
        },
        args);
  };
  const RunResult r = spread_all(runtime, spread_k, 256);
  EXPECT_EQ(r.status.code, ErrorCode::scope_deadlock) << r.status.to_string();
  EXPECT_NE(r.status.message.find("heap bytes"), std::string::npos) << r.status.to_string();
  EXPECT_EQ(failed_at, 16);
  // The same for the scope's task count (tested each submit): with a window of 16, the submit
  // that finds 15 open-scope tasks (iteration 15) is refused.
  Runtime small(config(16, 1u << 20));
  const KernelId spread_s = small.kernels().add("spread", CoreType::aiv, &spread);
  const RunResult tasks = spread_all(small, spread_s, 16);
  EXPECT_EQ(tasks.status.code, ErrorCode::scope_deadlock) << tasks.status.to_string();
  EXPECT_NE(tasks.status.message.find("tasks"), std::string::npos) << tasks.status.to_string();
  EXPECT_EQ(failed_at, 15);
  // Healthy again.
  std::uint64_t grants = 0;
  const Chain chain{spread_k, runtime.kernels().add("total", CoreType::aiv, &total)};
  const RunResult healthy = chain.run(runtime, 20, true, false, &grants);
  EXPECT_TRUE(healthy.ok()) << healthy.status.to_string();
}

// An error in the middle of an iteration (a deviating task whose output can never fit the heap,
// after the iteration's first wide submit took the credit) ends the run with its named error; the
// next run is healthy.
TEST_P(HeapCredit, ErrorInTheMiddleOfAnIterationIsNamed) {
  Runtime runtime(config(64, 4096));
  const Chain chain{runtime.kernels().add("spread", CoreType::aiv, &spread),
                    runtime.kernels().add("total", CoreType::aiv, &total)};
  std::vector<float> x(32, 1.0f);
  RunArgs args;
  args.input(x.data(), {32}, DType::f32);
  std::int64_t failed_at = -1;
  const RunResult r = runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        o.parallel_for(
            32,
            [&](Orchestrator& o, std::int64_t i) {
              const auto k = static_cast<std::uint32_t>(i);
              const TaskOutputs t = o.submit_aiv(
                  chain.spread_k,
                  Args().in(a.tensor(0).view({1}, {k})).out(TensorSpec({Chain::kA}, DType::f32)));
              if (k == 9 && t.valid()) {
                o.submit_aiv(chain.spread_k,
                             Args().in(t[0]).out(TensorSpec({2048}, DType::f32)));  // 8 KiB
              }
              if (o.fatal() && failed_at < 0) failed_at = i;
            },
            LoopOptions{.scope_per_iteration = true});
      },
      args);
  EXPECT_EQ(r.status.code, ErrorCode::heap_ring_deadlock) << r.status.to_string();
  EXPECT_EQ(failed_at, 9);
  std::uint64_t grants = 0;
  const RunResult healthy = chain.run(runtime, 40, true, false, &grants);
  EXPECT_TRUE(healthy.ok()) << healthy.status.to_string();
}

INSTANTIATE_TEST_SUITE_P(Platforms, HeapCredit, both_platforms_both_analyses(),
                         platform_and_analysis_name);

}  // namespace
}  // namespace tmr::testing
