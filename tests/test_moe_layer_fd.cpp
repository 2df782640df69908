// Finite-difference checks, in float64, of every gradient of the MoE layer: dx and every
// trainable weight, for every router / expert / shared-expert path (tests/layer_cases.h).
// The loss is L = Σ y·dy + aux_total. Coordinates whose ±h perturbation changes the discrete
// routing are skipped (the gradient is not defined there); few may be.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "layer_cases.h"
#include "moe/error.h"

using namespace moe;
using namespace moe::testing;

namespace {

struct Problem {
  LayerCase c;
  MoeLayerWeights w;
  std::vector<double> x, dy, noise, jitter;
  LayerInputs in;
};

Problem make_problem(const LayerCase& lc, uint64_t seed) {
  Rng rng(seed);
  Problem p{lc, random_weights(lc.config, rng), {}, {}, {}, {}, {}};
  const int64_t T = lc.n_tokens, H = lc.config.d_model, E = lc.config.router.n_experts;
  for (int64_t i = 0; i < T * H; ++i) p.x.push_back(rng.normal());
  for (int64_t i = 0; i < T * H; ++i) p.dy.push_back(rng.normal());
  const int64_t per_token = E * std::max<int64_t>(1, lc.config.soft.slots_per_expert);  // [T, E] or [T, E·p]
  for (int64_t i = 0; i < T * per_token; ++i) p.noise.push_back(rng.normal());
  for (int64_t i = 0; i < T * H; ++i) p.jitter.push_back(rng.uniform(1 - lc.config.jitter, 1 + lc.config.jitter));
  p.in.n_tokens = T;
  p.in.group_tokens = lc.group_tokens;
  p.in.training = lc.training;
  p.in.noise = p.noise.data();
  p.in.jitter = p.jitter.data();
  return p;
}

struct Eval {
  double loss;
  std::vector<int32_t> experts;
  std::vector<uint8_t> kept;
};

Eval evaluate(const Problem& p, const std::vector<double>& x) {
  MoeLayerState<double> st;
  std::vector<double> y(x.size());
  moe_layer_forward(p.c.config, p.w, x.data(), p.in, st, y.data());
  double loss = st.losses.at("aux_total");
  for (size_t i = 0; i < y.size(); ++i) loss += y[i] * p.dy[i];
  return {loss, st.router.routing.slot_expert, st.router.routing.slot_kept};
}

bool same_routing(const Eval& a, const Eval& b) { return a.experts == b.experts && a.kept == b.kept; }

void check_fd(const LayerCase& lc, uint64_t seed) {
  SCOPED_TRACE(lc.name + " seed " + std::to_string(seed));
  Problem p = make_problem(lc, seed);
  MoeLayerState<double> st;
  std::vector<double> y(p.x.size()), dx(p.x.size());
  moe_layer_forward(lc.config, p.w, p.x.data(), p.in, st, y.data());
  MoeLayerWeights g = make_layer_weights(lc.config, DType::f64);
  moe_layer_backward(lc.config, p.w, p.in, st, p.dy.data(), dx.data(), g);
  const Eval base = evaluate(p, p.x);
  const double h = 1e-6;
  int checked = 0, skipped = 0;

  auto compare = [&](const std::string& what, double analytic, double plus, double minus, bool valid) {
    if (!valid) {
      ++skipped;
      return;
    }
    ++checked;
    const double numeric = (plus - minus) / (2 * h);
    EXPECT_NEAR(analytic, numeric, 2e-6 * std::max(1.0, std::fabs(numeric))) << what;
  };

  for (size_t i = 0; i < p.x.size(); ++i) {
    std::vector<double> xp = p.x, xm = p.x;
    xp[i] += h;
    xm[i] -= h;
    const Eval ep = evaluate(p, xp), em = evaluate(p, xm);
    compare("dx[" + std::to_string(i) + "]", dx[i], ep.loss, em.loss, same_routing(ep, base) && same_routing(em, base));
  }
  p.w.for_each_tensor([&](const std::string& name, Tensor& t) {
    if (t.empty() || !is_trainable(name)) return;
    Tensor* grad = nullptr;
    g.for_each_tensor([&](const std::string& n, Tensor& gt) {
      if (n == name) grad = &gt;
    });
    ASSERT_TRUE(grad && !grad->empty()) << name;
    double* v = t.as<double>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      const double orig = v[i];
      v[i] = orig + h;
      const Eval ep = evaluate(p, p.x);
      v[i] = orig - h;
      const Eval em = evaluate(p, p.x);
      v[i] = orig;
      compare(name + "[" + std::to_string(i) + "]", grad->as<double>()[i], ep.loss, em.loss,
              same_routing(ep, base) && same_routing(em, base));
    }
  });
  EXPECT_GT(checked, 20);
  EXPECT_LE(skipped, checked / 10) << "too many coordinates change the routing";
}

}  // namespace

class LayerFd : public ::testing::TestWithParam<LayerCase> {};

TEST_P(LayerFd, GradientsMatchFiniteDifferences) {
  for (uint64_t seed : {1u, 2u, 3u}) check_fd(GetParam(), seed);
}

