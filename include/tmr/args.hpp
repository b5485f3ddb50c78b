// The arguments of one task: tagged tensors, then scalars, then how it launches.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "tmr/tensor.hpp"

namespace tmr {

class Error;
namespace detail::loops {
class AffineLoop;   // moves a pattern's arguments in place (src/core/loops/affine_loop.hpp)
class PatternLoop;  // the same for a pattern of several tasks (src/core/loops/pattern_loop.hpp)
}  // namespace detail::loops

inline constexpr int kMaxTensorArgs = 16;
inline constexpr int kMaxScalarArgs = 128;

enum class ArgTag : std::uint8_t {
  in,            // read
  out,           // fresh buffer allocated by the runtime, written
  inout,         // existing tensor, read then written
  out_existing,  // existing tensor, written only
  no_dep,        // passed to the kernel, no dependency tracking (keeps its creator alive)
};
std::string_view arg_tag_name(ArgTag tag);

// Misuse (too many tensors or scalars, a tensor after a scalar, a null tensor, an empty `out`
// shape) is recorded and reported by the submit that receives these arguments, as the reference
// runtime does. Only the first mistake is kept; arguments after it are dropped.
class Args {
 public:
  // User-provided on purpose: with `= default`, `Args()` value-initialises, which zeroes the
  // whole object (2.9 KB of tensor and scalar storage) before the members' own initialisers.
  Args() {}  // NOLINT(modernize-use-equals-default)
  Args(const Args& other) { copy_from(other); }
  Args& operator=(const Args& other) {
    if (this != &other) copy_from(other);
    return *this;
  }

  Args& in(const Tensor& t) { return add(ArgTag::in, t); }
  Args& inout(const Tensor& t) { return add(ArgTag::inout, t); }
  Args& out_existing(const Tensor& t) { return add(ArgTag::out_existing, t); }
  Args& no_dep(const Tensor& t) { return add(ArgTag::no_dep, t); }
  // Inline happy path (once per fresh output): the placeholder is built straight in its slot
  // (Tensor::wrap_into); a closed list or a shape wrap rejects goes out of line.
  Args& out(const TensorSpec& spec) {
    if (tensor_count_ >= tensor_limit_) return out_refused();
    const auto i = static_cast<std::size_t>(tensor_count_);
    if (!Tensor::wrap_into(&tensor_storage_[i], out_placeholder_address(), spec.shape,
                           spec.dtype)) {
      return out_rejected(spec);
    }
    return out_added(i, spec);
  }

  // in(t.view(shape, offsets)) and so on, with the view built straight in its slot: one copy of
  // the descriptor instead of two (the view, then the argument). The same arguments and errors
  // (a view that does not fit throws view()'s Error; a null `t` is recorded as by in(t)).
  Args& in(const Tensor& t, const Shape& shape, const Shape& offsets) {
    return add_view(ArgTag::in, t, shape.begin(), shape.size(), offsets.begin(), offsets.size());
  }
  Args& in(const Tensor& t, std::initializer_list<std::uint32_t> shape,
           std::initializer_list<std::uint32_t> offsets) {
    return add_view(ArgTag::in, t, shape, offsets);
  }
  Args& inout(const Tensor& t, const Shape& shape, const Shape& offsets) {
    return add_view(ArgTag::inout, t, shape.begin(), shape.size(), offsets.begin(), offsets.size());
  }
  Args& inout(const Tensor& t, std::initializer_list<std::uint32_t> shape,
              std::initializer_list<std::uint32_t> offsets) {
    return add_view(ArgTag::inout, t, shape, offsets);
  }
  Args& out_existing(const Tensor& t, const Shape& shape, const Shape& offsets) {
    return add_view(ArgTag::out_existing, t, shape.begin(), shape.size(), offsets.begin(),
                    offsets.size());
  }
  Args& out_existing(const Tensor& t, std::initializer_list<std::uint32_t> shape,
                     std::initializer_list<std::uint32_t> offsets) {
    return add_view(ArgTag::out_existing, t, shape, offsets);
  }
  Args& no_dep(const Tensor& t, const Shape& shape, const Shape& offsets) {
    return add_view(ArgTag::no_dep, t, shape.begin(), shape.size(), offsets.begin(),
                    offsets.size());
  }
  Args& no_dep(const Tensor& t, std::initializer_list<std::uint32_t> shape,
               std::initializer_list<std::uint32_t> offsets) {
    return add_view(ArgTag::no_dep, t, shape, offsets);
  }

