// Shared by the libFuzzer targets: the contract every parser of outside input keeps (bytes in;
// a result or moe::InvalidInput out; any other exception, a crash or a sanitizer report is a
// finding), a JSON reader with the project's strict rules, and a scratch file for parsers that
// read paths. Each target is built twice: with libFuzzer (clang, -DMOE_FUZZ=ON) and with
// replay.cpp's main, which runs it over the seed corpus in every ctest.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "moe/error.h"
#include "util/json_file.h"

namespace fuzz {

inline void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
    std::abort();
  }
}

// The bytes as strict JSON (as every config reader parses), or nothing if they are not.
inline std::optional<nlohmann::json> json_of(const uint8_t* data, size_t size) {
  try {
    return moe::util::parse_json_strict(std::string(reinterpret_cast<const char*>(data), size), "[fuzz]", "input");
  } catch (const moe::InvalidInput&) {
    return std::nullopt;
  }
}

// A per-process scratch file (tmpfs when there is one) holding the latest input.
inline const std::string& scratch_path() {
  static const std::string path = [] {
    const char* dir = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    return std::string(dir) + "/moe_fuzz_" + std::to_string(::getpid()) + ".bin";
  }();
  return path;
}
inline const std::string& write_scratch(const uint8_t* data, size_t size) {
  std::FILE* f = std::fopen(scratch_path().c_str(), "wb");
  check(f != nullptr, "cannot write the scratch file");
  if (size > 0) check(std::fwrite(data, 1, size, f) == size, "short write of the scratch file");
  std::fclose(f);
  return scratch_path();
}

// Parsers that size allocations from their input must refuse beyond this (MOE_MEMORY_LIMIT).
inline void limit_memory() { ::setenv("MOE_MEMORY_LIMIT", "32M", 1); }

}  // namespace fuzz
