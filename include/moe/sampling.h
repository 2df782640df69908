// Next-token choice from logits: greedy, or temperature with optional top-k and top-p (nucleus)
// filtering, in that order (as Hugging Face's generate applies them).
#pragma once

#include <cstdint>

#include "moe/rng.h"

namespace moe {

struct SamplingOptions {
  double temperature = 0;  // 0 = greedy (argmax, lowest id on ties)
  int64_t top_k = 0;       // keep the k most likely (0 = all)
  double top_p = 1;        // keep the smallest set whose probability reaches p (1 = all)
};

// Throws InvalidInput("[sample] ...") for temperature < 0, top_k < 0, top_p outside (0, 1].
void validate_sampling(const SamplingOptions& options);
// logits [V]; non-finite logits are an InvalidInput (the model diverged).
int32_t sample_token(const float* logits, int64_t vocab, const SamplingOptions& options, Rng& rng);

}  // namespace moe
