// The task window of a test that holds a few hundred tasks at most in a run.
#pragma once

#include <cstdint>

#include "tmr/config.hpp"

namespace tmr::testing {

// A runtime's per-slot arrays (ring slots, dependence states, ready-queue cells) are written when
// it is built: under TSan ~1.5 s at the default 16,384-task window against ~0.3 s at this one
// (docs/performance.md, "make test's time (lead39)"). A run of at most ~880 tasks neither fills
// nor wraps this window, and the runtime's other uses of the window (the room credit of 63
// submits, the eighth of it a full ring waits for) act as at the default, so such a test runs as
// it did. A test that needs more tasks live or wants the ring to stay unwrapped past that keeps
// the default (RingConfig{}), and says why.
inline constexpr std::uint32_t kFewTasksWindow = 1024;

inline RingConfig few_tasks_ring() {
  RingConfig ring;
  ring.task_window = kFewTasksWindow;
  return ring;
}

}  // namespace tmr::testing
