// The public Runtime and Orchestrator: thin forwards into the engine, plus the guards that keep
// misuse from reaching it: rings larger than the machine, run() re-entered or called from two
// threads at once, a runtime left unusable by a kernel that never returned, and an Orchestrator
// used after its run ended.
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <new>
#include <thread>

#include "core/engine.hpp"
#include "core/orchestrator_core.hpp"
#include "tmr/runtime.hpp"

namespace tmr {

namespace detail {

// Lets one run at a time into the engine and remembers why the runtime became unusable.
// (A mutex and a condition variable rather than std::timed_mutex: ThreadSanitizer does not see
// the lock that timed_mutex::try_lock_for takes and reports its unlock as a bug.)
class RunGate {
 public:
  std::mutex mutex;
  std::condition_variable turn_free;
  bool running = false;         // guarded by `mutex`
  std::string unusable_reason;  // guarded by `mutex`
  // The thread inside run(), so that a run() from inside it is refused instead of deadlocking.
  std::atomic<std::thread::id> owner{};
};

}  // namespace detail

namespace {

std::string gibibytes(double bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f GiB", bytes / double(1ull << 30));
  return text;
}

// Memory the engine allocates for its rings and ready queues. The heaps and records are
// zero-filled lazily by the OS, but a configuration that cannot fit in the machine's memory at all
// is refused up front: allocating it would throw std::bad_alloc or, with memory overcommit, get
// the process killed once the rings fill.
void check_ring_memory(const RuntimeConfig& config) {
  const RingConfig& ring = config.ring;
  // Per task slot: the slot, its record and spill area, its bookkeeping and one cell in each
  // ready queue.
  const double per_task = sizeof(detail::TaskSlot) + sizeof(detail::TaskRecord) +
                          double(detail::Ring::kSpillBytes) + sizeof(detail::Ring::SlotInfo) +
                          detail::kShapeCount * 16.0;
  const double per_ring = double(ring.heap_bytes) + double(ring.task_window) * per_task +
                          double(ring.dep_pool) * sizeof(detail::FanoutNode);
  const double needed = per_ring * kRingCount;
  const double machine = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGESIZE));
  if (machine > 0 && needed > machine) {
    throw Error(ErrorCode::invalid_config,
                "the rings need " + gibibytes(needed) + " (" + std::to_string(kRingCount) +
                    " rings of heap_bytes " + std::to_string(ring.heap_bytes) + ", task_window " +
                    std::to_string(ring.task_window) + ", dep_pool " +
                    std::to_string(ring.dep_pool) + ") but this machine has " + gibibytes(machine) +
                    " of memory; lower ring.heap_bytes (TMR_RING_HEAP), ring.task_window "
                    "(TMR_RING_TASK_WINDOW) or ring.dep_pool (TMR_RING_DEP_POOL)");
  }
}

std::unique_ptr<detail::Engine> make_engine(RuntimeConfig config, KernelRegistry kernels) {
  config.validate();
  check_ring_memory(config);
  const RingConfig ring = config.ring;
  try {
    return std::make_unique<detail::Engine>(std::move(config), std::move(kernels));
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::invalid_config,
                "cannot allocate the rings (heap_bytes " + std::to_string(ring.heap_bytes) +
                    ", task_window " + std::to_string(ring.task_window) + ", dep_pool " +
                    std::to_string(ring.dep_pool) + " per ring, " + std::to_string(kRingCount) +
                    " rings): out of memory; lower ring.heap_bytes (TMR_RING_HEAP), "
                    "ring.task_window (TMR_RING_TASK_WINDOW) or ring.dep_pool "
                    "(TMR_RING_DEP_POOL)");
  }
}

RunResult refused(ErrorCode code, const std::string& message) {
  RunResult result;
  result.status = Status{code, message};
  return result;
}

}  // namespace

Runtime::Runtime(RuntimeConfig config, KernelRegistry kernels)
    : gate_(std::make_unique<detail::RunGate>()),
      engine_(make_engine(std::move(config), std::move(kernels))) {}
Runtime::~Runtime() {
  if (engine_ && engine_->unusable()) {
    // A kernel of an earlier run never returned. Destroying the engine would wait for it forever
    // (or free memory it still uses): end the other threads, let the stuck ones go, and keep the
    // engine's memory for the rest of the process. A deliberate, bounded leak: one engine per
    // kernel that never returned; the pointer stays reachable, so leak checkers stay quiet.
    engine_->abandon_threads();
    static auto* const abandoned = new std::vector<std::unique_ptr<detail::Engine>>();
    static std::mutex abandoned_mutex;
    const std::lock_guard lock(abandoned_mutex);
    abandoned->push_back(std::move(engine_));
  }
}
KernelRegistry& Runtime::kernels() {
  return engine_->kernels();
}
const RuntimeConfig& Runtime::config() const {
  return engine_->config();
}

