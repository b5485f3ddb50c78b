// The dependence unit (src/core/dependence/) without a runtime: hand-made argument lists,
// producers found through the TensorMap and through creator retention, each producer once, a
// named error for a creator whose scope has ended, and entries freed once their task retired.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <deque>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/completion_log.hpp"
#include "core/dependence/dependence.hpp"
#include "core/graph/fanout.hpp"
#include "core/ring.hpp"
#include "support/edge_oracle.hpp"
#include "support/pending_task.hpp"
#include "support/test_scale.hpp"

namespace tmr::detail {
namespace {

const char* plain_walk_name(int path) {
  return path == 0 ? "plain" : path == 1 ? "plain, slots first" : "plain, lines always";
}

struct Harness {
  explicit Harness(std::uint32_t window = 64) {
    RingConfig config;
    config.task_window = window;
    config.heap_bytes = 1024;
    config.dep_pool = 16;
    for (int r = 0; r < kRingCount; ++r) {
      rings.push_back(std::make_unique<Ring>(static_cast<std::uint32_t>(r), config));
      pointers[r] = rings.back().get();
    }
    dependence = std::make_unique<Dependence>(RetirementView(pointers, kRingCount), window);
  }
  // Grid buffers keep map entries instead of slot lines (TensorMap::enable_lines).
  Harness& entries_only() {
    dependence->set_slot_lines(false);
    return *this;
  }
  // Plain submits find every argument's slot first (the large-map path) whatever the map's size
  // and whatever order they walk its lines in (no warm runs).
  Harness& slot_first() {
    dependence->set_slot_first_above(0);
    dependence->set_warm_run(0);
    return *this;
  }
  // Plain submits try the slot lines every time (no pause after a miss).
  Harness& lines_always() {
    dependence->set_line_pauses(0, 0);
    return *this;
  }
  // The plain submit's three walks the fresh-buffer tests run: 0 the default, 1 slots first,
  // 2 the lines tried every time (plain_walk_name).
  Harness& plain_walk(int path) {
    if (path == 1) slot_first();
    if (path == 2) lines_always();
    return *this;
  }
  // Warm-run tests: every map large, warm runs of `run` submits after probes every `probe_every`
  // cold walks, and completions read from `logs` (a cold walk leaves completed producers out).
  Harness& warm_runs(std::uint64_t run, std::uint64_t probe_every, CompletionLogs& logs) {
    lines_always();
    dependence->set_slot_first_above(0);
    dependence->set_warm_run(run, probe_every);
    dependence->read_completions_from(&logs);
    dependence->set_skip_completed(true);
    return *this;
  }
  // Task `id` completed: a whole line of `logs` names it, then the dependence unit drains them.
  void complete(CompletionLogs& logs, TaskId id) {
    for (std::uint64_t i = 0; i < CompletionLogs::kLineEntries; ++i)
      logs.record(0, id);
    dependence->drain_completions();
  }
  // Admits a task on ring 0, discovers its producers, records its accesses.
  std::vector<std::uint32_t> submit(const Args& given, TaskSlot** out = nullptr,
                                    Status* status = nullptr) {
    // Recorded entries read their boxes through the arguments: keep them like a task record.
    const Args& args = kept.emplace_back(given);
    TaskSlot& slot = admit_on_ring0();
    AccessRegion regions[kMaxTensorArgs];
    const Status found = dependence->collect(args, regions);
    if (status != nullptr) *status = found;
    std::vector<std::uint32_t> producers;
    for (TaskSlot* p : dependence->producers())
      producers.push_back(p->id.local());
    if (found.ok()) dependence->record(slot, args, regions);
    rings[0]->publish(slot.id.local());
    if (out != nullptr) *out = &slot;
    return producers;
  }
  // What a plain runtime submit does: the arguments copied into the task's record, then one pass
  // of lookups and inserts (collect_and_record) whose entries and slot lines point at the record.
  std::vector<std::uint32_t> submit_plain(const Args& args, TaskSlot** out = nullptr,
                                          Status* status = nullptr) {
    TaskSlot& slot = admit_on_ring0();
    const Status found = dependence->collect_and_record(slot, args, fill_record(slot, args));
    if (status != nullptr) *status = found;
    if (!found.ok()) dependence->discard_entries(slot.id);
    std::vector<std::uint32_t> producers;
    for (TaskSlot* p : dependence->producers())
      producers.push_back(p->id.local());
    rings[0]->publish(slot.id.local());
    if (out != nullptr) *out = &slot;
    return producers;
  }
  // submit_plain on ring `ring`; the producers as slots (ids of several rings).
  std::vector<TaskSlot*> submit_plain_on(int ring, const Args& args, TaskSlot** out) {
    TaskSlot& slot = testing::admit_pending_task(*rings[static_cast<std::size_t>(ring)]);
    slot.id = TaskId(static_cast<std::uint32_t>(ring), slot.id.local());
    dependence->admitted(slot);
    dependence->begin();
    EXPECT_TRUE(dependence->collect_and_record(slot, args, fill_record(slot, args)).ok());
    const std::vector<TaskSlot*> producers(dependence->producers().begin(),
                                           dependence->producers().end());
    rings[static_cast<std::size_t>(ring)]->publish(slot.id.local());
    *out = &slot;
    return producers;
  }
  // The arguments' tensors copied into the task's own record (as the runtime's admit does).
  static const Tensor* fill_record(TaskSlot& slot, const Args& args) {
    slot.ring->bind_arguments(slot.id.local(), args.tensor_count(), 0);
    for (int i = 0; i < args.tensor_count(); ++i)
      slot.record->tensors[i] = args.tensor(i);
    return slot.record->tensors;
  }
  // Admits a pending task on ring 0 and opens its discovery (what both submit paths start with).
  TaskSlot& admit_on_ring0() {
    TaskSlot& slot = testing::admit_pending_task(*rings[0]);
    dependence->admitted(slot);
    dependence->begin();
    return slot;
  }
  // Retires ring 0's tasks below `end` (they finished in order) and frees their entries.
  void retire_below(std::uint32_t end) {
    Ring& ring = *rings[0];
    for (std::uint32_t local = ring.retired(); local < end; ++local)
      ring.slot(local).release_remaining.store(0);
    ring.try_advance();
    ring.refresh();
    dependence->forget_retired(0, ring.retired_seen());
  }
  std::vector<std::unique_ptr<Ring>> rings;
  Ring* pointers[kRingCount] = {};
  std::unique_ptr<Dependence> dependence;
  std::deque<Args> kept;
};

using Producers = std::vector<std::uint32_t>;

// The producer list grows past its first capacity (64) and again, keeping order; clear() empties
// it without forgetting what it can hold.
// Adds `t` to `args` as a read, or as a write spelled `inout` or `out_existing`.
void add_access(Args& args, const Tensor& t, bool write, bool as_inout) {
  if (!write) {
    args.in(t);
  } else if (as_inout) {
    args.inout(t);
  } else {
    args.out_existing(t);
  }
}

TEST(Dependence, ProducerListKeepsOrderWhileItGrows) {
  std::vector<TaskSlot> slots(300);
  ProducerList list;
  EXPECT_TRUE(list.empty());
  for (int round = 0; round < 2; ++round) {
    for (std::size_t i = 0; i < slots.size(); ++i) {
      list.push_back(&slots[i]);
      ASSERT_EQ(list.size(), i + 1);
      ASSERT_EQ(list[i], &slots[i]);
    }
    std::size_t i = 0;
    for (TaskSlot* p : list)
      ASSERT_EQ(p, &slots[i++]) << "round " << round;
    EXPECT_EQ(i, slots.size());
    list.clear();
    EXPECT_TRUE(list.empty());
    EXPECT_EQ(list.begin(), list.end());
  }
}

TEST(Dependence, ReadAfterWriteWriteAfterReadAndEachProducerOnce) {
  std::vector<float> data(16);
  const Tensor x = Tensor::wrap(data.data(), {16}, DType::f32);
  Harness h;
  EXPECT_EQ(h.submit(Args().inout(x)), Producers{});
  EXPECT_EQ(h.submit(Args().in(x).in(x.view({4}, {0}))), (Producers{0})) << "listed once";
  EXPECT_EQ(h.submit(Args().in(x.view({4}, {8}))), (Producers{0}));
  Producers all = h.submit(Args().inout(x));
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (Producers{0, 1, 2})) << "WAW and both WARs";
  EXPECT_EQ(h.submit(Args().no_dep(x)), Producers{}) << "no_dep takes no part";
}

TEST(Dependence, CreatorRetentionWhileTheScopeIsOpenAndANamedErrorAfter) {
  Harness h;
  std::vector<float> data(16);
  const Tensor external = Tensor::wrap(data.data(), {16}, DType::f32);
  TaskSlot* creator = nullptr;
  h.submit(Args().inout(external), &creator);
  // A tensor created by the task (as a submit output would be): its creator is a producer.
  const Tensor created = Tensor::make_owned(data.data(), 64, {16}, DType::f32, creator->id);
  h.dependence->retain_creator(creator->id);
  EXPECT_EQ(h.submit(Args().no_dep(created)), (Producers{0}));
  h.dependence->release_creator(creator->id);
  Status status;
  h.submit(Args().in(created), nullptr, &status);
  EXPECT_EQ(status.code, ErrorCode::invalid_args);
  EXPECT_NE(status.message.find("whose scope has ended"), std::string::npos) << status.message;
}

TEST(Dependence, RetiredTasksAreNoProducersAndTheirEntriesAreFreed) {
  Harness h;
  std::vector<float> data(16);
  const Tensor x = Tensor::wrap(data.data(), {16}, DType::f32);
  TaskSlot* first = nullptr;
  h.submit(Args().inout(x), &first);
  EXPECT_EQ(h.dependence->map().live_entries(), 1u);
  first->release_remaining.store(0);
  ASSERT_TRUE(h.rings[0]->try_advance());
  EXPECT_EQ(h.submit(Args().in(x)), Producers{}) << "a retired writer orders nothing";
  h.rings[0]->refresh();
  h.dependence->forget_retired(0, h.rings[0]->retired_seen());
  EXPECT_EQ(h.dependence->map().live_entries(), 1u) << "only the read is left";
}

// Tasks admitted without state (a replayed loop task: Dependence::admitted_without_state) take
// over slots whose earlier tasks had entries and a retained creator: nothing of theirs is
// found, no creator is retained, later submits find exactly their producers, and after they
// retire past every task admitted with state the reset between runs (which walks the tasks
// admitted with state that have not been cleaned) leaves an empty map and a working unit.
TEST(Dependence, TasksAdmittedWithoutStateTakeOverSlotsOfTasksWithEntries) {
  constexpr std::uint32_t kWindow = 16;
  Harness h(kWindow);
  std::vector<float> data(64);
  const Tensor x = Tensor::wrap(data.data(), {16, 4}, DType::f32);
  const auto row = [&](std::uint32_t k) { return x.view({1, 4}, {k % 16, 0}); };
  TaskSlot* creator = nullptr;
  for (std::uint32_t k = 0; k < 12; ++k) {
    h.submit(Args().in(row(k + 1)).inout(row(k)), k == 3 ? &creator : nullptr);
  }
  const TaskId created_by = creator->id;
  h.dependence->retain_creator(created_by);
  EXPECT_GT(h.dependence->map().live_entries(), 0u);
  h.dependence->release_creator(created_by);  // its scope ends before it retires
  h.retire_below(12);
  EXPECT_EQ(h.dependence->map().live_entries(), 0u);
  // Stateless tasks through every slot, three windows' worth, each retiring behind the next.
  for (std::uint32_t local = 12; local < 12 + 3 * kWindow; ++local) {
    TaskSlot& slot = testing::admit_pending_task(*h.rings[0]);
    ASSERT_EQ(slot.id.local(), local);
    h.dependence->admitted_without_state(slot);
    h.rings[0]->publish(local);
    EXPECT_FALSE(h.dependence->creator_retained(slot.id)) << "task " << local;
    EXPECT_FALSE(h.dependence->creator_retained(created_by)) << "task " << local;
    if (local % 5 == 0) {
      // A plain task among them: only the earlier plain tasks it conflicts with and which are
      // still live (none) would be producers; the stateless ones have no entries.
      EXPECT_EQ(h.submit(Args().in(row(local))), Producers{}) << "task " << local + 1;
      ++local;
    }
    h.retire_below(local - 2);
  }
  const std::uint32_t end = h.rings[0]->head();
  h.retire_below(end);
  EXPECT_EQ(h.dependence->map().live_entries(), 0u);
  // The tasks admitted with state end before the stateless ones: the reset starts past them.
  h.dependence->reset();
  EXPECT_EQ(h.dependence->map().live_entries(), 0u);
}

// What a loop analysis (src/core/loops/) asks of the unit: creators without map lookups, producers
// added by TaskId (deduplicated with the rest), and the live map entries of one buffer.
TEST(Dependence, LoopAnalysisHooksCreatorsOnlyProducersByIdAndLiveEntries) {
  Harness h;
  std::vector<float> data(16);
  const Tensor x = Tensor::wrap(data.data(), {16}, DType::f32);
  TaskSlot* writer = nullptr;
  h.submit(Args().inout(x), &writer);
  const Tensor created = Tensor::make_owned(data.data(), 64, {16}, DType::f32, writer->id);
  h.dependence->retain_creator(writer->id);

  AccessRegion regions[kMaxTensorArgs];
  h.dependence->begin();
  ASSERT_TRUE(h.dependence->collect_creators(Args().in(x), regions).ok());
  EXPECT_TRUE(h.dependence->producers().empty()) << "no map lookup: the writer is not found";
  EXPECT_EQ(regions[0].lo, make_region(x).lo) << "regions are still filled for record()";
  EXPECT_EQ(regions[0].hi, make_region(x).hi);

  h.dependence->begin();
  ASSERT_TRUE(h.dependence->collect_creators(Args().in(created), regions).ok());
  h.dependence->add_producer(writer->id);
  ASSERT_EQ(h.dependence->producers().size(), 1u) << "the creator, listed once";
  EXPECT_EQ(h.dependence->producers()[0], writer);

  int entries = 0;
  h.dependence->for_each_live_entry(reinterpret_cast<std::uintptr_t>(x.buffer()),
                                    x.producer().value(), [&](const MapEntry& e) {
                                      EXPECT_EQ(e.task_id, writer->id);
                                      ++entries;
                                    });
  EXPECT_EQ(entries, 1);
}

TEST(Dependence, PlainSubmitPathFindsTheSameProducers) {
  std::vector<float> data(16);
  const Tensor x = Tensor::wrap(data.data(), {16}, DType::f32);
  Harness h;
  EXPECT_EQ(h.submit_plain(Args().inout(x)), Producers{});
  // One task naming a region twice (read, then write of a covering region): its own first
  // entry is no producer, and the earlier writer is listed once.
  EXPECT_EQ(h.submit_plain(Args().in(x.view({4}, {0})).inout(x)), (Producers{0}));
  EXPECT_EQ(h.submit_plain(Args().in(x.view({4}, {4}))), (Producers{1}));
  // The quarter views cut the buffer's line grid into quarters (TensorMap::refine_lines): the
  // state is in its lines, the covered accesses overwritten there, and no entry is made.
  EXPECT_EQ(h.dependence->map().live_entries(), 0u);
  EXPECT_EQ(h.dependence->map().stats().line_refines, 1u);
  EXPECT_EQ(h.dependence->map().stats().line_exits, 0u);
  // A named creator error leaves the map as it was.
  const Tensor stale = Tensor::make_owned(data.data(), 64, {16}, DType::f32, TaskId(0, 1));
  Status status;
  h.submit_plain(Args().inout(x).in(stale), nullptr, &status);
  EXPECT_EQ(status.code, ErrorCode::invalid_args);
  EXPECT_EQ(h.dependence->map().live_entries(), 0u);
  Producers last = h.submit_plain(Args().inout(x));
  std::sort(last.begin(), last.end());
  EXPECT_EQ(last, (Producers{1, 2}));
}

// The completion logs (CompletionLogs): a reader sees each id once, only lines that were full
// when it looked, at most a log's worth of the newest ids after falling behind, and nothing of a
// run before reset().
TEST(CompletionLogs, AReaderSeesEachPublishedIdOnceAndOnlyFullLines) {
  constexpr std::uint64_t kLine = CompletionLogs::kLineEntries;
  CompletionLogs logs(2);
  std::vector<std::uint64_t> seen;
  auto drain = [&] {
    seen.clear();
    return logs.drain([&](TaskId id) { seen.push_back(id.value()); });
  };
  for (std::uint32_t i = 0; i < kLine + 2; ++i)
    logs.record(0, TaskId(0, i));
  for (std::uint32_t i = 0; i < kLine; ++i)
    logs.record(1, TaskId(1, i));
  EXPECT_EQ(drain(), 2 * kLine);  // core 0's last two wait for their line to fill
  EXPECT_EQ(seen.front(), TaskId(0, 0).value());
  EXPECT_EQ(seen[kLine], TaskId(1, 0).value());
  EXPECT_EQ(drain(), 0u);
  for (std::uint32_t i = kLine + 2; i < 2 * kLine; ++i)
    logs.record(0, TaskId(0, i));
  EXPECT_EQ(drain(), kLine);
  EXPECT_EQ(seen.front(), TaskId(0, static_cast<std::uint32_t>(kLine)).value());
  // A reader a whole log (and a line) behind reads the newest log's worth.
  const auto total = static_cast<std::uint32_t>(CompletionLogs::kEntries + kLine);
  for (std::uint32_t i = 0; i < total; ++i)
    logs.record(1, TaskId(1, 100 + i));
  EXPECT_EQ(drain(), CompletionLogs::kEntries);
  EXPECT_EQ(seen.front(), TaskId(1, static_cast<std::uint32_t>(100 + kLine)).value());
  EXPECT_EQ(seen.back(), TaskId(1, 100 + total - 1).value());
  // A new run: the last run's ids are not read again.
  logs.record(0, TaskId(0, 9));
  logs.reset();
  EXPECT_EQ(drain(), 0u);
}

// Completed producers left out (Dependence::set_skip_completed, read_completions_from): a large
// map's plain discovery (slot_first: the threshold at 0) leaves out a producer the completion
// logs named, and only that one: a live producer the logs do not name is kept. With skipping off
// (traces, sim) every producer is kept. Slot lines and map entries alike; a completed creator is
// always kept, and so is a completed producer on a small map.
TEST(Dependence, PlainSubmitsLeaveOutOnlyProducersTheLogsNameCompleted) {
  for (const bool skip : {false, true}) {
    for (const bool lines : {true, false}) {
      SCOPED_TRACE(std::string(skip ? "skip" : "keep") + (lines ? ", lines" : ", entries"));
      std::vector<float> data(64);
      const Tensor x = Tensor::wrap(data.data(), {4, 16}, DType::f32);
      const Tensor row = x.view({1, 16}, {0, 0});
      Harness h;  // (a window of 64)
      if (!lines) h.entries_only();
      h.lines_always().slot_first();
      CompletionLogs logs(1);
      h.dependence->read_completions_from(&logs);
      h.dependence->set_skip_completed(skip);
      // `ids` completed (a whole line of the log, padded with the first).
      auto completed = [&](std::vector<TaskId> ids) {
        for (std::uint64_t i = 0; i < CompletionLogs::kLineEntries; ++i)
          logs.record(0, ids[i < ids.size() ? i : 0]);
        h.dependence->drain_completions();
      };
      TaskSlot* writer = nullptr;
      EXPECT_EQ(h.submit_plain(Args().inout(row), &writer), Producers{});
      EXPECT_EQ(h.submit_plain(Args().in(row)), (Producers{0}));
      // Not named by the logs: kept (its slot may say completed; only the logs count), also
      // while the logs name other tasks (one of another ring with the same local id).
      graph::mark_finished(*writer);
      completed({TaskId(1, writer->id.local())});
      EXPECT_EQ(h.submit_plain(Args().in(row)), (Producers{0}));
      EXPECT_EQ(h.dependence->left_out(), 0u);
      completed({writer->id});
      EXPECT_EQ(h.submit_plain(Args().in(row)), skip ? Producers{} : (Producers{0}));
      EXPECT_EQ(h.dependence->left_out(), skip ? 1u : 0u);
      // Reader 1 completed, readers 2 and 3 live: a write after them keeps those two always; the
      // completed reader 1 and (through entries, where the readers do not stand for it) the
      // completed writer 0 only while nothing is left out.
      completed({TaskId(0, 1)});
      Producers write = h.submit_plain(Args().inout(row));
      std::sort(write.begin(), write.end());
      const Producers kept = lines ? Producers{1, 2, 3} : Producers{0, 1, 2, 3};
      EXPECT_EQ(write, skip ? (Producers{2, 3}) : kept);
      // A tensor the completed writer created: its creator's edge holds the buffer.
      std::vector<float> out(16);
      const Tensor created = Tensor::make_owned(out.data(), 64, {16}, DType::f32, writer->id);
      h.dependence->retain_creator(writer->id);
      EXPECT_EQ(h.submit_plain(Args().no_dep(created)), (Producers{0}));
      // A small map's discovery (the threshold back up) keeps completed producers.
      h.dependence->set_slot_first_above(1 << 20);
      completed({TaskId(0, 4)});
      EXPECT_EQ(h.submit_plain(Args().in(row)), (Producers{4}));
    }
  }
}

// The completion marks (one bit a slot) name a slot's own task only: a task admitted into the
// slot of a completed task is live however the slot's last task ended (the refresh that saw that
// task retire cleared its mark, forget_retired: tasks W and W + 1 here), and a completion the
// orchestrator drains only after a refresh saw its task retire marks nothing (the slot may hold
// a newer task already). Windows of 64 slots (a word) and of 16 (a word's low bits); slot lines
// and map entries alike.
TEST(Dependence, CompletionMarksNameTheirSlotsOwnTaskOnly) {
  for (const std::uint32_t window : {64u, 16u}) {
    for (const bool drained_late : {false, true}) {
      for (const bool lines : {true, false}) {
        SCOPED_TRACE("window " + std::to_string(window) +
                     (drained_late ? ", drained after retiring" : ", drained while live") +
                     (lines ? ", lines" : ", entries"));
        std::vector<float> data(std::size_t{256} * 16);
        const Tensor x = Tensor::wrap(data.data(), {256, 16}, DType::f32);
        auto row = [&](std::uint32_t r) { return x.view({1, 16}, {r, 0}); };
        Harness h(window);
        if (!lines) h.entries_only();
        h.lines_always().slot_first();
        CompletionLogs logs(1);
        h.dependence->read_completions_from(&logs);
        h.dependence->set_skip_completed(true);
        // Tasks 0 and 1 write rows 0 and 1.
        ASSERT_EQ(h.submit_plain(Args().inout(row(0))), Producers{});
        ASSERT_EQ(h.submit_plain(Args().inout(row(1))), Producers{});
        auto log_completed = [&](std::uint32_t a, std::uint32_t b) {
          for (std::uint64_t i = 0; i < CompletionLogs::kLineEntries; ++i)
            logs.record(0, TaskId(0, i % 2 == 0 ? a : b));
        };
        std::uint32_t next = 2;
        if (!drained_late) {
          // Drained while both are live: task 2's reads of rows 0 and 1 leave them out.
          log_completed(0, 1);
          h.dependence->drain_completions();
          EXPECT_EQ(h.submit_plain(Args().in(row(0)).in(row(1))), Producers{});
          EXPECT_EQ(h.dependence->left_out(), 2u);
          next = 3;
        }
        for (; next < window; ++next)  // (the window full)
          ASSERT_EQ(h.submit_plain(Args().inout(row(next))), Producers{}) << "task " << next;
        if (drained_late) log_completed(0, 1);  // (drained from task `window`'s admit on)
        h.retire_below(window);
        // Tasks W and W + 1 take the slots of tasks 0 and 1, writing rows 200 and 201.
        TaskSlot* a = nullptr;
        TaskSlot* b = nullptr;
        ASSERT_EQ(h.submit_plain(Args().inout(row(200)), &a), Producers{});
        ASSERT_EQ(h.submit_plain(Args().inout(row(201)), &b), Producers{});
        ASSERT_EQ(a->id.local(), window);
        ASSERT_EQ(b->id.local(), window + 1);
        h.dependence->drain_completions();
        // Both live and not completed: a read of their rows keeps them.
        const std::uint64_t before = h.dependence->left_out();
        EXPECT_EQ(h.submit_plain(Args().in(row(200)).in(row(201))),
                  (Producers{window, window + 1}));
        EXPECT_EQ(h.dependence->left_out(), before);
        // Once the log names task W + 1 itself (drained while it is live), it is left out.
        log_completed(window + 1, window + 1);
        h.dependence->drain_completions();
        EXPECT_EQ(h.submit_plain(Args().in(row(200)).in(row(201))), (Producers{window}));
        EXPECT_EQ(h.dependence->left_out(), before + 1);
      }
    }
  }
}

// Warm runs (Dependence::set_warm_run, here a probe on every cold walk): a large map's cold walk
// (it leaves out producers the logs named completed) reads its last line's state first; four probes
// in a row whose line a task at most 64 tasks before touched start a run of submits that walk warm
// (as on a small map: completed producers kept), after which a cold walk probes again. Lines
// touched long ago break the row; lines new to their buffer's line mode count neither way.
TEST(Dependence, LargeMapWalksWarmForARunAfterProbesMeetRecentLines) {
  constexpr std::uint32_t kRows = 200;
  std::vector<float> data(kRows * 16);
  const Tensor x = Tensor::wrap(data.data(), {kRows, 16}, DType::f32);
  auto row = [&](std::uint32_t r) { return x.view({1, 16}, {r, 0}); };
  CompletionLogs logs(1);
  Harness h(256);
  h.warm_runs(4, 1, logs);
  auto completed = [&](TaskId id) { h.complete(logs, id); };
  EXPECT_EQ(h.submit_plain(Args().inout(row(0))), Producers{});  // task 0: a new line
  completed(TaskId(0, 0));
  // Tasks 1-4 walk cold (writer 0 left out); each probe meets a line 1 task old: the fourth
  // starts a run of 4 submits (tasks 4-7).
  for (std::uint64_t t = 1; t <= 4; ++t) {
    EXPECT_EQ(h.submit_plain(Args().in(row(0))), Producers{});
    EXPECT_EQ(h.dependence->left_out(), t);
  }
  EXPECT_EQ(h.submit_plain(Args().in(row(0))), (Producers{0}));  // warm: writer 0 kept
  EXPECT_EQ(h.submit_plain(Args().inout(row(1))), Producers{});  // task 6
  EXPECT_EQ(h.submit_plain(Args().inout(row(2))), Producers{});  // task 7
  // The run is over: task 8 probes cold (its read's producer, writer 0, left out).
  EXPECT_EQ(h.submit_plain(Args().in(row(0))), Producers{});
  EXPECT_EQ(h.dependence->left_out(), 5u);
  // 70 writes of new lines (tasks 9-78), then reads of rows 1-6, each last written 70 or more
  // tasks before and completed: every probe meets an old line, all walks stay cold.
  for (std::uint32_t r = 3; r < 73; ++r)
    ASSERT_EQ(h.submit_plain(Args().inout(row(r))), Producers{});
  for (std::uint32_t r = 1; r <= 6; ++r) {
    const std::uint32_t writer = r <= 2 ? 5 + r : 6 + r;
    completed(TaskId(0, writer));
    EXPECT_EQ(h.submit_plain(Args().in(row(r))), Producers{}) << "row " << r;
    EXPECT_EQ(h.dependence->left_out(), 5u + r);
  }
}

// The warm-run probes' two episode rules (TensorMap::line_recency): a line whose state is of an
// earlier line-mode episode of its buffer counts as new (neither way), however recent the tasks
// it names; and a new line does not break a row of recent probes.
TEST(Dependence, WarmRunProbesCountNoLineOfAnEarlierEpisodeAndNewLinesBreakNoRow) {
  constexpr std::uint32_t kRows = 64;
  std::vector<float> data(kRows * 16);
  const Tensor x = Tensor::wrap(data.data(), {kRows, 16}, DType::f32);
  auto row = [&](std::uint32_t r) { return x.view({1, 16}, {r, 0}); };
  CompletionLogs logs(1);
  Harness h(256);
  h.warm_runs(16, 1, logs);
  auto completed = [&](TaskId id) { h.complete(logs, id); };
  // Episode 1: tasks 0-3 write rows 0-3 and retire; the buffer's line mode ends with them.
  for (std::uint32_t r = 0; r < 4; ++r)
    ASSERT_EQ(h.submit_plain(Args().inout(row(r))), Producers{});
  h.retire_below(4);
  ASSERT_EQ(h.dependence->map().live_entries(), 0u);
  // Episode 2: task 4 writes row 10; tasks 5-8 read rows 0-3, whose lines still name tasks 0-3
  // (5 tasks before each) from episode 1: four probes that must not count as recent (a run
  // would cover task 9 below).
  ASSERT_EQ(h.submit_plain(Args().inout(row(10))), Producers{});
  for (std::uint32_t r = 0; r < 4; ++r)
    ASSERT_EQ(h.submit_plain(Args().in(row(r))), Producers{});
  completed(TaskId(0, 4));
  // Tasks 9-11 read row 10 (task 4's write, completed): cold walks leave it out; three recent
  // probes. Task 12 writes row 20 (a new line: the row goes on); task 13's probe is the fourth
  // recent one and starts a run: task 14 walks warm and keeps writer 4.
  for (std::uint64_t t = 9; t <= 11; ++t) {
    EXPECT_EQ(h.submit_plain(Args().in(row(10))), Producers{}) << "task " << t;
    EXPECT_EQ(h.dependence->left_out(), t - 8) << "task " << t;
  }
  EXPECT_EQ(h.submit_plain(Args().inout(row(20))), Producers{});
  EXPECT_EQ(h.submit_plain(Args().in(row(10))), Producers{});
  EXPECT_EQ(h.dependence->left_out(), 4u);
  EXPECT_EQ(h.submit_plain(Args().in(row(10))), (Producers{4}));  // task 14: warm
  EXPECT_EQ(h.dependence->left_out(), 4u);
}

// Outside a row of recent probes, a cold walk probes only every `probe_every` (here 3) cold
// walks; once a probe meets a recent line, every cold walk probes until the row ends or starts a
// run.
TEST(Dependence, WarmRunProbesAreSpacedOutsideARowOfRecentOnes) {
  constexpr std::uint32_t kRows = 64;
  std::vector<float> data(kRows * 16);
  const Tensor x = Tensor::wrap(data.data(), {kRows, 16}, DType::f32);
  auto row = [&](std::uint32_t r) { return x.view({1, 16}, {r, 0}); };
  CompletionLogs logs(1);
  Harness h(256);
  h.warm_runs(4, 3, logs);
  // Task 0 writes row 0 (the map is empty: a warm walk); task 1 writes row 1, the first cold
  // walk: its probe meets a new line, so the next probe is 3 cold walks on.
  ASSERT_EQ(h.submit_plain(Args().inout(row(0))), Producers{});
  ASSERT_EQ(h.submit_plain(Args().inout(row(1))), Producers{});
  h.complete(logs, TaskId(0, 0));
  // Tasks 2-7 read row 0 cold (writer 0 left out): tasks 2 and 3 take no probe, tasks 4-7 probe
  // a line one task old each, and the fourth (task 7) starts a run: task 8 walks warm.
  for (std::uint64_t t = 2; t <= 7; ++t) {
    EXPECT_EQ(h.submit_plain(Args().in(row(0))), Producers{}) << "task " << t;
    EXPECT_EQ(h.dependence->left_out(), t - 1) << "task " << t;
  }
  EXPECT_EQ(h.submit_plain(Args().in(row(0))), (Producers{0}));
  EXPECT_EQ(h.dependence->left_out(), 6u);
}

// Each producer is listed once however discovery meets it: a short list is deduplicated through
// a 64-bit filter on the local id (two tasks 64 apart share a bit), a long one (past
// Dependence::kScanProducers) through per-slot stamps, and the task itself is never listed,
// also when it shares a filter bit with a producer or the list switched to stamps meanwhile.
TEST(Dependence, EachProducerOnceWhenLocalIdsShareAFilterBitAndPastTheShortList) {
  constexpr std::uint32_t kRows = 100;
  std::vector<float> data(kRows * 4);
  const Tensor x = Tensor::wrap(data.data(), {kRows, 4}, DType::f32);
  auto row = [&](std::uint32_t r) { return x.view({1, 4}, {r, 0}); };
  for (const int path : {0, 1, 2}) {
    SCOPED_TRACE(path == 0 ? "plain path" : path == 1 ? "plain path, slots first" : "two-pass");
    const bool plain = path != 2;
    Harness h(256);
    if (path == 1) h.slot_first();
    auto submit = [&](const Args& args) {
      Producers p = plain ? h.submit_plain(args) : h.submit(args);
      std::sort(p.begin(), p.end());
      return p;
    };
    for (std::uint32_t r = 0; r < kRows; ++r)
      ASSERT_EQ(submit(Args().inout(row(r))), Producers{});  // task r writes row r
    // Tasks 3 and 67 share a filter bit; each is met twice.
    EXPECT_EQ(submit(Args().in(row(3)).in(row(67)).in(row(3)).in(row(67))), (Producers{3, 67}));
    // Task 101 (this one) shares its bit with task 37 and meets its own read entry again.
    EXPECT_EQ(submit(Args().in(row(37)).inout(row(37)).in(row(37))), (Producers{37}));
    // A read of every row: 100 producers, so the list switches to stamps on the way; then its
    // own entries and already listed writers are met again after the switch.
    Producers all = submit(Args().in(x).inout(row(5)).in(row(3)).in(x));
    // Row 37's writer is task 101 now; task 100 only read rows 3 and 67.
    Producers expected;
    for (std::uint32_t t = 0; t < kRows; ++t)
      expected.push_back(t == 37 ? 101 : t);
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(all, expected);
  }
}

// The plain path lists the task itself before its creators (Dependence::list_self): a creator
// whose local id shares the task's filter bit takes the task's place in by_bit_, and the task's
// own entries met again are still its own (listed()), the creator listed once.
TEST(Dependence, PlainPathListsItselfBeforeACreatorThatSharesItsFilterBit) {
  std::vector<float> data(64 * 4);
  std::vector<float> made(16);
  const Tensor x = Tensor::wrap(data.data(), {64, 4}, DType::f32);
  auto row = [&](std::uint32_t r) { return x.view({1, 4}, {r, 0}); };
  for (const bool slots_first : {false, true}) {
    SCOPED_TRACE(slots_first ? "plain path, slots first" : "plain path");
    Harness h(256);
    if (slots_first) h.slot_first();
    TaskSlot* creator = nullptr;
    ASSERT_EQ(h.submit_plain(Args().inout(row(0)), &creator), Producers{});  // task 0
    const Tensor created = Tensor::make_owned(made.data(), 64, {16}, DType::f32, creator->id);
    h.dependence->retain_creator(creator->id);
    for (std::uint32_t r = 1; r < 64; ++r)
      ASSERT_EQ(h.submit_plain(Args().inout(row(r))), Producers{});  // task r writes row r
    // Task 64 shares filter bit 0 with its creator, task 0: the creator first, then the task's
    // own write of row 5 read back, its creator's row written, the created buffer read twice.
    TaskSlot* self = nullptr;
    Producers p = h.submit_plain(
        Args().in(created).inout(row(5)).in(row(5)).inout(row(0)).in(created).in(row(5)), &self);
    ASSERT_EQ(self->id.local(), 64u);
    std::sort(p.begin(), p.end());
    EXPECT_EQ(p, (Producers{0, 5}));
    // The next task finds task 64 as the writer of rows 0 and 5, once each.
    p = h.submit_plain(Args().in(row(0)).in(row(5)).inout(row(0)));
    EXPECT_EQ(p, (Producers{64}));
  }
}

// The plain path finds every argument's buffer and grid slot before the first lookup
// (TensorMap::find_slot). An earlier argument of the same task may re-index the buffer (an
// off-grid insert) or start a new grid on it: a later argument's slot found before that is
// stale and must be found again, or its lookup walks a chain its entries are no longer in.
TEST(Dependence, ArgumentsFoundBeforeAnEarlierArgumentReindexedTheBufferStillFindTheirWriters) {
  std::vector<float> data(8 * 4);
  const Tensor x = Tensor::wrap(data.data(), {8, 4}, DType::f32);
  auto row = [&](std::uint32_t r) { return x.view({1, 4}, {r, 0}); };
  Harness h;
  h.slot_first();  // (a map this small is otherwise looked up argument by argument)
  for (std::uint32_t r = 0; r < 8; ++r)
    ASSERT_EQ(h.submit_plain(Args().inout(row(r))), Producers{});
  const std::uint64_t exits = h.dependence->map().stats().grid_exits;
  // Argument 1 (half of row 0 and half of row 1: off the grid) re-indexes the buffer; arguments
  // 2 and 3 were placed on the grid before it.
  Producers found =
      h.submit_plain(Args().in(row(5)).inout(x.view({2, 2}, {0, 1})).in(row(2)).inout(row(6)));
  std::sort(found.begin(), found.end());
  EXPECT_EQ(found, (Producers{0, 1, 2, 5, 6}));
  EXPECT_EQ(h.dependence->map().stats().grid_exits, exits + 1);
  // Rows 2 and 6 after it: their entries are in size-class cells now, each found once (row 2's
  // writer is still live: task 8 only read it).
  found = h.submit_plain(Args().inout(row(2)));
  std::sort(found.begin(), found.end());
  EXPECT_EQ(found, (Producers{2, 8}));
  EXPECT_EQ(h.submit_plain(Args().in(row(6))), (Producers{8}));
  // A buffer emptied by retirement starts a new grid of another length (argument 0's insert);
  // argument 1 was placed on the old grid.
  h.retire_below(11);
  ASSERT_EQ(h.dependence->map().live_entries(), 0u);
  ASSERT_EQ(h.submit_plain(Args().inout(x.view({2, 4}, {2, 0}))), Producers{});  // task 11
  found = h.submit_plain(Args().inout(x.view({2, 4}, {4, 0})).in(x.view({2, 4}, {2, 0})));
  EXPECT_EQ(found, (Producers{11}));
  // Within one task: argument 0 (rows 2-3) covers the buffer's only live entry and empties it,
  // so its insert starts a grid of two-row slots; argument 1 (row 5) was placed on the old grid
  // of rows before that, and its entry must land where a lookup of rows 4-5 finds it.
  h.retire_below(13);
  ASSERT_EQ(h.submit_plain(Args().inout(row(2))), Producers{});  // task 13: a grid of rows
  found = h.submit_plain(Args().inout(x.view({2, 4}, {2, 0})).in(row(5)));  // task 14
  EXPECT_EQ(found, (Producers{13}));
  found = h.submit_plain(Args().inout(x.view({2, 4}, {4, 0})));
  EXPECT_EQ(found, (Producers{14}));
}

// Runs `body` on a fresh Harness in line mode, once on each line path: the small map's and the
// large map's (slot_first), under a trace that names the path.
template <typename Body>
void on_each_line_path(Body&& body) {
  for (const bool slot_first : {false, true}) {
    SCOPED_TRACE(slot_first ? "large-map path" : "small-map path");
    Harness h;
    h.lines_always();
    if (slot_first) h.slot_first();
    body(h);
  }
}

// The line path of a plain submit (collect_and_record) finds every argument's slot line before
// recording any. An earlier argument recorded the general way may take the buffer out of line
// mode (an off-grid access) or grow its line table (a row past it): the lines found for later
// arguments are then stale, and those arguments must be recorded where later accesses find them.
TEST(Dependence, LinesFoundBeforeAnEarlierArgumentMovedTheirBufferAreNotWritten) {
  std::vector<float> data(256 * 4);
  const Tensor x = Tensor::wrap(data.data(), {256, 4}, DType::f32);
  auto row = [&](std::uint32_t r) { return x.view({1, 4}, {r, 0}); };
  on_each_line_path([&](Harness& h) {
    for (std::uint32_t r = 0; r < 8; ++r)
      ASSERT_EQ(h.submit_plain(Args().inout(row(r))), Producers{});  // tasks 0-7: line mode
    const std::uint64_t exits = h.dependence->map().stats().line_exits;
    // Task 8: argument 0 (half of rows 0 and 1: off the grid) leaves line mode; argument 1's line
    // (row 5) was found before.
    Producers found = h.submit_plain(Args().inout(x.view({2, 2}, {0, 1})).inout(row(5)));
    std::sort(found.begin(), found.end());
    EXPECT_EQ(found, (Producers{0, 1, 5}));
    EXPECT_EQ(h.dependence->map().stats().line_exits, exits + 1);
    EXPECT_EQ(h.submit_plain(Args().in(row(5))), (Producers{8}));
    found = h.submit_plain(Args().in(row(1)));  // (task 8 wrote part of row 1)
    std::sort(found.begin(), found.end());
    EXPECT_EQ(found, (Producers{1, 8}));
  });
  on_each_line_path([&](Harness& h) {
    for (std::uint32_t r = 0; r < 4; ++r)
      ASSERT_EQ(h.submit_plain(Args().inout(row(r))), Producers{});  // a table of 64 lines
    // Task 4: argument 0 (row 200, past the table) grows it; argument 1's line (row 1) was found
    // in the old table.
    EXPECT_EQ(h.submit_plain(Args().inout(row(200)).inout(row(1))), (Producers{1}));
    EXPECT_EQ(h.dependence->map().stats().line_exits, 0u);
    EXPECT_EQ(h.submit_plain(Args().in(row(1))), (Producers{4}));
    EXPECT_EQ(h.submit_plain(Args().in(row(200))), (Producers{4}));
  });
}

// A read of a slot whose live readers are of another ring leaves line mode in the middle of a
// submit whose lines were all found first (the large-map path): that argument and the later ones
// are recorded the general way, and later accesses find every one of them; the earlier arguments
// stay recorded in their lines (converted with the rest). Once at the first argument place, once
// at a later one (place 1, with place 2 after it). (The buffer leaves line mode with its slot
// phase set and is named again in the same places: find_line tests line mode by that phase
// alone, so every end of line mode must put it back.)
TEST(Dependence, ALineLeftWhileRecordingTakesTheRestOfTheSubmitTheGeneralWay) {
  std::vector<float> data(64 * 4);
  const Tensor x = Tensor::wrap(data.data(), {64, 4}, DType::f32);
  auto row = [&](std::uint32_t r) { return x.view({1, 4}, {r, 0}); };
  for (const bool slot_first : {false, true}) {
    SCOPED_TRACE(slot_first ? "large-map path" : "small-map path");
    auto line_harness = [&] {
      auto h = std::make_unique<Harness>();
      h->lines_always();
      if (slot_first) h->slot_first();
      return h;
    };
    auto sorted = [](std::vector<TaskSlot*> slots) {
      std::sort(slots.begin(), slots.end());
      return slots;
    };
    TaskSlot* a;
    TaskSlot* b;
    TaskSlot* c;
    TaskSlot* d;
    TaskSlot* e;
    {
      SCOPED_TRACE("left at place 0");
      const auto h = line_harness();
      EXPECT_TRUE(h->submit_plain_on(0, Args().inout(row(1)), &a).empty());
      // (Argument places 0 and 1 name the buffer: the next submits find their lines by place.)
      EXPECT_TRUE(h->submit_plain_on(0, Args().inout(row(3)).inout(row(2)), &b).empty());
      EXPECT_EQ(h->submit_plain_on(1, Args().in(row(1)), &c), std::vector<TaskSlot*>{a});
      const std::uint64_t exits = h->dependence->map().stats().line_exits;
      // Argument 0 meets ring 1's live reader: the buffer leaves line mode there.
      EXPECT_EQ(h->submit_plain_on(0, Args().in(row(1)).inout(row(2)), &d),
                (std::vector<TaskSlot*>{a, b}));
      EXPECT_EQ(h->dependence->map().stats().line_exits, exits + 1);
      EXPECT_EQ(h->submit_plain_on(0, Args().inout(row(2)), &e), std::vector<TaskSlot*>{d});
      EXPECT_EQ(sorted(h->submit_plain_on(0, Args().inout(row(1)), &e)), sorted({a, c, d}));
    }
    {
      SCOPED_TRACE("left at place 1");
      const auto h = line_harness();
      EXPECT_TRUE(h->submit_plain_on(0, Args().inout(row(1)), &a).empty());
      EXPECT_EQ(h->submit_plain_on(0, Args().inout(row(2)).inout(row(1)).inout(row(3)), &b),
                std::vector<TaskSlot*>{a});
      EXPECT_EQ(h->submit_plain_on(1, Args().in(row(1)), &c), std::vector<TaskSlot*>{b});
      const std::uint64_t exits = h->dependence->map().stats().line_exits;
      // Argument 1 meets ring 1's live reader: the buffer leaves line mode there; argument 2
      // (row 3) follows it the general way.
      EXPECT_EQ(h->submit_plain_on(0, Args().in(row(2)).in(row(1)).inout(row(3)), &d),
                std::vector<TaskSlot*>{b});
      EXPECT_EQ(h->dependence->map().stats().line_exits, exits + 1);
      EXPECT_EQ(h->submit_plain_on(0, Args().inout(row(3)), &e), std::vector<TaskSlot*>{d});
      EXPECT_EQ(sorted(h->submit_plain_on(0, Args().inout(row(1)), &e)), sorted({b, c, d}));
      const std::vector<TaskSlot*> found = h->submit_plain_on(0, Args().inout(row(2)), &e);
      EXPECT_TRUE(std::find(found.begin(), found.end(), d) != found.end()) << "d read row 2";
    }
  }
}

// find_line's slot test (BufferInfo::line_mask / line_phase) is set by the first try of a
// line-mode episode and put back when the episode ends: a buffer that empties and starts lines
// again on a grid of another phase (two-row slots from row 1 instead of row 0) must not match
// its old slots. Task 4 reads rows 2-3, which was a slot of the first episode and overlaps two of
// the second: it must find the write of rows 1-2.
TEST(Dependence, ALineEpisodeOfAnotherPhaseDoesNotMatchTheLastOnesSlots) {
  std::vector<float> data(16 * 8);
  const Tensor x = Tensor::wrap(data.data(), {16, 8}, DType::f32);
  auto rows = [&](std::uint32_t r) { return x.view({2, 8}, {r, 0}); };  // 64 bytes
  Harness h;
  h.lines_always();
  ASSERT_EQ(h.submit_plain(Args().inout(rows(0))), Producers{});  // task 0: slots from row 0
  ASSERT_EQ(h.submit_plain(Args().in(rows(2))), Producers{});     // (argument place 0 learns x)
  ASSERT_EQ(h.submit_plain(Args().in(rows(4))), Producers{});     // a line found: the test set
  h.retire_below(3);
  ASSERT_EQ(h.dependence->map().live_entries(), 0u);
  ASSERT_EQ(h.submit_plain(Args().inout(rows(1))), Producers{});  // task 3: slots from row 1
  EXPECT_EQ(h.submit_plain(Args().in(rows(2))), (Producers{3}));
  EXPECT_EQ(h.submit_plain(Args().inout(rows(3))), (Producers{4}));
}

// Arguments past the eighth (the tags were once classified eight at a time), between arguments that
// take no part in tracking (no_dep) and reads and writes of one buffer's rows.
TEST(Dependence, PlainSubmitTracksArgumentsPastTheEighth) {
  std::vector<float> data(16 * 4);
  const Tensor x = Tensor::wrap(data.data(), {16, 4}, DType::f32);
  auto row = [&](std::uint32_t r) { return x.view({1, 4}, {r, 0}); };
  Harness h;
  h.lines_always();
  Args first;
  for (std::uint32_t r = 0; r < 9; ++r)
    first.no_dep(row(r));
  first.inout(row(9)).in(row(10)).no_dep(row(11)).out_existing(row(12));
  ASSERT_EQ(h.submit_plain(first), Producers{});  // task 0
  for (std::uint32_t r = 0; r < 9; ++r)
    EXPECT_EQ(h.submit_plain(Args().inout(row(r))), Producers{}) << r;  // tasks 1-9: no_dep
  EXPECT_EQ(h.submit_plain(Args().in(row(9))), (Producers{0}));
  EXPECT_EQ(h.submit_plain(Args().in(row(10))), Producers{});  // a read after a read
  Producers found = h.submit_plain(Args().inout(row(10)));
  std::sort(found.begin(), found.end());
  EXPECT_EQ(found, (Producers{0, 11}));
  EXPECT_EQ(h.submit_plain(Args().inout(row(11))), Producers{});
  EXPECT_EQ(h.submit_plain(Args().in(row(12))), (Producers{0}));
}

// The line paths of a plain submit with no created argument (the small map's, and the large
// map's two passes, which read each argument's tag where it is): arguments that take no part
// (no_dep, out) between tracked ones, each tracked one recorded as its tag says (inout and
// out_existing as writes), and the rest of a submit whose buffer leaves line mode at an
// argument (ring 1's live reader) recorded the general way with the same kinds.
TEST(Dependence, LinePathsRecordEachArgumentAsItsTagSays) {
  std::vector<float> data(64 * 4);
  const Tensor x = Tensor::wrap(data.data(), {64, 4}, DType::f32);
  auto row = [&](std::uint32_t r) { return x.view({1, 4}, {r, 0}); };
  const TensorSpec fresh({4}, DType::f32);
  on_each_line_path([&](Harness& h) {
    auto submit = [&](int ring, const Args& args) {
      TaskSlot* slot;
      std::vector<TaskSlot*> found = h.submit_plain_on(ring, args, &slot);
      std::sort(found.begin(), found.end());
      return std::make_pair(slot, found);
    };
    using Slots = std::vector<TaskSlot*>;
    // a: writes rows 0-4 (line mode; each argument place learns the buffer).
    const auto [a, a_found] =
        submit(0, Args().inout(row(0)).inout(row(1)).inout(row(2)).inout(row(3)).inout(row(4)));
    EXPECT_EQ(a_found, Slots{});
    const auto [b, b_found] = submit(
        0,
        Args().no_dep(row(0)).inout(row(1)).out(fresh).in(row(2)).out_existing(row(3)).in(row(4)));
    EXPECT_EQ(b_found, Slots{a});
    EXPECT_EQ(submit(0, Args().in(row(0))).second, Slots{a});  // b's no_dep is not recorded
    EXPECT_EQ(submit(0, Args().in(row(1))).second, Slots{b});  // inout: a write
    EXPECT_EQ(submit(0, Args().in(row(2))).second, Slots{a});  // in: a read
    EXPECT_EQ(submit(0, Args().in(row(3))).second, Slots{b});  // out_existing: a write
    EXPECT_EQ(submit(0, Args().in(row(4))).second, Slots{a});
    // Ring 1 reads row 5: ring 0's read of it at place 2 leaves line mode there, and places 3
    // (a write), 4 (no_dep) and 5 (a write) follow it the general way.
    const auto [r, r_found] = submit(1, Args().in(row(5)));
    EXPECT_EQ(r_found, Slots{});
    const auto [g, g_found] = submit(
        0, Args().in(row(6)).no_dep(row(7)).in(row(5)).out_existing(row(8)).no_dep(row(9)).inout(
               row(10)));
    EXPECT_EQ(g_found, Slots{});
    EXPECT_EQ(submit(0, Args().in(row(8))).second, Slots{g});
    EXPECT_EQ(submit(0, Args().in(row(10))).second, Slots{g});
    EXPECT_EQ(submit(0, Args().inout(row(7)).inout(row(9))).second, Slots{});
    EXPECT_EQ(submit(0, Args().inout(row(6))).second, Slots{g});
    Slots readers_of_5{r, g};
    std::sort(readers_of_5.begin(), readers_of_5.end());
    EXPECT_EQ(submit(0, Args().inout(row(5))).second, readers_of_5);
  });
}

// The plain submit path (collect_and_record) against a brute-force oracle and against the
// two-pass path (collect, then record): many readers of one cell then a writer, whole rows and
// partial boxes of one buffer (grid and size-class indexing), several arguments of one task on
// overlapping regions, a bumped version, and tasks retiring in order meanwhile. Every conflict
// with a task not yet retired must be ordered through the reported edges, no edge may be
// spurious or point at the task itself, and both paths must report the same producers except
// the writers a slot line's readers stand for (expect_same_or_reached).
// `readers`: mostly reads of whole rows of a small buffer and of the gate (many live readers of
// one region: merged reader entries), rare writes, frequent retirement.
// `lines`: the plain path keeps grid slots in slot lines (the default); else in entries.
// `pauses`: the line path's pauses after a miss (Dependence::set_line_pauses; {} for the
// defaults). `phases`: the program alternates phases of 48 tasks whose arguments all have their
// slot lines (whole rows of the grid buffer, no versions, no transposes; everything earlier
// retired when one starts) with phases whose row arguments mostly miss them (partial boxes,
// transposes): the line path must pause in the one and come back in the other.
// The plain path's producers (`found`) against the two-pass path's (`expected`) for task `task`:
// the same, except writers that a slot line's live readers stand for (a write to a line reports
// its readers, not its writer: TensorMap::line_access). Each producer left out must be one that
// a reported producer reaches through the edges recorded so far (`edges`, by the plain path).
// Returns how many were left out.
std::size_t expect_same_or_reached(const std::set<std::uint32_t>& found, const Producers& expected,
                                   const std::vector<std::set<std::uint32_t>>& edges, int program,
                                   int task) {
  std::size_t left_out = 0;
  const std::set<std::uint32_t> want(expected.begin(), expected.end());
  for (const std::uint32_t p : found) {
    EXPECT_EQ(want.count(p), 1u) << "program " << program << ", task " << task << ": producer " << p
                                 << " that the two-pass path does not report";
  }
  for (const std::uint32_t p : want) {
    if (found.count(p) != 0) continue;
    ++left_out;
    // Depth first through the plain path's edges from every reported producer.
    std::vector<std::uint32_t> stack(found.begin(), found.end());
    std::set<std::uint32_t> seen;
    bool reached = false;
    while (!stack.empty() && !reached) {
      const std::uint32_t q = stack.back();
      stack.pop_back();
      if (!seen.insert(q).second || q >= edges.size()) continue;
      reached = edges[q].count(p) != 0;
      stack.insert(stack.end(), edges[q].begin(), edges[q].end());
    }
    EXPECT_TRUE(reached) << "program " << program << ", task " << task << ": producer " << p
                         << " left out but not reached through the reported ones";
  }
  return left_out;
}

// Tasks finish in order: after the first 20 submits, now and then (`pick(0, odds) == 0`) both
// harnesses retire a prefix of the `j` tasks submitted, never the last 8.
template <class Pick>
void maybe_retire_prefix(Harness& plain, Harness& two_pass, int j, std::uint32_t odds, Pick& pick) {
  if (j > 20 && pick(0, odds) == 0 &&
      plain.rings[0]->retired() + 8 <= static_cast<std::uint32_t>(j)) {
    const std::uint32_t end = pick(plain.rings[0]->retired(), static_cast<std::uint32_t>(j - 8));
    plain.retire_below(end);
    two_pass.retire_below(end);
  }
}

// Submits `args` on `plain` and on the oracle `two_pass`, checks the producers `plain` found (each
// once, every one the oracle's or reached through them: expect_same_or_reached) and appends them
// to `edges`. Returns how many of the oracle's producers `plain` left out as reached.
std::size_t submit_against_oracle(Harness& plain, Harness& two_pass, const Args& args,
                                  std::vector<std::set<std::uint32_t>>& edges, int program,
                                  int task) {
  const Producers found = plain.submit_plain(args);
  const Producers expected = two_pass.submit(args);
  std::set<std::uint32_t> set(found.begin(), found.end());
  EXPECT_EQ(set.size(), found.size()) << "program " << program << ": a producer listed twice";
  const std::size_t left_out = expect_same_or_reached(set, expected, edges, program, task);
  edges.push_back(std::move(set));
  return left_out;
}

struct LineGate {
  bool set = false;
  std::uint64_t first = 0, last = 0;
};
void check_plain_path_against_oracle(bool readers, int seed_base, bool slot_first = false,
                                     bool lines = true, LineGate pauses = {}, bool phases = false) {
  struct Box {
    int buffer;
    std::uint32_t r0, rows, c0, cols, version;
    bool write;
  };
  auto conflict = [](const Box& a, const Box& b) {
    if (a.buffer != b.buffer || !(a.write || b.write)) return false;
    if (a.version != b.version) return true;  // versions of one buffer are always ordered
    return a.r0 < b.r0 + b.rows && b.r0 < a.r0 + a.rows && a.c0 < b.c0 + b.cols &&
           b.c0 < a.c0 + a.cols;
  };
  const int programs = tmr::testing::scaled(60, 6);
  std::uint64_t merged = 0;
  std::uint64_t reused = 0;
  std::uint64_t left_out = 0;            // writers a line's readers stood for
  std::uint64_t open_in_line_phase = 0;  // submits that took the line path, by phase
  std::uint64_t open_in_miss_phase = 0;
  std::uint64_t paused_in_line_phase = 0;
  std::uint64_t paused_in_miss_phase = 0;
  for (int program = 0; program < programs; ++program) {
    std::mt19937 rng(static_cast<std::uint32_t>(seed_base + program));
    auto pick = [&](std::uint32_t lo, std::uint32_t hi) {
      return std::uniform_int_distribution<std::uint32_t>(lo, hi)(rng);
    };
    constexpr std::uint32_t kRows = 8, kCols = 8;
    float gate_cell = 0;
    std::vector<float> grid(kRows * kCols);
    const Tensor buffers[2] = {Tensor::wrap(&gate_cell, {1, 1}, DType::f32),
                               Tensor::wrap(grid.data(), {kRows, kCols}, DType::f32)};
    Harness plain(1024);
    if (slot_first) plain.slot_first();
    if (!lines) plain.entries_only();
    if (pauses.set) plain.dependence->set_line_pauses(pauses.first, pauses.last);
    Harness two_pass(1024);
    const int tasks = readers ? 400 : 220;
    const std::uint32_t rows = readers ? 3 : kRows;  // rows in use
    const std::uint32_t gate_write_odds = readers ? 40 : 15;
    const std::uint32_t row_write_odds = readers ? 9 : 2;  // a row access writes 1 in (odds + 1)
    std::vector<std::vector<Box>> boxes;
    std::vector<std::set<std::uint32_t>> edges;
    std::vector<std::uint32_t> retired_at_submit;
    const std::uint32_t partial_odds = pick(0, 1) == 0 ? 4 : 40;
    for (int j = 0; j < tasks; ++j) {
      maybe_retire_prefix(plain, two_pass, j, readers ? 4 : 9, pick);
      const bool line_phase = phases && (j / 48) % 2 == 1;
      if (line_phase && j % 48 == 0) {
        // Everything earlier retires: the grid buffer empties and starts lines again.
        plain.retire_below(static_cast<std::uint32_t>(j));
        two_pass.retire_below(static_cast<std::uint32_t>(j));
      }
      retired_at_submit.push_back(plain.rings[0]->retired());
      Args args;
      std::vector<Box> mine;
      const int count = static_cast<int>(pick(1, 4));
      for (int a = 0; a < count; ++a) {
        Box b{};
        const bool repeat = !mine.empty() && pick(0, 3) == 0;
        if (repeat) {
          b = mine[pick(0, static_cast<std::uint32_t>(mine.size() - 1))];  // the same region again
          b.write = pick(0, 1) == 0;
        } else if (!line_phase && pick(0, 2) == 0) {
          // The gate: mostly read, now and then written.
          b = Box{0, 0, 1, 0, 1, 0, pick(0, gate_write_odds) == 0};
        } else {
          b.buffer = 1;
          b.r0 = pick(0, rows - 1);
          b.rows = 1;
          b.c0 = 0;
          b.cols = kCols;
          if (!line_phase && (phases || pick(0, partial_odds) == 0)) {
            // a partial box: overlaps rows in part
            b.rows = pick(1, kRows - b.r0);
            b.c0 = pick(0, kCols - 1);
            b.cols = pick(1, kCols - b.c0);
          }
          b.write = pick(0, row_write_odds) == 0;
          b.version = !line_phase && pick(0, 60) == 0 ? 1 : 0;
        }
        Tensor t = buffers[b.buffer].view({b.rows, b.cols}, {b.r0, b.c0});
        if (b.version != 0) t = t.with_version(b.version);
        if ((readers || phases) && !line_phase && pick(0, 5) == 0) {
          t = t.transpose(0, 1);  // the same elements, strided
        }
        add_access(args, t, b.write, b.write && pick(0, 1) == 0);  // same draws as before
        mine.push_back(b);
      }
      if (pick(0, 7) == 0) args.no_dep(buffers[1]);  // takes no part
      const bool open = plain.dependence->line_path_open();
      (line_phase ? (open ? open_in_line_phase : paused_in_line_phase)
                  : (open ? open_in_miss_phase : paused_in_miss_phase))++;
      left_out += submit_against_oracle(plain, two_pass, args, edges, program, j);
      boxes.push_back(mine);
      if (j % 16 != 15) continue;  // (a check walks every bucket)
      std::uint64_t linked = 0;
      ASSERT_TRUE(plain.dependence->map().chains_consistent(&linked))
          << "program " << program << ", task " << j;
      ASSERT_EQ(linked, plain.dependence->map().live_entries())
          << "program " << program << ", task " << j;
    }
    merged += plain.dependence->map().stats().merged_reads;
    reused += plain.dependence->map().stats().reused_writes;
    testing::expect_exact_live_edges(edges, retired_at_submit, boxes, conflict, program);
  }
  EXPECT_GT(merged, 0u) << "no read was merged into an earlier reader's entry";
  EXPECT_GT(reused, 0u) << "no write took over the entry of the write it covers";
  if (lines) {
    EXPECT_GT(left_out, 0u) << "no write after a line's readers left their writer out";
  } else {
    EXPECT_EQ(left_out, 0u) << "entries report every overlapping live access";
  }
  if (phases && lines && pauses.set && pauses.last != 0) {
    // The gate moved both ways: mostly line submits in the phases that have lines, mostly pauses
    // in the others. (The default pauses outlast these 48-task phases: correctness only.)
    EXPECT_GT(open_in_line_phase, paused_in_line_phase);
    EXPECT_GT(paused_in_miss_phase, open_in_miss_phase);
  }
}

// Programs that switch between arguments that miss their slot lines and arguments that have
// them, and back: the line path pauses and comes back (with the default pauses, short ones, and
// lines tried on every submit), and every conflict is still ordered, as by the two-pass path.
TEST(Dependence, ALinePathThatPausesAndComesBackOrdersEveryConflict) {
  check_plain_path_against_oracle(false, 7400, false, true, {}, true);
  check_plain_path_against_oracle(false, 7500, false, true, {true, 2, 8}, true);
  check_plain_path_against_oracle(false, 7600, true, true, {true, 2, 8}, true);  // large map
  check_plain_path_against_oracle(true, 7700, false, true, {true, 0, 0}, true);
  check_plain_path_against_oracle(true, 7800, true, true, {true, 0, 0}, true);
}

// Spans on the line path (find_line<kSpans>, access_span): rank-1 accesses of 1-4 cells of two
// 40-cell buffers whose first access is one cell (a one-cell grid from the start, so every span
// is whole slots and nothing is cut), 1-3 accesses a task (a repeat of the task's own region now
// and then), runs of readers, tasks retiring in order meanwhile. Every conflict with a live task
// is ordered and no edge is spurious (brute force), the producers are the two-pass path's but
// the writers a line's readers stand for, no submit leaves the lines or goes by regions (past
// the buffers' first accesses the line path never pauses: a span that missed its lines would
// pause it), and spans were taken.
// `slot_first`: the large map's walk (lines found first, then recorded).
void check_line_spans_against_oracle(int seed_base, bool slot_first) {
  struct Box {
    int buffer;
    std::uint32_t lo, count;
    bool write;
  };
  auto conflict = [](const Box& a, const Box& b) {
    return a.buffer == b.buffer && (a.write || b.write) && a.lo < b.lo + b.count &&
           b.lo < a.lo + a.count;
  };
  constexpr std::uint32_t kCells = 40;
  const int programs = tmr::testing::scaled(40, 6);
  std::uint64_t spans = 0;
  std::uint64_t left_out = 0;
  for (int program = 0; program < programs; ++program) {
    std::mt19937 rng(static_cast<std::uint32_t>(seed_base + program));
    auto pick = [&](std::uint32_t lo, std::uint32_t hi) {
      return std::uniform_int_distribution<std::uint32_t>(lo, hi)(rng);
    };
    std::vector<std::int32_t> cells[2] = {std::vector<std::int32_t>(kCells),
                                          std::vector<std::int32_t>(kCells)};
    const Tensor buffers[2] = {Tensor::wrap(cells[0].data(), {kCells}, DType::i32),
                               Tensor::wrap(cells[1].data(), {kCells}, DType::i32)};
    Harness plain(1024);
    if (slot_first) plain.slot_first();
    // Each buffer's first access makes it (by regions, a miss): the line path pauses for the next
    // 2 submits, then never again.
    plain.dependence->set_line_pauses(2, 2);
    Harness two_pass(1024);
    std::vector<std::vector<Box>> boxes;
    std::vector<std::set<std::uint32_t>> edges;
    std::vector<std::uint32_t> retired_at_submit;
    const int tasks = 240;
    for (int j = 0; j < tasks; ++j) {
      maybe_retire_prefix(plain, two_pass, j, 6, pick);
      retired_at_submit.push_back(plain.rings[0]->retired());
      Args args;
      std::vector<Box> mine;
      const int count = j < 2 ? 1 : static_cast<int>(pick(j % 4 == 0 ? 2 : 1, 3));
      for (int a = 0; a < count; ++a) {
        Box b{};
        if (j % 4 == 0 && a < 2) {
          // Every fourth task reads a cell of each buffer: the last tasks, which never retire
          // here, touch both, so neither buffer empties and starts a grid of another length.
          b = Box{a, pick(0, kCells - 1), 1, false};
        } else if (!mine.empty() && pick(0, 5) == 0) {
          b = mine[pick(0, static_cast<std::uint32_t>(mine.size() - 1))];  // its own region again
          b.write = pick(0, 1) == 0;
        } else {
          b.buffer = j < 2 ? j : static_cast<int>(pick(0, 1));
          b.count = j < 2 ? 1 : pick(1, 4);  // (each buffer's first access: one cell)
          b.lo = pick(0, kCells - b.count);
          b.write = pick(0, 3) == 0;
        }
        add_access(args, buffers[b.buffer].view({b.count}, {b.lo}), b.write, pick(0, 1) == 0);
        mine.push_back(b);
      }
      if (j >= 4) {
        ASSERT_TRUE(plain.dependence->line_path_open())
            << "program " << program << ", task " << j << ": the line path paused";
      }
      left_out += submit_against_oracle(plain, two_pass, args, edges, program, j);
      boxes.push_back(mine);
    }
    const TensorMapStats& stats = plain.dependence->map().stats();
    EXPECT_EQ(stats.line_exits, 0u) << "program " << program;
    EXPECT_EQ(stats.line_refines, 0u) << "program " << program;
    EXPECT_LE(plain.dependence->map().live_entries(), 2u)
        << "program " << program << ": the two buffers' anchors, no entry";
    spans += stats.span_accesses;
    testing::expect_exact_live_edges(edges, retired_at_submit, boxes, conflict, program);
  }
  EXPECT_GT(spans, 0u) << "no access of several slots";
  EXPECT_GT(left_out, 0u) << "no write after a line's readers left their writer out";
}

TEST(Dependence, LinePathRecordsSpansInPlaceAndOrdersEveryConflict) {
  check_line_spans_against_oracle(8100, false);
  check_line_spans_against_oracle(8200, true);  // large map: lines found first
}

// A buffer written forward, row after row, past the end of its line table (the peers' stencil:
// each task reads 1-3 cells of the row before, now and then writes them, and writes a cell, or
// two, of its own row): a
// line table starts at 64 lines and doubles, and an access past its end grows it on the line
// path (TensorMap::grow_lines_for; the cold walk finds its lines again after), where it used to
// miss and pause the lines. Tasks retire in order, the last few always live (the buffer never
// empties). Every conflict with a live task is ordered and no edge is spurious (brute force),
// the producers are the two-pass path's but the writers a line's readers stand for, the line
// path never pauses past the first access, no submit leaves the lines, and the table grew.
// `path`: the warm walk (0) or the large map's (1: lines found first, then recorded).
void check_growing_lines_against_oracle(int seed_base, int path) {
  struct Box {
    std::uint32_t lo, count;
    bool write;
  };
  auto conflict = [](const Box& a, const Box& b) {
    return (a.write || b.write) && a.lo < b.lo + b.count && b.lo < a.lo + a.count;
  };
  const int programs = tmr::testing::scaled(6, 2);
  for (int program = 0; program < programs; ++program) {
    std::mt19937 rng(static_cast<std::uint32_t>(seed_base + program));
    auto pick = [&](std::uint32_t lo, std::uint32_t hi) {
      return std::uniform_int_distribution<std::uint32_t>(lo, hi)(rng);
    };
    const std::uint32_t width = pick(3, 8);
    const std::uint32_t rows = 1200 / width;
    std::vector<std::int32_t> cells(std::size_t{width} * rows);
    const Tensor buffer =
        Tensor::wrap(cells.data(), {static_cast<std::uint32_t>(cells.size())}, DType::i32);
    Harness plain(1024);
    if (path == 1) plain.slot_first();
    // The buffer's first access makes it (by regions, a miss): a pause of 2 submits, then none.
    plain.dependence->set_line_pauses(2, 2);
    Harness two_pass(1024);
    std::vector<std::vector<Box>> boxes;
    std::vector<std::set<std::uint32_t>> edges;
    std::vector<std::uint32_t> retired_at_submit;
    int j = 0;
    for (std::uint32_t row = 0; row < rows; ++row) {
      for (std::uint32_t i = 0; i < width; ++i, ++j) {
        maybe_retire_prefix(plain, two_pass, j, 5, pick);
        retired_at_submit.push_back(plain.rings[0]->retired());
        Args args;
        std::vector<Box> mine;
        if (row > 0) {  // (the first row is only written: a one-cell grid from the first task)
          const std::uint32_t lo = i == 0 ? 0 : pick(i - 1, i);
          const std::uint32_t count = std::min(pick(1, 3), width - lo);
          // (Now and then a write: a read recorded in a table that then moved would lose it.)
          mine.push_back(Box{(row - 1) * width + lo, count, pick(0, 5) == 0});
        }
        const std::uint32_t written = row > 0 && i + 1 < width && pick(0, 4) == 0 ? 2 : 1;
        mine.push_back(Box{row * width + i, written, true});
        for (const Box& b : mine) {
          const Tensor view = buffer.view({b.count}, {b.lo});
          if (b.write) {
            args.out_existing(view);
          } else {
            args.in(view);
          }
        }
        if (j >= 2) {
          ASSERT_TRUE(plain.dependence->line_path_open())
              << "program " << program << ", task " << j << ": the line path paused";
        }
        submit_against_oracle(plain, two_pass, args, edges, program, j);
        boxes.push_back(mine);
      }
    }
    const TensorMapStats& stats = plain.dependence->map().stats();
    EXPECT_EQ(stats.line_exits, 0u) << "program " << program;
    EXPECT_GT(stats.span_accesses, 0u) << "program " << program;
    EXPECT_GE(plain.dependence->map().line_table_lines(), 1024u)
        << "program " << program << ": the table did not grow";
    testing::expect_exact_live_edges(edges, retired_at_submit, boxes, conflict, program);
  }
}

TEST(Dependence, LinePathGrowsItsTableForABufferWrittenForward) {
  check_growing_lines_against_oracle(8300, 0);
  check_growing_lines_against_oracle(8400, 1);  // large map: lines found first
}

// The warm walk's span try takes what the one-slot try kept of a span (its buffer, first byte and
// length: TensorMap::take_marked_span) once: a later argument that misses its line for another
// reason (a buffer the map does not know, a rank-3 view) is no span of the earlier buffer, and a
// span of another argument place or buffer finds its own lines. (The plain walk pauses its lines
// after task 0's first accesses and goes by regions here; lines always keeps them.)
TEST(Dependence, WarmSpanTryTakesOnlyItsOwnArgumentsSpan) {
  for (const int path : {0, 2}) {
    SCOPED_TRACE(plain_walk_name(path));
    Harness h(64);
    h.plain_walk(path);
    std::vector<float> xs(64);
    std::vector<float> ys(64);
    std::vector<float> ws(64);
    std::vector<float> zs(64);
    const Tensor x = Tensor::wrap(xs.data(), {64}, DType::f32);
    const Tensor y = Tensor::wrap(ys.data(), {64}, DType::f32);
    const Tensor w = Tensor::wrap(ws.data(), {64}, DType::f32);
    const Tensor z = Tensor::wrap(zs.data(), {4, 4, 4}, DType::f32);
    EXPECT_EQ(h.submit_plain(Args().inout(x.view({1}, {0})).inout(y.view({1}, {0}))),
              Producers{});                                                  // task 0
    EXPECT_EQ(h.submit_plain(Args().inout(x.view({4}, {4}))), Producers{});  // 1: a span
    EXPECT_EQ(h.submit_plain(Args().inout(w.view({4}, {4}))), Producers{});  // 2: new
    EXPECT_EQ(h.submit_plain(Args().in(x.view({1}, {6}))), (Producers{1}));  // 3
    EXPECT_EQ(h.submit_plain(Args().in(x.view({2}, {8}))), Producers{});     // 4: a span
    EXPECT_EQ(h.submit_plain(Args().inout(z)), Producers{});                 // 5: rank 3
    EXPECT_EQ(h.submit_plain(Args().in(w.view({1}, {5}))), (Producers{2}));  // 6
    // Spans in both places of one submit, each on its own buffer's lines.
    Producers both = h.submit_plain(Args().inout(x.view({3}, {5})).inout(y.view({2}, {0})));  // 7
    std::sort(both.begin(), both.end());
    EXPECT_EQ(both, (Producers{0, 1, 3}));
    EXPECT_EQ(h.submit_plain(Args().in(y.view({1}, {1}))), (Producers{7}));  // 8
    EXPECT_EQ(h.submit_plain(Args().in(x.view({1}, {8}))), Producers{});     // 9: 4 read it
    EXPECT_GE(h.dependence->map().stats().span_accesses, 3u);
  }
}

// A buffer's line mode ends when the newest task in its lines retires (TensorMap::line_holder,
// from line_last): a span recorded by the warm walk's span try (line_last set once for all its
// lines) keeps the lines while its task is live, past the retirement of the task that started them.
TEST(Dependence, SpanKeepsTheLinesWhileItsTaskIsLive) {
  for (const int path : {0, 2}) {
    SCOPED_TRACE(plain_walk_name(path));
    Harness h(64);
    h.plain_walk(path);
    std::vector<float> xs(64);
    const Tensor x = Tensor::wrap(xs.data(), {64}, DType::f32);
    EXPECT_EQ(h.submit_plain(Args().inout(x.view({1}, {0}))), Producers{});  // task 0: lines
    EXPECT_EQ(h.submit_plain(Args().inout(x.view({4}, {4}))), Producers{});  // 1: a span write
    EXPECT_EQ(h.submit_plain(Args().in(x.view({3}, {1}))), Producers{});     // 2: a span read
    h.retire_below(1);  // task 0 retires: 1 and 2 are the lines' live tasks
    EXPECT_EQ(h.submit_plain(Args().in(x.view({1}, {5}))), (Producers{1}));     // 3
    EXPECT_EQ(h.submit_plain(Args().inout(x.view({2}, {2}))), (Producers{2}));  // 4
    h.retire_below(2);  // task 1 retires: 2, 3 and 4 are live
    Producers w = h.submit_plain(Args().inout(x.view({4}, {2})));  // 5: x[2..6)
    std::sort(w.begin(), w.end());
    EXPECT_EQ(w, (Producers{3, 4}));
    EXPECT_GE(h.dependence->map().stats().span_accesses, path == 2 ? 4u : 0u);
  }
}

TEST(Dependence, PlainSubmitPathOrdersEveryConflictAndMatchesTheTwoPassPath) {
  check_plain_path_against_oracle(false, 7100);
  check_plain_path_against_oracle(false, 7100, true);          // slots found first (large-map path)
  check_plain_path_against_oracle(false, 7200, false, false);  // entries only
  check_plain_path_against_oracle(false, 7300, true, false);
}

// Many live readers of one region share one entry: a writer after them must still wait for each
// reader not yet retired, through both submit paths, while readers retire in between.
TEST(Dependence, MergedReadersKeepEveryWriteAfterReadEdge) {
  check_plain_path_against_oracle(true, 9100);
  check_plain_path_against_oracle(true, 9100, true);
  check_plain_path_against_oracle(true, 9200, false, false);  // entries only
  check_plain_path_against_oracle(true, 9300, true, false);
}

TEST(Dependence, MergedReaderEntryOutlivesItsFirstReader) {
  std::vector<float> data(64);
  const Tensor m = Tensor::wrap(data.data(), {8, 8}, DType::f32);
  const Tensor row = m.view({1, 8}, {2, 0});
  Harness h(256);
  h.entries_only();  // (the entries themselves are checked; lines: SlotLines* tests)
  EXPECT_EQ(h.submit_plain(Args().inout(row)), Producers{});  // task 0
  for (std::uint32_t i = 1; i <= 40; ++i)                     // tasks 1..40 read the row
    EXPECT_EQ(h.submit_plain(Args().in(row)), (Producers{0}));
  // One write entry and one merged read entry (three reader blocks).
  EXPECT_EQ(h.dependence->map().live_entries(), 2u);
  EXPECT_EQ(h.dependence->map().stats().merged_reads, 39u);
  // The first reader (the entry's creator) and the next 24 retire: the entry moves to a live
  // reader's list instead of being freed, and a writer waits for the 15 readers left.
  h.retire_below(26);
  EXPECT_EQ(h.dependence->map().live_entries(), 1u);  // task 0's write is freed
  for (std::uint32_t i = 41; i < 60; ++i)  // tasks 41..59 read again: blocks of retired readers go
    EXPECT_EQ(h.submit_plain(Args().in(row)), Producers{});
  h.retire_below(45);
  Producers writer = h.submit_plain(Args().inout(row));  // task 60
  std::sort(writer.begin(), writer.end());
  Producers expected;
  for (std::uint32_t i = 45; i < 60; ++i)
    expected.push_back(i);
  EXPECT_EQ(writer, expected);
  // A transposed view of the same row is the same bytes: a reader of it waits for the writer and
  // merges with the next plain reader.
  EXPECT_EQ(h.submit_plain(Args().in(row.transpose(0, 1))), (Producers{60}));
  EXPECT_EQ(h.submit_plain(Args().in(row)), (Producers{60}));
  EXPECT_EQ(h.dependence->map().stats().merged_reads, 39u + 19u + 1u);
  // A write of two rows (off the grid) meets both readers of the merged entry.
  Producers wide = h.submit_plain(Args().inout(m.view({2, 8}, {1, 0})));  // task 63
  std::sort(wide.begin(), wide.end());
  EXPECT_EQ(wide, (Producers{60, 61, 62}));
  h.retire_below(64);
  EXPECT_EQ(h.dependence->map().live_entries(), 0u);
}

// ---- fresh buffers (Dependence::FreshBuffer): a created buffer's reads kept with its creator

// Reads of a created buffer leave the map untouched while they are all the buffer has seen; a
// write then finds every live reader (and the creator), and the buffer goes by the map.
TEST(Dependence, FreshBufferReadsStayWithTheCreatorUntilAWrite) {
  for (const int path : {0, 1, 2}) {
    SCOPED_TRACE(plain_walk_name(path));
    Harness h(64);
    h.plain_walk(path);
    std::vector<float> data(32);
    std::vector<float> other(32);
    const Tensor ext = Tensor::wrap(other.data(), {32}, DType::f32);
    TaskSlot* creator = nullptr;
    h.submit_plain(Args().inout(ext), &creator);  // task 0 creates the buffer
    h.dependence->retain_creator(creator->id);
    const Tensor out = Tensor::make_owned(data.data(), 128, {4, 8}, DType::f32, creator->id);
    EXPECT_EQ(h.submit_plain(Args().in(out)), (Producers{0}));                       // 1
    EXPECT_EQ(h.submit_plain(Args().in(out.view({1, 8}, {2, 0}))), (Producers{0}));  // 2
    EXPECT_EQ(h.dependence->map().buffer_count(), 1u) << "only the external buffer";
    EXPECT_EQ(h.dependence->fresh_reads(), 2u);
    // A write of row 2 waits for the creator and both readers (both read row 2).
    Producers w = h.submit_plain(Args().inout(out.view({1, 8}, {2, 0})));  // 3
    std::sort(w.begin(), w.end());
    EXPECT_EQ(w, (Producers{0, 1, 2}));
    EXPECT_EQ(h.dependence->fresh_moves(), 1u);
    EXPECT_EQ(h.dependence->map().buffer_count(), 2u);
    // From now on the map: a reader of row 1 waits for the creator only; one of row 2 for the
    // writer too; a write of everything for all live readers and the writer.
    EXPECT_EQ(h.submit_plain(Args().in(out.view({1, 8}, {1, 0}))), (Producers{0}));  // 4
    w = h.submit_plain(Args().in(out.view({1, 8}, {2, 0})));                         // 5
    std::sort(w.begin(), w.end());
    EXPECT_EQ(w, (Producers{0, 3}));
    w = h.submit_plain(Args().out_existing(out));  // 6
    std::sort(w.begin(), w.end());
    EXPECT_EQ(w, (Producers{0, 1, 3, 4, 5}));
    EXPECT_EQ(h.dependence->fresh_reads(), 2u);
  }
}

// A plain submit naming exactly one created tensor checks that creator and keeps the tensor's
// read with it in one step (Dependence::begin_with_fresh_reads); with two created tensors the
// loops do. Either way: the creator is a producer whatever the tag, only an `in` is kept (a write
// of the buffer, and a no_dep, are not reads to keep), and a creator whose scope has ended is the
// error of the argument that names it, with the map and the kept reads left as they were.
TEST(Dependence, OneCreatedTensorIsCheckedAndKeptAsItsTagSays) {
  for (const int path : {0, 1, 2}) {
    SCOPED_TRACE(plain_walk_name(path));
    Harness h(64);
    h.plain_walk(path);
    std::vector<float> data(64);
    std::vector<float> other(32);
    const Tensor ext = Tensor::wrap(other.data(), {32}, DType::f32);
    TaskSlot* creator = nullptr;
    h.submit_plain(Args().inout(ext.view({8}, {0})), &creator);  // task 0 creates two buffers
    h.dependence->retain_creator(creator->id);
    const Tensor a = Tensor::make_owned(data.data(), 128, {32}, DType::f32, creator->id);
    const Tensor b = Tensor::make_owned(data.data() + 32, 128, {32}, DType::f32, creator->id);
    // One created read after an external one: kept (no map buffer for it), its creator listed.
    EXPECT_EQ(h.submit_plain(Args().in(ext.view({8}, {8})).in(a)), (Producers{0}));  // 1
    EXPECT_EQ(h.dependence->fresh_reads(), 1u);
    // no_dep of a created tensor: its creator listed, nothing kept and nothing recorded.
    EXPECT_EQ(h.submit_plain(Args().in(ext.view({8}, {16})).no_dep(b)), (Producers{0}));  // 2
    EXPECT_EQ(h.dependence->fresh_reads(), 1u);
    EXPECT_EQ(h.dependence->fresh_moves(), 0u);
    // One created tensor written (inout): not a read to keep. The write finds the creator and the
    // kept reader of `a` (the creator's buffers go by the map from now on).
    Producers w = h.submit_plain(Args().in(ext.view({8}, {24})).inout(a));  // 3
    std::sort(w.begin(), w.end());
    EXPECT_EQ(w, (Producers{0, 1}));
    EXPECT_EQ(h.dependence->fresh_reads(), 1u);
    EXPECT_EQ(h.dependence->fresh_moves(), 1u);
    // out_existing of `b`, the creator's other buffer, now by the map: the creator only.
    EXPECT_EQ(h.submit_plain(Args().out_existing(b)), (Producers{0}));  // 4
    // A read of `a` waits for its writer.
    w = h.submit_plain(Args().in(a));  // 5
    std::sort(w.begin(), w.end());
    EXPECT_EQ(w, (Producers{0, 3}));
    const std::size_t buffers = h.dependence->map().buffer_count();
    // The creator's scope ends: the one created argument is the error, under its own index, with
    // one or two created arguments, and nothing is recorded.
    h.dependence->release_creator(creator->id);
    for (const int created : {1, 2}) {
      SCOPED_TRACE(created);
      Args args;
      args.in(ext.view({8}, {0})).in(ext.view({8}, {8}));
      if (created == 2) args.in(a);
      args.in(b);
      Status status;
      h.submit_plain(args, nullptr, &status);
      EXPECT_EQ(status.code, ErrorCode::invalid_args);
      // (Two created: `a`, argument 2, is checked first; one created: `b`, argument 2.)
      EXPECT_NE(status.message.find("tensor argument 2 "), std::string::npos) << status.message;
      EXPECT_NE(status.message.find("whose scope has ended"), std::string::npos) << status.message;
      EXPECT_EQ(h.dependence->map().buffer_count(), buffers);
      EXPECT_EQ(h.dependence->fresh_reads(), 1u);
    }
  }
}

// A run's fresh records are forgotten by the next one (Dependence::reset clears each record's
// `creator`, which every reader tests first): local ids start again from 0, so a record left with
// the previous run's creator id, readers and regions would otherwise read as the new creator's.
TEST(Dependence, FreshBufferRecordsOfARunAreForgottenByTheNextRun) {
  for (const int path : {0, 1, 2}) {
    SCOPED_TRACE(plain_walk_name(path));
    Harness h(64);
    h.plain_walk(path);
    std::vector<float> data(32);
    std::vector<float> other(32);
    const Tensor ext = Tensor::wrap(other.data(), {32}, DType::f32);
    for (int run = 0; run < 3; ++run) {
      SCOPED_TRACE("run " + std::to_string(run));
      TaskSlot* creator = nullptr;
      h.submit_plain(Args().inout(ext), &creator);  // task 0 creates the buffer
      ASSERT_EQ(creator->id.local(), 0u);
      h.dependence->retain_creator(creator->id);
      const Tensor out = Tensor::make_owned(data.data(), 128, {32}, DType::f32, creator->id);
      const std::uint64_t reads = h.dependence->fresh_reads();
      const std::uint64_t moves = h.dependence->fresh_moves();
      // Tasks 1-3 read it: kept with the creator, the record full (kFreshReaders), no map entry.
      for (std::uint32_t i = 1; i <= 3; ++i)
        EXPECT_EQ(h.submit_plain(Args().in(out)), (Producers{0})) << "task " << i;
      EXPECT_EQ(h.dependence->fresh_reads(), reads + 3);
      EXPECT_EQ(h.dependence->fresh_moves(), moves) << "the record is this run's creator's";
      EXPECT_EQ(h.dependence->map().buffer_count(), 1u) << "only the external buffer";
      // A write waits for the creator and exactly the three readers.
      Producers w = h.submit_plain(Args().inout(out));  // task 4
      std::sort(w.begin(), w.end());
      EXPECT_EQ(w, (Producers{0, 1, 2, 3}));
      EXPECT_EQ(h.dependence->fresh_moves(), moves + 1);
      // The run ends (a failed run's creator may still be retained): everything retires, the
      // rings and the unit start again from local id 0, and no state of the run is left.
      const TaskId created_by = creator->id;
      h.retire_below(h.rings[0]->head());
      EXPECT_EQ(h.dependence->map().live_entries(), 0u);
      EXPECT_TRUE(h.dependence->creator_retained(created_by));
      for (const auto& ring : h.rings)
        ring->reset();
      h.dependence->reset();
      EXPECT_FALSE(h.dependence->creator_retained(created_by));
    }
  }
}

// A creator's several buffers share its record (paged attention's softmax makes three, read by
// two later tasks): reads of each are kept, and the first access of any of them that needs the
// map moves every kept read there, so a writer of either buffer still finds exactly its readers.
TEST(Dependence, FreshBufferReadsOfEveryOutputOfACreatorStayUntilAWrite) {
  for (const int path : {0, 1, 2}) {
    SCOPED_TRACE(plain_walk_name(path));
    Harness h(64);
    h.plain_walk(path);
    std::vector<float> a_data(32);
    std::vector<float> b_data(32);
    std::vector<float> other(32);
    const Tensor ext = Tensor::wrap(other.data(), {32}, DType::f32);
    TaskSlot* creator = nullptr;
    h.submit_plain(Args().inout(ext), &creator);  // task 0 creates both buffers
    h.dependence->retain_creator(creator->id);
    const Tensor a = Tensor::make_owned(a_data.data(), 128, {4, 8}, DType::f32, creator->id);
    const Tensor b = Tensor::make_owned(b_data.data(), 128, {4, 8}, DType::f32, creator->id);
    EXPECT_EQ(h.submit_plain(Args().in(a)), (Producers{0}));                       // 1
    EXPECT_EQ(h.submit_plain(Args().in(b)), (Producers{0}));                       // 2
    EXPECT_EQ(h.submit_plain(Args().in(b.view({1, 8}, {1, 0}))), (Producers{0}));  // 3
    EXPECT_EQ(h.dependence->fresh_reads(), 3u);
    EXPECT_EQ(h.dependence->map().buffer_count(), 1u) << "only the external buffer";
    // A write of `a` waits for the creator and a's reader, not b's; every kept read moves.
    Producers w = h.submit_plain(Args().inout(a.view({1, 8}, {1, 0})));  // 4
    std::sort(w.begin(), w.end());
    EXPECT_EQ(w, (Producers{0, 1}));
    EXPECT_EQ(h.dependence->fresh_moves(), 1u);
    EXPECT_EQ(h.dependence->map().buffer_count(), 3u);
    // b's kept reads are in the map now: its writer finds both readers.
    w = h.submit_plain(Args().inout(b.view({1, 8}, {1, 0})));  // 5
    std::sort(w.begin(), w.end());
    EXPECT_EQ(w, (Producers{0, 2, 3}));
    // And later reads of either go by the map (none kept).
    w = h.submit_plain(Args().in(b));  // 6
    std::sort(w.begin(), w.end());
    EXPECT_EQ(w, (Producers{0, 5}));
    EXPECT_EQ(h.dependence->fresh_reads(), 3u);
  }
}

// A fourth live reader moves the kept reads into the map (exactly: a writer still finds each
// one); retired readers make room instead; partial views are kept with their own boxes. (The
// readers run on ring 1, so that they retire while their creator, on ring 0, is live.)
TEST(Dependence, FreshBufferWithManyReadersMovesIntoTheMapExactly) {
  Harness h(64);
  std::vector<float> data(32);
  std::vector<float> other(32);
  const Tensor ext = Tensor::wrap(other.data(), {32}, DType::f32);
  TaskSlot* creator = nullptr;
  h.submit_plain(Args().inout(ext), &creator);  // r0:0
  h.dependence->retain_creator(creator->id);
  const Tensor out = Tensor::make_owned(data.data(), 128, {4, 8}, DType::f32, creator->id);
  const auto row = [&](std::uint32_t r) { return out.view({1, 8}, {r, 0}); };
  using Ids = std::vector<std::uint64_t>;
  const auto id = [](std::uint32_t ring, std::uint32_t local) {
    return TaskId(ring, local).value();
  };
  const auto on = [&](int ring, const Args& args) {
    TaskSlot* task = nullptr;
    Ids ids;
    for (TaskSlot* p : h.submit_plain_on(ring, args, &task))
      ids.push_back(p->id.value());
    std::sort(ids.begin(), ids.end());
    return ids;
  };
  for (std::uint32_t r = 0; r < 3; ++r)  // r1:0..2 read rows 0..2
    EXPECT_EQ(on(1, Args().in(row(r))), (Ids{id(0, 0)}));
  EXPECT_EQ(h.dependence->fresh_moves(), 0u);
  // r1:0 and r1:1 retire: room for two more readers.
  Ring& ring1 = *h.rings[1];
  for (std::uint32_t local = 0; local < 2; ++local)
    ring1.slot(local).release_remaining.store(0);  // consumed: its count reached zero
  ring1.try_advance();
  ring1.refresh();
  h.dependence->forget_retired(1, ring1.retired_seen());
  ASSERT_EQ(ring1.retired(), 2u);
  EXPECT_EQ(on(1, Args().in(row(3))), (Ids{id(0, 0)}));  // r1:3
  EXPECT_EQ(on(1, Args().in(row(3))), (Ids{id(0, 0)}));  // r1:4
  EXPECT_EQ(h.dependence->fresh_moves(), 0u);
  EXPECT_EQ(on(1, Args().in(row(1))), (Ids{id(0, 0)}));  // r1:5: a fourth live reader
  EXPECT_EQ(h.dependence->fresh_moves(), 1u);
  EXPECT_EQ(h.dependence->fresh_reads(), 5u);
  // A write of row 3 meets its two readers, not the others; of rows 0-1 the live one of them.
  EXPECT_EQ(on(0, Args().inout(row(3))), (Ids{id(0, 0), id(1, 3), id(1, 4)}));
  EXPECT_EQ(on(0, Args().inout(out.view({2, 8}, {0, 0}))), (Ids{id(0, 0), id(1, 5)}));
  EXPECT_EQ(on(0, Args().inout(row(2))), (Ids{id(0, 0), id(1, 2)}));
}

// A two-pass or analysed lookup, a footprint (for_each_live_entry) and an element access see a
// fresh buffer's kept reads: they move into the map first.
TEST(Dependence, FreshBufferReadsAreSeenByEveryOtherWayIntoTheMap) {
  std::vector<float> data(32);
  std::vector<float> other(32);
  const Tensor ext = Tensor::wrap(other.data(), {32}, DType::f32);
  for (const int way : {0, 1, 2}) {
    SCOPED_TRACE(way == 0 ? "two-pass submit" : way == 1 ? "footprint" : "element write");
    Harness h(64);
    TaskSlot* creator = nullptr;
    h.submit_plain(Args().inout(ext), &creator);  // task 0
    h.dependence->retain_creator(creator->id);
    const Tensor out = Tensor::make_owned(data.data(), 128, {4, 8}, DType::f32, creator->id);
    EXPECT_EQ(h.submit_plain(Args().in(out)), (Producers{0}));  // task 1
    EXPECT_EQ(h.dependence->map().buffer_count(), 1u);
    if (way == 0) {
      Producers w = h.submit(Args().inout(out.view({1, 8}, {3, 0})));
      std::sort(w.begin(), w.end());
      EXPECT_EQ(w, (Producers{0, 1}));
    } else if (way == 1) {
      std::vector<std::uint32_t> readers;
      h.dependence->for_each_live_entry(reinterpret_cast<std::uintptr_t>(out.buffer()),
                                        out.producer().value(), [&](const MapEntry& e) {
                                          EXPECT_EQ(e.kind,
                                                    static_cast<std::uint8_t>(AccessKind::read));
                                          readers.push_back(e.task_id.local());
                                        });
      EXPECT_EQ(readers, (std::vector<std::uint32_t>{1}));
    } else {
      h.dependence->begin();
      ASSERT_TRUE(h.dependence->add_creator(out, 0).ok());
      h.dependence->add_accessors(make_region(out.view({1, 1}, {0, 5})), AccessKind::write);
      std::vector<std::uint32_t> found;
      for (TaskSlot* p : h.dependence->producers())
        found.push_back(p->id.local());
      std::sort(found.begin(), found.end());
      EXPECT_EQ(found, (std::vector<std::uint32_t>{0, 1}));
    }
    EXPECT_EQ(h.dependence->fresh_moves(), 1u);
    EXPECT_EQ(h.dependence->map().buffer_count(), 2u);
    // Later plain reads of it go by the map (no read is kept for a mapped buffer).
    EXPECT_EQ(h.submit_plain(Args().in(out.view({1, 8}, {0, 0}))).front(), 0u);
    EXPECT_EQ(h.dependence->fresh_reads(), 1u);
  }
}

// Random programs over created buffers, against a brute-force oracle and the two-pass path:
// creators that make a 4x8 buffer (their `out`), many readers of it (whole, rows, partial and
// transposed boxes), writes after reads now and then, external rows between them, scopes that
// end (the creator released, the buffer no longer named) and buffers whose memory a later
// creator reuses (a new identity) in a ring small enough that slots and their fresh records are
// reused. Every conflict with a live task must be ordered, no edge spurious, and both paths must
// report the same producers except the writers a slot line's readers stand for.
void check_fresh_buffers_against_oracle(int seed_base, int variant) {
  struct Box {
    int buffer;
    std::uint32_t r0, rows, c0, cols;
    bool write;
  };
  auto conflict = [](const Box& a, const Box& b) {
    if (a.buffer != b.buffer || !(a.write || b.write)) return false;
    return a.r0 < b.r0 + b.rows && b.r0 < a.r0 + a.rows && a.c0 < b.c0 + b.cols &&
           b.c0 < a.c0 + a.cols;
  };
  constexpr std::uint32_t kRows = 4, kCols = 8, kWindow = 64, kSlots = 6;
  const int programs = tmr::testing::scaled(40, 4);
  std::uint64_t kept = 0;
  std::uint64_t moved = 0;
  std::uint64_t left_out = 0;  // writers a line's readers stood for
  for (int program = 0; program < programs; ++program) {
    std::mt19937 rng(static_cast<std::uint32_t>(seed_base + program));
    auto pick = [&](std::uint32_t lo, std::uint32_t hi) {
      return std::uniform_int_distribution<std::uint32_t>(lo, hi)(rng);
    };
    // The memory of kSlots created buffers (reused by later creators) and an external grid.
    std::vector<std::vector<float>> memory(kSlots, std::vector<float>(kRows * kCols));
    std::vector<float> grid(kRows * kCols);
    const Tensor external = Tensor::wrap(grid.data(), {kRows, kCols}, DType::f32);
    Harness plain(kWindow);
    Harness two_pass(kWindow);
    if (variant == 1) plain.slot_first();
    if (variant == 2) plain.lines_always();
    if (variant == 3) plain.entries_only();
    struct Live {
      Tensor tensor;
      TaskId creator;
      int buffer;  // the oracle's buffer (identity)
      bool open;
    };
    std::vector<Live> live(kSlots);
    int identities = 1;  // oracle buffer 0: the external grid
    std::vector<std::vector<Box>> boxes;
    std::vector<std::set<std::uint32_t>> edges;
    std::vector<std::uint32_t> retired_at_submit;
    const int tasks = 300;
    for (int j = 0; j < tasks; ++j) {
      const auto head = static_cast<std::uint32_t>(j);
      if (head >= plain.rings[0]->retired() + 40 || (j > 8 && pick(0, 6) == 0)) {
        // Tasks finish in order: a prefix retires; scopes of creators in it end first.
        const std::uint32_t low = plain.rings[0]->retired();
        const std::uint32_t end = head >= low + 40 ? head - pick(8, 30) : pick(low, head - 1);
        for (Live& l : live) {
          if (l.open && l.creator.local() < end) {
            plain.dependence->release_creator(l.creator);
            two_pass.dependence->release_creator(l.creator);
            l.open = false;
          }
        }
        plain.retire_below(end);
        two_pass.retire_below(end);
      }
      retired_at_submit.push_back(plain.rings[0]->retired());
      Args args;
      std::vector<Box> mine;
      const int count = static_cast<int>(pick(1, 3));
      for (int a = 0; a < count; ++a) {
        const std::uint32_t s = pick(0, kSlots - 1);
        Box b{};
        Tensor t;
        if (!live[s].open || pick(0, 4) == 0) {
          b.buffer = 0;
          b.r0 = pick(0, kRows - 1);
          b.rows = 1;
          b.c0 = 0;
          b.cols = kCols;
          b.write = pick(0, 3) == 0;
          t = external.view({1, kCols}, {b.r0, 0});
        } else {
          b.buffer = live[s].buffer;
          const std::uint32_t shape = pick(0, 9);
          if (shape < 4) {  // the whole buffer
            b = Box{b.buffer, 0, kRows, 0, kCols, false};
          } else if (shape < 7) {  // a row
            b = Box{b.buffer, pick(0, kRows - 1), 1, 0, kCols, false};
          } else {  // a partial box
            b.r0 = pick(0, kRows - 1);
            b.rows = pick(1, kRows - b.r0);
            b.c0 = pick(0, kCols - 1);
            b.cols = pick(1, kCols - b.c0);
          }
          b.write = pick(0, 9) == 0;
          t = live[s].tensor.view({b.rows, b.cols}, {b.r0, b.c0});
          if (pick(0, 7) == 0) t = t.transpose(0, 1);  // the same elements, strided
        }
        add_access(args, t, b.write, b.write && pick(0, 1) == 0);  // same draws as before
        mine.push_back(b);
      }
      TaskSlot* slot = nullptr;
      const Producers found = plain.submit_plain(args, &slot);
      const Producers expected = two_pass.submit(args);
      const std::set<std::uint32_t> set(found.begin(), found.end());
      ASSERT_EQ(set.size(), found.size()) << "program " << program << ": a producer listed twice";
      left_out += expect_same_or_reached(set, expected, edges, program, j);
      // Now and then the task also creates a buffer or two (its `out`s) in memory whose scope
      // ended: the creator wrote all of it.
      for (int c = 0; c < 2; ++c) {
        const std::uint32_t s = pick(0, kSlots - 1);
        if (live[s].open || pick(0, 2) != 0) continue;
        const Tensor made =
            Tensor::make_owned(live[s].tensor.valid() ? live[s].tensor.buffer() : memory[s].data(),
                               kRows * kCols * sizeof(float), {kRows, kCols}, DType::f32, slot->id);
        plain.dependence->retain_creator(slot->id);
        two_pass.dependence->retain_creator(slot->id);
        live[s] = Live{made, slot->id, identities++, true};
        mine.push_back(Box{live[s].buffer, 0, kRows, 0, kCols, true});
      }
      edges.push_back(set);
      boxes.push_back(mine);
    }
    kept += plain.dependence->fresh_reads();
    moved += plain.dependence->fresh_moves();
    testing::expect_exact_live_edges(edges, retired_at_submit, boxes, conflict, program);
  }
  EXPECT_GT(kept, 0u) << "no read was kept with its creator";
  EXPECT_GT(moved, 0u) << "no fresh buffer moved into the map";
  if (variant == 3) {
    EXPECT_EQ(left_out, 0u) << "entries report every overlapping live access";
  } else {
    EXPECT_GT(left_out, 0u) << "no write after a line's readers left their writer out";
  }
}

// A slot line keeps a task as its 32-bit local id and a tag byte (ring and argument place): a
// line's writer of ring 3 at argument place 15 and its reader of ring 2 at place 14 are reported
// as those tasks while the buffer is in line mode, and, once an off-grid read makes it leave line
// mode, the entries made from the line (their boxes read at the kept places) report them again.
TEST(Dependence, SlotLinesKeepEachTasksRingAndArgumentPlace) {
  std::vector<float> data(16 * 4);
  const Tensor x = Tensor::wrap(data.data(), {16, 4}, DType::f32);
  auto row = [&](std::uint32_t r) { return x.view({1, 4}, {r, 0}); };
  on_each_line_path([&](Harness& h) {
    // `place` untracked arguments (no_dep: row 15, the same layout, so an entry that read its
    // box at a wrong place would miss a partial overlap of row 5) before `t` put it at argument
    // place `place`.
    auto at_place = [&](int place, const Tensor& t, bool write) {
      Args args;
      for (int i = 0; i < place; ++i)
        args.no_dep(row(15));
      return write ? args.inout(t) : args.in(t);
    };
    TaskSlot* w;
    TaskSlot* r;
    TaskSlot* z;
    TaskSlot* v;
    EXPECT_TRUE(h.submit_plain_on(0, Args().inout(row(0)), &z).empty());  // line mode
    EXPECT_TRUE(h.submit_plain_on(3, at_place(15, row(5), true), &w).empty());
    ASSERT_EQ(w->id.ring(), 3u);
    EXPECT_EQ(h.submit_plain_on(2, at_place(14, row(5), false), &r), std::vector<TaskSlot*>{w});
    ASSERT_EQ(h.dependence->map().stats().line_exits, 0u) << "still in line mode";
    EXPECT_EQ(h.submit_plain_on(2, Args().in(row(5)), &v), std::vector<TaskSlot*>{w});
    // An off-grid read (column 1 of rows 4-7: its bytes overlap row 5's partly, so the box of
    // w's entry, read at w's place, decides) leaves line mode: the entries made from row 5's line
    // keep w's write (ring 3, place 15) and the reads of ring 2 (places 14 and 0).
    TaskSlot* p;
    EXPECT_EQ(h.submit_plain_on(0, Args().in(x.view({4, 1}, {4, 1})), &p),
              std::vector<TaskSlot*>{w});
    EXPECT_EQ(h.dependence->map().stats().line_exits, 1u);
    std::vector<TaskSlot*> readers = h.submit_plain_on(0, Args().inout(row(5)), &z);
    std::sort(readers.begin(), readers.end());
    std::vector<TaskSlot*> want{w, r, v, p};
    std::sort(want.begin(), want.end());
    EXPECT_EQ(readers, want);
  });
}

// A line's empty writer or reader place keeps the tag kNone and a stale local id (a new line's
// 0, or the id of a reader a write cleared): its liveness is read from the watermark snapshot at
// kNone's ring bits, which no local id reaches, so with nothing retired (every watermark 0) such
// a place reports no task and keeps the buffer in line mode.
TEST(Dependence, SlotLinePlacesWithoutATaskAreNeverLiveWhateverTheirStaleIds) {
  std::vector<float> data(16 * 4);
  const Tensor x = Tensor::wrap(data.data(), {16, 4}, DType::f32);
  auto row = [&](std::uint32_t r) { return x.view({1, 4}, {r, 0}); };
  on_each_line_path([&](Harness& h) {
    TaskSlot* a;
    TaskSlot* b;
    TaskSlot* c;
    TaskSlot* d;
    EXPECT_TRUE(h.submit_plain_on(0, Args().inout(row(0)), &a).empty());  // line mode
    // Row 1's new line: no writer, no reader (local ids 0, as task a's).
    EXPECT_TRUE(h.submit_plain_on(2, Args().in(row(1)), &b).empty());
    // The write reports its reader only, then clears the reader place (b's local id stays).
    EXPECT_EQ(h.submit_plain_on(2, Args().inout(row(1)), &c), std::vector<TaskSlot*>{b});
    // A read of ring 0 finds no reader (a live reader of ring 2 would make the buffer leave line
    // mode) and its writer c; a write of row 2's new line finds nobody.
    EXPECT_EQ(h.submit_plain_on(0, Args().in(row(1)), &d), std::vector<TaskSlot*>{c});
    EXPECT_TRUE(h.submit_plain_on(0, Args().inout(row(2)), &d).empty());
    EXPECT_EQ(h.submit_plain_on(1, Args().inout(row(0)), &d), std::vector<TaskSlot*>{a});
    EXPECT_EQ(h.dependence->map().stats().line_exits, 0u) << "still in line mode";
  });
}

// A line's gen is 16 bits and its buffer's line_gen moves on at every end of line mode and every
// reset: before it wraps, the table's lines are renumbered, so a line last written many runs ago
// (its task id a live task's again, since every run starts from local id 0) stays empty. Run 0
// writes rows 1 and 2 and leaves them; the later runs touch row 0 only, and run 32,768 writes
// row 1 and run 65,536 row 2: no producer (without the renumbering one of them finds run 0's
// task 0, live again, as its writer).
TEST(Dependence, SlotLinesOfAnOldRunStayEmptyWhenTheLineGenerationWraps) {
  std::vector<float> data(16 * 4);
  const Tensor x = Tensor::wrap(data.data(), {16, 4}, DType::f32);
  auto row = [&](std::uint32_t r) { return x.view({1, 4}, {r, 0}); };
  Harness h;
  h.lines_always();
  const std::uint32_t last = 65536 + 2;
  for (std::uint32_t run = 0; run <= last; ++run) {
    Producers first = h.submit_plain(Args().inout(row(run == 0 ? 1 : 0)));  // task 0
    const std::uint32_t next = run == 0 ? 2 : run == 32768 ? 1 : run == 65536 ? 2 : 0;
    Producers second = h.submit_plain(Args().inout(row(next)));  // task 1
    const Producers want = next == 0 ? Producers{0} : Producers{};
    if (!first.empty() || second != want) {
      ADD_FAILURE() << "run " << run << ": task 0 found " << first.size() << " producers, task 1 "
                    << second.size();
      break;
    }
    h.retire_below(h.rings[0]->head());
    ASSERT_EQ(h.dependence->map().live_entries(), 0u);
    for (const auto& ring : h.rings)
      ring->reset();
    h.dependence->reset();
  }
}

TEST(Dependence, FreshBuffersOrderEveryConflictAndMatchTheTwoPassPath) {
  check_fresh_buffers_against_oracle(11000, 0);
  check_fresh_buffers_against_oracle(12000, 1);  // slots found first (large-map path)
  check_fresh_buffers_against_oracle(13000, 2);  // the line path on every submit
  check_fresh_buffers_against_oracle(14000, 3);  // entries only
}

}  // namespace
}  // namespace tmr::detail
