// Balance losses (include/moe/losses.h): values against float64 references written straight
// from the formulas in shared/spec/semantics.md §3, every gradient against central finite
// differences, properties (minimum values, balance), bad input, and float vs double.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "moe/error.h"
#include "moe/losses.h"

using namespace moe;
using Vec = std::vector<double>;
using Ids = std::vector<int32_t>;

namespace {

// ---- inputs -----------------------------------------------------------------------------------

// [T, E] logits whose rows are shuffled ladders (step 0.3) plus jitter < 0.05: every top-k has a
// margin far larger than a finite-difference step.
Vec margin_logits(int64_t T, int64_t E, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> jitter(-0.05, 0.05), offset(-1.0, 1.0);
  Vec z(T * E);
  std::vector<int> perm(E);
  for (int64_t t = 0; t < T; ++t) {
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    const double o = offset(rng);
    for (int64_t e = 0; e < E; ++e) z[t * E + e] = o + 0.3 * perm[e] + jitter(rng);
  }
  return z;
}

// [T, E] logits with exact ties: values drawn from {0, 0.5, 1}.
Vec tied_logits(int64_t T, int64_t E, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> pick(0, 2);
  Vec z(T * E);
  for (double& v : z) v = 0.5 * pick(rng);
  return z;
}

Vec softmax_rows(const Vec& z, int64_t E) {
  Vec p(z.size());
  for (size_t r = 0; r < z.size() / E; ++r) {
    double mx = -INFINITY, sum = 0;
    for (int64_t e = 0; e < E; ++e) mx = std::max(mx, z[r * E + e]);
    for (int64_t e = 0; e < E; ++e) sum += std::exp(z[r * E + e] - mx);
    for (int64_t e = 0; e < E; ++e) p[r * E + e] = std::exp(z[r * E + e] - mx) / sum;
  }
  return p;
}

Vec sigmoid(const Vec& z) {
  Vec s(z.size());
  for (size_t i = 0; i < z.size(); ++i) s[i] = 1.0 / (1.0 + std::exp(-z[i]));
  return s;
}

// Plain top-k: k rounds of "first maximum" (lowest index wins ties).
Ids ref_topk(const double* v, int64_t E, int64_t k) {
  Ids out;
  std::vector<bool> taken(E, false);
  for (int64_t j = 0; j < k; ++j) {
    int best = -1;
    for (int e = 0; e < E; ++e) best = !taken[e] && (best < 0 || v[e] > v[best]) ? e : best;
    taken[best] = true;
    out.push_back(best);
  }
  return out;
}

Ids topk_rows(const Vec& v, int64_t E, int64_t k) {
  Ids ids;
  for (size_t r = 0; r < v.size() / E; ++r) std::ranges::copy(ref_topk(&v[r * E], E, k), std::back_inserter(ids));
  return ids;
}

// ---- float64 references, straight from §3 -----------------------------------------------------

double ref_hf(const std::vector<Vec>& layers, int64_t T, int64_t E, int64_t k, const std::vector<uint8_t>& mask) {
  std::vector<Vec> F(k, Vec(E, 0.0));
  Vec P(E, 0.0);
  double denom = 0;
  for (const Vec& z : layers) {
    Vec p = softmax_rows(z, E);
    for (int64_t r = 0; r < T; ++r) {
      const double a = mask.empty() ? 1.0 : mask[r];
      Ids idx = ref_topk(&p[r * E], E, k);
      for (int64_t j = 0; j < k; ++j) F[j][idx[j]] += a;
      for (int64_t e = 0; e < E; ++e) P[e] += a * p[r * E + e];
      denom += a;
    }
  }
  double aux = 0;
  for (int64_t j = 0; j < k; ++j)
    for (int64_t e = 0; e < E; ++e) aux += (F[j][e] / denom) * (P[e] / denom);
  return E * aux;
}

double ref_switch(const Vec& z, const Ids& expert, const std::vector<uint8_t>& kept, int64_t E, int64_t S) {
  const int64_t G = static_cast<int64_t>(expert.size()) / S;
  Vec p = softmax_rows(z, E);
  double mean = 0;
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t e = 0; e < E; ++e) {
      double f = 0, P = 0;
      for (int64_t t = g * S; t < (g + 1) * S; ++t) {
        const int routed = kept[t] ? expert[t] : 0;
        f += routed == e ? 1.0 / S : 0.0;
        P += p[t * E + e] / S;
      }
      mean += f * P / static_cast<double>(G * E);
    }
  }
  return mean * E * E;
}

