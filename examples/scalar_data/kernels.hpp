// Kernels of scalar_data (all AIV).
#pragma once

#include "tmr/kernel.hpp"

namespace tmr::examples::scalar_data {

// Tensors: in values [N] f32, out_existing count [1] i32, out selected [N] f32.
// Scalar: threshold (float). Writes how many values exceed the threshold and those values, in
// order, to the front of `selected` (the rest zero).
void select_above_kernel(const KernelArgs& args);
// Tensors: in x [1] f32, out_existing y [1] f32: y = x * x.
void square_kernel(const KernelArgs& args);
// Tensors: in values [N] f32, inout summary [4] f32: summary[1] += sum(values).
void reduce_kernel(const KernelArgs& args);
// Tensors: inout summary [4] f32: summary[2] = summary[0] * summary[1]; summary[3] += 1.
void finalize_kernel(const KernelArgs& args);

void register_kernels(KernelRegistry& kernels);

}  // namespace tmr::examples::scalar_data
