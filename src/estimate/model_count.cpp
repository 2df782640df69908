// Counts parameters, KV cache and per-token FFN activations of a ModelArch.
#include <algorithm>

#include "moe/dtype.h"
#include "moe/error.h"
#include "moe/model_count.h"
#include "util/checked.h"

namespace moe::estimate {

namespace {

using util::Arith;

int64_t attention_params(const AttentionArch& a, int64_t h, const Arith& x) {
  if (a.kind == AttentionArch::Kind::mla) {
    const int64_t qk = a.qk_nope_head_dim + a.qk_rope_head_dim;
    int64_t n = 0;
    if (a.q_lora_rank > 0) {  // q_a_proj (+bias), q_a_layernorm, q_b_proj
      n = x.add(x.mul(h, a.q_lora_rank), a.mla_bias ? a.q_lora_rank : 0);
      n = x.add(n, a.q_lora_rank);
      n = x.add(n, x.mul(a.q_lora_rank, a.n_heads, qk));
    } else {  // q_proj
      n = x.mul(h, a.n_heads, qk);
    }
    const int64_t kv_a = a.kv_lora_rank + a.qk_rope_head_dim;  // kv_a_proj_with_mqa (+bias)
    n = x.add(n, x.add(x.mul(h, kv_a), a.mla_bias ? kv_a : 0));
    n = x.add(n, a.kv_lora_rank);  // kv_a_layernorm
    n = x.add(n, x.mul(a.kv_lora_rank, a.n_heads, a.qk_nope_head_dim + a.v_head_dim));  // kv_b_proj
    n = x.add(n, x.add(x.mul(a.n_heads, a.v_head_dim, h), a.mla_bias ? h : 0));         // o_proj (+bias)
    return n;
  }
  const int64_t q = x.mul(a.n_heads, a.head_dim);
  const int64_t kv = x.mul(a.n_kv_heads, a.head_dim);
  int64_t n = x.add(x.mul(h, q), x.mul(2, h, kv));
  n = x.add(n, x.mul(q, h));
  n += (a.q_bias ? q : 0) + (a.k_bias ? kv : 0) + (a.v_bias ? kv : 0) + (a.o_bias ? h : 0);
  if (a.qk_norm == AttentionArch::QkNorm::per_head) n = x.add(n, 2 * a.head_dim);
  if (a.qk_norm == AttentionArch::QkNorm::full_width) n = x.add(n, q + kv);
  if (a.sinks) n = x.add(n, a.n_heads);
  return x.add(n, x.mul(a.relative_buckets, a.n_heads));
}

// One FFN (dense MLP or one expert) of width f: m matrices, optional biases.
int64_t mlp_params(int64_t m, int64_t h, int64_t f, bool bias, const Arith& x) {
  return x.add(x.mul(m, h, f), bias ? x.add(x.mul(m - 1, f), h) : 0);
}

// Elements per token one decoder layer's self-attention caches (stored, expanded).
std::pair<int64_t, int64_t> kv_elems(const AttentionArch& a) {
  if (a.kind == AttentionArch::Kind::mla) {
    return {a.kv_lora_rank + a.qk_rope_head_dim,
            a.n_heads * (a.qk_nope_head_dim + a.qk_rope_head_dim) + a.n_heads * a.v_head_dim};
  }
  return {2 * a.n_kv_heads * a.head_dim, 2 * a.n_kv_heads * a.head_dim};
}

// Activations a training forward keeps for backward, per token, for one FFN call
// (docs/estimator.md): inputs, hidden (gate, up, product — or pre/post activation), outputs.
int64_t hidden_tensors(const FfnArch& f) { return f.matrices == 3 ? 3 : 2; }

ActivationCount dense_activation(const std::string& what, int64_t h, int64_t f_hidden, int64_t tensors, int64_t b) {
  ActivationCount a;
  a.what = what;
  a.hidden = f_hidden;
  a.breakdown = {{"input", h * b}, {"hidden (" + std::to_string(tensors) + " tensors)", tensors * f_hidden * b}};
  for (const auto& [name, bytes] : a.breakdown) a.bytes_per_token += bytes;
  return a;
}

ActivationCount moe_activation(const FfnArch& f, int64_t h, int64_t b) {
  const int64_t t = hidden_tensors(f);
  ActivationCount a;
  a.what = "MoE layer";
  a.hidden = f.top_k * f.expert_hidden + f.n_shared_experts * f.shared_hidden;
  a.breakdown = {
      {"input", h * b},
      {"router logits (fp32)", f.n_experts * 4},
      {"top-k weights (fp32) + ids (int32)", f.top_k * 8},
      {"gathered expert inputs", f.top_k * h * b},
      {"expert hidden (" + std::to_string(t) + " tensors)", f.top_k * t * f.expert_hidden * b},
      {"expert outputs", f.top_k * h * b},
  };
  if (f.n_shared_experts > 0) {
    a.breakdown.push_back({"shared expert hidden", f.n_shared_experts * t * f.shared_hidden * b});
    a.breakdown.push_back({"shared expert output", h * b + (f.shared_gate ? 4 : 0)});
  }
  for (const auto& [name, bytes] : a.breakdown) a.bytes_per_token += bytes;
  return a;
}

}  // namespace

ModelCount count_model(const ModelArch& arch, const std::string& dtype, int64_t context) {
  std::optional<int64_t> bytes = dtype_bytes(dtype);
  if (!bytes) throw InvalidInput("[estimate] --dtype=" + dtype + " is not one of: fp32, bf16, fp16, fp8, int8");
  if (context < 0) throw InvalidInput("[estimate] --context=" + std::to_string(context) + " must be >= 0");
  const Arith x{"[estimate] " + arch.model_type};
  const int64_t h = arch.hidden;

  ModelCount c;
  c.arch = arch;
  c.dtype = dtype;
  c.bytes_per_param = *bytes;
  c.context = context;
  PartCount emb{"embeddings"}, attn{"attention"}, norms{"norms"}, router{"router"}, routed{"routed_experts"},
      shared{"shared_experts"}, dense{"dense_ffn"}, head{"lm_head"};
  auto both = [&](PartCount& p, int64_t total, int64_t active) {
    p.total = x.add(p.total, total);
    p.active = x.add(p.active, active);
  };
  both(emb, x.mul(arch.vocab, h), x.mul(arch.vocab, h));
  const int64_t head_params = arch.tied_head ? 0 : x.mul(arch.vocab, h);
  both(head, head_params, head_params);
  both(norms, x.mul(arch.final_norms, h), x.mul(arch.final_norms, h));

  const FfnArch* first_moe = nullptr;
  const FfnArch* first_dense = nullptr;
  for (const LayerArch& l : arch.layers) {
    int64_t a = attention_params(l.self_attn, h, x);
    if (l.cross_attn) a = x.add(a, attention_params(*l.cross_attn, h, x));
    both(attn, a, a);
    both(norms, x.mul(l.norms, h), x.mul(l.norms, h));
    const FfnArch& f = l.ffn;
    if (!f.moe) {
      const int64_t n = mlp_params(f.matrices, h, f.dense_hidden, f.dense_bias, x);
      both(dense, n, n);
      ++c.dense_layers;
      if (!first_dense) first_dense = &f;
      continue;
    }
    ++c.moe_layers;
    if (!first_moe) first_moe = &f;
    const int64_t r = x.add(x.mul(f.n_experts, h), (f.router_bias ? f.n_experts : 0) + (f.router_score_bias ? f.n_experts : 0));
    both(router, r, r);
    const int64_t per_expert = mlp_params(f.matrices, h, f.expert_hidden, f.expert_bias, x);
    both(routed, x.mul(f.n_experts, per_expert), x.mul(f.top_k, per_expert));
    const int64_t s = x.add(x.mul(f.n_shared_experts, mlp_params(f.matrices, h, f.shared_hidden, false, x)),
                            f.shared_gate ? h : 0);
    both(shared, s, s);
  }
  c.parts = {emb, attn, norms, router, routed, shared, dense, head};
  for (const PartCount& p : c.parts) {
    c.total = x.add(c.total, p.total);
    c.active = x.add(c.active, p.active);
  }
  c.total_without_embeddings = c.total - emb.total - head.total;
  c.active_without_embedding = c.active - emb.active;
  c.active_without_embeddings = c.active - emb.active - head.active;
  x.mul(c.total, c.bytes_per_param);  // the byte figures must fit as well

  for (const LayerArch& l : arch.layers) {
    if (!l.decoder) continue;
    auto [stored, expanded] = kv_elems(l.self_attn);
    c.kv_bytes_per_token = x.add(c.kv_bytes_per_token, x.mul(stored, c.bytes_per_param));
    c.kv_bytes_per_token_expanded = x.add(c.kv_bytes_per_token_expanded, x.mul(expanded, c.bytes_per_param));
    const int64_t cached_tokens = l.window > 0 ? std::min(context, l.window) : context;
    c.kv_bytes_for_context = x.add(c.kv_bytes_for_context, x.mul(cached_tokens, stored, c.bytes_per_param));
    if (l.cross_attn) {
      c.cross_kv_bytes_per_source_token = x.add(c.cross_kv_bytes_per_source_token,
                                                x.mul(kv_elems(*l.cross_attn).first, c.bytes_per_param));
    }
  }

  const int64_t b = c.bytes_per_param;
  if (first_moe) {
    c.activations.push_back(moe_activation(*first_moe, h, b));
    const int64_t equal = first_moe->top_k * first_moe->expert_hidden + first_moe->n_shared_experts * first_moe->shared_hidden;
    c.activations.push_back(dense_activation("dense FFN, equal active", h, equal, hidden_tensors(*first_moe), b));
  }
  if (first_dense) {
    c.activations.push_back(dense_activation(first_moe ? "dense layer of model" : "dense FFN", h,
                                             first_dense->dense_hidden, hidden_tensors(*first_dense), b));
  }
  return c;
}

}  // namespace moe::estimate
