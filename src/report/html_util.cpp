// Escaping, number formatting and colours for the HTML report.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

#include "moe/error.h"
#include "report_internal.h"
#include "util/format.h"

namespace moe::report {

namespace {

// Pale enough for black text on top (the coloured-text figure), distinct from each other:
// tab20's light tones, then six brighter ones.
constexpr std::array<const char*, 16> kExpertPalette = {
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7",
    "#dbdb8d", "#9edae5", "#ffe119", "#42d4f4", "#bfef45", "#f58231", "#dcbeff", "#fffac8"};

// Length of the valid UTF-8 sequence at s[i], or 0 if it is not one.
size_t utf8_len(std::string_view s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  if (n == 2 && b < 0xC2) return 0;  // overlong
  return n;
}

}  // namespace

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    const size_t n = utf8_len(s, i);
    if (n == 0) {
      out += "\uFFFD";
      ++i;
      continue;
    }
    if (n > 1) {
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    ++i;
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default:
        if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7F) out += c;
        else if (c == '\n' || c == '\t') out += c;
    }
  }
  return out;
}

std::string expert_colour(int e, int n_experts) {
  if (n_experts <= static_cast<int>(kExpertPalette.size())) return kExpertPalette[static_cast<size_t>(e) % kExpertPalette.size()];
  // Golden-angle hue steps keep neighbours apart; three lightness levels separate close hues.
  const double hue = std::fmod(e * 137.508, 360.0);
  const int light = 66 + 8 * (e % 3);
  char buf[48];
  std::snprintf(buf, sizeof buf, "hsl(%.1f, 70%%, %d%%)", hue, light);
  return buf;
}

namespace detail {

std::string fmt_int(int64_t v) { return util::group_thousands(v); }

std::string fmt_num(double v, int digits) {
  if (!std::isfinite(v)) return std::isnan(v) ? "NaN" : (v > 0 ? "inf" : "-inf");
  if (v == std::floor(v) && std::fabs(v) < 1e15) return util::group_thousands(static_cast<int64_t>(v));
  const double a = std::fabs(v);
  const int mag = a > 0 ? static_cast<int>(std::floor(std::log10(a))) : 0;
  const int decimals = std::clamp(digits - 1 - mag, 0, 8);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string fmt_float(double v, int digits) {
  std::string s = fmt_num(v, digits);
  if (!std::isfinite(v)) return s;
  if (s.find('.') == std::string::npos) return std::fabs(v) < 1e6 ? s + ".0" : s;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s += '0';
  return s;
}

std::string fmt_pct(double share, int decimals) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f%%", decimals, 100 * share);
  return buf;
}

std::string fmt_bytes(double bytes) { return util::binary_bytes(bytes); }

std::string cell(const json& v) {
  if (v.is_string()) return html_escape(v.get<std::string>());
  if (v.is_number_integer()) return fmt_int(v.get<int64_t>());
  if (v.is_number()) return fmt_float(v.get<double>());
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_null()) return "n/a";
  return html_escape(v.dump());
}

std::string command_html(const std::string& command) {
  std::vector<std::string> words;  // split at every space: joined again, the text is unchanged
  for (size_t a = 0;;) {
    const size_t b = std::min(command.find(' ', a), command.size());
    words.push_back(command.substr(a, b - a));
    if (b == command.size()) break;
    a = b + 1;
  }
  auto flag = [](const std::string& w) { return !w.empty() && w[0] == '-'; };
  std::string o = "<code>";
  for (size_t i = 0; i < words.size(); ++i) {
    std::string group = words[i];
    if (flag(words[i]) && i + 1 < words.size() && !words[i + 1].empty() && !flag(words[i + 1])) group += " " + words[++i];
    o += (i > 0 && o.size() > 6 ? " " : "") + std::string("<span class=\"nw\">") + html_escape(group) + "</span>";
  }
  return o + "</code>";
}

std::string svg_inline(const std::string& svg, const std::string& id_suffix) {
  const size_t p = svg.find("<svg");
  std::string s = p == std::string::npos ? svg : svg.substr(p);
  if (id_suffix.empty()) return s;
  // Element ids must be unique in the page: rename each id and its url(#id) / href="#id" references.
  std::vector<std::string> ids;
  for (size_t q = s.find(" id=\""); q != std::string::npos; q = s.find(" id=\"", q + 1)) {
    const size_t a = q + 5, b = s.find('"', a);
    if (b != std::string::npos) ids.push_back(s.substr(a, b - a));
  }
  auto replace_all = [&s](const std::string& from, const std::string& to) {
    for (size_t q = s.find(from); q != std::string::npos; q = s.find(from, q + to.size())) s.replace(q, from.size(), to);
  };
  for (const std::string& id : ids) {
    replace_all(" id=\"" + id + "\"", " id=\"" + id + id_suffix + "\"");
    replace_all("url(#" + id + ")", "url(#" + id + id_suffix + ")");
    replace_all("href=\"#" + id + "\"", "href=\"#" + id + id_suffix + "\"");
  }
  return s;
}

// Interpolates Blues-like stops: #f7fbff -> #6baed6 -> #08306b.
std::string scale_colour(double t) {
  t = std::clamp(t, 0.0, 1.0);
  const double a[3] = {0xf7, 0xfb, 0xff}, b[3] = {0x6b, 0xae, 0xd6}, c[3] = {0x08, 0x30, 0x6b};
  double rgb[3];
  for (int i = 0; i < 3; ++i) rgb[i] = t < 0.5 ? a[i] + (b[i] - a[i]) * t * 2 : b[i] + (c[i] - b[i]) * (t - 0.5) * 2;
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", static_cast<int>(std::lround(rgb[0])),
                static_cast<int>(std::lround(rgb[1])), static_cast<int>(std::lround(rgb[2])));
  return buf;
}

bool dark_on_scale(double t) { return t > 0.55; }

const json& need(const json& j, const std::string& k, const std::string& where) {
  if (!j.is_object() || !j.contains(k)) throw InvalidInput("[report] " + where + ": missing '" + k + "'");
  return j.at(k);
}

}  // namespace detail
}  // namespace moe::report
