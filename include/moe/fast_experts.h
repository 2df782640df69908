// Fast expert execution on CPU (dropless, grouped): the routed rows of each expert run as one
// GEMM over packed weights. The gather of token rows is fused into the GEMM's packing, the
// activation (SwiGLU, GELU, ...) into the gate/up epilogue, which writes the hidden rows straight
// in the packed layout the down GEMM reads, and the weighted scatter-add into the down epilogue.
// Work is split over (expert, column block) tasks for gate/up and over output column blocks for
// down, so skewed routing and many small experts keep every thread busy and no two threads ever
// write the same output element. Few rows per expert (decode) run the same loops with short
// micro-panels, which stream the weights at memory bandwidth.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "moe/experts.h"
#include "moe/routing.h"
#include "moe/tensor.h"

namespace moe {

// Weights repacked once for the kernels: gate/up as 32-column panels (gated: 16 gate + 16 up
// columns of the same hidden units, so the activation applies inside the tile), down as
// 32-column panels over H. Zero padding at the edges.
// Weight storage: f32, or bf16 (AVX512-BF16 dot products; activations are rounded to bf16 as
// they are packed, accumulation stays f32). bf16 panels hold k-pairs: [Kpad/2][32][2].
struct PackedExperts {
  ExpertConfig config;
  DType weight_dtype = DType::f32;  // f32 or bf16
  int64_t n_experts = 0, d_model = 0, hidden = 0;
  int64_t up_panels = 0;    // per expert; each [H][32]
  int64_t down_panels = 0;  // per expert; each [I][32]
  int64_t hidden_per_panel = 0;  // 16 (gated) or 32
  std::shared_ptr<uint8_t> up;    // [E][up_panels][Hpad][32] elements of weight_dtype
  std::shared_ptr<uint8_t> down;  // [E][down_panels][Ipad][32]
  std::vector<float> up_bias, gate_bias, down_bias;  // [E·I], [E·I], [E·H] (empty = none)
  int64_t weight_bytes() const;   // of one expert
};

PackedExperts pack_experts(const ExpertConfig& config, const ExpertWeights<float>& w, DType weights = DType::f32);
// The same, one expert at a time: fill(e, gate, up, down) writes expert e's f32 weights ([I, H],
// [I, H], [H, I]) into scratch buffers, so packing never holds more than one raw expert.
PackedExperts pack_experts(const ExpertConfig& config, int64_t n_experts, int64_t d_model, DType weights,
                           const std::function<void(int64_t e, float* gate, float* up, float* down)>& fill);

struct FastExpertsOptions {
  int threads = 0;  // 0 = all cores (OpenMP default)
};

// y [T, H] = Σ over kept slots s of weights[s] · expert_{e(s)}(x[t(s)]); y is overwritten.
void fast_experts_forward(const PackedExperts& packed, const Routing& routing, const float* weights, const float* x,
                          float* y, const FastExpertsOptions& options = {});

// Training: the same grouping over the raw (unpacked, changing every step) f32 weights, on the
// general GEMM (src/kernels/cpu/gemm.h); forward keeps what backward needs.
struct FastTrainState {
  std::vector<float> pre_gate, pre_up, hidden;  // [A, I], rows in Routing::rows order
  std::vector<float> out;                        // [A, H] unweighted expert outputs
};
void fast_experts_train_forward(const ExpertConfig& config, const ExpertWeights<float>& w, const Routing& routing,
                                const float* weights, const float* x, float* y, FastTrainState& state,
                                const FastExpertsOptions& options = {});
// dy [T, H] -> dx [T, H] (+=), weight gradients (+=), dweights [S] (= d loss / d weight per slot;
// 0 for dropped slots).
void fast_experts_backward(const ExpertConfig& config, const ExpertWeights<float>& w, const Routing& routing,
                           const float* weights, const float* x, const FastTrainState& state, const float* dy, float* dx,
                           const ExpertGrads<float>& grads, float* dweights, const FastExpertsOptions& options = {});

// A plain linear layer out = x·Wᵀ on the same kernels (router logits, dense baselines).
struct PackedLinear {
  int64_t out_features = 0, in_features = 0, panels = 0;
  std::shared_ptr<float> w;  // [panels][in][32]
};
PackedLinear pack_linear(const float* W, int64_t out_features, int64_t in_features);
// x [rows, in] -> out [rows, out_features] (overwritten).
void fast_linear(const PackedLinear& w, const float* x, int64_t rows, float* out, const FastExpertsOptions& options = {});

// Name of the kernel path this CPU uses ("avx512", "scalar").
const char* fast_experts_isa();

}  // namespace moe
