// Tensor descriptors: a typed, strided view of a region of one buffer.
//
// A tensor names a buffer (external memory, or memory the runtime allocated for a task output),
// the row-major "raw" layout of that buffer, and a box inside that layout (offsets and extents per
// raw dimension). Logical dimensions map onto raw dimensions through a permutation, so transpose is
// a true strided view. The box in raw coordinates is what dependency analysis compares.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <new>
#include <optional>
#include <string>

#include "tmr/dtype.hpp"
#include "tmr/shape.hpp"
#include "tmr/task_id.hpp"

namespace tmr {

namespace detail {
// dtype_size for every byte a DType can hold, built from dtype_size itself (so it follows any
// new type): one load instead of the switch's compare chain, once per submitted argument.
inline constexpr auto kElementSizes = [] {
  std::array<std::uint8_t, 256> sizes{};
  for (std::size_t i = 0; i < sizes.size(); ++i)
    sizes[i] = static_cast<std::uint8_t>(dtype_size(static_cast<DType>(i)));
  return sizes;
}();

// The largest buffer a tensor may describe (Tensor::kMaxBufferBytes).
inline constexpr std::uint64_t kMaxBufferBytes = std::uint64_t{1} << 62;

// The byte size of a buffer laid out row-major with `shape` and `dtype`, into `bytes`; false when
// no tensor may describe it (not 1..kMaxDims dimensions, a zero dimension, more than 2^62 bytes).
// Inline (Args::out checks every fresh output's shape with it). Per dimension only the zero test
// and one multiply whose overflow flag ends it (no 128-bit product kept): the size limit is
// tested once at the end, which is the same test as after each step because with no zero
// dimension and no overflow the running product never shrinks.
inline bool shape_bytes(const Shape& shape, DType dtype, std::uint64_t& bytes) {
  const int n = shape.size();
  // One unsigned compare for 1..kMaxDims; it also bounds the loop for the compiler.
  if (static_cast<unsigned>(n - 1) >= static_cast<unsigned>(kMaxDims)) return false;
  std::uint64_t product = kElementSizes[static_cast<std::uint8_t>(dtype)];  // dtype_size
  for (int d = 0; d < n; ++d) {
    const std::uint64_t extent = shape[d];
    if (extent == 0 || __builtin_mul_overflow(product, extent, &product)) return false;
  }
  bytes = product;
  return product <= kMaxBufferBytes;
}

// Calls use(shape, n, offsets, m) with a view's two lists copied into this frame first (when they
// fit), for the error paths of inline view code: a braced list's own storage then never has its
// address taken, so the inline caller need not store it (Tensor::view_error_copied,
// Args::add_view_refused_copied). Past kMaxDims only the counts matter (Shape's message).
template <class Use>
[[gnu::always_inline]] inline decltype(auto) with_view_lists_copied(const std::uint32_t* shape,
                                                                    int n,
                                                                    const std::uint32_t* offsets,
                                                                    int m, Use&& use) {
  if (n > kMaxDims || m > kMaxDims) return use(shape, n, offsets, m);
  std::uint32_t extents[kMaxDims];
  std::uint32_t at[kMaxDims];
  for (int d = 0; d < n; ++d)
    extents[d] = shape[d];
  for (int d = 0; d < m; ++d)
    at[d] = offsets[d];
  return use(static_cast<const std::uint32_t*>(extents), n, static_cast<const std::uint32_t*>(at),
             m);
}
}  // namespace detail

class Tensor {
 public:
  // A null tensor. Operations on it return null tensors; passing it to a submit is an error.
  // The raw shape and the extents are zeroed here, not by member initialisers, so that the wrap
  // constructor (every `out` placeholder) writes them once instead of zeroing them first.
  constexpr Tensor() : raw_shape_{}, extents_{} {}

