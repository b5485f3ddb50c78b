// alternating_matmul_add: the reference's independent-task benchmark. C[b,m] = A[b,m] @ B[b,m] on
// 128x128 f32 tiles (AIC) and Z[b,n] = X[b,n] + Y[b,n] (AIV); the orchestration alternates one
// matmul task (matmul_batch tiles) and one add task (add_batch tiles). No task depends on another.
//
// Host tensors: A, B, C [batch, M, 128, 128] f32; X, Y, Z [batch, N, 128, 128] f32.
// Scalars (i64): batch, M, N, matmul_batch, add_batch.
#include <string>
#include <vector>

#include "common/catalog.hpp"
#include "common/seeded_random.hpp"
#include "common/tile_ops.hpp"
#include "tmr/error.hpp"

namespace tmr::examples::alternating_matmul_add {

namespace {

constexpr std::uint32_t kTile = 128;
constexpr std::uint64_t kTileElements = std::uint64_t{kTile} * kTile;

struct Sizes {
  std::int64_t batch, m, n, matmul_batch, add_batch;
};

[[noreturn]] void invalid(const std::string& message) {
  throw Error(ErrorCode::invalid_args, "alternating_matmul_add: " + message);
}

// Tiles in a flat group view.
std::uint64_t tiles_of(const Tensor& t) {
  if (t.dtype() != DType::f32 || !t.is_contiguous() || t.elements() % kTileElements != 0) {
    invalid(t.to_string() + " is not a contiguous run of 128x128 f32 tiles");
  }
  return t.elements() / kTileElements;
}

void matmul_kernel(const KernelArgs& args) {  // in A, in B, out C (flat groups of tiles)
  const std::uint64_t tiles = tiles_of(args.tensor(0));
  if (tiles_of(args.tensor(1)) != tiles || tiles_of(args.tensor(2)) != tiles) {
    invalid("matmul: A, B and C must hold the same number of tiles");
  }
  const float* a = args.tensor(0).data_as<float>();
  const float* b = args.tensor(1).data_as<float>();
  float* c = args.tensor(2).data_as<float>();
  for (std::uint64_t t = 0; t < tiles; ++t) {
    const std::uint64_t at = t * kTileElements;
    matmul(a + at, b + at, c + at, kTile, kTile, kTile, kTile, false);
  }
}

void add_kernel(const KernelArgs& args) {  // in X, in Y, out Z
  const std::uint64_t tiles = tiles_of(args.tensor(0));
  if (tiles_of(args.tensor(1)) != tiles || tiles_of(args.tensor(2)) != tiles) {
    invalid("add: X, Y and Z must hold the same number of tiles");
  }
  const float* x = args.tensor(0).data_as<float>();
  const float* y = args.tensor(1).data_as<float>();
  float* z = args.tensor(2).data_as<float>();
  for (std::uint64_t i = 0; i < tiles * kTileElements; ++i)
    z[i] = x[i] + y[i];
}

// Sim cost hints: one load per operand tile and one store per result tile.
double matmul_flops(const KernelArgs& a) {
  return 2.0 * kTile * kTileElements * static_cast<double>(a.tensor(0).elements() / kTileElements);
}
double add_flops(const KernelArgs& a) {
  return static_cast<double>(a.tensor(0).elements());
}
double group_tiles(const KernelArgs& a) {
  return 3.0 * static_cast<double>(a.tensor(0).elements() / kTileElements);
}

void register_kernels(KernelRegistry& kernels) {
  KernelCost matmul_cost{0, matmul_flops};
  matmul_cost.tiles = group_tiles;
  kernels.set_cost(kernels.add("alt_matmul", CoreType::aic, matmul_kernel), matmul_cost);
  KernelCost add_cost{0, add_flops};
  add_cost.tiles = group_tiles;
  kernels.set_cost(kernels.add("alt_add", CoreType::aiv, add_kernel), add_cost);
}

void orchestrate(Orchestrator& o, const OrchestrationArgs& args) {
  if (args.tensor_count() != 6 || args.scalar_count() != 5) {
    o.report_fatal(ErrorCode::invalid_args,
                   "alternating_matmul_add: expects 6 tensors (A, B, C, X, Y, Z) and 5 scalars "
                   "(batch, M, N, matmul_batch, add_batch)");
    return;
  }
  const Sizes s{args.scalar<std::int64_t>(0), args.scalar<std::int64_t>(1),
                args.scalar<std::int64_t>(2), args.scalar<std::int64_t>(3),
                args.scalar<std::int64_t>(4)};
  const std::int64_t matmul_tiles = s.batch * s.m;
  const std::int64_t add_tiles = s.batch * s.n;
  if (s.batch < 0 || s.m < 0 || s.n < 0 || s.matmul_batch <= 0 || s.add_batch <= 0 ||
      matmul_tiles % s.matmul_batch != 0 || add_tiles % s.add_batch != 0 ||
      static_cast<std::uint64_t>(matmul_tiles) * kTileElements != args.tensor(0).elements() ||
      static_cast<std::uint64_t>(add_tiles) * kTileElements != args.tensor(3).elements()) {
    o.report_fatal(ErrorCode::invalid_args,
                   "alternating_matmul_add: batch*M must be a multiple of matmul_batch, batch*N "
                   "of add_batch, and the tensors must hold exactly those 128x128 tiles");
    return;
  }
  const auto flat = [](const Tensor& t) {
    return t.reshape({static_cast<std::uint32_t>(t.elements())});
  };
  const Tensor a = flat(args.tensor(0)), b = flat(args.tensor(1)), c = flat(args.tensor(2));
  const Tensor x = flat(args.tensor(3)), y = flat(args.tensor(4)), z = flat(args.tensor(5));
  const KernelId matmul = o.kernel("alt_matmul");
  const KernelId add = o.kernel("alt_add");
  const std::int64_t matmul_groups = matmul_tiles / s.matmul_batch;
  const std::int64_t add_groups = add_tiles / s.add_batch;
  const auto group_view = [](const Tensor& t, std::int64_t group, std::int64_t size) {
    const auto elements =
        static_cast<std::uint32_t>(size * static_cast<std::int64_t>(kTileElements));
    return t.view({elements}, {static_cast<std::uint32_t>(group) * elements});
  };
  for (std::int64_t g = 0; g < std::max(matmul_groups, add_groups); ++g) {
    if (g < matmul_groups) {
      o.submit_aic(matmul, Args()
                               .in(group_view(a, g, s.matmul_batch))
                               .in(group_view(b, g, s.matmul_batch))
                               .out_existing(group_view(c, g, s.matmul_batch)));
    }
    if (g < add_groups) {
      o.submit_aiv(add, Args()
                            .in(group_view(x, g, s.add_batch))
                            .in(group_view(y, g, s.add_batch))
                            .out_existing(group_view(z, g, s.add_batch)));
    }
  }
}

const std::vector<std::pair<CaseSpec, Sizes>>& case_table() {
  static const std::vector<std::pair<CaseSpec, Sizes>> table = {
      {{"default", "batch 1, M 1, N 1, 1 tile per task (2 tasks), tol 1e-3"}, {1, 1, 1, 1, 1}},
      {{"Small", "batch 8, M 4, N 4, 4 tiles per task (16 tasks), tol 1e-3"}, {8, 4, 4, 4, 4}},
      {{"Case1", "batch 500, M 4, N 4, 4 tiles per task (1000 tasks), tol 1e-3", true, true},
       {500, 4, 4, 4, 4}},
      {{"Case2", "batch 512, M 2, N 5, 4/5 tiles per task (768 tasks), tol 1e-3", true, true},
       {512, 2, 5, 4, 5}},
  };
  return table;
}

Shape tile_shape(std::int64_t batch, std::int64_t count) {
  return {static_cast<std::uint32_t>(batch), static_cast<std::uint32_t>(count), kTile, kTile};
}

void add_scalars(Problem& problem, const Sizes& s) {
  for (const std::int64_t v : {s.batch, s.m, s.n, s.matmul_batch, s.add_batch})
    problem.add_scalar(v);
}

Problem make_problem(std::size_t case_index, std::uint64_t seed) {
  const Sizes& s = case_table().at(case_index).second;
  const std::size_t mm = static_cast<std::size_t>(s.batch * s.m) * kTileElements;
  const std::size_t ad = static_cast<std::size_t>(s.batch * s.n) * kTileElements;
  SeededRandom random(seed);
  const std::vector<float> a = random.floats(mm, -0.02, 0.02);
  const std::vector<float> b = random.floats(mm, -0.02, 0.02);
  const std::vector<float> x = random.floats(ad, -0.02, 0.02);
  const std::vector<float> y = random.floats(ad, -0.02, 0.02);
  std::vector<double> c_golden(mm, 0.0);
  for (std::size_t t = 0; t < mm / kTileElements; ++t) {
    const std::size_t at = t * kTileElements;
    for (std::uint32_t i = 0; i < kTile; ++i)
      for (std::uint32_t k = 0; k < kTile; ++k) {
        const double aik = a[at + i * kTile + k];
        for (std::uint32_t j = 0; j < kTile; ++j)
          c_golden[at + i * kTile + j] += aik * b[at + k * kTile + j];
      }
  }
  std::vector<double> z_golden(ad);
  for (std::size_t i = 0; i < ad; ++i)
    z_golden[i] = double{x[i]} + double{y[i]};
  using Direction = Problem::Direction;
  Problem problem;
  problem.add_tensor("A", tile_shape(s.batch, s.m), Direction::in, a);
  problem.add_tensor("B", tile_shape(s.batch, s.m), Direction::in, b);
  const int c = problem.add_tensor("C", tile_shape(s.batch, s.m), Direction::out,
                                   std::vector<float>(mm, 0.0f));
  problem.add_tensor("X", tile_shape(s.batch, s.n), Direction::in, x);
  problem.add_tensor("Y", tile_shape(s.batch, s.n), Direction::in, y);
  const int z = problem.add_tensor("Z", tile_shape(s.batch, s.n), Direction::out,
                                   std::vector<float>(ad, 0.0f));
  add_scalars(problem, s);
  problem.expect(c, std::move(c_golden), {1e-3, 1e-3});
  problem.expect(z, std::move(z_golden), {1e-3, 1e-3});
  problem.set_flops(2.0 * kTile * static_cast<double>(mm) + static_cast<double>(ad));
  return problem;
}

Problem make_timing_problem(std::size_t case_index, std::uint64_t) {
  const Sizes& s = case_table().at(case_index).second;
  using Direction = Problem::Direction;
  Problem problem;
  for (const char* name : {"A", "B", "C"}) {
    problem.add_placeholder(name, tile_shape(s.batch, s.m), DType::f32,
                            name[0] == 'C' ? Direction::out : Direction::in);
  }
  for (const char* name : {"X", "Y", "Z"}) {
    problem.add_placeholder(name, tile_shape(s.batch, s.n), DType::f32,
                            name[0] == 'Z' ? Direction::out : Direction::in);
  }
  add_scalars(problem, s);
  return problem;
}

Example make_example() {
  Example example;
  example.name = "alternating_matmul_add";
  example.summary =
      "independent AIC matmul and AIV add tasks on 128x128 f32 tiles, alternating "
      "(orchestration-bound in the reference)";
  for (const auto& [spec, sizes] : case_table())
    example.cases.push_back(spec);
  example.register_kernels = register_kernels;
  example.orchestration = orchestrate;
  example.make_problem = make_problem;
  example.make_timing_problem = make_timing_problem;
  return example;
}

}  // namespace

TMR_REGISTER_EXAMPLE(make_example)

}  // namespace tmr::examples::alternating_matmul_add
