// The CPUs the calling thread may run on (Linux affinity mask), for the placement tests, and a
// scope that pins the calling thread to the first of them.
#pragma once

#include <sched.h>

#include <vector>

namespace tmr::testing {

inline std::vector<int> my_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

// Pins the calling thread (and so the runtime's threads, created after) to the first `count` CPUs
// of its mask (two by default), and restores the mask when it goes out of scope.
class TwoCpus {
 public:
  explicit TwoCpus(int count = 2) {
    CPU_ZERO(&saved_);
    if (sched_getaffinity(0, sizeof(saved_), &saved_) != 0 || CPU_COUNT(&saved_) < 2) return;
    cpu_set_t two;
    CPU_ZERO(&two);
    int taken = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && taken < count; ++cpu) {
      if (CPU_ISSET(cpu, &saved_)) {
        CPU_SET(cpu, &two);
        ++taken;
      }
    }
    ok_ = sched_setaffinity(0, sizeof(two), &two) == 0;
  }
  ~TwoCpus() {
    if (ok_) sched_setaffinity(0, sizeof(saved_), &saved_);
  }
  TwoCpus(const TwoCpus&) = delete;
  TwoCpus& operator=(const TwoCpus&) = delete;
  bool ok() const { return ok_; }

 private:
  cpu_set_t saved_;
  bool ok_ = false;
};

}  // namespace tmr::testing
