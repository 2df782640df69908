// SVG line charts: parse the document back and check structure, escaping, ticks, the
// data-to-pixel mapping and input validation. Rendering is checked by render_svg_check.py.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "moe/svg_chart.h"

namespace {

using moe::plot::ChartSpec;
using moe::plot::HLine;
using moe::plot::LineStyle;
using moe::plot::Marker;
using moe::plot::render_svg;
using moe::plot::Series;

Series make_series(std::string label, std::vector<double> x, std::vector<double> y,
                   Marker marker = Marker::none) {
  Series s;
  s.label = std::move(label), s.x = std::move(x), s.y = std::move(y), s.marker = marker;
  return s;
}

HLine make_hline(std::string label, double y) {
  HLine h;
  h.label = std::move(label), h.y = y;
  return h;
}

// The estimator's figure: active params fall ~1/E, total stays ~ the dense FFN.
ChartSpec reference_spec(bool y_log) {
  const double d = 7168, dense = 3 * d * 28672;
  ChartSpec spec;
  spec.title = "Active vs Total Parameters per Token\n(emb_dim=7168, hidden_dim=28672, ffn=swiglu, top_k=8)";
  spec.x_label = "Number of experts (top_k = 8)";
  spec.y_label = "Parameters";
  spec.y_log = y_log;
  Series active = make_series("MoE active per token", {}, {}, Marker::circle);
  Series total = make_series("MoE total parameters", {}, {}, Marker::square);
  total.style = LineStyle::dashed;
  for (double e : {1, 2, 4, 8, 16, 32, 64, 128, 192, 256, 384, 512}) {
    active.x.push_back(e), total.x.push_back(e);
    active.y.push_back(e <= 8 ? dense + e * d : dense * 8 / e + e * d);
    total.y.push_back(dense + e * d);
  }
  spec.series = {active, total};
  spec.hlines = {make_hline("FFN dense (active = total)", dense)};
  return spec;
}

// Minimal XML well-formedness: balanced, properly nested tags, quoted attributes with no raw
// '<', and every '&' starting a known entity. Returns "" if fine, else what went wrong.
std::string xml_problem(const std::string& s) {
  std::vector<std::string> open;
  static const std::regex kEntity(R"(^&(amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);)");
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '&' && !std::regex_search(s.substr(i, 10), kEntity)) return "bare '&' at " + std::to_string(i);
    if (s[i] != '<') continue;
    if (s.compare(i, 2, "<?") == 0) { i = s.find("?>", i); if (i == std::string::npos) return "open <?"; continue; }
    if (s.compare(i, 4, "<!--") == 0) { i = s.find("-->", i); if (i == std::string::npos) return "open <!--"; continue; }
    size_t end = i + 1;
    char quote = 0;
    for (; end < s.size() && (quote || s[end] != '>'); ++end) {
      if (quote && s[end] == '<') return "'<' inside an attribute at " + std::to_string(end);
      if (s[end] == '"' || s[end] == '\'') quote = quote == s[end] ? 0 : (quote ? quote : s[end]);
    }
    if (end == s.size()) return "unterminated tag at " + std::to_string(i);
    std::string tag = s.substr(i + 1, end - i - 1);
    if (tag.empty()) return "empty tag";
    if (tag[0] == '/') {
      if (open.empty() || open.back() != tag.substr(1)) return "mismatched </" + tag.substr(1) + ">";
      open.pop_back();
    } else if (tag.back() != '/') {
      open.push_back(tag.substr(0, tag.find_first_of(" \t\n")));
    }
    i = end;
  }
  return open.empty() ? "" : "unclosed <" + open.back() + ">";
}

// Text of every <text class="CLS"> element, exponent tspans written as "^": "2×10^7".
std::vector<std::string> texts(const std::string& svg, const std::string& cls) {
  std::vector<std::string> out;
  const std::regex re("<text class=\"" + cls + "\"[^>]*>(.*?)</text>");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it) {
    std::string t = std::regex_replace((*it)[1].str(), std::regex("<tspan[^>]*>"), "^");
    out.push_back(std::regex_replace(t, std::regex("</tspan>"), ""));
  }
  return out;
}

