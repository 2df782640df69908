// gpt_oss (transformers configuration_gpt_oss.py / modeling_gpt_oss.py). Defaults for absent
// keys: num_key_value_heads 8, head_dim 64, attention_bias true (q/k/v/o), one sink logit per
// head, sliding_window 128 on the even layers (layer_types), swiglu_alpha 1.702, swiglu_limit
// 7.0, router_aux_loss_coef 0.001 with output_router_logits false. The router Linear has a bias;
// softmax over the top-k logits. OpenAI's own config spells the experts per token
// experts_per_token. Names under model.layers.{i}.mlp.: router.weight, router.bias and the fused,
// transposed experts.gate_up_proj [E, H, 2I] (gate/up interleaved), gate_up_proj_bias [E, 2I],
// down_proj [E, I, H], down_proj_bias [E, H] (the Hub stores the two matrices MXFP4-packed).
#include "arch/bindings.h"
#include "arch/registry.h"

namespace moe::arch {

namespace {

void moe_layer(const JsonFields& f, MoeLayerConfig& c) {
  read_moe_sizes(f, c, "hidden_size", "num_local_experts", "intermediate_size",
                 f.has("num_experts_per_tok") ? "num_experts_per_tok" : "experts_per_token");
  c.expert.act = ExpertAct::gpt_oss_swiglu;
  c.expert.bias = true;
  c.router.logit_bias = true;
  c.router.normalize = true;
  hf_router_loss(f, c, "load_balancing", 0.001, false);
}

std::vector<WeightBinding> bindings(const MoeLayerConfig& c, bool) {
  const int64_t E = c.router.n_experts, H = c.d_model, I = c.expert.hidden;
  return {whole("router.weight", {E, H}, &MoeLayerWeights::router_w),
          whole("router.bias", {E}, &MoeLayerWeights::router_b),
          interleaved_gate_up(E, I, H),
          interleaved_gate_up_bias(E, I),
          transposed("experts.down_proj", E, I, H, &MoeLayerWeights::down),
          whole("experts.down_proj_bias", {E, H}, &MoeLayerWeights::down_bias)};
}

ModelArch distill(const JsonFields& f) {
  ModelArch m = decoder_base(f, "gpt_oss");
  AttentionArch a = gqa(f, m.hidden, {.kv_heads = 8, .head_dim = 64, .bias = true});
  a.sinks = true;
  uniform_layers(m, a, moe_ffn(moe_layer_of(kGptOss, f)));
  apply_windows(f, m, [](int64_t i) { return i % 2 == 0; }, 128);
  return m;
}

}  // namespace

const ArchEntry kGptOss = {"gpt_oss", moe_layer, bindings, false, "mlp.", nullptr, distill};

}  // namespace moe::arch
