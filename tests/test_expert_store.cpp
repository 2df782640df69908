// The expert store's formats against the reference grouped FFN (kernels/ref) on odd shapes,
// empty and overloaded experts, T = 1, k = E, unaligned sizes, every activation, biases, every
// ISA the machine has (MOE_ISA variants in ctest); and the fused path equal to the explicit
// dispatch → compute → combine path. Tolerance from the problem size: float32 sums of K products.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/ref/grouped_ffn.h"
#include "moe/dispatch.h"
#include "moe/error.h"
#include "moe/expert_store.h"
#include "moe/experts.h"
#include "moe/rng.h"
#include "moe/tensor.h"

using namespace moe;

namespace {

// The reference: per-row outputs of the float64-accumulating grouped FFN over a plan.
struct Reference {
  std::vector<float> pre_gate, pre_up, hidden, out;
  void forward(const ExpertConfig& c, const ExpertWeights<float>& w, const DispatchPlan& p, const float* x) {
    const size_t A = static_cast<size_t>(p.n_rows()), I = static_cast<size_t>(w.hidden);
    pre_gate.assign(A * I, 0.0f), pre_up.assign(A * I, 0.0f), hidden.assign(A * I, 0.0f);
    out.assign(A * static_cast<size_t>(w.d_model), 0.0f);
    ref::grouped_ffn_forward(c, w, p.groups(true), x, pre_gate.data(), pre_up.data(), hidden.data(), out.data());
  }
};

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
  DispatchPlan plan;
  make_dispatch_plan(r, plan);
  Reference acts;
  acts.forward(cfg, w, plan, xr.data());
  std::vector<double> want(static_cast<size_t>(c.T * c.H), 0.0);
  for (int64_t row = 0; row < r.n_kept(); ++row) {
    const int32_t s = r.rows[row];
    for (int64_t h = 0; h < c.H; ++h) want[r.slot_token[s] * c.H + h] += wts[s] * acts.out[row * c.H + h];
  }
  double norm = 0;
  for (double v : want) norm = std::max(norm, std::fabs(v));
  const double tol = (wdtype == DType::bf16 ? 1.5e-2 : 2e-6 * std::sqrt(static_cast<double>(c.H + c.I))) * std::max(1.0, norm);

