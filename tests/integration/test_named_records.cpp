// Records that name their template position (session 23, docs/design.md "Records that name their
// template position"): a replayed task whose arguments the exact compare proved to be its
// position's image moved by the iteration does not hold its tensors; its record names the image
// (RecordImage) and the distance, and the kernel side rebuilds them (RecordTensors). On both
// platforms and with both compares: every kernel receives exactly the tensors the body passed
// (every defined byte), with tiny rings (records reused while the image lives), nested loops,
// loops whose images retire while their tasks still wait, and a kept template relearned while
// earlier tasks are live. Such a record also names the image's kernel functions (session 24):
// every task runs its position's kernel while images are reused by positions of other kernels.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/orchestrator_core.hpp"
#include "support/loop_tests.hpp"
#include "support/platforms.hpp"
#include "tmr/tmr.hpp"

namespace tmr::testing {
namespace {

// What each task's kernel received, by the task's tag (scalar 0): its tensors, byte for byte.
constexpr int kSeenArgs = 4;
struct Seen {
  int count = 0;
  std::array<Tensor, kSeenArgs> tensors;
  float factor = 0.0f;  // which kernel ran: scaled_sum_and_record's factor
};
std::vector<Seen>* seen = nullptr;

// Held until `released` (or 5 s: a test never hangs): the tasks behind it stay pending.
std::atomic<bool> released{true};

// y = factor x (x0 + x1 + ...) (the last tensor is y; every tensor a 1-D or 1 x n view of
// floats, read along its long dimension, a 1-element one as that element), recording the
// tensors and the factor under tag scalar 0.
template <int kFactor>
void scaled_sum_and_record(const KernelArgs& a) {
  const auto tag = static_cast<std::size_t>(a.scalar<std::uint64_t>(0));
  Seen& s = (*seen)[tag];
  s.factor = static_cast<float>(kFactor);
  s.count = a.tensor_count();
  for (int k = 0; k < a.tensor_count() && k < kSeenArgs; ++k)
    s.tensors[static_cast<std::size_t>(k)] = a.tensor(k);
  const Tensor& y = a.tensor(a.tensor_count() - 1);
  const int dy = y.ndims() == 2 && y.dim(0) == 1 ? 1 : 0;
  for (std::uint32_t e = 0; e < y.dim(dy); ++e) {
    float v = 0.0f;
    for (int k = 0; k + 1 < a.tensor_count(); ++k) {
      const Tensor& x = a.tensor(k);
      const int dx = x.ndims() == 2 && x.dim(0) == 1 ? 1 : 0;
      const std::uint32_t at = x.dim(dx) == 1 ? 0 : e;  // a 1-element view: that element
      v += static_cast<const float*>(x.data())[at * x.stride(dx)];
    }
    static_cast<float*>(y.data())[e * y.stride(dy)] = static_cast<float>(kFactor) * v;
  }
}
void sum_and_record(const KernelArgs& a) {
  scaled_sum_and_record<1>(a);
}

void hold(const KernelArgs& a) {
  wait_until_open(released);
  static_cast<float*>(a.tensor(0).data())[0] = 0.0f;
}

// The bytes of every Tensor field (not the trailing padding).
bool same_tensor(const Tensor& a, const Tensor& b) {
  constexpr std::size_t defined = Tensor::field_offsets().perm + kMaxDims;
  return std::memcmp(&a, &b, defined) == 0;
}

struct Param {
  PlatformKind platform;
  bool wide;  // the exact compare in 32-byte words (exact_wide) or inline
};

class NamedRecords : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override { detail::set_wide_replay_compare(GetParam().wide); }
  void TearDown() override {
    detail::set_wide_replay_compare(true);
    seen = nullptr;
    released = true;
  }
};

struct Fixture {
  // (A run here holds 600 tasks at most: the large window is few_tasks_ring's, unwrapped.)
  explicit Fixture(PlatformKind platform, std::uint32_t window = kFewTasksWindow)
      : runtime([&] {
          RuntimeConfig c = loop_config(platform);
          c.record_events = false;  // a pin (the replayed path's) is never taken while recording
          c.ring.task_window = window;
          return c;
        }()) {
    sum = runtime.kernels().add("sum_and_record", CoreType::aiv, &sum_and_record);
    held = runtime.kernels().add("hold", CoreType::aiv, &hold);
  }
  Runtime runtime;
  KernelId sum, held;
};

// The tensors a body passed, by tag, to compare with what the kernels saw.
struct Expected {
  int count = 0;
  std::array<Tensor, kSeenArgs> tensors;
};

void expect_seen_as_passed(const std::vector<Expected>& want) {
  for (std::size_t tag = 0; tag < want.size(); ++tag) {
    if (want[tag].count == 0) continue;  // no task with this tag
    const Seen& got = (*seen)[tag];
    ASSERT_EQ(got.count, want[tag].count) << "task " << tag;
    for (int k = 0; k < got.count; ++k) {
      ASSERT_TRUE(same_tensor(got.tensors[static_cast<std::size_t>(k)],
                              want[tag].tensors[static_cast<std::size_t>(k)]))
          << "task " << tag << " argument " << k;
    }
  }
}

// Keeps the tensors of `args` as the task tagged `tag` must see them.
void remember(std::vector<Expected>& want, std::size_t tag, const Args& args) {
  want[tag].count = args.tensor_count();
  for (int k = 0; k < args.tensor_count(); ++k)
    want[tag].tensors[static_cast<std::size_t>(k)] = args.tensor(k);
}

// y[to] = x[row] + g (g's one element), as task `tag`.
Args row_plus_g(const Tensor& x, const Tensor& g, const Tensor& y, std::uint32_t row,
                std::uint32_t to, std::uint32_t tag, std::uint32_t cols) {
  return Args()
      .in(x.view({1, cols}, {row, 0}))
      .in(g)
      .out_existing(y.view({cols}, {to * cols}))
      .scalar(static_cast<std::uint64_t>(tag));
}

// Keeps the hold kernel's tasks (and every task behind them) waiting for 100 ms from its making
// (std::jthread: joined when it goes).
std::jthread held_briefly() {
  released = false;
  return std::jthread([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    released = true;
  });
}

// A slice write of four arguments (three moving reads of different ranks, strides and steps,
// the written row) and one of two, on a window of 16 slots: records are reused many times over
// while each position's image stands. Every kernel sees the body's tensors, every row its sum.
TEST_P(NamedRecords, SliceWritesSeeTheBodysTensorsOnATinyRing) {
  for (const std::uint32_t window : {16u, kFewTasksWindow}) {
    SCOPED_TRACE("window " + std::to_string(window));
    Fixture f(GetParam().platform, window);
    constexpr std::uint32_t kRows = 300;
    constexpr std::uint32_t kCols = 4;
    std::vector<float> a(kRows * kCols), b(2 * kRows * kCols + kCols), c(kRows + kCols);
    std::vector<float> y(kRows * kCols, 0.0f), z(kRows * kCols, 0.0f);
    for (std::size_t k = 0; k < a.size(); ++k)
      a[k] = static_cast<float>(k);
    for (std::size_t k = 0; k < b.size(); ++k)
      b[k] = 1000.0f + static_cast<float>(k);
    for (std::size_t k = 0; k < c.size(); ++k)
      c[k] = 0.5f * static_cast<float>(k);
    std::vector<Seen> got(2 * kRows);
    seen = &got;
    std::vector<Expected> want(2 * kRows);
    const RunResult r = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Tensor ta = Tensor::wrap(a.data(), {kRows, kCols}, DType::f32);
      const Tensor tb = Tensor::wrap(b.data(), {static_cast<std::uint32_t>(b.size())}, DType::f32);
      const Tensor tc = Tensor::wrap(c.data(), {static_cast<std::uint32_t>(c.size())}, DType::f32);
      const Tensor ty = Tensor::wrap(y.data(), {kRows, kCols}, DType::f32);
      const Tensor tz = Tensor::wrap(z.data(), {kRows * kCols}, DType::f32);
      o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
        const auto row = static_cast<std::uint32_t>(i);
        const Args four = Args()
                              .in(ta.view({1, kCols}, {row, 0}))
                              .in(tb.view({kCols}, {2 * row * kCols + 1}))
                              .in(tc.view({kCols}, {row}))
                              .out_existing(ty.view({1, kCols}, {row, 0}))
                              .scalar(static_cast<std::uint64_t>(2 * row));
        remember(want, 2 * row, four);
        o.submit_aiv(f.sum, four);
        const Args two = Args()
                             .in(ty.view({1, kCols}, {row, 0}))
                             .out_existing(tz.view({kCols}, {row * kCols}))
                             .scalar(static_cast<std::uint64_t>(2 * row + 1));
        remember(want, 2 * row + 1, two);
        o.submit_aiv(f.sum, two);
      });
    });
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_EQ(r.stats.loop_tasks_analysed, 2u * (kRows - 2));
    if (window == 16384) {
      EXPECT_EQ(r.stats.loop_tasks_named, 2u * (kRows - 2)) << "every analysed task named one";
    } else {
      // A full ring sends some submits through the generic wait and plan_submit's replay, after
      // which the position takes a new image.
      EXPECT_GT(r.stats.loop_tasks_named, kRows);
      EXPECT_LE(r.stats.loop_tasks_named, r.stats.loop_tasks_analysed);
    }
    expect_seen_as_passed(want);
    for (std::uint32_t row = 0; row < kRows; ++row) {
      for (std::uint32_t col = 0; col < kCols; ++col) {
        const float sum = a[row * kCols + col] + b[2 * row * kCols + 1 + col] + c[row + col];
        ASSERT_EQ(y[row * kCols + col], sum) << "row " << row << " column " << col;
        ASSERT_EQ(z[row * kCols + col], sum) << "row " << row << " column " << col;
      }
    }
  }
}

