// The MoE layer: router + experts + shared experts + balance losses, forward and backward,
// in float or double (the float64 instantiation is what finite-difference tests check).
// y[t] = Σ_slots w · expert(x[t])  (+ w·x[t] for dropped slots under passthrough)
//        + gate(x[t]) · shared(x[t])
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "moe/dispatch.h"
#include "moe/expert_store.h"
#include "moe/experts.h"
#include "moe/router.h"
#include "moe/tensor.h"
#include "moe/workspace.h"

namespace moe {

namespace cpu {
struct PackedMatrix;
}

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

// The expert stores a layer runs on. Training uses views of the layer's own tensors (the f32 or
// f64 formats, whichever dtype the weights have); inference packs them once (prepare_layer) and
// passes the result in LayerInputs::prepared, with the router weight packed for the GEMV too.
struct PreparedMoeLayer {
  ExpertStore routed;                                  // routed experts (also Soft MoE's experts)
  ExpertStore shared;                                  // the shared expert (n_experts 0 = none)
  std::shared_ptr<const cpu::PackedMatrix> router;     // router weight [E, H] packed (null: raw)
};
// Views of the weights' tensors (nothing copied; the weights must outlive the result).
PreparedMoeLayer view_layer(const MoeLayerConfig& config, const MoeLayerWeights& weights);
// Packed copies for inference (format packed_f32 or packed_bf16; f32 weights).
PreparedMoeLayer prepare_layer(const MoeLayerConfig& config, const MoeLayerWeights& weights, ExpertFormat format,
                               int threads = 0);

struct LayerInputs {
  int64_t n_tokens = 0;
  int64_t group_tokens = 0;          // tokens per sequence (capacity, per-sequence losses)
  bool training = false;
  const void* noise = nullptr;       // [T, E] standard normal (noisy routers), [T, E·p] (Soft MoE), dtype T
  const void* jitter = nullptr;      // [T, H] multiplicative factors (Mixtral jitter), dtype T
  const uint8_t* mask = nullptr;     // [T] 1 = real token (HF load-balancing loss)
  // Packed stores from prepare_layer (inference: no backward); null = views of the weights.
  const PreparedMoeLayer* prepared = nullptr;
  // The caller validated config and weights once (a model does, at load); skips the per-call checks.
  bool validated = false;
};

// Soft MoE's per-call tensors (src/moe/soft_moe.cpp). S = E·p slots per group, G groups.
template <class T>
struct SoftMoeState {
  std::vector<T> logits, dispatch, combine;  // [T, S] scale·Xn·Φn (+ noise), softmax over tokens / slots
  std::vector<T> slots;                      // [G·S, H] slot inputs Dᵀ X
  std::vector<T> xn, phin;                   // normalised x [T, H] and Φ [H, S]
  std::vector<T> xnorm, phinorm;             // their norms [T], [S]
  DispatchPlan plan;                         // slot rows grouped by expert
  std::vector<T> rows, out_rows;             // [G·S, H] dispatched slots, expert outputs (plan order)
  ExpertRunState<T> experts;
};

template <class T>
struct MoeLayerState {
  std::vector<T> x_in;              // [T, H] router/expert input (after jitter)
  std::vector<T> raw_logits;        // [T, E] x·Wᵀ (+ bias)
  std::vector<T> noise_logits;      // [T, E] shazeer
  RouterState<T> router;
  DispatchPlan plan;                // the routed experts' rows
  ExpertRunState<T> experts;
  DispatchPlan shared_plan;         // every token once
  ExpertRunState<T> shared;
  std::vector<T> shared_gate;       // [T] sigmoid gate values (1 without a gate): the shared expert's combine weights
  std::vector<T> shared_out;        // [T, H] gate · shared(x)
  SoftMoeState<T> soft;
  std::map<std::string, double> losses;  // unscaled values, and "aux_total"
  Workspace ws;                     // router GEMMs
};

template <class T>
void moe_layer_forward(const MoeLayerConfig& config, const MoeLayerWeights& weights, const T* x,
                       const LayerInputs& in, MoeLayerState<T>& state, T* y);

// dy: [T, H]. Loss = Σ y·dy + aux_total. Writes dx [T, H] and accumulates weight gradients
// into `grads` (a MoeLayerWeights of the same shapes, e.g. from make_layer_weights).
template <class T>
void moe_layer_backward(const MoeLayerConfig& config, const MoeLayerWeights& weights, const LayerInputs& in,
                        MoeLayerState<T>& state, const T* dy, T* dx, MoeLayerWeights& grads);

}  // namespace moe
