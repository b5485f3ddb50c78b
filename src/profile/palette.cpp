#include "profile/palette.hpp"

#include <cmath>
#include <cstdio>

namespace tmr::profile {

namespace {

// Tableau 10 plus two: distinguishable side by side and on white.
constexpr const char* kPalette[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759",
                                    "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
                                    "#9c755f", "#bab0ac", "#1f77b4", "#8c564b"};
constexpr int kPaletteSize = sizeof kPalette / sizeof kPalette[0];

std::string hsl_to_hex(double hue, double saturation, double lightness) {
  const double c = (1 - std::fabs(2 * lightness - 1)) * saturation;
  const double h = hue / 60.0;
  const double x = c * (1 - std::fabs(std::fmod(h, 2.0) - 1));
  double r = 0, g = 0, b = 0;
  if (h < 1) {
    r = c, g = x;
  } else if (h < 2) {
    r = x, g = c;
  } else if (h < 3) {
    g = c, b = x;
  } else if (h < 4) {
    g = x, b = c;
  } else if (h < 5) {
    r = x, b = c;
  } else {
    r = c, b = x;
  }
  const double m = lightness - c / 2;
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "#%02x%02x%02x", static_cast<int>((r + m) * 255),
                static_cast<int>((g + m) * 255), static_cast<int>((b + m) * 255));
  return buffer;
}

}  // namespace

std::string kernel_colour(KernelId id) {
  if (id < 0) return "#999999";
  if (id < kPaletteSize) return kPalette[id];
  return hsl_to_hex(std::fmod(static_cast<double>(id) * 137.508, 360.0), 0.55, 0.55);
}

}  // namespace tmr::profile
