// Affine-family entries: what an analysed parallel_for leaves for dependence lookups instead of
// one TensorMap entry per task and access.
//
// A template access `a` on an outer buffer touches `box(a) + k * stride(a)` in the k-th analysed
// iteration. One family entry per such access (its first view, its stride, how many iterations
// it holds so far, and the loop's task table) answers a lookup by division: the iterations whose
// box meets the query are an interval, found per dimension (`AffineFamily::overlapping`), and
// only those iterations' tasks are reported, each still checked against ring retirement. Every
// dependence lookup (submits outside the loop, fallen-back iterations, element access, wait_for)
// asks this table as well as the TensorMap, so the map stays complete in effect while analysed
// submits insert nothing for these accesses. A family dies when all its tasks have retired.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "core/dependence/retirement_view.hpp"
#include "core/dependence/tensor_map.hpp"
#include "core/loops/loop_template.hpp"

namespace tmr::detail::loops {

// Task ids in submit order, appended once per task of a loop: push_back is inline and grows out
// of line (std::vector<TaskId>::push_back stayed a call in the analysed submit, ~35 instructions a
// task in paged attention). Keeps its capacity across clear().
class TaskList {
 public:
  TaskList() = default;
  TaskList(const TaskList&) = delete;
  TaskList& operator=(const TaskList&) = delete;
  [[gnu::always_inline]] void push_back(TaskId id) {
    if (size_ == capacity_) [[unlikely]] {
      grow();
    }
    data_[size_++] = id.value();
  }
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  void clear() { size_ = 0; }
  TaskId operator[](std::size_t i) const { return TaskId::from_value(data_[i]); }
  // The TaskId values, valid until the next push_back (a reader's local copy of the pointer).
  const std::uint64_t* values() const { return data_.get(); }

 private:
  void grow();
  std::unique_ptr<std::uint64_t[]> data_;  // TaskId values: grown without initialising
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

// Every task of one loop in submit order, and where each iteration starts in that list. Shared
// by the loop and its families (which outlive the loop while their tasks are live).
struct LoopTasks {
  TaskList tasks;
  std::vector<std::uint64_t> iteration_start;  // index into tasks, per loop iteration
  TaskId at(std::int64_t iteration, std::uint32_t position) const {
    return tasks[iteration_start[static_cast<std::size_t>(iteration)] + position];
  }
};

struct Family {
  std::uintptr_t address = 0;  // the buffer, as the TensorMap keys it
  std::uint64_t owner = 0;
  AccessKind kind = AccessKind::read;
  AffineFamily shape;           // shape.count: iterations recorded so far
  std::int64_t base = 0;        // the loop iteration of the family's iteration 0
  std::uint32_t position = 0;   // the template task (its position in an iteration)
  std::int64_t first_live = 0;  // family iterations before this have retired or were superseded
  bool open = true;             // the loop may still add iterations
  std::size_t slot = 0;         // its place in the table's list (O(1) removal)
  std::shared_ptr<const LoopTasks> tasks;
  TaskId task(std::int64_t k) const { return tasks->at(base + k, position); }
};

class FamilyTable {
 public:
  explicit FamilyTable(RetirementView rings) : rings_(rings) {}

  void reset();
  // Whether any family may still report a task (one branch on every lookup when none).
  bool live() const { return !families_.empty(); }
  std::size_t size() const { return families_.size(); }

  // A family for the accesses `view` + k * stride of template task `position`, iterations from
  // loop iteration `base` on. It starts empty; grow() adds iterations as their tasks are recorded.
  Family* add(std::uintptr_t address, std::uint64_t owner, AccessKind kind, const Tensor& view,
              const std::array<std::int64_t, kMaxDims>& stride, std::int64_t base,
              std::uint32_t position, std::shared_ptr<const LoopTasks> tasks) {
    return add(bucket(address, owner, 1), kind, view, stride, base, position, tasks);
  }
  // The list of a buffer's families, with room for `more` adds: a loop's start adds many
  // families to each of a few buffers with one lookup each (the list stays where it is until
  // the buffer's last family goes).
  struct Bucket {
    std::vector<Family*>* list;
    std::uintptr_t address;
    std::uint64_t owner;
  };
  Bucket bucket(std::uintptr_t address, std::uint64_t owner, std::size_t more);
  // add() to the buffer of `bucket` (from bucket(), no family erased since).
  Family* add(Bucket bucket, AccessKind kind, const Tensor& view,
              const std::array<std::int64_t, kMaxDims>& stride, std::int64_t base,
              std::uint32_t position, const std::shared_ptr<const LoopTasks>& tasks);
  static void grow(Family* family) { ++family->shape.count; }
  static void close(Family* family) { family->open = false; }

  // Reports (through `report(context, id)`) every live task of a family on `q`'s buffer whose
  // access conflicts with an access of `kind` to `q`: the TensorMap's rules (reads meet writes,
  // writes meet both; other versions always; different layouts by byte interval). A write that
  // covers a family's oldest live iterations supersedes them, as the map drops covered entries.
  using Report = void (*)(void* context, TaskId id);
  void lookup(const AccessRegion& q, AccessKind kind, Report report, void* context);
  // Whether a family on this buffer may hold a live task.
  bool has_buffer(std::uintptr_t address, std::uint64_t owner) const;
  // Whether a family on this buffer may hold a live task that an access of `kind` conflicts
  // with: any family for a write, a write family for a read (reads never meet reads).
  bool has_conflicting(std::uintptr_t address, std::uint64_t owner, AccessKind kind) const;
  // has_conflicting for an access of version `version` whose every view lies in bytes [lo, hi)
  // of the buffer: a closed family whose views all lie outside it cannot conflict (one of
  // another version, or still open, may). Lets a loop that learned over nested analysed loops
  // keep their families (on other rows of its output, say) out of its per-task lookups.
  bool has_conflicting_in(std::uintptr_t address, std::uint64_t owner, AccessKind kind,
                          std::uint32_t version, std::uint64_t lo, std::uint64_t hi) const;
  // Drops closed families whose tasks have all retired.
  void sweep();

 private:
  struct Key {
    std::uintptr_t address;
    std::uint64_t owner;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const {
      return static_cast<std::size_t>((k.address ^ (k.owner * 0x9E3779B97F4A7C15ull)) *
                                      0xD6E8FEB86659FD93ull);
    }
  };
  // Advances first_live over retired iterations; true when the family is closed and empty.
  bool retire_front(Family& family) const;
  void erase(Family* family);

  RetirementView rings_;
  std::vector<Family*> families_;  // the live ones (a family's slot is its index)
  // Their storage, in chunks (a template adds a family per access: one allocation per chunk, not
  // per family); erased families' storage is reused first.
  static constexpr std::size_t kChunk = 32;
  std::vector<std::unique_ptr<Family[]>> chunks_;
  std::size_t chunk_used_ = kChunk;  // families taken from the last chunk
  std::vector<Family*> free_;
  std::unordered_map<Key, std::vector<Family*>, KeyHash> by_buffer_;
};

}  // namespace tmr::detail::loops