  // Wraps existing memory laid out row-major with the given shape. The caller keeps it alive.
  static Tensor wrap(void* data, const Shape& shape, DType dtype, std::uint32_t version = 0);
  static Tensor wrap(const void* data, const Shape& shape, DType dtype, std::uint32_t version = 0) {
    return wrap(const_cast<void*>(data), shape, dtype, version);
  }

  bool valid() const { return base_ != nullptr; }
  explicit operator bool() const { return valid(); }

  DType dtype() const { return dtype_; }
  std::size_t element_size() const {
    return detail::kElementSizes[static_cast<std::uint8_t>(dtype_)];
  }
  int ndims() const { return ndims_; }
  std::uint32_t dim(int d) const { return extents_[perm_[d]]; }
  Shape shape() const;
  // Distance in elements between neighbours along logical dimension d.
  std::int64_t stride(int d) const { return raw_stride(perm_[d]); }
  // Inline: the engine sizes every fresh output with it.
  std::uint64_t elements() const {
    std::uint64_t product = valid() ? 1 : 0;
    for (int r = 0; r < ndims_; ++r)
      product *= extents_[r];
    return product;
  }
  // True when the view's elements are adjacent in memory in logical row-major order.
  bool is_contiguous() const;

  // Address of logical element (0, ..., 0).
  void* data() const { return static_cast<std::byte*>(base_) + first_element() * element_size(); }
  template <class T>
  T* data_as() const {
    check_type(dtype_of<T>());
    return static_cast<T*>(data());
  }
  // Address of the element at logical indices (bounds-checked; throws Error on misuse).
  void* element_address(const Shape& indices) const;
  // Internal: element_address's address, or null where it would throw (a null tensor, a wrong
  // index count, an index out of bounds). Inline: the orchestrator's quiet element read (a block
  // table read per iteration) takes it without a call; element_address names the mistake.
  void* element_address_or_null(const Shape& indices) const {
    const int n = ndims_;
    if (!valid() || indices.size() != n) return nullptr;
    // One pass from the outermost raw dimension, a multiply-add each (Horner's rule: no stride
    // table). Logical dimension d is raw dimension d unless the view was transposed (its
    // permutation, all kMaxDims entries, then differs from the identity: one compare of bytes).
    std::uint64_t flat = 0;
    // (Four bytes and one, not memcmp: GCC may call the library for five.)
    std::uint32_t first_four = 0;
    std::memcpy(&first_four, perm_, sizeof(first_four));
    if (first_four == kIdentityFirstFour && perm_[4] == 4) [[likely]] {
      for (int r = 0; r < n; ++r) {
        if (indices[r] >= extents_[r]) return nullptr;
        flat = flat * raw_shape_[r] + offsets_[r] + indices[r];
      }
    } else {
      // Each index put at its raw dimension first.
      std::uint32_t raw_index[kMaxDims] = {};
      for (int d = 0; d < n; ++d) {
        const int r = perm_[d];
        if (indices[d] >= extents_[r]) return nullptr;
        raw_index[r] = indices[d];
      }
      for (int r = 0; r < n; ++r)
        flat = flat * raw_shape_[r] + offsets_[r] + raw_index[r];
    }
    return static_cast<std::byte*>(base_) + (layout_offset_ + flat) * element_size();
  }

