// Routers: router logits [T, E] -> Routing + differentiable combine weights, and the backward
// from d(weights) to d(logits). One configurable token-choice router covers Mixtral, Qwen2/3,
// OLMoE, GPT-OSS, Switch, capacity-factor top-k with K-major or batch priority (V-MoE), noisy
// top-k and DeepSeek-V2/V3; expert choice is its own selection; Soft MoE lives in soft_moe.h.
// Semantics: shared/spec/semantics.md. Ties break toward the lowest expert (or token) index.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "moe/routing.h"

namespace moe {

enum class ScoreFn { softmax, sigmoid };
enum class Selection {
  topk,            // each token picks its k best experts
  group_limited,   // DeepSeek: keep topk_group groups by group score, then top-k inside them
  expert_choice,   // each expert picks its C best tokens (Zhou et al. 2022)
};
enum class GroupScore { max, top2_sum };         // DeepSeek-V2 (max) / V3 (sum of the top two)
enum class NoiseKind { none, shazeer, vmoe };    // learned softplus noise / sigma = noise_std/E
enum class CapacityMode { none, absolute, factor };
enum class Priority { position, batch };         // K-major by position, or by top-1 weight (BPR)
enum class DroppedPolicy { zero, passthrough };  // dropped slot adds 0, or w·x (HF Switch v4)

struct RouterConfig {
  int64_t n_experts = 0;
  int64_t top_k = 1;
  ScoreFn score = ScoreFn::softmax;
  Selection selection = Selection::topk;
  bool normalize = false;            // weights /= sum of the token's chosen weights (+ norm_eps)
  double norm_eps = 0.0;             // DeepSeek: 1e-20
  double scale = 1.0;                // routed_scaling_factor
  bool scale_only_unnormalized = false;  // DeepSeek-V2 remote code: scale only when not normalising
  bool logit_bias = false;           // the router Linear has a bias [E] (GPT-OSS; trained): part of the raw logits
  bool selection_bias = false;       // DeepSeek-V3 e_score_correction_bias: selection only (not trained)
  bool bf16_logits = false;          // round logits to bf16 before selection (HF bf16 parity)
  // group-limited selection
  int64_t n_group = 1;
  int64_t topk_group = 1;
  GroupScore group_score = GroupScore::top2_sum;
  // noise (training only)
  NoiseKind noise = NoiseKind::none;
  double noise_std = 1.0;            // vmoe: sigma = noise_std / E
  // capacity (token choice) and expert choice
  CapacityMode capacity_mode = CapacityMode::none;
  int64_t expert_capacity = 0;       // absolute: slots per expert per group (HF Switch expert_capacity)
  double capacity_factor = 1.0;      // factor: C = ceil(group_tokens · k · cf / E); expert choice: k = 1
  int64_t capacity_multiple_of = 1;  // round C up (vmoe uses 4)
  Priority priority = Priority::position;
  DroppedPolicy dropped = DroppedPolicy::zero;
};

// Throws InvalidInput ("[router] top_k=9 > n_experts=8", groups not dividing E, topk_group >
// n_group, capacity < 1, ...). group_tokens: tokens per group (sequence) the capacity applies to.
void validate_router(const RouterConfig& config);
int64_t router_capacity(const RouterConfig& config, int64_t group_tokens);

// What the router forward keeps for backward. T = float or double.
template <class T>
struct RouterState {
  Routing routing;
  std::vector<T> logits;         // [T, E] effective logits: raw (+ bias) (+ noise)
  std::vector<T> scores;         // [T, E] softmax or sigmoid of `logits`
  std::vector<T> weights;        // [S] combine weight per slot (dropped slots keep theirs: passthrough uses it)
  std::vector<T> chosen_sum;     // [T] sum of the chosen scores (normalize)
  std::vector<T> noise_grad;     // [T, E] shazeer: d(logits)/d(noise logits) = ε·sigmoid(noise logits)
};

// logits: [T, E] raw router logits (x·Wᵀ + bias). selection_bias: [E] (selection_bias) or null. noise: [T, E] standard-normal samples, used when
// training with noise; noise_logits: [T, E] (shazeer) or null. group_tokens: tokens per group.
template <class T>
void router_forward(const RouterConfig& config, const T* logits, const T* selection_bias,
                    const T* noise, const T* noise_logits, int64_t n_tokens, int64_t group_tokens,
                    bool training, RouterState<T>& state);

// dweights: [S] gradient of the loss w.r.t. each slot's combine weight. Writes dlogits [T, E]
// (w.r.t. the raw logits; += into it) and, for shazeer noise, dnoise_logits [T, E] (+=).
// Gradients flow through the weights, never through the discrete choice (as in autograd).
template <class T>
void router_backward(const RouterConfig& config, const RouterState<T>& state, const T* dweights,
                     T* dlogits, T* dnoise_logits);


}  // namespace moe
