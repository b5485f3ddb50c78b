// What an example is: kernels, an orchestration, and cases that each prepare a problem with a
// golden reference. Every example folder registers one with TMR_REGISTER_EXAMPLE.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/problem.hpp"
#include "tmr/config.hpp"
#include "tmr/kernel.hpp"
#include "tmr/orchestrator.hpp"

namespace tmr::examples {

struct CaseSpec {
  std::string name;
  std::string summary;  // sizes in one line, for `tmr list` and the run header
  // Large cases are left out of --all-cases (and of `make run`) unless --include-large is given.
  bool large = false;
  // Production scale: meant for `--platform sim --timing-only` (executing it needs GiBs of
  // inputs and minutes), so the per-case golden tests leave it out.
  bool production = false;
};

// `key=value` pairs from `tmr run --param`, in command-line order.
using CaseParams = std::vector<std::pair<std::string, std::string>>;

// A case built from parameters: its spec and how to prepare it (seeded).
struct ParamCase {
  CaseSpec spec;
  std::function<Problem(std::uint64_t seed)> make_problem;
  std::function<Problem(std::uint64_t seed)> make_timing_problem;  // may be empty
};

struct Example {
  std::string name;
  std::string summary;
  std::vector<CaseSpec> cases;  // the first one is the default case
  std::function<void(KernelRegistry&)> register_kernels;
  Orchestration orchestration;
  // Builds the inputs (seeded) and the golden outputs of case `case_index`.
  std::function<Problem(std::size_t case_index, std::uint64_t seed)> make_problem;
  // Optional, for timing-only sim runs (no kernel executes, no golden): real contents only for
  // the tensors the orchestration reads, placeholders (never touched) for the rest.
  std::function<Problem(std::size_t case_index, std::uint64_t seed)> make_timing_problem;
  // Optional: the problem of a large case shrunk by `scale` in (0, 1] (fewer requests), so tests
  // under sanitizers (TMR_TEST_SCALE) still run it end to end.
  std::function<Problem(std::size_t case_index, std::uint64_t seed, double scale)>
      make_scaled_problem;
  // Ring sizes the example runs with, as the reference's RUNTIME_ENV (the ring-stress case); the
  // TMR_RING_* variables still override them. Unset: RuntimeConfig's defaults.
  std::optional<RingConfig> ring;
  // Clusters the example needs at least (start-together cohorts sized for a2a3); runners raise
  // a smaller topology to this. 0: any.
  int min_clusters = 0;

  // Optional: the case `base_index` with parameters overridden (`tmr run --param key=value`).
  // Throws Error(invalid_args) naming an unknown key, a bad value and the accepted keys.
  std::function<ParamCase(std::size_t base_index, const CaseParams& params)> make_param_case;

  // Index of the case called `case_name`, or -1.
  int find_case(const std::string& case_name) const;
};

}  // namespace tmr::examples
