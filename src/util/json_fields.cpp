#include "util/json_fields.h"

#include <algorithm>
#include <set>
#include <vector>

#include "moe/error.h"

namespace moe::util {

using nlohmann::json;

JsonFields::JsonFields(const json& object, std::string prefix) : j_(object), prefix_(std::move(prefix)) {}

bool JsonFields::has(std::string_view key) const {
  asked_.emplace_back(key);
  auto it = j_.find(key);
  return it != j_.end() && !it->is_null();
}

bool JsonFields::is_null(std::string_view key) const {
  asked_.emplace_back(key);
  auto it = j_.find(key);
  return it != j_.end() && it->is_null();
}

namespace {

// Levenshtein distance, capped: anything above `cap` returns cap + 1.
size_t edit_distance(const std::string& a, const std::string& b, size_t cap) {
  if (a.size() > b.size() + cap || b.size() > a.size() + cap) return cap + 1;
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

void JsonFields::warn_likely_typos() const {
  if (!j_.is_object()) return;
  const std::set<std::string> asked(asked_.begin(), asked_.end());
  for (const auto& [key, value] : j_.items()) {
    (void)value;
    if (asked.count(key) || key.size() < 4) continue;
    std::string best;
    size_t best_d = 3;
    for (const std::string& a : asked) {
      const size_t d = edit_distance(key, a, 2);
      if (d < best_d && !j_.contains(a)) best_d = d, best = a;
    }
    if (!best.empty()) warn(prefix_ + "key '" + key + "' is not read; did you mean '" + best + "'?");
  }
}

void JsonFields::fail(const std::string& what) const { throw InvalidInput(prefix_ + what); }

const json& JsonFields::at(std::string_view key) const {
  if (!has(key)) fail("missing key '" + std::string(key) + "'");
  return *j_.find(key);
}

int64_t JsonFields::integral(std::string_view key, int64_t min, const char* kind) const {
  const json& v = at(key);
  if (v.is_number_integer() && (min == INT64_MIN || v.get<int64_t>() >= min)) return v.get<int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (d >= static_cast<double>(min) && d > -9.2e18 && d < 9.2e18 && d == static_cast<double>(static_cast<int64_t>(d))) {
      return static_cast<int64_t>(d);
    }
  }
  fail("key '" + std::string(key) + "' must be " + kind + ", got " + v.dump());
}

int64_t JsonFields::integer(std::string_view key) const { return integral(key, INT64_MIN, "an integer"); }
int64_t JsonFields::integer_or(std::string_view key, int64_t fallback) const {
  return has(key) ? integer(key) : fallback;
}
int64_t JsonFields::positive(std::string_view key) const { return integral(key, 1, "a positive integer"); }
int64_t JsonFields::positive_or(std::string_view key, int64_t fallback) const {
  return has(key) ? positive(key) : fallback;
}
int64_t JsonFields::non_negative_or(std::string_view key, int64_t fallback) const {
  return has(key) ? integral(key, 0, "a non-negative integer") : fallback;
}

double JsonFields::number_or(std::string_view key, double fallback) const {
  if (!has(key)) return fallback;
  const json& v = at(key);
  if (!v.is_number()) fail("key '" + std::string(key) + "' must be a number, got " + v.dump());
  return v.get<double>();
}

bool JsonFields::flag_or(std::string_view key, bool fallback) const {
  if (!has(key)) return fallback;
  const json& v = at(key);
  if (!v.is_boolean()) fail("key '" + std::string(key) + "' must be true or false, got " + v.dump());
  return v.get<bool>();
}

std::string JsonFields::text(std::string_view key) const {
  const json& v = at(key);
  if (!v.is_string()) fail("key '" + std::string(key) + "' must be a string, got " + v.dump());
  return v.get<std::string>();
}

std::string JsonFields::text_or(std::string_view key, const std::string& fallback) const {
  return has(key) ? text(key) : fallback;
}

template <class T>
std::vector<T> JsonFields::list_or_empty(std::string_view key, bool (json::*is)() const noexcept, const char* kind) const {
  std::vector<T> out;
  if (!has(key)) return out;
  const json& v = at(key);
  bool ok = v.is_array();
  for (size_t i = 0; ok && i < v.size(); ++i) ok = (v[i].*is)();
  if (!ok) fail("key '" + std::string(key) + "' must be a list of " + kind + ", got " + v.dump());
  for (const json& e : v) out.push_back(e.get<T>());
  return out;
}

std::vector<int64_t> JsonFields::integers_or_empty(std::string_view key) const {
  return list_or_empty<int64_t>(key, &json::is_number_integer, "integers");
}

std::vector<std::string> JsonFields::texts_or_empty(std::string_view key) const {
  return list_or_empty<std::string>(key, &json::is_string, "strings");
}

JsonFields JsonFields::object(std::string_view key, std::string sub_prefix, const char* what) const {
  const json& v = at(key);
  if (!v.is_object()) fail("'" + std::string(key) + "' must be " + what);
  return JsonFields(v, std::move(sub_prefix));
}

void JsonFields::only(const std::vector<std::string>& known, const char* noun) const {
  const std::set<std::string> names(known.begin(), known.end());
  for (const auto& [key, value] : j_.items()) {
    (void)value;
    if (!names.count(key)) fail(std::string("unknown ") + noun + " '" + key + "'");
  }
}

}  // namespace moe::util
