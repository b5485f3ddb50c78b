// Output files of `tmr run` (--json, --trace, --swimlane, --graph): checked before any round runs,
// so a bad path fails in milliseconds, and written with the operating system's reason on failure.
#pragma once

#include <functional>
#include <ostream>
#include <string>

namespace tmr::cli {

// "" when `path` can be created or overwritten now; otherwise why not ("it is a directory", "the
// folder 'x' does not exist", or the system's message, e.g. "Permission denied"). A file that did
// not exist is not left behind.
std::string output_file_problem(const std::string& path);

// Writes `path` through `write`; returns "" or the reason the file could not be written
// (e.g. "No space left on device").
std::string write_output_file(const std::string& path,
                              const std::function<void(std::ostream&)>& write);

}  // namespace tmr::cli
