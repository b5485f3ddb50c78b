// Rendering an SVG file to PNG with rsvg-convert, as a person's viewer would.
#pragma once

#include <filesystem>
#include <string>

namespace tmr::testing {

// A fresh directory under the system temp dir, removed with the object.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Renders `svg` to `png`; empty on success, else what went wrong (rsvg-convert's output).
std::string render_png(const std::filesystem::path& svg, const std::filesystem::path& png);

// True when the file starts with the PNG signature.
bool is_png(const std::filesystem::path& file);

// Runs a shell command, returning its exit status and its stdout + stderr.
struct CommandResult {
  int status = -1;
  std::string output;
};
CommandResult run_command(const std::string& command);

}  // namespace tmr::testing
