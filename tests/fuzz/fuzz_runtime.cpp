// libFuzzer target: each input becomes a runtime configuration (platform, clusters, scheduler
// threads, ring sizes, dual-slot policy), an orchestration program (buffers, views, transposes,
// tags, nested scopes, MIX and SPMD tasks, start-together tasks, allocs, element reads and
// writes; see tests/support/random_program) and at most one injected fault (a kernel that throws,
// element access with another type, a bad view, an unknown kernel, unbalanced scopes, a fatal
// report, an orchestration that throws, run() re-entered, an Orchestrator kept past its run).
//
// The program must succeed with the sequential result (final buffers, every element read, and a
// trace that respects every dependency). The fault must give its named error, copy nothing back,
// and leave the runtime usable. Anything else aborts, which libFuzzer reports as a crash.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/random_program.hpp"
#include "tmr/tmr.hpp"

namespace {

using namespace tmr;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "tmr fuzz: %s\n", what.c_str());
  std::abort();
}

void increment_kernel(const KernelArgs& a) {
  std::int32_t* data = a.tensor(0).data_as<std::int32_t>();
  for (std::uint64_t i = 0; i < a.tensor(0).elements(); ++i)
    data[i] += 1;
}
void throwing_kernel(const KernelArgs&) {
  throw std::runtime_error("injected kernel fault");
}

enum class Fault : std::uint8_t {
  none,
  kernel_throws,
  wrong_element_type,
  view_out_of_bounds,
  unknown_kernel,
  scope_end_without_begin,
  scope_left_open,
  report_fatal,
  orchestration_throws,
  run_reentered,
  kept_orchestrator,
  kMaxValue = kept_orchestrator,  // for FuzzedDataProvider::ConsumeEnum
};

ErrorCode expected_code(Fault fault) {
  switch (fault) {
    case Fault::none:
    case Fault::kept_orchestrator:
      return ErrorCode::ok;
    case Fault::kernel_throws:
      return ErrorCode::kernel_exception;
    case Fault::wrong_element_type:
    case Fault::view_out_of_bounds:
      return ErrorCode::invalid_args;
    case Fault::unknown_kernel:
      return ErrorCode::unknown_kernel;
    case Fault::scope_end_without_begin:
    case Fault::scope_left_open:
      return ErrorCode::scope_error;
    case Fault::report_fatal:
      return ErrorCode::explicit_fatal;
    case Fault::orchestration_throws:
      return ErrorCode::orchestration_exception;
    case Fault::run_reentered:
      return ErrorCode::runtime_busy;
  }
  return ErrorCode::ok;
}

// Runtimes are kept between inputs (starting threads for every input would dominate the time).
Runtime& runtime_for(const RuntimeConfig& config) {
  static std::map<std::string, std::unique_ptr<Runtime>> runtimes;
  const std::string key =
      std::to_string(static_cast<int>(config.platform)) + "/" + std::to_string(config.clusters) +
      "/" + std::to_string(config.scheduler_threads) + "/" +
      std::to_string(config.ring.task_window) + "/" + std::to_string(config.ring.heap_bytes) + "/" +
      std::to_string(config.dual_slot.aic) + std::to_string(config.dual_slot.aiv) +
      std::to_string(config.dual_slot.stages_mix_on(config.platform));
  auto found = runtimes.find(key);
  if (found != runtimes.end()) return *found->second;
  if (runtimes.size() >= 8) runtimes.clear();
  KernelRegistry kernels;
  testing::register_program_kernels(kernels);
  kernels.add("fuzz_increment", CoreType::aiv, &increment_kernel);
  kernels.add("fuzz_throw", CoreType::aiv, &throwing_kernel);
  auto runtime = std::make_unique<Runtime>(config, std::move(kernels));
  return *runtimes.emplace(key, std::move(runtime)).first->second;
}

