// vector_example: the smallest end-to-end example; cases, golden, registration.
#include <cstdint>
#include <string>
#include <vector>

#include "common/catalog.hpp"
#include "common/seeded_random.hpp"
#include "vector_example/kernels.hpp"
#include "vector_example/orchestration.hpp"

namespace tmr::examples::vector_example {

namespace {

struct Sizes {
  std::uint32_t rows;
  std::uint32_t cols;
  std::int32_t tile_rows;
};

const std::vector<std::pair<CaseSpec, Sizes>>& case_table() {
  static const std::vector<std::pair<CaseSpec, Sizes>> table = {
      {{"Default", "f32 [128, 128], tiles of 16 rows (32 tasks)"}, {128, 128, 16}},
      {{"Wide", "f32 [512, 1024], tiles of 32 rows (64 tasks)"}, {512, 1024, 32}},
  };
  return table;
}

Problem make_problem(std::size_t case_index, std::uint64_t seed) {
  const Sizes& sizes = case_table().at(case_index).second;
  const std::size_t count = std::size_t{sizes.rows} * sizes.cols;
  SeededRandom random(seed);
  const std::vector<float> a = random.floats(count, -1.0, 1.0);
  const std::vector<float> b = random.floats(count, -1.0, 1.0);
  std::vector<double> golden(count);
  for (std::size_t i = 0; i < count; ++i) {
    const double sum = double{a[i]} + double{b[i]};
    golden[i] = (sum + 1.0) * (sum + 2.0);
  }
  Problem problem;
  const Shape shape{sizes.rows, sizes.cols};
  problem.add_tensor("a", shape, Problem::Direction::in, a);
  problem.add_tensor("b", shape, Problem::Direction::in, b);
  const int f = problem.add_tensor("f", shape, Problem::Direction::out, std::vector<float>(count));
  problem.add_scalar(sizes.tile_rows);
  problem.expect(f, std::move(golden), {1e-5, 1e-5});
  problem.set_flops(4.0 * static_cast<double>(count));  // add, +1, +2, mul
  return problem;
}

Example make_example() {
  Example example;
  example.name = "vector_example";
  example.summary = "f = (a + b + 1)(a + b + 2) over row tiles: add -> add_scalar x2 -> mul";
  for (const auto& [spec, sizes] : case_table())
    example.cases.push_back(spec);
  example.register_kernels = register_kernels;
  example.orchestration = orchestrate;
  example.make_problem = make_problem;
  return example;
}

}  // namespace

TMR_REGISTER_EXAMPLE(make_example)

}  // namespace tmr::examples::vector_example
