// Kernels for tests of co-scheduled work (MIX parts, start-together blocks): a barrier per tag
// with a deadline, standing in for kernels that exchange data through the cluster pipe (a pop
// blocks until the partner's push). A part whose partners never start is counted as a failure
// instead of hanging the test; a busy kernel keeps a core occupied for a given time.
#pragma once

#include "tmr/kernel.hpp"

namespace tmr::testing {

// Clears every barrier and the failure count. Call before each run.
void reset_barriers();
// Parts that gave up waiting for their partners since the last reset.
int barrier_failures();

// Scalar 0: tag (taken modulo 1024); scalar 1: number of parts meeting at the barrier. Waits
// (up to 3 s) until that many parts arrived; then, if a scalar 2 is given, stays busy that many
// microseconds.
void barrier_kernel(const KernelArgs& args);

// Stays busy for scalar 0 microseconds (real time; the sim uses its cost table instead).
void busy_kernel(const KernelArgs& args);

}  // namespace tmr::testing
