#include "platform/sim/kernel_workers.hpp"

#include <chrono>

#include "core/core_runner.hpp"

namespace tmr::detail::sim {

KernelWorkers::KernelWorkers(int cores) : workers_(static_cast<std::size_t>(cores)) {}

KernelWorkers::~KernelWorkers() {
  for (const std::unique_ptr<Worker>& worker : workers_) {
    if (!worker || !worker->thread.joinable()) continue;
    {
      const std::lock_guard lock(worker->mutex);
      worker->stop = true;
    }
    worker->cv.notify_all();
    worker->thread.join();
  }
}

void KernelWorkers::abandon() {
  for (const std::unique_ptr<Worker>& worker : workers_) {
    if (!worker) continue;
    bool running = false;
    {
      const std::lock_guard lock(worker->mutex);
      worker->stop = true;
      running = !worker->done;
    }
    worker->cv.notify_all();
    if (running) {
      worker->thread.detach();
    } else {
      worker->thread.join();
    }
  }
}

void KernelWorkers::start(int core, const DispatchPayload& job) {
  std::unique_ptr<Worker>& slot = workers_[static_cast<std::size_t>(core)];
  if (!slot) {
    slot = std::make_unique<Worker>();
    Worker& worker = *slot;
    worker.thread = std::thread([&worker] { main_loop(worker); });
  }
  {
    const std::lock_guard lock(slot->mutex);
    slot->job = job;
    slot->done = false;
    slot->error.reset();
  }
  slot->cv.notify_all();
}

bool KernelWorkers::wait(int core, std::optional<std::string>* error, int timeout_ms) {
  Worker& worker = *workers_[static_cast<std::size_t>(core)];
  std::unique_lock lock(worker.mutex);
  if (!worker.cv.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                          [&] { return worker.done; })) {
    return false;
  }
  *error = worker.error;
  return true;
}

void KernelWorkers::main_loop(Worker& worker) {
  for (;;) {
    DispatchPayload job;
    {
      std::unique_lock lock(worker.mutex);
      worker.cv.wait(lock, [&] { return worker.stop || worker.job.has_value(); });
      if (worker.stop && !worker.job) return;
      job = *worker.job;
      worker.job.reset();
    }
    std::optional<std::string> error = run_kernel(job);
    {
      const std::lock_guard lock(worker.mutex);
      worker.done = true;
      worker.error = std::move(error);
    }
    worker.cv.notify_all();
  }
}

}  // namespace tmr::detail::sim
