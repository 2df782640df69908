#include "text/jinja_builtins.h"

#include <utf8proc.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>

#include "text/unicode.h"

namespace moe::text::jinja {

namespace {

[[noreturn]] void fail(const std::string& what) { throw EvalError(what); }

std::vector<std::string> chars_of(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0, len = 0; i < s.size(); i += len) {
    code_point_at(s, i, len);
    out.push_back(s.substr(i, len));
  }
  return out;
}

bool is_space_char(const std::string& c) {
  size_t len = 0;
  return is_whitespace(code_point_at(c, 0, len));
}

std::string map_case(const std::string& s, bool upper) {
  std::string out;
  for (size_t i = 0, len = 0; i < s.size(); i += len) {
    const auto c = static_cast<utf8proc_int32_t>(code_point_at(s, i, len));
    append_utf8(out, static_cast<char32_t>(upper ? utf8proc_toupper(c) : utf8proc_tolower(c)));
  }
  return out;
}

bool is_cased_letter(const std::string& c) {
  size_t len = 0;
  const auto cp = static_cast<utf8proc_int32_t>(code_point_at(c, 0, len));
  return utf8proc_toupper(cp) != cp || utf8proc_tolower(cp) != cp;
}

// str.strip / lstrip / rstrip: whitespace, or any of `chars`.
std::string strip(const std::string& s, const Value& chars, bool left, bool right) {
  const std::vector<std::string> cs = chars_of(s);
  const std::vector<std::string> set = chars.is_string() ? chars_of(chars.str()) : std::vector<std::string>{};
  const auto drop = [&](const std::string& c) {
    return chars.is_string() ? std::find(set.begin(), set.end(), c) != set.end() : is_space_char(c);
  };
  size_t b = 0, e = cs.size();
  while (left && b < e && drop(cs[b])) ++b;
  while (right && e > b && drop(cs[e - 1])) --e;
  std::string out;
  for (size_t i = b; i < e; ++i) out += cs[i];
  return out;
}

std::vector<Value> split(const std::string& s, const Value& sep, int64_t maxsplit) {
  std::vector<Value> out;
  if (!sep.is_string()) {  // runs of whitespace, no empty strings
    const std::vector<std::string> cs = chars_of(s);
    size_t i = 0;
    while (i < cs.size()) {
      while (i < cs.size() && is_space_char(cs[i])) ++i;
      if (i == cs.size()) break;
      std::string word;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
        for (; i < cs.size(); ++i) word += cs[i];
        out.emplace_back(strip(word, Value(), false, true));
        break;
      }
      while (i < cs.size() && !is_space_char(cs[i])) word += cs[i++];
      out.emplace_back(word);
    }
    return out;
  }
  const std::string& d = sep.str();
  if (d.empty()) fail("str.split: empty separator");
  size_t at = 0;
  for (size_t p = s.find(d); p != std::string::npos && (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit); p = s.find(d, at)) {
    out.emplace_back(s.substr(at, p - at));
    at = p + d.size();
  }
  out.emplace_back(s.substr(at));
  return out;
}

std::string title(const std::string& s) {
  std::string out;
  bool prev_cased = false;
  for (const std::string& c : chars_of(s)) {
    const bool cased = is_cased_letter(c);
    out += cased ? map_case(c, !prev_cased) : c;
    prev_cased = cased;
  }
  return out;
}

Value bound(const std::string& name, std::function<Value(Args&)> f) { return make_callable(name, std::move(f)); }

