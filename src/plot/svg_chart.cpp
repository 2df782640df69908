// Line charts as SVG, laid out like matplotlib's defaults at 100 dpi (10 pt text ≈ 13 px,
// 1.5 pt lines ≈ 2 px, 5 % axis margins, tab10 palette). Text sizes are estimated from
// DejaVu Sans metrics (the Debian sans-serif), so layout is conservative for narrower fonts.
#include "moe/svg_chart.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string_view>
#include <tuple>

namespace moe::plot {
namespace {

constexpr std::array<const char*, 10> kPalette = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                                  "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                                  "#bcbd22", "#17becf"};
constexpr double kTitleFont = 16, kLabelFont = 14, kTickFont = 13, kLegendFont = 13;
constexpr double kSupFont = 10;                        // exponent in 10^n tick labels
constexpr double kMajorTick = 5, kMinorTick = 3;       // 3.5 pt / 2 pt
constexpr double kLineWidth = 2, kMarkerSize = 8;      // 1.5 pt, 6 pt
constexpr double kMargin = 0.05;                       // matplotlib's axes.[xy]margin
// Data never comes closer than this to the top or bottom of the frame: a flat series at the
// extreme (total parameters, a load at its maximum) would otherwise read as part of the frame.
constexpr double kEdgeClearance = 30;
constexpr const char* kMinus = "\u2212";               // typographic minus, as matplotlib

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument("[svg_chart] " + msg); }

// Coordinates with 0.01 px precision; trailing zeros trimmed to keep files small.
std::string px(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s == "-0" ? "0" : s;
}

std::string num(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  std::string s = buf;
  if (s[0] != '-') return s;
  return s.find_first_not_of("-0.") == std::string::npos ? s.substr(1) : kMinus + s.substr(1);  // no "-0.0"
}

// XML text/attribute escaping; drops control characters that XML 1.0 forbids outright.
std::string esc(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t') out += c;
    }
  }
  return out;
}

// Approximate advance width in px (DejaVu Sans proportions, slightly generous).
double text_width(std::string_view s, double font) {
  double em = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) == 0x80) continue;  // UTF-8 continuation byte
    if (c >= 0x80) em += 0.8;
    else if (std::string_view("il.,:;'|!").find(c) != std::string_view::npos) em += 0.30;
    else if (std::string_view(" ftrjI()[]-").find(c) != std::string_view::npos) em += 0.40;
    else if (c == 'm' || c == 'w') em += 0.98;
    else if (c == 'M' || c == 'W') em += 0.95;
    else if (c >= 'A' && c <= 'Z') em += 0.74;
    else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) em += 0.64;
    else em += 0.84;  // = + _ % and friends
  }
  return em * font;
}

// Splits at '\n', then word-wraps each line to fit `width` px.
std::vector<std::string> wrap(const std::string& text, double width, double font) {
  std::vector<std::string> lines;
  for (size_t start = 0; !text.empty();) {
    const size_t end = std::min(text.find('\n', start), text.size());
    std::string line;
    for (size_t w = start; w < end;) {
      const size_t space = std::min(text.find(' ', w), end);
      const std::string word = text.substr(w, space - w);
      if (!line.empty() && text_width(line + " " + word, font) > width) lines.push_back(line), line.clear();
      line += (line.empty() ? "" : " ") + word;
      w = space + 1;
    }
    lines.push_back(line);
    if (end == text.size()) break;
    start = end + 1;
  }
  return lines;
}

std::string dasharray(LineStyle s) {  // matplotlib's patterns scaled by the line width
  if (s == LineStyle::dashed) return R"( stroke-dasharray="7.4,3.2")";
  if (s == LineStyle::dotted) return R"( stroke-dasharray="2,3.3")";
  return "";
}

// A tick label is markup (it may hold an exponent tspan); width is precomputed for layout.
struct Tick {
  double pos;  // axis units: data value, or log10 of it on a log axis
  bool major;
  std::string label;  // empty = unlabelled
  double label_w = 0;
};

struct Axis {
  bool log = false;
  double lo = 0, hi = 1;  // view limits in axis units
  std::vector<Tick> ticks;
  double frac(double v) const { return ((log ? std::log10(v) : v) - lo) / (hi - lo); }
};

