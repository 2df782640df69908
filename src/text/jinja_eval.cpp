// The chat-template interpreter: statements write to the output, expressions evaluate with
// Python's operators. Scopes follow Jinja2: a for loop's body and a macro's body have their own
// (a `set` inside a loop does not leak out, hence namespace()); if blocks do not.
#include <cmath>

#include "moe/chat_template.h"
#include "moe/error.h"
#include "moe/tokenizer.h"
#include "text/jinja_ast.h"
#include "text/jinja_builtins.h"

namespace moe {

using namespace text::jinja;

namespace {

struct Scope {
  Object vars;
  Scope* parent = nullptr;
  Value* lookup(const std::string& name) {
    for (Scope* s = this; s; s = s->parent)
      for (auto& [k, v] : s->vars.items)
        if (k == name) return &v;
    return nullptr;
  }
};

enum class Flow { normal, break_, continue_ };

constexpr int kMaxDepth = 200;          // macro recursion
constexpr size_t kMaxOutput = 64 << 20;  // a prompt this long is a runaway loop

class Renderer final : public Apply {
 public:
  Renderer(const std::string& name, Scope& globals) : name_(name), globals_(globals) {}

  Flow exec(const Body& body, Scope& scope, std::string& out) {
    for (const NodePtr& n : body) {
      const Flow f = exec(*n, scope, out);
      if (f != Flow::normal) return f;
    }
    return Flow::normal;
  }

  Value filter(const std::string& name, const Value& x, Args& args) override { return call_filter(name, x, args, *this); }
  bool test(const std::string& name, const Value& x, Args& args) override { return call_test(name, x, args); }

 private:
  const std::string& name_;
  Scope& globals_;
  int depth_ = 0;

  [[noreturn]] void fail(int line, const std::string& what) const {
    throw InvalidInput("[template] " + name_ + " line " + std::to_string(line) + ": " + what);
  }

  void emit(std::string& out, const std::string& s, int line) const {
    out += s;
    if (out.size() > kMaxOutput) fail(line, "the rendered text passed 64 MB (a runaway loop?)");
  }

  Flow exec(const Node& n, Scope& scope, std::string& out) {
    try {
      switch (n.kind) {
        case Node::Kind::text: emit(out, n.text, n.line); return Flow::normal;
        case Node::Kind::output: emit(out, python_str(eval(*n.expr, scope)), n.line); return Flow::normal;
        case Node::Kind::if_:
          for (const auto& [cond, body] : n.branches)
            if (!cond || truthy(eval(*cond, scope))) return exec(body, scope, out);
          return Flow::normal;
        case Node::Kind::for_: return exec_for(n, scope, out);
        case Node::Kind::set: {
          Value v = eval(*n.expr, scope);
          if (n.targets.size() == 1) {
            scope.vars.set(n.targets[0], std::move(v));
          } else {
            Value* ns = scope.lookup(n.targets[0]);
            if (!ns || !ns->is_object() || !ns->is_namespace)
              fail(n.line, "cannot set an attribute of '" + n.targets[0] + "': only a namespace() takes attributes");
            ns->object().set(n.targets[1], std::move(v));
          }
          return Flow::normal;
        }
        case Node::Kind::set_block: {
          std::string body;
          exec(n.body, scope, body);
          scope.vars.set(n.targets[0], Value(body));
          return Flow::normal;
        }
        case Node::Kind::macro: scope.vars.set(n.text, make_macro(n, scope)); return Flow::normal;
        case Node::Kind::break_: return Flow::break_;
        case Node::Kind::continue_: return Flow::continue_;
        case Node::Kind::filter_block: {
          std::string body;
          exec(n.body, scope, body);
          Value v = apply_filter_chain(*n.expr, Value(body), scope);
          emit(out, python_str(v), n.line);
          return Flow::normal;
        }
        case Node::Kind::call_block: {
          const Expr& call = *n.expr;
          Value callee = eval(*call.args[0], scope);
          Args args = eval_args(call, scope, 1);
          Scope* outer = &scope;
          const Body* body = &n.body;
          args.keyword.emplace_back("caller", make_callable("caller", [this, outer, body](Args&) {
                                      std::string s;
                                      Scope inner{{}, outer};
                                      exec(*body, inner, s);
                                      return Value(s);
                                    }));
          if (!callee.is_callable()) fail(n.line, "{% call %} of something that is not a macro");
          emit(out, python_str(callee.callable().call(args)), n.line);
          return Flow::normal;
        }
      }
    } catch (const EvalError& e) {
      fail(n.line, e.what());
    }
    return Flow::normal;
  }

