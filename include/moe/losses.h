// Balance losses of MoE routers, each with its hand-written gradient, and the DeepSeek-V3
// auxiliary-loss-free bias update. Semantics: shared/spec/semantics.md §3 (exact formulas there).
//
// Conventions shared by every loss:
// - T ∈ {float, double} (explicitly instantiated). The arithmetic runs in double inside; the
//   value is returned as T. Legend: T tokens, E experts, k experts per token, L layers.
// - The gradient is ADDED (+=) into a caller buffer shaped like the input it names, scaled by
//   `coef`; a null buffer skips it. The DeepSeek losses carry their own `alpha` instead.
// - Discrete choices (top-k, argmax, routed experts, the routing map) are constants: gradients
//   flow through the probabilities only, as autograd does. Ties break toward the lowest index.
// - group_size: tokens per group (one sequence / batch row); it must divide n_tokens.
// - Empty inputs (n_tokens = 0, no unmasked token) give 0 and add no gradient, and a
//   Var/Mean² whose mean is 0 counts as 0: never NaN (HF and vmoe would return NaN there).
// - Bad arguments throw moe::InvalidInput ("[losses] top_k=9 > n_experts=8").
#pragma once

#include <cstdint>
#include <span>

#include "moe/routing.h"

namespace moe {

// §3.1 HF `load_balancing_loss_func` (Mixtral, Qwen2/3-MoE, OLMoE, GPT-OSS): p = softmax(z),
// selection = top-k of p, f and P pooled over all layers jointly, aux = E · Σ_e f_e P_e
// (= k under uniform routing). logits: L pointers to [T, E] raw router logits (T = B·S rows,
// row b·S + s). mask: [B·S] attention mask (nonzero = token) broadcast to every layer, or empty
// for all tokens. dlogits: empty, or L pointers to [T, E] (a null entry skips that layer).
// An all-zero mask gives 0 (HF computes 0/0 = NaN).
template <class T>
T hf_load_balancing_loss(std::span<const T* const> logits, int64_t n_tokens, int64_t n_experts,
                         int64_t top_k, std::span<const uint8_t> mask, std::span<T* const> dlogits,
                         T coef);

// §3.2 Switch load-balancing loss (HF v4 switch_transformers): per group g of group_size tokens,
// f[g,e] = fraction of tokens routed to e, P[g,e] = mean softmax prob, aux = mean_{g,e}(f·P)·E².
// logits: [T, E]; expert: [T] routed expert (argmax); kept: [T] 0 = dropped by capacity, or null
// (all kept). [Q] as in HF, a dropped token counts as routed to expert 0. dlogits: [T, E].
template <class T>
T switch_load_balancing_loss(const T* logits, const int32_t* expert, const uint8_t* kept,
                             int64_t n_tokens, int64_t n_experts, int64_t group_size, T* dlogits,
                             T coef);
// The same, reading expert and kept from a top-1 token-choice Routing (slot t is token t).
template <class T>
T switch_load_balancing_loss(const Routing& routing, const T* logits, int64_t group_size,
                             T* dlogits, T coef);

// §3.3 Router z-loss (ST-MoE): mean over tokens of logsumexp_e(z)². logits, dlogits: [T, E].
template <class T>
T router_z_loss(const T* logits, int64_t n_tokens, int64_t n_experts, T* dlogits, T coef);

// §3.5 V-MoE importance loss: per group, importance_e = Σ_x gates[x,e], L = Var/Mean²
// (population variance), averaged over groups. vmoe feeds the softmax of the CLEAN logits.
// gates, dgates: [T, E]; the gradient is w.r.t. the gates (any gating function).
template <class T>
T importance_loss(const T* gates, int64_t n_tokens, int64_t n_experts, int64_t group_size,
                  T* dgates, T coef);
// The same with gates = softmax(logits) computed here; the gradient is w.r.t. the logits.
template <class T>
T importance_loss_from_logits(const T* logits, int64_t n_tokens, int64_t n_experts,
                              int64_t group_size, T* dlogits, T coef);

// §3.5 V-MoE load loss: thr[x] = k-th largest noisy logit, p = 1 − Φ((thr − clean)/σ),
// load_e = mean_x p, L = Var(load)/Mean(load)² per group, averaged. logits: [T, E] clean;
// noisy_logits: [T, E] = clean + σ·ε; sigma = noise_std / E. As in vmoe (routing.py
// `_load_auxiliary_loss`), the threshold is NOT stop-gradient'ed: it is a one-hot pick of the
// noisy logits, so its gradient lands on the noisy logit at the k-th position. dlogits gets the
// direct term, dnoisy_logits the threshold term; both may be null and may alias each other —
// since noisy = clean + σε, vmoe's total gradient w.r.t. the clean logits is their sum.
template <class T>
T vmoe_load_loss(const T* logits, const T* noisy_logits, int64_t n_tokens, int64_t n_experts,
                 int64_t top_k, double sigma, int64_t group_size, T* dlogits, T* dnoisy_logits,
                 T coef);

// §3.4a DeepSeek-V2 `MoEGate` aux loss. scores: [T, E] softmax probs; topk_ids: [T, k] the
// experts actually selected (Routing::slot_expert of a token-choice routing). seq_aux: per
// sequence of seq_len tokens, ce = count/(S·k/E), aux = α·mean_b Σ_e ce·P; else
// f = E·count/(T·k), aux = α·Σ_e f·P. dlogits: [T, E] += d(aux)/d(logits), chained through the
// softmax using the scores themselves (scores must be softmax(logits)).
template <class T>
T deepseek_v2_aux_loss(const T* scores, const int32_t* topk_ids, int64_t n_tokens,
                       int64_t n_experts, int64_t top_k, int64_t seq_len, bool seq_aux,
                       double alpha, T* dlogits);

// §3.4b DeepSeek-V3 complementary sequence-wise balance loss. scores: [T, E] sigmoid affinities
// s; s' = s / Σ_j s_j per token; per unit of U tokens f_i = E/(k·U)·count_i, P_i = mean_t s'_i,
// L = α · mean over units of Σ_i f_i P_i.
enum class BalanceIndicator {
  routing_map,  // count the experts actually selected (biased selection; torchtitan): topk_ids
  plain_topk,   // count TopK of the plain s (the paper's formula); topk_ids ignored
};
enum class BalanceUnit {
  sequence,     // one unit per seq_len tokens (the paper)
  micro_batch,  // all n_tokens form one unit (torchtitan MicrobatchWiseLoadBalanceLoss)
};
// topk_ids: [T, k] (routing_map). dlogits: [T, E] += d(L)/d(logits), chained through the
// sigmoid using the scores themselves (scores must be sigmoid(logits), without the bias).
template <class T>
T deepseek_v3_balance_loss(const T* scores, const int32_t* topk_ids, int64_t n_tokens,
                           int64_t n_experts, int64_t top_k, int64_t seq_len,
                           BalanceIndicator indicator, BalanceUnit unit, double alpha,
                           T* dlogits);

// §3.4c DeepSeek-V3 auxiliary-loss-free bias update (not a gradient): with c = tokens per expert
// (selected, biased indices, over the whole step), b_e += γ·sign(mean(c) − c_e); mean_center
// (torchtitan) subtracts the mean of that step first, so the update sums to 0. sign(0) = 0.
template <class T>
void aux_free_bias_update(std::span<T> bias, std::span<const double> tokens_per_expert,
                          double gamma, bool mean_center);

}  // namespace moe
