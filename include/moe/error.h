// The error type thrown at the library's edges. Messages start with the origin in brackets and
// name the offending field and value: "[estimate] --top_k=9 > --num_experts=8".
#pragma once

#include <functional>
#include <stdexcept>
#include <string>

namespace moe {

// Invalid input from a user: a flag, a config value, a file. Callers (the CLI) print what()
// and exit with status 2; nothing inside the library catches it.
class InvalidInput : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// A long job stopped by Ctrl-C / SIGTERM / SIGHUP after saving what it had; the CLI prints what()
// (how to continue) and exits with status 130.
class Interrupted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Something worth telling the user that is not an error (a config key that looks like a typo).
// The default handler prints "moe: warning: <message>" to stderr; a caller (a test, a server) can
// install its own. Returns the previous handler.
using WarningHandler = std::function<void(const std::string&)>;
WarningHandler set_warning_handler(WarningHandler handler);
void warn(const std::string& message);

}  // namespace moe
