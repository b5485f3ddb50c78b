// Colours of the profile outputs: one per kernel, distinct for the first dozen.
#pragma once

#include <string>

#include "tmr/kernel.hpp"

namespace tmr::profile {

// "#rrggbb" for a kernel id; a fixed qualitative palette first, then golden-angle hues.
std::string kernel_colour(KernelId id);

}  // namespace tmr::profile
