// paged_attention_unroll: the reference's main benchmark. Paged attention where up to kUnroll (64)
// KV blocks of a request form one group and each group submits 4 tasks: QK over the group's
// blocks (block ids looked up in the kernel), a two-pass softmax over the whole group, a split-K
// PV and one online update.
#pragma once

#include <cstdint>
#include <vector>

#include "common/example.hpp"
#include "paged_attention/attention_cases.hpp"
#include "tmr/kernel.hpp"
#include "tmr/orchestrator.hpp"

namespace tmr::examples::paged_attention_unroll {

inline constexpr std::uint32_t kUnroll = 64;  // KV blocks per group (the reference's N_UNROLL)

// AIC. S[:, j*bs:(j+1)*bs] = Q K_j^T for the group's blocks j < n. Tensors: in q [rows, D] bf16,
// in key_rows [blocks*bs, D] bf16, in block_table [B, n_max] i32, out s [rows, n*bs] f32.
// Scalars: n (i32), the group's first flat index into the block table (i64).
void qk_kernel(const KernelArgs& args);
// AIV. Softmax-prepare over all n*bs columns (the last block has `valid_last` real ones).
// Tensors: in s, out p [rows, n*bs] bf16, out m [rows], out l [rows]. Scalars: scale (float), n
// (i32), valid_last (i32).
void softmax_kernel(const KernelArgs& args);
// AIC. O_new = sum_j P[:, j*bs:(j+1)*bs] V_j. Tensors: in p, in value_rows, in block_table, out
// o_new [rows, D] f32. Scalars as qk.
void pv_kernel(const KernelArgs& args);

void register_kernels(KernelRegistry& kernels);
void orchestrate(Orchestrator& o, const OrchestrationArgs& args);

// Cases: small ones (goldens on threads and sim) and the reference's Case1-3 (production scale).
const std::vector<paged_attention::AttentionCase>& unroll_cases();
// Tasks of one run: per (request, head tile) 1 alloc + 4 per group of up to kUnroll blocks.
std::uint64_t expected_tasks(const paged_attention::AttentionCase& c);

}  // namespace tmr::examples::paged_attention_unroll
