// A declarative parallel_for body: the tasks of one iteration, their arguments affine in the index.
#pragma once

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "tmr/args.hpp"
#include "tmr/kernel.hpp"
#include "tmr/shape.hpp"
#include "tmr/tensor.hpp"

namespace tmr {

struct MixKernels;
class Orchestrator;
class TaskOutputs;
namespace detail::loops {
class PatternLoop;  // builds a pattern's iterations in place (src/core/loops/pattern_loop.hpp)
}

// What Orchestrator::parallel_for(n, pattern) submits in iteration i: the pattern's tasks in
// order (the constructor's kernels, then each then()'s), each with the arguments declared after
// its kernels. A view access names its tensor's view(shape, offsets + i * step) (offsets and step
// per logical dimension; a step may be zero or negative); a whole-tensor access names the tensor
// itself; out(spec) a fresh output; in_output an output of an earlier task of the same
// iteration (whole or a fixed view of it); in_indexed a view whose offset in one dimension is
// read from a host i32 table; a scalar is base + i * step as 64-bit bits (wrapping) or, with
// scalar_if, one value at one index and another elsewhere. The loop is exactly
//     for (std::int64_t i = 0; i < n; ++i) pattern.submit_iteration(o, i);
// (for a one-task pattern of existing tensors and affine scalars that is
//     o.submit(pattern.kernels(), pattern.args(i))),
// with the same dependences, results and errors (docs/design.md, "The pattern form").
// Mistakes (a null tensor, more than kMaxTensorArgs tensors or kMaxScalarArgs scalars, a tensor
// after a scalar, offsets and steps of different lengths, a reference to a task or output not
// declared before it, a bad index dimension) are recorded, the first one kept, and reported by
// parallel_for as Error(invalid_args) when it has iterations to run.
class TaskPattern {
 public:
  using Steps = std::initializer_list<std::int64_t>;
  explicit TaskPattern(const MixKernels& kernels);
  // Starts the iteration's next task: later arguments are its own.
  TaskPattern& then(const MixKernels& kernels);