  const ExpertStore packed =
      pack_experts(cfg, w, wdtype == DType::bf16 ? ExpertFormat::packed_bf16 : ExpertFormat::packed_f32);
  for (int threads : {1, 2, 3}) {
    std::vector<float> y(static_cast<size_t>(c.T * c.H), -7.0f);  // garbage: must be overwritten
    ExpertRunState<float> st;
    run_experts(packed, plan, wts.data(), x.data(), y.data(), st, {threads});
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
    DispatchPlan plan;
    make_dispatch_plan(r, plan);
    Reference acts;
    acts.forward(cfg, w, plan, x.data());
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
    std::vector<float> dx_rows(dout.size());
    ref::grouped_ffn_backward(cfg, w, plan.groups(true), x.data(), acts.pre_gate.data(), acts.pre_up.data(),
                              acts.hidden.data(), dout.data(), dx_rows.data(),
                              ExpertGrads<float>{rg.data(), ru.data(), rd.data(), rgb.data(), rub.data(), rdb.data()},
                              std::vector<double>(static_cast<size_t>(3 * c.I)).data());
    dispatch_rows_backward(plan, dx_rows.data(), c.H, want_dx.data());

    for (int threads : {1, 2, 3}) {
    SCOPED_TRACE(::testing::Message() << "threads " << threads);
    ExpertRunState<float> st;
    const ExpertStore train = view_experts(cfg, w);
    std::vector<float> y(x.size()), dx(x.size(), 0.0f), fg(gate.size(), 0.0f), fu(up.size(), 0.0f), fd(down.size(), 0.0f),
        fgb(gb.size(), 0.0f), fub(ub.size(), 0.0f), fdb(db.size(), 0.0f), dw(static_cast<size_t>(r.n_slots()), -1.0f);
    run_experts(train, plan, wts.data(), x.data(), y.data(), st, {threads});
    run_experts_backward(train, plan, wts.data(), x.data(), st, dy.data(), dx.data(),
                         ExpertGrads<float>{fg.data(), fu.data(), fd.data(), fgb.data(), fub.data(), fdb.data()},
                         dw.data(), {threads});
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

// The fused single-process path (gather into the packing, weighted scatter into the epilogue) and
// the explicit path over a dispatched buffer (the seam expert parallelism sends through) give the
// same bits, forward and backward, for every format.
TEST(ExpertStore, FusedPathEqualsExplicitDispatchComputeCombine) {
  const Case c{29, 40, 36, 6, 2, ExpertAct::swiglu, true, 1.0};
  Rng rng(21);
  auto randv = [&](int64_t n, double s) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& f : v) f = static_cast<float>(s * rng.normal());
    return v;
  };
  std::vector<float> gate = randv(c.E * c.I * c.H, 0.2), up = randv(c.E * c.I * c.H, 0.2),
                     down = randv(c.E * c.H * c.I, 0.2), gb = randv(c.E * c.I, 0.1), ub = randv(c.E * c.I, 0.1),
                     db = randv(c.E * c.H, 0.1), x = randv(c.T * c.H, 1.0), dy = randv(c.T * c.H, 1.0);
  const ExpertWeights<float> w{c.E, c.H, c.I, gate.data(), up.data(), down.data(), gb.data(), ub.data(), db.data()};
  const ExpertConfig cfg{c.act, c.I, true, 1.702, 7.0};
  const Routing r = random_routing(c, rng);
  DispatchPlan plan;
  make_dispatch_plan(r, plan);
  const int64_t A = plan.n_rows();
  const std::vector<float> wts = randv(r.n_slots(), 1.0);
  for (ExpertFormat f : {ExpertFormat::f32, ExpertFormat::packed_f32, ExpertFormat::packed_bf16}) {
    SCOPED_TRACE(expert_format_name(f));
    const ExpertStore store = f == ExpertFormat::f32 ? view_experts(cfg, w) : pack_experts(cfg, w, f);
    ExpertRunState<float> fused, expl;
    std::vector<float> y_fused(x.size()), y_expl(x.size()), rows(static_cast<size_t>(A * c.H)), out(rows.size());
    run_experts(store, plan, wts.data(), x.data(), y_fused.data(), fused);
    dispatch_rows(plan, x.data(), c.H, rows.data());
    run_expert_rows(store, plan, rows.data(), out.data(), expl);
    combine_rows(plan, wts.data(), out.data(), c.H, y_expl.data());
    EXPECT_EQ(y_fused, y_expl);
    if (!expert_format_trains(f)) {
      std::vector<float> dx(x.size()), dw(wts.size());
      EXPECT_THROW(run_experts_backward(store, plan, wts.data(), x.data(), fused, dy.data(), dx.data(), {}, dw.data()),
                   InvalidInput);
      continue;
    }
    auto grads = [&](std::vector<std::vector<float>>& g) {
      g = {std::vector<float>(gate.size()), std::vector<float>(up.size()), std::vector<float>(down.size()),
           std::vector<float>(gb.size()), std::vector<float>(ub.size()), std::vector<float>(db.size())};
      return ExpertGrads<float>{g[0].data(), g[1].data(), g[2].data(), g[3].data(), g[4].data(), g[5].data()};
    };
    std::vector<std::vector<float>> g_fused, g_expl;
    std::vector<float> dx_fused(x.size(), 0.0f), dx_expl(x.size(), 0.0f), dw_fused(wts.size()), dw_expl(wts.size());
    run_experts_backward(store, plan, wts.data(), x.data(), fused, dy.data(), dx_fused.data(), grads(g_fused),
                         dw_fused.data());
    std::vector<float> drows(rows.size());
    combine_rows_backward(plan, wts.data(), out.data(), dy.data(), c.H, drows.data(), dw_expl.data());
    run_expert_rows_backward(store, plan, rows.data(), expl, drows.data(), drows.data(), grads(g_expl));
    dispatch_rows_backward(plan, drows.data(), c.H, dx_expl.data());
    EXPECT_EQ(dx_fused, dx_expl);
    EXPECT_EQ(dw_fused, dw_expl);
    EXPECT_EQ(g_fused, g_expl);
  }
}

// The plan: rows by expert, each token's rows ascending, per-destination ranges for any rank count.
TEST(DispatchPlan, RowsTokensAndDestinations) {
  const Case c{17, 8, 8, 7, 3, ExpertAct::swiglu, false, 1.5};
  Rng rng(5);
  Routing r = random_routing(c, rng);
  r.slot_kept[4] = 0;  // a dropped slot has no row
  build_expert_order(r);
  DispatchPlan p;
  make_dispatch_plan(r, p);
  ASSERT_EQ(p.n_rows(), r.n_kept());
  for (int64_t e = 0; e < c.E; ++e) {
    for (int64_t i = p.offsets[e]; i < p.offsets[e + 1]; ++i) {
      EXPECT_EQ(r.slot_expert[p.row_slot[i]], e);
      EXPECT_EQ(r.slot_token[p.row_slot[i]], p.row_token[i]);
    }
  }
  for (int64_t t = 0; t < c.T; ++t) {
    for (int64_t q = p.token_offsets[t]; q < p.token_offsets[t + 1]; ++q) {
      EXPECT_EQ(p.row_token[p.token_rows[q]], t);
      if (q > p.token_offsets[t]) {
        EXPECT_LT(p.token_rows[q - 1], p.token_rows[q]);
      }
    }
  }
  EXPECT_EQ(p.token_offsets[c.T], p.n_rows());
  for (int64_t ranks : {1, 2, 3, 7, 9}) {
    const std::vector<int64_t> d = p.destination_offsets(ranks);
    ASSERT_EQ(static_cast<int64_t>(d.size()), ranks + 1);
    EXPECT_EQ(d.front(), 0);
    EXPECT_EQ(d.back(), p.n_rows());
    const int64_t per = (c.E + ranks - 1) / ranks;
    for (int64_t rk = 0; rk < ranks; ++rk) {
      for (int64_t i = d[rk]; i < d[rk + 1]; ++i) EXPECT_EQ(r.slot_expert[p.row_slot[i]] / per, rk);
    }
  }
}

TEST(ExpertStore, RejectsMismatchedRuns) {
  std::vector<float> g(2 * 3 * 4), u(g.size()), d(g.size()), x(5 * 4), y(x.size()), wts(5);
  const ExpertWeights<float> w{2, 4, 3, g.data(), u.data(), d.data(), nullptr, nullptr, nullptr};
  const ExpertStore store = view_experts({ExpertAct::swiglu, 3, false, 1.702, 7.0}, w);
  DispatchPlan dense;
  make_dense_plan(5, dense);  // one expert, the store has two
  ExpertRunState<float> st;
  EXPECT_THROW(run_experts(store, dense, wts.data(), x.data(), y.data(), st), InvalidInput);
  std::vector<double> xd(x.size()), yd(x.size()), wd(5);
  ExpertRunState<double> sd;
  EXPECT_THROW(run_experts(store, dense, wd.data(), xd.data(), yd.data(), sd), InvalidInput);  // f32 store, f64 run
  EXPECT_THROW(parse_expert_format("q4"), InvalidInput);
}
