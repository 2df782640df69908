// Number formatting shared by the text reports.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace moe::util {

// 1234567 -> "1,234,567" (Python's f"{n:,}").
std::string group_thousands(int64_t n);

// Python's f"{x:,.{decimals}f}" for finite x: correctly rounded, with thousands separators.
std::string fixed_grouped(double x, int decimals);

// Python's f"{bytes / 1000**3:,.2f} GB": the quotient of the exact integers, rounded once.
std::string gigabytes(int64_t bytes);

// Python's f"{label:23}" then ": ": the label left-justified to 23 characters (code points).
std::string label_line(const std::string& label, const std::string& value);

// Width of UTF-8 text in columns, counted as code points as Python's len() and str.ljust do:
// "×", "α" and "γ" are one column each (wide CJK characters are not special-cased).
size_t display_width(std::string_view s);
// `s` padded with spaces to `width` columns: text left-aligned (pad_right) or right-aligned (pad_left).
std::string pad_right(std::string_view s, size_t width);
std::string pad_left(std::string_view s, size_t width);

// A plain-text table: every column as wide as its widest cell, the first `left_columns` columns
// left-aligned and the rest right-aligned, two spaces between columns, each row ending in '\n'.
std::string text_table(const std::vector<std::vector<std::string>>& rows, size_t left_columns = 1);

// x with `decimals` digits after the point, or "n/a" when there is no value (NaN, ±inf).
std::string fixed_or_na(double x, int decimals);

// The longest prefix of `text` of at most `max_bytes` bytes that ends after white space (so that
// what follows starts a word), else the first word if white space follows it; when that word alone
// is longer, a cut on a UTF-8 character boundary.
std::string word_prefix(std::string_view text, size_t max_bytes);

// A word for a POSIX shell: as is when it holds only safe characters, else in single quotes.
std::string shell_quote(std::string_view word);

// "2025-06-01T12:34:56Z": the time in UTC, ISO 8601 (what files record); and "2025-06-01 12:34 UTC"
// from such a string (what people read; other strings are returned unchanged).
std::string utc_timestamp(std::time_t t);
std::string readable_timestamp(const std::string& iso);

// Human units for large counts: 46.70B, 12.88B, 131.07M.
std::string short_count(int64_t n);

// Human bytes in binary units: 1.50 GiB, 512.00 KiB, 12 B.
std::string binary_bytes(double bytes);

}  // namespace moe::util
