// Random orchestration programs for property tests: several buffers, random views and tags,
// nested scopes, MIX and SPMD tasks, element reads and writes from the orchestration. Each
// program runs on the runtime and, for reference, sequentially on host copies.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tmr/tmr.hpp"

namespace tmr::testing {

struct ProgramShape {
  int buffers = 3;
  int operations = 40;
  int max_dim = 12;
  int max_scope_depth = 5;
  int max_tasks_per_scope = 1 << 30;  // keep small for tiny rings
  bool top_level_tasks = true;        // submit tasks in the outermost scope too
  bool element_access = true;         // get/set_tensor_data
  bool fresh_outputs = true;
  int max_blocks = 4;
  // When set (a fuzzer's input), the generator takes its decisions from these bytes, one or two
  // per decision, and from the seed only once they run out.
  const std::vector<std::uint8_t>* decisions = nullptr;
  // parallel_for loops (tests/integration/test_parallel_for.cpp): chance per step of a loop of
  // affine iterations (independent or carried, fresh per-iteration buffers, chains, nested loops,
  // per-iteration scopes), some with a fall-back trigger (irregular view, element access, extra
  // task, unequal strides).
  double loop_chance = 0;
  int max_loop_iterations = 12;
  bool loop_triggers = true;
  bool tiny_loops = false;  // every iteration its own scope, no chains or extra tasks
  // Chance per tensor argument of a whole row of an external buffer, read four times in five
  // (many live readers of one region: the TensorMap's merged reader entries), else written.
  double hot_rows = 0;
  // When > 0, the program alternates phases of this many steps: in every second one each task
  // argument is a whole row of buffer 0 (untransposed; read four times in five, else written:
  // arguments that have their slot lines), in the others the steps above (partial boxes,
  // transposes, fresh outputs: arguments that miss them).
  int line_phases = 0;
  // Chance per task argument, drawn after the usual 15%, of one more fresh output (out(...)):
  // programs whose tasks mostly create buffers (the heap and scope holds of plain submits).
  double extra_fresh = 0;
};

// One recorded access of one task, in raw coordinates of a buffer the oracle can compare.
struct Access {
  int buffer = 0;  // program-wide buffer number (fresh outputs get new numbers)
  std::uint32_t r0 = 0, rows = 0, c0 = 0, cols = 0;
  bool write = false;
};

struct ProgramResult {
  Status status;
  std::vector<std::vector<std::int32_t>> buffers;    // runtime's final external buffers
  std::vector<std::vector<std::int32_t>> reference;  // sequential execution's
  std::vector<std::vector<Access>> accesses;         // per submitted task, by sequence
  std::vector<bool> has_no_dep;                      // per submitted task: a no_dep argument
  std::shared_ptr<const Trace> trace;
  std::string mismatch;  // element reads that disagreed with the reference, if any
  std::uint64_t tasks = 0;
  RunStats stats;
  int loops = 0;        // parallel_for loops in the program (outermost and nested)
  int clean_loops = 0;  // outermost loops without a fall-back trigger or nested loop
  // Heap bytes the program's tasks and allocs outside loops create (each output 64-byte
  // aligned, as a ring's heap places them).
  std::uint64_t fresh_bytes = 0;
};

// Registers the property-test kernels (once per registry).
void register_program_kernels(KernelRegistry& registry);

ProgramResult run_random_program(Runtime& runtime, std::uint64_t seed, const ProgramShape& shape);

// Checks that the run succeeded, element reads saw the sequential values and the final buffers
// equal the reference. Returns "" or a description of the first failure.
std::string check_values(const ProgramResult& result);

// Checks that for every pair of conflicting tasks the later one started after the earlier one
// finished. Returns an empty string when the trace respects every dependency.
std::string check_trace_order(const ProgramResult& result);

// Checks that every recorded edge joins two tasks that really conflict (no spurious edge, so an
// independent loop has no edge between its iterations). "" when exact.
std::string check_edges_exact(const ProgramResult& result);

// Runs `count` programs (seeds seed0, seed0+1, ...) and checks each: the run succeeded, element
// reads saw the sequential values, final buffers equal the reference, the trace respects every
// dependency. Returns "" or a description of the first failure. With `overflows`, a program that
// ends with dep_pool_overflow (a pool too small for what its scopes hold, a named user error) is
// counted there and not checked further, instead of failing.
std::string run_and_check_programs(Runtime& runtime, const ProgramShape& shape, int count,
                                   std::uint64_t seed0, int* overflows = nullptr);

// Tiny rings (a window of `window` tasks, a 16 KiB heap) and programs whose scopes fit them.
RuntimeConfig with_tiny_rings(RuntimeConfig config, std::uint32_t window);
ProgramShape tiny_ring_shape(std::uint32_t window);
// Tiny rings with a dependency pool of 32 records: it fills while tasks are being wired (the
// orchestrator waits for nodes after admitting a task, and reclaims meanwhile).
RuntimeConfig with_tiny_dependency_pool(RuntimeConfig config);

// Whole rows read by many live tasks and now and then written, alongside random views (the
// TensorMap's merged reader entries).
ProgramShape hot_rows_shape();
// Programs that switch between arguments that miss slot lines and arguments that have them
// (line_phases): the plain submit's line path pauses and comes back.
ProgramShape line_phases_shape();
// Tiny-ring programs (tiny_ring_shape) whose tasks mostly create buffers, and many of them, so
// the 16 KiB heap wraps within a run.
ProgramShape fresh_outputs_shape(std::uint32_t window);

}  // namespace tmr::testing
