// Generation (include/moe/generate.h): the tokens of the KV-cache path, the cache-less path and
// an oracle written here from the definition of the sliding window (re-encoding exactly the
// window of every step from scratch) are the same, before and after the window slides.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "moe/error.h"
#include "moe/generate.h"
#include "moe/gpt.h"

using namespace moe;

namespace {

GptConfig config(bool moe_ffn) {
  GptConfig c;
  c.vocab_size = 41;
  c.context = 12;
  c.d_model = 16;
  c.n_layers = 2;
  c.n_heads = 2;
  c.n_kv_heads = 2;
  c.dense.hidden = 24;
  if (moe_ffn) {
    c.moe.d_model = 16;
    c.moe.router.n_experts = 4;
    c.moe.router.top_k = 2;
    c.moe.router.normalize = true;
    c.moe.expert.hidden = 12;
  }
  return c;
}

// Weights far from the init's small values, so that the next token depends on every token seen
// (a window off by one position gives other tokens).
GptWeights chaotic_weights(const GptConfig& c) {
  GptWeights w = make_gpt_weights(c, DType::f32);
  init_gpt_weights(c, w, 5);
  Rng rng(11);
  w.for_each_tensor([&](const std::string& n, Tensor& t) {
    if (n.find("norm") != std::string::npos) return;
    for (int64_t i = 0; i < t.numel(); ++i) t.as<float>()[i] = static_cast<float>(0.5 * rng.normal());
  });
  return w;
}

// The definition: the model sees seq[start:]; when that would exceed the context, start moves so
// that the last C/2 tokens remain. Each step re-encodes its window from an empty cache.
std::vector<int32_t> oracle(const GptPrepared& m, std::vector<int32_t> seq, int64_t n, const SamplingOptions& s,
                            uint64_t seed, int64_t* slides) {
  const int64_t C = m.config.context;
  int64_t start = 0;
  *slides = 0;
  Rng rng(seed);
  std::vector<int32_t> out;
  std::vector<float> logits(static_cast<size_t>(m.config.vocab_size));
  for (int64_t i = 0; i < n; ++i) {
    if (static_cast<int64_t>(seq.size()) - start > C) start = static_cast<int64_t>(seq.size()) - C / 2, ++*slides;
    KvCache cache = make_kv_cache(m);
    gpt_infer(m, seq.data() + start, static_cast<int64_t>(seq.size()) - start, cache, logits.data(), nullptr);
    const int32_t t = sample_token(logits.data(), m.config.vocab_size, s, rng);
    seq.push_back(t);
    out.push_back(t);
  }
  return out;
}

}  // namespace

TEST(Generate, SlidingWindowMatchesItsDefinition) {
  for (const bool moe_ffn : {false, true}) {
    const GptConfig c = config(moe_ffn);
    const GptWeights w = chaotic_weights(c);
    const GptPrepared m = prepare_gpt(c, w);
    const std::vector<int32_t> prompt = {3, 1, 4, 1, 5};
    for (const double temperature : {0.0, 0.9}) {
      GenerateOptions o;
      o.max_new_tokens = 40;  // 5 + 40 tokens through a context of 12: the window slides 5 times
      o.sampling.temperature = temperature;
      o.seed = 9;
      int64_t slides = 0;
      const std::vector<int32_t> want = oracle(m, prompt, o.max_new_tokens, o.sampling, o.seed, &slides);
      ASSERT_EQ(slides, 5);
      const GenerateResult kv = generate(m, prompt, o);
      o.kv_cache = false;
      const GenerateResult full = generate(m, prompt, o);
      EXPECT_EQ(kv.tokens, want) << "moe=" << moe_ffn << " temperature=" << temperature;
      EXPECT_EQ(full.tokens, want) << "moe=" << moe_ffn << " temperature=" << temperature;
      EXPECT_EQ(kv.slides, slides);
      EXPECT_EQ(kv.window, 6);
      // The test can fail: the tokens are not one repeated id, and a window one token shorter differs.
      EXPECT_GT(std::set<int32_t>(want.begin(), want.end()).size(), 3u);
    }
  }
}

TEST(Generate, StopsWhenAskedAndCountsCalls) {
  const GptConfig c = config(true);
  const GptWeights w = chaotic_weights(c);
  const GptPrepared m = prepare_gpt(c, w);
  GenerateOptions o;
  o.max_new_tokens = 10;
  std::vector<int64_t> calls;
  GenerateCallbacks cb;
  int seen = 0;
  cb.on_token = [&](int32_t) { return ++seen < 4; };
  cb.on_forward = [&](int64_t n) { calls.push_back(n); };
  const std::vector<int32_t> prompt = {7, 8, 9};
  const GenerateResult r = generate(m, prompt, o, cb);
  EXPECT_EQ(r.tokens.size(), 4u);
  EXPECT_EQ(calls, (std::vector<int64_t>{3, 1, 1, 1}));  // prefill, then one call per token but the last
  o.max_new_tokens = 0;
  EXPECT_TRUE(generate(m, prompt, o).tokens.empty());
}

TEST(Generate, RefusesBadRequests) {
  const GptConfig c = config(false);
  const GptWeights w = chaotic_weights(c);
  const GptPrepared m = prepare_gpt(c, w);
  auto error_of = [&](std::vector<int32_t> prompt, GenerateOptions o) -> std::string {
    try {
      generate(m, prompt, o);
    } catch (const InvalidInput& e) {
      return e.what();
    }
    return "(no error)";
  };
  GenerateOptions o;
  EXPECT_NE(error_of({}, o).find("the prompt is empty"), std::string::npos);
  EXPECT_NE(error_of(std::vector<int32_t>(13, 1), o).find("is longer than the model's context of 12"), std::string::npos);
  EXPECT_NE(error_of({1, 41}, o).find("41"), std::string::npos);  // outside the vocabulary
  o.max_new_tokens = -1;
  EXPECT_NE(error_of({1}, o).find("--max_new_tokens"), std::string::npos);
  o.max_new_tokens = 3;
  o.sampling.top_p = 0;
  EXPECT_NE(error_of({1}, o).find("top_p"), std::string::npos);
}
