// Kernels: named functions bound to a core type (cube AIC or vector AIV) and an integer id.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tmr/tensor.hpp"

namespace tmr {

enum class CoreType : std::uint8_t { aic, aiv };
std::string_view core_type_name(CoreType type);

using KernelId = std::int32_t;
inline constexpr KernelId kNoKernel = -1;

// What one core's share of a task sees: the task's tensors and scalars, and where it runs.
class KernelArgs {
 public:
  KernelArgs(const Tensor* tensors, int tensor_count, const std::uint64_t* scalars,
             int scalar_count, std::uint32_t block_index, std::uint32_t block_count,
             std::uint32_t sub_block_id, std::uint32_t cluster)
      : tensors_(tensors),
        scalars_(scalars),
        tensor_count_(tensor_count),
        scalar_count_(scalar_count),
        block_index_(block_index),
        block_count_(block_count),
        sub_block_id_(sub_block_id),
        cluster_(cluster) {}

  int tensor_count() const { return tensor_count_; }
  const Tensor& tensor(int i) const { return tensors_[i]; }
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
  const std::uint64_t* scalars_;
  int tensor_count_;
  int scalar_count_;
  std::uint32_t block_index_;
  std::uint32_t block_count_;
  std::uint32_t sub_block_id_;
  std::uint32_t cluster_;
};

using KernelFn = void (*)(const KernelArgs&);

// Optional cost hint for virtual-time platforms (the sim platform's roofline). fixed_ns > 0: every
// share of the kernel takes that long; otherwise `flops` (when set) gives one share's
// floating-point operations, and the bytes come from the share's tensor arguments.
struct KernelCost {
  double fixed_ns = 0;
  double (*flops)(const KernelArgs&) = nullptr;
};

struct KernelInfo {
  KernelId id = kNoKernel;
  std::string name;
  CoreType core_type = CoreType::aiv;
  KernelFn fn = nullptr;
  KernelCost cost;
};

class KernelRegistry {
 public:
  // Registers a kernel and returns its id (ids are dense from 0). Throws Error(invalid_args) on a
  // duplicate name or a null function.
  KernelId add(std::string name, CoreType core_type, KernelFn fn);
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
  std::vector<KernelInfo> kernels_;
  std::unordered_map<std::string, KernelId> by_name_;
};

}  // namespace tmr
