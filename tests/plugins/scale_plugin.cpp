// Plug-in fixture for the integration tests: a real orchestration that the runtime runs.
// y = x * factor, tile by tile, each tile through a fresh intermediate.
#include "tmr/tmr.hpp"

namespace {

void scale(const tmr::KernelArgs& args) {
  const float* in = args.tensor(0).data_as<float>();
  float* out = args.tensor(1).data_as<float>();
  const auto factor = args.scalar<float>(0);
  for (std::uint64_t i = 0; i < args.tensor(0).elements(); ++i)
    out[i] = in[i] * factor;
}

}  // namespace

TMR_PLUGIN_EXPORT void tmr_plugin_register(tmr::KernelRegistry& kernels) {
  kernels.add("scale_plugin.scale", tmr::CoreType::aiv, scale);
}

TMR_PLUGIN_EXPORT void tmr_plugin_orchestrate(tmr::Orchestrator& o,
                                              const tmr::OrchestrationArgs& args) {
  const tmr::KernelId k = o.kernel("scale_plugin.scale");
  const tmr::Tensor x = args.tensor(0);
  const tmr::Tensor y = args.tensor(1);
  const auto factor = args.scalar<float>(0);
  constexpr std::uint32_t kTile = 64;
  for (std::uint32_t start = 0; start < x.dim(0); start += kTile) {
    TMR_SCOPE(o);
    const tmr::Tensor tmp = o.submit_aiv(k, tmr::Args()
                                                .in(x.view({kTile}, {start}))
                                                .out(tmr::TensorSpec({kTile}, tmr::DType::f32))
                                                .scalar(factor))[0];
    o.submit_aiv(k, tmr::Args().in(tmp).out_existing(y.view({kTile}, {start})).scalar(1.0f));
  }
}
