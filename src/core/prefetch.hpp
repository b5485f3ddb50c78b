// Cache-line prefetches for the submit path. They are `asm volatile` on x86 because GCC may drop
// a __builtin_prefetch whose result nothing uses (docs/performance.md, "Task records and
// cross-core traffic"); elsewhere the builtin is the best there is.
#pragma once

namespace tmr::detail {

// Asks for a line the caller will read soon (x86 PREFETCHT0).
inline void prefetch_for_read(const void* line) {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(line)));
#else
  __builtin_prefetch(line, 0);
#endif
}

// Asks for a line in exclusive state (x86 PREFETCHW; a no-op on x86 cores older than Broadwell),
// for a line last written by another CPU that the caller will write: a plain prefetch brings it
// in shared, and the first store then waits for a second round trip to invalidate the other
// CPU's copy.
inline void prefetch_for_write(const void* line) {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(line)));
#else
  __builtin_prefetch(line, 1);
#endif
}

}  // namespace tmr::detail
