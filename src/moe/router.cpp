// Token-choice and expert-choice routers, forward and backward (include/moe/router.h).
#include "moe/router.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <numeric>

#include "kernels/ref/kernels.h"
#include "moe/error.h"
#include "moe/tensor.h"

namespace moe {

namespace {

[[noreturn]] void bad(const std::string& what) { throw InvalidInput("[router] " + what); }

std::string num(double v) {
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

double softplus(double x) { return x > 30 ? x : std::log1p(std::exp(x)); }
using ref::sigmoid;

// Per-call scratch, sized once, so routing a token allocates nothing.
struct Scratch {
  std::vector<int32_t> ids, order, group_ids;
  std::vector<double> group, masked;
  explicit Scratch(int64_t n) : ids(static_cast<size_t>(n)), order(static_cast<size_t>(n)), group_ids(static_cast<size_t>(n)),
                                group(static_cast<size_t>(n)), masked(static_cast<size_t>(n)) {}
};

// Chooses the token's experts into s.ids[0..k) (best first) per the selection rule.
void select_token(const RouterConfig& c, const double* sel, Scratch& s) {
  const int64_t E = c.n_experts;
  if (c.selection != Selection::group_limited || c.n_group == 1) {
    ref::top_k(s.ids.data(), sel, E, c.top_k, s.order.data());
    return;
  }
  const int64_t per_group = E / c.n_group;
  for (int64_t g = 0; g < c.n_group; ++g) {
    const double* v = sel + g * per_group;
    if (c.group_score == GroupScore::max) {
      s.group[g] = *std::max_element(v, v + per_group);
    } else {
      ref::top_k(s.group_ids.data(), v, per_group, 2, s.order.data());
      s.group[g] = v[s.group_ids[0]] + v[s.group_ids[1]];
    }
  }
  ref::top_k(s.group_ids.data(), s.group.data(), c.n_group, c.topk_group, s.order.data());
  std::fill(s.masked.begin(), s.masked.begin() + E, -INFINITY);  // unselected groups can never win
  for (int64_t i = 0; i < c.topk_group; ++i) {
    const int32_t g = s.group_ids[i];
    std::copy(sel + g * per_group, sel + (g + 1) * per_group, s.masked.begin() + g * per_group);
  }
  ref::top_k(s.ids.data(), s.masked.data(), E, c.top_k, s.order.data());
}

}  // namespace

void validate_router(const RouterConfig& c) {
  if (c.n_experts < 1) bad("n_experts=" + std::to_string(c.n_experts) + " must be >= 1");
  if (c.selection != Selection::expert_choice) {
    if (c.top_k < 1) bad("top_k=" + std::to_string(c.top_k) + " must be >= 1");
    if (c.top_k > c.n_experts) {
      bad("top_k=" + std::to_string(c.top_k) + " > n_experts=" + std::to_string(c.n_experts));
    }
  }
  if (c.selection == Selection::group_limited) {
    if (c.n_group < 1 || c.n_experts % c.n_group != 0) {
      bad("n_group=" + std::to_string(c.n_group) + " does not divide n_experts=" + std::to_string(c.n_experts));
    }
    if (c.topk_group < 1 || c.topk_group > c.n_group) {
      bad("topk_group=" + std::to_string(c.topk_group) + " must be in [1, n_group=" + std::to_string(c.n_group) + "]");
    }
    const int64_t per_group = c.n_experts / c.n_group;
    if (c.top_k > c.topk_group * per_group) {
      bad("top_k=" + std::to_string(c.top_k) + " > topk_group=" + std::to_string(c.topk_group) + " groups of " +
          std::to_string(per_group) + " experts");
    }
    if (c.n_group > 1 && c.group_score == GroupScore::top2_sum && per_group < 2) {
      bad("group score top2_sum needs >= 2 experts per group, got " + std::to_string(per_group));
    }
  }
  if (c.capacity_mode == CapacityMode::absolute && c.expert_capacity < 1) {
    bad("expert_capacity=" + std::to_string(c.expert_capacity) + " must be >= 1");
  }
  if ((c.capacity_mode == CapacityMode::factor || c.selection == Selection::expert_choice) &&
      !(c.capacity_factor > 0 && std::isfinite(c.capacity_factor))) {
    bad("capacity_factor=" + num(c.capacity_factor) + " must be > 0");
  }
  if (c.capacity_multiple_of < 1) bad("capacity_multiple_of=" + std::to_string(c.capacity_multiple_of) + " must be >= 1");
  if (c.noise == NoiseKind::vmoe && !(c.noise_std > 0)) bad("noise_std=" + num(c.noise_std) + " must be > 0");
  if (!(c.norm_eps >= 0)) bad("norm_eps=" + num(c.norm_eps) + " must be >= 0");
  if (!std::isfinite(c.scale)) bad("routed_scaling_factor must be finite");
  if (c.selection == Selection::expert_choice && c.capacity_mode != CapacityMode::none) {
    bad("expert choice sets its own capacity: capacity_mode must be none");
  }
}

int64_t router_capacity(const RouterConfig& c, int64_t group_tokens) {
  if (c.selection == Selection::expert_choice) {
    double raw = std::ceil(static_cast<double>(group_tokens) * c.capacity_factor / static_cast<double>(c.n_experts));
    int64_t cap = static_cast<int64_t>(raw);
    cap = (cap + c.capacity_multiple_of - 1) / c.capacity_multiple_of * c.capacity_multiple_of;
    return std::clamp<int64_t>(cap, 1, group_tokens);
  }
  if (c.capacity_mode == CapacityMode::absolute) return c.expert_capacity;
  if (c.capacity_mode == CapacityMode::factor) {
    double raw = std::ceil(static_cast<double>(group_tokens * c.top_k) * c.capacity_factor /
                           static_cast<double>(c.n_experts));
    int64_t cap = std::max<int64_t>(1, static_cast<int64_t>(raw));
    return (cap + c.capacity_multiple_of - 1) / c.capacity_multiple_of * c.capacity_multiple_of;
  }
  return 0;
}

template <class T>
void router_forward(const RouterConfig& c, const T* logits, const T* selection_bias, const T* noise,
                    const T* noise_logits, int64_t n_tokens, int64_t group_tokens, bool training,
                    RouterState<T>& st) {
  validate_router(c);
  const int64_t E = c.n_experts, Tn = n_tokens;
  if (group_tokens < 1 || Tn % group_tokens != 0) {
    bad("group size " + std::to_string(group_tokens) + " does not divide " + std::to_string(Tn) + " tokens");
  }
  const bool add_noise = training && c.noise != NoiseKind::none;
  if (add_noise && !noise) bad("noise samples missing for a noisy router in training");
  if (add_noise && c.noise == NoiseKind::shazeer && !noise_logits) bad("shazeer noise needs the noise projection");
  if (c.selection_bias && !selection_bias) bad("selection_bias is on but no selection bias was given");

  // Effective logits: raw (+ noise), optionally rounded to bf16 as a bf16 model would.
  st.logits.assign(logits, logits + Tn * E);
  st.noise_grad.clear();
  if (add_noise && c.noise == NoiseKind::shazeer) st.noise_grad.assign(static_cast<size_t>(Tn * E), T(0));
  const double sigma = c.noise_std / static_cast<double>(E);
  for (int64_t t = 0; t < Tn; ++t) {
    for (int64_t e = 0; e < E; ++e) {
      const int64_t i = t * E + e;
      double z = static_cast<double>(st.logits[i]);
      if (add_noise && c.noise == NoiseKind::vmoe) z += sigma * static_cast<double>(noise[i]);
      if (add_noise && c.noise == NoiseKind::shazeer) {
        const double nl = static_cast<double>(noise_logits[i]);
        z += static_cast<double>(noise[i]) * softplus(nl);
        st.noise_grad[i] = static_cast<T>(static_cast<double>(noise[i]) * sigmoid(nl));
      }
      st.logits[i] = static_cast<T>(z);
      if (c.bf16_logits) st.logits[i] = static_cast<T>(round_to_bf16(static_cast<float>(st.logits[i])));
    }
  }
  st.scores.resize(static_cast<size_t>(Tn * E));
  for (int64_t t = 0; t < Tn; ++t) {
    if (c.score == ScoreFn::softmax) {
      ref::softmax(st.scores.data() + t * E, st.logits.data() + t * E, E);
    } else {
      for (int64_t e = 0; e < E; ++e) st.scores[t * E + e] = static_cast<T>(sigmoid(static_cast<double>(st.logits[t * E + e])));
    }
  }

  Routing& r = st.routing;
  r = Routing{};
  r.n_tokens = Tn;
  r.n_experts = E;
  const int64_t groups = Tn / group_tokens;

  if (c.selection == Selection::expert_choice) {
    const int64_t C = router_capacity(c, group_tokens);
    r.top_k = 0;
    r.capacity = C;
    const int64_t S = groups * E * C;
    r.slot_token.resize(static_cast<size_t>(S));
    r.slot_expert.resize(static_cast<size_t>(S));
    r.slot_kept.assign(static_cast<size_t>(S), 1);
    st.weights.resize(static_cast<size_t>(S));
    std::vector<double> col(static_cast<size_t>(group_tokens));
    std::vector<int32_t> best(static_cast<size_t>(C)), order(static_cast<size_t>(group_tokens));
    for (int64_t g = 0; g < groups; ++g) {
      for (int64_t e = 0; e < E; ++e) {
        for (int64_t i = 0; i < group_tokens; ++i) col[i] = static_cast<double>(st.scores[(g * group_tokens + i) * E + e]);
        ref::top_k(best.data(), col.data(), group_tokens, C, order.data());
        for (int64_t j = 0; j < C; ++j) {
          const int64_t s = (g * E + e) * C + j;
          const int64_t t = g * group_tokens + best[j];
          r.slot_token[s] = static_cast<int32_t>(t);
          r.slot_expert[s] = static_cast<int32_t>(e);
          st.weights[s] = st.scores[t * E + e];
        }
      }
    }
    st.chosen_sum.clear();
    build_expert_order(r);
    return;
  }

  const int64_t k = c.top_k;
  const int64_t S = Tn * k;
  r.top_k = k;
  r.slot_token.resize(static_cast<size_t>(S));
  r.slot_expert.resize(static_cast<size_t>(S));
  r.slot_kept.assign(static_cast<size_t>(S), 1);
  st.weights.resize(static_cast<size_t>(S));
  st.chosen_sum.assign(static_cast<size_t>(Tn), T(0));
  std::vector<double> sel(static_cast<size_t>(E));
  Scratch scratch(E);
  const std::vector<int32_t>& ids = scratch.ids;
  const bool scale_now = !(c.scale_only_unnormalized && c.normalize);
  for (int64_t t = 0; t < Tn; ++t) {
    for (int64_t e = 0; e < E; ++e) {
      sel[e] = static_cast<double>(st.scores[t * E + e]) + (c.selection_bias ? static_cast<double>(selection_bias[e]) : 0.0);
    }
    select_token(c, sel.data(), scratch);
    double sum = 0;
    for (int64_t j = 0; j < k; ++j) sum += static_cast<double>(st.scores[t * E + ids[j]]);
    st.chosen_sum[t] = static_cast<T>(sum);
    for (int64_t j = 0; j < k; ++j) {
      const int64_t s = t * k + j;
      double w = static_cast<double>(st.scores[t * E + ids[j]]);
      if (c.normalize) w /= sum + c.norm_eps;
      if (scale_now) w *= c.scale;
      r.slot_token[s] = static_cast<int32_t>(t);
      r.slot_expert[s] = ids[j];
      st.weights[s] = static_cast<T>(w);
    }
  }

  if (c.capacity_mode != CapacityMode::none) {
    const int64_t C = router_capacity(c, group_tokens);
    r.capacity = C;
    std::vector<int64_t> order(static_cast<size_t>(group_tokens));
    std::vector<int64_t> fill(static_cast<size_t>(E));
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t t0 = g * group_tokens;
      std::iota(order.begin(), order.end(), t0);
      if (c.priority == Priority::batch) {  // V-MoE BPR: most confident tokens first (stable)
        std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
          return st.weights[a * k] > st.weights[b * k];
        });
      }
      std::fill(fill.begin(), fill.end(), 0);
      for (int64_t j = 0; j < k; ++j) {  // K-major: every token's first choice before any second
        for (int64_t t : order) {
          const int64_t s = t * k + j;
          const int32_t e = r.slot_expert[s];
          if (fill[e] < C) {
            ++fill[e];
          } else {
            r.slot_kept[s] = 0;
          }
        }
      }
    }
  }
  build_expert_order(r);
}

