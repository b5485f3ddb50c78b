// Fresh outputs (Args::out): the engine places each `out` placeholder in the ring heap with
// Tensor::placed. On both platforms, in plain loops and parallel_for ones (the analysed path
// places them too), each output keeps the spec's shape, dtype and size, gets real memory of its
// own (filled when the spec says so) and the creating task as producer, and the kernel sees the
// same tensor the submit returned.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/platforms.hpp"
#include "tmr/tmr.hpp"

namespace tmr::testing {
namespace {

constexpr std::uint32_t kRows = 4;
constexpr std::uint32_t kCols = 3;
// The address Args gives a placeholder (args.hpp): a placed output never keeps it.
const void* const kPlaceholder = reinterpret_cast<const void*>(alignof(std::max_align_t));

std::atomic<int> kernel_mistakes{0};

// Checks its two outputs as the kernel sees them (an i32 [4, 3] filled with 7 and a bf16 [5]),
// then writes row-major indices into the first.
void produce(const KernelArgs& a) {
  const Tensor& grid = a.tensor(1);
  const Tensor& vec = a.tensor(2);
  const bool layout = grid.shape() == Shape{kRows, kCols} && grid.dtype() == DType::i32 &&
                      grid.buffer_bytes() == kRows * kCols * 4 && grid.is_contiguous() &&
                      vec.shape() == Shape{5} && vec.dtype() == DType::bf16 &&
                      vec.buffer_bytes() == 10 && grid.producer().valid() &&
                      grid.producer() == vec.producer() && grid.buffer() != kPlaceholder &&
                      vec.buffer() != kPlaceholder && grid.buffer() != vec.buffer();
  if (!layout) kernel_mistakes.fetch_add(1);
  auto* cells = grid.data_as<std::int32_t>();
  for (std::uint32_t k = 0; k < kRows * kCols; ++k) {
    if (cells[k] != 7) kernel_mistakes.fetch_add(1);
    cells[k] = static_cast<std::int32_t>(k);
  }
}
// Copies the producer's first output (i32 [4, 3]) into row `i` of an external [n, 12] tensor.
void consume(const KernelArgs& a) {
  const Tensor& grid = a.tensor(0);
  const Tensor& row = a.tensor(1);
  const auto* cells = grid.data_as<std::int32_t>();
  auto* dst = row.data_as<std::int32_t>();
  for (std::uint32_t k = 0; k < kRows * kCols; ++k)
    dst[k * row.stride(1)] = cells[k];
}

struct Case {
  PlatformKind platform;
  bool parallel_for;
};

class FreshOutputs : public ::testing::TestWithParam<Case> {
 protected:
  // The parameter's platform, one scheduler thread, `clusters` clusters, parallel_for analysed.
  static RuntimeConfig config_with(int clusters) {
    RuntimeConfig config;
    config.platform = GetParam().platform;
    config.clusters = clusters;
    config.scheduler_threads = 1;
    config.stall_timeout_s = 30;
    config.parallel_for_analysis = true;
    // At most 109 tasks a run (those that wait for heap too: fewer than an eighth of this window,
    // so a wait resumes when every task has finished, as at the default).
    config.ring = few_tasks_ring();
    return config;
  }
  // `body` for each of `n` iterations: parallel_for, or an ordinary loop for the plain case.
  template <class Body>
  static void iterate(Orchestrator& o, std::uint32_t n, const Body& body) {
    if (GetParam().parallel_for) {
      o.parallel_for(n, body);
    } else {
      for (std::uint32_t i = 0; i < n; ++i)
        body(o, i);
    }
  }
};

TEST_P(FreshOutputs, ArePlacedWithTheirSpecAndTheirTask) {
  constexpr std::uint32_t kIterations = 12;
  Runtime runtime(config_with(2));
  const KernelId produce_id = runtime.kernels().add("produce", CoreType::aiv, &produce);
  const KernelId consume_id = runtime.kernels().add("consume", CoreType::aiv, &consume);
  std::vector<float> x(kIterations);
  std::vector<std::int32_t> copies(std::size_t{kIterations} * kRows * kCols, -1);
  kernel_mistakes = 0;
  int orchestrator_mistakes = 0;
  std::set<const void*> buffers;
  const RunResult result = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor tx = Tensor::wrap(x.data(), {kIterations}, DType::f32);
    const Tensor tcopies = Tensor::wrap(copies.data(), {kIterations, kRows * kCols}, DType::i32);
    const auto body = [&](Orchestrator& o, std::int64_t i) {
      const auto row = static_cast<std::uint32_t>(i);
      const TaskOutputs made =
          o.submit_aiv(produce_id, Args()
                                       .in(tx.view({1}, {row}))
                                       .out(TensorSpec({kRows, kCols}, DType::i32).fill(7))
                                       .out(TensorSpec({5}, DType::bf16)));
      if (!made.valid() || made.size() != 2) {
        ++orchestrator_mistakes;
        return;
      }
      const Tensor& grid = made[0];
      const Tensor& vec = made[1];
      const bool layout = grid.shape() == Shape{kRows, kCols} && grid.dtype() == DType::i32 &&
                          grid.buffer_bytes() == kRows * kCols * 4 && grid.version() == 0 &&
                          vec.shape() == Shape{5} && vec.dtype() == DType::bf16 &&
                          vec.buffer_bytes() == 10 && grid.producer() == made.task() &&
                          vec.producer() == made.task() && grid.buffer() != kPlaceholder &&
                          vec.buffer() != kPlaceholder;
      if (!layout) ++orchestrator_mistakes;
      buffers.insert(grid.buffer());
      buffers.insert(vec.buffer());
      o.submit_aiv(consume_id,
                   Args().in(grid).out_existing(tcopies.view({1, kRows * kCols}, {row, 0})));
    };
    iterate(o, kIterations, body);
  });
  ASSERT_TRUE(result.ok()) << result.status.to_string();
  EXPECT_EQ(orchestrator_mistakes, 0);
  EXPECT_EQ(kernel_mistakes.load(), 0);
  // A task's two outputs never share memory (the kernel checks); the heap may reuse memory
  // across iterations, so only some distinct buffers are required.
  EXPECT_GE(buffers.size(), std::size_t{4});
  for (std::uint32_t i = 0; i < kIterations; ++i) {
    for (std::uint32_t k = 0; k < kRows * kCols; ++k)
      ASSERT_EQ(copies[std::size_t{i} * kRows * kCols + k], static_cast<std::int32_t>(k)) << i;
  }
  if (GetParam().parallel_for) {
    EXPECT_GT(result.stats.loop_tasks_analysed, 0u);
  }
}