Value string_method(const std::string& s, const std::string& name) {
  if (name == "startswith" || name == "endswith") {
    const bool start = name == "startswith";
    return bound(name, [s, start](Args& a) {
      const Value p = arg(a, 0, "prefix", Value());
      std::vector<Value> options = p.is_array() ? p.array() : std::vector<Value>{p};
      for (const Value& o : options) {
        if (!o.is_string()) fail(std::string("str.") + (start ? "startswith" : "endswith") + " takes a string");
        const std::string& t = o.str();
        if (t.size() <= s.size() && (start ? s.compare(0, t.size(), t) == 0 : s.compare(s.size() - t.size(), t.size(), t) == 0))
          return Value(true);
      }
      return Value(false);
    });
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const bool l = name != "rstrip", r = name != "lstrip";
    return bound(name, [s, l, r](Args& a) { return Value(strip(s, arg(a, 0, "chars", Value()), l, r)); });
  }
  if (name == "split" || name == "rsplit") {
    return bound(name, [s, name](Args& a) {
      const Value sep = arg(a, 0, "sep", Value(None{}));
      const Value m = arg(a, 1, "maxsplit", Value(int64_t(-1)));
      if (name == "rsplit" && m.is_int() && m.integer() >= 0) fail("str.rsplit with maxsplit is not supported");
      return Value(split(s, sep, m.is_int() ? m.integer() : -1));
    });
  }
  if (name == "upper") return bound(name, [s](Args&) { return Value(map_case(s, true)); });
  if (name == "lower") return bound(name, [s](Args&) { return Value(map_case(s, false)); });
  if (name == "title") return bound(name, [s](Args&) { return Value(title(s)); });
  if (name == "capitalize")
    return bound(name, [s](Args&) {
      const std::vector<std::string> cs = chars_of(s);
      std::string out;
      for (size_t i = 0; i < cs.size(); ++i) out += map_case(cs[i], i == 0);
      return Value(out);
    });
  if (name == "replace")
    return bound(name, [s](Args& a) {
      const Value old = arg(a, 0, "old", Value()), rep = arg(a, 1, "new", Value()), count = arg(a, 2, "count", Value(int64_t(-1)));
      if (!old.is_string() || !rep.is_string()) fail("str.replace takes two strings");
      std::string out;
      int64_t n = count.is_int() ? count.integer() : -1;
      if (old.str().empty()) fail("str.replace with an empty string is not supported");
      size_t at = 0;
      for (size_t p = s.find(old.str()); p != std::string::npos && n != 0; p = s.find(old.str(), at), --n) {
        out += s.substr(at, p - at) + rep.str();
        at = p + old.str().size();
      }
      return Value(out + s.substr(at));
    });
  if (name == "find" || name == "count")
    return bound(name, [s, name](Args& a) {
      const Value sub = arg(a, 0, "sub", Value());
      if (!sub.is_string()) fail("str." + name + " takes a string");
      if (name == "find") {
        const size_t p = s.find(sub.str());
        return Value(p == std::string::npos ? int64_t(-1) : static_cast<int64_t>(count_code_points(s.substr(0, p))));
      }
      int64_t n = 0;
      for (size_t p = s.find(sub.str()); p != std::string::npos && !sub.str().empty(); p = s.find(sub.str(), p + sub.str().size())) ++n;
      return Value(n);
    });
  if (name == "join")
    return bound(name, [s](Args& a) {
      std::string out;
      bool first = true;
      for (const Value& v : iterate(arg(a, 0, "iterable", Value()))) {
        if (!v.is_string()) fail("str.join: sequence item is " + std::string(type_name(v)) + ", not str");
        out += (first ? "" : s) + v.str();
        first = false;
      }
      return Value(out);
    });
  if (name == "splitlines")
    return bound(name, [s](Args&) {
      std::vector<Value> out;
      size_t at = 0;
      while (at < s.size()) {
        size_t p = s.find_first_of("\r\n", at);
        if (p == std::string::npos) p = s.size();
        out.emplace_back(s.substr(at, p - at));
        at = p + ((p + 1 < s.size() && s[p] == '\r' && s[p + 1] == '\n') ? 2 : 1);
      }
      return Value(out);
    });
  if (name == "isdigit" || name == "isspace" || name == "isalpha" || name == "isupper" || name == "islower")
    return bound(name, [s, name](Args&) {
      if (s.empty()) return Value(false);
      for (const std::string& c : chars_of(s)) {
        size_t len = 0;
        const char32_t cp = code_point_at(c, 0, len);
        const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
        const bool ok = name == "isdigit" ? cat == UTF8PROC_CATEGORY_ND
                        : name == "isspace" ? is_whitespace(cp)
                        : name == "isalpha" ? (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO)
                        : name == "isupper" ? map_case(c, false) != c || !is_cased_letter(c)
                                            : map_case(c, true) != c || !is_cased_letter(c);
        if (!ok) return Value(false);
      }
      return Value(true);
    });
  return Value::undefined(name);
}

}  // namespace

Value arg(Args& a, size_t pos, const char* keyword, const Value& fallback) {
  if (pos < a.positional.size()) return a.positional[pos];
  for (const auto& [k, v] : a.keyword)
    if (k == keyword) return v;
  return fallback;
}

std::vector<Value> iterate(const Value& x) {
  if (x.is_array()) return x.array();
  if (x.is_object()) {
    std::vector<Value> keys;
    for (const auto& [k, v] : x.object().items) keys.emplace_back(k);
    return keys;
  }
  if (x.is_string()) {
    std::vector<Value> out;
    for (std::string& c : chars_of(x.str())) out.emplace_back(std::move(c));
    return out;
  }
  if (x.is_undefined()) return {};
  fail(std::string("'") + type_name(x) + "' object is not iterable");
}

