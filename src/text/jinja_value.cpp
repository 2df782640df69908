#include "text/jinja_value.h"

// GCC 12 reports a false -Wrestrict in std::string concatenations (GCC bug 105329).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

#include <algorithm>
#include <charconv>
#include <cmath>

#include "moe/error.h"

namespace moe::text::jinja {

const Value* Object::find(const std::string& key) const {
  for (const auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}

void Object::set(const std::string& key, Value value) {
  for (auto& [k, v] : items)
    if (k == key) {
      v = std::move(value);
      return;
    }
  items.emplace_back(key, std::move(value));
}

Value make_object(Object o, bool is_namespace) {
  Value x;
  x.v = std::make_shared<Object>(std::move(o));
  x.is_namespace = is_namespace;
  return x;
}

Value make_tuple(Array a) {
  Value x(std::move(a));
  x.is_tuple = true;
  return x;
}

Value make_callable(std::string name, std::function<Value(Args&)> f) {
  Value x;
  x.v = std::make_shared<Callable>(Callable{std::move(name), std::move(f)});
  return x;
}

const char* type_name(const Value& x) {
  if (x.is_undefined()) return "Undefined";
  if (x.is_none()) return "NoneType";
  if (x.is_bool()) return "bool";
  if (x.is_int()) return "int";
  if (x.is_float()) return "float";
  if (x.is_string()) return "str";
  if (x.is_array()) return "list";
  if (x.is_object()) return x.is_namespace ? "Namespace" : "dict";
  return "function";
}

bool truthy(const Value& x) {
  if (x.is_undefined() || x.is_none()) return false;
  if (x.is_bool()) return std::get<bool>(x.v);
  if (x.is_int()) return x.integer() != 0;
  if (x.is_float()) return x.number() != 0.0;
  if (x.is_string()) return !x.str().empty();
  if (x.is_array()) return !x.array().empty();
  if (x.is_object()) return x.is_namespace || !x.object().items.empty();
  return true;
}

bool equal(const Value& a, const Value& b) {
  if ((a.is_number() || a.is_bool()) && (b.is_number() || b.is_bool())) {
    if (a.is_float() || b.is_float()) return a.number() == b.number();
    const int64_t x = a.is_bool() ? std::get<bool>(a.v) : a.integer(), y = b.is_bool() ? std::get<bool>(b.v) : b.integer();
    return x == y;
  }
  if (a.is_string() && b.is_string()) return a.str() == b.str();
  if (a.is_none() && b.is_none()) return true;
  if (a.is_undefined() && b.is_undefined()) return true;
  if (a.is_array() && b.is_array()) {
    if (a.is_tuple != b.is_tuple || a.array().size() != b.array().size()) return false;
    for (size_t i = 0; i < a.array().size(); ++i)
      if (!equal(a.array()[i], b.array()[i])) return false;
    return true;
  }
  if (a.is_object() && b.is_object()) {
    if (a.object().items.size() != b.object().items.size()) return false;
    for (const auto& [k, v] : a.object().items) {
      const Value* w = b.object().find(k);
      if (!w || !equal(v, *w)) return false;
    }
    return true;
  }
  if (a.is_callable() && b.is_callable()) return &a.callable() == &b.callable();
  return false;
}

std::string python_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);  // shortest round trip
  const std::string s(buf, r.ptr);
  const size_t e = s.find('e');
  std::string mant = s.substr(0, e);
  const int exp = std::stoi(s.substr(e + 1));
  const bool neg = mant[0] == '-';
  if (neg) mant.erase(0, 1);
  std::string digits;
  for (char c : mant)
    if (c != '.') digits.push_back(c);
  const int decpt = exp + 1;  // digits[0] sits before the decimal point at position decpt
  std::string out;
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out = "0." + std::string(static_cast<size_t>(-decpt), '0') + digits;
    } else if (static_cast<size_t>(decpt) >= digits.size()) {
      out = digits + std::string(static_cast<size_t>(decpt) - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, static_cast<size_t>(decpt)) + "." + digits.substr(static_cast<size_t>(decpt));
    }
  } else {
    out = digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "");
    const int x = decpt - 1;
    std::string es = std::to_string(std::abs(x));
    if (es.size() < 2) es = "0" + es;
    out += std::string("e") + (x < 0 ? "-" : "+") + es;
  }
  return neg ? "-" + out : out;
}

namespace {

std::string repr_string(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos, has_double = s.find('"') != std::string::npos;
  const char q = has_single && !has_double ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == static_cast<unsigned char>(q)) out += std::string("\\") + static_cast<char>(q);
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out + q;
}