// y[row] = scalar_count x 1000 + the sum of the scalars past the first (scalar 0: the row).
void count_scalars(const KernelArgs& a) {
  std::int32_t sum = a.scalar_count() * 1000;
  for (int s = 1; s < a.scalar_count(); ++s)
    sum += static_cast<std::int32_t>(a.scalar<std::uint64_t>(s));
  a.tensor(0).data_as<std::int32_t>()[0] = sum;
}

// A named record's scalar count is the task's own (Ring::bind_named writes it; the position's
// header does not hold it): one position whose tasks pass 1, 2 or 3 scalars in turn, on a window
// of 16 slots, so each record reused holds the count of an earlier task with another one.
TEST_P(NamedRecords, NamedRecordsHoldTheirTasksScalarCount) {
  Fixture f(GetParam().platform, 16);
  const KernelId count = f.runtime.kernels().add("count_scalars", CoreType::aiv, &count_scalars);
  constexpr std::uint32_t kRows = 300;
  std::vector<std::int32_t> y(kRows, -1);
  const RunResult r = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor ty = Tensor::wrap(y.data(), {kRows}, DType::i32);
    o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
      const auto row = static_cast<std::uint32_t>(i);
      Args args = Args().out_existing(ty.view({1}, {row})).scalar(std::uint64_t{row});
      for (std::uint32_t s = 1; s <= row % 3; ++s)
        args.scalar(std::uint64_t{10 * row + s});
      o.submit_aiv(count, args);
    });
  });
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_GT(r.stats.loop_tasks_named, kRows / 2) << "the named records are what this tests";
  for (std::uint32_t row = 0; row < kRows; ++row) {
    const std::uint32_t extra = row % 3;
    std::int32_t want = static_cast<std::int32_t>(1 + extra) * 1000;
    for (std::uint32_t s = 1; s <= extra; ++s)
      want += static_cast<std::int32_t>(10 * row + s);
    ASSERT_EQ(y[row], want) << "row " << row;
  }
}

