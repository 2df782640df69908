// Finite differences, in float64, of the GPT's total loss (mean CE + MoE aux losses) w.r.t.
// every weight tensor (sampled entries; the embedding rows of the batch's tokens), for dense and
// MoE models of every block variant; and the float path (fast kernels) against the double path.
// Coordinates whose ±h perturbation changes a discrete routing decision are skipped.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "moe/gpt.h"

using namespace moe;

namespace {

struct GptCase {
  std::string name;
  GptConfig config;
  int64_t batch = 2, seq = 5;
  bool training = false;
  bool mostly_ignored = false;  // targets: only a few positions count
};

void PrintTo(const GptCase& c, std::ostream* os) { *os << c.name; }

GptConfig tiny() {
  GptConfig c;
  c.vocab_size = 11;
  c.context = 8;
  c.d_model = 8;
  c.n_layers = 2;
  c.n_heads = 2;
  c.n_kv_heads = 2;
  c.dense.act = ExpertAct::swiglu;
  c.dense.hidden = 6;
  return c;
}

MoeLayerConfig moe_layer(int64_t d, int64_t E, int64_t k, int64_t I) {
  MoeLayerConfig m;
  m.d_model = d;
  m.router.n_experts = E;
  m.router.top_k = k;
  m.expert.act = ExpertAct::swiglu;
  m.expert.hidden = I;
  return m;
}

std::vector<GptCase> cases() {
  std::vector<GptCase> v;
  v.push_back({"dense_swiglu_rope_rmsnorm_tied", tiny()});
  {
    GptConfig c = tiny();
    c.dense.act = ExpertAct::gelu;
    c.dense.bias = true;
    c.pos = PosEncoding::learned;
    c.norm = NormKind::layernorm;
    c.tied_head = false;
    c.attn_bias = true;
    v.push_back({"dense_gelu_learned_layernorm_untied_bias", c});
  }
  {
    GptConfig c = tiny();
    c.moe = moe_layer(8, 4, 2, 5);
    c.moe.router.normalize = true;
    c.moe.losses.coef = {{"load_balancing", 0.1}, {"z_loss", 0.01}};
    v.push_back({"moe_softmax_top2_aux_zloss", c});
  }
  {
    GptConfig c = tiny();
    c.moe = moe_layer(8, 4, 1, 5);
    c.moe.expert.act = ExpertAct::relu;
    c.moe.router.capacity_mode = CapacityMode::absolute;
    c.moe.router.expert_capacity = 2;
    c.moe.router.dropped = DroppedPolicy::passthrough;
    c.moe.losses.coef = {{"switch", 0.1}, {"z_loss", 0.01}};
    v.push_back({"moe_switch_top1_capacity", c});
  }
  {
    GptConfig c = tiny();
    c.moe = moe_layer(8, 6, 2, 4);
    c.moe.router.score = ScoreFn::sigmoid;
    c.moe.router.selection = Selection::group_limited;
    c.moe.router.n_group = 3;
    c.moe.router.topk_group = 2;
    c.moe.router.selection_bias = true;
    c.moe.router.normalize = true;
    c.moe.router.norm_eps = 1e-20;
    c.moe.router.scale = 2.5;
    c.moe.shared_hidden = 5;
    c.moe.losses.coef = {{"deepseek_v3_seq", 0.05}};
    v.push_back({"moe_deepseek_v3_sigmoid_shared", c});
  }
  {
    GptConfig c = tiny();
    c.d_model = 16;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    v.push_back({"gqa_4q_2kv", c});
  }
  {
    GptConfig c = tiny();
    c.causal = false;
    c.moe = moe_layer(8, 4, 2, 4);
    c.moe.shared_hidden = 3;
    c.moe.shared_gate = true;
    v.push_back({"non_causal_moe_shared_gate", c});
  }
  {
    GptConfig c = tiny();
    c.n_layers = 3;
    c.first_dense_layers = 1;
    c.moe_every = 2;
    c.moe = moe_layer(8, 4, 2, 4);
    c.moe.losses.coef = {{"load_balancing", 0.1}};
    v.push_back({"first_dense_then_every_2nd", c});
  }
  {
    GptConfig c = tiny();
    c.moe = moe_layer(8, 4, 2, 4);
    c.moe.router.noise = NoiseKind::shazeer;
    c.moe.jitter = 0.1;
    c.moe.losses.coef = {{"importance", 0.1}};
    v.push_back({"moe_training_noise_jitter", c, 2, 5, true});
  }
  {
    GptConfig c = tiny();
    c.moe = moe_layer(8, 4, 2, 4);
    v.push_back({"masked_targets", c, 2, 5, false, true});
  }
  {  // Qwen3: head_dim apart from d_model / n_heads, per-head q/k RMSNorm
    GptConfig c = tiny();
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.head_dim_ = 6;
    c.qk_norm = QkNorm::head;
    c.moe = moe_layer(8, 4, 2, 4);
    c.moe.router.normalize = true;
    v.push_back({"qwen3_head_dim_qk_norm_head", c});
  }
  {  // OLMoE: q/k RMSNorm over the whole projections
    GptConfig c = tiny();
    c.n_kv_heads = 1;
    c.qk_norm = QkNorm::full;
    c.moe = moe_layer(8, 4, 2, 4);
    v.push_back({"olmoe_qk_norm_full", c});
  }
  {  // Qwen2: q/k/v biases, a gated shared expert
    GptConfig c = tiny();
    c.qkv_bias = true;
    c.moe = moe_layer(8, 4, 2, 4);
    c.moe.shared_hidden = 3;
    c.moe.shared_gate = true;
    v.push_back({"qwen2_qkv_bias_shared_gate", c});
  }
  {  // Qwen3-MoE's layer layout: decoder_sparse_step 2 and mlp_only_layers [3] of 4
    GptConfig c = tiny();
    c.n_layers = 4;
    c.first_dense_layers = 1;
    c.moe_every = 2;
    c.dense_layers = {3};
    c.moe = moe_layer(8, 4, 2, 4);
    v.push_back({"sparse_step_and_dense_layers", c});
  }
  return v;
}

// Random weights larger than the init, so attention and routing are far from uniform.
void randomize(GptWeights& w, uint64_t seed) {
  Rng rng(seed);
  w.for_each_tensor([&](const std::string& n, Tensor& t) {
    const bool norm = n.find("norm") != std::string::npos && n.find(".weight") != std::string::npos;
    const bool bias = n.find("bias") != std::string::npos || n.find("attn.bo") != std::string::npos;
    double* p = t.as<double>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = norm ? 1 + 0.2 * rng.normal() : (bias ? 0.2 : 0.5) * rng.normal();
  });
}

struct Problem {
  GptCase c;
  GptWeights w;
  std::vector<int32_t> tokens, targets;
  GptStepInputs in;
};

Problem make_problem(const GptCase& gc, uint64_t seed) {
  Problem p{gc, make_gpt_weights(gc.config, DType::f64), {}, {}, {}};
  randomize(p.w, seed);
  Rng rng(seed + 100);
  const int64_t n = gc.batch * gc.seq;
  for (int64_t i = 0; i < n; ++i) {
    p.tokens.push_back(static_cast<int32_t>(rng.next() % gc.config.vocab_size));
    int32_t t = static_cast<int32_t>(rng.next() % gc.config.vocab_size);
    if (gc.mostly_ignored ? (i % 4 != 1) : (i % 3 == 2)) t = -1;
    p.targets.push_back(t);
  }
  p.in.batch = gc.batch;
  p.in.seq = gc.seq;
  p.in.tokens = p.tokens.data();
  p.in.targets = p.targets.data();
  p.in.training = gc.training;
  return p;
}

struct Eval {
  double loss;
  std::vector<int32_t> routing;  // every MoE layer's slot experts, then kept flags
};

template <class T>
Eval evaluate(const Problem& p, const GptWeights& w, GptActivations<T>& acts, uint64_t noise_seed) {
  Rng rng(noise_seed);  // the same noise and jitter for every evaluation
  GptStepInputs in = p.in;
  in.rng = &rng;
  const GptLosses l = gpt_forward<T>(p.c.config, w, in, acts, nullptr);
  Eval e{l.total, {}};
  for (int64_t b = 0; b < p.c.config.n_layers; ++b) {
    if (!p.c.config.is_moe_layer(b)) continue;
    const Routing& r = acts.blocks[b].moe.router.routing;
    e.routing.insert(e.routing.end(), r.slot_expert.begin(), r.slot_expert.end());
    e.routing.insert(e.routing.end(), r.slot_kept.begin(), r.slot_kept.end());
  }
  return e;
}

// Entries to check: all of a small tensor, else a seeded sample (wte: the batch's token rows).
std::vector<int64_t> sample(const std::string& name, const Tensor& t, const Problem& p, Rng& rng) {
  const int64_t n = t.numel();
  if (n <= 8) {
    std::vector<int64_t> all(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) all[i] = i;
    return all;
  }
  std::set<int64_t> s;
  const int64_t d = p.c.config.d_model;
  while (static_cast<int64_t>(s.size()) < 8) {
    if (name == "wte" && s.size() < 6) {
      s.insert(p.tokens[rng.next() % p.tokens.size()] * d + static_cast<int64_t>(rng.next() % d));
    } else {
      s.insert(static_cast<int64_t>(rng.next() % n));
    }
  }
  return {s.begin(), s.end()};
}

void check_fd(const GptCase& gc, uint64_t seed) {
  SCOPED_TRACE(gc.name + " seed " + std::to_string(seed));
  Problem p = make_problem(gc, seed);
  GptActivations<double> acts;
  const uint64_t noise_seed = seed + 7;
  const Eval base = evaluate(p, p.w, acts, noise_seed);
  Rng rng(noise_seed);
  GptStepInputs in = p.in;
  in.rng = &rng;
  gpt_forward<double>(gc.config, p.w, in, acts, nullptr);
  GptWeights g = make_gpt_weights(gc.config, DType::f64);
  gpt_backward<double>(gc.config, p.w, in, acts, g);

  const double h = 1e-6;
  int checked = 0, skipped = 0;
  Rng pick(seed + 1);
  GptActivations<double> scratch;
  p.w.for_each_tensor([&](const std::string& name, Tensor& t) {
    if (!gpt_is_trainable(name)) return;
    const Tensor* gt = g.find(name);
    ASSERT_TRUE(gt) << name;
    double gmax = 0;
    for (int64_t i = 0; i < gt->numel(); ++i) gmax = std::max(gmax, std::fabs(gt->as<double>()[i]));
    EXPECT_GT(gmax, 0) << name << ": all-zero gradient";
    double* v = t.as<double>();
    for (const int64_t i : sample(name, t, p, pick)) {
      const double orig = v[i];
      v[i] = orig + h;
      const Eval ep = evaluate(p, p.w, scratch, noise_seed);
      v[i] = orig - h;
      const Eval em = evaluate(p, p.w, scratch, noise_seed);
      v[i] = orig;
      if (ep.routing != base.routing || em.routing != base.routing) {
        ++skipped;
        continue;
      }
      ++checked;
      const double numeric = (ep.loss - em.loss) / (2 * h);
      const double analytic = gt->as<double>()[i];
      EXPECT_NEAR(analytic, numeric, 1e-7 + 1e-5 * std::fabs(numeric)) << name << "[" << i << "]";
    }
  });
  EXPECT_GT(checked, 60);
  EXPECT_LE(skipped, checked / 10) << "too many coordinates change the routing";
}

// Max |a - b| over max |b|, for float-vs-double comparisons.
double rel_err(const double* a, const double* b, int64_t n) {
  double err = 0, scale = 1e-12;
  for (int64_t i = 0; i < n; ++i) {
    err = std::max(err, std::fabs(a[i] - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return err / scale;
}

}  // namespace

class GptFd : public ::testing::TestWithParam<GptCase> {};

TEST_P(GptFd, GradientsMatchFiniteDifferences) {
  for (uint64_t seed : {1u, 2u}) check_fd(GetParam(), seed);
}

// The float path (GEMM kernels, fast experts) against the double reference on the same weights.
TEST_P(GptFd, FloatPathMatchesDouble) {
  const GptCase& gc = GetParam();
  Problem p = make_problem(gc, 5);
  GptWeights wf = make_gpt_weights(gc.config, DType::f32);
  wf.for_each_tensor([&](const std::string& n, Tensor& t) { t = p.w.find(n)->convert(DType::f32); });
  const int64_t n = gc.batch * gc.seq * gc.config.vocab_size;
  std::vector<double> logits_d(static_cast<size_t>(n));
  std::vector<float> logits_f(static_cast<size_t>(n));
  Rng rd(3), rf(3);
  GptStepInputs ind = p.in, inf = p.in;
  ind.rng = &rd;
  inf.rng = &rf;
  GptActivations<double> ad;
  GptActivations<float> af;
  const GptLosses ld = gpt_forward<double>(gc.config, p.w, ind, ad, logits_d.data());
  const GptLosses lf = gpt_forward<float>(gc.config, wf, inf, af, logits_f.data());
  std::vector<double> lf64(logits_f.begin(), logits_f.end());
  EXPECT_LT(rel_err(lf64.data(), logits_d.data(), n), 1e-4);
  EXPECT_NEAR(lf.ce, ld.ce, 1e-4 * std::max(1.0, ld.ce));
  EXPECT_NEAR(lf.aux, ld.aux, 1e-4 * std::max(1.0, std::fabs(ld.aux)));
  EXPECT_EQ(lf.expert_load, ld.expert_load);
  GptWeights gd = make_gpt_weights(gc.config, DType::f64);
  GptWeights gf = make_gpt_weights(gc.config, DType::f32);
  gpt_backward<double>(gc.config, p.w, ind, ad, gd);
  gpt_backward<float>(gc.config, wf, inf, af, gf);
  gd.for_each_tensor([&](const std::string& name, Tensor& t) {
    if (!gpt_is_trainable(name)) return;
    const Tensor f64 = gf.find(name)->convert(DType::f64);
    EXPECT_LT(rel_err(f64.as<double>(), t.as<double>(), t.numel()), 2e-4) << name;
  });
}

INSTANTIATE_TEST_SUITE_P(AllBlocks, GptFd, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<GptCase>& i) { return i.param.name; });

TEST(GptFdHarness, CatchesAWrongGradient) {
  // The comparison used above must fail for a gradient that is off by 1%.
  const GptCase gc = cases().front();
  Problem p = make_problem(gc, 9);
  GptActivations<double> acts;
  gpt_forward<double>(gc.config, p.w, p.in, acts, nullptr);
  GptWeights g = make_gpt_weights(gc.config, DType::f64);
  gpt_backward<double>(gc.config, p.w, p.in, acts, g);
  double* v = p.w.blocks[0].wq.as<double>();
  const double orig = v[3], h = 1e-6;
  v[3] = orig + h;
  const double lp = evaluate(p, p.w, acts, 0).loss;
  v[3] = orig - h;
  const double lm = evaluate(p, p.w, acts, 0).loss;
  v[3] = orig;
  const double numeric = (lp - lm) / (2 * h), analytic = g.blocks[0].wq.as<double>()[3];
  EXPECT_NEAR(analytic, numeric, 1e-7 + 1e-5 * std::fabs(numeric));
  EXPECT_GT(std::fabs(analytic * 1.01 - numeric), 1e-7 + 1e-5 * std::fabs(numeric));
}
