// The architecture registry: a minimal config of each model type (only the keys it requires)
// resolves to the Hugging Face config class's defaults, for the MoE layer and for the whole
// model; the layer-config format reads back what it writes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "moe/arch.h"
#include "moe/error.h"
#include "moe/layer_format.h"

using namespace moe;
using nlohmann::json;

namespace {

std::string error_of(const json& j) {
  try {
    arch::layer_config_from_json(j);
  } catch (const InvalidInput& e) {
    return e.what();
  }
  return "";
}

double coef(const MoeLayerConfig& c, const std::string& loss) {
  auto it = c.losses.coef.find(loss);
  return it == c.losses.coef.end() ? 0.0 : it->second;
}

// The load-balancing coefficient once HF adds the loss (output_router_logits true).
double pooled_coef(json j) {
  j["output_router_logits"] = true;
  return coef(arch::layer_config_from_json(j), "load_balancing");
}

// The MoE keys both Qwen-MoE types require.
json qwen(const char* type) {
  return {{"model_type", type}, {"hidden_size", 16}, {"num_experts", 4}, {"num_experts_per_tok", 2},
          {"moe_intermediate_size", 8}, {"intermediate_size", 32}};
}

// The keys a decoder-only model needs besides its MoE layer.
json with_model(json j, int heads = 4) {
  j.update({{"vocab_size", 64}, {"num_hidden_layers", 4}, {"num_attention_heads", heads}});
  return j;
}

}  // namespace

// MixtralConfig: router_jitter_noise 0.0, router_aux_loss_coef 0.001 (added to the loss only with
// output_router_logits, default false), num_key_value_heads 8, sliding_window None.
TEST(ArchDefaults, Mixtral) {
  const json j = {{"model_type", "mixtral"}, {"hidden_size", 16}, {"num_local_experts", 4},
                  {"num_experts_per_tok", 2}, {"intermediate_size", 8}};
  const MoeLayerConfig c = arch::layer_config_from_json(j);
  EXPECT_TRUE(c.router.normalize);
  EXPECT_EQ(c.jitter, 0.0);
  EXPECT_TRUE(c.losses.coef.empty());
  EXPECT_EQ(pooled_coef(j), 0.001);
  json o = with_model(j, 16);
  const arch::ModelArch m = arch::model_arch_from_hf_config(o);
  EXPECT_EQ(m.layers[0].self_attn.n_kv_heads, 8);
  EXPECT_EQ(m.layers[0].self_attn.head_dim, 1);
  EXPECT_EQ(m.layers[0].window, 0);
  o["num_key_value_heads"] = nullptr;  // null: the class's "as many as the heads"
  EXPECT_EQ(arch::model_arch_from_hf_config(o).layers[0].self_attn.n_kv_heads, 16);
}

// Qwen2MoeConfig: norm_topk_prob false, shared_expert_intermediate_size 5632 (sigmoid-gated),
// router_aux_loss_coef 0.001, num_key_value_heads 16, qkv_bias true.
TEST(ArchDefaults, Qwen2Moe) {
  const json j = qwen("qwen2_moe");
  const MoeLayerConfig c = arch::layer_config_from_json(j);
  EXPECT_FALSE(c.router.normalize);
  EXPECT_EQ(c.shared_hidden, 5632);
  EXPECT_TRUE(c.shared_gate);
  EXPECT_EQ(pooled_coef(j), 0.001);
  json o = with_model(j, 16);
  const arch::ModelArch m = arch::model_arch_from_hf_config(o);
  EXPECT_EQ(m.layers[0].self_attn.n_kv_heads, 16);
  EXPECT_TRUE(m.layers[0].self_attn.q_bias);
  EXPECT_FALSE(m.layers[0].self_attn.o_bias);
  EXPECT_EQ(m.layers[0].ffn.shared_hidden, 5632);
}

// Qwen3MoeConfig: norm_topk_prob false, no shared expert, router_aux_loss_coef 0.001,
// num_key_value_heads 4, q/k norms per head.
TEST(ArchDefaults, Qwen3Moe) {
  const json j = qwen("qwen3_moe");
  EXPECT_EQ(pooled_coef(j), 0.001);
  const MoeLayerConfig c = arch::layer_config_from_json(j);
  EXPECT_FALSE(c.router.normalize);
  EXPECT_EQ(c.shared_hidden, 0);
  const arch::ModelArch m = arch::model_arch_from_hf_config(with_model(j));
  EXPECT_EQ(m.layers[0].self_attn.n_kv_heads, 4);
  EXPECT_EQ(m.layers[0].self_attn.qk_norm, arch::AttentionArch::QkNorm::per_head);
}

