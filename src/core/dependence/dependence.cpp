// Dependence discovery (dependence.hpp).
#include "core/dependence/dependence.hpp"

#include <algorithm>
#include <bit>
#include <string>

namespace tmr::detail {
namespace {

std::string task_name(TaskId id) {
  return "r" + std::to_string(id.ring()) + ":" + std::to_string(id.local());
}

}  // namespace

void ProducerList::grow() {
  const std::size_t capacity = capacity_ == 0 ? kFirstCapacity : 2 * capacity_;
  auto data = std::make_unique<TaskSlot*[]>(capacity);
  std::copy(begin(), end(), data.get());
  data_ = std::move(data);
  capacity_ = capacity;
}

Dependence::Dependence(RetirementView rings, std::uint32_t window)
    : rings_(rings), window_mask_(window - 1), map_(rings) {
  for (int r = 0; r < rings_.ring_count(); ++r) {
    states_[r].assign(window, SlotState{});
    stamps_[r].assign(window, 0);
    completed_[r].assign((window + 63) / 64, 0);
    fresh_[r].assign(window, FreshBuffer{});
  }
  map_.snapshot_retired(retired_);  // (begin() refreshes the rings' entries only)
  set_slot_lines(true);
}

void Dependence::set_slot_lines(bool on) {
  const TensorMap::TaskListOf list_of = [](void* self, TaskId id) -> MapEntry*& {
    return static_cast<Dependence*>(self)->state(id).entries;
  };
  map_.enable_lines(this, on ? list_of : nullptr);
}

void Dependence::reset() {
  // Per run, not per window: release what the run's unretired tasks still hold (which empties
  // the map's tables) and clear only the states the run's tasks used.
  for (int r = 0; r < rings_.ring_count(); ++r) {
    // Tasks admitted without state (admitted_without_state) may have retired past admitted_.
    for (std::uint32_t local = cleaned_[r]; static_cast<std::int32_t>(admitted_[r] - local) > 0;
         ++local) {
      map_.drop_task(states_[r][local & window_mask_].entries);
    }
    const std::size_t used = std::min<std::size_t>(admitted_[r], states_[r].size());
    std::fill_n(states_[r].begin(), used, SlotState{});
    // (Local ids start again from 0.) A fresh record is its creator's only while `creator` names
    // it: every reader of a record tests that field first (keep_fresh_read, settle_fresh) and
    // rewrites the rest when it does not match, so the field alone is cleared (one store in
    // each record's 64-byte line, not the whole line).
    for (std::size_t i = 0; i < used; ++i)
      fresh_[r][i].creator = kNoCreator;
    cleaned_[r] = 0;
    admitted_[r] = 0;
  }
  map_.reset();
  producers_.clear();
  for (std::vector<std::uint64_t>& bits : completed_)
    std::fill(bits.begin(), bits.end(), 0);  // (local ids start again from 0)
  next_drain_ = 0;
  left_out_ = 0;
}

void Dependence::set_skip_completed(bool on) {
  skip_completed_ = on;
}

void Dependence::drain_completions() {
  next_drain_ = stamp_ + kDrainEvery;
  if (completions_ == nullptr) return;
  // A task's bit is set only while it has not retired as this thread (the only one that
  // refreshes) last saw: its slot's clear is still to come (see completed_).
  const int rings = rings_.ring_count();
  completions_->drain([&](TaskId id) {
    const std::uint32_t ring = id.ring();
    if (ring >= static_cast<std::uint32_t>(rings)) [[unlikely]]
      return;
    if (static_cast<std::int32_t>(id.local() - cleaned_[ring]) < 0) return;
    const std::uint32_t slot = id.local() & window_mask_;
    completed_[ring][slot >> 6] |= std::uint64_t{1} << (slot & 63);
  });
}

Status Dependence::creator_error(const Tensor& tensor, int arg_index) const {
  const TaskId owner = tensor.producer();
  if (owner.ring() >= static_cast<std::uint32_t>(rings_.ring_count())) {
    return Status{ErrorCode::invalid_args,
                  "tensor argument " + std::to_string(arg_index) +
                      " names an impossible producer task; build tensors with Tensor::wrap or "
                      "take them from submit outputs"};
  }
  return Status{ErrorCode::invalid_args,
                "tensor argument " + std::to_string(arg_index) + " was created by task " +
                    task_name(owner) +
                    " whose scope has ended, so its buffer may already be reused; use a tensor "
                    "only inside the scope that created it (allocate it in an enclosing scope, "
                    "or copy it into an external tensor with out_existing)"};
}

Status Dependence::add_creator(const Tensor& tensor, int arg_index) {
  if (!add_creator_fast(tensor)) return creator_error(tensor, arg_index);
  return Status{};
}

Status Dependence::collect(const Args& args, AccessRegion* regions) {
  for (int i = 0; i < args.tensor_count(); ++i) {
    const ArgTag tag = args.tag(i);
    if (tag == ArgTag::out) continue;
    const Tensor& t = args.tensor(i);
    if (!add_creator_fast(t)) return creator_error(t, i);
    if (tag == ArgTag::no_dep) continue;
    regions[i] = make_region(t);
    add_accessors(regions[i], tag == ArgTag::in ? AccessKind::read : AccessKind::write);
  }
  return Status{};
}

Status Dependence::collect_by_regions(TaskSlot& task, const Args& args,
                                      const Tensor* record_tensors) {
  // (The path of every submit that the line path does not pay for: collect_and_record. Its
  // code is the one plain path of earlier passes; the line path lives in line_path.cpp.)
  const int count = args.tensor_count();
  // Only tensors a task created have a creator to check (out placeholders have none).
  const std::uint32_t created_mask = args.created_mask();
  for (std::uint32_t created = created_mask; created != 0; created &= created - 1) {
    const int i = std::countr_zero(created);
    const Tensor& t = args.tensor(i);
    if (!add_creator_fast(t)) return creator_error(t, i);
  }
  // The task's own entries (earlier arguments) dedup away like a producer already listed.
  SlotState& own = state(task.id);
  self_ = &task;
  if ((filter_ >> (task.id.local() & 63) & 1) == 0) {
    filter_ |= std::uint64_t{1} << (task.id.local() & 63);
    by_bit_[task.id.local() & 63] = &task;
  }
  if (producers_.size() >= kScanProducers) stamp(task.id) = stamp_;
  const bool families = families_ != nullptr && families_->live();
  // Created buffers first (before any slot is found: a move into the map may add a buffer).
  // A submit with a read kept with its creator records the rest one by one, out of line (the
  // loops below then test no argument for it).
  if (created_mask != 0) {
    const std::uint32_t kept = settle_created(task, args, record_tensors, created_mask, families);
    if (kept != 0) return record_rest_by_regions(task, args, record_tensors, kept, families);
  }
  // The visitor below (Report) is always_inline: each report then inlines into the map's walks
  // (an out-of-line lambda cost ~50 instructions per producer, most of them register spills).
  // Only a map too large for the caches has cold lines worth asking for ahead: a small one is
  // looked up argument by argument (lookup_insert finds the slot itself).
  // (A cold slot line is one cache miss, an entry two lines: two slot lines weigh one entry.)
  if (map_.live_entries() + map_.line_table_lines() / 2 <= slot_first_above_) {
    for (int i = 0; i < count; ++i) {
      const ArgTag tag = args.tag(i);
      if (tag == ArgTag::out || tag == ArgTag::no_dep) continue;
      const AccessKind kind = tag == ArgTag::in ? AccessKind::read : AccessKind::write;
      // (A local, not an array the caller reads: its fields stay in registers along the line
      // path, and nothing is stored that nobody reads.)
      const AccessRegion region = make_region(record_tensors[i]);
      map_.lookup_insert(region, kind, retired_, task.id, own.entries, TensorMap::kNoHint, i,
                         Report<false>{this});
      if (families) add_family_accessors(region, kind);
    }
    return Status{};
  }
  return collect_slot_first(task, args, record_tensors, own.entries, families);
}

Status Dependence::collect_creators(const Args& args, AccessRegion* regions) {
  for (int i = 0; i < args.tensor_count(); ++i) {
    const ArgTag tag = args.tag(i);
    if (tag == ArgTag::out) continue;
    const Tensor& t = args.tensor(i);
    if (!add_creator_fast(t)) return creator_error(t, i);
    if (tag != ArgTag::no_dep) regions[i] = make_region(t);
  }
  return Status{};
}

void Dependence::record(TaskSlot& task, const Args& args, const AccessRegion* regions) {
  MapEntry*& entries = state(task.id).entries;
  for (int i = 0; i < args.tensor_count(); ++i) {
    const ArgTag tag = args.tag(i);
    if (tag == ArgTag::out || tag == ArgTag::no_dep) continue;
    settle_fresh(TaskId::from_value(regions[i].owner));
    if (tag == ArgTag::in) map_.insert(regions[i], AccessKind::read, task.id, entries);
    if (tag == ArgTag::inout || tag == ArgTag::out_existing) {
      map_.insert(regions[i], AccessKind::write, task.id, entries);
    }
  }
}

void Dependence::record_except(TaskSlot& task, const Args& args, const AccessRegion* regions,
                               std::uint32_t skip) {
  MapEntry*& entries = state(task.id).entries;
  for (int i = 0; i < args.tensor_count(); ++i) {
    if ((skip >> i) & 1u) continue;
    const ArgTag tag = args.tag(i);
    if (tag == ArgTag::out || tag == ArgTag::no_dep) continue;
    settle_fresh(TaskId::from_value(regions[i].owner));
    if (tag == ArgTag::in) map_.insert(regions[i], AccessKind::read, task.id, entries);
    if (tag == ArgTag::inout || tag == ArgTag::out_existing) {
      map_.insert(regions[i], AccessKind::write, task.id, entries);
    }
  }
}

std::uint32_t Dependence::settle_created(TaskSlot& task, const Args& args,
                                         const Tensor* record_tensors, std::uint32_t created,
                                         bool families) {
  // A read of a fresh buffer is kept with its creator (not while an analysis's families may
  // stand for writes of it); any other access of a created buffer moves its kept reads into the
  // map first. Both change nothing an earlier argument's access depends on, so they may go
  // first: a later argument's write of the buffer finds the task's own read in the map.
  std::uint32_t kept = 0;
  for (std::uint32_t m = created; m != 0; m &= m - 1) {
    const int i = std::countr_zero(m);
    const ArgTag tag = args.tag(i);
    if (tag == ArgTag::no_dep) continue;
    if (tag == ArgTag::in && !families) {
      if (keep_fresh_read(&record_tensors[i], task.id)) kept |= 1u << i;
    } else {
      settle_fresh(record_tensors[i]);
    }
  }
  return kept;
}

Status Dependence::record_rest_by_regions(TaskSlot& task, const Args& args,
                                          const Tensor* record_tensors, std::uint32_t kept,
                                          bool families) {
  MapEntry*& entries = state(task.id).entries;
  for (int i = 0; i < args.tensor_count(); ++i) {
    const ArgTag tag = args.tag(i);
    if (tag == ArgTag::out || tag == ArgTag::no_dep || ((kept >> i) & 1u) != 0) continue;
    const AccessKind kind = tag == ArgTag::in ? AccessKind::read : AccessKind::write;
    const AccessRegion region = make_region(record_tensors[i]);
    map_.lookup_insert(region, kind, retired_, task.id, entries, TensorMap::kNoHint, i,
                       Report<false>{this});
    if (families) add_family_accessors(region, kind);
  }
  return Status{};
}

bool Dependence::drop_dead_fresh_readers(FreshBuffer& f) {
  std::uint32_t kept = 0;
  for (std::uint32_t k = 0; k < f.count; ++k) {
    if (f.reader[k].local() < retired_[f.reader[k].ring()]) continue;
    f.reader[kept] = f.reader[k];
    f.region[kept] = f.region[k];
    ++kept;
  }
  f.count = kept;
  return kept < kFreshReaders;
}

void Dependence::move_fresh_to_map(FreshBuffer& f) {
  // Oldest first, as the map would have recorded them (a newer reader merges into an older
  // one's entry, not the other way round). A retired reader is no longer needed.
  std::uint32_t retired[TensorMap::kRetiredSlots];
  map_.snapshot_retired(retired);
  for (std::uint32_t k = 0; k < f.count; ++k) {
    const TaskId reader = f.reader[k];
    if (reader.local() < retired[reader.ring()]) continue;
    map_.insert(make_region(*f.region[k]), AccessKind::read, reader, state(reader).entries);
  }
  f.mapped = true;
  f.count = 0;
  ++fresh_moves_;
}

void Dependence::stamp_listed() {
  for (TaskSlot* p : producers_)
    stamp(p->id) = stamp_;
  if (self_ != nullptr) stamp(self_->id) = stamp_;
}

void Dependence::add_family_accessors(const AccessRegion& region, AccessKind kind) {
  families_->lookup(
      region, kind, [](void* self, TaskId id) { static_cast<Dependence*>(self)->add_producer(id); },
      this);
}

void Dependence::forget_retired(int ring, std::uint32_t retired) {
  for (std::uint32_t local = cleaned_[ring]; local != retired; ++local)
    release_entries(TaskId(static_cast<std::uint32_t>(ring), local));
  // Their slots' completion marks, a word at a time (a window under 64 slots is one word's
  // low bits; a larger one is whole words, so a run of slots never wraps inside a word).
  std::vector<std::uint64_t>& bits = completed_[ring];
  for (std::uint32_t local = cleaned_[ring]; local != retired;) {
    const std::uint32_t slot = local & window_mask_;
    const std::uint32_t first = slot & 63;
    const std::uint32_t count = std::min({64 - first, window_mask_ + 1 - slot, retired - local});
    const std::uint64_t run = count == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << count) - 1;
    bits[slot >> 6] &= ~(run << first);
    local += count;
  }
  cleaned_[ring] = retired;
}

}  // namespace tmr::detail
