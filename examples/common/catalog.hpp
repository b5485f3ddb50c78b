// The process-wide list of examples. Each example folder adds itself at static-initialisation time
// with TMR_REGISTER_EXAMPLE, so adding a folder is the only step to add an example.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/example.hpp"

namespace tmr::examples {

// Every registered example, sorted by name.
const std::vector<Example>& all_examples();
// Null when no example has this name.
const Example* find_example(const std::string& name);

// Used by TMR_REGISTER_EXAMPLE; returns true so it can initialise a static.
bool register_example(std::function<Example()> make);

}  // namespace tmr::examples

#define TMR_EXAMPLE_CONCAT2(a, b) a##b
#define TMR_EXAMPLE_CONCAT(a, b) TMR_EXAMPLE_CONCAT2(a, b)
// `make` is a function returning tmr::examples::Example.
#define TMR_REGISTER_EXAMPLE(make)                                                    \
  namespace {                                                                         \
  [[maybe_unused]] const bool TMR_EXAMPLE_CONCAT(tmr_example_registered_, __LINE__) = \
      ::tmr::examples::register_example(make);                                        \
  }
