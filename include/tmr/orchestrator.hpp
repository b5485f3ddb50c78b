// The orchestration API: what a user's sequential orchestration code calls to build the graph.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "tmr/args.hpp"
#include "tmr/error.hpp"
#include "tmr/kernel.hpp"
#include "tmr/task_pattern.hpp"
#include "tmr/tensor.hpp"

namespace tmr {

namespace detail {
class OrchestratorCore;

// What get/set_tensor_data<T> asked for: T's size and, when T is an element type, its dtype.
struct ElementRequest {
  std::size_t size = 0;
  bool is_element_type = false;
  DType dtype = DType::f32;
};
template <class T>
constexpr ElementRequest element_request() {
  constexpr bool known = std::is_same_v<T, float> || std::is_same_v<T, f16> ||
                         std::is_same_v<T, bf16> || std::is_same_v<T, std::int32_t> ||
                         std::is_same_v<T, std::int8_t> || std::is_same_v<T, std::uint8_t>;
  if constexpr (known) {
    return {sizeof(T), true, dtype_of<T>()};
  } else {
    return {sizeof(T), false, DType::f32};
  }
}
}  // namespace detail

// A task runs up to three kernels on one cluster: the AIC, the first AIV, the second AIV.
// One kernel: an AIC or AIV task. Two or more: a MIX task; all its kernels start together.
struct MixKernels {
  KernelId aic = kNoKernel;
  KernelId aiv0 = kNoKernel;
  KernelId aiv1 = kNoKernel;
};

// The fresh outputs of one submit, in the order of the `out` arguments.
class TaskOutputs {
 public:
  TaskOutputs() = default;
  // Copies only the tensors in use (the storage holds up to kMaxTensorArgs).
  TaskOutputs(const TaskOutputs& other) : count_(other.count_), task_(other.task_) {
    std::memcpy(storage_.data(), other.storage_.data(),
                sizeof(TensorBytes) * static_cast<std::size_t>(count_));
  }
  TaskOutputs& operator=(const TaskOutputs& other) {
    count_ = other.count_;
    task_ = other.task_;
    std::memcpy(storage_.data(), other.storage_.data(),
                sizeof(TensorBytes) * static_cast<std::size_t>(count_));
    return *this;
  }
  int size() const { return count_; }
  // Throws Error(invalid_args) when out of range. Inline: paged attention reads an output per
  // task; the message is built out of line.
  const Tensor& operator[](int i) const {
    if (static_cast<unsigned>(i) >= static_cast<unsigned>(count_)) out_of_range(i);
    return *std::launder(reinterpret_cast<const Tensor*>(&storage_[static_cast<std::size_t>(i)]));
  }
  TaskId task() const { return task_; }
  bool valid() const { return task_.valid(); }

 private:
  friend class detail::OrchestratorCore;
  [[noreturn, gnu::cold]] void out_of_range(int i) const;
  struct alignas(Tensor) TensorBytes {
    std::byte bytes[sizeof(Tensor)];
  };
  std::array<TensorBytes, kMaxTensorArgs> storage_;
  int count_ = 0;
  TaskId task_;
};

// Tensors and scalars handed to an orchestration by the run (see RunArgs in runtime.hpp).
class OrchestrationArgs {
 public:
  int tensor_count() const { return static_cast<int>(tensors_.size()); }
  const Tensor& tensor(int i) const;  // throws Error(invalid_args) when out of range
  int scalar_count() const { return static_cast<int>(scalars_.size()); }
  std::uint64_t scalar_bits(int i) const;
  template <class T>
  T scalar(int i) const {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>);
    const std::uint64_t bits = scalar_bits(i);
    T value;
    std::memcpy(&value, &bits, sizeof(T));
    return value;
  }

  std::vector<Tensor> tensors_;
  std::vector<std::uint64_t> scalars_;
};

class Orchestrator;

struct LoopOptions {
  // Each iteration is its own scope, so a loop of many iterations that make fresh buffers runs in
  // a bounded ring window.
  bool scope_per_iteration = false;
};

// Closes a scope when it goes out of C++ scope.
class [[nodiscard]] ScopeGuard {
 public:
  explicit ScopeGuard(Orchestrator& orchestrator);
  ~ScopeGuard();
  ScopeGuard(const ScopeGuard&) = delete;
  ScopeGuard& operator=(const ScopeGuard&) = delete;

 private:
  Orchestrator* orchestrator_;
};

// After the first fatal error every call is a no-op (submits return empty outputs) and the run
// reports that error. An Orchestrator is valid only during the run that passed it to the
// orchestration function; used after that run, every call throws Error(scope_error) saying so.
class Orchestrator {
 public:
  TaskOutputs submit(const MixKernels& kernels, const Args& args);
  TaskOutputs submit_aic(KernelId kernel, const Args& args) {
    return submit({kernel, kNoKernel, kNoKernel}, args);
  }
  TaskOutputs submit_aiv(KernelId kernel, const Args& args) {
    return submit({kNoKernel, kernel, kNoKernel}, args);
  }
  // Allocates intermediates without a kernel (a hidden task that completes at once). `args`
  // may hold `out` tensors only.
  TaskOutputs alloc(const Args& args);
  TaskOutputs alloc(const TensorSpec& spec) { return alloc(Args().out(spec)); }

