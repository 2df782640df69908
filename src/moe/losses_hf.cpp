// Softmax-router balance losses of the Hugging Face models: the pooled top-k load-balancing loss
// (§3.1), the Switch per-group loss (§3.2) and the router z-loss (§3.3).
#include <cassert>
#include <cmath>
#include <vector>

#include "moe/losses.h"
#include "moe/losses_util.h"

namespace moe {

using namespace losses_detail;

template <class T>
T hf_load_balancing_loss(std::span<const T* const> logits, int64_t n_tokens, int64_t n_experts,
                         int64_t top_k, std::span<const uint8_t> mask, std::span<T* const> dlogits,
                         T coef) {
  const char* what = "hf_load_balancing_loss";
  check_shape(what, n_tokens, n_experts);
  check_top_k(what, top_k, n_experts);
  if (!mask.empty() && static_cast<int64_t>(mask.size()) != n_tokens) {
    fail(std::string(what) + ": attention mask has " + std::to_string(mask.size()) +
         " entries (B·S), but each layer has n_tokens=" + std::to_string(n_tokens) + " rows");
  }
  if (!dlogits.empty() && dlogits.size() != logits.size()) {
    fail(std::string(what) + ": " + std::to_string(dlogits.size()) + " gradient buffers for " +
         std::to_string(logits.size()) + " layers");
  }
  for (const T* z : logits) check_ptr(what, "a layer's logits", z, n_tokens);
  const int64_t E = n_experts;
  const auto is_token = [&](int64_t t) { return mask.empty() || mask[t] != 0; };

  std::vector<double> p(E), f(E, 0.0), prob(E, 0.0), g(E);
  std::vector<int32_t> order(E);
  double n_rows = 0;  // Σ_r a_r over all layers
  for (const T* z : logits) {
    for (int64_t t = 0; t < n_tokens; ++t) {
      if (!is_token(t)) continue;
      n_rows += 1;
      softmax_row(z + t * E, E, p.data());
      for (int64_t e = 0; e < E; ++e) prob[e] += p[e];
      top_k_row(p.data(), E, top_k, order.data());
      for (int64_t j = 0; j < top_k; ++j) f[order[j]] += 1;
    }
  }
  if (n_rows == 0) return T(0);  // no layer, no token or an all-zero mask (HF: NaN)
  double aux = 0;
  for (int64_t e = 0; e < E; ++e) aux += (f[e] / n_rows) * (prob[e] / n_rows);
  aux *= static_cast<double>(E);

  // d aux/d p[r,e] = E · f_e / n_rows², then through each row's softmax.
  for (int64_t e = 0; e < E; ++e) g[e] = static_cast<double>(coef) * static_cast<double>(E) * f[e] / (n_rows * n_rows);
  for (size_t l = 0; l < dlogits.size(); ++l) {
    if (!dlogits[l]) continue;
    for (int64_t t = 0; t < n_tokens; ++t) {
      if (!is_token(t)) continue;
      softmax_row(logits[l] + t * E, E, p.data());
      softmax_backward_row(p.data(), g.data(), E, dlogits[l] + t * E);
    }
  }
  return static_cast<T>(aux);
}

template <class T>
T switch_load_balancing_loss(const T* logits, const int32_t* expert, const uint8_t* kept,
                             int64_t n_tokens, int64_t n_experts, int64_t group_size, T* dlogits,
                             T coef) {
  const char* what = "switch_load_balancing_loss";
  check_shape(what, n_tokens, n_experts);
  check_group(what, "group_size", group_size, n_tokens);
  check_ptr(what, "logits", logits, n_tokens);
  check_ptr(what, "expert", expert, n_tokens);
  check_ids(what, expert, n_tokens, n_experts);
  if (n_tokens == 0) return T(0);
  const int64_t E = n_experts;
  const int64_t n_groups = n_tokens / group_size;
  const double S = static_cast<double>(group_size);

  std::vector<double> p(E), count(E), prob(E), g(E);
  double sum = 0;  // Σ_g Σ_e f[g,e] P[g,e]
  for (int64_t grp = 0; grp < n_groups; ++grp) {
    const int64_t t0 = grp * group_size;
    std::fill(count.begin(), count.end(), 0.0);
    std::fill(prob.begin(), prob.end(), 0.0);
    for (int64_t t = t0; t < t0 + group_size; ++t) {
      softmax_row(logits + t * E, E, p.data());
      for (int64_t e = 0; e < E; ++e) prob[e] += p[e];
      count[(kept == nullptr || kept[t]) ? expert[t] : 0] += 1;  // [Q] dropped -> expert 0
    }
    for (int64_t e = 0; e < E; ++e) sum += (count[e] / S) * (prob[e] / S);
    if (!dlogits) continue;
    // aux = (E/G) Σ_g Σ_e f P  =>  d aux/d p[t,e] = (E/G) · f[g,e] / S.
    const double scale = static_cast<double>(coef) * static_cast<double>(E) / static_cast<double>(n_groups);
    for (int64_t e = 0; e < E; ++e) g[e] = scale * (count[e] / S) / S;
    for (int64_t t = t0; t < t0 + group_size; ++t) {
      softmax_row(logits + t * E, E, p.data());
      softmax_backward_row(p.data(), g.data(), E, dlogits + t * E);
    }
  }
  return static_cast<T>(sum * static_cast<double>(E) / static_cast<double>(n_groups));
}

template <class T>
T switch_load_balancing_loss(const Routing& routing, const T* logits, int64_t group_size,
                             T* dlogits, T coef) {
  const char* what = "switch_load_balancing_loss";
  if (routing.top_k != 1) {
    fail(std::string(what) + ": needs a top-1 token-choice routing, got top_k=" +
         std::to_string(routing.top_k));
  }
  if (routing.n_slots() != routing.n_tokens ||
      static_cast<int64_t>(routing.slot_kept.size()) != routing.n_tokens) {
    fail(std::string(what) + ": routing has " + std::to_string(routing.n_slots()) + " slots for n_tokens=" +
         std::to_string(routing.n_tokens));
  }
  return switch_load_balancing_loss(logits, routing.slot_expert.data(), routing.slot_kept.data(),
                                    routing.n_tokens, routing.n_experts, group_size, dlogits, coef);
}

template <class T>
T router_z_loss(const T* logits, int64_t n_tokens, int64_t n_experts, T* dlogits, T coef) {
  const char* what = "router_z_loss";
  check_shape(what, n_tokens, n_experts);
  check_ptr(what, "logits", logits, n_tokens);
  if (n_tokens == 0) return T(0);
  const int64_t E = n_experts;
  std::vector<double> p(E);
  double sum = 0;
  const double scale = 2.0 * static_cast<double>(coef) / static_cast<double>(n_tokens);
  for (int64_t t = 0; t < n_tokens; ++t) {
    const double lse = softmax_row(logits + t * E, E, p.data());
    sum += lse * lse;
    // d(lse²)/dz = 2·lse·softmax(z)
    if (dlogits) {
      for (int64_t e = 0; e < E; ++e) dlogits[t * E + e] += static_cast<T>(scale * lse * p[e]);
    }
  }
  return static_cast<T>(sum / static_cast<double>(n_tokens));
}

#define MOE_INSTANTIATE(T)                                                                        \
  template T hf_load_balancing_loss<T>(std::span<const T* const>, int64_t, int64_t, int64_t,      \
                                       std::span<const uint8_t>, std::span<T* const>, T);         \
  template T switch_load_balancing_loss<T>(const T*, const int32_t*, const uint8_t*, int64_t,     \
                                           int64_t, int64_t, T*, T);                              \
  template T switch_load_balancing_loss<T>(const Routing&, const T*, int64_t, T*, T);             \
  template T router_z_loss<T>(const T*, int64_t, int64_t, T*, T);
MOE_INSTANTIATE(float)
MOE_INSTANTIATE(double)
#undef MOE_INSTANTIATE

}  // namespace moe