  Flow exec_for(const Node& n, Scope& scope, std::string& out) {
    const Value iterable = eval(*n.expr, scope);
    std::vector<Value> items = iterate(iterable);
    Scope inner{{}, &scope};
    if (n.filter) {  // `for x in xs if cond`: the loop sees only the items that pass
      std::vector<Value> kept;
      for (const Value& item : items) {
        bind(inner, n, item);
        if (truthy(eval(*n.filter, inner))) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) return exec(n.else_body, scope, out);
    const int64_t len = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < len; ++i) {
      inner.vars.items.clear();
      bind(inner, n, items[static_cast<size_t>(i)]);
      Object loop;
      loop.set("index", Value(i + 1));
      loop.set("index0", Value(i));
      loop.set("revindex", Value(len - i));
      loop.set("revindex0", Value(len - i - 1));
      loop.set("first", Value(i == 0));
      loop.set("last", Value(i == len - 1));
      loop.set("length", Value(len));
      loop.set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value::undefined("loop.previtem"));
      loop.set("nextitem", i + 1 < len ? items[static_cast<size_t>(i + 1)] : Value::undefined("loop.nextitem"));
      loop.set("cycle", make_callable("loop.cycle", [i](Args& a) {
                 if (a.positional.empty()) throw EvalError("loop.cycle() needs at least one value");
                 return a.positional[static_cast<size_t>(i) % a.positional.size()];
               }));
      inner.vars.set("loop", make_object(std::move(loop)));
      if (exec(n.body, inner, out) == Flow::break_) break;
    }
    return Flow::normal;
  }

  void bind(Scope& inner, const Node& n, const Value& item) {
    if (n.targets.size() == 1) return inner.vars.set(n.targets[0], item);
    const std::vector<Value> parts = iterate(item);
    if (parts.size() != n.targets.size())
      fail(n.line, "cannot unpack " + std::to_string(parts.size()) + " values into " + std::to_string(n.targets.size()) + " loop variables");
    for (size_t k = 0; k < parts.size(); ++k) inner.vars.set(n.targets[k], parts[k]);
  }

  Value make_macro(const Node& n, Scope& defined_in) {
    const Node* node = &n;
    Scope* parent = &defined_in;
    return make_callable(n.text, [this, node, parent](Args& a) {
      if (a.positional.size() > node->params.size())
        throw EvalError("macro '" + node->text + "' takes " + std::to_string(node->params.size()) + " arguments, " +
                        std::to_string(a.positional.size()) + " given");
      if (++depth_ > kMaxDepth) throw EvalError("macro recursion deeper than " + std::to_string(kMaxDepth));
      Scope scope{{}, parent};
      for (size_t k = 0; k < node->params.size(); ++k) {
        const auto& [pname, def] = node->params[k];
        const Value* given = nullptr;
        if (k < a.positional.size()) given = &a.positional[k];
        for (const auto& [key, v] : a.keyword)
          if (key == pname) given = &v;
        scope.vars.set(pname, given ? *given : def ? eval(*def, scope) : Value::undefined(pname));
      }
      for (const auto& [key, v] : a.keyword)
        if (key == "caller") scope.vars.set("caller", v);
      std::string out;
      exec(node->body, scope, out);
      --depth_;
      return Value(out);
    });
  }

  Args eval_args(const Expr& e, Scope& scope, size_t first) {
    Args a;
    for (size_t k = first; k < e.args.size(); ++k) a.positional.push_back(eval(*e.args[k], scope));
    for (const auto& [key, v] : e.kwargs) a.keyword.emplace_back(key, eval(*v, scope));
    return a;
  }

  // The filter block's chain with `body` in place of its innermost (placeholder) operand.
  Value apply_filter_chain(const Expr& f, Value body, Scope& scope) {
    if (f.kind != Expr::Kind::filter) return body;
    Value inner = apply_filter_chain(*f.args[0], std::move(body), scope);
    Args a = eval_args(f, scope, 1);
    return call_filter(f.name, inner, a, *this);
  }

  Value eval(const Expr& e, Scope& scope) {
    try {
      return eval_inner(e, scope);
    } catch (const EvalError& err) {
      fail(e.line, err.what());
    }
  }

