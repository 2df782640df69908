// Expert FFNs, stacked [E, ...] and run over a Routing's kept rows (reference kernels: scalar,
// float64 accumulation). One row = one (token, expert) pair; outputs are unweighted — the layer
// applies the combine weights.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "moe/routing.h"

namespace moe {

enum class ExpertAct {
  swiglu,          // down(silu(gate x) * up x)
  gelu,            // down(gelu_erf(up x))
  gelu_tanh,       // down(gelu_tanh(up x))
  relu,            // down(relu(up x))                (Switch/T5 DenseActDense)
  gpt_oss_swiglu,  // clamped: (clamp(up,±l)+1) * g·sigmoid(α g), g = min(gate, l); with biases
};
ExpertAct parse_expert_act(const std::string& name);  // throws InvalidInput naming the value
const char* expert_act_name(ExpertAct act);
inline bool is_gated(ExpertAct a) { return a == ExpertAct::swiglu || a == ExpertAct::gpt_oss_swiglu; }

struct ExpertConfig {
  ExpertAct act = ExpertAct::swiglu;
  int64_t hidden = 0;     // I: expert intermediate width
  bool bias = false;      // biases on gate/up [E, I] and down [E, H]
  double alpha = 1.702;   // gpt_oss_swiglu
  double limit = 7.0;     // gpt_oss_swiglu
};

// Weights of E experts (or of one dense FFN with E = 1), row-major, y = W·x convention.
template <class T>
struct ExpertWeights {
  int64_t n_experts = 0, d_model = 0, hidden = 0;
  const T* gate = nullptr;       // [E, I, H] (gated activations only)
  const T* up = nullptr;         // [E, I, H]
  const T* down = nullptr;       // [E, H, I]
  const T* gate_bias = nullptr;  // [E, I]
  const T* up_bias = nullptr;    // [E, I]
  const T* down_bias = nullptr;  // [E, H]
};

template <class T>
struct ExpertGrads {
  T* gate = nullptr;  // same shapes as the weights; accumulated (+=); null = not wanted
  T* up = nullptr;
  T* down = nullptr;
  T* gate_bias = nullptr;
  T* up_bias = nullptr;
  T* down_bias = nullptr;
};

// Per kept row (in Routing::rows order): what backward needs.
template <class T>
struct ExpertActivations {
  std::vector<T> pre_gate;  // [A, I] gated only
  std::vector<T> pre_up;    // [A, I]
  std::vector<T> hidden;    // [A, I] activation output (input of down)
  std::vector<T> out;       // [A, H] expert output (unweighted)
};

// x: [T, H]. Fills acts for every kept row of `routing`.
template <class T>
void experts_forward(const ExpertConfig& config, const ExpertWeights<T>& w, const Routing& routing, const T* x,
                     ExpertActivations<T>& acts);

// dout: [A, H] gradient w.r.t. each row's output. dx: [T, H] (+=). Weight gradients (+=).
template <class T>
void experts_backward(const ExpertConfig& config, const ExpertWeights<T>& w, const Routing& routing, const T* x,
                      const ExpertActivations<T>& acts, const T* dout, T* dx, const ExpertGrads<T>& grads);

// The activation h(g, u) of one hidden unit and its partial derivatives (g: gate pre-activation,
// unused by the non-gated activations; u: up pre-activation), in float64.
struct ActivationGrad {
  double h, dg, du;
};
ActivationGrad expert_activation(const ExpertConfig& config, double g, double u);

// A routing that sends every token to expert 0 (dense FFNs and shared experts reuse the experts).
Routing dense_routing(int64_t n_tokens);

// A dense FFN, the baseline MoE is compared with: the expert code with one expert (w.n_experts
// must be 1) and every token. x, y: [T, H].
template <class T>
void dense_ffn_forward(const ExpertConfig& config, const ExpertWeights<T>& w, const T* x, int64_t n_tokens,
                       ExpertActivations<T>& acts, T* y);
template <class T>
void dense_ffn_backward(const ExpertConfig& config, const ExpertWeights<T>& w, const T* x, int64_t n_tokens,
                        const ExpertActivations<T>& acts, const T* dy, T* dx, const ExpertGrads<T>& grads);

}  // namespace moe
