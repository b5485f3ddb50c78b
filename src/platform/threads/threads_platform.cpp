#include "platform/threads/threads_platform.hpp"

#include <pthread.h>

#include <chrono>
#include <optional>
#include <string>

#include "core/core_runner.hpp"
#include "core/cpu_relax.hpp"
#include "core/engine.hpp"
#include "core/futex.hpp"
#include "core/mailbox.hpp"

namespace tmr::detail {
namespace {

constexpr std::uint64_t kParkTimeoutNs = 50'000'000;  // a parked thread re-checks every 50 ms
constexpr std::uint64_t kEndRunPollNs = 10'000'000;   // end_run looks for stuck kernels every 10 ms

// Names show in top, perf and gdb: "tmr-core-12", "tmr-sched-0". Set by the creator, so every
// thread is named by the time the platform's constructor returns.
void name_thread(std::thread& thread, const std::string& name) {
  pthread_setname_np(thread.native_handle(), name.substr(0, 15).c_str());
}

}  // namespace

class ThreadsPlatform::Backoff {
 public:
  explicit Backoff(std::uint32_t spins) : spins_(spins) {}
  void reset() { polls_ = 0; }
  bool idle_and_should_park() {
    ++polls_;
    if (polls_ < spins_) {
      cpu_relax();
      return false;
    }
    if (polls_ == spins_) yield_start_ = std::chrono::steady_clock::now();
    if ((polls_ & 15u) == 0 && std::chrono::steady_clock::now() - yield_start_ > kYieldPhase) {
      return true;
    }
    std::this_thread::yield();
    return false;
  }

