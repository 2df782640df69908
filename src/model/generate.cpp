#include "moe/generate.h"

#include <algorithm>
#include <string>

#include "moe/error.h"
#include "moe/rng.h"

namespace moe {

GenerateResult generate(const GptPrepared& model, std::span<const int32_t> prompt, const GenerateOptions& o,
                        const GenerateCallbacks& cb, GptInferStats* stats) {
  const GptConfig& c = model.config;
  const int64_t p = static_cast<int64_t>(prompt.size());
  if (p == 0) throw InvalidInput("[generate] the prompt is empty");
  if (p > c.context)
    throw InvalidInput("[generate] the prompt (" + std::to_string(p) + " tokens) is longer than the model's context of " +
                       std::to_string(c.context));
  if (o.max_new_tokens < 0) throw InvalidInput("[generate] --max_new_tokens must be >= 0");
  validate_sampling(o.sampling);

  GenerateResult r;
  r.window = std::max<int64_t>(1, c.context / 2);
  std::vector<int32_t> seq(prompt.begin(), prompt.end());
  KvCache cache = make_kv_cache(model);
  std::vector<float> logits(static_cast<size_t>(c.vocab_size));
  Rng rng(o.seed);
  int64_t start = 0;  // seq[start:] is what the model sees
  auto forward = [&](const int32_t* tokens, int64_t n) {
    gpt_infer(model, tokens, n, cache, logits.data(), stats);  // checks the ids
    if (cb.on_forward) cb.on_forward(n);
  };
  auto encode_window = [&] {
    cache.reset();
    forward(seq.data() + start, static_cast<int64_t>(seq.size()) - start);
  };
  encode_window();
  for (int64_t i = 0; i < o.max_new_tokens; ++i) {
    const int32_t next = sample_token(logits.data(), c.vocab_size, o.sampling, rng);
    seq.push_back(next);
    r.tokens.push_back(next);
    if (cb.on_token && !cb.on_token(next)) break;
    if (i + 1 == o.max_new_tokens) break;  // exactly max_new_tokens new tokens, no extra call
    if (static_cast<int64_t>(seq.size()) - start > c.context) {
      start = static_cast<int64_t>(seq.size()) - r.window;
      ++r.slides;
      encode_window();
    } else if (!o.kv_cache) {
      encode_window();
    } else {
      forward(&seq.back(), 1);
    }
  }
  return r;
}

}  // namespace moe
