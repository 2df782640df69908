// Pieces the registry entries share: reading the MoE sizes and HF's router loss, and the
// decoder-only skeleton (GQA attention, sliding windows) of the distillers.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "arch/registry.h"

namespace moe::arch {

void read_moe_sizes(const JsonFields& f, MoeLayerConfig& c, const char* hidden_key, const char* experts_key,
                    const char* width_key, const char* top_k_key) {
  c.d_model = f.positive(hidden_key);
  c.router.n_experts = f.positive(experts_key);
  c.router.top_k = top_k_key ? f.integer(top_k_key) : 1;
  c.expert.hidden = f.positive(width_key);
}

void set_loss(MoeLayerConfig& c, const char* name, double coef) {
  if (coef != 0) c.losses.coef[name] = coef;
}

void hf_router_loss(const JsonFields& f, MoeLayerConfig& c, const char* loss, double default_coef,
                    bool default_output_router_logits) {
  if (f.flag_or("output_router_logits", default_output_router_logits)) {
    set_loss(c, loss, f.number_or("router_aux_loss_coef", default_coef));
  }
}

void softmax_topk_layer(const JsonFields& f, MoeLayerConfig& c, const char* experts_key, const char* width_key,
                        double default_aux_coef) {
  read_moe_sizes(f, c, "hidden_size", experts_key, width_key);
  c.router.normalize = f.flag_or("norm_topk_prob", false);
  hf_router_loss(f, c, "load_balancing", default_aux_coef, false);
}

MoeLayerConfig moe_layer_of(const ArchEntry& entry, const JsonFields& f) {
  MoeLayerConfig c;
  entry.moe_layer(f, c);
  return c;
}

AttentionArch gqa(const JsonFields& f, int64_t hidden, const GqaDefaults& d) {
  const int64_t default_kv_heads = d.kv_heads, default_head_dim = d.head_dim;
  AttentionArch a;
  a.n_heads = f.positive("num_attention_heads");
  a.n_kv_heads = f.positive_or("num_key_value_heads", f.is_null("num_key_value_heads") || default_kv_heads == 0
                                                          ? a.n_heads
                                                          : default_kv_heads);
  if (a.n_heads % a.n_kv_heads != 0) {
    f.fail("num_attention_heads=" + std::to_string(a.n_heads) + " is not a multiple of num_key_value_heads=" +
           std::to_string(a.n_kv_heads));
  }
  const bool derived = !f.has("head_dim") && (f.is_null("head_dim") || default_head_dim == 0);
  if (derived && hidden % a.n_heads != 0) {
    f.fail("hidden_size=" + std::to_string(hidden) + " is not divisible by num_attention_heads=" +
           std::to_string(a.n_heads) + " and there is no 'head_dim'");
  }
  a.head_dim = f.positive_or("head_dim", derived ? hidden / a.n_heads : default_head_dim);
  if (d.bias) a.q_bias = a.k_bias = a.v_bias = a.o_bias = f.flag_or("attention_bias", *d.bias);
  a.qk_norm = d.qk_norm;
  return a;
}

void apply_windows(const JsonFields& f, ModelArch& m, const std::function<bool(int64_t)>& sliding_by_rule,
                   int64_t default_window) {
  std::vector<std::string> types = f.texts_or_empty("layer_types");
  if (!types.empty() && types.size() != m.layers.size()) {
    f.fail("'layer_types' has " + std::to_string(types.size()) + " entries for num_hidden_layers=" +
           std::to_string(m.layers.size()));
  }
  for (size_t i = 0; i < m.layers.size(); ++i) {
    if (!types.empty() && types[i] != "sliding_attention" && types[i] != "full_attention") {
      f.fail("'layer_types' entry '" + types[i] + "' is neither sliding_attention nor full_attention");
    }
    const bool sliding = types.empty() ? sliding_by_rule(static_cast<int64_t>(i)) : types[i] == "sliding_attention";
    if (sliding && !f.is_null("sliding_window")) {  // null: the class's "no window"
      m.layers[i].window = default_window > 0 ? f.positive_or("sliding_window", default_window)
                                              : f.positive("sliding_window");
    }
  }
}

ModelArch decoder_base(const JsonFields& f, const std::string& type) {
  ModelArch m;
  m.model_type = type;
  m.hidden = f.positive("hidden_size");
  m.vocab = f.positive("vocab_size");
  m.tied_head = f.flag_or("tie_word_embeddings", false);
  const int64_t layers = f.positive("num_hidden_layers");
  if (layers > kMaxLayers) {
    f.fail("num_hidden_layers=" + std::to_string(layers) + " is beyond any model (at most " + std::to_string(kMaxLayers) +
           ")");
  }
  m.layers.resize(static_cast<size_t>(layers));
  return m;
}

FfnArch dense_ffn(int64_t hidden) {
  FfnArch f;
  f.dense_hidden = hidden;
  return f;
}

void uniform_layers(ModelArch& m, const AttentionArch& a, const FfnArch& ffn) {
  for (LayerArch& l : m.layers) l.self_attn = a, l.ffn = ffn;
}

FfnArch moe_ffn(const MoeLayerConfig& c) {
  FfnArch f;
  f.moe = true;
  f.matrices = is_gated(c.expert.act) ? 3 : 2;
  f.n_experts = c.router.n_experts;
  f.top_k = c.router.top_k;
  f.expert_hidden = c.expert.hidden;
  f.expert_bias = c.expert.bias;
  f.router_bias = c.router.logit_bias;
  f.router_score_bias = c.router.selection_bias;
  f.n_shared_experts = c.shared_hidden > 0 ? 1 : 0;
  f.shared_hidden = c.shared_hidden;
  f.shared_gate = c.shared_gate;
  return f;
}

void qwen_layers(const JsonFields& f, ModelArch& m, const AttentionArch& a, const FfnArch& sparse) {
  const int64_t step = f.positive_or("decoder_sparse_step", 1);  // HF divides by it
  const std::vector<int64_t> mlp_only = f.integers_or_empty("mlp_only_layers");
  const int64_t n = static_cast<int64_t>(m.layers.size());
  for (const int64_t l : mlp_only) {
    if (l < 0 || l >= n) {
      f.fail("mlp_only_layers names layer " + std::to_string(l) + ", outside [0, num_hidden_layers=" +
             std::to_string(n) + ")");
    }
  }
  for (size_t i = 0; i < m.layers.size(); ++i) {
    const int64_t l = static_cast<int64_t>(i);
    const bool dense = std::find(mlp_only.begin(), mlp_only.end(), l) != mlp_only.end() || (l + 1) % step != 0;
    m.layers[i].self_attn = a;
    m.layers[i].ffn = dense ? dense_ffn(f.positive("intermediate_size")) : sparse;
  }
}

void deepseek_moe_layer(const JsonFields& f, MoeLayerConfig& c, int64_t default_shared, double default_scale) {
  read_moe_sizes(f, c, "hidden_size", "n_routed_experts", "moe_intermediate_size");
  const int64_t shared = f.is_null("n_shared_experts") ? 0 : f.non_negative_or("n_shared_experts", default_shared);
  c.shared_hidden = shared * c.expert.hidden;
  c.router.scale = f.number_or("routed_scaling_factor", default_scale);
  c.router.norm_eps = 1e-20;
}

ModelArch deepseek_model(const JsonFields& f, const ArchEntry& entry, int64_t first_k_dense_default) {
  ModelArch m = decoder_base(f, entry.model_type);
  AttentionArch a;
  a.kind = AttentionArch::Kind::mla;
  a.n_heads = a.n_kv_heads = f.positive("num_attention_heads");
  a.q_lora_rank = f.is_null("q_lora_rank") ? 0 : f.positive_or("q_lora_rank", 1536);
  a.kv_lora_rank = f.positive("kv_lora_rank");
  a.qk_nope_head_dim = f.positive("qk_nope_head_dim");
  a.qk_rope_head_dim = f.positive("qk_rope_head_dim");
  a.v_head_dim = f.positive("v_head_dim");
  a.head_dim = a.qk_nope_head_dim + a.qk_rope_head_dim;
  a.mla_bias = f.flag_or("attention_bias", false);

  const bool has_experts = !f.is_null("n_routed_experts");
  FfnArch sparse;
  if (has_experts) {
    const MoeLayerConfig layer = moe_layer_of(entry, f);
    sparse = moe_ffn(layer);
    if (layer.shared_hidden > 0) {  // n_shared_experts experts of the routed width, fused into one
      sparse.n_shared_experts = layer.shared_hidden / layer.expert.hidden;
      sparse.shared_hidden = layer.expert.hidden;
    }
  }
  const int64_t first_dense = f.non_negative_or("first_k_dense_replace", first_k_dense_default);
  const int64_t freq = f.positive_or("moe_layer_freq", 1);
  if (has_experts && first_dense >= static_cast<int64_t>(m.layers.size())) {
    f.fail("first_k_dense_replace=" + std::to_string(first_dense) + " leaves no MoE layer in num_hidden_layers=" +
           std::to_string(m.layers.size()));
  }
  for (size_t i = 0; i < m.layers.size(); ++i) {
    const int64_t l = static_cast<int64_t>(i);
    m.layers[i].self_attn = a;
    m.layers[i].ffn = has_experts && l >= first_dense && l % freq == 0 ? sparse : dense_ffn(f.positive("intermediate_size"));
  }
  return m;
}

}  // namespace moe::arch