  // A sub-box of this view: `offsets` are relative to this view's logical dimensions (none: all
  // zero). Throws Error(invalid_args) when the box does not fit.
  // Inline: user code builds one view per submitted tensor; every mistake goes to view_error.
  // Every path returns `result` (a null tensor's copy is a null tensor), so the compiler builds
  // it in the caller's storage: one 104-byte copy per view, not two.
  Tensor view(const Shape& shape, const Shape& offsets) const {
    Tensor result = *this;
    // A null tensor (no dimensions) fails narrow() unless the shapes are empty, when its copy is
    // the answer too: the null test waits for a failure.
    if (!narrow(result, shape.begin(), shape.size(), offsets.begin(), offsets.size()) && valid()) {
      view_error_copied(shape.begin(), shape.size(), offsets.begin(), offsets.size());
    }
    return result;
  }
  // The same for braced lists, `t.view({1, n}, {row, 0})`: no Shape is built unless the view is
  // wrong (then the same errors as with Shapes, more than kMaxDims entries included).
  Tensor view(std::initializer_list<std::uint32_t> shape,
              std::initializer_list<std::uint32_t> offsets) const {
    const auto n = static_cast<int>(shape.size());
    const auto m = static_cast<int>(offsets.size());
    Tensor result = *this;
    // A null tensor (no dimensions) fails narrow() unless the lists are empty, when its copy is
    // the answer too: the null test waits for a failure.
    if (!narrow(result, shape.begin(), n, offsets.begin(), m)) {
      if (valid() || n > kMaxDims || m > kMaxDims) {
        view_error_copied(shape.begin(), n, offsets.begin(), m);
      }
    }
    return result;
  }
  // Same elements with another shape; only for contiguous views. Throws otherwise.
  Tensor reshape(const Shape& shape) const;
  // Swaps logical dimensions a and b (a strided view of the same memory).
  Tensor transpose(int a, int b) const;
  // Same view with another version. A user bumps the version to order against every earlier
  // access of the buffer regardless of region (see "Dependencies" in docs/design.md).
  Tensor with_version(std::uint32_t version) const;

  std::uint32_t version() const { return version_; }
  // The task that created the buffer (invalid for external memory).
  TaskId producer() const { return owner_; }
  std::string to_string() const;

  // ---- layout, for the runtime's dependency analysis and for kernels that index raw memory ----
  void* buffer() const { return base_; }
  std::uint64_t buffer_bytes() const { return buffer_bytes_; }
  std::uint64_t layout_offset() const { return layout_offset_; }
  std::uint32_t raw_dim(int r) const { return raw_shape_[r]; }
  std::uint32_t box_offset(int r) const { return offsets_[r]; }
  std::uint32_t box_extent(int r) const { return extents_[r]; }
  int perm(int d) const { return perm_[d]; }
  std::int64_t raw_stride(int r) const;
  // Flat element index (from the buffer start) of logical element (0, ..., 0). Inline and one
  // pass from the innermost dimension: every kernel's data() computes it.
  std::uint64_t first_element() const {
    std::uint64_t flat = layout_offset_;
    std::uint64_t stride = 1;
    for (int r = ndims_ - 1; r >= 0; --r) {
      flat += std::uint64_t{offsets_[r]} * stride;
      stride *= raw_shape_[r];
    }
    return flat;
  }
  // Flat element index one past the last element of the box.
  std::uint64_t end_element() const;
  // True when both tensors use the same raw layout of the same bytes (box test is exact).
  bool same_layout(const Tensor& other) const;

  // Internal: where each field lies in a Tensor's bytes, for the analysed submit's replay check,
  // which compares an argument's bytes with a predicted image under a mask (Tensor is trivially
  // copyable and standard-layout; src/core/loops/loop_driver.hpp).
  struct FieldOffsets {
    std::size_t base, buffer_bytes, owner, layout_offset, raw_shape, offsets, extents, version,
        dtype, ndims, perm;
  };
  static constexpr FieldOffsets field_offsets() {
    return {offsetof(Tensor, base_),      offsetof(Tensor, buffer_bytes_),
            offsetof(Tensor, owner_),     offsetof(Tensor, layout_offset_),
            offsetof(Tensor, raw_shape_), offsetof(Tensor, offsets_),
            offsetof(Tensor, extents_),   offsetof(Tensor, version_),
            offsetof(Tensor, dtype_),     offsetof(Tensor, ndims_),
            offsetof(Tensor, perm_)};
  }

