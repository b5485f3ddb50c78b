// What running one case produced: task counts, per-round timings, the golden check, any error.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/problem.hpp"
#include "tmr/error.hpp"
#include "tmr/runtime.hpp"
#include "tmr/trace.hpp"

namespace tmr::cli {

struct RoundTiming {
  double elapsed_us = 0;        // RunStats::wall_us: run start to the last task retired
  double orchestration_us = 0;  // inside the orchestration function
  double scheduler_us = 0;      // busy time summed over scheduler threads
  // The orchestrator's thread CPU time in the orchestration (threads platform; 0 on the sim).
  double orchestrator_cpu_us = 0;
  // The orchestrating thread's minor page faults and context switches (it blocked; it was
  // preempted) in the orchestration.
  std::uint64_t orchestrator_minor_faults = 0;
  std::uint64_t orchestrator_voluntary_switches = 0;
  std::uint64_t orchestrator_involuntary_switches = 0;
  // The round's own statistics (its waits for ring room and scheduler steps are reported from
  // them: RunStats' orchestrator_* fields).
  RunStats stats = {};
};

struct CaseResult {
  std::string name;
  std::string summary;
  std::uint64_t tasks_submitted = 0;  // hidden alloc tasks included
  std::uint64_t inline_tasks = 0;     // the hidden alloc tasks
  // parallel_for analysis of the last round (RunStats' loop fields).
  std::uint64_t loops = 0;
  std::uint64_t loop_tasks_analysed = 0;
  std::uint64_t loop_tasks_replayed_wide = 0;  // of those, by the wide replayed path
  std::uint64_t loop_tasks_named = 0;          // of those, records naming their position's image
  std::uint64_t loop_iterations_analysed = 0;
  std::vector<std::pair<std::string, std::uint64_t>> loop_fallback_reasons;
  // Loop templates kept from the round before that this round reused, or rejected (by reason).
  std::uint64_t loop_templates_reused = 0;
  std::uint64_t loop_plans_reused = 0;  // of those, analyses that reused their kept plans
  std::vector<std::pair<std::string, std::uint64_t>> loop_template_rejections;
  // MIX blocks taken back from pending slots to an idle cluster in the first round (the round
  // --stats describes).
  std::uint64_t mix_blocks_taken_back = 0;
  std::vector<RoundTiming> rounds;
  double flops = 0;  // per run; 0 when the example does not say
  bool golden_checked = false;
  int failed_rounds = 0;
  // The checks of the first failing round, or of the last round when all passed.
  std::vector<examples::OutputCheck> checks;
  std::optional<Status> error;         // the run (or preparing it) failed
  std::shared_ptr<const Trace> trace;  // the first round's events, when recording

  bool passed() const { return !error && failed_rounds == 0; }
};

}  // namespace tmr::cli
