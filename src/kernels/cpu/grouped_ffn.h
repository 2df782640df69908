// Grouped FFNs over row lists: the rows of each group (moe/ffn.h RowGroups) run as GEMMs over
// that group's weights. Two paths:
//  - inference, over packed weights (kernels/cpu/packed_ffn.h): the gather fused into the A
//    packing, the activation into the gate/up epilogue (hidden rows written straight in the packed
//    layout the down GEMM reads), bias and a weighted scatter-add (or a plain store) into the down
//    epilogue. Gate/up work is split over (group, panel range) tasks, down over output column
//    blocks, so skewed groups keep every thread busy and no two threads write one output element.
//  - training, over raw f32 weights that change every step: per group a handful of general GEMMs
//    (kernels/cpu/gemm.h) keeping what the backward needs.
// Kernels know nothing of routing: rows, groups, destinations and scales are given.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/packed_ffn.h"
#include "moe/ffn.h"
#include "moe/workspace.h"

namespace moe::cpu {

// Where the packed forward puts each row's output.
struct RowSink {
  const int32_t* dst = nullptr;  // [A] output row of each row (scatter-add); null = store row i at row i
  const float* scale = nullptr;  // [A] factor of each row in the scatter-add
  int64_t n_out = 0;             // scatter: rows of y, which is overwritten (y [n_out, H])
};

// y: scatter [n_out, H] = Σ_i scale[i]·FFN_{g(i)}(x[src(i)]) at row dst[i]; store [A, H].
void grouped_ffn_forward(const PackedFfn& w, const RowGroups& rows, const float* x, const RowSink& sink, float* y,
                         int threads, Scratch scratch);
size_t grouped_ffn_forward_scratch_bytes(const PackedFfn& w, int64_t n_rows, int threads);

// Per-row tensors of the training path, rows in RowGroups order.
struct FfnRowActs {
  float* pre_gate = nullptr;  // [A, I] gated activations only
  float* pre_up = nullptr;    // [A, I]
  float* hidden = nullptr;    // [A, I] activation output (input of down)
  float* out = nullptr;       // [A, H] FFN output, unweighted
};

// Training forward: fills acts for every row. Groups run one per thread (heaviest first) when
// there are enough of them; heavy groups run alone with every thread inside their GEMMs.
void grouped_ffn_train_forward(const FfnSpec& spec, const FfnWeights<float>& w, const RowGroups& rows, const float* x,
                               const FfnRowActs& acts, int threads, Scratch scratch);
size_t grouped_ffn_train_forward_scratch_bytes(const FfnWeights<float>& w, const RowGroups& rows, int threads);

// Backward: dout [A, H] (d loss / d each row's output) -> dx_rows [A, H] (overwritten; may alias
// dout) and weight gradients (+=). Every group writes only its own rows and its own gradients.
void grouped_ffn_train_backward(const FfnSpec& spec, const FfnWeights<float>& w, const RowGroups& rows, const float* x,
                                const FfnRowActs& acts, const float* dout, float* dx_rows, const FfnGrads<float>& grads,
                                int threads, Scratch scratch);
size_t grouped_ffn_train_backward_scratch_bytes(const FfnWeights<float>& w, const RowGroups& rows, int threads);

}  // namespace moe::cpu
