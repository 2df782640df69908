// Helpers shared by the report's sections (src/report/*.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "moe/report.h"

namespace moe::report::detail {

using nlohmann::json;

// "1,234,567"; 0.1234 -> "0.1234" with `digits` significant digits (no exponent for sane values).
std::string fmt_int(int64_t v);
std::string fmt_num(double v, int digits = 4);
// A float for a table: up to `digits` significant digits, trailing zeros trimmed, at least one decimal.
std::string fmt_float(double v, int digits = 4);
std::string fmt_pct(double share, int decimals = 0);  // 0.123 -> "12%"
std::string fmt_bytes(double bytes);                  // binary units

// A JSON cell for a table: strings escaped, numbers formatted, null (no value) as "n/a".
std::string cell(const json& v);

// A shell command as <code>, escaped, wrapping only between a flag with its value and the next
// (never inside "--eval_every" or a path with hyphens).
std::string command_html(const std::string& command);

// An SVG document made embeddable: the XML declaration removed and, with a suffix, every element
// id (and its references) renamed so that several charts can share a page.
std::string svg_inline(const std::string& svg, const std::string& id_suffix = "");

// Colour on a white -> dark-blue scale for t in [0, 1], and whether text on it should be white.
std::string scale_colour(double t);
bool dark_on_scale(double t);

// Experts × columns heatmap of values in [0, vmax], with the numbers in the cells and a colour
// bar. values: [rows][cols]; extra: an optional text column at the right (e.g. token counts).
std::string heatmap_svg(const std::vector<std::vector<double>>& values, const std::vector<std::string>& row_labels,
                        const std::vector<std::string>& col_labels, const std::vector<std::string>& extra,
                        const std::string& extra_label, double vmax);

// Grouped vertical bars: groups (e.g. layers) × series, values in [0, vmax].
std::string bar_chart_svg(const std::vector<std::string>& groups, const std::vector<std::string>& series,
                          const std::vector<std::vector<double>>& values, double vmax, const std::string& y_label);

// Sections: each returns "" when there is nothing to show. `toc` collects (id, title) for the contents list.
struct TocEntry {
  std::string id, title;  // title: HTML (escaped)
  bool sub = false;       // listed under the entry before it
};
using Toc = std::vector<TocEntry>;
std::string model_section(const json& model, Toc& toc);
std::string analysis_section(const json& analysis, Toc& toc);
std::string experiments_section(const std::vector<Experiment>& experiments, Toc& toc);
std::string samples_section(const json& samples, Toc& toc);

// Reads key `k` of `j`, throwing InvalidInput("[report] <where>: missing '<k>'").
const json& need(const json& j, const std::string& k, const std::string& where);

}  // namespace moe::report::detail
