// The threads platform's core park and doorbell (core_doorbell.hpp): a parked core is woken by
// the first doorbell, and only that one makes the wake system call.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "core/cpu_relax.hpp"
#include "core/mailbox.hpp"
#include "platform/threads/core_doorbell.hpp"

namespace tmr::detail {
namespace {

using Clock = std::chrono::steady_clock;

TEST(CoreDoorbell, OnlyTheFirstDoorbellOfAParkMakesTheWakeCall) {
  Mailbox m;
  EXPECT_FALSE(ring_core(m)) << "a running core (flag down) needs no wake";
  m.core_parked.store(1);  // as park_core raises it
  EXPECT_TRUE(ring_core(m)) << "the first doorbell of a park wakes the core";
  EXPECT_EQ(m.core_parked.load(), 0u) << "and takes the flag";
  EXPECT_FALSE(ring_core(m)) << "a second doorbell before the core parks again makes no call";
  EXPECT_FALSE(ring_core(m));
}

// A core parked with no timeout to speak of (10 s) returns soon after one doorbell: the wake
// reaches the word it sleeps on. Several rounds, each parking again after the last.
TEST(CoreDoorbell, ADoorbellWakesAParkedCore) {
  Mailbox m;
  constexpr std::uint32_t kToken = 4;
  constexpr std::uint64_t kLongPark = 10'000'000'000ull;
  m.dispatch.store(kToken);
  for (int round = 0; round < 5; ++round) {
    std::atomic<bool> back{false};
    std::thread core([&] {
      park_core(m, kToken, kLongPark);
      back.store(true);
    });
    // Wait until the core has raised its flag (it may or may not be asleep yet: either way the
    // doorbell must bring it back).
    while (m.core_parked.load() == 0)
      cpu_relax();
    const auto rung = Clock::now();
    EXPECT_TRUE(ring_core(m));
    core.join();
    EXPECT_TRUE(back.load());
    EXPECT_LT(Clock::now() - rung, std::chrono::seconds(5)) << "the doorbell did not wake it";
    EXPECT_EQ(m.core_parked.load(), 0u);
  }
}

// A core that sees a new dispatch word before sleeping does not sleep, with or without a doorbell.
TEST(CoreDoorbell, ACoreDoesNotSleepOnAWordThatAlreadyChanged) {
  Mailbox m;
  m.dispatch.store(6);
  const auto start = Clock::now();
  park_core(m, /*token=*/4, 10'000'000'000ull);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(m.core_parked.load(), 0u) << "a core back from its park lowers its flag";
}

// Shutdown wakes a parked core whatever its flag.
TEST(CoreDoorbell, ExitWakesAParkedCore) {
  Mailbox m;
  m.dispatch.store(4);
  std::thread core([&] { park_core(m, 4, 10'000'000'000ull); });
  while (m.core_parked.load() == 0)
    cpu_relax();
  const auto rung = Clock::now();
  m.dispatch.store(kExitToken);
  wake_core_for_exit(m);
  core.join();
  EXPECT_LT(Clock::now() - rung, std::chrono::seconds(5));
}

}  // namespace
}  // namespace tmr::detail
