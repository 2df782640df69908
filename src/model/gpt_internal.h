// Pieces shared by the GPT forward, backward and inference files (not public API).
#pragma once

#include <omp.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/ref/kernels.h"
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

// C [M, N] (+)= A·B on all OpenMP threads. gemm_f32 splits N into 256-column blocks, which
// leaves narrow products (N = d_model, vocab) on one thread; with enough rows, the rows of C
// are split here instead (each thread packs all of B). Either way each element of C is summed
// by one thread in the same k order: the result does not depend on the thread count.
inline void gemm_parallel(int64_t M, int64_t N, int64_t K, cpu::MatView A, cpu::MatView B, float* C, int64_t ldc,
                          bool accumulate) {
  const int threads = omp_get_max_threads();
  if (threads <= 1 || M < 32 * threads || M * N * K < kParallelWork) {
    cpu::gemm_f32(M, N, K, A, B, C, ldc, accumulate, threads);
    return;
  }
  const int64_t chunk = ((M + threads - 1) / threads + 3) / 4 * 4;  // rows per thread, whole 4-row panels
#pragma omp parallel num_threads(threads)
  {
    const int64_t i0 = omp_get_thread_num() * chunk;
    if (i0 < M) {
      const cpu::MatView Ai{A.p + i0 * A.rs, A.rs, A.cs};
      cpu::gemm_f32(std::min(chunk, M - i0), N, K, Ai, B, C + i0 * ldc, ldc, accumulate, 1);
    }
  }
}

// out [rows, out_dim] = x [rows, in] · Wᵀ (W [out_dim, in]) (+ b). Float: the packed GEMM over a
// transposed view of W; double: the float64 reference.
template <class T>
void linear_forward(T* out, const T* x, const T* W, const T* b, int64_t rows, int64_t in, int64_t out_dim) {
  if constexpr (std::is_same_v<T, float>) {
    gemm_parallel(rows, out_dim, in, {x, in, 1}, {W, 1, in}, out, out_dim, false);
    if (b) {
      for (int64_t t = 0; t < rows; ++t) {
        for (int64_t o = 0; o < out_dim; ++o) out[t * out_dim + o] += b[o];
      }
    }
  } else {
    ref::linear(out, x, W, b, rows, in, out_dim);
  }
}

// Backward of linear_forward, accumulating: dx += dy·W, dW += dyᵀ·x, db += Σ_t dy (null = skip).
template <class T>
void linear_backward(T* dx, T* dW, T* db, const T* dy, const T* x, const T* W, int64_t rows, int64_t in,
                     int64_t out_dim) {
  if constexpr (std::is_same_v<T, float>) {
    if (dx) gemm_parallel(rows, in, out_dim, {dy, out_dim, 1}, {W, in, 1}, dx, in, true);
    if (dW) gemm_parallel(out_dim, in, rows, {dy, 1, out_dim}, {x, in, 1}, dW, in, true);
    if (db) {
      for (int64_t t = 0; t < rows; ++t) {
        for (int64_t o = 0; o < out_dim; ++o) db[o] += dy[t * out_dim + o];
      }
    }
  } else {
    ref::linear_backward(dx, dW, db, dy, x, W, rows, in, out_dim);
  }
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

// Throws InvalidInput for bad ids / shapes ("[gpt] token id 300 at [0, 5] >= vocab_size=256").
void check_step_inputs(const GptConfig& c, const GptStepInputs& in);

}  // namespace moe::gpt_detail
