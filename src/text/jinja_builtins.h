// What templates call: Jinja2's filters and tests, the Python methods of str, dict and list that
// templates use, and the globals transformers provides (range, namespace, dict, raise_exception,
// strftime_now). Errors are EvalError; the interpreter adds the template's name and line.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "text/jinja_value.h"

namespace moe::text::jinja {

struct EvalError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Calls back into the interpreter for filters that apply other filters or tests (map, select...).
struct Apply {
  virtual ~Apply() = default;
  virtual Value filter(const std::string& name, const Value& x, Args& args) = 0;
  virtual bool test(const std::string& name, const Value& x, Args& args) = 0;
};

Value call_filter(const std::string& name, const Value& x, Args& args, Apply& apply);
bool call_test(const std::string& name, const Value& x, Args& args);
// obj.name: a dict's key, or a bound method of str / dict / list; Undefined when there is none.
Value get_attribute(const Value& obj, const std::string& name);
Value get_item(const Value& obj, const Value& key);  // obj[key]
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
std::vector<Value> iterate(const Value& x);  // for loops: list items, dict keys, string characters
int64_t length(const Value& x);
Object make_globals();

// Arguments by position or keyword: the value, or `fallback` when not given (by value: the
// fallback is usually a temporary).
Value arg(Args& a, size_t pos, const char* keyword, const Value& fallback);

}  // namespace moe::text::jinja
