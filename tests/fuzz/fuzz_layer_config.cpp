// libFuzzer target: MoE layer configs (`moe layer --config`, the "moe" object of a model config,
// docs/layer-format.md) and whole model configs (`moe train --config`, a checkpoint's
// "moe.config"). Bytes -> strict JSON -> config, or InvalidInput. A config that reads must write
// back to JSON that reads as the same config (the round trip a checkpoint relies on).
#include "fuzz_common.h"
#include "moe/gpt.h"
#include "moe/layer_format.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  moe::set_warning_handler([](const std::string&) {});  // likely-typo warnings are not findings
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::optional<nlohmann::json> j = fuzz::json_of(data, size);
  if (!j) return 0;
  try {
    (void)moe::arch::layer_model_type(*j);
    const moe::MoeLayerConfig c = moe::arch::layer_config_from_json(*j);
    const nlohmann::json back = moe::arch::layer_config_to_json(c);
    fuzz::check(moe::arch::layer_config_to_json(moe::arch::layer_config_from_json(back)) == back,
                "layer config JSON round trip");
  } catch (const moe::InvalidInput&) {
  }
  try {
    const moe::GptConfig g = moe::gpt_config_from_json(j->contains("model") ? j->at("model") : *j);
    const nlohmann::json back = moe::gpt_config_to_json(g);
    fuzz::check(moe::gpt_config_to_json(moe::gpt_config_from_json(back)) == back, "model config JSON round trip");
    (void)moe::gpt_param_count(g, false);
    (void)moe::gpt_param_count(g, true);
  } catch (const moe::InvalidInput&) {
  }
  return 0;
}
