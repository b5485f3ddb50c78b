// The pattern form of parallel_for (Orchestrator::parallel_for(n, TaskPattern)): the iteration's
// arguments kept as one Args that moves from iteration to iteration by fixed steps, and the
// bookkeeping that decides when a submit may skip the replay compare (docs/design.md, "The
// pattern form").
//
// The loop runs through the LoopDriver like any parallel_for: it learns its template from the
// first iterations, proves the cross-iteration conflicts for the whole range (independent or
// carried at fixed distances; anything else falls back) and keeps the same books (the loop's
// table, affine families), so later submits, element access and wait_for see every task. What
// the pattern adds is knowledge the lambda form lacks: every iteration's arguments are those of
// iteration 0 moved by a fixed step in the box-offset lanes (checked here at i = 0, 1 and n - 1:
// offsets are affine, so monotone per dimension, and both ends in range prove every iteration
// in range). Once the template's exact compare has passed at two consecutive iterations under one
// plan, the template's stride equals the pattern's step in every lane, so every later iteration
// matches too: those submits skip the compare (LoopDriver::replay_trusted).
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "tmr/args.hpp"
#include "tmr/task_pattern.hpp"

namespace tmr::detail::loops {

// How a pattern loop runs, and why not trusted (RunStats::pattern_lambda_reasons).
enum class PatternRoute : std::uint8_t {
  trusted,       // the moving Args, trusted once verified
  off,           // the loop analysis is off (RuntimeConfig::parallel_for_analysis)
  nested,        // inside another running parallel_for: its iterations are the outer loop's
  short_loop,    // fewer than three iterations: nothing to trust
  out_of_range,  // iteration 0, 1 or n - 1 has no valid view (the lambda loop names the error)
  not_affine,    // a view's descriptor is not iteration 0's moved by a fixed box-offset step
  // A pattern of several tasks, fresh outputs, output references, indexed views or conditional
  // scalars (loops::PatternLoop): built in place, compared until each task is verified.
  compared,
  table_written,  // a task of the loop writes an index table: the plain loop's reads
  count
};
const char* pattern_route_name(PatternRoute route);

// Whether two descriptors differ only in their box offsets (the raw lanes a pattern's step
// moves), and those lanes: AffineLoop's and PatternLoop's test of a moving argument.
bool same_but_offsets(const Tensor& a, const Tensor& b);
void box_offsets(const Tensor& t, std::uint32_t* out);
// Raw box offsets linear in a parameter sampled at 0, 1 and `last` (descriptors a, b, z; exact
// in 128 bits): the change per unit into `unit`; false when the descriptors differ elsewhere or
// are not linear. With both ends in range, every point between lies in range too.
bool linear(const Tensor& a, const Tensor& b, const Tensor& z, std::int64_t last,
            std::uint32_t* unit);

// What identifies the template position whose exact compare passed (LoopDriver::exact_pass): its
// plan and the analysis's first iteration (a relearned analysis has a new one).
struct TrustKey {
  const void* plan = nullptr;
  std::int64_t first_analysed = 0;
  friend bool operator==(const TrustKey&, const TrustKey&) = default;
};

// A wide submit whose compare passed (LoopDriver::wide_pass): its position's key, the owner's
// iteration and the position's index in it (a null key.plan: no pass).
struct WidePass {
  TrustKey key;
  std::int64_t iteration = 0;
  std::uint32_t position = 0;
};

class AffineLoop {
 public:
  // Builds iterations 0, 1 and n - 1 and checks the steps; on `trusted` args() is iteration 0's.
  PatternRoute prepare(const TaskPattern& pattern, std::int64_t n);
  // The arguments of iteration `i`: the next one moved by the steps, any other rebuilt.
  const Args& at(const TaskPattern& pattern, std::int64_t i) {
    if (i == index_ + 1) [[likely]] {
      advance();
    } else if (i != index_) {
      current_ = pattern.args(i);
      index_ = i;
    }
    return current_;
  }
  // After a submit that was not trusted: `key` is LoopDriver::exact_pass()'s answer for it.
  void checked(const TrustKey& key) {
    if (key.plan == nullptr || !(key == key_)) {
      passes_ = key.plan == nullptr ? 0 : 1;
      key_ = key;
      return;
    }
    ++passes_;
  }
  // Two consecutive exact passes under one plan: the template's stride is the pattern's step.
  bool trusted() const { return passes_ >= 2; }
  const TrustKey& key() const { return key_; }

 private:
  void advance() {
    // Four lanes in one vector add, the fifth apart, each argument's lanes found by their offset
    // from the first tensor's bytes (no index arithmetic, no copy through the stack).
    unsigned char* const base = tensor_bytes(0);
    for (const Move& m : moves_) {
      unsigned char* const at = base + m.offset;
      Lanes4 low;
      std::memcpy(&low, at, sizeof(low));
      low += m.low;
      std::memcpy(at, &low, sizeof(low));
      std::uint32_t last;
      std::memcpy(&last, at + sizeof(low), sizeof(last));
      last += m.last;
      std::memcpy(at + sizeof(low), &last, sizeof(last));
    }
    for (const ScalarStep& s : scalar_steps_)
      scalar_slot(s.index) += s.step;
    ++index_;
  }
  // Args keeps its tensors as bytes (Args::TensorBytes) and its scalars as bits: the steps move
  // them in place (AffineLoop is Args' friend).
  unsigned char* tensor_bytes(int k) {
    return reinterpret_cast<unsigned char*>(
        current_.tensor_storage_[static_cast<std::size_t>(k)].bytes);
  }
  std::uint64_t& scalar_slot(int k) { return current_.scalars_[static_cast<std::size_t>(k)]; }

  struct Step {
    int arg = 0;
    std::uint32_t lanes[kMaxDims] = {};  // added to the raw box offsets (mod 2^32)
  };
  // A Step as advance() applies it: the byte offset of the argument's box-offset lanes from
  // tensor_bytes(0), its first four lanes' steps as one vector and the fifth's.
  using Lanes4 = std::uint32_t __attribute__((vector_size(16)));
  static_assert(kMaxDims == 5 && sizeof(Lanes4) == 4 * sizeof(std::uint32_t));
  struct Move {
    std::size_t offset = 0;
    Lanes4 low = {};
    std::uint32_t last = 0;
  };
  struct ScalarStep {
    int index = 0;
    std::uint64_t step = 0;
  };
  Args current_;
  std::int64_t index_ = 0;
  std::vector<Step> steps_;  // the arguments with a nonzero step
  std::vector<Move> moves_;  // steps_ as advance() applies them
  std::vector<ScalarStep> scalar_steps_;
  TrustKey key_;
  int passes_ = 0;
};

}  // namespace tmr::detail::loops
