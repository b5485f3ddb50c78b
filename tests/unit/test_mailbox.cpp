// The mailbox's cache-line layout (mailbox.hpp): a dispatch's fields are one line, and the two
// payload buffers share no line with each other or with the words and identity around them, so
// a thread writing the next dispatch and the core finishing the current one touch different lines.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <set>

#include "core/mailbox.hpp"

namespace tmr::detail {
namespace {

constexpr std::uintptr_t kLine = 64;

std::uintptr_t line_of(const void* address) {
  return reinterpret_cast<std::uintptr_t>(address) / kLine;
}

// Every line that bytes [begin, begin + size) touch.
std::set<std::uintptr_t> lines_of(const void* begin, std::size_t size) {
  const std::uintptr_t first = line_of(begin);
  const std::uintptr_t last = line_of(static_cast<const char*>(begin) + size - 1);
  std::set<std::uintptr_t> lines;
  for (std::uintptr_t l = first; l <= last; ++l)
    lines.insert(l);
  return lines;
}

// The part of a buffer a dispatch writes and a core reads to start (fn .. cluster).
std::set<std::uintptr_t> dispatch_lines(const DispatchPayload& p) {
  const auto* begin = reinterpret_cast<const char*>(&p.fn);
  const auto* end = reinterpret_cast<const char*>(&p.cluster) + sizeof(p.cluster);
  return lines_of(begin, static_cast<std::size_t>(end - begin));
}

std::set<std::uintptr_t> timestamp_lines(const DispatchPayload& p) {
  const auto* begin = reinterpret_cast<const char*>(&p.start_ns);
  const auto* end = reinterpret_cast<const char*>(&p.end_ns) + sizeof(p.end_ns);
  return lines_of(begin, static_cast<std::size_t>(end - begin));
}

bool disjoint(const std::set<std::uintptr_t>& a, const std::set<std::uintptr_t>& b) {
  for (const std::uintptr_t l : a) {
    if (b.count(l) != 0) return false;
  }
  return true;
}

TEST(MailboxLayout, EachDispatchIsOneLineOfItsOwnForBothParities) {
  // Heap and stack mailboxes alike (the engine allocates an array of them).
  auto heap = std::make_unique<Mailbox[]>(3);
  Mailbox stack;
  for (Mailbox* m : {&heap[0], &heap[1], &heap[2], &stack}) {
    for (std::uint32_t parity = 0; parity < 2; ++parity) {
      const DispatchPayload& p = m->payload[parity];
      EXPECT_EQ(dispatch_lines(p).size(), 1u) << "parity " << parity << ": one line a dispatch";
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(&p) % kLine, 0u) << "parity " << parity;
    }
  }
}

TEST(MailboxLayout, TheBuffersShareNoLineWithEachOtherOrTheWordsAroundThem) {
  Mailbox m;
  const DispatchPayload& even = m.payload[0];
  const DispatchPayload& odd = m.payload[1];
  EXPECT_NE(&even, &odd);
  const std::set<std::uintptr_t> even_all = lines_of(&even, sizeof(DispatchPayload));
  const std::set<std::uintptr_t> odd_all = lines_of(&odd, sizeof(DispatchPayload));
  // The core writes one buffer's timestamps at FIN while another thread may write the other's
  // dispatch: never one line.
  EXPECT_TRUE(disjoint(timestamp_lines(even), dispatch_lines(odd)));
  EXPECT_TRUE(disjoint(timestamp_lines(odd), dispatch_lines(even)));
  EXPECT_TRUE(disjoint(even_all, odd_all));
  const std::set<std::uintptr_t> words = {line_of(&m.dispatch), line_of(&m.core_parked),
                                          line_of(&m.status)};
  const std::set<std::uintptr_t> identity = {line_of(&m.core), line_of(&m.cluster),
                                             line_of(&m.scheduler_thread), line_of(&m.type),
                                             line_of(&m.sub_block)};
  for (const auto* lines : {&even_all, &odd_all}) {
    EXPECT_TRUE(disjoint(*lines, words));
    EXPECT_TRUE(disjoint(*lines, identity)) << "identity is read by steps, not written at FIN";
  }
}

// The buffers are indexed by token parity, as before: writing one leaves the other as it was.
TEST(MailboxLayout, ParityPicksOneOfTwoIndependentBuffers) {
  Mailbox m;
  m.payload[0].block_index = 3;
  m.payload[1].block_index = 9;
  m.payload[1].end_ns = 42;
  const Mailbox& view = m;
  EXPECT_EQ(view.payload[0].block_index, 3u);
  EXPECT_EQ(view.payload[1].block_index, 9u);
  EXPECT_EQ(view.payload[0].end_ns, 0u);
  EXPECT_EQ(view.payload[5 & 1].end_ns, 42u);
}

}  // namespace
}  // namespace tmr::detail
