// Layer config JSON -> MoeLayerConfig. Each HF model type sets the semantics of
// shared/spec/semantics.md; engine keys ("router", "expert_act", "losses", ...) override.
#include <cmath>
#include <map>

#include <nlohmann/json.hpp>

#include "moe/error.h"
#include "moe/layer_io.h"

namespace moe {

namespace {

using nlohmann::json;

class Reader {
 public:
  Reader(const json& j, std::string where) : j_(j), where_(std::move(where)) {}
  bool has(const char* k) const { return j_.contains(k) && !j_.at(k).is_null(); }
  [[noreturn]] void fail(const std::string& m) const { throw InvalidInput("[layer config] " + where_ + ": " + m); }
  int64_t integer(const char* k) const {
    if (!has(k)) fail(std::string("missing key '") + k + "'");
    const json& v = j_.at(k);
    if (!v.is_number_integer()) fail(std::string("key '") + k + "' must be an integer, got " + v.dump());
    return v.get<int64_t>();
  }
  int64_t integer_or(const char* k, int64_t d) const { return has(k) ? integer(k) : d; }
  double number_or(const char* k, double d) const {
    if (!has(k)) return d;
    const json& v = j_.at(k);
    if (!v.is_number()) fail(std::string("key '") + k + "' must be a number, got " + v.dump());
    return v.get<double>();
  }
  bool flag_or(const char* k, bool d) const {
    if (!has(k)) return d;
    const json& v = j_.at(k);
    if (!v.is_boolean()) fail(std::string("key '") + k + "' must be true or false, got " + v.dump());
    return v.get<bool>();
  }
  std::string text_or(const char* k, const std::string& d) const {
    if (!has(k)) return d;
    const json& v = j_.at(k);
    if (!v.is_string()) fail(std::string("key '") + k + "' must be a string, got " + v.dump());
    return v.get<std::string>();
  }
  const json& raw() const { return j_; }

