// Unicode pieces the tokenizers need, on UTF-8 strings: code points, normal forms (utf8proc),
// character classes as Rust's `char` methods define them (the reference tokenizers are Rust),
// GPT-2's byte <-> printable-character map, and a PCRE2 regex (the Split pre-tokenizers' patterns
// are Oniguruma's dialect; the constructs they use mean the same in PCRE2 with UTF + UCP).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moe::text {

// The code point at s[i] (s is well-formed UTF-8) and its length in bytes.
char32_t code_point_at(std::string_view s, size_t i, size_t& len);
void append_utf8(std::string& out, char32_t c);
size_t count_code_points(std::string_view s);

enum class NormalForm { nfc, nfd, nfkc, nfkd };
std::string normalize(std::string_view s, NormalForm form);  // s well-formed
std::string lowercase(std::string_view s);                    // full Unicode lowercase mapping
std::string strip_accents(std::string_view s);                // drops combining marks (Mn)

bool is_whitespace(char32_t c);    // the White_Space property (Rust char::is_whitespace)
bool is_alphanumeric(char32_t c);  // categories L* and N* (Rust char::is_alphanumeric)
bool is_punctuation(char32_t c);   // categories P* (tokenizers' is_punctuation also takes ASCII symbols)

// GPT-2's map: each byte is a printable character ('!'..'~', '¡'..'¬', '®'..'ÿ' as themselves,
// the others from U+0100 on), so any byte string becomes a string of vocabulary characters.
const std::string& byte_to_unicode(uint8_t b);  // UTF-8 of the character
int unicode_to_byte(char32_t c);                // -1 when c is not in the map

// A compiled PCRE2 pattern (UTF, UCP, JIT when available).
class Regex {
 public:
  explicit Regex(const std::string& pattern);  // InvalidInput naming the pattern if it does not compile
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;
  // Every non-empty, non-overlapping match, leftmost first: [begin, end) byte offsets.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view s) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string regex_escape(std::string_view literal);  // a literal string as a PCRE2 pattern

}  // namespace moe::text
