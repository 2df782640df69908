// Whole-model counts from the Hugging Face configs in examples/configs against the totals and
// active figures their publishers state (shared/data/hf-configs/README.md), plus bad configs.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "moe/error.h"
#include "moe/model_count.h"

using namespace moe::estimate;
using nlohmann::json;

namespace {

json load(const std::string& name) {
  std::ifstream in(std::string(MOE_SOURCE_DIR) + "/examples/configs/" + name);
  EXPECT_TRUE(in.good()) << name;
  return json::parse(in);
}

ModelCount count(const std::string& name, int64_t context = 0) {
  return count_model(model_arch_from_hf_config(load(name)), "bf16", context);
}

// Publishers state figures like "46.7B" or "37B": rounded, or sometimes cut, to those digits.
bool matches_published(int64_t value, double published_billions, int decimals) {
  const double scale = std::pow(10.0, decimals);
  const double v = static_cast<double>(value) / 1e9 * scale;
  const double want = published_billions * scale;
  return std::fabs(std::round(v) - want) < 1e-6 || std::fabs(std::floor(v) - want) < 1e-6;
}

enum class Active { all, without_embedding, without_embeddings };

struct Published {
  const char* file;
  double total;
  int total_decimals;
  double active;
  int active_decimals;
  Active definition;  // which parameters the publisher counts as active
};

// Definitions found to match each publisher (docs/estimator.md discusses them).
const Published kPublished[] = {
    {"mixtral-8x7b.json", 46.7, 1, 12.9, 1, Active::all},
    {"mixtral-8x22b.json", 141, 0, 39, 0, Active::all},
    {"qwen3-30b-a3b.json", 30.5, 1, 3.3, 1, Active::all},
    {"qwen3-235b-a22b.json", 235, 0, 22, 0, Active::all},
    {"deepseek-v2-lite.json", 16, 0, 2.4, 1, Active::without_embedding},
    {"deepseek-v3.json", 671, 0, 37, 0, Active::all},
    {"gpt-oss-20b.json", 21, 0, 3.6, 1, Active::without_embedding},
    {"gpt-oss-120b.json", 117, 0, 5.1, 1, Active::without_embedding},
    {"llama-2-7b.json", 7, 0, 7, 0, Active::all},
    {"deepseek-v2.reconstructed.json", 236, 0, 21, 0, Active::all},
    {"qwen2-57b-a14b.reconstructed.json", 57, 0, 14, 0, Active::all},
};

}  // namespace

TEST(ModelCount, PublishedTotalsAndActive) {
  for (const Published& p : kPublished) {
    SCOPED_TRACE(p.file);
    const ModelCount c = count(p.file);
    EXPECT_TRUE(matches_published(c.total, p.total, p.total_decimals)) << c.total;
    const int64_t active = p.definition == Active::all                 ? c.active
                           : p.definition == Active::without_embedding ? c.active_without_embedding
                                                                       : c.active_without_embeddings;
    EXPECT_TRUE(matches_published(active, p.active, p.active_decimals)) << active;
    EXPECT_LE(c.active, c.total);
  }
}

