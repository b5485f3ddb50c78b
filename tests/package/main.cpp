// Loads the plug-in named on the command line, runs it on both platforms and checks the result;
// also exercises a header of tmr::profile. Prints "consumer: PASS" and exits 0 on success.
#include <cstdio>
#include <sstream>
#include <vector>

#include "tmr/profile/task_graph_dot.hpp"
#include "tmr/tmr.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer <plugin.so>\n");
    return 2;
  }
  for (const tmr::PlatformKind platform : {tmr::PlatformKind::threads, tmr::PlatformKind::sim}) {
    tmr::RuntimeConfig config;
    config.platform = platform;
    config.clusters = 2;
    config.scheduler_threads = 1;
    config.record_events = true;
    tmr::Runtime runtime(config);
    const tmr::Plugin plugin = tmr::Plugin::load(argv[1]);
    plugin.register_kernels(runtime.kernels());
    std::vector<float> x(256), y(256, 0.0f);
    for (std::size_t i = 0; i < x.size(); ++i)
      x[i] = static_cast<float>(i % 7);
    tmr::RunArgs args;
    args.input(x.data(), tmr::Shape(std::vector<int>{256}), tmr::DType::f32);
    args.output(y.data(), {256}, tmr::DType::f32);
    const tmr::RunResult result = runtime.run(plugin.orchestration(), args);
    if (!result.ok()) {
      std::fprintf(stderr, "consumer: run failed: %s\n", result.status.to_string().c_str());
      return 1;
    }
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (y[i] != x[i] * x[i] + 1.0f) {
        std::fprintf(stderr, "consumer: y[%zu] = %g, expected %g\n", i, y[i], x[i] * x[i] + 1);
        return 1;
      }
    }
    std::ostringstream dot;
    tmr::profile::write_task_graph_dot(dot, *result.trace, runtime.kernels());
    if (dot.str().find("digraph") == std::string::npos) return 1;
  }
  std::printf("consumer: PASS\n");
  return 0;
}
