// The pattern form for a pattern of several tasks an iteration, fresh outputs, references to an
// earlier task's outputs, views indexed by a host table or conditional scalars
// (Orchestrator::parallel_for(n, TaskPattern), docs/design.md "The pattern form"): each task's
// Args built once and moved in place per iteration, so no user body runs and no view is built
// but the references' and the indexed ones'. Each submit goes through `submit`
// (OrchestratorCore::submit_pattern_task): the public path with its replay compare until the
// task is verified, then the compare-free wide submit (docs/design.md, "A compare-free wide
// submit"); iteration i submits what TaskPattern::submit_iteration would submit, in the same
// order, and throws what it would throw. Once every task is verified, an iteration is one call
// (OrchestratorCore::submit_pattern_iteration with move_trusted; docs/design.md, "A trusted
// iteration in one call"), iterate taking over from the first task that cannot.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "core/loops/affine_loop.hpp"
#include "tmr/args.hpp"
#include "tmr/orchestrator.hpp"
#include "tmr/task_pattern.hpp"

namespace tmr::detail::loops {

class PatternLoop {
 public:
  // Builds every task's arguments for iteration 0 and the moves; `compared` when they serve the
  // loop, otherwise the reason the plain loop (TaskPattern::submit_iteration) runs it: a view of
  // iteration 0, 1 or n - 1 out of range or an index table the plain loop's read would refuse
  // (out_of_range: the plain loop names the error where it occurs), a descriptor not affine in
  // its box offsets (not_affine), a table some task of the loop writes (table_written).
  PatternRoute prepare(const TaskPattern& pattern, std::int64_t n);
  // The table rows the indexed views read (one view each), which the caller waits for once
  // before iteration 0: no task of the loop writes them (prepare), so every later read sees what
  // the plain loop's get_tensor_data would see.
  const std::vector<Tensor>& table_rows() const { return table_rows_; }
  // How iteration i submits task `task` with its moved arguments (the public submit, or
  // OrchestratorCore::submit_pattern_task, which may skip the compare at a verified position).
  using Submit = TaskOutputs (*)(void* context, PatternLoop& loop, int task, std::int64_t i,
                                 const MixKernels& kernels, const Args& args);
  // Iteration i: what pattern.submit_iteration(o, i) submits, each moved task through `submit`.
  // A task whose table entry puts its view out of range takes the plain loop's arguments and
  // the public submit (which names the error), and its trust starts again.
  // From task `from` on (the earlier tasks of iteration i submitted: `from` > 0 continues an
  // iteration OrchestratorCore::submit_pattern_iteration began).
  void iterate(Orchestrator& o, std::int64_t i, Submit submit, void* context, int from = 0);

  // ---- a trusted iteration in one call (OrchestratorCore::submit_pattern_iteration)
  int task_count() const { return static_cast<int>(tasks_.size()); }
  // Every task of the pattern verified (trusted(task)): the iteration may go the lean way.
  bool all_trusted() const {
    for (const Task& task : tasks_) {
      const Trust& t = task.trust;
      if (t.passes < 2 || !(t.same || t.run_ok)) return false;
    }
    return true;
  }
  // Writes what iteration i moves into task `task`'s arguments, as iterate does, with each
  // reference to an earlier task's output taken from that output (whole) or from its kept view
  // (the view of the output's spec made once, its buffer and creator set: exact for an output a
  // trusted wide submit placed, which is the spec with those two fields set). False, having
  // submitted nothing, when a table entry puts a view out of range (iterate's plain route) or a
  // reference has no kept view (its view does not fit: iterate's view names the error).
  bool move_trusted(int task, std::int64_t i);
  const Args& args(int task) const { return tasks_[static_cast<std::size_t>(task)].args; }
  // Where task `task`'s outputs of this iteration go (references read them).
  TaskOutputs* output_slot(int task) { return &outputs_[static_cast<std::size_t>(task)]; }

