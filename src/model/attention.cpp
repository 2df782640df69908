// Float attention of the GPT training path (see attention.h): per (sequence, head), rows in
// blocks of kBlock queries; with a causal mask a block only multiplies the keys it can see.
//   forward:  P = softmax(scale·Q·Kᵀ) (masked 0), O = P·V
//   backward: dP = dO·Vᵀ, dS = scale·P ⊙ (dP − rowsum(P ⊙ dP)), dQ += dS·K, dK += dSᵀ·Q, dV += Pᵀ·dO
#include "attention.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/exp_avx512.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/microkernel.h"

namespace moe::gpt_detail {

namespace {

constexpr int64_t kBlock = 32;                // query (or key) rows per GEMM block
constexpr int64_t kParallelWork = 1 << 15;    // multiply-adds below which one thread does it all

// ---- row kernels: softmax and its backward -----------------------------------------------------

// p[0, n) = softmax(scale·p[0, n)), p[n, n_all) = 0.
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

// ds[0, n) = scale·p ⊙ (dp − Σ p ⊙ dp) in place of dp, ds[n, n_all) = 0.
void softmax_backward_row_scalar(float* ds, const float* p, int64_t n, int64_t n_all, float scale) {
  float dot = 0;
  for (int64_t j = 0; j < n; ++j) dot += p[j] * ds[j];
  for (int64_t j = 0; j < n; ++j) ds[j] = scale * p[j] * (ds[j] - dot);
  std::fill(ds + n, ds + n_all, 0.0f);
}

#define MOE_AVX512 __attribute__((target("avx512f,fma")))


MOE_AVX512 inline __mmask16 tail_mask(int64_t left) {
  return static_cast<__mmask16>((1u << left) - 1u);
}

// Horizontal max / sum in a fixed lane order (the reduce intrinsics trip GCC 12's
// -Wmaybe-uninitialized through _mm512_undefined_ps, as do the unmasked max forms).
MOE_AVX512 inline float hmax16(__m512 v) {
  alignas(64) float x[16];
  _mm512_store_ps(x, v);
  float m = x[0];
  for (int i = 1; i < 16; ++i) m = std::max(m, x[i]);
  return m;
}

MOE_AVX512 inline float hsum16(__m512 v) {
  alignas(64) float x[16];
  _mm512_store_ps(x, v);
  float s = 0;
  for (int i = 0; i < 16; ++i) s += x[i];
  return s;
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
    const __m512 e = cpu::exp_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(p + j), m), sc));
    _mm512_storeu_ps(p + j, e);
    sum = _mm512_add_ps(sum, e);
  }
  if (j < n) {
    const __mmask16 k = tail_mask(n - j);
    const __m512 e = cpu::exp_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, p + j), m), sc));
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

bool use_avx512() {
  static const bool yes = cpu::detected_isa() == cpu::Isa::avx512;
  return yes;
}

void softmax_row(float* p, int64_t n, int64_t n_all, float scale) {
  if (use_avx512()) {
    softmax_row_avx512(p, n, n_all, scale);
  } else {
    softmax_row_scalar(p, n, n_all, scale);
  }
}

void softmax_backward_row(float* ds, const float* p, int64_t n, int64_t n_all, float scale) {
  if (use_avx512()) {
    softmax_backward_row_avx512(ds, p, n, n_all, scale);
  } else {
    softmax_backward_row_scalar(ds, p, n, n_all, scale);
  }
}

// One-thread GEMM: C[M, N] (+)= A·B.
void gemm1(int64_t M, int64_t N, int64_t K, cpu::MatView A, cpu::MatView B, float* C, int64_t ldc, bool acc) {
  cpu::gemm_f32(M, N, K, A, B, C, ldc, acc, 1);
}

