// CPU building blocks for example kernels: packing strided tensor views into contiguous float
// tiles, and a register-blocked matrix product on such tiles.
#pragma once

#include <cstdint>
#include <span>

#include "tmr/tensor.hpp"

namespace tmr::examples {

// Copies the 2-D view `view` (logical [rows, cols], any strides; f32, bf16 or f16) into `dst`
// as row-major floats. Throws Error(invalid_args) for another dtype, rank or a short `dst`.
void pack_2d(const Tensor& view, std::span<float> dst);

// c[m x n] = a[m x k] * b[k x n] (or c += ... when `accumulate`). All row-major and contiguous:
// a has row stride k, b row stride n, c row stride ldc (>= n).
void matmul(const float* a, const float* b, float* c, int m, int n, int k, int ldc,
            bool accumulate);

// c[m x n] = a[m x k] * b[k x n] for 2-D views a and b of any strides and dtype pack_2d takes:
// both are packed into scratch slots 0 and 1 first. c has row stride ldc. Throws
// Error(invalid_args) when b is not [k, n].
void packed_matmul(const Tensor& a, const Tensor& b, float* c, std::int64_t ldc);

// A thread-local buffer of at least `count` floats, reused by later kernels on the same core
// thread (kernels on one thread never overlap). A kernel that needs two at once uses two slots.
std::span<float> scratch_floats(int slot, std::size_t count);
inline constexpr int kScratchSlots = 4;

// Row-major float view of a 2-D f32 tensor whose rows are contiguous (stride(1) == 1).
struct FloatRows {
  float* data;
  std::int64_t row_stride;
  float* row(std::uint32_t r) const { return data + static_cast<std::int64_t>(r) * row_stride; }
};
// Throws Error(invalid_args) when `t` is not a 2-D f32 tensor with contiguous rows.
FloatRows float_rows(const Tensor& t, const char* what);

}  // namespace tmr::examples