double ref_z(const Vec& z, int64_t E) {
  const int64_t T = static_cast<int64_t>(z.size()) / E;
  double sum = 0;
  for (int64_t t = 0; t < T; ++t) {
    double s = 0;
    for (int64_t e = 0; e < E; ++e) s += std::exp(z[t * E + e]);
    sum += std::log(s) * std::log(s);
  }
  return sum / T;
}

double ref_cv2(const Vec& x) {
  double m = 0, v = 0;
  for (double a : x) m += a / x.size();
  for (double a : x) v += (a - m) * (a - m) / x.size();
  return v / (m * m);
}

double ref_importance(const Vec& gates, int64_t E, int64_t S) {
  const int64_t G = static_cast<int64_t>(gates.size()) / (E * S);
  double sum = 0;
  for (int64_t g = 0; g < G; ++g) {
    Vec imp(E, 0.0);
    for (int64_t t = g * S; t < (g + 1) * S; ++t)
      for (int64_t e = 0; e < E; ++e) imp[e] += gates[t * E + e];
    sum += ref_cv2(imp);
  }
  return sum / G;
}

double ref_load(const Vec& clean, const Vec& noisy, double sigma, int64_t k, int64_t E, int64_t S) {
  const int64_t G = static_cast<int64_t>(clean.size()) / (E * S);
  double sum = 0;
  for (int64_t g = 0; g < G; ++g) {
    Vec load(E, 0.0);
    for (int64_t t = g * S; t < (g + 1) * S; ++t) {
      Vec row(noisy.begin() + t * E, noisy.begin() + (t + 1) * E);
      std::sort(row.begin(), row.end(), std::greater<>());
      const double thr = row[k - 1];
      for (int64_t e = 0; e < E; ++e) {
        const double Phi = 0.5 * (1 + std::erf((thr - clean[t * E + e]) / sigma / std::sqrt(2.0)));
        load[e] += (1 - Phi) / S;
      }
    }
    sum += ref_cv2(load);
  }
  return sum / G;
}

// seq_aux: ce[b,e] = count/(S·k/E) per sequence, averaged; else f_e = E·count/(T·k) over the batch.
double ref_v2(const Vec& s, const Ids& ids, int64_t E, int64_t k, int64_t S, bool seq_aux, double alpha) {
  const int64_t T = static_cast<int64_t>(s.size()) / E, U = seq_aux ? S : T;
  double sum = 0;
  for (int64_t b = 0; b < T / U; ++b) {
    for (int64_t e = 0; e < E; ++e) {
      double count = 0, P = 0;
      for (int64_t t = b * U; t < (b + 1) * U; ++t) {
        for (int64_t j = 0; j < k; ++j) count += ids[t * k + j] == e;
        P += s[t * E + e] / U;
      }
      sum += seq_aux ? count / (static_cast<double>(S * k) / E) * P : E * count / static_cast<double>(T * k) * P;
    }
  }
  return alpha * sum / (T / U);
}

double ref_v3(const Vec& s, const Ids& map_ids, int64_t E, int64_t k, int64_t U, bool plain, double alpha) {
  const int64_t T = static_cast<int64_t>(s.size()) / E;
  const Ids ids = plain ? topk_rows(s, E, k) : map_ids;
  double sum = 0;
  for (int64_t u = 0; u < T / U; ++u) {
    for (int64_t i = 0; i < E; ++i) {
      double count = 0, P = 0;
      for (int64_t t = u * U; t < (u + 1) * U; ++t) {
        double row = 0;
        for (int64_t j = 0; j < E; ++j) row += s[t * E + j];
        P += s[t * E + i] / row / U;
        for (int64_t j = 0; j < k; ++j) count += ids[t * k + j] == i;
      }
      sum += static_cast<double>(E) / (k * U) * count * P;
    }
  }
  return alpha * sum / (T / U);
}

// ---- finite differences ------------------------------------------------------------------------

// Central differences of f at x (h = 1e-6) against `analytic`: ‖fd − analytic‖ / ‖analytic‖.
double fd_rel_error(const std::function<double(const Vec&)>& f, Vec x, const Vec& analytic) {
  const double h = 1e-6;
  double num = 0, den = 0, up = 0, down = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i];
    x[i] = keep + h, up = f(x);
    x[i] = keep - h, down = f(x);
    x[i] = keep;
    const double fd = (up - down) / (2 * h);
    num += (fd - analytic[i]) * (fd - analytic[i]);
    den += analytic[i] * analytic[i];
  }
  EXPECT_GT(den, 0) << "the analytic gradient is identically zero";
  return std::sqrt(num / std::max(den, 1e-300));
}

