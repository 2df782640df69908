// Softmax attention in f32 (kernels/cpu/attention.h).
#include "kernels/cpu/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/microkernel.h"
#include "kernels/cpu/rows.h"
#include "kernels/cpu/simd_avx512.h"
#include "kernels/ref/transformer.h"

namespace moe::cpu {

namespace {

constexpr int64_t kBlock = 32;              // query (or key) rows per GEMM block
constexpr int64_t kParallelWork = 1 << 15;  // multiply-adds below which one thread does it all

float scale_of(int64_t hd) { return static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd))); }

// One thread's GEMM packing buffers: enough for every product of one (sequence, head).
size_t gemm_slice(const AttentionShape& s) {
  const int64_t big = std::max(s.S, s.hd);
  return gemm_f32_scratch_bytes(kBlock, big, big, 1);
}

void gemm1(int64_t M, int64_t N, int64_t K, MatView A, MatView B, float* C, int64_t ldc, bool acc, Scratch scratch) {
  gemm_f32(M, N, K, A, B, C, ldc, acc, 1, nullptr, scratch);
}

// One head of one sequence. q, o: row stride qd; k, v: row stride kvd; P: [S, S].
void head_forward(const AttentionShape& s, int64_t qd, int64_t kvd, float* o, float* P, const float* q,
                  const float* k, const float* v, float scale, Scratch scratch) {
  const int64_t S = s.S, hd = s.hd;
  for (int64_t i0 = 0; i0 < S; i0 += kBlock) {
    const int64_t i1 = std::min(S, i0 + kBlock), m = i1 - i0;
    const int64_t nk = s.causal ? i1 : S;  // keys this block sees
    gemm1(m, nk, hd, {q + i0 * qd, qd, 1}, {k, 1, kvd}, P + i0 * S, S, false, scratch);  // raw scores
    for (int64_t i = i0; i < i1; ++i) softmax_row(P + i * S, s.causal ? i + 1 : S, S, scale);
    gemm1(m, hd, nk, {P + i0 * S, S, 1}, {v, kvd, 1}, o + i0 * qd, qd, false, scratch);
  }
}

// Backward of head_forward, accumulating into dq (stride qd), dk, dv (stride kvd). dS: [S, S].
void head_backward(const AttentionShape& s, int64_t qd, int64_t kvd, float* dq, float* dk, float* dv, float* dS,
                   const float* dout, const float* P, const float* q, const float* k, const float* v, float scale,
                   Scratch scratch) {
  const int64_t S = s.S, hd = s.hd;
  for (int64_t i0 = 0; i0 < S; i0 += kBlock) {
    const int64_t i1 = std::min(S, i0 + kBlock), m = i1 - i0;
    const int64_t nk = s.causal ? i1 : S;
    gemm1(m, nk, hd, {dout + i0 * qd, qd, 1}, {v, 1, kvd}, dS + i0 * S, S, false, scratch);  // dP
    for (int64_t i = i0; i < i1; ++i) softmax_backward_row(dS + i * S, P + i * S, s.causal ? i + 1 : S, nk, scale);
    gemm1(m, hd, nk, {dS + i0 * S, S, 1}, {k, kvd, 1}, dq + i0 * qd, qd, true, scratch);
  }
  // Key blocks: only queries at or after the block's first key contribute when causal (the
  // entries of P and dS above the diagonal are zero).
  for (int64_t j0 = 0; j0 < S; j0 += kBlock) {
    const int64_t j1 = std::min(S, j0 + kBlock), m = j1 - j0;
    const int64_t ib = s.causal ? j0 : 0, ni = S - ib;
    gemm1(m, hd, ni, {P + ib * S + j0, 1, S}, {dout + ib * qd, qd, 1}, dv + j0 * kvd, kvd, true, scratch);
    gemm1(m, hd, ni, {dS + ib * S + j0, 1, S}, {q + ib * qd, qd, 1}, dk + j0 * kvd, kvd, true, scratch);
  }
}

// One cached query row: scores over keys [0, n_see), softmax, weighted sum of values.
MOE_AVX512 void cached_row_avx512(float* o, const float* q, const float* K, const float* V, int64_t kvd, int64_t n_see,
                                  int64_t hd, float scale, float* p) {
  const int64_t nv = (hd + 15) / 16;
  __m512 qv[16];
  for (int64_t c = 0; c < nv; ++c) qv[c] = _mm512_maskz_loadu_ps(tail_mask(hd - 16 * c), q + 16 * c);
  __m512 acc[16];
  for (int64_t j0 = 0; j0 < n_see; j0 += 16) {  // 16 keys at a time: 16 dot products, one transpose
    const int64_t nj = std::min<int64_t>(16, n_see - j0);
    for (int64_t jj = 0; jj < 16; ++jj) {
      acc[jj] = _mm512_setzero_ps();
      if (jj >= nj) continue;
      const float* kr = K + (j0 + jj) * kvd;
      for (int64_t c = 0; c < nv; ++c) acc[jj] = _mm512_fmadd_ps(qv[c], _mm512_maskz_loadu_ps(tail_mask(hd - 16 * c), kr + 16 * c), acc[jj]);
    }
    transpose16(acc);
    __m512 sum = acc[0];
    for (int64_t c = 1; c < 16; ++c) sum = _mm512_add_ps(sum, acc[c]);
    _mm512_mask_storeu_ps(p + j0, tail_mask(nj), sum);
  }
  softmax_row(p, n_see, n_see, scale);
  __m512 out[16];
  for (int64_t c = 0; c < nv; ++c) out[c] = _mm512_setzero_ps();
  for (int64_t j = 0; j < n_see; ++j) {
    const __m512 pj = _mm512_set1_ps(p[j]);
    const float* vr = V + j * kvd;
    for (int64_t c = 0; c < nv; ++c) out[c] = _mm512_fmadd_ps(pj, _mm512_maskz_loadu_ps(tail_mask(hd - 16 * c), vr + 16 * c), out[c]);
  }
  for (int64_t c = 0; c < nv; ++c) _mm512_mask_storeu_ps(o + 16 * c, tail_mask(hd - 16 * c), out[c]);
}

}  // namespace

