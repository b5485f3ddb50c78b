// The scheduler's units without threads or a platform: the ACK/FIN decision table, the dispatch
// policy's placement rules (a MIX task's active_mask, issue 14.8) and pass order, and the
// scheduler itself driven step by step against fake cores (hand-written status words), and the
// claim/take-back race of a pending dispatch (issue 12).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "core/core_runner.hpp"
#include "core/dispatch/dispatch_policy.hpp"
#include "core/engine.hpp"
#include "core/graph/fanout.hpp"
#include "core/ring.hpp"
#include "core/scheduler/core_slots.hpp"
#include "core/scheduler/ready_queues.hpp"
#include "core/scheduler/scheduler.hpp"
#include "core/thread_sanitizer.hpp"
#include "platform/threads/kernel_timer.hpp"
#include "support/cpu_mask.hpp"
#include "support/task_window.hpp"

namespace tmr::detail {
namespace {

TaskSlot* const kTaskA = reinterpret_cast<TaskSlot*>(std::uintptr_t{0x100});
TaskSlot* const kTaskB = reinterpret_cast<TaskSlot*>(std::uintptr_t{0x200});

CoreSlot running(std::uint32_t token, bool acked) {
  CoreSlot c;
  c.running = Subtask{kTaskA, token, 0, 0, 0};
  c.awaiting_ack = !acked;
  return c;
}

// A pending dispatch is either latched by its core or taken back by the scheduler, never both:
// both compare-exchange the dispatch word (core_runner.hpp, docs/design.md "Stranding").
TEST(DispatchClaim, ACoreCannotLatchADispatchTakenBackAndViceVersa) {
  Mailbox m;
  m.payload[1].block_index = 7;
  const std::uint32_t running = 4 | kLatchedBit;  // the core's latched running dispatch
  m.dispatch.store(5);                            // a pending dispatch, not latched yet
  std::uint32_t expected = 5;
  ASSERT_TRUE(m.dispatch.compare_exchange_strong(expected, running));  // the scheduler wins
  EXPECT_FALSE(latch_dispatch(m, 5).has_value());
  EXPECT_EQ(m.dispatch.load(), running);

  m.dispatch.store(5);  // staged again: this time the core claims it first
  const std::optional<DispatchPayload> job = latch_dispatch(m, 5);
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->block_index, 7u);
  EXPECT_EQ(m.dispatch.load(), 5 | kLatchedBit);
  EXPECT_EQ(m.status.load(), 5u) << "the claim is followed by the ACK";
  expected = 5;
  EXPECT_FALSE(m.dispatch.compare_exchange_strong(expected, running)) << "too late to take back";
}

// The threads platform's core loop claims without the copy (latch_dispatch_in_place): the same
// claim, ACK and loss to a take-back, and the payload is its buffer itself.
TEST(DispatchClaim, InPlaceClaimReturnsItsBufferOrNothingWhenTakenBack) {
  Mailbox m;
  m.payload[1].block_index = 7;
  const std::uint32_t running = 4 | kLatchedBit;
  m.dispatch.store(5);
  std::uint32_t expected = 5;
  ASSERT_TRUE(m.dispatch.compare_exchange_strong(expected, running));  // the scheduler wins
  EXPECT_EQ(latch_dispatch_in_place(m, 5), nullptr);
  EXPECT_EQ(m.dispatch.load(), running);
  EXPECT_NE(m.status.load(), 5u) << "no ACK for a dispatch taken back";

  m.dispatch.store(5);  // staged again: this time the core claims it first
  const DispatchPayload* job = latch_dispatch_in_place(m, 5);
  ASSERT_EQ(job, &m.payload[1]) << "in place: the buffer of the token's parity";
  EXPECT_EQ(job->block_index, 7u);
  EXPECT_EQ(m.dispatch.load(), 5 | kLatchedBit);
  EXPECT_EQ(m.status.load(), 5u) << "the claim is followed by the ACK";
  expected = 5;
  EXPECT_FALSE(m.dispatch.compare_exchange_strong(expected, running)) << "too late to take back";
}

TEST(SlotDecisionTable, AckOnceThenFinish) {
  CoreSlot c = running(5, false);
  EXPECT_FALSE(c.stageable()) << "no pending dispatch before the ACK";
  SlotChange change = apply_status(c, 5);
  EXPECT_TRUE(change.acked);
  EXPECT_EQ(change.finished_count, 0);
  EXPECT_TRUE(c.stageable());
  EXPECT_FALSE(apply_status(c, 5).progress()) << "a second look at the same ACK is no news";
  change = apply_status(c, 5 | kFinBit);
  ASSERT_EQ(change.finished_count, 1);
  EXPECT_EQ(change.finished[0].task, kTaskA);
  EXPECT_TRUE(change.became_idle);
  EXPECT_TRUE(c.idle());
}

TEST(SlotDecisionTable, StaleStatusIsIgnored) {
  CoreSlot c = running(7, true);
  EXPECT_FALSE(apply_status(c, 5 | kFinBit).progress());
  EXPECT_EQ(c.running.task, kTaskA);
}

TEST(SlotDecisionTable, PendingMovesUpWhenRunningFinishes) {
  CoreSlot c = running(7, true);
  c.pending = Subtask{kTaskB, 8, 0, 0, 0};
  const SlotChange change = apply_status(c, 7 | kFinBit);
  ASSERT_EQ(change.finished_count, 1);
  EXPECT_FALSE(change.became_idle);
  EXPECT_EQ(c.running.task, kTaskB);
  EXPECT_TRUE(c.awaiting_ack) << "the staged subtask still has to be latched";
  EXPECT_EQ(c.pending.task, nullptr);
}

TEST(SlotDecisionTable, CoreAlreadyOnPendingOrPastIt) {
  CoreSlot c = running(7, true);
  c.pending = Subtask{kTaskB, 8, 0, 0, 0};
  SlotChange change = apply_status(c, 8);  // running one finished, pending one latched
  ASSERT_EQ(change.finished_count, 1);
  EXPECT_EQ(change.finished[0].task, kTaskA);
  EXPECT_EQ(c.running.task, kTaskB);
  EXPECT_FALSE(c.awaiting_ack);

  c = running(7, true);
  c.pending = Subtask{kTaskB, 8, 0, 0, 0};
  change = apply_status(c, 8 | kFinBit);  // both finished between two looks
  ASSERT_EQ(change.finished_count, 2);
  EXPECT_EQ(change.finished[1].task, kTaskB);
  EXPECT_TRUE(change.became_idle);
  EXPECT_TRUE(c.idle());
}

// One cluster per test: AIC 0, AIVs 1 and 2.
struct OneCluster {
  std::vector<CoreSlot> cores = std::vector<CoreSlot>(3);
  std::vector<ClusterCores> clusters = {ClusterCores{0, {1, 2}}};
  std::vector<int> owned = {0};
  PlacementView view() const { return {cores, clusters, owned}; }
};

TEST(DispatchPolicy, MixTaskCountsOnlyTheCoresItsMaskNames) {
  OneCluster cl;
  cl.cores[2].running = Subtask{kTaskA, 3, 0, 0, 0};  // AIV1 busy
  EXPECT_EQ(DispatchPolicy::count_idle_units(cl.view(), TaskShape::mix, 0b011), 1)
      << "{AIC, AIV0} fits while AIV1 is busy (issue 14.8)";
  EXPECT_EQ(DispatchPolicy::count_idle_units(cl.view(), TaskShape::mix, 0b111), 0);
  EXPECT_EQ(DispatchPolicy::find_unit(cl.view(), TaskShape::mix, 0b011, SlotTarget::idle), 0);
  EXPECT_EQ(DispatchPolicy::find_unit(cl.view(), TaskShape::mix, 0b111, SlotTarget::idle), -1);
  EXPECT_EQ(DispatchPolicy::count_idle_units(cl.view(), TaskShape::aiv, 0b010), 1);
  cl.cores[0].cohort_reserved = true;
  EXPECT_EQ(DispatchPolicy::count_idle_units(cl.view(), TaskShape::mix, 0b011), 0)
      << "a core held for a cohort is not idle";
}

TEST(DispatchPolicy, PendingSlotsOnlyBehindLatchedWork) {
  OneCluster cl;
  cl.cores[0].running = Subtask{kTaskA, 3, 0, 0, 0};
  cl.cores[0].awaiting_ack = true;
  EXPECT_EQ(DispatchPolicy::find_unit(cl.view(), TaskShape::aic, 1, SlotTarget::pending), -1);
  cl.cores[0].awaiting_ack = false;
  EXPECT_EQ(DispatchPolicy::find_unit(cl.view(), TaskShape::aic, 1, SlotTarget::pending), 0);
  EXPECT_EQ(DispatchPolicy::find_unit(cl.view(), TaskShape::aic, 1, SlotTarget::idle), -1);
}

TEST(DispatchPolicy, IdleBeforePendingAndNoMixOrSyncStartStaging) {
  const DispatchPolicy policy(DualSlotPolicy{true, true, false});
  for (const int thread : {0, 1}) {
    const auto order = policy.staging_order(thread);
    ASSERT_EQ(order.size(), 5u);
    EXPECT_EQ(order[0].shape, TaskShape::mix);
    bool seen_pending = false;
    for (const PlacementPass& pass : order) {
      if (pass.target == SlotTarget::pending) seen_pending = true;
      EXPECT_FALSE(seen_pending && pass.target == SlotTarget::idle) << "idle passes come first";
      EXPECT_FALSE(pass.shape == TaskShape::mix && pass.target == SlotTarget::pending);
    }
  }
  EXPECT_NE(policy.staging_order(0)[1].shape, policy.staging_order(1)[1].shape)
      << "AIC/AIV order alternates between threads";
  EXPECT_EQ(DispatchPolicy(DualSlotPolicy{false, false, false}).staging_order(0).size(), 3u);
  TaskSlot task;
  task.shape = TaskShape::aic;
  EXPECT_TRUE(policy.may_prestage(task));
  task.sync_start = true;
  EXPECT_FALSE(policy.may_prestage(task));
}

// ---------------------------------------------------------------- the scheduler, step by step

struct FakeClock final : RunClock {
  std::uint64_t now = 0;
  bool record = false;  // read by the scheduler when it is made (and reset)
  std::uint64_t now_ns() const override { return now; }
  bool recording() const override { return record; }
};
struct FakeWaker final : Waker {
  std::vector<int> doorbells;
  int bells = 0;  // notify_schedulers calls
  void notify_schedulers() override { ++bells; }
  int new_work = 0;         // notify_new_work calls
  int new_work_fenced = 0;  // notify_new_work_after_fence calls
  void notify_new_work() override { ++new_work; }
  void notify_new_work_after_fence() override { ++new_work_fenced; }
  void notify_core(Mailbox& m) override { doorbells.push_back(m.core); }
  void notify_progress() override {}
};
struct FakeSink final : CompletionSink {
  int completed = 0;
  std::vector<int> cores;  // kernel_task_completed_on's core, per completion
  void kernel_task_completed() override { ++completed; }
  void kernel_task_completed_on(int core) override {
    cores.push_back(core);
    ++completed;
  }
  bool aborting() const override { return false; }
  void latch_error(ErrorCode, const std::string&) override {}
  bool has_error() const override { return false; }
  Status error() const override { return {}; }
};

void nop_kernel(const KernelArgs&) {}

class SchedulerSteps : public ::testing::Test {
 protected:
  SchedulerSteps() : ring_(0, small_ring()) { use_topology(Topology{1, 1}); }
  // The chip the next make() builds: one mailbox a core, named by its cluster, type and sub-block.
  void use_topology(Topology topology) {
    topology_ = topology;
    mailboxes_ = std::vector<Mailbox>(static_cast<std::size_t>(3 * topology.clusters));
    for (int c = 0; c < topology_.clusters; ++c) {
      const int cores[3] = {topology_.aic_core(c), topology_.aiv_core(c, 0),
                            topology_.aiv_core(c, 1)};
      for (int s = 0; s < 3; ++s) {
        mailboxes_[cores[s]].core = static_cast<std::uint16_t>(cores[s]);
        mailboxes_[cores[s]].cluster = static_cast<std::uint16_t>(c);
        mailboxes_[cores[s]].type = s == 0 ? CoreType::aic : CoreType::aiv;
        mailboxes_[cores[s]].sub_block = static_cast<std::uint8_t>(s == 0 ? 0 : s - 1);
      }
    }
  }
  static RingConfig small_ring() {
    RingConfig c;
    c.task_window = 64;
    c.heap_bytes = 1024;
    c.dep_pool = 64;
    return c;
  }
  Scheduler make(DualSlotPolicy policy) {
    return Scheduler(topology_, mailboxes_, policy, 256, clock_, waker_, sink_);
  }
  TaskSlot* task(TaskShape shape, std::uint8_t mask, std::uint32_t blocks = 1,
                 bool sync_start = false) {
    const std::uint32_t local = ring_.admit(0);
    TaskSlot& t = ring_.slot(local);
    TaskRecord& r = ring_.record(local);
    r.fns = r.own_fns;
    for (int s = 0; s < 3; ++s) {
      r.own_fns[s] = (mask >> s) & 1 ? &nop_kernel : nullptr;
      r.kernels[s] = 0;
    }
    r.tensor_count = 0;
    r.scalar_count = 0;
    t.record = &r;
    t.ring = &ring_;
    t.shape = shape;
    t.active_mask = mask;
    t.block_count = blocks;
    t.sync_start = sync_start;
    t.next_block = 0;
    t.dep_count = 0;
    ring_.info(local).sequence = local;
    t.subtasks_remaining.store(blocks * static_cast<std::uint32_t>(active_slot_count(mask)));
    t.release_remaining.store(1);
    t.fanout_head.store(nullptr);
    ring_.publish(local);
    return &t;
  }
  // The settings the threads platform gives its scheduler for its cores' own steps.
  static void as_threads_platform(Scheduler& s) {
    s.cores_take_queued_work(true);
    s.stage_single_core_at_latch_only(true);
    s.own_core_needs_no_doorbell(true);
    s.own_core_latches_handoff(true);
    s.pops_serialised(true);     // one scheduler thread: these tests step from one thread
    s.orchestrator_lanes(true);  // and push_ready_global from one
  }
  // A single-core AIV task that waits for `producer` (one edge, wired as the orchestrator does).
  TaskSlot* consumer_of(TaskSlot& producer) {
    TaskSlot* consumer = task(TaskShape::aiv, 2);
    graph::begin_wiring(*consumer, 1);
    const std::uint64_t node = ring_.take_dep_nodes(1);
    EXPECT_EQ(graph::wire(*consumer, producer, ring_.dep_node(node)), graph::Edge::wired);
    consumer->dep_begin = node;
    consumer->dep_count = 1;
    EXPECT_FALSE(graph::finish_wiring(*consumer, 0));
    return consumer;
  }
  // limit_handoffs_to_cpus's tests: a threads scheduler on 2 CPUs whose other runtime threads
  // `others_on_cpu` counts (`s` made with make's DualSlotPolicy{false, true, false}), and two AIV
  // producers with two consumers each (each completion leaves one leftover), the first running on
  // core 1 with core 2 idle.
  void limit_to_two_cpus(Scheduler& s, std::atomic<int>& others_on_cpu, TaskSlot* (&producers)[2]) {
    s.cores_take_queued_work(true);
    s.stage_single_core_at_latch_only(true);
    s.own_core_needs_no_doorbell(true);
    s.own_core_latches_handoff(true);
    s.limit_handoffs_to_cpus(2, &others_on_cpu);
    for (int p = 0; p < 2; ++p) {
      producers[p] = task(TaskShape::aiv, 2);
      consumer_of(*producers[p]);
      consumer_of(*producers[p]);
    }
    s.push_ready_global(producers[0]);
    s.step(0);
    EXPECT_EQ(s.core_slot(1).running.task, producers[0]);
    EXPECT_TRUE(s.core_slot(2).idle());
    waker_.doorbells.clear();
  }
  // Core 1 finishes the first producer and keeps its leftover off idle core 2 (`why`): queued
  // without a doorbell or a bell, and taken by core 1 after its next FIN.
  void expect_leftover_kept_on_core_1(Scheduler& s, const char* why) {
    ack(1);
    fin(1);
    const int bells = waker_.bells;
    EXPECT_TRUE(s.core_step(0, 1));
    TaskSlot* const here = s.core_slot(1).running.task;
    ASSERT_NE(here, nullptr);
    EXPECT_TRUE(s.core_slot(1).running.early_handoff);
    EXPECT_TRUE(s.core_slot(2).idle()) << why;
    EXPECT_TRUE(waker_.doorbells.empty());
    EXPECT_EQ(waker_.bells, bells) << "nobody else could take the queued consumer now";
    EXPECT_EQ(s.idle_cores(0, CoreType::aiv), 1);
    ack(1);
    fin(1);
    EXPECT_TRUE(s.core_step(0, 1));
    TaskSlot* const next = s.core_slot(1).running.task;
    ASSERT_NE(next, nullptr);
    EXPECT_NE(next, here);
    EXPECT_TRUE(s.core_slot(2).idle());
    ack(1);
    fin(1);
    s.core_step(0, 1);
    EXPECT_EQ(sink_.completed, 3);
    EXPECT_TRUE(s.idle(0));
  }
  // The second producer's completion gives the idle core its leftover, with a doorbell.
  void expect_idle_core_gets_leftover(Scheduler& s, TaskSlot* producer) {
    s.push_ready_global(producer);
    s.step(0);
    const int core = s.core_slot(1).running.task == producer ? 1 : 2;
    const int other = 3 - core;
    ASSERT_EQ(s.core_slot(core).running.task, producer);
    waker_.doorbells.clear();
    ack(core);
    fin(core);
    EXPECT_TRUE(s.core_step(0, core));
    ASSERT_NE(s.core_slot(core).running.task, nullptr);
    ASSERT_NE(s.core_slot(other).running.task, nullptr);
    EXPECT_EQ(waker_.doorbells, (std::vector<int>{other}));
    for (int c = 1; c <= 2; ++c) {
      ack(c);
      fin(c);
      s.core_step(0, c);
    }
    EXPECT_EQ(sink_.completed, 6);
    EXPECT_TRUE(s.idle(0));
  }
  // What a core does: latch its dispatch word (ACK), and finish (FIN).
  std::uint32_t dispatched(int core) { return mailboxes_[core].dispatch.load(); }
  void ack(int core) { mailboxes_[core].status.store(dispatched(core)); }
  void fin(int core) { mailboxes_[core].status.store(mailboxes_[core].status.load() | kFinBit); }
  // The flush tests' start: an AIV producer with three waiting consumers and an AIV blocker run on
  // thread 0's two AIV cores (the first is `first_aiv`), both latched, and the producer's core
  // finished (its step not yet taken). Returns the producer's core and the blocker's.
  std::pair<int, int> producer_finished_beside_blocker(Scheduler& s, int first_aiv) {
    TaskSlot* producer = task(TaskShape::aiv, 2);
    TaskSlot* blocker = task(TaskShape::aiv, 2);
    for (int i = 0; i < 3; ++i)
      consumer_of(*producer);
    s.push_ready_global(producer);
    s.push_ready_global(blocker);
    s.step(0);
    const int core = s.core_slot(first_aiv).running.task == producer ? first_aiv : first_aiv + 1;
    const int other = 2 * first_aiv + 1 - core;
    EXPECT_EQ(s.core_slot(core).running.task, producer);
    EXPECT_EQ(s.core_slot(other).running.task, blocker);
    EXPECT_EQ(s.idle_cores(0, CoreType::aiv), 0);
    ack(core);
    ack(other);
    fin(core);
    return {core, other};
  }