std::string power_of_ten(int e) {
  std::string exp = e < 0 ? kMinus + std::to_string(-e) : std::to_string(e);
  return R"(10<tspan dy="-6" font-size=")" + px(kSupFont) + "\">" + exp + "</tspan>";
}
double power_of_ten_width(int e) {
  return text_width("10", kTickFont) + text_width(std::to_string(e), kSupFont);
}

int decimals_for(double step) {  // enough digits to tell adjacent 1/2/5×10^n ticks apart
  return std::clamp(static_cast<int>(-std::floor(std::log10(step) + 1e-9)), 0, 12);
}

// Linear ticks on 1/2/5×10^n steps. Labels share one style per axis: plain decimals,
// k/M/B/T suffixes for large values (parameter counts read as "600M", "1.5B"), or m×10^e
// for tiny/huge values, so an axis never mixes "1e+08" with "200000000".
Axis linear_axis(double lo, double hi, int max_ticks, double margin = kMargin) {
  if (hi - lo <= 1e-12 * std::max(std::abs(lo), std::abs(hi))) {  // constant data
    double c = 0.5 * (lo + hi), d = c == 0 ? 0.05 : 0.05 * std::abs(c);
    lo = c - d, hi = c + d;
  }
  Axis ax;
  ax.lo = lo - margin * (hi - lo);
  ax.hi = hi + margin * (hi - lo);
  double raw = (ax.hi - ax.lo) / max_ticks, p = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * p;
  for (double m : {1.0, 2.0, 5.0}) {
    if (m * p >= raw * (1 - 1e-9)) { step = m * p; break; }
  }
  std::vector<double> vals;
  for (double i = std::ceil(ax.lo / step - 1e-9); i * step <= ax.hi + 1e-9 * step; ++i) {
    vals.push_back(std::abs(i) < 0.5 ? 0.0 : i * step);
  }
  double max_abs = 0;
  for (double v : vals) max_abs = std::max(max_abs, std::abs(v));

  double scale = 1;
  std::string suffix;
  int exponent = 0;
  if (max_abs >= 1e4 && max_abs < 1e15) {
    constexpr std::pair<double, const char*> kUnits[] = {{1e12, "T"}, {1e9, "B"}, {1e6, "M"}, {1e3, "k"}};
    for (auto [u, s] : kUnits) {
      if (max_abs >= u) { scale = u, suffix = s; break; }
    }
  } else if (max_abs >= 1e15 || (max_abs > 0 && max_abs < 1e-3)) {
    exponent = static_cast<int>(std::floor(std::log10(max_abs)));
    scale = std::pow(10.0, exponent);
  }
  for (double v : vals) {
    Tick t{v, true, num(v / scale, decimals_for(step / scale))};
    if (v == 0 && scale != 1) t.label = "0";  // "0", not "0.0M" or "0×10^-5"
    t.label_w = text_width(t.label, kTickFont);
    if (v != 0 && !suffix.empty()) {
      t.label += suffix, t.label_w += text_width(suffix, kTickFont);
    } else if (v != 0 && exponent != 0) {
      t.label += "\u00d7" + power_of_ten(exponent);
      t.label_w += text_width("\u00d7", kTickFont) + power_of_ten_width(exponent);
    }
    ax.ticks.push_back(t);
  }
  return ax;
}

