// Dual-slot (running + pending) scheduling per TMR_DUAL_SLOT policy, checked from recorded events
// on BOTH platforms (issue 12): each accepted shape (aic, aiv, mix) is pre-staged only when the
// policy names it; MIX blocks staged on partly busy clusters never deadlock, even in the cycle-
// prone case of docs/design.md; a MIX task behind a long stream of AIV tasks is not starved; a
// MIX block is not staged behind a busy cluster while another cluster is idle, a staged block is
// taken back when another cluster frees before its own, and, once the scheduler has seen the
// kernels run, a block is staged on the cluster expected to free first (the reference's #2279).
//
// MIX parts meet at a barrier with a short deadline, as kernels exchanging data through a cluster
// pipe would (a pop blocks until the partner's push): a part whose partner never starts is
// reported as a failure, not a hang.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "support/pipe_barrier.hpp"
#include "support/platforms.hpp"
#include "tmr/tmr.hpp"

namespace tmr {
namespace {

using testing::barrier_failures;
using testing::barrier_kernel;
using testing::busy_kernel;
using testing::reset_barriers;

RuntimeConfig config_for(PlatformKind platform, int clusters, int threads, DualSlotPolicy policy) {
  RuntimeConfig c;
  c.platform = platform;
  c.clusters = clusters;
  c.scheduler_threads = threads;
  c.record_events = true;
  c.stall_timeout_s = 30;
  c.dual_slot = policy;
  c.ring = testing::few_tasks_ring();  // a few hundred tasks a run at most
  // Sim durations: the busy kernels' scalar is the threads duration; the sim uses these.
  c.sim.costs.kernel_ns["long_aic"] = 40'000;
  c.sim.costs.kernel_ns["long_aiv"] = 40'000;
  c.sim.costs.kernel_ns["aic_work"] = 5'000;
  c.sim.costs.kernel_ns["aiv_work"] = 5'000;
  c.sim.costs.kernel_ns["mix_aic"] = 3'000;
  c.sim.costs.kernel_ns["mix_aiv"] = 3'000;
  return c;
}

struct Kernels {
  KernelId aic_work, aiv_work, long_aic, long_aiv, mix_aic, mix_aiv;
};

Kernels add_kernels(Runtime& runtime) {
  KernelRegistry& k = runtime.kernels();
  return {k.add("aic_work", CoreType::aic, &busy_kernel),
          k.add("aiv_work", CoreType::aiv, &busy_kernel),
          k.add("long_aic", CoreType::aic, &busy_kernel),
          k.add("long_aiv", CoreType::aiv, &busy_kernel),
          k.add("mix_aic", CoreType::aic, &barrier_kernel),
          k.add("mix_aiv", CoreType::aiv, &barrier_kernel)};
}

// Kernel slots of a MIX task using the cores of `mask` (1 AIC, 2 AIV0, 4 AIV1).
MixKernels mix_kernels(const Kernels& k, int mask) {
  return {(mask & 1) ? k.mix_aic : kNoKernel, (mask & 2) ? k.mix_aiv : kNoKernel,
          (mask & 4) ? k.mix_aiv : kNoKernel};
}

int parts_of(int mask) {
  return (mask & 1) + ((mask >> 1) & 1) + ((mask >> 2) & 1);
}

int shape_of(const TaskEvent& t) {
  int used = 0;
  for (const KernelId k : t.kernels)
    used += k != kNoKernel;
  return used >= 2 ? 2 : (t.kernels[0] != kNoKernel ? 0 : 1);
}

// Per shape (AIC, AIV, MIX): subtasks recorded as staged, and subtasks dispatched before the
// previous subtask on their core ended (the event-level evidence of a pending slot).
struct Staging {
  int flagged[3] = {0, 0, 0};
  int overlapped[3] = {0, 0, 0};
};

Staging staging_of(const Trace& trace) {
  Staging s;
  std::map<int, std::vector<const SubtaskEvent*>> by_core;
  for (const SubtaskEvent& e : trace.subtasks) {
    by_core[e.core].push_back(&e);
    s.flagged[shape_of(trace.tasks[e.task_sequence])] += e.staged;
  }
  for (auto& [core, events] : by_core) {
    std::sort(events.begin(), events.end(),
              [](auto* a, auto* b) { return a->start_ns < b->start_ns; });
    for (std::size_t i = 1; i < events.size(); ++i) {
      if (events[i]->dispatch_ns < events[i - 1]->end_ns)
        ++s.overlapped[shape_of(trace.tasks[events[i]->task_sequence])];
    }
  }
  return s;
}

class DualSlot : public ::testing::TestWithParam<PlatformKind> {};

// Every accepted value changes behaviour: a shape is pre-staged exactly when the policy names it.
// Barrier MIX kernels of a long and a short task; on the sim their parts cost `long_ns` and 30 us.
struct LongShortMix {
  KernelId long_aic, long_aiv, short_aic, short_aiv;
};
void set_long_short_mix_costs(RuntimeConfig& config, std::uint64_t long_ns) {
  for (const char* name : {"long_mix_aic", "long_mix_aiv"})
    config.sim.costs.kernel_ns[name] = long_ns;
  for (const char* name : {"short_mix_aic", "short_mix_aiv"})
    config.sim.costs.kernel_ns[name] = 30'000;
}
LongShortMix add_long_short_mix(Runtime& runtime) {
  KernelRegistry& reg = runtime.kernels();
  return {reg.add("long_mix_aic", CoreType::aic, &barrier_kernel),
          reg.add("long_mix_aiv", CoreType::aiv, &barrier_kernel),
          reg.add("short_mix_aic", CoreType::aic, &barrier_kernel),
          reg.add("short_mix_aiv", CoreType::aiv, &barrier_kernel)};
}

// MIX tasks with single-core work in between, then single-core work alone (while a MIX task
// waits, single-core tasks are not staged: MIX first); what was staged, per shape.
Staging staging_of_mixed_stream(PlatformKind platform, const DualSlotPolicy& policy) {
  Runtime runtime(config_for(platform, 1, 1, policy));
  const Kernels k = add_kernels(runtime);
  reset_barriers();
  const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    for (std::uint32_t i = 0; i < 48; ++i) {
      o.submit_aic(k.aic_work, Args().scalar(std::uint32_t{300}));
      o.submit_aiv(k.aiv_work, Args().scalar(std::uint32_t{300}));
      o.submit_aiv(k.aiv_work, Args().scalar(std::uint32_t{300}));
      if (i >= 24) continue;
      o.submit(mix_kernels(k, 7),
               Args().scalar(i).scalar(std::uint32_t{3}).scalar(std::uint32_t{100}));
    }
  });
  EXPECT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(barrier_failures(), 0);
  return r.ok() ? staging_of(*r.trace) : Staging{};
}

