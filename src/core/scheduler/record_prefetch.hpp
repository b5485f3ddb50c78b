// What a core reads of a task's record when the task starts, and the prefetches that ask for it
// before the kernel does. On the peers' attention graph a worker starts tasks whose records the
// orchestrator wrote megabytes of records earlier, out of the order they were written, so the
// hardware prefetchers do not follow them: a start waited for the header (at dispatch), then for
// the scalars' line, then for the tensors' lines, one miss after another (docs/performance.md,
// "Session 50, branch att50"). Asked for at dispatch, the misses overlap.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/prefetch.hpp"
#include "core/task.hpp"

namespace tmr::detail {

inline constexpr std::size_t kRecordLineBytes = 64;

// The record's own lines a start of a task with `tensor_count` tensors and `scalar_count`
// scalars reads past the header, when the record holds them (TaskRecord::tensors and scalars
// point at its inline arrays, the common task): its tensors' lines, and the first scalar's line.
// Calls `line(byte offset in the record)` for each, in order. Only lines the task uses: asking
// for three tensors' lines on every task cost the peers' chain graph (one tensor, whose records
// the hardware prefetchers follow) 1.08-1.15x its CPU a task.
// Read from the header at dispatch, which reads that line anyway.
template <class Line>
[[gnu::always_inline]] inline void for_each_start_line(int tensor_count, int scalar_count,
                                                       Line&& line) {
  // Written out (a jump and one call a line), not a loop over the count: a loop over the lines
  // took a worker's instructions a task on the peers' chain graph from 690 to 728, this to 712
  // (718 with the compares of the record form below).
  // Tensor k spans bytes [64 + 104 k, 168 + 104 k): lines 1-2, 2-4, 4-5 and 5-7.
  static_assert(offsetof(TaskRecord, inline_tensors) == kRecordLineBytes && sizeof(Tensor) == 104 &&
                    kInlineTensorArgs == 4,
                "the lines below are the inline tensors' (see the comment)");
  constexpr auto at = [](std::size_t l) { return l * kRecordLineBytes; };
  switch (tensor_count) {
    case 0:
      break;
    case 1:
      line(at(1));
      line(at(2));
      break;
    case 2:
      line(at(1));
      line(at(2));
      line(at(3));
      line(at(4));
      break;
    case 3:
      line(at(1));
      line(at(2));
      line(at(3));
      line(at(4));
      line(at(5));
      break;
    case 4:
      line(at(1));
      line(at(2));
      line(at(3));
      line(at(4));
      line(at(5));
      line(at(6));
      line(at(7));
      break;
    default:  // spilled (Ring::tensor_storage): not the record's lines (nor asked for above)
      break;
  }
  if (scalar_count > 0)
    line(offsetof(TaskRecord, inline_scalars) / kRecordLineBytes * kRecordLineBytes);
}

// for_each_start_line for `record`, from its header: its own lines only where its tensors and
// scalars are its inline ones. A record that names its image (a replayed task writes its first
// line alone) or whose arguments spilled to its slot's storage keeps stale bytes there: asking for
// those lines would be the unused reads that cost chain above.
template <class Line>
[[gnu::always_inline]] inline void for_each_start_line(const TaskRecord& record, Line&& line) {
  for_each_start_line(record.tensors == record.inline_tensors ? record.tensor_count : 0,
                      record.scalars == record.inline_scalars ? record.scalar_count : 0, line);
}

// Asks for the lines a start of `record`'s task reads (for_each_start_line), for the core that is
// about to run it. Reads the record's header.
[[gnu::always_inline]] inline void prefetch_record_start(const TaskRecord& record) {
  const auto* const at = reinterpret_cast<const unsigned char*>(&record);
  for_each_start_line(record, [at](std::size_t offset) { prefetch_for_read(at + offset); });
}

}  // namespace tmr::detail
