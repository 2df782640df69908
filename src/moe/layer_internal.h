// Pieces of the MoE layer shared between its .cpp files (not public API).
#pragma once

#include "moe/moe_layer.h"

namespace moe::detail {

// Soft MoE forward/backward (src/moe/soft_moe.cpp).
// y [T, H] overwritten; the experts run from `experts` (a view of w's stacks or a packed store).
template <class T>
void soft_moe_forward(const MoeLayerConfig& c, const MoeLayerWeights& w, const ExpertStore& experts, const T* x,
                      const LayerInputs& in, SoftMoeState<T>& st, T* y);
// dx [T, H] += (x: the forward's input); weight gradients +=.
template <class T>
void soft_moe_backward(const MoeLayerConfig& c, const MoeLayerWeights& w, const ExpertStore& experts,
                       const LayerInputs& in, const T* x, SoftMoeState<T>& st, const T* dy, T* dx,
                       MoeLayerWeights& grads);

// Balance losses of a routed layer (src/moe/layer_losses.cpp): fills st.losses and, when
// dlogits is non-null, adds Σ coef · d(loss)/d(raw logits) into it ([T, E]).
template <class T>
void layer_losses(const MoeLayerConfig& c, const LayerInputs& in, MoeLayerState<T>& st);
template <class T>
void layer_losses_backward(const MoeLayerConfig& c, const LayerInputs& in, const MoeLayerState<T>& st, T* dlogits);

template <class T>
ExpertWeights<T> expert_view(const MoeLayerWeights& w, int64_t d_model);
template <class T>
ExpertWeights<T> shared_view(const MoeLayerWeights& w, int64_t d_model);
template <class T>
ExpertGrads<T> expert_grads(MoeLayerWeights& g);
template <class T>
ExpertGrads<T> shared_grads(MoeLayerWeights& g);

// Typed pointer or null for an absent tensor.
template <class T>
const T* ptr(const Tensor& t) {
  return t.empty() ? nullptr : t.as<T>();
}
template <class T>
T* mut(Tensor& t) {
  return t.empty() ? nullptr : t.as<T>();
}

}  // namespace moe::detail