 private:
  const json& j_;
  std::string where_;
};

template <class Enum>
Enum pick(const Reader& r, const char* key, Enum fallback, const std::map<std::string, Enum>& names) {
  if (!r.has(key)) return fallback;
  const std::string v = r.text_or(key, "");
  auto it = names.find(v);
  if (it == names.end()) {
    std::string all;
    for (const auto& [n, e] : names) all += (all.empty() ? "" : ", ") + n;
    r.fail(std::string("key '") + key + "' = '" + v + "' is not one of: " + all);
  }
  return it->second;
}

// The "router" override object: any RouterConfig field by its header name.
void apply_router_overrides(const json& j, RouterConfig& c) {
  const Reader r(j, "router");
  for (const auto& [key, value] : j.items()) {
    static const char* known[] = {"n_experts", "top_k", "score", "selection", "normalize", "norm_eps", "scale",
                                  "scale_only_unnormalized", "logit_bias", "selection_bias", "bf16_logits", "n_group",
                                  "topk_group", "group_score", "noise", "noise_std", "capacity_mode",
                                  "expert_capacity", "capacity_factor", "capacity_multiple_of", "priority", "dropped"};
    bool ok = false;
    for (const char* k : known) ok |= key == k;
    if (!ok) r.fail("unknown field '" + key + "'");
    (void)value;
  }
  c.n_experts = r.integer_or("n_experts", c.n_experts);
  c.top_k = r.integer_or("top_k", c.top_k);
  c.score = pick(r, "score", c.score, {{"softmax", ScoreFn::softmax}, {"sigmoid", ScoreFn::sigmoid}});
  c.selection = pick(r, "selection", c.selection,
                     {{"topk", Selection::topk}, {"group_limited", Selection::group_limited},
                      {"expert_choice", Selection::expert_choice}});
  c.normalize = r.flag_or("normalize", c.normalize);
  c.norm_eps = r.number_or("norm_eps", c.norm_eps);
  c.scale = r.number_or("scale", c.scale);
  c.scale_only_unnormalized = r.flag_or("scale_only_unnormalized", c.scale_only_unnormalized);
  c.logit_bias = r.flag_or("logit_bias", c.logit_bias);
  c.selection_bias = r.flag_or("selection_bias", c.selection_bias);
  c.bf16_logits = r.flag_or("bf16_logits", c.bf16_logits);
  c.n_group = r.integer_or("n_group", c.n_group);
  c.topk_group = r.integer_or("topk_group", c.topk_group);
  c.group_score = pick(r, "group_score", c.group_score, {{"max", GroupScore::max}, {"top2_sum", GroupScore::top2_sum}});
  c.noise = pick(r, "noise", c.noise, {{"none", NoiseKind::none}, {"shazeer", NoiseKind::shazeer}, {"vmoe", NoiseKind::vmoe}});
  c.noise_std = r.number_or("noise_std", c.noise_std);
  c.capacity_mode = pick(r, "capacity_mode", c.capacity_mode,
                         {{"none", CapacityMode::none}, {"absolute", CapacityMode::absolute}, {"factor", CapacityMode::factor}});
  c.expert_capacity = r.integer_or("expert_capacity", c.expert_capacity);
  c.capacity_factor = r.number_or("capacity_factor", c.capacity_factor);
  c.capacity_multiple_of = r.integer_or("capacity_multiple_of", c.capacity_multiple_of);
  c.priority = pick(r, "priority", c.priority, {{"position", Priority::position}, {"batch", Priority::batch}});
  c.dropped = pick(r, "dropped", c.dropped, {{"zero", DroppedPolicy::zero}, {"passthrough", DroppedPolicy::passthrough}});
}

void set_loss(MoeLayerConfig& c, const char* name, double coef) {
  if (coef != 0) c.losses.coef[name] = coef;
}

}  // namespace

std::string layer_model_type(const json& j) {
  if (!j.is_object()) throw InvalidInput("[layer config] the config must be a JSON object");
  if (!j.contains("model_type")) return "custom";
  if (!j.at("model_type").is_string()) throw InvalidInput("[layer config] 'model_type' must be a string");
  return j.at("model_type").get<std::string>();
}

MoeLayerConfig layer_config_from_json(const json& j) {
  const std::string type = layer_model_type(j);
  const Reader r(j, type);
  MoeLayerConfig c;
  RouterConfig& rc = c.router;
  if (type == "mixtral") {
    c.d_model = r.integer("hidden_size");
    rc.n_experts = r.integer("num_local_experts");
    rc.top_k = r.integer("num_experts_per_tok");
    c.expert.hidden = r.integer("intermediate_size");
    rc.normalize = true;
    c.jitter = r.number_or("router_jitter_noise", 0.0);
    set_loss(c, "load_balancing", r.number_or("router_aux_loss_coef", 0.0));
  } else if (type == "qwen2_moe" || type == "qwen3_moe" || type == "olmoe") {
    c.d_model = r.integer("hidden_size");
    rc.n_experts = r.integer("num_experts");
    rc.top_k = r.integer("num_experts_per_tok");
    c.expert.hidden = r.integer(type == "olmoe" ? "intermediate_size" : "moe_intermediate_size");
    rc.normalize = r.flag_or("norm_topk_prob", false);
    if (type == "qwen2_moe") {
      c.shared_hidden = r.integer_or("shared_expert_intermediate_size", 0);
      c.shared_gate = c.shared_hidden > 0;
    }
    set_loss(c, "load_balancing", r.number_or("router_aux_loss_coef", 0.0));
  } else if (type == "deepseek_v2" || type == "deepseek_v3") {
    c.d_model = r.integer("hidden_size");
    rc.n_experts = r.integer("n_routed_experts");
    rc.top_k = r.integer("num_experts_per_tok");
    c.expert.hidden = r.integer("moe_intermediate_size");
    c.shared_hidden = r.integer_or("n_shared_experts", 0) * c.expert.hidden;
    rc.n_group = r.integer_or("n_group", 1);
    rc.topk_group = r.integer_or("topk_group", 1);
    rc.scale = r.number_or("routed_scaling_factor", 1.0);
    rc.norm_eps = 1e-20;
    const bool norm = r.flag_or("norm_topk_prob", false);
    if (type == "deepseek_v3") {
      rc.score = ScoreFn::sigmoid;
      rc.selection = Selection::group_limited;
      rc.group_score = GroupScore::top2_sum;
      rc.selection_bias = true;
      rc.normalize = norm;  // HF and DeepSeek's inference code normalise for any k
    } else {
      const std::string method = r.text_or("topk_method", "greedy");
      if (method == "group_limited_greedy") {
        rc.selection = Selection::group_limited;
        rc.group_score = GroupScore::max;
      } else if (method != "greedy") {
        r.fail("topk_method '" + method + "' is not one of: greedy, group_limited_greedy");
      }
      rc.normalize = norm && rc.top_k > 1;  // remote code: normalise, or else scale
      rc.scale_only_unnormalized = true;
      c.losses.deepseek_v2_seq_aux = r.flag_or("seq_aux", true);
      set_loss(c, "deepseek_v2_seq", r.number_or("aux_loss_alpha", 0.0));
    }
  } else if (type == "gpt_oss") {
    c.d_model = r.integer("hidden_size");
    rc.n_experts = r.integer("num_local_experts");
    rc.top_k = r.integer("num_experts_per_tok");
    c.expert.hidden = r.integer("intermediate_size");
    c.expert.act = ExpertAct::gpt_oss_swiglu;
    c.expert.bias = true;
    rc.logit_bias = true;
    rc.normalize = true;
    set_loss(c, "load_balancing", r.number_or("router_aux_loss_coef", 0.0));
  } else if (type == "switch_transformers") {
    c.d_model = r.integer("d_model");
    rc.n_experts = r.integer("num_experts");
    rc.top_k = 1;
    c.expert.hidden = r.integer("d_ff");
    c.expert.act = parse_expert_act(r.text_or("dense_act_fn", "relu"));
    rc.capacity_mode = CapacityMode::absolute;
    rc.expert_capacity = r.integer_or("expert_capacity", 64);
    rc.dropped = DroppedPolicy::passthrough;
    rc.logit_bias = r.flag_or("router_bias", false);
    c.jitter = r.number_or("router_jitter_noise", 0.0);
    set_loss(c, "switch", r.number_or("router_aux_loss_coef", 0.0));
    set_loss(c, "z_loss", r.number_or("router_z_loss_coef", 0.0));
  } else if (type == "custom") {
    c.d_model = r.integer("hidden_size");
    rc.n_experts = r.integer("num_experts");
    rc.top_k = r.integer_or("num_experts_per_tok", 1);
    c.expert.hidden = r.integer("intermediate_size");
    c.shared_hidden = r.integer_or("shared_intermediate_size", 0);
    c.shared_gate = r.flag_or("shared_gate", false);
    c.expert.bias = r.flag_or("expert_bias", false);
    c.jitter = r.number_or("router_jitter_noise", 0.0);
  } else {
    r.fail("model_type '" + type + "' is not one of: mixtral, qwen2_moe, qwen3_moe, olmoe, deepseek_v2, "
           "deepseek_v3, gpt_oss, switch_transformers, custom");
  }

  // Engine keys: override what the model type implies.
  if (r.has("router")) {
    if (!j.at("router").is_object()) r.fail("'router' must be an object");
    apply_router_overrides(j.at("router"), rc);
  }
  if (r.has("expert_act")) c.expert.act = parse_expert_act(r.text_or("expert_act", ""));
  if (c.expert.act == ExpertAct::gpt_oss_swiglu) {  // any model type using the clamped SwiGLU
    c.expert.alpha = r.number_or("swiglu_alpha", 1.702);
    c.expert.limit = r.number_or("swiglu_limit", 7.0);
  }
  if (r.has("shared_act")) c.shared_act = parse_expert_act(r.text_or("shared_act", ""));
  if (r.has("switch_dropped")) {
    rc.dropped = pick(r, "switch_dropped", rc.dropped, {{"zero", DroppedPolicy::zero}, {"passthrough", DroppedPolicy::passthrough}});
  }
  if (r.has("soft_moe")) {
    const Reader s(j.at("soft_moe"), "soft_moe");
    if (!j.at("soft_moe").is_object()) r.fail("'soft_moe' must be an object");
    c.soft.slots_per_expert = s.integer("slots_per_expert");
    if (c.soft.slots_per_expert < 1) s.fail("slots_per_expert=" + std::to_string(c.soft.slots_per_expert) + " must be >= 1");
  }
  if (r.has("losses")) {
    const json& l = j.at("losses");
    if (!l.is_object()) r.fail("'losses' must be an object {name: coefficient}");
    c.losses.coef.clear();
    for (const auto& [name, v] : l.items()) {
      if (!v.is_number()) r.fail("loss '" + name + "' coefficient must be a number, got " + v.dump());
      c.losses.coef[name] = v.get<double>();
    }
  }
  c.losses.deepseek_v3_use_routing_map = r.flag_or("deepseek_v3_use_routing_map", c.losses.deepseek_v3_use_routing_map);
  c.losses.deepseek_v3_per_sequence = r.flag_or("deepseek_v3_per_sequence", c.losses.deepseek_v3_per_sequence);
  validate_layer(c);
  return c;
}

}  // namespace moe
