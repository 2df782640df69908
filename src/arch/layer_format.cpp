// The layer-config format (docs/layer-format.md): reader and writer from one description of the
// keys. A model type's own keys come from its registry entry; the engine keys below override.
#include <cmath>

#include <nlohmann/json.hpp>

#include "arch/layer_fields.h"
#include "arch/registry.h"
#include "moe/error.h"

namespace moe::arch {

using nlohmann::json;
using util::Field;
using util::JsonFields;

namespace {

template <class Get>
Field<MoeLayerConfig> layer_field(std::string name, Get get) {
  return util::field<MoeLayerConfig>(std::move(name), get);
}

// "losses": {name: coefficient}; given, it replaces every loss the model type implies.
Field<MoeLayerConfig> losses_field() {
  return {"losses",
          [](const JsonFields& f, MoeLayerConfig& c) {
            if (!f.has("losses")) return;
            const json& l = f.raw().at("losses");
            if (!l.is_object()) f.fail("'losses' must be an object {name: coefficient}");
            c.losses.coef.clear();
            for (const auto& [name, v] : l.items()) {
              if (!v.is_number()) f.fail("loss '" + name + "' coefficient must be a number, got " + v.dump());
              c.losses.coef[name] = v.get<double>();
            }
          },
          [](const MoeLayerConfig& c, json& j) {
            json l = json::object();
            for (const auto& [name, coef] : c.losses.coef) l[name] = coef;
            j["losses"] = l;
          }};
}

const std::vector<Field<SoftMoeConfig>>& soft_moe_fields() {
  static const std::vector<Field<SoftMoeConfig>> fields = {
      util::field("slots_per_expert", &SoftMoeConfig::slots_per_expert),
      util::field("noise_std", &SoftMoeConfig::noise_std),
  };
  return fields;
}

// "soft_moe": {"slots_per_expert": p, "noise_std": s}: Soft MoE instead of a router.
Field<MoeLayerConfig> soft_moe_field() {
  return {"soft_moe",
          [](const JsonFields& f, MoeLayerConfig& c) {
            if (!f.has("soft_moe")) return;
            const JsonFields s = f.object("soft_moe", "[layer config] soft_moe: ");
            s.only(util::field_names(soft_moe_fields()));
            s.integer("slots_per_expert");  // required
            util::read_fields(soft_moe_fields(), s, c.soft);
            if (c.soft.slots_per_expert < 1) {
              s.fail("slots_per_expert=" + std::to_string(c.soft.slots_per_expert) + " must be >= 1");
            }
            if (!(c.soft.noise_std >= 0) || !std::isfinite(c.soft.noise_std)) {
              s.fail("noise_std=" + json(c.soft.noise_std).dump() + " must be finite and >= 0");
            }
          },
          [](const MoeLayerConfig& c, json& j) {
            if (c.soft.slots_per_expert == 0) return;  // not a Soft MoE layer
            json s = json::object();
            util::write_fields(soft_moe_fields(), c.soft, s);
            j["soft_moe"] = s;
          }};
}

const std::initializer_list<util::Spelling<DroppedPolicy>> kDropped = {{"zero", DroppedPolicy::zero},
                                                                      {"passthrough", DroppedPolicy::passthrough}};

std::string moe_model_types() {
  std::string all;
  for (const ArchEntry* e : arch_entries()) {
    if (e->moe_layer) all += (all.empty() ? "" : ", ") + std::string(e->model_type);
  }
  return all;
}

}  // namespace

const std::vector<Field<RouterConfig>>& router_fields() {
  using R = RouterConfig;
  using util::choice_field;
  using util::field;
  // Grouped as in include/moe/router.h.
  static const std::vector<Field<R>> fields = {
      field("n_experts", &R::n_experts), field("top_k", &R::top_k),
      choice_field("score", &R::score, {{"softmax", ScoreFn::softmax}, {"sigmoid", ScoreFn::sigmoid}}),
      choice_field("selection", &R::selection,
                   {{"topk", Selection::topk}, {"group_limited", Selection::group_limited},
                    {"expert_choice", Selection::expert_choice}}),
      field("normalize", &R::normalize), field("norm_eps", &R::norm_eps), field("scale", &R::scale),
      field("scale_only_unnormalized", &R::scale_only_unnormalized),
      field("logit_bias", &R::logit_bias), field("selection_bias", &R::selection_bias),
      field("bf16_logits", &R::bf16_logits),
      // group-limited selection
      field("n_group", &R::n_group), field("topk_group", &R::topk_group),
      choice_field("group_score", &R::group_score, {{"max", GroupScore::max}, {"top2_sum", GroupScore::top2_sum}}),
      // noise
      choice_field("noise", &R::noise,
                   {{"none", NoiseKind::none}, {"shazeer", NoiseKind::shazeer}, {"vmoe", NoiseKind::vmoe}}),
      field("noise_std", &R::noise_std),
      // capacity and expert choice
      choice_field("capacity_mode", &R::capacity_mode,
                   {{"none", CapacityMode::none}, {"absolute", CapacityMode::absolute},
                    {"factor", CapacityMode::factor}}),
      field("expert_capacity", &R::expert_capacity), field("capacity_factor", &R::capacity_factor),
      field("capacity_multiple_of", &R::capacity_multiple_of),
      choice_field("priority", &R::priority, {{"position", Priority::position}, {"batch", Priority::batch}}),
      choice_field("dropped", &R::dropped, kDropped),
  };
  return fields;
}

const std::vector<Field<MoeLayerConfig>>& engine_fields() {
  static const std::vector<Field<MoeLayerConfig>> fields = [] {
    // switch_dropped is read as an alias of router.dropped, which the router object stores.
    Field<MoeLayerConfig> switch_dropped = util::choice_field<MoeLayerConfig>(
        "switch_dropped", [](auto& c) -> auto& { return c.router.dropped; }, kDropped);
    switch_dropped.write = nullptr;
    return std::vector<Field<MoeLayerConfig>>{
        act_field<MoeLayerConfig>("expert_act", [](auto& c) -> auto& { return c.expert.act; }),
        act_field<MoeLayerConfig>("shared_act", [](auto& c) -> auto& { return c.shared_act; }),
        layer_field("swiglu_alpha", [](auto& c) -> auto& { return c.expert.alpha; }),
        layer_field("swiglu_limit", [](auto& c) -> auto& { return c.expert.limit; }),
        util::object_field<MoeLayerConfig>("router", [](auto& c) -> auto& { return c.router; }, router_fields(),
                                           "[layer config] router: ", "field"),
        losses_field(),
        soft_moe_field(),
        switch_dropped,
        layer_field("deepseek_v3_use_routing_map", [](auto& c) -> auto& { return c.losses.deepseek_v3_use_routing_map; }),
        layer_field("deepseek_v3_per_sequence", [](auto& c) -> auto& { return c.losses.deepseek_v3_per_sequence; }),
        layer_field("deepseek_v2_seq_aux", [](auto& c) -> auto& { return c.losses.deepseek_v2_seq_aux; }),
    };
  }();
  return fields;
}

std::string layer_model_type(const json& j) {
  if (!j.is_object()) throw InvalidInput("[layer config] the config must be a JSON object");
  if (!j.contains("model_type")) return "custom";
  if (!j.at("model_type").is_string()) throw InvalidInput("[layer config] 'model_type' must be a string");
  return j.at("model_type").get<std::string>();
}

MoeLayerConfig layer_config_from_json(const json& j) {
  const std::string type = layer_model_type(j);
  const JsonFields f(j, "[layer config] " + type + ": ");
  const ArchEntry* e = find_arch(type);
  if (!e) f.fail("model_type '" + type + "' is not one of: " + moe_model_types());
  if (!e->moe_layer) f.fail("model_type '" + type + "' is a dense model (no MoE layer); MoE types: " + moe_model_types());
  MoeLayerConfig c = moe_layer_of(*e, f);
  util::read_fields(engine_fields(), f, c);
  validate_layer(c);
  f.warn_likely_typos();  // custom refuses unknown keys outright; HF configs carry many we do not read
  return c;
}

json layer_config_to_json(const MoeLayerConfig& c) {
  json j = {{"model_type", "custom"}};
  util::write_fields(custom_fields(), c, j);
  util::write_fields(engine_fields(), c, j);
  return j;
}

std::vector<WeightBinding> layer_weight_bindings(const std::string& type, const MoeLayerConfig& c, bool fused) {
  const ArchEntry* e = find_arch(type);
  if (!e || !e->moe_bindings) throw InvalidInput("[layer config] model_type '" + type + "' has no MoE layer");
  return e->moe_bindings(c, fused && e->fused_layout);
}

}  // namespace moe::arch
