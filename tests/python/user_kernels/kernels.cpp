// A user's kernels folder as `python3 -m tmr run -k <folder>` builds it: an AXPY-like pair of
// kernels (z = a * x + y, tile by tile) and the orchestration, in plain files against tmr's API.
#include <cstdint>

#include "tmr/tmr.hpp"

namespace {

// AIV: tmp = a * x (scalar 0: a).
void scale(const tmr::KernelArgs& args) {
  const float* x = args.tensor(0).data_as<float>();
  float* tmp = args.tensor(1).data_as<float>();
  const auto a = args.scalar<float>(0);
  for (std::uint64_t i = 0; i < args.tensor(0).elements(); ++i)
    tmp[i] = a * x[i];
}

// AIV: z = tmp + y.
void add(const tmr::KernelArgs& args) {
  const float* tmp = args.tensor(0).data_as<float>();
  const float* y = args.tensor(1).data_as<float>();
  float* z = args.tensor(2).data_as<float>();
  for (std::uint64_t i = 0; i < args.tensor(0).elements(); ++i)
    z[i] = tmp[i] + y[i];
}

}  // namespace

TMR_PLUGIN_EXPORT void tmr_plugin_register(tmr::KernelRegistry& kernels) {
  kernels.add("axpy.scale", tmr::CoreType::aiv, scale);
  kernels.add("axpy.add", tmr::CoreType::aiv, add);
}

// Tensors: x [n], y [n], z [n] (out); scalars: a (float), tile (int).
TMR_PLUGIN_EXPORT void tmr_plugin_orchestrate(tmr::Orchestrator& o,
                                              const tmr::OrchestrationArgs& args) {
  const tmr::KernelId scale_id = o.kernel("axpy.scale");
  const tmr::KernelId add_id = o.kernel("axpy.add");
  const tmr::Tensor x = args.tensor(0), y = args.tensor(1), z = args.tensor(2);
  const auto a = args.scalar<float>(0);
  const auto tile = static_cast<std::uint32_t>(args.scalar<std::int64_t>(1));
  for (std::uint32_t start = 0; start < x.dim(0); start += tile) {
    TMR_SCOPE(o);
    const tmr::Tensor tmp =
        o.submit_aiv(scale_id, tmr::Args()
                                   .in(x.view({tile}, {start}))
                                   .out(tmr::TensorSpec({tile}, tmr::DType::f32))
                                   .scalar(a))[0];
    o.submit_aiv(
        add_id,
        tmr::Args().in(tmp).in(y.view({tile}, {start})).out_existing(z.view({tile}, {start})));
  }
}