// Log ticks: decades labelled 10^n with unlabelled minor ticks at 2..9. When fewer than three
// decades are in view, the 1/2/5 (else all) multiples m×10^n are labelled instead, and the view
// is widened to the enclosing multiples if even that would leave fewer than two labels.
Axis log_axis(double lo, double hi, int max_ticks, double margin = kMargin) {
  double a = std::log10(lo), b = std::log10(hi);
  if (b - a < 1e-12) {  // constant data: strictly enclosing decades, as matplotlib
    double r = std::round(a);
    bool exact = std::abs(a - r) < 1e-9;
    a = exact ? r - 1 : std::floor(a);
    b = exact ? r + 1 : std::ceil(b);
  }
  Axis ax;
  ax.log = true;
  ax.lo = a - margin * (b - a);
  ax.hi = b + margin * (b - a);
  const double eps = 1e-9 * (ax.hi - ax.lo);
  for (int attempt = 0; attempt < 2; ++attempt) {
    struct Cand { double pos; int m, n; };
    std::vector<Cand> cands;
    const bool minors = ax.hi - ax.lo <= 12;
    for (int n = static_cast<int>(std::floor(ax.lo)); n <= static_cast<int>(std::ceil(ax.hi)); ++n) {
      for (int m = 1; m <= (minors ? 9 : 1); ++m) {
        double pos = n + std::log10(m);
        if (pos >= ax.lo - eps && pos <= ax.hi + eps) cands.push_back({pos, m, n});
      }
    }
    auto is_125 = [](const Cand& c) { return c.m == 1 || c.m == 2 || c.m == 5; };
    const long decades = std::count_if(cands.begin(), cands.end(), [](const Cand& c) { return c.m == 1; });
    const long every = std::max(1L, (decades + max_ticks - 1) / max_ticks);
    enum { kDecades, kOneTwoFive, kAll, kNone } mode = kNone;
    if (decades >= 3) mode = kDecades;  // two decades alone say little: label 2× and 5× too
    else if (std::count_if(cands.begin(), cands.end(), is_125) >= 2) mode = kOneTwoFive;
    else if (cands.size() >= 2) mode = kAll;
    auto labelled = [&](const Cand& c) {
      return mode == kAll || (mode == kOneTwoFive && is_125(c)) || (c.m == 1 && c.n % every == 0);
    };
    if (mode == kNone) {  // widen to the nearest multiples m×10^n around the view, then retry
      double nl = std::floor(ax.lo), nh = std::floor(ax.hi);
      ax.lo = nl + std::log10(std::floor(std::pow(10.0, ax.lo - nl) * (1 + 1e-12)));
      ax.hi = nh + std::log10(std::ceil(std::pow(10.0, ax.hi - nh) * (1 - 1e-12)));
      continue;
    }
    for (const Cand& c : cands) {
      Tick t{c.pos, labelled(c) || c.m == 1, ""};
      if (labelled(c)) {
        t.label = power_of_ten(c.n), t.label_w = power_of_ten_width(c.n);
        if (c.m != 1) {
          std::string mant = std::to_string(c.m) + "\u00d7";
          t.label = mant + t.label, t.label_w += text_width(mant, kTickFont);
        }
      }
      ax.ticks.push_back(t);
    }
    break;
  }
  return ax;
}

void validate(const ChartSpec& spec) {
  if (spec.width < 100 || spec.height < 100) {
    fail("chart size " + std::to_string(spec.width) + "x" + std::to_string(spec.height) +
         " is too small (minimum 100x100 px)");
  }
  size_t points = 0;
  for (size_t i = 0; i < spec.series.size(); ++i) {
    const Series& s = spec.series[i];
    const std::string name = "series '" + s.label + "' (#" + std::to_string(i) + ")";
    if (s.x.size() != s.y.size()) {
      fail(name + ": x has " + std::to_string(s.x.size()) + " values but y has " +
           std::to_string(s.y.size()));
    }
    for (size_t j = 0; j < s.x.size(); ++j) {
      for (auto [v, axis, log] : {std::tuple{s.x[j], "x", spec.x_log}, std::tuple{s.y[j], "y", spec.y_log}}) {
        const std::string at = name + ": " + axis + "[" + std::to_string(j) + "]";
        if (!std::isfinite(v)) fail(at + " is not finite");
        if (log && v <= 0) fail(at + " = " + std::to_string(v) + " is <= 0 on a log " + axis + " axis");
      }
    }
    points += s.x.size();
  }
  for (size_t i = 0; i < spec.hlines.size(); ++i) {
    const HLine& h = spec.hlines[i];
    const std::string name = "hline '" + h.label + "' (#" + std::to_string(i) + ")";
    if (!std::isfinite(h.y)) fail(name + ": y is not finite");
    if (spec.y_log && h.y <= 0) fail(name + ": y = " + std::to_string(h.y) + " is <= 0 on a log y axis");
  }
  if (points == 0) fail("empty chart: no series has any points");
}

struct LegendEntry {
  std::string label, color;
  LineStyle style;
  Marker marker;
};

