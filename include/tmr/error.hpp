// Error codes, the exception thrown for misuse of value types, and the status a run returns.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace tmr {

enum class ErrorCode : std::int32_t {
  ok = 0,
  scope_deadlock = 1,            // a scope holds more tasks/bytes than its ring can ever hold
  heap_ring_deadlock = 2,        // output heap full and nothing can free it
  flow_control_deadlock = 3,     // task window full and nothing can free it
  dep_pool_overflow = 4,         // dependency pool full and nothing can free it
  invalid_args = 5,              // bad task arguments, shapes, views, tags
  dependency_overflow = 6,       // a task needs more producers than the dependency pool holds
  sync_start_invalid = 7,        // start-together task larger than the machine
  tensor_wait_timeout = 8,       // get/set_tensor_data waited too long
  explicit_fatal = 9,            // the orchestration called report_fatal
  unknown_kernel = 10,           // kernel id or name not registered
  scope_error = 11,              // unbalanced scopes, submit outside a scope, depth overflow
  invalid_config = 12,           // bad runtime configuration or environment variable
  orchestration_exception = 13,  // the orchestration threw
  kernel_exception = 14,         // a kernel threw
  plugin_error = 15,             // a plug-in library could not be loaded
  runtime_busy = 16,             // run() called from inside a run of the same runtime
  runtime_unusable = 17,         // an earlier run left a kernel running; destroy the runtime
  scheduler_timeout = 100,       // no progress for the configured stall timeout
};

std::string_view error_code_name(ErrorCode code);

// Thrown by value-type operations (tensor views, argument building, configuration) on misuse.
// The runtime catches it at the run boundary and reports it as the run's status.
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

struct Status {
  ErrorCode code = ErrorCode::ok;
  std::string message;
  bool ok() const { return code == ErrorCode::ok; }
  std::string to_string() const;
};

}  // namespace tmr
