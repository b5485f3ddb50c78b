// The `tmr` subcommands. Each returns the process exit status.
#pragma once

#include <ostream>

#include "cli/run_options.hpp"

namespace tmr::cli {

inline constexpr int kExitPass = 0;
inline constexpr int kExitFail = 1;   // a golden mismatch or a runtime error
inline constexpr int kExitUsage = 2;  // a bad command line (unknown example, case, platform)

int list_command(std::ostream& out);
int run_command(const RunOptions& options, std::ostream& out, std::ostream& err);

}  // namespace tmr::cli