INSTANTIATE_TEST_SUITE_P(AllPaths, LayerFd, ::testing::ValuesIn(layer_cases()),
                         [](const ::testing::TestParamInfo<LayerCase>& i) { return i.param.name; });

TEST(LayerFd, FiniteDifferencesCanFail) {
  // A wrong gradient must be caught: perturb one analytic value and compare.
  const LayerCase lc = layer_cases().front();
  Problem p = make_problem(lc, 7);
  MoeLayerState<double> st;
  std::vector<double> y(p.x.size()), dx(p.x.size());
  moe_layer_forward(lc.config, p.w, p.x.data(), p.in, st, y.data());
  MoeLayerWeights g = make_layer_weights(lc.config, DType::f64);
  moe_layer_backward(lc.config, p.w, p.in, st, p.dy.data(), dx.data(), g);
  std::vector<double> xp = p.x, xm = p.x;
  xp[0] += 1e-6;
  xm[0] -= 1e-6;
  const double numeric = (evaluate(p, xp).loss - evaluate(p, xm).loss) / 2e-6;
  EXPECT_NEAR(dx[0], numeric, 1e-6);
  EXPECT_GT(std::fabs(dx[0] * 1.01 - numeric), 1e-8);
}

// A Soft MoE layer applies its shared expert: y = soft(x) + σ(x·w)·shared(x) (it used to be dropped,
// with zero gradients for the shared weights).
TEST(SoftMoe, AppliesTheSharedExpert) {
  LayerCase lc;
  for (const LayerCase& c : layer_cases())
    if (c.name == "soft_moe_shared") lc = c;
  Problem p = make_problem(lc, 3);
  MoeLayerState<double> st;
  std::vector<double> y(p.x.size()), y_soft(p.x.size());
  moe_layer_forward(lc.config, p.w, p.x.data(), p.in, st, y.data());
  MoeLayerConfig soft_only = lc.config;
  soft_only.shared_hidden = 0;
  soft_only.shared_gate = false;
  MoeLayerWeights w = make_layer_weights(soft_only, DType::f64);  // the same weights, minus the shared expert
  w.for_each_tensor([&](const std::string& name, Tensor& t) {
    if (!t.empty()) std::memcpy(t.data(), p.w.find(name)->data(), t.nbytes());
  });
  MoeLayerState<double> st_soft;
  moe_layer_forward(soft_only, w, p.x.data(), p.in, st_soft, y_soft.data());
  // The shared expert written out: SwiGLU of width 3, sigmoid gate.
  const int64_t H = lc.config.d_model, Is = lc.config.shared_hidden;
  const double* g = p.w.shared_gate.as<double>();
  const double* u = p.w.shared_up.as<double>();
  const double* d = p.w.shared_down.as<double>();
  const double* gw = p.w.shared_gate_w.as<double>();
  for (int64_t t = 0; t < lc.n_tokens; ++t) {
    const double* xt = p.x.data() + t * H;
    double z = 0;
    for (int64_t j = 0; j < H; ++j) z += gw[j] * xt[j];
    const double gate = 1 / (1 + std::exp(-z));
    for (int64_t o = 0; o < H; ++o) {
      double out = 0;
      for (int64_t i = 0; i < Is; ++i) {
        double a = 0, b = 0;
        for (int64_t j = 0; j < H; ++j) a += g[i * H + j] * xt[j], b += u[i * H + j] * xt[j];
        out += d[o * Is + i] * a / (1 + std::exp(-a)) * b;
      }
      EXPECT_NEAR(y[t * H + o], y_soft[t * H + o] + gate * out, 1e-12) << "token " << t << " column " << o;
    }
  }
}

// Soft MoE noise (vmoe SoftRouter.add_noise): logits + noise_std·ε in training only; a token
// router's noise setting on a Soft MoE layer is an error, not silently ignored.
TEST(SoftMoe, NoiseAppliesInTrainingOnly) {
  LayerCase lc;
  for (const LayerCase& c : layer_cases())
    if (c.name == "soft_moe_noise") lc = c;
  Problem p = make_problem(lc, 4);
  auto run = [&](bool training, double noise_std) {
    MoeLayerConfig c = lc.config;
    c.soft.noise_std = noise_std;
    LayerInputs in = p.in;
    in.training = training;
    MoeLayerState<double> st;
    std::vector<double> y(p.x.size());
    moe_layer_forward(c, p.w, p.x.data(), in, st, y.data());
    return std::make_pair(y, st.soft.logits);
  };
  const auto [y_eval, l_eval] = run(false, 0.7);
  const auto [y_clean, l_clean] = run(true, 0.0);
  const auto [y_noisy, l_noisy] = run(true, 0.7);
  EXPECT_EQ(y_eval, y_clean);
  EXPECT_NE(y_noisy, y_clean);
  for (size_t i = 0; i < l_clean.size(); ++i) EXPECT_NEAR(l_noisy[i] - l_clean[i], 0.7 * p.noise[i], 1e-12);
  MoeLayerConfig bad = lc.config;
  bad.router.noise = NoiseKind::vmoe;
  EXPECT_THROW(validate_layer(bad), InvalidInput);
  bad = lc.config;
  bad.losses.coef["z_loss"] = 0.1;
  EXPECT_THROW(validate_layer(bad), InvalidInput);
}
