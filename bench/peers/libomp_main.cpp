// The OpenMP system built with clang against LLVM's libomp. libgomp and libomp export the same
// symbols, so they cannot share a process: tmr_bench_peers runs this program and merges its JSON.
#include <cstdio>
#include <exception>

#include "harness.hpp"

int main(int argc, char** argv) {
  try {
    const std::vector<peers::SystemFactory> systems = {{"libomp", peers::make_omp_system}};
    return peers::run_main(argc, argv, systems, "");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tmr_bench_peers_libomp: %s\n", e.what());
    return 1;
  }
}
