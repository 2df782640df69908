#include "kernels/cpu/rows.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/microkernel.h"
#include "kernels/cpu/simd_avx512.h"
#include "kernels/ref/transformer.h"

namespace moe::cpu {

namespace {

// Rows with less work than this stay on one thread: a parallel region costs more.
constexpr int64_t kParallelWork = 1 << 15;

bool use_avx512() {
  static const bool yes = detected_isa() == Isa::avx512;
  return yes;
}

MOE_AVX512 void softmax_row_avx512(float* p, int64_t n, int64_t n_all, float scale) {
  __m512 mv = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) mv = _mm512_maskz_max_ps(0xFFFF, mv, _mm512_loadu_ps(p + j));
  if (j < n) {
    const __mmask16 k = tail_mask(n - j);
    mv = _mm512_mask_max_ps(mv, k, mv, _mm512_maskz_loadu_ps(k, p + j));
  }
  const __m512 m = _mm512_set1_ps(hmax16(mv)), sc = _mm512_set1_ps(scale);
  __m512 sum = _mm512_setzero_ps();
  for (j = 0; j + 16 <= n; j += 16) {
    const __m512 e = exp_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(p + j), m), sc));
    _mm512_storeu_ps(p + j, e);
    sum = _mm512_add_ps(sum, e);
  }
  if (j < n) {
    const __mmask16 k = tail_mask(n - j);
    const __m512 e = exp_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, p + j), m), sc));
    _mm512_mask_storeu_ps(p + j, k, e);
    sum = _mm512_mask_add_ps(sum, k, sum, e);
  }
  const __m512 inv = _mm512_set1_ps(1.0f / hsum16(sum));
  for (j = 0; j + 16 <= n; j += 16) _mm512_storeu_ps(p + j, _mm512_mul_ps(_mm512_loadu_ps(p + j), inv));
  if (j < n) {
    const __mmask16 k = tail_mask(n - j);
    _mm512_mask_storeu_ps(p + j, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, p + j), inv));
  }
  std::fill(p + n, p + n_all, 0.0f);
}

MOE_AVX512 void softmax_backward_row_avx512(float* ds, const float* p, int64_t n, int64_t n_all, float scale) {
  __m512 acc = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(p + j), _mm512_loadu_ps(ds + j), acc);
  if (j < n) {
    const __mmask16 k = tail_mask(n - j);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, p + j), _mm512_maskz_loadu_ps(k, ds + j), acc);
  }
  const __m512 dot = _mm512_set1_ps(hsum16(acc)), sc = _mm512_set1_ps(scale);
  for (j = 0; j + 16 <= n; j += 16) {
    const __m512 sp = _mm512_mul_ps(sc, _mm512_loadu_ps(p + j));
    _mm512_storeu_ps(ds + j, _mm512_mul_ps(sp, _mm512_sub_ps(_mm512_loadu_ps(ds + j), dot)));
  }
  if (j < n) {
    const __mmask16 k = tail_mask(n - j);
    const __m512 sp = _mm512_mul_ps(sc, _mm512_maskz_loadu_ps(k, p + j));
    _mm512_mask_storeu_ps(ds + j, k, _mm512_mul_ps(sp, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, ds + j), dot)));
  }
  std::fill(ds + n, ds + n_all, 0.0f);
}

// y = (x − shift)·r·w (+ b).
MOE_AVX512 void scale_row_avx512(float* y, const float* x, float shift, float r, const float* w, const float* b,
                                 int64_t d) {
  const __m512 sv = _mm512_set1_ps(shift), rv = _mm512_set1_ps(r);
  for (int64_t j = 0; j < d; j += 16) {
    const __mmask16 k = tail_mask(d - j);
    __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), sv), rv), _mm512_maskz_loadu_ps(k, w + j));
    if (b) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, b + j));
    _mm512_mask_storeu_ps(y + j, k, v);
  }
}

