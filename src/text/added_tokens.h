// Added tokens (tokenizer.json "added_tokens"): found in the text before the model sees it, each
// becoming its own id. As in the Rust crate, tokens with normalized=false are matched in the raw
// text and the others in the normalized pieces between them; matching is leftmost-longest, with
// lstrip / rstrip taking the whitespace beside a match and single_word refusing a match inside a word.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moe::text {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false, normalized = false, lstrip = false, rstrip = false, single_word = false;
};

// A run of text, or a recognised added token (id >= 0). `begin`: its byte offset in the input.
struct Segment {
  std::string text;
  int32_t id = -1;
  size_t begin = 0;
};

class AddedTokenMatcher {
 public:
  // `patterns[i]` is what to look for (the content, normalized for the normalized set).
  AddedTokenMatcher(std::vector<AddedToken> tokens, std::vector<std::string> patterns);
  AddedTokenMatcher() = default;
  bool empty() const { return tokens_.empty(); }
  // Splits `text` (starting at offset `base` of the input) into runs and matched tokens.
  std::vector<Segment> split(std::string_view text, size_t base) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int>> next;  // byte -> node
    int token = -1;                             // index into tokens_ when a pattern ends here
  };
  int longest_at(std::string_view text, size_t i) const;  // index of the longest pattern at i, or -1
  std::vector<AddedToken> tokens_;
  std::vector<size_t> lengths_;
  std::vector<Node> trie_;
};

}  // namespace moe::text