template <class T>
void router_backward(const RouterConfig& c, const RouterState<T>& st, const T* dweights, T* dlogits, T* dnoise_logits) {
  const Routing& r = st.routing;
  const int64_t E = r.n_experts, Tn = r.n_tokens;
  std::vector<double> ds(static_cast<size_t>(Tn * E), 0.0);  // d loss / d scores

  if (r.top_k == 0) {
    for (int64_t s = 0; s < r.n_slots(); ++s) ds[r.slot_token[s] * E + r.slot_expert[s]] += static_cast<double>(dweights[s]);
  } else {
    const int64_t k = r.top_k;
    const bool scale_now = !(c.scale_only_unnormalized && c.normalize);
    const double cs = scale_now ? c.scale : 1.0;
    for (int64_t t = 0; t < Tn; ++t) {
      if (!c.normalize) {
        for (int64_t j = 0; j < k; ++j) ds[t * E + r.slot_expert[t * k + j]] += cs * static_cast<double>(dweights[t * k + j]);
        continue;
      }
      // w_j = cs · s_j / (Σ + eps):  ds_i = cs · (dw_i − Σ_j dw_j w'_j) / (Σ + eps), w'_j = s_j / (Σ + eps)
      const double denom = static_cast<double>(st.chosen_sum[t]) + c.norm_eps;
      double dot = 0;
      for (int64_t j = 0; j < k; ++j) {
        dot += static_cast<double>(dweights[t * k + j]) * static_cast<double>(st.scores[t * E + r.slot_expert[t * k + j]]);
      }
      for (int64_t j = 0; j < k; ++j) {
        ds[t * E + r.slot_expert[t * k + j]] += cs * (static_cast<double>(dweights[t * k + j]) - dot / denom) / denom;
      }
    }
  }

  for (int64_t t = 0; t < Tn; ++t) {
    const T* s = st.scores.data() + t * E;
    const double* g = ds.data() + t * E;
    if (c.score == ScoreFn::softmax) {
      double dot = 0;
      for (int64_t e = 0; e < E; ++e) dot += static_cast<double>(s[e]) * g[e];
      for (int64_t e = 0; e < E; ++e) {
        const double dl = static_cast<double>(s[e]) * (g[e] - dot);
        dlogits[t * E + e] += static_cast<T>(dl);
        if (dnoise_logits && !st.noise_grad.empty()) dnoise_logits[t * E + e] += static_cast<T>(dl * static_cast<double>(st.noise_grad[t * E + e]));
      }
    } else {
      for (int64_t e = 0; e < E; ++e) {
        const double v = static_cast<double>(s[e]);
        const double dl = g[e] * v * (1 - v);
        dlogits[t * E + e] += static_cast<T>(dl);
        if (dnoise_logits && !st.noise_grad.empty()) dnoise_logits[t * E + e] += static_cast<T>(dl * static_cast<double>(st.noise_grad[t * E + e]));
      }
    }
  }
}

#define MOE_INSTANTIATE_ROUTER(T)                                                                              \
  template void router_forward<T>(const RouterConfig&, const T*, const T*, const T*, const T*, int64_t, \
                                  int64_t, bool, RouterState<T>&);                                                \
  template void router_backward<T>(const RouterConfig&, const RouterState<T>&, const T*, T*, T*);
MOE_INSTANTIATE_ROUTER(float)
MOE_INSTANTIATE_ROUTER(double)

}  // namespace moe