 private:
  static constexpr std::chrono::microseconds kYieldPhase{50};
  std::uint32_t spins_;
  std::uint32_t polls_ = 0;
  std::chrono::steady_clock::time_point yield_start_{};
};

ThreadsPlatform::ThreadsPlatform(Engine& engine) : engine_(engine) {
  for (int core = 0; core < engine.core_count(); ++core) {
    cores_.emplace_back([this, core] { core_main(core); });
    name_thread(cores_.back(), "tmr-core-" + std::to_string(core));
  }
  for (int t = 0; t < engine.config().scheduler_threads; ++t) {
    schedulers_.emplace_back([this, t] { scheduler_main(t); });
    name_thread(schedulers_.back(), "tmr-sched-" + std::to_string(t));
  }
}

ThreadsPlatform::~ThreadsPlatform() {
  shutdown_.store(true, std::memory_order_seq_cst);
  scheduler_bell_.notify_all();
  for (std::thread& t : schedulers_)
    t.join();
  for (int core = 0; core < engine_.core_count(); ++core) {
    Mailbox& m = engine_.mailbox(core);
    m.dispatch.store(kExitToken, std::memory_order_seq_cst);
    futex_wake_all(m.dispatch);
  }
  for (std::thread& t : cores_)
    t.join();
}

std::uint64_t ThreadsPlatform::now_ns() const {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

void ThreadsPlatform::begin_run() {
  stopped_schedulers_.store(0, std::memory_order_relaxed);
  stop_requested_.store(false, std::memory_order_seq_cst);
  run_generation_.fetch_add(1, std::memory_order_seq_cst);
  scheduler_bell_.notify_all();
}

void ThreadsPlatform::end_run(const std::function<bool()>& give_up) {
  stop_requested_.store(true, std::memory_order_seq_cst);
  scheduler_bell_.notify_all();
  const int expected = static_cast<int>(schedulers_.size());
  while (stopped_schedulers_.load(std::memory_order_acquire) != expected) {
    const std::uint32_t key = orchestrator_bell_.prepare_wait();
    if (stopped_schedulers_.load(std::memory_order_acquire) == expected) {
      orchestrator_bell_.cancel_wait();
      break;
    }
    orchestrator_bell_.wait(key, kEndRunPollNs);
    if (!abandon_run_.load(std::memory_order_relaxed) && give_up()) {
      // A kernel never returns: schedulers stop without waiting for their cores to go idle.
      abandon_run_.store(true, std::memory_order_seq_cst);
      scheduler_bell_.notify_all();
    }
  }
}

void ThreadsPlatform::abandon() {
  shutdown_.store(true, std::memory_order_seq_cst);
  scheduler_bell_.notify_all();
  for (std::thread& t : schedulers_)
    t.join();
  schedulers_.clear();
  for (int core = 0; core < engine_.core_count(); ++core) {
    Mailbox& m = engine_.mailbox(core);
    m.dispatch.store(kExitToken, std::memory_order_seq_cst);
    futex_wake_all(m.dispatch);
  }
  for (int core = 0; core < engine_.core_count(); ++core) {
    std::thread& t = cores_[static_cast<std::size_t>(core)];
    if (engine_.kernel_watch().busy(core)) {
      t.detach();  // still inside a kernel; it leaves on the exit token if the kernel returns
    } else {
      t.join();
    }
  }
  cores_.clear();
}

bool ThreadsPlatform::wait_until(const std::function<bool()>& ready, std::uint64_t timeout_ns) {
  const std::uint64_t deadline = now_ns() + timeout_ns;
  for (;;) {
    if (ready()) return true;
    const std::uint32_t key = orchestrator_bell_.prepare_wait();
    if (ready()) {
      orchestrator_bell_.cancel_wait();
      return true;
    }
    const std::uint64_t now = now_ns();
    if (now >= deadline) {
      orchestrator_bell_.cancel_wait();
      return false;
    }
    orchestrator_bell_.wait(key, deadline - now);
  }
}

void ThreadsPlatform::notify_new_work() {
  // An RMW, not a load: it orders the caller's queue push before the read, pairing with the
  // decrement a scheduler does before its last look at the queue. Either we see it parking, or
  // it sees the work (a plain load here lost wake-ups: store-load reordering).
  if (awake_schedulers_.fetch_add(0, std::memory_order_seq_cst) == 0) scheduler_bell_.notify_all();
}

void ThreadsPlatform::notify_core(Mailbox& mailbox) {
  // Pairs with the core's seq_cst store of core_parked: one of us sees the other.
  if (mailbox.core_parked.load(std::memory_order_seq_cst) != 0) futex_wake_one(mailbox.dispatch);
}

void ThreadsPlatform::core_main(int core) {
  Mailbox& m = engine_.mailbox(core);
  const bool timestamps = engine_.recording();
  std::uint32_t last = kIdleToken;
  Backoff backoff(engine_.config().spin_before_park);
  for (;;) {
    const std::uint32_t token = m.dispatch.load(std::memory_order_acquire);
    if (token == last || token == kIdleToken || (token & kLatchedBit) != 0) {
      if (!backoff.idle_and_should_park()) continue;
      m.core_parked.store(1, std::memory_order_seq_cst);
      if (m.dispatch.load(std::memory_order_seq_cst) == token) {
        futex_wait(m.dispatch, token, kParkTimeoutNs);
      }
      m.core_parked.store(0, std::memory_order_relaxed);
      backoff.reset();
      continue;
    }
    if (token == kExitToken) return;
    backoff.reset();
    const std::optional<DispatchPayload> latched = latch_dispatch(m, token);
    if (!latched) continue;  // the scheduler took it back (issue 12): look again
    const DispatchPayload& job = *latched;
    const std::uint64_t start = timestamps ? engine_.now_ns() : 0;
    KernelWatch& watch = engine_.kernel_watch();
    watch.started(core, job.kernel, job.task, job.block_index, KernelWatch::now_ns());
    const std::optional<std::string> error = run_kernel(job);
    watch.finished(core);
    if (error) engine_.report_kernel_exception(job.kernel, job.task, job.block_index, *error);
    finish_dispatch(m, token, start, timestamps ? engine_.now_ns() : 0);
    scheduler_bell_.notify_all();
    last = token;
  }
}

void ThreadsPlatform::scheduler_main(int thread) {
  Scheduler& scheduler = engine_.scheduler();
  std::uint32_t seen = 0;
  const std::uint32_t spin_limit = engine_.config().spin_before_park;
  while (!shutdown_.load(std::memory_order_acquire)) {
    // Wait for a run to start.
    while (run_generation_.load(std::memory_order_acquire) == seen) {
      const std::uint32_t key = scheduler_bell_.prepare_wait();
      if (run_generation_.load(std::memory_order_seq_cst) != seen ||
          shutdown_.load(std::memory_order_seq_cst)) {
        scheduler_bell_.cancel_wait();
        break;
      }
      scheduler_bell_.wait(key, kParkTimeoutNs);
    }
    if (shutdown_.load(std::memory_order_acquire)) return;
    seen = run_generation_.load(std::memory_order_acquire);
    Backoff backoff(spin_limit);
    awake_schedulers_.fetch_add(1, std::memory_order_seq_cst);
    for (;;) {
      if (scheduler.step(thread)) {
        backoff.reset();
        continue;
      }
      if (stop_requested_.load(std::memory_order_acquire) &&
          (scheduler.idle(thread) || abandon_run_.load(std::memory_order_acquire))) {
        break;
      }
      if (!backoff.idle_and_should_park()) continue;
      // Park. While parked this thread does not count as awake, so new work wakes it.
      awake_schedulers_.fetch_sub(1, std::memory_order_seq_cst);
      const std::uint32_t key = scheduler_bell_.prepare_wait();
      const bool stopping =
          stop_requested_.load(std::memory_order_seq_cst) &&
          (scheduler.idle(thread) || abandon_run_.load(std::memory_order_seq_cst));
      if (stopping || scheduler.step(thread)) {
        scheduler_bell_.cancel_wait();
        awake_schedulers_.fetch_add(1, std::memory_order_seq_cst);
        if (stopping) break;
        backoff.reset();
        continue;
      }
      scheduler_bell_.wait(key, kParkTimeoutNs);
      awake_schedulers_.fetch_add(1, std::memory_order_seq_cst);
      backoff.reset();
    }
    awake_schedulers_.fetch_sub(1, std::memory_order_seq_cst);
    stopped_schedulers_.fetch_add(1, std::memory_order_acq_rel);
    orchestrator_bell_.notify_all();
  }
}

}  // namespace tmr::detail
