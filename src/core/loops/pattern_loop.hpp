// The pattern form for a pattern of several tasks an iteration, fresh outputs, references to an
// earlier task's outputs, views indexed by a host table or conditional scalars
// (Orchestrator::parallel_for(n, TaskPattern), docs/design.md "The pattern form"): each task's
// Args built once and moved in place per iteration, so no user body runs and no view is built
// but the references' and the indexed ones'. The submits then take the public path (the loop's
// replay compare decides what they cost); iteration i submits what TaskPattern::submit_iteration
// would submit, in the same order, and throws what it would throw.
#pragma once

#include <cstdint>
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
  using Submit = TaskOutputs (*)(void* context, PatternLoop& loop, int task,
                                 const MixKernels& kernels, const Args& args);
  // Iteration i: what pattern.submit_iteration(o, i) submits, each moved task through `submit`.
  // A task whose table entry puts its view out of range takes the plain loop's arguments and
  // the public submit (which names the error), and its trust starts again.
  void iterate(Orchestrator& o, std::int64_t i, Submit submit, void* context);

  // ---- trust, per task of the pattern (the compare-free wide submit, docs/design.md)
  // Two consecutive iterations' submits of `task` passed the wide compare under one plan of one
  // analysis (LoopDriver::wide_pass): its later iterations match by construction.
  bool trusted(int task) const { return tasks_[static_cast<std::size_t>(task)].passes >= 2; }
  const TrustKey& key(int task) const { return tasks_[static_cast<std::size_t>(task)].key; }
  // After a submit of `task` that was not trusted: `key` is LoopDriver::wide_pass()'s answer.
  void checked(int task, const TrustKey& key) {
    Task& t = tasks_[static_cast<std::size_t>(task)];
    if (key.plan == nullptr || !(key == t.key)) {
      t.passes = key.plan == nullptr ? 0 : 1;
      t.key = key;
      return;
    }
    ++t.passes;
  }
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
  };
  struct Task {
    MixKernels kernels;
    Args args;
    std::vector<Step> steps;
    std::vector<Indexed> indexed;
    std::vector<Ref> refs;
    std::uint32_t indexed_bits = 0;
    std::uint32_t ref_bits = 0;
    TrustKey key;
    int passes = 0;
  };
  static void write_offsets(Args& args, int arg, const std::uint32_t* lanes);
  const TaskPattern* pattern_ = nullptr;
  std::vector<Task> tasks_;
  std::unique_ptr<TaskOutputs[]> outputs_;  // default-initialised: nothing zeroed
  std::vector<Tensor> table_rows_;
};

}  // namespace tmr::detail::loops