// Overall value of the HF loss with L layers stacked in one flat vector.
double hf(const Vec& flat, int64_t L, int64_t T, int64_t E, int64_t k, const std::vector<uint8_t>& mask,
          Vec* grad = nullptr, double coef = 1.0) {
  std::vector<const double*> in;
  std::vector<double*> d;
  if (grad) grad->assign(flat.size(), 0.0);
  for (int64_t l = 0; l < L; ++l) {
    in.push_back(flat.data() + l * T * E);
    if (grad) d.push_back(grad->data() + l * T * E);
  }
  return hf_load_balancing_loss<double>(in, T, E, k, mask, d, coef);
}

#define EXPECT_INVALID(stmt, fragment)                                                     \
  do {                                                                                     \
    try {                                                                                  \
      stmt;                                                                                \
      ADD_FAILURE() << "no InvalidInput from " #stmt;                                      \
    } catch (const moe::InvalidInput& err) {                                               \
      const std::string msg = err.what();                                                  \
      EXPECT_EQ(msg.rfind("[losses] ", 0), 0u) << msg;                                     \
      EXPECT_NE(msg.find(fragment), std::string::npos) << msg;                             \
    }                                                                                      \
  } while (0)

}  // namespace

// ---- HF load_balancing_loss_func ---------------------------------------------------------------

TEST(HfLoss, MatchesReference) {
  std::mt19937_64 rng(1);
  struct Case { int64_t L, T, E, k; bool masked, ties; };
  for (Case c : {Case{3, 7, 5, 2, false, false}, Case{3, 7, 5, 2, true, false}, Case{1, 1, 4, 2, false, false},
                 Case{2, 9, 1, 1, true, false}, Case{2, 5, 3, 3, false, false}, Case{2, 11, 4, 2, true, true},
                 Case{1, 13, 6, 1, false, true}}) {
    std::vector<Vec> layers;
    Vec flat;
    for (int64_t l = 0; l < c.L; ++l) {
      layers.push_back(c.ties ? tied_logits(c.T, c.E, rng) : margin_logits(c.T, c.E, rng));
      flat.insert(flat.end(), layers.back().begin(), layers.back().end());
    }
    std::vector<uint8_t> mask;
    for (int64_t t = 0; c.masked && t < c.T; ++t) mask.push_back(t == 0 || rng() % 3 != 0);
    EXPECT_NEAR(hf(flat, c.L, c.T, c.E, c.k, mask), ref_hf(layers, c.T, c.E, c.k, mask), 1e-12)
        << "L=" << c.L << " T=" << c.T << " E=" << c.E << " k=" << c.k;
  }
}

TEST(HfLoss, GradientMatchesFiniteDifferences) {
  std::mt19937_64 rng(2);
  const int64_t L = 3, T = 7, E = 5, k = 2;
  const Vec x = margin_logits(L * T, E, rng);
  for (bool masked : {false, true}) {
    const auto mask = masked ? std::vector<uint8_t>{1, 1, 0, 1, 0, 1, 1} : std::vector<uint8_t>{};
    Vec grad;
    hf(x, L, T, E, k, mask, &grad, 1.3);
    const auto f = [&](const Vec& v) { return 1.3 * hf(v, L, T, E, k, mask); };
    EXPECT_LT(fd_rel_error(f, x, grad), 1e-6);
    EXPECT_TRUE(!masked || grad[2 * E] == 0.0);  // padded rows get no gradient
  }
}

TEST(HfLoss, UniformGivesK) {
  const int64_t E = 6, T = 12;
  for (int64_t k = 1; k <= E; ++k) {
    // Uniform probabilities: aux = E · Σ f_e / E = k, whatever the (tied) selection.
    Vec flat(2 * T * E, 0.25);
    EXPECT_NEAR(hf(flat, 2, T, E, k, {}), double(k), 1e-12);
    // Perfectly uniform routing (token t prefers experts t, t+1, ... mod E) with skewed probs.
    Vec z(T * E);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t e = 0; e < E; ++e) z[t * E + e] = -0.1 * (((e - t) % E + E) % E) + (e == 0 ? 0.01 : 0);
    EXPECT_NEAR(hf(z, 1, T, E, k, {}), double(k), 1e-12);
  }
}

