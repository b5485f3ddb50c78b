#include "paged_attention/attention_cases.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <string_view>
#include <utility>

#include "tmr/error.hpp"

#include "common/seeded_random.hpp"

namespace tmr::examples::paged_attention {

namespace {

std::string describe(const AttentionCase& c) {
  const bool all_equal = std::all_of(c.context_lens.begin(), c.context_lens.end(),
                                     [&](std::int32_t n) { return n == c.context_lens[0]; });
  std::string contexts;
  if (all_equal && c.context_lens.size() > 1) {
    contexts = std::to_string(c.context_lens[0]);
    contexts += " each";
  } else {
    for (std::size_t i = 0; i < c.context_lens.size(); ++i) {
      if (i > 0) contexts += ',';
      contexts += std::to_string(c.context_lens[i]);
    }
  }
  char tolerance[32];
  std::snprintf(tolerance, sizeof(tolerance), "%g", c.tolerance);
  return "bf16 B" + std::to_string(c.batch) + " H" + std::to_string(c.heads) + " kvH1 D" +
         std::to_string(c.head_dim) + " bs" + std::to_string(c.block_size) + " ctx [" + contexts +
         "] max_len " + std::to_string(c.max_model_len) + ", tol " + tolerance;
}

}  // namespace

AttentionCase make_attention_case(std::string name, std::uint32_t batch, std::uint32_t heads,
                                  std::uint32_t head_dim, std::uint32_t block_size,
                                  std::vector<std::int32_t> context_lens,
                                  std::uint32_t max_model_len, double tolerance, bool large,
                                  bool production) {
  AttentionCase c{{std::move(name), "", large, production},
                  batch,
                  heads,
                  head_dim,
                  block_size,
                  std::move(context_lens),
                  max_model_len,
                  tolerance};
  c.spec.summary = describe(c);
  return c;
}

AttentionCase scaled_case(AttentionCase c, double scale) {
  const auto batch = static_cast<std::uint32_t>(std::max(1.0, std::floor(c.batch * scale)));
  c.batch = std::min(c.batch, batch);
  c.context_lens.resize(c.batch);
  return c;
}

namespace {
AttentionCase make_case(std::string name, std::uint32_t batch, std::uint32_t heads,
                        std::uint32_t head_dim, std::uint32_t block_size,
                        std::vector<std::int32_t> context_lens, std::uint32_t max_model_len,
                        double tolerance, bool large, bool production = false) {
  return make_attention_case(std::move(name), batch, heads, head_dim, block_size,
                             std::move(context_lens), max_model_len, tolerance, large, production);
}

[[noreturn]] void bad_param(const std::string& message) {
  throw Error(ErrorCode::invalid_args,
              "--param " + message +
                  "; paged attention takes batch, heads, head_dim, block_size, context_lens "
                  "(N or N1,N2,...), max_model_len and tolerance");
}

std::uint32_t parse_count(const std::string& key, std::string_view text) {
  std::uint32_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value == 0) {
    bad_param(key + "=" + std::string(text) + ": expected a positive integer");
  }
  return value;
}

std::vector<std::int32_t> parse_contexts(std::string_view text) {
  std::vector<std::int32_t> contexts;
  while (true) {
    const std::size_t comma = text.find(',');
    const std::uint32_t value = parse_count("context_lens", text.substr(0, comma));
    if (value > 1u << 30) bad_param("context_lens: " + std::to_string(value) + " is too long");
    contexts.push_back(static_cast<std::int32_t>(value));
    if (comma == std::string_view::npos) return contexts;
    text.remove_prefix(comma + 1);
  }
}

}  // namespace

