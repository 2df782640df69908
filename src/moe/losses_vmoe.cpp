// V-MoE auxiliary losses (§3.5; google-research/vmoe `vmoe/nn/routing.py`,
// NoisyTopExpertsPerItemRouter): importance CV² and the noisy-top-k load CV², per group.
#include <cassert>
#include <cmath>
#include <numbers>
#include <vector>

#include "moe/losses.h"
#include "moe/losses_util.h"

namespace moe {

using namespace losses_detail;

namespace {

// Shared body of the two importance entry points: gates come from `gates` directly, or as the
// softmax of `logits` (then the gradient is chained through that softmax).
template <class T>
T importance_impl(const char* what, const T* in, bool from_logits, int64_t n_tokens,
                  int64_t n_experts, int64_t group_size, T* din, T coef) {
  check_shape(what, n_tokens, n_experts);
  check_group(what, "group_size", group_size, n_tokens);
  check_ptr(what, from_logits ? "logits" : "gates", in, n_tokens);
  if (n_tokens == 0) return T(0);
  const int64_t E = n_experts;
  const int64_t n_groups = n_tokens / group_size;
  std::vector<double> p(E), importance(E), dimportance(E), g(E);
  double sum = 0;
  for (int64_t grp = 0; grp < n_groups; ++grp) {
    const int64_t t0 = grp * group_size;
    std::fill(importance.begin(), importance.end(), 0.0);
    for (int64_t t = t0; t < t0 + group_size; ++t) {
      if (from_logits) {
        softmax_row(in + t * E, E, p.data());
        for (int64_t e = 0; e < E; ++e) importance[e] += p[e];
      } else {
        for (int64_t e = 0; e < E; ++e) importance[e] += static_cast<double>(in[t * E + e]);
      }
    }
    sum += cv_squared(importance.data(), E, din ? dimportance.data() : nullptr);
    if (!din) continue;
    // d importance_e / d gates[x,e] = 1 for every x of the group.
    const double scale = static_cast<double>(coef) / static_cast<double>(n_groups);
    for (int64_t e = 0; e < E; ++e) g[e] = scale * dimportance[e];
    for (int64_t t = t0; t < t0 + group_size; ++t) {
      if (from_logits) {
        softmax_row(in + t * E, E, p.data());
        softmax_backward_row(p.data(), g.data(), E, din + t * E);
      } else {
        for (int64_t e = 0; e < E; ++e) din[t * E + e] += static_cast<T>(g[e]);
      }
    }
  }
  return static_cast<T>(sum / static_cast<double>(n_groups));
}

}  // namespace

template <class T>
T importance_loss(const T* gates, int64_t n_tokens, int64_t n_experts, int64_t group_size,
                  T* dgates, T coef) {
  return importance_impl("importance_loss", gates, false, n_tokens, n_experts, group_size, dgates, coef);
}

template <class T>
T importance_loss_from_logits(const T* logits, int64_t n_tokens, int64_t n_experts,
                              int64_t group_size, T* dlogits, T coef) {
  return importance_impl("importance_loss_from_logits", logits, true, n_tokens, n_experts,
                         group_size, dlogits, coef);
}

template <class T>
T vmoe_load_loss(const T* logits, const T* noisy_logits, int64_t n_tokens, int64_t n_experts,
                 int64_t top_k, double sigma, int64_t group_size, T* dlogits, T* dnoisy_logits,
                 T coef) {
  const char* what = "vmoe_load_loss";
  check_shape(what, n_tokens, n_experts);
  check_top_k(what, top_k, n_experts);
  check_group(what, "group_size", group_size, n_tokens);
  if (!(sigma > 0) || !std::isfinite(sigma)) fail(std::string(what) + ": sigma=" + std::to_string(sigma) + " must be > 0");
  check_ptr(what, "logits", logits, n_tokens);
  check_ptr(what, "noisy_logits", noisy_logits, n_tokens);
  if (n_tokens == 0) return T(0);
  const int64_t E = n_experts;
  const int64_t n_groups = n_tokens / group_size;
  const double n = static_cast<double>(group_size);
  const double inv_sqrt2 = 1.0 / std::sqrt(2.0);
  const double inv_sqrt2pi = 0.5 * std::numbers::inv_sqrtpi * std::numbers::sqrt2;
  const bool want_grad = dlogits || dnoisy_logits;

  std::vector<double> row(E), load(E), dload(E);
  std::vector<int32_t> order(E);
  std::vector<int32_t> thr_index(group_size);  // per token of the group: the k-th noisy logit
  // z = (thr − clean)/σ: the noise a logit needs to reach the threshold.
  const auto z_of = [&](int64_t t, int64_t e) {
    const double thr = static_cast<double>(noisy_logits[t * E + thr_index[t % group_size]]);
    return (thr - static_cast<double>(logits[t * E + e])) / sigma;
  };
  double sum = 0;
  for (int64_t grp = 0; grp < n_groups; ++grp) {
    const int64_t t0 = grp * group_size;
    std::fill(load.begin(), load.end(), 0.0);
    for (int64_t t = t0; t < t0 + group_size; ++t) {
      for (int64_t e = 0; e < E; ++e) row[e] = static_cast<double>(noisy_logits[t * E + e]);
      top_k_row(row.data(), E, top_k, order.data());
      thr_index[t - t0] = order[top_k - 1];
      // 1 − Φ(z) = erfc(z/√2)/2: exact in the tail, where 1 − Φ would round to 0.
      for (int64_t e = 0; e < E; ++e) load[e] += 0.5 * std::erfc(z_of(t, e) * inv_sqrt2) / n;
    }
    sum += cv_squared(load.data(), E, want_grad ? dload.data() : nullptr);
    if (!want_grad) continue;
    // dL/dp[x,e] = dload_e/n; dp/dz = −φ(z); dz/dclean = −1/σ; dz/dthr = +1/σ.
    const double scale = static_cast<double>(coef) / static_cast<double>(n_groups) / (n * sigma);
    for (int64_t t = t0; t < t0 + group_size; ++t) {
      double dthr = 0;
      for (int64_t e = 0; e < E; ++e) {
        const double z = z_of(t, e);
        const double d = scale * dload[e] * inv_sqrt2pi * std::exp(-0.5 * z * z);
        if (dlogits) dlogits[t * E + e] += static_cast<T>(d);
        dthr -= d;
      }
      if (dnoisy_logits) dnoisy_logits[t * E + thr_index[t - t0]] += static_cast<T>(dthr);
    }
  }
  return static_cast<T>(sum / static_cast<double>(n_groups));
}

#define MOE_INSTANTIATE(T)                                                                        \
  template T importance_loss<T>(const T*, int64_t, int64_t, int64_t, T*, T);                      \
  template T importance_loss_from_logits<T>(const T*, int64_t, int64_t, int64_t, T*, T);          \
  template T vmoe_load_loss<T>(const T*, const T*, int64_t, int64_t, int64_t, double, int64_t,    \
                               T*, T*, T);
MOE_INSTANTIATE(float)
MOE_INSTANTIATE(double)
#undef MOE_INSTANTIATE

}  // namespace moe
