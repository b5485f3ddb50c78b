// parallel_for's loop analysis against a brute-force oracle: random affine loops (independent,
// carried at random distances, partially overlapping views, strided, fresh per-iteration buffers)
// are recorded, learned and proven; the carried distances must equal the brute-force set, the
// replayed edges must order every conflicting pair of iterations (by reachability) and be real
// conflicts themselves, independent loops must get no cross-iteration edge, and the affine family
// lookup must find exactly the overlapping iterations.
#include <gtest/gtest.h>

#include <bitset>
#include <random>
#include <vector>

#include "core/loops/affine_families.hpp"
#include "core/loops/loop_template.hpp"
#include "core/ring.hpp"
#include "support/pending_task.hpp"
#include "support/test_scale.hpp"

namespace tmr::detail::loops {
namespace {

constexpr std::uint32_t kSide = 64;
constexpr int kOuterBuffers = 3;
float g_outer[kOuterBuffers][kSide * kSide];
float g_fresh[16 * 16];

struct GenAccess {
  ArgTag tag;
  bool fresh;
  int buffer;            // outer buffer, or the fresh source task position
  int back;              // fresh: iterations back
  std::int64_t base[2];  // offsets in iteration 0
  std::int64_t stride[2];
  std::uint32_t extent[2];
};
struct GenTask {
  std::vector<GenAccess> accesses;
  bool makes_buffer;  // has an `out` argument (its last argument)
};
struct GenLoop {
  int iterations;
  std::vector<GenTask> tasks;
};

// Offsets of `a` in iteration i.
std::int64_t off(const GenAccess& a, int r, int i) {
  return a.base[r] + a.stride[r] * i;
}

GenLoop random_loop(std::mt19937& rng) {
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  GenLoop loop;
  loop.iterations = pick(3, 10);
  const int tasks = pick(1, 4);
  // Most buffers move every access by one stride (the common case); sometimes each access has its
  // own, which the proof must refuse when the accesses conflict.
  std::int64_t buffer_stride[kOuterBuffers][2];
  for (auto& s : buffer_stride) {
    for (auto& v : s) {
      const int kind = pick(0, 4);
      v = kind == 0 ? 0 : pick(-4, 4);
    }
  }
  const bool shared_strides = pick(0, 9) < 8;
  for (int p = 0; p < tasks; ++p) {
    GenTask task;
    task.makes_buffer = pick(0, 3) == 0;
    const int count = pick(1, 3);
    for (int k = 0; k < count; ++k) {
      GenAccess a{};
      const int t = pick(0, 2);
      a.tag = t == 0 ? ArgTag::in : (t == 1 ? ArgTag::inout : ArgTag::out_existing);
      // Fresh buffers of an earlier task of this iteration or of the previous iteration.
      std::vector<int> sources;
      for (int q = 0; q < tasks; ++q) {
        if (q < static_cast<int>(loop.tasks.size()) && loop.tasks[q].makes_buffer)
          sources.push_back(q);
      }
      if (!sources.empty() && pick(0, 3) == 0) {
        a.fresh = true;
        a.buffer = sources[static_cast<std::size_t>(pick(0, static_cast<int>(sources.size()) - 1))];
        a.back = pick(0, 1);
        for (int r = 0; r < 2; ++r) {
          a.extent[r] = static_cast<std::uint32_t>(pick(1, 8));
          a.base[r] = pick(0, 16 - static_cast<int>(a.extent[r]));
          a.stride[r] = 0;
        }
      } else {
        a.buffer = pick(0, kOuterBuffers - 1);
        for (int r = 0; r < 2; ++r) {
          a.extent[r] = static_cast<std::uint32_t>(pick(1, 6));
          a.stride[r] = shared_strides ? buffer_stride[a.buffer][r] : pick(-4, 4);
          const std::int64_t span = a.stride[r] * (loop.iterations - 1);
          const std::int64_t lo = span < 0 ? -span : 0;
          const std::int64_t hi =
              static_cast<std::int64_t>(kSide) - a.extent[r] - (span > 0 ? span : 0);
          a.base[r] = pick(static_cast<int>(lo), static_cast<int>(hi));
        }
      }
      task.accesses.push_back(a);
    }
    loop.tasks.push_back(task);
  }
  return loop;
}

Tensor view_of(const GenAccess& a, int i) {
  const Shape shape{a.extent[0], a.extent[1]};
  if (a.fresh) {
    return Tensor::wrap(g_fresh, Shape{16, 16}, DType::f32)
        .view(shape,
              Shape{static_cast<std::uint32_t>(a.base[0]), static_cast<std::uint32_t>(a.base[1])});
  }
  return Tensor::wrap(g_outer[a.buffer], Shape{kSide, kSide}, DType::f32)
      .view(shape, Shape{static_cast<std::uint32_t>(off(a, 0, i)),
                         static_cast<std::uint32_t>(off(a, 1, i))});
}

BufferRef ref_of(const GenAccess& a, int i, const GenLoop& loop) {
  BufferRef ref;
  if (a.fresh) {
    ref.kind = BufferRef::Kind::fresh;
    ref.iteration = i - a.back;
    ref.task = static_cast<std::uint32_t>(a.buffer);
    ref.arg =
        static_cast<std::uint32_t>(loop.tasks[static_cast<std::size_t>(a.buffer)].accesses.size());
  } else {
    ref.address = reinterpret_cast<std::uintptr_t>(g_outer[a.buffer]);
  }
  return ref;
}

IterationRecord record(const GenLoop& loop, int i) {
  IterationRecord rec;
  rec.clear(i);
  const KernelId kernels[3] = {kNoKernel, 7, kNoKernel};
  for (const GenTask& task : loop.tasks) {
    rec.add_task(kernels, false);
    for (const GenAccess& a : task.accesses)
      rec.add_access(a.tag, ref_of(a, i, loop), view_of(a, i));
    if (task.makes_buffer) {
      rec.add_access(ArgTag::out, BufferRef{}, Tensor::wrap(g_fresh, Shape{16, 16}, DType::f32));
    }
  }
  return rec;
}

// Brute force: do access a in iteration i and access b in iteration j touch a common element
// of the same buffer, with at least one write?
bool conflicts(const GenAccess& a, int i, const GenAccess& b, int j) {
  if (a.tag == ArgTag::in && b.tag == ArgTag::in) return false;
  if (a.fresh != b.fresh || a.buffer != b.buffer) return false;
  if (a.fresh && i - a.back != j - b.back) return false;
  for (int r = 0; r < 2; ++r) {
    const std::int64_t a0 = off(a, r, a.fresh ? 0 : i);
    const std::int64_t b0 = off(b, r, b.fresh ? 0 : j);
    if (a0 + a.extent[r] <= b0 || b0 + b.extent[r] <= a0) return false;
  }
  return true;
}

bool tasks_conflict(const GenLoop& loop, int p, int i, int q, int j) {
  for (const GenAccess& a : loop.tasks[static_cast<std::size_t>(p)].accesses) {
    for (const GenAccess& b : loop.tasks[static_cast<std::size_t>(q)].accesses) {
      if (conflicts(a, i, b, j)) return true;
    }
  }
  return false;
}

// Creator edges (an access of a fresh buffer waits for the task that made it) are the runtime's
// add_creator, not the template's: the oracle adds them the same way.
bool creator_edge(const GenLoop& loop, int p, int i, int q, int j) {
  for (const GenAccess& a : loop.tasks[static_cast<std::size_t>(p)].accesses) {
    if (a.fresh && a.buffer == q && i - a.back == j) return true;
  }
  return false;
}

bool has_unequal_conflicting_strides(const GenLoop& loop) {
  for (const GenTask& t : loop.tasks) {
    for (const GenAccess& a : t.accesses) {
      for (const GenTask& u : loop.tasks) {
        for (const GenAccess& b : u.accesses) {
          if (a.fresh || b.fresh || a.buffer != b.buffer) continue;
          if (a.tag == ArgTag::in && b.tag == ArgTag::in) continue;
          if (a.stride[0] != b.stride[0] || a.stride[1] != b.stride[1]) return true;
        }
      }
    }
  }
  return false;
}

TEST(LoopTemplate, OverlapDistancesMatchBruteForce) {
  std::mt19937 rng(11);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int trial = 0; trial < tmr::testing::scaled(20000, 100); ++trial) {
    const std::int64_t ox = pick(-20, 20);
    const std::int64_t oy = pick(-20, 20);
    const std::int64_t ex = pick(1, 9);
    const std::int64_t ey = pick(1, 9);
    const std::int64_t s = pick(-6, 6);
    std::int64_t lo = 0;
    std::int64_t hi = 0;
    const bool any = overlap_distances(ox, ex, oy, ey, s, &lo, &hi);
    for (std::int64_t d = -60; d <= 60; ++d) {
      const std::int64_t x0 = ox + d * s;
      const bool overlap = x0 < oy + ey && oy < x0 + ex;
      ASSERT_EQ(overlap, any && lo <= d && d <= hi) << "ox=" << ox << " ex=" << ex << " oy=" << oy
                                                    << " ey=" << ey << " s=" << s << " d=" << d;
    }
  }
}

TEST(LoopTemplate, RandomLoopsAgainstBruteForce) {
  std::mt19937 rng(2026);
  int exact = 0;
  int independent = 0;
  int carried = 0;
  int refused = 0;
  const int loops = tmr::testing::scaled(4000, 200);
  for (int trial = 0; trial < loops; ++trial) {
    const GenLoop loop = random_loop(rng);
    const int n = loop.iterations;
    const int tasks = static_cast<int>(loop.tasks.size());
    // The runtime learns from iterations 0 and 1 and analyses from iteration 2 on.
    const IterationRecord first = record(loop, 0);
    const IterationRecord second = record(loop, 1);
    LoopTemplate tmpl;
    ASSERT_EQ(LoopTemplate::learn(first, second, &tmpl), Fallback::none) << "trial " << trial;
    const Fallback verdict = tmpl.prove(0, n - 1);
    if (verdict != Fallback::none) {
      // Only for a reason that is really there.
      ++refused;
      if (verdict == Fallback::unequal_strides) {
        ASSERT_TRUE(has_unequal_conflicting_strides(loop)) << "trial " << trial;
      } else {
        ASSERT_EQ(verdict, Fallback::wide_window) << "trial " << trial;
      }
      continue;
    }
    ++exact;

    // Every pair's distance interval equals the brute-force set of distances.
    for (std::uint32_t x = 0; x < tmpl.access_count(); ++x) {
      for (std::uint32_t y = 0; y < tmpl.access_count(); ++y) {
        const AccessRecord& ax = tmpl.access(x);
        const AccessRecord& ay = tmpl.access(y);
        if (!is_tracked(ax.tag) || !is_tracked(ay.tag)) continue;
        // Locate the generator's accesses.
        auto gen = [&](std::uint32_t index) {
          const std::uint32_t p = tmpl.task_of_access(index);
          const std::uint32_t k = index - tmpl.task(p).first_access;
          return loop.tasks[p].accesses[k];
        };
        const GenAccess gx = gen(x);
        const GenAccess gy = gen(y);
        if (gx.fresh != gy.fresh || gx.buffer != gy.buffer) continue;
        if (gx.tag == ArgTag::in && gy.tag == ArgTag::in) continue;  // never a conflict
        std::int64_t lo = 0;
        std::int64_t hi = 0;
        Fallback why = Fallback::none;
        const bool any = tmpl.pair_distances(x, y, &lo, &hi, &why);
        ASSERT_EQ(why, Fallback::none);
        for (int d = -(n - 1); d <= n - 1; ++d) {
          // Iteration i = n - 1 or 0 against i - d, within the loop.
          const int i = d >= 0 ? n - 1 : 0;
          GenAccess wx = gx;
          GenAccess wy = gy;
          wx.tag = wy.tag = ArgTag::inout;  // the distance set ignores the access kinds
          ASSERT_EQ(conflicts(wx, i, wy, i - d), any && lo <= d && d <= hi)
              << "trial " << trial << " x=" << x << " y=" << y << " d=" << d;
        }
      }
    }

    // Replay the edges for iterations 2..n-1 (iterations before belong to the per-task map).
    constexpr int kFirst = 2;
    const int total = n * tasks;
    std::vector<std::bitset<64>> reach(static_cast<std::size_t>(total));
    bool cross_edge = false;
    auto index = [&](int i, int p) { return i * tasks + p; };
    for (int i = kFirst; i < n; ++i) {
      for (int p = 0; p < tasks; ++p) {
        std::bitset<64>& r = reach[static_cast<std::size_t>(index(i, p))];
        auto edge = [&](int j, int q, bool creator) {
          ASSERT_TRUE(j < i || (j == i && q < p));
          ASSERT_TRUE(creator || tasks_conflict(loop, p, i, q, j))
              << "spurious edge, trial " << trial << ": (" << i << "," << p << ") -> (" << j << ","
              << q << ")";
          r.set(static_cast<std::size_t>(index(j, q)));
          r |= reach[static_cast<std::size_t>(index(j, q))];
          if (j != i) cross_edge = true;
        };
        const TemplateTaskDeps& deps = tmpl.deps(static_cast<std::uint32_t>(p));
        for (std::uint32_t q : deps.same_iteration)
          edge(i, static_cast<int>(q), false);
        for (const CarriedEdge& e : deps.carried) {
          for (std::int64_t d = e.min_distance; d <= e.max_distance && i - d >= kFirst; ++d)
            edge(static_cast<int>(i - d), static_cast<int>(e.producer), false);
        }
        for (int j = kFirst; j <= i; ++j) {
          for (int q = 0; q < (j == i ? p : tasks); ++q) {
            if (creator_edge(loop, p, i, q, j)) edge(j, q, true);
          }
        }
      }
    }
    bool cross_conflict = false;
    for (int i = kFirst; i < n; ++i) {
      for (int p = 0; p < tasks; ++p) {
        for (int j = kFirst; j <= i; ++j) {
          for (int q = 0; q < (j == i ? p : tasks); ++q) {
            if (!tasks_conflict(loop, p, i, q, j) && !creator_edge(loop, p, i, q, j)) continue;
            if (j != i) cross_conflict = true;
            ASSERT_TRUE(
                reach[static_cast<std::size_t>(index(i, p))][static_cast<std::size_t>(index(j, q))])
                << "unordered conflict, trial " << trial << ": (" << i << "," << p << ") and (" << j
                << "," << q << ")";
          }
        }
      }
    }
    // Independent loops: not a single edge between iterations.
    if (!cross_conflict) {
      ASSERT_FALSE(cross_edge) << "trial " << trial;
    }
    bool any_cross = false;
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < i; ++j) {
        for (int p = 0; p < tasks; ++p) {
          for (int q = 0; q < tasks; ++q)
            any_cross = any_cross || tasks_conflict(loop, p, i, q, j);
        }
      }
    }
    ASSERT_EQ(tmpl.carries_dependence(), any_cross) << "trial " << trial;
    ++(any_cross ? carried : independent);

