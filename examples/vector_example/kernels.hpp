// Kernels of vector_example: element-wise f32 operations on 2-D tiles (all on AIV cores).
#pragma once

#include "tmr/kernel.hpp"

namespace tmr::examples::vector_example {

// out = a + b.  Tensors: in a, in b, out.
void add_kernel(const KernelArgs& args);
// out = x + scalar.  Tensors: in x, out; scalar 0: float.
void add_scalar_kernel(const KernelArgs& args);
// out = x * y.  Tensors: in x, in y, out (or out_existing).
void mul_kernel(const KernelArgs& args);

void register_kernels(KernelRegistry& kernels);

}  // namespace tmr::examples::vector_example
