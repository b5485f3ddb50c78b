// A core thread's park and its doorbell (the threads platform): the core sleeps on its mailbox's
// core_parked flag, and the first doorbell after the flag was raised takes it (1 -> 0) and makes
// the one wake system call. Later doorbells before the woken core runs again find 0 and skip the
// call: on the peers' stencil, 77% of the wake calls woke nobody while the flag stayed raised
// until the woken core got a CPU (docs/performance.md, "Session 37, branch metg43").
#pragma once

#include <atomic>
#include <cstdint>

#include "core/futex.hpp"
#include "core/mailbox.hpp"

namespace tmr::detail {

// Parks the calling core while its dispatch word still holds `token`: until a doorbell, the
// timeout, or (seen before sleeping) a new word. Sleeping on the flag, not the dispatch word,
// keeps a taken doorbell from being lost when a take-back restores the word the core waited on.
inline void park_core(Mailbox& m, std::uint32_t token, std::uint64_t timeout_ns) {
  // seq_cst store, then load: pairs with the ringer's store of the word and its load of the flag
  // (either the core sees the new word or the ringer sees the flag raised).
  m.core_parked.store(1, std::memory_order_seq_cst);
  if (m.dispatch.load(std::memory_order_seq_cst) == token) {
    futex_wait(m.core_parked, 1, timeout_ns);  // returns at once once a ringer took the flag
  }
  m.core_parked.store(0, std::memory_order_relaxed);
}

// After a seq_cst store of `m`'s dispatch word: wakes its core when it is parked. Returns true
// when this call took the flag and made the wake system call.
inline bool ring_core(Mailbox& m) {
  // The load first: a running core's flag is 0, and a plain load leaves its line shared.
  if (m.core_parked.load(std::memory_order_seq_cst) == 0) return false;
  if (m.core_parked.exchange(0, std::memory_order_seq_cst) == 0) return false;  // rung already
  futex_wake_one(m.core_parked);
  return true;
}

// Shutdown and abandon: after the exit token's store, the core wakes whatever its flag says.
inline void wake_core_for_exit(Mailbox& m) {
  m.core_parked.store(0, std::memory_order_seq_cst);
  futex_wake_all(m.core_parked);
}

}  // namespace tmr::detail