    // Every later iteration matches the prediction; a moved view does not.
    for (int i = 2; i < n; ++i) {
      const IterationRecord rec = record(loop, i);
      for (std::uint32_t a = 0; a < tmpl.access_count(); ++a) {
        ASSERT_TRUE(tmpl.predicts_access(i, a, rec.accesses[a].tag, rec.accesses[a].buffer,
                                         rec.accesses[a].tensor));
      }
    }
    // The last iteration's views, presented as iteration n - 2: only views that do not move (and
    // are not fresh buffers, which are new every iteration) still match.
    const IterationRecord late = record(loop, n - 1);
    for (std::uint32_t a = 0; a < tmpl.access_count(); ++a) {
      const AccessRecord& r = late.accesses[a];
      if (!is_tracked(r.tag)) continue;
      const bool still = (r.buffer.kind == BufferRef::Kind::outer && tmpl.stride(a)[0] == 0 &&
                          tmpl.stride(a)[1] == 0) ||
                         tmpl.free_read(a);
      EXPECT_EQ(tmpl.predicts_access(n - 2, a, r.tag, r.buffer, r.tensor), still);
    }
  }
  // The generator must exercise every case.
  EXPECT_GT(independent, loops / 20);
  EXPECT_GT(carried, loops / 5);
  EXPECT_GT(refused, 0);
  EXPECT_GT(exact, loops / 2);
}

