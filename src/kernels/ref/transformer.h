// Reference kernels of a transformer block: RMSNorm, LayerNorm and one attention head (RoPE,
// exact elementwise arithmetic with one implementation for both paths, is in kernels/ops.h). Free functions, outputs first, no allocation (scratch passed in), float64
// accumulation of reductions. They know nothing of GPT; the model calls them per row / per head.
// T = float or double.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace moe::ref {

// y = x / sqrt(mean(x²) + eps) · w.  x, y: [rows, d]; w: [d]; rstd: [rows].
template <class T>
void rmsnorm_forward(T* y, T* rstd, const T* x, const T* w, int64_t rows, int64_t d, double eps) {
  for (int64_t t = 0; t < rows; ++t) {
    const T* xt = x + t * d;
    double ss = 0;
    for (int64_t j = 0; j < d; ++j) ss += static_cast<double>(xt[j]) * static_cast<double>(xt[j]);
    const double r = 1.0 / std::sqrt(ss / static_cast<double>(d) + eps);
    rstd[t] = static_cast<T>(r);
    for (int64_t j = 0; j < d; ++j) y[t * d + j] = static_cast<T>(static_cast<double>(xt[j]) * r * static_cast<double>(w[j]));
  }
}

// dx += rstd·(g − x̂·mean(g·x̂)), g = dy·w, x̂ = x·rstd;  dw += Σ_t dy·x̂. Null dw = skip.
template <class T>
void rmsnorm_backward(T* dx, T* dw, const T* dy, const T* x, const T* w, const T* rstd, int64_t rows, int64_t d) {
  for (int64_t t = 0; t < rows; ++t) {
    const T* xt = x + t * d;
    const T* dyt = dy + t * d;
    const double r = static_cast<double>(rstd[t]);
    double dot = 0;
    for (int64_t j = 0; j < d; ++j) {
      const double xh = static_cast<double>(xt[j]) * r;
      dot += static_cast<double>(dyt[j]) * static_cast<double>(w[j]) * xh;
      if (dw) dw[j] += static_cast<T>(static_cast<double>(dyt[j]) * xh);
    }
    dot /= static_cast<double>(d);
    for (int64_t j = 0; j < d; ++j) {
      const double xh = static_cast<double>(xt[j]) * r;
      const double g = static_cast<double>(dyt[j]) * static_cast<double>(w[j]);
      dx[t * d + j] += static_cast<T>(r * (g - xh * dot));
    }
  }
}

// y = (x − mean) / sqrt(var + eps) · w + b (biased variance, as torch).  mean, rstd: [rows].
template <class T>
void layernorm_forward(T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t rows, int64_t d, double eps) {
  for (int64_t t = 0; t < rows; ++t) {
    const T* xt = x + t * d;
    double m = 0;
    for (int64_t j = 0; j < d; ++j) m += static_cast<double>(xt[j]);
    m /= static_cast<double>(d);
    double var = 0;
    for (int64_t j = 0; j < d; ++j) var += (static_cast<double>(xt[j]) - m) * (static_cast<double>(xt[j]) - m);
    const double r = 1.0 / std::sqrt(var / static_cast<double>(d) + eps);
    mean[t] = static_cast<T>(m);
    rstd[t] = static_cast<T>(r);
    for (int64_t j = 0; j < d; ++j) {
      y[t * d + j] = static_cast<T>((static_cast<double>(xt[j]) - m) * r * static_cast<double>(w[j]) +
                                    static_cast<double>(b[j]));
    }
  }
}

// dx += rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·w;  dw += Σ dy·x̂;  db += Σ dy.
template <class T>
void layernorm_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const T* mean, const T* rstd,
                        int64_t rows, int64_t d) {
  for (int64_t t = 0; t < rows; ++t) {
    const T* xt = x + t * d;
    const T* dyt = dy + t * d;
    const double m = static_cast<double>(mean[t]), r = static_cast<double>(rstd[t]);
    double gsum = 0, gx = 0;
    for (int64_t j = 0; j < d; ++j) {
      const double xh = (static_cast<double>(xt[j]) - m) * r;
      const double g = static_cast<double>(dyt[j]) * static_cast<double>(w[j]);
      gsum += g;
      gx += g * xh;
      if (dw) dw[j] += static_cast<T>(static_cast<double>(dyt[j]) * xh);
      if (db) db[j] += dyt[j];
    }
    gsum /= static_cast<double>(d);
    gx /= static_cast<double>(d);
    for (int64_t j = 0; j < d; ++j) {
      const double xh = (static_cast<double>(xt[j]) - m) * r;
      const double g = static_cast<double>(dyt[j]) * static_cast<double>(w[j]);
      dx[t * d + j] += static_cast<T>(r * (g - gsum - xh * gx));
    }
  }
}

