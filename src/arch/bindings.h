// Building blocks of the weight bindings (external tensor <-> canonical MoeLayerWeights) and the
// naming scheme most HF MoE blocks share: a router Linear, experts.{e}.<proj> or the fused v5
// experts.gate_up_proj / experts.down_proj, and an optional shared expert.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "moe/layer_format.h"

namespace moe::arch {

using Member = Tensor MoeLayerWeights::*;

// The whole canonical tensor, same layout.
WeightBinding whole(const std::string& name, Shape shape, Member m);
// Expert e's slice [e, ...] of a stacked canonical tensor.
WeightBinding expert_slice(const std::string& name, Shape shape, Member m, int64_t e);
// HF v5 fused gate_up_proj [E, 2I, H]: rows [0, I) gate, [I, 2I) up.
WeightBinding fused_gate_up(int64_t E, int64_t I, int64_t H);
// A transposed stacked tensor: external [E, A, B] is canonical [E, B, A].
WeightBinding transposed(const std::string& name, int64_t E, int64_t A, int64_t B, Member m);
// GPT-OSS gate_up_proj [E, H, 2I] and its bias [E, 2I], gate/up interleaved on the last axis.
WeightBinding interleaved_gate_up(int64_t E, int64_t I, int64_t H);
WeightBinding interleaved_gate_up_bias(int64_t E, int64_t I);
// Every present canonical tensor under its canonical name (the "custom" format).
std::vector<WeightBinding> canonical_bindings(const MoeLayerConfig& c);

// The HF names of one MoE block.
struct MoeNames {
  const char* router;              // "gate.weight"
  const char* router_bias;         // with router.logit_bias; null if the model has none
  const char* selection_bias;      // with router.selection_bias
  const char* expert;              // per-expert prefix: "experts." + e
  const char* gate;                // ".w1.weight" (gated activations only)
  const char* up;
  const char* down;
  const char* shared;              // shared expert prefix "shared_expert." (+ gate_proj.weight, ...)
  const char* shared_gate;         // Qwen2-MoE "shared_expert_gate.weight"
};
std::vector<WeightBinding> named_moe_bindings(const MoeNames& n, const MoeLayerConfig& c, bool fused);
// The most common naming (Qwen3-MoE, OLMoE, DeepSeek): gate.weight (+ e_score_correction_bias),
// experts.{e}.{gate,up,down}_proj.weight, shared_experts.{gate,up,down}_proj.weight.
std::vector<WeightBinding> gate_proj_bindings(const MoeLayerConfig& c, bool fused);

}  // namespace moe::arch