// The driver's learn takes the current record over (no copy of its accesses): the template is
// the copying learn's, the record is left empty on success and untouched on a fallback.
TEST(LoopTemplate, LearnTakingTheRecordOverMatchesTheCopyingLearn) {
  std::mt19937 rng(77);
  const int loops = tmr::testing::scaled(300, 40);
  for (int trial = 0; trial < loops; ++trial) {
    const GenLoop loop = random_loop(rng);
    const IterationRecord first = record(loop, 0);
    const IterationRecord second = record(loop, 1);
    LoopTemplate copied;
    ASSERT_EQ(LoopTemplate::learn(first, second, &copied), Fallback::none) << "trial " << trial;
    IterationRecord taken = second;
    LoopTemplate moved;
    ASSERT_EQ(LoopTemplate::learn(first, std::move(taken), &moved), Fallback::none);
    EXPECT_TRUE(taken.tasks.empty() && taken.accesses.empty()) << "trial " << trial;
    ASSERT_EQ(moved.task_count(), copied.task_count());
    ASSERT_EQ(moved.access_count(), copied.access_count());
    EXPECT_EQ(moved.base_iteration(), copied.base_iteration());
    const Fallback verdict = copied.prove(0, loop.iterations - 1);
    ASSERT_EQ(moved.prove(0, loop.iterations - 1), verdict) << "trial " << trial;
    if (verdict != Fallback::none) continue;
    EXPECT_EQ(moved.carries_dependence(), copied.carries_dependence());
    for (std::uint32_t p = 0; p < copied.task_count(); ++p) {
      EXPECT_EQ(moved.deps(p).same_iteration, copied.deps(p).same_iteration) << "trial " << trial;
      ASSERT_EQ(moved.deps(p).carried.size(), copied.deps(p).carried.size()) << "trial " << trial;
    }
  }
  // A fallback leaves the record as it was (the driver keeps learning from it).
  const GenLoop loop = random_loop(rng);
  IterationRecord far = record(loop, 1);
  far.index = 3;  // not the iteration after 0
  const std::size_t accesses = far.accesses.size();
  LoopTemplate none;
  EXPECT_EQ(LoopTemplate::learn(record(loop, 0), std::move(far), &none), Fallback::mismatch);
  EXPECT_EQ(far.accesses.size(), accesses);
}

