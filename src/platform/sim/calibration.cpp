// The sim's re-fitted submit ratios (declared in tmr/sim.hpp). Each value and how it was measured
// is in docs/sim.md's cost table; a re-fit changes this file and that table together.
#include "tmr/sim.hpp"

namespace tmr::sim_calibration {

const double analysed_submit_ratio = 0.39;
const double wide_submit_ratio = 0.81;
const double pattern_submit_ratio = 0.28;

}  // namespace tmr::sim_calibration
