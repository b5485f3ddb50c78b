// Orchestrator CPU time per task with and without parallel_for, A/B in one run: 16,384
// iterations that each write their own slice of one output (2 and 4 tensor arguments). The
// measured tasks wait behind a gate task (one of their arguments), so the orchestrator runs
// alone while it is timed; the tasks then run as usual. Counters: cpu_ns_per_task (the mean over
// all runs), floor_ns_per_task and median_run_ns_per_task (of the steady runs, below).
#include <benchmark/benchmark.h>

#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "tmr/tmr.hpp"

namespace {

double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

void empty_kernel(const tmr::KernelArgs&) {}

std::atomic<bool> gate_open{false};
void gate_kernel(const tmr::KernelArgs&) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!gate_open.load(std::memory_order_acquire) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

// range(0): 0 = plain for loop, 1 = parallel_for. range(1): tensor arguments per task (2 or 4).
// kViewArgs: the body adds its views with Args::in(tensor, shape, offsets) (built in the argument
// slot) instead of Args::in(tensor.view(shape, offsets)); BM_SliceWritesViewArgs.
template <bool kViewArgs>
void slice_writes(benchmark::State& state) {
  const bool analysed = state.range(0) == 1;
  const auto tensor_args = static_cast<int>(state.range(1));
  static constexpr std::uint32_t kIterations = 16384;
  static constexpr std::uint32_t kRow = 16;
  tmr::RuntimeConfig config;
  config.clusters = 1;
  config.scheduler_threads = 1;
  config.ring.task_window = 1 << 16;  // every measured task stays live: no back-pressure
  config.ring.dep_pool = 1 << 20;
  tmr::Runtime runtime(config);
  const tmr::KernelId kernel = runtime.kernels().add("empty", tmr::CoreType::aiv, &empty_kernel);
  const tmr::KernelId gate_id = runtime.kernels().add("gate", tmr::CoreType::aic, &gate_kernel);
  std::vector<float> x(std::size_t{kIterations} * kRow), y(x.size()), out(x.size());
  float gate_cell = 0;
  double total_cpu_ns = 0;
  std::vector<double> run_ns;  // per run, for the floor and median counters
  std::uint64_t total_tasks = 0;
  std::uint64_t tasks_analysed = 0;
  for (auto _ : state) {
    const tmr::RunResult result =
        runtime.run([&](tmr::Orchestrator& o, const tmr::OrchestrationArgs&) {
          const auto wrap = [](std::vector<float>& v) {
            return tmr::Tensor::wrap(v.data(), {kIterations, kRow}, tmr::DType::f32);
          };
          const tmr::Tensor tx = wrap(x), ty = wrap(y), tout = wrap(out);
          const tmr::Tensor gate = tmr::Tensor::wrap(&gate_cell, {1}, tmr::DType::f32);
          gate_open = false;
          o.submit_aic(gate_id, tmr::Args().out_existing(gate));
          auto body = [&](tmr::Orchestrator& o, std::int64_t i) {
            const auto row = static_cast<std::uint32_t>(i);
            tmr::Args args;
            args.in(gate);
            if constexpr (kViewArgs) {
              if (tensor_args == 4) args.in(tx, {1, kRow}, {row, 0}).in(ty, {1, kRow}, {row, 0});
              args.out_existing(tout, {1, kRow}, {row, 0});
            } else {
              if (tensor_args == 4) {
                args.in(tx.view({1, kRow}, {row, 0})).in(ty.view({1, kRow}, {row, 0}));
              }
              args.out_existing(tout.view({1, kRow}, {row, 0}));
            }
            o.submit_aiv(kernel, args);
          };
          const double cpu_start = thread_cpu_ns();
          if (analysed) {
            o.parallel_for(kIterations, body);
          } else {
            for (std::uint32_t i = 0; i < kIterations; ++i)
              body(o, i);
          }
          run_ns.push_back(thread_cpu_ns() - cpu_start);
          total_cpu_ns += run_ns.back();
          total_tasks += kIterations;
          gate_open = true;
        });
    if (!result.ok()) state.SkipWithError(result.status.to_string().c_str());
    tasks_analysed += result.stats.loop_tasks_analysed;
  }
  state.counters["cpu_ns_per_task"] = total_cpu_ns / static_cast<double>(total_tasks);
  // On a shared host most disturbance adds time, so the least disturbed runs say more about the
  // code than the mean. Floor: the fastest run; median: of the runs. Both skip the first
  // kWarmRuns runs when there are more (fresh ring pages fault in while the 65,536-task window
  // is first walked). Named so that "cpu_ns_per_task=" (scripts/ab_parallel_for.sh) matches the
  // mean only.
  constexpr std::size_t kWarmRuns = 4;
  const auto first = run_ns.begin() + (run_ns.size() > 2 * kWarmRuns ? kWarmRuns : 0);
  std::vector<double> steady(first, run_ns.end());
  std::sort(steady.begin(), steady.end());
  if (!steady.empty()) {
    state.counters["floor_ns_per_task"] = steady.front() / kIterations;
    state.counters["median_run_ns_per_task"] = steady[steady.size() / 2] / kIterations;
  }
  state.counters["analysed_share"] =
      static_cast<double>(tasks_analysed) / static_cast<double>(total_tasks);
}

void BM_SliceWrites(benchmark::State& state) {
  slice_writes<false>(state);
}
void BM_SliceWritesViewArgs(benchmark::State& state) {
  slice_writes<true>(state);
}

// Both loop forms and both argument counts; each run is a whole 16,384-iteration orchestration.
void slice_write_cases(benchmark::internal::Benchmark* b) {
  b->ArgNames({"parallel_for", "args"})
      ->Args({0, 2})
      ->Args({1, 2})
      ->Args({0, 4})
      ->Args({1, 4})
      ->Unit(benchmark::kMillisecond)
      ->MinTime(0.5);
}

BENCHMARK(BM_SliceWrites)->Apply(slice_write_cases);
BENCHMARK(BM_SliceWritesViewArgs)->Apply(slice_write_cases);

}  // namespace
