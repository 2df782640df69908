#include "moe/checkpoint.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

#include "moe/error.h"
#include "util/json_file.h"

namespace moe {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Format 2: the checksum covers the metadata too (config, train state). Format 1 files (tensors
// only) still load.
constexpr const char* kFormat = "moe.cpp checkpoint 2";
constexpr const char* kFormatV1 = "moe.cpp checkpoint 1";
constexpr const char* kKeyFormat = "moe.format";
constexpr const char* kKeyConfig = "moe.config";
constexpr const char* kKeyState = "moe.train_state";
constexpr const char* kKeyChecksum = "moe.checksum";

[[noreturn]] void fail(const std::string& origin, const std::string& what) {
  throw InvalidInput("[checkpoint] " + origin + ": " + what);
}

// ---- checksum: xxHash64-style rounds over 4 lanes of 8-byte words ----------------------------------

constexpr uint64_t kP1 = 0x9E3779B185EBCA87ULL, kP2 = 0xC2B2AE3D27D4EB4FULL, kP3 = 0x165667B19E3779F9ULL;

uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
uint64_t round64(uint64_t acc, uint64_t w) { return rotl(acc + w * kP2, 31) * kP1; }
uint64_t avalanche(uint64_t h) {
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  h *= kP3;
  return h ^ (h >> 32);
}

uint64_t hash_bytes(const void* data, size_t n, uint64_t seed) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t lane[4] = {seed + kP1 + kP2, seed + kP2, seed, seed - kP1};
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) {
      uint64_t w;
      std::memcpy(&w, p + i + 8 * k, 8);
      lane[k] = round64(lane[k], w);
    }
  }
  uint64_t h = rotl(lane[0], 1) + rotl(lane[1], 7) + rotl(lane[2], 12) + rotl(lane[3], 18) + n;
  for (; i < n; ++i) h = rotl(h ^ (p[i] * kP3), 11) * kP1;
  return avalanche(h);
}

// Over tensors in name order: name, dtype, shape and data all count.
uint64_t checksum(std::vector<std::pair<std::string, TensorView>> tensors) {
  std::sort(tensors.begin(), tensors.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  uint64_t h = 0x6d6f652e63707021ULL;
  for (const auto& [name, t] : tensors) {
    const std::string head = name + '\0' + dtype_name(t.dtype()) + shape_str(t.shape());
    h = round64(h, hash_bytes(head.data(), head.size(), h));
    h = round64(h, hash_bytes(t.data(), t.nbytes(), h));
  }
  return avalanche(h);
}

// Format 2: the tensors' checksum, then every metadata entry but the checksum itself, in key order.
uint64_t checksum_v2(const std::vector<std::pair<std::string, TensorView>>& tensors,
                     const std::map<std::string, std::string>& meta) {
  uint64_t h = checksum(tensors);
  for (const auto& [key, value] : meta) {
    if (key == "moe.checksum") continue;
    const std::string entry = key + '\0' + value;
    h = round64(h, hash_bytes(entry.data(), entry.size(), h));
  }
  return avalanche(h);
}

std::string hex64(uint64_t x) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(x));
  return buf;
}

json parse_metadata_json(const std::map<std::string, std::string>& meta, const char* key, const std::string& path) {
  const auto it = meta.find(key);
  if (it == meta.end()) fail(path, std::string("no \"") + key + "\" in the metadata");
  json j = util::parse_json_strict(it->second, "[checkpoint] " + path + ":", std::string("metadata \"") + key + "\"");
  if (!j.is_object()) fail(path, std::string("metadata \"") + key + "\" is " + j.type_name() + ", not a JSON object");
  return j;
}

void diff(const json& a, const json& b, const std::string& path, const std::set<std::string>& ignore,
          std::optional<ConfigDifference>& out) {
  if (out || ignore.count(path)) return;
  if (a.is_object() && b.is_object()) {
    std::set<std::string> keys;
    for (const auto& [k, _] : a.items()) keys.insert(k);
    for (const auto& [k, _] : b.items()) keys.insert(k);
    for (const std::string& k : keys) {
      const std::string sub = path.empty() ? k : path + "." + k;
      if (ignore.count(sub)) continue;
      if (!a.contains(k) || !b.contains(k)) {
        out = ConfigDifference{sub, a.contains(k) ? a.at(k).dump() : "(missing)", b.contains(k) ? b.at(k).dump() : "(missing)"};
        return;
      }
      diff(a.at(k), b.at(k), sub, ignore, out);
      if (out) return;
    }
    return;
  }
  if (a.is_array() && b.is_array() && a.size() == b.size()) {
    for (size_t i = 0; i < a.size(); ++i) {
      diff(a[i], b[i], path + "[" + std::to_string(i) + "]", ignore, out);
      if (out) return;
    }
    return;
  }
  if (a != b) out = ConfigDifference{path.empty() ? "(root)" : path, a.dump(), b.dump()};
}

}  // namespace

std::string checkpoint_file(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return (fs::path(path) / "checkpoint.safetensors").string();
  return path;
}

