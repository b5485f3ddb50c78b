// Tensor descriptors: construction, views, reshape, transpose, and the flat-index arithmetic the
// dependency analysis relies on. Every misuse throws Error(invalid_args) naming cause and fix.
#include "tmr/tensor.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <span>
#include <string>

#include "tmr/error.hpp"

namespace tmr {

namespace {

[[noreturn]] void invalid(const std::string& message) {
  throw Error(ErrorCode::invalid_args, message);
}

std::string hex_address(const void* pointer) {
  char digits[2 * sizeof(std::uintptr_t)];
  const auto value = reinterpret_cast<std::uintptr_t>(pointer);
  const auto result = std::to_chars(digits, digits + sizeof(digits), value, 16);
  return "0x" + std::string(digits, result.ptr);
}

// Names what stops `shape` from describing a buffer (checked_bytes found that something does).
// Out of line and cold: the message is built only on failure, so checked_bytes stays a short loop.
[[noreturn, gnu::cold, gnu::noinline]] void shape_error(const Shape& shape, const char* what) {
  if (shape.size() == 0) {
    invalid(std::string(what) + ": shape [] has no dimensions; give 1 to " +
            std::to_string(kMaxDims) + " dimensions (use [1] for a single element)");
  }
  for (int d = 0; d < shape.size(); ++d) {
    if (shape[d] == 0) {
      invalid(std::string(what) + ": dimension " + std::to_string(d) + " of shape " +
              shape.to_string() + " is 0; tensors must hold at least one element per dimension");
    }
  }
  invalid(std::string(what) + ": shape " + shape.to_string() +
          " describes more than 2^62 bytes; use a smaller shape");
}

// A shape that can describe a buffer: 1..kMaxDims non-zero dimensions whose byte size fits.
// Returns the byte size. `what` says which call was given the shape, for the message.
std::uint64_t checked_bytes(const Shape& shape, DType dtype, const char* what) {
  std::uint64_t bytes = 0;
  if (!detail::shape_bytes(shape, dtype, bytes)) shape_error(shape, what);
  return bytes;
}

}  // namespace

Tensor Tensor::wrap(void* data, const Shape& shape, DType dtype, std::uint32_t version) {
  if (data == nullptr) {
    invalid("Tensor::wrap was given a null data pointer for shape " + shape.to_string() +
            "; pass the address of the memory the tensor describes");
  }
  // Built in place by the constructor: no 104-byte zero fill and no variable-length copies.
  return Tensor(data, checked_bytes(shape, dtype, "Tensor::wrap"), shape, dtype, version);
}

Tensor Tensor::make_owned(void* data, std::uint64_t bytes, const Shape& shape, DType dtype,
                          TaskId owner) {
  Tensor t = wrap(data, shape, dtype);
  // The allocation may be padded, but never smaller than the layout it holds.
  if (bytes < t.buffer_bytes_) {
    invalid("Tensor::make_owned: buffer of " + std::to_string(bytes) + " bytes is smaller than " +
            std::string(dtype_name(dtype)) + shape.to_string() + " needs (" +
            std::to_string(t.buffer_bytes_) + " bytes); allocate at least that much");
  }
  t.buffer_bytes_ = bytes;
  t.owner_ = owner;
  return t;
}

Shape Tensor::shape() const {
  Shape result;
  for (int d = 0; d < ndims_; ++d)
    result.push_back(dim(d));
  return result;
}

bool Tensor::is_contiguous() const {
  if (!valid()) return false;
  // Walk logical dims from the innermost: each must step by the size of everything inside it.
  // Dimensions of size 1 are never stepped over, so their stride does not matter.
  std::int64_t expected = 1;
  for (int d = ndims_ - 1; d >= 0; --d) {
    if (dim(d) == 1) continue;
    if (stride(d) != expected) return false;
    expected *= dim(d);
  }
  return true;
}

void* Tensor::element_address(const Shape& indices) const {
  void* const address = element_address_or_null(indices);
  if (address != nullptr) [[likely]]
    return address;
  // Which mistake: the first bad index in logical order is named.
  if (!valid() || indices.size() != ndims_) element_address_error(indices, -1);
  int d = 0;
  while (indices[d] < extents_[perm_[d]])
    ++d;
  element_address_error(indices, d);
}

void Tensor::element_address_error(const Shape& indices, int d) const {
  if (!valid()) {
    invalid("element_address on a null tensor; use a tensor from Tensor::wrap or a task output");
  }
  if (indices.size() != ndims_) {
    invalid("element_address: " + std::to_string(indices.size()) + " indices " +
            indices.to_string() + " for a tensor with " + std::to_string(ndims_) +
            " dimensions (shape " + shape().to_string() + "); give one index per dimension");
  }
  invalid("index " + std::to_string(indices[d]) + " is out of bounds for dimension " +
          std::to_string(d) + " of size " + std::to_string(dim(d)) + " (shape " +
          shape().to_string() + "); indices run from 0 to size - 1");
}

void Tensor::view_error(const Shape& shape, const Shape& offsets) const {
  if (shape.size() != ndims_) {
    invalid("view shape " + shape.to_string() + " has " + std::to_string(shape.size()) +
            " dimensions but the tensor has " + std::to_string(ndims_) + " (shape " +
            this->shape().to_string() + "); give one extent per dimension");
  }
  if (offsets.size() != 0 && offsets.size() != ndims_) {
    invalid("view offsets " + offsets.to_string() + " have " + std::to_string(offsets.size()) +
            " entries but the tensor has " + std::to_string(ndims_) + " dimensions (shape " +
            this->shape().to_string() + "); give one offset per dimension, or none for zeros");
  }
  for (int d = 0; d < ndims_; ++d) {
    const std::uint32_t offset = offsets.size() == 0 ? 0 : offsets[d];
    const std::uint32_t extent = shape[d];
    if (extent == 0) {
      invalid("view extent 0 in dimension " + std::to_string(d) + " (view shape " +
              shape.to_string() + "); views must hold at least one element per dimension");
    }
    if (std::uint64_t{offset} + extent > dim(d)) {
      invalid("view offset " + std::to_string(offset) + " + extent " + std::to_string(extent) +
              " exceeds dimension " + std::to_string(d) + " of size " + std::to_string(dim(d)) +
              " (shape " + this->shape().to_string() + "); shrink the view or its offset");
    }
  }
  invalid("view " + shape.to_string() + " at " + offsets.to_string() + " does not fit shape " +
          this->shape().to_string());
}

void Tensor::view_error(const std::uint32_t* shape, int n, const std::uint32_t* offsets,
                        int m) const {
  // Shape's constructor names lists longer than kMaxDims, as when the caller builds the Shapes.
  const Shape extents(std::span<const std::uint32_t>(shape, static_cast<std::size_t>(n)));
  const Shape at(std::span<const std::uint32_t>(offsets, static_cast<std::size_t>(m)));
  view_error(extents, at);
}

Tensor Tensor::reshape(const Shape& shape) const {
  if (!valid()) return {};
  checked_bytes(shape, dtype_, "Tensor::reshape");
  if (shape.elements() != elements()) {
    invalid("cannot reshape " + this->shape().to_string() + " (" + std::to_string(elements()) +
            " elements) to " + shape.to_string() + " (" + std::to_string(shape.elements()) +
            " elements); the element counts must match");
  }
  if (!is_contiguous()) {
    invalid("cannot reshape a non-contiguous view " + to_string() + " to " + shape.to_string() +
            "; reshape the whole tensor before taking the view or transposing, or copy it first");
  }
  Tensor result = *this;
  result.layout_offset_ = first_element();
  for (int r = 0; r < kMaxDims; ++r) {
    const bool used = r < shape.size();
    result.raw_shape_[r] = used ? shape[r] : 0;
    result.offsets_[r] = 0;
    result.extents_[r] = used ? shape[r] : 0;
    result.perm_[r] = static_cast<std::uint8_t>(r);
  }
  result.ndims_ = static_cast<std::uint8_t>(shape.size());
  return result;
}

Tensor Tensor::transpose(int a, int b) const {
  if (!valid()) return {};
  for (const int d : {a, b}) {
    if (d < 0 || d >= ndims_) {
      invalid("transpose(" + std::to_string(a) + ", " + std::to_string(b) + "): dimension " +
              std::to_string(d) + " does not exist in a tensor with " + std::to_string(ndims_) +
              " dimensions (shape " + shape().to_string() + "); use dimensions 0 to " +
              std::to_string(ndims_ - 1));
    }
  }
  Tensor result = *this;
  std::swap(result.perm_[a], result.perm_[b]);
  return result;
}

Tensor Tensor::with_version(std::uint32_t version) const {
  if (!valid()) return {};
  Tensor result = *this;
  result.version_ = version;
  return result;
}

std::string Tensor::to_string() const {
  if (!valid()) return "null tensor";
  std::string text = std::string(dtype_name(dtype_)) + shape().to_string();
  bool boxed = false;
  bool permuted = false;
  for (int r = 0; r < ndims_; ++r) {
    boxed = boxed || offsets_[r] != 0 || extents_[r] != raw_shape_[r];
    permuted = permuted || perm_[r] != r;
  }
  if (boxed) {
    Shape logical_offsets;
    for (int d = 0; d < ndims_; ++d)
      logical_offsets.push_back(offsets_[perm_[d]]);
    std::string offsets = logical_offsets.to_string();
    text += " view@(" + offsets.substr(1, offsets.size() - 2) + ")";
  }
  if (permuted) {
    std::string order;
    for (int d = 0; d < ndims_; ++d)
      order += (d > 0 ? ", " : "") + std::to_string(perm_[d]);
    text += " perm(" + order + ")";
  }
  if (version_ != 0) text += " v" + std::to_string(version_);
  text += " of buffer " + hex_address(base_);
  if (layout_offset_ != 0) text += "+" + std::to_string(layout_offset_) + " elements";
  if (owner_.valid()) {
    text += " (task r" + std::to_string(owner_.ring()) + ":" + std::to_string(owner_.local()) + ")";
  } else {
    text += " (external)";
  }
  return text;
}

std::int64_t Tensor::raw_stride(int r) const {
  std::int64_t stride = 1;
  for (int k = std::max(r + 1, 0); k < ndims_; ++k)
    stride *= raw_shape_[k];
  return stride;
}

std::uint64_t Tensor::end_element() const {
  if (!valid()) return 0;
  std::uint64_t last = layout_offset_;
  std::uint64_t stride = 1;
  for (int r = ndims_ - 1; r >= 0; --r) {
    last += (std::uint64_t{offsets_[r]} + extents_[r] - 1) * stride;
    stride *= raw_shape_[r];
  }
  return last + 1;
}

bool Tensor::same_layout(const Tensor& other) const {
  if (!valid() || !other.valid()) return false;
  if (base_ != other.base_ || layout_offset_ != other.layout_offset_ || ndims_ != other.ndims_ ||
      dtype_ != other.dtype_) {
    return false;
  }
  return std::equal(raw_shape_, raw_shape_ + ndims_, other.raw_shape_);
}

void Tensor::check_type(DType requested) const {
  if (!valid()) {
    invalid("cannot access the elements of a null tensor as " + std::string(dtype_name(requested)) +
            "; use a tensor from Tensor::wrap, a task output or alloc");
  }
  if (requested != dtype_) {
    invalid("tensor holds " + std::string(dtype_name(dtype_)) + " but the kernel asked for " +
            std::string(dtype_name(requested)) + "; read it as data_as<" +
            std::string(dtype_cpp_name(dtype_)) + ">() or pass a " +
            std::string(dtype_name(requested)) + " tensor");
  }
}

void TensorSpec::fill_size_mismatch(std::size_t given) const {
  invalid("TensorSpec::fill: a " + std::to_string(given) + "-byte value cannot fill a " +
          std::string(dtype_name(dtype)) + " tensor (" + std::to_string(dtype_size(dtype)) +
          " bytes per element); pass a " + std::string(dtype_cpp_name(dtype)) + " value");
}

}  // namespace tmr
