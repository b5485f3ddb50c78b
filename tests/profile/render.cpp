#include "profile/render.hpp"

#include <unistd.h>

#include <sys/wait.h>
#include <array>
#include <cstdio>
#include <fstream>

namespace tmr::testing {

TempDir::TempDir(const std::string& prefix) {
  // The pid keeps parallel test processes apart; the counter, tests within one process.
  static int counter = 0;
  path_ = std::filesystem::temp_directory_path() /
          (prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer{};
  while (const std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe)) {
    result.output.append(buffer.data(), n);
  }
  const int status = ::pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string render_png(const std::filesystem::path& svg, const std::filesystem::path& png) {
  const CommandResult r = run_command(std::string(TMR_RSVG_CONVERT) + " -o '" + png.string() +
                                      "' '" + svg.string() + "'");
  if (r.status == 0) return "";
  return "rsvg-convert exited with " + std::to_string(r.status) + ": " + r.output +
         " (install it with scripts/setup.sh: Debian package librsvg2-bin)";
}

bool is_png(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::array<char, 8> head{};
  in.read(head.data(), head.size());
  return in && std::string(head.data(), head.size()) == "\x89PNG\r\n\x1a\n";
}

}  // namespace tmr::testing
