// The grouped fast path against the reference experts (kernels/ref) on odd shapes, empty and
// overloaded experts, T = 1, k = E, unaligned sizes, every activation, biases, every ISA the
// machine has. Tolerance from the problem size: float32 sums of K products.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/cpu/microkernel.h"
#include "moe/fast_experts.h"
#include "moe/rng.h"

using namespace moe;

namespace {

struct Case {
  int64_t T, H, I, E, k;
  ExpertAct act;
  bool bias;
  double skew;  // 0 = uniform routing; larger = more tokens on low experts
};

Routing random_routing(const Case& c, Rng& rng) {
  Routing r;
  r.n_tokens = c.T;
  r.n_experts = c.E;
  r.top_k = c.k;
  std::vector<int32_t> perm(static_cast<size_t>(c.E));
  for (int64_t t = 0; t < c.T; ++t) {
    for (int64_t e = 0; e < c.E; ++e) perm[e] = static_cast<int32_t>(e);
    // Weighted choice without replacement: expert e has weight (e+1)^-skew.
    for (int64_t j = 0; j < c.k; ++j) {
      double total = 0;
      for (int64_t e = j; e < c.E; ++e) total += std::pow(perm[e] + 1.0, -c.skew);
      double u = rng.uniform() * total;
      int64_t pick = j;
      for (int64_t e = j; e < c.E; ++e) {
        u -= std::pow(perm[e] + 1.0, -c.skew);
        if (u <= 0) {
          pick = e;
          break;
        }
      }
      std::swap(perm[j], perm[pick]);
      r.slot_token.push_back(static_cast<int32_t>(t));
      r.slot_expert.push_back(perm[j]);
      r.slot_kept.push_back(1);
    }
  }
  build_expert_order(r);
  return r;
}

void check(const Case& c, uint64_t seed, DType wdtype = DType::f32) {
  SCOPED_TRACE(::testing::Message() << "T=" << c.T << " H=" << c.H << " I=" << c.I << " E=" << c.E << " k=" << c.k
                                    << " act=" << expert_act_name(c.act) << " bias=" << c.bias << " skew=" << c.skew);
  Rng rng(seed);
  auto randv = [&](int64_t n, double s) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& f : v) f = static_cast<float>(s * rng.normal());
    return v;
  };
  const double ws = 1.0 / std::sqrt(static_cast<double>(c.H));
  std::vector<float> gate = randv(c.E * c.I * c.H, ws), up = randv(c.E * c.I * c.H, ws),
                     down = randv(c.E * c.H * c.I, 1.0 / std::sqrt(static_cast<double>(c.I))), x = randv(c.T * c.H, 1.0),
                     gb = randv(c.E * c.I, 0.1), ub = randv(c.E * c.I, 0.1), db = randv(c.E * c.H, 0.1);
  ExpertWeights<float> w;
  w.n_experts = c.E;
  w.d_model = c.H;
  w.hidden = c.I;
  w.gate = gate.data();
  w.up = up.data();
  w.down = down.data();
  if (c.bias) w.gate_bias = gb.data(), w.up_bias = ub.data(), w.down_bias = db.data();
  ExpertConfig cfg{c.act, c.I, c.bias, 1.702, 2.0};
  const Routing r = random_routing(c, rng);
  // bf16 weights (and the activations the bf16 path rounds as it packs them): the reference
  // sees the same rounded values, so what remains is the rounding of the hidden activations.
  std::vector<float> xr = x;
  if (wdtype == DType::bf16) {
    for (auto* v : {&gate, &up, &down}) {
      for (float& f : *v) f = round_to_bf16(f);
    }
    for (float& f : xr) f = round_to_bf16(f);
  }
  std::vector<float> wts = randv(r.n_slots(), 1.0);

  // Reference: per-row outputs, weighted sum in double.
  ExpertActivations<float> acts;
  experts_forward(cfg, w, r, xr.data(), acts);
  std::vector<double> want(static_cast<size_t>(c.T * c.H), 0.0);
  for (int64_t row = 0; row < r.n_kept(); ++row) {
    const int32_t s = r.rows[row];
    for (int64_t h = 0; h < c.H; ++h) want[r.slot_token[s] * c.H + h] += wts[s] * acts.out[row * c.H + h];
  }
  double norm = 0;
  for (double v : want) norm = std::max(norm, std::fabs(v));
  const double tol = (wdtype == DType::bf16 ? 1.5e-2 : 2e-6 * std::sqrt(static_cast<double>(c.H + c.I))) * std::max(1.0, norm);

  const PackedExperts packed = pack_experts(cfg, w, wdtype);
  for (int threads : {1, 2, 3}) {
    std::vector<float> y(static_cast<size_t>(c.T * c.H), -7.0f);  // garbage: must be overwritten
    fast_experts_forward(packed, r, wts.data(), x.data(), y.data(), {threads});
    double err = 0;
    for (size_t i = 0; i < y.size(); ++i) err = std::max(err, std::fabs(y[i] - want[i]));
    EXPECT_LE(err, tol) << "threads " << threads;
  }
}

}  // namespace

