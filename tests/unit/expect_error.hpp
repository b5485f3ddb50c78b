// Test helper: asserts that a call throws tmr::Error with a given code and message fragment.
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <string_view>

#include "tmr/error.hpp"

namespace tmr::test {

// Use as EXPECT_TRUE(throws_error([&] { ... }, ErrorCode::invalid_args, "fragment")).
template <class F>
::testing::AssertionResult throws_error(F&& call, ErrorCode code, std::string_view fragment) {
  try {
    call();
  } catch (const Error& e) {
    if (e.code() != code) {
      return ::testing::AssertionFailure()
             << "threw " << error_code_name(e.code()) << " instead of " << error_code_name(code)
             << ": " << e.what();
    }
    if (std::string_view(e.what()).find(fragment) == std::string_view::npos) {
      return ::testing::AssertionFailure()
             << "message \"" << e.what() << "\" does not contain \"" << fragment << "\"";
    }
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-tmr exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

}  // namespace tmr::test