  Topology topology_;
  std::vector<Mailbox> mailboxes_;
  Ring ring_;
  FakeClock clock_;
  FakeWaker waker_;
  FakeSink sink_;
};

TEST_F(SchedulerSteps, AicTaskIsStagedAfterTheAckAndRunsWhenTheCoreFinishes) {
  Scheduler s = make(DualSlotPolicy{true, false, false});
  TaskSlot* first = task(TaskShape::aic, 1);
  TaskSlot* second = task(TaskShape::aic, 1);
  s.push_ready_global(first);
  s.push_ready_global(second);
  EXPECT_TRUE(s.step(0));
  EXPECT_EQ(s.core_slot(0).running.task, first);
  EXPECT_EQ(s.core_slot(0).pending.task, nullptr) << "no staging before the ACK";
  ack(0);
  EXPECT_TRUE(s.step(0));
  EXPECT_EQ(s.core_slot(0).pending.task, second) << "staged once the core latched";
  EXPECT_EQ(waker_.doorbells.size(), 2u);
  fin(0);  // first finished; the core now takes the staged one
  EXPECT_TRUE(s.step(0));
  EXPECT_EQ(sink_.completed, 1);
  EXPECT_EQ(s.core_slot(0).running.task, second);
  EXPECT_TRUE(s.core_slot(0).awaiting_ack);
  ack(0);
  fin(0);
  EXPECT_TRUE(s.step(0));
  EXPECT_EQ(sink_.completed, 2);
  EXPECT_TRUE(s.idle(0));
}

TEST_F(SchedulerSteps, WithoutThePolicyNothingIsStaged) {
  Scheduler s = make(DualSlotPolicy{false, false, false});
  s.push_ready_global(task(TaskShape::aic, 1));
  s.push_ready_global(task(TaskShape::aic, 1));
  s.step(0);
  ack(0);
  s.step(0);
  EXPECT_EQ(s.core_slot(0).pending.task, nullptr);
}

TEST_F(SchedulerSteps, MixGoesFirstAndWaitsForIdleCoresNotPendingSlots) {
  Scheduler s = make(DualSlotPolicy{true, true, false});
  TaskSlot* aiv = task(TaskShape::aiv, 2);
  TaskSlot* mix = task(TaskShape::mix, 0b011);
  s.push_ready_global(aiv);
  s.push_ready_global(mix);
  s.step(0);
  EXPECT_EQ(s.core_slot(0).running.task, mix) << "MIX placed before single-core work";
  EXPECT_EQ(s.core_slot(1).running.task, mix);
  EXPECT_EQ(s.core_slot(2).running.task, aiv);
  TaskSlot* mix2 = task(TaskShape::mix, 0b011);
  s.push_ready_global(mix2);
  ack(0);
  ack(1);
  s.step(0);
  EXPECT_EQ(s.core_slot(0).pending.task, nullptr) << "MIX parts are never pre-staged";
  EXPECT_EQ(s.core_slot(1).pending.task, nullptr);
  ack(2);
  fin(0);
  fin(1);
  fin(2);
  s.step(0);
  EXPECT_EQ(s.core_slot(0).running.task, mix2);
  EXPECT_EQ(s.core_slot(1).running.task, mix2);
}

TEST_F(SchedulerSteps, SyncStartBlocksAllStartInOneStepOrNotAtAll) {
  Scheduler s = make(DualSlotPolicy{true, true, false});
  TaskSlot* busy = task(TaskShape::aiv, 2);
  s.push_ready_global(busy);
  s.step(0);  // one AIV busy
  TaskSlot* together = task(TaskShape::aiv, 2, 2, true);
  s.push_ready_global(together);
  ack(1);
  s.step(0);
  EXPECT_NE(s.core_slot(2).running.task, together) << "only one AIV idle: no block may start";
  EXPECT_EQ(s.core_slot(1).pending.task, nullptr) << "start-together blocks are never staged";
  fin(1);
  for (int i = 0; i < 3; ++i)
    s.step(0);
  EXPECT_EQ(s.core_slot(1).running.task, together);
  EXPECT_EQ(s.core_slot(2).running.task, together);
}

// The threads platform's worker fast path (core_step) keeps the idle-core counts exact whichever
// way a finishing core leaves it: taking the next queued task at once (its idle transition is
// never published), finding nothing (published idle, then looked at the queue again), or
// popping an SPMD task that goes back to the full step. The orchestrator reads these counts for
// every task it makes ready (push_ready_global) and wakes nobody while they say no core is idle.
TEST_F(SchedulerSteps, CoreStepKeepsIdleCountsExact) {
  Scheduler s = make(DualSlotPolicy{false, false, false});
  s.cores_take_queued_work(true);
  s.stage_single_core_at_latch_only(true);
  EXPECT_EQ(s.idle_cores(0, CoreType::aiv), 2);
  EXPECT_EQ(s.idle_cores(0, CoreType::aic), 1);
  TaskSlot* a = task(TaskShape::aiv, 2);
  TaskSlot* b = task(TaskShape::aiv, 2);
  TaskSlot* c = task(TaskShape::aiv, 2);
  s.push_ready_global(a);
  s.push_ready_global(b);
  s.push_ready_global(c);
  s.step(0);
  EXPECT_EQ(s.core_slot(1).running.task, a);
  EXPECT_EQ(s.core_slot(2).running.task, b);
  EXPECT_EQ(s.idle_cores(0, CoreType::aiv), 0);

  // Core 1 finishes and takes c from the queue: still busy, never counted idle.
  ack(1);
  fin(1);
  EXPECT_TRUE(s.core_step(0, 1));
  EXPECT_EQ(sink_.completed, 1);
  EXPECT_EQ(s.core_slot(1).running.task, c);
  EXPECT_TRUE(s.core_slot(1).running.early_handoff);
  EXPECT_EQ(s.idle_cores(0, CoreType::aiv), 0);
  EXPECT_FALSE(s.idle(0));

  // Core 1 finishes with nothing queued: idle, and counted.
  ack(1);
  fin(1);
  EXPECT_TRUE(s.core_step(0, 1));
  EXPECT_TRUE(s.core_slot(1).idle());
  EXPECT_EQ(s.idle_cores(0, CoreType::aiv), 1);

  // Core 2 finishes and pops an SPMD task (two blocks): the full step places both blocks, on
  // core 2 and on the idle core 1.
  TaskSlot* spmd = task(TaskShape::aiv, 2, 2);
  s.push_ready_global(spmd);
  ack(2);
  fin(2);
  EXPECT_TRUE(s.core_step(0, 2));
  EXPECT_EQ(s.core_slot(1).running.task, spmd);
  EXPECT_EQ(s.core_slot(2).running.task, spmd);
  EXPECT_EQ(s.idle_cores(0, CoreType::aiv), 0);

  // Both finish with nothing queued: every count is back where it started.
  for (int core = 1; core <= 2; ++core) {
    ack(core);
    fin(core);
    s.core_step(0, core);
  }
  EXPECT_EQ(sink_.completed, 4);
  EXPECT_TRUE(s.idle(0));
  EXPECT_EQ(s.idle_cores(0, CoreType::aiv), 2);
  EXPECT_EQ(s.idle_cores(0, CoreType::aic), 1);
}

// With own_core_needs_no_doorbell (the threads platform), a dispatch that a core's own step
// (core_step) writes into that core's slots is published without a doorbell: the core is
// awake and reads its dispatch word next. A step taken by anyone else (step) still rings, and
// without the setting (the sim, whose doorbell is the core's pick-up) every dispatch rings.
TEST_F(SchedulerSteps, OwnCoreDispatchNeedsNoDoorbell) {
  for (const bool skip : {true, false}) {
    SCOPED_TRACE(skip ? "own_core_needs_no_doorbell" : "default");
    Scheduler s = make(DualSlotPolicy{false, false, false});
    s.cores_take_queued_work(true);
    s.stage_single_core_at_latch_only(true);
    s.own_core_needs_no_doorbell(skip);
    waker_.doorbells.clear();
    s.push_ready_global(task(TaskShape::aiv, 2));
    s.push_ready_global(task(TaskShape::aiv, 2));
    s.step(0);
    EXPECT_EQ(waker_.doorbells, (std::vector<int>{1, 2}));

    // Core 1 finishes and takes the next queued task itself.
    TaskSlot* next = task(TaskShape::aiv, 2);
    s.push_ready_global(next);
    ack(1);
    fin(1);
    EXPECT_TRUE(s.core_step(0, 1));
    EXPECT_EQ(s.core_slot(1).running.task, next);
    EXPECT_EQ(mailboxes_[1].dispatch.load(), s.core_slot(1).running.token);
    EXPECT_EQ(waker_.doorbells.size(), skip ? 2u : 3u);

    // Core 1 finishes with nothing queued; a task placed later by a scheduler step rings.
    ack(1);
    fin(1);
    EXPECT_TRUE(s.core_step(0, 1));
    EXPECT_TRUE(s.core_slot(1).idle());
    const std::size_t before = waker_.doorbells.size();
    s.push_ready_global(task(TaskShape::aiv, 2));
    s.step(0);
    ASSERT_EQ(waker_.doorbells.size(), before + 1);
    EXPECT_EQ(waker_.doorbells.back(), 1);
    for (int core = 1; core <= 2; ++core) {  // drain, so the next round starts idle
      ack(core);
      fin(core);
      s.core_step(0, core);
    }
    EXPECT_TRUE(s.idle(0));
  }
}

// may_have sees tasks that only a lane holds (its pusher keeps the tail to itself, so the lane's
// head cell is what says), until the last one is popped, over several rounds.
TEST(ReadyQueueLanes, MayHaveSeesTasksOnlyALaneHolds) {
  ReadyQueues queues(64);
  queues.use_lanes(true);
  std::vector<TaskSlot> tasks(3);
  TaskSlot* t = nullptr;
  for (int round = 0; round < 3; ++round) {
    EXPECT_FALSE(queues.may_have(TaskShape::aiv));
    for (TaskSlot& task : tasks) {
      task.shape = TaskShape::aiv;
      queues.push_lane(&task);
      EXPECT_TRUE(queues.may_have(TaskShape::aiv));
      EXPECT_FALSE(queues.may_have(TaskShape::aic));
    }
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      EXPECT_TRUE(queues.may_have(TaskShape::aiv)) << "still queued: " << tasks.size() - i;
      ASSERT_TRUE(queues.try_pop_serial(TaskShape::aiv, &t));
      EXPECT_EQ(t, &tasks[i]);
    }
    EXPECT_FALSE(queues.may_have(TaskShape::aiv));
  }
}

