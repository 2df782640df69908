// Finite-difference checks, in float64, of every gradient of the MoE layer: dx and every
// trainable weight, for every router / expert / shared-expert path (tests/layer_cases.h).
// The loss is L = Σ y·dy + aux_total. Coordinates whose ±h perturbation changes the discrete
// routing are skipped (the gradient is not defined there); few may be.
#include <gtest/gtest.h>

#include <cmath>

#include "layer_cases.h"

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
  for (int64_t i = 0; i < T * E; ++i) p.noise.push_back(rng.normal());
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
