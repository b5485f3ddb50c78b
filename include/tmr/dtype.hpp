// Element types of tensors, including real 16-bit floats with round-to-nearest-even conversion.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tmr {

enum class DType : std::uint8_t { f32, f16, bf16, i32, i8, u8 };

constexpr std::size_t dtype_size(DType type) {
  switch (type) {
    case DType::f32:
    case DType::i32:
      return 4;
    case DType::f16:
    case DType::bf16:
      return 2;
    case DType::i8:
    case DType::u8:
      return 1;
  }
  return 0;
}

constexpr std::string_view dtype_name(DType type) {
  switch (type) {
    case DType::f32:
      return "f32";
    case DType::f16:
      return "f16";
    case DType::bf16:
      return "bf16";
    case DType::i32:
      return "i32";
    case DType::i8:
      return "i8";
    case DType::u8:
      return "u8";
  }
  return "?";
}

// The C++ type that holds elements of `type` (for messages): float, tmr::f16, std::int32_t...
constexpr std::string_view dtype_cpp_name(DType type) {
  switch (type) {
    case DType::f32:
      return "float";
    case DType::f16:
      return "tmr::f16";
    case DType::bf16:
      return "tmr::bf16";
    case DType::i32:
      return "std::int32_t";
    case DType::i8:
      return "std::int8_t";
    case DType::u8:
      return "std::uint8_t";
  }
  return "?";
}

// bfloat16: the upper half of an IEEE binary32. Conversion from float rounds to nearest even;
// NaN stays NaN (quiet), infinities and signed zeros are preserved.
class bf16 {
 public:
  constexpr bf16() = default;
  explicit constexpr bf16(float value) : bits_(round_from_float(value)) {}
  constexpr operator float() const { return std::bit_cast<float>(std::uint32_t{bits_} << 16); }
  constexpr std::uint16_t bits() const { return bits_; }
  static constexpr bf16 from_bits(std::uint16_t bits) {
    bf16 result;
    result.bits_ = bits;
    return result;
  }

 private:
  static constexpr std::uint16_t round_from_float(float value) {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(value);
    if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu) != 0) {
      return static_cast<std::uint16_t>((u >> 16) | 0x0040u);  // quiet NaN, sign kept
    }
    const std::uint32_t lsb = (u >> 16) & 1u;
    return static_cast<std::uint16_t>((u + 0x7FFFu + lsb) >> 16);
  }
  std::uint16_t bits_ = 0;
};

// IEEE binary16. Conversion from float rounds to nearest even, handles subnormals, overflow to
// infinity, and NaN.
class f16 {
 public:
  constexpr f16() = default;
  explicit constexpr f16(float value) : bits_(round_from_float(value)) {}
  constexpr operator float() const { return to_float(bits_); }
  constexpr std::uint16_t bits() const { return bits_; }
  static constexpr f16 from_bits(std::uint16_t bits) {
    f16 result;
    result.bits_ = bits;
    return result;
  }

 private:
  static constexpr std::uint16_t round_from_float(float value) {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(value);
    const auto sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
    const std::uint32_t abs = u & 0x7FFFFFFFu;
    if (abs >= 0x7F800000u) {  // inf or NaN
      return static_cast<std::uint16_t>(sign | 0x7C00u | (abs > 0x7F800000u ? 0x0200u : 0u));
    }
    if (abs >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // rounds to inf
    if (abs < 0x38800000u) {               // result is subnormal or zero in binary16
      if (abs < 0x33000000u) return sign;  // below half the smallest subnormal: +-0
      const std::uint32_t exponent = abs >> 23;
      const std::uint32_t mantissa = (abs & 0x007FFFFFu) | 0x00800000u;
      const std::uint32_t shift = 126u - exponent;  // bits dropped to reach the 2^-24 grid
      const std::uint32_t shifted = mantissa >> shift;
      const std::uint32_t remainder = mantissa & ((1u << shift) - 1u);
      const std::uint32_t halfway = 1u << (shift - 1u);
      std::uint32_t result = shifted;
      if (remainder > halfway || (remainder == halfway && (shifted & 1u))) ++result;
      return static_cast<std::uint16_t>(sign | result);
    }
    // Normal: rebias exponent (127 -> 15) and round the 13 dropped mantissa bits.
    const std::uint32_t rebased = abs - 0x38000000u;
    const std::uint32_t lsb = (rebased >> 13) & 1u;
    return static_cast<std::uint16_t>(sign | ((rebased + 0x0FFFu + lsb) >> 13));
  }

  static constexpr float to_float(std::uint16_t h) {
    const std::uint32_t sign = std::uint32_t{h & 0x8000u} << 16;
    const std::uint32_t exponent = (h >> 10) & 0x1Fu;
    std::uint32_t mantissa = h & 0x03FFu;
    if (exponent == 0x1Fu) return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));
    if (exponent != 0) {
      return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
    }
    if (mantissa == 0) return std::bit_cast<float>(sign);
    std::uint32_t e = 113;  // normalise the subnormal
    while ((mantissa & 0x0400u) == 0) {
      mantissa <<= 1;
      --e;
    }
    return std::bit_cast<float>(sign | (e << 23) | ((mantissa & 0x03FFu) << 13));
  }
  std::uint16_t bits_ = 0;
};

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::f32;
}
template <>
constexpr DType dtype_of<f16>() {
  return DType::f16;
}
template <>
constexpr DType dtype_of<bf16>() {
  return DType::bf16;
}
template <>
constexpr DType dtype_of<std::int32_t>() {
  return DType::i32;
}
template <>
constexpr DType dtype_of<std::int8_t>() {
  return DType::i8;
}
template <>
constexpr DType dtype_of<std::uint8_t>() {
  return DType::u8;
}

}  // namespace tmr