// `before` increments of a 16-element buffer, the fault, then `after` more. The buffer must come
// back untouched whenever the fault fails the run.
void run_fault(Runtime& runtime, Fault fault, int before, int after, bool in_scope) {
  const KernelId increment = runtime.kernels().id("fuzz_increment");
  const KernelId thrower = runtime.kernels().id("fuzz_throw");
  std::vector<std::int32_t> host(16, 7);
  RunArgs args;
  args.inout(host.data(), {4, 4}, DType::i32);
  Orchestrator* kept = nullptr;
  RunResult inner;
  const RunResult result = runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        const Tensor t = a.tensor(0);
        if (in_scope) o.scope_begin();
        for (int i = 0; i < before; ++i)
          o.submit_aiv(increment, Args().inout(t));
        switch (fault) {
          case Fault::none:
            break;
          case Fault::kernel_throws:
            o.submit_aiv(thrower, Args().inout(t));
            break;
          case Fault::wrong_element_type:
            (void)o.get_tensor_data<float>(t, {0, 0});
            break;
          case Fault::view_out_of_bounds:
            o.submit_aiv(increment, Args().inout(t.view({2, 2}, {3, 3})));
            break;
          case Fault::unknown_kernel:
            o.submit_aiv(o.kernel("no_such_kernel"), Args().inout(t));
            break;
          case Fault::scope_end_without_begin:
            if (in_scope) o.scope_end();
            o.scope_end();
            break;
          case Fault::scope_left_open:
            o.scope_begin();
            break;
          case Fault::report_fatal:
            o.report_fatal(ErrorCode::explicit_fatal, "injected");
            break;
          case Fault::orchestration_throws:
            throw std::runtime_error("injected orchestration fault");
          case Fault::run_reentered:
            inner = runtime.run([](Orchestrator&, const OrchestrationArgs&) {});
            break;
          case Fault::kept_orchestrator:
            kept = &o;
            break;
        }
        for (int i = 0; i < after; ++i)
          o.submit_aiv(increment, Args().inout(t));
        if (in_scope && fault != Fault::scope_end_without_begin) o.scope_end();
      },
      args);
  const ErrorCode expected = expected_code(fault);
  if (result.status.code != expected) {
    fail("fault " + std::to_string(static_cast<int>(fault)) + ": expected " +
         std::string(error_code_name(expected)) + ", got " + result.status.to_string());
  }
  if (expected == ErrorCode::ok) {
    for (const std::int32_t value : host) {
      if (value != 7 + before + after) fail("fault-free run: wrong result");
    }
  } else {
    if (result.status.message.empty()) fail("error without a message");
    for (const std::int32_t value : host) {
      if (value != 7) fail("a failed run copied its outputs back");
    }
  }
  if (fault == Fault::run_reentered && inner.status.code != ErrorCode::runtime_busy) {
    fail("re-entered run() returned " + inner.status.to_string());
  }
  if (fault == Fault::kept_orchestrator) {
    try {
      kept->submit_aiv(increment, Args());
      fail("an Orchestrator kept past its run accepted a submit");
    } catch (const Error& e) {
      if (e.code() != ErrorCode::scope_error) fail("kept Orchestrator: " + std::string(e.what()));
    }
  }
}

void check_program(Runtime& runtime, std::uint64_t seed, const testing::ProgramShape& shape) {
  const testing::ProgramResult result = testing::run_random_program(runtime, seed, shape);
  if (!result.status.ok()) fail("program failed: " + result.status.to_string());
  if (!result.mismatch.empty()) fail("element reads differ: " + result.mismatch);
  if (result.buffers != result.reference) fail("final buffers differ from sequential execution");
  const std::string order = testing::check_trace_order(result);
  if (!order.empty()) fail("trace breaks a dependency: " + order);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider input(data, size);
  RuntimeConfig config;
  config.platform = input.ConsumeBool() ? PlatformKind::sim : PlatformKind::threads;
  config.clusters = input.ConsumeIntegralInRange(1, 3);
  config.scheduler_threads = input.ConsumeIntegralInRange(1, config.clusters);
  const std::uint32_t window = 1u << input.ConsumeIntegralInRange(3, 7);  // 8 to 128 tasks
  config = testing::with_tiny_rings(config, window);
  config.ring.heap_bytes <<= input.ConsumeIntegralInRange(0, 2);
  const std::uint8_t dual = input.ConsumeIntegral<std::uint8_t>();
  config.dual_slot = {(dual & 1) != 0, (dual & 2) != 0, (dual & 4) != 0};
  config.record_events = true;
  config.stall_timeout_s = 30;
  config.tensor_wait_timeout_s = 30;

  testing::ProgramShape shape = testing::tiny_ring_shape(window);
  shape.buffers = input.ConsumeIntegralInRange(1, 4);
  shape.operations = input.ConsumeIntegralInRange(1, 60);
  shape.max_blocks = config.clusters;  // start-together blocks always fit the machine
  shape.element_access = input.ConsumeBool();

  const Fault fault = input.ConsumeEnum<Fault>();
  const int before = input.ConsumeIntegralInRange(0, 6);
  const int after = input.ConsumeIntegralInRange(0, 3);
  const bool in_scope = input.ConsumeBool();
  const std::uint64_t seed = input.ConsumeIntegral<std::uint64_t>();
  const std::vector<std::uint8_t> decisions = input.ConsumeRemainingBytes<std::uint8_t>();
  shape.decisions = &decisions;

  Runtime& runtime = runtime_for(config);
  run_fault(runtime, fault, before, after, in_scope);
  check_program(runtime, seed, shape);  // also proves the runtime is usable after the fault
  return 0;
}
