// Number formatting shared by the text reports.
#pragma once

#include <cstdint>
#include <string>

namespace moe::util {

// 1234567 -> "1,234,567" (Python's f"{n:,}").
std::string group_thousands(int64_t n);

// Python's f"{x:,.{decimals}f}" for finite x: correctly rounded, with thousands separators.
std::string fixed_grouped(double x, int decimals);

// Python's f"{bytes / 1000**3:,.2f} GB": the quotient of the exact integers, rounded once.
std::string gigabytes(int64_t bytes);

// Python's f"{label:23}" then ": ": the label left-justified to 23 characters.
std::string label_line(const std::string& label, const std::string& value);

// Human units for large counts: 46.70B, 12.88B, 131.07M.
std::string short_count(int64_t n);

// Human bytes in binary units: 1.50 GiB, 512.00 KiB, 12 B.
std::string binary_bytes(double bytes);

}  // namespace moe::util
