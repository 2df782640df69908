// Reference grouped FFNs over row lists (moe/ffn.h RowGroups): scalar loops, float64
// accumulation. The twin the fast grouped kernels (kernels/cpu/grouped_ffn.h) are tested
// against, and the float64 path the finite-difference tests check. T = float or double.
#pragma once

#include <cstdint>

#include "moe/ffn.h"

namespace moe::ref {

// Per row i (a group's rows in order): pre_gate, pre_up, hidden [A, I] (pre_gate gated only),
// out [A, H] = FFN_{g(i)}(x[src(i)]), unweighted.
template <class T>
void grouped_ffn_forward(const FfnSpec& spec, const FfnWeights<T>& w, const RowGroups& rows, const T* x, T* pre_gate,
                         T* pre_up, T* hidden, T* out);

// dout [A, H]: gradient w.r.t. each row's output. dx_rows [A, H] overwritten with the gradient
// w.r.t. each row's input; weight gradients accumulated (+=). scratch: [3·I] doubles.
template <class T>
void grouped_ffn_backward(const FfnSpec& spec, const FfnWeights<T>& w, const RowGroups& rows, const T* x,
                          const T* pre_gate, const T* pre_up, const T* hidden, const T* dout, T* dx_rows,
                          const FfnGrads<T>& grads, double* scratch);

}  // namespace moe::ref
