// Stacked expert weights that carry their storage format, and the one entry point that runs
// them for a dispatch plan. The format is data: each is one row of a traits table
// (src/moe/expert_formats.cpp: which dtypes it stores and computes in, whether it trains, its
// kernels), and that table is the only place a kernel path is chosen. Routed experts, shared
// experts, Soft MoE's experts and dense FFNs (a stack of one) all run through here, in training
// and in inference.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "moe/dispatch.h"
#include "moe/ffn.h"
#include "moe/workspace.h"

namespace moe {

namespace cpu {
struct PackedFfn;
}

enum class ExpertFormat : uint8_t {
  f64,          // reference: float64 weights and activations, scalar kernels (finite differences)
  f32,          // training: f32 weights as stored (they change every step), general GEMMs, backward
  packed_f32,   // inference: f32 tile panels packed once, fused gather/scatter; forward only
  packed_bf16,  // inference: bf16 k-pair panels (AVX512-BF16); activations rounded to bf16
  // Later: block-quantised int8 / 4-bit / MXFP4 panels, and offloaded experts made resident on
  // demand — each a new row of the traits table.
};
const char* expert_format_name(ExpertFormat format);
// "f64", "f32", "packed_f32" (also "fp32"), "packed_bf16" (also "bf16"); InvalidInput otherwise.
ExpertFormat parse_expert_format(const std::string& name);
bool expert_format_trains(ExpertFormat format);

struct ExpertStore {
  ExpertFormat format = ExpertFormat::f32;
  FfnSpec spec;
  int64_t n_experts = 0, d_model = 0;           // E, H
  FfnWeights<double> f64;                        // format f64: views of stacks owned elsewhere
  FfnWeights<float> f32;                         // format f32: views of stacks owned elsewhere
  std::shared_ptr<cpu::PackedFfn> packed;        // packed formats: owned

  int64_t expert_bytes() const;  // one expert's weights as stored
};

// Views of raw stacks held elsewhere (nothing is copied): F64 stacks are the reference format,
// F32 stacks the training format.
ExpertStore view_experts(const FfnSpec& spec, const FfnWeights<double>& w);
ExpertStore view_experts(const FfnSpec& spec, const FfnWeights<float>& w);
// A packed store: the weights are repacked once (in parallel; the store owns the copy).
ExpertStore pack_experts(const FfnSpec& spec, const FfnWeights<float>& w, ExpertFormat format, int threads = 0);
// The same in two steps, for sources read piece by piece (a file, a generator): allocate, then
// pack experts [e0, e0 + w.n_experts) from f32 views of just those experts.
ExpertStore make_packed_experts(const FfnSpec& spec, int64_t n_experts, int64_t d_model, ExpertFormat format);
void pack_experts_into(ExpertStore& store, int64_t e0, const FfnWeights<float>& w, int threads = 0);

struct ExpertRunOptions {
  int threads = 0;  // 0 = all cores (OpenMP default)
};

// What a run keeps for its backward, and its reusable buffers. T = the format's activation type.
template <class T>
struct ExpertRunState {
  std::vector<T> pre_gate, pre_up, hidden;  // [A, I] per row, plan order (formats that train)
  std::vector<T> out;                       // [A, H] unweighted expert outputs (formats that train)
  std::vector<T> dout;                      // [A, H] backward: d loss / d out, then the rows' dx
  std::vector<float> row_scale;             // [A] combine weight per row (fused inference path)
  Workspace ws;
};

// The fused single-process path: y [T, H] = Σ over kept slots s of weights[s] · expert(x[token]),
// y overwritten. weights: [S] combine weight per slot.
template <class T>
void run_experts(const ExpertStore& store, const DispatchPlan& plan, const T* weights, const T* x, T* y,
                 ExpertRunState<T>& state, const ExpertRunOptions& options = {});
// Backward of run_experts: dx [T, H] +=, expert weight gradients +=, dweights [S] = d loss /
// d weights[s] for kept slots. Needs a format that trains and the state of the forward.
template <class T>
void run_experts_backward(const ExpertStore& store, const DispatchPlan& plan, const T* weights, const T* x,
                          ExpertRunState<T>& state, const T* dy, T* dx, const FfnGrads<T>& grads, T* dweights,
                          const ExpertRunOptions& options = {});

// The explicit path over a dispatched buffer (dispatch_rows): out_rows [A, H] = expert(xrows)
// per row, unweighted. This is where an all-to-all sends and receives rows.
template <class T>
void run_expert_rows(const ExpertStore& store, const DispatchPlan& plan, const T* xrows, T* out_rows,
                     ExpertRunState<T>& state, const ExpertRunOptions& options = {});
// Backward: dout_rows [A, H] -> dx_rows [A, H] (overwritten; may alias dout_rows), weight grads +=.
template <class T>
void run_expert_rows_backward(const ExpertStore& store, const DispatchPlan& plan, const T* xrows,
                              ExpertRunState<T>& state, const T* dout_rows, T* dx_rows, const FfnGrads<T>& grads,
                              const ExpertRunOptions& options = {});

}  // namespace moe
