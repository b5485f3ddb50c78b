// Kernels: named callables bound to a core type (cube AIC or vector AIV) and an integer id.
#pragma once

#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tmr/args.hpp"
#include "tmr/tensor.hpp"

namespace tmr {

enum class CoreType : std::uint8_t { aic, aiv };
std::string_view core_type_name(CoreType type);

using KernelId = std::int32_t;
inline constexpr KernelId kNoKernel = -1;

// What one core's share of a task sees: the task's tensors and scalars, and where it runs.
class KernelArgs {
 public:
  // `tags` (one per tensor) may be null for arguments built by hand, e.g. in a kernel's unit test;
  // tag() then throws.
  KernelArgs(const Tensor* tensors, int tensor_count, const std::uint64_t* scalars,
             int scalar_count, std::uint32_t block_index, std::uint32_t block_count,
             std::uint32_t sub_block_id, std::uint32_t cluster, const ArgTag* tags = nullptr)
      : tensors_(tensors),
        tags_(tags),
        scalars_(scalars),
        tensor_count_(tensor_count),
        scalar_count_(scalar_count),
        block_index_(block_index),
        block_count_(block_count),
        sub_block_id_(sub_block_id),
        cluster_(cluster) {}

  int tensor_count() const { return tensor_count_; }
  const Tensor& tensor(int i) const { return tensors_[i]; }
  // How the task was given tensor i (in, out, inout, out_existing, no_dep). Throws
  // Error(invalid_args) when i is out of range or the arguments carry no tags.
  ArgTag tag(int i) const;
  int scalar_count() const { return scalar_count_; }
  std::uint64_t scalar_bits(int i) const { return scalars_[i]; }
  template <class T>
  T scalar(int i) const {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>);
    T value;
    std::memcpy(&value, &scalars_[i], sizeof(T));
    return value;
  }
  // SPMD (Args::blocks): which of block_count() blocks this is. Every block gets the whole tensors
  // of the task; the kernel picks its share of the work from these two numbers.
  std::uint32_t block_index() const { return block_index_; }
  std::uint32_t block_count() const { return block_count_; }
  // Which AIV of the cluster runs this share (0 or 1); 0 on an AIC.
  std::uint32_t sub_block_id() const { return sub_block_id_; }
  // The cluster this share runs on (cores of one MIX task share it).
  std::uint32_t cluster() const { return cluster_; }

 private:
  const Tensor* tensors_;
  const ArgTag* tags_;
  const std::uint64_t* scalars_;
  int tensor_count_;
  int scalar_count_;
  std::uint32_t block_index_;
  std::uint32_t block_count_;
  std::uint32_t sub_block_id_;
  std::uint32_t cluster_;
};

// A kernel as the runtime stores and calls it: a plain function, or a function with a context
// pointer. Small and trivially copyable, so tasks carry it by value; call it like a function.
// Kernels run concurrently on many cores: whatever the context points to must allow that.
class KernelFn {
 public:
  using Plain = void (*)(const KernelArgs&);
  using WithContext = void (*)(void* context, const KernelArgs&);

  constexpr KernelFn() = default;
  constexpr KernelFn(std::nullptr_t) {}         // NOLINT: a null kernel, as for a function pointer
  constexpr KernelFn(Plain fn) : plain_(fn) {}  // NOLINT: any plain kernel function converts
  constexpr KernelFn(WithContext fn, void* context) : with_context_(fn), context_(context) {}

  void operator()(const KernelArgs& args) const {
    if (with_context_ != nullptr) {
      with_context_(context_, args);
    } else {
      plain_(args);
    }
  }
  constexpr bool empty() const { return plain_ == nullptr && with_context_ == nullptr; }
  constexpr explicit operator bool() const { return !empty(); }
  void* context() const { return context_; }

