// A core thread's running estimate of how long its kernels take (threads platform), for
// Scheduler::note_short_kernels.
#pragma once

#include <algorithm>
#include <cstdint>

namespace tmr::detail {

// A core thread times one kernel in kKernelSample (two clock reads: one in 16 cost the chain's
// cores ~13 instructions a task, callgrind); its kernels are short while the running
// estimate stays under kShortKernelNs. On the 2-CPU host a core's step took ~150-250 ns of CPU a
// task, and hand-offs between cores on different CPUs added ~750 ns a task on the peers' stencil
// (docs/performance.md, "Session 55, branch mode55"): a kernel must be a few steps long before a
// second core pays. The 1 us kernels of the peers' METG points stay above it with room.
constexpr std::uint32_t kKernelSample = 64;  // a power of two
constexpr std::int64_t kShortKernelNs = 500;
// A sample counts at most this much: one kernel preempted while it ran then moves a short
// estimate (~100 ns) by ~225 ns, not past kShortKernelNs, and a long one needs three samples.
constexpr std::int64_t kKernelSampleCapNs = 2 * kShortKernelNs;

// An exponential average, the newest sample weighing a quarter. It starts long: the policy as if
// nothing were timed.
class KernelTimer {
 public:
  // Counts a kernel; true for the one in kKernelSample to time.
  bool due() { return (++count_ & (kKernelSample - 1)) == 0; }
  // Adds a sample of `ns`; true when the estimate crossed kShortKernelNs (either way).
  bool add(std::uint64_t ns) {
    const auto sample = static_cast<std::int64_t>(std::min<std::uint64_t>(ns, kKernelSampleCapNs));
    estimate_ += (sample - estimate_) / 4;
    const bool now_short = estimate_ < kShortKernelNs;
    const bool changed = now_short != short_;
    short_ = now_short;
    return changed;
  }
  bool is_short() const { return short_; }
  std::int64_t estimate_ns() const { return estimate_; }

 private:
  std::uint32_t count_ = 0;
  std::int64_t estimate_ = kKernelSampleCapNs;
  bool short_ = false;
};

}  // namespace tmr::detail