TEST(FastExperts, MatchesReferenceOnOddShapes) {
  const Case cases[] = {
      {13, 37, 29, 5, 2, ExpertAct::swiglu, false, 0},
      {1, 64, 48, 8, 2, ExpertAct::swiglu, false, 0},           // T = 1 (decode)
      {9, 33, 17, 4, 4, ExpertAct::swiglu, false, 0},           // k = E
      {40, 50, 70, 16, 3, ExpertAct::swiglu, false, 2.5},       // skewed: empty and overloaded experts
      {25, 31, 45, 6, 2, ExpertAct::gelu, false, 0},
      {25, 31, 45, 6, 2, ExpertAct::gelu_tanh, false, 1},
      {25, 31, 45, 6, 1, ExpertAct::relu, false, 0},
      {17, 40, 33, 4, 2, ExpertAct::gpt_oss_swiglu, true, 0},   // clamps and biases
      {30, 96, 64, 1, 1, ExpertAct::swiglu, false, 0},          // E = 1: a dense FFN
      {64, 128, 96, 8, 2, ExpertAct::swiglu, true, 0.5},
  };
  uint64_t seed = 1;
  for (const Case& c : cases) check(c, seed++);
  for (const Case& c : cases) check(c, seed++, DType::bf16);
}

TEST(FastExperts, EveryIsaTileMatchesScalar) {
  // Each tile kernel the CPU supports, on every micro-panel height, against the portable one.
  Rng rng(9);
  const int64_t K = 53;
  std::vector<float> A(static_cast<size_t>(K * cpu::kMaxMR)), B(static_cast<size_t>(K * cpu::kNR));
  for (float& v : A) v = static_cast<float>(rng.normal());
  alignas(64) float Bal[53 * 32];
  for (int64_t i = 0; i < K * cpu::kNR; ++i) Bal[i] = static_cast<float>(rng.normal());
  alignas(64) float want[cpu::kMaxMR * cpu::kNR], got[cpu::kMaxMR * cpu::kNR];
  for (int mr = 1; mr <= cpu::kMaxMR; ++mr) {
    cpu::tile_f32_scalar(K, A.data(), Bal, want, mr);
    for (cpu::Isa isa : {cpu::Isa::avx2, cpu::Isa::avx512}) {
      if (static_cast<int>(cpu::detected_isa()) < static_cast<int>(isa)) continue;
      cpu::tile_f32(isa)(K, A.data(), Bal, got, mr);
      for (int i = 0; i < mr * cpu::kNR; ++i) EXPECT_NEAR(got[i], want[i], 1e-4) << "mr " << mr;
    }
  }
}

TEST(FastExperts, Bf16TileMatchesScalar) {
  Rng rng(10);
  const int64_t Kp = 27;
  alignas(64) uint16_t A[27 * 2 * 12], B[27 * 64];
  for (auto& v : A) v = f32_to_bf16(static_cast<float>(rng.normal()));
  for (auto& v : B) v = f32_to_bf16(static_cast<float>(rng.normal()));
  alignas(64) float want[cpu::kMaxMR * cpu::kNR], got[cpu::kMaxMR * cpu::kNR];
  if (!cpu::has_avx512_bf16()) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  for (int mr = 1; mr <= cpu::kMaxMR; ++mr) {
    cpu::tile_bf16_scalar(Kp, A, B, want, mr);
    cpu::tile_bf16_avx512(Kp, A, B, got, mr);
    for (int i = 0; i < mr * cpu::kNR; ++i) EXPECT_NEAR(got[i], want[i], 1e-3) << "mr " << mr;
  }
}

TEST(FastLinear, MatchesReference) {
  Rng rng(11);
  for (auto [rows, K, N] : {std::tuple<int64_t, int64_t, int64_t>{1, 7, 3}, {13, 64, 40}, {25, 33, 97}}) {
    std::vector<float> W(static_cast<size_t>(N * K)), x(static_cast<size_t>(rows * K)), out(static_cast<size_t>(rows * N));
    for (float& v : W) v = static_cast<float>(rng.normal());
    for (float& v : x) v = static_cast<float>(rng.normal());
    fast_linear(pack_linear(W.data(), N, K), x.data(), rows, out.data(), {2});
    for (int64_t t = 0; t < rows; ++t) {
      for (int64_t n = 0; n < N; ++n) {
        double want = 0;
        for (int64_t k = 0; k < K; ++k) want += static_cast<double>(x[t * K + k]) * W[n * K + k];
        EXPECT_NEAR(out[t * N + n], want, 1e-4 * std::sqrt(static_cast<double>(K)));
      }
    }
  }
}

