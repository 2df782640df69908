// libFuzzer target: Hugging Face config.json as the estimator reads it (`moe estimate --config`;
// the same registry reads configs for the model loader). Bytes -> strict JSON -> architecture ->
// parameter and memory counts, the tensor list and both reports, or InvalidInput. Invariants:
// active parameters never exceed the total, and the checkpoint's tensors hold exactly the
// parameters counted.
#include "fuzz_common.h"
#include "moe/arch.h"
#include "moe/model_count.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  moe::set_warning_handler([](const std::string&) {});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::optional<nlohmann::json> j = fuzz::json_of(data, size);
  if (!j) return 0;
  int64_t total = -1;
  try {
    const moe::estimate::ModelArch arch = moe::estimate::model_arch_from_hf_config(*j);
    const moe::estimate::ModelCount c = moe::estimate::count_model(arch, "bf16", 4096);
    fuzz::check(c.active <= c.total, "active <= total parameters");
    (void)moe::estimate::format_model_report(c, "<fuzz>");
    (void)moe::estimate::model_report_json(c).dump();
    total = c.total;
  } catch (const moe::InvalidInput&) {
  }
  try {
    __int128 n = 0;
    for (const moe::arch::TensorSpec& t : moe::arch::checkpoint_tensors(*j)) {
      fuzz::check(!t.name.empty(), "tensor names are not empty");
      __int128 numel = 1;
      for (const int64_t d : t.shape) numel *= d;
      n += numel;
    }
    if (total >= 0) fuzz::check(n == total, "checkpoint tensors hold the parameters counted");
  } catch (const moe::InvalidInput&) {
  }
  return 0;
}
