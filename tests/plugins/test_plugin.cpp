// Plug-in fixture for the unit tests: exports both entry points.
//
// The unit tests link no engine, so the orchestration only proves that it was reached and saw the
// run's arguments: it reports them through an Error the test catches. Its kernel is real and is
// called directly by the test.
#include <string>

#include "tmr/tmr.hpp"

namespace {

// y = x * factor over contiguous f32 tensors: tensor 0 in, tensor 1 out, scalar 0 the factor.
void scale(const tmr::KernelArgs& args) {
  const tmr::Tensor& x = args.tensor(0);
  const tmr::Tensor& y = args.tensor(1);
  const auto factor = args.scalar<float>(0);
  const float* in = x.data_as<float>();
  float* out = y.data_as<float>();
  for (std::uint64_t i = 0; i < x.elements(); ++i)
    out[i] = in[i] * factor;
}

void nothing(const tmr::KernelArgs&) {}

}  // namespace

TMR_PLUGIN_EXPORT void tmr_plugin_register(tmr::KernelRegistry& kernels) {
  kernels.add("test_plugin.scale", tmr::CoreType::aiv, scale);
  kernels.add("test_plugin.nothing", tmr::CoreType::aic, nothing);
}

TMR_PLUGIN_EXPORT void tmr_plugin_orchestrate(tmr::Orchestrator&,
                                              const tmr::OrchestrationArgs& args) {
  throw tmr::Error(tmr::ErrorCode::explicit_fatal,
                   "test plugin reached with " + std::to_string(args.tensor_count()) +
                       " tensors and scalar " + std::to_string(args.scalar<int>(0)));
}
