// One scheduler thread's step gate (ThreadsPlatform): any thread may take the thread's step, one
// at a time; a caller that finds the gate held leaves a request, and the holder steps once more
// for it before it leaves. The word also counts the kernel tasks the steps completed, so the RMW
// that lets go is the completion count's RMW as well: per step one RMW to take the gate and one
// to let go, with the look at the request and the count folded in (three were separate locked
// instructions before: the release's seq_cst store and the count's add; the look was a load).
#pragma once

#include <atomic>
#include <cstdint>

namespace tmr::detail {

class alignas(64) StepGate {
 public:
  // Takes the gate when it is free (true). One `lock bts`: only the held bit is looked at.
  bool try_take() { return (word_.fetch_or(kHeld, std::memory_order_seq_cst) & kHeld) == 0; }

  // Runs `step()` under the gate, and again for every request raised while this caller holds
  // it; when another holds it, leaves a request instead (that holder steps on the caller's
  // behalf) and returns false. `step()` returns the kernel tasks it completed; they are counted
  // by the RMW that lets go, and `counted(total)` runs after that RMW when there were any (the
  // wake-up of a waiting orchestrator pairs with it), with the gate's count that RMW left: every
  // earlier step's included, so no load of the word is needed for it. Returns true when the caller
  // stepped at least once.
  //
  // Why no request is lost: a requester raises it and tries again in one RMW, and a holder lets
  // go with an RMW that reads it; in the word's modification order either the requester's RMW
  // comes first (the holder sees the request and steps again) or the release does (the
  // requester's RMW finds the gate free and takes it). A request still raised after a step is
  // served by taking the gate again; whoever took it meanwhile sees the request instead. Every
  // write of the word is an RMW, so a taker synchronises with all earlier writers (a release
  // sequence): a step sees what a requester wrote before its request (e.g. its FIN).
  template <class Step, class Counted>
  bool step(Step&& step, Counted&& counted) {
    bool stepped = false;
    for (bool first = true;; first = false) {
      if (!try_take()) {
        if (!first || (word_.fetch_or(kHeld | kRequested, std::memory_order_seq_cst) & kHeld) != 0)
          return stepped;
      }
      // The step about to run serves every request raised so far.
      if ((word_.load(std::memory_order_relaxed) & kRequested) != 0)
        word_.fetch_and(~kRequested, std::memory_order_acq_rel);
      stepped = true;
      if (!release(step(), counted)) return true;
    }
  }

  // Runs `step()` only when the gate is free, raising no request (an opportunistic step).
  // Returns whether a request was raised while it ran (the caller serves it with step()).
  template <class Step, class Counted>
  bool step_if_free(Step&& step, Counted&& counted) {
    return try_take() && release(step(), counted);
  }

  // Kernel tasks counted by all steps so far (seq_cst: pairs with the releases' RMWs).
  std::uint64_t completed() const { return word_.load(std::memory_order_seq_cst) / kCompletion; }

 private:
  static constexpr std::uint64_t kHeld = 1;
  static constexpr std::uint64_t kRequested = 2;
  static constexpr std::uint64_t kCompletion = 4;  // one completed task: the bits above the flags

  // Lets go, counting `completed` tasks; true when a request was raised meanwhile. seq_cst: the
  // count's RMW comes after the step's writes (releases, retirements), and `counted()`'s look at
  // whether the orchestrator waits comes after it (store-buffering with the orchestrator's store
  // of what it waits for and its seq_cst sum of the counts: one of the two sees the other).
  template <class Counted>
  bool release(std::uint64_t completed, Counted& counted) {
    const std::uint64_t before =
        word_.fetch_add(completed * kCompletion - kHeld, std::memory_order_seq_cst);
    if (completed != 0) counted(before / kCompletion + completed);
    return (before & kRequested) != 0;
  }

  std::atomic<std::uint64_t> word_{0};
};

}  // namespace tmr::detail
