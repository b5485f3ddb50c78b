// Names of error codes and the printable form of a run's status.
#include "tmr/error.hpp"

#include <string>

namespace tmr {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::ok:
      return "ok";
    case ErrorCode::scope_deadlock:
      return "scope_deadlock";
    case ErrorCode::heap_ring_deadlock:
      return "heap_ring_deadlock";
    case ErrorCode::flow_control_deadlock:
      return "flow_control_deadlock";
    case ErrorCode::dep_pool_overflow:
      return "dep_pool_overflow";
    case ErrorCode::invalid_args:
      return "invalid_args";
    case ErrorCode::dependency_overflow:
      return "dependency_overflow";
    case ErrorCode::sync_start_invalid:
      return "sync_start_invalid";
    case ErrorCode::tensor_wait_timeout:
      return "tensor_wait_timeout";
    case ErrorCode::explicit_fatal:
      return "explicit_fatal";
    case ErrorCode::unknown_kernel:
      return "unknown_kernel";
    case ErrorCode::scope_error:
      return "scope_error";
    case ErrorCode::invalid_config:
      return "invalid_config";
    case ErrorCode::orchestration_exception:
      return "orchestration_exception";
    case ErrorCode::kernel_exception:
      return "kernel_exception";
    case ErrorCode::plugin_error:
      return "plugin_error";
    case ErrorCode::runtime_busy:
      return "runtime_busy";
    case ErrorCode::runtime_unusable:
      return "runtime_unusable";
    case ErrorCode::scheduler_timeout:
      return "scheduler_timeout";
  }
  // Only reachable through a cast from an integer that is not a code.
  return "unknown_error_code";
}

std::string Status::to_string() const {
  std::string text(error_code_name(code));
  text += " (" + std::to_string(static_cast<std::int32_t>(code)) + ")";
  if (!message.empty()) text += ": " + message;
  return text;
}

}  // namespace tmr
