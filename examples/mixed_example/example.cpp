// mixed_example: every resource shape a task can have, five tasks per iteration on 128x128 f32
// tiles: AIC+AIV0+AIV1 (matmul, add, mul), AIC (matmul), one AIV (add), AIV0+AIV1 (add, mul) and
// AIC+AIV0 (matmul, add). Each kernel of a MIX task picks its own three arguments.
//
// Host tensors (15): A, B [128, 128]; C; D, E [16384]; F; G, H [16384]; I, J, K, L, M, N, O -
// every output [iters * 16384]. Golden: C, J, N = A @ B; F, K, L, O = D + E; I, M = G * H.
#include <string>
#include <vector>

#include "common/catalog.hpp"
#include "common/seeded_random.hpp"
#include "common/tile_ops.hpp"
#include "tmr/error.hpp"

namespace tmr::examples::mixed_example {

namespace {

constexpr std::uint32_t kTile = 128;
constexpr std::uint32_t kTileElements = kTile * kTile;

void expect_tile(const Tensor& t, const char* what) {
  if (t.dtype() != DType::f32 || !t.is_contiguous() || t.elements() != kTileElements) {
    throw Error(ErrorCode::invalid_args, std::string("mixed_example: ") + what +
                                             " must be 16384 contiguous f32, got " + t.to_string());
  }
}

// Arguments first, first + 1 (in) and first + 2 (out).
void matmul_at(const KernelArgs& args, int first) {
  for (int i = 0; i < 3; ++i)
    expect_tile(args.tensor(first + i), "a matmul operand");
  matmul(args.tensor(first).data_as<float>(), args.tensor(first + 1).data_as<float>(),
         args.tensor(first + 2).data_as<float>(), kTile, kTile, kTile, kTile, false);
}
template <class Op>
void elementwise_at(const KernelArgs& args, int first, Op op) {
  for (int i = 0; i < 3; ++i)
    expect_tile(args.tensor(first + i), "an elementwise operand");
  const float* x = args.tensor(first).data_as<float>();
  const float* y = args.tensor(first + 1).data_as<float>();
  float* z = args.tensor(first + 2).data_as<float>();
  for (std::uint32_t i = 0; i < kTileElements; ++i)
    z[i] = op(x[i], y[i]);
}
float plus(float a, float b) {
  return a + b;
}
float times(float a, float b) {
  return a * b;
}

// In a MIX task with the cube: matmul on 0-2, add on 3-5, mul on 6-8. Standalone (no cube):
// add on 0-2, mul on 3-5.
void matmul_kernel(const KernelArgs& a) {
  matmul_at(a, 0);
}
void add_kernel(const KernelArgs& a) {
  elementwise_at(a, 3, plus);
}
void mul_kernel(const KernelArgs& a) {
  elementwise_at(a, 6, times);
}
void add_standalone_kernel(const KernelArgs& a) {
  elementwise_at(a, 0, plus);
}
void mul_standalone_kernel(const KernelArgs& a) {
  elementwise_at(a, 3, times);
}

double matmul_flops(const KernelArgs&) {
  return 2.0 * kTile * kTileElements;
}
double elementwise_flops(const KernelArgs&) {
  return kTileElements;
}
double three_tiles(const KernelArgs&) {
  return 3;
}
double three_tiles_bytes(const KernelArgs&) {  // the kernel's own three operands
  return 3.0 * 4 * kTileElements;
}

void register_kernels(KernelRegistry& kernels) {
  const auto add = [&](const char* name, CoreType type, KernelFn fn,
                       double (*flops)(const KernelArgs&)) {
    KernelCost cost{0, flops};
    cost.bytes = three_tiles_bytes;
    cost.tiles = three_tiles;
    kernels.set_cost(kernels.add(name, type, fn), cost);
  };
  add("mixed_matmul", CoreType::aic, matmul_kernel, matmul_flops);
  add("mixed_add", CoreType::aiv, add_kernel, elementwise_flops);
  add("mixed_mul", CoreType::aiv, mul_kernel, elementwise_flops);
  add("mixed_add_standalone", CoreType::aiv, add_standalone_kernel, elementwise_flops);
  add("mixed_mul_standalone", CoreType::aiv, mul_standalone_kernel, elementwise_flops);
}

void orchestrate(Orchestrator& o, const OrchestrationArgs& args) {
  if (args.tensor_count() != 15 || args.tensor(2).elements() % kTileElements != 0) {
    o.report_fatal(ErrorCode::invalid_args,
                   "mixed_example: expects 15 tensors (A..O) with outputs of whole tiles");
    return;
  }
  const auto ext = [&](int i) {
    return args.tensor(i).reshape({static_cast<std::uint32_t>(args.tensor(i).elements())});
  };
  const Tensor a = ext(0), b = ext(1), d = ext(3), e = ext(4), g = ext(6), h = ext(7);
  const KernelId matmul = o.kernel("mixed_matmul");
  const KernelId add = o.kernel("mixed_add");
  const KernelId mul = o.kernel("mixed_mul");
  const KernelId add_alone = o.kernel("mixed_add_standalone");
  const KernelId mul_alone = o.kernel("mixed_mul_standalone");
  const auto iters = static_cast<std::uint32_t>(args.tensor(2).elements() / kTileElements);
  for (std::uint32_t i = 0; i < iters; ++i) {
    TMR_SCOPE(o);
    const auto tile = [&](int index) {
      return ext(index).view({kTileElements}, {i * kTileElements});
    };
    o.submit(MixKernels{matmul, add, mul}, Args()
                                               .in(a)
                                               .in(b)
                                               .out_existing(tile(2))
                                               .in(d)
                                               .in(e)
                                               .out_existing(tile(5))
                                               .in(g)
                                               .in(h)
                                               .out_existing(tile(8)));
    o.submit_aic(matmul, Args().in(a).in(b).out_existing(tile(9)));
    o.submit_aiv(add_alone, Args().in(d).in(e).out_existing(tile(10)));
    o.submit(MixKernels{kNoKernel, add_alone, mul_alone},
             Args().in(d).in(e).out_existing(tile(11)).in(g).in(h).out_existing(tile(12)));
    o.submit(MixKernels{matmul, add, kNoKernel},
             Args().in(a).in(b).out_existing(tile(13)).in(d).in(e).out_existing(tile(14)));
  }
}

Problem make_problem(std::uint32_t iters, std::uint64_t seed) {
  SeededRandom random(seed);
  const std::vector<float> a = random.floats(kTileElements, -0.02, 0.02);
  const std::vector<float> b = random.floats(kTileElements, -0.02, 0.02);
  const std::vector<float> d = random.floats(kTileElements, -0.02, 0.02);
  const std::vector<float> e = random.floats(kTileElements, -0.02, 0.02);
  const std::vector<float> g = random.floats(kTileElements, -0.02, 0.02);
  const std::vector<float> h = random.floats(kTileElements, -0.02, 0.02);
  std::vector<double> product(kTileElements, 0.0), sum(kTileElements), prod(kTileElements);
  for (std::uint32_t r = 0; r < kTile; ++r)
    for (std::uint32_t k = 0; k < kTile; ++k)
      for (std::uint32_t c = 0; c < kTile; ++c)
        product[r * kTile + c] += double{a[r * kTile + k]} * double{b[k * kTile + c]};
  for (std::uint32_t i = 0; i < kTileElements; ++i) {
    sum[i] = double{d[i]} + double{e[i]};
    prod[i] = double{g[i]} * double{h[i]};
  }
  const auto repeat = [&](const std::vector<double>& tile) {
    std::vector<double> all;
    for (std::uint32_t i = 0; i < iters; ++i)
      all.insert(all.end(), tile.begin(), tile.end());
    return all;
  };
  using Direction = Problem::Direction;
  Problem problem;
  const Shape out_shape{iters * kTileElements};
  const std::vector<float> zeros(std::size_t{iters} * kTileElements, 0.0f);
  const char* names = "ABCDEFGHIJKLMNO";
  const std::vector<const std::vector<double>*> golden_of = {
      nullptr, nullptr,  &product, nullptr, nullptr, &sum,     nullptr, nullptr,
      &prod,   &product, &sum,     &sum,    &prod,   &product, &sum};
  const std::vector<const std::vector<float>*> inputs = {&a, &b, nullptr, &d, &e, nullptr, &g, &h};
  for (int i = 0; i < 15; ++i) {
    const std::string name(1, names[i]);
    if (golden_of[static_cast<std::size_t>(i)] == nullptr) {
      const Shape shape = i < 2 ? Shape{kTile, kTile} : Shape{kTileElements};
      problem.add_tensor(name, shape, Direction::in, *inputs[static_cast<std::size_t>(i)]);
    } else {
      const int index = problem.add_tensor(name, out_shape, Direction::out, zeros);
      problem.expect(index, repeat(*golden_of[static_cast<std::size_t>(i)]), {1e-3, 1e-3});
    }
  }
  return problem;
}

Example make_example() {
  Example example;
  example.name = "mixed_example";
  example.summary =
      "all five task shapes per iteration: AIC+2 AIV, AIC, 1 AIV, 2 AIV, AIC+1 AIV (128x128 f32)";
  example.cases = {{"case1", "4 iterations (20 tasks), tol 1e-3"},
                   {"case2", "1 iteration (5 tasks), tol 1e-3"}};
  example.register_kernels = register_kernels;
  example.orchestration = orchestrate;
  example.make_problem = [](std::size_t index, std::uint64_t seed) {
    return make_problem(index == 0 ? 4 : 1, seed);
  };
  return example;
}

}  // namespace

TMR_REGISTER_EXAMPLE(make_example)

}  // namespace tmr::examples::mixed_example
