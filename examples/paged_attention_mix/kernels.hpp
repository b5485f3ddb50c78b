// The fused MIX kernels of paged_attention_mix: one task per KV block runs the cube kernel on the
// cluster's AIC and the vector kernel on both AIVs; they pass tiles through the cluster pipe.
//
// Task arguments. Tensors: in q [rows, D] bf16, in k_t [D, bs] bf16, in v [bs, D] bf16,
// inout m_i [rows] f32, inout l_i [rows] f32, inout o_i [rows, D] f32, out_existing out [rows, D]
// f32. Scalars: scale (float), valid (int32), is_first (int32), is_last (int32), pipe tag (uint64).
//
// Each AIV owns half of the tile's rows (sub-block 0 the first half). The exchange:
//   AIC: S = Q K^T -> push S rows to each AIV; then per AIV: pop P, O_new = P V, push O_new.
//   AIV: pop S rows -> softmax-prepare -> push P; pop O_new -> online update of its rows.
#pragma once

#include "tmr/kernel.hpp"

namespace tmr::examples::paged_attention_mix {

void cube_kernel(const KernelArgs& args);
void vector_kernel(const KernelArgs& args);

void register_kernels(KernelRegistry& kernels);

// Pipe channels of one cluster.
inline constexpr int kChannelToVector0 = 0;
inline constexpr int kChannelToVector1 = 1;
inline constexpr int kChannelFromVector0 = 2;
inline constexpr int kChannelFromVector1 = 3;

}  // namespace tmr::examples::paged_attention_mix
