// Pieces shared by the GPT forward, backward and inference files (not public API).
#pragma once

#include <algorithm>
#include <vector>

#include "kernels/ops.h"
#include "moe/gpt.h"

namespace moe::gpt_detail {

// Loops with less work than this (multiply-adds) stay on one thread: a parallel region costs more.
constexpr int64_t kParallelWork = 1 << 15;

template <class T>
const T* ptr(const Tensor& t) {
  return t.empty() ? nullptr : t.as<T>();
}
template <class T>
T* mut(Tensor& t) {
  return t.empty() ? nullptr : t.as<T>();
}

// Resizes without shrinking capacity (steps of equal shape never reallocate).
template <class V>
void fit(V& v, int64_t n) {
  v.resize(static_cast<size_t>(n));
}

// The dense FFN of a block as a one-expert ExpertWeights view (gradients: ExpertGrads).
template <class T>
ExpertWeights<T> dense_view(const GptBlockWeights& b, int64_t d) {
  ExpertWeights<T> v;
  v.n_experts = 1;
  v.d_model = d;
  v.hidden = b.ffn_up.dim(0);
  v.gate = ptr<T>(b.ffn_gate);
  v.up = ptr<T>(b.ffn_up);
  v.down = ptr<T>(b.ffn_down);
  v.gate_bias = ptr<T>(b.ffn_gate_bias);
  v.up_bias = ptr<T>(b.ffn_up_bias);
  v.down_bias = ptr<T>(b.ffn_down_bias);
  return v;
}

template <class T>
ExpertGrads<T> dense_grads(GptBlockWeights& g) {
  return {mut<T>(g.ffn_gate), mut<T>(g.ffn_up), mut<T>(g.ffn_down), mut<T>(g.ffn_gate_bias), mut<T>(g.ffn_up_bias),
          mut<T>(g.ffn_down_bias)};
}

// Norm forward over rows with the config's norm kind. mean: layernorm only.
template <class T>
void norm_forward(const GptConfig& c, T* y, T* mean, T* rstd, const T* x, const Tensor& w, const Tensor& b,
                  int64_t rows);
template <class T>
void norm_backward(const GptConfig& c, T* dx, Tensor& dw, Tensor& db, const T* dy, const T* x, const Tensor& w,
                   const T* mean, const T* rstd, int64_t rows);

// Where one block step (gpt_block.cpp) reads and writes attention keys and values, and what it keeps.
template <class T>
struct BlockStep {
  int64_t B = 1, S = 0;               // sequences × new positions (inference: 1 × n)
  int64_t p0 = 0;                     // position of the first new token (inference: tokens already cached)
  T* k_rows = nullptr;                // [p0 + B·S, Hkv·hd]: new keys go to rows p0.., attention reads all
  T* v_rows = nullptr;
  bool keep_probs = true;             // training: softmax probabilities for the backward (p0 = 0)
  const GptPreparedBlock* prepared = nullptr;  // inference: packed projections and FFN stores
  MoeLayerState<T>* moe_state = nullptr;       // MoE layers' state (training: the block's own)
  const GptStepInputs* in = nullptr;           // training: noise / jitter source and flags
  const T* ones = nullptr;                     // [B·S] all 1: the dense FFN's combine weights
  GptInferStats* stats = nullptr;
};

// One pre-norm block: x_out = x_mid + ffn(norm2(x_mid)), x_mid = x + attn(norm1(x)). x is a.x
// ([B·S, d], filled by the caller); every intermediate lands in a.
template <class T>
void block_forward(const GptConfig& c, const GptBlockWeights& w, int64_t layer, const BlockStep<T>& step,
                   GptBlockActs<T>& a, const T* rope_cos, const T* rope_sin, Workspace& ws, T* x_out);

// Throws InvalidInput for bad ids / shapes ("[gpt] token id 300 at [0, 5] >= vocab_size=256").
void check_step_inputs(const GptConfig& c, const GptStepInputs& in);

}  // namespace moe::gpt_detail