// A template learned from iterations 0 and 1 rebased on iteration 0 (LoopTemplate::rebase, as
// the driver does before proving a loop's first template) predicts every iteration's views as
// before and proves the same edges; a second rebase gives the base back; a record with another
// buffer is refused and changes nothing.
TEST(LoopTemplate, RebasedOnIterationZeroPredictsAndProvesTheSame) {
  std::mt19937 rng(1919);
  const int loops = tmr::testing::scaled(400, 40);
  for (int trial = 0; trial < loops; ++trial) {
    const GenLoop loop = random_loop(rng);
    const int n = loop.iterations;
    LoopTemplate learned;
    ASSERT_EQ(LoopTemplate::learn(record(loop, 0), record(loop, 1), &learned), Fallback::none);
    LoopTemplate rebased = learned;
    IterationRecord neighbour = record(loop, 0);
    ASSERT_TRUE(rebased.rebase(neighbour)) << "trial " << trial;
    EXPECT_EQ(rebased.base_iteration(), 0);
    EXPECT_EQ(neighbour.index, 1);
    for (int i = 0; i < n; ++i) {
      const IterationRecord rec = record(loop, i);
      for (std::uint32_t a = 0; a < learned.access_count(); ++a) {
        if (!is_tracked(rec.accesses[a].tag)) continue;
        EXPECT_EQ(rebased.predicts_view(i, a, rec.accesses[a].tensor),
                  learned.predicts_view(i, a, rec.accesses[a].tensor))
            << "trial " << trial << ", iteration " << i << ", access " << a;
        for (int r = 0; r < rec.accesses[a].tensor.ndims(); ++r)
          ASSERT_EQ(rebased.offset(a, r, i), learned.offset(a, r, i)) << "trial " << trial;
      }
    }
    const Fallback verdict = learned.prove(0, n - 1);
    ASSERT_EQ(rebased.prove(0, n - 1), verdict) << "trial " << trial;
    if (verdict == Fallback::none) {
      EXPECT_EQ(rebased.carries_dependence(), learned.carries_dependence());
      for (std::uint32_t p = 0; p < learned.task_count(); ++p) {
        EXPECT_EQ(rebased.deps(p).same_iteration, learned.deps(p).same_iteration);
        ASSERT_EQ(rebased.deps(p).carried.size(), learned.deps(p).carried.size());
        for (std::size_t e = 0; e < learned.deps(p).carried.size(); ++e) {
          EXPECT_EQ(rebased.deps(p).carried[e].producer, learned.deps(p).carried[e].producer);
          EXPECT_EQ(rebased.deps(p).carried[e].min_distance,
                    learned.deps(p).carried[e].min_distance);
          EXPECT_EQ(rebased.deps(p).carried[e].max_distance,
                    learned.deps(p).carried[e].max_distance);
        }
      }
    }
    ASSERT_TRUE(rebased.rebase(neighbour)) << "trial " << trial;  // back on iteration 1
    EXPECT_EQ(rebased.base_iteration(), 1);
    for (std::uint32_t a = 0; a < learned.access_count(); ++a) {
      for (int r = 0; r < learned.access(a).tensor.ndims(); ++r)
        ASSERT_EQ(rebased.offset(a, r, n - 1), learned.offset(a, r, n - 1)) << "trial " << trial;
    }
  }
  // Another buffer in the neighbour, or a record that is not adjacent: refused, nothing changed.
  const GenLoop loop = random_loop(rng);
  LoopTemplate tmpl;
  ASSERT_EQ(LoopTemplate::learn(record(loop, 0), record(loop, 1), &tmpl), Fallback::none);
  IterationRecord far = record(loop, 0);
  far.index = -1;
  EXPECT_FALSE(tmpl.rebase(far));
  IterationRecord other = record(loop, 0);
  for (AccessRecord& a : other.accesses) {
    if (is_tracked(a.tag) && a.buffer.kind == BufferRef::Kind::outer) {
      a.buffer.address += 64;
      break;
    }
  }
  const bool has_outer = std::any_of(
      other.accesses.begin(), other.accesses.end(),
      [](const auto& a) { return is_tracked(a.tag) && a.buffer.kind == BufferRef::Kind::outer; });
  if (has_outer) {
    EXPECT_FALSE(tmpl.rebase(other));
  }
  EXPECT_EQ(tmpl.base_iteration(), 1);
}

