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
  read_moe_sizes(f, c, "hidden_size", "num_experts", "intermediate_size");
  c.router.normalize = f.flag_or("norm_topk_prob", false);
  hf_router_loss(f, c, "load_balancing", 0.01, false);
}

ModelArch distill(const JsonFields& f) {
  ModelArch m = decoder_base(f, "olmoe");
  AttentionArch a = gqa(f, m.hidden, 0, 0);
  a.q_bias = a.k_bias = a.v_bias = a.o_bias = f.flag_or("attention_bias", false);
  a.qk_norm = AttentionArch::QkNorm::full_width;
  const FfnArch ffn = moe_ffn(moe_layer_of(kOlmoe, f));
  for (LayerArch& l : m.layers) l.self_attn = a, l.ffn = ffn;
  return m;
}

}  // namespace

const ArchEntry kOlmoe = {"olmoe", moe_layer, gate_proj_bindings, true, "mlp.", nullptr, distill};

}  // namespace moe::arch