// OlmoeConfig: router_aux_loss_coef 0.01, norm_topk_prob false, num_key_value_heads = heads.
TEST(ArchDefaults, Olmoe) {
  const json j = {{"model_type", "olmoe"}, {"hidden_size", 16}, {"num_experts", 4},
                  {"num_experts_per_tok", 2}, {"intermediate_size", 8}};
  EXPECT_FALSE(arch::layer_config_from_json(j).router.normalize);
  EXPECT_EQ(pooled_coef(j), 0.01);
  EXPECT_EQ(arch::model_arch_from_hf_config(with_model(j)).layers[0].self_attn.n_kv_heads, 4);
}

// DeepseekV2Config: n_shared_experts 2, routed_scaling_factor 1.0, norm_topk_prob false,
// topk_method greedy, q_lora_rank 1536, first_k_dense_replace 0; the remote
// configuration_deepseek.py's aux_loss_alpha 0.001 and seq_aux true.
TEST(ArchDefaults, DeepseekV2) {
  const json j = {{"model_type", "deepseek_v2"}, {"hidden_size", 16}, {"n_routed_experts", 4},
                  {"num_experts_per_tok", 2}, {"moe_intermediate_size", 8}};
  const MoeLayerConfig c = arch::layer_config_from_json(j);
  EXPECT_EQ(c.shared_hidden, 2 * 8);
  EXPECT_EQ(c.router.scale, 1.0);
  EXPECT_FALSE(c.router.normalize);
  EXPECT_EQ(c.router.selection, Selection::topk);
  EXPECT_EQ(coef(c, "deepseek_v2_seq"), 0.001);
  EXPECT_TRUE(c.losses.deepseek_v2_seq_aux);
  json o = j;
  o["n_shared_experts"] = nullptr;
  EXPECT_EQ(arch::layer_config_from_json(o).shared_hidden, 0);
  o["topk_method"] = "group_limited_greedy";  // n_group has no default
  EXPECT_NE(error_of(o).find("deepseek_v2: missing key 'n_group'"), std::string::npos) << error_of(o);

  o = with_model(j);
  o.update({{"kv_lora_rank", 8}, {"qk_nope_head_dim", 4}, {"qk_rope_head_dim", 2}, {"v_head_dim", 4}});
  const arch::ModelArch m = arch::model_arch_from_hf_config(o);
  EXPECT_EQ(m.layers[0].self_attn.q_lora_rank, 1536);
  EXPECT_TRUE(m.layers[0].ffn.moe);
  EXPECT_EQ(m.layers[0].ffn.n_shared_experts, 2);
  o["q_lora_rank"] = nullptr;  // null: a plain q_proj
  EXPECT_EQ(arch::model_arch_from_hf_config(o).layers[0].self_attn.q_lora_rank, 0);
}

// DeepseekV3Config: n_group 8, topk_group 4, routed_scaling_factor 2.5, norm_topk_prob true,
// n_shared_experts 1, first_k_dense_replace 3.
TEST(ArchDefaults, DeepseekV3) {
  const json j = {{"model_type", "deepseek_v3"}, {"hidden_size", 16}, {"n_routed_experts", 16},
                  {"num_experts_per_tok", 2}, {"moe_intermediate_size", 8}};
  const MoeLayerConfig c = arch::layer_config_from_json(j);
  EXPECT_EQ(c.router.n_group, 8);
  EXPECT_EQ(c.router.topk_group, 4);
  EXPECT_EQ(c.router.scale, 2.5);
  EXPECT_TRUE(c.router.normalize);
  EXPECT_EQ(c.shared_hidden, 8);
  EXPECT_TRUE(c.router.selection_bias);
  EXPECT_TRUE(c.losses.coef.empty());

  json o = with_model(j);
  o.update({{"kv_lora_rank", 8}, {"qk_nope_head_dim", 4}, {"qk_rope_head_dim", 2}, {"v_head_dim", 4},
            {"intermediate_size", 32}});
  const arch::ModelArch m = arch::model_arch_from_hf_config(o);
  for (int l = 0; l < 3; ++l) EXPECT_FALSE(m.layers[l].ffn.moe) << l;
  EXPECT_TRUE(m.layers[3].ffn.moe);
  EXPECT_EQ(m.layers[3].ffn.n_shared_experts, 1);
  EXPECT_EQ(m.layers[0].self_attn.q_lora_rank, 1536);
}

