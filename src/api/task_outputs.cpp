// The fresh outputs of one submit. The engine placement-copies the tensors into storage_.
#include <string>

#include "tmr/error.hpp"
#include "tmr/orchestrator.hpp"

namespace tmr {

// operator[]'s error (its in-range path is inline in the header).
void TaskOutputs::out_of_range(int i) const {
  const std::string what = "task output #" + std::to_string(i) + " does not exist; ";
  if (count_ == 0) {
    throw Error(ErrorCode::invalid_args,
                what +
                    "the submit produced no outputs (it had no out(TensorSpec) argument, or "
                    "it failed: check Orchestrator::status())");
  }
  throw Error(ErrorCode::invalid_args,
              what + "the submit had " + std::to_string(count_) + " out arguments, so use 0 to " +
                  std::to_string(count_ - 1) + " or add another out(TensorSpec)");
}

}  // namespace tmr
