// Runtime configuration: topology, ring sizes, dispatch policy, waits. Also read from TMR_* env.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tmr/sim.hpp"

namespace tmr {

inline constexpr int kRingCount = 4;  // rings by scope depth: min(depth, 3)
inline constexpr int kMaxScopeDepth = 64;
inline constexpr int kMaxClusters = 64;
inline constexpr int kMaxSchedulerThreads = 8;

struct RingConfig {
  // Task slots per ring (power of two, >= 4); one slot stays free, so at most task_window - 1
  // tasks of a ring are live (submitted, not yet retired) at once.
  std::uint32_t task_window = 16384;
  std::uint64_t heap_bytes = 64ull << 20;  // output heap per ring (multiple of 64, >= 1024)
  std::uint32_t dep_pool = 65536;          // dependency records per ring (power of two, >= 16)
};

// Where cores run: OS threads executing real kernels, or a virtual-time model of a whole chip.
enum class PlatformKind : std::uint8_t { threads, sim };

// Which task shapes may be pre-staged into a busy core's pending slot (running + pending).
// AIC and AIV: on by default on both platforms. MIX: left unset, the platform decides: staged on
// the sim (the chip, as the reference stages since its #553: up to 9-12% faster there with busy
// cores, at most 0.7% slower), not on threads (cores are OS threads sharing the host's CPUs: MIX
// staging made spmd_multiblock_mix 1.2-1.4x slower and gained nowhere clearly; measured,
// docs/performance.md "Dual-slot policies on threads"). `TMR_DUAL_SLOT` or an assignment sets
// it for both. The policy lives in src/core/dispatch/.
struct DualSlotPolicy {
  bool aic = true;
  bool aiv = true;
  // MIX blocks: idle cores of the cluster take their part in the running slot, busy ones in the
  // pending slot, under a deadlock-freedom rule (docs/design.md, "MIX pre-staging"); a block
  // whose parts all wait is taken back if another cluster that can run it becomes idle first.
  // Unset: the platform's default (see above).
  std::optional<bool> mix;
  // With `mix`: take a staged block back when a cluster that can run it becomes idle first
  // (off: a staged block stays where it was staged, for A/B). TMR_MIX_TAKE_BACK=on|off.
  bool mix_take_back = true;

