// Storage types known to the size estimates (weights, KV cache, activations).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace moe {

struct DtypeSize {
  std::string_view name;
  int64_t bytes;
};

// The estimator's dtypes, in the reference's order: fp32 4, bf16 2, fp16 2, fp8 1, int8 1.
std::span<const DtypeSize> estimate_dtypes();

// Bytes per element of a dtype name, or nullopt if unknown.
std::optional<int64_t> dtype_bytes(std::string_view name);

}  // namespace moe