AttentionCase make_attention_param_case(std::size_t base_index, const CaseParams& params) {
  AttentionCase c = attention_cases().at(base_index);
  std::vector<std::int32_t> contexts;
  bool max_len_given = false;
  for (const auto& [key, value] : params) {
    if (key == "batch") {
      c.batch = parse_count(key, value);
    } else if (key == "heads") {
      c.heads = parse_count(key, value);
    } else if (key == "head_dim") {
      c.head_dim = parse_count(key, value);
    } else if (key == "block_size") {
      c.block_size = parse_count(key, value);
    } else if (key == "context_lens") {
      contexts = parse_contexts(value);
    } else if (key == "max_model_len") {
      c.max_model_len = parse_count(key, value);
      max_len_given = true;
    } else if (key == "tolerance") {
      char* end = nullptr;
      c.tolerance = std::strtod(value.c_str(), &end);
      if (end != value.c_str() + value.size() || !(c.tolerance >= 0)) {
        bad_param("tolerance=" + value + ": expected a non-negative number");
      }
    } else {
      bad_param("has unknown key '" + key + "'");
    }
  }
  if (contexts.size() == 1) contexts.assign(c.batch, contexts[0]);
  if (contexts.empty()) {  // keep the base case's lengths when they still fit the batch
    const bool uniform = std::all_of(c.context_lens.begin(), c.context_lens.end(),
                                     [&](std::int32_t n) { return n == c.context_lens[0]; });
    if (c.context_lens.size() != c.batch && !uniform) {
      bad_param("batch=" + std::to_string(c.batch) + " differs from the base case's " +
                std::to_string(c.context_lens.size()) + " context lengths; give context_lens too");
    }
    contexts.assign(c.batch, c.context_lens[0]);
    if (c.context_lens.size() == c.batch) contexts = c.context_lens;
  }
  if (contexts.size() != c.batch) {
    bad_param("context_lens has " + std::to_string(contexts.size()) + " entries for batch " +
              std::to_string(c.batch) + "; give one length, or one per request");
  }
  c.context_lens = std::move(contexts);
  const auto longest =
      static_cast<std::uint32_t>(*std::max_element(c.context_lens.begin(), c.context_lens.end()));
  const std::uint32_t needed = (longest + c.block_size - 1) / c.block_size * c.block_size;
  if (!max_len_given)
    c.max_model_len = std::max(needed, c.max_model_len / c.block_size * c.block_size);
  if (c.max_model_len % c.block_size != 0 || c.max_model_len < needed) {
    bad_param("max_model_len=" + std::to_string(c.max_model_len) +
              " must be a multiple of block_size " + std::to_string(c.block_size) +
              " and hold the longest context (" + std::to_string(longest) + ")");
  }
  c.spec.name = "custom";
  c.spec.summary = describe(c);
  c.spec.large = false;
  c.spec.production = false;
  return c;
}

ParamCase attention_param_case(std::size_t base_index, const CaseParams& params) {
  const AttentionCase c = make_attention_param_case(base_index, params);
  return ParamCase{c.spec, [c](std::uint64_t seed) { return make_attention_problem(c, seed); },
                   [c](std::uint64_t seed) { return make_attention_timing_problem(c, seed); }};
}

const std::vector<AttentionCase>& attention_cases() {
  static const std::vector<AttentionCase> cases = {
      make_case("Case1", 1, 16, 16, 16, {33}, 256, 1e-2, false),
      make_case("Case2", 1, 16, 16, 16, {128}, 256, 1e-2, false),
      make_case("VarSeq2", 2, 16, 16, 16, {33, 17}, 256, 1e-2, false),
      make_case("VarSeq4", 4, 16, 16, 16, {33, 64, 128, 15}, 256, 1e-2, false),
      make_case("B16_ctx4096", 16, 16, 128, 128, std::vector<std::int32_t>(16, 4096), 4096, 1e-3,
                true),
      // Production scale (65,792 tasks, 1 GiB of KV cache): for --platform sim --timing-only.
      make_case("B256_ctx8192", 256, 16, 128, 128, std::vector<std::int32_t>(256, 8192), 8192, 1e-3,
                true, true),
      // The reference's H64 production cases: one 64-row head tile per request.
      make_case("B64_H64_D128_bs64", 64, 64, 128, 64, std::vector<std::int32_t>(64, 8192), 8192,
                1e-3, true, true),
      make_case("B64_H64_D256_bs64", 64, 64, 256, 64, std::vector<std::int32_t>(64, 8192), 8192,
                1e-3, true, true),
  };
  return cases;
}

const std::vector<AttentionCase>& ringbuffer_cases() {
  static const std::vector<AttentionCase> cases = {
      make_case("ringbuffer_stress", 32, 16, 128, 128, std::vector<std::int32_t>(32, 4096), 4096,
                1e-3, true),
  };
  return cases;
}

