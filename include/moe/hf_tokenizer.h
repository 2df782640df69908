// A Hugging Face tokenizer from its files: tokenizer.json (normalizer, pre-tokenizer, BPE model,
// post-processor, decoder, added tokens) and tokenizer_config.json (BOS/EOS rules, the chat
// template). Encoding gives the ids transformers' tokenizer(text) gives; decoding gives its
// tokenizer.decode(ids). Byte-level BPE (GPT-2, Qwen, OLMoE, DeepSeek, gpt-oss) and
// SentencePiece-style BPE with byte fallback (Mistral, Mixtral) are covered; docs/tokenizers.md
// lists the components and the rules.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moe {

class HfTokenizer {
 public:
  // `tokenizer_json` must exist; `tokenizer_config` may be empty (no file: tokenizer.json's rules).
  // InvalidInput naming the file for anything malformed or not supported.
  static HfTokenizer load(const std::string& tokenizer_json, const std::string& tokenizer_config = "");
  // A folder with tokenizer.json and, if present, tokenizer_config.json.
  static HfTokenizer from_folder(const std::string& dir);

  HfTokenizer(HfTokenizer&&) noexcept;
  HfTokenizer& operator=(HfTokenizer&&) noexcept;
  ~HfTokenizer();

  // Text must be well-formed UTF-8 (InvalidInput naming the byte offset otherwise). Added and
  // special tokens written in the text are recognised; `add_special_tokens` adds BOS/EOS as the
  // post-processor (or tokenizer_config's add_bos_token / add_eos_token) says.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;
  // InvalidInput for an id outside the vocabulary. Malformed UTF-8 from byte tokens becomes U+FFFD.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  int32_t vocab_size() const;  // the largest id + 1
  std::optional<int32_t> token_id(std::string_view token) const;
  const std::string& token(int32_t id) const;  // "" for an id no token has
  bool is_special(int32_t id) const;
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  std::optional<int32_t> pad_id() const;
  const std::string& bos_token() const;  // "" when there is none
  const std::string& eos_token() const;
  const std::string& chat_template() const;  // "" when tokenizer_config.json has none
  int64_t model_max_length() const;           // 0 when not given

  // Decodes ids as they are generated: push() returns the text that is final so far, never half
  // a UTF-8 character; the concatenation of every push() and flush() equals decode(all ids).
  class Stream {
   public:
    explicit Stream(const HfTokenizer& tok, bool skip_special_tokens = false) : tok_(&tok), skip_(skip_special_tokens) {}
    std::string push(int32_t id);
    std::string flush();

   private:
    const HfTokenizer* tok_;
    bool skip_;
    std::vector<int32_t> ids_;
    size_t prefix_ = 0, read_ = 0;
  };

 private:
  struct Impl;
  explicit HfTokenizer(std::unique_ptr<Impl> impl);
  static HfTokenizer load_checked(const std::string& tokenizer_json, const std::string& tokenizer_config);
  std::unique_ptr<Impl> impl_;
};

}  // namespace moe
