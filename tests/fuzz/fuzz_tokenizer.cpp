// libFuzzer target: Hugging Face tokenizers (`moe tokenize`, and every model folder later). Two
// kinds of input:
//   raw bytes  -> a tokenizer.json -> HfTokenizer::load, then encode / decode / stream a few texts
//   'T' text   -> the text through two real tokenizers (Qwen3's byte-level BPE, Mistral's
//                 SentencePiece-style BPE with byte fallback), loaded once
// Every path ends in a result or InvalidInput. Invariants on what encodes: every id decodes, the
// byte-level tokenizer gives back the NFC form of the text, and streaming equals whole decoding.
#include <cstdio>
#include <vector>

#include "fuzz_common.h"
#include "moe/hf_tokenizer.h"
#include "moe/tokenizer.h"
#include "text/unicode.h"

namespace {

const std::string kShared = MOE_SOURCE_DIR "/../shared/data/tokenizers/";

struct Real {
  moe::HfTokenizer qwen = moe::HfTokenizer::from_folder(kShared + "qwen3");
  moe::HfTokenizer mistral = moe::HfTokenizer::from_folder(kShared + "mistral-7b-v0.1");
};

const Real& real() {
  static const Real r;
  return r;
}

std::string streamed(const moe::HfTokenizer& tok, const std::vector<int32_t>& ids) {
  moe::HfTokenizer::Stream s(tok);
  std::string out;
  for (int32_t id : ids) {
    const std::string piece = s.push(id);
    fuzz::check(moe::first_invalid_utf8(piece) == std::string::npos, "a streamed piece splits a character");
    out += piece;
  }
  return out + s.flush();
}

void exercise(const moe::HfTokenizer& tok, const std::string& text) {
  std::vector<int32_t> ids;
  try {
    ids = tok.encode(text);
  } catch (const moe::InvalidInput&) {
    fuzz::check(moe::first_invalid_utf8(text) != std::string::npos, "only invalid UTF-8 is refused by encode");
    return;
  }
  for (int32_t id : ids) fuzz::check(id >= 0 && id < tok.vocab_size(), "ids in the vocabulary");
  std::string whole;
  try {
    whole = tok.decode(ids);
  } catch (const moe::InvalidInput&) {
    return;  // a fuzzed vocabulary may leave ids without a token
  }
  fuzz::check(moe::first_invalid_utf8(whole) == std::string::npos, "decoded text is UTF-8");
  const std::string streamed_text = streamed(tok, ids);
  if (streamed_text != whole) std::fprintf(stderr, "text %s\nwhole    [%s]\nstreamed [%s]\n", text.c_str(), whole.c_str(), streamed_text.c_str());
  fuzz::check(streamed_text == whole, "streaming equals whole decoding");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::limit_memory();
  if (size > 0 && data[0] == 'T') {
    const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
    exercise(real().qwen, text);
    exercise(real().mistral, text);
    if (moe::first_invalid_utf8(text) == std::string::npos) {
      const std::vector<int32_t> ids = real().qwen.encode(text);
      fuzz::check(real().qwen.decode(ids) == moe::text::normalize(text, moe::text::NormalForm::nfc),
                  "byte-level BPE gives back the NFC text");
    }
    return 0;
  }
  const std::string& path = fuzz::write_scratch(data, size);
  try {
    const moe::HfTokenizer tok = moe::HfTokenizer::load(path);
    for (const char* text : {"Hello wörld 123", " <s>x</s> 你好 😀\n\t", ""}) exercise(tok, text);
  } catch (const moe::InvalidInput&) {
  }
  return 0;
}
