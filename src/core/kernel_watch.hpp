// Which kernel each core is running and since when. The orchestrator thread reads it while it
// waits, so a kernel that runs long is reported (kernel, task, block, core, how long) and one that
// overruns stall_timeout_s fails the run by name instead of hanging it. The core side is two
// stores per kernel call; readers may see a kernel that just ended, which only delays a report.
#pragma once

#include <atomic>
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>

#include "tmr/kernel.hpp"
#include "tmr/task_id.hpp"

namespace tmr::detail {

class KernelWatch {
 public:
  explicit KernelWatch(int cores)
      : slots_(std::make_unique<Slot[]>(static_cast<std::size_t>(cores))), cores_(cores) {}

  // Real time for the watch on every platform (kernels run in real time, also on the sim). The
  // coarse monotonic clock (a few ms resolution, no hardware counter read): it is read before
  // every kernel call, where the precise clock was ~2-4% of a worker's time on tiny tasks, and
  // the watch judges kernels against stall timeouts of seconds. Never 0 (0 means idle).
  static std::uint64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
           static_cast<std::uint64_t>(ts.tv_nsec) + 1;
  }

  // Core side, around each kernel call, with `now_ns` from now_ns().
  void started(int core, KernelId kernel, TaskId task, std::uint32_t block, std::uint64_t now_ns) {
    Slot& s = slots_[static_cast<std::size_t>(core)];
    s.kernel.store(kernel, std::memory_order_relaxed);
    s.task.store(task.value(), std::memory_order_relaxed);
    s.block.store(block, std::memory_order_relaxed);
    s.since_ns.store(now_ns, std::memory_order_release);
  }
  void finished(int core) {
    slots_[static_cast<std::size_t>(core)].since_ns.store(0, std::memory_order_release);
  }

  struct Running {
    int core = 0;
    KernelId kernel = kNoKernel;
    TaskId task;
    std::uint32_t block = 0;
    std::uint64_t elapsed_ns = 0;
  };
  // The kernel that has been running longest at `now_ns`, if any core runs one.
  std::optional<Running> longest(std::uint64_t now_ns) const {
    std::optional<Running> found;
    for (int core = 0; core < cores_; ++core) {
      const Slot& s = slots_[static_cast<std::size_t>(core)];
      const std::uint64_t since = s.since_ns.load(std::memory_order_acquire);
      if (since == 0 || since > now_ns) continue;
      Running r{core, s.kernel.load(std::memory_order_relaxed),
                TaskId::from_value(s.task.load(std::memory_order_relaxed)),
                s.block.load(std::memory_order_relaxed), now_ns - since};
      // The identity belongs to `since` only if the kernel has not changed meanwhile.
      if (s.since_ns.load(std::memory_order_acquire) != since) continue;
      if (!found || r.elapsed_ns > found->elapsed_ns) found = r;
    }
    return found;
  }
  bool busy(int core) const {
    return slots_[static_cast<std::size_t>(core)].since_ns.load(std::memory_order_acquire) != 0;
  }

 private:
  struct alignas(64) Slot {
    std::atomic<std::uint64_t> since_ns{0};  // 0: no kernel running
    std::atomic<KernelId> kernel{kNoKernel};
    std::atomic<std::uint64_t> task{0};
    std::atomic<std::uint32_t> block{0};
  };
  std::unique_ptr<Slot[]> slots_;
  int cores_;
};

}  // namespace tmr::detail
