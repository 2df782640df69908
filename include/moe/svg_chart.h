// Line charts as self-contained SVG: the pictures the tools write (estimator sweeps, later loss
// curves and expert load). No dependencies; the output renders the same in any browser.
#pragma once

#include <string>
#include <vector>

namespace moe::plot {

enum class Marker { none, circle, square };
enum class LineStyle { solid, dashed, dotted };

// One polyline. x and y have the same length; NaN/Inf points are rejected.
struct Series {
  std::string label;
  std::vector<double> x;
  std::vector<double> y;
  Marker marker = Marker::none;
  LineStyle style = LineStyle::solid;
  std::string color;  // CSS colour; empty = next colour of the default palette
};

// A horizontal reference line across the whole plot area (e.g. the dense baseline).
struct HLine {
  std::string label;
  double y = 0;
  LineStyle style = LineStyle::dotted;
  std::string color = "gray";
};

struct ChartSpec {
  std::string title;  // '\n' starts a new title line
  std::string x_label;
  std::string y_label;
  bool x_log = false;
  bool y_log = false;
  std::vector<Series> series;
  std::vector<HLine> hlines;
  int width = 700;   // px
  int height = 500;  // px
};

// Renders the chart as a complete SVG document (UTF-8, text escaped). Layout: the data keep 30 px
// from the top and bottom of the frame; reference lines are drawn over the series lines, markers
// over both; the legend goes where it covers no data inside the plot, else above the plot. Throws
// std::invalid_argument("[svg_chart] ...") for an empty chart, mismatched x/y lengths,
// non-finite values, or values <= 0 on a log axis.
std::string render_svg(const ChartSpec& spec);

}  // namespace moe::plot
