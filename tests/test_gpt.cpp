// The GPT model's API edges: KV-cache inference equals the full forward at every position,
// config validation messages, config JSON round trip, weight names, parameter counts, inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "moe/error.h"
#include "test_support.h"
#include "moe/gpt.h"

using namespace moe;

namespace {

using moe::test::error_of;

GptConfig small(bool moe_ffn) {
  GptConfig c;
  c.vocab_size = 37;
  c.context = 24;
  c.d_model = 32;
  c.n_layers = 3;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.dense.hidden = 48;
  if (moe_ffn) {
    c.moe.d_model = 32;
    c.moe.router.n_experts = 4;
    c.moe.router.top_k = 2;
    c.moe.router.normalize = true;
    c.moe.expert.hidden = 24;
    c.moe.shared_hidden = 16;
    c.first_dense_layers = 1;
  }
  return c;
}

GptWeights random_weights(const GptConfig& c, uint64_t seed) {
  GptWeights w = make_gpt_weights(c, DType::f32);
  init_gpt_weights(c, w, seed);
  // Larger than the init so attention is far from uniform.
  Rng rng(seed + 1);
  w.for_each_tensor([&](const std::string& n, Tensor& t) {
    if (n.find("norm") != std::string::npos) return;
    for (int64_t i = 0; i < t.numel(); ++i) t.as<float>()[i] = static_cast<float>(0.3 * rng.normal());
  });
  return w;
}

void expect_close(const float* a, const float* b, int64_t n, double tol, const std::string& what) {
  double err = 0, scale = 1e-6;
  for (int64_t i = 0; i < n; ++i) {
    err = std::max(err, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  EXPECT_LT(err / scale, tol) << what;
}

}  // namespace

class GptKv : public ::testing::TestWithParam<int> {};

// Token-by-token decode, and prefill + decode, give the full forward's logits at every position.
TEST_P(GptKv, CachedInferenceEqualsFullForward) {
  const int variant = GetParam();
  GptConfig c = small(variant != 0);
  if (variant == 2) {
    c.pos = PosEncoding::learned;
    c.norm = NormKind::layernorm;
    c.tied_head = false;
    c.attn_bias = true;
    c.dense.act = ExpertAct::gelu;
    c.moe.router.score = ScoreFn::sigmoid;
  }
  const GptWeights w = random_weights(c, 11);
  const int64_t S = c.context, V = c.vocab_size;
  std::vector<int32_t> tokens(static_cast<size_t>(S));
  Rng rng(5);
  for (auto& t : tokens) t = static_cast<int32_t>(rng.next() % V);
  GptStepInputs in;
  in.batch = 1;
  in.seq = S;
  in.tokens = tokens.data();
  GptActivations<float> acts;
  std::vector<float> full(static_cast<size_t>(S * V));
  gpt_forward<float>(c, w, in, acts, full.data());

  const GptPrepared model = prepare_gpt(c, w);
  KvCache kv = make_kv_cache(model);
  GptInferStats stats;
  std::vector<float> logits(static_cast<size_t>(V));
  for (int64_t i = 0; i < S; ++i) {
    gpt_infer(model, tokens.data() + i, 1, kv, logits.data(), &stats);
    expect_close(logits.data(), full.data() + i * V, V, 2e-5, "decode position " + std::to_string(i));
  }
  EXPECT_EQ(kv.len, S);
  EXPECT_EQ(stats.tokens, S);
  EXPECT_EQ(stats.ffn_calls, S * c.n_layers);
  EXPECT_EQ(stats.moe_calls, variant == 0 ? 0 : S * (c.n_layers - 1));
  EXPECT_GT(stats.ffn_ms, 0);

  // Prefill 10, then decode the rest; then the cache is full.
  kv.reset();
  gpt_infer(model, tokens.data(), 10, kv, logits.data(), nullptr);
  expect_close(logits.data(), full.data() + 9 * V, V, 2e-5, "prefill");
  for (int64_t i = 10; i < S; ++i) {
    gpt_infer(model, tokens.data() + i, 1, kv, logits.data(), nullptr);
    expect_close(logits.data(), full.data() + i * V, V, 2e-5, "after prefill, position " + std::to_string(i));
  }
  EXPECT_NE(error_of([&] { gpt_infer(model, tokens.data(), 1, kv, logits.data(), nullptr); }).find("> context=24"),
            std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Models, GptKv, ::testing::Values(0, 1, 2));

TEST(GptKv, RejectsBadTokensAndEncoders) {
  GptConfig c = small(false);
  const GptWeights w = random_weights(c, 1);
  const GptPrepared model = prepare_gpt(c, w);
  KvCache kv = make_kv_cache(model);
  const int32_t bad[] = {3, 37};
  EXPECT_NE(error_of([&] { gpt_infer(model, bad, 2, kv, nullptr, nullptr); }).find("token id 37"), std::string::npos);
  EXPECT_EQ(kv.len, 0);
  c.causal = false;
  EXPECT_NE(error_of([&] { prepare_gpt(c, w); }).find("causal"), std::string::npos);
}

TEST(GptConfig, ValidationNamesTheField) {
  GptConfig c;
  c.dense.hidden = 64;
  c.n_heads = 6;
  EXPECT_EQ(error_of([&] { validate_gpt(c); }), "[gpt] n_heads=6 does not divide d_model=128 (or give head_dim)");
  c.n_heads = 4;
  c.n_kv_heads = 3;
  EXPECT_EQ(error_of([&] { validate_gpt(c); }), "[gpt] n_kv_heads=3 does not divide n_heads=4");
  c.n_kv_heads = 4;
  c.dense_layers = {5};
  EXPECT_EQ(error_of([&] { validate_gpt(c); }), "[gpt] dense_layers names layer 5, outside [0, 2)");
  c.dense_layers = {1, 0};
  EXPECT_EQ(error_of([&] { validate_gpt(c); }), "[gpt] dense_layers must be sorted and without repeats");
  c.dense_layers = {};
  c.n_kv_heads = 4;
  c.dense.hidden = 0;
  EXPECT_NE(error_of([&] { validate_gpt(c); }).find("dense FFN hidden=0"), std::string::npos);
  c.dense.hidden = 64;
  c.moe.d_model = 128;
  c.moe.router.n_experts = 8;
  c.moe.router.top_k = 9;
  c.moe.expert.hidden = 32;
  EXPECT_NE(error_of([&] { validate_gpt(c); }).find("top_k=9"), std::string::npos);
  c.moe.router.top_k = 2;
  c.moe.d_model = 64;
  EXPECT_NE(error_of([&] { validate_gpt(c); }).find("differs from d_model=128"), std::string::npos);
  c.moe.d_model = 128;
  c.moe_every = 0;
  EXPECT_NE(error_of([&] { validate_gpt(c); }).find("moe_every=0"), std::string::npos);
  c.moe_every = 1;
  c.d_model = 12;
  c.n_heads = 4;
  c.moe.d_model = 12;
  EXPECT_NE(error_of([&] { validate_gpt(c); }).find("RoPE needs an even head width"), std::string::npos);
  c.pos = PosEncoding::learned;
  EXPECT_EQ(error_of([&] { validate_gpt(c); }), "(no error)");
}

// Routers whose choice for a token depends on later tokens are refused in decoders (training
// leaked the future; generation with and without the KV cache differed); MoE placement that
// leaves no MoE layer is refused; impossible sizes fail before anything is allocated.
TEST(GptConfig, RefusesWhatADecoderCannotDo) {
  GptConfig c = small(true);
  c.moe.soft.slots_per_expert = 2;
  EXPECT_NE(error_of([&] { validate_gpt(c); }).find("Soft MoE mixes every token"), std::string::npos);
  c.causal = false;
  EXPECT_EQ(error_of([&] { validate_gpt(c); }), "(no error)");
  c = small(true);
  c.moe.router.selection = Selection::expert_choice;
  c.moe.router.capacity_factor = 1.0;
  EXPECT_NE(error_of([&] { validate_gpt(c); }).find("expert choice lets each expert pick"), std::string::npos);
  c.causal = false;
  EXPECT_EQ(error_of([&] { validate_gpt(c); }), "(no error)");
  c = small(true);
  c.first_dense_layers = c.n_layers;
  EXPECT_NE(error_of([&] { validate_gpt(c); }).find("leaves no MoE layer"), std::string::npos);
  c = small(true);
  c.n_layers = int64_t(1) << 30;
  EXPECT_NE(error_of([&] { make_gpt_weights(c, DType::f32); }).find("of memory;"), std::string::npos);
  c.n_layers = int64_t(1) << 50;
  c.d_model = int64_t(1) << 20;
  c.moe.d_model = c.d_model;
  EXPECT_NE(error_of([&] { gpt_param_count(c, false); }).find("overflows 64 bits"), std::string::npos);
}

TEST(GptConfig, LayerPlacement) {
  GptConfig c = small(true);
  c.n_layers = 6;
  c.first_dense_layers = 1;
  c.moe_every = 2;
  std::vector<bool> want = {false, true, false, true, false, true};
  for (int64_t l = 0; l < 6; ++l) EXPECT_EQ(c.is_moe_layer(l), want[l]) << l;
  c.moe.router.n_experts = 0;
  for (int64_t l = 0; l < 6; ++l) EXPECT_FALSE(c.is_moe_layer(l));
}

TEST(GptConfig, JsonRoundTripsEveryField) {
  GptConfig c = small(true);
  c.vocab_size = 300;
  c.pos = PosEncoding::learned;
  c.rope_theta = 5e5;
  c.norm = NormKind::layernorm;
  c.norm_eps = 1e-6;
  c.tied_head = false;
  c.attn_bias = true;
  c.causal = false;
  c.dense = {ExpertAct::gelu_tanh, 40, true, 1.5, 6.0};
  c.moe.router.score = ScoreFn::sigmoid;
  c.moe.router.selection = Selection::group_limited;
  c.moe.router.n_experts = 8;
  c.moe.router.n_group = 4;
  c.moe.router.topk_group = 2;
  c.moe.router.selection_bias = true;
  c.moe.router.noise = NoiseKind::vmoe;
  c.moe.router.noise_std = 0.5;
  c.moe.router.capacity_mode = CapacityMode::factor;
  c.moe.router.capacity_factor = 1.25;
  c.moe.router.capacity_multiple_of = 4;
  c.moe.router.priority = Priority::batch;
  c.moe.router.scale = 2.5;
  c.moe.expert.act = ExpertAct::gpt_oss_swiglu;
  c.moe.expert.bias = true;
  c.moe.expert.alpha = 1.6;
  c.moe.expert.limit = 5;
  c.moe.shared_act = ExpertAct::gelu;
  c.moe.shared_gate = true;
  c.moe.jitter = 0.01;
  c.moe.losses.coef = {{"deepseek_v3_seq", 1e-4}, {"z_loss", 1e-3}};
  c.moe.losses.deepseek_v3_per_sequence = false;
  c.moe.losses.deepseek_v2_seq_aux = false;
  c.first_dense_layers = 2;
  c.moe_every = 3;
  c.n_layers = 7;
  const nlohmann::json j = gpt_config_to_json(c);
  const GptConfig back = gpt_config_from_json(j);
  EXPECT_EQ(gpt_config_to_json(back), j) << j.dump(2);
  EXPECT_EQ(back.moe.router.noise_std, 0.5);
  EXPECT_EQ(back.moe.expert.limit, 5);
  EXPECT_FALSE(back.moe.losses.deepseek_v2_seq_aux);
  EXPECT_EQ(back.dense.act, ExpertAct::gelu_tanh);

  // A dense model stores "moe": null; a missing key takes the default.
  const nlohmann::json dense = gpt_config_to_json(small(false));
  EXPECT_TRUE(dense.at("moe").is_null());
  EXPECT_FALSE(gpt_config_from_json(dense).has_moe());
}

TEST(GptConfig, JsonErrorsNameTheKey) {
  nlohmann::json j = gpt_config_to_json(small(true));
  auto err = [](nlohmann::json k) { return error_of([&] { gpt_config_from_json(k); }); };
  nlohmann::json a = j;
  a["n_layer"] = 2;
  EXPECT_NE(err(a).find("unknown key 'n_layer'"), std::string::npos) << err(a);
  a = j;
  a["d_model"] = "32";
  EXPECT_NE(err(a).find("'d_model' must be an integer"), std::string::npos) << err(a);
  a = j;
  a["moe"]["num_expert"] = 3;
  EXPECT_NE(err(a).find("unknown key 'num_expert'"), std::string::npos) << err(a);
  a = j;
  a["moe"]["router"]["top_k"] = 9;
  EXPECT_NE(err(a).find("top_k=9"), std::string::npos) << err(a);
  a = j;
  a["pos"] = "alibi";
  EXPECT_NE(err(a).find("'pos' = 'alibi'"), std::string::npos) << err(a);
  a = j;
  a["dense"]["act"] = "tanh";
  EXPECT_NE(err(a).find("tanh"), std::string::npos) << err(a);
  a = j;
  a["n_heads"] = 5;
  EXPECT_NE(err(a).find("n_heads=5 does not divide d_model=32"), std::string::npos) << err(a);
}

TEST(GptWeights, NamesShapesAndCounts) {
  GptConfig c = small(true);
  c.moe.router.selection_bias = true;
  c.moe.router.score = ScoreFn::sigmoid;
  GptWeights w = make_gpt_weights(c, DType::f32);
  std::set<std::string> names;
  int64_t trainable = 0;
  w.for_each_tensor([&](const std::string& n, Tensor& t) {
    EXPECT_FALSE(t.empty()) << n;
    EXPECT_TRUE(names.insert(n).second) << "duplicate " << n;
    if (gpt_is_trainable(n)) trainable += t.numel();
  });
  for (const char* n : {"wte", "blocks.0.attn.wq", "blocks.0.ffn.gate", "blocks.1.moe.experts.gate",
                        "blocks.1.moe.router.weight", "blocks.2.moe.shared.down", "normf.weight"}) {
    EXPECT_TRUE(names.count(n)) << n;
  }
  EXPECT_FALSE(names.count("head"));       // tied
  EXPECT_FALSE(names.count("wpe"));        // RoPE
  EXPECT_FALSE(names.count("blocks.0.moe.router.weight"));
  EXPECT_FALSE(gpt_is_trainable("blocks.1.moe.router.selection_bias"));
  EXPECT_EQ(w.find("blocks.0.attn.wk")->shape(), (Shape{16, 32}));  // 2 kv heads of 8
  EXPECT_EQ(gpt_param_count(c, false), trainable);
  const int64_t per_expert = 3 * 24 * 32;
  EXPECT_EQ(gpt_param_count(c, false) - gpt_param_count(c, true), 2 * 2 * per_expert);  // 2 of 4 experts idle, 2 layers
  {  // the attention variants and an explicit dense layer count as their tensors hold
    GptConfig v = c;
    v.n_layers = 4;
    v.dense_layers = {2};
    v.qkv_bias = true;
    v.qk_norm = QkNorm::head;
    v.head_dim_ = 6;
    int64_t numel = 0;
    make_gpt_weights(v, DType::f32).for_each_tensor([&](const std::string& n, const Tensor& t) {
      if (gpt_is_trainable(n)) numel += t.numel();
    });
    EXPECT_EQ(gpt_param_count(v, false), numel);
    EXPECT_EQ(v.n_moe_layers(), 2);  // layers 1 and 3 (first_dense 1), layer 2 made dense
    EXPECT_FALSE(v.is_moe_layer(2));
  }
  check_gpt_weights(c, w, DType::f32);
  w.blocks[1].moe.up = Tensor(DType::f32, {4, 23, 32});
  EXPECT_NE(error_of([&] { check_gpt_weights(c, w, DType::f32); }).find("experts.up"), std::string::npos);
  EXPECT_NE(error_of([&] { check_gpt_weights(c, make_gpt_weights(c, DType::f32), DType::f64); }).find("dtype"),
            std::string::npos);
}

TEST(GptWeights, InitIsGpt2Style) {
  GptConfig c = small(true);
  GptWeights w = make_gpt_weights(c, DType::f32);
  init_gpt_weights(c, w, 3);
  auto stddev = [](const Tensor& t) {
    double s = 0;
    for (int64_t i = 0; i < t.numel(); ++i) s += static_cast<double>(t.as<float>()[i]) * t.as<float>()[i];
    return std::sqrt(s / static_cast<double>(t.numel()));
  };
  EXPECT_NEAR(stddev(w.wte), 0.02, 0.002);
  EXPECT_NEAR(stddev(w.blocks[0].wo), 0.02 / std::sqrt(6.0), 0.002);
  EXPECT_NEAR(stddev(w.blocks[1].moe.down), 0.02 / std::sqrt(6.0), 0.001);
  EXPECT_NEAR(stddev(w.blocks[1].moe.router_w), 0.02, 0.004);
  EXPECT_EQ(w.normf_w.as<float>()[5], 1.0f);
  GptWeights w2 = make_gpt_weights(c, DType::f32);
  init_gpt_weights(c, w2, 3);
  EXPECT_EQ(std::memcmp(w.wte.data(), w2.wte.data(), w.wte.nbytes()), 0);
}

TEST(GptStep, BadInputsAreClearErrors) {
  const GptConfig c = small(false);
  const GptWeights w = random_weights(c, 2);
  std::vector<int32_t> tok(30, 1);
  GptActivations<float> a;
  GptStepInputs in;
  in.batch = 1;
  in.seq = 25;
  in.tokens = tok.data();
  EXPECT_EQ(error_of([&] { gpt_forward<float>(c, w, in, a, nullptr); }), "[gpt] seq=25 > context=24");
  in.seq = 0;
  EXPECT_EQ(error_of([&] { gpt_forward<float>(c, w, in, a, nullptr); }), "[gpt] seq=0 must be >= 1");
  in.seq = 4;
  in.batch = 0;
  EXPECT_EQ(error_of([&] { gpt_forward<float>(c, w, in, a, nullptr); }), "[gpt] batch=0 must be >= 1");
  in.batch = 2;
  tok[5] = -3;
  EXPECT_NE(error_of([&] { gpt_forward<float>(c, w, in, a, nullptr); }).find("token id -3 at [1, 1]"), std::string::npos);
  tok[5] = 1;
  tok[6] = 40;
  in.targets = tok.data();
  EXPECT_NE(error_of([&] { gpt_forward<float>(c, w, in, a, nullptr); }).find("id 40 at [1, 2]"), std::string::npos);
}

TEST(GptStep, ActivationsAreReusedAcrossSteps) {
  const GptConfig c = small(true);
  const GptWeights w = random_weights(c, 4);
  std::vector<int32_t> tok(40), tgt(40);
  for (int i = 0; i < 40; ++i) tok[i] = i % 37, tgt[i] = (i * 7) % 37;
  GptStepInputs in;
  in.batch = 2;
  in.seq = 20;
  in.tokens = tok.data();
  in.targets = tgt.data();
  in.training = true;
  GptActivations<float> a;
  GptWeights g = make_gpt_weights(c, DType::f32);
  const GptLosses l1 = gpt_forward<float>(c, w, in, a, nullptr);
  gpt_backward<float>(c, w, in, a, g);
  const float* q = a.blocks[0].q.data();
  const float* probs = a.blocks[1].probs.data();
  const GptLosses l2 = gpt_forward<float>(c, w, in, a, nullptr);
  gpt_backward<float>(c, w, in, a, g);
  EXPECT_EQ(q, a.blocks[0].q.data());
  EXPECT_EQ(probs, a.blocks[1].probs.data());
  EXPECT_EQ(l1.total, l2.total);  // deterministic
  EXPECT_NEAR(l1.ce, std::log(37.0), 3.0);
  ASSERT_EQ(l1.expert_load.size(), 3u);
  EXPECT_TRUE(l1.expert_load[0].empty());
  int64_t kept = 0;
  for (int64_t n : l1.expert_load[1]) kept += n;
  EXPECT_EQ(kept, 40 * 2);
}
