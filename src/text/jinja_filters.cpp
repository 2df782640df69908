// Jinja2's built-in filters and tests that chat templates use, transformers' tojson, and the globals.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <ctime>

#include "text/jinja_builtins.h"
#include "text/unicode.h"

namespace moe::text::jinja {

namespace {

[[noreturn]] void fail(const std::string& what) { throw EvalError(what); }

bool less(const Value& a, const Value& b) {
  if ((a.is_number() || a.is_bool()) && (b.is_number() || b.is_bool())) return a.number() < b.number();
  if (a.is_string() && b.is_string()) return a.str() < b.str();
  fail(std::string("'<' not supported between instances of '") + type_name(a) + "' and '" + type_name(b) + "'");
}

// attribute="a.b" as Jinja's make_attrgetter: dotted lookups, integer parts as indexes.
Value attr_path(const Value& x, const std::string& path) {
  Value v = x;
  size_t at = 0;
  while (true) {
    const size_t dot = path.find('.', at);
    const std::string part = path.substr(at, dot == std::string::npos ? std::string::npos : dot - at);
    const bool digits = !part.empty() && part.size() < 18 && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    v = digits ? get_item(v, Value(static_cast<int64_t>(std::stoll(part)))) : get_item(v, Value(part));
    if (dot == std::string::npos) return v;
    at = dot + 1;
  }
}

std::string indent_text(const std::string& s, const Value& width, bool first, bool blank) {
  const std::string pad = width.is_string() ? width.str() : std::string(static_cast<size_t>(width.is_int() ? width.integer() : 4), ' ');
  std::string out;
  size_t at = 0;
  bool is_first = true;
  while (true) {
    const size_t nl = s.find('\n', at);
    const std::string line = s.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
    if ((!is_first || first) && (blank || !line.empty())) out += pad;
    out += line;
    if (nl == std::string::npos) break;
    out += "\n";
    at = nl + 1;
    is_first = false;
  }
  return out;
}

// A float's integer part, or an error past 64 bits (casting would be undefined).
int64_t to_int64(double d) {
  if (!(std::fabs(d) < 9.2e18)) fail("int() of " + python_float(d) + " does not fit 64 bits");
  return static_cast<int64_t>(std::trunc(d));
}

Value to_number(const Value& x, bool integer, const Value& fallback) {
  if (x.is_int()) return integer ? x : Value(x.number());
  if (x.is_bool()) return integer ? Value(static_cast<int64_t>(x.number())) : Value(x.number());
  if (x.is_float()) return integer ? Value(to_int64(x.number())) : x;
  if (x.is_string()) {
    const std::string s = x.str();
    char* end = nullptr;
    if (integer) {
      errno = 0;
      const long long v = std::strtoll(s.c_str(), &end, 10);
      if (end != s.c_str() && *end == '\0' && errno == 0) return Value(static_cast<int64_t>(v));
      const double d = std::strtod(s.c_str(), &end);  // int("1.5") fails in Python, Jinja's int filter takes it
      if (end != s.c_str() && *end == '\0') return Value(to_int64(d));
    } else {
      const double d = std::strtod(s.c_str(), &end);
      if (end != s.c_str() && *end == '\0') return Value(d);
    }
  }
  return fallback;
}

}  // namespace

Value call_filter(const std::string& name, const Value& x, Args& a, Apply& apply) {
  const Value none(None{});
  if (name == "tojson") {  // transformers: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
    if (truthy(arg(a, 0, "ensure_ascii", Value(false)))) fail("tojson(ensure_ascii=true) is not supported");
    const Value ind = arg(a, 1, "indent", none);
    const Value seps = arg(a, 2, "separators", none);
    std::string item_sep, key_sep;
    if (seps.is_array() && seps.array().size() == 2 && seps.array()[0].is_string() && seps.array()[1].is_string()) {
      item_sep = seps.array()[0].str();
      key_sep = seps.array()[1].str();
    } else if (!seps.is_none()) {
      fail("tojson separators must be a pair of strings");
    }
    if (!ind.is_none() && !ind.is_int()) fail("tojson indent must be an integer");
    return Value(to_json(x, ind.is_int() ? std::optional<int>(static_cast<int>(ind.integer())) : std::nullopt,
                         truthy(arg(a, 3, "sort_keys", Value(false))), item_sep, key_sep));
  }
  if (name == "length" || name == "count") return Value(length(x));
  if (name == "string") return Value(python_str(x));
  if (name == "safe" || name == "e" || name == "escape" || name == "forceescape") {
    if (name == "safe") return x.is_string() ? x : Value(python_str(x));
    std::string out;
    for (char c : python_str(x)) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&#34;"; break;
        case '\'': out += "&#39;"; break;
        default: out.push_back(c);
      }
    }
    return Value(out);
  }
  if (name == "trim") return get_attribute(Value(python_str(x)), "strip").callable().call(a);
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    Args none_args;
    return get_attribute(Value(python_str(x)), name).callable().call(none_args);
  }
  if (name == "replace") return get_attribute(Value(python_str(x)), "replace").callable().call(a);
  if (name == "default" || name == "d") {
    const bool boolean = truthy(arg(a, 1, "boolean", Value(false)));
    return (x.is_undefined() || (boolean && !truthy(x))) ? arg(a, 0, "default_value", Value("")) : x;
  }
  if (name == "first" || name == "last") {
    const std::vector<Value> items = iterate(x);
    if (items.empty()) return Value::undefined(name);
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") return Value(iterate(x));
  if (name == "reverse") {
    if (x.is_string()) return slice(x, Value(), Value(), Value(int64_t(-1)));
    std::vector<Value> items = iterate(x);
    std::reverse(items.begin(), items.end());
    return Value(items);
  }
  if (name == "join") {
    const Value sep = arg(a, 0, "d", Value(""));
    const Value attribute = arg(a, 1, "attribute", none);
    std::string out;
    bool first = true;
    for (const Value& v : iterate(x)) {
      out += (first ? "" : python_str(sep)) + python_str(attribute.is_string() ? attr_path(v, attribute.str()) : v);
      first = false;
    }
    return Value(out);
  }
  if (name == "items") {
    if (!x.is_object()) fail("the items filter needs a mapping");
    Args none_args;
    return get_attribute(x, "items").callable().call(none_args);
  }
  if (name == "dictsort") {
    if (!x.is_object()) fail("dictsort needs a mapping");
    std::vector<std::pair<std::string, Value>> items = x.object().items;
    const bool by_value = python_str(arg(a, 1, "by", Value("key"))) == "value";
    std::stable_sort(items.begin(), items.end(), [&](const auto& p, const auto& q) {
      return by_value ? less(p.second, q.second) : p.first < q.first;
    });
    if (truthy(arg(a, 2, "reverse", Value(false)))) std::reverse(items.begin(), items.end());
    Array out;
    for (auto& [k, v] : items) out.push_back(make_tuple(Array{Value(k), v}));
    return Value(std::move(out));
  }
  if (name == "sort") {
    std::vector<Value> items = iterate(x);
    const Value attribute = arg(a, 2, "attribute", none);
    const auto key = [&](const Value& v) { return attribute.is_string() ? attr_path(v, attribute.str()) : v; };
    std::stable_sort(items.begin(), items.end(), [&](const Value& p, const Value& q) { return less(key(p), key(q)); });
    if (truthy(arg(a, 0, "reverse", Value(false)))) std::reverse(items.begin(), items.end());
    return Value(items);
  }
  if (name == "unique") {
    std::vector<Value> out;
    for (const Value& v : iterate(x))
      if (std::none_of(out.begin(), out.end(), [&](const Value& w) { return equal(v, w); })) out.push_back(v);
    return Value(out);
  }
  if (name == "min" || name == "max") {
    const std::vector<Value> items = iterate(x);
    if (items.empty()) return Value::undefined(name);
    Value best = items[0];
    for (const Value& v : items)
      if (name == "min" ? less(v, best) : less(best, v)) best = v;
    return best;
  }
  if (name == "sum") {
    const Value attribute = arg(a, 0, "attribute", none);
    Value total = arg(a, 1, "start", Value(int64_t(0)));
    for (const Value& v0 : iterate(x)) {
      const Value v = attribute.is_string() ? attr_path(v0, attribute.str()) : v0;
      if (!v.is_number() || !total.is_number()) fail("sum needs numbers");
      int64_t r = 0;
      if (total.is_int() && v.is_int() && __builtin_add_overflow(total.integer(), v.integer(), &r)) fail("sum overflows 64 bits");
      total = total.is_int() && v.is_int() ? Value(r) : Value(total.number() + v.number());
    }
    return total;
  }
  if (name == "abs") {
    if (x.is_int()) {
      if (x.integer() == INT64_MIN) fail("abs() of -2^63 overflows 64 bits");
      return Value(static_cast<int64_t>(std::llabs(x.integer())));
    }
    if (x.is_float()) return Value(std::fabs(x.number()));
    fail("abs needs a number");
  }
  if (name == "int") return to_number(x, true, arg(a, 0, "default", Value(int64_t(0))));
  if (name == "float") return to_number(x, false, arg(a, 0, "default", Value(0.0)));
  if (name == "round") {
    if (!x.is_number() && !x.is_bool()) fail(std::string("round needs a number, not a ") + type_name(x));
    const Value prec = arg(a, 0, "precision", Value(int64_t(0)));
    const std::string method = python_str(arg(a, 1, "method", Value("common")));
    const double p = std::pow(10.0, prec.is_int() ? static_cast<double>(prec.integer()) : 0.0), v = x.number() * p;
    const double r = method == "ceil" ? std::ceil(v) : method == "floor" ? std::floor(v) : std::round(v);
    return Value(r / p);
  }
  if (name == "indent")
    return Value(indent_text(python_str(x), arg(a, 0, "width", Value(int64_t(4))), truthy(arg(a, 1, "first", Value(false))),
                             truthy(arg(a, 2, "blank", Value(false)))));
  if (name == "wordcount") {
    Args none_args;
    return Value(length(get_attribute(Value(python_str(x)), "split").callable().call(none_args)));
  }
  if (name == "attr") return get_attribute(x, python_str(arg(a, 0, "name", Value(""))));
  if (name == "map") {
    const Value attribute = arg(a, 99, "attribute", none);
    std::vector<Value> out;
    for (const Value& v : iterate(x)) {
      if (attribute.is_string()) {
        const Value got = attr_path(v, attribute.str());
        out.push_back(got.is_undefined() ? arg(a, 99, "default", got) : got);
      } else {
        if (a.positional.empty() || !a.positional[0].is_string()) fail("map needs a filter name or attribute=");
        Args rest;
        rest.positional.assign(a.positional.begin() + 1, a.positional.end());
        out.push_back(apply.filter(a.positional[0].str(), v, rest));
      }
    }
    return Value(out);
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    const bool by_attr = name.size() > 6, keep = name[0] == 's';
    size_t p = 0;
    std::string attribute;
    if (by_attr) {
      if (a.positional.empty() || !a.positional[0].is_string()) fail(name + " needs an attribute name");
      attribute = a.positional[p++].str();
    }
    std::string test = p < a.positional.size() && a.positional[p].is_string() ? a.positional[p++].str() : "";
    Args rest;
    rest.positional.assign(a.positional.begin() + static_cast<std::ptrdiff_t>(std::min(p, a.positional.size())), a.positional.end());
    std::vector<Value> out;
    for (const Value& v : iterate(x)) {
      const Value subject = by_attr ? attr_path(v, attribute) : v;
      const bool ok = test.empty() ? truthy(subject) : apply.test(test, subject, rest);
      if (ok == keep) out.push_back(v);
    }
    return Value(out);
  }
  fail("filter '" + name + "' is not supported");
}