// Nested loops: each outer iteration's inner loop is a new analysis whose positions take images
// (reused once the earlier inner loops' tasks are consumed), on a window of 32 slots.
TEST_P(NamedRecords, NestedLoopsSeeTheBodysTensors) {
  Fixture f(GetParam().platform, 32);
  constexpr std::uint32_t kOuter = 12;
  constexpr std::uint32_t kInner = 24;
  constexpr std::uint32_t kCols = 3;
  std::vector<float> x(kOuter * kInner * kCols), w(kInner * kCols), y(kOuter * kInner * kCols);
  for (std::size_t k = 0; k < x.size(); ++k)
    x[k] = static_cast<float>(k % 97);
  for (std::size_t k = 0; k < w.size(); ++k)
    w[k] = 0.25f * static_cast<float>(k);
  std::vector<Seen> got(kOuter * kInner);
  seen = &got;
  std::vector<Expected> want(kOuter * kInner);
  const RunResult r = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor tx = Tensor::wrap(x.data(), {kOuter * kInner, kCols}, DType::f32);
    const Tensor tw = Tensor::wrap(w.data(), {kInner * kCols}, DType::f32);
    const Tensor ty = Tensor::wrap(y.data(), {kOuter * kInner * kCols}, DType::f32);
    o.parallel_for(kOuter, [&](Orchestrator& o, std::int64_t p) {
      o.parallel_for(kInner, [&](Orchestrator& o, std::int64_t q) {
        const auto row = static_cast<std::uint32_t>(p * kInner + q);
        const Args args = Args()
                              .in(tx.view({1, kCols}, {row, 0}))
                              .in(tw.view({kCols}, {static_cast<std::uint32_t>(q) * kCols}))
                              .out_existing(ty.view({kCols}, {row * kCols}))
                              .scalar(static_cast<std::uint64_t>(row));
        remember(want, row, args);
        o.submit_aiv(f.sum, args);
      });
    });
  });
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_GT(r.stats.loop_tasks_named, 0u);
  expect_seen_as_passed(want);
  for (std::uint32_t row = 0; row < kOuter * kInner; ++row) {
    for (std::uint32_t col = 0; col < kCols; ++col) {
      ASSERT_EQ(y[row * kCols + col], x[row * kCols + col] + w[(row % kInner) * kCols + col])
          << "row " << row << " column " << col;
    }
  }
}

