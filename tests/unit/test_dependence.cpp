// The dependence unit (src/core/dependence/) without a runtime: hand-made argument lists,
// producers found through the TensorMap and through creator retention, each producer once, a
// named error for a creator whose scope has ended, and entries freed once their task retired.
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <memory>
#include <vector>

#include "core/dependence/dependence.hpp"
#include "core/ring.hpp"

namespace tmr::detail {
namespace {

struct Harness {
  Harness() {
    RingConfig config;
    config.task_window = 64;
    config.heap_bytes = 1024;
    config.dep_pool = 16;
    for (int r = 0; r < kRingCount; ++r) {
      rings.push_back(std::make_unique<Ring>(static_cast<std::uint32_t>(r), config));
      pointers[r] = rings.back().get();
    }
    dependence = std::make_unique<Dependence>(RetirementView(pointers, kRingCount), 64);
  }
  // Admits a task on ring 0, discovers its producers, records its accesses.
  std::vector<std::uint32_t> submit(const Args& given, TaskSlot** out = nullptr,
                                    Status* status = nullptr) {
    // Recorded entries read their boxes through the arguments: keep them like a task record.
    const Args& args = kept.emplace_back(given);
    Ring& ring = *rings[0];
    const std::uint32_t local = ring.admit(0);
    TaskSlot& slot = ring.slot(local);
    slot.id = TaskId(0, local);
    slot.ring = &ring;
    slot.state.store(TaskState::pending);
    dependence->admitted(slot);
    AccessRegion regions[kMaxTensorArgs];
    dependence->begin();
    const Status found = dependence->collect(args, regions);
    if (status != nullptr) *status = found;
    std::vector<std::uint32_t> producers;
    for (TaskSlot* p : dependence->producers())
      producers.push_back(p->id.local());
    if (found.ok()) dependence->record(slot, args, regions);
    ring.publish(local);
    if (out != nullptr) *out = &slot;
    return producers;
  }
  std::vector<std::unique_ptr<Ring>> rings;
  Ring* pointers[kRingCount] = {};
  std::unique_ptr<Dependence> dependence;
  std::deque<Args> kept;
};

using Producers = std::vector<std::uint32_t>;

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
  first->state.store(TaskState::consumed);
  ASSERT_TRUE(h.rings[0]->try_advance());
  EXPECT_EQ(h.submit(Args().in(x)), Producers{}) << "a retired writer orders nothing";
  h.rings[0]->refresh();
  h.dependence->forget_retired(0, h.rings[0]->retired_seen());
  EXPECT_EQ(h.dependence->map().live_entries(), 1u) << "only the read is left";
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

}  // namespace
}  // namespace tmr::detail
