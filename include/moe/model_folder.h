// A Hugging Face model folder as downloaded from the Hub: config.json, the weights as
// model.safetensors or as shards listed by model.safetensors.index.json, and optionally
// generation_config.json and the tokenizer files. Opening maps every shard and checks the set
// before any weight is read: each shard the index names exists and is a valid safetensors file,
// the index and the shards' headers list the same tensors, and no tensor is in two shards. Every
// problem is an InvalidInput naming the folder, the file and the tensor.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "moe/safetensors.h"

namespace moe {

class ModelFolder {
 public:
  static ModelFolder open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const nlohmann::json& config() const { return config_; }                        // config.json
  const nlohmann::json& generation_config() const { return generation_config_; }  // {} when absent
  bool has_tokenizer() const;  // tokenizer.json is present

  size_t n_shards() const { return shards_.size(); }
  std::vector<std::string> tensor_names() const;  // sorted
  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  const SafetensorsFile& file_of(const std::string& name) const;  // InvalidInput naming the tensor if absent
  const SafetensorsEntry& entry(const std::string& name) const { return file_of(name).entry(name); }
  TensorView view(const std::string& name) const { return file_of(name).view(name); }
  int64_t weight_bytes() const;  // the tensors' data, all shards

  // generation_config.json's eos_token_id (an id or a list), else config.json's; may be empty.
  std::vector<int64_t> eos_token_ids() const;

 private:
  std::string dir_;
  nlohmann::json config_, generation_config_;
  std::vector<SafetensorsFile> shards_;
  std::map<std::string, size_t> where_;  // tensor -> shard index
};

}  // namespace moe
