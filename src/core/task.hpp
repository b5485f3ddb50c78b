// Task records shared by the orchestrator, the schedulers and the cores.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>

#include "tmr/args.hpp"
#include "tmr/kernel.hpp"
#include "tmr/task_id.hpp"
#include "tmr/tensor.hpp"

namespace tmr::detail {

class Ring;
struct TaskSlot;

// Which resource a task needs: one AIC, one AIV, or several cores of one cluster.
enum class TaskShape : std::uint8_t { aic = 0, aiv = 1, mix = 2 };
inline constexpr int kShapeCount = 3;

enum class TaskState : std::uint8_t { pending, ready, completed, consumed };

// Subtask slots of a task: which core of the cluster runs which kernel.
inline constexpr int kSlotAic = 0;
inline constexpr int kSlotAiv0 = 1;
inline constexpr int kSlotAiv1 = 2;

// One dependency edge, owned by the consumer (allocated from the consumer ring's dependency pool):
// it sits in the producer's fanout list until the producer completes, and tells the consumer
// which producer to release when the consumer itself completes.
struct FanoutNode {
  TaskSlot* consumer;
  TaskSlot* producer;
  FanoutNode* next;
};

// Marks a fanout list as closed: the producer has completed, late consumers count it as done.
inline FanoutNode* closed_fanout() {
  return reinterpret_cast<FanoutNode*>(std::uintptr_t{1});
}

// How many tensors and scalars a task record holds inline. A task with more keeps them in its
// slot's spill area instead (Ring::tensor_storage, Ring::scalar_storage): tensors and scalars
// spill independently, each all or nothing (a kernel reads one contiguous array of each).
inline constexpr int kInlineTensorArgs = 4;
inline constexpr int kInlineScalarArgs = 10;

// What the cores read: kernels, the task's tensors and scalars. Written once at submit.
// A replayed task's tensors and kernel functions may be named instead of copied
// (image_distance, RecordImage).
// Compact: a submit's cost is bound by the cache lines of the cold records it fills (a window of
// 65,536 tasks walks the whole array), not by its instructions. A record of all
// kMaxTensorArgs tensors and kMaxScalarArgs scalars was 2,800 bytes, so consecutive records were
// 44 lines apart; this one is 10 lines, consecutive and line-aligned, and the common task (up
// to 4 tensors, 10 scalars) touches nothing else. Layout (session 24): the first line holds
// everything a record naming its image writes (the position's 32-byte header, the counts, the
// distance and the three pointers), then 4 tensors (104 bytes each), the task's own kernel
// functions (72 bytes) and 10 scalars. A record naming its image writes its first line alone (and
// its scalars, if it has any); one holding its own arguments writes as many lines as before.
struct alignas(64) TaskRecord {
  // The header: what every task of one template position shares (LoopDriver::PreparedTask
  // copies these 32 bytes whole).
  KernelId kernels[3];
  std::int32_t tensor_count;
  ArgTag tags[kMaxTensorArgs];  // how the task was given each tensor (KernelArgs::tag)
  std::int32_t scalar_count;
  // Zero (set at every admit, Ring::bind_arguments): `tensors` are the task's tensors. Otherwise
  // `tensors` is a RecordImage's `base` and the task's tensors are that base moved by this many
  // iterations (RecordTensors rebuilds them; a replayed task whose arguments its template proved
  // to be base + i x step, OrchestratorCore::submit_replayed).
  std::uint32_t image_distance;
  // The kernel of each subtask slot: own_fns (set at every admit, Ring::bind_arguments), the
  // orchestrator's kept copy of the plan's functions (a plain submit: OrchestratorCore::kept_fns,
  // alive as long as the orchestrator; own_fns then unwritten), or the fns of the RecordImage a
  // replayed task names (the position's kernels, the same for each of its tasks).
  const KernelFn* fns;
  // Where the task's arguments are: inline_tensors/inline_scalars below, or the slot's spill
  // area when there are more (Ring::tensor_storage/scalar_storage by count), or a RecordImage's
  // base. Set at every admit (OrchestratorCore::admit_slot), after the header: the header copy
  // never carries them.
  Tensor* tensors;
  std::uint64_t* scalars;
  // Line-aligned: the tensor copy (a libc memcpy of up to 416 bytes) takes 12 instructions more
  // to an unaligned destination.
  Tensor inline_tensors[kInlineTensorArgs];
  KernelFn own_fns[3];
  std::uint64_t inline_scalars[kInlineScalarArgs];
};
static_assert(sizeof(TaskRecord) == 10 * 64, "a task record is ten cache lines (see above)");
static_assert(offsetof(TaskRecord, inline_tensors) == 64, "what a named record writes: one line");
static_assert(offsetof(TaskRecord, scalar_count) == 32, "the header: 32 bytes");

// Copies a submit's tensors (Args keeps them contiguous) to `to`: a record's storage or an image.
// Up to kInlineTensorArgs (a record's own) tensor by tensor, each a fixed-size copy the compiler
// writes out as moves (14 a tensor): the libc memcpy of count x 104 bytes and its call cost ~75
// instructions a 4-tensor submit, this ~62. (One fixed copy of 4 x 104 bytes becomes `rep movsq`.)
// `count`: args.tensor_count(), when the caller has it already.
[[gnu::always_inline]] inline void copy_tensors(Tensor* to, const Args& args, const int count) {
  static_assert(std::is_trivially_copyable_v<Tensor>);
  static_assert(kInlineTensorArgs == 4, "one case per inline tensor below");
  const auto one = [&](int k) {
    std::memcpy(static_cast<void*>(to + k), &args.tensor(k), sizeof(Tensor));
  };
  switch (count) {
    case 4:
      one(3);
      [[fallthrough]];
    case 3:
      one(2);
      [[fallthrough]];
    case 2:
      one(1);
      [[fallthrough]];
    case 1:
      one(0);
      [[fallthrough]];
    case 0:
      return;
    default:
      std::memcpy(static_cast<void*>(to), &args.tensor(0),
                  static_cast<std::size_t>(count) * sizeof(Tensor));
  }
}
[[gnu::always_inline]] inline void copy_tensors(Tensor* to, const Args& args) {
  copy_tensors(to, args, args.tensor_count());
}

// The tensors every task of one replayed template position names (session 23): its arguments at
// one iteration, and how each moves per iteration. A task i iterations later names `base` and i
// (TaskRecord::image_distance) instead of copying its tensors into its record, and the image's
// `fns` instead of its kernel functions (TaskRecord::fns): one record line instead of up to nine.
// Only for arguments the template's exact compare proved to equal their image (every byte but
// the padding, the image moving by its step in the box-offset lanes), so the rebuilt tensor is
// the one the body passed. Written by the orchestrator before its first task is published, then
// immutable while any task naming it lives (LoopDriver's record images).
struct alignas(64) RecordImage {
  // The box-offset lanes: uint32 lanes from this byte of a Tensor (LoopDriver::kStepWord's two
  // 16-byte words), moved lane by lane modulo 2^32, as the replay compare moves its image.
  static constexpr std::size_t kStepAt = 48;
  static constexpr int kStepLanes = 8;
  Tensor base[kMaxTensorArgs];
  std::uint32_t step[kMaxTensorArgs][kStepLanes];
  // The position's kernel functions (LoopDriver::name_record_slow, with the tensors).
  KernelFn fns[3];
};

// A record's tensors as its kernel sees them: the record's own, or those of the image it names
// rebuilt into this object (a worker-local copy, hot in the worker's cache). The one place a
// reader turns a record into tensors; identity readers (buffer(), producer(), dtype, shape) may
// read `tensors` directly, since moving by a step changes box offsets only.
class RecordTensors {
 public:
  explicit RecordTensors(const TaskRecord& record) {
    if (record.image_distance == 0) [[likely]] {
      tensors_ = record.tensors;
      return;
    }
    const auto& image = *reinterpret_cast<const RecordImage*>(record.tensors);
    const std::uint32_t d = record.image_distance;
    for (int k = 0; k < record.tensor_count; ++k) {
      unsigned char* const to = storage_ + static_cast<std::size_t>(k) * sizeof(Tensor);
      std::memcpy(to, &image.base[k], sizeof(Tensor));
      for (int l = 0; l < RecordImage::kStepLanes; ++l) {
        std::uint32_t lane;
        std::memcpy(&lane, to + RecordImage::kStepAt + 4 * l, sizeof(lane));
        lane += d * image.step[k][l];
        std::memcpy(to + RecordImage::kStepAt + 4 * l, &lane, sizeof(lane));
      }
    }
    tensors_ = std::launder(reinterpret_cast<const Tensor*>(storage_));
  }
  RecordTensors(const RecordTensors&) = delete;
  RecordTensors& operator=(const RecordTensors&) = delete;
  const Tensor* get() const { return tensors_; }

