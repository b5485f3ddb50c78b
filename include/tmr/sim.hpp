// The sim platform's configuration: the chip model's cost table (every default is documented with
// its source in docs/sim.md) and whether kernels really execute.
#pragma once

#include <map>
#include <string>

namespace tmr {

// The submit ratios that are re-fitted from threads-platform measurements (docs/sim.md, the
// re-fit rule). Their values live in src/platform/sim/calibration.cpp, so a re-fit rebuilds that
// one file rather than every unit that includes this header.
namespace sim_calibration {
extern const double analysed_submit_ratio;
extern const double wide_submit_ratio;
extern const double pattern_submit_ratio;
extern const double kept_setup_ratio;
extern const double kept_setup_base_ratio;
extern const double loop_setup_ratio;
extern const double loop_setup_fixed;
extern const double loop_setup_square;
}  // namespace sim_calibration

// Modelled costs in nanoseconds (rates in GFLOP/s and GB/s). Defaults model an a2a3 chip
// (Ascend 910B/C class); docs/sim.md cites the source of every figure. submit_ns,
// submit_per_tensor_ns, kernel_start_ns, tile_ns and memory_gbps are fitted to the reference's
// published end-to-end figures (`tmr fit`).
struct SimCostModel {
  // ---- orchestrator (charged to the orchestrator's clock) ----
  double submit_ns = 645;            // one task submit, fixed part
  double submit_per_tensor_ns = 40;  // per tensor argument (TensorMap lookup + insert)
  // A submit covered by a parallel_for template, as a share of an ordinary submit's cost: the
  // ratio of orchestrator CPU time per task measured on the threads platform (docs/sim.md).
  double analysed_submit_ratio = sim_calibration::analysed_submit_ratio;
  // The same for an analysed submit the wide replayed path covers (fresh outputs, buffers its own
  // iteration made, closed free reads: paged attention's positions), measured on paged attention
  // itself (docs/sim.md).
  double wide_submit_ratio = sim_calibration::wide_submit_ratio;
  // The same for a pattern loop's trusted submit (parallel_for(n, TaskPattern) at a verified
  // position: no replay compare), measured on the threads platform (docs/sim.md).
  double pattern_submit_ratio = sim_calibration::pattern_submit_ratio;
  // A loop's learning comparison, proof and analysis set-up, once per analysed loop of T template
  // tasks: loop_setup_ratio times what its template iteration's submits cost as ordinary submits,
  // plus (loop_setup_fixed + loop_setup_square * T^2) ordinary 4-tensor submits (fitted to
  // instruction counts at T = 4, 129, 257 in units of an ordinary submit: docs/sim.md).
  double loop_setup_ratio = sim_calibration::loop_setup_ratio;
  double loop_setup_fixed = sim_calibration::loop_setup_fixed;
  double loop_setup_square = sim_calibration::loop_setup_square;
  // The same set-up for a template kept from an earlier run of the Runtime that serves this run
  // with its proof (from the loop's first iteration, or rebound after it; no learning comparison,
  // no proof; its plans reused where this run's routes match): kept_setup_ratio of the per-task
  // part and kept_setup_base_ratio of the per-loop part (fitted to instruction counts at T = 4
  // and 257, checked at 129: docs/sim.md). A kept template that is proved again is charged as a
  // learned one.
  double kept_setup_ratio = sim_calibration::kept_setup_ratio;
  double kept_setup_base_ratio = sim_calibration::kept_setup_base_ratio;
  double alloc_ns = 200;              // one hidden alloc task
  double alloc_per_output_ns = 30;    // per output of an alloc
  double wire_edge_ns = 20;           // per dependency edge wired
  double scope_end_ns = 50;           // one scope end, fixed part
  double scope_end_per_task_ns = 10;  // per task the scope releases
  double element_access_ns = 300;     // one get/set_tensor_data (lookup + MMIO-free read)
  // A get_tensor_data in an analysed loop that needs no dependence discovery (an external buffer
  // with no live writer: the block table), as a share of element_access_ns (measured, docs/sim.md).
  double quiet_read_ratio = 0.31;
  // ---- scheduler threads (charged per step from the step's counters) ----
  double step_base_ns = 50;       // one loop iteration
  double poll_ns = 100;           // one status (COND) read of a running core
  double dispatch_write_ns = 40;  // payload write of one dispatch (STR burst)
  double doorbell_ns = 140;       // doorbell write of one dispatch
  double completion_ns = 150;     // one subtask seen finished (bookkeeping)
  double retire_ns = 100;         // one task completed (fanout close, releases)
  double edge_ns = 30;            // one consumer released at completion
  double pop_ns = 40;             // one ready task taken from a queue
  double push_ns = 40;            // one ready task put on a queue
  double wake_ns = 200;           // a parked scheduler thread starts stepping after new work
  // ---- cores ----
  double pickup_ns = 810;        // doorbell written -> kernel starts (AICore switch)
  double fin_visible_ns = 600;   // kernel ends -> its FIN is visible to the scheduler
  double kernel_start_ns = 300;  // fixed cost of every kernel start (pipeline fill, sync)
  double min_kernel_ns = 100;    // a roofline estimate below this is raised to it
  double tile_ns = 10;           // fixed cost of one tile moved from/to global memory (DMA issue)
  // ---- roofline ----
  double aic_gflops = 13000;   // cube peak of one AIC
  double aiv_gflops = 400;     // vector throughput of one AIV
  double memory_gbps = 1200;   // global memory (HBM) bandwidth shared by every running core
  double core_max_gbps = 400;  // what one core can draw at most
  // Run-to-run noise (placement spread, issue 12): every kernel duration is scaled by a factor
  // drawn uniformly from [1 - kernel_jitter, 1 + kernel_jitter] (below 1), the same sequence
  // for the same jitter_seed (an integer). 0 (default): no noise, the model is exact.
  double kernel_jitter = 0;
  double jitter_seed = 0;
  // Fixed durations by kernel name; they win over the kernel's own cost hint and the roofline.
  std::map<std::string, double> kernel_ns;

  // Reads a JSON object whose keys are the field names above ("kernel_ns": {"name": ns}); keys
  // it does not set keep their current value. Throws Error(invalid_config) naming the file, the
  // key and the problem (unknown key, negative value, unreadable file, bad JSON).
  void apply_json_file(const std::string& path);
  void apply_json_text(const std::string& text, const std::string& origin);
};

struct SimConfig {
  // The chip model; "a2a3" (24 clusters of 1 AIC + 2 AIV, 3 scheduler threads) is the only named
  // one. The topology itself is RuntimeConfig::clusters / scheduler_threads.
  std::string chip = "a2a3";
  SimCostModel costs;
  // Kernels do not execute: only the timeline is computed (outputs are left untouched). The older
  // spelling of RuntimeConfig::timing_only (which works on both platforms): either one set makes
  // the run timing-only (RuntimeConfig::runs_timing_only).
  bool timing_only = false;
};

}  // namespace tmr
