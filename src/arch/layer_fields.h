// The keys of the layer-config format as field tables (util::Field): each key is described once,
// and the reader, the writer and the known-key check are derived from the tables.
#pragma once

#include <string>
#include <vector>

#include "moe/moe_layer.h"
#include "util/json_fields.h"

namespace moe::arch {

// An ExpertAct spelled as parse_expert_act / expert_act_name spell it.
template <class S, class Get>
util::Field<S> act_field(std::string name, Get get) {
  return {name,
          [name, get](const util::JsonFields& f, S& s) {
            if (f.has(name)) get(s) = parse_expert_act(f.text(name));
          },
          [name, get](const S& s, nlohmann::json& j) { j[name] = expert_act_name(get(s)); }};
}

// Every RouterConfig field under its header name (the "router" object).
const std::vector<util::Field<RouterConfig>>& router_fields();
// Engine keys every model type takes, overriding what the model type implies: expert_act,
// shared_act, swiglu_alpha/limit, router, losses, soft_moe, switch_dropped (read only) and the
// DeepSeek balance-loss flags.
const std::vector<util::Field<MoeLayerConfig>>& engine_fields();
// The "custom" model type's own keys (hidden_size, num_experts, ...; src/arch/custom.cpp).
const std::vector<util::Field<MoeLayerConfig>>& custom_fields();

}  // namespace moe::arch
