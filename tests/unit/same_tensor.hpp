// Test helper: asserts that two tensors describe the same view field by field (every accessor of
// the layout, not the bytes: a Tensor's padding is not part of its value).
#pragma once

#include <gtest/gtest.h>

#include "tmr/tensor.hpp"

namespace tmr::test {

// Use as EXPECT_TRUE(same_tensor(a, b)).
inline ::testing::AssertionResult same_tensor(const Tensor& a, const Tensor& b) {
  const auto differ = [&](const char* field) {
    return ::testing::AssertionFailure()
           << field << " differs: " << a.to_string() << " vs " << b.to_string();
  };
  if (a.valid() != b.valid()) return differ("valid()");
  if (!a.valid()) return ::testing::AssertionSuccess();
  if (a.buffer() != b.buffer()) return differ("buffer()");
  if (a.buffer_bytes() != b.buffer_bytes()) return differ("buffer_bytes()");
  if (a.layout_offset() != b.layout_offset()) return differ("layout_offset()");
  if (a.dtype() != b.dtype()) return differ("dtype()");
  if (a.version() != b.version()) return differ("version()");
  if (!(a.producer() == b.producer())) return differ("producer()");
  if (a.ndims() != b.ndims()) return differ("ndims()");
  for (int r = 0; r < a.ndims(); ++r) {
    if (a.raw_dim(r) != b.raw_dim(r)) return differ("raw_dim()");
    if (a.box_offset(r) != b.box_offset(r)) return differ("box_offset()");
    if (a.box_extent(r) != b.box_extent(r)) return differ("box_extent()");
    if (a.perm(r) != b.perm(r)) return differ("perm()");
  }
  return ::testing::AssertionSuccess();
}

}  // namespace tmr::test
