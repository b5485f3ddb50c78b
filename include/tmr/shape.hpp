// A small fixed-capacity list of dimension sizes (or offsets / indices), up to kMaxDims.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>

namespace tmr {

inline constexpr int kMaxDims = 5;

class Shape {
 public:
  constexpr Shape() = default;
  Shape(std::initializer_list<std::uint32_t> dims);  // throws Error(invalid_args) past kMaxDims
  explicit Shape(std::span<const std::uint32_t> dims);

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
  std::array<std::uint32_t, kMaxDims> dims_{};
  int size_ = 0;
};

}  // namespace tmr