TEST_P(DualSlot, EachShapeIsPreStagedOnlyWhenThePolicyNamesIt) {
  const DualSlotPolicy policies[] = {{false, false, false},
                                     {true, false, false},
                                     {false, true, false},
                                     {false, false, true},
                                     {true, true, true}};
  for (const DualSlotPolicy& policy : policies) {
    SCOPED_TRACE(std::string("aic=") + (policy.aic ? "1" : "0") +
                 " aiv=" + (policy.aiv ? "1" : "0") + " mix=" + (policy.mix == true ? "1" : "0"));
    const Staging s = staging_of_mixed_stream(GetParam(), policy);
    const bool wanted[3] = {policy.aic, policy.aiv, policy.mix == true};
    for (int shape = 0; shape < 3; ++shape) {
      SCOPED_TRACE("shape " + std::to_string(shape));
      if (wanted[shape]) {
        EXPECT_GT(s.flagged[shape], 0);
        EXPECT_GT(s.overlapped[shape], 0);
      } else {
        EXPECT_EQ(s.flagged[shape], 0);
        EXPECT_EQ(s.overlapped[shape], 0);
      }
    }
  }
}

// The default leaves MIX staging to the platform: the chip model stages MIX blocks, the threads
// platform does not (docs/performance.md, "Dual-slot policies on threads"); AIC and AIV work is
// staged on both.
TEST_P(DualSlot, TheDefaultStagesMixOnTheSimOnly) {
  const DualSlotPolicy defaults;
  ASSERT_FALSE(defaults.mix.has_value());
  const Staging s = staging_of_mixed_stream(GetParam(), defaults);
  const bool sim = GetParam() == PlatformKind::sim;
  EXPECT_GT(s.flagged[0], 0);
  EXPECT_GT(s.flagged[1], 0);
  if (sim) {
    EXPECT_GT(s.flagged[2], 0);
    EXPECT_GT(s.overlapped[2], 0);
  } else {
    EXPECT_EQ(s.flagged[2], 0);
    EXPECT_EQ(s.overlapped[2], 0);
  }
}