// GptOssConfig: swiglu_alpha 1.702, swiglu_limit 7.0, router_aux_loss_coef 0.001,
// num_key_value_heads 8, head_dim 64, attention_bias true, sliding_window 128 on even layers.
TEST(ArchDefaults, GptOss) {
  const json j = {{"model_type", "gpt_oss"}, {"hidden_size", 16}, {"num_local_experts", 4},
                  {"num_experts_per_tok", 2}, {"intermediate_size", 8}};
  const MoeLayerConfig c = arch::layer_config_from_json(j);
  EXPECT_EQ(c.expert.act, ExpertAct::gpt_oss_swiglu);
  EXPECT_EQ(c.expert.alpha, 1.702);
  EXPECT_EQ(c.expert.limit, 7.0);
  EXPECT_TRUE(c.router.logit_bias);
  EXPECT_EQ(pooled_coef(j), 0.001);
  json o = with_model(j, 8);
  const arch::ModelArch m = arch::model_arch_from_hf_config(o);
  EXPECT_EQ(m.layers[0].self_attn.n_kv_heads, 8);
  EXPECT_EQ(m.layers[0].self_attn.head_dim, 64);
  EXPECT_TRUE(m.layers[0].self_attn.o_bias);
  EXPECT_EQ(m.layers[0].window, 128);
  EXPECT_EQ(m.layers[1].window, 0);
}

// SwitchTransformersConfig: expert_capacity 64, router_jitter_noise 0.01, router_aux_loss_coef
// 0.001, router_z_loss_coef 0.001 (output_router_logits defaults to true in its forward),
// dense_act_fn relu, num_decoder_layers = num_layers, 3 sparse layers per stack, tied embeddings.
TEST(ArchDefaults, SwitchTransformers) {
  const json j = {{"model_type", "switch_transformers"}, {"d_model", 16}, {"num_experts", 4}, {"d_ff", 8}};
  const MoeLayerConfig c = arch::layer_config_from_json(j);
  EXPECT_EQ(c.router.top_k, 1);
  EXPECT_EQ(c.router.expert_capacity, 64);
  EXPECT_EQ(c.jitter, 0.01);
  EXPECT_EQ(coef(c, "switch"), 0.001);
  EXPECT_EQ(coef(c, "z_loss"), 0.001);
  EXPECT_EQ(c.expert.act, ExpertAct::relu);
  EXPECT_EQ(c.router.dropped, DroppedPolicy::passthrough);

  json o = j;
  o.update({{"vocab_size", 64}, {"num_layers", 6}, {"num_heads", 2}, {"d_kv", 4}});
  const arch::ModelArch m = arch::model_arch_from_hf_config(o);
  EXPECT_EQ(m.layers.size(), 12u);
  EXPECT_TRUE(m.tied_head);
  int sparse = 0;
  for (const arch::LayerArch& l : m.layers) sparse += l.ffn.moe;
  EXPECT_EQ(sparse, 6);
}

// LlamaConfig: num_key_value_heads = heads; a dense model has no MoE layer.
TEST(ArchDefaults, Llama) {
  const json j = with_model({{"model_type", "llama"}, {"hidden_size", 16}, {"intermediate_size", 32}});
  const arch::ModelArch m = arch::model_arch_from_hf_config(j);
  EXPECT_EQ(m.layers[0].self_attn.n_kv_heads, 4);
  EXPECT_FALSE(m.layers[0].ffn.moe);
  EXPECT_NE(error_of(j).find("[layer config] llama: model_type 'llama' is a dense model"), std::string::npos)
      << error_of(j);
}

TEST(LayerFormat, CustomRoundTrip) {
  const json j = {{"hidden_size", 8}, {"num_experts", 4}, {"intermediate_size", 4},
                  {"soft_moe", {{"slots_per_expert", 2}, {"noise_std", 0.25}}}, {"router", {{"top_k", 1}}}};
  const MoeLayerConfig c = arch::layer_config_from_json(j);
  EXPECT_EQ(c.soft.slots_per_expert, 2);
  EXPECT_EQ(c.soft.noise_std, 0.25);
  const json out = arch::layer_config_to_json(c);
  EXPECT_EQ(out.at("soft_moe").at("noise_std"), 0.25);
  EXPECT_EQ(arch::layer_config_to_json(arch::layer_config_from_json(out)), out) << out.dump(2);
}

