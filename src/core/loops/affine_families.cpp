// Affine-family entries (affine_families.hpp).
#include "core/loops/affine_families.hpp"

#include <algorithm>
#include <cstring>

namespace tmr::detail::loops {
namespace {

// Whether a write to `q` covers every element of the family's iteration `k`.
bool covers(const Tensor& q, const Family& f, std::int64_t k) {
  const Tensor& first = f.shape.first;
  if (q.version() != first.version()) return false;
  const Placement pq = placement(q);
  const Placement pf = placement(first);
  if (!comparable(q, first, pq, pf)) return false;
  for (int r = 0; r < q.ndims(); ++r) {
    const std::int64_t lo = pf.offset[r] + k * f.shape.stride[static_cast<std::size_t>(r)];
    const std::int64_t hi = lo + first.box_extent(r);
    if (lo < pq.offset[r] || hi > pq.offset[r] + q.box_extent(r)) return false;
  }
  return true;
}

}  // namespace

void TaskList::grow() {
  const std::size_t capacity = capacity_ == 0 ? 256 : 2 * capacity_;
  auto data = std::make_unique_for_overwrite<std::uint64_t[]>(capacity);
  if (size_ > 0) std::memcpy(data.get(), data_.get(), size_ * sizeof(std::uint64_t));
  data_ = std::move(data);
  capacity_ = capacity;
}

void FamilyTable::reset() {
  families_.clear();
  by_buffer_.clear();
  free_.clear();
  chunks_.clear();
  chunk_used_ = kChunk;
}

FamilyTable::Bucket FamilyTable::bucket(std::uintptr_t address, std::uint64_t owner,
                                        std::size_t more) {
  std::vector<Family*>& list = by_buffer_[Key{address, owner}];
  if (list.capacity() - list.size() < more)
    list.reserve(std::max(list.size() + more, 2 * list.size()));
  return Bucket{&list, address, owner};
}

Family* FamilyTable::add(Bucket bucket, AccessKind kind, const Tensor& view,
                         const std::array<std::int64_t, kMaxDims>& stride, std::int64_t base,
                         std::uint32_t position, const std::shared_ptr<const LoopTasks>& tasks) {
  Family* family = nullptr;
  if (!free_.empty()) {
    family = free_.back();  // erase() dropped its task table; every field is set below
    free_.pop_back();
  } else {
    if (chunk_used_ == kChunk) {
      // Default-initialised (each field set by add): no zeroing pass before the constructors.
      chunks_.push_back(std::make_unique_for_overwrite<Family[]>(kChunk));
      chunk_used_ = 0;
    }
    family = &chunks_.back()[chunk_used_++];
  }
  family->address = bucket.address;
  family->owner = bucket.owner;
  family->kind = kind;
  family->shape.first = view;
  family->shape.stride = stride;
  family->shape.count = 0;
  family->base = base;
  family->position = position;
  family->first_live = 0;
  family->open = true;
  family->tasks = tasks;
  family->slot = families_.size();
  families_.push_back(family);
  bucket.list->push_back(family);
  return family;
}

bool FamilyTable::retire_front(Family& f) const {
  while (f.first_live < f.shape.count && rings_.is_retired(f.task(f.first_live)))
    ++f.first_live;
  return !f.open && f.first_live >= f.shape.count;
}

bool FamilyTable::has_buffer(std::uintptr_t address, std::uint64_t owner) const {
  const auto it = by_buffer_.find(Key{address, owner});
  return it != by_buffer_.end() && !it->second.empty();
}

bool FamilyTable::has_conflicting(std::uintptr_t address, std::uint64_t owner,
                                  AccessKind kind) const {
  const auto it = by_buffer_.find(Key{address, owner});
  if (it == by_buffer_.end()) return false;
  if (kind == AccessKind::write) return !it->second.empty();
  return std::any_of(it->second.begin(), it->second.end(),
                     [](const Family* f) { return f->kind == AccessKind::write; });
}

bool FamilyTable::has_conflicting_in(std::uintptr_t address, std::uint64_t owner, AccessKind kind,
                                     std::uint32_t version, std::uint64_t lo,
                                     std::uint64_t hi) const {
  const auto it = by_buffer_.find(Key{address, owner});
  if (it == by_buffer_.end()) return false;
  for (const Family* f : it->second) {
    if (kind == AccessKind::read && f->kind == AccessKind::read) continue;
    const Tensor& first = f->shape.first;
    if (f->open || first.version() != version) return true;
    if (f->shape.count == 0) continue;
    // The elements of its first view ([first_element, last_element], as footprint_overlaps
    // places a box) and how far each iteration moves them: the views of iterations 0 .. count-1
    // lie within the hull of the first and the last.
    const Placement place = placement(first);
    std::int64_t first_element = static_cast<std::int64_t>(place.rest);
    std::int64_t last_element = first_element;
    std::int64_t step = 0;
    for (int r = 0; r < first.ndims(); ++r) {
      const std::int64_t stride = first.raw_stride(r);
      first_element += place.offset[r] * stride;
      last_element += (place.offset[r] + first.box_extent(r) - 1) * stride;
      step += f->shape.stride[static_cast<std::size_t>(r)] * stride;
    }
    const std::int64_t moved = step * (f->shape.count - 1);
    const auto size = static_cast<std::int64_t>(first.element_size());
    const std::int64_t f_lo = (first_element + std::min<std::int64_t>(moved, 0)) * size;
    const std::int64_t f_hi = (last_element + std::max<std::int64_t>(moved, 0) + 1) * size;
    if (f_lo < 0) return true;  // not a box of the buffer as placed: may meet anything
    if (static_cast<std::uint64_t>(f_lo) < hi && lo < static_cast<std::uint64_t>(f_hi)) return true;
  }
  return false;
}

void FamilyTable::lookup(const AccessRegion& q, AccessKind kind, Report report, void* context) {
  const auto it = by_buffer_.find(Key{q.address, q.owner});
  if (it == by_buffer_.end()) return;
  const Tensor& t = *q.tensor;
  std::vector<Family*>& list = it->second;
  bool dead_found = false;
  for (Family* f : list) {
    // Reads conflict with writes only; writes with both.
    if (kind == AccessKind::read && f->kind == AccessKind::read) continue;
    if (retire_front(*f)) {
      dead_found = true;
      continue;
    }
    std::int64_t lo = 0;
    std::int64_t hi = 0;
    if (!f->shape.overlapping(t, &lo, &hi)) continue;
    lo = std::max(lo, f->first_live);
    hi = std::min(hi, f->shape.count - 1);
    if (lo > hi) continue;
    // A write to the same box in every iteration: each iteration's write covers the one before
    // (the map would hold only the last writer's entry), and the loop orders them in a chain, so
    // only the latest is a producer.
    const bool stationary_write =
        f->kind == AccessKind::write && std::all_of(f->shape.stride.begin(), f->shape.stride.end(),
                                                    [](std::int64_t v) { return v == 0; });
    for (std::int64_t k = stationary_write ? hi : lo; k <= hi; ++k) {
      const TaskId id = f->task(k);
      if (!rings_.is_retired(id)) report(context, id);
    }
    // A covering write is ordered after these iterations and will be recorded itself: later
    // accesses are ordered through it (the map drops covered entries the same way).
    if (kind == AccessKind::write && lo == f->first_live && covers(t, *f, lo) &&
        covers(t, *f, hi)) {
      f->first_live = hi + 1;
    }
  }
  if (dead_found) {
    // Unlink families of this buffer that have nothing left to report.
    std::erase_if(list, [&](Family* f) {
      if (f->open || f->first_live < f->shape.count) return false;
      erase(f);
      return true;
    });
    if (list.empty()) by_buffer_.erase(it);
  }
}

void FamilyTable::erase(Family* family) {
  const std::size_t slot = family->slot;
  std::swap(families_[slot], families_.back());
  families_[slot]->slot = slot;
  families_.pop_back();
  family->tasks.reset();  // the loop's task table is not kept alive by spare storage
  free_.push_back(family);
}

void FamilyTable::sweep() {
  for (auto it = by_buffer_.begin(); it != by_buffer_.end();) {
    std::erase_if(it->second, [&](Family* f) {
      if (!retire_front(*f)) return false;
      erase(f);
      return true;
    });
    it = it->second.empty() ? by_buffer_.erase(it) : std::next(it);
  }
}

}  // namespace tmr::detail::loops
