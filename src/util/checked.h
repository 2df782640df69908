// 64-bit arithmetic that reports overflow as bad input instead of wrapping: parameter counts of
// absurd configs must give a clear error, never a silently wrong number.
#pragma once

#include <cstdint>
#include <string>

#include "moe/error.h"

namespace moe::util {

inline int64_t checked_mul(int64_t a, int64_t b, const std::string& what) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) {
    throw InvalidInput(what + ": the count overflows 64 bits (" + std::to_string(a) + " * " +
                       std::to_string(b) + ")");
  }
  return r;
}

inline int64_t checked_add(int64_t a, int64_t b, const std::string& what) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) {
    throw InvalidInput(what + ": the count overflows 64 bits (" + std::to_string(a) + " + " +
                       std::to_string(b) + ")");
  }
  return r;
}

// Overflow-checked arithmetic bound to what it counts, for the error message.
struct Arith {
  std::string what;
  int64_t mul(int64_t a, int64_t b) const { return checked_mul(a, b, what); }
  int64_t mul(int64_t a, int64_t b, int64_t c) const { return mul(mul(a, b), c); }
  int64_t add(int64_t a, int64_t b) const { return checked_add(a, b, what); }
};

}  // namespace moe::util
