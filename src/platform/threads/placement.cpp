#include "platform/threads/placement.hpp"

#include <thread>

#ifdef __linux__
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#endif

namespace tmr::detail {
namespace {

// How much lower the workers' priority is under `nice`: weight 335 against the orchestrator's
// 1024 (Linux CFS), so a worker sharing the orchestrator's CPU gets a quarter of it.
constexpr int kWorkerNice = 5;

#ifdef __linux__
std::vector<int> cpus_of(const cpu_set_t& set) {
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}
#endif

}  // namespace

HostPlacement::HostPlacement(ThreadPlacement wanted, int runtime_threads)
    : worker_tids_(static_cast<std::size_t>(runtime_threads), 0) {
#ifdef __linux__
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cpus_ = cpus_of(set);
  // Placement helps only where the threads outnumber the CPUs (the orchestrator counts).
  const bool applies = cpus_.size() >= 2 && runtime_threads + 1 > static_cast<int>(cpus_.size());
  active_ = applies ? wanted : ThreadPlacement::none;
#else
  (void)wanted;
#endif
}

void HostPlacement::enter_worker(int index) {
#ifdef __linux__
  const pid_t tid = gettid();
  worker_tids_[static_cast<std::size_t>(index)] = tid;
  if (active_ == ThreadPlacement::nice) {
    errno = 0;
    const int nice = getpriority(PRIO_PROCESS, static_cast<id_t>(tid));
    if (errno == 0) setpriority(PRIO_PROCESS, static_cast<id_t>(tid), nice + kWorkerNice);
  }
#else
  (void)index;
#endif
  entered_.fetch_add(1, std::memory_order_release);
}

void HostPlacement::wait_until_entered() const {
  while (entered_.load(std::memory_order_acquire) < static_cast<int>(worker_tids_.size()))
    std::this_thread::yield();
}

void HostPlacement::set_workers(bool wide) {
#ifdef __linux__
  if (workers_wide_ == wide) return;
  workers_wide_ = wide;
  cpu_set_t set;
  CPU_ZERO(&set);
  for (std::size_t i = wide ? 0 : 1; i < cpus_.size(); ++i)
    CPU_SET(cpus_[i], &set);
  for (const int tid : worker_tids_)
    sched_setaffinity(tid, sizeof(set), &set);  // a thread that left already: ESRCH, harmless
#else
  (void)wide;
#endif
}

void HostPlacement::narrow() {
#ifdef __linux__
  if (!caller_pinned_) {
    cpu_set_t mine;
    CPU_ZERO(&mine);
    if (sched_getaffinity(0, sizeof(mine), &mine) == 0 && CPU_ISSET(cpus_[0], &mine)) {
      caller_mask_.assign(reinterpret_cast<const unsigned char*>(&mine),
                          reinterpret_cast<const unsigned char*>(&mine) + sizeof(mine));
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpus_[0], &one);
      caller_pinned_ = sched_setaffinity(0, sizeof(one), &one) == 0;
    }
  }
#endif
  // A caller that may not run on the orchestrator's CPU keeps its mask, and the workers theirs.
  if (caller_pinned_) set_workers(false);
}

void HostPlacement::release_caller() {
#ifdef __linux__
  if (caller_pinned_) {
    cpu_set_t mine;
    std::memcpy(&mine, caller_mask_.data(), sizeof(mine));
    sched_setaffinity(0, sizeof(mine), &mine);
    caller_pinned_ = false;
  }
#endif
}

void HostPlacement::begin_run() {
  if (active_ == ThreadPlacement::split) narrow();
}

void HostPlacement::orchestrator_parks() {
  if (active_ == ThreadPlacement::split || active_ == ThreadPlacement::adaptive) set_workers(true);
}

void HostPlacement::orchestrator_resumes(bool short_kernels) {
  if (active_ == ThreadPlacement::split) {
    if (caller_pinned_) set_workers(false);
  } else if (active_ == ThreadPlacement::adaptive) {
    // The workers are wide here (the park widened them): with long kernels they stay so.
    if (short_kernels) {
      narrow();
    } else {
      release_caller();
    }
  }
}

void HostPlacement::end_run() {
  if (active_ != ThreadPlacement::split && active_ != ThreadPlacement::adaptive) return;
  set_workers(true);
  release_caller();
}

std::vector<int> HostPlacement::worker_cpus(int index) const {
#ifdef __linux__
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(worker_tids_[static_cast<std::size_t>(index)], sizeof(set), &set) == 0)
    return cpus_of(set);
#else
  (void)index;
#endif
  return {};
}

std::vector<int> HostPlacement::caller_cpus() {
#ifdef __linux__
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return cpus_of(set);
#endif
  return {};
}

int HostPlacement::worker_nice(int index) const {
#ifdef __linux__
  errno = 0;
  const int nice =
      getpriority(PRIO_PROCESS, static_cast<id_t>(worker_tids_[static_cast<std::size_t>(index)]));
  return errno == 0 ? nice : 0;
#else
  (void)index;
  return 0;
#endif
}

}  // namespace tmr::detail