// The orchestrator's lanes (Scheduler::orchestrator_lanes) hold a bounded number of tasks; a
// push to a full lane goes to the shared queue: every task pushed is popped once, by either pop.
TEST(ReadyQueueLanes, AFullLaneSpillsToTheQueueAndEveryTaskIsPoppedOnce) {
  constexpr std::size_t kTasks = 20000;  // more than a lane holds
  ReadyQueues queues(32768);
  queues.use_lanes(true);
  std::vector<TaskSlot> tasks(kTasks);
  for (TaskSlot& t : tasks) {
    t.shape = TaskShape::aiv;
    queues.push_lane(&t);
  }
  EXPECT_TRUE(queues.may_have(TaskShape::aiv));
  EXPECT_FALSE(queues.may_have(TaskShape::aic));
  std::vector<int> seen(kTasks);
  TaskSlot* t = nullptr;
  for (std::size_t i = 0; i < kTasks; ++i) {
    ASSERT_TRUE(i % 2 == 0 ? queues.try_pop_serial(TaskShape::aiv, &t)
                           : queues.try_pop(TaskShape::aiv, &t));
    ++seen[static_cast<std::size_t>(t - tasks.data())];
  }
  EXPECT_FALSE(queues.try_pop(TaskShape::aiv, &t));
  EXPECT_FALSE(queues.may_have(TaskShape::aiv));
  for (const int s : seen)
    EXPECT_EQ(s, 1);

  // MIX tasks go to the queue: none is lost (a one-cell lane overwrote an unpopped task).
  for (std::size_t i = 0; i < 3; ++i) {
    tasks[i].shape = TaskShape::mix;
    queues.push_lane(&tasks[i]);
  }
  for (std::size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(queues.try_pop(TaskShape::mix, &t));
    EXPECT_EQ(t, &tasks[i]);
  }
  EXPECT_FALSE(queues.try_pop(TaskShape::mix, &t));
}

