// Dependence discovery's line path (dependence.hpp, collect_and_record): plain submits whose
// arguments have their slot lines. In a file of its own so that the path by regions
// (dependence.cpp) compiles as it did without it: with both in one unit, GCC inlined less into
// the path by regions (+41K instructions over paged attention's three rounds).
#include <algorithm>
#include <bit>

#include "core/dependence/dependence.hpp"

namespace tmr::detail {
namespace {

// Which tags take part in dependence tracking (in, inout, out_existing) and which of those write
// (inout, out_existing: bit 1 of the tag). The line path reads each argument's tag where it steps
// to the argument: one bit test of a 5-bit set (no masks of the whole list built first).
static_assert(static_cast<int>(ArgTag::in) == 0 && static_cast<int>(ArgTag::out) == 1 &&
                  static_cast<int>(ArgTag::inout) == 2 &&
                  static_cast<int>(ArgTag::out_existing) == 3 &&
                  static_cast<int>(ArgTag::no_dep) == 4,
              "is_tracked() and is_write() read tags as these values");
constexpr std::uint32_t kTrackedTags = 1u << static_cast<int>(ArgTag::in) |
                                       1u << static_cast<int>(ArgTag::inout) |
                                       1u << static_cast<int>(ArgTag::out_existing);
[[gnu::always_inline]] inline bool is_tracked(std::uint32_t tag) {
  return ((kTrackedTags >> tag) & 1u) != 0;
}
[[gnu::always_inline]] inline bool is_write(std::uint32_t tag) {
  return (tag & 2u) != 0;
}

// The reads among the created arguments (`created`, bit i for argument i): a fresh buffer's
// read is tried with its creator (keep_fresh_reads), not on a line (a fresh buffer has none).
[[gnu::always_inline]] inline std::uint32_t created_reads(const Args& args, std::uint32_t created) {
  std::uint32_t reads = 0;
  for (std::uint32_t m = created; m != 0; m &= m - 1) {
    const int i = std::countr_zero(m);
    if (args.tag(i) == ArgTag::in) reads |= 1u << i;
  }
  return reads;
}

}  // namespace

int Dependence::begin_recording(TaskSlot& task, const Args& args, std::uint32_t created_mask) {
  // Only tensors a task created have a creator to check (out placeholders have none).
  for (std::uint32_t created = created_mask; created != 0; created &= created - 1) {
    const int i = std::countr_zero(created);
    if (!add_creator_fast(args.tensor(i))) return i;
  }
  // The task itself is listed already (list_self; a creator that displaced it from by_bit_
  // leaves it found by listed()). Without creators nothing was listed since: no stamps yet.
  if (created_mask != 0 && producers_.size() >= kScanProducers) stamp(task.id) = stamp_;
  return -1;
}

int Dependence::begin_with_fresh_reads(TaskSlot& task, const Args& args,
                                       const Tensor* record_tensors, std::uint32_t created,
                                       std::uint32_t& kept) {
  kept = 0;
  if (created == 0) return -1;
  if ((created & (created - 1)) == 0) [[likely]] {
    // One created argument: begin_recording's check (on the record's copy, the same bytes as
    // args.tensor(i): a created argument is no `out`), then keep_fresh_read if it is a read.
    const int i = std::countr_zero(created);
    const Tensor& t = record_tensors[i];
    if (!add_creator_fast(t)) return i;
    if (producers_.size() >= kScanProducers) stamp(task.id) = stamp_;
    if (args.tag(i) == ArgTag::in && keep_fresh_read(&t, task.id)) kept = 1u << i;
    return -1;
  }
  if (const int bad = begin_recording(task, args, created); bad >= 0) return bad;
  kept = keep_fresh_reads(task, created_reads(args, created), record_tensors);
  return -1;
}

int Dependence::collect_on_warm_lines(TaskSlot& task, const Args& args,
                                      const Tensor* record_tensors, std::uint32_t created) {
  // Creators are checked first (a named error leaves everything as it was).
  // A small map: its lines are in the caches; each argument's line is found just before it is
  // used (so no earlier argument can have moved it). An argument without a line (another kind of
  // buffer, a first access) is recorded by region, in its place, and pauses the line path.
  // A fresh buffer's read is kept with its creator (no line, no miss): first, as it changes
  // nothing another argument's access depends on (a later argument that writes the buffer moves
  // the read into the map before its own access).
  std::uint32_t kept;
  if (const int bad = begin_with_fresh_reads(task, args, record_tensors, created, kept); bad >= 0)
    return bad;
  const int count = args.tensor_count();
  if (count > kMaxTensorArgs) __builtin_unreachable();
  const ArgTag* const tags = args.tags();
  const TaskId id = task.id;  // (a local: the lines' stores cannot change it)
  const Tensor* t = record_tensors;
  for (int i = 0; i < count; ++i, ++t) {
    const auto tag = static_cast<std::uint32_t>(tags[i]);
    if (!is_tracked(tag) || ((kept >> i) & 1u) != 0) continue;  // out, no_dep, a kept read
    BufferInfo* info;
    SlotLine* const line = map_.find_line<false, false, true>(*t, i, info);
    if (line == nullptr || !map_.access_line(*line, info, t, i, is_write(tag), retired_, id,
                                             Report<false>{this})) [[unlikely]] {
      record_span_or_off_lines(task, args, i, record_tensors);
    }
  }
  return kLinesDone;
}

void Dependence::record_span_or_off_lines(TaskSlot& task, const Args& args, int arg,
                                          const Tensor* record_tensors) {
  // The one-slot try missed its line (find_line) or left line mode (access_line). Only an access
  // of another length than the grid's (find_line's mark) can be a span, whose lines
  // take_marked_span finds from what find_line kept (its buffer, first byte and length).
  // A table too short for the access grows first (grow_lines_for), and the lines are found
  // again (its one slot, or its span).
  const Tensor* const t = &record_tensors[arg];
  std::uint64_t lines = 1;
  BufferInfo* info;
  SlotLine* first = map_.take_marked_span(*t, info, &lines);
  if (first == nullptr && map_.grow_lines_for(*t, arg))
    first = map_.find_line<false, true>(*t, arg, info, &lines);
  if (first == nullptr || !map_.access_span(first, lines, info, t, arg,
                                            is_write(static_cast<std::uint32_t>(args.tag(arg))),
                                            retired_, task.id, Report<false>{this})) {
    record_off_lines(task, args, 1u << arg, record_tensors);
  }
}

// (The probe reads `lines` and `infos` only at the tracked arguments' places, which the first
// loop set; GCC does not see that once the task's own dedup entry left begin_recording, and
// filling the arrays first would cost every cold walk its stores.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
template <bool kSpans>
int Dependence::collect_on_cold_lines(TaskSlot& task, const Args& args,
                                      const Tensor* record_tensors, std::uint32_t created,
                                      bool probe) {
  // A large map: its lines are cold. One pass finds every argument's line and asks memory for
  // it (the misses overlap), keeping what it found by argument place; a second records the
  // accesses. With an argument off the lines, nothing has been done yet: the whole submit goes
  // by regions (the slot-first path, which prefetches the arguments' entries instead).
  // kSpans (collect_on_cold_span_lines, out of line): the walk again after an argument missed
  // its one-slot line, taking spans too (each argument's lines from lines[i]: spans[i]).
  SlotLine* lines[kMaxTensorArgs];
  BufferInfo* infos[kMaxTensorArgs];
  [[maybe_unused]] std::uint64_t spans[kSpans ? kMaxTensorArgs : 1];
  // Reads of created buffers are tried with their creators (fresh buffers have no line).
  const std::uint32_t fresh_reads = created_reads(args, created);
  const int count = args.tensor_count();
  if (count > kMaxTensorArgs) __builtin_unreachable();
  const ArgTag* const tags = args.tags();
  for (int i = 0; i < count; ++i) {
    if (!is_tracked(static_cast<std::uint32_t>(tags[i])) || ((fresh_reads >> i) & 1u) != 0)
      continue;
    if constexpr (kSpans) {
      spans[i] = 1;
      lines[i] = map_.find_line<true, true>(record_tensors[i], i, infos[i], &spans[i]);
    } else {
      lines[i] = map_.find_line(record_tensors[i], i, infos[i]);
    }
    if (lines[i] == nullptr) [[unlikely]] {  // (the later arguments' lines need not be found)
      // (Nothing is done yet: the walk again, taking spans, out of line; again after a table
      // grew for this argument, as the lines found before it moved with it.)
      if constexpr (!kSpans)
        return collect_on_cold_span_lines(task, args, record_tensors, created, probe);
      if (map_.grow_lines_for(record_tensors[i], i))
        return collect_on_cold_span_lines(task, args, record_tensors, created, probe);
      pause_lines();
      return kLinesByRegions;
    }
  }
  if constexpr (kSpans) cold_spans_ = false;  // (until a span is recorded below)
  maybe_drain_completions();                  // (while the lines are on their way)
  if (const int bad = begin_recording(task, args, created); bad >= 0) return bad;
  // (Before the accesses change the lines' states.)
  if (probe) [[unlikely]]
    probe_last_line(args, lines, infos, fresh_reads, task.id);
  if (fresh_reads != 0) [[unlikely]] {
    const std::uint32_t kept = keep_fresh_reads(task, fresh_reads, record_tensors);
    if (kept != fresh_reads) {
      // A created buffer the map holds: the rest of the submit by region, in order.
      record_off_lines(task, args, ~kept, record_tensors);
      return kLinesDone;
    }
  }
  const TaskId id = task.id;
  const Tensor* t = record_tensors;
  for (int i = 0; i < count; ++i, ++t) {
    const auto tag = static_cast<std::uint32_t>(tags[i]);
    if (!is_tracked(tag) || ((fresh_reads >> i) & 1u) != 0) continue;
    bool done;
    if constexpr (kSpans) {
      if (spans[i] == 1) {
        done = map_.access_line(*lines[i], infos[i], t, i, is_write(tag), retired_, id,
                                Report<true>{this});
      } else {
        cold_spans_ = true;
        done = map_.access_span<false>(lines[i], spans[i], infos[i], t, i, is_write(tag), retired_,
                                       id, Report<true>{this});
      }
    } else {
      done = map_.access_line(*lines[i], infos[i], t, i, is_write(tag), retired_, id,
                              Report<true>{this});
    }
    if (!done) [[unlikely]] {
      // The buffer left line mode (the lines found for later arguments may be stale): this
      // argument and the rest by region.
      record_off_lines(task, args, (~0u << i) & ~fresh_reads, record_tensors);
      break;
    }
  }
  return kLinesDone;
}

int Dependence::collect_on_cold_span_lines(TaskSlot& task, const Args& args,
                                           const Tensor* record_tensors, std::uint32_t created,
                                           bool probe) {
  return collect_on_cold_lines<true>(task, args, record_tensors, created, probe);
}

#pragma GCC diagnostic pop

int Dependence::collect_on_lines(TaskSlot& task, const Args& args, const Tensor* record_tensors) {
  list_self(task);
  // Arguments an analysis stands for (affine families live) are looked up by region.
  if (families_ != nullptr && families_->live()) [[unlikely]] {
    pause_lines();
    return kLinesByRegions;
  }
  // The usual submit names no created buffer (collect_lines_first sends the others to
  // collect_on_created_lines): the walks' creator checks and fresh reads fold away where
  // `created` is the constant 0 (each walk is inline at each call). A large map's cold walk tests
  // one mark (cold_mark_): past it, the submit is in a warm run (its lines were walked in the
  // order of the submits, see warm_until_) or the walk probes.
  const bool cold = map_.live_entries() + map_.line_table_lines() / 2 > slot_first_above_;
  if (!cold) [[likely]]
    return collect_on_warm_lines(task, args, record_tensors, 0);
  if (stamp_ < cold_mark_) [[likely]] {
    if (cold_spans_) return collect_on_cold_span_lines(task, args, record_tensors, 0, false);
    return collect_on_cold_lines<false>(task, args, record_tensors, 0, false);
  }
  if (stamp_ < warm_until_) return collect_on_warm_lines(task, args, record_tensors, 0);
  return collect_on_cold_lines<false>(task, args, record_tensors, 0, true);
}

int Dependence::collect_on_created_lines(TaskSlot& task, const Args& args,
                                         const Tensor* record_tensors, std::uint32_t created) {
  list_self(task);
  if (families_ != nullptr && families_->live()) [[unlikely]] {
    pause_lines();
    return kLinesByRegions;
  }
  const bool cold = map_.live_entries() + map_.line_table_lines() / 2 > slot_first_above_;
  if (!cold) return collect_on_warm_lines(task, args, record_tensors, created);
  if (stamp_ < cold_mark_)
    return collect_on_cold_lines<false>(task, args, record_tensors, created, false);
  if (stamp_ < warm_until_) return collect_on_warm_lines(task, args, record_tensors, created);
  return collect_on_cold_lines<false>(task, args, record_tensors, created, true);
}

void Dependence::probe_last_line(const Args& args, SlotLine* const* lines, BufferInfo* const* infos,
                                 std::uint32_t skipped, TaskId id) {
  const ArgTag* const tags = args.tags();
  int last = args.tensor_count() - 1;
  while (last >= 0 &&
         (!is_tracked(static_cast<std::uint32_t>(tags[last])) || ((skipped >> last) & 1u) != 0))
    --last;
  if (last < 0) return;  // (no line: the next cold walk probes)
  const int recency = TensorMap::line_recency(*lines[last], infos[last], id, kRecentTasks);
  if (recency < 0) {
    recent_probes_ = 0;
  } else if (recency > 0 && ++recent_probes_ >= kRecentProbes) {
    recent_probes_ = 0;
    warm_until_ = stamp_ + warm_run_;
    cold_mark_ = stamp_ + 1;
    return;
  }
  cold_mark_ = stamp_ + (recent_probes_ > 0 ? 1 : probe_every_);
}

Status Dependence::collect_slot_first(TaskSlot& task, const Args& args,
                                      const Tensor* record_tensors, MapEntry*& entries,
                                      bool families) {
  const int count = args.tensor_count();
  // Every argument's region, buffer and grid slot first (TensorMap::find_slot asks for the
  // slot's bucket line), and while one argument is looked up, the entries of the next one's slot
  // are asked for: with many live views those lines are cold, and they now arrive while other
  // work goes on instead of one argument's walk after another waiting for them.
  std::uint32_t tracked = 0;
  AccessRegion regions[kMaxTensorArgs];
  TensorMap::SlotHint hints[kMaxTensorArgs];
  for (int i = 0; i < count; ++i) {
    const ArgTag tag = args.tag(i);
    if (tag == ArgTag::out || tag == ArgTag::no_dep) continue;
    tracked |= 1u << i;
    regions[i] = make_region(record_tensors[i]);
    hints[i] = map_.find_slot(regions[i], i);
  }
  maybe_drain_completions();  // (while the slots' lines are on their way)
  for (std::uint32_t m = tracked; m != 0;) {
    const int i = std::countr_zero(m);
    m &= m - 1;
    if (m != 0) map_.prefetch_chains(hints[std::countr_zero(m)]);
    const AccessKind kind = args.tag(i) == ArgTag::in ? AccessKind::read : AccessKind::write;
    const AccessRegion region = regions[i];  // (a local: no reloads through the array)
    map_.lookup_insert(region, kind, retired_, task.id, entries, hints[i], i, Report<true>{this});
    if (families) add_family_accessors(region, kind);
  }
  return Status{};
}

std::uint32_t Dependence::keep_fresh_reads(TaskSlot& task, std::uint32_t reads,
                                           const Tensor* record_tensors) {
  std::uint32_t kept = 0;
  for (std::uint32_t m = reads; m != 0; m &= m - 1) {
    const int i = std::countr_zero(m);
    if (keep_fresh_read(&record_tensors[i], task.id)) kept |= 1u << i;
  }
  return kept;
}

void Dependence::pause_lines() {
  // (Once a submit: a second miss of the same submit finds the pause set.)
  if (line_retry_ > stamp_) return;
  // A miss soon after the line path reopened (a probe) doubles the pause; one after a longer run
  // of line submits starts it again from the shortest.
  line_pause_ = stamp_ - line_retry_ <= line_first_pause_
                    ? std::min(2 * line_pause_, line_last_pause_)
                    : line_first_pause_;
  line_retry_ = stamp_ + line_pause_;
}

void Dependence::record_off_lines(TaskSlot& task, const Args& args, std::uint32_t args_mask,
                                  const Tensor* record_tensors) {
  pause_lines();
  MapEntry*& entries = state(task.id).entries;
  const std::uint32_t valid = (std::uint32_t{1} << args.tensor_count()) - 1;
  for (std::uint32_t m = args_mask & valid; m != 0; m &= m - 1) {
    const int i = std::countr_zero(m);
    const auto tag = static_cast<std::uint32_t>(args.tag(i));
    if (!is_tracked(tag)) continue;
    settle_fresh(record_tensors[i]);  // (a created buffer: the map's from now on)
    const AccessRegion region = make_region(record_tensors[i]);
    map_.lookup_insert(region, is_write(tag) ? AccessKind::write : AccessKind::read, retired_,
                       task.id, entries, TensorMap::kNoHint, i, Report<false>{this});
  }
}

}  // namespace tmr::detail
