// Whole-model parameter, memory and activation counts from a Hugging Face config.json.
// The arch layer distils a config into a ModelArch (moe/arch.h: one entry per layer, attention
// kind, FFN kind), then one counter walks it; adding a model type means writing only its arch file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "moe/arch.h"

namespace moe::estimate {

// The estimator counts the arch layer's descriptions.
using arch::AttentionArch;
using arch::FfnArch;
using arch::LayerArch;
using arch::ModelArch;
using arch::model_arch_from_hf_config;
using arch::supported_model_types;

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
