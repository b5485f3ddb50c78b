#include "common/tile_ops.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "tmr/error.hpp"

namespace tmr::examples {

namespace {

[[noreturn]] void invalid(const std::string& message) {
  throw Error(ErrorCode::invalid_args, message);
}

template <class T>
void pack_typed(const Tensor& view, float* dst) {
  const auto* src = static_cast<const T*>(view.data());
  const std::uint32_t rows = view.dim(0);
  const std::uint32_t cols = view.dim(1);
  const std::int64_t row_stride = view.stride(0);
  const std::int64_t col_stride = view.stride(1);
  if (col_stride == 1) {
    for (std::uint32_t r = 0; r < rows; ++r) {
      const T* in = src + r * row_stride;
      float* out = dst + std::size_t{r} * cols;
      for (std::uint32_t c = 0; c < cols; ++c)
        out[c] = static_cast<float>(in[c]);
    }
  } else if (row_stride == 1) {
    // A transposed view: read a band of source lines together, so that both the reads (down each
    // line) and the writes (along each destination row) stay contiguous.
    constexpr std::uint32_t kBand = 16;
    for (std::uint32_t c0 = 0; c0 < cols; c0 += kBand) {
      const std::uint32_t band = std::min(kBand, cols - c0);
      for (std::uint32_t r = 0; r < rows; ++r) {
        float* out = dst + std::size_t{r} * cols + c0;
        const T* in = src + r + c0 * col_stride;
        for (std::uint32_t c = 0; c < band; ++c)
          out[c] = static_cast<float>(in[c * col_stride]);
      }
    }
  } else {
    for (std::uint32_t r = 0; r < rows; ++r) {
      for (std::uint32_t c = 0; c < cols; ++c) {
        dst[std::size_t{r} * cols + c] = static_cast<float>(src[r * row_stride + c * col_stride]);
      }
    }
  }
}

constexpr int kRowsPerBlock = 4;
constexpr int kLanes = 8;
constexpr int kColsPerBlock = 2 * kLanes;

// Eight floats; GCC/Clang vector extensions, lowered to AVX (one register) or SSE (two).
typedef float Lanes __attribute__((vector_size(kLanes * sizeof(float))));

// Register-blocked: each 4 x 16 block of c is accumulated over all of k in eight vector
// registers. Built for AVX2/FMA and for baseline x86-64, picked at load time (not in sanitizer
// builds, where the load-time resolver is not worth the trouble).
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
__attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
void matmul_blocked(const float* a, const float* b, float* c, int m, int n, int k, int ldc,
                    bool accumulate) {
  const int full_rows = m - m % kRowsPerBlock;
  const int full_cols = n - n % kColsPerBlock;
  for (int i = 0; i < full_rows; i += kRowsPerBlock) {
    for (int j = 0; j < full_cols; j += kColsPerBlock) {
      Lanes acc[kRowsPerBlock][2] = {};
      for (int p = 0; p < k; ++p) {
        const float* b_row = b + static_cast<std::ptrdiff_t>(p) * n + j;
        Lanes b_low;
        Lanes b_high;
        __builtin_memcpy(&b_low, b_row, sizeof(Lanes));  // unaligned loads
        __builtin_memcpy(&b_high, b_row + kLanes, sizeof(Lanes));
        for (int r = 0; r < kRowsPerBlock; ++r) {
          const float a_value = a[static_cast<std::ptrdiff_t>(i + r) * k + p];
          acc[r][0] += a_value * b_low;
          acc[r][1] += a_value * b_high;
        }
      }
      for (int r = 0; r < kRowsPerBlock; ++r) {
        float* c_row = c + static_cast<std::ptrdiff_t>(i + r) * ldc + j;
        if (accumulate) {
          Lanes c_low;
          Lanes c_high;
          __builtin_memcpy(&c_low, c_row, sizeof(Lanes));
          __builtin_memcpy(&c_high, c_row + kLanes, sizeof(Lanes));
          acc[r][0] += c_low;
          acc[r][1] += c_high;
        }
        __builtin_memcpy(c_row, &acc[r][0], sizeof(Lanes));
        __builtin_memcpy(c_row + kLanes, &acc[r][1], sizeof(Lanes));
      }
    }
  }
  // Edges: the remaining columns of the blocked rows, then the remaining rows. k-outer, j-inner.
  auto edge = [&](int row_begin, int row_end, int col_begin) {
    for (int i = row_begin; i < row_end; ++i) {
      float* c_row = c + static_cast<std::ptrdiff_t>(i) * ldc;
      if (!accumulate) std::fill(c_row + col_begin, c_row + n, 0.0f);
      for (int p = 0; p < k; ++p) {
        const float a_value = a[static_cast<std::ptrdiff_t>(i) * k + p];
        const float* b_row = b + static_cast<std::ptrdiff_t>(p) * n;
        for (int q = col_begin; q < n; ++q)
          c_row[q] += a_value * b_row[q];
      }
    }
  };
  if (full_cols < n) edge(0, full_rows, full_cols);
  if (full_rows < m) edge(full_rows, m, 0);
}

}  // namespace

void pack_2d(const Tensor& view, std::span<float> dst) {
  if (view.ndims() != 2) {
    invalid("pack_2d needs a 2-D view, got " + view.to_string());
  }
  if (dst.size() < view.elements()) {
    invalid("pack_2d: destination holds " + std::to_string(dst.size()) + " floats, view " +
            view.to_string() + " needs " + std::to_string(view.elements()));
  }
  switch (view.dtype()) {
    case DType::f32:
      return pack_typed<float>(view, dst.data());
    case DType::bf16:
      return pack_typed<bf16>(view, dst.data());
    case DType::f16:
      return pack_typed<f16>(view, dst.data());
    default:
      invalid("pack_2d reads f32, bf16 or f16 tensors, got " + view.to_string());
  }
}

void matmul(const float* a, const float* b, float* c, int m, int n, int k, int ldc,
            bool accumulate) {
  matmul_blocked(a, b, c, m, n, k, ldc, accumulate);
}

std::span<float> scratch_floats(int slot, std::size_t count) {
  thread_local std::array<std::vector<float>, kScratchSlots> buffers;
  if (slot < 0 || slot >= kScratchSlots) {
    invalid("scratch slot " + std::to_string(slot) + " does not exist; use 0 to " +
            std::to_string(kScratchSlots - 1));
  }
  std::vector<float>& buffer = buffers[static_cast<std::size_t>(slot)];
  if (buffer.size() < count) buffer.resize(count);
  return {buffer.data(), count};
}

FloatRows float_rows(const Tensor& t, const char* what) {
  if (t.ndims() != 2 || t.dtype() != DType::f32 || (t.dim(1) > 1 && t.stride(1) != 1)) {
    invalid(std::string(what) + " must be a 2-D f32 tensor with contiguous rows, got " +
            t.to_string());
  }
  return {t.data_as<float>(), t.stride(0)};
}

void packed_matmul(const Tensor& a, const Tensor& b, float* c, std::int64_t ldc) {
  const std::uint32_t m = a.dim(0);
  const std::uint32_t k = a.dim(1);
  const std::uint32_t n = b.dim(1);
  if (b.ndims() != 2 || b.dim(0) != k) {
    throw Error(ErrorCode::invalid_args, "matmul: the right operand must be [" + std::to_string(k) +
                                             ", n], got " + b.to_string());
  }
  const std::span<float> a_packed = scratch_floats(0, std::size_t{m} * k);
  const std::span<float> b_packed = scratch_floats(1, std::size_t{k} * n);
  pack_2d(a, a_packed);
  pack_2d(b, b_packed);  // rows of b become contiguous, so the product streams them
  matmul(a_packed.data(), b_packed.data(), c, static_cast<int>(m), static_cast<int>(n),
         static_cast<int>(k), static_cast<int>(ldc), false);
}

}  // namespace tmr::examples
