// The MoE layer as files: a layer config (JSON, Hugging Face key names where HF has one) and
// weights under HF tensor names, mapped to and from the canonical MoeLayerWeights.
// Format: docs/layer-format.md.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "moe/moe_layer.h"
#include "moe/tensor.h"

namespace moe {

// Reads a layer config. Throws InvalidInput ("[layer config] <model_type>: ...") naming the key.
MoeLayerConfig layer_config_from_json(const nlohmann::json& j);

// One external tensor and how it maps onto the canonical weights.
struct WeightBinding {
  std::string name;  // external (HF) name
  Shape shape;       // its shape
  // Copies between the external layout (flat, row-major, double values) and the canonical weights.
  std::function<void(const double* src, MoeLayerWeights& w)> load;
  std::function<void(const MoeLayerWeights& w, double* dst)> store;
  bool trainable = true;  // false: updated without a gradient (DeepSeek-V3 selection bias)
};

// The external tensors a config's weights are stored as, for a given naming: `model_type` HF
// names, or the canonical names for `custom`. `fused` picks HF v5 fused expert tensors
// (experts.gate_up_proj / experts.down_proj) over per-expert ones where the model has both.
std::vector<WeightBinding> layer_weight_bindings(const std::string& model_type, const MoeLayerConfig& config,
                                                 bool fused);

// Model type recorded in the config JSON ("custom" if absent).
std::string layer_model_type(const nlohmann::json& j);

}  // namespace moe