TEST(LayerFormat, Errors) {
  const json base = {{"hidden_size", 8}, {"num_experts", 4}, {"intermediate_size", 4}};
  json j = base;
  j["soft_moe"] = {{"slots_per_expert", 2}, {"noise_std", -1}};
  EXPECT_NE(error_of(j).find("[layer config] soft_moe: noise_std=-1"), std::string::npos) << error_of(j);
  j["soft_moe"] = {{"slots_per_expert", 2}, {"noise", 1}};
  EXPECT_NE(error_of(j).find("[layer config] soft_moe: unknown key 'noise'"), std::string::npos) << error_of(j);
  j = base;
  j["num_expert"] = 3;
  EXPECT_NE(error_of(j).find("[layer config] custom: unknown key 'num_expert'"), std::string::npos) << error_of(j);
  j = base;
  j["router"] = {{"score", "tanh"}};
  EXPECT_NE(error_of(j).find("[layer config] router: key 'score' = 'tanh' is not one of: softmax, sigmoid"),
            std::string::npos)
      << error_of(j);
  j = base;
  j["hidden_size"] = 8.5;
  EXPECT_NE(error_of(j).find("key 'hidden_size' must be an integer, got 8.5"), std::string::npos) << error_of(j);
  j["model_type"] = "mamba";
  EXPECT_NE(error_of(j).find("model_type 'mamba' is not one of: mixtral, qwen2_moe"), std::string::npos)
      << error_of(j);
}

// What HF would fail on later, or what no model is, is refused when the config is read.
TEST(ArchDistill, ImpossibleValuesAreRefused) {
  auto model_error = [](const json& j) {
    try {
      arch::model_arch_from_hf_config(j);
    } catch (const InvalidInput& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const json q = with_model(qwen("qwen3_moe"));
  EXPECT_EQ(model_error(q), "");
  json j = q;
  j["decoder_sparse_step"] = 0;
  EXPECT_NE(model_error(j).find("'decoder_sparse_step' must be a positive integer"), std::string::npos) << model_error(j);
  j = q;
  j["mlp_only_layers"] = {999};
  EXPECT_NE(model_error(j).find("mlp_only_layers names layer 999, outside [0, num_hidden_layers=4)"), std::string::npos)
      << model_error(j);
  j["mlp_only_layers"] = {-1};
  EXPECT_NE(model_error(j).find("names layer -1"), std::string::npos) << model_error(j);
  j = q;
  j["num_hidden_layers"] = int64_t(1) << 40;  // used to end in std::bad_alloc after many seconds
  EXPECT_NE(model_error(j).find("is beyond any model"), std::string::npos) << model_error(j);
  json d = {{"model_type", "deepseek_v3"}, {"hidden_size", 16}, {"n_routed_experts", 6}, {"num_experts_per_tok", 2},
            {"moe_intermediate_size", 8}, {"intermediate_size", 32}, {"vocab_size", 64}, {"num_hidden_layers", 4},
            {"num_attention_heads", 4}, {"kv_lora_rank", 8}, {"qk_nope_head_dim", 4}, {"qk_rope_head_dim", 4},
            {"v_head_dim", 4}, {"n_group", 3}, {"topk_group", 2}};
  EXPECT_EQ(model_error(d), "");
  d["n_group"] = 4;  // does not divide 6 experts
  EXPECT_NE(model_error(d).find("n_group=4 does not divide n_experts=6"), std::string::npos) << model_error(d);
  d["n_group"] = 3;
  d["first_k_dense_replace"] = 4;
  EXPECT_NE(model_error(d).find("first_k_dense_replace=4 leaves no MoE layer"), std::string::npos) << model_error(d);
}

// A few numbers that describe more tensors than any checkpoint holds are refused before the list
// is built (found by fuzz_hf_config: 2^20 experts in 10,000 layers grew to gigabytes).
TEST(ArchDistill, TensorListsAreBounded) {
  json q = with_model(qwen("qwen3_moe"));
  EXPECT_FALSE(arch::checkpoint_tensors(q).empty());
  q["num_experts"] = 1 << 20;
  q["num_hidden_layers"] = 10000;
  try {
    arch::checkpoint_tensors(q);
    FAIL() << "expected an error";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("would hold more than 4000000 tensors"), std::string::npos) << e.what();
  }
  EXPECT_GT(arch::model_arch_from_hf_config(q).layers.size(), 0u);  // counting it is fine
}

// A key read by no reader but two edits from one that is read is reported (a typo would
// otherwise silently take the default).
TEST(ArchDistill, LikelyTyposAreWarnedAbout) {
  std::vector<std::string> seen;
  const WarningHandler old = set_warning_handler([&](const std::string& m) { seen.push_back(m); });
  json j = qwen("qwen3_moe");
  j["norm_topk_prb"] = true;  // norm_topk_prob
  j["torch_dtype"] = "bfloat16";  // an HF key no reader needs: not a typo of anything read
  arch::layer_config_from_json(j);
  set_warning_handler(old);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_NE(seen[0].find("key 'norm_topk_prb' is not read; did you mean 'norm_topk_prob'?"), std::string::npos) << seen[0];
}
