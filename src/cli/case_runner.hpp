// Runs one case of an example for N rounds on one runtime, printing as it goes.
#pragma once

#include <cstddef>
#include <ostream>

#include "cli/case_result.hpp"
#include "cli/run_options.hpp"
#include "common/example.hpp"
#include "tmr/runtime.hpp"

namespace tmr::cli {

// Prepares the case once (seeded inputs and golden), then per round resets the outputs, runs the
// orchestration with host tensors copied in and back, and checks them against the golden.
CaseResult run_case(Runtime& runtime, const examples::Example& example, std::size_t case_index,
                    const RunOptions& options, std::ostream& out);
// The same for a case built from --param values.
CaseResult run_case(Runtime& runtime, const examples::Example& example,
                    const examples::ParamCase& param_case, const RunOptions& options,
                    std::ostream& out);

}  // namespace tmr::cli