// One attention head over one sequence. Query i (absolute position q_offset + i) attends to keys
// j < n_kv (j <= q_offset + i when causal). Rows are strided: q at q + i·q_stride, k/v at
// k + j·kv_stride, out at out + i·out_stride (hd values each).
//   probs: [n_q, n_kv] softmax(scale · q·kᵀ) (masked entries 0);  out = probs · v.
template <class T>
void attention_head_forward(T* out, int64_t out_stride, T* probs, const T* q, int64_t q_stride, const T* k,
                            const T* v, int64_t kv_stride, int64_t n_q, int64_t n_kv, int64_t q_offset, int64_t hd,
                            double scale, bool causal) {
  for (int64_t i = 0; i < n_q; ++i) {
    const T* qi = q + i * q_stride;
    T* p = probs + i * n_kv;
    const int64_t n_see = causal ? std::min(n_kv, q_offset + i + 1) : n_kv;
    double m = -INFINITY;
    for (int64_t j = 0; j < n_see; ++j) {
      const T* kj = k + j * kv_stride;
      T acc = 0;
      for (int64_t c = 0; c < hd; ++c) acc += qi[c] * kj[c];
      p[j] = static_cast<T>(static_cast<double>(acc) * scale);
      m = std::max(m, static_cast<double>(p[j]));
    }
    double sum = 0;
    for (int64_t j = 0; j < n_see; ++j) {
      const double e = std::exp(static_cast<double>(p[j]) - m);
      p[j] = static_cast<T>(e);
      sum += e;
    }
    const double inv = 1.0 / sum;
    for (int64_t j = 0; j < n_see; ++j) p[j] = static_cast<T>(static_cast<double>(p[j]) * inv);
    for (int64_t j = n_see; j < n_kv; ++j) p[j] = T(0);
    T* oi = out + i * out_stride;
    for (int64_t c = 0; c < hd; ++c) oi[c] = T(0);
    for (int64_t j = 0; j < n_see; ++j) {
      const T pj = p[j];
      const T* vj = v + j * kv_stride;
      for (int64_t c = 0; c < hd; ++c) oi[c] += pj * vj[c];
    }
  }
}

// Backward of attention_head_forward (n_q = n_kv = n, q_offset 0), accumulating (+=):
//   dP = dout·vᵀ, dv += Pᵀ·dout, dS = P ⊙ (dP − rowsum(P ⊙ dP)), dq += scale·dS·k, dk += scale·dSᵀ·q.
// scratch: [n].
template <class T>
void attention_head_backward(T* dq, T* dk, T* dv, const T* dout, int64_t out_stride, const T* probs, const T* q,
                             int64_t q_stride, const T* k, const T* v, int64_t kv_stride, int64_t n, int64_t hd,
                             double scale, bool causal, T* scratch) {
  for (int64_t i = 0; i < n; ++i) {
    const T* p = probs + i * n;
    const T* doi = dout + i * out_stride;
    const int64_t n_see = causal ? i + 1 : n;
    double rowdot = 0;
    for (int64_t j = 0; j < n_see; ++j) {
      const T* vj = v + j * kv_stride;
      T acc = 0;
      for (int64_t c = 0; c < hd; ++c) acc += doi[c] * vj[c];
      scratch[j] = acc;  // dP[i, j]
      rowdot += static_cast<double>(p[j]) * static_cast<double>(acc);
      T* dvj = dv + j * kv_stride;
      const T pj = p[j];
      for (int64_t c = 0; c < hd; ++c) dvj[c] += pj * doi[c];
    }
    const T* qi = q + i * q_stride;
    T* dqi = dq + i * q_stride;
    for (int64_t j = 0; j < n_see; ++j) {
      const T ds = static_cast<T>(static_cast<double>(p[j]) * (static_cast<double>(scratch[j]) - rowdot) * scale);
      const T* kj = k + j * kv_stride;
      T* dkj = dk + j * kv_stride;
      for (int64_t c = 0; c < hd; ++c) {
        dqi[c] += ds * kj[c];
        dkj[c] += ds * qi[c];
      }
    }
  }
}

}  // namespace moe::ref