// Loops whose images retire while every task that named them still waits (each reads a value a
// held task writes): the next loops must take other images, not rewrite those. Three loops of
// one shape over other buffers and offsets, so a rewritten image would move their tasks.
TEST_P(NamedRecords, ImagesOfWaitingTasksAreNotReused) {
  Fixture f(GetParam().platform);
  constexpr std::uint32_t kLoops = 3;
  constexpr std::uint32_t kRows = 40;
  constexpr std::uint32_t kCols = 4;
  std::vector<float> g(1, 7.0f);
  std::vector<std::vector<float>> x(kLoops), y(kLoops);
  for (std::uint32_t l = 0; l < kLoops; ++l) {
    x[l].resize((kRows + l) * kCols);
    y[l].assign((kRows + l) * kCols, -1.0f);
    for (std::size_t k = 0; k < x[l].size(); ++k)
      x[l][k] = static_cast<float>(100 * l + k);
  }
  std::vector<Seen> got(kLoops * kRows);
  seen = &got;
  std::vector<Expected> want(kLoops * kRows);
  std::optional<std::jthread> held(held_briefly());
  const RunResult r = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor tg = Tensor::wrap(g.data(), {1}, DType::f32);
    o.submit_aiv(f.held, Args().out_existing(tg));  // g = 0 once released
    for (std::uint32_t l = 0; l < kLoops; ++l) {
      const Tensor tx = Tensor::wrap(x[l].data(), {kRows + l, kCols}, DType::f32);
      const Tensor ty = Tensor::wrap(y[l].data(), {(kRows + l) * kCols}, DType::f32);
      o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
        const auto row = static_cast<std::uint32_t>(i) + l;  // each loop its own offsets
        const std::uint32_t tag = l * kRows + static_cast<std::uint32_t>(i);
        const Args args = row_plus_g(tx, tg, ty, row, row, tag, kCols);
        remember(want, tag, args);
        o.submit_aiv(f.sum, args);
      });
    }
  });
  held.reset();
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  EXPECT_EQ(r.stats.loop_tasks_named, kLoops * (kRows - 2));
  expect_seen_as_passed(want);
  for (std::uint32_t l = 0; l < kLoops; ++l) {
    for (std::uint32_t i = 0; i < kRows; ++i) {
      const std::uint32_t row = i + l;
      for (std::uint32_t col = 0; col < kCols; ++col) {
        ASSERT_EQ(y[l][row * kCols + col], x[l][row * kCols + col] + 0.0f)
            << "loop " << l << " row " << row << " column " << col;
      }
    }
  }
}