TEST(HfLoss, AllMaskedOrEmptyIsZero) {
  std::mt19937_64 rng(3);
  Vec x = margin_logits(4, 3, rng), grad;
  EXPECT_EQ(hf(x, 1, 4, 3, 2, {0, 0, 0, 0}, &grad), 0.0);  // HF: 0/0 = NaN
  for (double g : grad) EXPECT_EQ(g, 0.0);
  EXPECT_EQ(hf(x, 0, 4, 3, 2, {}), 0.0);
  EXPECT_EQ(hf({}, 2, 0, 3, 2, {}), 0.0);
}

// ---- Switch ---------------------------------------------------------------------------------------

TEST(SwitchLoss, MatchesReferenceAndGradient) {
  std::mt19937_64 rng(4);
  struct Case { int64_t T, E, S; };
  for (Case c : {Case{15, 4, 5}, Case{1, 3, 1}, Case{6, 1, 3}, Case{14, 7, 14}}) {
    const Vec z = margin_logits(c.T, c.E, rng);
    Ids expert = topk_rows(z, c.E, 1);
    std::vector<uint8_t> kept(c.T, 1);
    for (int64_t t = 0; t < c.T; t += 3) kept[t] = 0;  // dropped: counted as expert 0
    Vec grad(z.size(), 0.0);
    const double v = switch_load_balancing_loss<double>(z.data(), expert.data(), kept.data(), c.T, c.E, c.S, grad.data(), 0.7);
    EXPECT_NEAR(v, ref_switch(z, expert, kept, c.E, c.S), 1e-12) << "T=" << c.T << " E=" << c.E;
    if (c.E == 1) continue;  // softmax of one logit is constant
    const auto f = [&](const Vec& x) {
      return 0.7 * switch_load_balancing_loss<double>(x.data(), expert.data(), kept.data(), c.T, c.E, c.S, nullptr, 1.0);
    };
    EXPECT_LT(fd_rel_error(f, z, grad), 1e-6);
  }
}

TEST(SwitchLoss, BalancedIsOneAndRoutingOverloadAgrees) {
  const int64_t E = 4, S = 8, T = 16;
  std::mt19937_64 rng(5);
  Vec z = margin_logits(T, E, rng);
  Routing r;
  r.n_tokens = T, r.n_experts = E, r.top_k = 1;
  for (int64_t t = 0; t < T; ++t) {
    r.slot_token.push_back(static_cast<int32_t>(t));
    r.slot_expert.push_back(static_cast<int32_t>(t % E));  // each group: 2 tokens per expert
    r.slot_kept.push_back(1);
  }
  EXPECT_NEAR(switch_load_balancing_loss<double>(r, z.data(), S, nullptr, 1.0), 1.0, 1e-12);
  r.slot_kept[1] = 0;  // expert 1 loses a token to expert 0
  EXPECT_NEAR(switch_load_balancing_loss<double>(r, z.data(), S, nullptr, 1.0),
              ref_switch(z, r.slot_expert, r.slot_kept, E, S), 1e-12);
  r.top_k = 2;
  EXPECT_INVALID(switch_load_balancing_loss<double>(r, z.data(), S, nullptr, 1.0), "top_k=2");
}

// ---- z-loss ---------------------------------------------------------------------------------------

TEST(ZLoss, MatchesReferenceGradientAndIsNonNegative) {
  std::mt19937_64 rng(6);
  std::normal_distribution<double> n01;
  for (auto [T_, E_] : {std::pair<int64_t, int64_t>{9, 5}, {1, 1}, {3, 7}}) {
    const int64_t T = T_, E = E_;  // clang 14 cannot capture structured bindings in lambdas
    Vec z(T * E), grad(T * E, 0.0);
    for (double& v : z) v = 2 * n01(rng);
    const double v = router_z_loss<double>(z.data(), T, E, grad.data(), 0.5);
    EXPECT_NEAR(v, ref_z(z, E), 1e-12);
    EXPECT_GE(v, 0.0);  // a square
    const auto f = [&](const Vec& x) { return 0.5 * router_z_loss<double>(x.data(), T, E, nullptr, 1.0); };
    EXPECT_LT(fd_rel_error(f, z, grad), 1e-6);
  }
  Vec zero(6, -std::log(3.0));  // logsumexp = 0
  EXPECT_NEAR(router_z_loss<double>(zero.data(), 2, 3, nullptr, 1.0), 0.0, 1e-24);
}

// ---- V-MoE importance and load ---------------------------------------------------------------------

