// The four kernels of paged attention, one task each per KV block and (request, head tile).
#pragma once

#include "tmr/kernel.hpp"

namespace tmr::examples::paged_attention {

// AIC. S = Q K^T. Tensors: in q [rows, D] bf16, in k_t [D, bs] bf16 (a transposed view of the K
// block), out s [rows, bs] f32.
void qk_kernel(const KernelArgs& args);
// AIV. Tensors: in s [rows, valid] f32 (a view of S), out p [rows, bs] bf16, out m [rows] f32,
// out l [rows] f32. Scalar 0: scale (float).
void softmax_prepare_kernel(const KernelArgs& args);
// AIC. O_new = P V. Tensors: in p [rows, bs] bf16, in v [bs, D] bf16, out o_new [rows, D] f32.
void pv_kernel(const KernelArgs& args);
// AIV. Online-softmax merge with the final normalisation fused. Tensors: in m_ij [rows], in l_ij
// [rows], in o_new [rows, D]; inout m_i [rows], inout l_i [rows], inout o_i [rows, D]; out_existing
// out [rows, D] (written on the last block). Scalars: is_first, is_last (int32, 0 or 1).
void online_update_kernel(const KernelArgs& args);

// Registers the four kernels with their sim cost hints (QK and PV: 2*M*N*K flops).
void register_kernels(KernelRegistry& kernels);
double qk_flops(const KernelArgs& args);
double softmax_flops(const KernelArgs& args);
double pv_flops(const KernelArgs& args);
double update_flops(const KernelArgs& args);

}  // namespace tmr::examples::paged_attention