MOE_AVX512 float sum_avx512(const float* x, float shift, bool square, int64_t d) {
  __m512 acc = _mm512_setzero_ps();
  const __m512 sv = _mm512_set1_ps(shift);
  for (int64_t j = 0; j < d; j += 16) {
    const __mmask16 k = tail_mask(d - j);
    const __m512 v = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x + j), sv);
    acc = square ? _mm512_fmadd_ps(v, v, acc) : _mm512_add_ps(acc, v);
  }
  return hsum16(acc);
}

MOE_AVX512 void rmsnorm_row_avx512(float* y, float* rstd, const float* x, const float* w, int64_t d, double eps) {
  const double r = 1.0 / std::sqrt(static_cast<double>(sum_avx512(x, 0.0f, true, d)) / static_cast<double>(d) + eps);
  if (rstd) *rstd = static_cast<float>(r);
  scale_row_avx512(y, x, 0.0f, static_cast<float>(r), w, nullptr, d);
}

MOE_AVX512 void layernorm_row_avx512(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b, int64_t d,
                          double eps) {
  const float m = sum_avx512(x, 0.0f, false, d) / static_cast<float>(d);
  const double r = 1.0 / std::sqrt(static_cast<double>(sum_avx512(x, m, true, d)) / static_cast<double>(d) + eps);
  if (mean) *mean = m;
  if (rstd) *rstd = static_cast<float>(r);
  scale_row_avx512(y, x, m, static_cast<float>(r), w, b, d);
}

}  // namespace

void softmax_row_scalar(float* p, int64_t n, int64_t n_all, float scale) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < n; ++j) m = std::max(m, p[j]);
  float sum = 0;
  for (int64_t j = 0; j < n; ++j) {
    p[j] = std::exp((p[j] - m) * scale);
    sum += p[j];
  }
  const float inv = 1.0f / sum;
  for (int64_t j = 0; j < n; ++j) p[j] *= inv;
  std::fill(p + n, p + n_all, 0.0f);
}

void softmax_backward_row_scalar(float* ds, const float* p, int64_t n, int64_t n_all, float scale) {
  float dot = 0;
  for (int64_t j = 0; j < n; ++j) dot += p[j] * ds[j];
  for (int64_t j = 0; j < n; ++j) ds[j] = scale * p[j] * (ds[j] - dot);
  std::fill(ds + n, ds + n_all, 0.0f);
}

void softmax_row(float* p, int64_t n, int64_t n_all, float scale) {
  if (use_avx512()) return softmax_row_avx512(p, n, n_all, scale);
  softmax_row_scalar(p, n, n_all, scale);
}

void softmax_backward_row(float* ds, const float* p, int64_t n, int64_t n_all, float scale) {
  if (use_avx512()) return softmax_backward_row_avx512(ds, p, n, n_all, scale);
  softmax_backward_row_scalar(ds, p, n, n_all, scale);
}

void rmsnorm_rows(float* y, float* rstd, const float* x, const float* w, int64_t rows, int64_t d, double eps, int threads) {
  const bool vec = use_avx512();
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && rows * d > kParallelWork)
  for (int64_t t = 0; t < rows; ++t) {
    float* r = rstd ? rstd + t : nullptr;
    if (vec) {
      rmsnorm_row_avx512(y + t * d, r, x + t * d, w, d, eps);
    } else {  // the fallback is the twin itself
      float rs;
      ref::rmsnorm_forward(y + t * d, &rs, x + t * d, w, 1, d, eps);
      if (r) *r = rs;
    }
  }
}

void layernorm_rows(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b, int64_t rows,
                    int64_t d, double eps, int threads) {
  const bool vec = use_avx512();
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && rows * d > kParallelWork)
  for (int64_t t = 0; t < rows; ++t) {
    float* m = mean ? mean + t : nullptr;
    float* r = rstd ? rstd + t : nullptr;
    if (vec) {
      layernorm_row_avx512(y + t * d, m, r, x + t * d, w, b, d, eps);
    } else {  // the fallback is the twin itself
      float ms, rs;
      ref::layernorm_forward(y + t * d, &ms, &rs, x + t * d, w, b, 1, d, eps);
      if (m) *m = ms;
      if (r) *r = rs;
    }
  }
}

}  // namespace moe::cpu
