// Model flags shared by `moe train` and `moe generate --untrained` (names as the estimator's and
// the reference scripts': --emb_dim, --hidden_dim, --num_experts, --n_heads, --n_layers, ...).
#pragma once

#include <CLI/CLI.hpp>

#include "moe/gpt_presets.h"

namespace moe::cli {

inline void add_model_flags(CLI::App* c, GptPreset& p) {
  c->add_option("--emb_dim", p.d_model, "Model width d")->capture_default_str();
  c->add_option("--n_layers", p.n_layers, "Transformer blocks")->capture_default_str();
  c->add_option("--n_heads", p.n_heads, "Attention heads")->capture_default_str();
  c->add_option("--n_kv_heads", p.n_kv_heads, "Key/value heads (grouped-query attention); 0 = n_heads")->capture_default_str();
  c->add_option("--context", p.context, "Longest sequence (positions, KV cache)")->capture_default_str();
  c->add_option("--vocab_size", p.vocab_size, "Vocabulary (bytes: 256; the masked objective needs 257)")->capture_default_str();
  c->add_option("--pos", p.pos, "Positions: rope or learned")->capture_default_str();
  c->add_option("--norm", p.norm, "rmsnorm or layernorm")->capture_default_str();
  c->add_flag("--untied", p.untied, "Separate output head (default: tied to the embeddings)");
  c->add_flag("--attn_bias", p.attn_bias, "Bias on the attention output projection");
  c->add_flag("--encoder", p.encoder, "Bidirectional attention (masked-byte objective; expert_choice, soft)");
  c->add_option("--act", p.act, "FFN activation: swiglu, gelu, gelu_tanh, relu")->capture_default_str();
  c->add_option("--hidden_dim", p.hidden, "Dense FFN width, or each expert's width")->capture_default_str();
  c->add_option("--num_experts", p.n_experts, "Experts per MoE layer (0 = dense model)")->capture_default_str();
  c->add_option("--top_k,--num_experts_per_tok", p.top_k, "Experts per token")->capture_default_str();
  c->add_option("--router", p.router, "softmax, switch, noisy, sigmoid, expert_choice, soft")->capture_default_str();
  c->add_flag_callback("--no_renorm", [&v = p.renorm] { v = false; }, "softmax/noisy: do not renormalise the top-k weights (Qwen style)");
  c->add_option("--shared_hidden", p.shared_hidden, "Shared expert width (0 = none)")->capture_default_str();
  c->add_option("--capacity_factor", p.capacity_factor, "Token choice: 0 = dropless; expert_choice: capacity factor")->capture_default_str();
  c->add_option("--aux_coef", p.aux_coef, "Balance-loss coefficient")->capture_default_str();
  c->add_option("--z_coef", p.z_coef, "Router z-loss coefficient")->capture_default_str();
  c->add_option("--soft_slots", p.soft_slots, "Soft MoE slots per expert")->capture_default_str();
  c->add_option("--first_dense", p.first_dense, "The first n layers stay dense")->capture_default_str();
  c->add_option("--moe_every", p.moe_every, "Every n-th layer after those is MoE")->capture_default_str();
}

}  // namespace moe::cli
