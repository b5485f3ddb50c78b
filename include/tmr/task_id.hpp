// Task identity: (ring << 32) | local id, where local ids increase monotonically per ring.
#pragma once

#include <cstdint>

namespace tmr {

class TaskId {
 public:
  static constexpr std::uint64_t kInvalid = ~std::uint64_t{0};

  constexpr TaskId() = default;
  constexpr TaskId(std::uint32_t ring, std::uint32_t local)
      : value_((std::uint64_t{ring} << 32) | local) {}
  static constexpr TaskId from_value(std::uint64_t value) {
    TaskId id;
    id.value_ = value;
    return id;
  }

  constexpr bool valid() const { return value_ != kInvalid; }
  constexpr std::uint32_t ring() const { return static_cast<std::uint32_t>(value_ >> 32); }
  constexpr std::uint32_t local() const { return static_cast<std::uint32_t>(value_); }
  constexpr std::uint64_t value() const { return value_; }
  friend constexpr bool operator==(TaskId a, TaskId b) { return a.value_ == b.value_; }

 private:
  std::uint64_t value_ = kInvalid;
};

}  // namespace tmr
