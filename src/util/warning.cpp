#include <cstdio>
#include <mutex>

#include "moe/error.h"

namespace moe {

namespace {

std::mutex g_mutex;
WarningHandler& handler() {
  static WarningHandler h = [](const std::string& m) { std::fprintf(stderr, "moe: warning: %s\n", m.c_str()); };
  return h;
}

}  // namespace

WarningHandler set_warning_handler(WarningHandler h) {
  std::lock_guard<std::mutex> lock(g_mutex);
  WarningHandler old = std::move(handler());
  handler() = std::move(h);
  return old;
}

void warn(const std::string& message) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (handler()) handler()(message);
}

}  // namespace moe