  // ---- trust, per task of the pattern (the compare-free wide submit, docs/design.md)
  // Two passes of the wide compare (LoopDriver::wide_pass) for `task` at consecutive pattern
  // iterations, either at one position in consecutive iterations of the owner (the pattern loop
  // owns the analysis: `same`) or at positions one iteration's task count apart in one iteration
  // of the owner (nested: a run, which LoopDriver::run_affine must also prove: run_ok): its later
  // iterations match by construction.
  bool trusted(int task) const {
    const Trust& t = tasks_[static_cast<std::size_t>(task)].trust;
    return t.passes >= 2 && (t.same || t.run_ok);
  }
  const TrustKey& key(int task) const {
    return tasks_[static_cast<std::size_t>(task)].trust.last.key;
  }
  // What a trusted `task` of pattern iteration i predicts: the owner's iteration and position.
  std::int64_t owner_iteration(int task, std::int64_t i) const {
    const Trust& t = tasks_[static_cast<std::size_t>(task)].trust;
    return t.same ? t.last.iteration + (i - t.last_i) : t.last.iteration;
  }
  std::uint32_t owner_position(int task, std::int64_t i) const {
    const Trust& t = tasks_[static_cast<std::size_t>(task)].trust;
    if (t.same) return t.last.position;
    return t.last.position +
           static_cast<std::uint32_t>(tasks_.size()) * static_cast<std::uint32_t>(i - t.last_i);
  }
  bool same_position(int task) const { return tasks_[static_cast<std::size_t>(task)].trust.same; }
  // After a submit of `task` in pattern iteration i that was not trusted: `pass` is
  // LoopDriver::wide_pass()'s answer. Returns whether a run was just verified (two passes), whose
  // positions the caller then proves with LoopDriver::run_affine (set_run).
  bool checked(int task, std::int64_t i, const WidePass& pass);
  // The run the second pass verified: its first position, the stride (the pattern's task count)
  // and how many of the loop's iterations it covers from there.
  std::uint32_t run_first(int task) const {
    return tasks_[static_cast<std::size_t>(task)].trust.first;
  }
  std::uint32_t stride() const { return static_cast<std::uint32_t>(tasks_.size()); }
  std::uint32_t run_count(int task) const {
    const Trust& t = tasks_[static_cast<std::size_t>(task)].trust;
    return static_cast<std::uint32_t>(n_ - (t.last_i - 1));
  }
  void set_run(int task, bool ok) { tasks_[static_cast<std::size_t>(task)].trust.run_ok = ok; }
  // The task's arguments the pattern moves by a table entry (in_indexed: not affine in i) and
  // its references to an earlier task's output (in_output): wide_pass()'s structural routes.
  std::uint32_t indexed_bits(int task) const {
    return tasks_[static_cast<std::size_t>(task)].indexed_bits;
  }
  std::uint32_t ref_bits(int task) const { return tasks_[static_cast<std::size_t>(task)].ref_bits; }

 private:
  struct Step {  // a view moving with i: its raw box offsets are base + i * step (mod 2^32)
    int arg = 0;
    std::uint32_t base[kMaxDims] = {};
    std::uint32_t step[kMaxDims] = {};
  };
  struct Indexed {  // a view whose offset x = offset + entry * scale, valid for x in [0, limit]
    int arg = 0;
    const std::int32_t* entries = nullptr;  // the table row's entry 0
    std::int64_t stride = 0;                // between entries, in elements
    std::int64_t offset = 0;
    std::int64_t scale = 0;
    std::int64_t limit = 0;
    std::uint32_t base[kMaxDims] = {};  // raw box offsets at x = 0
    std::uint32_t unit[kMaxDims] = {};  // their change per unit of x
  };
  struct Ref {  // an earlier task's output, whole or a fixed view of it
    int arg = 0;
    int task = 0;
    int output = 0;
    int ndims = 0;  // 0: whole
    std::uint32_t shape[kMaxDims] = {};
    std::uint32_t offsets[kMaxDims] = {};
    // A view (ndims > 0): the view of the output's spec (the placeholder Args::out built), valid
    // when that view fits; move_trusted sets its buffer and creator.
    bool kept_valid = false;
    alignas(Tensor) unsigned char kept[sizeof(Tensor)] = {};
  };
  struct Trust {
    WidePass last;            // the last pass
    std::int64_t last_i = 0;  // its pattern iteration
    int passes = 0;           // consecutive passes, `last` the latest
    bool same = false;        // passes at one position (with passes >= 2)
    std::uint32_t first = 0;  // a run's first verified position
    bool run_ok = false;      // LoopDriver::run_affine proved the run
  };
  struct Task {
    MixKernels kernels;
    Args args;
    std::vector<Step> steps;
    std::vector<Indexed> indexed;
    std::vector<Ref> refs;
    std::uint32_t indexed_bits = 0;
    std::uint32_t ref_bits = 0;
    Trust trust;
  };
  static void write_offsets(Args& args, int arg, const std::uint32_t* lanes);
  // What iterate and move_trusted both write: the offsets (false: an entry out of range) and the
  // scalars of iteration i.
  bool move_offsets(Task& task, std::int64_t i);
  void move_scalars(int task, std::int64_t i);

