// Iteration templates: learning from two iterations, the carried-distance proof, predictions.
#include "core/loops/loop_template.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <tuple>

namespace tmr::detail::loops {
namespace {

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) --q;
  return q;
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if (a % b != 0 && ((a < 0) == (b < 0))) ++q;
  return q;
}

bool same_extents(const Tensor& a, const Tensor& b) {
  for (int r = 0; r < a.ndims(); ++r) {
    if (a.box_extent(r) != b.box_extent(r)) return false;
  }
  return true;
}

bool same_buffer(const BufferRef& a, const BufferRef& b) {
  if (a.kind != b.kind) return false;
  if (a.kind == BufferRef::Kind::outer) return a.address == b.address && a.owner == b.owner;
  return a.task == b.task && a.arg == b.arg;  // which iteration is the caller's question
}

// deps_id()'s values: one counter for every template in the process, so that no two sets of
// edges share one (templates move between loops and runs).
std::uint64_t next_deps_id() {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

Placement placement(const Tensor& t) {
  Placement p;
  for (int r = 0; r < t.ndims(); ++r)
    p.offset[r] = t.box_offset(r);
  if (t.ndims() == 0) return p;
  const auto step = static_cast<std::uint64_t>(t.raw_stride(0));
  if (t.layout_offset() % step == 0) {
    p.offset[0] += static_cast<std::int64_t>(t.layout_offset() / step);
  } else {
    p.rest = t.layout_offset();
  }
  return p;
}

bool comparable(const Tensor& a, const Tensor& b) {
  return comparable(a, b, placement(a), placement(b));
}

bool comparable(const Tensor& a, const Tensor& b, const Placement& pa, const Placement& pb) {
  if (a.ndims() != b.ndims() || a.dtype() != b.dtype()) return false;
  for (int r = 1; r < a.ndims(); ++r) {
    if (a.raw_dim(r) != b.raw_dim(r)) return false;
  }
  return pa.rest == pb.rest;
}

const char* fallback_name(Fallback reason) {
  switch (reason) {
    case Fallback::none:
      return "none";
    case Fallback::no_template:
      return "no repeating iteration template";
    case Fallback::mismatch:
      return "iteration differs from the template";
    case Fallback::element_access:
      return "set_tensor_data in the body";
    case Fallback::element_read:
      return "get_tensor_data in the body of a buffer the loop writes";
    case Fallback::unequal_strides:
      return "unequal strides on one buffer";
    case Fallback::layouts:
      return "different layouts of one buffer";
    case Fallback::versions:
      return "different versions of one buffer";
    case Fallback::wide_window:
      return "carried dependence over too many distances";
    case Fallback::nested_lengths:
      return "nested loops of different lengths";
    case Fallback::too_short:
      return "nested loop too short to repay its analysis";
    case Fallback::count:
      break;
  }
  return "unknown";
}

const char* rebind_name(Rebind reason) {
  switch (reason) {
    case Rebind::fits:
      return "fits";
    case Rebind::structure:
      return "other tasks or arguments";
    case Rebind::nested:
      return "nested loops of other lengths";
    case Rebind::buffers:
      return "other buffers";
    case Rebind::views:
      return "other views";
    case Rebind::carried:
      return "buffers made by earlier iterations";
    case Rebind::mismatch:
      return "first analysed iteration differs";
    case Rebind::count:
      break;
  }
  return "unknown";
}

void IterationRecord::add_task(const KernelId kernels[3], bool inline_task) {
  TaskRecordLite task;
  for (int s = 0; s < 3; ++s)
    task.kernels[s] = kernels[s];
  task.inline_task = inline_task;
  task.first_access = static_cast<std::uint32_t>(accesses.size());
  tasks.push_back(task);
}

void IterationRecord::add_access(ArgTag tag, const BufferRef& buffer, const Tensor& tensor) {
  accesses.emplace_back(tag, buffer, tensor);  // built in place (no temporary record)
  ++tasks.back().access_count;
}

bool overlap_distances(std::int64_t ox, std::int64_t ex, std::int64_t oy, std::int64_t ey,
                       std::int64_t stride, std::int64_t* lo, std::int64_t* hi) {
  // Overlap iff L < delta * stride < U.
  const std::int64_t lower = -ex - (ox - oy);
  const std::int64_t upper = ey - (ox - oy);
  if (stride == 0) {
    if (!(lower < 0 && 0 < upper)) return false;
    *lo = -kUnbounded;
    *hi = kUnbounded;
    return true;
  }
  if (stride > 0) {
    *lo = floor_div(lower, stride) + 1;
    *hi = ceil_div(upper, stride) - 1;
  } else {
    *lo = floor_div(upper, stride) + 1;
    *hi = ceil_div(lower, stride) - 1;
  }
  return *lo <= *hi;
}

Fallback LoopTemplate::learn(const IterationRecord& previous, const IterationRecord& current,
                             LoopTemplate* out) {
  IterationRecord copy = current;
  return learn(previous, std::move(copy), out);
}

Fallback LoopTemplate::learn(const IterationRecord& previous, IterationRecord&& current,
                             LoopTemplate* out) {
  if (current.index - previous.index == 1 && previous.nested_loops != current.nested_loops) {
    return Fallback::nested_lengths;
  }
  if (current.index - previous.index != 1 || current.tasks.empty() ||
      previous.tasks.size() != current.tasks.size() ||
      previous.accesses.size() != current.accesses.size()) {
    return Fallback::mismatch;
  }
  for (std::size_t p = 0; p < current.tasks.size(); ++p) {
    const TaskRecordLite& a = previous.tasks[p];
    const TaskRecordLite& b = current.tasks[p];
    if (a.inline_task != b.inline_task || a.access_count != b.access_count ||
        !std::equal(a.kernels, a.kernels + 3, b.kernels)) {
      return Fallback::mismatch;
    }
  }
  std::vector<std::array<std::int64_t, kMaxDims>> strides(current.accesses.size());
  // The current iteration's placements, computed once: compared below and kept as the template's.
  std::vector<Placement> places;
  places.reserve(current.accesses.size());
  for (const AccessRecord& a : current.accesses)
    places.push_back(placement(a.tensor));
  // Reads of buffers nothing in the iteration writes may move freely.
  std::vector<bool> free(current.accesses.size(), false);
  // The outer buffers the iteration writes, sorted once (not a scan of every access per read).
  std::vector<std::pair<std::uintptr_t, std::uint64_t>> writes;
  for (const AccessRecord& a : current.accesses) {
    if (is_write(a.tag) && a.buffer.kind == BufferRef::Kind::outer)
      writes.emplace_back(a.buffer.address, a.buffer.owner);
  }
  std::sort(writes.begin(), writes.end());
  auto written = [&](const BufferRef& ref) {
    return std::binary_search(writes.begin(), writes.end(), std::pair(ref.address, ref.owner));
  };
  for (std::size_t i = 0; i < current.accesses.size(); ++i) {
    const AccessRecord& a = previous.accesses[i];
    const AccessRecord& b = current.accesses[i];
    strides[i].fill(0);
    if (a.tag != b.tag) return Fallback::mismatch;
    if (!is_tracked(b.tag)) continue;
    if (a.buffer.kind != b.buffer.kind) return Fallback::mismatch;
    const bool fresh = b.buffer.kind == BufferRef::Kind::fresh;
    if (fresh) {
      if (!same_buffer(a.buffer, b.buffer) ||
          previous.index - a.buffer.iteration != current.index - b.buffer.iteration) {
        return Fallback::mismatch;
      }
    } else if (!same_buffer(a.buffer, b.buffer)) {
      return Fallback::mismatch;
    } else if (b.tag == ArgTag::in && !written(b.buffer)) {
      if (a.tensor.version() != b.tensor.version()) return Fallback::mismatch;
      free[i] = true;
      // Its stride, when it has one, lets an affine family stand for it (checked per task).
      const Placement pa = placement(a.tensor);
      const Placement& pb = places[i];
      if (comparable(a.tensor, b.tensor, pa, pb) && same_extents(a.tensor, b.tensor)) {
        for (int r = 0; r < b.tensor.ndims(); ++r)
          strides[i][static_cast<std::size_t>(r)] = pb.offset[r] - pa.offset[r];
      }
      continue;
    }
    const Placement pa = placement(a.tensor);
    const Placement& pb = places[i];
    if (a.tensor.version() != b.tensor.version() || !comparable(a.tensor, b.tensor, pa, pb) ||
        !same_extents(a.tensor, b.tensor)) {
      return Fallback::mismatch;
    }
    for (int r = 0; r < b.tensor.ndims(); ++r) {
      const std::int64_t step = pb.offset[r] - pa.offset[r];
      if (fresh && step != 0) return Fallback::mismatch;  // a new buffer each time: same view
      strides[i][static_cast<std::size_t>(r)] = step;
    }
  }
  out->base_ = std::move(current);
  current.clear(current.index);  // moved from: empty, as the caller may reuse it
  out->strides_ = std::move(strides);
  out->free_ = std::move(free);
  out->places_ = std::move(places);
  const IterationRecord& base = out->base_;
  out->task_of_access_.assign(base.accesses.size(), 0);
  for (std::uint32_t p = 0; p < base.tasks.size(); ++p) {
    const TaskRecordLite& t = base.tasks[p];
    for (std::uint32_t a = t.first_access; a < t.first_access + t.access_count; ++a)
      out->task_of_access_[a] = p;
  }
  out->outer_ready_ = false;
  out->deps_.clear();
  out->deps_id_ = next_deps_id();
  out->carries_ = false;
  out->proven_ = false;
  out->rebound_ = false;
  return Fallback::none;
}

Rebind LoopTemplate::rebind(IterationRecord& current) {
  if (current.tasks.size() != base_.tasks.size() ||
      current.accesses.size() != base_.accesses.size()) {
    return Rebind::structure;
  }
  for (std::size_t p = 0; p < base_.tasks.size(); ++p) {
    const TaskRecordLite& a = base_.tasks[p];
    const TaskRecordLite& b = current.tasks[p];
    if (a.inline_task != b.inline_task || a.access_count != b.access_count ||
        a.first_access != b.first_access || !std::equal(a.kernels, a.kernels + 3, b.kernels)) {
      return Rebind::structure;
    }
  }
  if (current.nested_loops != base_.nested_loops) return Rebind::nested;
  // Kept outer buffer -> this run's, one to one (a linear list: a template names few buffers).
  std::vector<std::pair<BufferRef, BufferRef>> names;
  for (std::uint32_t i = 0; i < base_.accesses.size(); ++i) {
    const AccessRecord& kept = base_.accesses[i];
    const AccessRecord& now = current.accesses[i];
    if (kept.tag != now.tag) return Rebind::structure;
    if (!is_tracked(now.tag)) continue;
    if (kept.buffer.kind == BufferRef::Kind::fresh) {
      // Made `back` iterations before: only back 0 can be in a loop's first iteration.
      if (kept.buffer.iteration != base_.index) return Rebind::carried;
      if (now.buffer.kind != BufferRef::Kind::fresh || now.buffer.task != kept.buffer.task ||
          now.buffer.arg != kept.buffer.arg || now.buffer.iteration != current.index) {
        return Rebind::buffers;
      }
    } else {
      if (now.buffer.kind != BufferRef::Kind::outer) return Rebind::buffers;
      bool named = false;
      for (const auto& [from, to] : names) {
        const bool same_from = same_buffer(from, kept.buffer);
        if (same_from != same_buffer(to, now.buffer)) return Rebind::buffers;
        named = named || same_from;
      }
      if (!named) names.emplace_back(kept.buffer, now.buffer);
    }
    if (free_[i]) {
      if (now.tensor.version() != kept.tensor.version()) return Rebind::views;
    } else if (!predicts_view(current.index, i, now.tensor)) {
      return Rebind::views;
    }
  }
  // The proof's range and every iteration index move with the base.
  const std::int64_t shift = current.index - base_.index;
  first_ += shift;
  last_ += shift;
  base_ = std::move(current);
  current.clear(current.index);  // moved from: empty, as the caller may reuse it
  for (std::size_t a = 0; a < base_.accesses.size(); ++a)
    places_[a] = placement(base_.accesses[a].tensor);
  outer_ready_ = false;  // new views (predicted ones, but derived afresh all the same)
  rebound_ = true;
  return Rebind::fits;
}

bool LoopTemplate::rebase(IterationRecord& neighbour) {
  if ((neighbour.index != base_.index - 1 && neighbour.index != base_.index + 1) ||
      neighbour.tasks.size() != base_.tasks.size() ||
      neighbour.accesses.size() != base_.accesses.size() ||
      neighbour.nested_loops != base_.nested_loops) {
    return false;
  }
  for (std::size_t p = 0; p < base_.tasks.size(); ++p) {
    const TaskRecordLite& a = base_.tasks[p];
    const TaskRecordLite& b = neighbour.tasks[p];
    if (a.inline_task != b.inline_task || a.first_access != b.first_access ||
        a.access_count != b.access_count || !std::equal(a.kernels, a.kernels + 3, b.kernels)) {
      return false;
    }
  }
  // The same buffers (a fresh one at the same distance); the views are the strides' other end
  // (learn() took the strides as the two records' difference), not compared again: every
  // analysed submit is checked against the prediction anyway.
  for (std::size_t i = 0; i < base_.accesses.size(); ++i) {
    const AccessRecord& a = base_.accesses[i];
    const AccessRecord& b = neighbour.accesses[i];
    if (a.tag != b.tag) return false;
    if (!is_tracked(a.tag)) continue;
    if (!same_buffer(a.buffer, b.buffer) ||
        (a.buffer.kind == BufferRef::Kind::fresh &&
         base_.index - a.buffer.iteration != neighbour.index - b.buffer.iteration)) {
      return false;
    }
  }
  const std::int64_t steps = neighbour.index - base_.index;  // -1 or +1
  std::swap(base_, neighbour);
  for (std::size_t a = 0; a < base_.accesses.size(); ++a) {
    // learn() took each stride as the difference of the two placements (the same `rest`), so the
    // new one is the old moved by it, except where it set no stride: an untracked argument, or a
    // free read whose views were not comparable (stride 0).
    const auto& stride = strides_[a];
    if (!is_tracked(base_.accesses[a].tag) ||
        (free_[a] && std::all_of(stride.begin(), stride.end(), [](auto s) { return s == 0; }))) {
      places_[a] = placement(base_.accesses[a].tensor);
      continue;
    }
    for (int r = 0; r < base_.accesses[a].tensor.ndims(); ++r)
      places_[a].offset[r] += steps * stride[static_cast<std::size_t>(r)];
  }
  outer_ready_ = false;
  deps_.clear();
  deps_id_ = next_deps_id();
  carries_ = false;
  proven_ = false;
  rebound_ = false;
  return true;
}

void LoopTemplate::rename_outer(
    std::span<const std::pair<std::uintptr_t, std::uintptr_t>> renames) {
  const std::size_t base_at = Tensor::field_offsets().base;
  for (AccessRecord& rec : base_.accesses) {
    if (rec.buffer.kind != BufferRef::Kind::outer || TaskId::from_value(rec.buffer.owner).valid())
      continue;
    for (const auto& [from, to] : renames) {
      if (rec.buffer.address != from) continue;
      rec.buffer.address = to;
      void* const buffer = reinterpret_cast<void*>(to);
      std::memcpy(reinterpret_cast<unsigned char*>(&rec.tensor) + base_at, &buffer, sizeof(buffer));
      break;
    }
  }
}

bool LoopTemplate::pair_distances(std::uint32_t x, std::uint32_t y, std::int64_t* lo,
                                  std::int64_t* hi, Fallback* why) const {
  const AccessRecord& ax = base_.accesses[x];
  const AccessRecord& ay = base_.accesses[y];
  if (ax.tensor.version() != ay.tensor.version()) {
    *why = Fallback::versions;
    return false;
  }
  if (!comparable(ax.tensor, ay.tensor, places_[x], places_[y])) {
    *why = Fallback::layouts;
    return false;
  }
  std::int64_t low = -kUnbounded;
  std::int64_t high = kUnbounded;
  if (ax.buffer.kind == BufferRef::Kind::fresh) {
    // Iteration i's view is of the buffer made in i - back: the same buffer at one distance.
    const std::int64_t back_x = base_.index - ax.buffer.iteration;
    const std::int64_t back_y = base_.index - ay.buffer.iteration;
    low = high = back_x - back_y;
  }
  if (strides_[x] != strides_[y]) {
    // A two-variable problem; decided here only when the whole sweeps never meet.
    const Box bx = footprint(x, first_, last_);
    const Box by = footprint(y, first_, last_);
    for (int r = 0; r < ax.tensor.ndims(); ++r) {
      if (bx.hi[r] <= by.lo[r] || by.hi[r] <= bx.lo[r]) return false;
    }
    *why = Fallback::unequal_strides;
    return false;
  }
  for (int r = 0; r < ax.tensor.ndims(); ++r) {
    const auto rr = static_cast<std::size_t>(r);
    std::int64_t l = 0;
    std::int64_t h = 0;
    if (!overlap_distances(places_[x].offset[r], ax.tensor.box_extent(r), places_[y].offset[r],
                           ay.tensor.box_extent(r), strides_[x][rr], &l, &h)) {
      return false;
    }
    low = std::max(low, l);
    high = std::min(high, h);
    if (low > high) return false;
  }
  *lo = low;
  *hi = high;
  return true;
}

bool LoopTemplate::same_view(std::uint32_t x, std::uint32_t y) const {
  const AccessRecord& a = base_.accesses[x];
  const AccessRecord& b = base_.accesses[y];
  if (a.buffer.kind == BufferRef::Kind::fresh && a.buffer.iteration != b.buffer.iteration) {
    return false;
  }
  if (strides_[x] != strides_[y] || places_[x].rest != places_[y].rest ||
      a.tensor.version() != b.tensor.version() ||
      !comparable(a.tensor, b.tensor, places_[x], places_[y])) {
    return false;
  }
  for (int r = 0; r < a.tensor.ndims(); ++r) {
    if (places_[x].offset[r] != places_[y].offset[r] ||
        a.tensor.box_extent(r) != b.tensor.box_extent(r)) {
      return false;
    }
  }
  return true;
}

bool LoopTemplate::same_external_query(std::uint32_t a, std::uint32_t b) const {
  const AccessRecord& x = base_.accesses[a];
  const AccessRecord& y = base_.accesses[b];
  if (x.buffer.address != y.buffer.address || x.buffer.owner != y.buffer.owner ||
      is_write(x.tag) != is_write(y.tag) || free_[a] != free_[b]) {
    return false;
  }
  return free_[a] || same_view(a, b);
}

void LoopTemplate::derive_outer() {
  outer_.list.clear();
  outer_.buffer_accesses.clear();
  std::vector<std::uint32_t> leaders;  // the first access of each distinct question
  std::vector<std::pair<std::uintptr_t, std::uint64_t>> buffers;
  for (std::uint32_t a = 0; a < base_.accesses.size(); ++a) {
    const AccessRecord& rec = base_.accesses[a];
    if (!is_tracked(rec.tag) || rec.buffer.kind != BufferRef::Kind::outer) continue;
    OuterAccess o;
    o.access = a;
    const auto same = std::find_if(leaders.begin(), leaders.end(),
                                   [&](std::uint32_t b) { return same_external_query(a, b); });
    o.leader = same != leaders.end() ? *same : a;
    if (same == leaders.end()) leaders.push_back(a);
    const std::pair<std::uintptr_t, std::uint64_t> name{rec.buffer.address, rec.buffer.owner};
    const auto named = std::find(buffers.begin(), buffers.end(), name);
    o.buffer = static_cast<std::uint32_t>(named - buffers.begin());
    if (named == buffers.end()) {
      buffers.push_back(name);
      outer_.buffer_accesses.push_back(0);
    }
    ++outer_.buffer_accesses[o.buffer];
    o.fixed =
        std::all_of(strides_[a].begin(), strides_[a].end(), [](std::int64_t v) { return v == 0; });
    outer_.list.push_back(o);
  }
  outer_ready_ = true;
}

Fallback LoopTemplate::prove(std::int64_t first, std::int64_t last) {
  first_ = first;
  last_ = last;
  proven_ = false;
  rebound_ = false;  // proved again: charged as a learned template (rebound())
  const auto accesses = static_cast<std::uint32_t>(base_.accesses.size());
  deps_.assign(base_.tasks.size(), TemplateTaskDeps{});
  deps_id_ = next_deps_id();
  carries_ = false;

  // Only accesses of one buffer can conflict: sort the tracked ones by buffer (then position),
  // so only each buffer's group is compared, not every pair of the iteration (the buffers an
  // iteration makes are mostly distinct: a request of paged attention has ~1,800 accesses).
  struct Keyed {
    std::uint8_t kind;
    std::uint64_t first;
    std::uint64_t second;
    std::uint32_t access;
    bool operator<(const Keyed& o) const {
      return std::tie(kind, first, second, access) < std::tie(o.kind, o.first, o.second, o.access);
    }
    bool same_buffer(const Keyed& o) const {
      return kind == o.kind && first == o.first && second == o.second;
    }
  };
  std::vector<Keyed> keyed;
  keyed.reserve(accesses);
  for (std::uint32_t a = 0; a < accesses; ++a) {
    const AccessRecord& rec = base_.accesses[a];
    if (!is_tracked(rec.tag)) continue;
    const BufferRef& b = rec.buffer;
    if (b.kind == BufferRef::Kind::outer) {
      keyed.push_back(Keyed{0, std::uint64_t{b.address}, b.owner, a});
    } else {
      keyed.push_back(Keyed{1, b.task, b.arg, a});
    }
  }
  std::sort(keyed.begin(), keyed.end());
  std::vector<std::uint32_t> order(keyed.size());
  for (std::size_t k = 0; k < keyed.size(); ++k)
    order[k] = keyed[k].access;
  auto key_equal = [&](std::size_t i, std::size_t j) { return keyed[i].same_buffer(keyed[j]); };

  // Within a group, accesses with the same view in every iteration (the accumulator chain's
  // m, l, O: one view per tile, touched once per block) form a class: every pair of two classes
  // has the same distances, found once. Edges then follow the classes' order as the TensorMap
  // keeps it (the last write, the reads since), which orders the same pairs as an edge per
  // conflicting pair; reduce_edges drops what other classes' edges imply.
  struct ClassState {
    std::uint32_t rep = 0;               // an access of the class
    bool writes = false;                 // some access of the class writes
    bool chained = false;                // its writes meet themselves one iteration back
    std::int64_t last_write = -1;        // while scanning: the last task that wrote it
    std::vector<std::uint32_t> readers;  // tasks that read it since
  };
  struct PairDistances {
    bool overlap = false;
    std::int64_t lo = 0;
    std::int64_t hi = 0;
  };
  std::vector<ClassState> classes;
  std::vector<std::uint32_t> class_of;
  std::vector<PairDistances> pairs;
  auto add_same = [&](std::uint32_t p, std::uint32_t q) {
    std::vector<std::uint32_t>& same = deps_[p].same_iteration;
    if (q < p && std::find(same.begin(), same.end(), q) == same.end()) same.push_back(q);
  };

  for (std::size_t g = 0; g < order.size();) {
    std::size_t end = g + 1;
    bool writes = is_write(base_.accesses[order[g]].tag);
    while (end < order.size() && key_equal(end, g)) {
      writes = writes || is_write(base_.accesses[order[end]].tag);
      ++end;
    }
    const std::size_t group = g;
    g = end;
    if (!writes) continue;  // reads never conflict with reads

    classes.clear();
    class_of.clear();
    for (std::size_t i = group; i < end; ++i) {
      const std::uint32_t x = order[i];
      std::uint32_t c = 0;
      while (c < classes.size() && !same_view(x, classes[c].rep))
        ++c;
      if (c == classes.size()) {
        classes.emplace_back();
        classes.back().rep = x;
      }
      classes[c].writes = classes[c].writes || is_write(base_.accesses[x].tag);
      class_of.push_back(c);
    }
    const std::size_t n = classes.size();
    pairs.assign(n * n, PairDistances{});
    for (std::size_t cx = 0; cx < n; ++cx) {
      for (std::size_t cy = 0; cy < n; ++cy) {
        PairDistances& d = pairs[cx * n + cy];
        Fallback why = Fallback::none;
        d.overlap = pair_distances(classes[cx].rep, classes[cy].rep, &d.lo, &d.hi, &why);
        if (why != Fallback::none) return why;
      }
      const PairDistances& self = pairs[cx * n + cx];
      classes[cx].chained = classes[cx].writes && self.overlap && self.lo <= 1 && 1 <= self.hi;
    }

    // Same-iteration edges: scan the group in position order, task by task.
    for (std::size_t i = group; i < end;) {
      const std::uint32_t p = task_of_access_[order[i]];
      std::size_t task_end = i;
      while (task_end < end && task_of_access_[order[task_end]] == p)
        ++task_end;
      for (std::size_t k = i; k < task_end; ++k) {
        const bool write = is_write(base_.accesses[order[k]].tag);
        const std::size_t cx = class_of[k - group];
        for (std::size_t cy = 0; cy < n; ++cy) {
          const PairDistances& d = pairs[cx * n + cy];
          if (!d.overlap || d.lo > 0 || d.hi < 0) continue;
          const ClassState& other = classes[cy];
          if (other.last_write >= 0) add_same(p, static_cast<std::uint32_t>(other.last_write));
          if (write) {
            for (const std::uint32_t q : other.readers)
              add_same(p, q);
          }
        }
      }
      for (std::size_t k = i; k < task_end; ++k) {
        ClassState& mine = classes[class_of[k - group]];
        if (is_write(base_.accesses[order[k]].tag)) {
          mine.last_write = p;
          mine.readers.clear();
        }
      }
      for (std::size_t k = i; k < task_end; ++k) {
        ClassState& mine = classes[class_of[k - group]];
        if (!is_write(base_.accesses[order[k]].tag) && mine.last_write != p &&
            (mine.readers.empty() || mine.readers.back() != p)) {
          mine.readers.push_back(p);
        }
      }
      i = task_end;
    }

    // Carried edges: into each access, from the accesses of an overlapping class in iteration
    // i - d that nothing else of their iteration orders after them: its last write, and for a
    // write also the reads since (the scan's final state). Earlier ones reach those in their own
    // iteration, which orders its conflicting pairs whether analysed or not.
    for (std::size_t k = group; k < end; ++k) {
      const std::uint32_t x = order[k];
      const bool write = is_write(base_.accesses[x].tag);
      const std::uint32_t px = task_of_access_[x];
      const std::size_t cx = class_of[k - group];
      for (std::size_t cy = 0; cy < n; ++cy) {
        const PairDistances& d = pairs[cx * n + cy];
        if (!d.overlap) continue;
        std::int64_t lo = std::max<std::int64_t>(d.lo, 1);
        std::int64_t hi = std::min(d.hi, last_ - first_);  // no farther distance occurs
        if (lo > hi) continue;
        const ClassState& other = classes[cy];
        if (!write && other.last_write < 0) continue;  // reads never meet reads
        carries_ = true;
        auto add = [&](std::uint32_t producer, bool producer_writes) {
          std::int64_t top = hi;
          // A chain on either side orders the farther distances through the nearest one.
          if ((write && classes[cx].chained) || (producer_writes && other.chained)) {
            top = lo;
          } else if (top == kUnbounded || top - lo + 1 > kMaxCarriedWindow) {
            return false;
          }
          TemplateTaskDeps& deps = deps_[px];
          const CarriedEdge edge{producer, lo, top};
          const bool known =
              std::any_of(deps.carried.begin(), deps.carried.end(), [&](const auto& e) {
                return e.producer == edge.producer && e.min_distance == edge.min_distance &&
                       e.max_distance == edge.max_distance;
              });
          if (!known) deps.carried.push_back(edge);
          return true;
        };
        if (other.last_write >= 0 && !add(static_cast<std::uint32_t>(other.last_write), true)) {
          return Fallback::wide_window;
        }
        if (write) {
          for (const std::uint32_t q : other.readers) {
            if (!add(q, false)) return Fallback::wide_window;
          }
        }
      }
    }
  }
  reduce_edges();
  proven_ = true;
  return Fallback::none;
}

void LoopTemplate::reduce_edges() {
  // Every conflicting earlier task is an edge so far: an accumulator's update depends on every
  // earlier update of the iteration, where the per-task map wires only the last writer. Keep an
  // edge q -> p only when no other producer of p is reached from q (same-iteration edges go from
  // lower to higher positions, so the graph is a DAG in position order); reachability stays
  // exactly the same. Ancestor sets are bit sets over the template's positions.
  const std::size_t tasks = base_.tasks.size();
  if (tasks > kMaxReducedTasks) return;  // the edges stay as found: exact, only not minimal
  const std::size_t words = (tasks + 63) / 64;
  std::vector<std::uint64_t> ancestors(tasks * words, 0);
  auto reaches = [&](std::uint32_t from, std::uint32_t to) {  // from is an ancestor of to
    return (ancestors[to * words + from / 64] >> (from % 64)) & 1u;
  };
  for (std::uint32_t p = 0; p < tasks; ++p) {
    std::vector<std::uint32_t>& producers = deps_[p].same_iteration;
    std::uint64_t* const mine = &ancestors[p * words];
    if (producers.size() > 1) std::sort(producers.begin(), producers.end(), std::greater<>());
    std::size_t kept = 0;
    for (const std::uint32_t q : producers) {
      if ((mine[q / 64] >> (q % 64)) & 1u) continue;  // reached through a later producer
      producers[kept++] = q;
      const std::uint64_t* const theirs = &ancestors[q * words];
      for (std::size_t w = 0; w < words; ++w)
        mine[w] |= theirs[w];
      mine[q / 64] |= std::uint64_t{1} << (q % 64);
    }
    producers.resize(kept);
    std::reverse(producers.begin(), producers.end());

    // A carried edge q (i - d) -> p is implied by a carried edge q' (i - d) -> r at the same
    // distances where q reaches q' and r reaches p (or is p) in one iteration: every iteration,
    // analysed or not, orders its own conflicting pairs.
    std::vector<CarriedEdge>& carried = deps_[p].carried;
    if (carried.empty()) continue;
    auto implied = [&](const CarriedEdge& e, std::uint32_t r, const CarriedEdge& other) {
      return other.min_distance == e.min_distance && other.max_distance == e.max_distance &&
             (other.producer == e.producer ? r != p : reaches(e.producer, other.producer));
    };
    std::vector<CarriedEdge> reduced;
    for (const CarriedEdge& e : carried) {
      bool redundant = false;
      for (const CarriedEdge& other : carried) {
        if (&other != &e && implied(e, p, other)) redundant = true;
      }
      for (std::uint32_t r = 0; r < p && !redundant; ++r) {
        if (!reaches(r, p)) continue;
        for (const CarriedEdge& other : deps_[r].carried) {
          if (implied(e, r, other)) {
            redundant = true;
            break;
          }
        }
      }
      if (!redundant) reduced.push_back(e);
    }
    carried = std::move(reduced);
  }
}

bool LoopTemplate::predicts_task(std::uint32_t position, const KernelId kernels[3],
                                 bool inline_task, int tensor_count) const {
  if (position >= base_.tasks.size()) return false;
  const TaskRecordLite& t = base_.tasks[position];
  return t.inline_task == inline_task && static_cast<int>(t.access_count) == tensor_count &&
         t.kernels[0] == kernels[0] && t.kernels[1] == kernels[1] && t.kernels[2] == kernels[2];
}

bool LoopTemplate::predicts_access(std::int64_t iteration, std::uint32_t access, ArgTag tag,
                                   const BufferRef& buffer, const Tensor& tensor) const {
  const AccessRecord& t = base_.accesses[access];
  if (tag != t.tag) return false;
  if (!is_tracked(tag)) return true;
  if (buffer.kind != t.buffer.kind) return false;
  if (buffer.kind == BufferRef::Kind::outer) {
    if (buffer.address != t.buffer.address || buffer.owner != t.buffer.owner) return false;
  } else if (buffer.task != t.buffer.task || buffer.arg != t.buffer.arg ||
             iteration - buffer.iteration != base_.index - t.buffer.iteration) {
    return false;
  }
  if (free_[access]) return tensor.version() == t.tensor.version();
  return predicts_view(iteration, access, tensor);
}

bool LoopTemplate::predicts_view(std::int64_t iteration, std::uint32_t access,
                                 const Tensor& tensor) const {
  const AccessRecord& t = base_.accesses[access];
  if (tensor.version() != t.tensor.version()) return false;
  const Placement place = placement(tensor);
  if (!comparable(tensor, t.tensor, place, places_[access])) return false;
  for (int r = 0; r < tensor.ndims(); ++r) {
    if (tensor.box_extent(r) != t.tensor.box_extent(r) ||
        place.offset[r] != offset(access, r, iteration)) {
      return false;
    }
  }
  return true;
}

LoopTemplate::Box LoopTemplate::footprint(std::uint32_t access, std::int64_t first,
                                          std::int64_t last) const {
  Box box;
  const Tensor& t = base_.accesses[access].tensor;
  for (int r = 0; r < t.ndims(); ++r) {
    const std::int64_t a = offset(access, r, first);
    const std::int64_t b = offset(access, r, last);
    box.lo[r] = std::min(a, b);
    box.hi[r] = std::max(a, b) + t.box_extent(r);
  }
  return box;
}

bool AffineFamily::overlapping(const Tensor& query, std::int64_t* first_iteration,
                               std::int64_t* last_iteration) const {
  if (count <= 0) return false;
  std::int64_t low = 0;
  std::int64_t high = count - 1;
  if (query.version() != first.version()) {
    // Different versions of one buffer are always ordered.
  } else if (comparable(query, first)) {
    const Placement pf = placement(first);
    const Placement pq = placement(query);
    for (int r = 0; r < query.ndims(); ++r) {
      std::int64_t l = 0;
      std::int64_t h = 0;
      if (!overlap_distances(pf.offset[r], first.box_extent(r), pq.offset[r], query.box_extent(r),
                             stride[static_cast<std::size_t>(r)], &l, &h)) {
        return false;
      }
      low = std::max(low, l);
      high = std::min(high, h);
    }
  } else {
    // Different layouts: byte intervals, which move by a constant number of bytes per iteration.
    const auto size = static_cast<std::int64_t>(first.element_size());
    const auto query_size = static_cast<std::int64_t>(query.element_size());
    std::int64_t byte_stride = 0;
    for (int r = 0; r < first.ndims(); ++r)
      byte_stride += stride[static_cast<std::size_t>(r)] * first.raw_stride(r) * size;
    const auto f_lo = static_cast<std::int64_t>(first.first_element()) * size;
    const auto f_hi = static_cast<std::int64_t>(first.end_element()) * size;
    const auto q_lo = static_cast<std::int64_t>(query.first_element()) * query_size;
    const auto q_hi = static_cast<std::int64_t>(query.end_element()) * query_size;
    std::int64_t l = 0;
    std::int64_t h = 0;
    if (!overlap_distances(f_lo, f_hi - f_lo, q_lo, q_hi - q_lo, byte_stride, &l, &h)) return false;
    low = std::max(low, l);
    high = std::min(high, h);
  }
  if (low > high) return false;
  *first_iteration = low;
  *last_iteration = high;
  return true;
}

}  // namespace tmr::detail::loops