// A single-core task the orchestrator queues while a core of its type is idle: others_have_room
// fenced after the push, so the wake-up is the fenced one (the threads platform then reads its
// awake count with a load, not an RMW; not under ThreadSanitizer, which has no fences). A task
// that is not single-core, or a platform whose cores do not take queued work (the sim), keeps
// the plain one.
TEST_F(SchedulerSteps, WakeUpAfterTheRoomCheckIsTheFencedOne) {
  const int fenced = kThreadSanitizer ? 0 : 1;
  Scheduler s = make(DualSlotPolicy{false, false, false});
  as_threads_platform(s);
  s.push_ready_global(task(TaskShape::aiv, 2));
  EXPECT_EQ(waker_.new_work_fenced, fenced);
  EXPECT_EQ(waker_.new_work, 1 - fenced);
  s.push_ready_global(task(TaskShape::aiv, 2, /*blocks=*/2));
  EXPECT_EQ(waker_.new_work_fenced, fenced) << "SPMD: no room check, the plain wake-up";
  EXPECT_EQ(waker_.new_work, 2 - fenced);

  Scheduler sim = make(DualSlotPolicy{false, false, false});
  sim.push_ready_global(task(TaskShape::aiv, 2));
  EXPECT_EQ(waker_.new_work_fenced, fenced);
  EXPECT_EQ(waker_.new_work, 3 - fenced);
}

// A finished task is counted on the core its last subtask ran on (Engine keeps one count per
// core, so completions on different cores write different lines), whoever steps.
TEST_F(SchedulerSteps, CompletionIsCountedOnTheFinishingCore) {
  Scheduler s = make(DualSlotPolicy{false, false, false});
  s.push_ready_global(task(TaskShape::aiv, 2));
  s.push_ready_global(task(TaskShape::aiv, 2));
  s.push_ready_global(task(TaskShape::aic, 1));
  s.step(0);
  for (const int core : {2, 0, 1}) {
    ack(core);
    fin(core);
    s.step(0);
  }
  EXPECT_EQ(sink_.cores, (std::vector<int>{2, 0, 1}));
  s.push_ready_global(task(TaskShape::aiv, 2));
  s.step(0);
  const int core = s.core_slot(1).running.task != nullptr ? 1 : 2;
  ack(core);
  fin(core);
  s.core_step(0, core);
  EXPECT_EQ(sink_.cores.back(), core);
  EXPECT_EQ(sink_.completed, 4);
  EXPECT_TRUE(s.idle(0));
}

// A task completes once, when its last subtask finishes, whether that subtask is seen by a full
// step or by a core's own step: the completion reads the remaining count and skips the RMW when
// it is 1 (finish_subtask), so the counts of a MIX task's three parts and of an SPMD task's
// blocks must still end in exactly one completion each, after the last part.
TEST_F(SchedulerSteps, ATaskOfSeveralSubtasksCompletesOnceAfterTheLast) {
  Scheduler s = make(DualSlotPolicy{false, false, false});
  TaskSlot* mix = task(TaskShape::mix, 7);
  s.push_ready_global(mix);
  s.step(0);
  for (const int core : {0, 1, 2})
    ASSERT_EQ(s.core_slot(core).running.task, mix);
  for (const int core : {0, 1, 2})
    ack(core);
  s.step(0);
  fin(1);
  s.step(0);
  EXPECT_EQ(sink_.completed, 0) << "two parts still run";
  EXPECT_EQ(mix->state.load(), TaskState::ready);
  fin(0);
  s.core_step(0, 0);
  EXPECT_EQ(sink_.completed, 0) << "one part still runs";
  fin(2);
  s.core_step(0, 2);
  EXPECT_EQ(sink_.completed, 1);
  EXPECT_EQ(mix->release_remaining.load(), 0) << "completed, then released";
  EXPECT_TRUE(s.idle(0));
  // An SPMD task of two AIV blocks: one per AIV core; the second block's finish completes it.
  TaskSlot* spmd = task(TaskShape::aiv, 2, 2);
  s.push_ready_global(spmd);
  s.step(0);
  ASSERT_EQ(s.core_slot(1).running.task, spmd);
  ASSERT_EQ(s.core_slot(2).running.task, spmd);
  ack(1);
  ack(2);
  fin(2);
  s.core_step(0, 2);
  EXPECT_EQ(sink_.completed, 1) << "the other block still runs";
  fin(1);
  s.core_step(0, 1);
  EXPECT_EQ(sink_.completed, 2);
  EXPECT_EQ(spmd->release_remaining.load(), 0);
  // A task of one subtask completes at its only finish.
  s.push_ready_global(task(TaskShape::aic, 1));
  s.step(0);
  ack(0);
  fin(0);
  s.core_step(0, 0);
  EXPECT_EQ(sink_.completed, 3);
  EXPECT_TRUE(s.idle(0));
}

// With own_core_latches_handoff (the threads platform), a task that a core's own step
// (core_step) places in that core's running slot, or a single-core task it stages into its own
// pending slot (stage_after_latch), is published latched: the core takes it without a
// compare-exchange (nothing takes those back). A dispatch by anyone else's step, and every
// dispatch without the setting, stay unlatched: the core latches those itself.
TEST_F(SchedulerSteps, OwnHandoffIsPublishedLatched) {
  for (const bool latch : {true, false}) {
    SCOPED_TRACE(latch ? "own_core_latches_handoff" : "default");
    Scheduler s = make(DualSlotPolicy{false, true, false});
    s.cores_take_queued_work(true);
    s.stage_single_core_at_latch_only(true);
    s.own_core_needs_no_doorbell(true);
    s.own_core_latches_handoff(latch);
    TaskSlot* a = task(TaskShape::aiv, 2);
    TaskSlot* b = task(TaskShape::aiv, 2);
    s.push_ready_global(a);
    s.push_ready_global(b);
    s.step(0);  // a scheduler step: both AIV cores, unlatched
    EXPECT_EQ(s.core_slot(1).running.task, a);
    EXPECT_EQ(mailboxes_[1].dispatch.load(), s.core_slot(1).running.token);
    EXPECT_EQ(mailboxes_[2].dispatch.load(), s.core_slot(2).running.token);

    // Core 1 finishes and its own step hands it the next queued task.
    TaskSlot* c = task(TaskShape::aiv, 2);
    s.push_ready_global(c);
    ack(1);
    fin(1);
    EXPECT_TRUE(s.core_step(0, 1));
    EXPECT_EQ(s.core_slot(1).running.task, c);
    EXPECT_TRUE(s.core_slot(1).awaiting_ack) << "the core still ACKs";
    const std::uint32_t token = s.core_slot(1).running.token;
    EXPECT_EQ(mailboxes_[1].dispatch.load(), latch ? (token | kLatchedBit) : token);

    // The core ACKs (token without the bit); a queued task is then staged into its pending slot
    // by its own latch step, latched as the hand-off was.
    mailboxes_[1].status.store(token);
    TaskSlot* d = task(TaskShape::aiv, 2);
    s.push_ready_global(d);
    ack(2);
    EXPECT_TRUE(s.stage_after_latch(0, 1));
    EXPECT_EQ(s.core_slot(1).pending.task, d);
    const std::uint32_t pending = s.core_slot(1).pending.token;
    EXPECT_NE(pending, token);
    EXPECT_EQ(mailboxes_[1].dispatch.load(), latch ? (pending | kLatchedBit) : pending);

    // Drain: c finishes, d moves up (the core ACKs it), then d and b finish.
    fin(1);
    s.core_step(0, 1);
    EXPECT_EQ(s.core_slot(1).running.task, d);
    mailboxes_[1].status.store(pending);
    fin(1);
    s.core_step(0, 1);
    fin(2);
    s.core_step(0, 2);
    EXPECT_TRUE(s.idle(0));
    EXPECT_EQ(sink_.completed, 4);
    sink_.completed = 0;
  }
}

// core_step times one call in 16 (Scheduler::kCoreStepSample) and counts it 16 times in
// busy_cycles (RunStats::scheduler_us); the others take an untimed copy of the step. So the 15
// core steps after a full step leave busy_cycles as the full step left it, and the 16th adds to
// it; each of them still completes its task and hands the core the next queued one.
TEST_F(SchedulerSteps, CoreStepTimesOneCallInSixteenAndOnlyThatOne) {
  Scheduler s = make(DualSlotPolicy{false, false, false});
  as_threads_platform(s);
  TaskSlot* first = task(TaskShape::aic, 1);
  s.push_ready_global(first);
  EXPECT_TRUE(s.step(0));
  EXPECT_EQ(s.core_slot(0).running.task, first);
  const std::uint64_t after_full_step = s.busy_cycles(0);
  for (int call = 1; call <= 16; ++call) {
    SCOPED_TRACE(call);
    TaskSlot* next = task(TaskShape::aic, 1);
    s.push_ready_global(next);
    mailboxes_[0].status.store(s.core_slot(0).running.token);  // ACK
    fin(0);
    EXPECT_TRUE(s.core_step(0, 0));
    EXPECT_EQ(s.core_slot(0).running.task, next) << "handed to the finishing core";
    EXPECT_EQ(sink_.completed, call);
    if (call < 16) {
      EXPECT_EQ(s.busy_cycles(0), after_full_step) << "an untimed call";
    }
  }
  EXPECT_GT(s.busy_cycles(0), after_full_step) << "the 16th call is timed";
}

// A finishing core's own step (core_step) writes the task it hands that core straight into the
// core's slot (no dispatch_block): the payload must be what dispatch_block would have written,
// the AIC core its cluster's AIC slot, each AIV core the AIV slot and its own sub-block. The core
// runs it from that buffer in place (take_own_dispatch returns the buffer, not a copy), which
// holds because a pending dispatch staged behind it goes to the other buffer and leaves this
// one as written.
TEST_F(SchedulerSteps, OwnHandoffWritesThePayloadItsCoreRunsInPlace) {
  Scheduler s = make(DualSlotPolicy{true, true, false});
  s.cores_take_queued_work(true);
  s.stage_single_core_at_latch_only(true);
  s.own_core_needs_no_doorbell(true);
  s.own_core_latches_handoff(true);
  s.push_ready_global(task(TaskShape::aic, 1));
  s.push_ready_global(task(TaskShape::aiv, 2));
  s.push_ready_global(task(TaskShape::aiv, 2));
  s.step(0);  // a scheduler step places one task on each core
  // A kernel id per slot, so the slot the dispatch read shows.
  auto numbered = [](TaskSlot* t) {
    for (int slot = 0; slot < 3; ++slot)
      const_cast<TaskRecord*>(t->record)->kernels[slot] = static_cast<KernelId>(10 + slot);
    return t;
  };
  for (const int core : {0, 1, 2}) {
    SCOPED_TRACE(core);
    const bool aic = core == 0;
    TaskSlot* next = numbered(task(aic ? TaskShape::aic : TaskShape::aiv, aic ? 1 : 2));
    s.push_ready_global(next);
    ack(core);
    fin(core);
    EXPECT_TRUE(s.core_step(0, core));
    const Subtask& run = s.core_slot(core).running;
    ASSERT_EQ(run.task, next);
    EXPECT_TRUE(run.early_handoff);
    EXPECT_EQ(run.slot, aic ? kSlotAic : kSlotAiv0);
    const std::uint32_t token = run.token;
    EXPECT_EQ(mailboxes_[core].dispatch.load(), token | kLatchedBit);
    const DispatchPayload& p = take_own_dispatch(mailboxes_[core], token);
    EXPECT_EQ(&p, &mailboxes_[core].payload[token & 1]) << "in place, not a copy";
    EXPECT_EQ(mailboxes_[core].status.load(), token) << "the ACK";
    EXPECT_EQ(p.fn, next->record->fns[aic ? kSlotAic : kSlotAiv0]);
    EXPECT_EQ(p.kernel, static_cast<KernelId>(aic ? 10 : 11));
    EXPECT_EQ(p.record, next->record);
    EXPECT_EQ(p.task, next->id);
    EXPECT_EQ(p.block_index, 0u);
    EXPECT_EQ(p.block_count, 1u);
    EXPECT_EQ(p.sub_block, aic ? 0u : static_cast<std::uint32_t>(core - 1));
    EXPECT_EQ(p.cluster, 0u);

    // A task staged behind it (the core's latch step) goes to the other buffer.
    TaskSlot* behind = task(aic ? TaskShape::aic : TaskShape::aiv, aic ? 1 : 2);
    s.push_ready_global(behind);
    EXPECT_TRUE(s.stage_after_latch(0, core));
    ASSERT_EQ(s.core_slot(core).pending.task, behind);
    EXPECT_NE(s.core_slot(core).pending.token & 1, token & 1);
    EXPECT_EQ(p.record, next->record) << "the running payload is untouched";
    EXPECT_EQ(p.kernel, static_cast<KernelId>(aic ? 10 : 11));
  }
  // Each core finishes both (it latched the pending dispatch, then FIN); its step retires them.
  for (const int core : {0, 1, 2}) {
    ack(core);
    fin(core);
    s.core_step(0, core);
  }
  EXPECT_TRUE(s.idle(0));
  EXPECT_EQ(sink_.completed, 9);
}