// What a start of analysis asks of a template's outer accesses (outer_accesses) is derived once
// and kept with the template: it must follow every learn() into the same template object (a
// relearned loop), stand through rename_outer() (a bijection of buffers) and match what a
// template never asked before derives from the same accesses.
void expect_same_outer(LoopTemplate& kept, LoopTemplate& fresh, int trial) {
  const LoopTemplate::OuterAccesses& k = kept.outer_accesses();
  const LoopTemplate::OuterAccesses& f = fresh.outer_accesses();
  ASSERT_EQ(k.list.size(), f.list.size()) << "trial " << trial;
  EXPECT_EQ(k.buffer_accesses, f.buffer_accesses) << "trial " << trial;
  for (std::size_t i = 0; i < k.list.size(); ++i) {
    EXPECT_EQ(k.list[i].access, f.list[i].access) << "trial " << trial;
    EXPECT_EQ(k.list[i].leader, f.list[i].leader) << "trial " << trial;
    EXPECT_EQ(k.list[i].buffer, f.list[i].buffer) << "trial " << trial;
    EXPECT_EQ(k.list[i].fixed, f.list[i].fixed) << "trial " << trial;
  }
  // Against the definition: the tracked outer accesses in order, each led by the first one
  // asking its question, buffers numbered by first access.
  std::uint32_t next = 0;
  std::vector<std::uintptr_t> buffers;
  for (std::uint32_t a = 0; a < fresh.access_count(); ++a) {
    const AccessRecord& rec = fresh.access(a);
    if (!is_tracked(rec.tag) || rec.buffer.kind != BufferRef::Kind::outer) continue;
    ASSERT_LT(next, f.list.size()) << "trial " << trial;
    const LoopTemplate::OuterAccess& o = f.list[next++];
    EXPECT_EQ(o.access, a);
    std::uint32_t leader = a;
    for (std::uint32_t i = 0; i + 1 < next; ++i) {
      const std::uint32_t b = f.list[i].access;
      if (f.list[i].leader == b && fresh.same_external_query(a, b)) {
        leader = b;
        break;
      }
    }
    EXPECT_EQ(o.leader, leader) << "trial " << trial << ", access " << a;
    const auto named = std::find(buffers.begin(), buffers.end(), rec.buffer.address);
    EXPECT_EQ(o.buffer, static_cast<std::uint32_t>(named - buffers.begin()));
    if (named == buffers.end()) buffers.push_back(rec.buffer.address);
    const auto& stride = fresh.stride(a);
    EXPECT_EQ(o.fixed, std::all_of(stride.begin(), stride.end(), [](auto v) { return v == 0; }));
  }
  EXPECT_EQ(next, f.list.size()) << "trial " << trial;
}

TEST(LoopTemplate, OuterAccessesFollowEveryChangeOfTheTemplate) {
  std::mt19937 rng(4242);
  const int loops = tmr::testing::scaled(300, 40);
  LoopTemplate kept;  // one object through every trial, as a loop's template is relearned
  for (int trial = 0; trial < loops; ++trial) {
    const GenLoop loop = random_loop(rng);
    ASSERT_EQ(LoopTemplate::learn(record(loop, 0), record(loop, 1), &kept), Fallback::none);
    LoopTemplate fresh;
    ASSERT_EQ(LoopTemplate::learn(record(loop, 0), record(loop, 1), &fresh), Fallback::none);
    expect_same_outer(kept, fresh, trial);
    // Rebased on iteration 0, and rebound to a later iteration's record: derived afresh.
    LoopTemplate rebased = fresh;  // asked already: the copy keeps what was derived
    IterationRecord neighbour = record(loop, 0);
    ASSERT_TRUE(rebased.rebase(neighbour));
    LoopTemplate rebased_fresh;
    ASSERT_EQ(LoopTemplate::learn(record(loop, 0), record(loop, 1), &rebased_fresh),
              Fallback::none);
    IterationRecord other = record(loop, 0);
    ASSERT_TRUE(rebased_fresh.rebase(other));
    expect_same_outer(rebased, rebased_fresh, trial);
    IterationRecord later = record(loop, loop.iterations - 1);
    LoopTemplate rebound = fresh;
    if (rebound.rebind(later) == Rebind::fits) {
      LoopTemplate rebound_fresh;
      ASSERT_EQ(LoopTemplate::learn(record(loop, 0), record(loop, 1), &rebound_fresh),
                Fallback::none);
      IterationRecord again = record(loop, loop.iterations - 1);
      ASSERT_EQ(rebound_fresh.rebind(again), Rebind::fits);
      expect_same_outer(rebound, rebound_fresh, trial);
    }
    // Renamed by a bijection (buffer b to buffer b + 1, cyclically): kept as it was, and the same
    // as the renamed template derives afresh.
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> renames;
    for (int b = 0; b < kOuterBuffers; ++b) {
      renames.emplace_back(reinterpret_cast<std::uintptr_t>(g_outer[b]),
                           reinterpret_cast<std::uintptr_t>(g_outer[(b + 1) % kOuterBuffers]));
    }
    LoopTemplate renamed_copy = kept;
    kept.rename_outer(renames);
    LoopTemplate never_asked;
    ASSERT_EQ(LoopTemplate::learn(record(loop, 0), record(loop, 1), &never_asked), Fallback::none);
    never_asked.rename_outer(renames);
    renamed_copy.rename_outer(renames);
    expect_same_outer(kept, never_asked, trial);
    expect_same_outer(renamed_copy, never_asked, trial);
  }
}

