// olmoe (transformers configuration_olmoe.py / modeling_olmoe.py). Defaults for absent keys:
// num_key_value_heads None -> heads, attention_bias false, q_norm over the whole q width and
// k_norm over the whole k width, every layer MoE with experts of intermediate_size,
// norm_topk_prob false, router_aux_loss_coef 0.01 with output_router_logits false.
// Names under model.layers.{i}.mlp.: gate.weight, experts.{e}.{gate,up,down}_proj.
#include "arch/bindings.h"
#include "arch/registry.h"

namespace moe::arch {

namespace {

void moe_layer(const JsonFields& f, MoeLayerConfig& c) {
  softmax_topk_layer(f, c, "num_experts", "intermediate_size", 0.01);
}

ModelArch distill(const JsonFields& f) {
  ModelArch m = decoder_base(f, "olmoe");
  AttentionArch a = gqa(f, m.hidden, 0, 0);
  attention_bias(f, a, false);
  a.qk_norm = AttentionArch::QkNorm::full_width;
  uniform_layers(m, a, moe_ffn(moe_layer_of(kOlmoe, f)));
  return m;
}

}  // namespace

const ArchEntry kOlmoe = {"olmoe", moe_layer, gate_proj_bindings, true, "mlp.", nullptr, distill};

}  // namespace moe::arch
