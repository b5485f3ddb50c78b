// Dependence discovery's line path (dependence.hpp, collect_and_record): plain submits whose
// arguments have their slot lines. In a file of its own so that the path by regions
// (dependence.cpp) compiles as it did without it: with both in one unit, GCC inlined less into
// the path by regions (+41K instructions over paged attention's three rounds).
#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>

#include "core/dependence/dependence.hpp"

namespace tmr::detail {
namespace {

// Which of a submit's arguments take part in dependence tracking (in, inout, out_existing:
// `tracked`) and which of those write (inout, out_existing: `writes`), bit i for argument i, from
// eight tags at a time: per byte, a write has bit 1 set (tags 2 and 3) and a read is zero, and
// one multiply gathers the eight bytes' low bits.
static_assert(static_cast<int>(ArgTag::in) == 0 && static_cast<int>(ArgTag::out) == 1 &&
                  static_cast<int>(ArgTag::inout) == 2 &&
                  static_cast<int>(ArgTag::out_existing) == 3 &&
                  static_cast<int>(ArgTag::no_dep) == 4 && sizeof(ArgTag) == 1,
              "classify_tags reads tags as these bytes");
[[gnu::always_inline]] inline void classify_eight(const ArgTag* tags, std::uint32_t& tracked,
                                                  std::uint32_t& writes) {
  constexpr std::uint64_t kOnes = 0x0101010101010101;
  constexpr std::uint64_t kGather = 0x0102040810204080;  // byte k's bit 0 -> bit 56 + k
  std::uint64_t x;
  std::memcpy(&x, tags, 8);
  const std::uint64_t write = (x >> 1) & kOnes;
  const std::uint64_t read = ~(x | (x >> 1) | (x >> 2)) & kOnes;
  tracked = static_cast<std::uint32_t>(((write | read) * kGather) >> 56);
  writes = static_cast<std::uint32_t>((write * kGather) >> 56);
}
[[gnu::always_inline]] inline void classify_tags(const ArgTag* tags, int count,
                                                 std::uint32_t& tracked, std::uint32_t& writes) {
  static_assert(kMaxTensorArgs == 16, "two groups of eight tags");
  classify_eight(tags, tracked, writes);
  if (count > 8) [[unlikely]] {
    std::uint32_t t;
    std::uint32_t w;
    classify_eight(tags + 8, t, w);
    tracked |= t << 8;
    writes |= w << 8;
  }
  const std::uint32_t valid = (std::uint32_t{1} << count) - 1;
  tracked &= valid;
  writes &= valid;
}

// The tags that take part in dependence tracking (in, inout, out_existing), bit per tag value.
constexpr std::uint32_t kTrackedTags = 1u << static_cast<int>(ArgTag::in) |
                                       1u << static_cast<int>(ArgTag::inout) |
                                       1u << static_cast<int>(ArgTag::out_existing);

}  // namespace

int Dependence::begin_recording(TaskSlot& task, const Args& args, std::uint32_t created_mask) {
  // Only tensors a task created have a creator to check (out placeholders have none).
  for (std::uint32_t created = created_mask; created != 0; created &= created - 1) {
    const int i = std::countr_zero(created);
    if (!add_creator_fast(args.tensor(i))) return i;
  }
  // The task's own entries (earlier arguments) dedup away like a producer already listed.
  self_ = &task;
  if ((filter_ >> (task.id.local() & 63) & 1) == 0) {
    filter_ |= std::uint64_t{1} << (task.id.local() & 63);
    by_bit_[task.id.local() & 63] = task.id;
  }
  if (producers_.size() >= kScanProducers) stamp(task.id) = stamp_;
  return -1;
}

int Dependence::collect_on_cold_lines(TaskSlot& task, const Args& args,
                                      const Tensor* record_tensors, std::uint32_t tracked,
                                      std::uint32_t writes, std::uint32_t created) {
  // A large map: its lines are cold. One pass finds every argument's line and asks memory for
  // it (the misses overlap), keeping what it found; a second records the accesses. With an
  // argument off the lines, nothing has been done yet: the whole submit goes by regions (the
  // slot-first path, which prefetches the arguments' entries instead).
  SlotLine* lines[kMaxTensorArgs];
  BufferInfo* infos[kMaxTensorArgs];
  // Reads of created buffers are tried with their creators (fresh buffers have no line).
  const std::uint32_t created_reads = created & tracked & ~writes;
  const std::uint32_t on_lines = tracked & ~created_reads;
  // (Both passes step through the arguments in order, as collect_on_lines' loop.)
  const Tensor* t = record_tensors;
  for (std::uint32_t m = on_lines, i = 0; m != 0; m >>= 1, ++i, ++t) {
    if ((m & 1u) == 0) continue;
    if (i >= kMaxTensorArgs) __builtin_unreachable();  // (on_lines has kMaxTensorArgs bits)
    lines[i] = map_.find_line(*t, static_cast<int>(i), infos[i]);
    if (lines[i] == nullptr) [[unlikely]] {  // (the later arguments' lines need not be found)
      pause_lines();
      return kLinesByRegions;
    }
  }
  maybe_drain_completions();  // (while the lines are on their way)
  if (const int bad = begin_recording(task, args, created); bad >= 0) return bad;
  if (created_reads != 0) [[unlikely]] {
    const std::uint32_t kept = keep_fresh_reads(task, created_reads, record_tensors);
    if (kept != created_reads) {
      // A created buffer the map holds: the rest of the submit by region, in order.
      record_off_lines(task, tracked & ~kept, writes, record_tensors);
      return kLinesDone;
    }
  }
  t = record_tensors;
  std::uint32_t w = writes;
  const TaskId id = task.id;
  for (std::uint32_t m = on_lines, i = 0; m != 0; m >>= 1, w >>= 1, ++i, ++t) {
    if ((m & 1u) == 0) continue;
    if (i >= kMaxTensorArgs) __builtin_unreachable();
    if (!map_.access_line(*lines[i], infos[i], t, static_cast<int>(i), (w & 1u) != 0, retired_, id,
                          Report<true>{this})) [[unlikely]] {
      // The buffer left line mode (the lines found for later arguments may be stale): this
      // argument and the rest by region.
      record_off_lines(task, m << i, writes, record_tensors);
      break;
    }
  }
  return kLinesDone;
}

int Dependence::collect_on_lines(TaskSlot& task, const Args& args, const Tensor* record_tensors) {
  // Arguments an analysis stands for (affine families live) are looked up by region.
  if (families_ != nullptr && families_->live()) [[unlikely]] {
    pause_lines();
    return kLinesByRegions;
  }
  const std::uint32_t created = args.created_mask();
  const bool cold = map_.live_entries() + map_.line_table_lines() / 2 > slot_first_above_;
  if (created == 0) [[likely]] {
    // The usual submit: no argument has a creator to check or a fresh buffer to keep reads with.
    // No creator was listed since begin(), so the task only makes itself its own dedup entry (no
    // stamp: the list is empty), and each argument's tag is read where the argument is (no masks
    // of the whole list built first).
    assert(producers_.empty());
    const TaskId id = task.id;  // (a local: the lines' stores cannot change it)
    const auto own_entry = [&] {
      self_ = &task;
      filter_ |= std::uint64_t{1} << (id.local() & 63);
      by_bit_[id.local() & 63] = id;  // (a listed task it displaces is still found by listed())
    };
    const int count = args.tensor_count();
    if (count > kMaxTensorArgs) __builtin_unreachable();
    const ArgTag* const tags = args.tags();
    if (!cold) [[likely]] {
      own_entry();
      const Tensor* t = record_tensors;
      for (int i = 0; i < count; ++i, ++t) {
        const auto tag = static_cast<std::uint32_t>(tags[i]);
        if (((kTrackedTags >> tag) & 1u) == 0) continue;  // out, no_dep
        const bool is_write = (tag & 2u) != 0;            // inout, out_existing
        BufferInfo* info;
        SlotLine* const line = map_.find_line<false>(*t, i, info);
        if (line == nullptr || !map_.access_line(*line, info, t, i, is_write, retired_, id,
                                                 Report<false>{this})) [[unlikely]] {
          record_off_lines(task, 1u << i, is_write ? 1u << i : 0u, record_tensors);
        }
      }
      return kLinesDone;
    }
    // A large map (collect_on_cold_lines' two passes): every tracked argument's line first, then
    // the accesses, the tags read where the arguments are in both.
    SlotLine* lines[kMaxTensorArgs];
    BufferInfo* infos[kMaxTensorArgs];
    for (int i = 0; i < count; ++i) {
      if (((kTrackedTags >> static_cast<std::uint32_t>(tags[i])) & 1u) == 0) continue;
      lines[i] = map_.find_line(record_tensors[i], i, infos[i]);
      if (lines[i] == nullptr) [[unlikely]] {
        pause_lines();
        return kLinesByRegions;
      }
    }
    maybe_drain_completions();  // (while the lines are on their way)
    own_entry();
    const Tensor* t = record_tensors;
    for (int i = 0; i < count; ++i, ++t) {
      const auto tag = static_cast<std::uint32_t>(tags[i]);
      if (((kTrackedTags >> tag) & 1u) == 0) continue;
      if (!map_.access_line(*lines[i], infos[i], t, i, (tag & 2u) != 0, retired_, id,
                            Report<true>{this})) [[unlikely]] {
        // The buffer left line mode (the lines found for later arguments may be stale): this
        // argument and the rest by region.
        std::uint32_t tracked;
        std::uint32_t writes;
        classify_tags(tags, count, tracked, writes);
        record_off_lines(task, tracked & ~((1u << i) - 1), writes, record_tensors);
        break;
      }
    }
    return kLinesDone;
  }
  std::uint32_t tracked;
  std::uint32_t writes;
  classify_tags(args.tags(), args.tensor_count(), tracked, writes);
  if (cold) [[unlikely]] {
    return collect_on_cold_lines(task, args, record_tensors, tracked, writes, created);
  }
  if (const int bad = begin_recording(task, args, created); bad >= 0) return bad;
  // A small map: its lines are in the caches; each argument's line is found just before it is
  // used (so no earlier argument can have moved it). An argument without a line (another kind of
  // buffer, a first access) is recorded by region, in its place, and pauses the line path.
  // A fresh buffer's read is kept with its creator (no line, no miss): first, as it changes
  // nothing another argument's access depends on (a later argument that writes the buffer moves
  // the read into the map before its own access).
  if (const std::uint32_t created_reads = created & tracked & ~writes; created_reads != 0) {
    tracked &= ~keep_fresh_reads(task, created_reads, record_tensors);
  }
  // (Arguments in order, their tensor and write bit stepped along: no index arithmetic.)
  const Tensor* t = record_tensors;
  std::uint32_t w = writes;
  const TaskId id = task.id;  // (a local: the lines' stores cannot change it)
  for (std::uint32_t m = tracked, i = 0; m != 0; m >>= 1, w >>= 1, ++i, ++t) {
    if ((m & 1u) == 0) continue;
    if (i >= kMaxTensorArgs) __builtin_unreachable();  // (tracked has kMaxTensorArgs bits)
    BufferInfo* info;
    SlotLine* const line = map_.find_line<false>(*t, static_cast<int>(i), info);
    if (line == nullptr || !map_.access_line(*line, info, t, static_cast<int>(i), (w & 1u) != 0,
                                             retired_, id, Report<false>{this})) [[unlikely]] {
      record_off_lines(task, 1u << i, writes, record_tensors);
    }
  }
  return kLinesDone;
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

void Dependence::record_off_lines(TaskSlot& task, std::uint32_t args_mask, std::uint32_t writes,
                                  const Tensor* record_tensors) {
  pause_lines();
  MapEntry*& entries = state(task.id).entries;
  for (std::uint32_t m = args_mask; m != 0; m &= m - 1) {
    const int i = std::countr_zero(m);
    settle_fresh(record_tensors[i]);  // (a created buffer: the map's from now on)
    const AccessRegion region = make_region(record_tensors[i]);
    map_.lookup_insert(region, ((writes >> i) & 1u) != 0 ? AccessKind::write : AccessKind::read,
                       retired_, task.id, entries, TensorMap::kNoHint, i, Report<false>{this});
  }
}

}  // namespace tmr::detail
