// A small fixed-capacity list of dimension sizes (or offsets / indices), up to kMaxDims.
#pragma once

#include <array>
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <ranges>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

namespace tmr {

inline constexpr int kMaxDims = 5;

class Shape {
 public:
  constexpr Shape() = default;
  // Throws Error(invalid_args) past kMaxDims. Inline: views are built once per submitted tensor.
  Shape(std::initializer_list<std::uint32_t> dims) {
    if (dims.size() > static_cast<std::size_t>(kMaxDims)) throw_too_many_dims(dims.size());
    for (const std::uint32_t dim : dims)
      dims_[static_cast<std::size_t>(size_++)] = dim;
  }
  explicit Shape(std::span<const std::uint32_t> dims);
  // From any range of integers (a std::vector<int64_t>, a NumPy shape copied into a vector, a
  // view...). Throws Error(invalid_args) past kMaxDims or for a value outside [0, 2^32).
  template <std::ranges::input_range Range>
  requires std::integral<std::ranges::range_value_t<Range>> &&
      (!std::same_as<std::remove_cvref_t<Range>, Shape>)explicit Shape(Range&& dims) {
    for (auto&& dim : dims) {
      if (!std::in_range<std::uint32_t>(dim)) throw_bad_dim(std::to_string(dim), size_);
      push_back(static_cast<std::uint32_t>(dim));
    }
  }

  constexpr int size() const { return size_; }
  constexpr std::uint32_t operator[](int d) const { return dims_[static_cast<std::size_t>(d)]; }
  constexpr std::uint32_t& operator[](int d) { return dims_[static_cast<std::size_t>(d)]; }
  constexpr const std::uint32_t* begin() const { return dims_.data(); }
  constexpr const std::uint32_t* end() const { return dims_.data() + size_; }
  std::uint64_t elements() const;
  std::string to_string() const;
  void push_back(std::uint32_t dim);  // throws Error(invalid_args) past kMaxDims

  friend bool operator==(const Shape& a, const Shape& b) {
    if (a.size_ != b.size_) return false;
    for (int d = 0; d < a.size_; ++d) {
      if (a[d] != b[d]) return false;
    }
    return true;
  }

 private:
  [[noreturn]] static void throw_bad_dim(const std::string& value, int position);
  [[noreturn]] static void throw_too_many_dims(std::size_t requested);
  std::array<std::uint32_t, kMaxDims> dims_{};
  int size_ = 0;
};

}  // namespace tmr
