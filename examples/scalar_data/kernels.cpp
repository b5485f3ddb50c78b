#include "scalar_data/kernels.hpp"

#include <string>

#include "tmr/error.hpp"

namespace tmr::examples::scalar_data {

namespace {

// The elements of a contiguous 1-D tensor of type T.
template <class T>
std::span<T> elements(const Tensor& t, const char* what) {
  if (t.ndims() != 1 || (t.dim(0) > 1 && t.stride(0) != 1)) {
    throw Error(ErrorCode::invalid_args, std::string("scalar_data: ") + what +
                                             " must be a contiguous 1-D tensor, got " +
                                             t.to_string());
  }
  return {t.data_as<T>(), t.dim(0)};
}

std::span<float> summary_of(const Tensor& t) {
  const std::span<float> summary = elements<float>(t, "summary");
  if (summary.size() != 4) {
    throw Error(ErrorCode::invalid_args, "scalar_data: summary must hold 4 values");
  }
  return summary;
}

}  // namespace

void select_above_kernel(const KernelArgs& args) {
  const std::span<const float> values = elements<float>(args.tensor(0), "values");
  const std::span<std::int32_t> count = elements<std::int32_t>(args.tensor(1), "count");
  const std::span<float> selected = elements<float>(args.tensor(2), "selected");
  if (count.size() != 1 || selected.size() != values.size()) {
    throw Error(ErrorCode::invalid_args, "scalar_data: count must be [1] and selected [N]");
  }
  const float threshold = args.scalar<float>(0);
  std::size_t found = 0;
  for (const float value : values) {
    if (value > threshold) selected[found++] = value;
  }
  std::fill(selected.begin() + static_cast<std::ptrdiff_t>(found), selected.end(), 0.0f);
  count[0] = static_cast<std::int32_t>(found);
}

void square_kernel(const KernelArgs& args) {
  const float x = elements<float>(args.tensor(0), "x")[0];
  elements<float>(args.tensor(1), "y")[0] = x * x;
}

void reduce_kernel(const KernelArgs& args) {
  float sum = 0.0f;
  for (const float value : elements<float>(args.tensor(0), "values"))
    sum += value;
  summary_of(args.tensor(1))[1] += sum;
}

void finalize_kernel(const KernelArgs& args) {
  const std::span<float> summary = summary_of(args.tensor(0));
  summary[2] = summary[0] * summary[1];
  summary[3] += 1.0f;
}

void register_kernels(KernelRegistry& kernels) {
  kernels.add("sd_select_above", CoreType::aiv, select_above_kernel);
  kernels.add("sd_square", CoreType::aiv, square_kernel);
  kernels.add("sd_reduce", CoreType::aiv, reduce_kernel);
  kernels.add("sd_finalize", CoreType::aiv, finalize_kernel);
}

}  // namespace tmr::examples::scalar_data
