#include "moe/gpt_presets.h"

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "moe/error.h"
#include "moe/layer_format.h"

namespace moe {

GptConfig make_gpt_config(const GptPreset& p) {
  using json = nlohmann::json;
  auto bad = [](const std::string& m) { throw InvalidInput("[gpt] " + m); };
  // Flags that only switch something on when positive must not turn a typo (-1, nan) into "off".
  auto at_least = [&](const char* flag, int64_t v, int64_t lo) {
    if (v < lo) bad(std::string(flag) + "=" + std::to_string(v) + " must be >= " + std::to_string(lo));
  };
  auto coefficient = [&](const char* flag, double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    if (!(v >= 0) || !std::isfinite(v)) bad(std::string(flag) + "=" + buf + " must be finite and >= 0");
  };
  at_least("--num_experts", p.n_experts, 0);
  at_least("--n_kv_heads", p.n_kv_heads, 0);
  at_least("--shared_hidden", p.shared_hidden, 0);
  at_least("--first_dense", p.first_dense, 0);
  at_least("--moe_every", p.moe_every, 1);
  at_least("--soft_slots", p.soft_slots, 1);
  coefficient("--capacity_factor", p.capacity_factor);
  coefficient("--aux_coef", p.aux_coef);
  coefficient("--z_coef", p.z_coef);
  if (p.n_experts > 0 && p.router == "soft") {
    if (p.capacity_factor > 0) bad("--capacity_factor does not apply to --router soft (it has --soft_slots)");
    if (p.z_coef > 0) bad("--z_coef does not apply to --router soft (Soft MoE takes no router losses)");
  }
  if (p.n_experts == 0 && p.shared_hidden > 0) bad("--shared_hidden needs --num_experts > 0 (a dense model has no shared expert)");
  GptConfig c;
  c.vocab_size = p.vocab_size;
  c.context = p.context;
  c.d_model = p.d_model;
  c.n_layers = p.n_layers;
  c.n_heads = p.n_heads;
  c.n_kv_heads = p.n_kv_heads > 0 ? p.n_kv_heads : p.n_heads;
  if (p.pos == "rope") c.pos = PosEncoding::rope;
  else if (p.pos == "learned") c.pos = PosEncoding::learned;
  else bad("--pos=" + p.pos + " (rope or learned)");
  if (p.norm == "rmsnorm") c.norm = NormKind::rmsnorm;
  else if (p.norm == "layernorm") c.norm = NormKind::layernorm;
  else bad("--norm=" + p.norm + " (rmsnorm or layernorm)");
  c.tied_head = !p.untied;
  c.attn_bias = p.attn_bias;
  c.causal = !p.encoder;
  c.dense.act = parse_expert_act(p.act);
  c.dense.hidden = p.hidden;
  c.first_dense_layers = p.first_dense;
  c.moe_every = p.moe_every;
  if (p.n_experts > 0) {
    json router = json::object(), losses = json::object();
    int64_t k = p.top_k;
    const std::string& r = p.router;
    if (r == "softmax" || r == "noisy") {
      router = {{"score", "softmax"}, {"selection", "topk"}, {"normalize", p.renorm}};
      if (r == "noisy") router["noise"] = "shazeer";
      if (p.aux_coef > 0) losses["load_balancing"] = p.aux_coef;
    } else if (r == "switch") {
      k = 1;
      router = {{"score", "softmax"}, {"selection", "topk"}, {"normalize", false}};
      if (p.aux_coef > 0) losses["switch"] = p.aux_coef;
    } else if (r == "sigmoid") {
      router = {{"score", "sigmoid"}, {"selection", "topk"}, {"normalize", true}, {"norm_eps", 1e-20},
                {"selection_bias", true}};
      if (p.aux_coef > 0) losses["deepseek_v3_seq"] = p.aux_coef;
    } else if (r == "expert_choice") {
      router = {{"score", "softmax"}, {"selection", "expert_choice"},
                {"capacity_factor", p.capacity_factor > 0 ? p.capacity_factor : 1.0}};
    } else if (r != "soft") {
      bad("--router=" + r + " (softmax, switch, noisy, sigmoid, expert_choice or soft)");
    }
    if (p.capacity_factor > 0 && r != "expert_choice" && r != "soft") {
      router["capacity_mode"] = "factor";
      router["capacity_factor"] = p.capacity_factor;
    }
    if (p.z_coef > 0 && r != "soft") losses["z_loss"] = p.z_coef;
    json j = {{"model_type", "custom"},   {"hidden_size", p.d_model}, {"num_experts", p.n_experts},
              {"num_experts_per_tok", k}, {"intermediate_size", p.hidden}, {"expert_act", p.act},
              {"losses", losses}};
    if (r != "soft") j["router"] = router;
    if (r == "soft") j["soft_moe"] = {{"slots_per_expert", p.soft_slots}};
    if (p.shared_hidden > 0) j["shared_intermediate_size"] = p.shared_hidden;
    c.moe = arch::layer_config_from_json(j);
  }
  validate_gpt(c);
  return c;
}

}  // namespace moe
