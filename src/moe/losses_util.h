// Shared pieces of the balance losses (losses_*.cpp): argument checks at the edge, and row
// helpers that work in double whatever the input type.
#pragma once

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>

#include "moe/error.h"

namespace moe::losses_detail {

[[noreturn]] inline void fail(const std::string& msg) { throw InvalidInput("[losses] " + msg); }

inline void check_shape(const char* what, int64_t n_tokens, int64_t n_experts) {
  if (n_experts < 1) fail(std::string(what) + ": n_experts=" + std::to_string(n_experts) + " < 1");
  if (n_tokens < 0) fail(std::string(what) + ": n_tokens=" + std::to_string(n_tokens) + " < 0");
}

inline void check_top_k(const char* what, int64_t top_k, int64_t n_experts) {
  if (top_k < 1) fail(std::string(what) + ": top_k=" + std::to_string(top_k) + " < 1");
  if (top_k > n_experts) {
    fail(std::string(what) + ": top_k=" + std::to_string(top_k) + " > n_experts=" +
         std::to_string(n_experts));
  }
}

inline void check_group(const char* what, const char* name, int64_t group_size, int64_t n_tokens) {
  if (group_size < 1) fail(std::string(what) + ": " + name + "=" + std::to_string(group_size) + " < 1");
  if (n_tokens % group_size != 0) {
    fail(std::string(what) + ": " + name + "=" + std::to_string(group_size) +
         " does not divide n_tokens=" + std::to_string(n_tokens));
  }
}

inline void check_ptr(const char* what, const char* name, const void* p, int64_t n_tokens) {
  if (n_tokens > 0 && p == nullptr) fail(std::string(what) + ": " + name + " is null");
}

inline void check_ids(const char* what, const int32_t* ids, int64_t n, int64_t n_experts) {
  for (int64_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= n_experts) {
      fail(std::string(what) + ": expert id " + std::to_string(ids[i]) + " at " + std::to_string(i) +
           " is outside [0, n_experts=" + std::to_string(n_experts) + ")");
    }
  }
}

// p[e] = softmax(z)[e] in double; returns logsumexp(z).
template <class T>
double softmax_row(const T* z, int64_t n_experts, double* p) {
  double mx = static_cast<double>(z[0]);
  for (int64_t e = 1; e < n_experts; ++e) mx = std::max(mx, static_cast<double>(z[e]));
  double sum = 0;
  for (int64_t e = 0; e < n_experts; ++e) {
    p[e] = std::exp(static_cast<double>(z[e]) - mx);
    sum += p[e];
  }
  for (int64_t e = 0; e < n_experts; ++e) p[e] /= sum;
  return mx + std::log(sum);
}

// Softmax backward of one row: dz[e] += p[e]·(g[e] − Σ_j g[j] p[j]), g = d(loss)/d(p).
template <class T>
void softmax_backward_row(const double* p, const double* g, int64_t n_experts, T* dz) {
  double dot = 0;
  for (int64_t e = 0; e < n_experts; ++e) dot += g[e] * p[e];
  for (int64_t e = 0; e < n_experts; ++e) dz[e] += static_cast<T>(p[e] * (g[e] - dot));
}

// order[0..k) = indices of the k largest v, best first, ties toward the lowest index
// (jax.lax.top_k, stable argsort). order: [E] scratch.
template <class V>
void top_k_row(const V* v, int64_t n_experts, int64_t top_k, int32_t* order) {
  assert(top_k >= 1 && top_k <= n_experts);
  std::iota(order, order + n_experts, 0);
  std::partial_sort(order, order + top_k, order + n_experts, [v](int32_t a, int32_t b) {
    return v[a] > v[b] || (v[a] == v[b] && a < b);
  });
}

// CV² = Var(x)/Mean(x)² with the population variance; dx (nullable) = d(CV²)/dx.
// A zero mean gives 0 with a zero gradient (vmoe would give NaN).
inline double cv_squared(const double* x, int64_t n, double* dx) {
  double mean = 0;
  for (int64_t i = 0; i < n; ++i) mean += x[i];
  mean /= static_cast<double>(n);
  double var = 0;
  for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  var /= static_cast<double>(n);
  if (mean == 0) {
    if (dx) std::fill(dx, dx + n, 0.0);
    return 0;
  }
  // d var/dx_i = 2(x_i − m)/n (the term through m sums to 0); d m/dx_i = 1/n.
  if (dx) {
    const double scale = 2.0 / (static_cast<double>(n) * mean * mean);
    for (int64_t i = 0; i < n; ++i) dx[i] = scale * ((x[i] - mean) - var / mean);
  }
  return var / (mean * mean);
}

}  // namespace moe::losses_detail