  Value eval_inner(const Expr& e, Scope& scope) {
    switch (e.kind) {
      case Expr::Kind::literal: return e.value;
      case Expr::Kind::name: {
        if (Value* v = scope.lookup(e.name)) return *v;
        return Value::undefined(e.name);
      }
      case Expr::Kind::list:
      case Expr::Kind::tuple: {
        Array a;
        for (const ExprPtr& x : e.args) a.push_back(eval(*x, scope));
        return e.kind == Expr::Kind::tuple ? make_tuple(std::move(a)) : Value(std::move(a));
      }
      case Expr::Kind::dict: {
        Object o;
        for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
          const Value key = eval(*e.args[k], scope);
          if (!key.is_string()) throw EvalError("dict keys must be strings here");
          o.set(key.str(), eval(*e.args[k + 1], scope));
        }
        return make_object(std::move(o));
      }
      case Expr::Kind::attr: {
        const Value obj = eval(*e.args[0], scope);
        const bool digits = !e.name.empty() && e.name.size() < 18 && std::isdigit(static_cast<unsigned char>(e.name[0]));
        return digits ? get_item(obj, Value(static_cast<int64_t>(std::stoll(e.name)))) : get_attribute(obj, e.name);
      }
      case Expr::Kind::index: return get_item(eval(*e.args[0], scope), eval(*e.args[1], scope));
      case Expr::Kind::slice: {
        const auto part = [&](size_t k) { return e.args[k] ? eval(*e.args[k], scope) : Value(None{}); };
        return slice(eval(*e.args[0], scope), part(1), part(2), part(3));
      }
      case Expr::Kind::call: {
        const Value callee = eval(*e.args[0], scope);
        Args a = eval_args(e, scope, 1);
        if (callee.is_undefined()) throw EvalError("'" + std::get<Undefined>(callee.v).name + "' is undefined and cannot be called");
        if (!callee.is_callable()) throw EvalError(std::string("'") + type_name(callee) + "' object is not callable");
        return callee.callable().call(a);
      }
      case Expr::Kind::filter: {
        const Value x = eval(*e.args[0], scope);
        Args a = eval_args(e, scope, 1);
        return call_filter(e.name, x, a, *this);
      }
      case Expr::Kind::test: {
        const Value x = eval(*e.args[0], scope);
        Args a = eval_args(e, scope, 1);
        const bool r = call_test(e.name, x, a);
        return Value(e.op == "not" ? !r : r);
      }
      case Expr::Kind::unary: {
        const Value x = eval(*e.args[0], scope);
        if (e.op == "not") return Value(!truthy(x));
        if (x.is_int()) {
          if (e.op == "-" && x.integer() == INT64_MIN) throw EvalError("integer negation overflows 64 bits");
          return Value(e.op == "-" ? -x.integer() : x.integer());
        }
        if (x.is_float()) return Value(e.op == "-" ? -x.number() : x.number());
        throw EvalError(std::string("bad operand type for unary ") + e.op + ": '" + type_name(x) + "'");
      }
      case Expr::Kind::conditional:
        if (truthy(eval(*e.args[1], scope))) return eval(*e.args[0], scope);
        return e.args[2] ? eval(*e.args[2], scope) : Value::undefined("conditional");
      case Expr::Kind::binary: return binary(e, scope);
    }
    return Value();
  }

