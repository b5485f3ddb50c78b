#include "support/random_program.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <sstream>

namespace tmr::testing {
namespace {

// Scalars every property-test kernel receives.
enum Scalar { kSalt = 0, kReadMask = 1, kWriteMask = 2, kModifyMask = 3 };

struct View {
  int buffer = 0;  // program-wide buffer number
  std::uint32_t r0 = 0, rows = 1, c0 = 0, cols = 1;
  bool transposed = false;
  std::uint32_t logical_rows() const { return transposed ? cols : rows; }
  std::uint32_t logical_cols() const { return transposed ? rows : cols; }
  // Raw (row, col) of logical element (a, b).
  std::pair<std::uint32_t, std::uint32_t> raw(std::uint32_t a, std::uint32_t b) const {
    return transposed ? std::pair{r0 + b, c0 + a} : std::pair{r0 + a, c0 + b};
  }
};

bool boxes_overlap(const View& x, const View& y) {
  return x.buffer == y.buffer && x.r0 < y.r0 + y.rows && y.r0 < x.r0 + x.rows &&
         x.c0 < y.c0 + y.cols && y.c0 < x.c0 + x.cols;
}

struct ArgOp {
  ArgTag tag;
  View view;  // for out: buffer = the fresh buffer, view = whole
  std::uint32_t fresh_rows = 0, fresh_cols = 0;
};

// The heap bytes a fresh output of `arg` takes (i32 elements, 64-byte aligned).
std::uint64_t heap_bytes(const ArgOp& arg) {
  const std::uint64_t bytes = std::uint64_t{arg.fresh_rows} * arg.fresh_cols * sizeof(std::int32_t);
  return (bytes + 63) / 64 * 64;
}

enum class OpKind {
  scope_begin,
  scope_end,
  task,
  alloc,
  get,
  set,
  loop_begin,
  loop_end,
  iteration_begin,
  iteration_end
};
enum class TaskKind { aic, aiv, mix_aic_aiv, mix_all, mix_aivs };

struct Op {
  OpKind kind = OpKind::task;
  TaskKind task_kind = TaskKind::aiv;
  std::vector<ArgOp> args;
  std::uint32_t blocks = 1;
  bool sync_start = false;
  int compute_slot = 0;  // which kernel slot of a MIX task computes
  std::uint32_t salt = 0;
  View element;  // get / set: a 1x1 view
  std::int32_t value = 0;
  std::int32_t fill = 0;    // alloc
  int loop_iterations = 0;  // loop_begin
  bool loop_scoped = false;
};

Op make_op(OpKind kind) {
  Op op;
  op.kind = kind;
  return op;
}

struct Buffer {
  std::uint32_t rows = 0, cols = 0;
};

// The compute rule shared by the kernels and the reference: every written element becomes a
// function of its old value (inout only), the task's salt, its position and all read elements.
std::uint32_t new_value(std::uint32_t old, std::uint32_t salt, std::uint32_t sum, std::uint32_t p,
                        int arg) {
  return old * 3u + salt * 7u + sum + p * 13u + static_cast<std::uint32_t>(arg);
}

void compute_kernel(const KernelArgs& a) {
  const auto salt = a.scalar<std::uint32_t>(kSalt);
  const auto read_mask = a.scalar<std::uint32_t>(kReadMask);
  const auto write_mask = a.scalar<std::uint32_t>(kWriteMask);
  const auto modify_mask = a.scalar<std::uint32_t>(kModifyMask);
  std::uint32_t sum = 0;
  for (int i = 0; i < a.tensor_count(); ++i) {
    if (!(read_mask >> i & 1u)) continue;
    const Tensor& t = a.tensor(i);
    const auto* base = t.data_as<std::int32_t>();
    for (std::uint32_t x = 0; x < t.dim(0); ++x) {
      for (std::uint32_t y = 0; y < t.dim(1); ++y) {
        sum += static_cast<std::uint32_t>(base[x * t.stride(0) + y * t.stride(1)]);
      }
    }
  }
  for (int i = 0; i < a.tensor_count(); ++i) {
    if (!(write_mask >> i & 1u)) continue;
    const Tensor& t = a.tensor(i);
    auto* base = t.data_as<std::int32_t>();
    for (std::uint32_t x = 0; x < t.dim(0); ++x) {
      for (std::uint32_t y = 0; y < t.dim(1); ++y) {
        const std::uint32_t p = x * t.dim(1) + y;
        if (p % a.block_count() != a.block_index()) continue;
        std::int32_t& cell = base[x * t.stride(0) + y * t.stride(1)];
        const std::uint32_t old = (modify_mask >> i & 1u) ? static_cast<std::uint32_t>(cell) : 0u;
        cell = static_cast<std::int32_t>(new_value(old, salt, sum, p, i));
      }
    }
  }
}

void noop_kernel(const KernelArgs&) {}

class Generator {
 public:
  Generator(std::uint64_t seed, const ProgramShape& shape) : rng_(seed), shape_(shape) {}

  std::vector<Op> generate(std::vector<Buffer>* buffers) {
    for (int b = 0; b < shape_.buffers; ++b) {
      buffers->push_back({pick(2, shape_.max_dim), pick(2, shape_.max_dim)});
    }
    buffers_ = buffers;
    scopes_.push_back({});  // the outermost scope
    if (!shape_.top_level_tasks) open_scope();
    for (int i = 0; i < shape_.operations; ++i) {
      line_phase_ = shape_.line_phases > 0 && (i / shape_.line_phases) % 2 == 1;
      step();
    }
    while (scopes_.size() > 1)
      close_scope();
    return std::move(ops_);
  }

 private:
  struct ScopeState {
    std::vector<int> fresh;  // buffers created in this scope
    int tasks = 0;
  };

