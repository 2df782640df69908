// Reading JSON configs with errors that name the file and the origin ("[config] path: ..."):
// regular files of bounded size only, strict parsing (a key given twice in one object is an error,
// not "the last one wins"; nesting is bounded).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace moe::util {

// Throws InvalidInput("<origin> <what>: not valid JSON: ..." / "duplicate key 'x'" / "nests deeper").
nlohmann::json parse_json_strict(const std::string& text, const std::string& origin, const std::string& what);

// Throws InvalidInput("<origin> <path>: cannot open the file" / "not valid JSON: ...").
nlohmann::json read_json_file(const std::string& path, const std::string& origin);

}  // namespace moe::util
