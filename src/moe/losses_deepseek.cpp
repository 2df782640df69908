// DeepSeek balance machinery (§3.4): the V2 `MoEGate` aux loss (sequence-wise or batch-wise),
// the V3 complementary sequence-wise balance loss, and the V3 auxiliary-loss-free bias update.
#include <cassert>
#include <cmath>
#include <vector>

#include "moe/losses.h"
#include "moe/losses_util.h"

namespace moe {

using namespace losses_detail;

template <class T>
T deepseek_v2_aux_loss(const T* scores, const int32_t* topk_ids, int64_t n_tokens,
                       int64_t n_experts, int64_t top_k, int64_t seq_len, bool seq_aux,
                       double alpha, T* dlogits) {
  const char* what = "deepseek_v2_aux_loss";
  check_shape(what, n_tokens, n_experts);
  check_top_k(what, top_k, n_experts);
  if (seq_aux) check_group(what, "seq_len", seq_len, n_tokens);
  check_ptr(what, "scores", scores, n_tokens);
  check_ptr(what, "topk_ids", topk_ids, n_tokens);
  check_ids(what, topk_ids, n_tokens * top_k, n_experts);
  if (n_tokens == 0) return T(0);
  const int64_t E = n_experts;
  // seq_aux: one unit per sequence; otherwise the whole batch is one unit. In both cases
  // aux = α · mean_units Σ_e (E·count_e/(U·k)) · mean_{t in unit} s[t,e]; the two DeepSeek
  // formulas differ only in the unit (ce = count/(S·k/E) is the same normalisation).
  const int64_t unit = seq_aux ? seq_len : n_tokens;
  const int64_t n_units = n_tokens / unit;
  const double U = static_cast<double>(unit);
  const double K = static_cast<double>(top_k);

  std::vector<double> f(E), prob(E), g(E), p(E);
  double sum = 0;
  for (int64_t u = 0; u < n_units; ++u) {
    const int64_t t0 = u * unit;
    std::fill(f.begin(), f.end(), 0.0);
    std::fill(prob.begin(), prob.end(), 0.0);
    for (int64_t t = t0; t < t0 + unit; ++t) {
      for (int64_t j = 0; j < top_k; ++j) f[topk_ids[t * top_k + j]] += 1;
      for (int64_t e = 0; e < E; ++e) prob[e] += static_cast<double>(scores[t * E + e]);
    }
    for (int64_t e = 0; e < E; ++e) {
      f[e] *= static_cast<double>(E) / (U * K);
      sum += f[e] * prob[e] / U;
    }
    if (!dlogits) continue;
    // d aux/d s[t,e] = α/n_units · f_e/U, then through the softmax (its Jacobian needs only s).
    for (int64_t e = 0; e < E; ++e) g[e] = alpha / static_cast<double>(n_units) * f[e] / U;
    for (int64_t t = t0; t < t0 + unit; ++t) {
      for (int64_t e = 0; e < E; ++e) p[e] = static_cast<double>(scores[t * E + e]);
      softmax_backward_row(p.data(), g.data(), E, dlogits + t * E);
    }
  }
  return static_cast<T>(alpha * sum / static_cast<double>(n_units));
}

template <class T>
T deepseek_v3_balance_loss(const T* scores, const int32_t* topk_ids, int64_t n_tokens,
                           int64_t n_experts, int64_t top_k, int64_t seq_len,
                           BalanceIndicator indicator, BalanceUnit unit_kind, double alpha,
                           T* dlogits) {
  const char* what = "deepseek_v3_balance_loss";
  check_shape(what, n_tokens, n_experts);
  check_top_k(what, top_k, n_experts);
  if (unit_kind == BalanceUnit::sequence) check_group(what, "seq_len", seq_len, n_tokens);
  check_ptr(what, "scores", scores, n_tokens);
  const bool use_map = indicator == BalanceIndicator::routing_map;
  if (use_map) {
    check_ptr(what, "topk_ids (indicator routing_map)", topk_ids, n_tokens);
    check_ids(what, topk_ids, n_tokens * top_k, n_experts);
  }
  if (n_tokens == 0) return T(0);
  const int64_t E = n_experts;
  const int64_t unit = unit_kind == BalanceUnit::sequence ? seq_len : n_tokens;
  const int64_t n_units = n_tokens / unit;
  const double U = static_cast<double>(unit);
  // s' = s / max(Σ_j s_j, eps): torchtitan's F.normalize(p=1, eps=1e-12); sigmoid scores are > 0.
  constexpr double kNormEps = 1e-12;

  std::vector<double> f(E), prob(E), g(E), s(E);
  std::vector<int32_t> order(E);
  const auto load_row = [&](int64_t t) {
    double total = 0;
    for (int64_t e = 0; e < E; ++e) {
      s[e] = static_cast<double>(scores[t * E + e]);
      total += s[e];
    }
    return total;
  };
  double sum = 0;
  for (int64_t u = 0; u < n_units; ++u) {
    const int64_t t0 = u * unit;
    std::fill(f.begin(), f.end(), 0.0);
    std::fill(prob.begin(), prob.end(), 0.0);
    for (int64_t t = t0; t < t0 + unit; ++t) {
      const double denom = std::max(load_row(t), kNormEps);
      for (int64_t e = 0; e < E; ++e) prob[e] += s[e] / denom;
      const int32_t* ids = topk_ids + t * top_k;
      if (!use_map) {
        top_k_row(s.data(), E, top_k, order.data());
        ids = order.data();
      }
      for (int64_t j = 0; j < top_k; ++j) f[ids[j]] += 1;
    }
    for (int64_t e = 0; e < E; ++e) {
      f[e] *= static_cast<double>(E) / (static_cast<double>(top_k) * U);
      sum += f[e] * prob[e] / U;
    }
    if (!dlogits) continue;
    // g = d L/d s' = α/n_units · f/U; ds_j = (g_j − Σ_i g_i s'_i)/Σs (only g_j/eps when clamped);
    // dz_j = ds_j · s_j(1 − s_j) through the sigmoid.
    for (int64_t e = 0; e < E; ++e) g[e] = alpha / static_cast<double>(n_units) * f[e] / U;
    for (int64_t t = t0; t < t0 + unit; ++t) {
      const double total = load_row(t);
      const double denom = std::max(total, kNormEps);
      double dot = 0;
      if (total >= kNormEps) {
        for (int64_t e = 0; e < E; ++e) dot += g[e] * s[e] / denom;
      }
      for (int64_t e = 0; e < E; ++e) {
        const double ds = (g[e] - dot) / denom;
        dlogits[t * E + e] += static_cast<T>(ds * s[e] * (1.0 - s[e]));
      }
    }
  }
  return static_cast<T>(alpha * sum / static_cast<double>(n_units));
}

template <class T>
void aux_free_bias_update(std::span<T> bias, std::span<const double> tokens_per_expert,
                          double gamma, bool mean_center) {
  if (bias.size() != tokens_per_expert.size()) {
    fail("aux_free_bias_update: bias has " + std::to_string(bias.size()) + " experts, tokens_per_expert has " +
         std::to_string(tokens_per_expert.size()));
  }
  if (!std::isfinite(gamma)) fail("aux_free_bias_update: gamma=" + std::to_string(gamma) + " is not finite");
  const size_t E = bias.size();
  if (E == 0) return;
  double mean = 0;
  for (double c : tokens_per_expert) mean += c;
  mean /= static_cast<double>(E);
  // delta_e = γ·sign(c̄ − c_e): overloaded experts go down, underloaded up, sign(0) = 0.
  const auto delta = [&](size_t e) {
    const double d = mean - tokens_per_expert[e];
    return gamma * static_cast<double>((d > 0) - (d < 0));
  };
  double shift = 0;
  if (mean_center) {
    for (size_t e = 0; e < E; ++e) shift += delta(e);
    shift /= static_cast<double>(E);
  }
  for (size_t e = 0; e < E; ++e) bias[e] += static_cast<T>(delta(e) - shift);
}

#define MOE_INSTANTIATE(T)                                                                        \
  template T deepseek_v2_aux_loss<T>(const T*, const int32_t*, int64_t, int64_t, int64_t,         \
                                     int64_t, bool, double, T*);                                  \
  template T deepseek_v3_balance_loss<T>(const T*, const int32_t*, int64_t, int64_t, int64_t,     \
                                         int64_t, BalanceIndicator, BalanceUnit, double, T*);     \
  template void aux_free_bias_update<T>(std::span<T>, std::span<const double>, double, bool);
MOE_INSTANTIATE(float)
MOE_INSTANTIATE(double)
#undef MOE_INSTANTIATE

}  // namespace moe