void save_checkpoint(const std::string& path, const json& config, const NamedTensors& tensors,
                     const json& train_state) {
  const std::string file = checkpoint_file(path);
  std::set<std::string> seen;
  for (const auto& [name, t] : tensors) {
    if (!seen.insert(name).second) fail(file, "tensor '" + name + "' is given twice");
    if (t.numel() > 0 && t.data() == nullptr) fail(file, "tensor '" + name + "' has no data");
  }
  NamedTensors ordered = tensors;  // widest elements first: every tensor stays aligned in the file
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const auto& a, const auto& b) { return dtype_size(a.second.dtype()) > dtype_size(b.second.dtype()); });
  std::map<std::string, std::string> meta;
  meta[kKeyFormat] = kFormat;
  meta[kKeyConfig] = config.dump();
  meta[kKeyState] = train_state.dump();
  meta[kKeyChecksum] = hex64(checksum_v2(ordered, meta));
  try {
    write_safetensors(file, ordered, meta);
  } catch (const InvalidInput& e) {  // bad names: nothing was written
    fail(file, e.what());
  }
}

Checkpoint load_checkpoint(const std::string& path) {
  Checkpoint ck;
  ck.path = checkpoint_file(path);
  std::error_code ec;
  if (!fs::exists(ck.path, ec)) fail(ck.path, "no such file");
  std::optional<SafetensorsFile> file;
  try {
    file.emplace(SafetensorsFile::open(ck.path));
  } catch (const InvalidInput& e) {
    fail(ck.path, std::string("not a readable checkpoint (truncated or corrupted?): ") + e.what());
  }
  const auto& meta = file->metadata();
  const auto fmt = meta.find(kKeyFormat);
  if (fmt == meta.end()) fail(ck.path, "a safetensors file, but not a moe.cpp checkpoint (no \"moe.format\" metadata)");
  if (fmt->second != kFormat && fmt->second != kFormatV1) {
    fail(ck.path, "format \"" + fmt->second + "\", expected \"" + kFormat + "\"");
  }
  ck.config = parse_metadata_json(meta, kKeyConfig, ck.path);
  ck.train_state = parse_metadata_json(meta, kKeyState, ck.path);
  const auto sum = meta.find(kKeyChecksum);
  if (sum == meta.end()) fail(ck.path, "no \"moe.checksum\" in the metadata");
  NamedTensors views;
  for (const std::string& name : file->names()) {
    Tensor t = file->load(name);
    views.emplace_back(name, t.view());
    ck.tensors.emplace(name, std::move(t));
  }
  const bool v1 = fmt->second == kFormatV1;
  const std::string actual = hex64(v1 ? checksum(views) : checksum_v2(views, meta));
  if (actual != sum->second) {
    fail(ck.path, "checksum mismatch (stored " + sum->second + ", the file hashes to " + actual +
                      "): the file is corrupted or was edited");
  }
  return ck;
}

void restore_into(const NamedTensors& dst, const std::map<std::string, Tensor>& loaded, const std::string& origin,
                  bool allow_unused) {
  std::set<std::string> wanted;
  for (const auto& [name, t] : dst) {
    wanted.insert(name);
    const auto it = loaded.find(name);
    if (it == loaded.end()) {
      fail(origin, "no tensor '" + name + "' in the checkpoint (it has " + std::to_string(loaded.size()) + " tensors)");
    }
    const Tensor& src = it->second;
    if (src.dtype() != t.dtype()) {
      fail(origin, "tensor '" + name + "' is " + dtype_name(src.dtype()) + " in the checkpoint, expected " +
                       dtype_name(t.dtype()));
    }
    if (src.shape() != t.shape()) {
      fail(origin, "tensor '" + name + "' has shape " + shape_str(src.shape()) + " in the checkpoint, expected " +
                       shape_str(t.shape()));
    }
    if (t.numel() > 0 && t.data() == nullptr) fail(origin, "destination tensor '" + name + "' has no data");
  }
  if (!allow_unused) {
    for (const auto& [name, _] : loaded) {
      if (!wanted.count(name)) fail(origin, "the checkpoint has a tensor '" + name + "' that this run does not use");
    }
  }
  for (const auto& [name, t] : dst) {
    const Tensor& src = loaded.at(name);
    if (src.nbytes() > 0) std::memcpy(t.data(), src.data(), src.nbytes());
  }
}

std::optional<ConfigDifference> first_config_difference(const json& a, const json& b,
                                                        const std::vector<std::string>& ignore) {
  std::optional<ConfigDifference> out;
  diff(a, b, "", std::set<std::string>(ignore.begin(), ignore.end()), out);
  return out;
}

void check_config_matches(const json& checkpoint_config, const json& run_config, const std::string& origin,
                          const std::vector<std::string>& ignore) {
  if (const auto d = first_config_difference(checkpoint_config, run_config, ignore)) {
    fail(origin, "the checkpoint's config differs from this run's at " + d->key + ": checkpoint has " + d->a +
                     ", this run has " + d->b);
  }
}

}  // namespace moe
