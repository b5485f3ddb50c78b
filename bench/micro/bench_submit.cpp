// Orchestrator cost per submit: 1, 4 and 8 tensor arguments, with 16, 1024 and 16384 live
// disjoint views of one buffer in the TensorMap. Timed on the orchestrator thread only, while
// the schedulers and cores run the (empty) tasks as usual.
#include <benchmark/benchmark.h>

#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench_gate.hpp"
#include "support/live_views.hpp"
#include "tmr/tmr.hpp"

namespace {

using tmr_bench::gate_kernel;
using tmr_bench::gate_mode;
using tmr_bench::gate_polls;
using tmr_bench::GateMode;
using tmr_bench::set_gate;

using Clock = std::chrono::steady_clock;

// CPU time of the calling thread: the orchestrator's own work, not time it was preempted by
// the scheduler and core threads sharing the host's cores.
double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

void empty_kernel(const tmr::KernelArgs&) {}

// Holds every measured task back (they all read what it writes) until the orchestrator has
// submitted them, so the submit loop runs alone: no scheduler or core competes for the host.
// TMR_BENCH_THREADS=1: what the process's other threads (the runtime's cores and schedulers)
// ran while the orchestrator was timed, from /proc/self/task/*/schedstat (CPU ns and time
// slices), read just before and after the timed loop (the reads are outside it). Shows whether
// anything polls or wakes on the other CPU during the loop (docs/performance.md, session 34).
// Off by default: the reads touch memory right before the timed loop. Any other value than 0 or
// 1 is refused.
enum class ThreadProbe { off, on, invalid };
ThreadProbe thread_probe_from_env() {
  const char* probe = std::getenv("TMR_BENCH_THREADS");
  if (probe == nullptr || std::string_view(probe) == "0") return ThreadProbe::off;
  return std::string_view(probe) == "1" ? ThreadProbe::on : ThreadProbe::invalid;
}
const ThreadProbe thread_probe = thread_probe_from_env();
struct ThreadTimes {
  double cpu_ns = 0;
  double slices = 0;
  bool ok = true;
};
// The sum over every thread of this process but the caller (threads that start or end between
// two reads are counted in neither: none does during the timed loop).
ThreadTimes other_threads_times() {
  ThreadTimes total;
  const std::string self = std::to_string(gettid());
  DIR* tasks = opendir("/proc/self/task");
  if (tasks == nullptr) return {0, 0, false};
  while (const dirent* entry = readdir(tasks)) {
    const std::string tid = entry->d_name;
    if (tid == "." || tid == ".." || tid == self) continue;
    unsigned long long run_ns = 0, wait_ns = 0, slices = 0;
    FILE* stat = std::fopen(("/proc/self/task/" + tid + "/schedstat").c_str(), "r");
    if (stat == nullptr) {
      total.ok = false;
      continue;
    }
    if (std::fscanf(stat, "%llu %llu %llu", &run_ns, &wait_ns, &slices) != 3) total.ok = false;
    std::fclose(stat);
    total.cpu_ns += static_cast<double>(run_ns);
    total.slices += static_cast<double>(slices);
  }
  closedir(tasks);
  return total;
}

using tmr_bench::view_kernel;
using tmr_bench::views_written;
using tmr_bench::wait_for_views;

struct SubmitFixture {
  SubmitFixture(bool record) {
    tmr::RuntimeConfig config;
    config.clusters = 1;
    config.scheduler_threads = 1;
    config.ring.task_window = 1 << 16;  // every measured task stays live: no back-pressure
    config.ring.dep_pool = 1 << 20;
    config.record_events = record;
    runtime = std::make_unique<tmr::Runtime>(config);
    kernel = runtime->kernels().add("empty", tmr::CoreType::aiv, &empty_kernel);
    view = runtime->kernels().add("view", tmr::CoreType::aiv, &view_kernel);
    gate = runtime->kernels().add("gate", tmr::CoreType::aic, &gate_kernel);
  }
  std::unique_ptr<tmr::Runtime> runtime;
  tmr::KernelId kernel;
  tmr::KernelId view;
  tmr::KernelId gate;
};

// args: tensor arguments per task, live disjoint views of the buffer before measuring.
// gated: measured tasks wait behind a gate task, so only the orchestrator runs while timing.
void run_submit_benchmark(benchmark::State& state, bool record, bool gated) {
  if (gate_mode == GateMode::invalid) {
    state.SkipWithError("TMR_BENCH_GATE must be poll or block");
    return;
  }
  if (thread_probe == ThreadProbe::invalid) {
    state.SkipWithError("TMR_BENCH_THREADS must be 0 or 1");
    return;
  }
  const auto tensor_args = static_cast<std::uint32_t>(state.range(0));
  const auto live_views = static_cast<std::uint32_t>(state.range(1));
  constexpr std::uint32_t kMeasured = 4096;
  constexpr std::uint32_t kRow = 16;
  // Measured tasks touch the live views themselves, so every lookup has hits in every case and
  // only the number of live views differs.
  const std::uint32_t rows = live_views;
  std::vector<float> cache(std::size_t{rows} * kRow);
  float gate_cell = 0;
  SubmitFixture fixture(record);
  double total_ns = 0;
  double total_cpu_ns = 0;
  std::uint64_t total_submits = 0;
  ThreadTimes others;  // TMR_BENCH_THREADS: summed over the timed loops
  bool probe_ok = true;
  const std::uint64_t polls_before = gate_polls.load();
  for (auto _ : state) {
    const tmr::RunResult result =
        fixture.runtime->run([&](tmr::Orchestrator& o, const tmr::OrchestrationArgs&) {
          const tmr::Tensor buffer = tmr::Tensor::wrap(cache.data(), {rows, kRow}, tmr::DType::f32);
          const tmr::Tensor gate = tmr::Tensor::wrap(&gate_cell, {1}, tmr::DType::f32);
          set_gate(!gated);
          if (gated) o.submit_aic(fixture.gate, tmr::Args().out_existing(gate));
          // Live views: written by tasks that stay live (gated: behind the gate in the ring's
          // retirement order), all of them completed before the timing starts.
          views_written = 0;
          for (std::uint32_t v = 0; v < live_views; ++v) {
            o.submit_aiv(fixture.view, tmr::Args().inout(buffer.view({1, kRow}, {v, 0})));
          }
          wait_for_views(live_views);
          const ThreadTimes others_before =
              thread_probe == ThreadProbe::on ? other_threads_times() : ThreadTimes{};
          const auto start = Clock::now();
          const double cpu_start = thread_cpu_ns();
          for (std::uint32_t t = 0; t < kMeasured; ++t) {
            tmr::Args args;
            if (gated) args.in(gate);
            for (std::uint32_t a = gated ? 1 : 0; a < tensor_args; ++a) {
              const std::uint32_t row = (t * 7919u + a * 104729u) % rows;
              // The view built in the argument's slot (one descriptor copy, not two).
              if (a % 2 == 0) {
                args.in(buffer, {1, kRow}, {row, 0});
              } else {
                args.inout(buffer, {1, kRow}, {row, 0});
              }
            }
            o.submit_aiv(fixture.kernel, args);
          }
          total_cpu_ns += thread_cpu_ns() - cpu_start;
          total_ns += std::chrono::duration<double, std::nano>(Clock::now() - start).count();
          if (thread_probe == ThreadProbe::on) {
            const ThreadTimes after = other_threads_times();
            others.cpu_ns += after.cpu_ns - others_before.cpu_ns;
            others.slices += after.slices - others_before.slices;
            probe_ok = probe_ok && others_before.ok && after.ok;
          }
          set_gate(true);
          total_submits += kMeasured;
        });
    if (!result.ok()) state.SkipWithError(result.status.to_string().c_str());
  }
  if (!probe_ok) state.SkipWithError("TMR_BENCH_THREADS=1: /proc/self/task/*/schedstat unreadable");
  const auto runs = static_cast<double>(state.iterations());
  if (gated) {
    state.counters["gate_polls_per_run"] =
        static_cast<double>(gate_polls.load() - polls_before) / runs;
  }
  if (thread_probe == ThreadProbe::on) {
    state.counters["others_cpu_ns_per_run"] = others.cpu_ns / runs;
    state.counters["others_slices_per_run"] = others.slices / runs;
  }
  state.counters["cpu_ns_per_submit"] = total_cpu_ns / static_cast<double>(total_submits);
  state.counters["wall_ns_per_submit"] = total_ns / static_cast<double>(total_submits);
}

// The orchestrator alone (tasks held back by a gate; the gate read is one of the arguments).
void BM_Submit(benchmark::State& state) {
  run_submit_benchmark(state, false, true);
}
// The same while the runtime executes the tasks concurrently on the same (small) host.
void BM_SubmitWhileExecuting(benchmark::State& state) {
  run_submit_benchmark(state, false, false);
}
void BM_SubmitRecording(benchmark::State& state) {
  run_submit_benchmark(state, true, true);
}

BENCHMARK(BM_Submit)
    ->ArgNames({"args", "live_views"})
    ->Args({1, 16})
    ->Args({4, 16})
    ->Args({8, 16})
    ->Args({4, 1024})
    ->Args({4, 16384})
    ->Args({8, 16384})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(0.5);
BENCHMARK(BM_SubmitWhileExecuting)
    ->ArgNames({"args", "live_views"})
    ->Args({4, 16})
    ->Args({4, 16384})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(0.5);
BENCHMARK(BM_SubmitRecording)
    ->ArgNames({"args", "live_views"})
    ->Args({4, 16})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(0.5);

}  // namespace
