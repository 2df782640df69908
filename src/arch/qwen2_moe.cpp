// qwen2_moe (transformers configuration_qwen2_moe.py / modeling_qwen2_moe.py). Defaults for
// absent keys: num_key_value_heads 16, qkv_bias true (q/k/v biased, o_proj not), norm_topk_prob
// false, shared_expert_intermediate_size 5632 (0 here: no shared expert), router_aux_loss_coef
// 0.001 with output_router_logits false, decoder_sparse_step 1, mlp_only_layers [],
// use_sliding_window false, sliding_window 4096, max_window_layers 28; the class's layer_types
// rule slides the even layers below max_window_layers. Names under model.layers.{i}.mlp.: gate,
// experts.{e}.{gate,up,down}_proj, shared_expert.{gate,up,down}_proj, shared_expert_gate.
#include "arch/bindings.h"
#include "arch/registry.h"

namespace moe::arch {

namespace {

void moe_layer(const JsonFields& f, MoeLayerConfig& c) {
  softmax_topk_layer(f, c, "num_experts", "moe_intermediate_size", 0.001);
  c.shared_hidden = f.non_negative_or("shared_expert_intermediate_size", 5632);
  c.shared_gate = c.shared_hidden > 0;  // sigmoid(x·w) scales the shared expert
}

std::vector<WeightBinding> bindings(const MoeLayerConfig& c, bool fused) {
  return named_moe_bindings({"gate.weight", nullptr, "gate.e_score_correction_bias", "experts.", ".gate_proj.weight", ".up_proj.weight",
                             ".down_proj.weight", "shared_expert.", "shared_expert_gate.weight"},
                            c, fused);
}

ModelArch distill(const JsonFields& f) {
  ModelArch m = decoder_base(f, "qwen2_moe");
  AttentionArch a = gqa(f, m.hidden, {.kv_heads = 16});
  a.q_bias = a.k_bias = a.v_bias = f.flag_or("qkv_bias", true);
  qwen_layers(f, m, a, moe_ffn(moe_layer_of(kQwen2Moe, f)));
  const bool use_window = f.flag_or("use_sliding_window", false);
  const int64_t max_window_layers = f.non_negative_or("max_window_layers", 28);
  apply_windows(f, m, [&](int64_t i) { return use_window && i % 2 == 0 && i < max_window_layers; }, 4096);
  return m;
}

}  // namespace

const ArchEntry kQwen2Moe = {"qwen2_moe", moe_layer, bindings, true, "mlp.", nullptr, distill};

}  // namespace moe::arch