// A single-core task that a core's own step staged into its pending slot is published latched
// (own_core_latches_handoff) and taken right after the core's FIN with the ACK alone
// (take_own_dispatch, the threads platform's core loop), running from its buffer in place. The
// core's step after that retires the finished subtask, moves the taken one up and stages the
// next task behind it: into the other buffer, so the one the core runs from stays as written
// until its own FIN.
TEST_F(SchedulerSteps, APendingDispatchLatchedInPlaceStaysAsWrittenThroughTheNextStaging) {
  Scheduler s = make(DualSlotPolicy{true, true, false});
  as_threads_platform(s);
  TaskSlot* first = task(TaskShape::aiv, 2);
  s.push_ready_global(first);
  s.push_ready_global(task(TaskShape::aiv, 2));
  s.step(0);  // one task on each AIV core
  const int core = s.core_slot(1).running.task == first ? 1 : 2;
  ASSERT_EQ(s.core_slot(core).running.task, first);
  ack(core);
  TaskSlot* second = task(TaskShape::aiv, 2);
  s.push_ready_global(second);
  ASSERT_TRUE(s.stage_after_latch(0, core));
  const std::uint32_t token = s.core_slot(core).pending.token;
  ASSERT_EQ(dispatched(core), token | kLatchedBit) << "staged by its own step: latched for it";

  fin(core);  // `first` ends; the core takes the waiting dispatch before its step
  const DispatchPayload* job = &take_own_dispatch(mailboxes_[core], token);
  ASSERT_EQ(job, &mailboxes_[core].payload[token & 1]);
  EXPECT_EQ(mailboxes_[core].status.load(), token) << "the ACK";
  EXPECT_EQ(job->task, second->id);
  EXPECT_EQ(job->record, second->record);
  EXPECT_EQ(job->sub_block, static_cast<std::uint32_t>(core - 1));

  TaskSlot* third = task(TaskShape::aiv, 2);
  s.push_ready_global(third);
  EXPECT_TRUE(s.core_step(0, core));
  EXPECT_EQ(sink_.completed, 1) << "`first` retired";
  EXPECT_EQ(s.core_slot(core).running.task, second);
  ASSERT_EQ(s.core_slot(core).pending.task, third) << "staged behind the taken one";
  EXPECT_NE(s.core_slot(core).pending.token & 1, token & 1) << "into the other buffer";
  EXPECT_EQ(dispatched(core), s.core_slot(core).pending.token | kLatchedBit);
  EXPECT_EQ(job->task, second->id) << "the running payload is untouched";
  EXPECT_EQ(job->record, second->record);
  EXPECT_EQ(job->fn, second->record->fns[kSlotAiv0]);
}

// A core whose completion makes several single-core tasks ready while another core of its
// thread is idle (the threads platform's core_step) takes one itself and places the next
// straight on the idle core, without the full step's polls of every core: one status read for
// the whole step. The rest waits in the queue for the next core to finish, without a bell for
// the scheduler thread (no other thread has room; the full step's idle pass rang none either).
TEST_F(SchedulerSteps, CoreStepPlacesLeftoversOnAnIdleCoreWithoutAFullStep) {
  Scheduler s = make(DualSlotPolicy{false, true, false});
  s.cores_take_queued_work(true);
  s.stage_single_core_at_latch_only(true);
  s.own_core_needs_no_doorbell(true);
  s.own_core_latches_handoff(true);
  TaskSlot* producer = task(TaskShape::aiv, 2);
  for (int i = 0; i < 3; ++i)
    consumer_of(*producer);
  s.push_ready_global(producer);
  s.step(0);
  ASSERT_EQ(s.core_slot(1).running.task, producer);
  ASSERT_TRUE(s.core_slot(2).idle());
  waker_.doorbells.clear();

  ack(1);
  fin(1);
  const std::uint64_t polls = s.counters(0).polls;
  const int bells = waker_.bells;
  EXPECT_TRUE(s.core_step(0, 1));
  EXPECT_EQ(s.counters(0).polls - polls, 1u) << "only the finishing core's status was read";
  EXPECT_EQ(waker_.bells, bells) << "nobody else could take the queued consumer now";
  EXPECT_EQ(sink_.completed, 1);
  TaskSlot* const here = s.core_slot(1).running.task;
  TaskSlot* const there = s.core_slot(2).running.task;
  ASSERT_NE(here, nullptr);
  ASSERT_NE(there, nullptr);
  EXPECT_NE(here, there);
  EXPECT_TRUE(s.core_slot(1).running.early_handoff);
  EXPECT_EQ(waker_.doorbells, (std::vector<int>{2})) << "the idle core is rung, the own one not";
  EXPECT_EQ(s.idle_cores(0, CoreType::aiv), 0);

  // The third consumer was queued: core 2 takes it when it finishes.
  ack(2);
  fin(2);
  EXPECT_TRUE(s.core_step(0, 2));
  TaskSlot* const third = s.core_slot(2).running.task;
  ASSERT_NE(third, nullptr);
  EXPECT_NE(third, here);
  EXPECT_NE(third, there);
  for (int round = 0; round < 2; ++round) {
    for (int core = 1; core <= 2; ++core) {
      if (s.core_slot(core).idle()) continue;
      if (s.core_slot(core).awaiting_ack) ack(core);
      fin(core);
      s.core_step(0, core);
    }
  }
  EXPECT_EQ(sink_.completed, 4);
  EXPECT_TRUE(s.idle(0));
  EXPECT_EQ(s.idle_cores(0, CoreType::aiv), 2);
}

// A completion that makes single-core tasks ready while every core of their type is busy (the
// threads platform: cores take queued work): the finishing core takes one and the rest is queued
// without a bell for the scheduler thread, whose step could place nothing; the next core to
// finish takes it. Before, that flush rang on every such completion and kept the scheduler
// thread runnable through the peers' runs. (The sim's full step queues such leftovers in its
// dispatch pass, without a bell, as before.)
TEST_F(SchedulerSteps, LeftoversWithEveryCoreBusyRingNoBell) {
  Scheduler s = make(DualSlotPolicy{false, false, false});  // no pending slots
  as_threads_platform(s);
  const auto [core, other] = producer_finished_beside_blocker(s, 1);
  ASSERT_FALSE(HasFailure());
  TaskSlot* const blocker = s.core_slot(other).running.task;
  const int bells = waker_.bells;
  EXPECT_TRUE(s.core_step(0, core));
  EXPECT_EQ(waker_.bells, bells) << "no idle AIV core: the next FINs take the leftovers";
  EXPECT_TRUE(s.core_slot(core).running.early_handoff);
  EXPECT_EQ(s.core_slot(other).running.task, blocker);

  // The other core finishes and takes a queued consumer, then the first core the last one.
  fin(other);
  EXPECT_TRUE(s.core_step(0, other));
  EXPECT_TRUE(s.core_slot(other).running.early_handoff);
  ack(core);
  fin(core);
  EXPECT_TRUE(s.core_step(0, core));
  EXPECT_TRUE(s.core_slot(core).running.early_handoff);
  EXPECT_EQ(waker_.bells, bells);
  for (const int c : {core, other}) {
    ack(c);
    fin(c);
    s.core_step(0, c);
  }
  EXPECT_TRUE(s.idle(0));
  EXPECT_EQ(sink_.completed, 5);
  EXPECT_EQ(waker_.bells, bells);
}

// The same completion while another scheduler thread has an idle core of the type: the flush's
// room check after the pushes sees it and rings, so that thread's step takes a leftover now.
TEST_F(SchedulerSteps, LeftoversRingWhenAnotherThreadHasAnIdleCore) {
  use_topology(Topology{2, 2});  // cluster c is thread c's: AIV cores 2, 3 (thread 0), 4, 5
  Scheduler s = make(DualSlotPolicy{false, false, false});
  as_threads_platform(s);
  const auto [core, other] = producer_finished_beside_blocker(s, 2);
  ASSERT_FALSE(HasFailure());
  ASSERT_EQ(s.idle_cores(1, CoreType::aiv), 2);
  const int bells = waker_.bells;
  EXPECT_TRUE(s.core_step(0, core));
  EXPECT_GT(waker_.bells, bells) << "thread 1 has idle AIV cores for the leftovers";
  s.step(1);
  EXPECT_NE(s.core_slot(4).running.task, nullptr);
  EXPECT_NE(s.core_slot(5).running.task, nullptr);
  for (int round = 0; round < 2; ++round) {
    for (const int c : {core, other, 4, 5}) {
      if (s.core_slot(c).idle()) continue;
      if (s.core_slot(c).awaiting_ack) ack(c);
      fin(c);
      s.core_step(c < 4 ? 0 : 1, c);
    }
  }
  EXPECT_TRUE(s.idle(0));
  EXPECT_TRUE(s.idle(1));
  EXPECT_EQ(sink_.completed, 5);
}

