// The reference's spmd_* suite: SPMD tasks (AIV-only or MIX AIC+AIV0+AIV1, many blocks, some
// start-together) whose every block writes who it is - block index, block count, lane - into a
// cache line of its own. The golden knows which line each block of each task must have written,
// so a block that ran twice, never, or with the wrong index fails the check.
//
// Host tensors: plan [tasks, 4] i32 (shape: 0 AIV, 1 MIX; blocks; sync_start; first cache line),
// out [lines * 16] f32 (inout, as the reference: the tasks chain through it).
// Block counts are the reference's on a2a3 (24 clusters, 48 AIVs); examples with start-together
// tasks need that many clusters (Example::min_clusters).
#include <string>
#include <vector>

#include "common/catalog.hpp"
#include "tmr/error.hpp"

namespace tmr::examples::spmd {

namespace {

constexpr std::uint32_t kFloatsPerLine = 16;  // one 64-byte cache line per (block, lane)
constexpr std::uint32_t kMixLanes = 3;        // AIC, AIV0, AIV1

enum Shape : std::int32_t { kAiv = 0, kMix = 1 };

struct SpmdTask {
  Shape shape;
  std::int32_t blocks;
  bool sync_start;
};

std::uint32_t lanes_of(Shape shape) {
  return shape == kMix ? kMixLanes : 1;
}

// Writes [block index, block count, lane, task + 1] into the share's own cache line.
void write_line(const KernelArgs& args, std::uint32_t lane) {
  const Tensor& out = args.tensor(0);
  const auto base = args.scalar<std::int64_t>(0);
  const auto lanes = static_cast<std::uint32_t>(args.scalar<std::int32_t>(1));
  const auto task = args.scalar<std::int32_t>(2);
  const std::uint64_t line =
      static_cast<std::uint64_t>(base) + std::uint64_t{args.block_index()} * lanes + lane;
  if (out.dtype() != DType::f32 || !out.is_contiguous() ||
      (line + 1) * kFloatsPerLine > out.elements()) {
    throw Error(ErrorCode::invalid_args, "spmd: cache line " + std::to_string(line) +
                                             " is outside the output " + out.to_string());
  }
  float* at = out.data_as<float>() + line * kFloatsPerLine;
  at[0] = static_cast<float>(args.block_index());
  at[1] = static_cast<float>(args.block_count());
  at[2] = static_cast<float>(lane);
  at[3] = static_cast<float>(task + 1);
}

void aic_kernel(const KernelArgs& args) {
  write_line(args, 0);
}
void aiv_kernel(const KernelArgs& args) {
  const bool mix = args.scalar<std::int32_t>(1) == static_cast<std::int32_t>(kMixLanes);
  write_line(args, mix ? 1 + args.sub_block_id() : 0);
}

void register_kernels(KernelRegistry& kernels) {
  kernels.add("spmd_write_aic", CoreType::aic, aic_kernel);
  kernels.add("spmd_write_aiv", CoreType::aiv, aiv_kernel);
}

void orchestrate(Orchestrator& o, const OrchestrationArgs& args) {
  if (args.tensor_count() != 2 || args.tensor(0).dtype() != DType::i32 ||
      args.tensor(0).ndims() != 2 || args.tensor(0).dim(1) != 4) {
    o.report_fatal(ErrorCode::invalid_args,
                   "spmd: expects plan i32 [tasks, 4] and out f32 [lines * 16]");
    return;
  }
  const Tensor& plan = args.tensor(0);
  const Tensor& out = args.tensor(1);
  const KernelId aic = o.kernel("spmd_write_aic");
  const KernelId aiv = o.kernel("spmd_write_aiv");
  for (std::uint32_t t = 0; t < plan.dim(0); ++t) {
    const auto shape = static_cast<Shape>(o.get_tensor_data<std::int32_t>(plan, {t, 0}));
    const auto blocks = o.get_tensor_data<std::int32_t>(plan, {t, 1});
    const bool sync = o.get_tensor_data<std::int32_t>(plan, {t, 2}) != 0;
    const auto base = static_cast<std::int64_t>(o.get_tensor_data<std::int32_t>(plan, {t, 3}));
    if ((shape != kAiv && shape != kMix) || blocks < 1) {
      o.report_fatal(ErrorCode::invalid_args,
                     "spmd: plan row " + std::to_string(t) + " has shape " + std::to_string(shape) +
                         " (0 AIV, 1 MIX) and " + std::to_string(blocks) + " blocks (>= 1)");
      return;
    }
    Args task_args = Args()
                         .inout(out)
                         .scalar(base)
                         .scalar(static_cast<std::int32_t>(lanes_of(shape)))
                         .scalar(static_cast<std::int32_t>(t))
                         .blocks(static_cast<std::uint32_t>(blocks))
                         .sync_start(sync);
    if (shape == kMix) {
      o.submit(MixKernels{aic, aiv, aiv}, task_args);
    } else {
      o.submit_aiv(aiv, task_args);
    }
  }
}

Problem make_problem(const std::vector<SpmdTask>& tasks) {
  std::vector<std::int32_t> plan;
  std::uint32_t lines = 0;
  for (const SpmdTask& t : tasks) {
    plan.insert(plan.end(),
                {t.shape, t.blocks, t.sync_start ? 1 : 0, static_cast<std::int32_t>(lines)});
    lines += static_cast<std::uint32_t>(t.blocks) * lanes_of(t.shape);
  }
  std::vector<double> golden(std::size_t{lines} * kFloatsPerLine, 0.0);
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const SpmdTask& t = tasks[i];
    const auto base = static_cast<std::uint32_t>(plan[i * 4 + 3]);
    for (std::int32_t b = 0; b < t.blocks; ++b) {
      for (std::uint32_t lane = 0; lane < lanes_of(t.shape); ++lane) {
        double* at =
            golden.data() + (base + static_cast<std::uint32_t>(b) * lanes_of(t.shape) + lane) *
                                std::size_t{kFloatsPerLine};
        at[0] = b;
        at[1] = t.blocks;
        at[2] = lane;
        at[3] = static_cast<double>(i + 1);
      }
    }
  }
  Problem problem;
  problem.add_tensor("plan", {static_cast<std::uint32_t>(tasks.size()), 4}, Problem::Direction::in,
                     plan);
  const int out = problem.add_tensor("out", {lines * kFloatsPerLine}, Problem::Direction::inout,
                                     std::vector<float>(golden.size(), 0.0f));
  problem.expect(out, std::move(golden), {0.0, 0.0});  // exact, as the reference
  return problem;
}

// The reference's cohort sizes: a share of the a2a3 machine (24 clusters, 48 AIVs).
constexpr std::int32_t kClusters = 24;
constexpr std::int32_t kAivCores = 48;

std::vector<SpmdTask> starvation() {  // 18 normal MIX tasks, 2 start-together ones in between
  std::vector<SpmdTask> tasks;
  for (int group = 0; group < 3; ++group) {
    for (int i = 0; i < 6; ++i)
      tasks.push_back({kMix, 4, false});
    if (group < 2) tasks.push_back({kMix, 6, true});
  }
  return tasks;
}

std::vector<SpmdTask> sync_start_stress() {  // 6 rounds of 9 mixed-shape tasks
  std::vector<SpmdTask> tasks;
  for (int round = 0; round < 6; ++round) {
    for (int i = 0; i < 4; ++i)
      tasks.push_back({kMix, kClusters / 6, false});
    for (int i = 0; i < 2; ++i)
      tasks.push_back({kMix, kClusters / 2, true});
    tasks.push_back({kAiv, kClusters / 6, false});
    for (int i = 0; i < 2; ++i)
      tasks.push_back({kAiv, kClusters / 3, true});
  }
  return tasks;
}

struct SpmdExample {
  const char* name;
  const char* summary;
  std::vector<SpmdTask> tasks;
  bool needs_full_chip;  // start-together cohorts sized for 24 clusters
};

const std::vector<SpmdExample>& spmd_examples() {
  static const std::vector<SpmdExample> examples = {
      {"spmd_basic", "one MIX task (AIC + AIV0 + AIV1), one block", {{kMix, 1, false}}, false},
      {"spmd_multiblock_aiv",
       "AIV tasks of 4, 16, 24, 48, 96 blocks: one thread, cross-thread, all AIVs, two waves",
       {{kAiv, 4, false},
        {kAiv, 16, false},
        {kAiv, 24, false},
        {kAiv, 48, false},
        {kAiv, 96, false}},
       false},
      {"spmd_multiblock_mix",
       "MIX tasks of 2, 8, 12, 24, 48 blocks (up to two waves)",
       {{kMix, 2, false},
        {kMix, 8, false},
        {kMix, 12, false},
        {kMix, 24, false},
        {kMix, 48, false}},
       false},
      {"spmd_starvation", "18 MIX tasks of 4 blocks with 2 start-together ones of 6 in between",
       starvation(), true},
      {"spmd_sync_start",
       "MIX start-together tasks of 2, 8, 12 blocks and a plain one of 2",
       {{kMix, kClusters / 12, true},
        {kMix, kClusters / 3, true},
        {kMix, kClusters / 12, false},
        {kMix, kClusters / 2, true}},
       true},
      {"spmd_sync_start_aiv",
       "AIV start-together tasks of 4, 16, 24 blocks and a plain one of 4",
       {{kAiv, kAivCores / 12, true},
        {kAiv, kAivCores / 3, true},
        {kAiv, kAivCores / 12, false},
        {kAiv, kAivCores / 2, true}},
       true},
      {"spmd_sync_start_edge",
       "MIX start-together tasks of 1, 8 (one thread's clusters), 9, 23 blocks, then a plain one",
       {{kMix, 1, true},
        {kMix, kClusters / 3, true},
        {kMix, kClusters / 3 + 1, true},
        {kMix, kClusters - 1, true},
        {kMix, 1, false}},
       true},
      {"spmd_sync_start_stress", "6 rounds of 9 mixed-shape tasks (54 tasks, 24 start-together)",
       sync_start_stress(), true},
  };
  return examples;
}

bool register_all() {
  for (std::size_t i = 0; i < spmd_examples().size(); ++i) {
    register_example([i] {
      const SpmdExample& spec = spmd_examples()[i];
      Example example;
      example.name = spec.name;
      example.summary = spec.summary;
      example.cases.push_back(
          {"Default", std::to_string(spec.tasks.size()) + " tasks, exact check", false, false});
      example.register_kernels = register_kernels;
      example.orchestration = orchestrate;
      example.make_problem = [i](std::size_t, std::uint64_t) {
        return make_problem(spmd_examples()[i].tasks);
      };
      if (spec.needs_full_chip) example.min_clusters = kClusters;
      return example;
    });
  }
  return true;
}

[[maybe_unused]] const bool registered = register_all();

}  // namespace

}  // namespace tmr::examples::spmd