  // The whole tensor in every iteration.
  TaskPattern& in(const Tensor& t) { return add(ArgTag::in, t, nullptr, {}, {}); }
  TaskPattern& inout(const Tensor& t) { return add(ArgTag::inout, t, nullptr, {}, {}); }
  TaskPattern& out_existing(const Tensor& t) {
    return add(ArgTag::out_existing, t, nullptr, {}, {});
  }
  TaskPattern& no_dep(const Tensor& t) { return add(ArgTag::no_dep, t, nullptr, {}, {}); }
  // t.view(shape, offsets + i * step) in iteration i.
  TaskPattern& in(const Tensor& t, const Shape& shape, const Shape& offsets, Steps step) {
    return add(ArgTag::in, t, &shape, offsets, step);
  }
  TaskPattern& inout(const Tensor& t, const Shape& shape, const Shape& offsets, Steps step) {
    return add(ArgTag::inout, t, &shape, offsets, step);
  }
  TaskPattern& out_existing(const Tensor& t, const Shape& shape, const Shape& offsets, Steps step) {
    return add(ArgTag::out_existing, t, &shape, offsets, step);
  }
  TaskPattern& no_dep(const Tensor& t, const Shape& shape, const Shape& offsets, Steps step) {
    return add(ArgTag::no_dep, t, &shape, offsets, step);
  }
  // A fresh output (Args::out(spec)): a new buffer in every iteration.
  TaskPattern& out(const TensorSpec& spec);
  // Fresh output `output` (counted among its out() arguments) of task `task` of the same
  // iteration (0 is the constructor's kernels; it must come before the current task), read
  // whole, or as its fixed view(shape, offsets).
  TaskPattern& in_output(int task, int output) {
    return add_output(task, output, nullptr, Shape{});
  }
  TaskPattern& in_output(int task, int output, const Shape& shape, const Shape& offsets) {
    return add_output(task, output, &shape, offsets);
  }
  // t.view(shape, o) read in iteration i, where o is `offsets` but o[dim] = offsets[dim] +
  // table[row..., i] * scale: `table` an i32 tensor of row.size() + 1 dimensions, read as the
  // plain loop reads it with get_tensor_data (which waits for the table's producers). An entry
  // that puts the view outside [0, 2^32) or outside `t` is that iteration's error.
  TaskPattern& in_indexed(const Tensor& t, const Shape& shape, const Shape& offsets, int dim,
                          const Tensor& table, const Shape& row, std::int64_t scale);
  // base_bits + i * step_bits in iteration i.
  TaskPattern& scalar_bits(std::uint64_t base_bits, std::uint64_t step_bits = 0);
  // The same value in every iteration, as Args::scalar.
  template <class T>
  TaskPattern& scalar(T value) {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8);
    std::uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof(T));
    return scalar_bits(bits);
  }
  // bits_at in iteration `index`, bits_otherwise in every other one (a first or last flag).
  TaskPattern& scalar_if(std::int64_t index, std::uint64_t bits_at, std::uint64_t bits_otherwise);

  int task_count() const { return static_cast<int>(tasks_.size()); }
  MixKernels kernels(int task = 0) const;
  // Iteration i's arguments of a one-task pattern of existing tensors (no in_output, no
  // in_indexed). Throws Error(invalid_args) when an offset of iteration i lies outside [0, 2^32);
  // a view that does not fit its tensor throws view()'s Error, as Args::in(t, shape, offsets)
  // does. A recorded mistake is recorded in the result (its submit reports it).
  Args args(std::int64_t i) const;
  // Iteration i's arguments of task `task`: `earlier` holds the outputs of the iteration's tasks
  // before it; an in_indexed entry is read with o.get_tensor_data.
  Args args(std::int64_t i, int task, const TaskOutputs* earlier, Orchestrator& o) const;
  // The plain loop's iteration i: each task submitted in order with args(i, task, ...); the
  // iteration ends early when a submit returns no task (the run has failed).
  void submit_iteration(Orchestrator& o, std::int64_t i) const;
  // Whether the pattern is the first version's (one task, existing tensors, affine scalars).
  bool single_task() const { return single_; }
  // The current (last declared) task's counts.
  int tensor_count() const { return static_cast<int>(tasks_.back().accesses.size()); }
  int scalar_count() const { return static_cast<int>(tasks_.back().scalars.size()); }
  bool has_error() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  friend class detail::loops::PatternLoop;
  enum class Kind : std::uint8_t { whole, view, out, output, output_view, indexed };
  struct Access {
    Kind kind = Kind::whole;
    ArgTag tag = ArgTag::in;
    Tensor tensor;
    int ndims = 0;
    std::uint32_t shape[kMaxDims] = {};
    std::int64_t offset[kMaxDims] = {};
    std::int64_t step[kMaxDims] = {};
    TensorSpec spec;  // Kind::out
    int task = 0;     // Kind::output and output_view: the earlier task
    int output = 0;   // and its output
    int dim = 0;      // Kind::indexed: the dimension whose offset the table gives
    Tensor table;     // Kind::indexed
    int row_n = 0;    // the table's leading indices
    std::uint32_t row[kMaxDims] = {};
    std::int64_t scale = 0;
  };
  struct Scalar {
    std::uint64_t base = 0;
    std::uint64_t step = 0;
    bool conditional = false;  // scalar_if: `at` in iteration `index`, `base` elsewhere
    std::int64_t index = 0;
    std::uint64_t at = 0;
  };
  struct Task {
    KernelId kernels[3] = {kNoKernel, kNoKernel, kNoKernel};
    std::vector<Access> accesses;
    std::vector<Scalar> scalars;
    int outs = 0;
  };
  TaskPattern& add(ArgTag tag, const Tensor& t, const Shape* shape, const Shape& offsets,
                   Steps step);
  TaskPattern& add_output(int task, int output, const Shape* shape, const Shape& offsets);
  // The current task's next tensor argument (`tag`, for the message) may be added: room, and no
  // scalar before it.
  bool tensor_room(std::string_view tag);
  // The table entries an iteration of submit_iteration has read (when no task of the pattern
  // writes a table, a second read of one entry in the iteration sees the first one's value).
  struct ReadCache {
    static constexpr int kSize = 4;
    const Access* read[kSize] = {};
    std::int32_t value[kSize] = {};
    int count = 0;
  };
  // args(i, task, earlier, o), its entries through `cache` when not null.
  Args build(std::int64_t i, int task, const TaskOutputs* earlier, Orchestrator& o,
             ReadCache* cache) const;
  // Whether no task writes (inout, out_existing) a buffer an in_indexed table lies in.
  bool tables_read_only() const;
  static std::uint64_t scalar_at(const Scalar& s, std::int64_t i) {
    if (s.conditional) return i == s.index ? s.at : s.base;
    return s.base + s.step * static_cast<std::uint64_t>(i);
  }
  void set_error(std::string message);

  std::vector<Task> tasks_;
  bool single_ = true;
  std::string error_;
};

}  // namespace tmr
