// Where the threads platform's threads run on the host's CPUs (RuntimeConfig::placement).
//
// On a host with fewer CPUs than busy runtime threads (2 CPUs: the orchestrator, two AIV workers,
// a scheduler and a parked AIC thread), the OS shares the CPUs evenly between whoever is
// runnable, and the workers, polling for work the orchestrator has not submitted yet, take CPU
// time from the orchestrator that would submit it. `split` keeps a CPU for the orchestrator while
// it submits and gives it back to the workers while it waits; `nice` lowers the workers'
// priority instead; `adaptive` is `split` while the workers' kernels are short and `none`
// otherwise. Linux only: elsewhere every mode is `none`.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "tmr/config.hpp"

namespace tmr::detail {

class HostPlacement {
 public:
  // `runtime_threads`: the core and scheduler threads that will call enter_worker (indices 0 to
  // runtime_threads - 1). The mode applies only where it can help: at least 2 CPUs in this
  // process's affinity mask and more threads (the orchestrator included) than CPUs.
  HostPlacement(ThreadPlacement wanted, int runtime_threads);
  HostPlacement(const HostPlacement&) = delete;
  HostPlacement& operator=(const HostPlacement&) = delete;

  // The mode in force (none when `wanted` does not apply to this host).
  ThreadPlacement active() const { return active_; }
  // The CPUs of this process's affinity mask when constructed.
  int cpus() const { return static_cast<int>(cpus_.size()); }

  // First thing on each core and scheduler thread: records its id (split) or lowers its
  // priority (nice).
  void enter_worker(int index);
  // Returns once every runtime thread has entered (the platform's constructor waits, so the
  // orchestrator's calls below see every thread id).
  void wait_until_entered() const;

  // ---- called on the orchestrator's thread only
  // A run starts: split pins the caller to the orchestrator's CPU (saving its own mask) and
  // keeps the workers off it. Adaptive starts as none: a run whose orchestrator never waits is
  // the orchestrator's alone, and pinning it there measured slower (independent, session 57).
  void begin_run();
  // The orchestrator is about to park (full ring, wait for a tensor, end of run): split and
  // adaptive let the workers use its CPU while it waits. Idempotent.
  void orchestrator_parks();
  // The orchestrator goes back to submitting after a wait: split keeps the workers off its CPU
  // again; adaptive pins it and keeps them off with short kernels (the cores were behind, and
  // short kernels run no faster on two CPUs), and with long ones gives the caller its own mask
  // back (every thread where the OS likes, as `none`).
  // `short_kernels`: whether the core threads' recent kernels are short (their own timing,
  // Scheduler::short_kernels); only `adaptive` reads it.
  void orchestrator_resumes(bool short_kernels);
  // The run ended: the workers may use every CPU and the caller gets its own mask back.
  void end_run();

  // For tests: the CPUs thread `index` may run on now, and the caller's (empty off Linux).
  std::vector<int> worker_cpus(int index) const;
  static std::vector<int> caller_cpus();
  // For tests: the nice value of thread `index` (0 off Linux).
  int worker_nice(int index) const;

 private:
  void set_workers(bool wide);
  // The caller on the orchestrator's CPU and the workers off it (split's submitting state).
  void narrow();
  // The caller's own mask back, if it was pinned.
  void release_caller();

  ThreadPlacement active_ = ThreadPlacement::none;
  std::vector<int> cpus_;         // the process's CPUs at construction, ascending
  std::vector<int> worker_tids_;  // written before `entered_` counts them
  std::atomic<int> entered_{0};
  bool workers_wide_ = true;                // orchestrator thread only
  bool caller_pinned_ = false;              // orchestrator thread only
  std::vector<unsigned char> caller_mask_;  // the caller's mask before begin_run (a cpu_set_t)
};

}  // namespace tmr::detail