  // The next decision byte, or nothing once they ran out (or there are none).
  std::optional<std::uint32_t> next_byte() {
    if (shape_.decisions == nullptr || used_ >= shape_.decisions->size()) return std::nullopt;
    return (*shape_.decisions)[used_++];
  }
  std::uint32_t pick(std::uint32_t lo, std::uint32_t hi) {
    if (const auto low = next_byte()) {
      const std::uint32_t value = *low | (hi - lo > 255 ? next_byte().value_or(0) << 8 : 0);
      return lo + value % (hi - lo + 1);
    }
    return std::uniform_int_distribution<std::uint32_t>(lo, hi)(rng_);
  }
  double unit() {
    if (const auto byte = next_byte()) return (*byte + 0.5) / 256.0;
    return std::uniform_real_distribution<double>(0, 1)(rng_);
  }
  bool chance(double p) { return unit() < p; }

  void open_scope() {
    ops_.push_back(make_op(OpKind::scope_begin));
    scopes_.push_back({});
  }
  void close_scope() {
    for (int b : scopes_.back().fresh)
      live_.erase(std::remove(live_.begin(), live_.end(), b), live_.end());
    scopes_.pop_back();
    ops_.push_back(make_op(OpKind::scope_end));
  }

  View random_view(int buffer) {
    const Buffer& b = (*buffers_)[buffer];
    View v;
    v.buffer = buffer;
    if (chance(0.2)) {
      v.rows = b.rows;
      v.cols = b.cols;
    } else {
      v.r0 = pick(0, b.rows - 1);
      v.rows = pick(1, b.rows - v.r0);
      v.c0 = pick(0, b.cols - 1);
      v.cols = pick(1, b.cols - v.c0);
    }
    v.transposed = chance(0.15);
    return v;
  }

  int random_buffer() {
    const std::size_t externals = static_cast<std::size_t>(shape_.buffers);
    const std::size_t choices = externals + live_.size();
    const std::size_t k = pick(0, static_cast<std::uint32_t>(choices - 1));
    return k < externals ? static_cast<int>(k) : live_[k - externals];
  }

  // Adds `arg` to the task unless it clashes with an earlier argument: within one task, a written
  // region must not overlap any other argument of the task (the runtime orders tasks, not the
  // accesses of one task).
  static void add_checked(Op& op, const ArgOp& arg) {
    const bool writes = arg.tag == ArgTag::inout || arg.tag == ArgTag::out_existing;
    for (const ArgOp& other : op.args) {
      if (other.tag == ArgTag::out) continue;
      const bool other_writes = other.tag == ArgTag::inout || other.tag == ArgTag::out_existing;
      if ((writes || other_writes || other.tag == ArgTag::no_dep || arg.tag == ArgTag::no_dep) &&
          boxes_overlap(arg.view, other.view)) {
        return;
      }
    }
    op.args.push_back(arg);
  }

  bool task_room() const { return scopes_.back().tasks < shape_.max_tasks_per_scope; }

  void step() {
    const bool depth_ok = static_cast<int>(scopes_.size()) - 1 < shape_.max_scope_depth;
    if (!task_room()) {
      if (scopes_.size() > 1 && (chance(0.5) || !depth_ok)) {
        close_scope();
      } else if (depth_ok) {
        open_scope();
      } else {
        close_scope();
      }
      return;
    }
    if (line_phase_) return add_task();
    const double r = unit();
    if (r < 0.08 && depth_ok) return open_scope();
    if (r < 0.16 && scopes_.size() > (shape_.top_level_tasks ? 1u : 2u)) return close_scope();
    if (r < 0.20 && shape_.fresh_outputs) return add_alloc();
    if (r < 0.20 + shape_.loop_chance && (!shape_.tiny_loops || depth_ok)) return add_loop();
    if (r < 0.24 && shape_.element_access) return add_element_op();
    add_task();
  }

  int new_fresh(std::uint32_t rows, std::uint32_t cols) {
    buffers_->push_back({rows, cols});
    const int id = static_cast<int>(buffers_->size()) - 1;
    live_.push_back(id);
    scopes_.back().fresh.push_back(id);
    return id;
  }

  void add_alloc() {
    Op op = make_op(OpKind::alloc);
    const std::uint32_t rows = pick(1, shape_.max_dim);
    const std::uint32_t cols = pick(1, shape_.max_dim);
    ArgOp arg{ArgTag::out, View{}, rows, cols};
    arg.view = View{new_fresh(rows, cols), 0, rows, 0, cols, false};
    op.args.push_back(arg);
    op.fill = static_cast<std::int32_t>(pick(0, 1000));
    ops_.push_back(op);
    ++scopes_.back().tasks;
  }

  void add_element_op() {
    Op op = make_op(chance(0.5) ? OpKind::get : OpKind::set);
    const int buffer = random_buffer();
    const Buffer& b = (*buffers_)[buffer];
    op.element = View{buffer, pick(0, b.rows - 1), 1, pick(0, b.cols - 1), 1, false};
    op.value = static_cast<std::int32_t>(pick(0, 100000));
    ops_.push_back(op);
  }