// Families live in chunks; an erased family's storage is reused by the next add, as a fresh
// family (open, nothing superseded), and does not keep its loop's task table alive.
TEST(FamilyTable, ErasedFamiliesStorageIsReusedFreshWithoutTheirTaskTable) {
  RingConfig config;
  config.task_window = 64;
  config.heap_bytes = 1024;
  config.dep_pool = 16;
  std::vector<std::unique_ptr<Ring>> rings;
  Ring* pointers[kRingCount] = {};
  for (int r = 0; r < kRingCount; ++r) {
    rings.push_back(std::make_unique<Ring>(static_cast<std::uint32_t>(r), config));
    pointers[r] = rings.back().get();
  }
  Ring& ring = *rings[0];
  for (int t = 0; t < 2; ++t)
    ring.publish(tmr::testing::admit_pending_task(ring).id.local());
  FamilyTable table{RetirementView(pointers, kRingCount)};
  const Tensor whole = Tensor::wrap(g_outer[2], Shape{kSide, kSide}, DType::f32);
  const auto address = reinterpret_cast<std::uintptr_t>(g_outer[2]);
  const std::uint64_t owner = whole.producer().value();  // as make_region keys it
  const std::array<std::int64_t, kMaxDims> down = {1, 0, 0, 0, 0};
  auto first_tasks = std::make_shared<LoopTasks>();
  first_tasks->tasks.push_back(TaskId(0, 0));
  first_tasks->iteration_start = {0};
  const std::weak_ptr<LoopTasks> first_table = first_tasks;
  std::vector<Family*> erased;
  for (int f = 0; f < 40; ++f) {  // more than one chunk
    Family* family = table.add(address, owner, AccessKind::write,
                               whole.view(Shape{1, 4}, Shape{0, 0}), down, 0, 0, first_tasks);
    FamilyTable::grow(family);
    FamilyTable::close(family);
    erased.push_back(family);
  }
  first_tasks.reset();
  ASSERT_EQ(table.size(), 40u);
  ring.slot(0).release_remaining.store(0);
  ASSERT_TRUE(ring.try_advance());
  table.sweep();  // every family's one task retired: all erased
  EXPECT_FALSE(table.live());
  EXPECT_TRUE(first_table.expired()) << "erased storage keeps the loop's task table";

  auto second_tasks = std::make_shared<LoopTasks>();
  second_tasks->tasks.push_back(TaskId(0, 1));
  second_tasks->iteration_start = {0};
  Family* reused = table.add(address, owner, AccessKind::write,
                             whole.view(Shape{1, 4}, Shape{0, 0}), down, 0, 0, second_tasks);
  EXPECT_NE(std::find(erased.begin(), erased.end(), reused), erased.end());
  EXPECT_TRUE(reused->open);
  EXPECT_EQ(reused->first_live, 0);
  EXPECT_EQ(reused->shape.count, 0);
  FamilyTable::grow(reused);
  std::vector<TaskId> reported;
  const Tensor query = whole.view(Shape{1, 4}, Shape{0, 0});
  table.lookup(
      make_region(query), AccessKind::read,
      [](void* context, TaskId id) { static_cast<std::vector<TaskId>*>(context)->push_back(id); },
      &reported);
  EXPECT_EQ(reported, (std::vector<TaskId>{TaskId(0, 1)}));
}