bool call_test(const std::string& name, const Value& x, Args& a) {
  const Value other = arg(a, 0, "other", Value());
  if (name == "defined") return !x.is_undefined();
  if (name == "undefined") return x.is_undefined();
  if (name == "none") return x.is_none();
  if (name == "boolean") return x.is_bool();
  if (name == "true") return x.is_bool() && std::get<bool>(x.v);
  if (name == "false") return x.is_bool() && !std::get<bool>(x.v);
  if (name == "string") return x.is_string();
  if (name == "number") return x.is_number() || x.is_bool();
  if (name == "integer") return x.is_int();
  if (name == "float") return x.is_float();
  if (name == "mapping") return x.is_object() && !x.is_namespace;
  if (name == "iterable") return x.is_array() || x.is_string() || (x.is_object() && !x.is_namespace);
  if (name == "sequence") return x.is_array() || x.is_string() || (x.is_object() && !x.is_namespace);
  if (name == "callable") return x.is_callable();
  if (name == "lower" || name == "upper") {
    if (!x.is_string()) return false;
    Args none_args;
    return python_str(get_attribute(x, name).callable().call(none_args)) == x.str();
  }
  if (name == "odd" || name == "even") {
    if (!x.is_int()) fail("odd/even need an integer");
    return (x.integer() % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    if (!x.is_int() || !other.is_int() || other.integer() == 0) fail("divisibleby needs integers (and a non-zero divisor)");
    return x.integer() % other.integer() == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==") return equal(x, other);
  if (name == "ne" || name == "!=") return !equal(x, other);
  if (name == "sameas") return (x.is_none() && other.is_none()) || (x.is_bool() && other.is_bool() && equal(x, other)) || equal(x, other);
  if (name == "lt" || name == "lessthan") return less(x, other);
  if (name == "gt" || name == "greaterthan") return less(other, x);
  if (name == "le") return !less(other, x);
  if (name == "ge") return !less(x, other);
  if (name == "in") {
    for (const Value& v : iterate(other))
      if (equal(v, x)) return true;
    return other.is_string() && x.is_string() && other.str().find(x.str()) != std::string::npos;
  }
  fail("test '" + name + "' is not supported");
}

Object make_globals() {
  Object g;
  g.set("raise_exception", make_callable("raise_exception", [](Args& a) -> Value {
          fail("the template raised an error: " + python_str(arg(a, 0, "message", Value(""))));
        }));
  g.set("range", make_callable("range", [](Args& a) {
          std::vector<int64_t> n;
          for (const Value& v : a.positional) {
            if (!v.is_int()) fail("range() takes integers");
            n.push_back(v.integer());
          }
          if (n.empty() || n.size() > 3) fail("range() takes 1 to 3 integers");
          const int64_t start = n.size() > 1 ? n[0] : 0, stop = n.size() > 1 ? n[1] : n[0], step = n.size() > 2 ? n[2] : 1;
          if (step == 0) fail("range() step must not be zero");
          long double count = (static_cast<long double>(stop) - static_cast<long double>(start)) / static_cast<long double>(step);
          if (count > 1000000) fail("range() of more than 1,000,000 items");
          if (count < 0) count = 0;
          Array out;
          for (int64_t k = 0; k < static_cast<int64_t>(std::ceil(count)); ++k) out.push_back(Value(start + k * step));
          return Value(std::move(out));
        }));
  const auto mapping = [](Args& a, bool ns) {
    Object o;
    if (!a.positional.empty()) {
      if (!a.positional[0].is_object()) fail("namespace()/dict() takes a mapping or keywords");
      o = a.positional[0].object();
    }
    for (auto& [k, v] : a.keyword) o.set(k, v);
    return make_object(std::move(o), ns);
  };
  g.set("namespace", make_callable("namespace", [mapping](Args& a) { return mapping(a, true); }));
  g.set("dict", make_callable("dict", [mapping](Args& a) { return mapping(a, false); }));
  // transformers: datetime.now().strftime(fmt). SOURCE_DATE_EPOCH pins the time (reproducible renders).
  g.set("strftime_now", make_callable("strftime_now", [](Args& a) {
          const Value fmt = arg(a, 0, "format", Value());
          if (!fmt.is_string()) fail("strftime_now takes a format string");
          const char* pinned = std::getenv("SOURCE_DATE_EPOCH");
          const std::time_t now = pinned ? static_cast<std::time_t>(std::atoll(pinned)) : std::time(nullptr);
          std::tm tm{};
          if (pinned) gmtime_r(&now, &tm);
          else localtime_r(&now, &tm);
          char buf[256];
          const size_t n = std::strftime(buf, sizeof buf, fmt.str().c_str(), &tm);
          return Value(std::string(buf, n));
        }));
  return g;
}

}  // namespace moe::text::jinja
