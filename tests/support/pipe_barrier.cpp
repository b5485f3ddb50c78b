// The barrier and busy kernels of pipe_barrier.hpp.
#include "support/pipe_barrier.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace tmr::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kMaxTags = 1024;
constexpr auto kPartnerDeadline = std::chrono::seconds(3);
std::array<std::atomic<int>, kMaxTags> arrived{};
std::atomic<int> failures{0};

void stay_busy(std::uint32_t microseconds) {
  const auto until = Clock::now() + std::chrono::microseconds(microseconds);
  while (Clock::now() < until)
    std::this_thread::yield();
}

}  // namespace

void reset_barriers() {
  for (std::atomic<int>& a : arrived)
    a.store(0);
  failures.store(0);
}

int barrier_failures() {
  return failures.load();
}

void barrier_kernel(const KernelArgs& args) {
  const auto tag = args.scalar<std::uint32_t>(0) % kMaxTags;
  const auto parts = static_cast<int>(args.scalar<std::uint32_t>(1));
  arrived[tag].fetch_add(1);
  const auto deadline = Clock::now() + kPartnerDeadline;
  while (arrived[tag].load() < parts) {
    if (Clock::now() > deadline) {
      failures.fetch_add(1);
      return;
    }
    std::this_thread::yield();
  }
  if (args.scalar_count() > 2) stay_busy(args.scalar<std::uint32_t>(2));
}

void busy_kernel(const KernelArgs& args) {
  stay_busy(args.scalar<std::uint32_t>(0));
}

}  // namespace tmr::testing
