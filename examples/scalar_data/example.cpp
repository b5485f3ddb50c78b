// scalar_data: data-dependent task counts and orchestrator-side tensor reads and writes.
#include <string>
#include <vector>

#include "common/catalog.hpp"
#include "common/seeded_random.hpp"
#include "scalar_data/kernels.hpp"
#include "scalar_data/orchestration.hpp"

namespace tmr::examples::scalar_data {

namespace {

struct Sizes {
  std::uint32_t n;
  float threshold;
};

const std::vector<std::pair<CaseSpec, Sizes>>& case_table() {
  static const std::vector<std::pair<CaseSpec, Sizes>> table = {
      {{"Default", "N 64, threshold 0.5 (about 16 square tasks)"}, {64, 0.5f}},
      {{"None", "N 64, threshold 2 (no value passes: zero square tasks)"}, {64, 2.0f}},
      {{"All", "N 256, threshold -2 (every value passes: 256 square tasks)"}, {256, -2.0f}},
      {{"Large", "N 4096, threshold 0.9 (about 200 square tasks)"}, {4096, 0.9f}},
  };
  return table;
}

Problem make_problem(std::size_t case_index, std::uint64_t seed) {
  const Sizes& s = case_table().at(case_index).second;
  SeededRandom random(seed);
  const std::vector<float> values = random.floats(s.n, -1.0, 1.0);
  const std::vector<float> summary = random.floats(4, 0.0, 10.0);

  std::vector<double> result(s.n, 0.0);
  std::int32_t found = 0;
  float sum = 0.0f;  // the kernel sums in float; so does the golden, in the same order
  for (const float value : values) {
    if (value > s.threshold) {
      const float square = value * value;
      result[static_cast<std::size_t>(found++)] = square;
    }
  }
  for (const double square : result)
    sum += static_cast<float>(square);
  const double total = static_cast<double>(summary[1] + sum);
  const std::vector<double> golden_summary = {static_cast<double>(found), total, found * total,
                                              static_cast<double>(summary[3]) + 1.0};

  Problem problem;
  using Direction = Problem::Direction;
  problem.add_tensor("values", {s.n}, Direction::in, values);
  const int count = problem.add_tensor("count", {1}, Direction::out, std::vector<std::int32_t>{-1});
  const int result_index =
      problem.add_tensor("result", {s.n}, Direction::out, std::vector<float>(s.n, 0.0f));
  const int summary_index = problem.add_tensor("summary", {4}, Direction::inout, summary);
  problem.add_scalar(s.threshold);
  problem.expect(count, {static_cast<double>(found)}, {0, 0});
  problem.expect(result_index, std::move(result), {1e-5, 1e-5});
  problem.expect(summary_index, golden_summary, {1e-4, 1e-5});
  return problem;
}

Example make_example() {
  Example example;
  example.name = "scalar_data";
  example.summary =
      "a kernel computes a count; the orchestration reads it (get_tensor_data), submits that many "
      "tasks, and writes an INOUT tensor (set_tensor_data)";
  for (const auto& [spec, sizes] : case_table())
    example.cases.push_back(spec);
  example.register_kernels = register_kernels;
  example.orchestration = orchestrate;
  example.make_problem = make_problem;
  return example;
}

}  // namespace

TMR_REGISTER_EXAMPLE(make_example)

}  // namespace tmr::examples::scalar_data
