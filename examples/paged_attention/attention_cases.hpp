// The cases of paged attention (shared with paged_attention_mix) and how a case's inputs, golden
// and host tensors are prepared.
//
// Host tensors, in orchestration order: query [B, H, D] bf16, key_cache [blocks, bs, 1, D] bf16,
// value_cache (same), block_table [B, max_model_len / bs] i32, context_lens [B] i32,
// out [B, H, D] f32. Scalar 0: scale (float).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/example.hpp"
#include "paged_attention/attention_golden.hpp"
#include "tmr/config.hpp"

namespace tmr::examples::paged_attention {

// Heads per (request, tile) accumulator chain, as the reference: min(heads, 128), so H16 runs in
// tiles of 16 and H64 in one tile of 64 (one chain per request).
inline constexpr std::uint32_t kMaxHeadTile = 128;
constexpr std::uint32_t head_tile(std::uint32_t heads) {
  return heads < kMaxHeadTile ? heads : kMaxHeadTile;
}

struct AttentionCase {
  CaseSpec spec;
  std::uint32_t batch;
  std::uint32_t heads;
  std::uint32_t head_dim;
  std::uint32_t block_size;
  std::vector<std::int32_t> context_lens;
  std::uint32_t max_model_len;
  double tolerance;  // used as both atol and rtol
};

const std::vector<AttentionCase>& attention_cases();
std::vector<CaseSpec> attention_case_specs();
// paged_attention_ringbuffer's one case (B32 H16 D128 bs128 ctx 4096) and its ring sizes.
const std::vector<AttentionCase>& ringbuffer_cases();
RingConfig ringbuffer_ring();

// Builds a case (its summary line from the sizes).
AttentionCase make_attention_case(std::string name, std::uint32_t batch, std::uint32_t heads,
                                  std::uint32_t head_dim, std::uint32_t block_size,
                                  std::vector<std::int32_t> context_lens,
                                  std::uint32_t max_model_len, double tolerance, bool large,
                                  bool production = false);
// The same case with its batch cut to max(1, floor(batch * scale)) requests.
AttentionCase scaled_case(AttentionCase c, double scale);

// Seeded inputs of a case (query, caches in (-0.5, 0.5), (-1, 1); block ids a random permutation).
AttentionInputs make_attention_inputs(const AttentionCase& c, std::uint64_t seed);
// Host tensors, scalar, golden and flop count of a case.
Problem make_attention_problem(const AttentionCase& c, std::uint64_t seed);
Problem make_attention_problem_by_index(std::size_t case_index, std::uint64_t seed);
// For timing-only sim runs: real context_lens and block_table, placeholders for the rest.
Problem make_attention_timing_problem(const AttentionCase& c, std::uint64_t seed);
Problem make_attention_timing_problem_by_index(std::size_t case_index, std::uint64_t seed);

// Case `base_index` with `tmr run --param` overrides: batch, heads, head_dim, block_size,
// context_lens (one value for every request, or a comma-separated list with one per request),
// max_model_len, tolerance. Throws Error(invalid_args) for an unknown key or a bad value.
AttentionCase make_attention_param_case(std::size_t base_index, const CaseParams& params);
// The same, as the example interface wants it.
ParamCase attention_param_case(std::size_t base_index, const CaseParams& params);

// `cases` followed by the reference's production-scale Case1-3 (B256 H16 D128 bs128, B64 H64 D128
// bs64, B64 H64 D256 bs64; every context 8192), which the unroll and batch variants share.
std::vector<AttentionCase> with_reference_production_cases(std::vector<AttentionCase> cases);

// An example over its own case table (the unroll and batch variants): its case list and problem
// builders read `cases`, which returns a table that lives as long as the program. The caller sets
// the kernels and the orchestration.
Example make_case_table_example(std::string name, std::string summary,
                                const std::vector<AttentionCase>& (*cases)());

// Tasks one run submits with the four-kernel pipeline (hidden allocs included).
// (The unroll and batch variants count their own: see their folders.)
std::uint64_t expected_pipeline_tasks(const AttentionCase& c);

}  // namespace tmr::examples::paged_attention
