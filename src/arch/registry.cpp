// The registry table: every model type the engine knows, in one explicit list.
#include "arch/registry.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "moe/error.h"

namespace moe::arch {

std::span<const ArchEntry* const> arch_entries() {
  static const ArchEntry* const table[] = {&kMixtral,     &kQwen2Moe, &kQwen3Moe,
                                           &kOlmoe,       &kDeepseekV2, &kDeepseekV3,
                                           &kGptOss,      &kSwitchTransformers, &kLlama,
                                           &kCustom};
  return table;
}

const ArchEntry* find_arch(std::string_view model_type) {
  for (const ArchEntry* e : arch_entries()) {
    if (model_type == e->model_type) return e;
  }
  return nullptr;
}

std::vector<std::string> supported_model_types() {
  std::vector<std::string> names;
  for (const ArchEntry* e : arch_entries()) {
    if (e->distill) names.push_back(e->model_type);
  }
  std::sort(names.begin(), names.end());
  return names;
}

namespace {

// The config's registry entry, for the estimator and the checkpoint names.
const ArchEntry& model_entry(const nlohmann::json& config) {
  if (!config.is_object()) {
    throw InvalidInput("[config] the config must be a JSON object, got " + std::string(config.type_name()));
  }
  if (!config.contains("model_type") || !config.at("model_type").is_string()) {
    throw InvalidInput("[config] missing key 'model_type' (a string such as \"mixtral\")");
  }
  const std::string type = config.at("model_type").get<std::string>();
  const ArchEntry* e = find_arch(type);
  if (!e || !e->distill) {
    std::string known;
    for (const std::string& n : supported_model_types()) known += (known.empty() ? "" : ", ") + n;
    throw InvalidInput("[config] model_type '" + type + "' is not supported; known: " + known);
  }
  return *e;
}

JsonFields config_fields(const nlohmann::json& config, const ArchEntry& e) {
  return JsonFields(config, "[config] " + std::string(e.model_type) + ": ");
}

void check_moe_layers(const ModelArch& m) {
  for (const LayerArch& l : m.layers) {
    if (!l.ffn.moe) continue;
    if (l.ffn.top_k < 1) {
      throw InvalidInput("[config] " + m.model_type + ": experts per token (" + std::to_string(l.ffn.top_k) +
                         ") must be >= 1");
    }
    if (l.ffn.top_k > l.ffn.n_experts) {
      throw InvalidInput("[config] " + m.model_type + ": experts per token (" + std::to_string(l.ffn.top_k) +
                         ") > number of experts (" + std::to_string(l.ffn.n_experts) + ")");
    }
  }
}

}  // namespace

ModelArch model_arch_from_hf_config(const nlohmann::json& config) {
  const ArchEntry& e = model_entry(config);
  const JsonFields f = config_fields(config, e);
  ModelArch m = e.distill(f);
  check_moe_layers(m);
  if (e.moe_layer && !f.is_null("n_routed_experts")) {  // what HF would fail on later (groups that do not divide the experts)
    try {
      validate_layer(moe_layer_of(e, f));
    } catch (const InvalidInput& ex) {
      f.fail(ex.what());
    }
  }
  f.warn_likely_typos();
  return m;
}

std::vector<TensorSpec> checkpoint_tensors(const nlohmann::json& config) {
  const ArchEntry& e = model_entry(config);
  const JsonFields f = config_fields(config, e);
  ModelArch m = e.distill(f);
  check_moe_layers(m);
  // A few numbers can describe more tensors than any checkpoint has (2^40 experts): bound the
  // list before building it (found by fuzz_hf_config). Per expert at most 6 tensors (gate, up,
  // down and their biases), per layer at most 32 others.
  constexpr int64_t kMaxTensors = 4'000'000;
  int64_t bound = 64;
  for (const LayerArch& l : m.layers) {
    bound += 32 + (l.ffn.moe ? 6 * std::min<int64_t>(l.ffn.n_experts, kMaxTensors) : 0);
    if (bound > kMaxTensors)
      throw InvalidInput("[config] " + m.model_type + ": its checkpoint would hold more than " + std::to_string(kMaxTensors) +
                         " tensors (" + std::to_string(m.layers.size()) + " layers" +
                         (l.ffn.moe ? ", " + std::to_string(l.ffn.n_experts) + " experts per MoE layer" : std::string()) +
                         "); no real model has that many");
  }
  return e.checkpoint ? e.checkpoint(f, m) : decoder_checkpoint(e, f, m);
}

}  // namespace moe::arch
