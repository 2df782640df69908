// Float attention of the GPT training path over all (sequence, head) pairs: the score and
// value products as cpu::gemm_f32 calls on strided views (one thread per (sequence, head), causal
// rows in blocks that skip the masked upper triangle), softmax and its backward vectorised.
// Twins: ref::attention_head_forward / attention_head_backward (kernels/ref/transformer.h).
// Each (sequence, head) is computed by one thread in a fixed order: results do not depend on
// the thread count. Not public API.
#pragma once

#include <cstdint>

namespace moe::gpt_detail {

struct AttentionShape {
  int64_t B = 0, S = 0;       // sequences, positions
  int64_t H = 0, Hkv = 0;     // query heads, key/value heads (H % Hkv == 0)
  int64_t hd = 0;             // head width
  bool causal = true;
};

// q [B·S, H·hd], k, v [B·S, Hkv·hd] -> att [B·S, H·hd], probs [B, H, S, S] (softmax(q·kᵀ/√hd),
// masked entries 0).
void attention_forward_f32(const AttentionShape& s, float* att, float* probs, const float* q, const float* k,
                           const float* v);

// Accumulates (+=) dq, dk, dv from datt [B·S, H·hd]; probs as written by the forward.
void attention_backward_f32(const AttentionShape& s, float* dq, float* dk, float* dv, const float* datt,
                            const float* probs, const float* q, const float* k, const float* v);

}  // namespace moe::gpt_detail
