// The record lines a worker asks for when it dispatches a task to itself (record_prefetch.hpp):
// exactly the lines a kernel start reads of a record that holds its own arguments, by the task's
// tensor and scalar counts, and none for arguments the record does not hold.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <vector>

#include "core/scheduler/record_prefetch.hpp"
#include "core/task.hpp"

namespace tmr::detail {
namespace {

std::vector<std::size_t> asked(int tensors, int scalars) {
  std::vector<std::size_t> lines;
  for_each_start_line(tensors, scalars, [&](std::size_t offset) { lines.push_back(offset); });
  return lines;
}

// The lines holding bytes [from, from + bytes) of a record, as line offsets.
void add_lines(std::set<std::size_t>& lines, std::size_t from, std::size_t bytes) {
  for (std::size_t b = from; b < from + bytes; ++b)
    lines.insert(b / kRecordLineBytes * kRecordLineBytes);
}

TEST(RecordPrefetch, AsksForTheInlineTensorsAndTheFirstScalarsLineOnce) {
  for (int tensors = 0; tensors <= kInlineTensorArgs; ++tensors) {
    for (const int scalars : {0, 1, 2, kInlineScalarArgs}) {
      SCOPED_TRACE(testing::Message() << tensors << " tensors, " << scalars << " scalars");
      std::set<std::size_t> expected;
      add_lines(expected, offsetof(TaskRecord, inline_tensors),
                static_cast<std::size_t>(tensors) * sizeof(Tensor));
      if (scalars > 0) add_lines(expected, offsetof(TaskRecord, inline_scalars), 8);
      const std::vector<std::size_t> lines = asked(tensors, scalars);
      EXPECT_EQ(std::set<std::size_t>(lines.begin(), lines.end()), expected);
      EXPECT_EQ(lines.size(), expected.size()) << "a line asked for twice";
      for (const std::size_t offset : lines) {
        EXPECT_EQ(offset % kRecordLineBytes, 0u);
        EXPECT_LT(offset, sizeof(TaskRecord));
        EXPECT_NE(offset, 0u) << "the header is the dispatch's own read";
      }
    }
  }
}

TEST(RecordPrefetch, AsksForNoRecordTensorLinesWhenTheTensorsAreSpilled) {
  // More than kInlineTensorArgs tensors live in the slot's spill area (Ring::tensor_storage):
  // only the scalars' line of the record is read.
  EXPECT_TRUE(asked(kInlineTensorArgs + 1, 0).empty());
  EXPECT_EQ(asked(kMaxTensorArgs, 1),
            std::vector<std::size_t>{offsetof(TaskRecord, inline_scalars) / kRecordLineBytes *
                                     kRecordLineBytes});
}

TEST(RecordPrefetch, AsksOnlyForArgumentsTheRecordHoldsItself) {
  auto record = std::make_unique<TaskRecord>();
  record->tensor_count = 2;
  record->scalar_count = 3;
  record->tensors = record->inline_tensors;
  record->scalars = record->inline_scalars;
  auto named = [&] {
    std::vector<std::size_t> lines;
    for_each_start_line(*record, [&](std::size_t offset) { lines.push_back(offset); });
    return lines;
  };
  EXPECT_EQ(named(), asked(2, 3));
  // Tensors elsewhere (an image the record names, or the slot's spill area): their stale record
  // lines are not asked for; the scalars' line still is.
  Tensor elsewhere[2];
  record->tensors = elsewhere;
  EXPECT_EQ(named(), asked(0, 3));
  std::uint64_t scalars[3] = {};
  record->scalars = scalars;
  EXPECT_TRUE(named().empty());
  record->tensors = record->inline_tensors;
  EXPECT_EQ(named(), asked(2, 0));
}

}  // namespace
}  // namespace tmr::detail