  const TaskPattern* pattern_ = nullptr;
  std::vector<Task> tasks_;
  std::unique_ptr<TaskOutputs[]> outputs_;  // default-initialised: nothing zeroed
  std::size_t outputs_room_ = 0;            // outputs_'s length (kept across prepares)
  std::vector<Tensor> table_rows_;
  std::int64_t n_ = 0;
};

inline void PatternLoop::write_offsets(Args& args, int arg, const std::uint32_t* lanes) {
  std::memcpy(
      reinterpret_cast<unsigned char*>(args.tensor_storage_[static_cast<std::size_t>(arg)].bytes) +
          Tensor::field_offsets().offsets,
      lanes, sizeof(std::uint32_t) * kMaxDims);
}

// Iteration i's offsets of `task`: its steps, then its table entries; false at the first entry
// that puts its view out of range (the task then takes the plain loop's arguments). Inline in
// both callers (iterate, move_trusted), as each had it written out (here: move_trusted is
// inlined into OrchestratorCore::submit_pattern_iteration).
[[gnu::always_inline]] inline bool PatternLoop::move_offsets(Task& task, std::int64_t i) {
  Args& args = task.args;
  const auto index = static_cast<std::uint32_t>(i);  // offsets move mod 2^32 (exact: in range)
  for (const Step& s : task.steps) {
    std::uint32_t lanes[kMaxDims];
    for (int r = 0; r < kMaxDims; ++r)
      lanes[r] = s.base[r] + index * s.step[r];
    write_offsets(args, s.arg, lanes);
  }
  for (const Indexed& x : task.indexed) {
    const std::int32_t entry = x.entries[i * x.stride];
    const __int128 at = static_cast<__int128>(x.offset) + static_cast<__int128>(x.scale) * entry;
    if (at < 0 || at > x.limit) [[unlikely]]
      return false;
    std::uint32_t lanes[kMaxDims];
    const auto units = static_cast<std::uint32_t>(at);
    for (int r = 0; r < kMaxDims; ++r)
      lanes[r] = x.base[r] + units * x.unit[r];
    write_offsets(args, x.arg, lanes);
  }
  return true;
}

// Iteration i's scalars of task `at`.
[[gnu::always_inline]] inline void PatternLoop::move_scalars(int at, std::int64_t i) {
  const std::vector<TaskPattern::Scalar>& scalars =
      pattern_->tasks_[static_cast<std::size_t>(at)].scalars;
  Args& args = tasks_[static_cast<std::size_t>(at)].args;
  // A walk to the list's end, not to its size() (a division by the 40-byte element).
  std::size_t k = 0;
  for (const TaskPattern::Scalar& scalar : scalars)
    args.scalars_[k++] = TaskPattern::scalar_at(scalar, i);
}

// Inline in its one caller (OrchestratorCore::submit_pattern_iteration): a call and its frame a
// trusted task less.
[[gnu::always_inline]] inline bool PatternLoop::move_trusted(int at, std::int64_t i) {
  Task& task = tasks_[static_cast<std::size_t>(at)];
  Args& args = task.args;
  if (!move_offsets(task, i)) [[unlikely]]
    return false;  // iterate's plain route (it moves this task again)
  constexpr Tensor::FieldOffsets fields = Tensor::field_offsets();
  for (const Ref& ref : task.refs) {
    const Tensor& source = outputs_[static_cast<std::size_t>(ref.task)][ref.output];
    auto* const slot =
        reinterpret_cast<unsigned char*>(&args.tensor_storage_[static_cast<std::size_t>(ref.arg)]);
    if (ref.ndims == 0) {
      std::memcpy(slot, &source, sizeof(Tensor));
    } else {
      if (!ref.kept_valid) [[unlikely]]
        return false;
      // The kept view with the output's buffer and creator (Tensor::narrow writes only the box).
      const void* const base = source.buffer();
      const TaskId owner = source.producer();
      std::memcpy(slot, ref.kept, sizeof(Tensor));
      std::memcpy(slot + fields.base, &base, sizeof(base));
      std::memcpy(slot + fields.owner, &owner, sizeof(owner));
    }
    args.created_[static_cast<std::size_t>(ref.arg)] = source.producer().valid();
  }
  move_scalars(at, i);
  return true;
}

}  // namespace tmr::detail::loops