RingConfig ringbuffer_ring() {
  RingConfig ring;
  ring.task_window = 64;
  ring.heap_bytes = 2560u << 10;  // 2.5 MiB: not a power of two
  ring.dep_pool = 256;
  return ring;
}

std::vector<CaseSpec> attention_case_specs() {
  std::vector<CaseSpec> specs;
  for (const AttentionCase& c : attention_cases())
    specs.push_back(c.spec);
  return specs;
}

AttentionInputs make_attention_inputs(const AttentionCase& c, std::uint64_t seed) {
  AttentionInputs in;
  in.batch = c.batch;
  in.heads = c.heads;
  in.head_dim = c.head_dim;
  in.block_size = c.block_size;
  in.blocks_per_request = c.max_model_len / c.block_size;
  const std::int32_t longest = *std::max_element(c.context_lens.begin(), c.context_lens.end());
  // As the reference: every request gets room for the longest context.
  in.total_blocks =
      c.batch * ((static_cast<std::uint32_t>(longest) + c.block_size - 1) / c.block_size);
  in.scale = 1.0f;

  SeededRandom random(seed);
  const std::size_t block_elements = std::size_t{c.block_size} * c.head_dim;
  in.query = random.bf16s(std::size_t{c.batch} * c.heads * c.head_dim, -0.5, 0.5);
  in.key_cache = random.bf16s(in.total_blocks * block_elements, -0.5, 0.5);
  in.value_cache = random.bf16s(in.total_blocks * block_elements, -1.0, 1.0);
  in.context_lens = c.context_lens;

  // Each request's used blocks come from a shuffled list of all blocks, so no two share one;
  // entries past a request's context hold random (never read) ids.
  std::vector<std::int32_t> physical(in.total_blocks);
  std::iota(physical.begin(), physical.end(), 0);
  for (std::size_t i = physical.size(); i > 1; --i) {
    std::swap(physical[i - 1], physical[random.below(i)]);
  }
  in.block_table.resize(std::size_t{c.batch} * in.blocks_per_request);
  std::size_t next = 0;
  for (std::uint32_t b = 0; b < c.batch; ++b) {
    const auto used =
        (static_cast<std::uint32_t>(c.context_lens[b]) + c.block_size - 1) / c.block_size;
    for (std::uint32_t bn = 0; bn < in.blocks_per_request; ++bn) {
      in.block_table[std::size_t{b} * in.blocks_per_request + bn] =
          bn < used ? physical[next++] : static_cast<std::int32_t>(random.below(in.total_blocks));
    }
  }
  return in;
}

Problem make_attention_problem(const AttentionCase& c, std::uint64_t seed) {
  const AttentionInputs in = make_attention_inputs(c, seed);
  Problem problem;
  using Direction = Problem::Direction;
  const std::uint32_t dim = c.head_dim;
  problem.add_tensor("query", {c.batch, c.heads, dim}, Direction::in, in.query);
  problem.add_tensor("key_cache", {in.total_blocks, c.block_size, 1, dim}, Direction::in,
                     in.key_cache);
  problem.add_tensor("value_cache", {in.total_blocks, c.block_size, 1, dim}, Direction::in,
                     in.value_cache);
  problem.add_tensor("block_table", {c.batch, in.blocks_per_request}, Direction::in,
                     in.block_table);
  problem.add_tensor("context_lens", {c.batch}, Direction::in, in.context_lens);
  const std::size_t out_elements = std::size_t{c.batch} * c.heads * dim;
  const int out = problem.add_tensor("out", {c.batch, c.heads, dim}, Direction::out,
                                     std::vector<float>(out_elements, 0.0f));
  problem.add_scalar(in.scale);
  problem.expect(out, attention_golden(in), {c.tolerance, c.tolerance});
  double flops = 0;
  for (const std::int32_t context : c.context_lens) {
    flops += 4.0 * context * c.heads * dim;  // QK and PV: two flops per multiply-add each
  }
  problem.set_flops(flops);
  return problem;
}

Problem make_attention_problem_by_index(std::size_t case_index, std::uint64_t seed) {
  return make_attention_problem(attention_cases().at(case_index), seed);
}

