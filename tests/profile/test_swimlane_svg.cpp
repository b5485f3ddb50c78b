// The SVG swimlane is well-formed XML, renders to PNG with rsvg-convert, and stays small for
// 10,000+ tasks (narrow tasks are summed per pixel column).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "profile/render.hpp"
#include "profile/sample_traces.hpp"
#include "profile/xml_check.hpp"
#include "support/test_scale.hpp"
#include "tmr/profile/swimlane_svg.hpp"

namespace tmr::testing {
namespace {

std::string svg_of(const Trace& trace, const profile::SwimlaneOptions& options = {}) {
  KernelRegistry kernels;
  register_sample_kernels(kernels);
  std::ostringstream out;
  profile::write_swimlane_svg(out, trace, kernels, options);
  return out.str();
}

void expect_renders(const std::string& svg, const std::string& name) {
  const TempDir dir("tmr-swimlane");
  const auto svg_path = dir.path() / (name + ".svg");
  const auto png_path = dir.path() / (name + ".png");
  std::ofstream(svg_path) << svg;
  EXPECT_EQ(render_png(svg_path, png_path), "");
  EXPECT_TRUE(is_png(png_path));
}

TEST(SwimlaneSvg, SmallTraceIsWellFormedAndRenders) {
  profile::SwimlaneOptions options;
  options.title = "sample <&> \"quoted\"";  // must come out escaped
  const std::string svg = svg_of(small_sample_trace(), options);
  const XmlCheck check = check_xml(svg);
  EXPECT_EQ(check.error, "");
  EXPECT_EQ(check.root, "svg");
  // Every subtask is wide enough here to get its own rect with a tooltip.
  EXPECT_NE(svg.find("<title>vadd #2 b1/2: 0.07 us</title>"), std::string::npos);
  EXPECT_NE(svg.find("<title>matmul #1: 0.1 us</title>"), std::string::npos);
  // Lanes, legend and axis.
  for (const char* text : {">c0 AIC<", ">c0 AIV0<", ">c0 AIV1<", ">submits<", "matmul (AIC): 2",
                           "vadd (AIV): 3", "time since run start (ns)"}) {
    EXPECT_NE(svg.find(text), std::string::npos) << text;
  }
  expect_renders(svg, "small");
}

TEST(SwimlaneSvg, TenThousandTasksAreAggregated) {
  const int tasks = scaled(20000, 10001);
  const Trace trace = large_sample_trace(tasks, 2, 11);
  profile::SwimlaneOptions options;
  const std::string svg = svg_of(trace, options);
  const XmlCheck check = check_xml(svg);
  ASSERT_EQ(check.error, "");
  // Bounded by lanes x pixels, not by tasks: no per-task rects, no tooltips.
  const std::size_t lanes = 2 * 3;
  const std::size_t rects = count_elements(svg, "rect");
  EXPECT_LT(rects, lanes * static_cast<std::size_t>(options.plot_width) + 200);
  EXPECT_LT(rects, static_cast<std::size_t>(tasks));
  EXPECT_EQ(svg.find("<title>matmul #"), std::string::npos);
  EXPECT_LT(svg.size(), 4u << 20);
  expect_renders(svg, "large");
}

TEST(SwimlaneSvg, EmptyTraceStillRenders) {
  Trace trace;
  trace.clusters = 2;
  const std::string svg = svg_of(trace);
  EXPECT_EQ(check_xml(svg).error, "");
  expect_renders(svg, "empty");
}

TEST(XmlCheck, RejectsMalformedDocuments) {
  EXPECT_EQ(check_xml("<svg><g></g></svg>").error, "");
  EXPECT_NE(check_xml("<svg><g></svg>").error, "");
  EXPECT_NE(check_xml("<svg a=1></svg>").error, "");
  EXPECT_NE(check_xml("<svg>a & b</svg>").error, "");
  EXPECT_NE(check_xml("<svg></svg><svg></svg>").error, "");
  EXPECT_NE(check_xml("<svg x=\"1\" x=\"2\"/>").error, "");
}

}  // namespace
}  // namespace tmr::testing