  void add_task() {
    Op op = make_op(OpKind::task);
    op.task_kind = static_cast<TaskKind>(pick(0, 4));
    op.salt = pick(1, 1u << 20);
    op.blocks = shape_.max_blocks > 1 && chance(0.3)
                    ? pick(2, static_cast<std::uint32_t>(shape_.max_blocks))
                    : 1;
    op.sync_start = op.blocks > 1 && chance(0.3);
    switch (op.task_kind) {
      case TaskKind::mix_aic_aiv:
        op.compute_slot = static_cast<int>(pick(0, 1));
        break;
      case TaskKind::mix_all:
        op.compute_slot = static_cast<int>(pick(0, 2));
        break;
      case TaskKind::mix_aivs:
        op.compute_slot = static_cast<int>(pick(1, 2));
        break;
      default:
        break;
    }
    const int arg_count = static_cast<int>(pick(1, 5));
    for (int i = 0; i < arg_count; ++i) {
      ArgOp arg;
      if (line_phase_) {
        const Buffer& b = (*buffers_)[0];
        arg.view = View{0, pick(0, b.rows - 1), 1, 0, b.cols, false};
        arg.tag = chance(0.8) ? ArgTag::in : ArgTag::inout;
        add_checked(op, arg);
        continue;
      }
      if (shape_.hot_rows > 0 && chance(shape_.hot_rows)) {
        const int buffer =
            static_cast<int>(pick(0, static_cast<std::uint32_t>(shape_.buffers - 1)));
        const Buffer& b = (*buffers_)[buffer];
        arg.view = View{buffer, pick(0, b.rows - 1), 1, 0, b.cols, chance(0.15)};
        arg.tag = chance(0.8) ? ArgTag::in : ArgTag::inout;
        add_checked(op, arg);
        continue;
      }
      const double r = unit();
      // (extra_fresh's draw only when set: the default shapes' programs stay as they were)
      const bool extra = shape_.extra_fresh > 0 && r >= 0.15 && chance(shape_.extra_fresh);
      if (shape_.fresh_outputs && (r < 0.15 || extra)) {
        arg.tag = ArgTag::out;
        arg.fresh_rows = pick(1, shape_.max_dim);
        arg.fresh_cols = pick(1, shape_.max_dim);
        arg.view = View{-1, 0, arg.fresh_rows, 0, arg.fresh_cols, false};
        op.args.push_back(arg);
        continue;
      }
      arg.tag = r < 0.55   ? ArgTag::in
                : r < 0.80 ? ArgTag::inout
                : r < 0.95 ? ArgTag::out_existing
                           : ArgTag::no_dep;
      arg.view = random_view(random_buffer());
      add_checked(op, arg);
    }
    // Fresh outputs get buffer numbers in argument order.
    for (ArgOp& arg : op.args) {
      if (arg.tag == ArgTag::out) arg.view.buffer = new_fresh(arg.fresh_rows, arg.fresh_cols);
    }
    ops_.push_back(op);
    ++scopes_.back().tasks;
  }

  // ---- parallel_for ----
  // One argument of a task pattern: an affine view of an external buffer, a fresh output, a view
  // of a fresh buffer made earlier in the same iteration, or the previous iteration's output.
  struct PatternArg {
    ArgTag tag = ArgTag::in;
    enum class Source { external, fresh_out, same_iteration, previous_iteration } source;
    int buffer = 0;                // external buffer, or (same/previous) the pattern that made it
    View base;                     // iteration 0 (external) or the fresh view
    std::uint32_t sr = 0, sc = 0;  // row / column stride per iteration
    std::uint32_t fresh_rows = 0, fresh_cols = 0;
  };
  struct Pattern {
    TaskKind kind = TaskKind::aiv;
    std::vector<PatternArg> args;
    std::uint32_t blocks = 1;
    bool inner_loop = false;  // a nested loop of one-row tasks
    int inner_iterations = 0;
    std::vector<int> made;  // per iteration: fresh buffer ids of its out args (last iteration)
  };

  View at(const PatternArg& a, int i) const {
    View v = a.base;
    v.r0 += a.sr * static_cast<std::uint32_t>(i);
    v.c0 += a.sc * static_cast<std::uint32_t>(i);
    return v;
  }

  // An affine view of `buffer` that stays inside it for n iterations, or false.
  bool affine_view(int buffer, int n, std::uint32_t sr, std::uint32_t sc, PatternArg* a) {
    const Buffer& b = (*buffers_)[static_cast<std::size_t>(buffer)];
    const std::uint32_t row_room = sr * static_cast<std::uint32_t>(n - 1);
    const std::uint32_t col_room = sc * static_cast<std::uint32_t>(n - 1);
    if (row_room >= b.rows || col_room >= b.cols) return false;
    a->buffer = buffer;
    a->sr = sr;
    a->sc = sc;
    a->base.buffer = buffer;
    a->base.rows = pick(1, std::min<std::uint32_t>(4, b.rows - row_room));
    a->base.cols = pick(1, std::min<std::uint32_t>(4, b.cols - col_room));
    a->base.r0 = pick(0, b.rows - row_room - a->base.rows);
    a->base.c0 = pick(0, b.cols - col_room - a->base.cols);
    a->base.transposed = chance(0.15);
    return true;
  }

  static bool writes(ArgTag t) { return t == ArgTag::inout || t == ArgTag::out_existing; }

  // A task's written views must not overlap its other views in any iteration.
  bool clashes(const Pattern& p, const PatternArg& cand, int n) const {
    for (const PatternArg& other : p.args) {
      if (other.source != PatternArg::Source::external ||
          cand.source != PatternArg::Source::external) {
        continue;
      }
      if (!writes(cand.tag) && !writes(other.tag)) continue;
      for (int i = 0; i < n; ++i) {
        if (boxes_overlap(at(cand, i), at(other, i))) return true;
      }
    }
    return false;
  }