  // Internal: writes view(shape, offsets) of this valid tensor, given as `n` extents and `m`
  // offsets (m == 0: all zero), to `out` (storage for a Tensor): one copy, then the box. False
  // when that view is an error (view_error names it; `out` then holds no valid view). Args
  // builds a view in its own slot with it.
  bool view_into(void* out, const std::uint32_t* shape, int n, const std::uint32_t* offsets,
                 int m) const {
    return narrow(*::new (out) Tensor(*this), shape, n, offsets, m);
  }
  // Internal: throws the Error that names what is wrong with view(shape, offsets) given as lists
  // (view_into's arguments).
  [[noreturn, gnu::cold]] void view_error(const std::uint32_t* shape, int n,
                                          const std::uint32_t* offsets, int m) const;
  // Internal: view_error for lists that inline code reads as values (braced lists), called from
  // it when the view is wrong: the entries are copied into this frame there, so the lists' own
  // storage never has its address taken and the caller need not store it (the happy path reads
  // the entries as constants or registers: 3 stores a view fewer for `t.view({1, n}, {row, 0})`).
  [[noreturn, gnu::always_inline]] void view_error_copied(const std::uint32_t* shape, int n,
                                                          const std::uint32_t* offsets,
                                                          int m) const {
    detail::with_view_lists_copied(shape, n, offsets, m,
                                   [this](const std::uint32_t* s, int sn, const std::uint32_t* o,
                                          int om) { view_error(s, sn, o, om); });
    __builtin_unreachable();  // view_error throws
  }

  // Internal: builds in `out` (storage for a Tensor) what wrap(data, shape, dtype) returns, when
  // wrap would accept the shape (1..kMaxDims non-zero dimensions of at most 2^62 bytes in all);
  // false otherwise, having written nothing (wrap then names the mistake). Inline: Args::out
  // builds every fresh output's placeholder with it. `data` must not be null.
  static bool wrap_into(void* out, void* data, const Shape& shape, DType dtype) {
    std::uint64_t bytes = 0;
    if (!detail::shape_bytes(shape, dtype, bytes)) return false;
    ::new (out) Tensor(data, bytes, shape, dtype, 0);
    return true;
  }
  // The largest buffer a tensor may describe (wrap's limit).
  static constexpr std::uint64_t kMaxBufferBytes = detail::kMaxBufferBytes;

  // Internal: a runtime-allocated buffer owned by `owner`.
  static Tensor make_owned(void* data, std::uint64_t bytes, const Shape& shape, DType dtype,
                           TaskId owner);
  // Internal: this layout at `data`, a buffer of at least buffer_bytes() that task `owner`
  // created. The engine places an `out` placeholder (Args::out) with it: the placeholder's shape
  // was checked when it was built, so placing it is two stores, not make_owned's second check.
  Tensor placed(void* data, TaskId owner) const {
    Tensor result = *this;
    result.base_ = data;
    result.owner_ = owner;
    return result;
  }