// A task that creates buffers stays with its scope after it and every reader of its outputs
// finished (the plain submit counts the scope's reference when it wires the task,
// OrchestratorCore::wire_plain): a task submitted after that still reads its output, and the
// output's memory is not handed to a later task's output.
TEST_P(FreshOutputs, StayWithTheirScopeAfterEveryReaderFinished) {
  Runtime runtime(config_with(1));
  const KernelId produce_id = runtime.kernels().add("produce", CoreType::aiv, &produce);
  const KernelId consume_id = runtime.kernels().add("consume", CoreType::aiv, &consume);
  constexpr std::uint32_t kCopies = 3;
  std::vector<float> x(2);
  std::vector<std::int32_t> copies(std::size_t{kCopies} * kRows * kCols, -1);
  kernel_mistakes = 0;
  bool overlap = false;
  const RunResult result = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor tx = Tensor::wrap(x.data(), {2}, DType::f32);
    const Tensor tcopies = Tensor::wrap(copies.data(), {kCopies, kRows * kCols}, DType::i32);
    const auto produce_one = [&](std::uint32_t i) {
      return o.submit_aiv(produce_id, Args()
                                          .in(tx.view({1}, {i}))
                                          .out(TensorSpec({kRows, kCols}, DType::i32).fill(7))
                                          .out(TensorSpec({5}, DType::bf16)));
    };
    const auto copy_row = [&](const Tensor& grid, std::uint32_t row) {
      const Tensor dst = tcopies.view({1, kRows * kCols}, {row, 0});
      o.submit_aiv(consume_id, Args().in(grid).out_existing(dst));
      o.wait_for(dst);
    };
    const TaskOutputs first = produce_one(0);
    copy_row(first[0], 0);  // the creator and its only reader have finished
    const TaskOutputs second = produce_one(1);
    copy_row(second[0], 1);
    overlap = second[0].buffer() == first[0].buffer() || second[1].buffer() == first[0].buffer();
    copy_row(first[0], 2);  // still the first task's output
  });
  ASSERT_TRUE(result.ok()) << result.status.to_string();
  EXPECT_EQ(kernel_mistakes.load(), 0);
  EXPECT_FALSE(overlap) << "a live output's memory was handed out again";
  for (std::uint32_t c = 0; c < kCopies; ++c) {
    for (std::uint32_t k = 0; k < kRows * kCols; ++k)
      ASSERT_EQ(copies[std::size_t{c} * kRows * kCols + k], static_cast<std::int32_t>(k)) << c;
  }
}

