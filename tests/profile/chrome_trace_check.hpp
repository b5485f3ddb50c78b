// Checks a Chrome trace-event document against the Trace it was written from.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "tmr/trace.hpp"

namespace tmr::testing {

// Empty when: every subtask has exactly one complete ("X") event on the lane of the core that
// ran it, named with its kernel and "#sequence"; complete events on one core lane never overlap;
// every dependency edge has exactly one "s" and one "f" event sharing an id, each inside a
// complete event of the producer and the consumer (on that event's lane). Otherwise the first
// problem found.
std::string check_chrome_trace(const nlohmann::json& document, const Trace& trace);

}  // namespace tmr::testing
