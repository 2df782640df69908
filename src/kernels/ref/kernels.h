// Reference (scalar) kernels: the twins every fast kernel is tested against. Free functions,
// outputs first, no allocation (scratch is passed in), float64 accumulation. They know nothing
// of MoE. T = float or double.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace moe::ref {

// out[t, o] = Σ_j x[t, j] · W[o, j] (+ b[o]):  x [rows, in], W [out, in], out [rows, out].
template <class T>
void linear(T* out, const T* x, const T* W, const T* b, int64_t rows, int64_t in, int64_t out_dim) {
  for (int64_t t = 0; t < rows; ++t) {
    for (int64_t o = 0; o < out_dim; ++o) {
      double acc = b ? static_cast<double>(b[o]) : 0.0;
      const T* w = W + o * in;
      const T* xt = x + t * in;
      for (int64_t j = 0; j < in; ++j) acc += static_cast<double>(xt[j]) * static_cast<double>(w[j]);
      out[t * out_dim + o] = static_cast<T>(acc);
    }
  }
}

// Backward of linear, accumulating (+=): dx += dy·W, dW += dyᵀ·x, db += Σ_t dy. Null = skip.
template <class T>
void linear_backward(T* dx, T* dW, T* db, const T* dy, const T* x, const T* W, int64_t rows, int64_t in,
                     int64_t out_dim) {
  for (int64_t t = 0; t < rows; ++t) {
    for (int64_t o = 0; o < out_dim; ++o) {
      const double g = static_cast<double>(dy[t * out_dim + o]);
      if (g == 0) continue;
      if (db) db[o] += static_cast<T>(g);
      const T* w = W + o * in;
      const T* xt = x + t * in;
      if (dW) {
        T* dw = dW + o * in;
        for (int64_t j = 0; j < in; ++j) dw[j] += static_cast<T>(g * static_cast<double>(xt[j]));
      }
      if (dx) {
        T* dxt = dx + t * in;
        for (int64_t j = 0; j < in; ++j) dxt[j] += static_cast<T>(g * static_cast<double>(w[j]));
      }
    }
  }
}

template <class T>
double dot(const T* a, const T* b, int64_t n) {
  double acc = 0;
  for (int64_t i = 0; i < n; ++i) acc += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return acc;
}

// One row: out = softmax(z) over n entries, max-subtracted, float64 inside.
template <class T>
void softmax(T* out, const T* z, int64_t n) {
  double m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(z[i]));
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(z[i]) - m);
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(std::exp(static_cast<double>(z[i]) - m) / sum);
}

// Indices of the k largest of v[0..n), best first; ties go to the lower index. idx: [k];
// scratch: [n].
inline void top_k(int32_t* idx, const double* v, int64_t n, int64_t k, int32_t* scratch) {
  for (int64_t i = 0; i < n; ++i) scratch[i] = static_cast<int32_t>(i);
  std::partial_sort(scratch, scratch + k, scratch + n, [v](int32_t a, int32_t b) {
    return v[a] > v[b] || (v[a] == v[b] && a < b);
  });
  std::copy(scratch, scratch + k, idx);
}

// Activations with their derivatives.
struct ValueGrad {
  double v, d;
};
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
inline ValueGrad silu(double x) {
  const double s = sigmoid(x);
  return {x * s, s * (1 + x * (1 - s))};
}
inline ValueGrad gelu_erf(double x) {
  const double cdf = 0.5 * (1 + std::erf(x / std::sqrt(2.0)));
  return {x * cdf, cdf + x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI)};
}
inline ValueGrad gelu_tanh(double x) {
  constexpr double c = 0.7978845608028654;  // sqrt(2/pi)
  const double th = std::tanh(c * (x + 0.044715 * x * x * x));
  return {0.5 * x * (1 + th), 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * c * (1 + 3 * 0.044715 * x * x)};
}
inline ValueGrad relu(double x) { return {x > 0 ? x : 0, x > 0 ? 1.0 : 0.0}; }
// torch.clamp: the gradient passes where lo <= x <= hi (inclusive).
inline ValueGrad clamp(double x, double lo, double hi) { return {std::clamp(x, lo, hi), (x >= lo && x <= hi) ? 1.0 : 0.0}; }

}  // namespace moe::ref
