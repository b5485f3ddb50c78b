// The threads platform's step gate (StepGate): one stepper at a time, no request lost, and the
// completions the steps report counted by the RMWs that let go.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "core/cpu_relax.hpp"
#include "platform/threads/step_gate.hpp"
#include "support/test_scale.hpp"

namespace tmr::detail {
namespace {

TEST(StepGate, StepsCountTheirCompletionsAndServeARequestRaisedWhileHeld) {
  StepGate gate;
  int steps = 0, counted = 0;
  std::vector<std::uint64_t> totals;  // what each call of `count` was told the gate's count is
  auto count = [&](std::uint64_t total) {
    ++counted;
    totals.push_back(total);
  };
  EXPECT_TRUE(gate.step([&] { return std::uint64_t{++steps == 1 ? 2u : 0u}; }, count));
  EXPECT_EQ(steps, 1);
  EXPECT_EQ(gate.completed(), 2u);
  EXPECT_EQ(counted, 1) << "called after a release that counted some";

  // A caller that finds the gate held leaves a request; the holder steps once more for it.
  bool inner_stepped = true;
  EXPECT_TRUE(gate.step(
      [&] {
        if (++steps == 2) inner_stepped = gate.step([&] { return std::uint64_t{5}; }, count);
        return std::uint64_t{1};
      },
      count));
  EXPECT_FALSE(inner_stepped) << "the gate was held: a request, not a step";
  EXPECT_EQ(steps, 3) << "the holder's step, then one for the request";
  EXPECT_EQ(gate.completed(), 4u);
  EXPECT_EQ(counted, 3);
  EXPECT_EQ(totals, (std::vector<std::uint64_t>{2, 3, 4})) << "the count each release left";

  // An opportunistic step raises no request when the gate is held, and reports one raised
  // while it held the gate.
  EXPECT_TRUE(gate.step(
      [&] {
        EXPECT_FALSE(gate.step_if_free([&] { return std::uint64_t{7}; }, count));
        return std::uint64_t{0};
      },
      count));
  EXPECT_EQ(steps, 3) << "no step was requested";
  EXPECT_TRUE(gate.step_if_free(
      [&] {
        EXPECT_FALSE(gate.step([&] { return std::uint64_t{7}; }, count));
        return std::uint64_t{0};
      },
      count));
  EXPECT_EQ(gate.completed(), 4u);
  EXPECT_TRUE(gate.step([&] { return std::uint64_t{0}; }, count)) << "the gate is free again";
}

// Threads call step() at once, round after round; every call raises a stamp first. After each
// round (every call returned, so no step runs) some step must have seen every thread's stamp of
// the round: a call that found the gate held was served by its holder. Checked too: never two
// steps at once, and the word's count is the sum the steps reported. Fails with a release that
// ignores the request, or a second try that does not raise it.
TEST(StepGate, NoRequestIsLostAndStepsNeverOverlap) {
  constexpr int kThreads = 4;
  const int rounds = tmr::testing::scaled(20000, 2000);
  StepGate gate;
  std::atomic<int> stamps[kThreads] = {};
  int served[kThreads] = {};  // written only inside steps
  std::atomic<int> inside{0}, overlaps{0};
  std::atomic<int> arrived{0}, left{0};
  std::uint64_t reported = 0;  // inside steps only
  // The highest count a release reported.
  std::atomic<std::uint64_t> highest_total{0};
  int lost = 0;
  auto body = [&](int me) {
    for (int round = 1; round <= rounds; ++round) {
      stamps[me].store(round, std::memory_order_relaxed);
      gate.step(
          [&] {
            if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
            for (int t = 0; t < kThreads; ++t)
              served[t] = stamps[t].load(std::memory_order_relaxed);
            // A step of some length: the others' calls find the gate held and leave requests.
            for (int spin = 0; spin < 64; ++spin)
              cpu_relax();
            reported += static_cast<std::uint64_t>(round % 3);
            inside.fetch_sub(1);
            return static_cast<std::uint64_t>(round % 3);
          },
          [&](std::uint64_t total) {
            std::uint64_t seen = highest_total.load();
            while (seen < total && !highest_total.compare_exchange_weak(seen, total)) {
            }
          });
      // A barrier: once all returned, the round's steps are over.
      arrived.fetch_add(1);
      while (arrived.load() < round * kThreads) {
        cpu_relax();
        std::this_thread::yield();
      }
      if (me == 0) {
        for (int t = 0; t < kThreads; ++t)
          lost += served[t] != round ? 1 : 0;
      }
      left.fetch_add(1);
      while (left.load() < round * kThreads) {
        cpu_relax();
        std::this_thread::yield();
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back(body, t);
  for (std::thread& t : threads)
    t.join();
  EXPECT_EQ(lost, 0) << "stamps no step saw after its round";
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(gate.completed(), reported);
  EXPECT_EQ(highest_total.load(), reported) << "the last release that counted reports them all";
}

}  // namespace
}  // namespace tmr::detail
