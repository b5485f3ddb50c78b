#include "tmr/task_pattern.hpp"

#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include "tmr/error.hpp"
#include "tmr/orchestrator.hpp"

namespace tmr {

namespace {

// offset + step * i as a view offset, or Error(invalid_args) naming iteration i's argument k.
std::uint32_t offset_at(std::int64_t offset, std::int64_t step, std::int64_t i, std::size_t k,
                        int d) {
  // Exact in 128 bits for any index the loop runs; outside [0, 2^32) the offset has no view.
  const __int128 at = static_cast<__int128>(offset) + static_cast<__int128>(step) * i;
  if (at < 0 || at > std::numeric_limits<std::uint32_t>::max()) {
    throw Error(ErrorCode::invalid_args,
                "TaskPattern: tensor argument " + std::to_string(k) + " in iteration " +
                    std::to_string(i) + " has an offset " +
                    (at < 0 ? "below 0" : "of 2^32 or more") + " in dimension " +
                    std::to_string(d) + ", outside [0, 2^32)");
  }
  return static_cast<std::uint32_t>(at);
}

// What a view with a shape of a different length than its offsets gets told, or "" when they
// agree.
std::string shape_mismatch(const Shape& shape, const Shape& offsets) {
  if (shape.size() == offsets.size()) return {};
  return " has a shape of " + std::to_string(shape.size()) + " dimensions but " +
         std::to_string(offsets.size()) + " offsets";
}

}  // namespace

TaskPattern::TaskPattern(const MixKernels& kernels) {
  tasks_.reserve(4);  // one allocation for up to four tasks (paged attention's block loop)
  then(kernels);
}

TaskPattern& TaskPattern::then(const MixKernels& kernels) {
  if (!tasks_.empty()) single_ = false;
  Task task;
  task.kernels[0] = kernels.aic;
  task.kernels[1] = kernels.aiv0;
  task.kernels[2] = kernels.aiv1;
  task.accesses.reserve(8);
  tasks_.push_back(std::move(task));
  return *this;
}

MixKernels TaskPattern::kernels(int task) const {
  const Task& t = tasks_.at(static_cast<std::size_t>(task));
  return {t.kernels[0], t.kernels[1], t.kernels[2]};
}

void TaskPattern::set_error(std::string message) {
  if (error_.empty()) error_ = "TaskPattern: " + std::move(message);
}

bool TaskPattern::tensor_room(std::string_view tag) {
  const Task& task = tasks_.back();
  const auto what = [&] {
    return "tensor argument " + std::to_string(task.accesses.size()) + " (" + std::string(tag) +
           ")";
  };
  if (task.accesses.size() >= static_cast<std::size_t>(kMaxTensorArgs)) {
    set_error(what() + " is one more than the " + std::to_string(kMaxTensorArgs) + " a task takes");
    return false;
  }
  if (!task.scalars.empty()) {
    set_error(what() + " follows a scalar; add every tensor before the scalars");
    return false;
  }
  return true;
}

TaskPattern& TaskPattern::add(ArgTag tag, const Tensor& t, const Shape* shape, const Shape& offsets,
                              Steps step) {
  if (has_error()) return *this;  // the first mistake is kept, as Args keeps it
  if (!tensor_room(arg_tag_name(tag))) return *this;
  const auto what = [&] {
    return "tensor argument " + std::to_string(tasks_.back().accesses.size()) + " (" +
           std::string(arg_tag_name(tag)) + ")";
  };
  if (!t.valid()) {
    set_error(what() + " is a null tensor");
    return *this;
  }
  if (shape != nullptr) {
    if (step.size() != static_cast<std::size_t>(offsets.size())) {
      set_error(what() + " has " + std::to_string(offsets.size()) + " offsets but " +
                std::to_string(step.size()) + " steps; give one step per offset");
      return *this;
    }
    if (shape->size() != offsets.size()) {
      set_error(what() + shape_mismatch(*shape, offsets));
      return *this;
    }
  }
  // Built in place (no Access copied and destroyed: a pattern declared per tile pays this).
  Access& access = tasks_.back().accesses.emplace_back();
  access.tag = tag;
  access.tensor = t;
  if (shape != nullptr) {
    access.kind = Kind::view;
    access.ndims = shape->size();
    int d = 0;
    for (const std::int64_t s : step) {
      access.shape[d] = (*shape)[d];
      access.offset[d] = offsets[d];
      access.step[d] = s;
      ++d;
    }
  }
  return *this;
}

TaskPattern& TaskPattern::out(const TensorSpec& spec) {
  if (has_error()) return *this;
  if (!tensor_room("out")) return *this;
  Access& access = tasks_.back().accesses.emplace_back();
  access.kind = Kind::out;
  access.tag = ArgTag::out;
  access.spec = spec;
  ++tasks_.back().outs;
  single_ = false;
  return *this;
}

TaskPattern& TaskPattern::add_output(int task, int output, const Shape* shape,
                                     const Shape& offsets) {
  if (has_error()) return *this;
  if (!tensor_room("in_output")) return *this;
  const auto what = [&] {
    return "tensor argument " + std::to_string(tasks_.back().accesses.size()) + " (in_output)";
  };
  const int current = task_count() - 1;
  if (task < 0 || task >= current) {
    set_error(what() + " names task " + std::to_string(task) + ", not one before task " +
              std::to_string(current) + " of the iteration");
    return *this;
  }
  const int outs = tasks_[static_cast<std::size_t>(task)].outs;
  if (output < 0 || output >= outs) {
    set_error(what() + " names output " + std::to_string(output) + " of task " +
              std::to_string(task) + ", which has " + std::to_string(outs));
    return *this;
  }
  if (shape != nullptr && shape->size() != offsets.size()) {
    set_error(what() + shape_mismatch(*shape, offsets));
    return *this;
  }
  Access& access = tasks_.back().accesses.emplace_back();
  access.kind = shape == nullptr ? Kind::output : Kind::output_view;
  access.task = task;
  access.output = output;
  if (shape != nullptr) {
    access.ndims = shape->size();
    for (int d = 0; d < access.ndims; ++d) {
      access.shape[d] = (*shape)[d];
      access.offset[d] = offsets[d];
    }
  }
  single_ = false;
  return *this;
}

TaskPattern& TaskPattern::in_indexed(const Tensor& t, const Shape& shape, const Shape& offsets,
                                     int dim, const Tensor& table, const Shape& row,
                                     std::int64_t scale) {
  if (has_error()) return *this;
  if (!tensor_room("in_indexed")) return *this;
  const auto what = [&] {
    return "tensor argument " + std::to_string(tasks_.back().accesses.size()) + " (in_indexed)";
  };
  if (!t.valid() || !table.valid()) {
    set_error(what() + " has a null " + (t.valid() ? "table" : "tensor"));
    return *this;
  }
  if (const std::string mismatch = shape_mismatch(shape, offsets); !mismatch.empty()) {
    set_error(what() + mismatch);
    return *this;
  }
  if (dim < 0 || dim >= shape.size()) {
    set_error(what() + " indexes dimension " + std::to_string(dim) + " of a " +
              std::to_string(shape.size()) + "-dimensional view");
    return *this;
  }
  if (row.size() >= kMaxDims) {
    set_error(what() + " has " + std::to_string(row.size()) + " table row indices; at most " +
              std::to_string(kMaxDims - 1));
    return *this;
  }
  Access& access = tasks_.back().accesses.emplace_back();
  access.kind = Kind::indexed;
  access.tag = ArgTag::in;
  access.tensor = t;
  access.ndims = shape.size();
  for (int d = 0; d < access.ndims; ++d) {
    access.shape[d] = shape[d];
    access.offset[d] = offsets[d];
  }
  access.dim = dim;
  access.table = table;
  access.row_n = row.size();
  for (int d = 0; d < access.row_n; ++d)
    access.row[d] = row[d];
  access.scale = scale;
  single_ = false;
  return *this;
}

TaskPattern& TaskPattern::scalar_bits(std::uint64_t base_bits, std::uint64_t step_bits) {
  if (has_error()) return *this;
  if (tasks_.back().scalars.size() >= static_cast<std::size_t>(kMaxScalarArgs)) {
    set_error("scalar " + std::to_string(tasks_.back().scalars.size()) + " is one more than the " +
              std::to_string(kMaxScalarArgs) + " a task takes");
    return *this;
  }
  tasks_.back().scalars.push_back({base_bits, step_bits});
  return *this;
}

TaskPattern& TaskPattern::scalar_if(std::int64_t index, std::uint64_t bits_at,
                                    std::uint64_t bits_otherwise) {
  if (has_error()) return *this;
  scalar_bits(bits_otherwise);
  if (has_error()) return *this;
  Scalar& s = tasks_.back().scalars.back();
  s.conditional = true;
  s.index = index;
  s.at = bits_at;
  single_ = false;
  return *this;
}

Args TaskPattern::args(std::int64_t i) const {
  if (has_error()) throw Error(ErrorCode::invalid_args, error_);
  if (!single_) {
    throw Error(ErrorCode::invalid_args,
                "TaskPattern::args(i) builds a one-task pattern of existing tensors; use "
                "args(i, task, earlier, orchestrator) or submit_iteration");
  }
  Args args;
  const Task& task = tasks_.front();
  for (std::size_t k = 0; k < task.accesses.size(); ++k) {
    const Access& a = task.accesses[k];
    if (a.kind == Kind::whole) {
      args.add(a.tag, a.tensor);
      continue;
    }
    std::uint32_t offsets[kMaxDims];
    for (int d = 0; d < a.ndims; ++d)
      offsets[d] = offset_at(a.offset[d], a.step[d], i, k, d);
    args.add_view(a.tag, a.tensor, a.shape, a.ndims, offsets, a.ndims);
  }
  for (const Scalar& s : task.scalars)
    args.scalar_bits(scalar_at(s, i));
  return args;
}

Args TaskPattern::args(std::int64_t i, int task_index, const TaskOutputs* earlier,
                       Orchestrator& o) const {
  return build(i, task_index, earlier, o, nullptr);
}

bool TaskPattern::tables_read_only() const {
  // The tables first (few), then one pass over the writers: once per iteration of the plain
  // loop, so no pair search over every access.
  const unsigned char* table[ReadCache::kSize];
  std::uint64_t bytes[ReadCache::kSize];
  int tables = 0;
  for (const Task& task : tasks_) {
    for (const Access& a : task.accesses) {
      if (a.kind != Kind::indexed) continue;
      if (tables == ReadCache::kSize) return false;  // more than the cache holds: no cache
      table[tables] = static_cast<const unsigned char*>(a.table.buffer());
      bytes[tables++] = a.table.buffer_bytes();
    }
  }
  if (tables == 0) return true;
  for (const Task& task : tasks_) {
    for (const Access& w : task.accesses) {
      if (w.tag != ArgTag::inout && w.tag != ArgTag::out_existing) continue;
      const auto* const x = static_cast<const unsigned char*>(w.tensor.buffer());
      for (int k = 0; k < tables; ++k) {
        if (x < table[k] + bytes[k] && table[k] < x + w.tensor.buffer_bytes()) return false;
      }
    }
  }
  return true;
}

Args TaskPattern::build(std::int64_t i, int task_index, const TaskOutputs* earlier, Orchestrator& o,
                        ReadCache* cache) const {
  if (has_error()) throw Error(ErrorCode::invalid_args, error_);
  Args args;
  const Task& task = tasks_.at(static_cast<std::size_t>(task_index));
  for (std::size_t k = 0; k < task.accesses.size(); ++k) {
    const Access& a = task.accesses[k];
    std::uint32_t offsets[kMaxDims];
    switch (a.kind) {
      case Kind::whole:
        args.add(a.tag, a.tensor);
        break;
      case Kind::view:
        for (int d = 0; d < a.ndims; ++d)
          offsets[d] = offset_at(a.offset[d], a.step[d], i, k, d);
        args.add_view(a.tag, a.tensor, a.shape, a.ndims, offsets, a.ndims);
        break;
      case Kind::out:
        args.out(a.spec);
        break;
      case Kind::output:
        args.add(a.tag, earlier[a.task][a.output]);
        break;
      case Kind::output_view:
        for (int d = 0; d < a.ndims; ++d)
          offsets[d] = static_cast<std::uint32_t>(a.offset[d]);
        args.add_view(a.tag, earlier[a.task][a.output], a.shape, a.ndims, offsets, a.ndims);
        break;
      case Kind::indexed: {
        // The same table, row and entry read earlier in the iteration (`cache`: nothing of the
        // pattern writes the table, so it still holds that value).
        int hit = -1;
        for (int c = 0; cache != nullptr && c < cache->count; ++c) {
          const Access& r = *cache->read[c];
          if (std::memcmp(&r.table, &a.table, sizeof(Tensor)) == 0 && r.row_n == a.row_n &&
              std::memcmp(r.row, a.row, sizeof(a.row)) == 0) {
            hit = c;
            break;
          }
        }
        std::int32_t entry = 0;
        if (hit >= 0) {
          entry = cache->value[hit];
        } else {
          Shape element;
          for (int d = 0; d < a.row_n; ++d)
            element.push_back(a.row[d]);
          element.push_back(static_cast<std::uint32_t>(i));
          entry = o.get_tensor_data<std::int32_t>(a.table, element);
          if (cache != nullptr && cache->count < ReadCache::kSize) {
            cache->read[cache->count] = &a;
            cache->value[cache->count++] = entry;
          }
        }
        for (int d = 0; d < a.ndims; ++d)
          offsets[d] = static_cast<std::uint32_t>(a.offset[d]);
        const __int128 at = static_cast<__int128>(a.offset[a.dim]) +
                            static_cast<__int128>(a.scale) * static_cast<__int128>(entry);
        if (at < 0 || at > std::numeric_limits<std::uint32_t>::max()) {
          throw Error(ErrorCode::invalid_args,
                      "TaskPattern: tensor argument " + std::to_string(k) + " in iteration " +
                          std::to_string(i) + ": table entry " + std::to_string(entry) +
                          " gives an offset " + (at < 0 ? "below 0" : "of 2^32 or more") +
                          " in dimension " + std::to_string(a.dim) + ", outside [0, 2^32)");
        }
        offsets[a.dim] = static_cast<std::uint32_t>(at);
        args.add_view(a.tag, a.tensor, a.shape, a.ndims, offsets, a.ndims);
        break;
      }
    }
  }
  for (const Scalar& s : task.scalars)
    args.scalar_bits(scalar_at(s, i));
  return args;
}

void TaskPattern::submit_iteration(Orchestrator& o, std::int64_t i) const {
  // The outputs on the stack for a few tasks (default-initialised: nothing zeroed), each built in
  // its place by the submit.
  constexpr std::size_t kLocal = 4;
  TaskOutputs local[kLocal];
  std::unique_ptr<TaskOutputs[]> more;
  TaskOutputs* outputs = local;
  if (tasks_.size() > kLocal) {
    more.reset(new TaskOutputs[tasks_.size()]);
    outputs = more.get();
  }
  ReadCache cache;
  ReadCache* const reads = tables_read_only() ? &cache : nullptr;
  for (std::size_t t = 0; t < tasks_.size(); ++t) {
    const int index = static_cast<int>(t);
    const Task& task = tasks_[t];
    ::new (&outputs[t]) TaskOutputs(o.submit({task.kernels[0], task.kernels[1], task.kernels[2]},
                                             build(i, index, outputs, o, reads)));
    if (!outputs[t].valid()) return;
  }
}

}  // namespace tmr
