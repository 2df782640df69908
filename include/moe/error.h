// The error type thrown at the library's edges. Messages start with the origin in brackets and
// name the offending field and value: "[estimate] --top_k=9 > --num_experts=8".
#pragma once

#include <stdexcept>
#include <string>

namespace moe {

// Invalid input from a user: a flag, a config value, a file. Callers (the CLI) print what()
// and exit with status 2; nothing inside the library catches it.
class InvalidInput : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

}  // namespace moe
