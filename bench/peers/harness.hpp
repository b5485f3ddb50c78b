// The measurement harness shared by all systems: one System per runtime, timed runs, medians,
// the METG(50%) sweep, the table and the JSON.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "graphs.hpp"

namespace peers {

// The worker count every system gets (the machine's 2 cores; see docs/peers.md).
inline constexpr int kWorkers = 2;

// One runtime. prepare() and finish() are untimed set-up and tear-down around one run;
// execute() is the timed part and must return only once every task has finished.
class System {
 public:
  virtual ~System() = default;
  virtual std::string name() const = 0;
  virtual void prepare(const Graph& /*graph*/, Data& /*data*/) {}
  // Returns the part of the run spent building the graph before any task could run (oneTBB),
  // or 0 where building and running overlap.
  virtual std::uint64_t execute(const Graph& graph, Data& data, std::uint64_t spin_ns) = 0;
  virtual void finish() {}
  // Time the submitting thread spent creating tasks in the last run, not counting waits for
  // the runtime (tmr only: orchestration time minus time blocked on full rings); -1 if unknown.
  virtual double last_submit_ns() const { return -1; }
  // The submitting thread's time waiting for a CPU, as a share of its CPU time plus that wait, in
  // the last run (tmr only; -1 if unknown). It tells the run's CPU mode: near 0 when the
  // orchestrator had a CPU to itself (a quiet host; every line it shares with a worker crosses
  // CPUs), large when it shared one with a worker (docs/peers.md, "CPU modes").
  virtual double last_orchestrator_wait_share() const { return -1; }
};

std::unique_ptr<System> make_tmr_system();        // the default configuration
std::unique_ptr<System> make_tmr_loops_system();  // the graph's loop written as parallel_for
std::unique_ptr<System> make_omp_system();        // libgomp or libomp, by compiler
std::unique_ptr<System> make_tbb_system();
std::unique_ptr<System> make_starpu_system();

// A run whose orchestrator waited for a CPU at least this share of its runnable time shared a
// CPU with a worker (the fast mode); below it, it had one to itself (scripts/measure/peers_sum.py
// splits rounds by the same line).
inline constexpr double kSharedCpuWaitShare = 0.15;

struct Figures {
  std::uint64_t tasks = 0;
  double wall_ns_per_task = 0;
  double cpu_ns_per_task = 0;
  double build_ns_per_task = -1;        // oneTBB only
  double submit_ns_per_task = -1;       // tmr only, see System::last_submit_ns
  double orchestrator_wait_share = -1;  // tmr only, see System::last_orchestrator_wait_share
  double metg_ns = -1;                  // -1: not measured
  std::string metg_bound = "exact";  // "exact", "at_most" (first point already >= 50%), "at_least"
  bool checksum_ok = true;
};

using Results = std::map<std::string, std::map<std::string, Figures>>;  // graph -> system

// A system by name, created only when it is measured and destroyed right after, so that one
// runtime's idle threads never compete with the next one for the 2 cores.
struct SystemFactory {
  std::string name;
  std::function<std::unique_ptr<System>()> make;
};

// Runs the benchmark over `systems` as the command line asks; `helper` is a program run with the
// same options whose JSON results are merged in (the libomp build). Returns the exit status.
int run_main(int argc, char** argv, const std::vector<SystemFactory>& systems,
             const std::string& helper);

}  // namespace peers
