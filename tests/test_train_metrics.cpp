// Metrics JSONL: one object per line, flushed at once; append vs truncate; trimming the lines a
// crashed run wrote after its last checkpoint.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "moe/error.h"
#include "moe/metrics.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

fs::path temp_file(const std::string& name) {
  return fs::temp_directory_path() / ("moe_metrics_" + name + "_" + std::to_string(::getpid()) + ".jsonl");
}

std::vector<json> records(const fs::path& p) {
  std::vector<json> out;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

}  // namespace

TEST(Metrics, OneFlushedObjectPerLine) {
  const fs::path p = temp_file("lines");
  moe::MetricsWriter w(p.string(), false);
  w.write({{"step", 1}, {"loss", 2.5}, {"split", "train"}});
  // Visible to a reader right away, without closing the writer.
  EXPECT_EQ(slurp(p), "{\"loss\":2.5,\"split\":\"train\",\"step\":1}\n");
  w.write({{"step", 2}, {"loss", std::nan("")}, {"text", "ü\n"}});
  const auto r = records(p);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_TRUE(r[1]["loss"].is_null());  // JSON has no NaN
  EXPECT_EQ(r[1]["text"], "ü\n");       // newlines inside strings are escaped
  EXPECT_THROW(w.write(json::array({1, 2})), std::invalid_argument);
  fs::remove(p);
}

TEST(Metrics, AppendKeepsTruncateStartsOver) {
  const fs::path p = temp_file("append");
  { moe::MetricsWriter(p.string(), false).write({{"step", 1}}); }
  { moe::MetricsWriter(p.string(), true).write({{"step", 2}}); }
  EXPECT_EQ(records(p).size(), 2u);
  { moe::MetricsWriter(p.string(), false).write({{"step", 1}}); }
  EXPECT_EQ(records(p).size(), 1u);
  fs::remove(p);
}

TEST(Metrics, CannotOpenIsInvalidInput) {
  try {
    moe::MetricsWriter w("/nonexistent_dir_for_moe/metrics.jsonl", false);
    FAIL() << "opened";
  } catch (const moe::InvalidInput& e) {
    EXPECT_EQ(std::string(e.what()).rfind("[metrics] /nonexistent_dir_for_moe/metrics.jsonl: cannot open", 0), 0u)
        << e.what();
  }
}

TEST(Metrics, TrimDropsLinesAfterTheCheckpointAndATornLine) {
  const fs::path p = temp_file("trim");
  std::ofstream(p) << "{\"step\":1,\"loss\":3}\n{\"event\":\"start\"}\n{\"step\":2,\"loss\":2}\n"
                      "{\"step\":3,\"loss\":1}\n{\"step\":4,\"lo";
  EXPECT_EQ(moe::trim_metrics_after(p.string(), 2), 2);
  EXPECT_EQ(slurp(p), "{\"step\":1,\"loss\":3}\n{\"event\":\"start\"}\n{\"step\":2,\"loss\":2}\n");
  EXPECT_EQ(moe::trim_metrics_after(p.string(), 2), 0);
  fs::remove(p);
  EXPECT_EQ(moe::trim_metrics_after(p.string(), 2), 0);  // no file: nothing to do
}
