// The trained model's size for the report: parameters (gpt_param_count), weight and KV-cache
// bytes, and the estimator's per-part breakdown (include/moe/model_count.h) where it applies.
#include <algorithm>
#include <cmath>

#include "moe/model_count.h"
#include "moe/report.h"
#include "util/format.h"

namespace moe::report {

namespace {

// The GPT as the estimator's architecture description. Returns false for what the estimator
// does not model (learned positions, Soft MoE, learned router noise, a shared expert whose
// activation differs from the experts').
bool to_arch(const GptConfig& c, estimate::ModelArch& arch) {
  const MoeLayerConfig& m = c.moe;
  if (c.pos == PosEncoding::learned) return false;
  if (c.has_moe() && (m.soft.slots_per_expert > 0 || m.router.noise == NoiseKind::shazeer)) return false;
  if (c.has_moe() && m.shared_hidden > 0 && is_gated(m.shared_act) != is_gated(m.expert.act)) return false;
  arch.model_type = "moe.cpp gpt";
  arch.hidden = c.d_model;
  arch.vocab = c.vocab_size;
  arch.tied_head = c.tied_head;
  const int64_t per_norm = c.norm == NormKind::layernorm ? 2 : 1;
  arch.final_norms = per_norm;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    estimate::LayerArch la;
    la.decoder = c.causal;
    la.norms = 2 * per_norm;
    la.self_attn.n_heads = c.n_heads;
    la.self_attn.n_kv_heads = c.n_kv_heads;
    la.self_attn.head_dim = c.head_dim();
    la.self_attn.o_bias = c.attn_bias;
    estimate::FfnArch& f = la.ffn;
    if (c.is_moe_layer(l)) {
      f = arch::moe_ffn(m);
      if (m.router.selection == Selection::expert_choice) {  // ~capacity_factor experts per token
        f.top_k = std::min<int64_t>(f.n_experts, static_cast<int64_t>(std::ceil(m.router.capacity_factor)));
      }
    } else {
      f.matrices = is_gated(c.dense.act) ? 3 : 2;
      f.dense_hidden = c.dense.hidden;
      f.dense_bias = c.dense.bias;
    }
    arch.layers.push_back(la);
  }
  return true;
}

}  // namespace

nlohmann::json model_info_json(const GptConfig& c) {
  using nlohmann::json;
  json j;
  j["config"] = gpt_config_to_json(c);
  const bool moe = c.has_moe();
  int64_t moe_layers = 0;
  for (int64_t l = 0; l < c.n_layers; ++l) moe_layers += c.is_moe_layer(l) ? 1 : 0;
  std::string router = "none";
  if (moe) {
    const RouterConfig& r = c.moe.router;
    router = c.moe.soft.slots_per_expert > 0 ? "soft MoE (" + std::to_string(c.moe.soft.slots_per_expert) + " slots per expert)"
             : r.selection == Selection::expert_choice ? "expert choice"
             : std::string(r.score == ScoreFn::sigmoid ? "sigmoid" : "softmax") + " top-" + std::to_string(r.top_k) +
                   (r.noise != NoiseKind::none ? ", noisy" : "") + (r.selection_bias ? ", selection bias" : "");
  }
  j["summary"] = json::array({
      json::array({"kind", moe ? "MoE" : "dense"}),
      json::array({"layers (MoE layers)", std::to_string(c.n_layers) + " (" + std::to_string(moe_layers) + ")"}),
      json::array({"model width d", c.d_model}),
      json::array({"attention heads (key/value heads)", std::to_string(c.n_heads) + " (" + std::to_string(c.n_kv_heads) + ")"}),
      json::array({"context", c.context}),
      json::array({"vocabulary", c.vocab_size}),
      json::array({"attention", c.causal ? "causal (decoder)" : "bidirectional (encoder)"}),
  });
  if (moe) {
    j["summary"].push_back(json::array({"experts per layer", c.moe.router.n_experts}));
    j["summary"].push_back(json::array({"router", router}));
    j["summary"].push_back(json::array({"expert FFN", std::string(expert_act_name(c.moe.expert.act)) + ", width " +
                                                          std::to_string(c.moe.expert.hidden)}));
    if (c.moe.shared_hidden > 0) j["summary"].push_back(json::array({"shared expert width", c.moe.shared_hidden}));
  }
  if (!moe || moe_layers < c.n_layers)
    j["summary"].push_back(json::array({"dense FFN", std::string(expert_act_name(c.dense.act)) + ", width " +
                                                         std::to_string(c.dense.hidden)}));
  const int64_t total = gpt_param_count(c, false), active = gpt_param_count(c, true);
  j["params_total"] = total;
  j["params_active"] = active;
  j["weight_bytes"] = {{"f32", total * 4}, {"bf16", total * 2}};
  const int64_t kv_elems = c.causal ? c.n_layers * 2 * c.n_kv_heads * c.head_dim() : 0;
  j["kv_bytes_per_token"] = {{"f32", kv_elems * 4}, {"bf16", kv_elems * 2}};
  j["kv_bytes_context_f32"] = kv_elems * 4 * c.context;
  estimate::ModelArch arch;
  if (to_arch(c, arch)) {
    const estimate::ModelCount count = estimate::count_model(arch, "bf16", c.context);
    if (count.total == total && count.active == active && count.kv_bytes_per_token == kv_elems * 2) {
      json parts = json::array();
      for (const auto& p : count.parts)
        if (p.total > 0) parts.push_back({{"name", p.name}, {"total", p.total}, {"active", p.active}});
      j["parts"] = parts;
      j["estimator"] = "the whole-model estimator (moe estimate --config) agrees with the model's own count";
    } else {
      j["estimator"] = "the whole-model estimator counts " + util::group_thousands(count.total) + " parameters; the model's own count is used";
    }
  } else {
    j["estimator"] = "architecture outside the whole-model estimator (learned positions, Soft MoE or learned router noise): the model's own count is used";
  }
  return j;
}

}  // namespace moe::report