// A template kept from a first run, rebound in a second whose body departs part-way (the
// written row moves elsewhere from iteration kSwitch on): the rebound loop relearns, its images
// retire while its earlier tasks still wait on a held task, and the relearned analysis names
// new ones. Every kernel sees the body's tensors in both runs.
TEST_P(NamedRecords, RelearnedTemplateWhileEarlierTasksWait) {
  Fixture f(GetParam().platform);
  constexpr std::uint32_t kRows = 60;
  constexpr std::uint32_t kCols = 4;
  constexpr std::uint32_t kSwitch = 20;
  std::vector<float> g(1, 3.0f), x(kRows * kCols), y(2 * kRows * kCols);
  for (std::size_t k = 0; k < x.size(); ++k)
    x[k] = static_cast<float>(k);
  for (const bool depart : {false, true}) {
    SCOPED_TRACE(depart ? "departing run" : "first run");
    std::fill(y.begin(), y.end(), -1.0f);
    std::vector<Seen> got(kRows);
    seen = &got;
    std::vector<Expected> want(kRows);
    std::vector<float> expect(y.size(), -1.0f);
    std::optional<std::jthread> held(held_briefly());
    const RunResult r = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Tensor tg = Tensor::wrap(g.data(), {1}, DType::f32);
      const Tensor tx = Tensor::wrap(x.data(), {kRows, kCols}, DType::f32);
      const Tensor ty = Tensor::wrap(y.data(), {2 * kRows * kCols}, DType::f32);
      o.submit_aiv(f.held, Args().out_existing(tg));  // g = 0 once released
      o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
        const auto row = static_cast<std::uint32_t>(i);
        const std::uint32_t to = depart && row >= kSwitch ? 2 * row + 1 : row;
        const Args args = row_plus_g(tx, tg, ty, row, to, row, kCols);
        remember(want, row, args);
        for (std::uint32_t col = 0; col < kCols; ++col)
          expect[to * kCols + col] = x[row * kCols + col];
        o.submit_aiv(f.sum, args);
      });
    });
    held.reset();
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_GT(r.stats.loop_tasks_named, 0u);
    if (depart) {
      EXPECT_GT(r.stats.loop_iterations_analysed, 0u);
    }
    expect_seen_as_passed(want);
    for (std::size_t k = 0; k < y.size(); ++k)
      ASSERT_EQ(y[k], expect[k]) << "element " << k;
  }
}

// Two positions of one shape with different kernels in every iteration, their kernels swapped
// from loop to loop and from run to run, on a 16-slot window: images retire and are taken again
// by positions of the other kernel (within a run once every ring passed them, and all of them
// at the next run's start). Every named task runs its own position's kernel on the body's
// tensors (its record names the image's kernel functions, TaskRecord::fns).
TEST_P(NamedRecords, TasksRunTheirPositionsKernelsAsImagesAreReused) {
  Fixture f(GetParam().platform, 16);
  const KernelId triple =
      f.runtime.kernels().add("triple_and_record", CoreType::aiv, &scaled_sum_and_record<3>);
  constexpr std::uint32_t kLoops = 4;
  constexpr std::uint32_t kRows = 50;
  constexpr std::uint32_t kCols = 4;
  constexpr std::uint32_t kTasks = kLoops * kRows * 2;
  std::vector<float> g(1, 0.5f), x(kRows * kCols), y(kTasks * kCols);
  for (std::size_t k = 0; k < x.size(); ++k)
    x[k] = static_cast<float>(k);
  for (const int run : {0, 1}) {
    SCOPED_TRACE(run == 0 ? "first run" : "second run");
    std::fill(y.begin(), y.end(), -1.0f);
    std::vector<Seen> got(kTasks);
    seen = &got;
    std::vector<Expected> want(kTasks);
    std::vector<float> factor(kTasks, 0.0f);
    const RunResult r = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Tensor tg = Tensor::wrap(g.data(), {1}, DType::f32);
      const Tensor tx = Tensor::wrap(x.data(), {kRows, kCols}, DType::f32);
      const Tensor ty = Tensor::wrap(y.data(), {kTasks * kCols}, DType::f32);
      for (std::uint32_t l = 0; l < kLoops; ++l) {
        const bool swapped = (l + static_cast<std::uint32_t>(run)) % 2 == 1;
        o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
          const auto row = static_cast<std::uint32_t>(i);
          for (std::uint32_t p = 0; p < 2; ++p) {
            const std::uint32_t tag = (l * kRows + row) * 2 + p;
            const Args args = row_plus_g(tx, tg, ty, row, tag, tag, kCols);
            remember(want, tag, args);
            const bool tripled = (p == 1) != swapped;
            factor[tag] = tripled ? 3.0f : 1.0f;
            o.submit_aiv(tripled ? triple : f.sum, args);
          }
        });
      }
    });
    ASSERT_TRUE(r.ok()) << r.status.to_string();
    EXPECT_GT(r.stats.loop_tasks_named, kTasks / 2);  // (some iterations learn)
    expect_seen_as_passed(want);
    for (std::uint32_t tag = 0; tag < kTasks; ++tag) {
      ASSERT_EQ(got[tag].factor, factor[tag]) << "task " << tag;
      const std::uint32_t row = tag / 2 % kRows;
      for (std::uint32_t col = 0; col < kCols; ++col) {
        ASSERT_EQ(y[tag * kCols + col], factor[tag] * (x[row * kCols + col] + 0.5f))
            << "task " << tag << " column " << col;
      }
    }
  }
}