// The element group <g class="CLS" ...> ... </g> (groups are not nested in the output).
std::string group(const std::string& svg, const std::string& cls) {
  size_t start = svg.find("<g class=\"" + cls + "\"");
  if (start == std::string::npos) return "";
  return svg.substr(start, svg.find("</g>", start) - start);
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

std::vector<std::pair<double, double>> polyline(const std::string& svg, size_t index) {
  std::vector<std::pair<double, double>> pts;
  const std::regex re(R"(<polyline [^>]*points="([^"]*)\")");
  auto it = std::sregex_iterator(svg.begin(), svg.end(), re);
  std::advance(it, index);
  std::string p = (*it)[1].str();
  const std::regex pair_re(R"((-?[0-9.]+),(-?[0-9.]+))");
  for (auto pi = std::sregex_iterator(p.begin(), p.end(), pair_re); pi != std::sregex_iterator(); ++pi) {
    pts.emplace_back(std::stod((*pi)[1].str()), std::stod((*pi)[2].str()));
  }
  return pts;
}

double hline_y(const std::string& svg) {
  std::smatch m;
  const std::regex re(R"(<line class="hline" [^>]*y1="([^"]*)\")");
  EXPECT_TRUE(std::regex_search(svg, m, re));
  return std::stod(m[1].str());
}

TEST(SvgChart, StandaloneWellFormedDocument) {
  for (bool log : {true, false}) {
    const std::string svg = render_svg(reference_spec(log));
    EXPECT_EQ(xml_problem(svg), "") << svg;
    EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
    EXPECT_NE(svg.find(R"(xmlns="http://www.w3.org/2000/svg")"), std::string::npos);
    EXPECT_NE(svg.find(R"(width="700" height="500" viewBox="0 0 700 500")"), std::string::npos);
    EXPECT_NE(svg.find("sans-serif"), std::string::npos);
    EXPECT_NE(svg.find(R"(fill="white")"), std::string::npos);
    EXPECT_EQ(svg.find("nan"), std::string::npos);
    EXPECT_EQ(svg.find("inf"), std::string::npos);
    EXPECT_EQ(texts(svg, "title"), (std::vector<std::string>{
        "Active vs Total Parameters per Token", "(emb_dim=7168, hidden_dim=28672, ffn=swiglu, top_k=8)"}));
    EXPECT_EQ(texts(svg, "xlabel"), std::vector<std::string>{"Number of experts (top_k = 8)"});
    EXPECT_EQ(texts(svg, "ylabel"), std::vector<std::string>{"Parameters"});
    // Palette order: first series blue, second orange; markers of each kind per point.
    EXPECT_LT(svg.find("#1f77b4"), svg.find("#ff7f0e"));
    const std::string data = group(svg, "data");
    EXPECT_EQ(count(data, "<circle"), 12u);
    EXPECT_EQ(count(data, "<rect"), 12u);
    EXPECT_EQ(count(group(svg, "legend"), "<circle"), 1u);
    EXPECT_EQ(count(group(svg, "legend"), "<text"), 3u);
  }
}

TEST(SvgChart, EscapesEveryText) {
  ChartSpec spec;
  spec.title = "A<B & \"C\"\n'D' > E";
  spec.x_label = "x & <y>";
  spec.y_label = "\"quoted\"";
  spec.series = {make_series("s<1>&", {1, 2, 3}, {1, 4, 9}, Marker::circle)};
  spec.series[0].color = "#123\"456";
  spec.hlines = {make_hline("h & 'l'", 2)};
  const std::string svg = render_svg(spec);
  EXPECT_EQ(xml_problem(svg), "") << svg;
  EXPECT_EQ(texts(svg, "title"), (std::vector<std::string>{"A&lt;B &amp; &quot;C&quot;", "&apos;D&apos; &gt; E"}));
  EXPECT_EQ(texts(svg, "xlabel"), std::vector<std::string>{"x &amp; &lt;y&gt;"});
  EXPECT_EQ(texts(svg, "ylabel"), std::vector<std::string>{"&quot;quoted&quot;"});
  EXPECT_NE(svg.find(">s&lt;1&gt;&amp;</text>"), std::string::npos);
  EXPECT_NE(svg.find(">h &amp; &apos;l&apos;</text>"), std::string::npos);
  EXPECT_NE(svg.find("#123&quot;456"), std::string::npos);
}

TEST(SvgChart, LogAxisLabelsDecades) {
  ChartSpec spec;
  spec.y_log = true;
  spec.series = {make_series("s", {0, 1, 2, 3}, {1e3, 1e4, 1e5, 1e6})};
  const std::string svg = render_svg(spec);
  EXPECT_EQ(texts(svg, "ytick"), (std::vector<std::string>{"10^3", "10^4", "10^5", "10^6"}));
  // Decades, minor ticks 2..9 between them, and 6e2..9e2 inside the margin below 10^3 (the data
  // keeps 30 px from the frame: 0.28 of this plot's 3.6 decades).
  EXPECT_EQ(count(group(svg, "y-axis"), "<line"), 4u + 3 * 8 + 4);
  // Negative exponents use a typographic minus.
  spec.series[0].y = {1e-6, 1e-5, 1e-4, 1e-3};
  EXPECT_EQ(texts(render_svg(spec), "ytick"),
            (std::vector<std::string>{"10^\u22126", "10^\u22125", "10^\u22124", "10^\u22123"}));
}

TEST(SvgChart, LogAxisInsideOneDecadeStillLabelsTwoTicks) {
  for (auto [lo, hi] : {std::pair{2e7, 4e7}, {2.1e7, 2.9e7}, {1.5e7, 6e7}, {3.3e7, 3.3e7}}) {
    ChartSpec spec;
    spec.y_log = true;
    spec.series = {make_series("s", {1, 2}, {lo, hi})};
    const std::string svg = render_svg(spec);
    const auto labels = texts(svg, "ytick");
    EXPECT_GE(labels.size(), 2u) << lo << ".." << hi;
    // Constant data widens to the enclosing decades 10^7..10^8, as matplotlib does.
    for (const std::string& l : labels) EXPECT_TRUE(std::regex_match(l, std::regex("([1-9]×)?10\\^[78]"))) << l;
    EXPECT_EQ(xml_problem(svg), "");
  }
}

TEST(SvgChart, LinearLabelsAreReadable) {
  const std::string svg = render_svg(reference_spec(false));
  EXPECT_EQ(texts(svg, "ytick"), (std::vector<std::string>{"0", "100M", "200M", "300M", "400M", "500M", "600M"}));
  EXPECT_EQ(texts(svg, "xtick"), (std::vector<std::string>{"0", "100", "200", "300", "400", "500"}));
  EXPECT_EQ(svg.find("e+"), std::string::npos);

  ChartSpec spec;  // billions share one unit; fractions get just enough decimals
  spec.series = {make_series("s", {0, 0.5}, {0, 1.4e9})};
  EXPECT_EQ(texts(render_svg(spec), "ytick"), (std::vector<std::string>{"0", "0.2B", "0.4B", "0.6B", "0.8B", "1.0B", "1.2B", "1.4B"}));
  EXPECT_EQ(texts(render_svg(spec), "xtick"), (std::vector<std::string>{"0.0", "0.1", "0.2", "0.3", "0.4", "0.5"}));
  spec.series = {make_series("s", {0, 1}, {-3e-5, 3e-5})};
  const auto tiny = texts(render_svg(spec), "ytick");
  EXPECT_EQ(tiny.front(), "\u22123×10^\u22125");
  EXPECT_EQ(tiny.back(), "3×10^\u22125");
}

TEST(SvgChart, PixelsFollowTheData) {
  for (bool log : {true, false}) {
    const std::string svg = render_svg(reference_spec(log));
    const ChartSpec spec = reference_spec(log);
    const auto active = polyline(svg, 0), total = polyline(svg, 1);
    ASSERT_EQ(active.size(), 12u);
    ASSERT_EQ(total.size(), 12u);
    for (size_t i = 1; i < 12; ++i) {
      EXPECT_GT(active[i].first, active[i - 1].first);  // x grows with E
      EXPECT_EQ(active[i].first, total[i].first);
      if (i > 3) {
        EXPECT_GT(active[i].second, active[i - 1].second);  // E > 8: active falls = moves down
      }
    }
    EXPECT_LT(total[11].second, total[0].second);  // total rises slightly = moves up
    // Every point sits on one affine map of x and of y (or log10 y) to pixels, fitted on the
    // extremes: the same scale for all series, up is larger y, right is larger x.
    auto t = [&](double v) { return log ? std::log10(v) : v; };
    const auto& a = spec.series[0];
    const double sy = (active[11].second - active[0].second) / (t(a.y[11]) - t(a.y[0]));
    const double sx = (active[11].first - active[0].first) / (a.x[11] - a.x[0]);
    EXPECT_LT(sy, 0);
    EXPECT_GT(sx, 0);
    for (size_t s = 0; s < 2; ++s) {
      const auto& pts = s == 0 ? active : total;
      for (size_t i = 0; i < 12; ++i) {
        EXPECT_NEAR(pts[i].second, active[0].second + sy * (t(spec.series[s].y[i]) - t(a.y[0])), 0.02);
        EXPECT_NEAR(pts[i].first, active[0].first + sx * (spec.series[s].x[i] - a.x[0]), 0.02);
      }
    }
    EXPECT_NEAR(hline_y(svg), active[0].second + sy * (t(spec.hlines[0].y) - t(a.y[0])), 0.02);
  }
  // A reference line at 5.5 lies strictly between the pixels of 5 and 6, on both scales.
  for (bool log : {true, false}) {
    ChartSpec spec;
    spec.y_log = log;
    spec.series = {make_series("s", {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10})};
    spec.hlines = {make_hline("h", 5.5)};
    const std::string svg = render_svg(spec);
    const auto pts = polyline(svg, 0);
    const double h = hline_y(svg);
    EXPECT_LT(h, pts[4].second);
    EXPECT_GT(h, pts[5].second);
    // Log spacing: equal ratios give equal pixel steps; linear: equal differences do.
    const size_t i = log ? 4 : 8, j = 9;  // 1→2 vs 5→10 (same ratio) or 9→10 (same step)
    EXPECT_NEAR(pts[0].second - pts[1].second, pts[i].second - pts[j].second, 0.05);
  }
}

TEST(SvgChart, DegenerateDataStaysFinite) {
  std::vector<ChartSpec> specs(4);
  specs[0].series = {make_series("const", {1, 2, 3}, {5, 5, 5}, Marker::circle)};
  specs[1].series = {make_series("point", {3}, {7}, Marker::square)};
  specs[2].series = {make_series("zero", {0, 0}, {0, 0})};
  specs[3] = specs[1];
  specs[3].x_log = specs[3].y_log = true;
  for (const ChartSpec& spec : specs) {
    const std::string svg = render_svg(spec);
    EXPECT_EQ(xml_problem(svg), "");
    EXPECT_EQ(svg.find("nan"), std::string::npos) << svg;
    EXPECT_EQ(svg.find("inf"), std::string::npos) << svg;
    EXPECT_GE(texts(svg, "ytick").size(), 2u);
    EXPECT_GE(texts(svg, "xtick").size(), 2u);
  }
  const std::string svg = render_svg(specs[0]);  // constant line sits mid-plot
  const auto pts = polyline(svg, 0);
  EXPECT_EQ(pts[0].second, pts[2].second);
  std::smatch frame;
  ASSERT_TRUE(std::regex_search(svg, frame, std::regex(R"re(class="frame" x="[^"]*" y="([^"]*)" width="[^"]*" height="([^"]*)")re")));
  EXPECT_NEAR(pts[0].second, std::stod(frame[1]) + std::stod(frame[2]) / 2, 0.5);
  EXPECT_EQ(count(group(svg, "data"), "<circle"), 3u);
  EXPECT_EQ(count(group(render_svg(specs[1]), "data"), "<rect"), 1u);
}

struct Box {
  double x = 0, y = 0, w = 0, h = 0;
  bool contains(double px, double py) const { return px >= x && px <= x + w && py >= y && py <= y + h; }
};

Box rect_after(const std::string& svg, const std::string& marker) {
  std::smatch m;
  const std::string from = svg.substr(svg.find(marker));
  EXPECT_TRUE(std::regex_search(from, m, std::regex(R"re(<rect [^>]*x="([^"]*)" y="([^"]*)" width="([^"]*)" height="([^"]*)")re")));
  return {std::stod(m[1]), std::stod(m[2]), std::stod(m[3]), std::stod(m[4])};
}

TEST(SvgChart, DataKeepsClearOfTheFrame) {
  for (bool log : {true, false}) {
    const std::string svg = render_svg(reference_spec(log));
    const Box frame = rect_after(svg, "<rect class=\"frame\"");
    for (size_t i = 0; i < 2; ++i)
      for (const auto& [x, y] : polyline(svg, i)) {
        EXPECT_GE(y, frame.y + 29.9) << "series " << i << " at " << x << " (log " << log << ")";
        EXPECT_LE(y, frame.y + frame.h - 29.9) << "series " << i << " at " << x << " (log " << log << ")";
      }
    // The dotted dense line is drawn over the series (the total runs along it), markers over both.
    const std::string data = group(svg, "data");
    EXPECT_GT(data.find("<line class=\"hline\""), data.rfind("<polyline"));
    EXPECT_GT(data.find("class=\"marker\""), data.find("<line class=\"hline\""));
  }
}

TEST(SvgChart, LegendLeavesTheDataUncovered) {
  // Four noisy series over the whole plot: no spot inside is free, so the legend goes above it.
  ChartSpec spec;
  spec.title = "expert load";
  spec.width = 760, spec.height = 400;
  for (int s = 0; s < 4; ++s) {
    Series series = make_series("a long label for run number " + std::to_string(s) + " (α=0.01)", {}, {});
    for (int i = 0; i < 150; ++i) {
      series.x.push_back(i);
      series.y.push_back(1.5 + 2.5 * std::abs(std::sin(0.37 * i * (s + 1) + s)));
    }
    spec.series.push_back(series);
  }
  const std::string svg = render_svg(spec);
  const Box frame = rect_after(svg, "<rect class=\"frame\""), legend = rect_after(svg, "<g class=\"legend\"");
  EXPECT_LE(legend.y + legend.h, frame.y) << "the legend sits above the plot";
  for (size_t i = 0; i < 4; ++i)
    for (const auto& [x, y] : polyline(svg, i)) EXPECT_FALSE(legend.contains(x, y)) << x << "," << y;
  EXPECT_EQ(count(group(svg, "legend"), "<text"), 4u);
  // A free corner keeps the legend inside, as matplotlib's "best".
  spec.series.resize(1);
  spec.series[0].y.assign(150, 1.0);
  spec.series[0].y.back() = 0.0;  // low line: the upper right is free
  const std::string inside = render_svg(spec);
  const Box f2 = rect_after(inside, "<rect class=\"frame\""), l2 = rect_after(inside, "<g class=\"legend\"");
  EXPECT_GT(l2.y, f2.y);
  EXPECT_LT(l2.x + l2.w, f2.x + f2.w);
}

void expect_throw(const ChartSpec& spec, const std::string& fragment) {
  try {
    render_svg(spec);
    ADD_FAILURE() << "no exception; expected " << fragment;
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("[svg_chart] ", 0), 0u) << msg;
    EXPECT_NE(msg.find(fragment), std::string::npos) << msg << "\n  expected: " << fragment;
  }
}

TEST(SvgChart, RejectsBadInput) {
  ChartSpec spec;
  expect_throw(spec, "empty chart");
  spec.series = {make_series("none", {}, {})};
  spec.hlines = {make_hline("h", 1)};
  expect_throw(spec, "empty chart");

  const Series good = make_series("good", {1, 2, 3}, {1, 2, 3});
  spec.hlines.clear();
  spec.series = {make_series("bad", {1, 2, 3}, {1, 2})};
  expect_throw(spec, "series 'bad' (#0): x has 3 values but y has 2");
  spec.series = {good, make_series("bad", {1, 2, 3}, {1, 2, NAN})};
  expect_throw(spec, "series 'bad' (#1): y[2] is not finite");
  spec.series = {make_series("bad", {1, INFINITY}, {1, 2})};
  expect_throw(spec, "series 'bad' (#0): x[1] is not finite");

  spec.series = {make_series("bad", {1, 2}, {1, 0})};
  spec.y_log = true;
  expect_throw(spec, "series 'bad' (#0): y[1] = 0");
  expect_throw(spec, "<= 0 on a log y axis");
  spec.y_log = false, spec.x_log = true;
  spec.series = {make_series("bad", {-1, 2}, {1, 1})};
  expect_throw(spec, "series 'bad' (#0): x[0] = -1");

  spec.x_log = false, spec.y_log = true;
  spec.series = {good};
  spec.hlines = {make_hline("base", -2)};
  expect_throw(spec, "hline 'base' (#0): y = -2");
  spec.y_log = false;
  spec.hlines = {make_hline("base", NAN)};
  expect_throw(spec, "hline 'base' (#0): y is not finite");

  spec.hlines.clear();
  spec.width = 50;
  expect_throw(spec, "chart size 50x500 is too small");
}

}  // namespace
