// Kernels of bgemm: SPMD tile products on AIC cores and their accumulation on AIV cores.
#pragma once

#include "tmr/kernel.hpp"

namespace tmr::examples::bgemm {

// AIC, SPMD: block i computes output tile i (row-major over the tile grid) of A_panel x B_panel.
// Tensors: in a_panel [M, T] f32, in b_panel [T, N] f32, out products [tiles, T, T] f32.
void tile_product_kernel(const KernelArgs& args);
// AIV, SPMD: block i adds product tile i into its tile of C (or stores it, for the first k-step).
// Tensors: in products [tiles, T, T] f32, inout / out_existing c [M, N] f32. Scalar: is_first.
void tile_accumulate_kernel(const KernelArgs& args);

void register_kernels(KernelRegistry& kernels);

}  // namespace tmr::examples::bgemm
