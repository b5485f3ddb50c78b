// Traces built by hand for the profile tests: no engine, fixed times.
#pragma once

#include <cstdint>

#include "tmr/kernel.hpp"
#include "tmr/trace.hpp"

namespace tmr::testing {

// Kernel ids of the hand-built traces, in registration order.
inline constexpr KernelId kMatmul = 0;  // AIC
inline constexpr KernelId kVadd = 1;    // AIV
inline constexpr KernelId kVmix = 2;    // AIV, used in the MIX task

void register_sample_kernels(KernelRegistry& registry);

// One cluster, one scheduler thread, five tasks:
//   #0 alloc (hidden);  #1 matmul <- #0;  #2 vadd x2 blocks <- #1;  #3 vadd (no producer);
//   #4 MIX (matmul, vmix, vmix) <- #2, #3.
// The times are listed in sample_traces.cpp; the expected statistics in test_trace_stats.cpp.
Trace small_sample_trace();

// `tasks` independent-ish tasks (each depends on the one `clusters` before it) spread over
// `clusters` clusters, each 50 to 300 ns long: far narrower than a pixel once there are
// thousands.
Trace large_sample_trace(int tasks, int clusters, std::uint64_t seed);

}  // namespace tmr::testing