TEST(LoopTemplate, DifferentStructureIsNotATemplate) {
  const Tensor whole = Tensor::wrap(g_outer[0], Shape{kSide, kSide}, DType::f32);
  const KernelId k1[3] = {kNoKernel, 1, kNoKernel};
  const KernelId k2[3] = {kNoKernel, 2, kNoKernel};
  BufferRef ref;
  ref.address = reinterpret_cast<std::uintptr_t>(g_outer[0]);
  IterationRecord a;
  IterationRecord b;
  a.clear(0);
  b.clear(1);
  a.add_task(k1, false);
  a.add_access(ArgTag::inout, ref, whole.view(Shape{1, 4}, Shape{0, 0}));
  b.add_task(k2, false);
  b.add_access(ArgTag::inout, ref, whole.view(Shape{1, 4}, Shape{1, 0}));
  LoopTemplate t;
  EXPECT_EQ(LoopTemplate::learn(a, b, &t), Fallback::mismatch);  // kernels differ
  b.clear(1);
  b.add_task(k1, false);
  b.add_access(ArgTag::inout, ref, whole.view(Shape{1, 3}, Shape{1, 0}));
  EXPECT_EQ(LoopTemplate::learn(a, b, &t), Fallback::mismatch);  // shape differs
  b.clear(1);
  b.add_task(k1, false);
  b.add_access(ArgTag::in, ref, whole.view(Shape{1, 4}, Shape{1, 0}));
  EXPECT_EQ(LoopTemplate::learn(a, b, &t), Fallback::mismatch);  // tag differs
  b.clear(2);
  b.add_task(k1, false);
  b.add_access(ArgTag::inout, ref, whole.view(Shape{1, 4}, Shape{1, 0}));
  EXPECT_EQ(LoopTemplate::learn(a, b, &t), Fallback::mismatch);  // not consecutive
  b.clear(1);
  b.add_task(k1, false);
  b.add_access(ArgTag::inout, ref, whole.view(Shape{1, 4}, Shape{1, 0}));
  ASSERT_EQ(LoopTemplate::learn(a, b, &t), Fallback::none);
  EXPECT_EQ(t.prove(0, 63), Fallback::none);
  EXPECT_FALSE(t.carries_dependence());  // row i of each iteration: disjoint
  EXPECT_TRUE(t.predicts_access(5, 0, ArgTag::inout, ref, whole.view(Shape{1, 4}, Shape{5, 0})));
  EXPECT_FALSE(t.predicts_access(5, 0, ArgTag::inout, ref, whole.view(Shape{1, 4}, Shape{6, 0})));
  EXPECT_FALSE(t.predicts_access(5, 0, ArgTag::in, ref, whole.view(Shape{1, 4}, Shape{5, 0})));
  EXPECT_TRUE(t.predicts_task(0, k1, false, 1));
  EXPECT_FALSE(t.predicts_task(0, k2, false, 1));
  EXPECT_FALSE(t.predicts_task(1, k1, false, 1));
}

TEST(LoopTemplate, LayoutsVersionsAndAccumulators) {
  const Tensor whole = Tensor::wrap(g_outer[1], Shape{kSide, kSide}, DType::f32);
  const Tensor flat = whole.reshape(Shape{kSide * kSide});
  const KernelId k[3] = {kNoKernel, 1, kNoKernel};
  BufferRef ref;
  ref.address = reinterpret_cast<std::uintptr_t>(g_outer[1]);
  auto two = [&](const Tensor& a0, const Tensor& a1, const Tensor& b0, const Tensor& b1,
                 ArgTag tag_b) {
    IterationRecord a;
    IterationRecord b;
    a.clear(0);
    b.clear(1);
    a.add_task(k, false);
    a.add_access(ArgTag::inout, ref, a0);
    a.add_access(tag_b, ref, b0);
    b.add_task(k, false);
    b.add_access(ArgTag::inout, ref, a1);
    b.add_access(tag_b, ref, b1);
    LoopTemplate t;
    EXPECT_EQ(LoopTemplate::learn(a, b, &t), Fallback::none);
    return t;
  };
  LoopTemplate layouts =
      two(whole.view(Shape{1, 4}, Shape{0, 0}), whole.view(Shape{1, 4}, Shape{1, 0}),
          flat.view(Shape{4}, Shape{0}), flat.view(Shape{4}, Shape{64}), ArgTag::in);
  EXPECT_EQ(layouts.prove(0, 63), Fallback::layouts);
  LoopTemplate versions =
      two(whole.view(Shape{1, 4}, Shape{0, 0}), whole.view(Shape{1, 4}, Shape{1, 0}),
          whole.view(Shape{1, 4}, Shape{0, 8}).with_version(1),
          whole.view(Shape{1, 4}, Shape{1, 8}).with_version(1), ArgTag::in);
  EXPECT_EQ(versions.prove(0, 63), Fallback::versions);
  // An accumulator updated in place every iteration (stride 0) while rows are read: carried at
  // every distance, replayed as a chain to the previous iteration only.
  LoopTemplate accumulate =
      two(whole.view(Shape{1, 4}, Shape{63, 0}), whole.view(Shape{1, 4}, Shape{63, 0}),
          whole.view(Shape{1, 4}, Shape{0, 0}), whole.view(Shape{1, 4}, Shape{1, 0}), ArgTag::in);
  // Rows 0..31 never reach the accumulator's row 63 (unequal strides, disjoint sweeps) ...
  ASSERT_EQ(accumulate.prove(0, 31), Fallback::none);
  EXPECT_TRUE(accumulate.carries_dependence());
  ASSERT_EQ(accumulate.deps(0).carried.size(), 1u);
  EXPECT_EQ(accumulate.deps(0).carried[0].min_distance, 1);
  EXPECT_EQ(accumulate.deps(0).carried[0].max_distance, 1);
  // ... but rows 0..63 do: a two-variable problem, refused rather than guessed.
  EXPECT_EQ(accumulate.prove(0, 63), Fallback::unequal_strides);
  // A stencil: read rows i-1..i+1 (3 rows starting at i), write row i+1 of the same buffer: RAW
  // and WAR at small distances, exactly.
  LoopTemplate stencil =
      two(whole.view(Shape{1, 4}, Shape{1, 0}), whole.view(Shape{1, 4}, Shape{2, 0}),
          whole.view(Shape{3, 4}, Shape{0, 0}), whole.view(Shape{3, 4}, Shape{1, 0}), ArgTag::in);
  ASSERT_EQ(stencil.prove(0, 63), Fallback::none);
  EXPECT_TRUE(stencil.carries_dependence());
}

