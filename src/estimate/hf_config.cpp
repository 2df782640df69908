// Hugging Face config.json -> ModelArch, one distiller per model_type. The keys, defaults and
// bias flags follow each model's transformers modeling/configuration file (docs/estimator.md).
#include <algorithm>
#include <functional>
#include <map>

#include <nlohmann/json.hpp>

#include "moe/error.h"
#include "moe/model_count.h"

namespace moe::estimate {

namespace {

using nlohmann::json;

// Typed access to one config with errors that name the model type and the key.
class Keys {
 public:
  Keys(const json& j, std::string model_type) : j_(j), type_(std::move(model_type)) {}

  bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }

  int64_t positive(const char* key) const {
    if (!has(key)) fail(std::string("missing key '") + key + "'");
    return positive_value(key, j_.at(key));
  }
  int64_t positive_or(const char* key, int64_t fallback) const { return has(key) ? positive(key) : fallback; }

  int64_t non_negative_or(const char* key, int64_t fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_.at(key);
    if (!v.is_number_integer() || v.get<int64_t>() < 0) {
      fail(std::string("key '") + key + "' must be a non-negative integer, got " + v.dump());
    }
    return v.get<int64_t>();
  }

  bool flag_or(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_.at(key);
    if (!v.is_boolean()) fail(std::string("key '") + key + "' must be true or false, got " + v.dump());
    return v.get<bool>();
  }

  std::vector<int64_t> int_list_or_empty(const char* key) const {
    std::vector<int64_t> out;
    if (!has(key)) return out;
    const json& v = j_.at(key);
    if (!v.is_array()) fail(std::string("key '") + key + "' must be a list of integers, got " + v.dump());
    for (const json& e : v) {
      if (!e.is_number_integer()) fail(std::string("key '") + key + "' must be a list of integers, got " + v.dump());
      out.push_back(e.get<int64_t>());
    }
    return out;
  }

  std::vector<std::string> string_list_or_empty(const char* key) const {
    std::vector<std::string> out;
    if (!has(key)) return out;
    const json& v = j_.at(key);
    if (!v.is_array()) fail(std::string("key '") + key + "' must be a list of strings, got " + v.dump());
    for (const json& e : v) {
      if (!e.is_string()) fail(std::string("key '") + key + "' must be a list of strings, got " + v.dump());
      out.push_back(e.get<std::string>());
    }
    return out;
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw InvalidInput("[config] " + type_ + ": " + what);
  }

 private:
  int64_t positive_value(const char* key, const json& v) const {
    // Integral floats (4096.0) appear in hand-edited configs; accept them, reject 4096.5.
    if (v.is_number_float()) {
      double d = v.get<double>();
      if (d >= 1 && d < 9.2e18 && d == static_cast<double>(static_cast<int64_t>(d))) return static_cast<int64_t>(d);
    } else if (v.is_number_integer() && v.get<int64_t>() >= 1) {
      return v.get<int64_t>();
    }
    fail(std::string("key '") + key + "' must be a positive integer, got " + v.dump());
  }

