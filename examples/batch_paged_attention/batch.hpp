// batch_paged_attention: paged attention where each task works on a chunk of up to kChunk (16)
// requests at one logical KV block index, looking the blocks up in the kernel. Per (head tile,
// chunk) one alloc and, for every block index up to the longest request, QK -> softmax -> PV ->
// update. As in the reference the update takes the whole `out` as INOUT, so the updates of all
// chunks form one chain.
#pragma once

#include <cstdint>
#include <vector>

#include "common/example.hpp"
#include "paged_attention/attention_cases.hpp"
#include "tmr/kernel.hpp"
#include "tmr/orchestrator.hpp"

namespace tmr::examples::batch_paged_attention {

inline constexpr std::uint32_t kChunk = 16;  // requests per task (the reference's IN_CORE_BATCH)

// Scalars shared by the kernels (all i32): chunk (requests in this chunk), bn (block index),
// batch_start (first request), q_offset (first head), heads (H of the query).
// AIC. Tensors: in query_rows [B*H, D], in key_rows [blocks*bs, D], in block_table [B, n], out s
// [chunk*rows, bs] f32. Scalars: chunk, bn, batch_start, q_offset, heads.
void qk_kernel(const KernelArgs& args);
// AIV. Tensors: in s, in context_lens [B] i32, out p [chunk*rows, bs] bf16, out m, out l
// [chunk*rows] f32. Scalars: scale (float), chunk, bn, batch_start. Columns past a request's
// context are padding; a finished request gets m = -1e30, l = 0, P = 0 (a no-op merge).
void softmax_kernel(const KernelArgs& args);
// AIC. Tensors: in p, in value_rows, in block_table, out o_new [chunk*rows, D] f32. Scalars:
// chunk, bn, batch_start.
void pv_kernel(const KernelArgs& args);
// AIV. Tensors: in m_ij, l_ij, o_new; inout m_i, l_i, o_i (the chunk's accumulators); inout out
// [B*H, D] f32. Scalars: is_first, is_last, chunk, batch_start, q_offset, heads.
void update_kernel(const KernelArgs& args);

void register_kernels(KernelRegistry& kernels);
void orchestrate(Orchestrator& o, const OrchestrationArgs& args);

const std::vector<paged_attention::AttentionCase>& batch_cases();
// Tasks of one run: head tiles x chunks x (1 + 4 x the longest request's blocks).
std::uint64_t expected_tasks(const paged_attention::AttentionCase& c);

}  // namespace tmr::examples::batch_paged_attention