TEST(ImportanceLoss, MatchesReferenceAndGradients) {
  std::mt19937_64 rng(7);
  for (auto [T_, E_, S_] : {std::tuple<int64_t, int64_t, int64_t>{12, 5, 4}, {1, 3, 1}, {7, 7, 7}}) {
    const int64_t T = T_, E = E_, S = S_;  // clang 14 cannot capture structured bindings in lambdas
    const Vec z = margin_logits(T, E, rng), gates = softmax_rows(z, E);
    Vec dg(gates.size(), 0.0), dz(z.size(), 0.0);
    EXPECT_NEAR(importance_loss<double>(gates.data(), T, E, S, dg.data(), 0.9), ref_importance(gates, E, S), 1e-12);
    EXPECT_NEAR(importance_loss_from_logits<double>(z.data(), T, E, S, dz.data(), 0.9), ref_importance(gates, E, S), 1e-12);
    const auto fg = [&](const Vec& x) { return 0.9 * importance_loss<double>(x.data(), T, E, S, nullptr, 1.0); };
    const auto fz = [&](const Vec& x) { return 0.9 * importance_loss_from_logits<double>(x.data(), T, E, S, nullptr, 1.0); };
    EXPECT_LT(fd_rel_error(fg, gates, dg), 1e-6);
    EXPECT_LT(fd_rel_error(fz, z, dz), 1e-6);
  }
}

TEST(ImportanceLoss, EqualImportanceIsZero) {
  Vec gates = {0.5, 0.2, 0.3, 0.2, 0.5, 0.3, 0.3, 0.3, 0.4};  // column sums 1, 1, 1
  EXPECT_NEAR(importance_loss<double>(gates.data(), 3, 3, 3, nullptr, 1.0), 0.0, 1e-15);
  Vec zeros(6, 0.0), dz(6, 0.0);  // zero mean importance: 0, not NaN
  EXPECT_EQ(importance_loss<double>(zeros.data(), 2, 3, 1, dz.data(), 1.0), 0.0);
  Vec one(4, 0.0);  // E = 1: a single expert is always balanced
  EXPECT_EQ(importance_loss_from_logits<double>(one.data(), 4, 1, 2, nullptr, 1.0), 0.0);
}

TEST(VmoeLoadLoss, MatchesReferenceAndGradients) {
  std::mt19937_64 rng(8);
  std::normal_distribution<double> n01;
  struct Case { int64_t T, E, k, S; double sigma; };
  for (Case c : {Case{12, 5, 2, 6, 0.2}, Case{1, 4, 1, 1, 0.5}, Case{9, 3, 3, 3, 0.4}, Case{10, 6, 1, 5, 1.0 / 6}}) {
    // Noisy logits carry the top-k margins; clean = noisy − σε.
    const Vec noisy = margin_logits(c.T, c.E, rng);
    Vec clean(noisy.size());
    for (size_t i = 0; i < clean.size(); ++i) clean[i] = noisy[i] - c.sigma * n01(rng);
    Vec dclean(clean.size(), 0.0), dnoisy(clean.size(), 0.0);
    const double v = vmoe_load_loss<double>(clean.data(), noisy.data(), c.T, c.E, c.k, c.sigma, c.S,
                                            dclean.data(), dnoisy.data(), 1.1);
    EXPECT_NEAR(v, ref_load(clean, noisy, c.sigma, c.k, c.E, c.S), 1e-12);
    const auto fc = [&](const Vec& x) {
      return 1.1 * vmoe_load_loss<double>(x.data(), noisy.data(), c.T, c.E, c.k, c.sigma, c.S, nullptr, nullptr, 1.0);
    };
    const auto fn = [&](const Vec& x) {
      return 1.1 * vmoe_load_loss<double>(clean.data(), x.data(), c.T, c.E, c.k, c.sigma, c.S, nullptr, nullptr, 1.0);
    };
    EXPECT_LT(fd_rel_error(fc, clean, dclean), 1e-6);
    EXPECT_LT(fd_rel_error(fn, noisy, dnoisy), 1e-6);
    // Aliased buffers give vmoe's total gradient w.r.t. the clean logits (noisy = clean + σε).
    Vec total(clean.size(), 0.0);
    vmoe_load_loss<double>(clean.data(), noisy.data(), c.T, c.E, c.k, c.sigma, c.S, total.data(), total.data(), 1.1);
    for (size_t i = 0; i < total.size(); ++i) EXPECT_NEAR(total[i], dclean[i] + dnoisy[i], 1e-15);
  }
  const Vec noisy = tied_logits(8, 5, rng), clean = tied_logits(8, 5, rng);  // ties in the noisy logits
  EXPECT_NEAR(vmoe_load_loss<double>(clean.data(), noisy.data(), 8, 5, 2, 0.3, 4, nullptr, nullptr, 1.0),
              ref_load(clean, noisy, 0.3, 2, 5, 4), 1e-12);
}