  const json& j_;
  std::string type_;
};

AttentionArch gqa(const Keys& k, int64_t hidden) {
  AttentionArch a;
  a.n_heads = k.positive("num_attention_heads");
  a.n_kv_heads = k.positive_or("num_key_value_heads", a.n_heads);
  if (a.n_heads % a.n_kv_heads != 0) {
    k.fail("num_attention_heads=" + std::to_string(a.n_heads) + " is not a multiple of num_key_value_heads=" +
           std::to_string(a.n_kv_heads));
  }
  if (!k.has("head_dim") && hidden % a.n_heads != 0) {
    k.fail("hidden_size=" + std::to_string(hidden) + " is not divisible by num_attention_heads=" +
           std::to_string(a.n_heads) + " and there is no 'head_dim'");
  }
  a.head_dim = k.positive_or("head_dim", hidden / a.n_heads);
  return a;
}

// Sliding windows: an explicit layer_types list wins; otherwise the model's own rule.
void apply_windows(const Keys& k, ModelArch& m, const std::function<bool(int64_t)>& sliding_by_rule) {
  std::vector<std::string> types = k.string_list_or_empty("layer_types");
  if (!types.empty() && types.size() != m.layers.size()) {
    k.fail("'layer_types' has " + std::to_string(types.size()) + " entries for num_hidden_layers=" +
           std::to_string(m.layers.size()));
  }
  for (size_t i = 0; i < m.layers.size(); ++i) {
    bool sliding = types.empty() ? sliding_by_rule(static_cast<int64_t>(i)) : types[i] == "sliding_attention";
    if (!types.empty() && types[i] != "sliding_attention" && types[i] != "full_attention") {
      k.fail("'layer_types' entry '" + types[i] + "' is neither sliding_attention nor full_attention");
    }
    if (sliding) m.layers[i].window = k.positive("sliding_window");
  }
}

ModelArch decoder_base(const Keys& k, const std::string& type) {
  ModelArch m;
  m.model_type = type;
  m.hidden = k.positive("hidden_size");
  m.vocab = k.positive("vocab_size");
  m.tied_head = k.flag_or("tie_word_embeddings", false);
  m.layers.resize(static_cast<size_t>(k.positive("num_hidden_layers")));
  return m;
}

FfnArch dense_ffn(int64_t hidden) {
  FfnArch f;
  f.dense_hidden = hidden;
  return f;
}

ModelArch llama(const Keys& k) {
  ModelArch m = decoder_base(k, "llama");
  AttentionArch a = gqa(k, m.hidden);
  a.q_bias = a.k_bias = a.v_bias = a.o_bias = k.flag_or("attention_bias", false);
  FfnArch f = dense_ffn(k.positive("intermediate_size"));
  f.dense_bias = k.flag_or("mlp_bias", false);
  for (LayerArch& l : m.layers) l.self_attn = a, l.ffn = f;
  return m;
}

ModelArch mixtral(const Keys& k) {
  ModelArch m = decoder_base(k, "mixtral");
  AttentionArch a = gqa(k, m.hidden);
  FfnArch f;
  f.moe = true;
  f.n_experts = k.positive("num_local_experts");
  f.top_k = k.positive("num_experts_per_tok");
  f.expert_hidden = k.positive("intermediate_size");
  for (LayerArch& l : m.layers) l.self_attn = a, l.ffn = f;
  bool windowed = k.has("sliding_window");
  apply_windows(k, m, [&](int64_t) { return windowed; });
  return m;
}

// Qwen2-MoE / Qwen3-MoE: sparse unless listed in mlp_only_layers or off the decoder_sparse_step.
ModelArch qwen_moe(const Keys& k, const std::string& type) {
  ModelArch m = decoder_base(k, type);
  AttentionArch a = gqa(k, m.hidden);
  if (type == "qwen2_moe") {
    a.q_bias = a.k_bias = a.v_bias = k.flag_or("qkv_bias", true);  // Qwen2: q/k/v biased, o_proj not
  } else {
    a.q_bias = a.k_bias = a.v_bias = a.o_bias = k.flag_or("attention_bias", false);
    a.qk_norm = AttentionArch::QkNorm::per_head;
  }
  FfnArch sparse;
  sparse.moe = true;
  sparse.n_experts = k.positive("num_experts");
  sparse.top_k = k.positive("num_experts_per_tok");
  sparse.expert_hidden = k.positive("moe_intermediate_size");
  if (type == "qwen2_moe" && k.positive_or("shared_expert_intermediate_size", 0) > 0) {
    sparse.n_shared_experts = 1;
    sparse.shared_hidden = k.positive("shared_expert_intermediate_size");
    sparse.shared_gate = true;
  }
  const int64_t step = k.non_negative_or("decoder_sparse_step", 1);
  std::vector<int64_t> mlp_only = k.int_list_or_empty("mlp_only_layers");
  const int64_t n = static_cast<int64_t>(m.layers.size());
  for (int64_t i = 0; i < n; ++i) {
    bool dense = std::find(mlp_only.begin(), mlp_only.end(), i) != mlp_only.end() || step == 0 ||
                 (i + 1) % step != 0;
    m.layers[static_cast<size_t>(i)].self_attn = a;
    m.layers[static_cast<size_t>(i)].ffn = dense ? dense_ffn(k.positive("intermediate_size")) : sparse;
  }
  const bool use_window = k.flag_or("use_sliding_window", false) && k.has("sliding_window");
  const int64_t max_window_layers = k.non_negative_or("max_window_layers", n);
  apply_windows(k, m, [&](int64_t i) { return use_window && i >= max_window_layers; });
  return m;
}

ModelArch olmoe(const Keys& k) {
  ModelArch m = decoder_base(k, "olmoe");
  AttentionArch a = gqa(k, m.hidden);
  a.q_bias = a.k_bias = a.v_bias = a.o_bias = k.flag_or("attention_bias", false);
  a.qk_norm = AttentionArch::QkNorm::full_width;
  FfnArch f;
  f.moe = true;
  f.n_experts = k.positive("num_experts");
  f.top_k = k.positive("num_experts_per_tok");
  f.expert_hidden = k.positive("intermediate_size");
  for (LayerArch& l : m.layers) l.self_attn = a, l.ffn = f;
  return m;
}

ModelArch deepseek(const Keys& k, const std::string& type) {
  ModelArch m = decoder_base(k, type);
  AttentionArch a;
  a.kind = AttentionArch::Kind::mla;
  a.n_heads = k.positive("num_attention_heads");
  a.n_kv_heads = a.n_heads;
  a.q_lora_rank = k.has("q_lora_rank") ? k.positive("q_lora_rank") : 0;  // null: plain q_proj
  a.kv_lora_rank = k.positive("kv_lora_rank");
  a.qk_nope_head_dim = k.positive("qk_nope_head_dim");
  a.qk_rope_head_dim = k.positive("qk_rope_head_dim");
  a.v_head_dim = k.positive("v_head_dim");
  a.head_dim = a.qk_nope_head_dim + a.qk_rope_head_dim;
  a.mla_bias = k.flag_or("attention_bias", false);

  FfnArch sparse;
  const bool has_experts = k.has("n_routed_experts");
  if (has_experts) {
    sparse.moe = true;
    sparse.n_experts = k.positive("n_routed_experts");
    sparse.top_k = k.positive("num_experts_per_tok");
    sparse.expert_hidden = k.positive("moe_intermediate_size");
    sparse.n_shared_experts = k.non_negative_or("n_shared_experts", 0);
    sparse.shared_hidden = sparse.expert_hidden;
    sparse.router_score_bias = type == "deepseek_v3";
  }
  const int64_t first_dense = k.non_negative_or("first_k_dense_replace", 0);
  const int64_t freq = k.positive_or("moe_layer_freq", 1);
  const int64_t n = static_cast<int64_t>(m.layers.size());
  for (int64_t i = 0; i < n; ++i) {
    LayerArch& l = m.layers[static_cast<size_t>(i)];
    l.self_attn = a;
    l.ffn = has_experts && i >= first_dense && i % freq == 0 ? sparse : dense_ffn(k.positive("intermediate_size"));
  }
  return m;
}

ModelArch gpt_oss(const Keys& k) {
  ModelArch m = decoder_base(k, "gpt_oss");
  AttentionArch a = gqa(k, m.hidden);
  a.q_bias = a.k_bias = a.v_bias = a.o_bias = k.flag_or("attention_bias", true);
  a.sinks = true;
  FfnArch f;
  f.moe = true;
  f.n_experts = k.positive("num_local_experts");
  f.top_k = k.has("num_experts_per_tok") ? k.positive("num_experts_per_tok") : k.positive("experts_per_token");
  f.expert_hidden = k.positive("intermediate_size");
  f.expert_bias = true;
  f.router_bias = true;
  for (LayerArch& l : m.layers) l.self_attn = a, l.ffn = f;
  apply_windows(k, m, [](int64_t i) { return i % 2 == 0; });  // GPT-OSS default: alternate, sliding first
  return m;
}

// T5-style encoder-decoder with Switch (top-1) FFNs every sparse_step-th layer.
ModelArch switch_transformers(const Keys& k) {
  ModelArch m;
  m.model_type = "switch_transformers";
  m.hidden = k.positive("d_model");
  m.vocab = k.positive("vocab_size");
  m.tied_head = k.flag_or("tie_word_embeddings", true);
  m.final_norms = 2;
  const int64_t n_enc = k.positive("num_layers");
  const int64_t n_dec = k.positive_or("num_decoder_layers", n_enc);
  const int64_t sparse_enc = k.non_negative_or("num_sparse_encoder_layers", 3);
  const int64_t sparse_dec = k.non_negative_or("num_sparse_decoder_layers", 3);
  if (sparse_enc > n_enc) k.fail("num_sparse_encoder_layers=" + std::to_string(sparse_enc) + " > num_layers=" + std::to_string(n_enc));
  if (sparse_dec > n_dec) k.fail("num_sparse_decoder_layers=" + std::to_string(sparse_dec) + " > num_decoder_layers=" + std::to_string(n_dec));

  AttentionArch a;
  a.n_heads = a.n_kv_heads = k.positive("num_heads");
  a.head_dim = k.positive("d_kv");
  const int64_t buckets = k.positive_or("relative_attention_num_buckets", 32);

  FfnArch dense;
  dense.matrices = 2;  // DenseActDense: wi, wo (ReLU)
  dense.dense_hidden = k.positive("d_ff");
  FfnArch sparse = dense;
  sparse.dense_hidden = 0;
  sparse.moe = true;
  sparse.n_experts = k.positive("num_experts");
  sparse.top_k = 1;
  sparse.expert_hidden = dense.dense_hidden;
  sparse.router_bias = k.flag_or("router_bias", false);

  auto stack = [&](int64_t layers, int64_t sparse_layers, bool decoder) {
    const int64_t step = sparse_layers > 0 ? layers / sparse_layers : 0;
    for (int64_t i = 0; i < layers; ++i) {
      LayerArch l;
      l.decoder = decoder;
      l.self_attn = a;
      l.self_attn.relative_buckets = i == 0 ? buckets : 0;
      if (decoder) l.cross_attn = a;
      const bool is_sparse = step > 0 && (i % step == 1 || step == 1);
      l.ffn = is_sparse ? sparse : dense;
      l.norms = decoder ? 3 : 2;
      m.layers.push_back(l);
    }
  };
  stack(n_enc, sparse_enc, false);
  stack(n_dec, sparse_dec, true);
  return m;
}

using Distiller = std::function<ModelArch(const Keys&)>;

const std::map<std::string, Distiller>& distillers() {
  static const std::map<std::string, Distiller> table = {
      {"llama", llama},
      {"mixtral", mixtral},
      {"qwen2_moe", [](const Keys& k) { return qwen_moe(k, "qwen2_moe"); }},
      {"qwen3_moe", [](const Keys& k) { return qwen_moe(k, "qwen3_moe"); }},
      {"olmoe", olmoe},
      {"deepseek_v2", [](const Keys& k) { return deepseek(k, "deepseek_v2"); }},
      {"deepseek_v3", [](const Keys& k) { return deepseek(k, "deepseek_v3"); }},
      {"gpt_oss", gpt_oss},
      {"switch_transformers", switch_transformers},
  };
  return table;
}

void check_moe_layers(const ModelArch& m) {
  for (const LayerArch& l : m.layers) {
    if (l.ffn.moe && l.ffn.top_k > l.ffn.n_experts) {
      throw InvalidInput("[config] " + m.model_type + ": experts per token (" + std::to_string(l.ffn.top_k) +
                         ") > number of experts (" + std::to_string(l.ffn.n_experts) + ")");
    }
  }
}

}  // namespace

std::vector<std::string> supported_model_types() {
  std::vector<std::string> names;
  for (const auto& [name, fn] : distillers()) names.push_back(name);
  return names;
}

ModelArch model_arch_from_hf_config(const json& config) {
  if (!config.is_object()) throw InvalidInput("[config] the config must be a JSON object, got " + std::string(config.type_name()));
  if (!config.contains("model_type") || !config.at("model_type").is_string()) {
    throw InvalidInput("[config] missing key 'model_type' (a string such as \"mixtral\")");
  }
  const std::string type = config.at("model_type").get<std::string>();
  auto it = distillers().find(type);
  if (it == distillers().end()) {
    std::string known;
    for (const std::string& n : supported_model_types()) known += (known.empty() ? "" : ", ") + n;
    throw InvalidInput("[config] model_type '" + type + "' is not supported; known: " + known);
  }
  ModelArch m = it->second(Keys(config, type));
  check_moe_layers(m);
  return m;
}

}  // namespace moe::estimate
