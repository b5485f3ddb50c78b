// Error codes: every code has its own name, and a status prints as "name (value): message".
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "tmr/error.hpp"

namespace tmr {
namespace {

TEST(ErrorCode, EveryCodeHasADistinctName) {
  const std::set<std::pair<ErrorCode, std::string_view>> expected{
      {ErrorCode::ok, "ok"},
      {ErrorCode::scope_deadlock, "scope_deadlock"},
      {ErrorCode::heap_ring_deadlock, "heap_ring_deadlock"},
      {ErrorCode::flow_control_deadlock, "flow_control_deadlock"},
      {ErrorCode::dep_pool_overflow, "dep_pool_overflow"},
      {ErrorCode::invalid_args, "invalid_args"},
      {ErrorCode::dependency_overflow, "dependency_overflow"},
      {ErrorCode::sync_start_invalid, "sync_start_invalid"},
      {ErrorCode::tensor_wait_timeout, "tensor_wait_timeout"},
      {ErrorCode::explicit_fatal, "explicit_fatal"},
      {ErrorCode::unknown_kernel, "unknown_kernel"},
      {ErrorCode::scope_error, "scope_error"},
      {ErrorCode::invalid_config, "invalid_config"},
      {ErrorCode::orchestration_exception, "orchestration_exception"},
      {ErrorCode::kernel_exception, "kernel_exception"},
      {ErrorCode::plugin_error, "plugin_error"},
      {ErrorCode::runtime_busy, "runtime_busy"},
      {ErrorCode::runtime_unusable, "runtime_unusable"},
      {ErrorCode::scheduler_timeout, "scheduler_timeout"},
  };
  std::set<std::string_view> names;
  for (const auto& [code, name] : expected) {
    EXPECT_EQ(error_code_name(code), name);
    names.insert(error_code_name(code));
  }
  EXPECT_EQ(names.size(), expected.size());
  EXPECT_EQ(error_code_name(static_cast<ErrorCode>(42)), "unknown_error_code");
}

TEST(Status, ToString) {
  const Status bad{ErrorCode::invalid_args, "view offset 3 + extent 8 exceeds dimension 1"};
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.to_string(), "invalid_args (5): view offset 3 + extent 8 exceeds dimension 1");
  EXPECT_EQ((Status{ErrorCode::scheduler_timeout, "stalled"}.to_string()),
            "scheduler_timeout (100): stalled");
  const Status good;
  EXPECT_TRUE(good.ok());
  EXPECT_EQ(good.to_string(), "ok (0)");
}

TEST(Error, CarriesCodeAndMessage) {
  try {
    throw Error(ErrorCode::plugin_error, "cannot load");
  } catch (const std::runtime_error& e) {  // catchable as a standard exception
    EXPECT_STREQ(e.what(), "cannot load");
    const auto* error = dynamic_cast<const Error*>(&e);
    ASSERT_NE(error, nullptr);
    EXPECT_EQ(error->code(), ErrorCode::plugin_error);
  }
}

}  // namespace
}  // namespace tmr
