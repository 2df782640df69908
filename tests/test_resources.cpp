// Limits on what one request may take: size products that overflow, allocations beyond the
// available memory (estimated before allocating), and input files that are not regular files
// or are too large — each a clear error, never a crash, a hang or the OOM killer.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

#include "moe/error.h"
#include "moe/tensor.h"
#include "util/json_file.h"
#include "util/resources.h"

using namespace moe;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// Runs f with MOE_MEMORY_LIMIT set, restoring the environment afterwards.
std::string with_limit(const char* limit, const std::function<void()>& f) {
  setenv("MOE_MEMORY_LIMIT", limit, 1);
  const std::string e = error_of(f);
  unsetenv("MOE_MEMORY_LIMIT");
  return e;
}

}  // namespace

TEST(Resources, ShapeProductsAreChecked) {
  EXPECT_NE(error_of([] { shape_numel({4096, int64_t(1) << 40, 4096}); }).find("more elements than 64 bits"),
            std::string::npos);
  EXPECT_NE(error_of([] { Tensor(DType::f64, {int64_t(1) << 61, 2}); }).find("bytes than 64 bits"), std::string::npos);
  EXPECT_NE(error_of([] { shape_numel({3, -1}); }).find("negative dimension"), std::string::npos);
  EXPECT_EQ(shape_numel({}), 1);
  EXPECT_EQ(shape_numel({3, 0, 5}), 0);
}

TEST(Resources, AllocationsBeyondTheAvailableMemoryAreRefused) {
  const std::string e = with_limit("300M", [] { Tensor(DType::f32, {int64_t(1) << 28}); });  // 1 GiB
  EXPECT_NE(e.find("[memory]"), std::string::npos) << e;
  EXPECT_NE(e.find("1.07 GB"), std::string::npos) << e;
  EXPECT_NE(e.find("are available"), std::string::npos) << e;
  EXPECT_EQ(with_limit("2G", [] { Tensor(DType::f32, {int64_t(1) << 26}); }), "");  // 256 MiB fits
  EXPECT_NE(with_limit("1K", [] { util::check_memory(4096, "the corpus", "[data]"); }).find("[data] the corpus needs 4.10 KB"),
            std::string::npos);
  EXPECT_GT(util::available_memory(), int64_t(1) << 20);
}

TEST(Resources, OnlyRegularFilesOfBoundedSizeAreRead) {
  EXPECT_NE(error_of([] { util::read_regular_file("/dev/zero", "[data]", 1 << 20); }).find("not a regular file"),
            std::string::npos);
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "moe_test_resources";
  std::filesystem::create_directories(dir);
  EXPECT_NE(error_of([&] { util::read_regular_file(dir.string(), "[data]", 1 << 20); }).find("is a directory"),
            std::string::npos);
  const std::string file = (dir / "f.txt").string();
  std::ofstream(file) << "0123456789";
  EXPECT_EQ(util::read_regular_file(file, "[data]", 10), "0123456789");
  EXPECT_NE(error_of([&] { util::read_regular_file(file, "[data]", 9); }).find("larger than the limit"),
            std::string::npos);
  EXPECT_NE(error_of([&] { util::read_regular_file((dir / "missing").string(), "[data]", 9); }).find("cannot open"),
            std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(Resources, JsonConfigsAreParsedStrictly) {
  EXPECT_EQ(util::parse_json_strict(R"({"a": {"b": 1}, "c": [1, {"b": 2}]})", "[config]", "x.json")["c"][1]["b"], 2);
  EXPECT_NE(error_of([] { util::parse_json_strict(R"({"a": 1, "b": 2, "a": 3})", "[config]", "x.json"); })
                .find("[config] x.json: duplicate key 'a'"),
            std::string::npos);
  EXPECT_NE(error_of([] { util::parse_json_strict(R"({"o": {"k": 1, "k": 1}})", "[config]", "x.json"); })
                .find("duplicate key 'k'"),
            std::string::npos);
  EXPECT_NE(error_of([] { util::parse_json_strict(std::string(100, '[') + std::string(100, ']'), "[config]", "x.json"); })
                .find("nests deeper"),
            std::string::npos);
  EXPECT_NE(error_of([] { util::parse_json_strict("{\"a\":", "[config]", "x.json"); }).find("not valid JSON"),
            std::string::npos);
  // A number no double holds (found by fuzz_layer_config: it escaped as nlohmann's out_of_range).
  EXPECT_NE(error_of([] { util::parse_json_strict("{\"hidden_size\": 1e999}", "[config]", "x.json"); }).find("not valid JSON"),
            std::string::npos);
}
