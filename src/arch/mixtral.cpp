// mixtral (transformers configuration_mixtral.py / modeling_mixtral.py). Defaults for absent
// keys: num_key_value_heads 8 (null -> heads), head_dim hidden / heads, sliding_window none,
// router_jitter_noise 0.0, router_aux_loss_coef 0.001 with output_router_logits false.
// Top-k of the softmax, always renormalised. Hub names under model.layers.{i}.block_sparse_moe.:
// gate.weight, experts.{e}.w1 (gate) / w3 (up) / w2 (down); v5 fused experts.gate_up_proj.
#include "arch/bindings.h"
#include "arch/registry.h"

namespace moe::arch {

namespace {

void moe_layer(const JsonFields& f, MoeLayerConfig& c) {
  read_moe_sizes(f, c, "hidden_size", "num_local_experts", "intermediate_size");
  c.router.normalize = true;
  c.jitter = f.number_or("router_jitter_noise", 0.0);
  hf_router_loss(f, c, "load_balancing", 0.001, false);
}

std::vector<WeightBinding> bindings(const MoeLayerConfig& c, bool fused) {
  return named_moe_bindings({"gate.weight", nullptr, "gate.e_score_correction_bias", "experts.", ".w1.weight", ".w3.weight", ".w2.weight",
                             nullptr, nullptr},
                            c, fused);
}

ModelArch distill(const JsonFields& f) {
  ModelArch m = decoder_base(f, "mixtral");
  const AttentionArch a = gqa(f, m.hidden, {.kv_heads = 8});
  uniform_layers(m, a, moe_ffn(moe_layer_of(kMixtral, f)));
  const bool windowed = f.has("sliding_window");
  apply_windows(f, m, [&](int64_t) { return windowed; }, 0);
  return m;
}

}  // namespace

const ArchEntry kMixtral = {"mixtral", moe_layer, bindings, true, "block_sparse_moe.", nullptr, distill};

}  // namespace moe::arch
