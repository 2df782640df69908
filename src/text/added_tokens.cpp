#include "text/added_tokens.h"

#include "text/unicode.h"

namespace moe::text {

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens, std::vector<std::string> patterns)
    : tokens_(std::move(tokens)), trie_(1) {
  for (size_t t = 0; t < patterns.size(); ++t) {
    lengths_.push_back(patterns[t].size());
    if (patterns[t].empty()) continue;  // an empty token can never be matched
    int node = 0;
    for (char ch : patterns[t]) {
      const auto b = static_cast<uint8_t>(ch);
      int child = -1;
      for (const auto& [byte, n] : trie_[static_cast<size_t>(node)].next)
        if (byte == b) child = n;
      if (child < 0) {
        child = static_cast<int>(trie_.size());
        trie_[static_cast<size_t>(node)].next.emplace_back(b, child);
        trie_.emplace_back();
      }
      node = child;
    }
    if (trie_[static_cast<size_t>(node)].token < 0) trie_[static_cast<size_t>(node)].token = static_cast<int>(t);
  }
}

int AddedTokenMatcher::longest_at(std::string_view text, size_t i) const {
  int node = 0, best = -1;
  for (size_t k = i; k < text.size(); ++k) {
    int child = -1;
    for (const auto& [byte, n] : trie_[static_cast<size_t>(node)].next)
      if (byte == static_cast<uint8_t>(text[k])) child = n;
    if (child < 0) break;
    node = child;
    if (trie_[static_cast<size_t>(node)].token >= 0) best = trie_[static_cast<size_t>(node)].token;
  }
  return best;
}

namespace {

bool is_word_char(char32_t c) { return c == '_' || is_alphanumeric(c); }

char32_t char_before(std::string_view s, size_t i) {
  size_t k = i - 1;
  while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
  size_t len = 0;
  return code_point_at(s, k, len);
}

}  // namespace

std::vector<Segment> AddedTokenMatcher::split(std::string_view text, size_t base) const {
  std::vector<Segment> out;
  size_t last = 0;  // end of the previous match
  size_t i = 0;
  while (i < text.size()) {
    const int t = trie_.size() > 1 ? longest_at(text, i) : -1;
    if (t < 0) {
      ++i;
      continue;
    }
    const AddedToken& tok = tokens_[static_cast<size_t>(t)];
    size_t start = i, stop = i + lengths_[static_cast<size_t>(t)];
    if (tok.single_word) {
      size_t len = 0;
      const bool before_ok = start == 0 || !is_word_char(char_before(text, start));
      const bool after_ok = stop == text.size() || !is_word_char(code_point_at(text, stop, len));
      if (!before_ok || !after_ok) {
        ++i;
        continue;
      }
    }
    if (tok.lstrip)
      while (start > last && is_whitespace(char_before(text, start))) {
        size_t k = start - 1;
        while (k > last && (static_cast<unsigned char>(text[k]) & 0xC0) == 0x80) --k;
        start = k;
      }
    if (tok.rstrip)
      for (size_t len = 0; stop < text.size() && is_whitespace(code_point_at(text, stop, len));) stop += len;
    if (start > last) out.push_back({std::string(text.substr(last, start - last)), -1, base + last});
    out.push_back({tok.content, tok.id, base + start});
    last = i = stop;
  }
  if (last < text.size()) out.push_back({std::string(text.substr(last)), -1, base + last});
  return out;
}

}  // namespace moe::text