// The cycle of docs/design.md, provoked: MIX tasks over every pair of cores of one cluster and
// all three, between long and short single-core tasks, so parts are staged behind single-core
// work and behind parts of MIX tasks that have not fully started. Every task must finish and
// every part must meet its partners.
TEST_P(DualSlot, StagedMixPartsNeverWaitOnEachOtherInACycle) {
  for (const int clusters : {1, 2}) {
    SCOPED_TRACE("clusters " + std::to_string(clusters));
    Runtime runtime(config_for(GetParam(), clusters, 1, {true, true, true}));
    const Kernels k = add_kernels(runtime);
    reset_barriers();
    const int masks[] = {3, 5, 6, 7, 3, 6, 5};
    const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      for (std::uint32_t i = 0; i < 140; ++i) {
        switch (i % 4) {
          case 0:
            o.submit_aiv(k.long_aiv, Args().scalar(std::uint32_t{2000}));
            break;
          case 1:
            o.submit_aic(k.long_aic, Args().scalar(std::uint32_t{1500}));
            break;
          default:
            o.submit_aiv(k.aiv_work, Args().scalar(std::uint32_t{200}));
            break;
        }
        const int mask = masks[i % 7];
        o.submit(mix_kernels(k, mask), Args()
                                           .scalar(i)
                                           .scalar(static_cast<std::uint32_t>(parts_of(mask)))
                                           .scalar(std::uint32_t{50}));
      }
    });
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(barrier_failures(), 0) << "a MIX part waited for a partner that never started";
    EXPECT_GT(staging_of(*r.trace).flagged[2], 0) << "the case must stage MIX parts";
  }
}

// The case: a MIX task ready behind a stream of 300 AIV tasks on one cluster must not
// wait for the end of the stream (AIV pre-staging would otherwise refill every pending slot).
TEST_P(DualSlot, MixTaskIsNotStarvedByAStreamOfAivTasks) {
  Runtime runtime(config_for(GetParam(), 1, 1, {true, true, true}));
  const Kernels k = add_kernels(runtime);
  reset_barriers();
  const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    for (int i = 0; i < 300; ++i) {
      o.submit_aiv(k.aiv_work, Args().scalar(std::uint32_t{40}));
      if (i == 4) {
        o.submit(
            mix_kernels(k, 7),
            Args().scalar(std::uint32_t{0}).scalar(std::uint32_t{3}).scalar(std::uint32_t{10}));
      }
    }
  });
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(barrier_failures(), 0);
  std::uint64_t mix_start = 0;
  std::vector<std::uint64_t> aiv_starts;
  for (const SubtaskEvent& e : r.trace->subtasks) {
    if (shape_of(r.trace->tasks[e.task_sequence]) == 2) {
      mix_start = std::max(mix_start, e.start_ns);
    } else {
      aiv_starts.push_back(e.start_ns);
    }
  }
  ASSERT_EQ(aiv_starts.size(), 300u);
  const auto after = std::count_if(aiv_starts.begin(), aiv_starts.end(),
                                   [&](std::uint64_t s) { return s > mix_start; });
  EXPECT_GT(after, 200) << "the MIX task started after " << 300 - after << " of 300 AIV tasks";
}

