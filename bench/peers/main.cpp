// tmr_bench_peers: tmr against OpenMP (libgomp here; libomp through the helper program built with
// clang), oneTBB flow graph and StarPU on the same task graphs. See docs/peers.md.
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <string>

#include "harness.hpp"

namespace {

// The libomp build sits next to this program.
std::string helper_path() {
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return {};
  std::string path(self, static_cast<std::size_t>(n));
  return path.substr(0, path.rfind('/') + 1) + "tmr_bench_peers_libomp";
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::vector<peers::SystemFactory> systems = {
        {"tmr", peers::make_tmr_system},       {"tmr-pf", peers::make_tmr_loops_system},
        {"gomp", peers::make_omp_system},      {"tbb", peers::make_tbb_system},
        {"starpu", peers::make_starpu_system},
    };
    return peers::run_main(argc, argv, systems, helper_path());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tmr_bench_peers: %s\n", e.what());
    return 1;
  }
}