Problem make_attention_timing_problem(const AttentionCase& c, std::uint64_t seed) {
  // The orchestration reads only context_lens and block_table; query and the caches are
  // placeholders. Block ids are a seeded permutation of their own (not the full problem's
  // numbers): only which blocks are distinct matters to the timeline.
  const std::uint32_t blocks_per_request = c.max_model_len / c.block_size;
  const std::int32_t longest = *std::max_element(c.context_lens.begin(), c.context_lens.end());
  const std::uint32_t total_blocks =
      c.batch * ((static_cast<std::uint32_t>(longest) + c.block_size - 1) / c.block_size);
  SeededRandom random(seed);
  std::vector<std::int32_t> physical(total_blocks);
  std::iota(physical.begin(), physical.end(), 0);
  for (std::size_t i = physical.size(); i > 1; --i) {
    std::swap(physical[i - 1], physical[random.below(i)]);
  }
  std::vector<std::int32_t> block_table(std::size_t{c.batch} * blocks_per_request);
  for (std::size_t i = 0; i < block_table.size(); ++i)
    block_table[i] = physical[i % physical.size()];

  Problem problem;
  using Direction = Problem::Direction;
  const std::uint32_t dim = c.head_dim;
  problem.add_placeholder("query", {c.batch, c.heads, dim}, DType::bf16, Direction::in);
  problem.add_placeholder("key_cache", {total_blocks, c.block_size, 1, dim}, DType::bf16,
                          Direction::in);
  problem.add_placeholder("value_cache", {total_blocks, c.block_size, 1, dim}, DType::bf16,
                          Direction::in);
  problem.add_tensor("block_table", {c.batch, blocks_per_request}, Direction::in, block_table);
  problem.add_tensor("context_lens", {c.batch}, Direction::in, c.context_lens);
  problem.add_placeholder("out", {c.batch, c.heads, dim}, DType::f32, Direction::out);
  problem.add_scalar(1.0f);
  return problem;
}

Problem make_attention_timing_problem_by_index(std::size_t case_index, std::uint64_t seed) {
  return make_attention_timing_problem(attention_cases().at(case_index), seed);
}

std::uint64_t expected_pipeline_tasks(const AttentionCase& c) {
  const std::uint64_t tile = head_tile(c.heads);
  const std::uint64_t head_tiles = (c.heads + tile - 1) / tile;
  std::uint64_t tasks = 0;
  for (const std::int32_t context : c.context_lens) {
    const std::uint64_t blocks =
        (static_cast<std::uint64_t>(context) + c.block_size - 1) / c.block_size;
    if (blocks > 0) tasks += head_tiles * (1 + 4 * blocks);
  }
  return tasks;
}

std::vector<AttentionCase> with_reference_production_cases(std::vector<AttentionCase> cases) {
  const auto all_8192 = [](std::size_t batch) { return std::vector<std::int32_t>(batch, 8192); };
  cases.push_back(
      make_attention_case("Case1", 256, 16, 128, 128, all_8192(256), 8192, 1e-3, true, true));
  cases.push_back(
      make_attention_case("Case2", 64, 64, 128, 64, all_8192(64), 8192, 1e-3, true, true));
  cases.push_back(
      make_attention_case("Case3", 64, 64, 256, 64, all_8192(64), 8192, 1e-3, true, true));
  return cases;
}

Example make_case_table_example(std::string name, std::string summary,
                                const std::vector<AttentionCase>& (*cases)()) {
  Example example;
  example.name = std::move(name);
  example.summary = std::move(summary);
  for (const AttentionCase& c : cases())
    example.cases.push_back(c.spec);
  example.make_problem = [cases](std::size_t index, std::uint64_t seed) {
    return make_attention_problem(cases().at(index), seed);
  };
  example.make_timing_problem = [cases](std::size_t index, std::uint64_t seed) {
    return make_attention_timing_problem(cases().at(index), seed);
  };
  example.make_scaled_problem = [cases](std::size_t index, std::uint64_t seed, double scale) {
    return make_attention_problem(scaled_case(cases().at(index), scale), seed);
  };
  return example;
}

}  // namespace tmr::examples::paged_attention