  Value binary(const Expr& e, Scope& scope) {
    const std::string& op = e.op;
    if (op == "and" || op == "or") {  // Python: the deciding operand itself
      Value a = eval(*e.args[0], scope);
      if (truthy(a) == (op == "or")) return a;
      return eval(*e.args[1], scope);
    }
    const Value a = eval(*e.args[0], scope), b = eval(*e.args[1], scope);
    const auto bad = [&]() -> Value {
      throw EvalError("unsupported operand types for " + op + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
    };
    if (op == "~") return Value(python_str(a) + python_str(b));
    if (op == "==") return Value(equal(a, b));
    if (op == "!=") return Value(!equal(a, b));
    if (op == "in" || op == "not in") {
      bool found = false;
      if (b.is_string()) {
        if (!a.is_string()) throw EvalError(std::string("'in <string>' requires a string, not '") + type_name(a) + "'");
        found = b.str().find(a.str()) != std::string::npos;
      } else if (b.is_object()) {
        found = a.is_string() && b.object().find(a.str()) != nullptr;
      } else if (b.is_array()) {
        for (const Value& v : b.array()) found = found || equal(v, a);
      } else {
        throw EvalError(std::string("argument of type '") + type_name(b) + "' is not iterable");
      }
      return Value(op == "in" ? found : !found);
    }
    if (a.is_undefined() || b.is_undefined())
      throw EvalError("'" + std::get<Undefined>((a.is_undefined() ? a : b).v).name + "' is undefined");
    const bool numbers = (a.is_number() || a.is_bool()) && (b.is_number() || b.is_bool());
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
      int c = 0;
      if (numbers) c = a.number() < b.number() ? -1 : a.number() > b.number() ? 1 : 0;
      else if (a.is_string() && b.is_string()) c = a.str().compare(b.str());
      else return bad();
      return Value(op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0);
    }
    const bool ints = numbers && !a.is_float() && !b.is_float();
    const auto iv = [](const Value& v) { return v.is_bool() ? int64_t(std::get<bool>(v.v)) : v.integer(); };
    // Python's integers are unbounded; past 64 bits this is an error rather than a wrapped number.
    const auto overflows = [&]() -> Value {
      throw EvalError("integer " + op + " overflows 64 bits (Python's big integers are not supported)");
    };
    // The result of a checked integer operation (computed first: argument order is unspecified).
    const auto checked = [&](bool (*f)(int64_t, int64_t, int64_t*)) -> Value {
      int64_t r = 0;
      if (f(iv(a), iv(b), &r)) return overflows();
      return Value(r);
    };
    static constexpr auto add = [](int64_t x, int64_t y, int64_t* r) { return __builtin_add_overflow(x, y, r); };
    static constexpr auto sub = [](int64_t x, int64_t y, int64_t* r) { return __builtin_sub_overflow(x, y, r); };
    static constexpr auto mul = [](int64_t x, int64_t y, int64_t* r) { return __builtin_mul_overflow(x, y, r); };
    if (op == "+") {
      if (ints) return checked(add);
      if (numbers) return Value(a.number() + b.number());
      if (a.is_string() && b.is_string()) return Value(a.str() + b.str());
      if (a.is_array() && b.is_array()) {
        Array r = a.array();
        r.insert(r.end(), b.array().begin(), b.array().end());
        return Value(std::move(r));
      }
      return bad();
    }
    if (op == "*") {
      if (ints) return checked(mul);
      if (numbers) return Value(a.number() * b.number());
      const Value& s = a.is_string() || a.is_array() ? a : b;
      const Value& k = &s == &a ? b : a;
      if ((s.is_string() || s.is_array()) && k.is_int()) {
        if (k.integer() > 1000000 || k.integer() * length(s) > 1000000) throw EvalError("a repetition of more than 1,000,000 items");
        if (s.is_string()) {
          std::string r;
          for (int64_t i = 0; i < k.integer(); ++i) r += s.str();
          return Value(r);
        }
        Array r;
        for (int64_t i = 0; i < k.integer(); ++i) r.insert(r.end(), s.array().begin(), s.array().end());
        return Value(std::move(r));
      }
      return bad();
    }
    if (!numbers) return bad();
    if (op == "-") return ints ? checked(sub) : Value(a.number() - b.number());
    if ((op == "//" || op == "%") && ints && iv(a) == INT64_MIN && iv(b) == -1) return overflows();
    if ((op == "/" || op == "//" || op == "%") && b.number() == 0) throw EvalError("division by zero");
    if (op == "/") return Value(a.number() / b.number());
    if (op == "//") {
      if (ints) {
        const int64_t q = iv(a) / iv(b);
        return Value((iv(a) % iv(b) != 0 && ((iv(a) < 0) != (iv(b) < 0))) ? q - 1 : q);
      }
      return Value(std::floor(a.number() / b.number()));
    }
    if (op == "%") {
      if (ints) {
        const int64_t r = iv(a) % iv(b);
        return Value(r != 0 && ((r < 0) != (iv(b) < 0)) ? r + iv(b) : r);
      }
      const double r = std::fmod(a.number(), b.number());
      return Value(r != 0 && ((r < 0) != (b.number() < 0)) ? r + b.number() : r);
    }
    if (op == "**") {
      if (ints && iv(b) >= 0) {  // by squaring: 64 steps at most
        int64_t r = 1, base = iv(a), e = iv(b);
        bool overflow = false;
        while (e > 0 && !overflow) {
          if (e & 1) overflow = __builtin_mul_overflow(r, base, &r);
          e >>= 1;
          if (e > 0 && !overflow) overflow = __builtin_mul_overflow(base, base, &base);
        }
        if (overflow) return overflows();
        return Value(r);
      }
      return Value(std::pow(a.number(), b.number()));
    }
    return bad();
  }
};

}  // namespace

struct ChatTemplate::Impl {
  std::string name;
  Body body;
};

ChatTemplate::ChatTemplate(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;
ChatTemplate::~ChatTemplate() = default;

ChatTemplate ChatTemplate::parse(const std::string& source, const std::string& name) {
  if (const size_t bad = first_invalid_utf8(source); bad != std::string::npos)
    throw InvalidInput("[template] " + name + ": not valid UTF-8 (byte " + std::to_string(bad) + ")");
  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->body = parse_template(source, name);
  return ChatTemplate(std::move(impl));
}

std::string ChatTemplate::render(const nlohmann::ordered_json& context) const {
  if (!context.is_object()) throw InvalidInput("[template] " + impl_->name + ": the variables must be a JSON object");
  Scope globals{make_globals(), nullptr};
  for (const auto& [k, v] : context.items()) globals.vars.set(k, from_json(v));
  Scope top{{}, &globals};
  Renderer r(impl_->name, globals);
  std::string out;
  r.exec(impl_->body, top, out);
  return out;
}

}  // namespace moe
