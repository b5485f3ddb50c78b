// The program of the tests where an analysed task names a buffer whose creator's scope has ended.
//
// A parallel_for over the 12 rows of input 0 (4 columns, ones): each iteration opens a scope,
// submits `make` (its row in, a fresh row out), then the caller's consumer of that fresh row, and
// closes the scope. From iteration kScopeEndsFrom on, the scope ends right after `make`, before
// the consumer is submitted, so the consumer names a buffer whose scope has ended; the earlier
// iterations let the loop learn and start its analysis, so the failing consumer is an analysed
// task. Output 1 (12 x 4, zeros) is there for the consumer to write its row of.
#pragma once

#include <cstdint>
#include <vector>

#include "tmr/tmr.hpp"

namespace tmr::testing {

inline constexpr std::int64_t kScopeEndsFrom = 5;

// consume(Orchestrator&, std::int64_t i, const Tensor& made, const Tensor& out_row) submits the
// consumer. `*failed_at` is set to the first iteration after which the run has failed.
template <class Consume>
RunResult run_ended_scope_loop(Runtime& runtime, KernelId make, Consume consume,
                               std::int64_t* failed_at) {
  constexpr std::uint32_t kRows = 12;
  constexpr std::uint32_t kCols = 4;
  std::vector<float> in(kRows * kCols, 1.0f), out(kRows * kCols, 0.0f);
  RunArgs args;
  args.input(in.data(), {kRows, kCols}, DType::f32);
  args.output(out.data(), {kRows, kCols}, DType::f32);
  *failed_at = -1;
  const auto row = [](const Tensor& t, std::uint32_t k) {
    return t.view({1, kCols}, {k, 0}).reshape({kCols});
  };
  return runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
          const auto k = static_cast<std::uint32_t>(i);
          o.scope_begin();
          const TaskOutputs t = o.submit_aiv(
              make, Args().in(row(a.tensor(0), k)).out(TensorSpec({kCols}, DType::f32)));
          if (i >= kScopeEndsFrom) o.scope_end();
          if (!t.valid()) return;
          consume(o, i, t[0], row(a.tensor(1), k));
          if (o.fatal() && *failed_at < 0) *failed_at = i;
          if (i < kScopeEndsFrom) o.scope_end();
        });
      },
      args);
}

}  // namespace tmr::testing
