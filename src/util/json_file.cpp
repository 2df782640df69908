#include "util/json_file.h"

#include <fstream>
#include <sstream>

#include "moe/error.h"

namespace moe::util {

nlohmann::json read_json_file(const std::string& path, const std::string& origin) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InvalidInput(origin + " " + path + ": cannot open the file");
  std::stringstream text;
  text << in.rdbuf();
  try {
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::parse_error& e) {
    throw InvalidInput(origin + " " + path + ": not valid JSON: " + e.what());
  }
}

}  // namespace moe::util