// Fills its fresh output (i32, kMadeCells) with the iteration's index, read from its input.
constexpr std::uint32_t kMadeCells = 384;  // 1,536 bytes: one output is all a 2 KiB heap holds
void make_index(const KernelArgs& a) {
  const auto index = static_cast<std::int32_t>(*a.tensor(0).data_as<float>());
  auto* cells = a.tensor(1).data_as<std::int32_t>();
  for (std::uint32_t k = 0; k < kMadeCells; ++k)
    cells[k] = index;
}
void open_gate(const KernelArgs& a) {
  *a.tensor(0).data_as<float>() = 1.0f;
}
void fill_one(const KernelArgs& a) {
  *a.tensor(0).data_as<float>() = 2.0f;
}
// Copies the made output into its row of the result (the gate is read only to wait for it).
void copy_made(const KernelArgs& a) {
  const auto* made = a.tensor(0).data_as<std::int32_t>();
  auto* row = a.tensor(2).data_as<std::int32_t>();
  for (std::uint32_t k = 0; k < kMadeCells; ++k)
    row[k] = made[k];
}

// A task that makes a buffer stays with its scope even when it finished before its reader was
// submitted (so no edge holds it), until that reader ran. Each iteration (its own scope) makes an
// output, then submits independent tasks long enough for the maker to finish (on the sim the
// orchestrator's clock passes its end), then the reader, in a nested scope (another ring, so the
// readers waiting for the slow gate do not hold back the makers' ring). The makers' ring heap holds
// one output: the next iteration's may take this one's memory only once this one retired.
// Counting one reference instead of the scope's and the completion's (wire_plain, submit_wide's
// unguarded wiring) retires the maker at its finish: the reader's submit then names a creator
// whose scope ended, or the next maker overwrites the output before the gated reader copies it.
// Deterministic on the sim (the gate takes 1 ms there); checked by breaking either count.
TEST_P(FreshOutputs, StayWithTheirScopeWhenTheirReaderComesAfterTheirTaskFinished) {
  constexpr std::uint32_t kIterations = 6;
  constexpr std::uint32_t kFillers = 16;
  RuntimeConfig config = config_with(2);
  config.ring.heap_bytes = 2048;
  config.sim.costs.kernel_ns["open_gate"] = 1'000'000;
  Runtime runtime(config);
  const KernelId make_id = runtime.kernels().add("make_index", CoreType::aiv, &make_index);
  const KernelId gate_id = runtime.kernels().add("open_gate", CoreType::aiv, &open_gate);
  const KernelId fill_id = runtime.kernels().add("fill_one", CoreType::aiv, &fill_one);
  const KernelId copy_id = runtime.kernels().add("copy_made", CoreType::aiv, &copy_made);
  std::vector<float> index(kIterations);
  for (std::uint32_t i = 0; i < kIterations; ++i)
    index[i] = static_cast<float>(i);
  std::vector<float> gate(1, 0.0f);
  std::vector<float> filled(std::size_t{kIterations} * kFillers, 0.0f);
  std::vector<std::int32_t> result(std::size_t{kIterations} * kMadeCells, -1);
  const RunResult r = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor tindex = Tensor::wrap(index.data(), {kIterations}, DType::f32);
    const Tensor tgate = Tensor::wrap(gate.data(), {1}, DType::f32);
    const Tensor tfilled = Tensor::wrap(filled.data(), {kIterations, kFillers}, DType::f32);
    const Tensor tresult = Tensor::wrap(result.data(), {kIterations, kMadeCells}, DType::i32);
    o.submit_aiv(gate_id, Args().out_existing(tgate));
    const auto body = [&](Orchestrator& o, std::int64_t i) {
      const auto row = static_cast<std::uint32_t>(i);
      const TaskOutputs made = o.submit_aiv(
          make_id, Args().in(tindex.view({1}, {row})).out(TensorSpec({kMadeCells}, DType::i32)));
      for (std::uint32_t k = 0; k < kFillers; ++k)
        o.submit_aiv(fill_id, Args().out_existing(tfilled.view({1, 1}, {row, k})));
      const ScopeGuard readers = o.scope();
      o.submit_aiv(copy_id, Args().in(made[0]).in(tgate).out_existing(
                                tresult.view({1, kMadeCells}, {row, 0})));
    };
    if (GetParam().parallel_for) {
      o.parallel_for(kIterations, body, LoopOptions{.scope_per_iteration = true});
    } else {
      for (std::uint32_t i = 0; i < kIterations; ++i) {
        const ScopeGuard iteration = o.scope();
        body(o, i);
      }
    }
  });
  ASSERT_TRUE(r.ok()) << r.status.to_string();
  for (std::uint32_t i = 0; i < kIterations; ++i) {
    for (std::uint32_t k = 0; k < kMadeCells; ++k)
      ASSERT_EQ(result[std::size_t{i} * kMadeCells + k], static_cast<std::int32_t>(i)) << k;
  }
  if (GetParam().parallel_for) {
    EXPECT_GT(r.stats.loop_tasks_replayed_wide, 0u) << "the makers took the wide path";
  }
}

