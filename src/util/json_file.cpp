#include "util/json_file.h"

#include <set>
#include <vector>

#include "moe/error.h"
#include "util/resources.h"

namespace moe::util {

namespace {

constexpr int kMaxDepth = 64;  // configs nest a few levels; this bounds the parser's work

}  // namespace

nlohmann::json parse_json_strict(const std::string& text, const std::string& origin, const std::string& what) {
  using json = nlohmann::json;
  std::vector<std::set<std::string>> keys;  // the keys seen so far in each open object
  const auto check = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > kMaxDepth) throw InvalidInput(origin + " " + what + ": nests deeper than " + std::to_string(kMaxDepth) + " levels");
    if (event == json::parse_event_t::object_start) keys.emplace_back();
    if (event == json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    if (event == json::parse_event_t::key && !keys.empty()) {
      const std::string k = parsed.get<std::string>();
      if (!keys.back().insert(k).second) {
        throw InvalidInput(origin + " " + what + ": duplicate key '" + k + "' (one object gives it twice)");
      }
    }
    return true;
  };
  try {
    return json::parse(text, check);
  } catch (const json::parse_error& e) {
    throw InvalidInput(origin + " " + what + ": not valid JSON: " + e.what());
  } catch (const json::out_of_range& e) {  // a number beyond a double ("1e999"): found by fuzz_layer_config
    throw InvalidInput(origin + " " + what + ": not valid JSON: " + e.what());
  }
}

nlohmann::json read_json_file(const std::string& path, const std::string& origin) {
  return parse_json_strict(read_regular_file(path, origin, kConfigFileLimit), origin, path);
}

}  // namespace moe::util