// ---- DeepSeek -------------------------------------------------------------------------------------

TEST(DeepSeekV2Loss, MatchesReferenceAndGradient) {
  std::mt19937_64 rng(10);
  struct Case { int64_t T, E, k, S; };
  for (Case c : {Case{12, 6, 2, 4}, Case{1, 3, 1, 1}, Case{5, 1, 1, 5}, Case{9, 4, 4, 3}}) {
    const Vec z = margin_logits(c.T, c.E, rng), s = softmax_rows(z, c.E);
    // The "actual" selection: top-k of a different score (group-limited, biased...) is allowed.
    const Ids ids = topk_rows(margin_logits(c.T, c.E, rng), c.E, c.k);
    for (bool seq_aux : {true, false}) {
      Vec dz(z.size(), 0.0);
      const double v = deepseek_v2_aux_loss<double>(s.data(), ids.data(), c.T, c.E, c.k, c.S, seq_aux, 0.003, dz.data());
      EXPECT_NEAR(v, ref_v2(s, ids, c.E, c.k, c.S, seq_aux, 0.003), 1e-15);
      if (c.k == c.E) {  // f is uniform: aux = α·Σ_e P_e = α, a constant
        for (double g : dz) EXPECT_NEAR(g, 0.0, 1e-15);
        continue;
      }
      const auto f = [&](const Vec& x) {
        const Vec sx = softmax_rows(x, c.E);
        return deepseek_v2_aux_loss<double>(sx.data(), ids.data(), c.T, c.E, c.k, c.S, seq_aux, 0.003, nullptr);
      };
      EXPECT_LT(fd_rel_error(f, z, dz), 1e-6) << "seq_aux=" << seq_aux;
    }
  }
  // Uniform routing and probabilities: the minimum is alpha (HF's would be k).
  Vec s(8 * 4, 0.25);
  Ids ids;
  for (int t = 0; t < 8; ++t) ids.insert(ids.end(), {t % 4, (t + 1) % 4});
  EXPECT_NEAR(deepseek_v2_aux_loss<double>(s.data(), ids.data(), 8, 4, 2, 4, true, 0.5, nullptr), 0.5, 1e-15);
}

TEST(DeepSeekV3Loss, MatchesReferenceAndGradient) {
  std::mt19937_64 rng(11);
  struct Case { int64_t T, E, k, S; };
  for (Case c : {Case{12, 6, 2, 4}, Case{1, 3, 1, 1}, Case{9, 4, 4, 3}, Case{10, 5, 3, 10}}) {
    const Vec z = margin_logits(c.T, c.E, rng), s = sigmoid(z);
    Vec bias(c.E), biased = s;  // the routing map: top-k of s + b
    for (double& b : bias) b = std::uniform_real_distribution<double>(-0.2, 0.2)(rng);
    for (size_t i = 0; i < s.size(); ++i) biased[i] += bias[i % c.E];
    const Ids map_ids = topk_rows(biased, c.E, c.k);
    for (auto ind : {BalanceIndicator::routing_map, BalanceIndicator::plain_topk}) {
      for (auto unit : {BalanceUnit::sequence, BalanceUnit::micro_batch}) {
        const bool plain = ind == BalanceIndicator::plain_topk;
        const int64_t U = unit == BalanceUnit::sequence ? c.S : c.T;
        Vec dz(z.size(), 0.0);
        const double v = deepseek_v3_balance_loss<double>(s.data(), map_ids.data(), c.T, c.E, c.k, c.S, ind, unit, 1e-2, dz.data());
        EXPECT_NEAR(v, ref_v3(s, map_ids, c.E, c.k, U, plain, 1e-2), 1e-15);
        if (c.k == c.E) {  // f is uniform: L = α·Σ_i P_i = α, a constant
          for (double g : dz) EXPECT_NEAR(g, 0.0, 1e-15);
          continue;
        }
        const auto f = [&](const Vec& x) {
          const Vec sx = sigmoid(x);
          return deepseek_v3_balance_loss<double>(sx.data(), map_ids.data(), c.T, c.E, c.k, c.S, ind, unit, 1e-2, nullptr);
        };
        EXPECT_LT(fd_rel_error(f, z, dz), 1e-6) << "plain=" << plain << " U=" << U;
      }
    }
  }
  // Ties in s: plain top-k takes the lowest index.
  const Vec zt = tied_logits(6, 4, rng), st = sigmoid(zt);
  EXPECT_NEAR(deepseek_v3_balance_loss<double>(st.data(), nullptr, 6, 4, 2, 3, BalanceIndicator::plain_topk,
                                               BalanceUnit::sequence, 1.0, nullptr),
              ref_v3(st, {}, 4, 2, 3, true, 1.0), 1e-14);
}

