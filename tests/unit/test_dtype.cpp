// Element types: sizes, names, and the 16-bit float conversions (round to nearest, ties to even).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "tmr/dtype.hpp"

namespace tmr {
namespace {

// The conversions are constexpr: usable in constant expressions.
static_assert(f16(1.0f).bits() == 0x3C00);
static_assert(bf16(1.0f).bits() == 0x3F80);
static_assert(float(f16::from_bits(0x4000)) == 2.0f);

float float_from_bits(std::uint32_t bits) {
  return std::bit_cast<float>(bits);
}
std::uint32_t bits_of(float value) {
  return std::bit_cast<std::uint32_t>(value);
}

bool is_f16_nan(std::uint16_t h) {
  return (h & 0x7C00u) == 0x7C00u && (h & 0x03FFu) != 0;
}
bool is_bf16_nan(std::uint16_t b) {
  return (b & 0x7F80u) == 0x7F80u && (b & 0x007Fu) != 0;
}

// GCC's own binary16 conversions, the oracle for f16.
std::uint16_t gcc_f16_bits(float value) {
  return std::bit_cast<std::uint16_t>(static_cast<_Float16>(value));
}
float gcc_f16_to_float(std::uint16_t bits) {
  return static_cast<float>(std::bit_cast<_Float16>(bits));
}

// An independent oracle by exact double arithmetic: `value` rounded to a binary format with
// `precision` significand bits, a smallest step of 2^min_step_exp (subnormals), and overflow
// to infinity from 2^overflow_exp. nearbyint uses the default mode: to nearest, ties to even.
double reference_round(float value, int precision, int min_step_exp, int overflow_exp) {
  const double v = value;
  if (std::isnan(v) || std::isinf(v) || v == 0) return v;
  int exponent = 0;
  std::frexp(v, &exponent);  // v = m * 2^exponent with 0.5 <= |m| < 1
  const int step_exp = std::max(exponent - precision, min_step_exp);
  const double rounded = std::ldexp(std::nearbyint(std::ldexp(v, -step_exp)), step_exp);
  if (std::fabs(rounded) >= std::ldexp(1.0, overflow_exp)) {
    return std::copysign(std::numeric_limits<double>::infinity(), v);
  }
  return rounded == 0 ? std::copysign(0.0, v) : rounded;
}
double reference_f16(float value) {
  return reference_round(value, 11, -24, 16);
}
double reference_bf16(float value) {
  return reference_round(value, 8, -133, 128);
}

// Same value, and for zeros the same sign.
bool same_value(double expected, float actual) {
  return expected == static_cast<double>(actual) && std::signbit(expected) == std::signbit(actual);
}

TEST(DType, SizesAndNames) {
  EXPECT_EQ(dtype_size(DType::f32), 4u);
  EXPECT_EQ(dtype_size(DType::i32), 4u);
  EXPECT_EQ(dtype_size(DType::f16), 2u);
  EXPECT_EQ(dtype_size(DType::bf16), 2u);
  EXPECT_EQ(dtype_size(DType::i8), 1u);
  EXPECT_EQ(dtype_size(DType::u8), 1u);
  EXPECT_EQ(dtype_name(DType::f32), "f32");
  EXPECT_EQ(dtype_name(DType::f16), "f16");
  EXPECT_EQ(dtype_name(DType::bf16), "bf16");
  EXPECT_EQ(dtype_name(DType::i32), "i32");
  EXPECT_EQ(dtype_name(DType::i8), "i8");
  EXPECT_EQ(dtype_name(DType::u8), "u8");
  EXPECT_EQ(dtype_of<float>(), DType::f32);
  EXPECT_EQ(dtype_of<f16>(), DType::f16);
  EXPECT_EQ(dtype_of<bf16>(), DType::bf16);
  EXPECT_EQ(dtype_of<std::int32_t>(), DType::i32);
  EXPECT_EQ(dtype_of<std::int8_t>(), DType::i8);
  EXPECT_EQ(dtype_of<std::uint8_t>(), DType::u8);
  EXPECT_EQ(sizeof(f16), 2u);
  EXPECT_EQ(sizeof(bf16), 2u);
}

TEST(BF16, KnownBitPatterns) {
  EXPECT_EQ(bf16(1.0f).bits(), 0x3F80);
  EXPECT_EQ(bf16(-2.0f).bits(), 0xC000);
  EXPECT_EQ(bf16(0.0f).bits(), 0x0000);
  EXPECT_EQ(bf16(-0.0f).bits(), 0x8000);
  EXPECT_EQ(bf16(std::numeric_limits<float>::infinity()).bits(), 0x7F80);
  EXPECT_EQ(bf16(-std::numeric_limits<float>::infinity()).bits(), 0xFF80);
  // 1/3 = 0x3EAAAAAB: the dropped half 0xAAAB is above the midpoint, so it rounds up.
  EXPECT_EQ(bf16(1.0f / 3.0f).bits(), 0x3EAB);
  EXPECT_EQ(float(bf16::from_bits(0x3EAB)), float_from_bits(0x3EAB0000));
}

TEST(BF16, TiesRoundToEven) {
  EXPECT_EQ(bf16(float_from_bits(0x3F808000)).bits(), 0x3F80);  // tie, 0x3F80 even: down
  EXPECT_EQ(bf16(float_from_bits(0x3F818000)).bits(), 0x3F82);  // tie, 0x3F81 odd: up
  EXPECT_EQ(bf16(float_from_bits(0x3F808001)).bits(), 0x3F81);  // above the tie: up
  EXPECT_EQ(bf16(float_from_bits(0x3F807FFF)).bits(), 0x3F80);  // below the tie: down
  EXPECT_EQ(bf16(float_from_bits(0xBF818000)).bits(), 0xBF82);  // negative ties too
}

TEST(BF16, SubnormalsOverflowNaN) {
  EXPECT_EQ(bf16(float_from_bits(0x00010000)).bits(), 0x0001);  // smallest bf16 subnormal
  EXPECT_EQ(bf16(float_from_bits(0x00008000)).bits(), 0x0000);  // half of it: tie to even 0
  EXPECT_EQ(bf16(float_from_bits(0x00018000)).bits(), 0x0002);  // 1.5 steps: tie to even 2
  EXPECT_EQ(bf16(float_from_bits(0x80008001)).bits(), 0x8001);
  // FLT_MAX is above the largest bf16 (0x7F7F) by more than half a step: infinity.
  EXPECT_EQ(bf16(std::numeric_limits<float>::max()).bits(), 0x7F80);
  EXPECT_EQ(bf16(-std::numeric_limits<float>::max()).bits(), 0xFF80);
  EXPECT_EQ(bf16(float_from_bits(0x7F7F7FFF)).bits(), 0x7F7F);
  // NaNs stay NaN (quiet), including signalling NaNs whose payload sits in the dropped bits.
  EXPECT_EQ(bf16(std::numeric_limits<float>::quiet_NaN()).bits(), 0x7FC0);
  EXPECT_TRUE(is_bf16_nan(bf16(float_from_bits(0x7F800001)).bits()));
  EXPECT_TRUE(is_bf16_nan(bf16(float_from_bits(0xFF800001)).bits()));
  EXPECT_EQ(bf16(float_from_bits(0xFF800001)).bits() & 0x8000, 0x8000);  // sign kept
  EXPECT_TRUE(std::isnan(float(bf16::from_bits(0x7FC1))));
}

TEST(BF16, EveryBitPatternRoundTrips) {
  for (std::uint32_t b = 0; b <= 0xFFFF; ++b) {
    const auto bits = static_cast<std::uint16_t>(b);
    const float value = bf16::from_bits(bits);
    ASSERT_EQ(bits_of(value), b << 16) << "bits 0x" << std::hex << b;
    if (is_bf16_nan(bits)) {
      ASSERT_TRUE(is_bf16_nan(bf16(value).bits())) << std::hex << b;
    } else {
      ASSERT_EQ(bf16(value).bits(), bits) << "bits 0x" << std::hex << b;
    }
  }
}

TEST(BF16, EveryMidpointRoundsToEven) {
  for (std::uint32_t b = 0; b <= 0xFFFF; ++b) {
    if ((b & 0x7F80u) == 0x7F80u) continue;  // no midpoint above inf / NaN
    const float midpoint = float_from_bits((b << 16) | 0x8000u);
    const std::uint32_t expected = (b & 1u) ? b + 1 : b;
    ASSERT_EQ(bf16(midpoint).bits(), expected) << "midpoint above 0x" << std::hex << b;
  }
}

TEST(F16, KnownBitPatterns) {
  EXPECT_EQ(f16(1.0f).bits(), 0x3C00);
  EXPECT_EQ(f16(-2.0f).bits(), 0xC000);
  EXPECT_EQ(f16(0.5f).bits(), 0x3800);
  EXPECT_EQ(f16(0.0f).bits(), 0x0000);
  EXPECT_EQ(f16(-0.0f).bits(), 0x8000);
  EXPECT_EQ(f16(65504.0f).bits(), 0x7BFF);  // largest finite
  EXPECT_EQ(f16(1.0f / 3.0f).bits(), 0x3555);
  EXPECT_EQ(float(f16::from_bits(0x3555)), 0.333251953125f);
  EXPECT_EQ(float(f16::from_bits(0x7BFF)), 65504.0f);
  EXPECT_EQ(float(f16::from_bits(0x0001)), std::ldexp(1.0f, -24));
  EXPECT_EQ(float(f16::from_bits(0x03FF)), 1023 * std::ldexp(1.0f, -24));
  EXPECT_EQ(float(f16::from_bits(0x0400)), std::ldexp(1.0f, -14));
  EXPECT_EQ(bits_of(f16::from_bits(0x8000)), 0x80000000u);
}

TEST(F16, TiesRoundToEven) {
  const float step = std::ldexp(1.0f, -10);            // spacing of binary16 in [1, 2)
  EXPECT_EQ(f16(1.0f + step / 2).bits(), 0x3C00);      // tie, 0x3C00 even: down
  EXPECT_EQ(f16(1.0f + 3 * step / 2).bits(), 0x3C02);  // tie, 0x3C01 odd: up
  EXPECT_EQ(f16(std::nextafter(1.0f + step / 2, 2.0f)).bits(), 0x3C01);
  EXPECT_EQ(f16(std::nextafter(1.0f + step / 2, 0.0f)).bits(), 0x3C00);
  EXPECT_EQ(f16(-1.0f - 3 * step / 2).bits(), 0xBC02);
  EXPECT_EQ(f16(2049.0f).bits(), 0x6800);  // 2049 is a tie between 2048 and 2050: 2048
  EXPECT_EQ(f16(2051.0f).bits(), 0x6802);  // tie between 2050 and 2052: 2052
}

TEST(F16, Subnormals) {
  const float smallest = std::ldexp(1.0f, -24);
  EXPECT_EQ(f16(smallest).bits(), 0x0001);
  EXPECT_EQ(f16(smallest / 2).bits(), 0x0000);                        // tie to even 0
  EXPECT_EQ(f16(-smallest / 2).bits(), 0x8000);                       // keeps the sign
  EXPECT_EQ(f16(std::nextafter(smallest / 2, 1.0f)).bits(), 0x0001);  // just above
  EXPECT_EQ(f16(smallest / 4).bits(), 0x0000);
  EXPECT_EQ(f16(3 * smallest / 2).bits(), 0x0002);    // tie to even 2
  EXPECT_EQ(f16(5 * smallest / 2).bits(), 0x0002);    // tie to even 2
  EXPECT_EQ(f16(1023 * smallest).bits(), 0x03FF);     // largest subnormal
  EXPECT_EQ(f16(1023.5f * smallest).bits(), 0x0400);  // tie rounds up into the normals
  EXPECT_EQ(f16(std::numeric_limits<float>::denorm_min()).bits(), 0x0000);
}

TEST(F16, OverflowInfinityNaN) {
  EXPECT_EQ(f16(65519.99f).bits(), 0x7BFF);  // below the tie with 65536
  EXPECT_EQ(f16(65520.0f).bits(), 0x7C00);   // tie; 0x7BFF is odd, so up to infinity
  EXPECT_EQ(f16(-65520.0f).bits(), 0xFC00);
  EXPECT_EQ(f16(1e6f).bits(), 0x7C00);
  EXPECT_EQ(f16(std::numeric_limits<float>::max()).bits(), 0x7C00);
  EXPECT_EQ(f16(std::numeric_limits<float>::infinity()).bits(), 0x7C00);
  EXPECT_EQ(f16(-std::numeric_limits<float>::infinity()).bits(), 0xFC00);
  EXPECT_TRUE(std::isinf(float(f16::from_bits(0x7C00))));
  EXPECT_TRUE(is_f16_nan(f16(std::numeric_limits<float>::quiet_NaN()).bits()));
  EXPECT_TRUE(is_f16_nan(f16(float_from_bits(0x7F800001)).bits()));  // signalling, low payload
  EXPECT_EQ(f16(float_from_bits(0xFFC00000)).bits() & 0x8000, 0x8000);
  EXPECT_TRUE(std::isnan(float(f16::from_bits(0x7C01))));
}

// All 2^16 binary16 values: tmr's widening matches GCC's, and narrowing gives the bits back.
TEST(F16, EveryBitPatternMatchesGccAndRoundTrips) {
  for (std::uint32_t h = 0; h <= 0xFFFF; ++h) {
    const auto bits = static_cast<std::uint16_t>(h);
    const float ours = f16::from_bits(bits);
    const float gcc = gcc_f16_to_float(bits);
    if (is_f16_nan(bits)) {
      ASSERT_TRUE(std::isnan(ours)) << std::hex << h;
      ASSERT_TRUE(is_f16_nan(f16(ours).bits())) << std::hex << h;
      ASSERT_EQ(f16(ours).bits() & 0x8000, h & 0x8000) << std::hex << h;
      continue;
    }
    ASSERT_EQ(bits_of(ours), bits_of(gcc)) << "bits 0x" << std::hex << h;
    ASSERT_EQ(f16(ours).bits(), bits) << "bits 0x" << std::hex << h;
  }
}

// Every tie between neighbouring binary16 values, and the floats just either side of it.
TEST(F16, EveryMidpointMatchesGcc) {
  for (std::uint32_t h = 0; h <= 0x7BFF; ++h) {
    const double low = f16::from_bits(static_cast<std::uint16_t>(h));
    // Above the largest finite value the next step would be 2^16 (where infinity starts).
    const double high = h == 0x7BFF ? 65536.0 : f16::from_bits(static_cast<std::uint16_t>(h + 1));
    const auto midpoint = static_cast<float>((low + high) / 2);  // exact: needs 12 bits
    for (const float tie : {midpoint, -midpoint}) {
      ASSERT_EQ(f16(tie).bits() & 1u, 0u) << "tie above 0x" << std::hex << h;
      for (const float x : {tie, std::nextafter(tie, 0.0f), std::nextafter(tie, 2 * tie)}) {
        ASSERT_EQ(f16(x).bits(), gcc_f16_bits(x)) << "x bits 0x" << std::hex << bits_of(x);
      }
    }
  }
}

// A few million floats spread over every exponent, against GCC (f16) and exact arithmetic
// (both types). The multiplier is odd, so the 2^22 samples are distinct bit patterns.
TEST(HalfFloats, MillionsOfFloatsMatchOracles) {
  constexpr std::uint32_t kSamples = 1u << 22;
  for (std::uint32_t i = 0; i < kSamples; ++i) {
    const std::uint32_t bits = i * 2654435761u;
    const float x = float_from_bits(bits);
    const std::uint16_t ours16 = f16(x).bits();
    const std::uint16_t oursb16 = bf16(x).bits();
    if (std::isnan(x)) {
      ASSERT_TRUE(is_f16_nan(ours16)) << std::hex << bits;
      ASSERT_TRUE(is_bf16_nan(oursb16)) << std::hex << bits;
      continue;
    }
    ASSERT_EQ(ours16, gcc_f16_bits(x)) << "f16 of bits 0x" << std::hex << bits;
    ASSERT_TRUE(same_value(reference_f16(x), f16::from_bits(ours16))) << std::hex << bits;
    ASSERT_TRUE(same_value(reference_bf16(x), bf16::from_bits(oursb16))) << std::hex << bits;
  }
}

}  // namespace
}  // namespace tmr