// limit_handoffs_to_cpus (threads on a host with fewer CPUs than runtime threads): a finishing
// core's leftovers go to an idle core only while a CPU is free for it. With 2 CPUs and another
// runtime thread on one (a submitting orchestrator), the finishing core's own next task fills
// the other: the rest is queued, without a doorbell or a bell, and the finishing core takes it
// after its next FIN. With that CPU free again, the idle core gets its share as before.
TEST_F(SchedulerSteps, CoreStepKeepsLeftoversOffAnIdleCoreWithNoCpuForIt) {
  std::atomic<int> others_on_cpu{1};
  TaskSlot* producers[2];
  Scheduler s = make(DualSlotPolicy{false, true, false});
  limit_to_two_cpus(s, others_on_cpu, producers);
  ASSERT_TRUE(s.limits_handoffs());
  expect_leftover_kept_on_core_1(s, "no CPU for the idle core: the leftover stays off it");
  // The orchestrator parked: a CPU is free for the idle core, which gets the second leftover.
  others_on_cpu.store(0);
  expect_idle_core_gets_leftover(s, producers[1]);
}

// note_short_kernels (threads, with limit_handoffs_to_cpus): while the finishing core's kernels
// are short, its leftovers stay off an idle core even with a CPU free for it (the orchestrator
// parked): they are queued without a doorbell or a bell, and the finishing core takes them after
// its next FIN. With long kernels the idle core gets its share, as without the note.
TEST_F(SchedulerSteps, CoreStepKeepsLeftoversOfShortKernelsOffAnIdleCore) {
  std::atomic<int> others_on_cpu{0};  // a CPU is free for the idle core
  TaskSlot* producers[2];
  Scheduler s = make(DualSlotPolicy{false, true, false});
  limit_to_two_cpus(s, others_on_cpu, producers);
  EXPECT_FALSE(s.short_kernels(1)) << "long until a core says otherwise";
  s.note_short_kernels(1, true);
  EXPECT_TRUE(s.short_kernels(1));
  EXPECT_FALSE(s.short_kernels(2));
  expect_leftover_kept_on_core_1(s, "short kernels: the leftover stays off the idle core");
  // Long kernels again: the idle core gets the second producer's leftover.
  s.note_short_kernels(1, false);
  s.note_short_kernels(2, false);
  expect_idle_core_gets_leftover(s, producers[1]);
}

// core_step's single-task hand-off (threads): a finished task whose completion makes exactly one
// consumer ready, of this core's shape, hands it straight to the finishing core (its payload and
// running slot written once, published latched, the core never shown idle); the counters say so.
// Two consumers, or one of the other core type, go the generic way: the newest one made ready
// runs here (as the local stack's pop took it), the other on the thread's idle core.
TEST_F(SchedulerSteps, ASingleConsumerIsHandedStraightToItsProducersCore) {
  Scheduler s = make(DualSlotPolicy{});
  as_threads_platform(s);
  TaskSlot* first = task(TaskShape::aiv, 2);
  TaskSlot* second = consumer_of(*first);
  TaskSlot* third = consumer_of(*second);
  s.push_ready_global(first);
  s.step(0);
  const int core = s.core_slot(1).running.task == first ? 1 : 2;
  ASSERT_EQ(s.core_slot(core).running.task, first);
  ASSERT_EQ(s.idle_cores(0, CoreType::aiv), 1);
  std::uint32_t token = dispatched(core);
  for (TaskSlot* next : {second, third}) {
    mailboxes_[core].status.store(token & kTokenMask);  // the ACK
    fin(core);
    const Scheduler::StepCounters before = s.counters(0);
    ASSERT_TRUE(s.core_step(0, core));
    const Scheduler::StepCounters& after = s.counters(0);
    EXPECT_EQ(after.single_handoffs - before.single_handoffs, 1u);
    EXPECT_EQ(after.pops - before.pops, 1u);
    EXPECT_EQ(after.dispatches - before.dispatches, 1u);
    EXPECT_EQ(after.tasks_completed - before.tasks_completed, 1u);
    EXPECT_EQ(after.edges - before.edges, 1u);
    const Subtask& running = s.core_slot(core).running;
    ASSERT_EQ(running.task, next) << "on the core that finished its producer";
    EXPECT_TRUE(running.early_handoff);
    EXPECT_FALSE(running.staged);
    EXPECT_TRUE(s.core_slot(core).awaiting_ack);
    EXPECT_EQ(s.idle_cores(0, CoreType::aiv), 1) << "never shown idle: the other core alone";
    EXPECT_EQ(next->state.load(), TaskState::ready);
    EXPECT_NE(running.token, token & kTokenMask);
    token = running.token;
    ASSERT_EQ(dispatched(core), token | kLatchedBit) << "published latched, for its own core";
    const DispatchPayload& p = take_own_dispatch(mailboxes_[core], token);
    EXPECT_EQ(p.task, next->id);
    EXPECT_EQ(p.record, next->record);
    EXPECT_EQ(p.fn, next->record->fns[kSlotAiv0]);
    EXPECT_EQ(p.block_index, 0u);
    EXPECT_EQ(p.block_count, 1u);
    EXPECT_EQ(p.sub_block, static_cast<std::uint32_t>(core - 1));
    EXPECT_EQ(p.cluster, 0u);
  }
  fin(core);
  EXPECT_TRUE(s.core_step(0, core));
  EXPECT_EQ(s.counters(0).single_handoffs, 2u);
  EXPECT_EQ(sink_.completed, 3);
  EXPECT_TRUE(s.idle(0));
  EXPECT_EQ(s.idle_cores(0, CoreType::aiv), 2);
}

TEST_F(SchedulerSteps, TwoConsumersOrOneOfTheOtherTypeGoTheGenericWay) {
  Scheduler s = make(DualSlotPolicy{});
  as_threads_platform(s);
  TaskSlot* producer = task(TaskShape::aiv, 2);
  TaskSlot* older = consumer_of(*producer);  // wired first: made ready last (the list is LIFO)
  TaskSlot* newer = consumer_of(*producer);
  s.push_ready_global(producer);
  s.step(0);
  const int core = s.core_slot(1).running.task == producer ? 1 : 2;
  const int other = 3 - core;
  ack(core);
  fin(core);
  ASSERT_TRUE(s.core_step(0, core));
  EXPECT_EQ(s.counters(0).single_handoffs, 0u);
  EXPECT_EQ(s.core_slot(core).running.task, older) << "the newest made ready, as pop_ready";
  EXPECT_TRUE(s.core_slot(core).running.early_handoff);
  EXPECT_EQ(s.core_slot(other).running.task, newer) << "the other on the idle core";
  for (const int c : {core, other}) {
    ack(c);
    fin(c);
    s.core_step(0, c);
  }
  EXPECT_EQ(sink_.completed, 3);
  ASSERT_TRUE(s.idle(0));

  // An AIC consumer of an AIV producer: made ready, not run on the AIV core.
  TaskSlot* aiv = task(TaskShape::aiv, 2);
  TaskSlot* aic = task(TaskShape::aic, 1);
  graph::begin_wiring(*aic, 1);
  const std::uint64_t node = ring_.take_dep_nodes(1);
  ASSERT_EQ(graph::wire(*aic, *aiv, ring_.dep_node(node)), graph::Edge::wired);
  aic->dep_begin = node;
  aic->dep_count = 1;
  ASSERT_FALSE(graph::finish_wiring(*aic, 0));
  s.push_ready_global(aiv);
  s.step(0);
  const int aiv_core = s.core_slot(1).running.task == aiv ? 1 : 2;
  ack(aiv_core);
  fin(aiv_core);
  ASSERT_TRUE(s.core_step(0, aiv_core));
  EXPECT_EQ(s.counters(0).single_handoffs, 0u);
  EXPECT_TRUE(s.core_slot(aiv_core).idle());
  EXPECT_EQ(s.core_slot(0).running.task, aic) << "placed on the idle AIC core";
  ack(0);
  fin(0);
  s.core_step(0, 0);
  EXPECT_EQ(sink_.completed, 5);
  EXPECT_TRUE(s.idle(0));
  EXPECT_EQ(s.idle_cores(0, CoreType::aiv), 2);
  EXPECT_EQ(s.idle_cores(0, CoreType::aic), 1);
}

// A recorded run keeps the generic way (its events need the slot table's times).
TEST_F(SchedulerSteps, ARecordingSchedulerTakesNoSingleHandoff) {
  clock_.record = true;
  Scheduler s = make(DualSlotPolicy{});
  as_threads_platform(s);
  TaskSlot* first = task(TaskShape::aiv, 2);
  TaskSlot* second = consumer_of(*first);
  s.push_ready_global(first);
  s.step(0);
  const int core = s.core_slot(1).running.task == first ? 1 : 2;
  ack(core);
  fin(core);
  ASSERT_TRUE(s.core_step(0, core));
  EXPECT_EQ(s.core_slot(core).running.task, second);
  EXPECT_EQ(s.counters(0).single_handoffs, 0u);
  ASSERT_EQ(s.subtask_events(0).size(), 1u);
  EXPECT_EQ(s.completions(0).size(), 1u);
}

