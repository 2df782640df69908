// GptConfig: layer placement, validation, JSON (the MoE layer in the layer-config format of
// src/io/layer_config.cpp, model_type "custom"), parameter counts.
#include <cmath>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "moe/error.h"
#include "moe/gpt.h"
#include "moe/layer_io.h"

namespace moe {

namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& m) { throw InvalidInput("[gpt] " + m); }
std::string str(int64_t v) { return std::to_string(v); }

// Typed access to a JSON object's keys; errors name the key.
class Keys {
 public:
  Keys(const json& j, std::string where) : j_(j), where_(std::move(where)) {}
  [[noreturn]] void fail(const std::string& m) const { throw InvalidInput("[gpt config] " + where_ + m); }
  bool has(const char* k) const { return j_.contains(k) && !j_.at(k).is_null(); }
  int64_t integer(const char* k, int64_t d) const {
    if (!has(k)) return d;
    if (!j_.at(k).is_number_integer()) fail(std::string("key '") + k + "' must be an integer, got " + j_.at(k).dump());
    return j_.at(k).get<int64_t>();
  }
  double number(const char* k, double d) const {
    if (!has(k)) return d;
    if (!j_.at(k).is_number()) fail(std::string("key '") + k + "' must be a number, got " + j_.at(k).dump());
    return j_.at(k).get<double>();
  }
  bool flag(const char* k, bool d) const {
    if (!has(k)) return d;
    if (!j_.at(k).is_boolean()) fail(std::string("key '") + k + "' must be true or false, got " + j_.at(k).dump());
    return j_.at(k).get<bool>();
  }
  std::string text(const char* k, const std::string& d) const {
    if (!has(k)) return d;
    if (!j_.at(k).is_string()) fail(std::string("key '") + k + "' must be a string, got " + j_.at(k).dump());
    return j_.at(k).get<std::string>();
  }
  void only(const std::set<std::string>& known) const {
    for (const auto& [key, v] : j_.items()) {
      (void)v;
      if (!known.count(key)) fail("unknown key '" + key + "'");
    }
  }

 private:
  const json& j_;
  std::string where_;
};

const char* score_name(ScoreFn s) { return s == ScoreFn::softmax ? "softmax" : "sigmoid"; }
const char* selection_name(Selection s) {
  return s == Selection::topk ? "topk" : s == Selection::group_limited ? "group_limited" : "expert_choice";
}
const char* noise_name(NoiseKind n) { return n == NoiseKind::none ? "none" : n == NoiseKind::shazeer ? "shazeer" : "vmoe"; }
const char* capacity_name(CapacityMode m) {
  return m == CapacityMode::none ? "none" : m == CapacityMode::absolute ? "absolute" : "factor";
}

json moe_layer_to_json(const MoeLayerConfig& c) {
  const RouterConfig& r = c.router;
  json router = {{"n_experts", r.n_experts},
                 {"top_k", r.top_k},
                 {"score", score_name(r.score)},
                 {"selection", selection_name(r.selection)},
                 {"normalize", r.normalize},
                 {"norm_eps", r.norm_eps},
                 {"scale", r.scale},
                 {"scale_only_unnormalized", r.scale_only_unnormalized},
                 {"logit_bias", r.logit_bias},
                 {"selection_bias", r.selection_bias},
                 {"bf16_logits", r.bf16_logits},
                 {"n_group", r.n_group},
                 {"topk_group", r.topk_group},
                 {"group_score", r.group_score == GroupScore::max ? "max" : "top2_sum"},
                 {"noise", noise_name(r.noise)},
                 {"noise_std", r.noise_std},
                 {"capacity_mode", capacity_name(r.capacity_mode)},
                 {"expert_capacity", r.expert_capacity},
                 {"capacity_factor", r.capacity_factor},
                 {"capacity_multiple_of", r.capacity_multiple_of},
                 {"priority", r.priority == Priority::position ? "position" : "batch"},
                 {"dropped", r.dropped == DroppedPolicy::zero ? "zero" : "passthrough"}};
  json losses = json::object();
  for (const auto& [name, coef] : c.losses.coef) losses[name] = coef;
  json j = {{"model_type", "custom"},
            {"hidden_size", c.d_model},
            {"num_experts", r.n_experts},
            {"num_experts_per_tok", r.top_k},
            {"intermediate_size", c.expert.hidden},
            {"expert_act", expert_act_name(c.expert.act)},
            {"expert_bias", c.expert.bias},
            {"swiglu_alpha", c.expert.alpha},
            {"swiglu_limit", c.expert.limit},
            {"shared_intermediate_size", c.shared_hidden},
            {"shared_act", expert_act_name(c.shared_act)},
            {"shared_gate", c.shared_gate},
            {"router_jitter_noise", c.jitter},
            {"router", router},
            {"losses", losses},
            {"deepseek_v3_use_routing_map", c.losses.deepseek_v3_use_routing_map},
            {"deepseek_v3_per_sequence", c.losses.deepseek_v3_per_sequence},
            {"deepseek_v2_seq_aux", c.losses.deepseek_v2_seq_aux}};
  if (c.soft.slots_per_expert > 0) j["soft_moe"] = {{"slots_per_expert", c.soft.slots_per_expert}};
  return j;
}

