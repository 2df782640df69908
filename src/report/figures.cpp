// Hand-laid SVG figures of the report: a heatmap with numbers and a colour bar, and grouped bars.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "report_internal.h"

namespace moe::report::detail {

namespace {

std::string n2(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string text(double x, double y, const std::string& s, const std::string& attrs) {
  return "<text x=\"" + n2(x) + "\" y=\"" + n2(y) + "\" " + attrs + ">" + html_escape(s) + "</text>";
}

// Approximate width of a label in px at `font` (sans-serif, generous).
double label_width(const std::string& s, double font) {
  double n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) n += 1;
  return n * font * 0.62;
}

constexpr const char* kFont = "font-family=\"DejaVu Sans, Arial, sans-serif\"";

}  // namespace

std::string heatmap_svg(const std::vector<std::vector<double>>& values, const std::vector<std::string>& row_labels,
                        const std::vector<std::string>& col_labels, const std::vector<std::string>& extra,
                        const std::string& extra_label, double vmax) {
  const size_t R = values.size(), C = col_labels.size();
  const double ch = R > 32 ? 15 : 22, font = R > 32 ? 10 : 12, cw = 58;
  double left = 10;
  for (const auto& l : row_labels) left = std::max(left, label_width(l, font) + 14);
  const double top = 34, extra_w = extra.empty() ? 0 : 118;
  const double grid_w = cw * static_cast<double>(C), grid_h = ch * static_cast<double>(R);
  const double bar_x = left + grid_w + extra_w + 18, bar_w = 14;
  const double W = bar_x + bar_w + 52, H = top + grid_h + 12;
  vmax = vmax > 0 ? vmax : 1;
  std::string o = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + n2(W) + "\" height=\"" + n2(H) +
                  "\" viewBox=\"0 0 " + n2(W) + " " + n2(H) + "\" " + kFont + " font-size=\"" + n2(font) + "\">";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>";
  for (size_t c = 0; c < C; ++c)
    o += text(left + cw * (static_cast<double>(c) + 0.5), top - 10, col_labels[c], "text-anchor=\"middle\" font-weight=\"bold\"");
  if (!extra.empty()) o += text(left + grid_w + extra_w - 6, top - 10, extra_label, "text-anchor=\"end\" font-weight=\"bold\"");
  for (size_t r = 0; r < R; ++r) {
    const double y = top + ch * static_cast<double>(r);
    o += text(left - 8, y + ch / 2 + font * 0.35, r < row_labels.size() ? row_labels[r] : "", "text-anchor=\"end\"");
    double row_sum = 0;
    for (const double v : values[r]) row_sum += v;
    for (size_t c = 0; c < C && row_sum <= 0; ++c) {  // an unused row: grey, no numbers
      o += "<rect x=\"" + n2(left + cw * static_cast<double>(c)) + "\" y=\"" + n2(y) + "\" width=\"" + n2(cw - 1) +
           "\" height=\"" + n2(ch - 1) + "\" fill=\"#eeeeee\"/>";
      o += text(left + cw * (static_cast<double>(c) + 0.5), y + ch / 2 + font * 0.35, "\u2013", "text-anchor=\"middle\" fill=\"#999\"");
    }
    for (size_t c = 0; c < C && row_sum > 0; ++c) {
      const double v = c < values[r].size() ? values[r][c] : 0, t = v / vmax;
      const double x = left + cw * static_cast<double>(c);
      o += "<rect x=\"" + n2(x) + "\" y=\"" + n2(y) + "\" width=\"" + n2(cw - 1) + "\" height=\"" + n2(ch - 1) +
           "\" fill=\"" + scale_colour(t) + "\"><title>" + html_escape((r < row_labels.size() ? row_labels[r] : "") + ", " +
           col_labels[c] + ": " + fmt_pct(v, 1)) + "</title></rect>";
      o += text(x + cw / 2, y + ch / 2 + font * 0.35, fmt_pct(v, 0),
                std::string("text-anchor=\"middle\" fill=\"") + (dark_on_scale(t) ? "white" : "#222") + "\"");
    }
    if (r < extra.size()) o += text(left + grid_w + extra_w - 6, y + ch / 2 + font * 0.35, extra[r], "text-anchor=\"end\" fill=\"#444\"");
  }
  // Colour bar from 0 (bottom) to vmax (top).
  const int steps = 40;
  for (int i = 0; i < steps; ++i) {
    const double t0 = static_cast<double>(i) / steps;
    const double y = top + grid_h * (1 - static_cast<double>(i + 1) / steps);
    o += "<rect x=\"" + n2(bar_x) + "\" y=\"" + n2(y) + "\" width=\"" + n2(bar_w) + "\" height=\"" +
         n2(grid_h / steps + 0.5) + "\" fill=\"" + scale_colour(t0 + 0.5 / steps) + "\"/>";
  }
  o += "<rect x=\"" + n2(bar_x) + "\" y=\"" + n2(top) + "\" width=\"" + n2(bar_w) + "\" height=\"" + n2(grid_h) +
       "\" fill=\"none\" stroke=\"#888\"/>";
  for (int i = 0; i <= 2; ++i) {
    const double f = i / 2.0, y = top + grid_h * (1 - f);
    o += "<line x1=\"" + n2(bar_x + bar_w) + "\" x2=\"" + n2(bar_x + bar_w + 4) + "\" y1=\"" + n2(y) + "\" y2=\"" + n2(y) +
         "\" stroke=\"#888\"/>";
    o += text(bar_x + bar_w + 6, y + font * 0.35, fmt_pct(vmax * f, 0), "fill=\"#444\"");
  }
  o += "</svg>";
  return o;
}

std::string bar_chart_svg(const std::vector<std::string>& groups, const std::vector<std::string>& series,
                          const std::vector<std::vector<double>>& values, double vmax, const std::string& y_label) {
  static const char* kColours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"};
  const double left = 84, top = 34, plot_h = 180, bottom = 40, bar_w = 44, gap = 26;
  const double S = static_cast<double>(std::max<size_t>(series.size(), 1));
  const double group_w = bar_w * S + gap;
  const double plot_w = std::max(group_w * static_cast<double>(groups.size()) + gap, 260.0);
  const double W = left + plot_w + 16, H = top + plot_h + bottom;
  vmax = vmax > 0 ? vmax : 1;
  std::string o = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + n2(W) + "\" height=\"" + n2(H) +
                  "\" viewBox=\"0 0 " + n2(W) + " " + n2(H) + "\" " + kFont + " font-size=\"12\">";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>";
  for (int i = 0; i <= 4; ++i) {  // grid and y ticks
    const double f = i / 4.0, y = top + plot_h * (1 - f);
    o += "<line x1=\"" + n2(left) + "\" x2=\"" + n2(left + plot_w) + "\" y1=\"" + n2(y) + "\" y2=\"" + n2(y) +
         "\" stroke=\"" + (i == 0 ? "#444" : "#e4e4e4") + "\"/>";
    o += text(left - 6, y + 4, f == 0 ? std::string("0") : fmt_float(vmax * f, 3), "text-anchor=\"end\" fill=\"#444\"");
  }
  o += text(16, top + plot_h / 2, y_label,
            "text-anchor=\"middle\" transform=\"rotate(-90 16 " + n2(top + plot_h / 2) + ")\" fill=\"#222\"");
  for (size_t g = 0; g < groups.size(); ++g) {
    const double gx = left + gap + group_w * static_cast<double>(g);
    for (size_t s = 0; s < series.size(); ++s) {
      const double v = g < values.size() && s < values[g].size() ? values[g][s] : 0;
      const double h = plot_h * std::clamp(v / vmax, 0.0, 1.0), x = gx + bar_w * static_cast<double>(s);
      o += "<rect x=\"" + n2(x) + "\" y=\"" + n2(top + plot_h - h) + "\" width=\"" + n2(bar_w - 2) + "\" height=\"" + n2(h) +
           "\" fill=\"" + kColours[s % 4] + "\"><title>" + html_escape(groups[g] + ", " + series[s] + ": " + fmt_num(v, 4)) +
           "</title></rect>";
      o += text(x + (bar_w - 2) / 2, top + plot_h - h - 4, fmt_num(v, 2), "text-anchor=\"middle\" font-size=\"10\" fill=\"#222\"");
    }
    o += text(gx + bar_w * S / 2, top + plot_h + 18, groups[g], "text-anchor=\"middle\" fill=\"#222\"");
  }
  double lx = left + 8;  // legend along the top
  for (size_t s = 0; s < series.size(); ++s) {
    o += "<rect x=\"" + n2(lx) + "\" y=\"10\" width=\"12\" height=\"12\" fill=\"" + kColours[s % 4] + "\"/>";
    o += text(lx + 17, 20, series[s], "fill=\"#222\"");
    lx += 30 + label_width(series[s], 12);
  }
  o += "</svg>";
  return o;
}

}  // namespace moe::report::detail
