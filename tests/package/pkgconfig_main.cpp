// Built with only `pkg-config --cflags --libs tmr`: runs one task on the threads platform.
#include <cstdio>

#include "tmr/tmr.hpp"

void twice(const tmr::KernelArgs& a) {
  a.tensor(0).data_as<float>()[0] *= 2.0f;
}

int main() {
  tmr::RuntimeConfig config;
  config.clusters = 1;
  config.scheduler_threads = 1;
  tmr::Runtime runtime(config);
  const tmr::KernelId k = runtime.kernels().add("twice", tmr::CoreType::aic, &twice);
  float value = 21.0f;
  tmr::RunArgs args;
  args.inout(&value, {1}, tmr::DType::f32);
  const tmr::RunResult result = runtime.run(
      [k](tmr::Orchestrator& o, const tmr::OrchestrationArgs& a) {
        o.submit_aic(k, tmr::Args().inout(a.tensor(0)));
      },
      args);
  if (!result.ok() || value != 42.0f) return 1;
  std::printf("pkg-config consumer: PASS\n");
  return 0;
}
