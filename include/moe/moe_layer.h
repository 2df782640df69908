// The MoE layer: router + experts + shared experts + balance losses, forward and backward,
// in float or double (the float64 instantiation is what finite-difference tests check).
// y[t] = Σ_slots w · expert(x[t])  (+ w·x[t] for dropped slots under passthrough)
//        + gate(x[t]) · shared(x[t])
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "moe/experts.h"
#include "moe/fast_experts.h"
#include "moe/router.h"
#include "moe/tensor.h"

namespace moe {

// Balance-loss coefficients by name (0 = not computed); docs/layer-format.md lists the names.
struct LossConfig {
  std::map<std::string, double> coef;
  bool deepseek_v3_use_routing_map = true;  // f from the actual (biased) selection
  bool deepseek_v3_per_sequence = true;     // balancing unit: sequence (else the whole micro-batch)
  bool deepseek_v2_seq_aux = true;
};

struct SoftMoeConfig {
  int64_t slots_per_expert = 0;  // p; 0 = not a Soft MoE layer
  double noise_std = 0;          // vmoe SoftRouter: logits += noise_std·N(0, 1) in training (0 = none)
};

struct MoeLayerConfig {
  int64_t d_model = 0;
  RouterConfig router;
  ExpertConfig expert;
  int64_t shared_hidden = 0;        // width of the (single, fused) shared expert; 0 = none
  ExpertAct shared_act = ExpertAct::swiglu;
  bool shared_gate = false;         // Qwen2-MoE: sigmoid(x·w) scales the shared output
  double jitter = 0;                // Mixtral router_jitter_noise (training)
  LossConfig losses;
  SoftMoeConfig soft;
};

// Throws InvalidInput naming the field for any inconsistent setting.
void validate_layer(const MoeLayerConfig& config);

// Weights as named tensors of dtype T; empty tensors are absent. Canonical names and shapes:
// docs/layer-format.md. One visitor serves I/O, gradients and (later) the optimizer.
struct MoeLayerWeights {
  Tensor router_w, router_b, noise_w, selection_bias;
  Tensor gate, up, down, gate_bias, up_bias, down_bias;
  Tensor shared_gate, shared_up, shared_down, shared_gate_w;
  Tensor soft_phi, soft_scale;

  // Calls f(canonical name, tensor) for every tensor slot, present or not.
  void for_each_tensor(const std::function<void(const std::string&, Tensor&)>& f);
  void for_each_tensor(const std::function<void(const std::string&, const Tensor&)>& f) const;
  // The tensor slot of a canonical name, or null for an unknown name.
  Tensor* find(const std::string& name);
  const Tensor* find(const std::string& name) const;
};

// Creates zero tensors of the right shapes for a config (weights or their gradients).
MoeLayerWeights make_layer_weights(const MoeLayerConfig& config, DType dtype);
// Checks every tensor a config needs is present with the right shape and dtype, none extra.
void check_layer_weights(const MoeLayerConfig& config, const MoeLayerWeights& weights, DType dtype);
// Names of the weights that get gradients (selection_bias is updated without one).
bool is_trainable(const std::string& name);

struct LayerInputs {
  int64_t n_tokens = 0;
  int64_t group_tokens = 0;          // tokens per sequence (capacity, per-sequence losses)
  bool training = false;
  const void* noise = nullptr;       // [T, E] standard normal (noisy routers), dtype T
  const void* jitter = nullptr;      // [T, H] multiplicative factors (Mixtral jitter), dtype T
  const uint8_t* mask = nullptr;     // [T] 1 = real token (HF load-balancing loss)
  // Float layers run the routed experts on the fast grouped kernels (include/moe/fast_experts.h):
  // with need_backward false the inference path over `packed` (packed for this call if null),
  // else the training path, whose backward is grouped the same way. Double layers stay on the
  // float64 reference (the finite-difference tests' path).
  bool need_backward = true;
  const PackedExperts* packed = nullptr;
};

template <class T>
struct MoeLayerState {
  std::vector<T> x_in;              // [T, H] router/expert input (after jitter)
  std::vector<T> raw_logits;        // [T, E] x·Wᵀ (+ bias)
  std::vector<T> noise_logits;      // [T, E] shazeer
  RouterState<T> router;
  ExpertActivations<T> experts;
  ExpertActivations<T> shared;
  std::vector<T> shared_gate;       // [T] sigmoid values
  std::map<std::string, double> losses;  // unscaled values, and "aux_total"
  bool fast = false;                     // experts ran on the fast path: no backward possible
  bool fast_train = false;               // experts ran on the fast training path (float)
  FastTrainState fast_state;
  FastTrainState shared_fast;            // float layers: the shared expert on the fast training path
  bool shared_on_fast = false;
  // Soft MoE
  std::vector<T> soft_logits, soft_dispatch, soft_combine, soft_slots;  // [T,S], [T,S], [T,S], [S,H]
  std::vector<T> soft_xn, soft_phin;                                      // normalised x, Φ
  std::vector<T> soft_xnorm, soft_phinorm;                                // their norms
};

template <class T>
void moe_layer_forward(const MoeLayerConfig& config, const MoeLayerWeights& weights, const T* x,
                       const LayerInputs& in, MoeLayerState<T>& state, T* y);

// dy: [T, H]. Loss = Σ y·dy + aux_total. Writes dx [T, H] and accumulates weight gradients
// into `grads` (a MoeLayerWeights of the same shapes, e.g. from make_layer_weights).
template <class T>
void moe_layer_backward(const MoeLayerConfig& config, const MoeLayerWeights& weights, const LayerInputs& in,
                        const MoeLayerState<T>& state, const T* dy, T* dx, MoeLayerWeights& grads);

}  // namespace moe
