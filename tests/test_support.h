// Helpers shared by the GoogleTest files.
#pragma once

#include <string>

#include "moe/error.h"

namespace moe::test {

// The message of the InvalidInput that f throws, or "(no error)".
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const InvalidInput& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace moe::test