void json_string(std::string& out, const std::string& s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

struct JsonStyle {
  std::optional<int> indent;
  bool sort_keys;
  std::string item_sep, key_sep;
};

void json_dump(std::string& out, const Value& x, const JsonStyle& st, int depth) {
  const std::optional<int>& indent = st.indent;
  const bool sort_keys = st.sort_keys;
  const auto newline = [&](int d) {
    if (indent) out += "\n" + std::string(static_cast<size_t>(*indent * d), ' ');
  };
  const std::string& item_sep = st.item_sep;
  if (x.is_none() || x.is_undefined()) {
    out += "null";
  } else if (x.is_bool()) {
    out += std::get<bool>(x.v) ? "true" : "false";
  } else if (x.is_int()) {
    out += std::to_string(x.integer());
  } else if (x.is_float()) {
    const double d = x.number();
    out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d > 0 ? "Infinity" : "-Infinity") : python_float(d);
  } else if (x.is_string()) {
    json_string(out, x.str());
  } else if (x.is_array()) {
    if (x.array().empty()) return void(out += "[]");
    out += "[";
    for (size_t i = 0; i < x.array().size(); ++i) {
      if (i) out += item_sep;
      newline(depth + 1);
      json_dump(out, x.array()[i], st, depth + 1);
    }
    newline(depth);
    out += "]";
  } else if (x.is_object()) {
    std::vector<const std::pair<std::string, Value>*> items;
    for (const auto& kv : x.object().items) items.push_back(&kv);
    if (sort_keys) std::stable_sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
    if (items.empty()) return void(out += "{}");
    out += "{";
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) out += item_sep;
      newline(depth + 1);
      json_string(out, items[i]->first);
      out += st.key_sep;
      json_dump(out, items[i]->second, st, depth + 1);
    }
    newline(depth);
    out += "}";
  } else {
    throw InvalidInput(std::string("[template] tojson: a ") + type_name(x) + " is not JSON serializable");
  }
}

}  // namespace

std::string python_repr(const Value& x) {
  if (x.is_string()) return repr_string(x.str());
  if (x.is_array()) {
    std::string out = x.is_tuple ? "(" : "[";
    for (size_t i = 0; i < x.array().size(); ++i) out += (i ? ", " : "") + python_repr(x.array()[i]);
    if (x.is_tuple && x.array().size() == 1) out += ",";
    return out + (x.is_tuple ? ")" : "]");
  }
  if (x.is_object() && !x.is_namespace) {
    std::string out = "{";
    bool first = true;
    for (const auto& [k, v] : x.object().items) {
      out += (first ? "" : ", ") + repr_string(k) + ": " + python_repr(v);
      first = false;
    }
    return out + "}";
  }
  return python_str(x);
}

std::string python_str(const Value& x) {
  if (x.is_undefined()) return "";
  if (x.is_none()) return "None";
  if (x.is_bool()) return std::get<bool>(x.v) ? "True" : "False";
  if (x.is_int()) return std::to_string(x.integer());
  if (x.is_float()) return python_float(x.number());
  if (x.is_string()) return x.str();
  if (x.is_callable()) return "<function " + x.callable().name + ">";
  if (x.is_object() && x.is_namespace) return "<Namespace>";
  return python_repr(x);
}

std::string to_json(const Value& x, std::optional<int> indent, bool sort_keys, std::string item_sep, std::string key_sep) {
  if (item_sep.empty()) item_sep = indent ? "," : ", ";
  if (key_sep.empty()) key_sep = ": ";
  std::string out;
  json_dump(out, x, JsonStyle{indent, sort_keys, item_sep, key_sep}, 0);
  return out;
}

Value from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return Value(None{});
    case nlohmann::ordered_json::value_t::boolean: return Value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Value(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned:
      return j.get<uint64_t>() <= INT64_MAX ? Value(static_cast<int64_t>(j.get<uint64_t>())) : Value(j.get<double>());
    case nlohmann::ordered_json::value_t::number_float: return Value(j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Value(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      Array a;
      for (const auto& e : j) a.push_back(from_json(e));
      return Value(std::move(a));
    }
    case nlohmann::ordered_json::value_t::object: {
      Object o;
      for (const auto& [k, v] : j.items()) o.items.emplace_back(k, from_json(v));
      return make_object(std::move(o));
    }
    default: return Value(None{});
  }
}

}  // namespace moe::text::jinja
