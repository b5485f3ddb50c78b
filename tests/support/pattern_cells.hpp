// What the pattern-form tests of several tasks share: an order-sensitive kernel over int32 cells
// (2-D views) that also writes fresh outputs, the loop under test or its plain loop, and the
// run's route reasons.
#pragma once

#include <cstdint>
#include <string>

#include "tmr/tmr.hpp"

namespace tmr::testing {

// h = the scalars (weighted) + the sum of every element it reads (in and inout arguments,
// weighted by argument); each inout element becomes e * 3 + h + k, each out and out_existing
// element h + 7 * k + 1 + its index (k: the argument). RAW, WAR and WAW reorderings, a wrong view
// or a wrong scalar all change some result.
inline std::uint32_t cells_sum(const Tensor& t) {
  std::uint32_t sum = 0;
  const auto* p = t.data_as<std::int32_t>();
  for (std::uint32_t r = 0; r < t.dim(0); ++r) {
    for (std::uint32_t c = 0; c < t.dim(1); ++c)
      sum += static_cast<std::uint32_t>(p[r * t.stride(0) + c * t.stride(1)]) * (r * 5 + c + 1);
  }
  return sum;
}
inline void cells_kernel(const KernelArgs& a) {
  std::uint32_t h = 0;
  for (int s = 0; s < a.scalar_count(); ++s)
    h += static_cast<std::uint32_t>(a.scalar_bits(s)) * static_cast<std::uint32_t>(2 * s + 3);
  for (int k = 0; k < a.tensor_count(); ++k) {
    const ArgTag tag = a.tag(k);
    if (tag == ArgTag::in || tag == ArgTag::inout)
      h += cells_sum(a.tensor(k)) * static_cast<std::uint32_t>(k + 1);
  }
  for (int k = 0; k < a.tensor_count(); ++k) {
    const ArgTag tag = a.tag(k);
    if (tag == ArgTag::in || tag == ArgTag::no_dep) continue;
    const Tensor& t = a.tensor(k);
    auto* p = t.data_as<std::int32_t>();
    for (std::uint32_t r = 0; r < t.dim(0); ++r) {
      for (std::uint32_t c = 0; c < t.dim(1); ++c) {
        std::int32_t& e = p[r * t.stride(0) + c * t.stride(1)];
        const auto old = static_cast<std::uint32_t>(e);
        const auto kk = static_cast<std::uint32_t>(k);
        e = static_cast<std::int32_t>(tag == ArgTag::inout ? old * 3u + h + kk
                                                           : h + 7u * kk + 1u + r * 11u + c);
      }
    }
  }
}

// The pattern loop, or (`plain`) the loop of submit_iteration it must equal; `scoped`: each
// iteration its own scope in both.
inline void run_pattern_loop(Orchestrator& o, const TaskPattern& pattern, std::int64_t n,
                             bool scoped, bool plain) {
  if (!plain) {
    o.parallel_for(n, pattern, LoopOptions{scoped});
    return;
  }
  for (std::int64_t i = 0; i < n; ++i) {
    if (scoped) {
      TMR_SCOPE(o);
      pattern.submit_iteration(o, i);
    } else {
      pattern.submit_iteration(o, i);
    }
  }
}

// RunStats::pattern_lambda_reasons as "reason=count;" in order.
inline std::string route_reasons(const RunResult& r) {
  std::string out;
  for (const auto& [reason, n] : r.stats.pattern_lambda_reasons)
    out += reason + "=" + std::to_string(n) + ";";
  return out;
}

}  // namespace tmr::testing