  // Whether MIX blocks are pre-staged on `platform`: `mix` if set, else the platform's default.
  bool stages_mix_on(PlatformKind platform) const {
    return mix.value_or(platform == PlatformKind::sim);
  }
  // The same policy with `mix` set (what the engine runs with).
  DualSlotPolicy resolved_for(PlatformKind platform) const {
    DualSlotPolicy resolved = *this;
    resolved.mix = stages_mix_on(platform);
    return resolved;
  }
};

// A topology that fits the host for CPU runs (threads platform): one cluster per two CPUs this
// process may use (its affinity mask, e.g. under taskset; so one AIV core thread per CPU, the
// AIC threads park while no AIC kernel runs), and one scheduler thread per 32 CPUs (cores take
// their own completions, see docs/design.md), within kMaxClusters / kMaxSchedulerThreads.
struct HostTopology {
  int cpus = 1;
  int clusters = 1;
  int scheduler_threads = 1;
};
HostTopology host_topology();

// Where the threads platform runs its threads on the host's CPUs (the sim ignores it). Linux
// only; elsewhere every value behaves as `none`. TMR_PLACEMENT=none|split|nice|adaptive.
enum class ThreadPlacement : std::uint8_t {
  // The OS places every thread where it likes.
  none,
  // While a run is on, the orchestrator (the thread calling Runtime::run) runs on the first CPU
  // of this process's affinity mask and the core and scheduler threads on the others; while the
  // orchestrator waits (full ring, end of run) they may use its CPU too. The caller's own mask
  // is restored when the run ends. Only with at least 2 CPUs and more runtime threads than CPUs.
  split,
  // Core and scheduler threads run at a lower priority (nice +5) than the orchestrator, so on a
  // host with fewer CPUs than busy threads the orchestrator's CPU share does not shrink while
  // the workers have nothing to do but poll; when it waits, they take every CPU.
  nice,
  // A run starts as `none`; each time the orchestrator goes back to submitting after a wait
  // (the cores were behind), it becomes `split` while the core threads' kernels are short (their
  // own timing: a kernel shorter than a scheduler step gains nothing from a second CPU) and
  // `none` while they are long. Same conditions as `split`, and only where the core threads
  // time their kernels (one scheduler thread); elsewhere it is `none`.
  adaptive,
};

// "none", "split", "nice", "adaptive" and back; nothing for another text.
std::optional<ThreadPlacement> parse_placement(std::string_view text);
const char* placement_name(ThreadPlacement placement);

struct RuntimeConfig {
  PlatformKind platform = PlatformKind::threads;
  // The a2a3 chip's shape: a library user models the chip unless they ask for fit_host(); the
  // `tmr run` CLI fits the host on the threads platform unless --clusters / TMR_CLUSTERS is given.
  int clusters = 24;          // each cluster = 1 AIC + 2 AIV cores
  int scheduler_threads = 3;  // each owns a disjoint set of clusters
  RingConfig ring;
  DualSlotPolicy dual_slot;
  // Idle core/scheduler threads pause-spin this many polls, then yield for 50 us, then park.
  // Short on purpose: on a host with fewer CPUs than runtime threads, spinning steals the CPU
  // from the thread that would hand over the work (measured: 30-40x slower at 256).
  std::uint32_t spin_before_park = 16;
  // Thread placement on the host's CPUs (threads platform). TMR_PLACEMENT; adaptive unless set.
  ThreadPlacement placement = ThreadPlacement::adaptive;
  // get/set_tensor_data and wait_for give up after this long (TENSOR_WAIT_TIMEOUT).
  double tensor_wait_timeout_s = 60.0;
  // A kernel that runs longer than this fails the run (scheduler_timeout, naming the kernel, task,
  // block, core and time) and leaves the runtime unusable until destroyed; one running longer
  // than min(10 s, stall_timeout_s / 2) is reported on stderr first. Also bounds a blocked
  // orchestrator when nothing can make progress (deadlocks are normally recognised at once).
  double stall_timeout_s = 120.0;
  // parallel_for analyses its iterations as a whole (off: every iteration's submits go through
  // the per-task TensorMap, for A/B comparisons). TMR_PARALLEL_FOR=on|off.
  bool parallel_for_analysis = true;
  // Record per-task events (submit/ready/dispatch/start/end, core, producers) into the result.
  bool record_events = false;
  // Timing only, on either platform: the whole runtime runs as usual (orchestration, dependence
  // analysis, rings, scheduling, hand-offs, events, RunStats) but no kernel body is called, `in`
  // tensors are used in place (no device copy) and nothing is copied back (outputs are left
  // untouched). For measuring the runtime itself where kernels would dominate. TMR_TIMING_ONLY.
  bool timing_only = false;
  // The sim platform's chip model and cost table (unused by threads). Its `timing_only` is the
  // older, sim-only spelling of the switch above, kept as an alias: see runs_timing_only().
  SimConfig sim;

  // Whether the run calls no kernel: either switch set turns it on (one set to false does not
  // turn the other off).
  bool runs_timing_only() const { return timing_only || sim.timing_only; }

  // Applies TMR_CLUSTERS, TMR_SCHED_THREADS, TMR_RING_TASK_WINDOW, TMR_RING_HEAP,
  // TMR_RING_DEP_POOL, TMR_DUAL_SLOT ("none" or a list of aic, aiv, mix, e.g. "aic,aiv,mix"),
  // TMR_RECORD_EVENTS,
  // TMR_PLATFORM ("threads" or "sim"), TMR_SIM_COST_MODEL (a JSON file, see docs/sim.md) and
  // TMR_TIMING_ONLY (0 or 1; TMR_SIM_TIMING_ONLY, 0 or 1, is its older alias and sets
  // sim.timing_only; both set to different values is an error), TMR_PARALLEL_FOR (on or off),
  // TMR_MIX_TAKE_BACK (on or off), TMR_PLACEMENT (none, split, nice or adaptive). Throws
  // Error(invalid_config) naming the variable and the accepted values.
  RuntimeConfig& apply_env();
  // Sets clusters and scheduler_threads to host_topology()'s (at least `min_clusters`).
  RuntimeConfig& fit_host(int min_clusters = 1);
  // Throws Error(invalid_config) naming the field and the accepted values.
  void validate() const;
};

}  // namespace tmr