  void add_loop() {
    const int n = static_cast<int>(pick(3, static_cast<std::uint32_t>(shape_.max_loop_iterations)));
    const bool scoped = shape_.tiny_loops || chance(0.3);
    // One stride per buffer for the whole loop (the common, provable case); sometimes not.
    std::vector<std::pair<std::uint32_t, std::uint32_t>> strides;
    for (int b = 0; b < shape_.buffers; ++b)
      strides.emplace_back(pick(0, 1), chance(0.5) ? pick(0, 1) : 0);
    const bool own_strides = shape_.loop_triggers && chance(0.1);
    std::vector<Pattern> patterns(pick(1, 3));
    bool nested = false;
    for (std::size_t p = 0; p < patterns.size(); ++p) {
      Pattern& pat = patterns[p];
      pat.kind = static_cast<TaskKind>(pick(0, 4));
      pat.blocks = chance(0.2) ? pick(2, 3) : 1;
      if (chance(0.12)) {
        pat.inner_loop = true;
        pat.inner_iterations = static_cast<int>(pick(2, 5));
        nested = true;
      }
      const int arg_count = static_cast<int>(pick(1, 3));
      for (int k = 0; k < arg_count; ++k) {
        PatternArg a;
        const double r = std::uniform_real_distribution<double>(0, 1)(rng_);
        // Fresh buffers made by an earlier pattern of this iteration.
        std::vector<int> makers;
        for (std::size_t q = 0; q < p; ++q) {
          for (const PatternArg& x : patterns[q].args) {
            if (x.source == PatternArg::Source::fresh_out) makers.push_back(static_cast<int>(q));
          }
        }
        if (!pat.inner_loop && r < 0.15) {
          a.tag = ArgTag::out;
          a.source = PatternArg::Source::fresh_out;
          a.fresh_rows = pick(1, 4);
          a.fresh_cols = pick(1, 4);
          pat.args.push_back(a);
          continue;
        }
        if (!pat.inner_loop && r < 0.30 && !makers.empty()) {
          a.source = PatternArg::Source::same_iteration;
          a.buffer = makers[pick(0, static_cast<std::uint32_t>(makers.size() - 1))];
          // One view per fresh buffer and task: a task's blocks must not write what they read.
          const bool taken = std::any_of(pat.args.begin(), pat.args.end(), [&](const auto& x) {
            return x.source == PatternArg::Source::same_iteration && x.buffer == a.buffer;
          });
          if (taken) continue;
          a.tag = chance(0.6) ? ArgTag::in : ArgTag::inout;
          // Fresh outputs of one pattern: the first one.
          for (const PatternArg& x : patterns[static_cast<std::size_t>(a.buffer)].args) {
            if (x.source == PatternArg::Source::fresh_out) {
              a.base = View{-1, 0, x.fresh_rows, 0, x.fresh_cols, false};
              break;
            }
          }
          pat.args.push_back(a);
          continue;
        }
        a.source = PatternArg::Source::external;
        const double t = std::uniform_real_distribution<double>(0, 1)(rng_);
        a.tag = t < 0.5 ? ArgTag::in : t < 0.8 ? ArgTag::inout : ArgTag::out_existing;
        const int buffer =
            static_cast<int>(pick(0, static_cast<std::uint32_t>(shape_.buffers - 1)));
        auto [sr, sc] = strides[static_cast<std::size_t>(buffer)];
        if (own_strides) {
          sr = pick(0, 1);
          sc = pick(0, 1);
        }
        const int span = pat.inner_loop ? n * pat.inner_iterations : n;
        if (!affine_view(buffer, span, sr, sc, &a)) continue;
        if (!clashes(pat, a, span)) pat.args.push_back(a);
      }
      if (pat.args.empty()) {
        PatternArg a;
        a.tag = ArgTag::out;
        a.source = PatternArg::Source::fresh_out;
        a.fresh_rows = a.fresh_cols = 2;
        pat.inner_loop = false;
        pat.args.push_back(a);
      }
    }
    // A chain: each iteration reads the previous iteration's fresh output (not across scopes).
    if (!scoped && chance(0.3)) {
      Pattern chain;
      chain.kind = TaskKind::aiv;
      PatternArg prev;
      prev.source = PatternArg::Source::previous_iteration;
      prev.tag = ArgTag::in;
      prev.buffer = static_cast<int>(patterns.size());
      prev.base = View{-1, 0, 3, 0, 3, false};
      chain.args.push_back(prev);
      PatternArg out;
      out.tag = ArgTag::out;
      out.source = PatternArg::Source::fresh_out;
      out.fresh_rows = out.fresh_cols = 3;
      chain.args.push_back(out);
      patterns.push_back(chain);
    }
    if (scoped) fit_iteration(patterns);
    // Fall-back triggers at one iteration.
    enum class Trigger { none, shift, get, extra } trigger = Trigger::none;
    if (shape_.loop_triggers && chance(0.3)) {
      trigger = static_cast<Trigger>(pick(1, shape_.tiny_loops ? 2 : 3));
    }
    const int trigger_at = static_cast<int>(pick(2, static_cast<std::uint32_t>(n - 1)));

    Op begin = make_op(OpKind::loop_begin);
    begin.loop_iterations = n;
    begin.loop_scoped = scoped;
    ops_.push_back(begin);
    ++loops_;
    if (trigger == Trigger::none && !nested && !own_strides) ++clean_loops_;
    std::vector<int> previous_out(patterns.size(), -1);
    for (int i = 0; i < n; ++i) {
      ops_.push_back(make_op(OpKind::iteration_begin));
      if (scoped) scopes_.push_back({});
      std::vector<int> made(patterns.size(), -1);
      for (std::size_t p = 0; p < patterns.size(); ++p) {
        const Pattern& pat = patterns[p];
        if (pat.inner_loop) {
          Op inner = make_op(OpKind::loop_begin);
          inner.loop_iterations = pat.inner_iterations;
          ops_.push_back(inner);
          ++loops_;
          for (int j = 0; j < pat.inner_iterations; ++j) {
            ops_.push_back(make_op(OpKind::iteration_begin));
            emit_pattern(pat, i * pat.inner_iterations + j, made, previous_out, false);
            ops_.push_back(make_op(OpKind::iteration_end));
          }
          ops_.push_back(make_op(OpKind::loop_end));
          continue;
        }
        emit_pattern(pat, i, made, previous_out, trigger == Trigger::shift && i == trigger_at);
        made[p] = made_last_;
      }
      if (i == trigger_at && trigger == Trigger::get) add_element_op();
      if (i == trigger_at && trigger == Trigger::extra) add_task();
      for (std::size_t p = 0; p < patterns.size(); ++p)
        previous_out[p] = made[p];
      // The chain's first iteration reads an external buffer instead.
      if (scoped) {
        for (int b : scopes_.back().fresh)
          live_.erase(std::remove(live_.begin(), live_.end(), b), live_.end());
        scopes_.pop_back();
      }
      ops_.push_back(make_op(OpKind::iteration_end));
    }
    ops_.push_back(make_op(OpKind::loop_end));
  }

