// The consumer's plug-in: one AIV kernel (y = x squared), registered as a capturing lambda, and
// an orchestration that submits it per tile.
#include <cstdint>

#include "tmr/tmr.hpp"

TMR_PLUGIN_EXPORT void tmr_plugin_register(tmr::KernelRegistry& kernels) {
  const float offset = 1.0f;
  kernels.add("consumer.square_plus", tmr::CoreType::aiv, [offset](const tmr::KernelArgs& a) {
    const float* x = a.tensor(0).data_as<float>();
    float* y = a.tensor(1).data_as<float>();
    for (std::uint64_t i = 0; i < a.tensor(0).elements(); ++i)
      y[i] = x[i] * x[i] + offset;
  });
}

TMR_PLUGIN_EXPORT void tmr_plugin_orchestrate(tmr::Orchestrator& o,
                                              const tmr::OrchestrationArgs& args) {
  const tmr::KernelId k = o.kernel("consumer.square_plus");
  for (std::uint32_t start = 0; start < args.tensor(0).dim(0); start += 32) {
    o.submit_aiv(k, tmr::Args()
                        .in(args.tensor(0).view({32}, {start}))
                        .out_existing(args.tensor(1).view({32}, {start})));
  }
}
