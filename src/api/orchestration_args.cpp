// The run's tensors and scalars as an orchestration sees them; indices are checked because they
// often come from a plug-in built against a different argument list.
#include <string>

#include "tmr/error.hpp"
#include "tmr/orchestrator.hpp"

namespace tmr {

namespace {

[[noreturn]] void out_of_range(const char* kind, int i, int count, const char* how_to_pass) {
  std::string message = "orchestration " + std::string(kind) + " #" + std::to_string(i) +
                        " does not exist; the run passed " + std::to_string(count) + " " + kind +
                        "s";
  if (count > 0) message += ", so use 0 to " + std::to_string(count - 1);
  message += ", or pass more with " + std::string(how_to_pass);
  throw Error(ErrorCode::invalid_args, message);
}

}  // namespace

const Tensor& OrchestrationArgs::tensor(int i) const {
  if (i < 0 || i >= tensor_count()) {
    out_of_range("tensor", i, tensor_count(), "RunArgs::input/output/inout");
  }
  return tensors_[static_cast<std::size_t>(i)];
}

std::uint64_t OrchestrationArgs::scalar_bits(int i) const {
  if (i < 0 || i >= scalar_count()) out_of_range("scalar", i, scalar_count(), "RunArgs::scalar");
  return scalars_[static_cast<std::size_t>(i)];
}

}  // namespace tmr