  // A scoped iteration is a scope like any other: its tasks must fit max_tasks_per_scope, or
  // under tiny rings the tasks behind the ones its scope holds fill the window and the ring
  // deadlocks (a correct flow_control_deadlock, but not the program the test means to run).
  // Shortens the widest inner loop, else drops the last pattern (only later patterns read the
  // buffers earlier ones make).
  void fit_iteration(std::vector<Pattern>& patterns) const {
    const auto tasks_of = [](const Pattern& p) { return p.inner_loop ? p.inner_iterations : 1; };
    const auto total = [&] {
      int tasks = 0;
      for (const Pattern& p : patterns)
        tasks += tasks_of(p);
      return tasks;
    };
    while (total() > shape_.max_tasks_per_scope && patterns.size() > 1) {
      const auto widest = std::max_element(
          patterns.begin(), patterns.end(),
          [&](const Pattern& a, const Pattern& b) { return tasks_of(a) < tasks_of(b); });
      if (widest->inner_loop && widest->inner_iterations > 2) {
        --widest->inner_iterations;
      } else {
        patterns.pop_back();
      }
    }
  }

  // Emits one task of `pat` for iteration i; records its first fresh output in made_last_.
  void emit_pattern(const Pattern& pat, int i, const std::vector<int>& made,
                    const std::vector<int>& previous_out, bool shift) {
    Op op = make_op(OpKind::task);
    op.task_kind = pat.kind;
    op.salt = pick(1, 1u << 20);
    op.blocks = pat.blocks;
    op.compute_slot = pat.kind == TaskKind::mix_aivs ? 1 : 0;
    made_last_ = -1;
    bool shifted = false;
    for (std::size_t k = 0; k < pat.args.size(); ++k) {
      const PatternArg& a = pat.args[k];
      ArgOp arg;
      arg.tag = a.tag;
      switch (a.source) {
        case PatternArg::Source::external: {
          arg.view = at(a, i);
          const Buffer& b = (*buffers_)[static_cast<std::size_t>(a.buffer)];
          if (shift && !shifted && arg.view.r0 + arg.view.rows < b.rows) {
            ++arg.view.r0;  // breaks the learned pattern at this iteration
            // The shifted view must not meet another argument of the task where either writes:
            // the arguments before it and the external ones after it (a task's blocks must not
            // write what they read, or the kernels and the reference disagree).
            bool clash = false;
            for (const ArgOp& other : op.args) {
              if ((writes(arg.tag) || writes(other.tag)) && other.tag != ArgTag::out &&
                  boxes_overlap(arg.view, other.view)) {
                clash = true;
              }
            }
            for (std::size_t q = k + 1; q < pat.args.size(); ++q) {
              const PatternArg& later = pat.args[q];
              if (later.source == PatternArg::Source::external &&
                  (writes(arg.tag) || writes(later.tag)) && boxes_overlap(arg.view, at(later, i))) {
                clash = true;
              }
            }
            if (clash) {
              --arg.view.r0;
            } else {
              shifted = true;
            }
          }
          break;
        }
        case PatternArg::Source::fresh_out:
          arg.fresh_rows = a.fresh_rows;
          arg.fresh_cols = a.fresh_cols;
          arg.view = View{-1, 0, a.fresh_rows, 0, a.fresh_cols, false};
          break;
        case PatternArg::Source::same_iteration:
          arg.view = a.base;
          arg.view.buffer = made[static_cast<std::size_t>(a.buffer)];
          break;
        case PatternArg::Source::previous_iteration: {
          const int source = previous_out[static_cast<std::size_t>(a.buffer)];
          if (source >= 0) {
            arg.view = a.base;
            arg.view.buffer = source;
          } else {
            arg.view = View{0, 0, 1, 0, 1, false};  // iteration 0: an external element
          }
          break;
        }
      }
      op.args.push_back(arg);
    }
    for (ArgOp& arg : op.args) {
      if (arg.tag == ArgTag::out) {
        arg.view.buffer = new_fresh(arg.fresh_rows, arg.fresh_cols);
        if (made_last_ < 0) made_last_ = arg.view.buffer;
      }
    }
    ops_.push_back(op);
    ++scopes_.back().tasks;
  }

 public:
  int loops_ = 0;
  int clean_loops_ = 0;

