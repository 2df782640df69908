// Feed-forward networks as the kernels see them: G FFNs of one shape with stacked weights
// [G, ...], y = W·x convention. Nothing here knows about routing; an MoE expert is one of these
// FFNs (moe/experts.h), a dense FFN or a shared expert is a stack of one.
// Legend: G FFNs in the stack, H model width (d), I hidden width, A rows (token, FFN) pairs.
#pragma once

#include <cstdint>
#include <string>

namespace moe {

enum class FfnAct {
  swiglu,          // down(silu(gate x) * up x)
  gelu,            // down(gelu_erf(up x))
  gelu_tanh,       // down(gelu_tanh(up x))
  relu,            // down(relu(up x))                (Switch/T5 DenseActDense)
  gpt_oss_swiglu,  // clamped: (clamp(up,±l)+1) * g·sigmoid(α g), g = min(gate, l); with biases
};
FfnAct parse_ffn_act(const std::string& name);  // throws InvalidInput naming the value
const char* ffn_act_name(FfnAct act);
inline bool is_gated(FfnAct a) { return a == FfnAct::swiglu || a == FfnAct::gpt_oss_swiglu; }

// The shape and activation of every FFN of a stack.
struct FfnSpec {
  FfnAct act = FfnAct::swiglu;
  int64_t hidden = 0;     // I: intermediate width
  bool bias = false;      // biases on gate/up [G, I] and down [G, H]
  double alpha = 1.702;   // gpt_oss_swiglu
  double limit = 7.0;     // gpt_oss_swiglu
};

// Weights of G FFNs, row-major, y = W·x convention. Absent tensors are null.
template <class T>
struct FfnWeights {
  int64_t n_experts = 0, d_model = 0, hidden = 0;  // G, H, I
  const T* gate = nullptr;       // [G, I, H] (gated activations only)
  const T* up = nullptr;         // [G, I, H]
  const T* down = nullptr;       // [G, H, I]
  const T* gate_bias = nullptr;  // [G, I]
  const T* up_bias = nullptr;    // [G, I]
  const T* down_bias = nullptr;  // [G, H]
};

template <class T>
struct FfnGrads {
  T* gate = nullptr;  // same shapes as the weights; accumulated (+=); null = not wanted
  T* up = nullptr;
  T* down = nullptr;
  T* gate_bias = nullptr;
  T* up_bias = nullptr;
  T* down_bias = nullptr;
};

// Rows grouped by FFN: group g owns rows [offsets[g], offsets[g+1]) of the row list; row i reads
// input row src[i] of x (a gather), or row i itself when src is null (an already permuted buffer).
struct RowGroups {
  int64_t n_groups = 0;                // G
  const int64_t* offsets = nullptr;    // [G+1]
  const int32_t* src = nullptr;        // [A] or null

  int64_t n_rows() const { return offsets[n_groups]; }
  int64_t rows(int64_t g) const { return offsets[g + 1] - offsets[g]; }
  int64_t input_row(int64_t i) const { return src ? src[i] : i; }
};

// The activation h(g, u) of one hidden unit and its partial derivatives (g: gate pre-activation,
// unused by the non-gated activations; u: up pre-activation), in float64. The scalar definition
// every kernel's activation is tested against.
struct ActivationGrad {
  double h, dg, du;
};
ActivationGrad ffn_activation(const FfnSpec& spec, double g, double u);

}  // namespace moe