// cores_take_back_unlatched (threads): a core whose completion step finds nothing to run takes
// back a task its own earlier step placed on another idle core that has not latched it yet (that
// core's thread had no CPU since) and runs it itself; the other core cannot latch it afterwards
// and reads its word as nothing new. A task the other core latched (ACK) stays there, and so does
// one a full step placed (the orchestrator's placements as it submits).
TEST_F(SchedulerSteps, AnIdleCoreTakesBackATaskAnotherCoreHasNotLatched) {
  Scheduler s = make(DualSlotPolicy{false, true, false});
  as_threads_platform(s);
  s.cores_take_back_unlatched(true);
  // What a core thread does: latch (ACK with the bare token), finish (FIN), step.
  auto ack_token = [&](int core) { mailboxes_[core].status.store(dispatched(core) & kTokenMask); };
  auto finish = [&](int core) {
    ack_token(core);
    fin(core);
    return s.core_step(0, core);
  };
  // A first task on each AIV core, so core 2 has a last finished token of its own.
  TaskSlot* warm[2] = {task(TaskShape::aiv, 2), task(TaskShape::aiv, 2)};
  s.push_ready_global(warm[0]);
  s.push_ready_global(warm[1]);
  s.step(0);
  ASSERT_FALSE(s.core_slot(1).idle());
  ASSERT_FALSE(s.core_slot(2).idle());
  // Placed by a full step (the orchestrator's or a scheduler thread's), not core 1's: core 1,
  // idle after its FIN, leaves it to core 2 even though core 2 has not latched it.
  finish(1);
  EXPECT_EQ(s.core_slot(2).running.task, warm[1]);
  EXPECT_EQ(s.counters(0).unlatched_taken_back, 0u);
  finish(2);
  ASSERT_TRUE(s.idle(0));
  const std::uint32_t core2_last = mailboxes_[2].status.load() & kTokenMask;

  for (int round = 0; round < 2; ++round) {
    const bool latched_in_time = round == 1;
    TaskSlot* producer = task(TaskShape::aiv, 2);
    consumer_of(*producer);
    consumer_of(*producer);
    s.push_ready_global(producer);
    s.step(0);
    ASSERT_EQ(s.core_slot(1).running.task, producer);
    // Core 1 finishes the producer: it keeps one consumer, the other goes to idle core 2.
    EXPECT_TRUE(finish(1));
    TaskSlot* const kept = s.core_slot(1).running.task;
    TaskSlot* const placed = s.core_slot(2).running.task;
    ASSERT_NE(kept, nullptr);
    ASSERT_NE(placed, nullptr);
    ASSERT_NE(kept, placed);
    const std::uint32_t placed_token = dispatched(2);
    ASSERT_EQ(placed_token & kLatchedBit, 0u);
    const std::uint64_t taken_before = s.counters(0).unlatched_taken_back;
    if (latched_in_time) {
      // The first dispatch to core 2 since the take-back: its payload buffer is the one its last
      // FIN did not write (parity opposite to that token's), as for every dispatch to an idle core.
      EXPECT_NE(placed_token & 1, core2_last & 1);
      ASSERT_TRUE(latch_dispatch(mailboxes_[2], placed_token).has_value());  // ACK
    }
    // Core 1 finishes its consumer and finds the queue empty.
    EXPECT_TRUE(finish(1));
    if (latched_in_time) {
      EXPECT_EQ(s.counters(0).unlatched_taken_back, taken_before) << "latched: it runs there";
      EXPECT_EQ(s.core_slot(2).running.task, placed);
      EXPECT_TRUE(s.core_slot(1).idle());
      EXPECT_TRUE(finish(2));
    } else {
      EXPECT_EQ(s.counters(0).unlatched_taken_back, taken_before + 1);
      EXPECT_TRUE(s.core_slot(2).idle());
      EXPECT_EQ(s.core_slot(1).running.task, placed);
      EXPECT_TRUE(s.core_slot(1).running.early_handoff);
      EXPECT_EQ(dispatched(1) & kLatchedBit, kLatchedBit) << "published latched for core 1";
      EXPECT_EQ(s.idle_cores(0, CoreType::aiv), 1);
      // Core 2 reads its own last token, latched: nothing new; and it can no longer claim it.
      EXPECT_EQ(dispatched(2), core2_last | kLatchedBit);
      EXPECT_FALSE(latch_dispatch(mailboxes_[2], placed_token).has_value());
      EXPECT_TRUE(finish(1));
    }
    EXPECT_TRUE(s.idle(0));
    EXPECT_EQ(s.idle_cores(0, CoreType::aiv), 2);
  }
  EXPECT_EQ(sink_.completed, 2 + 2 * 3) << "every task ran and completed once";
}

// A finishing core's own step (core_step) hands MIX work to the full step: a MIX task queued
// while the cluster was busy is placed on the whole cluster when its last busy core finishes,
// not left in the queue by the single-core fast path. Before any MIX task in the run, the fast
// path skips its looks at MIX work (mix_seen_): a single-core graph is unaffected.
TEST_F(SchedulerSteps, CoreStepTakesTheFullStepForQueuedMixWork) {
  Scheduler s = make(DualSlotPolicy{false, true, false});
  as_threads_platform(s);
  TaskSlot* producer = task(TaskShape::aiv, 2);
  TaskSlot* consumer = consumer_of(*producer);
  s.push_ready_global(producer);
  s.step(0);
  ASSERT_EQ(s.core_slot(1).running.task, producer);
  ack(1);
  fin(1);
  EXPECT_TRUE(s.core_step(0, 1));
  EXPECT_EQ(s.core_slot(1).running.task, consumer) << "no MIX yet: the fast path's hand-off";
  EXPECT_TRUE(s.core_slot(1).running.early_handoff);

  TaskSlot* mix = task(TaskShape::mix, 0b111);
  s.push_ready_global(mix);
  EXPECT_TRUE(s.core_slot(0).idle()) << "the cluster is busy: the MIX task waits";
  mailboxes_[1].status.store(dispatched(1) & kTokenMask);  // ACK
  fin(1);
  EXPECT_TRUE(s.core_step(0, 1));
  EXPECT_EQ(s.core_slot(0).running.task, mix);
  EXPECT_EQ(s.core_slot(1).running.task, mix);
  EXPECT_EQ(s.core_slot(2).running.task, mix);
  for (int c = 0; c < 3; ++c) {
    ack(c);
    fin(c);
  }
  s.step(0);
  EXPECT_EQ(sink_.completed, 3);
  EXPECT_TRUE(s.idle(0));
}

// A core's latch looks for MIX work (mix_may_wait) before it takes its thread's gate, and steps
// in full when it sees some; a MIX task queued after that look (or popped by another step then
// and put back) waits when stage_after_latch runs. It must not stage single-core work into the
// latching core's pending slot then ("Not starved", docs/design.md): it takes the full step,
// which stages the MIX block on the cluster (AIC idle, both AIV cores stageable).
TEST_F(SchedulerSteps, StageAfterLatchLeavesPendingSlotsToAWaitingMixTask) {
  Scheduler s = make(DualSlotPolicy{false, true, true});
  as_threads_platform(s);
  TaskSlot* first = task(TaskShape::aiv, 2);
  TaskSlot* second = task(TaskShape::aiv, 2);
  s.push_ready_global(first);
  s.push_ready_global(second);
  s.step(0);
  ASSERT_NE(s.core_slot(1).running.task, nullptr);
  ASSERT_NE(s.core_slot(2).running.task, nullptr);
  ack(1);
  ack(2);
  s.step(0);  // both ACKs seen: both AIV cores are stageable, the AIC core idle
  ASSERT_TRUE(s.core_slot(1).stageable());
  ASSERT_TRUE(s.core_slot(2).stageable());
  TaskSlot* mix = task(TaskShape::mix, 0b111);
  TaskSlot* stream = task(TaskShape::aiv, 2);
  s.push_ready_global(mix);
  s.push_ready_global(stream);
  s.stage_after_latch(0, 1);
  EXPECT_NE(s.core_slot(1).pending.task, stream) << "an AIV task staged while a MIX task waits";
  EXPECT_EQ(s.core_slot(0).running.task, mix);
  EXPECT_EQ(s.core_slot(1).pending.task, mix);
  EXPECT_EQ(s.core_slot(2).pending.task, mix);
}

// "Reserved for MIX" (docs/design.md): a MIX task over the whole cluster waits while both AIV
// cores run a stream of AIV tasks (no MIX staging: it needs the three cores idle at once). The
// first step that cannot place it only passes it over; the second holds the cluster for it. From
// then on the AIV cores take no new AIV task, in their running or pending slots, though AIV tasks
// are queued: each runs what it was given before (a task the chip model's full step staged
// behind its running one at the first step included), and the MIX block is placed once both are
// idle; the reservation ends with that placement. For the chip's model (full steps only) and for
// the threads platform's settings (the finishing core's own step, core_step).
TEST_F(SchedulerSteps, ClusterHeldForAWaitingMixTaskTakesNoSingleCoreWork) {
  for (const bool threads : {false, true}) {
    SCOPED_TRACE(threads ? "threads settings" : "full steps");
    Scheduler s = make(DualSlotPolicy{false, true, false});
    if (threads) as_threads_platform(s);
    s.push_ready_global(task(TaskShape::aiv, 2));
    s.push_ready_global(task(TaskShape::aiv, 2));
    s.step(0);
    ack(1);
    ack(2);
    s.step(0);  // both AIV cores run latched AIV tasks; the AIC core is idle
    TaskSlot* mix = task(TaskShape::mix, 0b111);
    s.push_ready_global(mix);
    for (int i = 0; i < 6; ++i)
      s.push_ready_global(task(TaskShape::aiv, 2));
    s.step(0);
    EXPECT_EQ(s.reserved_cluster(0), -1) << "passed over once: not held yet";
    EXPECT_EQ(s.idle_cores(0, CoreType::aic), 1);
    s.step(0);
    ASSERT_EQ(s.reserved_cluster(0), 0) << "passed over twice: the cluster is held";
    EXPECT_EQ(s.idle_cores(0, CoreType::aic), 0) << "a held core is not offered to AIC work";
    // What the AIV cores were given before the reservation: all they may run before the block.
    const TaskSlot* given[3][2] = {};
    for (const int core : {1, 2}) {
      given[core][0] = s.core_slot(core).running.task;
      given[core][1] = s.core_slot(core).pending.task;
    }
    auto given_before = [&](int core, const TaskSlot* t) {
      return t == nullptr || t == mix || t == given[core][0] || t == given[core][1];
    };
    if (threads) {
      EXPECT_FALSE(s.stage_after_latch(0, 1)) << "a held core's pending slot takes no AIV task";
    }
    // Each AIV core finishes what it runs, in turn, until the block is placed.
    for (int round = 0; round < 4 && s.core_slot(0).running.task != mix; ++round) {
      for (const int core : {1, 2}) {
        if (s.core_slot(core).running.task == nullptr) continue;
        ack(core);
        fin(core);
        if (threads) {
          s.core_step(0, core);
        } else {
          s.step(0);
        }
        EXPECT_TRUE(given_before(core, s.core_slot(core).running.task))
            << "a held core took an AIV task into its running slot";
        EXPECT_TRUE(given_before(core, s.core_slot(core).pending.task))
            << "a held core took an AIV task into its pending slot";
      }
    }
    EXPECT_EQ(s.core_slot(0).running.task, mix);
    EXPECT_EQ(s.core_slot(1).running.task, mix);
    EXPECT_EQ(s.core_slot(2).running.task, mix);
    EXPECT_EQ(s.reserved_cluster(0), -1) << "the placement ends the reservation";
    EXPECT_EQ(s.idle_cores(0, CoreType::aiv), 0);
  }
}

// The threads platform steps every scheduler thread under a gate of its own: with one scheduler
// thread no two pops of the ready queues overlap, and its scheduler pops without the
// compare-exchange (Scheduler::pops_serialised). With several gates pops race, and the sim,
// which models the chip, keeps the queue as it was.
// Its orchestrator's pushes go to lanes of their own (one pusher, no compare-exchange on the
// tail) whatever the scheduler threads; the sim keeps the one queue.
TEST(PopsSerialised, OnlyOnTheThreadsPlatformWithOneSchedulerThread) {
  struct Settings {
    bool serial_pops;
    bool lanes;
  };
  auto settings = [](PlatformKind platform, int clusters, int scheduler_threads) {
    RuntimeConfig config;
    config.platform = platform;
    config.clusters = clusters;
    config.scheduler_threads = scheduler_threads;
    // No run: the window does not matter, and a small one is quick to build (under TSan).
    config.ring = testing::few_tasks_ring();
    Engine engine(config, KernelRegistry{});
    return Settings{engine.scheduler().pops_serialised(), engine.scheduler().orchestrator_lanes()};
  };
  // One engine a configuration, each setting read from it.
  const Settings threads_1_1 = settings(PlatformKind::threads, 1, 1);
  const Settings threads_2_2 = settings(PlatformKind::threads, 2, 2);
  const Settings sim_1_1 = settings(PlatformKind::sim, 1, 1);
  EXPECT_TRUE(threads_1_1.serial_pops);
  EXPECT_TRUE(settings(PlatformKind::threads, 2, 1).serial_pops);
  EXPECT_FALSE(threads_2_2.serial_pops);
  EXPECT_FALSE(sim_1_1.serial_pops);
  EXPECT_TRUE(threads_1_1.lanes);
  EXPECT_TRUE(threads_2_2.lanes);
  EXPECT_FALSE(sim_1_1.lanes);
}

