// Orchestrator CPU time per task with and without parallel_for, A/B in one run: 16,384
// iterations that each write their own slice of one output (2 and 4 tensor arguments). The
// measured tasks wait behind a gate task (one of their arguments), so the orchestrator runs
// alone while it is timed; the tasks then run as usual. Counters: cpu_ns_per_task (the mean over
// all runs), floor_ns_per_task and median_run_ns_per_task (of the steady runs, below), and the
// orchestrating thread's faults_per_run and switches_per_run, the gate's gate_polls_per_run
// (also TMR_BENCH_RUNS and TMR_BENCH_GATE, below; tested by bench/micro/check_bench_env.py).
#include <benchmark/benchmark.h>

#include <dirent.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "bench_gate.hpp"
#include "tmr/tmr.hpp"

namespace {

using tmr_bench::gate_kernel;
using tmr_bench::gate_mode;
using tmr_bench::gate_polls;
using tmr_bench::GateMode;
using tmr_bench::set_gate;

double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// The orchestrating thread's minor faults and context switches (voluntary, involuntary) so far.
struct ThreadEvents {
  long faults = 0, voluntary = 0, involuntary = 0;
};
ThreadEvents thread_events() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  return {usage.ru_minflt, usage.ru_nvcsw, usage.ru_nivcsw};
}

// CPU ns every other thread of this process has run so far (/proc/self/task/*/schedstat), for
// TMR_BENCH_RUNS only: what the runtime's own threads spend while the orchestrator submits.
double other_threads_cpu_ns() {
  const long self = static_cast<long>(gettid());
  double total = 0;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return 0;
  while (const dirent* entry = readdir(dir)) {
    const long tid = std::atol(entry->d_name);
    if (tid <= 0 || tid == self) continue;
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/task/%ld/schedstat", tid);
    if (std::FILE* f = std::fopen(path, "r")) {
      double ns = 0;
      if (std::fscanf(f, "%lf", &ns) == 1) total += ns;
      std::fclose(f);
    }
  }
  closedir(dir);
  return total;
}

// Per run, read outside the timed region: the orchestrating thread's faults and context switches
// while it submitted (what separates slow runs from the floor), the run's wall time and, for
// TMR_BENCH_RUNS only, the other threads' CPU.
struct RunEvents {
  ThreadEvents events;
  double wall_ns = 0;
  double others_ns = 0;
};
// Out of line: inlined into the orchestration, its code made the compiler call the plain loop's
// body instead of inlining it (+23 instructions a task, callgrind).
class RunMeter {
 public:
  [[gnu::noinline]] void start(bool others) {
    others_ = others;
    others_start_ = others ? other_threads_cpu_ns() : 0;
    start_ = thread_events();
    wall_start_ = std::chrono::steady_clock::now();
  }
  [[gnu::noinline]] void stop(std::vector<RunEvents>& runs) const {
    const auto wall_end = std::chrono::steady_clock::now();
    const ThreadEvents end = thread_events();
    runs.push_back({{end.faults - start_.faults, end.voluntary - start_.voluntary,
                     end.involuntary - start_.involuntary},
                    std::chrono::duration<double, std::nano>(wall_end - wall_start_).count(),
                    others_ ? other_threads_cpu_ns() - others_start_ : 0});
  }

 private:
  bool others_ = false;
  double others_start_ = 0;
  ThreadEvents start_;
  std::chrono::steady_clock::time_point wall_start_{};
};

void empty_kernel(const tmr::KernelArgs&) {}

