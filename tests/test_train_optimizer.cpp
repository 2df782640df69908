// AdamW (against a float64 re-derivation; the PyTorch oracle is tests/oracle/adamw_oracle.py),
// parameter groups, optimizer state save/restore, gradient clipping and accumulation helpers,
// and the learning-rate schedule.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>

#include "moe/error.h"
#include "moe/optimizer.h"
#include "moe/rng.h"

using moe::DType;
using moe::NamedTensors;
using moe::Tensor;

namespace {

// Parameters and gradients of a toy model, named as a model's visitor would name them.
struct Toy {
  std::vector<std::string> names = {"embed", "blocks.0.norm.weight", "blocks.0.w", "head.bias"};
  std::vector<moe::Shape> shapes = {{11, 4}, {4}, {4, 6}, {6}};
  std::vector<Tensor> params, grads;

  explicit Toy(uint64_t seed) {
    moe::Rng rng(seed);
    for (const auto& s : shapes) {
      params.emplace_back(DType::f32, s);
      grads.emplace_back(DType::f32, s);
      for (int64_t i = 0; i < params.back().numel(); ++i) params.back().as<float>()[i] = float(rng.normal());
    }
  }
  void for_each(const moe::TensorVisitor& f) {
    for (size_t i = 0; i < names.size(); ++i) f(names[i], params[i]);
  }
  NamedTensors param_list() { return moe::collect_tensors([&](const moe::TensorVisitor& f) { for_each(f); }); }
  NamedTensors grad_list() {
    NamedTensors out;
    for (size_t i = 0; i < names.size(); ++i) out.emplace_back(names[i], grads[i].view());
    return out;
  }
  void fill_grads(moe::Rng& rng, double scale) {
    for (Tensor& g : grads) {
      for (int64_t i = 0; i < g.numel(); ++i) g.as<float>()[i] = float(scale * rng.normal());
    }
  }
};

std::vector<float> values(const moe::TensorView& t) { return std::vector<float>(t.as<float>(), t.as<float>() + t.numel()); }

template <class F> void expect_invalid(F f, const std::string& fragment) {
  try {
    f();
    ADD_FAILURE() << "accepted; expected an error containing: " << fragment;
  } catch (const moe::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(AdamW, MatchesAFloat64DerivationOverSteps) {
  Toy toy(1);
  moe::AdamWOptions opt;
  opt.beta1 = 0.8;
  opt.beta2 = 0.99;
  opt.eps = 1e-6;
  opt.weight_decay = 0.1;
  moe::AdamW adamw(moe::pair_params(toy.param_list(), toy.grad_list()), opt);
  // float64 shadow of the same algorithm.
  std::vector<std::vector<double>> p, m, v;
  for (const Tensor& t : toy.params) {
    p.emplace_back(t.as<float>(), t.as<float>() + t.numel());
    m.emplace_back(t.numel(), 0.0);
    v.emplace_back(t.numel(), 0.0);
  }
  moe::Rng rng(2);
  for (int step = 1; step <= 6; ++step) {
    const double lr = 0.01 * step;
    toy.fill_grads(rng, 1.0);
    adamw.step(lr);
    for (size_t k = 0; k < p.size(); ++k) {
      const double wd = toy.params[k].rank() >= 2 ? opt.weight_decay : 0.0;
      for (size_t i = 0; i < p[k].size(); ++i) {
        const double g = toy.grads[k].as<float>()[i];
        p[k][i] *= 1 - lr * wd;
        m[k][i] = opt.beta1 * m[k][i] + (1 - opt.beta1) * g;
        v[k][i] = opt.beta2 * v[k][i] + (1 - opt.beta2) * g * g;
        const double mhat = m[k][i] / (1 - std::pow(opt.beta1, step));
        const double vhat = v[k][i] / (1 - std::pow(opt.beta2, step));
        p[k][i] -= lr * mhat / (std::sqrt(vhat) + opt.eps);
        EXPECT_NEAR(toy.params[k].as<float>()[i], p[k][i], 2e-5 * (1 + std::abs(p[k][i])))
            << toy.names[k] << "[" << i << "] step " << step;
      }
    }
  }
  EXPECT_EQ(adamw.step_count(), 6);
}

TEST(AdamW, DecayPredicateSelectsTheGroup) {
  Toy toy(3);  // zero gradients: only weight decay moves a parameter
  const std::vector<std::vector<float>> before = {values(toy.params[0]), values(toy.params[1]), values(toy.params[2]),
                                                  values(toy.params[3])};
  moe::AdamWOptions opt;
  opt.weight_decay = 0.5;
  moe::AdamW adamw(moe::pair_params(toy.param_list(), toy.grad_list()), opt);
  EXPECT_TRUE(adamw.decays(0));
  EXPECT_FALSE(adamw.decays(1));
  EXPECT_TRUE(adamw.decays(2));
  EXPECT_FALSE(adamw.decays(3));
  adamw.step(0.1);
  const float factor = static_cast<float>(1 - 0.1 * 0.5);
  for (size_t k = 0; k < 4; ++k) {
    for (size_t i = 0; i < before[k].size(); ++i) {
      EXPECT_EQ(toy.params[k].as<float>()[i], adamw.decays(k) ? before[k][i] * factor : before[k][i]);
    }
  }
  // A custom predicate: decay nothing named "embed".
  Toy other(3);
  moe::AdamW custom(moe::pair_params(other.param_list(), other.grad_list()), opt,
                    [](const std::string& name, const moe::TensorView& t) { return t.rank() >= 2 && name != "embed"; });
  EXPECT_FALSE(custom.decays(0));
  EXPECT_TRUE(custom.decays(2));
}

TEST(AdamW, RestoredStateContinuesBitIdentically) {
  Toy a(5), b(5);
  moe::AdamWOptions opt;
  moe::AdamW oa(moe::pair_params(a.param_list(), a.grad_list()), opt);
  moe::AdamW ob(moe::pair_params(b.param_list(), b.grad_list()), opt);
  moe::Rng rng(6);
  for (int s = 0; s < 3; ++s) {
    a.fill_grads(rng, 0.3);
    oa.step(1e-2);
  }
  // Copy a's parameters and optimizer state into b, as a checkpoint restore would.
  const NamedTensors sa = oa.state_tensors(), sb = ob.state_tensors();
  ASSERT_EQ(sa.size(), 1 + 2 * a.names.size());
  EXPECT_EQ(sa[0].first, "adam.step");
  EXPECT_EQ(sa[1].first, "adam.m.embed");
  EXPECT_EQ(sa[1 + a.names.size()].first, "adam.v.embed");
  for (size_t i = 0; i < sa.size(); ++i) {
    ASSERT_EQ(sa[i].first, sb[i].first);
    ASSERT_EQ(sa[i].second.shape(), sb[i].second.shape());
    std::memcpy(sb[i].second.data(), sa[i].second.data(), sa[i].second.nbytes());
  }
  for (size_t k = 0; k < a.params.size(); ++k) std::memcpy(b.params[k].data(), a.params[k].data(), a.params[k].nbytes());
  EXPECT_EQ(ob.step_count(), 3);
  for (int s = 0; s < 3; ++s) {
    a.fill_grads(rng, 0.3);
    for (size_t k = 0; k < a.grads.size(); ++k) std::memcpy(b.grads[k].data(), a.grads[k].data(), a.grads[k].nbytes());
    oa.step(5e-3);
    ob.step(5e-3);
  }
  for (size_t k = 0; k < a.params.size(); ++k) EXPECT_EQ(values(a.params[k]), values(b.params[k])) << a.names[k];
}

TEST(AdamW, ResultDoesNotDependOnTheThreadCount) {
  const int64_t n = 100003;  // above the parallel threshold, odd size
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 3}) {
    Tensor p(DType::f32, {n}), g(DType::f32, {n});
    moe::Rng rng(8);
    for (int64_t i = 0; i < n; ++i) p.as<float>()[i] = float(rng.normal());
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    moe::AdamW adamw({{"w", p.view(), g.view()}}, moe::AdamWOptions{}, [](auto&, auto&) { return true; });
    for (int s = 0; s < 3; ++s) {
      for (int64_t i = 0; i < n; ++i) g.as<float>()[i] = float(rng.normal());
      moe::clip_grad_norm({{"w", g.view()}}, 50.0);
      adamw.step(1e-3);
    }
    omp_set_num_threads(saved);
    results.push_back(values(p));
  }
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
}

TEST(AdamW, RejectsBadOptionsAndMismatchedGradients) {
  Toy toy(1);
  moe::AdamWOptions bad;
  bad.beta1 = 1.0;
  expect_invalid([&] { moe::AdamW(moe::pair_params(toy.param_list(), toy.grad_list()), bad); }, "[adamw] betas");
  NamedTensors grads = toy.grad_list();
  std::swap(grads[0], grads[2]);
  expect_invalid([&] { moe::pair_params(toy.param_list(), grads); }, "'embed' but its gradient is 'blocks.0.w'");
  Tensor wrong(DType::f32, {4, 5});
  grads = toy.grad_list();
  grads[2].second = wrong.view();
  expect_invalid([&] { moe::pair_params(toy.param_list(), grads); }, "'blocks.0.w' has shape [4, 6] but its gradient [4, 5]");
  grads.pop_back();
  expect_invalid([&] { moe::pair_params(toy.param_list(), grads); }, "4 parameters but 3 gradients");
}

TEST(ClipGradNorm, NormAndClipAsTorch) {
  Tensor a = Tensor::from<float>({2, 2}, {3, 0, 0, 4});  // norm 5
  Tensor b = Tensor::from<float>({1}, {12});             // norm 12; total 13
  const NamedTensors grads = {{"a", a.view()}, {"b", b.view()}};
  EXPECT_FLOAT_EQ(moe::grad_norm(grads), 13.0f);
  // Below max_norm: untouched.
  EXPECT_FLOAT_EQ(moe::clip_grad_norm(grads, 20.0), 13.0f);
  EXPECT_EQ(values(a), (std::vector<float>{3, 0, 0, 4}));
  // Above: scaled by max_norm / (norm + 1e-6), computed as torch does (reciprocal, then times).
  EXPECT_FLOAT_EQ(moe::clip_grad_norm(grads, 6.5), 13.0f);
  const float coef = (1.0f / (13.0f + 1e-6f)) * 6.5f;
  EXPECT_EQ(values(a), (std::vector<float>{3 * coef, 0, 0, 4 * coef}));
  EXPECT_EQ(values(b), (std::vector<float>{12 * coef}));
  EXPECT_NEAR(moe::grad_norm(grads), 6.5, 1e-5);
}

TEST(ClipGradNorm, NonFiniteNormIsReportedAndNothingChanges) {
  Tensor a = Tensor::from<float>({3}, {1, 2, 3});
  Tensor b = Tensor::from<float>({2}, {std::numeric_limits<float>::quiet_NaN(), 1});
  const NamedTensors grads = {{"layer0.w", a.view()}, {"layer1.w", b.view()}};
  EXPECT_TRUE(std::isnan(moe::clip_grad_norm(grads, 1.0)));
  EXPECT_EQ(values(a), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(moe::first_nonfinite(grads), std::optional<std::string>("layer1.w"));
  b.as<float>()[0] = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(std::isinf(moe::clip_grad_norm(grads, 1.0)));
  b.as<float>()[0] = 0;
  EXPECT_EQ(moe::first_nonfinite(grads), std::nullopt);
  // Finite values whose squares overflow float still give the right (finite) norm.
  Tensor big = Tensor::from<float>({2}, {3e30f, 4e30f});
  EXPECT_FLOAT_EQ(moe::grad_norm({{"big", big.view()}}), 5e30f);
}

TEST(Gradients, ScaleAndZero) {
  Tensor a = Tensor::from<float>({3}, {1, 2, 3});
  const NamedTensors grads = {{"a", a.view()}};
  moe::scale_grads(grads, 0.25f);
  EXPECT_EQ(values(a), (std::vector<float>{0.25f, 0.5f, 0.75f}));
  moe::zero_grads(grads);
  EXPECT_EQ(values(a), (std::vector<float>{0, 0, 0}));
}

TEST(LrSchedule, WarmupThenCosineThenFloor) {
  moe::LrSchedule s{1e-3, 1e-4, 10, 110};
  s.validate();
  EXPECT_DOUBLE_EQ(s.lr_at(0), 1e-4);   // (0 + 1) / 10 of the peak
  EXPECT_DOUBLE_EQ(s.lr_at(4), 5e-4);
  EXPECT_DOUBLE_EQ(s.lr_at(9), 1e-3);   // warmup reaches the peak
  EXPECT_DOUBLE_EQ(s.lr_at(10), 1e-3);  // cosine starts at the peak
  EXPECT_NEAR(s.lr_at(60), 1e-4 + 0.5 * 9e-4, 1e-15);  // half way: the mean
  EXPECT_NEAR(s.lr_at(35), 1e-4 + 0.5 * (1 + std::cos(std::numbers::pi / 4)) * 9e-4, 1e-15);
  EXPECT_DOUBLE_EQ(s.lr_at(110), 1e-4);
  EXPECT_DOUBLE_EQ(s.lr_at(1000), 1e-4);
  for (int64_t t = 10; t < 110; ++t) EXPECT_GE(s.lr_at(t), s.lr_at(t + 1)) << t;
  moe::LrSchedule no_warmup{2e-3, 0, 0, 4};
  EXPECT_DOUBLE_EQ(no_warmup.lr_at(0), 2e-3);
  EXPECT_NEAR(no_warmup.lr_at(2), 1e-3, 1e-18);
  EXPECT_DOUBLE_EQ(no_warmup.lr_at(4), 0);
}

TEST(LrSchedule, RejectsBadSettings) {
  expect_invalid([] { moe::LrSchedule{1e-3, 2e-3, 0, 10}.validate(); }, "[lr_schedule] min_lr=");
  expect_invalid([] { moe::LrSchedule{1e-3, 0, 20, 10}.validate(); }, "must be >= 1 and >= warmup=20");
  expect_invalid([] { moe::LrSchedule{0, 0, 0, 10}.validate(); }, "peak lr=");
}