TEST(FastExpertsTrain, ForwardAndBackwardMatchReference) {
  const Case cases[] = {
      {13, 37, 29, 5, 2, ExpertAct::swiglu, false, 0},
      {1, 40, 24, 4, 2, ExpertAct::swiglu, true, 0},
      {30, 50, 70, 8, 3, ExpertAct::gelu, false, 2.0},  // skewed, some experts empty
      {17, 33, 20, 4, 2, ExpertAct::gpt_oss_swiglu, true, 0},
      {21, 45, 400, 3, 1, ExpertAct::relu, false, 0},   // K blocking of the general GEMM (I > 384)
      {40, 36, 52, 16, 4, ExpertAct::swiglu, true, 1.5}, // heavy experts run wide, the rest one per thread
  };
  uint64_t seed = 100;
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "T=" << c.T << " H=" << c.H << " I=" << c.I << " act=" << expert_act_name(c.act));
    Rng rng(seed++);
    auto randv = [&](int64_t n, double s) {
      std::vector<float> v(static_cast<size_t>(n));
      for (float& f : v) f = static_cast<float>(s * rng.normal());
      return v;
    };
    std::vector<float> gate = randv(c.E * c.I * c.H, 0.2), up = randv(c.E * c.I * c.H, 0.2), down = randv(c.E * c.H * c.I, 0.2),
                       x = randv(c.T * c.H, 1.0), dy = randv(c.T * c.H, 1.0), gb = randv(c.E * c.I, 0.1),
                       ub = randv(c.E * c.I, 0.1), db = randv(c.E * c.H, 0.1);
    ExpertWeights<float> w{c.E, c.H, c.I, gate.data(), up.data(), down.data(), nullptr, nullptr, nullptr};
    if (c.bias) w.gate_bias = gb.data(), w.up_bias = ub.data(), w.down_bias = db.data();
    const ExpertConfig cfg{c.act, c.I, c.bias, 1.702, 1.5};
    const Routing r = random_routing(c, rng);
    const std::vector<float> wts = randv(r.n_slots(), 1.0);

    // Reference forward/backward (double accumulation).
    ExpertActivations<float> acts;
    experts_forward(cfg, w, r, x.data(), acts);
    std::vector<float> dout(static_cast<size_t>(r.n_kept() * c.H)), want_dw(static_cast<size_t>(r.n_slots()), 0.0f);
    std::vector<double> want_y(static_cast<size_t>(c.T * c.H), 0.0);
    for (int64_t row = 0; row < r.n_kept(); ++row) {
      const int32_t s = r.rows[row];
      const int64_t t = r.slot_token[s];
      double d = 0;
      for (int64_t h = 0; h < c.H; ++h) {
        want_y[t * c.H + h] += wts[s] * acts.out[row * c.H + h];
        dout[row * c.H + h] = wts[s] * dy[t * c.H + h];
        d += static_cast<double>(acts.out[row * c.H + h]) * dy[t * c.H + h];
      }
      want_dw[s] = static_cast<float>(d);
    }
    std::vector<float> want_dx(x.size(), 0.0f), rg(gate.size(), 0.0f), ru(up.size(), 0.0f), rd(down.size(), 0.0f),
        rgb(gb.size(), 0.0f), rub(ub.size(), 0.0f), rdb(db.size(), 0.0f);
    experts_backward(cfg, w, r, x.data(), acts, dout.data(), want_dx.data(),
                     ExpertGrads<float>{rg.data(), ru.data(), rd.data(), rgb.data(), rub.data(), rdb.data()});

    for (int threads : {1, 2, 3}) {
    SCOPED_TRACE(::testing::Message() << "threads " << threads);
    FastTrainState st;
    std::vector<float> y(x.size()), dx(x.size(), 0.0f), fg(gate.size(), 0.0f), fu(up.size(), 0.0f), fd(down.size(), 0.0f),
        fgb(gb.size(), 0.0f), fub(ub.size(), 0.0f), fdb(db.size(), 0.0f), dw(static_cast<size_t>(r.n_slots()), -1.0f);
    fast_experts_train_forward(cfg, w, r, wts.data(), x.data(), y.data(), st, {threads});
    fast_experts_backward(cfg, w, r, wts.data(), x.data(), st, dy.data(), dx.data(),
                          ExpertGrads<float>{fg.data(), fu.data(), fd.data(), fgb.data(), fub.data(), fdb.data()}, dw.data(),
                          {threads});
    auto close = [&](const std::vector<float>& got, const auto& want, const char* what) {
      double scale = 1e-3, err = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
        err = std::max(err, std::fabs(got[i] - static_cast<double>(want[i])));
      }
      EXPECT_LE(err, 1e-5 * std::sqrt(static_cast<double>(c.H + c.I + c.T)) * scale) << what;
    };
    close(y, want_y, "y");
    close(dx, want_dx, "dx");
    close(dw, want_dw, "dweights");
    close(fd, rd, "dW_down");
    close(fu, ru, "dW_up");
    if (is_gated(c.act)) close(fg, rg, "dW_gate");
    if (c.bias) {
      close(fdb, rdb, "d down_bias");
      close(fub, rub, "d up_bias");
      if (is_gated(c.act)) close(fgb, rgb, "d gate_bias");
    }
    }
  }
}
