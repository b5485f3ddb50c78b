#include "core/loops/pattern_loop.hpp"

#include <cstring>
#include <new>

namespace tmr::detail::loops {

namespace {

// A Tensor's storage for view_into.
struct alignas(Tensor) TensorRoom {
  unsigned char bytes[sizeof(Tensor)];
  const Tensor& tensor() const { return *std::launder(reinterpret_cast<const Tensor*>(bytes)); }
};

bool in_range(__int128 x) {
  return x >= 0 && x <= 0xffffffffu;
}

// A stand-in for an output reference until its iteration names the output.
const Tensor& stand_in() {
  static float cell = 0;
  static const Tensor t = Tensor::wrap(&cell, Shape{1}, DType::f32);
  return t;
}

bool overlaps(const Tensor& a, const Tensor& b) {
  const auto* x = static_cast<const unsigned char*>(a.buffer());
  const auto* y = static_cast<const unsigned char*>(b.buffer());
  return x < y + b.buffer_bytes() && y < x + a.buffer_bytes();
}

}  // namespace

PatternRoute PatternLoop::prepare(const TaskPattern& pattern, std::int64_t n) {
  using Kind = TaskPattern::Kind;
  pattern_ = &pattern;
  n_ = n;
  // The storage of the loop before (OrchestratorCore keeps one PatternLoop a run): each task's
  // lists keep their room, so a pattern that repeats (a tile of paged attention) allocates
  // nothing here.
  const std::size_t count = pattern.tasks_.size();
  table_rows_.clear();
  if (outputs_room_ < count) {
    outputs_.reset(new TaskOutputs[count]);
    outputs_room_ = count;
  }
  if (tasks_.size() > count)
    tasks_.erase(tasks_.begin() + static_cast<std::ptrdiff_t>(count), tasks_.end());
  tasks_.reserve(count);  // Task holds an Args: no regrowth copies
  while (tasks_.size() < count)
    tasks_.emplace_back();
  for (Task& task : tasks_) {
    task.args = Args();
    task.steps.clear();
    task.indexed.clear();
    task.refs.clear();
    task.indexed_bits = 0;
    task.ref_bits = 0;
    task.trust = Trust();
  }
  // The tables: read-only in the loop, every entry the loop reads inside them.
  for (const TaskPattern::Task& task : pattern.tasks_) {
    for (const TaskPattern::Access& a : task.accesses) {
      if (a.kind != Kind::indexed) continue;
      const Tensor& table = a.table;
      if (table.dtype() != DType::i32 || table.ndims() != a.row_n + 1 ||
          static_cast<std::uint64_t>(n) > table.dim(a.row_n)) {
        return PatternRoute::out_of_range;  // get_tensor_data names it where the plain loop reads
      }
      Shape ones, at;
      for (int d = 0; d < a.row_n; ++d) {
        if (a.row[d] >= table.dim(d)) return PatternRoute::out_of_range;
        ones.push_back(1);
        at.push_back(a.row[d]);
      }
      ones.push_back(static_cast<std::uint32_t>(n));
      at.push_back(0);
      for (const TaskPattern::Task& writer : pattern.tasks_) {
        for (const TaskPattern::Access& w : writer.accesses) {
          const bool writes = w.tag == ArgTag::inout || w.tag == ArgTag::out_existing;
          if (writes && w.tensor.valid() && overlaps(w.tensor, table))
            return PatternRoute::table_written;
        }
      }
      table_rows_.push_back(table.view(ones, at));
    }
  }
  for (std::size_t t = 0; t < count; ++t) {
    const TaskPattern::Task& declared = pattern.tasks_[t];
    Task& task = tasks_[t];
    task.kernels = pattern.kernels(static_cast<int>(t));
    Args& args = task.args;
    for (std::size_t k = 0; k < declared.accesses.size(); ++k) {
      const TaskPattern::Access& a = declared.accesses[k];
      const int arg = static_cast<int>(k);
      switch (a.kind) {
        case Kind::whole:
          args.add(a.tag, a.tensor);
          break;
        case Kind::out:
          args.out(a.spec);
          break;
        case Kind::output:
        case Kind::output_view: {
          args.add(a.tag, stand_in());
          Ref ref;
          ref.arg = arg;
          ref.task = a.task;
          ref.output = a.output;
          ref.ndims = a.kind == Kind::output ? 0 : a.ndims;
          for (int d = 0; d < ref.ndims; ++d) {
            ref.shape[d] = a.shape[d];
            ref.offsets[d] = static_cast<std::uint32_t>(a.offset[d]);
          }
          task.refs.push_back(ref);
          task.ref_bits |= 1u << arg;
          break;
        }
        case Kind::view: {
          // Iterations 0, 1 and n - 1: both ends in range and the offsets affine put every
          // iteration in range (AffineLoop::prepare's argument).
          const std::int64_t at[3] = {0, n > 1 ? 1 : 0, n - 1};
          TensorRoom room[3];
          for (int s = 0; s < 3; ++s) {
            std::uint32_t offsets[kMaxDims];
            for (int d = 0; d < a.ndims; ++d) {
              const __int128 x =
                  static_cast<__int128>(a.offset[d]) + static_cast<__int128>(a.step[d]) * at[s];
              if (!in_range(x)) return PatternRoute::out_of_range;
              offsets[d] = static_cast<std::uint32_t>(x);
            }
            if (!a.tensor.view_into(room[s].bytes, a.shape, a.ndims, offsets, a.ndims))
              return PatternRoute::out_of_range;
          }
          Step step;
          step.arg = arg;
          if (!linear(room[0].tensor(), room[1].tensor(), room[2].tensor(), n - 1, step.step))
            return PatternRoute::not_affine;
          box_offsets(room[0].tensor(), step.base);
          args.add(a.tag, room[0].tensor());
          bool moves = false;
          for (const std::uint32_t s : step.step)
            moves |= s != 0;
          if (moves) task.steps.push_back(step);
          break;
        }
        case Kind::indexed: {
          const std::uint32_t extent = a.tensor.dim(a.dim);
          if (a.shape[a.dim] > extent) return PatternRoute::out_of_range;
          Indexed ix;
          ix.arg = arg;
          ix.offset = a.offset[a.dim];
          ix.scale = a.scale;
          ix.limit = extent - a.shape[a.dim];
          const std::int64_t at[3] = {0, ix.limit > 0 ? 1 : 0, ix.limit};
          TensorRoom room[3];
          for (int s = 0; s < 3; ++s) {
            std::uint32_t offsets[kMaxDims];
            for (int d = 0; d < a.ndims; ++d)
              offsets[d] = static_cast<std::uint32_t>(a.offset[d]);
            offsets[a.dim] = static_cast<std::uint32_t>(at[s]);
            if (!a.tensor.view_into(room[s].bytes, a.shape, a.ndims, offsets, a.ndims))
              return PatternRoute::out_of_range;
          }
          if (!linear(room[0].tensor(), room[1].tensor(), room[2].tensor(), ix.limit, ix.unit))
            return PatternRoute::not_affine;
          box_offsets(room[0].tensor(), ix.base);
          Shape at_entry;
          for (int d = 0; d < a.row_n; ++d)
            at_entry.push_back(a.row[d]);
          at_entry.push_back(0);
          ix.entries = static_cast<const std::int32_t*>(a.table.element_address(at_entry));
          ix.stride = a.table.stride(a.row_n);
          args.add(a.tag, room[0].tensor());
          task.indexed.push_back(ix);
          task.indexed_bits |= 1u << arg;
          break;
        }
      }
    }
    for (std::size_t s = 0; s < declared.scalars.size(); ++s)
      args.scalar_bits(0);  // each iteration writes its value
  }
  // The references' kept views: the view of the referenced output's placeholder (its spec), for
  // move_trusted. A reference to a later task or a missing output is the pattern's recorded
  // mistake (parallel_for refused it), so the output is there.
  for (Task& task : tasks_) {
    for (Ref& ref : task.refs) {
      if (ref.ndims == 0) continue;
      const Args& source = tasks_[static_cast<std::size_t>(ref.task)].args;
      int seen = 0;
      for (int k = 0; k < source.tensor_count(); ++k) {
        if ((source.out_mask() >> k & 1u) == 0) continue;
        if (seen++ != ref.output) continue;
        ref.kept_valid =
            source.tensor(k).view_into(ref.kept, ref.shape, ref.ndims, ref.offsets, ref.ndims);
        break;
      }
    }
  }
  return PatternRoute::compared;
}

bool PatternLoop::checked(int task, std::int64_t i, const WidePass& pass) {
  Trust& t = tasks_[static_cast<std::size_t>(task)].trust;
  if (pass.key.plan == nullptr) {
    t.passes = 0;
    return false;
  }
  // The next pattern iteration under the same analysis: at the same position in the owner's next
  // iteration, or one iteration's tasks further in the same owner iteration.
  const bool next =
      t.passes > 0 && i == t.last_i + 1 && pass.key.first_analysed == t.last.key.first_analysed;
  const bool same = next && pass.key.plan == t.last.key.plan &&
                    pass.iteration == t.last.iteration + 1 && pass.position == t.last.position;
  const bool run =
      next && pass.iteration == t.last.iteration && pass.position == t.last.position + stride();
  bool verified = false;
  if ((same || run) && (t.passes == 1 || same == t.same)) {
    if (t.passes == 1) {
      t.same = same;
      t.first = t.last.position;
      t.run_ok = false;
      verified = run;
    }
    ++t.passes;
  } else {
    t.passes = 1;
  }
  t.last = pass;
  t.last_i = i;
  return verified;
}

void PatternLoop::iterate(Orchestrator& o, std::int64_t i, Submit submit, void* context, int from) {
  for (auto t = static_cast<std::size_t>(from); t < tasks_.size(); ++t) {
    Task& task = tasks_[t];
    Args& args = task.args;
    if (!move_offsets(task, i)) [[unlikely]] {
      // The plain loop's arguments: its read sees the same entry and its view names the error.
      const int at = static_cast<int>(t);
      task.trust.passes = 0;  // not the moved arguments: verified again from the next iteration
      ::new (&outputs_[t])
          TaskOutputs(o.submit(task.kernels, pattern_->args(i, at, outputs_.get(), o)));
      if (!outputs_[t].valid()) return;
      continue;
    }
    for (const Ref& ref : task.refs) {
      const Tensor& source = outputs_[static_cast<std::size_t>(ref.task)][ref.output];
      void* const slot = &args.tensor_storage_[static_cast<std::size_t>(ref.arg)];
      if (ref.ndims == 0) {
        ::new (slot) Tensor(source);
      } else if (!source.view_into(slot, ref.shape, ref.ndims, ref.offsets, ref.ndims)) {
        source.view_error(ref.shape, ref.ndims, ref.offsets, ref.ndims);
      }
      args.created_[static_cast<std::size_t>(ref.arg)] = source.producer().valid();
    }
    move_scalars(static_cast<int>(t), i);
    // Built in its place (no copy of the outputs).
    ::new (&outputs_[t])
        TaskOutputs(submit(context, *this, static_cast<int>(t), i, task.kernels, args));
    if (!outputs_[t].valid()) return;
  }
}

}  // namespace tmr::detail::loops