size_t attention_forward_scratch_bytes(const AttentionShape& s, int threads) {
  return static_cast<size_t>(std::max(threads, 1)) * gemm_slice(s);
}

void attention_forward(const AttentionShape& s, float* att, float* probs, const float* q, const float* k,
                       const float* v, int threads, Scratch scratch) {
  const int64_t B = s.B, S = s.S, H = s.H, qd = H * s.hd, kvd = s.Hkv * s.hd, group = H / s.Hkv;
  const float scale = scale_of(s.hd);
  const size_t slice = gemm_slice(s);
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads) if (threads > 1 && B * H * S * S * s.hd > kParallelWork)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      const int64_t qo = b * S * qd + h * s.hd, ko = b * S * kvd + (h / group) * s.hd;
      head_forward(s, qd, kvd, att + qo, probs + (b * H + h) * S * S, q + qo, k + ko, v + ko, scale,
                   scratch.slice(static_cast<size_t>(omp_get_thread_num()), slice));
    }
  }
}

size_t attention_backward_scratch_bytes(const AttentionShape& s, int threads) {
  return static_cast<size_t>(std::max(threads, 1)) * (gemm_slice(s) + align64(static_cast<size_t>(s.S * s.S) * sizeof(float)));
}

void attention_backward(const AttentionShape& s, float* dq, float* dk, float* dv, const float* datt,
                        const float* probs, const float* q, const float* k, const float* v, int threads,
                        Scratch scratch) {
  const int64_t B = s.B, S = s.S, H = s.H, Hkv = s.Hkv, qd = H * s.hd, kvd = Hkv * s.hd, group = H / Hkv;
  const float scale = scale_of(s.hd);
  const size_t ds_bytes = align64(static_cast<size_t>(S * S) * sizeof(float)), slice = gemm_slice(s) + ds_bytes;
  // One task per (sequence, kv head): the query heads sharing it accumulate into the same dk/dv.
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads) if (threads > 1 && B * H * S * S * s.hd > kParallelWork)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t kvh = 0; kvh < Hkv; ++kvh) {
      Scratch mine = scratch.slice(static_cast<size_t>(omp_get_thread_num()), slice);
      float* dS = mine.take<float>(static_cast<size_t>(S * S));
      for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
        const int64_t qo = b * S * qd + h * s.hd, ko = b * S * kvd + kvh * s.hd;
        head_backward(s, qd, kvd, dq + qo, dk + ko, dv + ko, dS, datt + qo, probs + (b * H + h) * S * S, q + qo,
                      k + ko, v + ko, scale, mine);
      }
    }
  }
}

size_t attention_cached_scratch_bytes(int64_t n_kv, int threads) {
  return static_cast<size_t>(std::max(threads, 1)) * align64(static_cast<size_t>(n_kv + 16) * sizeof(float));
}

void attention_cached(int64_t n, int64_t p0, int64_t H, int64_t Hkv, int64_t hd, float* att, const float* q,
                      const float* k_cache, const float* v_cache, int threads, Scratch scratch) {
  const int64_t qd = H * hd, kvd = Hkv * hd, group = H / Hkv, n_kv = p0 + n;
  const float scale = scale_of(hd);
  const bool vec = detected_isa() == Isa::avx512 && hd <= 256;
  const size_t slice = align64(static_cast<size_t>(n_kv + 16) * sizeof(float));
#pragma omp parallel for collapse(2) schedule(dynamic, 4) num_threads(threads) if (threads > 1 && H * n * n_kv * hd > kParallelWork)
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t i = 0; i < n; ++i) {
      float* p = scratch.slice(static_cast<size_t>(omp_get_thread_num()), slice).take<float>(static_cast<size_t>(n_kv + 16));
      const int64_t off = (h / group) * hd;
      float* o = att + i * qd + h * hd;
      const float* qi = q + i * qd + h * hd;
      if (vec) {
        cached_row_avx512(o, qi, k_cache + off, v_cache + off, kvd, p0 + i + 1, hd, scale, p);
      } else {  // the fallback is the twin itself (one query row)
        ref::attention_head_forward(o, qd, p, qi, qd, k_cache + off, v_cache + off, kvd, 1, p0 + i + 1, p0 + i, hd,
                                    scale, true);
      }
    }
  }
}

}  // namespace moe::cpu
