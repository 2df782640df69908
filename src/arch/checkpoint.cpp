// Checkpoint tensor names of the decoder-only families (Llama layout): embeddings, per-layer
// attention (GQA with its biases, q/k norms and sinks, or DeepSeek's MLA), the two block norms,
// the MoE block under the entry's prefix or the dense MLP, the final norm and the LM head.
#include "arch/registry.h"

namespace moe::arch {

namespace {

using Out = std::vector<TensorSpec>;

void linear(Out& out, const std::string& name, int64_t n_out, int64_t n_in, bool bias) {
  out.push_back({name + ".weight", {n_out, n_in}});
  if (bias) out.push_back({name + ".bias", {n_out}});
}

void norm(Out& out, const std::string& name, int64_t n) { out.push_back({name + ".weight", {n}}); }

void gqa_attention(Out& out, const std::string& p, const AttentionArch& a, int64_t H) {
  const int64_t q = a.n_heads * a.head_dim, kv = a.n_kv_heads * a.head_dim;
  linear(out, p + "q_proj", q, H, a.q_bias);          // [nh·hd, H]
  linear(out, p + "k_proj", kv, H, a.k_bias);         // [nkv·hd, H]
  linear(out, p + "v_proj", kv, H, a.v_bias);
  linear(out, p + "o_proj", H, q, a.o_bias);          // [H, nh·hd]
  if (a.qk_norm == AttentionArch::QkNorm::per_head) {  // Qwen3: RMSNorm(head_dim)
    norm(out, p + "q_norm", a.head_dim);
    norm(out, p + "k_norm", a.head_dim);
  } else if (a.qk_norm == AttentionArch::QkNorm::full_width) {  // OLMoE: over every head
    norm(out, p + "q_norm", q);
    norm(out, p + "k_norm", kv);
  }
  if (a.sinks) out.push_back({p + "sinks", {a.n_heads}});
}

void mla_attention(Out& out, const std::string& p, const AttentionArch& a, int64_t H) {
  const int64_t qk = a.qk_nope_head_dim + a.qk_rope_head_dim;
  if (a.q_lora_rank > 0) {
    linear(out, p + "q_a_proj", a.q_lora_rank, H, a.mla_bias);
    norm(out, p + "q_a_layernorm", a.q_lora_rank);
    linear(out, p + "q_b_proj", a.n_heads * qk, a.q_lora_rank, false);
  } else {
    linear(out, p + "q_proj", a.n_heads * qk, H, false);
  }
  linear(out, p + "kv_a_proj_with_mqa", a.kv_lora_rank + a.qk_rope_head_dim, H, a.mla_bias);
  norm(out, p + "kv_a_layernorm", a.kv_lora_rank);
  linear(out, p + "kv_b_proj", a.n_heads * (a.qk_nope_head_dim + a.v_head_dim), a.kv_lora_rank, false);
  linear(out, p + "o_proj", H, a.n_heads * a.v_head_dim, a.mla_bias);
}

void dense_mlp(Out& out, const std::string& p, const FfnArch& f, int64_t H) {
  linear(out, p + "gate_proj", f.dense_hidden, H, f.dense_bias);
  linear(out, p + "up_proj", f.dense_hidden, H, f.dense_bias);
  linear(out, p + "down_proj", H, f.dense_hidden, f.dense_bias);
}

}  // namespace

void append_tensors(Out& out, const std::string& prefix, const std::vector<WeightBinding>& b) {
  for (const WeightBinding& w : b) out.push_back({prefix + w.name, w.shape});
}

Out decoder_checkpoint(const ArchEntry& entry, const JsonFields& f, const ModelArch& m) {
  const int64_t H = m.hidden;
  Out out;
  out.push_back({"model.embed_tokens.weight", {m.vocab, H}});
  std::vector<WeightBinding> moe;  // the same in every MoE layer
  for (size_t i = 0; i < m.layers.size(); ++i) {
    const LayerArch& l = m.layers[i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    if (l.self_attn.kind == AttentionArch::Kind::mla) {
      mla_attention(out, p + "self_attn.", l.self_attn, H);
    } else {
      gqa_attention(out, p + "self_attn.", l.self_attn, H);
    }
    if (l.ffn.moe) {
      if (moe.empty()) moe = entry.moe_bindings(moe_layer_of(entry, f), false);
      append_tensors(out, p + entry.moe_block, moe);
    } else {
      dense_mlp(out, p + "mlp.", l.ffn, H);
    }
    norm(out, p + "input_layernorm", H);
    norm(out, p + "post_attention_layernorm", H);
  }
  norm(out, "model.norm", H);
  if (!m.tied_head) out.push_back({"lm_head.weight", {m.vocab, H}});
  return out;
}

}  // namespace moe::arch