// An accumulator chain inside each iteration (paged attention's online update over the blocks of
// a request): 8 tasks each update the same row in place and read their own row. Every update
// conflicts with every earlier one, but the replayed edges are the per-task map's last writer:
// task p after task p - 1 only, and the first after the last of the previous iteration only.
TEST(LoopTemplate, AccumulatorChainKeepsOnlyTheLastWritersEdge) {
  constexpr std::uint32_t kChain = 8;
  const Tensor whole = Tensor::wrap(g_outer[1], Shape{kSide, kSide}, DType::f32);
  const KernelId k[3] = {kNoKernel, 1, kNoKernel};
  BufferRef ref;
  ref.address = reinterpret_cast<std::uintptr_t>(g_outer[1]);
  IterationRecord iterations[2];
  for (std::uint32_t i = 0; i < 2; ++i) {
    iterations[i].clear(i);
    for (std::uint32_t t = 0; t < kChain; ++t) {
      iterations[i].add_task(k, false);
      iterations[i].add_access(ArgTag::in, ref, whole.view(Shape{1, 4}, Shape{i * kChain + t, 8}));
      iterations[i].add_access(ArgTag::inout, ref, whole.view(Shape{1, 4}, Shape{63, 0}));
    }
  }
  LoopTemplate chain;
  ASSERT_EQ(LoopTemplate::learn(iterations[0], iterations[1], &chain), Fallback::none);
  ASSERT_EQ(chain.prove(2, 6), Fallback::none);
  EXPECT_TRUE(chain.carries_dependence());
  std::size_t edges = 0;
  for (std::uint32_t p = 0; p < kChain; ++p) {
    const TemplateTaskDeps& deps = chain.deps(p);
    edges += deps.same_iteration.size() + deps.carried.size();
    if (p == 0) {
      EXPECT_TRUE(deps.same_iteration.empty());
      ASSERT_EQ(deps.carried.size(), 1u);
      EXPECT_EQ(deps.carried[0].producer, kChain - 1);
      EXPECT_EQ(deps.carried[0].min_distance, 1);
      EXPECT_EQ(deps.carried[0].max_distance, 1);
    } else {
      EXPECT_EQ(deps.same_iteration, std::vector<std::uint32_t>{p - 1}) << "task " << p;
      EXPECT_TRUE(deps.carried.empty()) << "task " << p;
    }
  }
  EXPECT_EQ(edges, std::size_t{kChain});  // one per update, as the per-task map wires them
}

TEST(LoopTemplate, AffineFamilyFindsExactlyTheOverlappingIterations) {
  std::mt19937 rng(7);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const Tensor whole = Tensor::wrap(g_outer[2], Shape{kSide, kSide}, DType::f32);
  const Tensor flat = whole.reshape(Shape{kSide * kSide});
  for (int trial = 0; trial < tmr::testing::scaled(5000, 100); ++trial) {
    AffineFamily family;
    const std::uint32_t e0 = static_cast<std::uint32_t>(pick(1, 6));
    const std::uint32_t e1 = static_cast<std::uint32_t>(pick(1, 6));
    family.count = pick(1, 12);
    std::int64_t base[2];
    for (int r = 0; r < 2; ++r) {
      const std::uint32_t e = r == 0 ? e0 : e1;
      family.stride[static_cast<std::size_t>(r)] = pick(-4, 4);
      const std::int64_t span = family.stride[static_cast<std::size_t>(r)] * (family.count - 1);
      base[r] = pick(static_cast<int>(span < 0 ? -span : 0),
                     static_cast<int>(kSide - e - (span > 0 ? span : 0)));
    }
    family.first = whole.view(Shape{e0, e1}, Shape{static_cast<std::uint32_t>(base[0]),
                                                   static_cast<std::uint32_t>(base[1])});
    const bool use_flat = pick(0, 3) == 0;
    Tensor query;
    if (use_flat) {
      const std::uint32_t len = static_cast<std::uint32_t>(pick(1, 200));
      query =
          flat.view(Shape{len}, Shape{static_cast<std::uint32_t>(pick(0, kSide * kSide - len))});
    } else {
      const std::uint32_t q0 = static_cast<std::uint32_t>(pick(1, 10));
      const std::uint32_t q1 = static_cast<std::uint32_t>(pick(1, 10));
      query = whole.view(Shape{q0, q1}, Shape{static_cast<std::uint32_t>(pick(0, kSide - q0)),
                                              static_cast<std::uint32_t>(pick(0, kSide - q1))});
    }
    std::int64_t first = 0;
    std::int64_t last = -1;
    const bool any = family.overlapping(query, &first, &last);
    for (std::int64_t k = 0; k < family.count; ++k) {
      const Tensor member = whole.view(
          Shape{e0, e1}, Shape{static_cast<std::uint32_t>(base[0] + k * family.stride[0]),
                               static_cast<std::uint32_t>(base[1] + k * family.stride[1])});
      bool overlap = false;
      if (use_flat) {
        // Byte intervals: exact for the interval, conservative for the elements.
        overlap = member.first_element() < query.end_element() &&
                  query.first_element() < member.end_element();
      } else {
        overlap = true;
        for (int r = 0; r < 2; ++r) {
          if (member.box_offset(r) + member.box_extent(r) <= query.box_offset(r) ||
              query.box_offset(r) + query.box_extent(r) <= member.box_offset(r)) {
            overlap = false;
          }
        }
      }
      ASSERT_EQ(overlap, any && first <= k && k <= last) << "trial " << trial << " k=" << k;
    }
  }
}

}  // namespace
}  // namespace tmr::detail::loops
