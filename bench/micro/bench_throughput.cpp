// End-to-end empty-task throughput on the threads platform: independent tasks, a chain, and
// fan-out/fan-in. Reports wall nanoseconds per task for the whole run (submit to last retire).
#include <benchmark/benchmark.h>

#include <vector>

#include "tmr/tmr.hpp"

namespace {

void empty_kernel(const tmr::KernelArgs&) {}

enum class Graph { independent, chain, fan };

void BM_Throughput(benchmark::State& state) {
  const auto graph = static_cast<Graph>(state.range(0));
  const auto clusters = static_cast<int>(state.range(1));
  constexpr std::uint32_t kTasks = 20000;
  tmr::RuntimeConfig config;
  config.apply_env();  // TMR_DUAL_SLOT and friends, for A/B; the topology is the benchmark's own
  config.clusters = clusters;
  config.scheduler_threads = clusters >= 3 ? 3 : 1;
  tmr::Runtime runtime(config);
  const tmr::KernelId k = runtime.kernels().add("empty", tmr::CoreType::aiv, &empty_kernel);
  std::vector<float> data(kTasks + 1);
  double wall_us = 0, orch_us = 0;
  std::uint64_t tasks = 0;
  for (auto _ : state) {
    const tmr::RunResult r = runtime.run([&](tmr::Orchestrator& o, const tmr::OrchestrationArgs&) {
      const tmr::Tensor t = tmr::Tensor::wrap(data.data(), {kTasks + 1}, tmr::DType::f32);
      switch (graph) {
        case Graph::independent:
          for (std::uint32_t i = 0; i < kTasks; ++i)
            o.submit_aiv(k, tmr::Args().out_existing(t.view({1}, {i})));
          break;
        case Graph::chain:
          for (std::uint32_t i = 0; i < kTasks; ++i)
            o.submit_aiv(k, tmr::Args().inout(t.view({1}, {0})));
          break;
        case Graph::fan:
          // Rounds of: one producer of a row, 62 readers of single elements, one joiner.
          for (std::uint32_t round = 0; round < kTasks / 64; ++round) {
            const tmr::Tensor row = t.view({64}, {(round % 64) * 64});
            o.submit_aiv(k, tmr::Args().out_existing(row));
            for (std::uint32_t i = 0; i < 62; ++i)
              o.submit_aiv(k, tmr::Args().in(row.view({1}, {i})));
            o.submit_aiv(k, tmr::Args().inout(row));
          }
          break;
      }
    });
    if (!r.ok()) state.SkipWithError(r.status.to_string().c_str());
    wall_us += r.stats.wall_us;
    orch_us += r.stats.orchestration_us;
    tasks += r.stats.tasks_submitted;
  }
  state.counters["wall_ns_per_task"] = wall_us * 1e3 / static_cast<double>(tasks);
  state.counters["orch_ns_per_task"] = orch_us * 1e3 / static_cast<double>(tasks);
}

BENCHMARK(BM_Throughput)
    ->ArgNames({"graph", "clusters"})
    ->ArgsProduct({{0, 1, 2}, {1, 24}})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(0.5);

}  // namespace
