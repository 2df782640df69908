// The MoE layer as files (docs/layer-format.md): a layer config (JSON, Hugging Face key names
// for an HF model_type, the engine's own keys for "custom"), and weights under the model type's
// HF tensor names mapped to and from the canonical MoeLayerWeights. Every model type's keys,
// defaults and names live in its file under src/arch/.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "moe/moe_layer.h"
#include "moe/safetensors.h"
#include "moe/tensor.h"

namespace moe::arch {

// Model type recorded in the config JSON ("custom" if absent).
std::string layer_model_type(const nlohmann::json& j);

// Reads a layer config: the model type's keys (absent ones take the HF config class's
// defaults), then the engine keys ("router", "losses", "soft_moe", ...) that override them.
// Validates. Throws InvalidInput ("[layer config] <model_type>: ...") naming the key.
MoeLayerConfig layer_config_from_json(const nlohmann::json& j);
// The config in the "custom" format with every field; layer_config_from_json reads it back equal.
nlohmann::json layer_config_to_json(const MoeLayerConfig& config);

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

// A layer's weights read from a file of external tensors, and the bindings they came through.
struct LayerWeightsFile {
  MoeLayerWeights weights;
  std::vector<WeightBinding> bindings;
  std::string prefix;  // carried by every name in the file
};

// Reads every tensor the config needs, nothing else, from `file`, whose names all start with
// `prefix` (e.g. model.layers.0.mlp.). The fused v5 layout is recognised by experts.gate_up_proj.
// Throws InvalidInput ("[layer] <path>: missing tensor 'x' [E, H] needed by the mixtral config",
// wrong shape, unused tensor, a name without the prefix, a non-float dtype, NaN or Inf).
LayerWeightsFile load_layer_weights(const std::string& model_type, const MoeLayerConfig& config,
                                    const SafetensorsFile& file, const std::string& prefix, DType dtype);
// The gradients of every trainable external tensor, as ("grad." + prefix + name, tensor of dtype).
std::vector<std::pair<std::string, Tensor>> store_layer_gradients(const LayerWeightsFile& loaded,
                                                                  const MoeLayerWeights& grads, DType dtype);

// A floating tensor of the file (F32, F64 or BF16) as doubles; InvalidInput naming the tensor
// and the first non-finite value's flat index.
std::vector<double> finite_tensor_values(const SafetensorsFile& file, const std::string& name);

}  // namespace moe::arch