MoeLayerConfig moe_layer_from_json(json j, int64_t d_model) {
  if (!j.is_object()) throw InvalidInput("[gpt config] 'moe' must be an object or null");
  const Keys k(j, "moe: ");
  if (layer_model_type(j) == "custom") {  // HF model types take their own keys
    k.only({"model_type", "hidden_size", "num_experts", "num_experts_per_tok", "intermediate_size", "expert_act",
            "expert_bias", "swiglu_alpha", "swiglu_limit", "shared_intermediate_size", "shared_act", "shared_gate",
            "router_jitter_noise", "router", "losses", "deepseek_v3_use_routing_map", "deepseek_v3_per_sequence",
            "deepseek_v2_seq_aux", "soft_moe", "switch_dropped"});
  }
  if (!j.contains("hidden_size") && !j.contains("d_model")) j["hidden_size"] = d_model;
  MoeLayerConfig c = layer_config_from_json(j);
  // Fields the layer reader leaves to other model types.
  c.expert.alpha = k.number("swiglu_alpha", c.expert.alpha);
  c.expert.limit = k.number("swiglu_limit", c.expert.limit);
  c.losses.deepseek_v2_seq_aux = k.flag("deepseek_v2_seq_aux", c.losses.deepseek_v2_seq_aux);
  return c;
}

}  // namespace

bool GptConfig::is_moe_layer(int64_t layer) const {
  return has_moe() && layer >= first_dense_layers && (layer - first_dense_layers) % moe_every == 0;
}

void validate_gpt(const GptConfig& c) {
  if (c.vocab_size < 1) bad("vocab_size=" + str(c.vocab_size) + " must be >= 1");
  if (c.context < 1) bad("context=" + str(c.context) + " must be >= 1");
  if (c.d_model < 1) bad("d_model=" + str(c.d_model) + " must be >= 1");
  if (c.n_layers < 1) bad("n_layers=" + str(c.n_layers) + " must be >= 1");
  if (c.n_heads < 1) bad("n_heads=" + str(c.n_heads) + " must be >= 1");
  if (c.d_model % c.n_heads != 0) bad("n_heads=" + str(c.n_heads) + " does not divide d_model=" + str(c.d_model));
  if (c.n_kv_heads < 1) bad("n_kv_heads=" + str(c.n_kv_heads) + " must be >= 1");
  if (c.n_heads % c.n_kv_heads != 0) {
    bad("n_kv_heads=" + str(c.n_kv_heads) + " does not divide n_heads=" + str(c.n_heads));
  }
  if (c.pos == PosEncoding::rope) {
    if (c.head_dim() % 2 != 0) bad("RoPE needs an even head width, got d_model/n_heads=" + str(c.head_dim()));
    if (!(c.rope_theta > 0)) bad("rope_theta=" + std::to_string(c.rope_theta) + " must be > 0");
  }
  if (!(c.norm_eps >= 0) || !std::isfinite(c.norm_eps)) bad("norm_eps=" + std::to_string(c.norm_eps) + " must be >= 0");
  if (c.first_dense_layers < 0) bad("first_dense_layers=" + str(c.first_dense_layers) + " must be >= 0");
  if (c.moe_every < 1) bad("moe_every=" + str(c.moe_every) + " must be >= 1");
  if (c.moe.router.n_experts < 0) bad("moe n_experts=" + str(c.moe.router.n_experts) + " must be >= 0");
  bool any_dense = false;
  for (int64_t l = 0; l < c.n_layers; ++l) any_dense |= !c.is_moe_layer(l);
  if (any_dense && c.dense.hidden < 1) bad("dense FFN hidden=" + str(c.dense.hidden) + " must be >= 1 (the model has dense layers)");
  if (c.has_moe()) {
    if (c.moe.d_model != c.d_model) {
      bad("moe hidden_size=" + str(c.moe.d_model) + " differs from d_model=" + str(c.d_model));
    }
    validate_layer(c.moe);
  }
}

json gpt_config_to_json(const GptConfig& c) {
  return {{"vocab_size", c.vocab_size},
          {"context", c.context},
          {"d_model", c.d_model},
          {"n_layers", c.n_layers},
          {"n_heads", c.n_heads},
          {"n_kv_heads", c.n_kv_heads},
          {"pos", c.pos == PosEncoding::rope ? "rope" : "learned"},
          {"rope_theta", c.rope_theta},
          {"norm", c.norm == NormKind::rmsnorm ? "rmsnorm" : "layernorm"},
          {"norm_eps", c.norm_eps},
          {"tied_head", c.tied_head},
          {"attn_bias", c.attn_bias},
          {"causal", c.causal},
          {"dense",
           {{"act", expert_act_name(c.dense.act)},
            {"hidden", c.dense.hidden},
            {"bias", c.dense.bias},
            {"alpha", c.dense.alpha},
            {"limit", c.dense.limit}}},
          {"moe", c.has_moe() ? moe_layer_to_json(c.moe) : json(nullptr)},
          {"first_dense_layers", c.first_dense_layers},
          {"moe_every", c.moe_every}};
}

