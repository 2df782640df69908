// olmoe (transformers configuration_olmoe.py / modeling_olmoe.py). Defaults for absent keys:
// num_key_value_heads None -> heads, attention_bias false, q_norm over the whole q width and
// k_norm over the whole k width, every layer MoE with experts of intermediate_size,
// norm_topk_prob false, router_aux_loss_coef 0.01 with output_router_logits false.
// Names under model.layers.{i}.mlp.: gate.weight, experts.{e}.{gate,up,down}_proj.
#include "arch/bindings.h"
#include "arch/registry.h"

namespace moe::arch {

const ArchEntry kOlmoe = {
    "olmoe",
    [](const JsonFields& f, MoeLayerConfig& c) { softmax_topk_layer(f, c, "num_experts", "intermediate_size", 0.01); },
    gate_proj_bindings, true, "mlp.", nullptr,
    [](const JsonFields& f) {
      ModelArch m = decoder_base(f, "olmoe");
      uniform_layers(m, gqa(f, m.hidden, {.bias = false, .qk_norm = AttentionArch::QkNorm::full_width}),
                     moe_ffn(moe_layer_of(kOlmoe, f)));
      return m;
    }};

}  // namespace moe::arch
