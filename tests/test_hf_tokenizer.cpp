// The Hugging Face tokenizer's own rules (the oracle comparison is tests/text/test_tokenizer_oracle.py):
// streaming decode equals whole decode for every split, BOS/EOS rules, special-token skipping,
// and a clear InvalidInput for every kind of bad file or input.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <fstream>
#include <string>

#include "moe/error.h"
#include "test_support.h"
#include "moe/hf_tokenizer.h"
#include "moe/tokenizer.h"
#include "text/unicode.h"

namespace fs = std::filesystem;
using moe::HfTokenizer;

namespace {

using moe::test::error_of;

const std::string kShared = MOE_SOURCE_DIR "/../shared/data/tokenizers/";

const HfTokenizer& tokenizer(const std::string& name) {
  static std::map<std::string, HfTokenizer> cache;
  auto it = cache.find(name);
  if (it == cache.end()) it = cache.emplace(name, HfTokenizer::from_folder(kShared + name)).first;
  return it->second;
}

fs::path scratch(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("moe_hftok_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

// A tiny byte-level BPE file: vocab of the printable bytes' characters plus "ab", "abc".
std::string tiny_json(const std::string& extra_model = "", const std::string& added = "[]") {
  std::string vocab = "{";
  for (int b = 0; b < 256; ++b) {
    std::string c = moe::text::byte_to_unicode(static_cast<uint8_t>(b));
    if (c == "\"") c = "\\\"";
    if (c == "\\") c = "\\\\";
    vocab += "\"" + c + "\": " + std::to_string(b) + ", ";
  }
  vocab += "\"ab\": 256, \"abc\": 257}";
  return R"({"model": {"type": "BPE", "vocab": )" + vocab + R"(, "merges": ["a b", "ab c"])" + extra_model +
         R"(}, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false}, "decoder": {"type": "ByteLevel"}, "added_tokens": )" +
         added + "}";
}

}  // namespace

TEST(HfTokenizer, StreamingEqualsWholeDecodeForEveryTokenizer) {
  const std::string text = "Grüße, 世界! 😀 emoji 👨‍👩‍👧 and <|im_end|> \n\t done.";
  for (const char* name : {"qwen3", "deepseek-v3", "gpt-oss", "olmoe-1b-7b-0924", "mistral-7b-v0.1", "mistral-v1-legacy-json"}) {
    SCOPED_TRACE(name);
    const HfTokenizer& tok = tokenizer(name);
    const std::vector<int32_t> ids = tok.encode(text);
    HfTokenizer::Stream stream(tok);
    std::string streamed;
    for (int32_t id : ids) {
      const std::string piece = stream.push(id);
      EXPECT_EQ(moe::first_invalid_utf8(piece), std::string::npos) << "a push split a character";
      streamed += piece;
    }
    streamed += stream.flush();
    EXPECT_EQ(streamed, tok.decode(ids));
  }
}

TEST(HfTokenizer, ByteTokensOfOneCharacterAreHeldBack) {
  const HfTokenizer& tok = tokenizer("mistral-7b-v0.1");
  const std::vector<int32_t> ids = tok.encode("🧬", false);  // not in the vocab: four <0xNN> byte tokens
  ASSERT_EQ(ids.size(), 5u);                                  // "▁" + 4 bytes
  HfTokenizer::Stream stream(tok);
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string piece = stream.push(ids[i]);
    if (i > 0 && i + 1 < ids.size()) {
      EXPECT_EQ(piece, "") << "byte " << i << " was emitted before its character completed";
    }
    out += piece;
  }
  EXPECT_EQ(out + stream.flush(), "🧬");
}

TEST(HfTokenizer, BosEosAndSpecialTokens) {
  const HfTokenizer& mistral = tokenizer("mistral-7b-v0.1");
  EXPECT_EQ(mistral.bos_id(), 1);
  EXPECT_EQ(mistral.eos_id(), 2);
  EXPECT_EQ(mistral.encode("Hi").front(), 1);
  EXPECT_NE(mistral.encode("Hi", false).front(), 1);
  EXPECT_TRUE(mistral.is_special(1));
  const std::vector<int32_t> ids = mistral.encode("Hi</s>");
  EXPECT_EQ(ids.back(), 2);
  EXPECT_EQ(mistral.decode(ids, true), "Hi");
  EXPECT_EQ(mistral.decode(ids), "<s> Hi</s>");

  const HfTokenizer& deepseek = tokenizer("deepseek-v3");  // LlamaTokenizerFast + add_bos_token: BOS from the config
  EXPECT_EQ(deepseek.encode("Hi").front(), 0);
  EXPECT_EQ(deepseek.bos_token(), "<｜begin▁of▁sentence｜>");
  const HfTokenizer& qwen = tokenizer("qwen3");  // Qwen2Tokenizer: no BOS
  EXPECT_FALSE(qwen.bos_id().has_value());
  EXPECT_EQ(qwen.eos_id(), qwen.token_id("<|im_end|>"));
  EXPECT_EQ(qwen.encode("<|im_start|>user").front(), *qwen.token_id("<|im_start|>"));
  EXPECT_FALSE(qwen.chat_template().empty());
  EXPECT_EQ(qwen.model_max_length(), 131072);
  EXPECT_EQ(qwen.vocab_size(), 151669);
}

TEST(HfTokenizer, BadInputIsAClearError) {
  const HfTokenizer& qwen = tokenizer("qwen3");
  EXPECT_NE(error_of([&] { qwen.encode(std::string("ab\xC3", 3)); }).find("not valid UTF-8 (byte 2)"), std::string::npos);
  EXPECT_NE(error_of([&] { qwen.encode("\xFF"); }).find("not valid UTF-8 (byte 0)"), std::string::npos);
  const std::vector<int32_t> bad = {1, 999999};
  EXPECT_NE(error_of([&] { qwen.decode(bad); }).find("token id 999999 at index 1"), std::string::npos);
  const std::vector<int32_t> negative = {-1};
  EXPECT_NE(error_of([&] { qwen.decode(negative); }).find("token id -1"), std::string::npos);

  const fs::path d = scratch("bad");
  EXPECT_NE(error_of([&] { HfTokenizer::from_folder(d.string()); }).find("no tokenizer.json"), std::string::npos);
  const auto load_error = [&](const std::string& json) {
    write(d / "tokenizer.json", json);
    return error_of([&] { HfTokenizer::from_folder(d.string()); });
  };
  EXPECT_NE(load_error("{\"model\": ").find("not valid JSON"), std::string::npos);
  EXPECT_NE(load_error("[]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(load_error(R"({"model": {"type": "Unigram", "vocab": []}})").find("model type \"Unigram\" is not supported"), std::string::npos);
  EXPECT_NE(load_error(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}})").find("not in the vocab"), std::string::npos);
  EXPECT_NE(load_error(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]}})").find("not two tokens"), std::string::npos);
  EXPECT_NE(load_error(R"({"model": {"type": "BPE", "vocab": {"a": -3}, "merges": []}})").find("not a non-negative"), std::string::npos);
  EXPECT_NE(load_error(R"({"model": {"type": "BPE", "vocab": {}, "merges": [], "dropout": 0.1}})").find("dropout"), std::string::npos);
  EXPECT_NE(load_error(R"({"model": {"type": "BPE", "vocab": {}, "merges": []}, "normalizer": {"type": "Precompiled"}})")
                .find("normalizer type \"Precompiled\" is not supported"),
            std::string::npos);
  EXPECT_NE(load_error(R"({"model": {"type": "BPE", "vocab": {}, "merges": []},
                           "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"}})")
                .find("does not compile"),
            std::string::npos);
  EXPECT_NE(load_error(R"({"model": {"type": "BPE", "vocab": {}, "merges": []}, "decoder": {"type": "CTC"}})").find("decoder type \"CTC\""),
            std::string::npos);
  EXPECT_NE(load_error(R"({"model": {"type": "BPE", "vocab": {}, "merges": []}, "added_tokens": [{"content": "x"}]})")
                .find("an added token needs an integer \"id\""),
            std::string::npos);
  write(d / "tokenizer.json", tiny_json());
  write(d / "tokenizer_config.json", R"({"tokenizer_class": "LlamaTokenizerFast", "bos_token": "<s>"})");
  EXPECT_NE(error_of([&] { HfTokenizer::from_folder(d.string()); }).find("bos_token \"<s>\" is not a token"), std::string::npos);
  fs::remove_all(d);
}

TEST(HfTokenizer, AddedTokenOptions) {
  const fs::path d = scratch("added");
  write(d / "tokenizer.json",
        tiny_json("", R"([{"id": 300, "content": "<x>", "special": true, "normalized": false, "lstrip": true, "rstrip": true},
                          {"id": 301, "content": "word", "special": false, "normalized": false, "single_word": true}])"));
  const HfTokenizer tok = HfTokenizer::from_folder(d.string());
  EXPECT_EQ(tok.encode("abc"), (std::vector<int32_t>{257}));
  EXPECT_EQ(tok.encode("a <x> c"), (std::vector<int32_t>{'a', 300, 'c'}));  // lstrip/rstrip take the spaces
  EXPECT_EQ(tok.encode("word"), (std::vector<int32_t>{301}));
  EXPECT_EQ(tok.encode("a word."), (std::vector<int32_t>{'a', ' ', 301, '.'}));  // ids are the bytes here
  const std::vector<int32_t> inside = tok.encode("swords");  // single_word: not inside a word
  EXPECT_EQ(std::count(inside.begin(), inside.end(), 301), 0);
  fs::remove_all(d);
}