// range(0): 0 = plain for loop, 1 = parallel_for (lambda), 2 = parallel_for(n, TaskPattern) (the
// same tasks stated as a pattern; BM_SliceWrites only). range(1): tensor arguments per task (2
// or 4).
// kViewArgs: the body adds its views with Args::in(tensor, shape, offsets) (built in the argument
// slot) instead of Args::in(tensor.view(shape, offsets)); BM_SliceWritesViewArgs.
template <bool kViewArgs>
void slice_writes(benchmark::State& state) {
  if (gate_mode == GateMode::invalid) {
    state.SkipWithError("TMR_BENCH_GATE is neither poll nor block: unset it or set one of them");
    return;
  }
  const bool analysed = state.range(0) == 1;
  const bool pattern_form = state.range(0) == 2;
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
  std::uint64_t tasks_trusted = 0;  // pattern form: submitted without the replay compare
  const bool dump_runs = std::getenv("TMR_BENCH_RUNS") != nullptr;
  std::vector<RunEvents> run_events;
  RunMeter meter;
  const std::uint64_t polls_before = gate_polls.load();
  std::uint64_t runs = 0;
  for (auto _ : state) {
    ++runs;
    const tmr::RunResult result =
        runtime.run([&](tmr::Orchestrator& o, const tmr::OrchestrationArgs&) {
          const auto wrap = [](std::vector<float>& v) {
            return tmr::Tensor::wrap(v.data(), {kIterations, kRow}, tmr::DType::f32);
          };
          const tmr::Tensor tx = wrap(x), ty = wrap(y), tout = wrap(out);
          const tmr::Tensor gate = tmr::Tensor::wrap(&gate_cell, {1}, tmr::DType::f32);
          set_gate(false);
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
          meter.start(dump_runs);
          const double cpu_start = thread_cpu_ns();
          if (pattern_form) {
            tmr::TaskPattern pattern({tmr::kNoKernel, kernel, tmr::kNoKernel});
            pattern.in(gate);
            if (tensor_args == 4) {
              pattern.in(tx, {1, kRow}, {0, 0}, {1, 0}).in(ty, {1, kRow}, {0, 0}, {1, 0});
            }
            pattern.out_existing(tout, {1, kRow}, {0, 0}, {1, 0});
            o.parallel_for(kIterations, pattern);
          } else if (analysed) {
            o.parallel_for(kIterations, body);
          } else {
            for (std::uint32_t i = 0; i < kIterations; ++i)
              body(o, i);
          }
          run_ns.push_back(thread_cpu_ns() - cpu_start);
          meter.stop(run_events);
          total_cpu_ns += run_ns.back();
          total_tasks += kIterations;
          set_gate(true);
        });
    if (!result.ok()) state.SkipWithError(result.status.to_string().c_str());
    tasks_analysed += result.stats.loop_tasks_analysed;
    tasks_trusted += result.stats.pattern_tasks_trusted;
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
  double faults = 0, switches = 0;
  for (const RunEvents& r : run_events) {
    faults += static_cast<double>(r.events.faults);
    switches += static_cast<double>(r.events.voluntary + r.events.involuntary);
  }
  if (!run_events.empty()) {
    state.counters["faults_per_run"] = faults / static_cast<double>(run_events.size());
    state.counters["switches_per_run"] = switches / static_cast<double>(run_events.size());
  }
  // TMR_BENCH_RUNS=<file>: one line per run (cpu ns, wall ns, faults, voluntary and involuntary
  // switches, the other threads' cpu ns), appended: what the slow runs have that the floor has not.
  if (const char* path = std::getenv("TMR_BENCH_RUNS")) {
    if (std::FILE* f = std::fopen(path, "a")) {
      std::fprintf(f, "# analysed=%d args=%d runs=%zu\n", static_cast<int>(state.range(0)),
                   tensor_args, run_ns.size());
      for (std::size_t i = 0; i < run_ns.size(); ++i) {
        const RunEvents& r = run_events[i];
        std::fprintf(f, "%zu %.0f %.0f %ld %ld %ld %.0f\n", i, run_ns[i], r.wall_ns,
                     r.events.faults, r.events.voluntary, r.events.involuntary, r.others_ns);
      }
      std::fclose(f);
    }
  }
  // Every run's gate has been opened and has returned: its looks are counted. (The gate task
  // of a run has finished by the next run's start, and the last one by the runtime's end of run.)
  state.counters["gate_polls_per_run"] =
      static_cast<double>(gate_polls.load() - polls_before) / static_cast<double>(runs);
  state.counters["trusted_share"] =
      static_cast<double>(tasks_trusted) / static_cast<double>(total_tasks);
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
// BM_SliceWrites also in the pattern form (parallel_for:2).
void slice_write_pattern_cases(benchmark::internal::Benchmark* b) {
  slice_write_cases(b);
  b->Args({2, 2})->Args({2, 4});
}

BENCHMARK(BM_SliceWrites)->Apply(slice_write_pattern_cases);
BENCHMARK(BM_SliceWritesViewArgs)->Apply(slice_write_cases);

}  // namespace
