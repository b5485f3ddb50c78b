// The sim's re-fitted submit ratios and loop set-up constants (declared in tmr/sim.hpp). Each value
// and how it was measured is in docs/sim.md's cost table; a re-fit changes this file and that table
// together.
#include "tmr/sim.hpp"

namespace tmr::sim_calibration {

const double analysed_submit_ratio = 0.60;
const double wide_submit_ratio = 0.79;
const double pattern_submit_ratio = 0.29;
const double loop_setup_ratio = 4.31;
const double loop_setup_fixed = 23.2;
const double loop_setup_square = 0.000844;
const double kept_setup_ratio = 0.023;
const double kept_setup_base_ratio = 0.74;

}  // namespace tmr::sim_calibration
