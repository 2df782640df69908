// The architecture registry: one ArchEntry per Hugging Face model_type (one file each under
// src/arch/), plus the engine's own "custom" layer format, listed in registry.cpp. Shared pieces
// of the entries (GQA attention, sliding windows, decoder checkpoints, MoE key reading) are here.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "moe/arch.h"
#include "moe/layer_format.h"
#include "util/json_fields.h"

namespace moe::arch {

using util::JsonFields;

struct ArchEntry {
  const char* model_type;
  // (a) Config mapping: the model type's keys -> the MoE layer, absent keys taking the HF
  // config class's defaults; not validated here. Null for a dense model type (llama).
  void (*moe_layer)(const JsonFields& config, MoeLayerConfig& layer);
  // (b) Tensor names: the MoE block's HF names (below `moe_block` in a decoder layer), per expert
  // or in the fused v5 layout; `fused_layout` false where the model has only one layout.
  std::vector<WeightBinding> (*moe_bindings)(const MoeLayerConfig& layer, bool fused);
  bool fused_layout;
  const char* moe_block;  // "block_sparse_moe." (mixtral), "mlp." (most)
  // The whole checkpoint; null: the decoder-only layout of decoder_checkpoint().
  std::vector<TensorSpec> (*checkpoint)(const JsonFields& config, const ModelArch& arch);
  // (c) Distiller for the estimator; null for "custom" (a layer format, not a model).
  ModelArch (*distill)(const JsonFields& config);
};

std::span<const ArchEntry* const> arch_entries();
const ArchEntry* find_arch(std::string_view model_type);

extern const ArchEntry kMixtral, kQwen2Moe, kQwen3Moe, kOlmoe, kDeepseekV2, kDeepseekV3, kGptOss,
    kSwitchTransformers, kLlama, kCustom;

// ---- config mapping helpers --------------------------------------------------------------

// The sizes every MoE layer has: hidden, expert count and width (positive), and the experts per
// token (checked by the router's validation, which names it top_k; top_k_key null: 1, Switch).
void read_moe_sizes(const JsonFields& f, MoeLayerConfig& c, const char* hidden_key, const char* experts_key,
                    const char* width_key, const char* top_k_key = "num_experts_per_tok");
// HF's pooled router loss: router_aux_loss_coef enters the loss only with output_router_logits.
void hf_router_loss(const JsonFields& f, MoeLayerConfig& c, const char* loss, double default_coef,
                    bool default_output_router_logits);
void set_loss(MoeLayerConfig& c, const char* name, double coef);  // 0 = not computed
// Qwen2/3-MoE and OLMoE: top-k of the full softmax, renormalised only with norm_topk_prob
// (default false), HF's pooled loss.
void softmax_topk_layer(const JsonFields& f, MoeLayerConfig& c, const char* experts_key, const char* width_key,
                        double default_aux_coef);
MoeLayerConfig moe_layer_of(const ArchEntry& entry, const JsonFields& f);

// ---- distiller helpers -------------------------------------------------------------------

// More layers than any model has: refused before a ModelArch of that many entries is built.
constexpr int64_t kMaxLayers = 100000;

// A GQA attention's class defaults. kv_heads, head_dim: absent key -> this (0 = the attention
// heads / hidden / heads), null -> the derived values. bias: the class reads `attention_bias`
// (a bias on q/k/v/o: Llama, Qwen3-MoE, OLMoE, GPT-OSS) with this default; unset = no such key.
struct GqaDefaults {
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  std::optional<bool> bias = std::nullopt;
  AttentionArch::QkNorm qk_norm = AttentionArch::QkNorm::none;
};
AttentionArch gqa(const JsonFields& f, int64_t hidden, const GqaDefaults& defaults);
// hidden_size, vocab_size, tie_word_embeddings (false), num_hidden_layers.
ModelArch decoder_base(const JsonFields& f, const std::string& type);
FfnArch dense_ffn(int64_t hidden);
// Every layer the same (Llama, Mixtral, OLMoE, GPT-OSS).
void uniform_layers(ModelArch& m, const AttentionArch& a, const FfnArch& ffn);
// Sliding windows: an explicit layer_types list wins; otherwise the model's own rule.
// default_window: the class's sliding_window default (0: none, the key is then required).
void apply_windows(const JsonFields& f, ModelArch& m, const std::function<bool(int64_t)>& sliding_by_rule,
                   int64_t default_window);

// Qwen2/3-MoE placement: a layer is sparse unless listed in mlp_only_layers (default []) or off
// decoder_sparse_step (default 1); dense layers use intermediate_size.
void qwen_layers(const JsonFields& f, ModelArch& m, const AttentionArch& a, const FfnArch& sparse);

// DeepSeek-V2/V3: MLA attention (q_lora_rank absent -> 1536, null -> plain q_proj; the other
// MLA sizes required; attention_bias false) and the layer placement: MoE from
// first_k_dense_replace on, every moe_layer_freq-th layer (default 1); n_routed_experts null: dense.
ModelArch deepseek_model(const JsonFields& f, const ArchEntry& entry, int64_t first_k_dense_default);
// Both DeepSeeks' MoE layer: sizes, n_shared_experts experts of the routed width fused into one
// (null: none), routed_scaling_factor, normalisation with +1e-20.
void deepseek_moe_layer(const JsonFields& f, MoeLayerConfig& c, int64_t default_shared, double default_scale);

// ---- tensor name helpers -----------------------------------------------------------------

// model.embed_tokens, model.layers.{i}.{self_attn, input_layernorm, post_attention_layernorm,
// <moe_block> | mlp}, model.norm, lm_head (unless tied).
std::vector<TensorSpec> decoder_checkpoint(const ArchEntry& entry, const JsonFields& f, const ModelArch& arch);
// Appends the external tensors of `b`, each name with `prefix` in front.
void append_tensors(std::vector<TensorSpec>& out, const std::string& prefix, const std::vector<WeightBinding>& b);

}  // namespace moe::arch
