#include "cli/output_files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace tmr::cli {

namespace fs = std::filesystem;

std::string output_file_problem(const std::string& path) {
  if (path.empty()) return "the path is empty";
  std::error_code ec;
  if (fs::is_directory(path, ec)) return "it is a directory; name a file inside it";
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) {
    if (!fs::exists(parent, ec)) {
      return "the folder '" + parent.string() + "' does not exist; create it first";
    }
    if (!fs::is_directory(parent, ec)) return "'" + parent.string() + "' is not a folder";
  }
  const bool existed = fs::exists(path, ec);
  // O_APPEND without O_TRUNC: probing must not destroy an existing file if the run fails later.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return std::strerror(errno);
  ::close(fd);
  if (!existed) ::unlink(path.c_str());
  return "";
}

std::string write_output_file(const std::string& path,
                              const std::function<void(std::ostream&)>& write) {
  errno = 0;
  std::ofstream file(path, std::ios::binary);
  if (file) write(file);
  if (file) file.flush();
  const int flush_error = errno;
  file.close();
  if (file) return "";
  const int error = errno != 0 ? errno : flush_error;
  return error != 0 ? std::strerror(error) : "the write failed";
}

}  // namespace tmr::cli