// ---- auxiliary-loss-free bias update ----------------------------------------------------------------

TEST(AuxFreeBias, SignsAndMeanCentring) {
  std::vector<double> load = {10, 2, 6, 6, 6}, b(5, 0.0), c(5, 0.0);  // mean 6: 0 over, 1 under
  aux_free_bias_update<double>(b, load, 0.01, false);
  EXPECT_EQ(b, (std::vector<double>{-0.01, 0.01, 0, 0, 0}));
  load = {9, 1, 7, 3, 5};  // unequal counts of over- and under-loaded experts
  aux_free_bias_update<double>(c, load, 0.01, true);
  EXPECT_NEAR(std::accumulate(c.begin(), c.end(), 0.0), 0.0, 1e-15);
  EXPECT_LT(c[0], c[4]);
  EXPECT_GT(c[1], c[4]);
  std::vector<float> bf(2, 0.f);
  EXPECT_INVALID(aux_free_bias_update<float>(bf, load, 0.01, true), "bias has 2 experts");
}

TEST(AuxFreeBias, SkewedRouterConverges) {
  // Fixed logits with a strong per-expert skew; each step selects the top-k of sigmoid(z) + b
  // and updates b from that step's counts.
  const int64_t T = 4096, E = 8, k = 2;
  std::mt19937_64 rng(12);
  std::normal_distribution<double> n01;
  Vec z(T * E);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t e = 0; e < E; ++e) z[t * E + e] = n01(rng) + 1.5 * static_cast<double>(e) / E;
  const Vec s = sigmoid(z);
  std::vector<float> bias(E, 0.f);
  const auto max_over_mean = [&](std::vector<double>* counts) {
    std::vector<double> c(E, 0.0);
    Vec row(E);
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t e = 0; e < E; ++e) row[e] = s[t * E + e] + bias[e];
      for (int32_t id : ref_topk(row.data(), E, k)) c[id] += 1;
    }
    if (counts) *counts = c;
    return *std::max_element(c.begin(), c.end()) / (static_cast<double>(T * k) / E);
  };
  EXPECT_GT(max_over_mean(nullptr), 1.8);
  std::vector<double> counts;
  for (int step = 0; step < 300; ++step) {
    max_over_mean(&counts);
    aux_free_bias_update<float>(bias, counts, 0.002, true);
  }
  EXPECT_LT(max_over_mean(nullptr), 1.2);
}

// ---- bad input --------------------------------------------------------------------------------------

