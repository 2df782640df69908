// Architectures by Hugging Face `model_type` (src/arch/, one file per model type, listed in
// src/arch/registry.cpp): what a config.json describes, distilled into a ModelArch (one entry per
// layer: attention kind, FFN kind) that the estimator counts, and the checkpoint tensors (Hub
// names and shapes) a loader reads. Keys absent from a config take the HF config class's
// defaults (docs/layer-format.md, docs/estimator.md). This is the only layer that names a
// model_type; the MoE layer's config and weight names are in moe/layer_format.h.
#pragma once

#include <cstdint>
#include <optional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "moe/moe_layer.h"
#include "moe/tensor.h"

namespace moe {
class ModelFolder;
}

namespace moe::arch {

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
std::vector<std::string> supported_model_types();  // sorted

// The FFN description of one MoE layer (its routed and shared experts, router biases).
FfnArch moe_ffn(const MoeLayerConfig& layer);

// One tensor of a Hugging Face checkpoint.
struct TensorSpec {
  std::string name;  // Hub name, e.g. model.layers.0.block_sparse_moe.experts.3.w1.weight
  Shape shape;
};

// Every tensor of the model's checkpoint (Hub names, per-expert layout; a tied LM head and
// Switch's per-stack embed_tokens, which are the shared input table, are listed once), in
// module order.
std::vector<TensorSpec> checkpoint_tensors(const nlohmann::json& config);

// A model folder's weights checked against checkpoint_tensors(its config): InvalidInput naming
// the first missing tensors, an extra one, a wrong shape, or a dtype other than BF16/F16/F32.
struct FolderTensors {
  int64_t n_tensors = 0;                 // as the config implies
  int64_t bytes = 0;                     // their data
  std::map<std::string, int64_t> by_dtype;  // "BF16" -> tensors
  std::vector<std::string> ignored;      // lm_head.weight saved beside tied embeddings
};
FolderTensors check_folder_tensors(const ModelFolder& folder);

}  // namespace moe::arch