// No stranding where it can be seen at placement time: one cluster is held by a long MIX task,
// the other (another scheduler thread's) is idle; MIX tasks that become ready meanwhile must run
// on the idle cluster, not be staged behind the long task. (A block staged while every cluster
// was busy is taken back when another cluster frees first: the test after this one.)
TEST_P(DualSlot, MixBlockIsNotStagedBehindABusyClusterWhileAnotherIsIdle) {
  RuntimeConfig config = config_for(GetParam(), 2, 2, {true, true, true});
  config.sim.costs.kernel_ns["long_mix_aic"] = 40'000;
  config.sim.costs.kernel_ns["long_mix_aiv"] = 40'000;
  Runtime runtime(config);
  const Kernels k = add_kernels(runtime);
  const KernelId long_aic = runtime.kernels().add("long_mix_aic", CoreType::aic, &barrier_kernel);
  const KernelId long_aiv = runtime.kernels().add("long_mix_aiv", CoreType::aiv, &barrier_kernel);
  reset_barriers();
  const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    // Threads: 200 ms busy after the barrier, so that a loaded host (CI's) cannot delay the
    // second task's placement past the long task's end (20 ms failed once at load ~10).
    o.submit(
        {long_aic, long_aiv, long_aiv},
        Args().scalar(std::uint32_t{100}).scalar(std::uint32_t{3}).scalar(std::uint32_t{200'000}));
    o.submit(mix_kernels(k, 3),
             Args().scalar(std::uint32_t{1}).scalar(std::uint32_t{2}).scalar(std::uint32_t{50}));
  });
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(barrier_failures(), 0);
  std::uint64_t long_end = ~std::uint64_t{0};
  for (const SubtaskEvent& e : r.trace->subtasks) {
    if (e.task_sequence == 0) long_end = std::min(long_end, e.end_ns);
  }
  for (const SubtaskEvent& e : r.trace->subtasks) {
    if (e.task_sequence != 1) continue;
    EXPECT_FALSE(e.staged);
    EXPECT_LT(e.start_ns, long_end) << "a MIX part waited behind the long task while the other "
                                       "cluster was idle";
  }
}

// Stranding provoked (the reference's #2279): both clusters busy with MIX tasks, a long one and a
// short one; a third MIX task is staged on the long one's cluster (first fit, one thread). When
// the short one ends first, the staged block must be taken back from the pending slots (before
// its cores latch it) and run on the freed cluster, long before the long task ends. With two
// scheduler threads the tasks may be placed in any order by either thread; still no task may
// wait behind the long one.
TEST_P(DualSlot, StagedMixBlockIsTakenBackWhenAnotherClusterFreesFirst) {
  struct Variant {
    int threads;
    bool take_back;
  };
  for (const Variant v : {Variant{1, true}, Variant{2, true}, Variant{1, false}}) {
    const int threads = v.threads;
    SCOPED_TRACE("scheduler threads " + std::to_string(threads) +
                 (v.take_back ? "" : ", TMR_MIX_TAKE_BACK=off"));
    DualSlotPolicy policy{true, true, true};
    policy.mix_take_back = v.take_back;
    RuntimeConfig config = config_for(GetParam(), 2, threads, policy);
    set_long_short_mix_costs(config, 400'000);
    Runtime runtime(config);
    const Kernels k = add_kernels(runtime);
    const auto [long_aic, long_aiv, short_aic, short_aiv] = add_long_short_mix(runtime);
    reset_barriers();
    // Busy time after the barrier on threads; the sim's timeline comes from the costs above.
    auto real_us = [&](std::uint32_t us) { return GetParam() == PlatformKind::sim ? 0u : us; };
    const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      // Threads: 400 ms, 60 ms and 1 ms after the barrier; the sim uses the costs above.
      o.submit({long_aic, long_aiv, long_aiv},
               Args().scalar(std::uint32_t{0}).scalar(std::uint32_t{3}).scalar(real_us(400'000)));
      o.submit({short_aic, short_aiv, short_aiv},
               Args().scalar(std::uint32_t{1}).scalar(std::uint32_t{3}).scalar(real_us(60'000)));
      // Threads: let both clusters latch their tasks first, so the MIX task finds every core
      // stageable and first fit picks the long task's cluster (the sim is deterministic).
      if (GetParam() == PlatformKind::threads)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      o.submit(mix_kernels(k, 7),
               Args().scalar(std::uint32_t{2}).scalar(std::uint32_t{3}).scalar(real_us(1'000)));
    });
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(barrier_failures(), 0);
    if (!v.take_back) {
      // The option changes behaviour: the block stays staged behind the long task.
      EXPECT_EQ(r.stats.mix_blocks_taken_back, 0u);
      for (const SubtaskEvent& e : r.trace->subtasks) {
        if (e.task_sequence == 2) {
          EXPECT_TRUE(e.staged);
        }
      }
      continue;
    }
    // Task 0 is the long one; neither other task may run on its cluster or wait for its end.
    std::uint64_t long_end = ~std::uint64_t{0};
    int long_cluster = -1;
    for (const SubtaskEvent& e : r.trace->subtasks) {
      if (e.task_sequence != 0) continue;
      long_end = std::min(long_end, e.end_ns);
      long_cluster = e.cluster;
    }
    int others = 0;
    for (const SubtaskEvent& e : r.trace->subtasks) {
      if (e.task_sequence == 0) continue;
      ++others;
      EXPECT_NE(e.cluster, long_cluster)
          << "task " << e.task_sequence << " ran behind the long one";
      EXPECT_LT(e.start_ns, long_end) << "task " << e.task_sequence << " waited for the long one";
    }
    EXPECT_EQ(others, 6);
    // One thread stages by first fit, i.e. on the long task's cluster: the case provokes the
    // take-back. Two threads may stage it on either cluster.
    if (threads == 1) {
      EXPECT_EQ(r.stats.mix_blocks_taken_back, 1u);
    } else {
      EXPECT_LE(r.stats.mix_blocks_taken_back, 1u);
    }
  }
}

// Placement that prefers the cluster expected to free first (the reference's #2279): both
// clusters busy, a MIX block must be staged; first fit would take the cluster of the long task
// (as in the test above). Once the scheduler has seen both kernels run (a first round), it stages
// the block on the short task's cluster, so it runs there without being taken back. Take-back is
// off here so only placement can put it there.
TEST_P(DualSlot, StagedMixBlockGoesToTheClusterExpectedToFreeFirst) {
  DualSlotPolicy policy{true, true, true};
  policy.mix_take_back = false;
  RuntimeConfig config = config_for(GetParam(), 2, 1, policy);
  set_long_short_mix_costs(config, 300'000);
  Runtime runtime(config);
  const Kernels k = add_kernels(runtime);
  const auto [long_aic, long_aiv, short_aic, short_aiv] = add_long_short_mix(runtime);
  reset_barriers();
  auto real_us = [&](std::uint32_t us) { return GetParam() == PlatformKind::sim ? 0u : us; };
  std::vector<float> data(2);
  const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor t = Tensor::wrap(data.data(), {2}, DType::f32);
    const Tensor long_out = t.view({1}, {0});
    const Tensor short_out = t.view({1}, {1});
    // Barrier kernels: scalars tag, parts, busy microseconds (threads) after the barrier.
    auto mix = [&](MixKernels kernels, Args args, std::uint32_t tag, std::uint32_t us) {
      args.scalar(tag).scalar(std::uint32_t{3}).scalar(real_us(us));
      o.submit(kernels, args);
    };
    const MixKernels long_mix{long_aic, long_aiv, long_aiv};
    const MixKernels short_mix{short_aic, short_aiv, short_aiv};
    // Round 1 (tasks 0, 1): the scheduler learns how long each kernel runs.
    mix(long_mix, Args().out_existing(long_out), 0, 150'000);
    mix(short_mix, Args().out_existing(short_out), 1, 20'000);
    // Round 2: all three become ready when round 1 ends, in one completion, and are placed in
    // submission order: the long task (2) takes the first idle cluster, the short one (3) the
    // other, and the MIX block (4) must be staged.
    mix(long_mix, Args().in(long_out).in(short_out), 2, 150'000);
    mix(short_mix, Args().in(long_out).in(short_out), 3, 20'000);
    mix(mix_kernels(k, 7), Args().in(long_out).in(short_out), 4, 1'000);
  });
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(barrier_failures(), 0);
  EXPECT_EQ(r.stats.mix_blocks_taken_back, 0u);
  std::uint64_t long_end = ~std::uint64_t{0};
  int long_cluster = -1;
  for (const SubtaskEvent& e : r.trace->subtasks) {
    if (e.task_sequence != 2) continue;
    long_end = std::min(long_end, e.end_ns);
    long_cluster = e.cluster;
  }
  int parts = 0;
  int staged = 0;
  for (const SubtaskEvent& e : r.trace->subtasks) {
    if (e.task_sequence != 4) continue;
    ++parts;
    staged += e.staged;
    EXPECT_NE(e.cluster, long_cluster) << "the MIX block was placed behind the long task";
    EXPECT_LT(e.start_ns, long_end) << "the MIX block waited for the long task";
  }
  EXPECT_EQ(parts, 3);
  // On the sim the order above is exact and the block is staged (its cores were busy); on
  // threads, a core of the short cluster may already be idle when the block is placed.
  if (GetParam() == PlatformKind::sim) {
    EXPECT_GT(staged, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Platforms, DualSlot, testing::both_platforms(), testing::platform_name);

}  // namespace
}  // namespace tmr
