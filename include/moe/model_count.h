// Whole-model parameter, memory and activation counts from a Hugging Face config.json.
// A config is first distilled into a ModelArch (one entry per layer: attention kind, FFN kind),
// then one counter walks it; adding a model type means writing only its distiller.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace moe::estimate {

struct AttentionArch {
  enum class Kind { gqa, mla };
  Kind kind = Kind::gqa;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  bool q_bias = false, k_bias = false, v_bias = false, o_bias = false;
  enum class QkNorm { none, per_head, full_width };  // Qwen3: over head_dim; OLMoE: over all heads
  QkNorm qk_norm = QkNorm::none;
  bool sinks = false;                 // GPT-OSS: one learned logit per head
  int64_t relative_buckets = 0;       // T5/Switch relative position bias table (first layer only)
  // Multi-head latent attention (DeepSeek-V2/V3); q_lora_rank 0 = plain q_proj.
  int64_t q_lora_rank = 0, kv_lora_rank = 0, qk_nope_head_dim = 0, qk_rope_head_dim = 0, v_head_dim = 0;
  bool mla_bias = false;              // attention_bias on q_a_proj, kv_a_proj_with_mqa, o_proj
};

struct FfnArch {
  int64_t matrices = 3;               // 3 gated (SwiGLU), 2 plain (GELU/ReLU)
  bool moe = false;
  int64_t dense_hidden = 0;           // dense layer: intermediate size
  bool dense_bias = false;            // llama mlp_bias
  int64_t n_experts = 0, top_k = 0, expert_hidden = 0;
  bool expert_bias = false;           // GPT-OSS: biases on gate_up (2I) and down (H)
  bool router_bias = false;
  bool router_score_bias = false;     // DeepSeek-V3 e_score_correction_bias [E]
  int64_t n_shared_experts = 0, shared_hidden = 0;  // each shared expert's width
  bool shared_gate = false;           // Qwen2-MoE sigmoid gate Linear(H, 1)
};

struct LayerArch {
  bool decoder = true;                // false: encoder layer (no KV cache)
  AttentionArch self_attn;
  std::optional<AttentionArch> cross_attn;  // encoder-decoder models
  FfnArch ffn;
  int64_t norms = 2;                  // hidden-sized norm vectors in the block
  int64_t window = 0;                 // sliding-window length; 0 = full attention
};

struct ModelArch {
  std::string model_type;
  int64_t hidden = 0;
  int64_t vocab = 0;
  bool tied_head = false;
  int64_t final_norms = 1;            // encoder-decoder: one per stack
  std::vector<LayerArch> layers;
};

// Distils a parsed config.json. Throws InvalidInput ("[config] <model_type>: missing key 'x'",
// wrong types, non-positive sizes, unknown model_type with the list of known ones).
ModelArch model_arch_from_hf_config(const nlohmann::json& config);
std::vector<std::string> supported_model_types();

struct PartCount {
  std::string name;  // embeddings, attention, norms, router, routed_experts, shared_experts, dense_ffn, lm_head
  int64_t total = 0;
  int64_t active = 0;
};

struct ActivationCount {
  std::string what;           // "MoE layer", "dense FFN, same active params", "dense layer"
  int64_t hidden = 0;         // the FFN width this row is about (k·I + shared for the MoE)
  int64_t bytes_per_token = 0;
  std::vector<std::pair<std::string, int64_t>> breakdown;  // bytes per token by tensor
};

struct ModelCount {
  ModelArch arch;
  int64_t bytes_per_param = 0;
  std::string dtype;
  std::vector<PartCount> parts;
  int64_t total = 0, active = 0;
  int64_t total_without_embeddings = 0;   // minus the input embedding table and the LM head
  int64_t active_without_embedding = 0;   // minus the input embedding table (a lookup, not compute)
  int64_t active_without_embeddings = 0;  // minus embedding and LM head
  int64_t moe_layers = 0, dense_layers = 0;
  // KV cache at the --dtype width, decoder self-attention only.
  int64_t kv_bytes_per_token = 0;         // as stored: MLA caches the compressed latent + rope key
  int64_t kv_bytes_per_token_expanded = 0;  // MLA decompressed per head (what HF's cache stores)
  int64_t cross_kv_bytes_per_source_token = 0;  // encoder-decoder: per encoder token
  int64_t context = 0;
  int64_t kv_bytes_for_context = 0;       // sliding-window layers capped at their window
  std::vector<ActivationCount> activations;
};

ModelCount count_model(const ModelArch& arch, const std::string& dtype, int64_t context);

std::string format_model_report(const ModelCount& count, const std::string& source);
nlohmann::json model_report_json(const ModelCount& count);

}  // namespace moe::estimate