// TaskOutputs::operator[]: the in-range path is inline, an index past the outputs (or negative)
// is still the named error.
TEST_P(FreshOutputs, IndicesPastTheOutputsAreNamedErrors) {
  Runtime runtime(config_with(1));
  std::vector<std::string> messages;
  Shape first_shape;
  const RunResult result = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const TaskOutputs outputs = o.alloc(
        Args().out(TensorSpec(Shape{3, 2}, DType::f32)).out(TensorSpec(Shape{5}, DType::i32)));
    first_shape = outputs[0].shape();
    for (const int i : {2, -1}) {
      try {
        (void)outputs[i];
        messages.emplace_back("no error");
      } catch (const Error& e) {
        messages.emplace_back(e.what());
      }
    }
  });
  ASSERT_TRUE(result.ok()) << result.status.to_string();
  EXPECT_EQ(first_shape, (Shape{3, 2}));
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_NE(messages[0].find("task output #2 does not exist; the submit had 2 out arguments, so "
                             "use 0 to 1 or add another out(TensorSpec)"),
            std::string::npos)
      << messages[0];
  EXPECT_NE(messages[1].find("task output #-1 does not exist; the submit had 2 out arguments"),
            std::string::npos)
      << messages[1];
}

// Several outputs of odd sizes in one task (the plain submit's layout sums each placeholder's
// buffer_bytes, 64-byte aligned): each output gets its own aligned range of exactly its size,
// no two ranges of a task overlap, the filled ones hold their fill when the kernel starts, and
// the kernel sees the tensors the submit returned.
constexpr int kOddOutputs = 4;
struct OddSpec {
  Shape shape;
  DType dtype;
  std::uint64_t bytes;
};
const OddSpec kOdd[kOddOutputs] = {{Shape{3, 5}, DType::u8, 15},
                                   {Shape{2, 3, 3}, DType::i32, 72},
                                   {Shape{7}, DType::bf16, 14},
                                   {Shape{65}, DType::f32, 260}};
std::atomic<int> odd_mistakes{0};

