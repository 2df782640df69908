// The typed entry points the model calls for its dense operations: float runs the fast CPU
// kernels (kernels/cpu), double their float64 twins (kernels/ref), which is what the
// finite-difference tests check. Overloads, not branches: this header is the one place the choice
// is made for dense operations (expert FFNs choose through the expert store's format traits,
// src/moe/expert_formats.cpp). Scratch comes from the caller's Workspace.
#pragma once

#include <omp.h>

#include <cmath>
#include <cstdint>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/rows.h"
#include "kernels/ref/kernels.h"
#include "kernels/ref/transformer.h"
#include "moe/workspace.h"

namespace moe::ops {

inline int threads() { return omp_get_max_threads(); }

// out [rows, n] = x [rows, k] · Wᵀ (+ b [n]), W [n, k] as stored (it changes every step).
inline void linear(float* out, const float* x, const float* W, const float* b, int64_t rows, int64_t k, int64_t n,
                   Workspace& ws) {
  const int th = threads();
  cpu::gemm_f32(rows, n, k, {x, k, 1}, {W, 1, k}, out, n, false, th, nullptr,
                ws.get(cpu::gemm_f32_scratch_bytes(rows, n, k, th)));
  if (b) {
    for (int64_t t = 0; t < rows; ++t)
      for (int64_t o = 0; o < n; ++o) out[t * n + o] += b[o];
  }
}
inline void linear(double* out, const double* x, const double* W, const double* b, int64_t rows, int64_t k, int64_t n,
                   Workspace&) {
  ref::linear(out, x, W, b, rows, k, n);
}

// A linear layer's weight W [n, k]: as stored (training: it changes every step), or packed once for
// inference (float only; null = use raw).
template <class T>
struct Matrix {
  const T* raw = nullptr;
  const cpu::PackedMatrix* packed = nullptr;
};
inline void linear(float* out, const float* x, Matrix<float> W, const float* b, int64_t rows, int64_t k, int64_t n,
                   Workspace& ws) {
  if (!W.packed) return linear(out, x, W.raw, b, rows, k, n, ws);
  const int th = threads();
  cpu::linear_packed(*W.packed, x, rows, b, out, th, ws.get(cpu::linear_packed_scratch_bytes(*W.packed, rows, th)));
}
inline void linear(double* out, const double* x, Matrix<double> W, const double* b, int64_t rows, int64_t k, int64_t n,
                   Workspace& ws) {
  linear(out, x, W.raw, b, rows, k, n, ws);
}

// Backward of linear, accumulating: dx += dy·W, dW += dyᵀ·x, db += Σ_t dy (null = skip).
inline void linear_backward(float* dx, float* dW, float* db, const float* dy, const float* x, const float* W,
                            int64_t rows, int64_t k, int64_t n, Workspace& ws) {
  const int th = threads();
  if (dx) {
    cpu::gemm_f32(rows, k, n, {dy, n, 1}, {W, k, 1}, dx, k, true, th, nullptr,
                  ws.get(cpu::gemm_f32_scratch_bytes(rows, k, n, th)));
  }
  if (dW) {
    cpu::gemm_f32(n, k, rows, {dy, 1, n}, {x, k, 1}, dW, k, true, th, nullptr,
                  ws.get(cpu::gemm_f32_scratch_bytes(n, k, rows, th)));
  }
  if (db) {
    for (int64_t t = 0; t < rows; ++t)
      for (int64_t o = 0; o < n; ++o) db[o] += dy[t * n + o];
  }
}
inline void linear_backward(double* dx, double* dW, double* db, const double* dy, const double* x, const double* W,
                            int64_t rows, int64_t k, int64_t n, Workspace&) {
  ref::linear_backward(dx, dW, db, dy, x, W, rows, k, n);
}

// Norms over rows [rows, d]: rstd (and mean) per row kept for the backward.
inline void rmsnorm_forward(float* y, float* rstd, const float* x, const float* w, int64_t rows, int64_t d, double eps) {
  cpu::rmsnorm_rows(y, rstd, x, w, rows, d, eps, threads());
}
inline void rmsnorm_forward(double* y, double* rstd, const double* x, const double* w, int64_t rows, int64_t d,
                            double eps) {
  ref::rmsnorm_forward(y, rstd, x, w, rows, d, eps);
}
inline void layernorm_forward(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b,
                              int64_t rows, int64_t d, double eps) {
  cpu::layernorm_rows(y, mean, rstd, x, w, b, rows, d, eps, threads());
}
inline void layernorm_forward(double* y, double* mean, double* rstd, const double* x, const double* w, const double* b,
                              int64_t rows, int64_t d, double eps) {
  ref::layernorm_forward(y, mean, rstd, x, w, b, rows, d, eps);
}

// RoPE (HF rotate_half), one implementation for both element types: elementwise arithmetic with
// nothing to accumulate, so there is no separate twin.
// cos/sin tables of RoPE for positions [pos0, pos0 + n): cos, sin [n, hd/2],
// angle = pos · theta^(-2i/hd) (HF/Llama inv_freq), computed in float64.
template <class T>
inline void rope_tables(T* cos, T* sin, int64_t pos0, int64_t n, int64_t hd, double theta) {
  const int64_t half = hd / 2;
  for (int64_t p = 0; p < n; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const double inv_freq = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(hd));
      const double a = static_cast<double>(pos0 + p) * inv_freq;
      cos[p * half + i] = static_cast<T>(std::cos(a));
      sin[p * half + i] = static_cast<T>(std::sin(a));
    }
  }
}

