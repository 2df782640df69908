// Byte-level tokenizer: every byte is a token (vocabulary 256), so any language, code or binary
// text round-trips exactly. Decoded model output may be invalid UTF-8; printable_utf8() and
// Utf8Stream make it safe to print.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moe {

struct ByteTokenizer {
  static constexpr int32_t kVocabSize = 256;

  static std::vector<int32_t> encode(std::string_view text);
  // Throws InvalidInput("[tokenizer] ...") for an id outside [0, 256), naming it and its index.
  static std::string decode(std::span<const int32_t> ids);
};

// The offset of the first byte that does not start a well-formed UTF-8 sequence (a cut-off tail
// included), or npos when all of `bytes` is well-formed.
size_t first_invalid_utf8(std::string_view bytes);

// `bytes` with every ill-formed UTF-8 sequence replaced by U+FFFD, one per maximal subpart (as
// Python's bytes.decode("utf-8", "replace")). With `escape_controls`, C0 controls other than
// \t and \n, and DEL, become their visible Control Pictures (U+2400 + c, U+2421), so model
// output cannot move the cursor or recolour the terminal.
std::string printable_utf8(std::string_view bytes, bool escape_controls = false);

// Streams bytes (e.g. one generated token at a time) into printable text: a multi-byte character
// split across pushes is held back until complete, so the output equals printable_utf8() of all
// bytes pushed, whatever the split.
class Utf8Stream {
 public:
  explicit Utf8Stream(bool escape_controls = false) : escape_controls_(escape_controls) {}
  std::string push(std::string_view bytes);  // the text that is complete so far
  std::string flush();                       // whatever is pending (an incomplete tail -> U+FFFD)

 private:
  bool escape_controls_;
  std::string pending_;
};

}  // namespace moe
