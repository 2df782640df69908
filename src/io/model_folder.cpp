#include "moe/model_folder.h"

#include <algorithm>
#include <filesystem>

#include "moe/error.h"
#include "util/json_file.h"

namespace moe {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& dir, const std::string& what) { throw InvalidInput("[model] " + dir + ": " + what); }

// A shard name from the index must be a file in the folder, not a path out of it.
void check_shard_name(const std::string& dir, const std::string& name, const std::string& tensor) {
  if (name.empty() || name.find('/') != std::string::npos || name.find('\\') != std::string::npos || name == "." || name == "..")
    fail(dir, "model.safetensors.index.json puts tensor " + tensor + " in \"" + name + "\", which is not a file name in the folder");
}

std::vector<int64_t> ids_of(const json& v) {
  std::vector<int64_t> ids;
  if (v.is_number_integer()) ids.push_back(v.get<int64_t>());
  if (v.is_array())
    for (const json& e : v)
      if (e.is_number_integer()) ids.push_back(e.get<int64_t>());
  return ids;
}

}  // namespace

ModelFolder ModelFolder::open(const std::string& dir) {
  ModelFolder m;
  m.dir_ = dir;
  const fs::path d(dir);
  std::error_code ec;
  if (!fs::is_directory(d, ec)) fail(dir, "not a folder (a Hugging Face model folder holds config.json and model*.safetensors)");
  if (!fs::exists(d / "config.json")) fail(dir, "no config.json: not a Hugging Face model folder");
  m.config_ = util::read_json_file((d / "config.json").string(), "[model]");
  if (!m.config_.is_object()) fail(dir, "config.json is not a JSON object");
  m.generation_config_ = json::object();
  if (fs::exists(d / "generation_config.json")) {
    m.generation_config_ = util::read_json_file((d / "generation_config.json").string(), "[model]");
    if (!m.generation_config_.is_object()) fail(dir, "generation_config.json is not a JSON object");
  }

  const fs::path index = d / "model.safetensors.index.json";
  std::map<std::string, std::string> weight_map;  // tensor -> shard file name
  std::vector<std::string> files;
  if (fs::exists(index)) {
    const json j = util::read_json_file(index.string(), "[model]");  // strict: a tensor named twice is a duplicate key
    if (!j.is_object() || !j.contains("weight_map") || !j.at("weight_map").is_object())
      fail(dir, "model.safetensors.index.json has no \"weight_map\" object");
    for (const auto& [tensor, shard] : j.at("weight_map").items()) {
      if (!shard.is_string()) fail(dir, "model.safetensors.index.json maps tensor " + tensor + " to " + shard.dump() + ", not a file name");
      check_shard_name(dir, shard.get<std::string>(), tensor);
      weight_map[tensor] = shard.get<std::string>();
      if (std::find(files.begin(), files.end(), shard.get<std::string>()) == files.end()) files.push_back(shard.get<std::string>());
    }
    if (files.empty()) fail(dir, "model.safetensors.index.json lists no tensors");
    std::sort(files.begin(), files.end());
    for (const std::string& f : files)
      if (!fs::exists(d / f)) {
        const auto it = std::find_if(weight_map.begin(), weight_map.end(), [&](const auto& kv) { return kv.second == f; });
        fail(dir, "shard " + f + " is missing (model.safetensors.index.json puts tensor " + it->first + " in it)");
      }
  } else if (fs::exists(d / "model.safetensors")) {
    files.push_back("model.safetensors");
  } else {
    const bool bin = fs::exists(d / "pytorch_model.bin") || fs::exists(d / "pytorch_model.bin.index.json");
    fail(dir, bin ? "only PyTorch .bin weights; this engine reads safetensors (model.safetensors or an index with shards)"
                  : "no weights: expected model.safetensors, or model.safetensors.index.json with its shards");
  }

  for (size_t s = 0; s < files.size(); ++s) {
    m.shards_.push_back(SafetensorsFile::open((d / files[s]).string()));
    for (const std::string& name : m.shards_.back().names()) {
      const auto [it, fresh] = m.where_.emplace(name, s);
      if (!fresh) fail(dir, "tensor " + name + " is in two shards: " + files[it->second] + " and " + files[s]);
      if (!weight_map.empty()) {
        const auto w = weight_map.find(name);
        if (w == weight_map.end()) fail(dir, "shard " + files[s] + " holds tensor " + name + ", which model.safetensors.index.json does not list");
        if (w->second != files[s])
          fail(dir, "tensor " + name + " is in " + files[s] + " but model.safetensors.index.json says " + w->second);
      }
    }
  }
  for (const auto& [tensor, shard] : weight_map)
    if (!m.where_.count(tensor)) fail(dir, "tensor " + tensor + " is listed in model.safetensors.index.json but is not in " + shard);
  return m;
}

bool ModelFolder::has_tokenizer() const { return fs::exists(fs::path(dir_) / "tokenizer.json"); }

std::vector<std::string> ModelFolder::tensor_names() const {
  std::vector<std::string> names;
  for (const auto& [n, s] : where_) names.push_back(n);
  return names;
}

const SafetensorsFile& ModelFolder::file_of(const std::string& name) const {
  const auto it = where_.find(name);
  if (it == where_.end()) fail(dir_, "no tensor " + name + " in the weights");
  return shards_[it->second];
}

int64_t ModelFolder::weight_bytes() const {
  int64_t total = 0;
  for (const SafetensorsFile& f : shards_)
    for (const std::string& n : f.names()) total += static_cast<int64_t>(f.entry(n).end - f.entry(n).begin);
  return total;
}

std::vector<int64_t> ModelFolder::eos_token_ids() const {
  if (generation_config_.contains("eos_token_id")) return ids_of(generation_config_.at("eos_token_id"));
  if (config_.contains("eos_token_id")) return ids_of(config_.at("eos_token_id"));
  return {};
}

}  // namespace moe