// Rotates the n_heads heads of one row in place (rotate_half: pairs i and i + hd/2):
//   x'[i] = x[i]·c − x[i+h]·s,  x'[i+h] = x[i+h]·c + x[i]·s.
// inverse = the transpose (rotation by −angle): the backward of the forward rotation.
template <class T>
inline void rope_row(T* x, int64_t n_heads, int64_t hd, const T* cos, const T* sin, bool inverse) {
  const int64_t half = hd / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    T* xh = x + h * hd;
    for (int64_t i = 0; i < half; ++i) {
      const T c = cos[i], s = inverse ? -sin[i] : sin[i];
      const T a = xh[i], b = xh[i + half];
      xh[i] = a * c - b * s;
      xh[i + half] = b * c + a * s;
    }
  }
}

// Attention over B sequences of S positions (cpu::AttentionShape); probs [B, H, S, S] kept.
inline void attention_forward(const cpu::AttentionShape& s, float* att, float* probs, const float* q, const float* k,
                              const float* v, Workspace& ws) {
  const int th = threads();
  cpu::attention_forward(s, att, probs, q, k, v, th, ws.get(cpu::attention_forward_scratch_bytes(s, th)));
}
inline void attention_forward(const cpu::AttentionShape& s, double* att, double* probs, const double* q,
                              const double* k, const double* v, Workspace&) {
  const int64_t S = s.S, qd = s.H * s.hd, kvd = s.Hkv * s.hd, group = s.H / s.Hkv;
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.hd));
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (s.B * s.H * S * S * s.hd > (1 << 15))
  for (int64_t b = 0; b < s.B; ++b) {
    for (int64_t h = 0; h < s.H; ++h) {
      const int64_t qo = b * S * qd + h * s.hd, ko = b * S * kvd + (h / group) * s.hd;
      ref::attention_head_forward(att + qo, qd, probs + (b * s.H + h) * S * S, q + qo, qd, k + ko, v + ko, kvd, S, S,
                                  0, s.hd, scale, s.causal);
    }
  }
}

// n new queries at positions p0.. attend causally to the first p0 + n rows of a key/value cache.
inline void attention_cached(int64_t n, int64_t p0, int64_t H, int64_t Hkv, int64_t hd, float* att, const float* q,
                             const float* k_cache, const float* v_cache, Workspace& ws) {
  const int th = threads();
  cpu::attention_cached(n, p0, H, Hkv, hd, att, q, k_cache, v_cache, th,
                        ws.get(cpu::attention_cached_scratch_bytes(p0 + n, th)));
}
inline void attention_cached(int64_t n, int64_t p0, int64_t H, int64_t Hkv, int64_t hd, double* att, const double* q,
                             const double* k_cache, const double* v_cache, Workspace& ws) {
  const int64_t qd = H * hd, kvd = Hkv * hd, n_kv = p0 + n;
  double* probs = ws.get(static_cast<size_t>(n_kv) * sizeof(double)).take<double>(static_cast<size_t>(n_kv));
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t i = 0; i < n; ++i) {
      const int64_t off = (h / (H / Hkv)) * hd;
      ref::attention_head_forward(att + i * qd + h * hd, qd, probs, q + i * qd + h * hd, qd, k_cache + off,
                                  v_cache + off, kvd, 1, n_kv, p0 + i, hd, scale, true);
    }
  }
}

// Accumulates (+=) dq, dk, dv from datt.
inline void attention_backward(const cpu::AttentionShape& s, float* dq, float* dk, float* dv, const float* datt,
                               const float* probs, const float* q, const float* k, const float* v, Workspace& ws) {
  const int th = threads();
  cpu::attention_backward(s, dq, dk, dv, datt, probs, q, k, v, th, ws.get(cpu::attention_backward_scratch_bytes(s, th)));
}
inline void attention_backward(const cpu::AttentionShape& s, double* dq, double* dk, double* dv, const double* datt,
                               const double* probs, const double* q, const double* k, const double* v, Workspace& ws) {
  const int64_t S = s.S, qd = s.H * s.hd, kvd = s.Hkv * s.hd, group = s.H / s.Hkv;
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.hd));
  const int th = threads();
  const size_t slice = align64(static_cast<size_t>(S) * sizeof(double));
  const Scratch scratch = ws.get(static_cast<size_t>(th) * slice);
  // One task per (sequence, kv head): the heads sharing it accumulate into the same dk/dv.
#pragma omp parallel for collapse(2) schedule(dynamic, 1) num_threads(th) if (s.B * s.H * S * S * s.hd > (1 << 15))
  for (int64_t b = 0; b < s.B; ++b) {
    for (int64_t kvh = 0; kvh < s.Hkv; ++kvh) {
      double* row = scratch.slice(static_cast<size_t>(omp_get_thread_num()), slice).take<double>(static_cast<size_t>(S));
      for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
        const int64_t qo = b * S * qd + h * s.hd, ko = b * S * kvd + kvh * s.hd;
        ref::attention_head_backward(dq + qo, dk + ko, dv + ko, datt + qo, qd, probs + (b * s.H + h) * S * S, q + qo,
                                     qd, k + ko, v + ko, kvd, S, s.hd, scale, s.causal, row);
      }
    }
  }
}

}  // namespace moe::ops