  void scope_begin();
  void scope_end();
  ScopeGuard scope() { return ScopeGuard(*this); }

  // A loop the runtime analyses as a whole: runs body(orchestrator, i) for i = 0 .. n-1 in order,
  // exactly like `for (std::int64_t i = 0; i < n; ++i) body(o, i);` and with the same
  // dependences, but after the first iterations each submit's producers follow from a learned,
  // proven iteration template instead of TensorMap lookups (docs/design.md, "parallel_for").
  // Irregular iterations fall back to per-task analysis by themselves; nothing is promised by the
  // caller. Nestable; the body may open scopes, alloc, make fresh outputs, submit MIX and SPMD
  // tasks. RuntimeConfig::parallel_for_analysis (TMR_PARALLEL_FOR=off) turns the analysis off.
  template <class Body>
  requires std::is_invocable_v<Body&, Orchestrator&, std::int64_t>
  void parallel_for(std::int64_t n, Body&& body, LoopOptions options = {}) {
    using Target = std::remove_reference_t<Body>;
    LoopCall call = [](void* target, Orchestrator& o, std::int64_t i) {
      (*static_cast<Target*>(target))(o, i);
    };
    run_loop(n, options, call, const_cast<void*>(static_cast<const void*>(std::addressof(body))));
  }
  // The pattern form: exactly `for (i = 0; i < n; ++i) pattern.submit_iteration(*this, i)` (for
  // a one-task pattern `submit(pattern.kernels(), pattern.args(i))`; same dependences, results
  // and errors; task_pattern.hpp), with no body to call and no argument building a task. A
  // one-task pattern of existing tensors is affine in the index by construction, so once the
  // loop's template has matched two consecutive iterations, the runtime submits the following
  // ones without comparing their arguments with the template; a pattern of several tasks has its
  // arguments moved in place and compared (docs/design.md, "The pattern form"). Anything it
  // cannot use that way (analysis off, views that leave their tensor, an index table the loop
  // writes) runs as the lambda loop of submit_iteration, which stays correct; RunStats counts
  // both.
  void parallel_for(std::int64_t n, const TaskPattern& pattern, LoopOptions options = {});
  int scope_depth() const;

  // Blocking element access from the orchestration: waits for the tensor's producers (and, for
  // set, also for its readers), then reads or writes one element at logical `indices`. T must be
  // the tensor's element type (float, f16, bf16, int32_t, int8_t, uint8_t for f32 ... u8), as for
  // Tensor::data_as<T>(); another T latches Error(invalid_args) (get returns T{}).
  template <class T>
  T get_tensor_data(const Tensor& tensor, const Shape& indices) {
    T value{};
    read_element(tensor, indices, &value, detail::element_request<T>());
    return value;
  }
  template <class T>
  void set_tensor_data(const Tensor& tensor, const Shape& indices, T value) {
    write_element(tensor, indices, &value, detail::element_request<T>());
  }
  // Waits until every task that writes any part of `tensor` has finished; then the caller may
  // read the whole tensor directly.
  void wait_for(const Tensor& tensor);

  // Latches a fatal error; the run reports it.
  void report_fatal(ErrorCode code, const std::string& message);
  bool fatal() const;
  Status status() const;

  const KernelRegistry& kernels() const;
  // Kernel id by name; latches Error(unknown_kernel) and returns kNoKernel when unknown.
  KernelId kernel(std::string_view name);

  explicit Orchestrator(detail::OrchestratorCore& core) : core_(&core) {}

 private:
  friend class detail::OrchestratorCore;  // OrchestratorCore::of (tests)
  using LoopCall = void (*)(void* body, Orchestrator& orchestrator, std::int64_t index);
  void run_loop(std::int64_t n, const LoopOptions& options, LoopCall call, void* body);
  void read_element(const Tensor& tensor, const Shape& indices, void* out,
                    const detail::ElementRequest& type);
  void write_element(const Tensor& tensor, const Shape& indices, const void* in,
                     const detail::ElementRequest& type);
  detail::OrchestratorCore& live_core() const;
  detail::OrchestratorCore* core_;
};

using Orchestration = std::function<void(Orchestrator&, const OrchestrationArgs&)>;

}  // namespace tmr

// Opens a scope for the rest of the enclosing C++ block.
#define TMR_SCOPE_CONCAT2(a, b) a##b
#define TMR_SCOPE_CONCAT(a, b) TMR_SCOPE_CONCAT2(a, b)
#define TMR_SCOPE(orchestrator) \
  ::tmr::ScopeGuard TMR_SCOPE_CONCAT(tmr_scope_guard_, __LINE__)(orchestrator)