// Checks the fills (u8 1, i32 -5, f32 2.5) and writes every byte of every output.
void fill_odd(const KernelArgs& a) {
  const auto* u8 = a.tensor(1).data_as<std::uint8_t>();
  for (int k = 0; k < 15; ++k)
    if (u8[k] != 1) odd_mistakes.fetch_add(1);
  const auto* i32 = a.tensor(2).data_as<std::int32_t>();
  for (int k = 0; k < 18; ++k)
    if (i32[k] != -5) odd_mistakes.fetch_add(1);
  const auto* f32 = a.tensor(4).data_as<float>();
  for (int k = 0; k < 65; ++k)
    if (f32[k] != 2.5f) odd_mistakes.fetch_add(1);
  for (int o = 1; o <= kOddOutputs; ++o) {
    const Tensor& t = a.tensor(o);
    if (t.shape() != kOdd[o - 1].shape || t.buffer_bytes() != kOdd[o - 1].bytes) {
      odd_mistakes.fetch_add(1);
    }
    std::memset(t.buffer(), 0x5a, t.buffer_bytes());
  }
}

TEST_P(FreshOutputs, OutputsOfOddSizesGetAlignedRangesOfTheirOwn) {
  constexpr std::uint32_t kIterations = 10;
  Runtime runtime(config_with(2));
  const KernelId fill_id = runtime.kernels().add("fill_odd", CoreType::aiv, &fill_odd);
  std::vector<float> x(kIterations);
  odd_mistakes = 0;
  int orchestrator_mistakes = 0;
  const RunResult result = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor tx = Tensor::wrap(x.data(), {kIterations}, DType::f32);
    const auto body = [&](Orchestrator& o, std::int64_t i) {
      const TaskOutputs made = o.submit_aiv(
          fill_id, Args()
                       .in(tx.view({1}, {static_cast<std::uint32_t>(i)}))
                       .out(TensorSpec(kOdd[0].shape, kOdd[0].dtype).fill(std::uint8_t{1}))
                       .out(TensorSpec(kOdd[1].shape, kOdd[1].dtype).fill(std::int32_t{-5}))
                       .out(TensorSpec(kOdd[2].shape, kOdd[2].dtype))
                       .out(TensorSpec(kOdd[3].shape, kOdd[3].dtype).fill(2.5f)));
      if (!made.valid() || made.size() != kOddOutputs) {
        ++orchestrator_mistakes;
        return;
      }
      for (int k = 0; k < kOddOutputs; ++k) {
        const Tensor& t = made[k];
        const auto at = reinterpret_cast<std::uintptr_t>(t.buffer());
        if (t.shape() != kOdd[k].shape || t.dtype() != kOdd[k].dtype ||
            t.buffer_bytes() != kOdd[k].bytes || t.producer() != made.task() || at % 64 != 0) {
          ++orchestrator_mistakes;
        }
        for (int j = 0; j < k; ++j) {  // disjoint from every earlier output of the task
          const auto other = reinterpret_cast<std::uintptr_t>(made[j].buffer());
          if (at < other + made[j].buffer_bytes() && other < at + t.buffer_bytes()) {
            ++orchestrator_mistakes;
          }
        }
      }
    };
    iterate(o, kIterations, body);
  });
  ASSERT_TRUE(result.ok()) << result.status.to_string();
  EXPECT_EQ(orchestrator_mistakes, 0);
  EXPECT_EQ(odd_mistakes.load(), 0);
}

// Kernels of RunsOfOneRuntimeOrderEveryReadAndWrite: fill an i32 [4] output with v + k (v the
// scalar), sum an i32 [4] into one external cell, double an i32 [4] in place.
constexpr std::uint32_t kCells = 4;
void fill_cells(const KernelArgs& a) {
  auto* out = a.tensor(0).data_as<std::int32_t>();
  const auto v = a.scalar<std::int32_t>(0);
  for (std::uint32_t k = 0; k < kCells; ++k)
    out[k] = v + static_cast<std::int32_t>(k);
}
void sum_cells(const KernelArgs& a) {
  const auto* in = a.tensor(0).data_as<std::int32_t>();
  std::int32_t sum = 0;
  for (std::uint32_t k = 0; k < kCells; ++k)
    sum += in[k];
  *a.tensor(1).data_as<std::int32_t>() = sum;
}
void double_cells(const KernelArgs& a) {
  auto* cells = a.tensor(0).data_as<std::int32_t>();
  for (std::uint32_t k = 0; k < kCells; ++k)
    cells[k] *= 2;
}