// y = x_0 + ... + x_(n-2), every tensor a one-element view (its first element), recording the
// first kSeenArgs tensors under tag scalar 0: for any argument count and rank.
void sum_singles_and_record(const KernelArgs& a) {
  const auto tag = static_cast<std::size_t>(a.scalar<std::uint64_t>(0));
  Seen& s = (*seen)[tag];
  s.factor = 1.0f;
  s.count = a.tensor_count();
  for (int k = 0; k < a.tensor_count() && k < kSeenArgs; ++k)
    s.tensors[static_cast<std::size_t>(k)] = a.tensor(k);
  float v = 0.0f;
  for (int k = 0; k + 1 < a.tensor_count(); ++k)
    v += static_cast<const float*>(a.tensor(k).data())[0];
  static_cast<float*>(a.tensor(a.tensor_count() - 1).data())[0] = v;
}

// The exact compare's instance is chosen per position by argument count and by whether the
// images move in the upper box-offset lanes (session 27: LoopDriver::exact_wide_for; here the
// views of ranks 1 and 2 are narrow, those of ranks 4 and 5 move in lane 3 or 4 and are not):
// every count from 1 to 6 (5 and 6 the looped instance) at ranks 1, 2, 4 and 5, each argument a
// one-element view moving along its last dimension. At iteration kMissOut the output leaves its
// prediction (the element kRows further on), at kMissIn the first input (its element 3 further
// on): each compare must see the one differing argument, so those tasks run on the tensors
// passed and write where they were told. On a 16-slot window and a large one.
TEST_P(NamedRecords, EveryArgumentCountAndRankIsComparedWhole) {
  constexpr std::uint32_t kRows = 64;
  constexpr std::uint32_t kMissOut = 40;
  constexpr std::uint32_t kMissIn = 50;
  for (const std::uint32_t window : {16u, kFewTasksWindow}) {
    // One runtime a window, run once a rank and count (a runtime's set-up is most of this test's
    // time under the sanitizers; each run learns its loop afresh: its shape is not the last's).
    Fixture f(GetParam().platform, window);
    const KernelId sum =
        f.runtime.kernels().add("sum_singles", CoreType::aiv, &sum_singles_and_record);
    for (const int rank : {1, 2, 4, 5}) {
      for (int count = 1; count <= 6; ++count) {
        SCOPED_TRACE("window " + std::to_string(window) + ", rank " + std::to_string(rank) + ", " +
                     std::to_string(count) + " arguments");
        // Each tensor's shape: 2 along the first dimension (the views take index 1), 1 along the
        // middle ones, 2 x kRows along the last (rank 1: that dimension alone).
        const auto shape_of = [&] {
          std::vector<std::uint32_t> shape(static_cast<std::size_t>(rank), 1);
          if (rank > 1) shape.front() = 2;
          shape.back() = 2 * kRows;
          return shape;
        };
        const std::size_t elements = (rank > 1 ? 2u : 1u) * 2 * kRows;
        const int inputs = count - 1;
        std::vector<std::vector<float>> x(static_cast<std::size_t>(inputs),
                                          std::vector<float>(elements));
        for (std::size_t k = 0; k < x.size(); ++k) {
          for (std::size_t e = 0; e < elements; ++e)
            x[k][e] = static_cast<float>(1000 * (k + 1) + e);
        }
        std::vector<float> y(elements, -1.0f);
        std::vector<Seen> got(kRows);
        seen = &got;
        std::vector<Expected> want(kRows);
        const RunResult r = f.runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
          const std::vector<std::uint32_t> shape = shape_of();
          const Shape dims(shape);
          std::vector<Tensor> tx;
          for (auto& v : x)
            tx.push_back(Tensor::wrap(v.data(), dims, DType::f32));
          const Tensor ty = Tensor::wrap(y.data(), dims, DType::f32);
          // The one-element view at `at` along the last dimension (index 1 along the first).
          const auto one = [&](const Tensor& t, std::uint32_t at) {
            std::vector<std::uint32_t> box(static_cast<std::size_t>(rank), 1);
            std::vector<std::uint32_t> from(static_cast<std::size_t>(rank), 0);
            if (rank > 1) from.front() = 1;
            from.back() = at;
            return t.view(Shape(box), Shape(from));
          };
          o.parallel_for(kRows, [&](Orchestrator& o, std::int64_t i) {
            const auto row = static_cast<std::uint32_t>(i);
            Args args;
            for (int k = 0; k < inputs; ++k)
              args.in(
                  one(tx[static_cast<std::size_t>(k)], k == 0 && row == kMissIn ? row + 3 : row));
            args.out_existing(one(ty, row == kMissOut ? row + kRows : row));
            args.scalar(static_cast<std::uint64_t>(row));
            want[row].count = args.tensor_count();
            for (int k = 0; k < args.tensor_count() && k < kSeenArgs; ++k)
              want[row].tensors[static_cast<std::size_t>(k)] = args.tensor(k);
            o.submit_aiv(sum, args);
          });
        });
        ASSERT_TRUE(r.ok()) << r.status.to_string();
        if (window == 16384) {
          // Named from the third iteration on until the output's miss (the position then
          // compares under masks, naming nothing).
          EXPECT_GE(r.stats.loop_tasks_named, kMissOut - 2);
        } else {
          EXPECT_GT(r.stats.loop_tasks_named, 0u);
        }
        for (std::uint32_t row = 0; row < kRows; ++row) {
          const Seen& g = got[row];
          ASSERT_EQ(g.count, want[row].count) << "row " << row;
          for (int k = 0; k < g.count && k < kSeenArgs; ++k) {
            ASSERT_TRUE(same_tensor(g.tensors[static_cast<std::size_t>(k)],
                                    want[row].tensors[static_cast<std::size_t>(k)]))
                << "row " << row << " argument " << k;
          }
          const std::size_t base = rank > 1 ? 2 * kRows : 0;  // index 1 along the first dimension
          float sum_in = 0.0f;
          for (int k = 0; k < inputs; ++k) {
            const std::uint32_t at = k == 0 && row == kMissIn ? row + 3 : row;
            sum_in += x[static_cast<std::size_t>(k)][base + at];
          }
          const std::uint32_t to = row == kMissOut ? row + kRows : row;
          ASSERT_EQ(y[base + to], sum_in) << "row " << row;
          if (row == kMissOut) {
            ASSERT_EQ(y[base + row], -1.0f) << "the missed output's predicted element";
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Platforms, NamedRecords,
    ::testing::Values(Param{PlatformKind::threads, true}, Param{PlatformKind::sim, true},
                      Param{PlatformKind::threads, false}, Param{PlatformKind::sim, false}),
    [](const auto& info) {
      return platform_suffix(info.param.platform) + (info.param.wide ? "" : "_narrow_compare");
    });

}  // namespace
}  // namespace tmr::testing
