// A layer's weights from a safetensors file of external (HF or canonical) tensors, and its
// gradients back under the same names: what `moe layer` and any loader of one MoE block need.
#include <cmath>
#include <map>
#include <set>

#include "arch/registry.h"
#include "moe/error.h"

namespace moe::arch {

std::vector<double> finite_tensor_values(const SafetensorsFile& f, const std::string& name) {
  const Tensor t = f.load(name);
  if (t.dtype() != DType::f32 && t.dtype() != DType::f64 && t.dtype() != DType::bf16 && t.dtype() != DType::f16) {
    throw InvalidInput("[layer] " + f.path() + ": tensor '" + name + "' has dtype " + dtype_name(t.dtype()) +
                       ", expected F32, F64, BF16 or F16");
  }
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) {
    v[i] = load_as_double(t.view(), i);
    if (!std::isfinite(v[i])) {
      throw InvalidInput("[layer] " + f.path() + ": tensor '" + name + "' has a non-finite value (" +
                         std::to_string(v[i]) + ") at flat index " + std::to_string(i));
    }
  }
  return v;
}

LayerWeightsFile load_layer_weights(const std::string& type, const MoeLayerConfig& cfg, const SafetensorsFile& wf,
                                    const std::string& prefix, DType dtype) {
  const std::string& path = wf.path();
  std::map<std::string, std::string> by_name;  // external name -> name in the file
  for (const std::string& n : wf.names()) {
    if (n.rfind(prefix, 0) != 0) {
      throw InvalidInput("[layer] " + path + ": tensor '" + n + "' does not start with --prefix '" + prefix + "'");
    }
    by_name[n.substr(prefix.size())] = n;
  }
  LayerWeightsFile out{make_layer_weights(cfg, dtype),
                       layer_weight_bindings(type, cfg, by_name.count("experts.gate_up_proj") > 0), prefix};
  std::set<std::string> used;
  for (const WeightBinding& b : out.bindings) {
    auto it = by_name.find(b.name);
    if (it == by_name.end()) {
      throw InvalidInput("[layer] " + path + ": missing tensor '" + prefix + b.name + "' " + shape_str(b.shape) +
                         " needed by the " + type + " config");
    }
    const Shape& have = wf.entry(it->second).shape;
    if (have != b.shape) {
      throw InvalidInput("[layer] " + path + ": tensor '" + it->second + "' has shape " + shape_str(have) +
                         ", the config needs " + shape_str(b.shape));
    }
    b.load(finite_tensor_values(wf, it->second).data(), out.weights);
    used.insert(b.name);
  }
  for (const auto& [ext, n] : by_name) {
    if (!used.count(ext)) throw InvalidInput("[layer] " + path + ": tensor '" + n + "' is not used by this config");
  }
  return out;
}

std::vector<std::pair<std::string, Tensor>> store_layer_gradients(const LayerWeightsFile& loaded,
                                                                  const MoeLayerWeights& grads, DType dtype) {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const WeightBinding& b : loaded.bindings) {
    if (!b.trainable) continue;
    std::vector<double> v(static_cast<size_t>(shape_numel(b.shape)));
    b.store(grads, v.data());
    Tensor t = Tensor::zeros(dtype, b.shape);
    for (size_t i = 0; i < v.size(); ++i) {
      if (dtype == DType::f64) {
        t.as<double>()[i] = v[i];
      } else {
        t.as<float>()[i] = static_cast<float>(v[i]);
      }
    }
    out.emplace_back("grad." + loaded.prefix + b.name, std::move(t));
  }
  return out;
}

}  // namespace moe::arch