 private:
  // wrap's descriptor, every member written once (no zero fill overwritten afterwards): the box
  // is the whole raw shape. All kMaxDims entries are copied from `shape` (a Shape keeps entries
  // past its size zero), so every byte is defined; readers only use the first ndims() entries.
  // The shape's entries are read once (a 16- and a 4-byte load, not five element loads packed into
  // a register) into registers: the shape may alias this tensor's bytes for all the compiler
  // knows, so copying from it twice would load it twice.
  Tensor(void* data, std::uint64_t bytes, const Shape& shape, DType dtype, std::uint32_t version)
      : base_(data),
        buffer_bytes_(bytes),
        version_(version),
        dtype_(dtype),
        ndims_(static_cast<std::uint8_t>(shape.size())) {
    static_assert(sizeof(raw_shape_) == kMaxDims * sizeof(std::uint32_t));
    // Entries 0-3 as one 16-byte value, entry 4 alone: a local array would live on the stack.
    using FourDims = std::uint32_t __attribute__((vector_size(16)));
    static_assert(kMaxDims == 5 && sizeof(FourDims) == 4 * sizeof(std::uint32_t));
    FourDims first;
    std::uint32_t last;
    std::memcpy(&first, shape.begin(), sizeof(first));
    std::memcpy(&last, shape.begin() + 4, sizeof(last));
    std::memcpy(raw_shape_, &first, sizeof(first));
    std::memcpy(extents_, &first, sizeof(first));
    raw_shape_[4] = last;
    extents_[4] = last;
  }
  void check_type(DType requested) const;
  // Throws element_address's Error: a null tensor, a wrong index count, or (d >= 0) index d out
  // of bounds.
  [[noreturn, gnu::cold, gnu::noinline]] void element_address_error(const Shape& indices,
                                                                    int d) const;
  // Narrows `copy`, a copy of this valid tensor, to view(shape, offsets) given as view_into's
  // arguments; false when that view does not fit. One pass: the checks and the stores of each
  // dimension together (the copy is the caller's result or slot, so a failure leaves nothing).
  bool narrow(Tensor& copy, const std::uint32_t* shape, int n, const std::uint32_t* offsets,
              int m) const {
    if (n != ndims_ || (m != 0 && m != ndims_)) return false;
    for (int d = 0; d < n; ++d) {
      const std::uint32_t offset = m == 0 ? 0 : offsets[d];
      const std::uint32_t extent = shape[d];
      const int r = perm_[d];
      // One compare: extent - 1 wraps to 2^32 - 1 for a zero extent, which no dimension reaches.
      if (std::uint64_t{offset} + static_cast<std::uint32_t>(extent - 1) >= extents_[r]) {
        return false;
      }
      copy.offsets_[r] += offset;  // `+=`: a zero offset known at compile time costs nothing
      copy.extents_[r] = extent;
    }
    return true;
  }
  // Throws the Error that names what is wrong with view(shape, offsets).
  [[noreturn]] void view_error(const Shape& shape, const Shape& offsets) const;

  // perm_'s first four entries when no dimension is permuted, as one integer (in the host's byte
  // order); the fifth is 4.
  static constexpr std::uint32_t kIdentityFirstFour =
      std::bit_cast<std::uint32_t>(std::array<std::uint8_t, 4>{0, 1, 2, 3});
  static_assert(kMaxDims == 5, "the identity test reads four entries and the fifth");

  void* base_ = nullptr;
  std::uint64_t buffer_bytes_ = 0;
  TaskId owner_;
  std::uint64_t layout_offset_ = 0;  // elements from the buffer start to raw element 0
  // raw_shape_ and extents_: zeroed by Tensor(), written whole by the wrap constructor.
  std::uint32_t raw_shape_[kMaxDims];
  std::uint32_t offsets_[kMaxDims] = {};
  std::uint32_t extents_[kMaxDims];
  std::uint32_t version_ = 0;
  DType dtype_ = DType::f32;
  std::uint8_t ndims_ = 0;
  std::uint8_t perm_[kMaxDims] = {0, 1, 2, 3, 4};
};

// Describes a fresh output that the runtime allocates for a task (or for `alloc`).
struct TensorSpec {
  Shape shape;
  DType dtype = DType::f32;
  std::optional<std::uint64_t> initial_bits;  // element bit pattern to fill with, if any

  TensorSpec() = default;
  TensorSpec(Shape s, DType t) : shape(s), dtype(t) {}
  template <class T>
  TensorSpec& fill(T value) {
    static_assert(sizeof(T) <= 8);
    if (dtype_size(dtype) != sizeof(T)) fill_size_mismatch(sizeof(T));
    std::uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof(T));
    initial_bits = bits;
    return *this;
  }
  std::uint64_t bytes() const { return shape.elements() * dtype_size(dtype); }

 private:
  [[noreturn]] void fill_size_mismatch(std::size_t given) const;
};

}  // namespace tmr