// One head of one sequence. q, o: row stride qd; k, v: row stride kvd; P: [S, S].
void head_forward(const AttentionShape& s, int64_t qd, int64_t kvd, float* o, float* P, const float* q,
                  const float* k, const float* v, float scale) {
  const int64_t S = s.S, hd = s.hd;
  for (int64_t i0 = 0; i0 < S; i0 += kBlock) {
    const int64_t i1 = std::min(S, i0 + kBlock), m = i1 - i0;
    const int64_t nk = s.causal ? i1 : S;  // keys this block sees
    gemm1(m, nk, hd, {q + i0 * qd, qd, 1}, {k, 1, kvd}, P + i0 * S, S, false);  // raw scores
    for (int64_t i = i0; i < i1; ++i) softmax_row(P + i * S, s.causal ? i + 1 : S, S, scale);
    gemm1(m, hd, nk, {P + i0 * S, S, 1}, {v, kvd, 1}, o + i0 * qd, qd, false);
  }
}

// Backward of head_forward, accumulating into dq (stride qd), dk, dv (stride kvd). dS: [S, S] scratch.
void head_backward(const AttentionShape& s, int64_t qd, int64_t kvd, float* dq, float* dk, float* dv, float* dS,
                   const float* dout, const float* P, const float* q, const float* k, const float* v, float scale) {
  const int64_t S = s.S, hd = s.hd;
  for (int64_t i0 = 0; i0 < S; i0 += kBlock) {
    const int64_t i1 = std::min(S, i0 + kBlock), m = i1 - i0;
    const int64_t nk = s.causal ? i1 : S;
    gemm1(m, nk, hd, {dout + i0 * qd, qd, 1}, {v, 1, kvd}, dS + i0 * S, S, false);  // dP
    for (int64_t i = i0; i < i1; ++i) softmax_backward_row(dS + i * S, P + i * S, s.causal ? i + 1 : S, nk, scale);
    gemm1(m, hd, nk, {dS + i0 * S, S, 1}, {k, kvd, 1}, dq + i0 * qd, qd, true);
  }
  // Key blocks: only queries at or after the block's first key contribute when causal (the
  // entries of P and dS above the diagonal are zero).
  for (int64_t j0 = 0; j0 < S; j0 += kBlock) {
    const int64_t j1 = std::min(S, j0 + kBlock), m = j1 - j0;
    const int64_t ib = s.causal ? j0 : 0, ni = S - ib;
    gemm1(m, hd, ni, {P + ib * S + j0, 1, S}, {dout + ib * qd, qd, 1}, dv + j0 * kvd, kvd, true);
    gemm1(m, hd, ni, {dS + ib * S + j0, 1, S}, {q + ib * qd, qd, 1}, dk + j0 * kvd, kvd, true);
  }
}

}  // namespace

void attention_forward_f32(const AttentionShape& s, float* att, float* probs, const float* q, const float* k,
                           const float* v) {
  const int64_t B = s.B, S = s.S, H = s.H, qd = H * s.hd, kvd = s.Hkv * s.hd, group = H / s.Hkv;
  const auto scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.hd)));
#pragma omp parallel for collapse(2) schedule(static) if (B * H * S * S * s.hd > kParallelWork)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      const int64_t qo = b * S * qd + h * s.hd, ko = b * S * kvd + (h / group) * s.hd;
      head_forward(s, qd, kvd, att + qo, probs + (b * H + h) * S * S, q + qo, k + ko, v + ko, scale);
    }
  }
}

void attention_backward_f32(const AttentionShape& s, float* dq, float* dk, float* dv, const float* datt,
                            const float* probs, const float* q, const float* k, const float* v) {
  const int64_t B = s.B, S = s.S, H = s.H, Hkv = s.Hkv, qd = H * s.hd, kvd = Hkv * s.hd, group = H / Hkv;
  const auto scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.hd)));
#pragma omp parallel if (B * H * S * S * s.hd > kParallelWork)
  {
    std::vector<float> dS(static_cast<size_t>(S * S));
    // One task per (sequence, kv head): the query heads sharing it accumulate into the same dk/dv.
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t kvh = 0; kvh < Hkv; ++kvh) {
        for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
          const int64_t qo = b * S * qd + h * s.hd, ko = b * S * kvd + kvh * s.hd;
          head_backward(s, qd, kvd, dq + qo, dk + ko, dv + ko, dS.data(), datt + qo, probs + (b * H + h) * S * S,
                        q + qo, k + ko, v + ko, scale);
        }
      }
    }
  }
}

}  // namespace moe::gpt_detail
