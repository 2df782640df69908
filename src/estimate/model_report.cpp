// Text and JSON reports of a whole-model count.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "moe/model_count.h"
#include "util/format.h"

namespace moe::estimate {

using util::gigabytes;
using util::group_thousands;
using util::label_line;
using util::pad_left;
using util::pad_right;

namespace {

std::string bytes_text(int64_t bytes) {
  return group_thousands(bytes) + " B (" + util::binary_bytes(static_cast<double>(bytes)) + ")";
}

std::string describe_attention(const AttentionArch& a) {
  char buf[256];
  if (a.kind == AttentionArch::Kind::mla) {
    std::snprintf(buf, sizeof buf, "MLA, %lld heads, q_lora_rank %lld, kv_lora_rank %lld, qk %lld+%lld, v %lld",
                  static_cast<long long>(a.n_heads), static_cast<long long>(a.q_lora_rank),
                  static_cast<long long>(a.kv_lora_rank), static_cast<long long>(a.qk_nope_head_dim),
                  static_cast<long long>(a.qk_rope_head_dim), static_cast<long long>(a.v_head_dim));
  } else {
    std::snprintf(buf, sizeof buf, "%s, %lld heads / %lld KV heads, head_dim %lld",
                  a.n_kv_heads == a.n_heads ? "MHA" : "GQA", static_cast<long long>(a.n_heads),
                  static_cast<long long>(a.n_kv_heads), static_cast<long long>(a.head_dim));
  }
  return buf;
}

std::string describe_experts(const ModelArch& arch) {
  for (const LayerArch& l : arch.layers) {
    if (!l.ffn.moe) continue;
    const FfnArch& f = l.ffn;
    std::string s = std::to_string(f.n_experts) + " routed, top-" + std::to_string(f.top_k) + ", width " +
                    std::to_string(f.expert_hidden);
    if (f.n_shared_experts > 0) {
      s += ", " + std::to_string(f.n_shared_experts) + " shared of width " + std::to_string(f.shared_hidden);
    }
    return s;
  }
  return "none (dense model)";
}

int64_t windowed_layers(const ModelArch& arch) {
  int64_t n = 0;
  for (const LayerArch& l : arch.layers) n += l.window > 0;
  return n;
}

}  // namespace

std::string format_model_report(const ModelCount& c, const std::string& source) {
  const ModelArch& m = c.arch;
  const int64_t b = c.bytes_per_param;
  std::string out = "==== Model ====\n";
  out += label_line("config", source);
  out += label_line("model_type", m.model_type);
  out += label_line("hidden_size", std::to_string(m.hidden));
  out += label_line("layers", std::to_string(m.layers.size()) + " (" + std::to_string(c.moe_layers) + " MoE, " +
                                  std::to_string(c.dense_layers) + " dense)");
  out += label_line("experts", describe_experts(m));
  out += label_line("attention", describe_attention(m.layers.front().self_attn));
  out += label_line("vocab_size", std::to_string(m.vocab) + (m.tied_head ? " (LM head tied)" : " (LM head untied)"));
  out += label_line("dtype", c.dtype + " (" + std::to_string(b) + " Bytes/elem)");

  out += "\n==== Parameters ====\n";
  out += pad_right("part", 23) + pad_left("total", 20) + pad_left("active/token", 20) + "\n";
  for (const PartCount& p : c.parts) {
    out += pad_right(p.name, 23) + pad_left(group_thousands(p.total), 20) + pad_left(group_thousands(p.active), 20) + "\n";
  }
  out += pad_right("TOTAL", 23) + pad_left(group_thousands(c.total), 20) + pad_left(group_thousands(c.active), 20) + "\n";
  out += label_line("total", group_thousands(c.total) + " (" + util::short_count(c.total) + ")");
  out += label_line("total w/o embeddings", group_thousands(c.total_without_embeddings) + " (" +
                                                util::short_count(c.total_without_embeddings) + ", no embedding, no LM head)");
  out += label_line("active/token", group_thousands(c.active) + " (" + util::short_count(c.active) + ")");
  out += label_line("active w/o embedding", group_thousands(c.active_without_embedding) + " (" +
                                                util::short_count(c.active_without_embedding) + ", LM head kept)");
  out += label_line("active w/o emb, head", group_thousands(c.active_without_embeddings) + " (" +
                                                util::short_count(c.active_without_embeddings) + ")");

  out += "\n==== Memory ====\n";
  out += label_line("weights", gigabytes(c.total * b));
  out += label_line("weights active/token", gigabytes(c.active * b));
  out += label_line("KV cache/token", bytes_text(c.kv_bytes_per_token) +
                                          (m.layers.front().self_attn.kind == AttentionArch::Kind::mla ? " (MLA latent)" : ""));
  if (c.kv_bytes_per_token_expanded != c.kv_bytes_per_token) {
    out += label_line("KV/token, expanded", bytes_text(c.kv_bytes_per_token_expanded) + " (per-head K and V, as HF caches them)");
  }
  if (c.cross_kv_bytes_per_source_token > 0) {
    out += label_line("cross-attn KV/src tok", bytes_text(c.cross_kv_bytes_per_source_token));
  }
  if (const int64_t w = windowed_layers(m); w > 0) {
    out += label_line("sliding-window layers", std::to_string(w) + " of " + std::to_string(m.layers.size()) +
                                                   " (their cache stops growing at the window)");
  }
  if (c.context > 0) {
    out += label_line("KV cache @ " + group_thousands(c.context), gigabytes(c.kv_bytes_for_context) + " (" +
                                                                     group_thousands(c.kv_bytes_for_context) + " B)");
  }

  if (!c.activations.empty()) {
    out += "\n==== Activations per token, one FFN call (kept for backward) ====\n";
    for (const ActivationCount& a : c.activations) {
      out += label_line(a.what, bytes_text(a.bytes_per_token) + ", width " + std::to_string(a.hidden));
    }
  }
  out += "\n";
  return out;
}

nlohmann::json model_report_json(const ModelCount& c) {
  using nlohmann::json;
  json parts = json::object();
  for (const PartCount& p : c.parts) parts[p.name] = {{"total", p.total}, {"active", p.active}};
  json acts = json::array();
  for (const ActivationCount& a : c.activations) {
    json breakdown = json::object();
    for (const auto& [name, bytes] : a.breakdown) breakdown[name] = bytes;
    acts.push_back({{"what", a.what}, {"hidden", a.hidden}, {"bytes_per_token", a.bytes_per_token}, {"breakdown", breakdown}});
  }
  const int64_t b = c.bytes_per_param;
  return {
      {"model_type", c.arch.model_type},
      {"dtype", c.dtype},
      {"bytes_per_param", b},
      {"layers", {{"total", c.arch.layers.size()}, {"moe", c.moe_layers}, {"dense", c.dense_layers}}},
      {"parameters",
       {{"total", c.total},
        {"active", c.active},
        {"total_without_embeddings", c.total_without_embeddings},
        {"active_without_embedding", c.active_without_embedding},
        {"active_without_embeddings", c.active_without_embeddings},
        {"parts", parts}}},
      {"weight_bytes", {{"total", c.total * b}, {"active", c.active * b}}},
      {"kv_cache",
       {{"bytes_per_token", c.kv_bytes_per_token},
        {"bytes_per_token_expanded", c.kv_bytes_per_token_expanded},
        {"cross_attention_bytes_per_source_token", c.cross_kv_bytes_per_source_token},
        {"context", c.context},
        {"bytes_for_context", c.kv_bytes_for_context}}},
      {"activations_per_token", acts},
  };
}

}  // namespace moe::estimate
