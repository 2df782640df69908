// Expert FFNs: each activation against its formula written out, the dense FFN, and finite
// differences of the dense FFN backward (the MoE paths are covered by test_moe_layer_fd).
#include <gtest/gtest.h>

#include <cmath>

#include "moe/expert_store.h"
#include "moe/experts.h"
#include "moe/rng.h"

using namespace moe;

namespace {

struct Ffn {
  int64_t H = 4, I = 3;
  std::vector<double> gate, up, down, bg, bu, bd;
  ExpertWeights<double> view(bool bias) const {
    ExpertWeights<double> w;
    w.n_experts = 1;
    w.d_model = H;
    w.hidden = I;
    w.gate = gate.data();
    w.up = up.data();
    w.down = down.data();
    if (bias) w.gate_bias = bg.data(), w.up_bias = bu.data(), w.down_bias = bd.data();
    return w;
  }
};

Ffn random_ffn(Rng& rng) {
  Ffn f;
  auto fill = [&](std::vector<double>& v, int64_t n) {
    for (int64_t i = 0; i < n; ++i) v.push_back(rng.normal());
  };
  fill(f.gate, f.I * f.H);
  fill(f.up, f.I * f.H);
  fill(f.down, f.H * f.I);
  fill(f.bg, f.I);
  fill(f.bu, f.I);
  fill(f.bd, f.H);
  return f;
}

// The FFN written out plainly for one token.
std::vector<double> plain(const Ffn& f, ExpertAct act, bool bias, const double* x, double alpha = 1.702, double limit = 7) {
  std::vector<double> h(f.I), y(f.H);
  for (int64_t i = 0; i < f.I; ++i) {
    double g = bias ? f.bg[i] : 0, u = bias ? f.bu[i] : 0;
    for (int64_t j = 0; j < f.H; ++j) g += f.gate[i * f.H + j] * x[j], u += f.up[i * f.H + j] * x[j];
    switch (act) {
      case ExpertAct::swiglu: h[i] = g / (1 + std::exp(-g)) * u; break;
      case ExpertAct::gelu: h[i] = 0.5 * u * (1 + std::erf(u / std::sqrt(2.0))); break;
      case ExpertAct::gelu_tanh: h[i] = 0.5 * u * (1 + std::tanh(std::sqrt(2 / M_PI) * (u + 0.044715 * u * u * u))); break;
      case ExpertAct::relu: h[i] = std::max(u, 0.0); break;
      case ExpertAct::gpt_oss_swiglu: {
        const double gc = std::min(g, limit), uc = std::clamp(u, -limit, limit);
        h[i] = (uc + 1) * gc / (1 + std::exp(-alpha * gc));
        break;
      }
    }
  }
  for (int64_t o = 0; o < f.H; ++o) {
    y[o] = bias ? f.bd[o] : 0;
    for (int64_t i = 0; i < f.I; ++i) y[o] += f.down[o * f.I + i] * h[i];
  }
  return y;
}

// A dense FFN through the expert store: one expert (the f64 reference format), every token.
struct DenseRun {
  DispatchPlan plan;
  ExpertRunState<double> st;
  std::vector<double> ones;
  void forward(const ExpertConfig& c, const ExpertWeights<double>& w, const double* x, int64_t T, double* y) {
    make_dense_plan(T, plan);
    ones.assign(static_cast<size_t>(T), 1.0);
    run_experts(view_experts(c, w), plan, ones.data(), x, y, st);
  }
  void backward(const ExpertConfig& c, const ExpertWeights<double>& w, const double* x, const double* dy, double* dx,
                const ExpertGrads<double>& g) {
    std::vector<double> dw(ones.size());
    run_experts_backward(view_experts(c, w), plan, ones.data(), x, st, dy, dx, g, dw.data());
  }
};

}  // namespace

TEST(Experts, EveryActivationMatchesItsFormula) {
  Rng rng(3);
  const Ffn f = random_ffn(rng);
  std::vector<double> x(5 * f.H);
  for (double& v : x) v = 1.5 * rng.normal();
  for (ExpertAct act : {ExpertAct::swiglu, ExpertAct::gelu, ExpertAct::gelu_tanh, ExpertAct::relu, ExpertAct::gpt_oss_swiglu}) {
    for (bool bias : {false, true}) {
      ExpertConfig c{act, f.I, bias, 1.702, 1.0};
      DenseRun a;
      std::vector<double> y(x.size());
      a.forward(c, f.view(bias), x.data(), 5, y.data());
      for (int64_t t = 0; t < 5; ++t) {
        const auto want = plain(f, act, bias, x.data() + t * f.H, 1.702, 1.0);
        for (int64_t o = 0; o < f.H; ++o) EXPECT_NEAR(y[t * f.H + o], want[o], 1e-12) << expert_act_name(act);
      }
    }
  }
}

TEST(Experts, DenseFfnBackwardMatchesFiniteDifferences) {
  Rng rng(4);
  Ffn f = random_ffn(rng);
  const int64_t T = 3;
  std::vector<double> x(T * f.H), dy(T * f.H);
  for (double& v : x) v = rng.normal();
  for (double& v : dy) v = rng.normal();
  for (ExpertAct act : {ExpertAct::swiglu, ExpertAct::gelu, ExpertAct::gpt_oss_swiglu}) {
    ExpertConfig c{act, f.I, true, 1.702, 1.2};
    auto loss = [&](const std::vector<double>& xx) {
      DenseRun a;
      std::vector<double> y(xx.size());
      a.forward(c, f.view(true), xx.data(), T, y.data());
      double l = 0;
      for (size_t i = 0; i < y.size(); ++i) l += y[i] * dy[i];
      return l;
    };
    DenseRun a;
    std::vector<double> y(x.size()), dx(x.size(), 0.0), dgate(f.gate.size(), 0.0), dup(f.up.size(), 0.0),
        ddown(f.down.size(), 0.0), dbg(f.I, 0.0), dbu(f.I, 0.0), dbd(f.H, 0.0);
    a.forward(c, f.view(true), x.data(), T, y.data());
    a.backward(c, f.view(true), x.data(), dy.data(), dx.data(),
               ExpertGrads<double>{dgate.data(), dup.data(), ddown.data(), dbg.data(), dbu.data(), dbd.data()});
    const double h = 1e-6;
    for (size_t i = 0; i < x.size(); ++i) {
      auto xp = x, xm = x;
      xp[i] += h;
      xm[i] -= h;
      EXPECT_NEAR(dx[i], (loss(xp) - loss(xm)) / (2 * h), 1e-6) << expert_act_name(act);
    }
    auto check = [&](std::vector<double>& param, const std::vector<double>& grad, const char* name) {
      for (size_t i = 0; i < param.size(); ++i) {
        const double orig = param[i];
        param[i] = orig + h;
        const double lp = loss(x);
        param[i] = orig - h;
        const double lm = loss(x);
        param[i] = orig;
        EXPECT_NEAR(grad[i], (lp - lm) / (2 * h), 1e-6) << name << "[" << i << "] " << expert_act_name(act);
      }
    };
    check(f.gate, dgate, "gate");
    check(f.up, dup, "up");
    check(f.down, ddown, "down");
    check(f.bg, dbg, "gate_bias");
    check(f.bu, dbu, "up_bias");
    check(f.bd, dbd, "down_bias");
  }
}