// Several runs of one runtime (the dependence unit's reset between them: local ids start again
// from 0, and each creator slot's fresh-read record must be forgotten): in each iteration a task
// creates a buffer, three tasks read it (kept with the creator), then either a write doubles it
// and a fourth reader sees the doubled values, or (every other iteration, alternating by run, so
// a run ends with records left full and unwritten) a fourth read moves the kept reads into the
// map. Every read sees the values of exactly the writes before it.
TEST_P(FreshOutputs, RunsOfOneRuntimeOrderEveryReadAndWrite) {
  constexpr std::uint32_t kIterations = 12;
  constexpr std::uint32_t kPerIteration = 4;  // the external cells an iteration writes
  Runtime runtime(config_with(2));
  const KernelId fill_id = runtime.kernels().add("fill_cells", CoreType::aiv, &fill_cells);
  const KernelId sum_id = runtime.kernels().add("sum_cells", CoreType::aiv, &sum_cells);
  const KernelId double_id = runtime.kernels().add("double_cells", CoreType::aiv, &double_cells);
  for (std::int32_t run = 0; run < 4; ++run) {
    SCOPED_TRACE("run " + std::to_string(run));
    std::vector<std::int32_t> sums(std::size_t{kIterations} * kPerIteration, -1);
    int orchestrator_mistakes = 0;
    const RunResult result = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
      const Tensor tsums = Tensor::wrap(sums.data(), {kIterations * kPerIteration}, DType::i32);
      const auto body = [&](Orchestrator& o, std::int64_t i) {
        const auto it = static_cast<std::uint32_t>(i);
        const TaskOutputs made = o.submit_aiv(
            fill_id, Args().out(TensorSpec({kCells}, DType::i32)).scalar(100 * run + 10 * it));
        if (!made.valid() || made.size() != 1) {
          ++orchestrator_mistakes;
          return;
        }
        const Tensor buf = made[0];
        for (std::uint32_t k = 0; k < 3; ++k)
          o.submit_aiv(sum_id, Args().in(buf).out_existing(tsums, {1}, {it * kPerIteration + k}));
        if ((it + static_cast<std::uint32_t>(run)) % 2 == 0) {
          o.submit_aiv(double_id, Args().inout(buf));
        }
        o.submit_aiv(sum_id, Args().in(buf).out_existing(tsums, {1}, {it * kPerIteration + 3}));
      };
      iterate(o, kIterations, body);
    });
    ASSERT_TRUE(result.ok()) << result.status.to_string();
    EXPECT_EQ(orchestrator_mistakes, 0);
    for (std::uint32_t it = 0; it < kIterations; ++it) {
      const std::int32_t sum = 4 * (100 * run + 10 * static_cast<std::int32_t>(it)) + 6;
      const bool doubled = (it + static_cast<std::uint32_t>(run)) % 2 == 0;
      for (std::uint32_t k = 0; k < 3; ++k)
        EXPECT_EQ(sums[it * kPerIteration + k], sum) << "iteration " << it << ", reader " << k;
      EXPECT_EQ(sums[it * kPerIteration + 3], doubled ? 2 * sum : sum) << "iteration " << it;
    }
  }
}

// fill_cells after a pause (threads; the sim charges its cost, set below): a reader that does not
// wait for it sees the heap's earlier bytes.
void slow_fill_cells(const KernelArgs& a) {
  std::this_thread::sleep_for(std::chrono::microseconds(300));
  fill_cells(a);
}
// Sums two i32 [4] inputs into one external cell (a submit naming two created tensors).
void sum_two(const KernelArgs& a) {
  const auto* first = a.tensor(0).data_as<std::int32_t>();
  const auto* second = a.tensor(1).data_as<std::int32_t>();
  std::int32_t sum = 0;
  for (std::uint32_t k = 0; k < kCells; ++k)
    sum += first[k] + second[k];
  *a.tensor(2).data_as<std::int32_t>() = sum;
}

