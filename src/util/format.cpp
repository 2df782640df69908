#include "util/format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace moe::util {

namespace {

// Inserts ',' every three digits into the integer part of a plain decimal string.
std::string group_digits(const std::string& plain) {
  size_t start = (!plain.empty() && plain[0] == '-') ? 1 : 0;
  size_t end = plain.find('.');
  if (end == std::string::npos) end = plain.size();
  std::string out = plain.substr(0, start);
  for (size_t i = start; i < end; ++i) {
    out += plain[i];
    size_t left = end - i - 1;
    if (left > 0 && left % 3 == 0) out += ',';
  }
  out += plain.substr(end);
  return out;
}

}  // namespace

std::string group_thousands(int64_t n) { return group_digits(std::to_string(n)); }

std::string fixed_grouped(double x, int decimals) {
  char buf[400];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, x);  // glibc rounds the binary value exactly
  return group_digits(buf);
}

std::string gigabytes(int64_t bytes) {
  // Python's int/int is the exactly-rounded quotient; long double holds every int64 exactly, so
  // one division then one narrowing reproduces it (a double-rounding tie needs > 2^53 bytes).
  double gb = static_cast<double>(static_cast<long double>(bytes) / 1.0e9L);
  return fixed_grouped(gb, 2) + " GB";
}

std::string label_line(const std::string& label, const std::string& value) {
  return pad_right(label, 23) + ": " + value + "\n";
}

size_t display_width(std::string_view s) {
  size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;  // continuation bytes add nothing
  return n;
}

std::string pad_right(std::string_view s, size_t width) {
  const size_t w = display_width(s);
  return std::string(s) + std::string(w < width ? width - w : 0, ' ');
}

std::string pad_left(std::string_view s, size_t width) {
  const size_t w = display_width(s);
  return std::string(w < width ? width - w : 0, ' ') + std::string(s);
}

std::string text_table(const std::vector<std::vector<std::string>>& rows, size_t left_columns) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], display_width(row[c]));
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      if (c > 0) line += "  ";
      line += c < left_columns ? pad_right(row[c], widths[c]) : pad_left(row[c], widths[c]);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();  // a short last left column
    out += line + "\n";
  }
  return out;
}

std::string fixed_or_na(double x, int decimals) {
  if (!std::isfinite(x)) return "n/a";
  char buf[400];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, x);
  return buf;
}

std::string word_prefix(std::string_view t, size_t max_bytes) {
  if (t.size() <= max_bytes) return std::string(t);
  const auto space = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; };
  for (size_t n = max_bytes; n > 0; --n)  // after white space: what follows starts a word
    if (space(t[n - 1])) return std::string(t.substr(0, n));
  if (space(t[max_bytes])) return std::string(t.substr(0, max_bytes));  // one word, then white space
  size_t n = max_bytes;
  while (n > 0 && (static_cast<unsigned char>(t[n]) & 0xC0) == 0x80) --n;  // whole characters only
  return std::string(t.substr(0, n));
}

std::string shell_quote(std::string_view word) {
  const bool safe = !word.empty() && word.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                           "0123456789_-+=,./:@%") == std::string_view::npos;
  if (safe) return std::string(word);
  std::string out = "'";
  for (const char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string utc_timestamp(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string readable_timestamp(const std::string& iso) {
  // YYYY-MM-DDTHH:MM:SSZ
  if (iso.size() != 20 || iso[10] != 'T' || iso[19] != 'Z') return iso;
  return iso.substr(0, 10) + " " + iso.substr(11, 5) + " UTC";
}

std::string short_count(int64_t n) {
  const double v = static_cast<double>(n);
  const double a = std::fabs(v);
  char buf[64];
  if (a >= 1e12) std::snprintf(buf, sizeof buf, "%.2fT", v / 1e12);
  else if (a >= 1e9) std::snprintf(buf, sizeof buf, "%.2fB", v / 1e9);
  else if (a >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (a >= 1e3) std::snprintf(buf, sizeof buf, "%.2fK", v / 1e3);
  else std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
  return buf;
}

std::string binary_bytes(double bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (std::fabs(bytes) >= 1024.0 && u < 5) {
    bytes /= 1024.0;
    ++u;
  }
  char buf[64];
  if (u == 0) std::snprintf(buf, sizeof buf, "%.0f B", bytes);
  else std::snprintf(buf, sizeof buf, "%.2f %s", bytes, units[u]);
  return buf;
}

}  // namespace moe::util
