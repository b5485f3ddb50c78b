// Host threads that really run the kernels of a simulated chip: one per core, started on the
// core's first job. The kernels of one MIX task exchange data through blocking cluster pipes, so
// every kernel the model has started must actually be running; one thread per core guarantees it.
// The timeline never depends on these threads: the event loop only waits for a job's end.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/mailbox.hpp"

namespace tmr::detail::sim {

class KernelWorkers {
 public:
  explicit KernelWorkers(int cores);
  ~KernelWorkers();
  KernelWorkers(const KernelWorkers&) = delete;
  KernelWorkers& operator=(const KernelWorkers&) = delete;

  // Starts `job` on core `core`'s thread. The core must not have a job running.
  void start(int core, const DispatchPayload& job);
  // Ends the idle threads and detaches those still inside a kernel (they leave when it returns).
  // Afterwards this object must not be destroyed while a detached thread may still use it.
  void abandon();
  // Waits until core `core`'s job returned, at most `timeout_ms`. Returns false on timeout;
  // otherwise `*error` is set when the kernel threw (its message).
  bool wait(int core, std::optional<std::string>* error, int timeout_ms);

 private:
  struct Worker {
    std::mutex mutex;
    std::condition_variable cv;
    std::optional<DispatchPayload> job;
    bool done = true;
    bool stop = false;
    std::optional<std::string> error;
    std::thread thread;
  };
  static void main_loop(Worker& worker);

  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace tmr::detail::sim