// The single-task hand-off in a whole run, both platforms: a chain whose every consumer is wired
// before its producer finishes (the first task waits for the orchestration to return) runs on
// the threads platform each task on the core that ran its producer, nearly every one after the
// first through core_step's hand-off. The sim's cores do not step the scheduler (its steps model
// the chip's): it takes none, and runs the same chain in order.
std::atomic<bool> chain_submitted{false};
// Row 0: [tasks run, -]; row 1 + i: [sub-block, cluster] of chain task i.
void chain_link(const KernelArgs& a) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!chain_submitted.load() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  std::int32_t* t = a.tensor(0).data_as<std::int32_t>();
  const std::int32_t i = t[0]++;
  t[2 + 2 * i] = static_cast<std::int32_t>(a.sub_block_id());
  t[3 + 2 * i] = static_cast<std::int32_t>(a.cluster());
}

class SingleHandoffRun : public ::testing::TestWithParam<PlatformKind> {};

TEST_P(SingleHandoffRun, AChainRunsEachTaskOnItsProducersCore) {
  const bool threads = GetParam() == PlatformKind::threads;
  RuntimeConfig config;
  config.platform = GetParam();
  config.clusters = 1;
  config.scheduler_threads = 1;
  config.record_events = false;
  config.ring = testing::few_tasks_ring();
  Engine engine(config, KernelRegistry{});
  const KernelId link = engine.kernels().add("chain_link", CoreType::aiv, &chain_link);
  constexpr int kTasks = 200;
  std::vector<std::int32_t> rows(2 * (kTasks + 1), -1);
  rows[0] = 0;
  chain_submitted.store(!threads);
  RunArgs args;
  args.inout(rows.data(), {kTasks + 1, 2}, DType::i32);
  const RunResult r = engine.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        for (int i = 0; i < kTasks; ++i)
          o.submit_aiv(link, Args().inout(a.tensor(0)));
        chain_submitted.store(true);
      },
      args);
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  ASSERT_EQ(rows[0], kTasks);
  const Scheduler::StepCounters& counters = engine.scheduler().counters(0);
  EXPECT_EQ(counters.tasks_completed, static_cast<std::uint64_t>(kTasks));
  if (threads) {
    // Another thread's step (the scheduler thread's, the orchestrator's help) may take a FIN
    // before the finishing core's own step does: that completion goes the generic way, which may
    // place the consumer on the other idle core. So every task that moved to the other core was
    // one of those, and the core's own hand-off takes the rest (198 or 199 of 199 here).
    int moved = 0;
    for (int i = 1; i < kTasks; ++i)
      moved += rows[2 + 2 * i] != rows[2 * i] ? 1 : 0;
    EXPECT_GE(counters.single_handoffs, static_cast<std::uint64_t>(kTasks / 2));
    EXPECT_LE(counters.single_handoffs + static_cast<std::uint64_t>(moved),
              static_cast<std::uint64_t>(kTasks - 1))
        << moved << " tasks ran on another core than their producer";
  } else {
    EXPECT_EQ(counters.single_handoffs, 0u);
  }
  for (int i = 0; i < kTasks; ++i) {
    ASSERT_GE(rows[2 + 2 * i], 0) << "task " << i;
    ASSERT_LE(rows[2 + 2 * i], 1) << "task " << i;
    ASSERT_EQ(rows[3 + 2 * i], 0) << "task " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Platforms, SingleHandoffRun,
                         ::testing::Values(PlatformKind::threads, PlatformKind::sim),
                         [](const auto& info) {
                           return std::string(info.param == PlatformKind::threads ? "threads"
                                                                                  : "sim");
                         });

// A core thread's kernel estimate (threads): short after a few quick samples, long again after a
// few slow ones; one sample, however long (a kernel preempted while it ran), moves it no further
// than the cap, which leaves a short estimate short.
TEST(KernelTimer, ShortAfterQuickSamplesLongAfterSlowOnesOneOutlierChangesNothing) {
  KernelTimer timer;
  EXPECT_FALSE(timer.is_short()) << "long until timed";
  int due = 0;
  for (std::uint32_t k = 0; k < 4 * kKernelSample; ++k)
    due += timer.due() ? 1 : 0;
  EXPECT_EQ(due, 4) << "one kernel in kKernelSample";
  int samples = 0;
  while (!timer.is_short()) {
    const bool changed = timer.add(100);
    ASSERT_LT(++samples, 10);
    EXPECT_EQ(changed, timer.is_short());
  }
  EXPECT_EQ(samples, 3);  // 1000 -> 775 -> 607 -> 482 ns
  for (int k = 0; k < 20; ++k)
    timer.add(100);
  EXPECT_FALSE(timer.add(50'000'000)) << "one preempted kernel keeps it short";
  EXPECT_TRUE(timer.is_short());
  EXPECT_LE(timer.estimate_ns(), 110 + (kKernelSampleCapNs - 110) / 4);  // the cap's quarter
  samples = 0;
  while (timer.is_short()) {
    timer.add(4000);
    ASSERT_LT(++samples, 10);
  }
  EXPECT_EQ(samples, 2);
  EXPECT_GE(timer.estimate_ns(), kShortKernelNs);
}

// note_short_kernels in whole runs, both platforms, pinned to 2 CPUs (3 core threads, a scheduler
// thread and the orchestrator: limit_handoffs_to_cpus applies on threads). On threads the core
// threads time their kernels: a stencil of rows of 4 cells with empty kernels leaves each core
// that ran a few dozen of them noted short, and the next run of it gives no leftover to the idle
// core (none taken back unlatched: only a core's own placements on another core are); kernels of
// 20 us leave every core that ran a few dozen of them long. The sim times nothing: no core is
// ever noted short, whatever its kernels.
std::atomic<int> short_cell_runs[2];
void short_cell(const KernelArgs& a) {
  const Tensor in = a.tensor(0);
  const auto* cells = static_cast<const std::int32_t*>(in.data());
  std::int32_t sum = 1;
  for (std::uint32_t i = 0; i < in.shape()[0]; ++i)
    sum += cells[i];
  *static_cast<std::int32_t*>(a.tensor(1).data()) = sum % 1000;
  if (a.scalar<std::int32_t>(0) != 0) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
    while (std::chrono::steady_clock::now() < until) {
    }
  }
  short_cell_runs[a.sub_block_id() & 1].fetch_add(1, std::memory_order_relaxed);
}

class ShortKernelsRun : public ::testing::TestWithParam<PlatformKind> {};

TEST_P(ShortKernelsRun, EmptyKernelsAreNotedShortAndKeepTheirLeftoversLongOnesNot) {
  const testing::TwoCpus pin;
  ASSERT_TRUE(pin.ok()) << "this host has fewer than 2 CPUs in the affinity mask";
  const bool threads = GetParam() == PlatformKind::threads;
  RuntimeConfig config;
  config.platform = GetParam();
  config.clusters = 1;
  config.scheduler_threads = 1;
  config.record_events = false;
  Engine engine(config, KernelRegistry{});
  const KernelId cell = engine.kernels().add("short_cell", CoreType::aiv, &short_cell);
  ASSERT_EQ(engine.scheduler().limits_handoffs(), threads);
  constexpr std::uint32_t kWidth = 4;
  const Topology topology = engine.topology();
  const int aiv[2] = {topology.aiv_core(0, 0), topology.aiv_core(0, 1)};
  // Returns the run's stats; short_cell_runs counts each AIV core's kernels.
  auto run = [&](std::uint32_t rows, bool spin) {
    std::vector<std::int32_t> cells(kWidth * (rows + 1), 1);
    for (std::atomic<int>& n : short_cell_runs)
      n.store(0);
    RunArgs args;
    args.inout(cells.data(), {static_cast<std::uint32_t>(cells.size())}, DType::i32);
    const RunResult r = engine.run(
        [&](Orchestrator& o, const OrchestrationArgs& a) {
          for (std::uint32_t row = 1; row <= rows; ++row) {
            for (std::uint32_t i = 0; i < kWidth; ++i) {
              const std::uint32_t lo = i == 0 ? 0 : i - 1;
              const std::uint32_t hi = std::min(kWidth - 1, i + 1);
              o.submit_aiv(cell, Args()
                                     .in(a.tensor(0), {hi - lo + 1}, {(row - 1) * kWidth + lo})
                                     .out_existing(a.tensor(0), {1}, {row * kWidth + i})
                                     .scalar(std::int32_t{spin}));
            }
          }
        },
        args);
    EXPECT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(short_cell_runs[0].load() + short_cell_runs[1].load(),
              static_cast<int>(kWidth * rows));
    return r.stats;
  };
  // Enough kernels on a core for four samples: its estimate has then left where it was.
  constexpr int kTimed = 4 * static_cast<int>(kKernelSample);

  run(400, false);
  int timed = 0;
  for (int k = 0; k < 2; ++k) {
    if (short_cell_runs[k].load() < kTimed) continue;
    ++timed;
    // A sanitizer build's kernels may take longer than kShortKernelNs: only the release build's
    // are sure to be short.
    if (threads && !kThreadSanitizer) {
      EXPECT_TRUE(engine.scheduler().short_kernels(aiv[k])) << "AIV core " << k;
    } else if (!threads) {
      EXPECT_FALSE(engine.scheduler().short_kernels(aiv[k])) << "AIV core " << k;
    }
  }
  EXPECT_GE(timed, 1);
  if (threads && !kThreadSanitizer && engine.scheduler().short_kernels(aiv[0]) &&
      engine.scheduler().short_kernels(aiv[1])) {
    EXPECT_EQ(run(400, false).unlatched_taken_back, 0u);
  }

  run(160, true);
  timed = 0;
  for (int k = 0; k < 2; ++k) {
    if (short_cell_runs[k].load() < kTimed) continue;
    ++timed;
    EXPECT_FALSE(engine.scheduler().short_kernels(aiv[k])) << "AIV core " << k;
  }
  EXPECT_GE(timed, 1);
}

INSTANTIATE_TEST_SUITE_P(Platforms, ShortKernelsRun,
                         ::testing::Values(PlatformKind::threads, PlatformKind::sim),
                         [](const auto& info) {
                           return std::string(info.param == PlatformKind::threads ? "threads"
                                                                                  : "sim");
                         });

}  // namespace
}  // namespace tmr::detail