std::string marker_svg(Marker m, double x, double y, const std::string& color) {
  const double r = kMarkerSize / 2;
  if (m == Marker::circle) {
    return "<circle class=\"marker\" cx=\"" + px(x) + "\" cy=\"" + px(y) + "\" r=\"" + px(r) + "\" fill=\"" + color + "\"/>\n";
  }
  if (m == Marker::square) {
    return "<rect class=\"marker\" x=\"" + px(x - r * 0.9) + "\" y=\"" + px(y - r * 0.9) + "\" width=\"" + px(1.8 * r) +
           "\" height=\"" + px(1.8 * r) + "\" fill=\"" + color + "\"/>\n";
  }
  return "";
}

}  // namespace

std::string render_svg(const ChartSpec& spec) {
  validate(spec);
  const double W = spec.width, H = spec.height;

  // Data extents; horizontal lines take part in y autoscaling, as axhline does.
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const Series& s : spec.series) {
    for (size_t j = 0; j < s.x.size(); ++j) {
      x0 = std::min(x0, s.x[j]), x1 = std::max(x1, s.x[j]);
      y0 = std::min(y0, s.y[j]), y1 = std::max(y1, s.y[j]);
    }
  }
  for (const HLine& h : spec.hlines) y0 = std::min(y0, h.y), y1 = std::max(y1, h.y);
  if (!std::isfinite(x1 - x0) || !std::isfinite(y1 - y0)) fail("data range overflows a double");

  // Tick density from the figure size (matplotlib: about one tick per 3 em across, 2 em up).
  const int x_max_ticks = std::clamp(static_cast<int>(W / 75), 3, 9);
  const int y_max_ticks = std::clamp(static_cast<int>(H / 50), 3, 9);
  const Axis xa = spec.x_log ? log_axis(x0, x1, x_max_ticks) : linear_axis(x0, x1, x_max_ticks);

  // Legend entries (series, then reference lines as matplotlib lists axhlines). Inside the plot
  // they stack in a box; outside, they fill the columns of a grid across the figure under the title.
  std::vector<LegendEntry> legend;
  for (size_t i = 0, c = 0; i < spec.series.size(); ++i) {
    const Series& s = spec.series[i];
    const std::string color = s.color.empty() ? kPalette[c++ % kPalette.size()] : esc(s.color);
    if (!s.label.empty()) legend.push_back({s.label, color, s.style, s.marker});
  }
  for (const HLine& h : spec.hlines)
    if (!h.label.empty()) legend.push_back({h.label, esc(h.color.empty() ? "gray" : h.color), h.style, Marker::none});
  const double row = kLegendFont * 1.45, pad = 7, handle = 28, gap = 8, inset = 8, col_gap = 18;
  double text_w = 0;
  for (const LegendEntry& e : legend) text_w = std::max(text_w, text_width(e.label, kLegendFont));
  const double entry_w = handle + gap + text_w;
  const size_t columns = std::clamp<size_t>(static_cast<size_t>((W - 16 - 2 * pad + col_gap) / (entry_w + col_gap)), 1,
                                            std::max<size_t>(legend.size(), 1));
  const size_t rows = (legend.size() + columns - 1) / columns;
  auto cell_offset = [&](size_t i, bool grid) {  // an entry's offset from the box's inner corner
    return grid ? std::pair{static_cast<double>(i % columns) * (entry_w + col_gap), static_cast<double>(i / columns) * row}
                : std::pair{0.0, static_cast<double>(i) * row};
  };
  const double box_w = pad + entry_w + pad, box_h = 2 * pad + legend.size() * row - (row - kLegendFont);
  const double band_w = 2 * pad + columns * entry_w + (columns - 1) * col_gap;
  const double band_h = 2 * pad + rows * row - (row - kLegendFont);

  // Margins are sized to their contents: title lines (and an outside legend) on top, tick labels
  // + axis label left and below.
  const std::vector<std::string> title_lines = wrap(spec.title, W - 16, kTitleFont);
  double title_font = kTitleFont;
  for (const std::string& line : title_lines) {  // a single over-long word: shrink, don't clip
    title_font = std::max(8.0, std::min(title_font, kTitleFont * (W - 16) / text_width(line, kTitleFont)));
  }
  const double title_bottom = title_lines.empty() ? 0.06 * H : 14 + title_lines.size() * title_font * 1.25 + 4;
  const double bottom = H - (kMajorTick + 5 + kTickFont + (spec.x_label.empty() ? 10 : 10 + kLabelFont + 10));
  double top = 0, left = 0, right = 0, y_tick_w = 0;
  Axis ya;
  auto lay_out = [&](double band) {  // band: px above the plot for an outside legend (0: none)
    top = title_bottom + (band > 0 ? band + 8 : 0);
    if (bottom - top < 20) fail("chart size too small for its labels");
    // The y margin m of the data span keeps the extremes `clear` px inside the frame:
    // m / (1 + 2m) of the plot height >= clear (matplotlib's 5 % when that is more).
    const double clear = std::min(kEdgeClearance, (bottom - top) / 6);
    const double y_margin = std::max(kMargin, clear / (bottom - top - 2 * clear));
    ya = spec.y_log ? log_axis(y0, y1, y_max_ticks, y_margin) : linear_axis(y0, y1, y_max_ticks, y_margin);
    y_tick_w = 0;
    for (const Tick& t : ya.ticks) y_tick_w = std::max(y_tick_w, t.label_w);
    const double y_label_space = spec.y_label.empty() ? 0 : kLabelFont * 1.2 + 8;
    left = std::max(0.08 * W, 10 + y_label_space + y_tick_w + kMajorTick + 5);
    right = W - 0.04 * W;
    for (const Tick& t : xa.ticks) {  // pull the plot in until the last x label fits the figure
      double f = (t.pos - xa.lo) / (xa.hi - xa.lo);
      if (!t.label.empty() && f > 0.5) right = std::min(right, left + (W - 6 - t.label_w / 2 - left) / f);
    }
    if (right - left < 20) fail("chart size too small for its labels");
  };
  lay_out(0);
  auto X = [&](double v) { return left + xa.frac(v) * (right - left); };
  auto Y = [&](double v) { return bottom - ya.frac(v) * (bottom - top); };

  // Legend placement: matplotlib's "best" – the candidate box (plus 6 px clearance) covering the
  // fewest samples of the drawn lines, ties broken by matplotlib's order (upper right first). When
  // every candidate covers data, the legend goes outside, above a shorter plot.
  auto best_spot = [&](double& bx, double& by) {
    std::vector<std::pair<double, double>> drawn;
    auto sample = [&](double xa_, double ya_, double xb, double yb) {
      int n = 1 + static_cast<int>(std::hypot(xb - xa_, yb - ya_) / 3);
      for (int i = 0; i <= n; ++i) drawn.emplace_back(xa_ + (xb - xa_) * i / n, ya_ + (yb - ya_) * i / n);
    };
    for (const HLine& h : spec.hlines) sample(left, Y(h.y), right, Y(h.y));
    for (const Series& s : spec.series)
      for (size_t j = 0; j < s.x.size(); ++j) {
        if (j > 0) sample(X(s.x[j - 1]), Y(s.y[j - 1]), X(s.x[j]), Y(s.y[j]));
        drawn.emplace_back(X(s.x[j]), Y(s.y[j]));
      }
    const double xl = left + inset, xr = right - inset - box_w, xc = (left + right - box_w) / 2;
    const double yt = top + inset, yb = bottom - inset - box_h, yc = (top + bottom - box_h) / 2;
    const std::pair<double, double> spots[] = {{xr, yt}, {xl, yt}, {xl, yb}, {xr, yb}, {xr, yc},
                                               {xl, yc}, {xc, yb}, {xc, yt}, {xc, yc}};
    size_t best = std::numeric_limits<size_t>::max();
    for (const auto& spot : spots) {
      const double sx = spot.first, sy = spot.second;  // plain locals: lambdas may capture them
      size_t hits = std::count_if(drawn.begin(), drawn.end(), [&](const auto& p) {
        return p.first >= sx - 6 && p.first <= sx + box_w + 6 && p.second >= sy - 6 && p.second <= sy + box_h + 6;
      });
      if (hits < best) best = hits, bx = sx, by = sy;
    }
    return best;
  };
  double bx = 0, by = 0, bw = box_w, bh = box_h;
  const bool outside = !legend.empty() && best_spot(bx, by) > 0 && bottom - (title_bottom + band_h + 8) >= 6 * kEdgeClearance;
  if (outside) {
    lay_out(band_h);
    bw = band_w, bh = band_h;
    bx = std::clamp((left + right - bw) / 2, 4.0, std::max(4.0, W - 4 - bw)), by = title_bottom;
  }

  std::string o;
  o += R"(<?xml version="1.0" encoding="UTF-8"?>)" "\n";
  o += R"(<svg xmlns="http://www.w3.org/2000/svg" width=")" + px(W) + "\" height=\"" + px(H) +
       "\" viewBox=\"0 0 " + px(W) + " " + px(H) + R"(" font-family="DejaVu Sans, Arial, sans-serif">)" "\n";
  o += "<defs><clipPath id=\"moe-plot-area\"><rect x=\"" + px(left) + "\" y=\"" + px(top) + "\" width=\"" +
       px(right - left) + "\" height=\"" + px(bottom - top) + "\"/></clipPath></defs>\n";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";

  // Faint grid at labelled ticks: reading values off a log axis is hard without it.
  o += "<g class=\"grid\" stroke=\"#b0b0b0\" stroke-opacity=\"0.35\" stroke-width=\"0.8\">\n";
  for (const Tick& t : xa.ticks) {
    double x = X(xa.log ? std::pow(10.0, t.pos) : t.pos);
    if (!t.label.empty()) o += "<line x1=\"" + px(x) + "\" y1=\"" + px(top) + "\" x2=\"" + px(x) + "\" y2=\"" + px(bottom) + "\"/>\n";
  }
  for (const Tick& t : ya.ticks) {
    double y = Y(ya.log ? std::pow(10.0, t.pos) : t.pos);
    if (!t.label.empty()) o += "<line x1=\"" + px(left) + "\" y1=\"" + px(y) + "\" x2=\"" + px(right) + "\" y2=\"" + px(y) + "\"/>\n";
  }
  o += "</g>\n";

  // Data: series lines, reference lines over them (a dotted baseline stays visible where a series
  // runs along it), markers on top.
  o += "<g class=\"data\" clip-path=\"url(#moe-plot-area)\" stroke-width=\"" + px(kLineWidth) + "\">\n";
  std::string markers;
  for (size_t i = 0, c = 0; i < spec.series.size(); ++i) {
    const Series& s = spec.series[i];
    const std::string color = s.color.empty() ? kPalette[c++ % kPalette.size()] : esc(s.color);
    if (s.x.size() >= 2) {
      o += "<polyline class=\"series\" fill=\"none\" stroke=\"" + color + "\"" + dasharray(s.style) +
           " stroke-linejoin=\"round\" points=\"";
      for (size_t j = 0; j < s.x.size(); ++j) o += (j ? " " : "") + px(X(s.x[j])) + "," + px(Y(s.y[j]));
      o += "\"/>\n";
    }
    for (size_t j = 0; j < s.x.size(); ++j) markers += marker_svg(s.marker, X(s.x[j]), Y(s.y[j]), color);
  }
  for (const HLine& h : spec.hlines) {
    o += "<line class=\"hline\" x1=\"" + px(left) + "\" y1=\"" + px(Y(h.y)) + "\" x2=\"" + px(right) + "\" y2=\"" +
         px(Y(h.y)) + "\" stroke=\"" + esc(h.color.empty() ? "gray" : h.color) + "\"" + dasharray(h.style) + "/>\n";
  }
  o += markers + "</g>\n";

  // Axes frame and ticks, pointing outwards.
  o += "<rect class=\"frame\" x=\"" + px(left) + "\" y=\"" + px(top) + "\" width=\"" + px(right - left) +
       "\" height=\"" + px(bottom - top) + "\" fill=\"none\" stroke=\"black\" stroke-width=\"1\"/>\n";
  auto draw_ticks = [&](const Axis& ax, bool is_x) {
    o += is_x ? "<g class=\"x-axis\" font-size=\"" + px(kTickFont) + "\" text-anchor=\"middle\">\n"
              : "<g class=\"y-axis\" font-size=\"" + px(kTickFont) + "\" text-anchor=\"end\">\n";
    double last_edge = -INFINITY;  // drop labels that would collide with the previous one
    for (const Tick& t : ax.ticks) {
      double v = ax.log ? std::pow(10.0, t.pos) : t.pos, len = t.major ? kMajorTick : kMinorTick;
      double p = is_x ? X(v) : Y(v);
      o += is_x ? "<line x1=\"" + px(p) + "\" y1=\"" + px(bottom) + "\" x2=\"" + px(p) + "\" y2=\"" + px(bottom + len)
                : "<line x1=\"" + px(left - len) + "\" y1=\"" + px(p) + "\" x2=\"" + px(left) + "\" y2=\"" + px(p);
      o += "\" stroke=\"black\" stroke-width=\"" + px(t.major ? 1 : 0.7) + "\"/>\n";
      if (t.label.empty()) continue;
      double lo_edge = is_x ? p - t.label_w / 2 : -p - kTickFont * 0.6;
      if (lo_edge < last_edge + 4) continue;
      last_edge = is_x ? p + t.label_w / 2 : -p + kTickFont * 0.6;
      o += is_x ? "<text class=\"xtick\" x=\"" + px(p) + "\" y=\"" + px(bottom + kMajorTick + 4 + kTickFont * 0.8)
                : "<text class=\"ytick\" x=\"" + px(left - kMajorTick - 4) + "\" y=\"" + px(p + kTickFont * 0.35);
      o += "\">" + t.label + "</text>\n";
    }
    o += "</g>\n";
  };
  draw_ticks(xa, true);
  draw_ticks(ya, false);

  if (!spec.x_label.empty()) {
    o += "<text class=\"xlabel\" x=\"" + px((left + right) / 2) + "\" y=\"" + px(H - 10) +
         "\" font-size=\"" + px(kLabelFont) + "\" text-anchor=\"middle\">" + esc(spec.x_label) + "</text>\n";
  }
  if (!spec.y_label.empty()) {
    const double x = left - kMajorTick - 4 - y_tick_w - 8 - kLabelFont * 0.25;
    o += "<text class=\"ylabel\" transform=\"translate(" + px(x) + "," + px((top + bottom) / 2) +
         ") rotate(-90)\" font-size=\"" + px(kLabelFont) + "\" text-anchor=\"middle\">" + esc(spec.y_label) + "</text>\n";
  }
  for (size_t i = 0; i < title_lines.size(); ++i) {  // centred on the axes, kept inside the figure
    const double half = text_width(title_lines[i], title_font) / 2;
    const double x = std::clamp((left + right) / 2, std::min(W / 2, 8 + half), std::max(W / 2, W - 8 - half));
    o += "<text class=\"title\" x=\"" + px(x) + "\" y=\"" +
         px(14 + title_font * (0.95 + 1.25 * i)) + "\" font-size=\"" + px(title_font) +
         "\" text-anchor=\"middle\">" + esc(title_lines[i]) + "</text>\n";
  }

  if (!legend.empty()) {
    o += "<g class=\"legend\" font-size=\"" + px(kLegendFont) + "\">\n";
    o += "<rect x=\"" + px(bx) + "\" y=\"" + px(by) + "\" width=\"" + px(bw) + "\" height=\"" + px(bh) +
         "\" rx=\"3\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#cccccc\"/>\n";
    for (size_t i = 0; i < legend.size(); ++i) {
      const LegendEntry& e = legend[i];
      const auto [dx, dy] = cell_offset(i, outside);
      const double cy = by + pad + kLegendFont / 2 + dy, hx = bx + pad + dx;
      o += "<line x1=\"" + px(hx) + "\" y1=\"" + px(cy) + "\" x2=\"" + px(hx + handle) + "\" y2=\"" + px(cy) +
           "\" stroke=\"" + e.color + "\" stroke-width=\"" + px(kLineWidth) + "\"" + dasharray(e.style) + "/>\n";
      o += marker_svg(e.marker, hx + handle / 2, cy, e.color);
      o += "<text x=\"" + px(hx + handle + gap) + "\" y=\"" + px(cy + kLegendFont * 0.35) + "\">" + esc(e.label) + "</text>\n";
    }
    o += "</g>\n";
  }
  o += "</svg>\n";
  return o;
}

}  // namespace moe::plot
