// Reading a JSON file with errors that name the file and the origin ("[config] path: ...").
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace moe::util {

// Throws InvalidInput("<origin> <path>: cannot open the file" / "not valid JSON: ...").
nlohmann::json read_json_file(const std::string& path, const std::string& origin);

}  // namespace moe::util