// Submits naming one created tensor each, under every tag that takes part in dependences (a read
// kept with its creator, an overwrite with out_existing, a doubling with inout), and one naming
// two: every read sees the values of exactly the writes before it (the line path checks one
// created tensor's creator and keeps its read in one step, Dependence::begin_with_fresh_reads).
TEST_P(FreshOutputs, OneCreatedTensorASubmitIsOrderedAsItsTagSays) {
  constexpr std::uint32_t kIterations = 16;
  constexpr std::uint32_t kPerIteration = 4;
  Runtime runtime(config_with(2));
  const KernelId fill_id = runtime.kernels().add("fill_cells", CoreType::aiv, &fill_cells);
  const KernelId sum_id = runtime.kernels().add("sum_cells", CoreType::aiv, &sum_cells);
  const KernelId double_id = runtime.kernels().add("double_cells", CoreType::aiv, &double_cells);
  const KernelId two_id = runtime.kernels().add("sum_two", CoreType::aiv, &sum_two);
  const KernelId slow_id = runtime.kernels().add("slow_fill", CoreType::aiv, &slow_fill_cells);
  runtime.kernels().set_cost(slow_id, KernelCost{20000});
  std::vector<std::int32_t> sums(std::size_t{kIterations} * kPerIteration, -1);
  int orchestrator_mistakes = 0;
  const RunResult result = runtime.run([&](Orchestrator& o, const OrchestrationArgs&) {
    const Tensor tsums = Tensor::wrap(sums.data(), {kIterations * kPerIteration}, DType::i32);
    const auto body = [&](Orchestrator& o, std::int64_t i) {
      const auto it = static_cast<std::uint32_t>(i);
      const std::uint32_t at = it * kPerIteration;
      const auto v = static_cast<std::int32_t>(10 * it);
      const TaskOutputs made =
          o.submit_aiv(slow_id, Args().out(TensorSpec({kCells}, DType::i32)).scalar(v));
      const TaskOutputs other =
          o.submit_aiv(fill_id, Args().out(TensorSpec({kCells}, DType::i32)).scalar(v + 1));
      if (made.size() != 1 || other.size() != 1) {
        ++orchestrator_mistakes;
        return;
      }
      const Tensor buf = made[0];
      o.submit_aiv(sum_id, Args().in(buf).out_existing(tsums, {1}, {at}));
      o.submit_aiv(fill_id, Args().out_existing(buf).scalar(v + 3));  // overwritten
      o.submit_aiv(sum_id, Args().in(buf).out_existing(tsums, {1}, {at + 1}));
      o.submit_aiv(double_id, Args().inout(buf));
      o.submit_aiv(sum_id, Args().in(buf).out_existing(tsums, {1}, {at + 2}));
      o.submit_aiv(two_id, Args().in(buf).in(other[0]).out_existing(tsums, {1}, {at + 3}));
    };
    iterate(o, kIterations, body);
  });
  ASSERT_TRUE(result.ok()) << result.status.to_string();
  EXPECT_EQ(orchestrator_mistakes, 0);
  for (std::uint32_t it = 0; it < kIterations; ++it) {
    const auto v = static_cast<std::int32_t>(10 * it);
    const std::uint32_t at = it * kPerIteration;
    EXPECT_EQ(sums[at], 4 * v + 6) << "iteration " << it << ": the first fill";
    EXPECT_EQ(sums[at + 1], 4 * (v + 3) + 6) << "iteration " << it << ": the overwrite";
    EXPECT_EQ(sums[at + 2], 2 * (4 * (v + 3) + 6)) << "iteration " << it << ": the doubling";
    EXPECT_EQ(sums[at + 3], 2 * (4 * (v + 3) + 6) + 4 * (v + 1) + 6) << "iteration " << it;
  }
}

INSTANTIATE_TEST_SUITE_P(Platforms, FreshOutputs,
                         ::testing::Values(Case{PlatformKind::threads, false},
                                           Case{PlatformKind::threads, true},
                                           Case{PlatformKind::sim, false},
                                           Case{PlatformKind::sim, true}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return platform_suffix(info.param.platform) +
                                  (info.param.parallel_for ? "_parallel_for" : "_plain");
                         });

}  // namespace
}  // namespace tmr::testing
