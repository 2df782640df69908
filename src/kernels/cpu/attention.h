// Softmax attention in f32, over many (sequence, head) pairs. Twins: ref::attention_head_forward
// and ref::attention_head_backward (kernels/ref/transformer.h).
//  - training (keeps the probabilities for the backward): the score and value products as GEMMs on
//    strided views, one thread per (sequence, head), causal rows in blocks that skip the masked
//    upper triangle; softmax and its backward vectorised.
//      forward:  P = softmax(scale·Q·Kᵀ) (masked 0), O = P·V
//      backward: dP = dO·Vᵀ, dS = scale·P ⊙ (dP − rowsum(P ⊙ dP)), dQ += dS·K, dK += dSᵀ·Q, dV += Pᵀ·dO
//  - cached (inference): n new queries at positions p0 .. p0+n−1 attend, causally, to the keys
//    and values already in a cache; one task per (head, query), scores 16 keys at a time.
// Each (sequence, head) or (head, query) is computed by one thread in a fixed order: results do
// not depend on the thread count. Scale = 1/sqrt(hd).
#pragma once

#include <cstddef>
#include <cstdint>

#include "moe/workspace.h"

namespace moe::cpu {

struct AttentionShape {
  int64_t B = 0, S = 0;       // sequences, positions
  int64_t H = 0, Hkv = 0;     // query heads, key/value heads (H % Hkv == 0)
  int64_t hd = 0;             // head width
  bool causal = true;
};

// q [B·S, H·hd], k, v [B·S, Hkv·hd] -> att [B·S, H·hd], probs [B, H, S, S] (masked entries 0).
void attention_forward(const AttentionShape& s, float* att, float* probs, const float* q, const float* k,
                       const float* v, int threads, Scratch scratch);
size_t attention_forward_scratch_bytes(const AttentionShape& s, int threads);

// Accumulates (+=) dq, dk, dv from datt [B·S, H·hd]; probs as written by the forward.
void attention_backward(const AttentionShape& s, float* dq, float* dk, float* dv, const float* datt,
                        const float* probs, const float* q, const float* k, const float* v, int threads,
                        Scratch scratch);
size_t attention_backward_scratch_bytes(const AttentionShape& s, int threads);

// q [n, H·hd] at positions p0 + i; k_cache, v_cache [p0 + n, Hkv·hd] (row stride Hkv·hd) ->
// att [n, H·hd]. Always causal.
void attention_cached(int64_t n, int64_t p0, int64_t H, int64_t Hkv, int64_t hd, float* att, const float* q,
                      const float* k_cache, const float* v_cache, int threads, Scratch scratch);
size_t attention_cached_scratch_bytes(int64_t n_kv, int threads);

}  // namespace moe::cpu
