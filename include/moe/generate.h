// Text generation with a prepared GPT: prefill, then one token at a time through the KV cache,
// sampling each next token. Past the model's context a sliding window: when the window is full
// its older half is dropped and the newer half encoded afresh (positions from 0), so from the
// first slide on every token sees the last C/2 to C tokens. The cache-less path (re-encoding the
// window for every token) sees the same windows, so both give the same tokens.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "moe/gpt.h"
#include "moe/sampling.h"

namespace moe {

struct GenerateOptions {
  int64_t max_new_tokens = 200;  // exactly this many, unless on_token stops earlier
  SamplingOptions sampling;
  uint64_t seed = 1;             // sampling seed
  bool kv_cache = true;          // false: re-encode the window for every token
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // the new tokens
  int64_t slides = 0;           // times the window slid
  int64_t window = 0;           // C/2: the tokens kept when it slides
};

struct GenerateCallbacks {
  std::function<bool(int32_t)> on_token;          // each new token as sampled; false stops
  std::function<void(int64_t)> on_forward;        // each model call with its token count
};

// InvalidInput for an empty prompt, a prompt longer than the context, ids outside the vocabulary
// or max_new_tokens < 0. `stats` (optional) accumulates gpt_infer's figures.
GenerateResult generate(const GptPrepared& model, std::span<const int32_t> prompt, const GenerateOptions& options,
                        const GenerateCallbacks& callbacks = {}, GptInferStats* stats = nullptr);

}  // namespace moe
