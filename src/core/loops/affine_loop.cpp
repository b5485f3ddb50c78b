#include "core/loops/affine_loop.hpp"

#include <cstring>

#include "tmr/error.hpp"

namespace tmr::detail::loops {

const char* pattern_route_name(PatternRoute route) {
  switch (route) {
    case PatternRoute::trusted:
      return "trusted";
    case PatternRoute::off:
      return "analysis off";
    case PatternRoute::nested:
      return "inside another parallel_for";
    case PatternRoute::short_loop:
      return "fewer than three iterations";
    case PatternRoute::out_of_range:
      return "a view out of range";
    case PatternRoute::not_affine:
      return "views not affine in their box offsets";
    case PatternRoute::compared:
      return "several tasks or fresh outputs (compared until verified)";
    case PatternRoute::table_written:
      return "an index table written in the loop";
    case PatternRoute::count:
      break;
  }
  return "?";
}

// Whether two descriptors differ only in their box offsets: every field byte before and after
// them (not the trailing padding) compared.
bool same_but_offsets(const Tensor& a, const Tensor& b) {
  constexpr Tensor::FieldOffsets at = Tensor::field_offsets();
  constexpr std::size_t offsets_end = at.offsets + sizeof(std::uint32_t) * kMaxDims;
  constexpr std::size_t end = at.perm + kMaxDims;
  static_assert(at.offsets < offsets_end && offsets_end <= end);
  const auto* const x = reinterpret_cast<const unsigned char*>(&a);
  const auto* const y = reinterpret_cast<const unsigned char*>(&b);
  return std::memcmp(x, y, at.offsets) == 0 &&
         std::memcmp(x + offsets_end, y + offsets_end, end - offsets_end) == 0;
}

void box_offsets(const Tensor& t, std::uint32_t* out) {
  std::memcpy(out, reinterpret_cast<const unsigned char*>(&t) + Tensor::field_offsets().offsets,
              sizeof(std::uint32_t) * kMaxDims);
}

bool linear(const Tensor& a, const Tensor& b, const Tensor& z, std::int64_t last,
            std::uint32_t* unit) {
  if (!same_but_offsets(a, b) || !same_but_offsets(a, z)) return false;
  std::uint32_t oa[kMaxDims], ob[kMaxDims], oz[kMaxDims];
  box_offsets(a, oa);
  box_offsets(b, ob);
  box_offsets(z, oz);
  for (int r = 0; r < kMaxDims; ++r) {
    const std::int64_t d = std::int64_t{ob[r]} - std::int64_t{oa[r]};
    if (static_cast<__int128>(oa[r]) + static_cast<__int128>(d) * last != oz[r]) return false;
    unit[r] = static_cast<std::uint32_t>(d);
  }
  return true;
}

PatternRoute AffineLoop::prepare(const TaskPattern& pattern, std::int64_t n) {
  if (n < 3) return PatternRoute::short_loop;
  Args first;
  Args second;
  Args last;
  try {
    first = pattern.args(0);
    second = pattern.args(1);
    last = pattern.args(n - 1);
  } catch (const Error&) {
    return PatternRoute::out_of_range;  // the lambda loop throws it where a plain loop would
  }
  const int count = first.tensor_count();
  steps_.clear();
  moves_.clear();
  for (int k = 0; k < count; ++k) {
    const Tensor& t0 = first.tensor(k);
    const Tensor& t1 = second.tensor(k);
    const Tensor& tn = last.tensor(k);
    Step step;
    step.arg = k;
    if (!linear(t0, t1, tn, n - 1, step.lanes)) return PatternRoute::not_affine;
    bool moves = false;
    for (const std::uint32_t lane : step.lanes)
      moves |= lane != 0;
    if (moves) steps_.push_back(step);
  }
  for (const Step& step : steps_) {
    Move move;
    move.offset = static_cast<std::size_t>(tensor_bytes(step.arg) - tensor_bytes(0)) +
                  Tensor::field_offsets().offsets;
    std::memcpy(&move.low, step.lanes, sizeof(move.low));
    move.last = step.lanes[kMaxDims - 1];
    moves_.push_back(move);
  }
  scalar_steps_.clear();
  for (int s = 0; s < first.scalar_count(); ++s) {
    const std::uint64_t step = second.scalars()[s] - first.scalars()[s];
    if (step != 0) scalar_steps_.push_back({s, step});
  }
  current_ = first;
  index_ = 0;
  return PatternRoute::trusted;
}

}  // namespace tmr::detail::loops
