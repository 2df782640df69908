// A GptConfig from a handful of named choices: what `moe train`, `moe generate --untrained` and
// the experiments build models from. Every router of the layer library is reachable by name;
// anything finer goes through a full config JSON (gpt_config_from_json).
#pragma once

#include <cstdint>
#include <string>

#include "moe/gpt.h"

namespace moe {

struct GptPreset {
  int64_t vocab_size = 256, context = 256;
  int64_t d_model = 128, n_layers = 4, n_heads = 4, n_kv_heads = 0;  // 0 = n_heads
  std::string pos = "rope";        // rope | learned
  std::string norm = "rmsnorm";    // rmsnorm | layernorm
  bool untied = false, attn_bias = false;
  bool encoder = false;            // bidirectional (masked objective); expert_choice and soft need it
  std::string act = "swiglu";      // FFN activation (dense and experts)
  int64_t hidden = 512;            // dense FFN width, or each expert's width
  int64_t n_experts = 0;           // 0 = dense model
  int64_t top_k = 2;
  // softmax (Mixtral/Qwen top-k), switch (top-1 + capacity), noisy (Shazeer noisy top-k),
  // sigmoid (DeepSeek-V3: sigmoid scores, selection bias), expert_choice, soft (Soft MoE)
  std::string router = "softmax";
  bool renorm = true;              // softmax/noisy: renormalise the top-k weights
  int64_t shared_hidden = 0;       // shared expert width (0 = none)
  double capacity_factor = 0;      // token choice: 0 = dropless; expert_choice: its capacity factor (default 1)
  double aux_coef = 0.01;          // balance loss (load_balancing; Switch: switch; sigmoid: deepseek_v3_seq)
  double z_coef = 0;               // router z-loss
  int64_t soft_slots = 1;          // Soft MoE slots per expert
  int64_t first_dense = 0, moe_every = 1;
};

// Throws InvalidInput naming the bad choice ("[gpt] --router=foo ...").
GptConfig make_gpt_config(const GptPreset& preset);

}  // namespace moe
