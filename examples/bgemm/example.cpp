// bgemm: batched tiled matrix product with SPMD tasks; cases, golden, registration.
#include <string>
#include <vector>

#include "bgemm/kernels.hpp"
#include "bgemm/orchestration.hpp"
#include "common/catalog.hpp"
#include "common/seeded_random.hpp"

namespace tmr::examples::bgemm {

namespace {

struct Sizes {
  std::uint32_t batch, m, n, k;
  std::int32_t tile;
};

const std::vector<std::pair<CaseSpec, Sizes>>& case_table() {
  static const std::vector<std::pair<CaseSpec, Sizes>> table = {
      {{"Small", "f32 batch 2, M=N=K=64, tile 32 (8 tasks of 4 blocks)"}, {2, 64, 64, 64, 32}},
      {{"B4_256", "f32 batch 4, M=N=K=256, tile 64 (32 tasks of 16 blocks)"},
       {4, 256, 256, 256, 64}},
      {{"Rect", "f32 batch 3, M=64 N=128 K=96, tile 32 (18 tasks of 8 blocks)"},
       {3, 64, 128, 96, 32}},
  };
  return table;
}

Problem make_problem(std::size_t case_index, std::uint64_t seed) {
  const Sizes& s = case_table().at(case_index).second;
  SeededRandom random(seed);
  const std::vector<float> a = random.floats(std::size_t{s.batch} * s.m * s.k, -1.0, 1.0);
  const std::vector<float> b = random.floats(std::size_t{s.batch} * s.k * s.n, -1.0, 1.0);
  std::vector<double> golden(std::size_t{s.batch} * s.m * s.n, 0.0);
  for (std::uint32_t i = 0; i < s.batch; ++i) {
    for (std::uint32_t r = 0; r < s.m; ++r) {
      double* c_row = golden.data() + (std::size_t{i} * s.m + r) * s.n;
      for (std::uint32_t p = 0; p < s.k; ++p) {
        const double a_value = a[(std::size_t{i} * s.m + r) * s.k + p];
        const float* b_row = b.data() + (std::size_t{i} * s.k + p) * s.n;
        for (std::uint32_t q = 0; q < s.n; ++q)
          c_row[q] += a_value * b_row[q];
      }
    }
  }
  Problem problem;
  problem.add_tensor("a", {s.batch, s.m, s.k}, Problem::Direction::in, a);
  problem.add_tensor("b", {s.batch, s.k, s.n}, Problem::Direction::in, b);
  const int c = problem.add_tensor("c", {s.batch, s.m, s.n}, Problem::Direction::out,
                                   std::vector<float>(golden.size(), 0.0f));
  problem.add_scalar(s.tile);
  problem.expect(c, std::move(golden), {1e-3, 1e-3});
  problem.set_flops(2.0 * s.batch * s.m * s.n * s.k);
  return problem;
}

Example make_example() {
  Example example;
  example.name = "bgemm";
  example.summary =
      "batched tiled matmul: SPMD AIC tile products, SPMD AIV accumulation into C per k-step";
  for (const auto& [spec, sizes] : case_table())
    example.cases.push_back(spec);
  example.register_kernels = register_kernels;
  example.orchestration = orchestrate;
  example.make_problem = make_problem;
  return example;
}

}  // namespace

TMR_REGISTER_EXAMPLE(make_example)

}  // namespace tmr::examples::bgemm