  template <class T>
  Args& scalar(T value) {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8);
    std::uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof(T));
    return scalar_bits(bits);
  }
  // Inline happy path; a recorded mistake or a 129th scalar goes out of line.
  Args& scalar_bits(std::uint64_t bits) {
    if (error_ != nullptr || scalar_count_ >= kMaxScalarArgs) return scalar_refused();
    scalars_[scalar_count_++] = bits;
    tensor_limit_ = 0;  // tensors come before scalars
    return *this;
  }

  // SPMD: the task runs as `n` blocks (n >= 1). Every block receives the same, whole tensors; a
  // kernel splits the work itself by KernelArgs::block_index() and block_count() (e.g. block b
  // handles rows [b * rows / n, (b + 1) * rows / n)). Blocks may run in any order and at once.
  Args& blocks(std::uint32_t n) {
    block_count_ = n;
    return *this;
  }
  // All blocks must run at the same time (co-scheduled).
  Args& sync_start(bool value = true) {
    sync_start_ = value;
    return *this;
  }

  int tensor_count() const { return tensor_count_; }
  int scalar_count() const { return scalar_count_; }
  ArgTag tag(int i) const { return tags_[i]; }
  // All kMaxTensorArgs tags (those past tensor_count() are unspecified): for one wide compare.
  const ArgTag* tags() const { return tags_.data(); }
  // For ArgTag::out the tensor is a placeholder: valid(), with the spec's shape(), dtype() and
  // buffer_bytes(), an invalid producer(), and a dummy buffer() address (alignof(max_align_t),
  // never dereferenceable) that the engine replaces with the memory it allocates.
  const Tensor& tensor(int i) const {
    return *std::launder(reinterpret_cast<const Tensor*>(&tensor_storage_[i]));
  }
  // The fill pattern of an `out` argument, if its spec has one.
  std::optional<std::uint64_t> initial_bits(int i) const {
    if (((filled_ >> i) & 1u) == 0) return std::nullopt;
    return fill_bits_[static_cast<std::size_t>(i)];
  }
  // Bit i set: `out` argument i has a fill pattern (initial_bits(i)): one test for all outputs.
  std::uint32_t filled_mask() const { return filled_; }
  // Bit i set: tensor i is an `out` argument. Every tensor an Args holds is valid (add() and
  // out() reject null ones), so a submit needs no per-tensor validity pass.
  std::uint32_t out_mask() const { return out_mask_; }
  // Bit i set: tensor i was created by a task (producer().valid()), so a submit must check that
  // task's scope; external tensors (Tensor::wrap) need no creator check. Gathered when asked (a
  // plain submit asks once; a replayed one, whose compare covers each tensor's creator, never
  // does) from one byte per argument, which adding it sets with one compare and store.
  std::uint32_t created_mask() const {
    std::uint64_t half[2];
    std::memcpy(half, created_.data(), sizeof(half));
    // Each byte is 0 or 1 (0 past tensor_count()): the multiply gathers byte k's value into bit
    // 56 + k of the product (no two partial products meet there, so nothing carries into it).
    constexpr std::uint64_t kGather = 0x0102040810204080u;
    return static_cast<std::uint32_t>((half[0] * kGather) >> 56 | ((half[1] * kGather) >> 56) << 8);
  }
  const std::uint64_t* scalars() const { return scalars_.data(); }
  std::uint32_t block_count() const { return block_count_; }
  bool is_sync_start() const { return sync_start_; }
  bool has_error() const { return error_ != nullptr; }
  const std::string& error() const;  // "" when there is no error

 private:
  friend class detail::loops::AffineLoop;
  friend class detail::loops::PatternLoop;
  friend class TaskPattern;  // args(i): its accesses carry their tags
  struct alignas(Tensor) TensorBytes {
    std::byte bytes[sizeof(Tensor)];
  };
  // Inline happy path (once per submitted tensor): one compare says the list has room and is
  // open; add_checked names what is wrong.
  Args& add(ArgTag tag, const Tensor& t) {
    if (tensor_count_ >= tensor_limit_ || !t.valid()) return add_checked(tag, t);
    const auto i = static_cast<std::size_t>(tensor_count_++);
    ::new (&tensor_storage_[i]) Tensor(t);
    tags_[i] = tag;
    created_[i] = t.producer().valid();
    return *this;
  }
  Args& add_checked(ArgTag tag, const Tensor& t);
  // add(tag, t.view(...)) with the view written in its slot (Tensor::view_into). When the list is
  // closed or `t` is null, the view is built first (it may throw) and add() records the mistake.
  Args& add_view(ArgTag tag, const Tensor& t, const std::uint32_t* shape, int n,
                 const std::uint32_t* offsets, int m) {
    if (tensor_count_ >= tensor_limit_)
      return add_view_refused_copied(tag, t, shape, n, offsets, m);
    const auto i = static_cast<std::size_t>(tensor_count_);
    // A null `t` (no dimensions) fails view_into unless the lists are empty, and a valid one
    // fails it when they are (n is a constant in practice): the null test waits for a failure.
    if (n == 0 || !t.view_into(&tensor_storage_[i], shape, n, offsets, m)) {
      if (!t.valid()) return add_view_refused_copied(tag, t, shape, n, offsets, m);
      t.view_error_copied(shape, n, offsets, m);
    }
    tensor_count_ = static_cast<std::uint8_t>(i + 1);
    tags_[i] = tag;
    created_[i] = t.producer().valid();
    return *this;
  }
  Args& add_view(ArgTag tag, const Tensor& t, std::initializer_list<std::uint32_t> shape,
                 std::initializer_list<std::uint32_t> offsets) {
    return add_view(tag, t, shape.begin(), static_cast<int>(shape.size()), offsets.begin(),
                    static_cast<int>(offsets.size()));
  }
  [[gnu::cold, gnu::noinline]] Args& add_view_refused(ArgTag tag, const Tensor& t,
                                                      const std::uint32_t* shape, int n,
                                                      const std::uint32_t* offsets, int m);
  // add_view_refused with the lists copied into this frame first, as Tensor::view_error_copied
  // does: a braced list's own storage is then never addressed, so its caller need not store it.
  [[gnu::always_inline]] Args& add_view_refused_copied(ArgTag tag, const Tensor& t,
                                                       const std::uint32_t* shape, int n,
                                                       const std::uint32_t* offsets, int m) {
    return detail::with_view_lists_copied(
        shape, n, offsets, m,
        [&](const std::uint32_t* s, int sn, const std::uint32_t* o, int om) -> Args& {
          return add_view_refused(tag, t, s, sn, o, om);
        });
  }
  // out() when the list is closed (a recorded mistake, a scalar before it, or a 17th tensor): the
  // message is built here, so out() itself keeps no string on its stack.
  [[gnu::cold, gnu::noinline]] Args& out_refused();
  // The bookkeeping of an `out` placeholder just built in slot i.
  Args& out_added(std::size_t i, const TensorSpec& spec) {
    tensor_count_ = static_cast<std::uint8_t>(i + 1);
    tags_[i] = ArgTag::out;
    out_mask_ |= 1u << i;
    // value_or, not a test and *: GCC's -O2 sanitizer builds call the payload read after the
    // test "maybe uninitialized" once out() is inlined into a caller's loop. GCC 12's -O1 ASan
    // build still flags value_or's own read (a false positive: value_or reads the payload only
    // when engaged), so the warning is off for this line alone.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
    fill_bits_[i] = spec.initial_bits.value_or(0);
#pragma GCC diagnostic pop
    filled_ |= std::uint32_t{spec.initial_bits.has_value()} << i;
    return *this;
  }
  // out() when wrap rejects the spec: records wrap's message under the argument's name.
  [[gnu::cold, gnu::noinline]] Args& out_rejected(const TensorSpec& spec);
  // scalar_bits() after a recorded mistake (ignored) or past kMaxScalarArgs (recorded).
  [[gnu::cold, gnu::noinline]] Args& scalar_refused();
  // Buffer address of an `out` placeholder: non-null so the placeholder is a valid tensor whose
  // shape() and dtype() the engine reads, and in the unmapped first page so any access faults.
  static void* out_placeholder_address() {
    return reinterpret_cast<void*>(alignof(std::max_align_t));
  }
  // Records the first mistake; no tensor can be added after it.
  void set_error(std::string message) {
    error_ = std::make_unique<std::string>(std::move(message));
    tensor_limit_ = 0;
  }
  void copy_from(const Args& other);

  std::array<TensorBytes, kMaxTensorArgs> tensor_storage_;  // left uninitialised on purpose
  std::array<std::uint64_t, kMaxScalarArgs> scalars_;
  // out() fill patterns: bit i of filled_ says fill_bits_[i] holds one (no per-Args zeroing of
  // sixteen optionals: an Args is built per submit).
  std::array<std::uint64_t, kMaxTensorArgs> fill_bits_;  // left uninitialised on purpose
  // What every Args initialises, side by side (a few wide stores per submit).
  std::uint32_t filled_ = 0;
  std::uint32_t out_mask_ = 0;  // see out_mask()
  static_assert(kMaxTensorArgs <= 16 && kMaxScalarArgs <= 255, "masks and counts fit");
  std::uint8_t tensor_count_ = 0;
  // kMaxTensorArgs while tensors may still be added; 0 once a mistake is recorded or a scalar was
  // added (no tensor may follow). add()'s inline path compares the count with it alone.
  std::uint8_t tensor_limit_ = kMaxTensorArgs;
  std::uint8_t scalar_count_ = 0;
  bool sync_start_ = false;
  std::uint32_t block_count_ = 1;
  std::array<ArgTag, kMaxTensorArgs> tags_{};
  // Per argument: created by a task (see created_mask()); zero from construction, so `out`
  // placeholders and unused entries read as external.
  std::array<bool, kMaxTensorArgs> created_{};
  static_assert(sizeof(bool) == 1 && kMaxTensorArgs == 16, "created_mask() reads 16 bytes");
  // The first mistake, if any: a pointer, so an Args without one (every submit's) builds and
  // destroys no string.
  std::unique_ptr<std::string> error_;
};

}  // namespace tmr
