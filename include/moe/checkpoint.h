// Training checkpoints: ONE safetensors file holding the parameters and the optimizer state as
// tensors, and in its __metadata__ (strings):
//   "moe.format"      "moe.cpp checkpoint 2"
//   "moe.config"      the model/run config JSON (what must match to resume)
//   "moe.train_state" step, rng and batcher states, lr, ... (JSON, as the trainer writes it)
//   "moe.checksum"    a 64-bit hash (hex) of every tensor's name, dtype, shape and bytes and of
//                     every other metadata entry (format 1 files, tensors only, still load)
// One file means one atomic rename (write_file_atomic): a crash, a full disk or a failed write
// leaves the previous checkpoint intact, and config, state and weights can never disagree.
// The file reads as plain safetensors anywhere (Python, other tools).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "moe/safetensors.h"  // NamedTensors
#include "moe/tensor.h"

namespace moe {

// `path` itself, or `path`/checkpoint.safetensors when `path` is an existing directory.
std::string checkpoint_file(const std::string& path);

// Writes the checkpoint atomically (tensors with the widest dtype first so every tensor stays
// aligned). Throws InvalidInput("[checkpoint] ...") for bad names or tensors (nothing written)
// and std::runtime_error("[atomic_file] ...") if the write fails (the old file is untouched).
void save_checkpoint(const std::string& path, const nlohmann::json& config, const NamedTensors& tensors,
                     const nlohmann::json& train_state);

struct Checkpoint {
  std::string path;  // the file read
  nlohmann::json config;
  nlohmann::json train_state;
  std::map<std::string, Tensor> tensors;  // owning, aligned
};

// Reads and verifies a checkpoint. InvalidInput("[checkpoint] <path>: ...") for a missing file,
// a truncated or corrupted one (safetensors validation, then the checksum), or missing metadata.
Checkpoint load_checkpoint(const std::string& path);

// Copies loaded tensors into `dst` (e.g. the model's parameters + AdamW::state_tensors()) after
// checking every name, dtype and shape first: on any mismatch nothing is written and the error
// names the first offending tensor ("[checkpoint] <origin>: tensor 'blocks.0.wq' has shape [8, 4]
// in the checkpoint, expected [8, 8]"). Tensors in `loaded` that `dst` does not name are an
// error unless `allow_unused` (e.g. restoring only the weights for generation).
void restore_into(const NamedTensors& dst, const std::map<std::string, Tensor>& loaded, const std::string& origin,
                  bool allow_unused = false);

// The first difference between two configs (object keys in sorted order, depth first), or nullopt
// if equal. `key` is a path like "model.n_layers" or "layers[2].k"; a missing key shows as
// "(missing)". Keys listed in `ignore` (full paths) are skipped.
struct ConfigDifference {
  std::string key;
  std::string a, b;  // the two values as compact JSON
};
std::optional<ConfigDifference> first_config_difference(const nlohmann::json& a, const nlohmann::json& b,
                                                   const std::vector<std::string>& ignore = {});

// Throws InvalidInput("[checkpoint] <origin>: the checkpoint's config differs from this run's
// at <key>: checkpoint has X, this run has Y") on the first difference.
void check_config_matches(const nlohmann::json& checkpoint_config, const nlohmann::json& run_config,
                          const std::string& origin, const std::vector<std::string>& ignore = {});

}  // namespace moe
