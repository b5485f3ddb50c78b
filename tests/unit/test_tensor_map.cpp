// The TensorMap against a brute-force oracle: every earlier conflicting access (RAW, WAW, WAR on
// overlapping regions) must be ordered before a later one through the reported edges, no edge
// may be spurious, no hit may be dropped, and lookups must not scan every live view.
#include <gtest/gtest.h>

#include <deque>
#include <random>
#include <set>
#include <vector>

#include "core/dependence/tensor_map.hpp"
#include "core/ring.hpp"
#include "support/edge_oracle.hpp"
#include "support/pending_task.hpp"
#include "support/reachability.hpp"
#include "support/task_window.hpp"
#include "support/test_scale.hpp"

namespace tmr::detail {
namespace {

// Ring 0's tasks never wrap here (`entries` is indexed by a task's local id): a harness holds at
// most window - 1 tasks. The oracles' programs (300 tasks at most) take kFewTasksWindow: a ring's
// slots are written when it is built, which under TSan costs several times more at 1 << 15.
struct MapHarness {
  explicit MapHarness(std::uint32_t bucket_bits = 17, std::uint32_t window = 1 << 15) {
    RingConfig config;
    config.task_window = window;
    config.heap_bytes = 1024;
    config.dep_pool = 16;
    for (int r = 0; r < kRingCount; ++r) {
      rings.push_back(std::make_unique<Ring>(static_cast<std::uint32_t>(r), config));
      pointers[r] = rings.back().get();
    }
    map = std::make_unique<TensorMap>(RetirementView(pointers, kRingCount), bucket_bits);
    entries.assign(config.task_window, nullptr);
  }
  // Submits one task with the given accesses; returns the producers the map reported.
  std::set<std::uint32_t> submit(const std::vector<std::pair<Tensor, AccessKind>>& accesses) {
    TaskSlot& slot = admit();
    std::set<std::uint32_t> producers;
    for (const auto& [t, kind] : accesses) {
      map->lookup(make_region(t), kind, [&](TaskId id) { producers.insert(id.local()); });
    }
    // An entry reads its box through the inserted tensor: keep it alive like a task record.
    for (const auto& [t, kind] : accesses)
      map->insert(make_region(kept.emplace_back(t)), kind, slot.id, entries[slot.id.local()]);
    rings[0]->publish(slot.id.local());
    return producers;
  }
  // The same through lookup_insert, argument by argument (each inserted before the next one's
  // lookup, which may find the task's own entries: not producers); `slots_first`: find_slot for
  // every argument first, as a plain submit with a large map does.
  std::set<std::uint32_t> submit_combined(
      const std::vector<std::pair<Tensor, AccessKind>>& accesses, bool slots_first) {
    TaskSlot& slot = admit();
    std::set<std::uint32_t> producers;
    std::uint32_t retired[TensorMap::kRetiredSlots];
    map->snapshot_retired(retired);
    std::vector<AccessRegion> regions;
    std::vector<TensorMap::SlotHint> hints;
    Tensor* const record = record_tensors(slot, static_cast<int>(accesses.size()));
    for (const auto& [t, kind] : accesses) {
      regions.push_back(make_region(record[regions.size()] = t));
      hints.push_back(slots_first
                          ? map->find_slot(regions.back(), static_cast<int>(regions.size() - 1))
                          : TensorMap::kNoHint);
    }
    for (std::size_t a = 0; a < accesses.size(); ++a) {
      if (slots_first && a + 1 < accesses.size()) map->prefetch_chains(hints[a + 1]);
      map->lookup_insert(regions[a], accesses[a].second, retired, slot.id, entries[slot.id.local()],
                         hints[a], static_cast<int>(a), [&](TaskId id) {
                           if (id != slot.id) producers.insert(id.local());
                         });
    }
    rings[0]->publish(slot.id.local());
    return producers;
  }
  // The next task of ring 0; a test that would wrap the ring fails (it needs a larger window).
  TaskSlot& admit() {
    if (rings[0]->head() + 1 >= entries.size())
      ADD_FAILURE() << "task " << rings[0]->head() << " fills the harness's window of "
                    << entries.size() << ": give the harness a larger one";
    return testing::admit_pending_task(*rings[0]);
  }
  // Task `slot`'s record, bound for `count` tensors: what lookup_insert's regions point at (a slot
  // line finds an access's tensor there again, by the task's id and the argument's place).
  Tensor* record_tensors(TaskSlot& slot, int count) {
    slot.ring->bind_arguments(slot.id.local(), count, 0);
    return slot.record->tensors;
  }
  // Slot lines on (TensorMap::enable_lines): entries made from lines go to the harness's lists.
  void enable_lines() {
    map->enable_lines(this, [](void* self, TaskId id) -> MapEntry*& {
      return static_cast<MapHarness*>(self)->entries[id.local()];
    });
  }
  // Releases a retired task's entries (what the dependence unit does for it).
  void release(std::uint32_t local) {
    map->release_task(entries[local], [&](TaskId id) -> MapEntry*& { return entries[id.local()]; });
  }
  // Tasks finish in order: ring 0's tasks before `end` retire and each retired task's entries are
  // released (`released`: how many the caller has released so far, advanced here).
  void retire_through(std::uint32_t end, std::uint32_t& released) {
    Ring& ring = *rings[0];
    for (std::uint32_t i = ring.retired(); i < end; ++i)
      ring.slot(i).release_remaining.store(0);
    if (end > ring.retired() && !ring.try_advance()) ADD_FAILURE() << "ring 0 did not advance";
    for (; released < ring.retired(); ++released)
      release(released);
  }
  std::vector<std::unique_ptr<Ring>> rings;
  Ring* pointers[kRingCount] = {};
  std::unique_ptr<TensorMap> map;
  std::vector<MapEntry*> entries;  // per task of ring 0: what the dependence unit keeps
  std::deque<Tensor> kept;         // the inserted tensors (task records in the runtime)
};

struct Box {
  int buffer;
  std::uint32_t r0, rows, c0, cols;
  bool write;
};

bool conflict(const Box& a, const Box& b) {
  return a.buffer == b.buffer && (a.write || b.write) && a.r0 < b.r0 + b.rows &&
         b.r0 < a.r0 + a.rows && a.c0 < b.c0 + b.cols && b.c0 < a.c0 + a.cols;
}

// How the oracle draws its boxes. `random`: any box. `grid`: mostly whole rows or aligned
// pieces of one row (grid buffers: lookups by slot), now and then an arbitrary box (which
// re-indexes the buffer into size-class cells), with reads in runs (many readers of one row).
enum class Boxes { random, grid };

// `lines`: slot lines on and every task submitted through lookup_insert.
void run_oracle(Boxes mode, int programs, int seed_base, bool lines = false) {
  for (int program = 0; program < programs; ++program) {
    std::mt19937 rng(static_cast<std::uint32_t>(seed_base + program));
    auto pick = [&](std::uint32_t lo, std::uint32_t hi) {
      return std::uniform_int_distribution<std::uint32_t>(lo, hi)(rng);
    };
    constexpr std::uint32_t kRows = 16, kCols = 12;
    std::vector<std::vector<float>> storage(3, std::vector<float>(kRows * kCols));
    MapHarness h(17, testing::kFewTasksWindow);  // 150 tasks
    if (lines) h.enable_lines();
    std::vector<std::vector<Box>> boxes;
    std::vector<std::set<std::uint32_t>> edges;
    const int tasks = 150;
    // grid mode: each buffer's piece width (a divisor of kCols) for this program.
    const std::uint32_t widths[] = {12, 6, 4, 3};
    const std::uint32_t width = widths[pick(0, 3)];
    const std::uint32_t off_grid_odds = pick(0, 1) == 0 ? 40 : 400;
    for (int i = 0; i < tasks; ++i) {
      std::vector<std::pair<Tensor, AccessKind>> accesses;
      std::vector<Box> mine;
      const int count = static_cast<int>(pick(1, 3));
      for (int a = 0; a < count; ++a) {
        const int buffer = static_cast<int>(pick(0, 2));
        Box b{buffer, pick(0, kRows - 1), 0, pick(0, kCols - 1), 0, pick(0, 2) == 0};
        b.rows = pick(1, kRows - b.r0);
        b.cols = pick(1, kCols - b.c0);
        if (mode == Boxes::grid && pick(0, off_grid_odds) != 0) {
          // One aligned piece of one row; reads three times as often as writes.
          b.rows = 1;
          b.cols = width;
          b.c0 = width * pick(0, kCols / width - 1);
          b.write = pick(0, 3) == 0;
        }
        Tensor t = Tensor::wrap(storage[static_cast<std::size_t>(buffer)].data(), {kRows, kCols},
                                DType::f32)
                       .view({b.rows, b.cols}, {b.r0, b.c0});
        if (pick(0, 5) == 0) t = t.transpose(0, 1);  // same region, strided view
        accesses.emplace_back(t, b.write ? AccessKind::write : AccessKind::read);
        mine.push_back(b);
      }
      edges.push_back(lines ? h.submit_combined(accesses, pick(0, 1) == 0) : h.submit(accesses));
      boxes.push_back(mine);
      if (i % 16 != 15) continue;  // (a check walks every bucket)
      std::uint64_t linked = 0;
      ASSERT_TRUE(h.map->chains_consistent(&linked)) << "program " << program << ", task " << i;
      ASSERT_EQ(linked, h.map->live_entries()) << "program " << program << ", task " << i;
    }
    // Reachability closure over the reported edges (they only point backwards).
    for (int j = 0; j < tasks; ++j) {
      for (std::uint32_t i : edges[static_cast<std::size_t>(j)])
        ASSERT_LT(static_cast<int>(i), j);
    }
    const std::vector<std::vector<bool>> reach = testing::backward_reachability(edges);
    for (int j = 0; j < tasks; ++j) {
      for (int i = 0; i < j; ++i) {
        bool c = false;
        for (const Box& x : boxes[i]) {
          for (const Box& y : boxes[j])
            c |= conflict(x, y);
        }
        if (c) {
          EXPECT_TRUE(reach[j][i]) << "program " << program << ": task " << j
                                   << " is not ordered after conflicting task " << i;
        }
        if (edges[j].count(static_cast<std::uint32_t>(i))) {
          EXPECT_TRUE(c) << "program " << program << ": spurious edge " << i << " -> " << j;
        }
      }
    }
  }
}

TEST(TensorMap, EdgesOrderEveryConflictAndNoneIsSpurious) {
  run_oracle(Boxes::random, tmr::testing::scaled(60, 5), 0);
}

TEST(TensorMap, GridBuffersOrderEveryConflictAndNoneIsSpurious) {
  run_oracle(Boxes::grid, tmr::testing::scaled(60, 5), 1000);
}

// The same with slot lines: grid accesses in lines, and every access that does not fit them
// (another box, a strided view, a different piece width after a buffer empties) converts the
// buffer's lines into entries.
TEST(TensorMap, SlotLinesOrderEveryConflictAndNoneIsSpurious) {
  run_oracle(Boxes::grid, tmr::testing::scaled(60, 5), 1500, true);
  run_oracle(Boxes::random, tmr::testing::scaled(30, 3), 1800, true);
}

// Grid slot tables: a buffer of 2,048 eight-byte rows read and written mostly by whole rows, some
// near its start (slots its table covers from the first entries on), some anywhere (slots past
// the table while the buffer holds few entries are hashed, and the table stops growing until the
// buffer empties; else the table grows and its heads move), a one-element gate and now and then two
// rows at once (off the grid: the buffer's entries move to size-class cells until it empties). Tiny
// bucket arrays put other slots' and buffers' entries into every hashed chain. Tasks retire in
// order meanwhile (buffers empty and start new grids on their kept tables). Three ways to submit:
// lookups then inserts, lookup_insert per argument, and find_slot for every argument first (what a
// plain submit with a large map does). Every conflict with a live task must be ordered through the
// reported edges, and no edge may be spurious.
enum class Submit { lookup_then_insert, lookup_insert, slots_first };

void run_table_oracle(Submit how, int programs, int seed_base, bool lines = false) {
  struct TBox {
    int buffer;
    std::uint32_t r0, rows;
    bool write;
  };
  auto conflict = [](const TBox& a, const TBox& b) {
    return a.buffer == b.buffer && (a.write || b.write) && a.r0 < b.r0 + b.rows &&
           b.r0 < a.r0 + a.rows;
  };
  std::uint64_t grows = 0, hashed_seen = 0, exits = 0, line_starts = 0, line_exits = 0;
  for (int program = 0; program < programs; ++program) {
    std::mt19937 rng(static_cast<std::uint32_t>(seed_base + program));
    auto pick = [&](std::uint32_t lo, std::uint32_t hi) {
      return std::uniform_int_distribution<std::uint32_t>(lo, hi)(rng);
    };
    constexpr std::uint32_t kRows = 2048;
    std::vector<float> rows(kRows * 2);
    float gate_cell = 0;
    const Tensor buffers[2] = {Tensor::wrap(rows.data(), {kRows, 2}, DType::f32),
                               Tensor::wrap(&gate_cell, {1, 1}, DType::f32)};
    MapHarness h(pick(2, 5), testing::kFewTasksWindow);  // 4 to 32 buckets; 300 tasks
    if (lines) h.enable_lines();
    // Mostly tables sized for a few slots at first (they grow; far slots are hashed), now and then
    // for the whole buffer. Each call's first program starts at one slot and reaches far rows
    // often, so that a scaled-down run (the sanitizers' 4 programs) still grows and hashes.
    const bool small_first = program == 0;
    if (pick(0, 3) != 0 || small_first) h.map->set_presize_limit(small_first ? 1 : pick(1, 16));
    Ring& ring = *h.rings[0];
    std::uint32_t released = 0;
    std::vector<std::uint32_t> far;  // rows past the first 16 used so far (read again later)
    const std::uint32_t off_grid_odds = pick(0, 1) == 0 ? 30 : 300;
    // Rows past 63: 4 in (odds + 1).
    const std::uint32_t far_odds = pick(0, 1) == 0 || small_first ? 7 : 60;
    std::vector<std::vector<TBox>> boxes;
    std::vector<std::set<std::uint32_t>> edges;
    std::vector<std::uint32_t> retired_at_submit;
    const int tasks = 300;
    for (int j = 0; j < tasks; ++j) {
      if (j > 20 && pick(0, 9) == 0) {
        // Tasks finish in order: retire a prefix, never the last few, and release their entries.
        h.retire_through(pick(ring.retired(), static_cast<std::uint32_t>(j - 8)), released);
      }
      retired_at_submit.push_back(ring.retired());
      std::vector<std::pair<Tensor, AccessKind>> accesses;
      std::vector<TBox> mine;
      const int count = static_cast<int>(pick(1, 4));
      for (int a = 0; a < count; ++a) {
        TBox b{0, 0, 1, pick(0, 2) == 0};
        const std::uint32_t where = pick(0, far_odds);
        if (where == 0) {
          b.buffer = 1;  // the gate
        } else if (where <= far_odds - 4) {
          b.r0 = pick(0, 63);
        } else if (where <= far_odds - 2 || far.empty()) {
          b.r0 = pick(16, kRows - 2);
          far.push_back(b.r0);
        } else {
          b.r0 = far[pick(0, static_cast<std::uint32_t>(far.size() - 1))];
        }
        if (b.buffer == 0 && pick(0, off_grid_odds) == 0) b.rows = 2;
        // Whole rows of the row buffer; the gate's one element.
        accesses.emplace_back(b.buffer == 1 ? buffers[1].view({1, 1}, {0, 0})
                                            : buffers[0].view({b.rows, 2}, {b.r0, 0}),
                              b.write ? AccessKind::write : AccessKind::read);
        mine.push_back(b);
      }
      if (how == Submit::lookup_then_insert) {
        edges.push_back(h.submit(accesses));
      } else {
        edges.push_back(h.submit_combined(accesses, how == Submit::slots_first));
      }
      boxes.push_back(mine);
      // (A check walks every bucket and table: a few thousand heads with these bucket arrays.)
      std::uint64_t linked = 0, hashed = 0;
      ASSERT_TRUE(h.map->chains_consistent(&linked, &hashed))
          << "program " << program << ", task " << j;
      ASSERT_EQ(linked, h.map->live_entries()) << "program " << program << ", task " << j;
      hashed_seen += hashed;
    }
    grows += h.map->stats().table_grows;
    exits += h.map->stats().grid_exits;
    line_starts += h.map->stats().line_starts;
    line_exits += h.map->stats().line_exits;
    testing::expect_exact_live_edges(edges, retired_at_submit, boxes, conflict, program);
  }
  if (lines) {
    EXPECT_GT(line_starts, 0u) << "no buffer went into line mode";
    EXPECT_GT(line_exits, 0u) << "no buffer left line mode";
    return;
  }
  EXPECT_GT(grows, 0u) << "no slot table grew";
  EXPECT_GT(hashed_seen, 0u) << "no grid entry was hashed past its table";
  EXPECT_GT(exits, 0u) << "no buffer left its grid";
}

TEST(TensorMap, GridSlotTablesAndHashedSlotsOrderEveryConflictAndNoneIsSpurious) {
  run_table_oracle(Submit::lookup_then_insert, tmr::testing::scaled(30, 4), 5000);
  run_table_oracle(Submit::lookup_insert, tmr::testing::scaled(30, 4), 6000);
  run_table_oracle(Submit::slots_first, tmr::testing::scaled(30, 4), 7000);
}

// The same with slot lines: rows and the gate in lines (line tables that grow, retirement that
// frees buffers through their anchors and reuses their lines), two-row accesses that convert the
// row buffer's lines into entries until it empties.
// At least 8 programs: the sanitizers' 4 (TMR_TEST_SCALE 0.05-0.1) had no buffer leave line mode.
TEST(TensorMap, SlotLinesWithTablesAndRetirementOrderEveryConflictAndNoneIsSpurious) {
  run_table_oracle(Submit::lookup_insert, tmr::testing::scaled(30, 8), 6500, true);
  run_table_oracle(Submit::slots_first, tmr::testing::scaled(30, 8), 7500, true);
}

// make_region against the element positions themselves: the interval from the first to one past
// the last byte the box touches, and contiguity exactly when the box leaves no gap in it, for
// views of 1-4 dimensional buffers (transposed now and then: the raw layout decides).
TEST(TensorMap, RegionsSpanTheBoxesBytesAndAreContiguousExactlyWithoutGaps) {
  std::mt19937 rng(7);
  auto pick = [&](std::uint32_t lo, std::uint32_t hi) {
    return std::uniform_int_distribution<std::uint32_t>(lo, hi)(rng);
  };
  std::vector<double> storage(4096);
  int contiguous = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    const int dims = static_cast<int>(pick(1, 4));
    std::vector<std::uint32_t> raw(static_cast<std::size_t>(dims));
    for (auto& d : raw)
      d = pick(1, 6);
    // A view of a view: the outer one sets a layout offset, the inner one the box.
    Shape shape, outer_shape, outer_offsets, box, offsets;
    for (int d = 0; d < dims; ++d) {
      shape.push_back(raw[d]);
      const std::uint32_t o = pick(0, raw[d] - 1);
      outer_offsets.push_back(o);
      outer_shape.push_back(pick(1, raw[d] - o));
    }
    for (int d = 0; d < dims; ++d) {
      const std::uint32_t o = pick(0, outer_shape[d] - 1);
      offsets.push_back(o);
      box.push_back(pick(1, outer_shape[d] - o));
    }
    const DType dtype = pick(0, 1) == 0 ? DType::f32 : DType::f16;
    Tensor t = Tensor::wrap(storage.data(), shape, dtype)
                   .view(outer_shape, outer_offsets)
                   .view(box, offsets);
    if (dims > 1 && pick(0, 3) == 0) t = t.transpose(0, dims - 1);
    // Every element of the box, by its raw position.
    std::set<std::uint64_t> positions;
    std::vector<std::uint32_t> at(static_cast<std::size_t>(dims), 0);
    for (;;) {
      std::uint64_t position = 0;
      for (int r = 0; r < dims; ++r)
        position = position * t.raw_dim(r) + t.box_offset(r) + at[r];
      positions.insert(t.layout_offset() + position);
      int r = dims - 1;
      while (r >= 0 && ++at[r] == t.box_extent(r))
        at[r--] = 0;
      if (r < 0) break;
    }
    const std::uint64_t size = t.element_size();
    const AccessRegion region = make_region(t);
    EXPECT_EQ(region.lo, *positions.begin() * size) << "trial " << trial;
    EXPECT_EQ(region.hi, (*positions.rbegin() + 1) * size) << "trial " << trial;
    const bool gapless = *positions.rbegin() - *positions.begin() + 1 == positions.size();
    EXPECT_EQ(region.contiguous, gapless) << "trial " << trial;
    contiguous += gapless ? 1 : 0;
  }
  EXPECT_GT(contiguous, 100);  // both outcomes are drawn often
  EXPECT_LT(contiguous, 1900);
}

TEST(TensorMap, NoHitIsDroppedWithManyReaders) {
  std::vector<float> data(64);
  MapHarness h;
  const Tensor whole = Tensor::wrap(data.data(), {64}, DType::f32);
  for (int i = 0; i < 500; ++i)
    h.submit({{whole.view({8}, {8}), AccessKind::read}});
  const auto producers = h.submit({{whole, AccessKind::write}});
  EXPECT_EQ(producers.size(), 500u);  // WAR on every reader
}

TEST(TensorMap, CoveringWriteSupersedesOlderEntries) {
  std::vector<float> data(64);
  MapHarness h;
  const Tensor whole = Tensor::wrap(data.data(), {64}, DType::f32);
  for (int i = 0; i < 8; ++i)
    h.submit({{whole.view({8}, {8u * static_cast<std::uint32_t>(i)}), AccessKind::write}});
  EXPECT_EQ(h.submit({{whole, AccessKind::write}}).size(), 8u);
  EXPECT_EQ(h.map->live_entries(), 1u);  // the 8 block writes are covered
  const auto after = h.submit({{whole.view({8}, {0}), AccessKind::read}});
  EXPECT_EQ(after, (std::set<std::uint32_t>{8}));
}

// lookup_insert first tries the buffer that the same argument place named before
// (find_buffer_at): one heap address with two owners (a recycled address) is two buffers in
// every argument place, whichever of them the place last named.
TEST(TensorMap, ARecycledAddressWithAnotherOwnerIsAnotherBufferInEveryArgumentPlace) {
  std::vector<float> data(64);
  MapHarness h;
  const Tensor& whole = h.kept.emplace_back(Tensor::wrap(data.data(), {64}, DType::f32));
  // A new task accesses the whole buffer of owner `owner` in argument place `arg`.
  const auto access = [&](std::uint64_t owner, AccessKind kind, int arg) {
    TaskSlot& slot = testing::admit_pending_task(*h.rings[0]);
    AccessRegion region = make_region(whole);
    region.owner = owner;
    std::uint32_t retired[TensorMap::kRetiredSlots];
    h.map->snapshot_retired(retired);
    std::set<std::uint32_t> producers;
    h.map->lookup_insert(region, kind, retired, slot.id, h.entries[slot.id.local()],
                         TensorMap::kNoHint, arg, [&](TaskId id) {
                           if (id != slot.id) producers.insert(id.local());
                         });
    h.rings[0]->publish(slot.id.local());
    return producers;
  };
  using Set = std::set<std::uint32_t>;
  EXPECT_EQ(access(1, AccessKind::write, 0), Set{});     // task 0
  EXPECT_EQ(access(2, AccessKind::read, 0), Set{});      // task 1: another buffer
  EXPECT_EQ(access(1, AccessKind::read, 0), (Set{0}));   // task 2
  EXPECT_EQ(access(2, AccessKind::write, 0), (Set{1}));  // task 3: place 0 last named owner 1
  EXPECT_EQ(access(1, AccessKind::write, 5), (Set{0, 2}));
  EXPECT_EQ(access(2, AccessKind::read, 5), (Set{3}));
  EXPECT_EQ(access(1, AccessKind::read, 5), (Set{4}));  // task 6: place 5 last named owner 2
  EXPECT_EQ(access(2, AccessKind::write, 5), (Set{3, 5}));
  // Owner 1 in a place that named neither yet, then owner 2 in place 0, which last named it.
  EXPECT_EQ(access(1, AccessKind::write, 3), (Set{4, 6}));
  EXPECT_EQ(access(2, AccessKind::read, 0), (Set{7}));
}

// find_slot for every argument first, then lookup_insert: a hint that found no buffer lets
// lookup_insert add the buffer without a second search (SlotHint::absent). Two arguments of one
// task naming one new buffer both take such a hint; the first adds the buffer, and the second
// must find it (add_buffer makes the hint stale), not add another one. With lines and without.
TEST(TensorMap, TwoArgumentsOfOneTaskFirstNamingANewBufferShareIt) {
  for (const bool lines : {false, true}) {
    std::vector<float> data(64);
    MapHarness h;
    if (lines) h.enable_lines();
    const Tensor whole = Tensor::wrap(data.data(), {4, 16}, DType::f32);
    const Tensor row1 = whole.view({1, 16}, {1, 0});
    const Tensor row2 = whole.view({1, 16}, {2, 0});
    using Set = std::set<std::uint32_t>;
    // Task 0: writes row 1 and reads row 1 (its own entry is no producer) in places 0 and 1.
    EXPECT_EQ(h.submit_combined({{row1, AccessKind::write}, {row1, AccessKind::read}}, true), Set{})
        << "lines " << lines;
    EXPECT_EQ(h.map->buffer_count(), 1u) << "lines " << lines;
    // Task 1 reads both rows: row 1's writer is task 0, whichever place found the buffer.
    EXPECT_EQ(h.submit_combined({{row2, AccessKind::read}, {row1, AccessKind::read}}, true),
              (Set{0}))
        << "lines " << lines;
    // Task 2 writes row 1: after task 0's write and its read, and task 1's read.
    EXPECT_EQ(h.submit_combined({{row1, AccessKind::write}}, true), (Set{0, 1}))
        << "lines " << lines;
    EXPECT_EQ(h.map->buffer_count(), 1u) << "lines " << lines;
  }
}

TEST(TensorMap, DifferentVersionsAreAlwaysOrdered) {
  std::vector<float> data(64);
  MapHarness h;
  const Tensor whole = Tensor::wrap(data.data(), {64}, DType::f32);
  h.submit({{whole.view({8}, {0}), AccessKind::write}});
  const auto disjoint_new_version =
      h.submit({{whole.view({8}, {32}).with_version(1), AccessKind::read}});
  EXPECT_EQ(disjoint_new_version, (std::set<std::uint32_t>{0}));
}

TEST(TensorMap, DifferentLayoutsOfOneBufferAreComparedByBytes) {
  std::vector<float> data(64);
  MapHarness h;
  const Tensor matrix = Tensor::wrap(data.data(), {8, 8}, DType::f32);
  h.submit({{matrix.view({1, 8}, {2, 0}), AccessKind::write}});  // bytes [64, 96)
  const Tensor flat = matrix.reshape({64});
  EXPECT_EQ(h.submit({{flat.view({4}, {16}), AccessKind::read}}), (std::set<std::uint32_t>{0}));
  EXPECT_TRUE(h.submit({{flat.view({4}, {40}), AccessKind::read}}).empty());
}

TEST(TensorMap, LookupsDoNotScanEveryLiveView) {
  // A KV-cache-like buffer with 16384 live disjoint block views.
  constexpr std::uint32_t kBlocks = 16384, kBlock = 16;
  std::vector<float> data(std::size_t{kBlocks} * kBlock);
  MapHarness h;
  const Tensor cache = Tensor::wrap(data.data(), {kBlocks, kBlock}, DType::f32);
  for (std::uint32_t b = 0; b < kBlocks; ++b)
    h.submit({{cache.view({1, kBlock}, {b, 0}), AccessKind::write}});
  const std::uint64_t visited_before = h.map->stats().entries_visited;
  for (std::uint32_t b = 0; b < 1000; ++b) {
    const auto producers =
        h.submit({{cache.view({1, kBlock}, {(b * 7919) % kBlocks, 0}), AccessKind::read}});
    ASSERT_EQ(producers.size(), 1u);
  }
  const double per_lookup =
      static_cast<double>(h.map->stats().entries_visited - visited_before) / 1000.0;
  EXPECT_LT(per_lookup, 8.0) << "a lookup visited " << per_lookup << " entries on average";
}

TEST(TensorMap, RetiredTasksAreSkippedAndTheirEntriesFreed) {
  std::vector<float> data(64);
  MapHarness h;
  const Tensor whole = Tensor::wrap(data.data(), {64}, DType::f32);
  for (int i = 0; i < 4; ++i)
    h.submit({{whole.view({4}, {4u * static_cast<std::uint32_t>(i)}), AccessKind::write}});
  Ring& ring = *h.rings[0];
  for (std::uint32_t i = 0; i < 2; ++i)
    ring.slot(i).release_remaining.store(0);
  ASSERT_TRUE(ring.try_advance());
  EXPECT_EQ(ring.retired(), 2u);
  EXPECT_EQ(h.submit({{whole, AccessKind::read}}), (std::set<std::uint32_t>{2, 3}));
  h.release(0);
  h.release(1);
  EXPECT_EQ(h.map->live_entries(), 3u);  // two writes left + the read
}

TEST(TensorMap, GridSlotsFindEveryReaderAndLeaveTheGridForAnOffGridAccess) {
  // 16 rows of 8 floats: a grid of 32-byte slots.
  std::vector<float> data(128);
  MapHarness h;
  const Tensor m = Tensor::wrap(data.data(), {16, 8}, DType::f32);
  auto row = [&](std::uint32_t r) { return m.view({1, 8}, {r, 0}); };
  h.submit({{row(3), AccessKind::write}});  // task 0
  for (int i = 0; i < 6; ++i)               // tasks 1..6 read row 3, task 7 reads row 4
    EXPECT_EQ(h.submit({{row(3), AccessKind::read}}), (std::set<std::uint32_t>{0}));
  EXPECT_TRUE(h.submit({{row(4), AccessKind::read}}).empty());
  // A writer of row 3 after six readers waits for all six (WAR) and for the old writer (WAW,
  // which it covers: dropped with the readers).
  EXPECT_EQ(h.submit({{row(3), AccessKind::write}}),
            (std::set<std::uint32_t>{0, 1, 2, 3, 4, 5, 6}));                        // task 8
  EXPECT_EQ(h.submit({{row(3), AccessKind::read}}), (std::set<std::uint32_t>{8}));  // task 9
  EXPECT_EQ(h.map->stats().grid_exits, 0u);
  // An off-grid write of rows 2..4, columns 2..5 meets rows 3 and 4 only (task 10).
  EXPECT_EQ(h.submit({{m.view({3, 4}, {2, 2}), AccessKind::write}}),
            (std::set<std::uint32_t>{7, 8, 9}));
  EXPECT_EQ(h.map->stats().grid_exits, 1u);
  // After re-indexing, rows are still found exactly, and a row the box misses stays separate.
  EXPECT_EQ(h.submit({{row(4), AccessKind::write}}), (std::set<std::uint32_t>{7, 10}));
  EXPECT_TRUE(h.submit({{row(9), AccessKind::write}}).empty());
  EXPECT_EQ(h.submit({{m.view({1, 2}, {2, 0}), AccessKind::read}}).size(), 0u);  // cols 0..1
}

TEST(TensorMap, OffGridLookupsOnAGridVisitOnlyTheSlotsTheyMeet) {
  constexpr std::uint32_t kRows = 4096, kCols = 16;
  std::vector<float> data(std::size_t{kRows} * kCols);
  MapHarness h;
  const Tensor m = Tensor::wrap(data.data(), {kRows, kCols}, DType::f32);
  for (std::uint32_t r = 0; r < kRows; ++r)
    h.submit({{m.view({1, kCols}, {r, 0}), AccessKind::write}});
  const std::uint64_t visited_before = h.map->stats().entries_visited;
  // A lookup of rows 100..102 (off the grid: only an insert would re-index the buffer) meets
  // exactly three writers and visits only their slots.
  std::set<std::uint32_t> expected{100, 101, 102};
  std::set<std::uint32_t> found;
  h.map->lookup(make_region(m.view({3, kCols}, {100, 0})), AccessKind::read,
                [&](TaskId id) { found.insert(id.local()); });
  EXPECT_EQ(found, expected);
  EXPECT_LE(h.map->stats().entries_visited - visited_before, 3u);
  // A whole-buffer write meets every row (the buffer's list, not 4096 slot probes) and covers
  // them all; what is left is one grid entry: the write.
  EXPECT_EQ(h.submit({{m, AccessKind::write}}).size(), kRows);
  EXPECT_EQ(h.map->live_entries(), 1u);
  EXPECT_EQ(h.map->stats().grid_exits, 0u);
  EXPECT_EQ(h.submit({{m.view({1, kCols}, {7, 0}), AccessKind::read}}),
            (std::set<std::uint32_t>{kRows}));
}

TEST(TensorMap, GridEntriesOfRetiredTasksAreSkippedAndAnEmptiedBufferStartsANewGrid) {
  std::vector<float> data(64);
  MapHarness h;
  const Tensor whole = Tensor::wrap(data.data(), {64}, DType::f32);
  for (int i = 0; i < 4; ++i)  // four 16-byte slots
    h.submit({{whole.view({4}, {4u * static_cast<std::uint32_t>(i)}), AccessKind::write}});
  Ring& ring = *h.rings[0];
  for (std::uint32_t i = 0; i < 4; ++i)
    ring.slot(i).release_remaining.store(0);
  ASSERT_TRUE(ring.try_advance());
  EXPECT_TRUE(h.submit({{whole.view({4}, {4}), AccessKind::read}}).empty());  // task 4
  for (std::uint32_t i = 0; i < 4; ++i)
    h.release(i);
  EXPECT_EQ(h.map->live_entries(), 1u);
  // The buffer still holds task 4's read: a grid of 16-byte slots. A 32-byte write meets it and
  // covers it, so the buffer empties and the write starts a grid of 32-byte slots.
  EXPECT_EQ(h.submit({{whole.view({8}, {0}), AccessKind::write}}), (std::set<std::uint32_t>{4}));
  EXPECT_EQ(h.map->stats().grid_exits, 0u);
  EXPECT_EQ(h.map->live_entries(), 1u);
  ring.slot(4).release_remaining.store(0);
  ring.slot(5).release_remaining.store(0);
  ASSERT_TRUE(ring.try_advance());
  h.release(4);
  h.release(5);
  EXPECT_EQ(h.map->live_entries(), 0u);
  // Empty again: the next entry starts a fresh grid (8-byte slots, phase 4).
  h.submit({{whole.view({2}, {1}), AccessKind::write}});  // task 6, bytes [4, 12)
  EXPECT_EQ(h.submit({{whole.view({2}, {1}), AccessKind::read}}), (std::set<std::uint32_t>{6}));
  EXPECT_TRUE(h.submit({{whole.view({2}, {3}), AccessKind::read}}).empty());  // [12, 20)
  EXPECT_EQ(h.submit({{whole.view({1}, {2}), AccessKind::read}}),
            (std::set<std::uint32_t>{6}));  // [8, 12): off the grid, inside task 6's slot
  EXPECT_EQ(h.map->stats().grid_exits, 1u);
}

// ---- slot lines (TensorMap::enable_lines): every submit below goes through lookup_insert.

// Retires ring 0's tasks below `end` and releases their lists (what the dependence unit does).
void retire_below(MapHarness& h, std::uint32_t end) {
  Ring& ring = *h.rings[0];
  const std::uint32_t from = ring.retired();
  for (std::uint32_t i = from; i < end; ++i)
    ring.slot(i).release_remaining.store(0);
  ASSERT_TRUE(ring.try_advance());
  ASSERT_EQ(ring.retired(), end);
  for (std::uint32_t i = from; i < end; ++i)
    h.release(i);
}

std::set<std::uint32_t> upto(std::uint32_t first, std::uint32_t end) {
  std::set<std::uint32_t> s;
  for (std::uint32_t i = first; i < end; ++i)
    s.insert(i);
  return s;
}

// A row read by 40 tasks after its writer: the readers merge in the row's line (past several
// reader blocks), each reports the writer only, and the next write reports every one of them
// but not the old writer (each reader is ordered after it); the read after it reports the new
// writer only. No entry is made.
TEST(TensorMap, SlotLinesMergeReadersPastTheirBlocksAndAWriteWaitsForAllOfThem) {
  std::vector<float> data(128);
  MapHarness h;
  h.enable_lines();
  const Tensor m = Tensor::wrap(data.data(), {16, 8}, DType::f32);
  auto row = [&](std::uint32_t r) { return m.view({1, 8}, {r, 0}); };
  EXPECT_TRUE(h.submit_combined({{row(3), AccessKind::write}}, false).empty());  // task 0
  for (int i = 0; i < 40; ++i) {                                                 // tasks 1..40
    EXPECT_EQ(h.submit_combined({{row(3), AccessKind::read}}, false), (std::set<std::uint32_t>{0}));
  }
  EXPECT_TRUE(h.submit_combined({{row(5), AccessKind::read}}, false).empty());      // task 41
  EXPECT_EQ(h.submit_combined({{row(3), AccessKind::write}}, false), upto(1, 41));  // task 42
  EXPECT_EQ(h.submit_combined({{row(3), AccessKind::read}}, false),
            (std::set<std::uint32_t>{42}));  // task 43
  // A task naming the row twice (read, then write) waits for the writer and the reader before it.
  EXPECT_EQ(h.submit_combined({{row(3), AccessKind::read}, {row(3), AccessKind::write}}, false),
            (std::set<std::uint32_t>{42, 43}));  // task 44
  EXPECT_EQ(h.submit_combined({{row(5), AccessKind::write}}, false),
            (std::set<std::uint32_t>{41}));  // task 45
  EXPECT_EQ(h.map->stats().line_starts, 1u);
  EXPECT_EQ(h.map->stats().line_exits, 0u);
  EXPECT_EQ(h.map->live_entries(), 0u);
  EXPECT_EQ(h.map->stats().merged_reads, 40u);  // tasks 2..40 and 44
}

// Dead state in a line is recognised by the watermark and overwritten; when the last task that
// touched a line retires, the buffer's anchor frees the buffer, and the same address under
// another owner (a recycled address) or again under its own starts with empty lines.
TEST(TensorMap, SlotLinesOfRetiredTasksAreOverwrittenAndFreeTheirBufferWithTheLastOne) {
  std::vector<float> data(128);
  MapHarness h;
  h.enable_lines();
  const Tensor m = Tensor::wrap(data.data(), {16, 8}, DType::f32);
  auto row = [&](std::uint32_t r) { return m.view({1, 8}, {r, 0}); };
  h.submit_combined({{row(1), AccessKind::write}}, false);  // task 0
  h.submit_combined({{row(1), AccessKind::read}}, false);   // task 1
  h.submit_combined({{row(2), AccessKind::read}}, false);   // task 2
  retire_below(h, 2);
  EXPECT_EQ(h.map->buffer_count(), 1u) << "task 2 still holds a line";
  // Row 1's writer and reader retired: a write of it waits for nothing.
  EXPECT_TRUE(h.submit_combined({{row(1), AccessKind::write}}, false).empty());  // task 3
  EXPECT_EQ(h.submit_combined({{row(2), AccessKind::write}}, false),
            (std::set<std::uint32_t>{2}));  // task 4
  EXPECT_EQ(h.submit_combined({{row(1), AccessKind::read}}, false),
            (std::set<std::uint32_t>{3}));  // task 5
  retire_below(h, 5);
  EXPECT_EQ(h.map->buffer_count(), 1u);
  retire_below(h, 6);
  EXPECT_EQ(h.map->buffer_count(), 0u) << "every task that touched a line retired";
  EXPECT_EQ(h.map->stats().line_exits, 0u);
  // Again under the same owner: empty lines.
  EXPECT_TRUE(h.submit_combined({{row(1), AccessKind::read}}, false).empty());  // task 6
  // The same address under another owner: another buffer.
  Tensor other = row(1);
  const auto submit_owned = [&](std::uint64_t owner, AccessKind kind) {
    TaskSlot& slot = testing::admit_pending_task(*h.rings[0]);
    AccessRegion region = make_region(h.record_tensors(slot, 1)[0] = other);
    region.owner = owner;
    std::uint32_t retired[TensorMap::kRetiredSlots];
    h.map->snapshot_retired(retired);
    std::set<std::uint32_t> producers;
    h.map->lookup_insert(region, kind, retired, slot.id, h.entries[slot.id.local()],
                         TensorMap::kNoHint, 0, [&](TaskId id) {
                           if (id != slot.id) producers.insert(id.local());
                         });
    h.rings[0]->publish(slot.id.local());
    return producers;
  };
  EXPECT_TRUE(submit_owned(77, AccessKind::write).empty());  // task 7
  EXPECT_EQ(h.map->buffer_count(), 2u);
  EXPECT_EQ(h.submit_combined({{row(1), AccessKind::write}}, false),
            (std::set<std::uint32_t>{6}));                                      // task 8
  EXPECT_EQ(submit_owned(77, AccessKind::read), (std::set<std::uint32_t>{7}));  // task 9
  retire_below(h, 10);
  EXPECT_EQ(h.map->buffer_count(), 0u);
  EXPECT_EQ(h.map->live_entries(), 0u);
}

// An access that does not fit the lines (off the grid, another version) turns the buffer's live
// line state into entries: exactly the live writers and every live reader are found after it,
// and the entries are freed with their tasks.
TEST(TensorMap, SlotLinesBecomeEntriesWhenTheBufferLeavesItsLines) {
  std::vector<float> data(128);
  MapHarness h;
  h.enable_lines();
  const Tensor m = Tensor::wrap(data.data(), {16, 8}, DType::f32);
  auto row = [&](std::uint32_t r) { return m.view({1, 8}, {r, 0}); };
  h.submit_combined({{row(2), AccessKind::write}}, false);  // task 0
  h.submit_combined({{row(3), AccessKind::write}}, false);  // task 1
  for (int i = 0; i < 20; ++i)                              // tasks 2..21 read row 3
    h.submit_combined({{row(3), AccessKind::read}}, false);
  h.submit_combined({{row(4), AccessKind::read}}, false);   // task 22
  h.submit_combined({{row(9), AccessKind::write}}, false);  // task 23
  retire_below(h, 1);                                       // task 0: row 2's writer
  EXPECT_EQ(h.map->live_entries(), 0u);
  // Rows 2..4, columns 2..5, written: off the grid (task 24).
  EXPECT_EQ(h.submit_combined({{m.view({3, 4}, {2, 2}), AccessKind::write}}, false), upto(1, 23));
  EXPECT_EQ(h.map->stats().line_exits, 1u);
  // The box write, and the live line state it does not cover: row 3's writer and merged readers,
  // row 4's reader, row 9's writer.
  EXPECT_EQ(h.map->live_entries(), 5u);
  std::uint64_t linked = 0;
  EXPECT_TRUE(h.map->chains_consistent(&linked));
  EXPECT_EQ(linked, 5u);
  EXPECT_EQ(h.submit_combined({{row(9), AccessKind::read}}, false),
            (std::set<std::uint32_t>{23}));  // task 25
  EXPECT_EQ(h.submit_combined({{row(3), AccessKind::read}}, false),
            (std::set<std::uint32_t>{1, 24}));  // task 26
  retire_below(h, 27);
  EXPECT_EQ(h.map->live_entries(), 0u);
  EXPECT_EQ(h.map->buffer_count(), 0u);
  // Another version of a row with live line state leaves the lines too, and is ordered.
  h.submit_combined({{row(5), AccessKind::read}}, false);  // task 27
  const Tensor v2 = row(5).with_version(1);
  EXPECT_EQ(h.submit_combined({{v2, AccessKind::read}}, false), (std::set<std::uint32_t>{}));
  EXPECT_EQ(h.map->stats().line_exits, 2u);
  EXPECT_EQ(h.submit_combined({{row(5), AccessKind::write}}, false),
            (std::set<std::uint32_t>{27, 28}));  // task 29
}

// A line keeps a task's argument place, not its tensor (SlotLine): when the buffer leaves its
// lines, each entry made from a line reads its box from that place of its task's record. The
// tasks' other places hold rows of another buffer of the same layout, so an entry given another
// place's tensor would test the wrong rows: the box accesses below find exactly the tasks whose
// rows they overlap.
TEST(TensorMap, SlotLinesFindEachAccessTensorByItsArgumentPlace) {
  std::vector<float> data(128);
  std::vector<float> other(128);
  MapHarness h;
  h.enable_lines();
  const Tensor m = Tensor::wrap(data.data(), {16, 8}, DType::f32);
  const Tensor n = Tensor::wrap(other.data(), {16, 8}, DType::f32);
  auto row = [](const Tensor& t, std::uint32_t r) { return t.view({1, 8}, {r, 0}); };
  h.submit_combined({{row(n, 0), AccessKind::read}, {row(m, 3), AccessKind::write}},
                    false);  // task 0: m's row 3 in place 1
  h.submit_combined(
      {{row(n, 1), AccessKind::read}, {row(n, 2), AccessKind::read}, {row(m, 5), AccessKind::read}},
      false);  // task 1: m's row 5 in place 2
  h.submit_combined({{row(n, 0), AccessKind::read}, {row(m, 6), AccessKind::write}},
                    false);  // task 2: m's row 6 in place 1
  EXPECT_EQ(h.map->stats().line_starts, 2u);
  EXPECT_EQ(h.map->live_entries(), 0u);
  // Rows 2..5, columns 2..5 of m, written (off the grid: m leaves its lines; task 3).
  EXPECT_EQ(h.submit_combined({{m.view({4, 4}, {2, 2}), AccessKind::write}}, false),
            (std::set<std::uint32_t>{0, 1}));
  EXPECT_EQ(h.map->stats().line_exits, 1u);
  // Rows 6..7, columns 0..3 (task 4): row 6's writer only; rows 0..1, columns 4..7: nobody.
  EXPECT_EQ(h.submit_combined({{m.view({2, 4}, {6, 0}), AccessKind::read}}, false),
            (std::set<std::uint32_t>{2}));
  EXPECT_TRUE(h.submit_combined({{m.view({2, 4}, {0, 4}), AccessKind::write}}, false).empty());
  // Rows 3..5, columns 0..1: row 3's writer (task 0), row 5's reader (task 1), and nothing else
  // (task 3 wrote columns 2..5 only).
  EXPECT_EQ(h.submit_combined({{m.view({3, 2}, {3, 0}), AccessKind::write}}, false),
            (std::set<std::uint32_t>{0, 1}));
}

// A buffer cut into more slots than a presized slot table holds (16,384) stays in line mode: its
// line table grows by doubling up to TensorMap::kMaxLines, so 30,000 one-element writes (the peers
// benchmark's independent graph, smaller) never pay the entries' lookup and insert, and every
// conflict past the old limit is still found.
TEST(TensorMap, SlotLinesHoldMoreSlotsThanAPresizedTable) {
  constexpr std::uint32_t kCells = 30000;
  std::vector<float> data(kCells);
  MapHarness h;
  h.enable_lines();
  const Tensor v = Tensor::wrap(data.data(), {kCells}, DType::f32);
  auto cell = [&](std::uint32_t i) { return v.view({1}, {i}); };
  std::uint32_t reported = 0;
  for (std::uint32_t i = 0; i < kCells; ++i)  // tasks 0..29,999
    reported +=
        static_cast<std::uint32_t>(h.submit_combined({{cell(i), AccessKind::write}}, false).size());
  EXPECT_EQ(reported, 0u);
  EXPECT_EQ(h.map->stats().line_exits, 0u);
  EXPECT_EQ(h.map->live_entries(), 0u);
  EXPECT_GE(h.map->line_table_lines(), std::uint64_t{kCells});
  EXPECT_EQ(h.submit_combined({{cell(20000), AccessKind::read}}, false),
            (std::set<std::uint32_t>{20000}));  // task 30,000
  EXPECT_EQ(h.submit_combined({{cell(29999), AccessKind::write}}, false),
            (std::set<std::uint32_t>{29999}));  // task 30,001
  EXPECT_EQ(h.submit_combined({{cell(20000), AccessKind::write}}, false),
            (std::set<std::uint32_t>{30000}));  // its reader, which waits for task 20,000
  EXPECT_EQ(h.map->stats().line_exits, 0u);
}

// A reset forgets every line (the tables stay for the next run, their lines empty, their reader
// blocks gone with the pool): a task after it meets none of the live state before it.
TEST(TensorMap, SlotLinesAreEmptyAfterAReset) {
  std::vector<float> data(128);
  MapHarness h;
  h.enable_lines();
  const Tensor m = Tensor::wrap(data.data(), {16, 8}, DType::f32);
  auto row = [&](std::uint32_t r) { return m.view({1, 8}, {r, 0}); };
  h.submit_combined({{row(1), AccessKind::write}}, false);  // task 0
  for (int i = 0; i < 20; ++i)                              // tasks 1..20: merged readers
    h.submit_combined({{row(1), AccessKind::read}}, false);
  h.map->reset();
  std::fill(h.entries.begin(), h.entries.end(), nullptr);  // (every list is gone with the map)
  EXPECT_EQ(h.map->buffer_count(), 0u);
  EXPECT_TRUE(h.submit_combined({{row(1), AccessKind::write}}, false).empty());  // task 21
  for (int i = 0; i < 20; ++i) {                                                 // tasks 22..41
    EXPECT_EQ(h.submit_combined({{row(1), AccessKind::read}}, false),
              (std::set<std::uint32_t>{21}));
  }
  // The readers, not their writer (task 21), which each of them waits for.
  EXPECT_EQ(h.submit_combined({{row(1), AccessKind::write}}, false), upto(22, 42));
}

// Spans (TensorMap::span_access): a stencil's accesses of a line-mode buffer. Its first access
// (two cells) sets a grid of two-cell slots; a one-cell write cuts it into one-cell slots (its
// line copied to both halves), and reads and writes of several cells then take one line per cell,
// reporting exactly the tasks that share a cell with them. The buffer never leaves its lines.
TEST(TensorMap, SlotLinesRecordSpansAndCutTheirGridFiner) {
  std::vector<std::int32_t> data(64);
  MapHarness h;
  h.enable_lines();
  const Tensor cells = Tensor::wrap(data.data(), {64}, DType::i32);
  auto at = [&](std::uint32_t first, std::uint32_t count) { return cells.view({count}, {first}); };
  EXPECT_TRUE(h.submit_combined({{at(0, 2), AccessKind::read}}, false).empty());   // task 0
  EXPECT_TRUE(h.submit_combined({{at(4, 1), AccessKind::write}}, false).empty());  // task 1
  EXPECT_EQ(h.map->stats().line_refines, 1u);
  EXPECT_EQ(h.submit_combined({{at(3, 3), AccessKind::read}}, false),
            (std::set<std::uint32_t>{1}));  // task 2
  // Cell 1 was in task 0's two-cell line before the cut: its half still holds task 0's read.
  EXPECT_EQ(h.submit_combined({{at(1, 1), AccessKind::write}}, false),
            (std::set<std::uint32_t>{0}));                                         // task 3
  EXPECT_EQ(h.submit_combined({{at(5, 1), AccessKind::read}}, false).size(), 0u);  // task 4
  // Cells 0..3: task 0's read of cell 0, task 3's write of cell 1 (its read of cell 1 is behind
  // that write), task 2's read of cell 3.
  EXPECT_EQ(h.submit_combined({{at(0, 4), AccessKind::write}}, false),
            (std::set<std::uint32_t>{0, 2, 3}));  // task 5
  // Cells 4..7: task 1's write of cell 4 is behind task 2's read; cell 5's readers 2 and 4.
  EXPECT_EQ(h.submit_combined({{at(4, 4), AccessKind::write}}, true),
            (std::set<std::uint32_t>{2, 4}));  // task 6
  EXPECT_EQ(h.map->stats().line_refines, 1u);
  EXPECT_EQ(h.map->stats().span_accesses, 4u);  // tasks 1, 2, 5 and 6 (3 and 4: one slot each)
  EXPECT_EQ(h.map->stats().line_exits, 0u);
  EXPECT_EQ(h.map->live_entries(), 0u);
}

// An access of the grid's length off the grid's phase (the peers' random graph: 1-4 cells
// anywhere) is a span of the grid cut finer, not one slot: taken as one slot, it found none and
// the buffer left its lines (every later access then went by entries until the buffer emptied).
// Here a four-cell grid on cells 0.. takes a four-cell read of cells 2..5 (cut to two-cell slots)
// and a four-cell write of cells 1..4 (cut to one-cell slots), each reporting exactly the tasks
// that share a cell with it; the buffer never leaves its lines.
TEST(TensorMap, SlotLinesTakeAnAccessOfTheGridsLengthOffItsPhaseAsASpan) {
  std::vector<std::int32_t> data(64);
  MapHarness h;
  h.enable_lines();
  const Tensor cells = Tensor::wrap(data.data(), {64}, DType::i32);
  auto at = [&](std::uint32_t first, std::uint32_t count) { return cells.view({count}, {first}); };
  EXPECT_TRUE(h.submit_combined({{at(0, 4), AccessKind::write}}, false).empty());  // task 0
  EXPECT_TRUE(h.submit_combined({{at(4, 4), AccessKind::write}}, false).empty());  // task 1
  EXPECT_EQ(h.submit_combined({{at(2, 4), AccessKind::read}}, false),
            (std::set<std::uint32_t>{0, 1}));  // task 2
  EXPECT_EQ(h.map->stats().line_refines, 1u);
  EXPECT_EQ(h.map->stats().line_exits, 0u);
  // Cells 1..4: task 0's write of cell 1 (no reader since), task 2's reads of cells 2..4 (which
  // stand for the writers 0 and 1 behind them).
  EXPECT_EQ(h.submit_combined({{at(1, 4), AccessKind::write}}, true),
            (std::set<std::uint32_t>{0, 2}));  // task 3
  EXPECT_EQ(h.map->stats().line_refines, 2u);
  // Cell 5: task 2's read; cells 6..7: task 1's write.
  EXPECT_EQ(h.submit_combined({{at(5, 3), AccessKind::write}}, false),
            (std::set<std::uint32_t>{1, 2}));  // task 4
  EXPECT_EQ(h.submit_combined({{at(0, 4), AccessKind::read}}, false),
            (std::set<std::uint32_t>{0, 3}));  // task 5
  EXPECT_EQ(h.map->stats().line_exits, 0u);
  EXPECT_EQ(h.map->live_entries(), 0u);
}

// A grid whose length is no power of two (three i32 cells, 12 bytes) off byte 0 (its first slot
// is cells 1..3): each line access by regions is given its slot by its caller (the first access's
// start of lines, a one-slot access, each slot of a span in turn), not found again by a modulo and
// a division. Every access reports exactly the tasks that share a cell with it and the buffer
// keeps its lines, uncut.
TEST(TensorMap, SlotLinesOfAGridNotAPowerOfTwoRecordEachAccessInItsOwnSlot) {
  std::vector<std::int32_t> data(64);
  MapHarness h;
  h.enable_lines();
  const Tensor cells = Tensor::wrap(data.data(), {64}, DType::i32);
  auto at = [&](std::uint32_t first, std::uint32_t count) { return cells.view({count}, {first}); };
  EXPECT_TRUE(h.submit_combined({{at(1, 3), AccessKind::write}}, false).empty());  // task 0: slot 0
  EXPECT_TRUE(h.submit_combined({{at(4, 3), AccessKind::write}}, false).empty());  // task 1: slot 1
  EXPECT_TRUE(h.submit_combined({{at(7, 3), AccessKind::write}}, true).empty());   // task 2: slot 2
  // A span of slots 1 and 2.
  EXPECT_EQ(h.submit_combined({{at(4, 6), AccessKind::read}}, false),
            (std::set<std::uint32_t>{1, 2}));  // task 3
  // Slot 2's reader stands for its writer; slot 0 holds task 0's write only.
  EXPECT_EQ(h.submit_combined({{at(7, 3), AccessKind::write}}, false),
            (std::set<std::uint32_t>{3}));  // task 4
  EXPECT_EQ(h.submit_combined({{at(1, 3), AccessKind::read}}, true),
            (std::set<std::uint32_t>{0}));  // task 5
  EXPECT_EQ(h.submit_combined({{at(4, 3), AccessKind::write}}, false),
            (std::set<std::uint32_t>{3}));  // task 6
  // Slots 0..2: task 5's read, task 6's write, task 4's write.
  EXPECT_EQ(h.submit_combined({{at(1, 9), AccessKind::write}}, false),
            (std::set<std::uint32_t>{4, 5, 6}));  // task 7
  EXPECT_EQ(h.submit_combined({{at(4, 3), AccessKind::read}}, false),
            (std::set<std::uint32_t>{7}));  // task 8
  EXPECT_EQ(h.map->stats().span_accesses, 2u);
  EXPECT_EQ(h.map->stats().line_refines, 0u);
  EXPECT_EQ(h.map->stats().line_exits, 0u);
  EXPECT_EQ(h.map->live_entries(), 0u);
}

// The reader-block pool holds a ring window's readers from the start: lines that each keep a
// block of earlier readers (the peers' attention graph's KV lines, 8,192 a run) take blocks from it
// without the pool growing (each doubling copied the whole pool), and every line still reports its
// readers.
TEST(TensorMap, ReaderBlocksForAWindowOfReadersAreReservedUpFront) {
  constexpr std::uint32_t kWindow = 1u << 12;
  constexpr std::uint32_t kLines = 1000;
  std::vector<std::int32_t> data(kLines);
  MapHarness h(17, kWindow);
  h.enable_lines();
  EXPECT_EQ(h.map->reader_blocks(), 0u);
  const std::size_t capacity = h.map->reader_block_capacity();
  EXPECT_GE(capacity, kWindow);
  const Tensor cells = Tensor::wrap(data.data(), {kLines}, DType::i32);
  auto at = [&](std::uint32_t cell) { return cells.view({1}, {cell}); };
  // Tasks 0..999 write one cell each; tasks 1,000..2,999 read each cell twice, so every line
  // keeps its first reader in a block of its own.
  for (std::uint32_t c = 0; c < kLines; ++c)
    ASSERT_TRUE(h.submit_combined({{at(c), AccessKind::write}}, false).empty());
  for (std::uint32_t c = 0; c < kLines; ++c) {
    ASSERT_EQ(h.submit_combined({{at(c), AccessKind::read}}, false), (std::set<std::uint32_t>{c}));
    ASSERT_EQ(h.submit_combined({{at(c), AccessKind::read}}, false), (std::set<std::uint32_t>{c}));
  }
  EXPECT_EQ(h.map->reader_blocks(), kLines);
  EXPECT_EQ(h.map->reader_block_capacity(), capacity);
  EXPECT_EQ(h.map->stats().line_exits, 0u);
  // A write of each cell waits for both of its readers (the block's and the line's).
  for (std::uint32_t c = 0; c < kLines; ++c) {
    ASSERT_EQ(h.submit_combined({{at(c), AccessKind::write}}, false),
              (std::set<std::uint32_t>{kLines + 2 * c, kLines + 2 * c + 1}));
  }
  EXPECT_EQ(h.map->reader_block_capacity(), capacity);
}

// A buffer's line table stays with it from one line-mode episode to the next, and a cut to a finer
// grid (refine_lines) reuses it when it is large enough instead of a fresh, smaller table that
// would grow again (fresh pages at every episode: the peers' stencil). The cut in place moves
// each live line to its new slots from the top down (a copy never overwrites a line not yet
// moved) and empties the rest by a new generation: a live line whose old place is no new slot of
// its own (slot 1 below, now cell 1) must not stay live there. A cut that needs more lines than
// the table has copies into a larger one.
TEST(TensorMap, SlotLinesKeepTheirTableAcrossEpisodesAndCutItInPlace) {
  std::vector<std::int32_t> data(8192);
  MapHarness h;
  h.enable_lines();
  const Tensor cells = Tensor::wrap(data.data(), {8192}, DType::i32);
  auto at = [&](std::uint32_t first, std::uint32_t count) { return cells.view({count}, {first}); };
  // Episode 1: 2,000 two-cell writes grow the table to 2,048 lines (tasks 0..1,999).
  for (std::uint32_t i = 0; i < 2000; ++i)
    ASSERT_TRUE(h.submit_combined({{at(2 * i, 2), AccessKind::write}}, false).empty());
  EXPECT_EQ(h.map->line_table_lines(), 2048u);
  retire_below(h, 2000);
  EXPECT_EQ(h.map->buffer_count(), 0u);
  EXPECT_EQ(h.map->line_table_lines(), 0u);
  // Episode 2: two-cell slots 1, 2 and 3 written (tasks 2,000..2,002), then a one-cell write
  // cuts the grid into one-cell slots (task 2,003), in the kept table.
  EXPECT_TRUE(h.submit_combined({{at(2, 2), AccessKind::write}}, false).empty());
  EXPECT_EQ(h.map->line_table_lines(), 2048u);
  EXPECT_TRUE(h.submit_combined({{at(4, 2), AccessKind::write}}, false).empty());
  EXPECT_TRUE(h.submit_combined({{at(6, 2), AccessKind::write}}, false).empty());
  EXPECT_TRUE(h.submit_combined({{at(9, 1), AccessKind::write}}, false).empty());
  EXPECT_EQ(h.map->stats().line_refines, 1u);
  EXPECT_EQ(h.map->line_table_lines(), 2048u);
  EXPECT_EQ(h.submit_combined({{at(3, 1), AccessKind::read}}, false),
            (std::set<std::uint32_t>{2000}));
  EXPECT_EQ(h.submit_combined({{at(4, 1), AccessKind::read}}, false),
            (std::set<std::uint32_t>{2001}));
  EXPECT_EQ(h.submit_combined({{at(7, 1), AccessKind::read}}, false),
            (std::set<std::uint32_t>{2002}));
  EXPECT_TRUE(h.submit_combined({{at(0, 2), AccessKind::write}}, false).empty());
  EXPECT_EQ(h.submit_combined({{at(8, 2), AccessKind::read}}, false),
            (std::set<std::uint32_t>{2003}));
  EXPECT_EQ(h.map->stats().line_exits, 0u);
  retire_below(h, 2009);
  // Episode 3: a cut whose slots pass the kept table (two-cell slot 3,000 is one-cell slots
  // 6,000 and 6,001) copies into a larger one.
  EXPECT_TRUE(h.submit_combined({{at(6000, 2), AccessKind::write}}, false).empty());  // 2,009
  EXPECT_TRUE(h.submit_combined({{at(1, 1), AccessKind::write}}, false).empty());     // 2,010
  EXPECT_EQ(h.map->stats().line_refines, 2u);
  EXPECT_EQ(h.map->line_table_lines(), 8192u);
  EXPECT_EQ(h.submit_combined({{at(6001, 1), AccessKind::read}}, false),
            (std::set<std::uint32_t>{2009}));
  EXPECT_EQ(h.submit_combined({{at(0, 2), AccessKind::read}}, false),
            (std::set<std::uint32_t>{2010}));
  EXPECT_TRUE(h.submit_combined({{at(2, 2), AccessKind::read}}, false).empty());
  EXPECT_EQ(h.map->stats().line_exits, 0u);
  EXPECT_EQ(h.map->live_entries(), 0u);
}

// Spans against the oracle: 1-4 cell accesses anywhere in two 48-cell buffers (partial overlaps
// everywhere, as the peers' random graph), now and then a run of reads of one region (merged
// readers: a grid with earlier readers in a line is not cut), a 12-cell access (more lines than a
// span takes: the buffer leaves its lines) or two accesses by one task; tasks retire in order.
// Every conflict with a live task must be ordered through the reported edges, none spurious.
TEST(TensorMap, SlotLineSpansOrderEveryConflictAndNoneIsSpurious) {
  struct Cells {
    int buffer;
    std::uint32_t first, count;
    bool write;
  };
  auto conflict = [](const Cells& a, const Cells& b) {
    return a.buffer == b.buffer && (a.write || b.write) && a.first < b.first + b.count &&
           b.first < a.first + a.count;
  };
  std::uint64_t refines = 0, spans = 0, exits = 0;
  const int programs = tmr::testing::scaled(40, 6);
  for (int program = 0; program < programs; ++program) {
    std::mt19937 rng(static_cast<std::uint32_t>(9100 + program));
    auto pick = [&](std::uint32_t lo, std::uint32_t hi) {
      return std::uniform_int_distribution<std::uint32_t>(lo, hi)(rng);
    };
    // (A larger buffer for odd programs: its table grows, and some cuts copy into a larger one.)
    const std::uint32_t kCells = program % 2 == 0 ? 48 : 400;
    std::vector<std::vector<std::int32_t>> storage(2, std::vector<std::int32_t>(kCells));
    MapHarness h(17, testing::kFewTasksWindow);  // 200 tasks
    h.enable_lines();
    Ring& ring = *h.rings[0];
    std::uint32_t released = 0;
    std::vector<std::vector<Cells>> boxes;
    std::vector<std::set<std::uint32_t>> edges;
    std::vector<std::uint32_t> retired_at_submit;
    const std::uint32_t long_odds = pick(0, 1) == 0 ? 20 : 200;
    Cells last{0, 0, 1, false};
    const int tasks = 200;
    for (int j = 0; j < tasks; ++j) {
      if (j > 10 && pick(0, 7) == 0) {
        h.retire_through(pick(ring.retired(), static_cast<std::uint32_t>(j - 4)), released);
      }
      retired_at_submit.push_back(ring.retired());
      std::vector<std::pair<Tensor, AccessKind>> accesses;
      std::vector<Cells> mine;
      const int count = pick(0, 4) == 0 ? 2 : 1;
      for (int a = 0; a < count; ++a) {
        Cells c{static_cast<int>(pick(0, 1)), 0, pick(1, 4), pick(0, 2) == 0};
        if (pick(0, long_odds) == 0) c.count = 12;
        c.first = pick(0, kCells - c.count);
        if (a == 0 && !last.write && pick(0, 3) == 0) c = last;  // another reader of a region
        if (a == 1 && c.buffer == mine[0].buffer && c.first < mine[0].first + mine[0].count &&
            mine[0].first < c.first + c.count) {
          continue;  // (one task's accesses do not overlap, as in the peers' graphs)
        }
        accesses.emplace_back(
            Tensor::wrap(storage[static_cast<std::size_t>(c.buffer)].data(), {kCells}, DType::i32)
                .view({c.count}, {c.first}),
            c.write ? AccessKind::write : AccessKind::read);
        mine.push_back(c);
        last = c;
      }
      edges.push_back(h.submit_combined(accesses, pick(0, 1) == 0));
      boxes.push_back(mine);
      std::uint64_t linked = 0;
      ASSERT_TRUE(h.map->chains_consistent(&linked)) << "program " << program << ", task " << j;
      ASSERT_EQ(linked, h.map->live_entries()) << "program " << program << ", task " << j;
    }
    refines += h.map->stats().line_refines;
    spans += h.map->stats().span_accesses;
    exits += h.map->stats().line_exits;
    testing::expect_exact_live_edges(edges, retired_at_submit, boxes, conflict, program);
  }
  EXPECT_GT(refines, 0u) << "no line grid was cut finer";
  EXPECT_GT(spans, 0u) << "no access took several lines";
  EXPECT_GT(exits, 0u) << "no buffer left its lines";
}

}  // namespace
}  // namespace tmr::detail
