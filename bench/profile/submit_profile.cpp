// BM_Submit's workload (bench/micro/bench_submit.cpp) with the measured loop in a function of its
// own, so callgrind can collect it alone (the live-view setup submits excluded), and its thread
// CPU time per submit printed per run when SUB7_TIME is set. Usage: submit_prof ARGS VIEWS RUNS
// [OUTS]: OUTS > 0 makes the first OUTS of the ARGS fresh outputs (out(...), 16 floats each),
// measured in measured_loop_outputs (each run's tasks held by the run's scope).
// Built with the project (target tmr_submit_profile), or by hand against a frozen library's
// headers and libtmr to compare builds (docs/performance.md, "Submit path, fifth pass"):
//   g++ -std=c++20 -O2 -g -I include bench/profile/submit_profile.cpp -o /tmp/submit_prof
//       -Lbuild/release -l:libtmr.so.0 -Wl,-rpath,$PWD/build/release -lpthread
#include <sys/resource.h>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>
#include <vector>

#include "support/live_views.hpp"
#include "tmr/tmr.hpp"

namespace {
void empty_kernel(const tmr::KernelArgs&) {}
using tmr_bench::view_kernel;
using tmr_bench::views_written;
using tmr_bench::wait_for_views;
std::atomic<bool> gate_open{false};
void gate_kernel(const tmr::KernelArgs&) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!gate_open.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::microseconds(50));
}
}  // namespace

// Submit t's argument a: a row of `buffer`, read (even a) or updated (odd a). The view is given
// to Args (`in(buffer, shape, offsets)`), which builds it in the argument's slot: one descriptor
// copy, where `args.in(buffer.view(...))` makes two (docs/performance.md, "Session 32, branch
// args36"); BM_Submit builds its arguments the same way.
[[gnu::always_inline]] inline void add_row(tmr::Args& args, const tmr::Tensor& buffer,
                                           std::uint32_t rows, std::uint32_t t, std::uint32_t a) {
  constexpr std::uint32_t kRow = 16;
  const std::uint32_t row = (t * 7919u + a * 104729u) % rows;
  if (a % 2 == 0)
    args.in(buffer, {1, kRow}, {row, 0});
  else
    args.inout(buffer, {1, kRow}, {row, 0});
}

[[gnu::noinline]] void measured_loop(tmr::Orchestrator& o, tmr::KernelId kernel,
                                     const tmr::Tensor& buffer, const tmr::Tensor& gate,
                                     std::uint32_t tensor_args, std::uint32_t rows) {
  for (std::uint32_t t = 0; t < 4096; ++t) {
    tmr::Args args;
    args.in(gate);
    for (std::uint32_t a = 1; a < tensor_args; ++a)
      add_row(args, buffer, rows, t, a);
    o.submit_aiv(kernel, args);
  }
}

// measured_loop with `outs` of the arguments after the gate fresh outputs (out(...)).
[[gnu::noinline]] void measured_loop_outputs(tmr::Orchestrator& o, tmr::KernelId kernel,
                                             const tmr::Tensor& buffer, const tmr::Tensor& gate,
                                             std::uint32_t tensor_args, std::uint32_t rows,
                                             std::uint32_t outs) {
  constexpr std::uint32_t kRow = 16;
  const tmr::TensorSpec fresh({kRow}, tmr::DType::f32);
  for (std::uint32_t t = 0; t < 4096; ++t) {
    tmr::Args args;
    args.in(gate);
    for (std::uint32_t a = 1; a < tensor_args; ++a) {
      if (a <= outs)
        args.out(fresh);
      else
        add_row(args, buffer, rows, t, a);
    }
    o.submit_aiv(kernel, args);
  }
}

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::fprintf(stderr, "usage: %s ARGS VIEWS RUNS [OUTS]\n", argv[0]);
    return 2;
  }
  const auto outs = argc == 5 ? static_cast<std::uint32_t>(std::atoi(argv[4])) : 0u;
  const auto tensor_args = static_cast<std::uint32_t>(std::atoi(argv[1]));
  const auto rows = static_cast<std::uint32_t>(std::atoi(argv[2]));
  const int runs = std::atoi(argv[3]);
  constexpr std::uint32_t kRow = 16;
  std::vector<float> cache(std::size_t{rows} * kRow);
  float gate_cell = 0;
  tmr::RuntimeConfig config;
  config.clusters = 1;
  config.scheduler_threads = 1;
  config.ring.task_window = 1 << 16;
  config.ring.dep_pool = 1 << 20;
  tmr::Runtime runtime(config);
  const tmr::KernelId kernel = runtime.kernels().add("empty", tmr::CoreType::aiv, &empty_kernel);
  const tmr::KernelId view_k = runtime.kernels().add("view", tmr::CoreType::aiv, &view_kernel);
  const tmr::KernelId gate_k = runtime.kernels().add("gate", tmr::CoreType::aic, &gate_kernel);
  for (int r = 0; r < runs; ++r) {
    const tmr::RunResult result =
        runtime.run([&](tmr::Orchestrator& o, const tmr::OrchestrationArgs&) {
          const tmr::Tensor buffer = tmr::Tensor::wrap(cache.data(), {rows, kRow}, tmr::DType::f32);
          const tmr::Tensor gate = tmr::Tensor::wrap(&gate_cell, {1}, tmr::DType::f32);
          gate_open = false;
          o.submit_aic(gate_k, tmr::Args().out_existing(gate));
          views_written = 0;
          for (std::uint32_t v = 0; v < rows; ++v)
            o.submit_aiv(view_k, tmr::Args().inout(buffer.view({1, kRow}, {v, 0})));
          wait_for_views(rows);
          timespec a{}, b{};
          rusage ra{}, rb{};
          getrusage(RUSAGE_THREAD, &ra);
          clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
          if (outs > 0)
            measured_loop_outputs(o, kernel, buffer, gate, tensor_args, rows, outs);
          else
            measured_loop(o, kernel, buffer, gate, tensor_args, rows);
          clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
          getrusage(RUSAGE_THREAD, &rb);
          // SUB7_TIME=1: thread CPU ns per submit; SUB7_TIME=2: and the page faults it took.
          if (const char* t = std::getenv("SUB7_TIME"); t != nullptr) {
            std::printf("%.1f", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 4096.0);
            if (t[0] == '2') std::printf(" %ld", rb.ru_minflt - ra.ru_minflt);
            std::printf("\n");
          }
          gate_open = true;
        });
    if (!result.ok()) {
      std::fprintf(stderr, "%s\n", result.status.to_string().c_str());
      return 1;
    }
  }
  return 0;
}
