// Atomic writes: the target holds the old content or the new one, never a torn mix, and no temp
// file is left behind.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "moe/atomic_file.h"
#include "moe/error.h"

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

fs::path fresh_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("moe_atomic_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST(AtomicFile, WritesAndReplaces) {
  const fs::path dir = fresh_dir("replace");
  const fs::path target = dir / "out.txt";
  moe::write_file_atomic(target.string(), "first");
  EXPECT_EQ(slurp(target), "first");
  moe::write_file_atomic(target.string(), std::string(1 << 20, 'x'));
  EXPECT_EQ(slurp(target).size(), 1u << 20);
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) entries += (void(e), 1);
  EXPECT_EQ(entries, 1);  // no temp file left
  fs::remove_all(dir);
}

TEST(AtomicFile, FailureKeepsOldFileAndNamesPath) {
  const fs::path dir = fresh_dir("fail");
  const fs::path target = dir / "keep.txt";
  moe::write_file_atomic(target.string(), "good");
  // Renaming a file over a directory fails: the write must report it and leave no temp file.
  const fs::path blocker = dir / "blocker";
  fs::create_directories(blocker / "inside");
  try {
    moe::write_file_atomic(blocker.string(), "data");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(blocker.string()), std::string::npos) << e.what();
  }
  EXPECT_EQ(slurp(target), "good");
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) entries += (void(e), 1);
  EXPECT_EQ(entries, 2);  // keep.txt and blocker/
  // A file where a folder should be: the user's path, refused as InvalidInput naming it.
  try {
    moe::write_file_atomic((target / "x.txt").string(), "x");
    FAIL() << "expected an error";
  } catch (const moe::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("cannot create the folder"), std::string::npos) << e.what();
  }
  EXPECT_EQ(slurp(target), "good");
  fs::remove_all(dir);
}

TEST(AtomicFile, CreatesMissingFolders) {
  const fs::path dir = fresh_dir("mkdir");
  const fs::path target = dir / "a" / "b" / "x.txt";
  moe::write_file_atomic(target.string(), "deep");
  EXPECT_EQ(slurp(target), "deep");
  moe::write_file_atomic("moe_atomic_relative_" + std::to_string(::getpid()) + ".txt", "here");  // no folder part
  fs::remove("moe_atomic_relative_" + std::to_string(::getpid()) + ".txt");
  fs::remove_all(dir);
}
