#include "util/format.h"

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
  std::string padded = label;
  if (padded.size() < 23) padded.append(23 - padded.size(), ' ');
  return padded + ": " + value + "\n";
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