RunResult Runtime::run(const Orchestration& orchestration, const RunArgs& args) {
  detail::RunGate& gate = *gate_;
  if (gate.owner.load(std::memory_order_acquire) == std::this_thread::get_id()) {
    const std::string message =
        "run() was called from inside a run of the same runtime; an orchestration submits its "
        "work as tasks of its own run (use a second Runtime for a separate run)";
    engine_->latch_error(ErrorCode::runtime_busy, message);  // the enclosing run fails too
    return refused(ErrorCode::runtime_busy, message);
  }
  const double wait_s = engine_->config().stall_timeout_s;
  {
    std::unique_lock lock(gate.mutex);
    if (!gate.turn_free.wait_for(lock, std::chrono::duration<double>(wait_s),
                                 [&] { return !gate.running; })) {
      return refused(ErrorCode::runtime_busy,
                     "another thread's run of this runtime did not end within stall_timeout_s = " +
                         std::to_string(wait_s) +
                         " s; runs of one runtime take turns — wait for it, or give each thread "
                         "its own Runtime");
    }
    if (!gate.unusable_reason.empty()) {
      return refused(ErrorCode::runtime_unusable, gate.unusable_reason);
    }
    gate.running = true;
  }
  gate.owner.store(std::this_thread::get_id(), std::memory_order_release);
  // Gives the turn back however run() leaves (it may throw, e.g. std::bad_alloc for the copies).
  struct TurnBack {
    detail::RunGate& gate;
    detail::Engine& engine;
    ~TurnBack() {
      gate.owner.store(std::thread::id{}, std::memory_order_release);
      {
        const std::lock_guard lock(gate.mutex);
        if (engine.unusable()) gate.unusable_reason = engine.unusable_reason();
        gate.running = false;
      }
      gate.turn_free.notify_one();
    }
  } turn_back{gate, *engine_};
  return engine_->run(orchestration, args);
}

// ---------------------------------------------------------------- Orchestrator

// live_core()'s error, out of line: every forwarding call (a submit's among them) keeps only the
// test, and becomes a jump to the core's function.
void detail::throw_run_ended() {
  throw Error(ErrorCode::scope_error,
              "this Orchestrator belongs to a run that has ended; an Orchestrator is valid only "
              "inside the orchestration function it was passed to — do not keep it (or a "
              "pointer to it) for later");
}

detail::OrchestratorCore& Orchestrator::live_core() const {
  if (!core_->in_run()) [[unlikely]]
    detail::throw_run_ended();
  return *core_;
}

// Orchestrator::submit: beside OrchestratorCore::submit (orchestrator_core.cpp).
TaskOutputs Orchestrator::alloc(const Args& args) {
  return live_core().alloc(args);
}
void Orchestrator::scope_begin() {
  live_core().scope_begin();
}
void Orchestrator::scope_end() {
  live_core().scope_end();
}
void Orchestrator::run_loop(std::int64_t n, const LoopOptions& options, LoopCall call, void* body) {
  live_core().parallel_for(n, options.scope_per_iteration, call, body, *this);
}
void Orchestrator::parallel_for(std::int64_t n, const TaskPattern& pattern, LoopOptions options) {
  live_core().parallel_for(n, pattern, options.scope_per_iteration, *this);
}
int Orchestrator::scope_depth() const {
  return live_core().scope_depth();
}
void Orchestrator::wait_for(const Tensor& tensor) {
  live_core().wait_for(tensor);
}
void Orchestrator::report_fatal(ErrorCode code, const std::string& message) {
  live_core().fail(code, message);
}
bool Orchestrator::fatal() const {
  return live_core().fatal();
}
Status Orchestrator::status() const {
  return live_core().status();
}
const KernelRegistry& Orchestrator::kernels() const {
  return live_core().kernels();
}
KernelId Orchestrator::kernel(std::string_view name) {
  detail::OrchestratorCore& core = live_core();
  try {
    return core.kernels().id(name);
  } catch (const Error& e) {
    core.fail(e.code(), e.what());
    return kNoKernel;
  }
}
// Orchestrator::read_element: beside OrchestratorCore::read_element (orchestrator_core.cpp).
void Orchestrator::write_element(const Tensor& tensor, const Shape& indices, const void* in,
                                 const detail::ElementRequest& type) {
  detail::OrchestratorCore& core = live_core();
  try {
    core.write_element(tensor, indices, in, type);
  } catch (const Error& e) {
    core.fail(e.code(), e.what());
  }
}

}  // namespace tmr