TEST(ModelCount, PublishedFiguresAreNotTrivialToMatch) {
  // The check itself must be able to fail: off by one unit of the last digit is a mismatch.
  EXPECT_FALSE(matches_published(46'800'000'000, 46.7, 1));
  EXPECT_FALSE(matches_published(45'690'000'000, 46.7, 1));
  EXPECT_TRUE(matches_published(46'702'792'704, 46.7, 1));
}

TEST(ModelCount, Qwen3ExactTotalAndNonEmbedding) {
  const ModelCount c = count("qwen3-30b-a3b.json");
  EXPECT_EQ(c.total, 30'532'122'624);                                   // model card, exact
  EXPECT_TRUE(matches_published(c.total_without_embeddings, 29.9, 1));  // "non-embedding 29.9B"
  const ModelCount big = count("qwen3-235b-a22b.json");
  EXPECT_TRUE(matches_published(big.total_without_embeddings, 234, 0));
}

TEST(ModelCount, MixtralByParts) {
  const ModelCount c = count("mixtral-8x7b.json");
  auto part = [&](const std::string& name) {
    for (const PartCount& p : c.parts) {
      if (p.name == name) return p;
    }
    ADD_FAILURE() << name;
    return PartCount{};
  };
  EXPECT_EQ(part("embeddings").total, 131'072'000);
  EXPECT_EQ(part("attention").total, 1'342'177'280);  // 41,943,040 per layer
  EXPECT_EQ(part("router").total, 8 * 4096 * 32);
  EXPECT_EQ(part("routed_experts").total, 45'097'156'608);
  EXPECT_EQ(part("routed_experts").active, 45'097'156'608 / 4);  // 2 of 8
  EXPECT_EQ(part("lm_head").total, 131'072'000);
  EXPECT_EQ(part("norms").total, (2 * 32 + 1) * 4096);
  EXPECT_EQ(part("shared_experts").total, 0);
  EXPECT_EQ(c.moe_layers, 32);
  EXPECT_EQ(c.dense_layers, 0);
}

TEST(ModelCount, DeepSeekLayersAndSharedExperts) {
  const ModelCount v3 = count("deepseek-v3.json");
  EXPECT_EQ(v3.moe_layers, 58);
  EXPECT_EQ(v3.dense_layers, 3);
  for (const PartCount& p : v3.parts) {
    if (p.name == "shared_experts") {
      EXPECT_EQ(p.total, 58LL * 3 * 7168 * 2048);
    } else if (p.name == "router") {
      EXPECT_EQ(p.total, 58LL * (256 * 7168 + 256));  // + e_score_correction_bias
    } else if (p.name == "dense_ffn") {
      EXPECT_EQ(p.total, 3LL * 3 * 7168 * 18432);
    }
  }
  const ModelCount lite = count("deepseek-v2-lite.json");  // q_lora_rank null: plain q_proj
  EXPECT_EQ(lite.moe_layers, 26);
}

TEST(ModelCount, KvCache) {
  // Mixtral: 2 (K, V) · 8 KV heads · 128 · 32 layers · 2 bytes.
  EXPECT_EQ(count("mixtral-8x7b.json").kv_bytes_per_token, 131'072);
  // DeepSeek-V3 caches the latent: (kv_lora_rank 512 + rope 64) · 61 layers · 2 bytes.
  const ModelCount v3 = count("deepseek-v3.json", 1000);
  EXPECT_EQ(v3.kv_bytes_per_token, 576 * 61 * 2);
  EXPECT_EQ(v3.kv_bytes_per_token_expanded, 128LL * (192 + 128) * 61 * 2);
  EXPECT_EQ(v3.kv_bytes_for_context, 1000LL * 576 * 61 * 2);
  // gpt-oss-20b: 12 full + 12 sliding (window 128) layers, 2048 bytes per layer per token.
  const ModelCount oss = count("gpt-oss-20b.json", 4096);
  EXPECT_EQ(oss.kv_bytes_per_token, 24 * 2048);
  EXPECT_EQ(oss.kv_bytes_for_context, 12LL * 4096 * 2048 + 12LL * 128 * 2048);
}

TEST(ModelCount, ActivationsMoeVsDense) {
  const ModelCount c = count("mixtral-8x7b.json");
  ASSERT_EQ(c.activations.size(), 2u);
  const ActivationCount& moe = c.activations[0];
  const ActivationCount& dense = c.activations[1];
  EXPECT_EQ(dense.hidden, 2 * 14336);
  EXPECT_EQ(dense.bytes_per_token, (4096 + 3 * 2 * 14336) * 2);
  // MoE keeps the same hidden tensors plus routing, gathered inputs and per-expert outputs.
  EXPECT_EQ(moe.bytes_per_token, dense.bytes_per_token + 8 * 4 + 2 * 8 + 2 * 4096 * 2 * 2);
}

TEST(ModelCount, TiedHeadIsNotCounted) {
  json j = load("mixtral-8x7b.json");
  j["tie_word_embeddings"] = true;
  const ModelCount c = count_model(model_arch_from_hf_config(j), "bf16", 0);
  EXPECT_EQ(c.total, count("mixtral-8x7b.json").total - 131'072'000);
}

namespace {

void expect_config_error(const json& j, const std::string& fragment) {
  try {
    model_arch_from_hf_config(j);
    FAIL() << "accepted; expected: " << fragment;
  } catch (const moe::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(ModelCount, BadConfigs) {
  json j = load("mixtral-8x7b.json");
  j.erase("num_local_experts");
  expect_config_error(j, "mixtral: missing key 'num_local_experts'");
  j = load("mixtral-8x7b.json");
  j["model_type"] = "mamba";
  expect_config_error(j, "model_type 'mamba' is not supported");
  j.erase("model_type");
  expect_config_error(j, "missing key 'model_type'");
  j = load("mixtral-8x7b.json");
  j["hidden_size"] = "4096";
  expect_config_error(j, "key 'hidden_size' must be a positive integer, got \"4096\"");
  j["hidden_size"] = 0;
  expect_config_error(j, "key 'hidden_size' must be a positive integer, got 0");
  j = load("mixtral-8x7b.json");
  j["num_experts_per_tok"] = 9;
  expect_config_error(j, "experts per token (9) > number of experts (8)");
  j = load("mixtral-8x7b.json");
  j["num_key_value_heads"] = 7;
  expect_config_error(j, "not a multiple of num_key_value_heads=7");
  j = load("gpt-oss-20b.json");
  j["layer_types"].erase(0);
  expect_config_error(j, "'layer_types' has 23 entries");
  j = load("deepseek-v3.json");
  j.erase("kv_lora_rank");
  expect_config_error(j, "deepseek_v3: missing key 'kv_lora_rank'");
  expect_config_error(json::array(), "must be a JSON object");
  j = load("mixtral-8x7b.json");
  j["hidden_size"] = 1LL << 40;
  j["intermediate_size"] = 1LL << 40;
  EXPECT_THROW(count_model(model_arch_from_hf_config(j), "bf16", 0), moe::InvalidInput);
}

TEST(ModelCount, ExampleConfigsAreTheSharedCopies) {
  // examples/configs ships copies of shared/data/hf-configs so the repo stands alone; where the
  // shared folder sits beside the checkout (CI, developers), the copies must parse identically.
  const std::string shared = std::string(MOE_SOURCE_DIR) + "/../shared/data/hf-configs/";
  if (!std::ifstream(shared + "README.md").good()) GTEST_SKIP() << "no " << shared;
  const std::pair<const char*, const char*> copies[] = {
      {"mixtral-8x7b.json", "mixtral-8x7b.json"},
      {"mixtral-8x22b.json", "mixtral-8x22b.json"},
      {"qwen3-30b-a3b.json", "qwen3-30b-a3b.json"},
      {"qwen3-235b-a22b.json", "qwen3-235b-a22b.json"},
      {"deepseek-v2-lite.json", "deepseek-v2-lite.json"},
      {"deepseek-v3.json", "deepseek-v3.json"},
      {"gpt-oss-20b.json", "gpt-oss-20b.json"},
      {"gpt-oss-120b.json", "gpt-oss-120b.json"},
      {"llama-2-7b.json", "llama-2-7b.json"},
      {"deepseek-v2.reconstructed.json", "reconstructed/deepseek-v2.json"},
      {"qwen2-57b-a14b.reconstructed.json", "reconstructed/qwen2-57b-a14b.json"},
  };
  for (const auto& [ours, theirs] : copies) {
    std::ifstream in(shared + theirs);
    ASSERT_TRUE(in.good()) << theirs;
    EXPECT_EQ(load(ours), json::parse(in)) << ours;
  }
}
