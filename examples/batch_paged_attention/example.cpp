// batch_paged_attention: registered with the reference's cases (small ones first; Case1-3 at
// production scale are for `--platform sim --timing-only`).
#include <algorithm>

#include "batch_paged_attention/batch.hpp"
#include "common/catalog.hpp"

namespace tmr::examples::batch_paged_attention {

namespace pa = paged_attention;

const std::vector<pa::AttentionCase>& batch_cases() {
  static const std::vector<pa::AttentionCase> cases = pa::with_reference_production_cases({
      pa::make_attention_case("CaseSmall1", 1, 16, 16, 16, {33}, 256, 1e-3, false),
      pa::make_attention_case("CaseSmall2", 1, 16, 16, 16, {31}, 256, 1e-3, false),
      pa::make_attention_case("CaseSmall3", 1, 16, 16, 16, {128}, 256, 1e-3, false),
      pa::make_attention_case("CaseVarSeq2", 2, 16, 16, 16, {33, 17}, 256, 1e-3, false),
      pa::make_attention_case("CaseVarSeq4", 4, 16, 16, 16, {33, 64, 128, 15}, 256, 1e-3, false),
      // Two chunks (20 requests), the second one partial.
      pa::make_attention_case(
          "TwoChunks", 20, 16, 16, 16,
          {33, 17, 64, 5, 128, 90, 1, 47, 16, 15, 33, 100, 64, 2, 77, 31, 48, 120, 9, 60}, 128,
          1e-3, false),
  });
  return cases;
}

std::uint64_t expected_tasks(const pa::AttentionCase& c) {
  const std::uint64_t tile = pa::head_tile(c.heads);
  const std::uint64_t head_tiles = (c.heads + tile - 1) / tile;
  const std::uint64_t chunks = (c.batch + kChunk - 1) / kChunk;
  const std::int32_t longest = *std::max_element(c.context_lens.begin(), c.context_lens.end());
  const std::uint64_t blocks =
      (static_cast<std::uint64_t>(longest) + c.block_size - 1) / c.block_size;
  return head_tiles * chunks * (1 + 4 * blocks);
}

namespace {

Example make_example() {
  Example example = pa::make_case_table_example(
      "batch_paged_attention",
      "paged attention over chunks of 16 requests per task (block ids looked up in the "
      "kernels); the updates of all chunks chain through `out`",
      batch_cases);
  example.register_kernels = register_kernels;
  example.orchestration = orchestrate;
  return example;
}

}  // namespace

TMR_REGISTER_EXAMPLE(make_example)

}  // namespace tmr::examples::batch_paged_attention
