#include "moe/tokenizer.h"

#include "moe/error.h"

namespace moe {

std::vector<int32_t> ByteTokenizer::encode(std::string_view text) {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::string ByteTokenizer::decode(std::span<const int32_t> ids) {
  std::string out(ids.size(), '\0');
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= kVocabSize) {
      throw InvalidInput("[tokenizer] token id " + std::to_string(ids[i]) + " at index " + std::to_string(i) +
                         " is outside the byte vocabulary [0, 256)");
    }
    out[i] = static_cast<char>(ids[i]);
  }
  return out;
}

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

enum class Seq { valid, invalid, incomplete };

// The well-formed sequence starting at s[i] (Unicode Table 3-7). `len` is its length when valid,
// or the length of the maximal subpart to replace when invalid / cut off by the end of input.
Seq next_sequence(std::string_view s, size_t i, size_t& len) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  len = 1;
  if (c < 0x80) return Seq::valid;
  int need = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the first continuation byte
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return Seq::invalid;
  }
  for (int k = 1; k <= need; ++k) {
    if (i + k >= s.size()) return Seq::incomplete;
    const unsigned char ck = b(i + k);
    const bool ok = k == 1 ? (ck >= lo && ck <= hi) : (ck >= 0x80 && ck <= 0xBF);
    if (!ok) return Seq::invalid;  // the bad byte starts the next sequence
    ++len;
  }
  return Seq::valid;
}

void append_char(std::string& out, std::string_view s, size_t i, size_t len, bool escape_controls) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  if (escape_controls && len == 1 && ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7F)) {
    const unsigned cp = c == 0x7F ? 0x2421 : 0x2400 + c;  // Control Pictures block, 3 bytes in UTF-8
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    return;
  }
  out.append(s.substr(i, len));
}

// Converts s into out; stops before an incomplete tail when `hold_tail`, returning its start.
size_t convert(std::string_view s, std::string& out, bool escape_controls, bool hold_tail) {
  size_t i = 0;
  while (i < s.size()) {
    size_t len = 0;
    const Seq kind = next_sequence(s, i, len);
    if (kind == Seq::valid) {
      append_char(out, s, i, len, escape_controls);
    } else if (kind == Seq::incomplete && hold_tail) {
      return i;
    } else {
      out.append(kReplacement);
    }
    i += len;
  }
  return i;
}

}  // namespace

size_t first_invalid_utf8(std::string_view bytes) {
  for (size_t i = 0, len = 0; i < bytes.size(); i += len)
    if (next_sequence(bytes, i, len) != Seq::valid) return i;
  return std::string_view::npos;
}

std::string printable_utf8(std::string_view bytes, bool escape_controls) {
  std::string out;
  out.reserve(bytes.size());
  convert(bytes, out, escape_controls, false);
  return out;
}

std::string Utf8Stream::push(std::string_view bytes) {
  pending_.append(bytes);
  std::string out;
  const size_t done = convert(pending_, out, escape_controls_, true);
  pending_.erase(0, done);
  return out;
}

std::string Utf8Stream::flush() {
  std::string out;
  convert(pending_, out, escape_controls_, false);
  pending_.clear();
  return out;
}

}  // namespace moe
