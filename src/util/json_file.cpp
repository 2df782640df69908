#include "util/json_file.h"


#include "moe/error.h"
#include "util/resources.h"

namespace moe::util {

nlohmann::json read_json_file(const std::string& path, const std::string& origin) {
  const std::string text = read_regular_file(path, origin, kConfigFileLimit);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw InvalidInput(origin + " " + path + ": not valid JSON: " + e.what());
  }
}

}  // namespace moe::util
