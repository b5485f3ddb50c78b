// The paged-attention kernels called directly (no engine): the four-kernel pipeline and the fused
// MIX kernels, driven block by block like their orchestrations, must match the golden.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include "common/cluster_pipe.hpp"
#include "paged_attention/attention_cases.hpp"
#include "paged_attention/kernels.hpp"
#include "paged_attention_mix/kernels.hpp"
#include "test_support.hpp"
#include "tmr/error.hpp"

namespace tmr::examples::paged_attention {
namespace {

using testing::DirectCall;

// Host buffers and the 2-D views an orchestration would build.
struct AttentionHost {
  AttentionInputs in;
  std::vector<float> out;
  Tensor query_rows, key_rows, value_rows, out_rows;

  explicit AttentionHost(const AttentionCase& c, std::uint64_t seed = 3)
      : in(make_attention_inputs(c, seed)), out(in.query.size(), 0.0f) {
    const std::uint32_t tokens = in.total_blocks * in.block_size;
    query_rows = Tensor::wrap(in.query.data(), {in.batch * in.heads, in.head_dim}, DType::bf16);
    key_rows = Tensor::wrap(in.key_cache.data(), {tokens, in.head_dim}, DType::bf16);
    value_rows = Tensor::wrap(in.value_cache.data(), {tokens, in.head_dim}, DType::bf16);
    out_rows = Tensor::wrap(out.data(), {in.batch * in.heads, in.head_dim}, DType::f32);
  }
  std::uint32_t physical(std::uint32_t b, std::uint32_t bn) const {
    return static_cast<std::uint32_t>(in.block_table[b * in.blocks_per_request + bn]);
  }
  void expect_matches_golden(double tolerance) const {
    const std::vector<double> golden = attention_golden(in);
    for (std::size_t i = 0; i < golden.size(); ++i) {
      ASSERT_NEAR(out[i], golden[i], tolerance + tolerance * std::fabs(golden[i])) << "at " << i;
    }
  }
};

// Runs the four kernels per block, as the paged_attention orchestration submits them.
void run_pipeline(AttentionHost& s) {
  const std::uint32_t rows = s.in.heads;  // one 16-head tile in these cases
  const std::uint32_t bs = s.in.block_size;
  const std::uint32_t dim = s.in.head_dim;
  std::vector<float> scores(rows * bs), m_ij(rows), l_ij(rows), o_new(rows * dim);
  std::vector<bf16> p(rows * bs);
  std::vector<float> m_i(rows), l_i(rows), o_i(rows * dim);
  const Tensor t_scores = Tensor::wrap(scores.data(), {rows, bs}, DType::f32);
  const Tensor t_p = Tensor::wrap(p.data(), {rows, bs}, DType::bf16);
  const Tensor t_m_ij = Tensor::wrap(m_ij.data(), {rows}, DType::f32);
  const Tensor t_l_ij = Tensor::wrap(l_ij.data(), {rows}, DType::f32);
  const Tensor t_o_new = Tensor::wrap(o_new.data(), {rows, dim}, DType::f32);
  const Tensor t_m_i = Tensor::wrap(m_i.data(), {rows}, DType::f32);
  const Tensor t_l_i = Tensor::wrap(l_i.data(), {rows}, DType::f32);
  const Tensor t_o_i = Tensor::wrap(o_i.data(), {rows, dim}, DType::f32);
  for (std::uint32_t b = 0; b < s.in.batch; ++b) {
    const auto context = static_cast<std::uint32_t>(s.in.context_lens[b]);
    const std::uint32_t blocks = (context + bs - 1) / bs;
    const Tensor q = s.query_rows.view({rows, dim}, {b * rows, 0});
    const Tensor out = s.out_rows.view({rows, dim}, {b * rows, 0});
    for (std::uint32_t bn = 0; bn < blocks; ++bn) {
      const Shape at{s.physical(b, bn) * bs, 0};
      const Tensor k_t = s.key_rows.view({bs, dim}, at).transpose(0, 1);
      const Tensor v = s.value_rows.view({bs, dim}, at);
      const std::uint32_t valid = std::min(bs, context - bn * bs);
      qk_kernel(DirectCall{{q, k_t, t_scores}, {}}.args());
      softmax_prepare_kernel(
          DirectCall{{t_scores.view({rows, valid}, {0, 0}), t_p, t_m_ij, t_l_ij}, {}}
              .scalar(s.in.scale)
              .args());
      pv_kernel(DirectCall{{t_p, v, t_o_new}, {}}.args());
      online_update_kernel(DirectCall{{t_m_ij, t_l_ij, t_o_new, t_m_i, t_l_i, t_o_i, out}, {}}
                               .scalar<std::int32_t>(bn == 0)
                               .scalar<std::int32_t>(bn + 1 == blocks)
                               .args());
    }
  }
}

// Runs the fused MIX kernels per block on three threads of one "cluster", as the runtime would.
void run_mix(AttentionHost& s, std::uint32_t cluster) {
  const std::uint32_t rows = s.in.heads;
  const std::uint32_t bs = s.in.block_size;
  const std::uint32_t dim = s.in.head_dim;
  std::vector<float> m_i(rows), l_i(rows), o_i(rows * dim);
  const Tensor t_m_i = Tensor::wrap(m_i.data(), {rows}, DType::f32);
  const Tensor t_l_i = Tensor::wrap(l_i.data(), {rows}, DType::f32);
  const Tensor t_o_i = Tensor::wrap(o_i.data(), {rows, dim}, DType::f32);
  for (std::uint32_t b = 0; b < s.in.batch; ++b) {
    const auto context = static_cast<std::uint32_t>(s.in.context_lens[b]);
    const std::uint32_t blocks = (context + bs - 1) / bs;
    for (std::uint32_t bn = 0; bn < blocks; ++bn) {
      const Shape at{s.physical(b, bn) * bs, 0};
      DirectCall call{
          {s.query_rows.view({rows, dim}, {b * rows, 0}),
           s.key_rows.view({bs, dim}, at).transpose(0, 1), s.value_rows.view({bs, dim}, at), t_m_i,
           t_l_i, t_o_i, s.out_rows.view({rows, dim}, {b * rows, 0})},
          {}};
      call.scalar(s.in.scale)
          .scalar<std::int32_t>(static_cast<std::int32_t>(std::min(bs, context - bn * bs)))
          .scalar<std::int32_t>(bn == 0)
          .scalar<std::int32_t>(bn + 1 == blocks)
          .scalar(next_pipe_tag());
      std::exception_ptr errors[3];
      auto guarded = [&errors](int slot, auto body) {
        return std::thread([&errors, slot, body] {
          try {
            body();
          } catch (...) {
            errors[slot] = std::current_exception();
          }
        });
      };
      std::thread cube =
          guarded(0, [&] { paged_attention_mix::cube_kernel(call.args(0, 1, 0, cluster)); });
      std::thread vector0 =
          guarded(1, [&] { paged_attention_mix::vector_kernel(call.args(0, 1, 0, cluster)); });
      std::thread vector1 =
          guarded(2, [&] { paged_attention_mix::vector_kernel(call.args(0, 1, 1, cluster)); });
      cube.join();
      vector0.join();
      vector1.join();
      for (const std::exception_ptr& error : errors) {
        if (error) std::rethrow_exception(error);
      }
    }
  }
}

class AttentionKernels : public ::testing::TestWithParam<std::size_t> {};

TEST_P(AttentionKernels, PipelineKernelsMatchGolden) {
  const AttentionCase& c = attention_cases().at(GetParam());
  AttentionHost s(c);
  run_pipeline(s);
  s.expect_matches_golden(c.tolerance);
}

TEST_P(AttentionKernels, FusedMixKernelsMatchGolden) {
  const AttentionCase& c = attention_cases().at(GetParam());
  AttentionHost s(c);
  run_mix(s, /*cluster=*/kMaxClusters - 2);
  s.expect_matches_golden(c.tolerance);
}

std::vector<std::size_t> small_cases() {
  std::vector<std::size_t> indices;
  for (std::size_t i = 0; i < attention_cases().size(); ++i) {
    if (!attention_cases()[i].spec.large) indices.push_back(i);
  }
  return indices;
}

INSTANTIATE_TEST_SUITE_P(SmallCases, AttentionKernels, ::testing::ValuesIn(small_cases()),
                         [](const auto& info) { return attention_cases()[info.param].spec.name; });

TEST(AttentionKernels, SoftmaxZeroesPaddingAndSumsRoundedProbabilities) {
  constexpr std::uint32_t kRows = 2;
  constexpr std::uint32_t kWidth = 8;
  constexpr std::uint32_t kValid = 3;
  std::vector<float> scores = {1, 2, 3, 50, 50, 50, 50, 50,  // padding must be ignored
                               0, 0, 0, 50, 50, 50, 50, 50};
  std::vector<bf16> p(kRows * kWidth, bf16(9.0f));
  std::vector<float> m(kRows), l(kRows);
  const Tensor s_view =
      Tensor::wrap(scores.data(), {kRows, kWidth}, DType::f32).view({kRows, kValid}, {0, 0});
  softmax_prepare_kernel(DirectCall{
      {s_view, Tensor::wrap(p.data(), {kRows, kWidth}, DType::bf16),
       Tensor::wrap(m.data(), {kRows}, DType::f32), Tensor::wrap(l.data(), {kRows}, DType::f32)},
      {}}.scalar(0.5f)
                             .args());
  EXPECT_FLOAT_EQ(m[0], 1.5f);
  EXPECT_FLOAT_EQ(static_cast<float>(p[2]), 1.0f);
  EXPECT_FLOAT_EQ(static_cast<float>(p[1]), static_cast<float>(bf16(std::exp(-0.5f))));
  for (std::uint32_t j = kValid; j < kWidth; ++j)
    EXPECT_EQ(static_cast<float>(p[j]), 0.0f);
  const float rounded_sum =
      static_cast<float>(p[0]) + static_cast<float>(p[1]) + static_cast<float>(p[2]);
  EXPECT_FLOAT_EQ(l[0], rounded_sum);
  EXPECT_FLOAT_EQ(l[1], 3.0f);  // equal scores: three ones
}

TEST(AttentionKernels, MixVectorKernelAloneFailsWithAPipeErrorInsteadOfHanging) {
  // Without its cube partner the vector kernel must give up rather than wait forever.
  AttentionHost s(attention_cases().front());
  std::vector<float> m_i(16), l_i(16), o_i(16 * 16);
  DirectCall call{
      {s.query_rows.view({16, 16}, {0, 0}), s.key_rows.view({16, 16}, {0, 0}).transpose(0, 1),
       s.value_rows.view({16, 16}, {0, 0}), Tensor::wrap(m_i.data(), {16}, DType::f32),
       Tensor::wrap(l_i.data(), {16}, DType::f32), Tensor::wrap(o_i.data(), {16, 16}, DType::f32),
       s.out_rows.view({16, 16}, {0, 0})},
      {}};
  call.scalar(1.0f).scalar<std::int32_t>(16).scalar<std::int32_t>(1).scalar<std::int32_t>(1).scalar(
      next_pipe_tag());
  const std::chrono::milliseconds saved = pipe_timeout();
  set_pipe_timeout(std::chrono::milliseconds(200));
  EXPECT_THROW(paged_attention_mix::vector_kernel(call.args(0, 1, 0, kMaxClusters - 3)), Error);
  set_pipe_timeout(saved);
}

TEST(AttentionTasks, PipelineTaskCountsMatchTheReference) {
  const std::uint64_t expected[] = {13, 33, 22, 68};
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(expected_pipeline_tasks(attention_cases()[i]), expected[i])
        << attention_cases()[i].spec.name;
  }
}

}  // namespace
}  // namespace tmr::examples::paged_attention
