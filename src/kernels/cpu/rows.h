// Row kernels in f32: softmax and its backward, RMSNorm and LayerNorm forward. AVX-512 with a
// scalar fallback (the ISA of cpu::detected_isa()); twins in kernels/ref (ref::softmax,
// ref::rmsnorm_forward, ref::layernorm_forward) with float64 accumulation.
#pragma once

#include <cstdint>

namespace moe::cpu {

// p[0, n) = softmax(scale·p[0, n)), p[n, n_all) = 0.
void softmax_row(float* p, int64_t n, int64_t n_all, float scale);
// ds[0, n) = scale·p ⊙ (dp − Σ p ⊙ dp) in place of dp, ds[n, n_all) = 0.
void softmax_backward_row(float* ds, const float* p, int64_t n, int64_t n_all, float scale);

// y = x / sqrt(mean(x²) + eps) · w.  x, y: [rows, d]; w: [d]; rstd: [rows] (may be null).
void rmsnorm_rows(float* y, float* rstd, const float* x, const float* w, int64_t rows, int64_t d, double eps, int threads);
// y = (x − mean) / sqrt(var + eps) · w + b (biased variance).  mean, rstd: [rows] (may be null).
void layernorm_rows(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b, int64_t rows,
                    int64_t d, double eps, int threads);

// The scalar softmax rows (the fallback). Without AVX-512 the norms run their twins themselves.
void softmax_row_scalar(float* p, int64_t n, int64_t n_all, float scale);
void softmax_backward_row_scalar(float* ds, const float* p, int64_t n, int64_t n_all, float scale);

}  // namespace moe::cpu