  friend constexpr bool operator==(const KernelFn& a, const KernelFn& b) {
    return a.plain_ == b.plain_ && a.with_context_ == b.with_context_ && a.context_ == b.context_;
  }
  friend constexpr bool operator==(const KernelFn& a, std::nullptr_t) { return a.empty(); }

 private:
  Plain plain_ = nullptr;
  WithContext with_context_ = nullptr;
  void* context_ = nullptr;
};

// Optional cost hint for virtual-time platforms (the sim platform's roofline). fixed_ns > 0: every
// share of the kernel takes that long; otherwise `flops` (when set) gives one share's
// floating-point operations, and the bytes come from the share's tensor arguments.
struct KernelCost {
  double fixed_ns = 0;
  double (*flops)(const KernelArgs&) = nullptr;
  // Optional: the bytes one share moves between global memory and the core (default: its tensor
  // arguments' bytes over the block count, which overcounts a kernel that reads a few blocks of a
  // large tensor through an index) and the tiles (separate transfers) it needs (default: one per
  // tensor argument).
  double (*bytes)(const KernelArgs&) = nullptr;
  double (*tiles)(const KernelArgs&) = nullptr;
};

struct KernelInfo {
  KernelId id = kNoKernel;
  std::string name;
  CoreType core_type = CoreType::aiv;
  KernelFn fn = nullptr;
  KernelCost cost;
  // Keeps a callable registered by value alive (fn's context points into it); shared by copies of
  // the registry.
  std::shared_ptr<void> owner;
};

class KernelRegistry {
 public:
  // Registers a kernel and returns its id (ids are dense from 0). Throws Error(invalid_args) on a
  // duplicate name or a null function.
  KernelId add(std::string name, CoreType core_type, KernelFn fn);
  // Registers a function with a context pointer; the caller keeps the context alive and usable
  // from many threads at once for as long as any runtime uses the kernel.
  KernelId add(std::string name, CoreType core_type, KernelFn::WithContext fn, void* context) {
    if (fn == nullptr) return add(std::move(name), core_type, KernelFn{});  // reports the error
    return add(std::move(name), core_type, KernelFn(fn, context));
  }
  // Registers any callable void(const KernelArgs&) (a lambda with captures, a functor): the
  // registry keeps a copy, shared with copies of the registry. It is called concurrently from
  // many cores, so it must not mutate shared state without synchronisation.
  template <class Callable>
  requires std::invocable<Callable&, const KernelArgs&> &&
      (!std::same_as<std::remove_cvref_t<Callable>, KernelFn>)KernelId
      add(std::string name, CoreType core_type, Callable callable) {
    if constexpr (std::convertible_to<Callable, KernelFn::Plain>) {  // e.g. a captureless lambda
      return add(std::move(name), core_type, KernelFn(static_cast<KernelFn::Plain>(callable)));
    } else {
      auto owned = std::make_shared<Callable>(std::move(callable));
      const KernelFn fn(
          [](void* context, const KernelArgs& args) { (*static_cast<Callable*>(context))(args); },
          owned.get());
      return add_owned(std::move(name), core_type, fn, std::move(owned));
    }
  }
  // Sets the cost hint of a registered kernel; throws Error(invalid_args) for an unknown id or a
  // negative fixed_ns.
  void set_cost(KernelId id, KernelCost cost);
  // Looks a kernel up by name; throws Error(unknown_kernel) naming the known kernels.
  KernelId id(std::string_view name) const;
  // Null when the id is not registered.
  const KernelInfo* find(KernelId id) const {
    return id >= 0 && static_cast<std::size_t>(id) < kernels_.size() ? &kernels_[id] : nullptr;
  }
  std::size_t size() const { return kernels_.size(); }
  const std::vector<KernelInfo>& all() const { return kernels_; }

 private:
  KernelId add_owned(std::string name, CoreType core_type, KernelFn fn,
                     std::shared_ptr<void> owner);
  std::vector<KernelInfo> kernels_;
  std::unordered_map<std::string, KernelId> by_name_;
};

}  // namespace tmr