GptConfig gpt_config_from_json(const json& j) {
  if (!j.is_object()) throw InvalidInput("[gpt config] the config must be a JSON object");
  const Keys k(j, "");
  k.only({"vocab_size", "context", "d_model", "n_layers", "n_heads", "n_kv_heads", "pos", "rope_theta", "norm",
          "norm_eps", "tied_head", "attn_bias", "causal", "dense", "moe", "first_dense_layers", "moe_every"});
  GptConfig c;
  c.vocab_size = k.integer("vocab_size", c.vocab_size);
  c.context = k.integer("context", c.context);
  c.d_model = k.integer("d_model", c.d_model);
  c.n_layers = k.integer("n_layers", c.n_layers);
  c.n_heads = k.integer("n_heads", c.n_heads);
  c.n_kv_heads = k.integer("n_kv_heads", c.n_heads);
  const std::string pos = k.text("pos", "rope");
  if (pos != "rope" && pos != "learned") k.fail("key 'pos' = '" + pos + "' is not one of: rope, learned");
  c.pos = pos == "rope" ? PosEncoding::rope : PosEncoding::learned;
  c.rope_theta = k.number("rope_theta", c.rope_theta);
  const std::string norm = k.text("norm", "rmsnorm");
  if (norm != "rmsnorm" && norm != "layernorm") k.fail("key 'norm' = '" + norm + "' is not one of: rmsnorm, layernorm");
  c.norm = norm == "rmsnorm" ? NormKind::rmsnorm : NormKind::layernorm;
  c.norm_eps = k.number("norm_eps", c.norm_eps);
  c.tied_head = k.flag("tied_head", c.tied_head);
  c.attn_bias = k.flag("attn_bias", c.attn_bias);
  c.causal = k.flag("causal", c.causal);
  if (k.has("dense")) {
    const json& d = j.at("dense");
    if (!d.is_object()) k.fail("key 'dense' must be an object");
    const Keys dk(d, "dense: ");
    dk.only({"act", "hidden", "bias", "alpha", "limit"});
    c.dense.act = parse_expert_act(dk.text("act", "swiglu"));
    c.dense.hidden = dk.integer("hidden", 0);
    c.dense.bias = dk.flag("bias", false);
    c.dense.alpha = dk.number("alpha", c.dense.alpha);
    c.dense.limit = dk.number("limit", c.dense.limit);
  }
  if (k.has("moe")) c.moe = moe_layer_from_json(j.at("moe"), c.d_model);
  c.first_dense_layers = k.integer("first_dense_layers", 0);
  c.moe_every = k.integer("moe_every", 1);
  validate_gpt(c);
  return c;
}

int64_t gpt_param_count(const GptConfig& c, bool active_only) {
  validate_gpt(c);
  const int64_t d = c.d_model, V = c.vocab_size, hd = c.head_dim();
  const int64_t norm = c.norm == NormKind::layernorm ? 2 * d : d;
  int64_t n = V * d + (c.pos == PosEncoding::learned ? c.context * d : 0) + norm + (c.tied_head ? 0 : V * d);
  const int64_t attn = (c.n_heads + 2 * c.n_kv_heads) * hd * d + d * c.n_heads * hd + (c.attn_bias ? d : 0);
  auto ffn = [d](const ExpertConfig& e) {
    const int64_t mats = (is_gated(e.act) ? 3 : 2) * e.hidden * d;
    const int64_t biases = e.bias ? (is_gated(e.act) ? 2 : 1) * e.hidden + d : 0;
    return mats + biases;
  };
  for (int64_t l = 0; l < c.n_layers; ++l) {
    n += 2 * norm + attn;
    if (!c.is_moe_layer(l)) {
      n += ffn(c.dense);
      continue;
    }
    const MoeLayerConfig& m = c.moe;
    const int64_t E = m.router.n_experts;
    if (m.soft.slots_per_expert > 0) {
      n += d * E * m.soft.slots_per_expert + 1;
    } else {
      n += E * d + (m.router.logit_bias ? E : 0) + (m.router.noise == NoiseKind::shazeer ? E * d : 0);
    }
    int64_t used = E;
    if (active_only && m.soft.slots_per_expert == 0) {
      used = m.router.selection == Selection::expert_choice
                 ? std::min<int64_t>(E, static_cast<int64_t>(std::ceil(m.router.capacity_factor)))
                 : m.router.top_k;
    }
    n += used * ffn(m.expert);
    if (m.shared_hidden > 0) {
      ExpertConfig s{m.shared_act, m.shared_hidden, false, m.expert.alpha, m.expert.limit};
      n += ffn(s) + (m.shared_gate ? d : 0);
    }
  }
  return n;
}

}  // namespace moe