TEST(LossesBadInput, ThrowWithTheirValues) {
  Vec z(10 * 8, 0.0), s(10 * 8, 0.125);
  Ids ids(10 * 9, 0);
  const double* layers[] = {z.data()};
  const std::vector<uint8_t> mask(12, 1);
  EXPECT_INVALID(hf_load_balancing_loss<double>(layers, 10, 8, 9, {}, {}, 1.0), "top_k=9 > n_experts=8");
  EXPECT_INVALID(hf_load_balancing_loss<double>(layers, 10, 8, 0, {}, {}, 1.0), "top_k=0 < 1");
  EXPECT_INVALID(hf_load_balancing_loss<double>(layers, 10, 8, 2, mask, {}, 1.0), "attention mask has 12 entries");
  EXPECT_INVALID(switch_load_balancing_loss<double>(z.data(), ids.data(), nullptr, 10, 8, 4, nullptr, 1.0),
                 "group_size=4 does not divide n_tokens=10");
  ids[3] = 8;
  EXPECT_INVALID(switch_load_balancing_loss<double>(z.data(), ids.data(), nullptr, 10, 8, 5, nullptr, 1.0), "expert id 8");
  ids[3] = 0;
  EXPECT_INVALID(router_z_loss<double>(z.data(), 10, 0, nullptr, 1.0), "n_experts=0 < 1");
  EXPECT_INVALID(importance_loss<double>(s.data(), 10, 8, 3, nullptr, 1.0), "group_size=3 does not divide n_tokens=10");
  EXPECT_INVALID(vmoe_load_loss<double>(z.data(), z.data(), 10, 8, 9, 0.1, 5, nullptr, nullptr, 1.0), "top_k=9 > n_experts=8");
  EXPECT_INVALID(vmoe_load_loss<double>(z.data(), z.data(), 10, 8, 2, 0.0, 5, nullptr, nullptr, 1.0), "sigma=");
  EXPECT_INVALID(deepseek_v2_aux_loss<double>(s.data(), ids.data(), 10, 8, 0, 5, true, 0.1, nullptr), "top_k=0 < 1");
  EXPECT_INVALID(deepseek_v2_aux_loss<double>(s.data(), ids.data(), 10, 8, 2, 4, true, 0.1, nullptr),
                 "seq_len=4 does not divide n_tokens=10");
  EXPECT_INVALID(deepseek_v3_balance_loss<double>(s.data(), ids.data(), 10, 8, 9, 5, BalanceIndicator::routing_map,
                                                  BalanceUnit::sequence, 0.1, nullptr),
                 "top_k=9 > n_experts=8");
  EXPECT_INVALID(deepseek_v3_balance_loss<double>(s.data(), nullptr, 10, 8, 2, 5, BalanceIndicator::routing_map,
                                                  BalanceUnit::sequence, 0.1, nullptr),
                 "topk_ids");
}

// ---- float instantiation ------------------------------------------------------------------------------

TEST(LossesFloat, MatchesDouble) {
  std::mt19937_64 rng(13);
  const int64_t T = 12, E = 5, k = 2, S = 4;
  const auto to_float = [](Vec v) { for (double& x : v) x = static_cast<float>(x); return v; };
  const Vec z = to_float(margin_logits(T, E, rng)), noisy = to_float(margin_logits(T, E, rng));
  const Vec p = to_float(softmax_rows(z, E)), s = to_float(sigmoid(z));  // the same inputs in both types
  const Ids ids = topk_rows(p, E, k), top1 = topk_rows(p, E, 1);
  const std::vector<uint8_t> mask = {1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1};
  // Every loss in one type: the values and the gradients, widened to double.
  const auto run = [&](auto tag, Vec& values, std::vector<Vec>& grads) {
    using F = decltype(tag);
    const auto cast = [](const Vec& v) { return std::vector<F>(v.begin(), v.end()); };
    const std::vector<F> zf = cast(z), nf = cast(noisy), pf = cast(p), sf = cast(s);
    std::vector<std::vector<F>> g(8, std::vector<F>(T * E, F(0)));
    const F* layers[] = {zf.data()};
    F* dlayers[] = {g[0].data()};
    values = {hf_load_balancing_loss<F>(layers, T, E, k, mask, dlayers, F(1)),
              switch_load_balancing_loss<F>(zf.data(), top1.data(), nullptr, T, E, S, g[1].data(), F(1)),
              router_z_loss<F>(zf.data(), T, E, g[2].data(), F(1)),
              importance_loss<F>(pf.data(), T, E, S, g[3].data(), F(1)),
              importance_loss_from_logits<F>(zf.data(), T, E, S, g[4].data(), F(1)),
              vmoe_load_loss<F>(zf.data(), nf.data(), T, E, k, 0.5, S, g[5].data(), g[5].data(), F(1)),
              deepseek_v2_aux_loss<F>(pf.data(), ids.data(), T, E, k, S, true, 0.1, g[6].data()),
              deepseek_v3_balance_loss<F>(sf.data(), ids.data(), T, E, k, S, BalanceIndicator::routing_map,
                                          BalanceUnit::sequence, 0.1, g[7].data())};
    grads.clear();
    for (const auto& gi : g) grads.emplace_back(gi.begin(), gi.end());
  };
  Vec vf, vd;
  std::vector<Vec> gf, gd;
  run(0.f, vf, gf);
  run(0.0, vd, gd);
  for (size_t i = 0; i < vd.size(); ++i) {
    EXPECT_NEAR(vf[i], vd[i], 1e-5 * std::max(1.0, std::abs(vd[i]))) << "loss " << i;
    for (int64_t j = 0; j < T * E; ++j) EXPECT_NEAR(gf[i][j], gd[i][j], 1e-5) << "loss " << i << " grad " << j;
  }
}