 private:
  int made_last_ = -1;
  std::mt19937_64 rng_;
  ProgramShape shape_;
  std::size_t used_ = 0;     // decision bytes consumed
  bool line_phase_ = false;  // ProgramShape::line_phases: this step's arguments have their lines
  std::vector<Buffer>* buffers_ = nullptr;
  std::vector<ScopeState> scopes_;
  std::vector<int> live_;
  std::vector<Op> ops_;
};

std::uint32_t mask_of(const Op& op, bool (*pred)(ArgTag)) {
  std::uint32_t mask = 0;
  for (std::size_t i = 0; i < op.args.size(); ++i) {
    if (pred(op.args[i].tag)) mask |= 1u << i;
  }
  return mask;
}
bool is_read(ArgTag t) {
  return t == ArgTag::in;
}
bool is_write(ArgTag t) {
  return t == ArgTag::out || t == ArgTag::inout || t == ArgTag::out_existing;
}
// The generator's promise: no task has two arguments that meet where either writes (its blocks
// would read what another block wrote, and the kernels and the reference would disagree).
// Returns the first task that breaks it, described, or "".
std::string self_overlapping_task(const std::vector<Op>& ops) {
  int task = 0;
  for (const Op& op : ops) {
    if (op.kind != OpKind::task) continue;
    for (std::size_t x = 0; x < op.args.size(); ++x) {
      for (std::size_t y = x + 1; y < op.args.size(); ++y) {
        const ArgOp& a = op.args[x];
        const ArgOp& b = op.args[y];
        if (a.tag == ArgTag::out || b.tag == ArgTag::out) continue;
        if ((is_write(a.tag) || is_write(b.tag)) && boxes_overlap(a.view, b.view)) {
          return "generated task " + std::to_string(task) + " has arguments " + std::to_string(x) +
                 " and " + std::to_string(y) + " overlapping where one writes";
        }
      }
    }
    ++task;
  }
  return "";
}
bool is_modify(ArgTag t) {
  return t == ArgTag::inout;
}

// ---------------------------------------------------------------- sequential reference

struct Host {
  std::vector<Buffer> shapes;
  std::vector<std::vector<std::int32_t>> data;
  std::int32_t& at(const View& v, std::uint32_t a, std::uint32_t b) {
    const auto [r, c] = v.raw(a, b);
    return data[static_cast<std::size_t>(v.buffer)]
               [r * shapes[static_cast<std::size_t>(v.buffer)].cols + c];
  }
};

void reference_task(Host& host, const Op& op) {
  std::uint32_t sum = 0;
  for (const ArgOp& arg : op.args) {
    if (arg.tag != ArgTag::in) continue;
    for (std::uint32_t a = 0; a < arg.view.logical_rows(); ++a) {
      for (std::uint32_t b = 0; b < arg.view.logical_cols(); ++b) {
        sum += static_cast<std::uint32_t>(host.at(arg.view, a, b));
      }
    }
  }
  for (std::size_t i = 0; i < op.args.size(); ++i) {
    const ArgOp& arg = op.args[i];
    if (!is_write(arg.tag)) continue;
    for (std::uint32_t a = 0; a < arg.view.logical_rows(); ++a) {
      for (std::uint32_t b = 0; b < arg.view.logical_cols(); ++b) {
        const std::uint32_t p = a * arg.view.logical_cols() + b;
        std::int32_t& cell = host.at(arg.view, a, b);
        const std::uint32_t old = arg.tag == ArgTag::inout ? static_cast<std::uint32_t>(cell) : 0u;
        cell = static_cast<std::int32_t>(new_value(old, op.salt, sum, p, static_cast<int>(i)));
      }
    }
  }
}

}  // namespace

void register_program_kernels(KernelRegistry& registry) {
  registry.add("prop_aic_compute", CoreType::aic, &compute_kernel);
  registry.add("prop_aiv_compute", CoreType::aiv, &compute_kernel);
  registry.add("prop_aic_noop", CoreType::aic, &noop_kernel);
  registry.add("prop_aiv_noop", CoreType::aiv, &noop_kernel);
}

ProgramResult run_random_program(Runtime& runtime, std::uint64_t seed, const ProgramShape& shape) {
  std::vector<Buffer> buffers;
  Generator generator(seed, shape);
  const std::vector<Op> ops = generator.generate(&buffers);
  std::mt19937_64 data_rng(seed ^ 0x5eed);
  ProgramResult result;
  result.loops = generator.loops_;
  result.clean_loops = generator.clean_loops_;
  result.mismatch = self_overlapping_task(ops);
  if (!result.mismatch.empty()) return result;

  // Reference, sequentially; it also records what every get must return.
  Host host;
  host.shapes = buffers;
  host.data.resize(buffers.size());
  for (int b = 0; b < shape.buffers; ++b) {
    auto& d = host.data[static_cast<std::size_t>(b)];
    d.resize(std::size_t{buffers[static_cast<std::size_t>(b)].rows} *
             buffers[static_cast<std::size_t>(b)].cols);
    for (auto& x : d)
      x = static_cast<std::int32_t>(data_rng() % 1000);
  }
  const std::vector<std::vector<std::int32_t>> initial(host.data.begin(),
                                                       host.data.begin() + shape.buffers);
  std::vector<std::int32_t> expected_gets;
  for (const Op& op : ops) {
    switch (op.kind) {
      case OpKind::task:
        for (const ArgOp& arg : op.args) {
          if (arg.tag == ArgTag::out) {
            host.data[static_cast<std::size_t>(arg.view.buffer)].assign(
                std::size_t{arg.fresh_rows} * arg.fresh_cols, 0);
            result.fresh_bytes += heap_bytes(arg);
          }
        }
        reference_task(host, op);
        result.accesses.emplace_back();
        result.has_no_dep.push_back(false);
        for (const ArgOp& arg : op.args) {
          if (arg.tag == ArgTag::no_dep) result.has_no_dep.back() = true;
          if (arg.tag == ArgTag::no_dep) continue;
          result.accesses.back().push_back({arg.view.buffer, arg.view.r0, arg.view.rows,
                                            arg.view.c0, arg.view.cols, is_write(arg.tag)});
        }
        break;
      case OpKind::alloc: {
        const ArgOp& arg = op.args[0];
        host.data[static_cast<std::size_t>(arg.view.buffer)].assign(
            std::size_t{arg.fresh_rows} * arg.fresh_cols, op.fill);
        result.fresh_bytes += heap_bytes(arg);
        result.accesses.push_back({{arg.view.buffer, 0, arg.fresh_rows, 0, arg.fresh_cols, true}});
        result.has_no_dep.push_back(false);
        break;
      }
      case OpKind::get:
        expected_gets.push_back(host.at(op.element, 0, 0));
        break;
      case OpKind::set:
        host.at(op.element, 0, 0) = op.value;
        break;
      default:
        break;
    }
  }
  result.reference.assign(host.data.begin(), host.data.begin() + shape.buffers);

  // The same program on the runtime.
  result.buffers = initial;
  RunArgs run_args;
  for (int b = 0; b < shape.buffers; ++b) {
    run_args.inout(
        result.buffers[static_cast<std::size_t>(b)].data(),
        {buffers[static_cast<std::size_t>(b)].rows, buffers[static_cast<std::size_t>(b)].cols},
        DType::i32);
  }
  const KernelRegistry& k = runtime.kernels();
  const KernelId aic_compute = k.id("prop_aic_compute");
  const KernelId aiv_compute = k.id("prop_aiv_compute");
  const KernelId aic_noop = k.id("prop_aic_noop");
  const KernelId aiv_noop = k.id("prop_aiv_noop");
  std::ostringstream mismatch;
  RunResult run = runtime.run(
      [&](Orchestrator& o, const OrchestrationArgs& a) {
        std::map<int, Tensor> tensors;
        for (int b = 0; b < shape.buffers; ++b)
          tensors[b] = a.tensor(b);
        auto make = [&](const View& v) {
          Tensor t = tensors.at(v.buffer).view({v.rows, v.cols}, {v.r0, v.c0});
          return v.transposed ? t.transpose(0, 1) : t;
        };
        std::size_t get_index = 0;
        // Runs ops from `cursor` up to the end of the enclosing iteration (or of the program);
        // a loop_begin runs the loop through parallel_for, one iteration per body call.
        std::function<void(std::size_t&)> run_ops = [&](std::size_t& cursor) {
          for (; cursor < ops.size(); ++cursor) {
            const Op& op = ops[cursor];
            switch (op.kind) {
              case OpKind::iteration_end:
              case OpKind::loop_end:
                return;
              case OpKind::iteration_begin:
                break;
              case OpKind::loop_begin: {
                ++cursor;
                LoopOptions options;
                options.scope_per_iteration = op.loop_scoped;
                o.parallel_for(
                    op.loop_iterations,
                    [&](Orchestrator&, std::int64_t) {
                      // Each iteration: iteration_begin ... iteration_end.
                      ++cursor;
                      run_ops(cursor);
                      ++cursor;
                    },
                    options);
                if (o.fatal()) {
                  cursor = ops.size();
                  return;
                }
                break;  // at loop_end
              }
              case OpKind::scope_begin:
                o.scope_begin();
                break;
              case OpKind::scope_end:
                o.scope_end();
                break;
              case OpKind::alloc: {
                const ArgOp& arg = op.args[0];
                const TaskOutputs out =
                    o.alloc(TensorSpec({arg.fresh_rows, arg.fresh_cols}, DType::i32).fill(op.fill));
                if (out.size() == 1) tensors[arg.view.buffer] = out[0];
                break;
              }
              case OpKind::get: {
                const auto value = o.get_tensor_data<std::int32_t>(make(op.element), {0, 0});
                if (value != expected_gets[get_index]) {
                  mismatch << "get #" << get_index << " returned " << value << ", expected "
                           << expected_gets[get_index] << "; ";
                }
                ++get_index;
                break;
              }
              case OpKind::set:
                o.set_tensor_data<std::int32_t>(make(op.element), {0, 0}, op.value);
                break;
              case OpKind::task: {
                Args args;
                for (const ArgOp& arg : op.args) {
                  switch (arg.tag) {
                    case ArgTag::in:
                      args.in(make(arg.view));
                      break;
                    case ArgTag::inout:
                      args.inout(make(arg.view));
                      break;
                    case ArgTag::out_existing:
                      args.out_existing(make(arg.view));
                      break;
                    case ArgTag::no_dep:
                      args.no_dep(make(arg.view));
                      break;
                    case ArgTag::out:
                      args.out(TensorSpec({arg.fresh_rows, arg.fresh_cols}, DType::i32));
                      break;
                  }
                }
                args.scalar(op.salt)
                    .scalar(mask_of(op, is_read))
                    .scalar(mask_of(op, is_write))
                    .scalar(mask_of(op, is_modify));
                args.blocks(op.blocks).sync_start(op.sync_start);
                MixKernels kernels;
                switch (op.task_kind) {
                  case TaskKind::aic:
                    kernels.aic = aic_compute;
                    break;
                  case TaskKind::aiv:
                    kernels.aiv0 = aiv_compute;
                    break;
                  case TaskKind::mix_aic_aiv:
                    kernels.aic = op.compute_slot == 0 ? aic_compute : aic_noop;
                    kernels.aiv0 = op.compute_slot == 1 ? aiv_compute : aiv_noop;
                    break;
                  case TaskKind::mix_all:
                    kernels.aic = op.compute_slot == 0 ? aic_compute : aic_noop;
                    kernels.aiv0 = op.compute_slot == 1 ? aiv_compute : aiv_noop;
                    kernels.aiv1 = op.compute_slot == 2 ? aiv_compute : aiv_noop;
                    break;
                  case TaskKind::mix_aivs:
                    kernels.aiv0 = op.compute_slot == 1 ? aiv_compute : aiv_noop;
                    kernels.aiv1 = op.compute_slot == 2 ? aiv_compute : aiv_noop;
                    break;
                }
                const TaskOutputs out = o.submit(kernels, args);
                int produced = 0;
                for (const ArgOp& arg : op.args) {
                  if (arg.tag == ArgTag::out && produced < out.size())
                    tensors[arg.view.buffer] = out[produced++];
                }
                break;
              }
            }
          }
        };
        std::size_t cursor = 0;
        run_ops(cursor);
      },
      run_args);
  result.stats = run.stats;
  result.status = run.status;
  result.trace = run.trace;
  result.mismatch = mismatch.str();
  result.tasks = run.stats.tasks_submitted;
  return result;
}

std::string check_trace_order(const ProgramResult& result) {
  if (!result.trace) return "no trace recorded (set RuntimeConfig::record_events)";
  const Trace& trace = *result.trace;
  const std::size_t n = trace.tasks.size();
  if (n != result.accesses.size()) {
    return "trace has " + std::to_string(n) + " tasks, program submitted " +
           std::to_string(result.accesses.size());
  }
  // Earliest start and latest end of every task, over its subtasks (inline tasks: submit time).
  std::vector<std::uint64_t> first_start(n, ~std::uint64_t{0});
  std::vector<std::uint64_t> last_end(n, 0);
  std::vector<int> subtasks(n, 0);
  for (const SubtaskEvent& s : trace.subtasks) {
    first_start[s.task_sequence] = std::min(first_start[s.task_sequence], s.start_ns);
    last_end[s.task_sequence] = std::max(last_end[s.task_sequence], s.end_ns);
    ++subtasks[s.task_sequence];
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (trace.tasks[i].inline_task) {
      first_start[i] = last_end[i] = trace.tasks[i].submit_ns;
    } else if (subtasks[i] == 0) {
      return "task " + std::to_string(i) + " never ran";
    }
  }
  auto conflict = [](const Access& x, const Access& y) {
    return x.buffer == y.buffer && (x.write || y.write) && x.r0 < y.r0 + y.rows &&
           y.r0 < x.r0 + x.rows && x.c0 < y.c0 + y.cols && y.c0 < x.c0 + x.cols;
  };
  for (std::size_t j = 0; j < n; ++j) {
    for (std::size_t i = 0; i < j; ++i) {
      bool conflicting = false;
      for (const Access& x : result.accesses[i]) {
        for (const Access& y : result.accesses[j])
          conflicting |= conflict(x, y);
      }
      if (conflicting && first_start[j] < last_end[i]) {
        std::ostringstream out;
        out << "task " << j << " started at " << first_start[j] << " ns before conflicting task "
            << i << " ended at " << last_end[i] << " ns";
        return out.str();
      }
    }
  }
  return "";
}

std::string check_edges_exact(const ProgramResult& result) {
  if (!result.trace) return "no trace recorded (set RuntimeConfig::record_events)";
  auto conflict = [](const Access& x, const Access& y) {
    return x.buffer == y.buffer && (x.write || y.write) && x.r0 < y.r0 + y.rows &&
           y.r0 < x.r0 + x.rows && x.c0 < y.c0 + y.cols && y.c0 < x.c0 + x.cols;
  };
  for (const TaskEvent& e : result.trace->tasks) {
    if (result.has_no_dep[e.sequence]) continue;  // no_dep keeps an edge to its creator
    for (const std::uint64_t p : e.producers) {
      bool real = false;
      for (const Access& x : result.accesses[p]) {
        for (const Access& y : result.accesses[e.sequence])
          real |= conflict(x, y);
      }
      if (!real) {
        return "task " + std::to_string(e.sequence) + " waits for task " + std::to_string(p) +
               " without a conflict";
      }
    }
  }
  return "";
}

std::string check_values(const ProgramResult& result) {
  if (!result.status.ok()) return result.status.to_string();
  if (!result.mismatch.empty()) return result.mismatch;
  if (result.buffers != result.reference) return "final buffers differ from the reference";
  return "";
}

std::string run_and_check_programs(Runtime& runtime, const ProgramShape& shape, int count,
                                   std::uint64_t seed0, int* overflows) {
  for (int p = 0; p < count; ++p) {
    const std::uint64_t seed = seed0 + static_cast<std::uint64_t>(p);
    const ProgramResult result = run_random_program(runtime, seed, shape);
    const std::string where = "seed " + std::to_string(seed) + ": ";
    if (overflows != nullptr && result.status.code == ErrorCode::dep_pool_overflow) {
      ++*overflows;
      continue;
    }
    if (std::string why = check_values(result); !why.empty()) return where + why;
    const std::string order = check_trace_order(result);
    if (!order.empty()) return where + order;
  }
  return "";
}

RuntimeConfig with_tiny_rings(RuntimeConfig config, std::uint32_t window) {
  config.ring.task_window = window;
  config.ring.heap_bytes = 16384;
  config.ring.dep_pool = window * 16;  // room for every live task's producers
  return config;
}

RuntimeConfig with_tiny_dependency_pool(RuntimeConfig config) {
  config = with_tiny_rings(config, 8);
  config.ring.dep_pool = 32;
  return config;
}

ProgramShape hot_rows_shape() {
  ProgramShape shape;
  shape.buffers = 2;
  shape.max_dim = 6;
  shape.operations = 120;
  shape.hot_rows = 0.8;
  return shape;
}

ProgramShape line_phases_shape() {
  ProgramShape shape;
  shape.buffers = 2;
  shape.max_dim = 8;
  shape.operations = 480;
  shape.line_phases = 60;
  return shape;
}

ProgramShape fresh_outputs_shape(std::uint32_t window) {
  ProgramShape shape = tiny_ring_shape(window);
  shape.operations = 1200;
  shape.extra_fresh = 0.5;
  return shape;
}

ProgramShape tiny_ring_shape(std::uint32_t window) {
  ProgramShape shape;
  shape.top_level_tasks = false;
  shape.max_tasks_per_scope = static_cast<int>(window) - 2;
  shape.max_dim = 6;                       // outputs of one full scope fit the 16 KiB heap
  shape.max_scope_depth = kRingCount - 1;  // one open scope per ring
  shape.operations = 60;
  return shape;
}

}  // namespace tmr::testing
