// The one way the orchestrator side waits: until a condition holds, re-checking every poll
// interval whether kernel tasks still complete, and letting the caller decide when quiet has
// lasted too long (a stall) or the wait itself too long (a timeout). Replaces three hand-written
// loops (ring room, element access, the end-of-run drain) that differed only in that decision.
#pragma once

#include <cstdint>

#include "core/seams.hpp"

namespace tmr::detail {

struct WaitProgress {
  std::uint64_t waited_ns;  // since the wait began
  std::uint64_t quiet_ns;   // since a kernel task last completed (or the wait began)
  std::uint64_t completed;  // kernel tasks completed so far
  bool progressed;          // some completed since the last check
};

// Waits until `ready()` holds (true). After every `poll_ns` without it, calls
// `check(const WaitProgress&)`, which returns false to give up (after reporting why): then false.
// Also gives up (false) once the host's kernel watch fails the run for a kernel that overran
// stall_timeout_s.
template <class Ready, class Check>
bool wait_with_stall_check(OrchestratorHost& host, std::uint64_t poll_ns, Ready&& ready,
                           Check&& check) {
  const std::uint64_t start = host.wait_clock_ns();
  std::uint64_t last_progress = start;
  std::uint64_t last_completed = host.kernel_tasks_completed();
  for (;;) {
    if (host.wait_until(ready, poll_ns)) return true;
    // A kernel running too long is named (and fails the run) here, for every kind of wait.
    if (host.watch_kernels()) return false;
    const std::uint64_t now = host.wait_clock_ns();
    const std::uint64_t completed = host.kernel_tasks_completed();
    // A running kernel is progress: only the watch decides when it has run too long.
    const bool progressed = completed != last_completed || host.kernel_running();
    if (progressed) {
      last_completed = completed;
      last_progress = now;
    }
    if (!check(WaitProgress{now - start, now - last_progress, completed, progressed})) return false;
  }
}

}  // namespace tmr::detail
