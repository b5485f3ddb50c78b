// The public Runtime and Orchestrator: thin forwards into the engine.
#include "core/engine.hpp"
#include "core/orchestrator_core.hpp"
#include "tmr/runtime.hpp"

namespace tmr {

Runtime::Runtime(RuntimeConfig config, KernelRegistry kernels)
    : engine_(std::make_unique<detail::Engine>(std::move(config), std::move(kernels))) {}
Runtime::~Runtime() = default;
KernelRegistry& Runtime::kernels() {
  return engine_->kernels();
}
const RuntimeConfig& Runtime::config() const {
  return engine_->config();
}
RunResult Runtime::run(const Orchestration& orchestration, const RunArgs& args) {
  return engine_->run(orchestration, args);
}

TaskOutputs Orchestrator::submit(const MixKernels& kernels, const Args& args) {
  return core_->submit(kernels, args);
}
TaskOutputs Orchestrator::alloc(const Args& args) {
  return core_->alloc(args);
}
void Orchestrator::scope_begin() {
  core_->scope_begin();
}
void Orchestrator::scope_end() {
  core_->scope_end();
}
void Orchestrator::run_loop(std::int64_t n, const LoopOptions& options, LoopCall call, void* body) {
  core_->parallel_for(n, options.scope_per_iteration, call, body, *this);
}
int Orchestrator::scope_depth() const {
  return core_->scope_depth();
}
void Orchestrator::wait_for(const Tensor& tensor) {
  core_->wait_for(tensor);
}
void Orchestrator::report_fatal(ErrorCode code, const std::string& message) {
  core_->fail(code, message);
}
bool Orchestrator::fatal() const {
  return core_->fatal();
}
Status Orchestrator::status() const {
  return core_->status();
}
const KernelRegistry& Orchestrator::kernels() const {
  return core_->kernels();
}
KernelId Orchestrator::kernel(std::string_view name) {
  try {
    return core_->kernels().id(name);
  } catch (const Error& e) {
    core_->fail(e.code(), e.what());
    return kNoKernel;
  }
}
void Orchestrator::read_element(const Tensor& tensor, const Shape& indices, void* out,
                                std::size_t size) {
  try {
    core_->read_element(tensor, indices, out, size);
  } catch (const Error& e) {
    core_->fail(e.code(), e.what());
  }
}
void Orchestrator::write_element(const Tensor& tensor, const Shape& indices, const void* in,
                                 std::size_t size) {
  try {
    core_->write_element(tensor, indices, in, size);
  } catch (const Error& e) {
    core_->fail(e.code(), e.what());
  }
}

}  // namespace tmr
