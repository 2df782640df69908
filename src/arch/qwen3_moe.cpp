// qwen3_moe (transformers configuration_qwen3_moe.py / modeling_qwen3_moe.py). Defaults for
// absent keys: num_key_value_heads 4, head_dim hidden / heads (the attention's getattr; Hub
// configs give 128), attention_bias false (q/k/v/o), q_norm / k_norm RMSNorm(head_dim),
// norm_topk_prob false, no shared expert, router_aux_loss_coef 0.001 with output_router_logits
// false, decoder_sparse_step 1, mlp_only_layers [], use_sliding_window false (then every layer
// slides, sliding_window 4096). Names under model.layers.{i}.mlp. as Qwen2-MoE without shared.
#include "arch/bindings.h"
#include "arch/registry.h"

namespace moe::arch {

namespace {

ModelArch distill(const JsonFields& f) {
  ModelArch m = decoder_base(f, "qwen3_moe");
  qwen_layers(f, m, gqa(f, m.hidden, {.kv_heads = 4, .bias = false, .qk_norm = AttentionArch::QkNorm::per_head}),
              moe_ffn(moe_layer_of(kQwen3Moe, f)));
  const bool use_window = f.flag_or("use_sliding_window", false);
  apply_windows(f, m, [&](int64_t) { return use_window; }, 4096);
  return m;
}

}  // namespace

const ArchEntry kQwen3Moe = {
    "qwen3_moe",
    [](const JsonFields& f, MoeLayerConfig& c) { softmax_topk_layer(f, c, "num_experts", "moe_intermediate_size", 0.001); },
    gate_proj_bindings, true, "mlp.", nullptr, distill};

}  // namespace moe::arch
