// Values of the chat-template interpreter, with Python's semantics where templates rely on them:
// truthiness, equality, str() and repr() (Jinja renders through Python's str), and json.dumps
// as transformers' tojson calls it (ensure_ascii=False).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace moe::text::jinja {

struct Value;
using Array = std::vector<Value>;
struct Object;  // insertion-ordered, as Python dicts
struct Callable;

struct Undefined {
  std::string name;  // what was looked up, for the error if it is used
};
struct None {};

struct Value {
  std::variant<Undefined, None, bool, int64_t, double, std::string, std::shared_ptr<Array>, std::shared_ptr<Object>,
               std::shared_ptr<Callable>>
      v;
  bool is_namespace = false;  // an Object made by namespace(): attributes may be set
  bool is_tuple = false;      // an Array that Python would hold as a tuple (prints as (a, b))

  Value() : v(Undefined{}) {}
  Value(None) : v(None{}) {}
  Value(bool b) : v(b) {}
  Value(int64_t i) : v(i) {}
  Value(int i) : v(static_cast<int64_t>(i)) {}
  Value(double d) : v(d) {}
  Value(std::string s) : v(std::move(s)) {}
  Value(const char* s) : v(std::string(s)) {}
  Value(Array a) : v(std::make_shared<Array>(std::move(a))) {}
  static Value undefined(std::string name) { Value x; x.v = Undefined{std::move(name)}; return x; }

  bool is_undefined() const { return std::holds_alternative<Undefined>(v); }
  bool is_none() const { return std::holds_alternative<None>(v); }
  bool is_bool() const { return std::holds_alternative<bool>(v); }
  bool is_int() const { return std::holds_alternative<int64_t>(v); }
  bool is_float() const { return std::holds_alternative<double>(v); }
  bool is_number() const { return is_int() || is_float(); }
  bool is_string() const { return std::holds_alternative<std::string>(v); }
  bool is_array() const { return std::holds_alternative<std::shared_ptr<Array>>(v); }
  bool is_object() const { return std::holds_alternative<std::shared_ptr<Object>>(v); }
  bool is_callable() const { return std::holds_alternative<std::shared_ptr<Callable>>(v); }

  const std::string& str() const { return std::get<std::string>(v); }
  Array& array() const { return *std::get<std::shared_ptr<Array>>(v); }
  Object& object() const { return *std::get<std::shared_ptr<Object>>(v); }
  Callable& callable() const { return *std::get<std::shared_ptr<Callable>>(v); }
  double number() const { return is_int() ? static_cast<double>(std::get<int64_t>(v)) : is_bool() ? std::get<bool>(v) : std::get<double>(v); }
  int64_t integer() const { return std::get<int64_t>(v); }
};

struct Object {
  std::vector<std::pair<std::string, Value>> items;
  const Value* find(const std::string& key) const;
  void set(const std::string& key, Value value);
};

Value make_object(Object o = {}, bool is_namespace = false);
Value make_tuple(Array a);

// A function, macro or bound method: positional and keyword arguments in, a value out.
struct Args {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};
struct Callable {
  std::string name;
  std::function<Value(Args&)> call;
};
Value make_callable(std::string name, std::function<Value(Args&)> f);

const char* type_name(const Value& x);  // Python's name for the type ("str", "list", "dict", ...)
bool truthy(const Value& x);
bool equal(const Value& a, const Value& b);
std::string python_str(const Value& x);   // str(x); Undefined renders as ""
std::string python_repr(const Value& x);  // repr(x)
std::string python_float(double d);        // repr(float): shortest round-trip, "1.0", "1e+20", "inf"

// json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys);
// empty separators mean Python's defaults (", " and ": ", or "," and ": " with an indent).
std::string to_json(const Value& x, std::optional<int> indent, bool sort_keys, std::string item_sep = "", std::string key_sep = "");
Value from_json(const nlohmann::ordered_json& j);

}  // namespace moe::text::jinja
