// "custom": the engine's own layer format, not a Hugging Face model. The routing is set entirely
// by the "router" object; weights use the canonical names (docs/layer-format.md). Unknown keys
// are an error, since no HF config.json is read this way.
#include "arch/bindings.h"
#include "arch/layer_fields.h"
#include "arch/registry.h"

namespace moe::arch {

const std::vector<util::Field<MoeLayerConfig>>& custom_fields() {
  using C = MoeLayerConfig;
  static const std::vector<util::Field<C>> fields = {
      util::field<C>("hidden_size", [](auto& c) -> auto& { return c.d_model; }),
      util::field<C>("num_experts", [](auto& c) -> auto& { return c.router.n_experts; }),
      util::field<C>("num_experts_per_tok", [](auto& c) -> auto& { return c.router.top_k; }),
      util::field<C>("intermediate_size", [](auto& c) -> auto& { return c.expert.hidden; }),
      util::field<C>("shared_intermediate_size", [](auto& c) -> auto& { return c.shared_hidden; }),
      util::field<C>("shared_gate", [](auto& c) -> auto& { return c.shared_gate; }),
      util::field<C>("expert_bias", [](auto& c) -> auto& { return c.expert.bias; }),
      util::field<C>("router_jitter_noise", [](auto& c) -> auto& { return c.jitter; }),
  };
  return fields;
}

namespace {

void moe_layer(const JsonFields& f, MoeLayerConfig& c) {
  std::vector<std::string> known = util::field_names(custom_fields());
  for (const std::string& k : util::field_names(engine_fields())) known.push_back(k);
  known.push_back("model_type");
  f.only(known);
  for (const char* required : {"hidden_size", "num_experts", "intermediate_size"}) f.integer(required);
  util::read_fields(custom_fields(), f, c);
}

}  // namespace

const ArchEntry kCustom = {"custom", moe_layer, [](const MoeLayerConfig& c, bool) { return canonical_bindings(c); },
                           false, "mlp.", nullptr, nullptr};

}  // namespace moe::arch