int64_t length(const Value& x) {
  if (x.is_string()) return static_cast<int64_t>(count_code_points(x.str()));
  if (x.is_array()) return static_cast<int64_t>(x.array().size());
  if (x.is_object()) return static_cast<int64_t>(x.object().items.size());
  if (x.is_undefined()) return 0;
  fail(std::string("object of type '") + type_name(x) + "' has no len()");
}

Value get_attribute(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) fail("'" + std::get<Undefined>(obj.v).name + "' is undefined (looking up ." + name + ")");
  if (obj.is_object()) {
    if (const Value* v = obj.object().find(name)) return *v;
    if (obj.is_namespace) return Value::undefined(name);
    std::shared_ptr<Object> o = std::get<std::shared_ptr<Object>>(obj.v);
    if (name == "items" || name == "keys" || name == "values")
      return bound(name, [o, name](Args&) {
        std::vector<Value> out;
        for (const auto& [k, v] : o->items) out.push_back(name == "items" ? make_tuple(Array{Value(k), v}) : name == "keys" ? Value(k) : v);
        return Value(out);
      });
    if (name == "get")
      return bound(name, [o](Args& a) {
        const Value k = arg(a, 0, "key", Value());
        const Value* v = k.is_string() ? o->find(k.str()) : nullptr;
        return v ? *v : arg(a, 1, "default", Value(None{}));
      });
    return Value::undefined(name);
  }
  if (obj.is_string()) return string_method(obj.str(), name);
  if (obj.is_array()) {
    std::shared_ptr<Array> a = std::get<std::shared_ptr<Array>>(obj.v);
    if (name == "index" || name == "count")
      return bound(name, [a, name](Args& args) {
        const Value x = arg(args, 0, "value", Value());
        int64_t n = 0;
        for (size_t i = 0; i < a->size(); ++i)
          if (equal((*a)[i], x)) {
            if (name == "index") return Value(static_cast<int64_t>(i));
            ++n;
          }
        if (name == "index") fail(python_repr(x) + " is not in list");
        return Value(n);
      });
    if (name == "append" || name == "pop" || name == "insert" || name == "extend")
      fail("list." + name + " is not allowed in a chat template (transformers renders in an immutable sandbox)");
  }
  return Value::undefined(name);
}

namespace {

int64_t python_index(int64_t i, int64_t n) { return i < 0 ? i + n : i; }

}  // namespace

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) fail("'" + std::get<Undefined>(obj.v).name + "' is undefined (looking up [" + python_repr(key) + "])");
  if (obj.is_object()) {
    if (key.is_string()) {
      if (const Value* v = obj.object().find(key.str())) return *v;
      return get_attribute(obj, key.str());
    }
    return Value::undefined(python_repr(key));
  }
  if ((obj.is_array() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    const int64_t n = length(obj);
    const int64_t i = python_index(key.is_bool() ? std::get<bool>(key.v) : key.integer(), n);
    if (i < 0 || i >= n) return Value::undefined("index " + python_repr(key));
    if (obj.is_array()) return obj.array()[static_cast<size_t>(i)];
    return Value(chars_of(obj.str())[static_cast<size_t>(i)]);
  }
  if (key.is_string()) return get_attribute(obj, key.str());
  return Value::undefined(python_repr(key));
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (!obj.is_array() && !obj.is_string()) fail(std::string("cannot slice a ") + type_name(obj));
  const auto as_int = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    if (!v.is_int()) fail(std::string("slice ") + what + " must be an integer");
    return v.integer();
  };
  const int64_t n = length(obj);
  const int64_t st = as_int(step, "step").value_or(1);
  if (st == 0) fail("slice step cannot be zero");
  const auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t i = *v < 0 ? *v + n : *v;
    return st > 0 ? std::clamp<int64_t>(i, 0, n) : std::clamp<int64_t>(i, -1, n - 1);
  };
  const int64_t b = clamp(as_int(start, "start"), st > 0 ? 0 : n - 1), e = clamp(as_int(stop, "stop"), st > 0 ? n : -1);
  std::vector<size_t> picks;
  for (int64_t i = b; st > 0 ? i < e : i > e; i += st) picks.push_back(static_cast<size_t>(i));
  if (obj.is_array()) {
    Array out;
    for (size_t i : picks) out.push_back(obj.array()[i]);
    return Value(std::move(out));
  }
  const std::vector<std::string> cs = chars_of(obj.str());
  std::string out;
  for (size_t i : picks) out += cs[i];
  return Value(out);
}

}  // namespace moe::text::jinja
