// Hugging Face model folders: one file or shards with an index, and a clear error naming the
// folder, file and tensor for every inconsistency in the set.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "moe/error.h"
#include "test_support.h"
#include "moe/model_folder.h"

namespace fs = std::filesystem;
using moe::ModelFolder;

namespace {

using moe::test::error_of;

fs::path fresh(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("moe_folder_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  std::ofstream(d / "config.json") << R"({"model_type": "llama", "eos_token_id": 2})";
  return d;
}

void write_text(const fs::path& p, const std::string& s) { std::ofstream(p) << s; }

void shard(const fs::path& p, const std::vector<std::string>& names) {
  std::vector<moe::Tensor> keep;
  moe::NamedTensors named;
  for (const std::string& n : names) {
    keep.push_back(moe::Tensor::zeros(moe::DType::bf16, {2, 3}));
    named.emplace_back(n, keep.back().view());
  }
  moe::write_safetensors(p.string(), named);
}

std::string open_error(const fs::path& d) { return error_of([&] { ModelFolder::open(d.string()); }); }

const char* kIndex = R"({"metadata": {"total_size": 24}, "weight_map": {"a": "model-00001-of-00002.safetensors",
                        "b": "model-00001-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}})";

}  // namespace

TEST(ModelFolder, OneFileAndShards) {
  fs::path d = fresh("one");
  shard(d / "model.safetensors", {"x", "y"});
  write_text(d / "generation_config.json", R"({"eos_token_id": [1, 7]})");
  const ModelFolder one = ModelFolder::open(d.string());
  EXPECT_EQ(one.tensor_names(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(one.n_shards(), 1u);
  EXPECT_EQ(one.weight_bytes(), 24);
  EXPECT_EQ(one.eos_token_ids(), (std::vector<int64_t>{1, 7}));
  EXPECT_EQ(one.config().at("model_type"), "llama");
  EXPECT_EQ(one.entry("x").dtype, moe::DType::bf16);

  d = fresh("sharded");
  shard(d / "model-00001-of-00002.safetensors", {"a", "b"});
  shard(d / "model-00002-of-00002.safetensors", {"c"});
  write_text(d / "model.safetensors.index.json", kIndex);
  const ModelFolder many = ModelFolder::open(d.string());
  EXPECT_EQ(many.n_shards(), 2u);
  EXPECT_EQ(many.tensor_names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(many.file_of("c").path(), (d / "model-00002-of-00002.safetensors").string());
  EXPECT_EQ(many.eos_token_ids(), (std::vector<int64_t>{2}));  // from config.json
  EXPECT_NE(error_of([&] { many.file_of("zz"); }).find("no tensor zz"), std::string::npos);
}

TEST(ModelFolder, InconsistentSetsAreRefused) {
  const fs::path d = fresh("bad");
  EXPECT_NE(open_error(d).find("no weights"), std::string::npos);
  write_text(d / "pytorch_model.bin", "x");
  EXPECT_NE(open_error(d).find("only PyTorch .bin weights"), std::string::npos);
  fs::remove(d / "pytorch_model.bin");

  shard(d / "model-00001-of-00002.safetensors", {"a", "b"});
  write_text(d / "model.safetensors.index.json", kIndex);
  EXPECT_NE(open_error(d).find("shard model-00002-of-00002.safetensors is missing (model.safetensors.index.json puts tensor c in it)"),
            std::string::npos);
  shard(d / "model-00002-of-00002.safetensors", {"c", "a"});
  EXPECT_NE(open_error(d).find("tensor a is in two shards"), std::string::npos);
  shard(d / "model-00002-of-00002.safetensors", {"c", "extra"});
  EXPECT_NE(open_error(d).find("holds tensor extra, which model.safetensors.index.json does not list"), std::string::npos);
  shard(d / "model-00002-of-00002.safetensors", {"b2"});
  write_text(d / "model.safetensors.index.json", R"({"weight_map": {"a": "model-00001-of-00002.safetensors",
      "b": "model-00001-of-00002.safetensors", "b2": "model-00002-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}})");
  EXPECT_NE(open_error(d).find("tensor c is listed in model.safetensors.index.json but is not in model-00002-of-00002.safetensors"),
            std::string::npos);
  write_text(d / "model.safetensors.index.json", R"({"weight_map": {"a": "model-00001-of-00002.safetensors", "a": "x"}})");
  EXPECT_NE(open_error(d).find("duplicate key"), std::string::npos);
  write_text(d / "model.safetensors.index.json", R"({"weight_map": {"a": "../../etc/passwd"}})");
  EXPECT_NE(open_error(d).find("not a file name in the folder"), std::string::npos);
  write_text(d / "model.safetensors.index.json", R"({"weight_map": {"a": "model-00001-of-00002.safetensors",
      "b": "model-00002-of-00002.safetensors", "b2": "model-00002-of-00002.safetensors"}})");
  EXPECT_NE(open_error(d).find("tensor b is in model-00001-of-00002.safetensors but model.safetensors.index.json says model-00002"), std::string::npos);
  write_text(d / "model.safetensors.index.json", R"({"weights": {}})");
  EXPECT_NE(open_error(d).find("no \"weight_map\""), std::string::npos);

  write_text(d / "model.safetensors.index.json", kIndex);
  shard(d / "model-00002-of-00002.safetensors", {"c"});
  {  // a truncated shard
    std::string bytes;
    std::ifstream in(d / "model-00002-of-00002.safetensors", std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
    std::ofstream(d / "model-00002-of-00002.safetensors", std::ios::binary) << bytes.substr(0, bytes.size() - 5);
  }
  EXPECT_NE(open_error(d).find("model-00002-of-00002.safetensors"), std::string::npos);

  fs::remove(d / "config.json");
  EXPECT_NE(open_error(d).find("no config.json"), std::string::npos);
  EXPECT_NE(open_error(d / "nope").find("not a folder"), std::string::npos);
  fs::remove_all(d);
}
