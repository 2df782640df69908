// A model folder's tensors against the ones its config.json implies (checkpoint_tensors): every
// missing or extra tensor, wrong shape or unsupported dtype is an error naming it.
#include <map>

#include "arch/registry.h"
#include "moe/error.h"
#include "moe/model_folder.h"

namespace moe::arch {

FolderTensors check_folder_tensors(const ModelFolder& folder) {
  const std::string where = "[model] " + folder.dir() + ": ";
  const std::vector<TensorSpec> want = checkpoint_tensors(folder.config());
  const ModelArch arch = model_arch_from_hf_config(folder.config());
  FolderTensors r;
  std::map<std::string, Shape> expected;
  for (const TensorSpec& t : want) expected.emplace(t.name, t.shape);
  std::vector<std::string> missing;
  for (const TensorSpec& t : want)
    if (!folder.contains(t.name)) missing.push_back(t.name);
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 3; ++i) list += (i ? ", " : "") + missing[i];
    throw InvalidInput(where + std::to_string(missing.size()) + " tensor(s) the config implies are missing: " + list +
                       (missing.size() > 3 ? ", ..." : ""));
  }
  for (const std::string& name : folder.tensor_names()) {
    const SafetensorsEntry& e = folder.entry(name);
    const auto it = expected.find(name);
    if (it == expected.end()) {
      // A tied head is sometimes saved anyway (the same values as the embeddings).
      if (arch.tied_head && name == "lm_head.weight") {
        r.ignored.push_back(name);
        continue;
      }
      throw InvalidInput(where + "tensor " + name + " in " + folder.file_of(name).path() + " is not part of a " +
                         arch.model_type + " model with this config");
    }
    if (e.shape != it->second)
      throw InvalidInput(where + "tensor " + name + " has shape " + shape_str(e.shape) + ", the config implies " +
                         shape_str(it->second));
    if (e.dtype != DType::bf16 && e.dtype != DType::f16 && e.dtype != DType::f32)
      throw InvalidInput(where + "tensor " + name + " is " + dtype_name(e.dtype) +
                         "; weights are read as BF16, F16 or F32 (quantised checkpoints are not)");
    ++r.by_dtype[dtype_name(e.dtype)];
    r.bytes += static_cast<int64_t>(e.end - e.begin);
  }
  r.n_tensors = static_cast<int64_t>(want.size());
  return r;
}

}  // namespace moe::arch