 private:
  static_assert(std::is_trivially_copyable_v<Tensor> && std::is_standard_layout_v<RecordImage> &&
                RecordImage::kStepAt + 4 * RecordImage::kStepLanes <= sizeof(Tensor));
  const Tensor* tensors_;
  alignas(Tensor) unsigned char storage_[kMaxTensorArgs * sizeof(Tensor)];
};

// The state schedulers and the orchestrator share for one live task: exactly one cache line, so
// a task hands one slot line between the orchestrator's CPU and a worker's (two before: the
// orchestrator re-initialised both at admit and a worker wrote both while running the task, so
// each line crossed twice per task). What only traces or loops need (the submit sequence, the
// ready time) lives in the ring's per-slot side arrays (Ring::info, Ring::ready_ns), which the
// workers touch only while recording.
//
// Lifetimes: `ring` and `record` are bound once, when the ring is built (slot i of a ring always
// uses record i); every other field is reset by the orchestrator at admit. The atomics are
// written by both sides; `next_block` by the scheduler thread that holds the task.
struct alignas(64) TaskSlot {
  // Producers still to finish, plus one guard held while the orchestrator wires the task.
  std::atomic<std::int32_t> fanin_remaining{0};
  // References that keep the task's slot and buffers alive: its scope, its own completion, and
  // one per consumer. Zero means consumed.
  std::atomic<std::int32_t> release_remaining{0};
  // Subtasks (blocks x active kernels) still running or to dispatch.
  std::atomic<std::uint32_t> subtasks_remaining{0};
  std::atomic<TaskState> state{TaskState::consumed};
  // Immutable while the task is live (set at admit).
  std::uint8_t active_mask = 0;  // bit s set: subtask slot s has a kernel
  TaskShape shape = TaskShape::aiv;
  bool sync_start = false;
  std::atomic<FanoutNode*> fanout_head{nullptr};
  TaskId id;
  // Bound once by the ring (Ring::Ring).
  Ring* ring = nullptr;
  TaskRecord* record = nullptr;
  // Immutable while the task is live (set at admit and wiring).
  std::uint32_t dep_begin = 0;  // linear index of the first fanin node in ring's pool (mod 2^32)
  std::uint32_t dep_count = 0;
  std::uint32_t block_count = 1;
  // Owned by the scheduler thread that holds the task (it is in no queue meanwhile).
  std::uint32_t next_block = 0;
};
static_assert(sizeof(TaskSlot) == 64, "a task slot is one cache line (see above)");

// Three slot bits; spelled out so it needs no popcount instruction or libgcc call.
inline int active_slot_count(std::uint8_t mask) {
  return (mask & 1) + ((mask >> 1) & 1) + ((mask >> 2) & 1);
}

}  // namespace tmr::detail
