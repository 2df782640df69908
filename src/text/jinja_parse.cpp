// Recursive-descent parser for chat templates, with Jinja2's operator precedence:
// conditional < or < and < not < comparisons (in, is) < + - < ~ < * / // % < ** < unary < postfix.
#include "moe/error.h"
#include "text/jinja_ast.h"
#include "text/jinja_lex.h"

namespace moe::text::jinja {

namespace {

class Parser {
 public:
  Parser(std::vector<Tok> toks, std::string name) : t_(std::move(toks)), name_(std::move(name)) {}

  Body parse_all() {
    Body body = parse_body({});
    if (peek().kind != Tok::eof) fail("unexpected {% " + tag_name() + " %}");
    return body;
  }

 private:
  std::vector<Tok> t_;
  std::string name_;
  size_t i_ = 0;
  int depth_ = 0;  // nesting of expressions and blocks: bounded so that no input exhausts the stack
  static constexpr int kMaxDepth = 100;
  struct Nest {
    Parser& p;
    explicit Nest(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxDepth) p.fail("nests deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    ~Nest() { --p.depth_; }
  };

  const Tok& peek(size_t k = 0) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  const Tok& next() { return t_[std::min(i_++, t_.size() - 1)]; }
  [[noreturn]] void fail(const std::string& what) const {
    throw InvalidInput("[template] " + name_ + " line " + std::to_string(peek().line) + ": " + what);
  }
  bool is_op(const char* op) const { return peek().kind == Tok::op && peek().s == op; }
  bool is_name(const char* n) const { return peek().kind == Tok::name && peek().s == n; }
  bool accept_op(const char* op) { return is_op(op) ? (++i_, true) : false; }
  bool accept_name(const char* n) { return is_name(n) ? (++i_, true) : false; }
  void expect_op(const char* op) {
    if (!accept_op(op)) fail(std::string("expected '") + op + "', found '" + peek().s + "'");
  }
  void expect_block_end() {
    if (peek().kind != Tok::block_end) fail("expected the end of the tag, found '" + peek().s + "'");
    ++i_;
  }
  std::string expect_name() {
    if (peek().kind != Tok::name) fail("expected a name, found '" + peek().s + "'");
    return next().s;
  }
  // The statement name of the block tag at the cursor ("" when not at a block tag).
  std::string tag_name() const { return peek().kind == Tok::block_begin && peek(1).kind == Tok::name ? peek(1).s : ""; }

  // Statements until one of `ends` (left unconsumed) or the end of input.
  Body parse_body(std::initializer_list<const char*> ends) {
    Body body;
    while (peek().kind != Tok::eof) {
      const Tok& tk = peek();
      if (tk.kind == Tok::text) {
        auto n = std::make_unique<Node>(Node::Kind::text);
        n->line = tk.line;
        n->text = next().s;
        body.push_back(std::move(n));
      } else if (tk.kind == Tok::var_begin) {
        auto n = std::make_unique<Node>(Node::Kind::output);
        n->line = next().line;
        n->expr = parse_expr();
        if (peek().kind != Tok::var_end) fail("expected '}}', found '" + peek().s + "'");
        ++i_;
        body.push_back(std::move(n));
      } else if (tk.kind == Tok::block_begin) {
        const std::string tag = tag_name();
        for (const char* e : ends)
          if (tag == e) return body;
        body.push_back(parse_statement());
      } else {
        fail("unexpected '" + tk.s + "'");
      }
    }
    if (ends.size() > 0) fail(std::string("missing {% ") + *(ends.end() - 1) + " %} (end of template reached)");
    return body;
  }

  NodePtr parse_statement() {
    const Nest nest(*this);
    const int line = next().line;  // block_begin
    if (peek().kind != Tok::name) fail("a block tag must start with a statement name");
    const std::string tag = next().s;
    auto n = std::make_unique<Node>();
    n->line = line;
    if (tag == "if") {
      n->kind = Node::Kind::if_;
      ExprPtr cond = parse_expr();
      expect_block_end();
      Body body = parse_body({"elif", "else", "endif"});
      n->branches.emplace_back(std::move(cond), std::move(body));
      while (true) {
        const std::string t = tag_name();
        i_ += 2;
        if (t == "elif") {
          ExprPtr c = parse_expr();
          expect_block_end();
          Body b = parse_body({"elif", "else", "endif"});
          n->branches.emplace_back(std::move(c), std::move(b));
        } else if (t == "else") {
          expect_block_end();
          Body b = parse_body({"endif"});
          n->branches.emplace_back(nullptr, std::move(b));
        } else {
          expect_block_end();
          break;
        }
      }
    } else if (tag == "for") {
      n->kind = Node::Kind::for_;
      do n->targets.push_back(expect_name());
      while (accept_op(","));
      if (!accept_name("in")) fail("expected 'in' in the for loop");
      n->expr = parse_expr(false);
      if (accept_name("if")) n->filter = parse_expr(false);
      if (accept_name("recursive")) fail("recursive for loops are not supported");
      expect_block_end();
      n->body = parse_body({"else", "endfor"});
      if (tag_name() == "else") {
        i_ += 2;
        expect_block_end();
        n->else_body = parse_body({"endfor"});
      }
      i_ += 2;
      expect_block_end();
    } else if (tag == "set") {
      n->targets.push_back(expect_name());
      if (accept_op(".")) n->targets.push_back(expect_name());
      if (is_op(",")) fail("tuple assignment in {% set %} is not supported");
      if (accept_op("=")) {
        n->kind = Node::Kind::set;
        n->expr = parse_expr();
        expect_block_end();
      } else {
        n->kind = Node::Kind::set_block;
        if (n->targets.size() != 1) fail("a {% set %} block assigns to a plain name");
        expect_block_end();
        n->body = parse_body({"endset"});
        i_ += 2;
        expect_block_end();
      }
    } else if (tag == "macro") {
      n->kind = Node::Kind::macro;
      n->text = expect_name();
      expect_op("(");
      while (!accept_op(")")) {
        const std::string p = expect_name();
        ExprPtr def = accept_op("=") ? parse_expr() : nullptr;
        n->params.emplace_back(p, std::move(def));
        if (!is_op(")")) expect_op(",");
      }
      expect_block_end();
      n->body = parse_body({"endmacro"});
      i_ += 2;
      if (peek().kind == Tok::name) ++i_;  // {% endmacro name %}
      expect_block_end();
    } else if (tag == "call") {
      n->kind = Node::Kind::call_block;
      if (is_op("(")) fail("{% call(args) %} with caller arguments is not supported");
      n->expr = parse_expr();
      if (n->expr->kind != Expr::Kind::call) fail("{% call %} needs a macro call");
      expect_block_end();
      n->body = parse_body({"endcall"});
      i_ += 2;
      expect_block_end();
    } else if (tag == "filter") {
      n->kind = Node::Kind::filter_block;
      auto placeholder = std::make_unique<Expr>(Expr::Kind::literal);
      n->expr = parse_filters(std::move(placeholder), true);
      expect_block_end();
      n->body = parse_body({"endfilter"});
      i_ += 2;
      expect_block_end();
    } else if (tag == "break" || tag == "continue") {
      n->kind = tag == "break" ? Node::Kind::break_ : Node::Kind::continue_;
      expect_block_end();
    } else if (tag == "generation") {  // transformers' assistant-mask marker: renders its body
      expect_block_end();
      n->kind = Node::Kind::if_;
      auto yes = std::make_unique<Expr>(Expr::Kind::literal);
      yes->value = Value(true);
      n->branches.emplace_back(std::move(yes), parse_body({"endgeneration"}));
      i_ += 2;
      expect_block_end();
    } else {
      i_ -= 1;
      fail("{% " + tag + " %} is not supported (if, for, set, macro, call, filter, raw, break, continue, generation are)");
    }
    return n;
  }

  ExprPtr node(Expr::Kind k, int line) {
    auto e = std::make_unique<Expr>(k);
    e->line = line;
    return e;
  }

  // with_conditional = false inside a for loop's iterable, where `if` starts the loop filter.
  ExprPtr parse_expr(bool with_conditional = true) {
    const Nest nest(*this);
    ExprPtr e = parse_or();
    while (with_conditional && is_name("if")) {
      const int line = next().line;
      auto c = node(Expr::Kind::conditional, line);
      c->args.push_back(std::move(e));
      c->args.push_back(parse_or());
      c->args.push_back(accept_name("else") ? parse_expr() : nullptr);
      e = std::move(c);
    }
    return e;
  }

  ExprPtr binary(const std::string& op, ExprPtr a, ExprPtr b, int line) {
    auto e = node(Expr::Kind::binary, line);
    e->op = op;
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (is_name("or")) e = binary("or", std::move(e), (next(), parse_and()), peek().line);
    return e;
  }
  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (is_name("and")) e = binary("and", std::move(e), (next(), parse_not()), peek().line);
    return e;
  }
  ExprPtr parse_not() {
    const Nest nest(*this);
    if (is_name("not")) {
      auto e = node(Expr::Kind::unary, next().line);
      e->op = "not";
      e->args.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    ExprPtr e = parse_math1();
    while (true) {
      const int line = peek().line;
      std::string op;
      if (peek().kind == Tok::op && (peek().s == "==" || peek().s == "!=" || peek().s == "<" || peek().s == ">" || peek().s == "<=" ||
                                     peek().s == ">=")) {
        op = next().s;
      } else if (is_name("in")) {
        next();
        op = "in";
      } else if (is_name("not") && peek(1).kind == Tok::name && peek(1).s == "in") {
        i_ += 2;
        op = "not in";
      } else {
        return e;
      }
      e = binary(op, std::move(e), parse_math1(), line);
    }
  }
  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      const std::string op = next().s;
      e = binary(op, std::move(e), parse_concat(), peek().line);
    }
    return e;
  }
  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (accept_op("~")) e = binary("~", std::move(e), parse_math2(), peek().line);
    return e;
  }
  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string op = next().s;
      e = binary(op, std::move(e), parse_pow(), peek().line);
    }
    return e;
  }
  ExprPtr parse_pow() {
    ExprPtr e = parse_unary();
    while (accept_op("**")) e = binary("**", std::move(e), parse_unary(), peek().line);
    return e;
  }
  ExprPtr parse_unary() {
    if (is_op("-") || is_op("+")) {
      auto e = node(Expr::Kind::unary, peek().line);
      e->op = next().s;
      e->args.push_back(parse_unary_no_filter());
      return parse_filters(std::move(e), false);
    }
    return parse_filters(parse_postfix(parse_primary()), false);
  }
  ExprPtr parse_unary_no_filter() {
    const Nest nest(*this);
    if (is_op("-") || is_op("+")) {
      auto e = node(Expr::Kind::unary, peek().line);
      e->op = next().s;
      e->args.push_back(parse_unary_no_filter());
      return e;
    }
    return parse_postfix(parse_primary());
  }

  void parse_call_args(Expr& e) {
    while (!accept_op(")")) {
      if (peek().kind == Tok::name && peek(1).kind == Tok::op && peek(1).s == "=") {
        const std::string k = next().s;
        next();
        e.kwargs.emplace_back(k, parse_expr());
      } else {
        if (!e.kwargs.empty()) fail("a positional argument after keyword arguments");
        e.args.push_back(parse_expr());
      }
      if (!is_op(")")) expect_op(",");
    }
  }

  // `| name(args)` filters and `is [not] name(args)` tests; the filter block starts at `name`.
  ExprPtr parse_filters(ExprPtr e, bool block) {
    while (true) {
      if (block || accept_op("|")) {
        block = false;
        auto f = node(Expr::Kind::filter, peek().line);
        f->name = expect_name();
        f->args.push_back(std::move(e));
        if (accept_op("(")) parse_call_args(*f);
        e = std::move(f);
      } else if (is_name("is")) {
        auto t = node(Expr::Kind::test, next().line);
        if (accept_name("not")) t->op = "not";
        t->name = expect_name();
        t->args.push_back(std::move(e));
        if (accept_op("(")) {
          parse_call_args(*t);
        } else if (peek().kind == Tok::string || peek().kind == Tok::integer || peek().kind == Tok::floating ||
                   (peek().kind == Tok::name && !is_name("and") && !is_name("or") && !is_name("if") && !is_name("else") &&
                    !is_name("is") && !is_name("in") && !is_name("not"))) {
          t->args.push_back(parse_postfix(parse_primary()));  // `is divisibleby 3`, `is sameas none`
        }
        e = std::move(t);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      const int line = peek().line;
      if (accept_op(".")) {
        auto a = node(Expr::Kind::attr, line);
        if (peek().kind == Tok::integer) a->name = next().s;  // x.0 as x[0]
        else a->name = expect_name();
        a->args.push_back(std::move(e));
        e = std::move(a);
      } else if (accept_op("[")) {
        ExprPtr first = is_op(":") ? nullptr : parse_expr();
        if (is_op(":")) {
          auto s = node(Expr::Kind::slice, line);
          s->args.push_back(std::move(e));
          s->args.push_back(std::move(first));
          next();
          s->args.push_back(is_op(":") || is_op("]") ? nullptr : parse_expr());
          if (accept_op(":")) s->args.push_back(is_op("]") ? nullptr : parse_expr());
          else s->args.push_back(nullptr);
          e = std::move(s);
        } else {
          auto ix = node(Expr::Kind::index, line);
          ix->args.push_back(std::move(e));
          ix->args.push_back(std::move(first));
          e = std::move(ix);
        }
        expect_op("]");
      } else if (accept_op("(")) {
        auto c = node(Expr::Kind::call, line);
        c->args.push_back(std::move(e));
        parse_call_args(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_primary() {
    const Tok& tk = peek();
    auto lit = [&](Value v) {
      auto e = node(Expr::Kind::literal, tk.line);
      e->value = std::move(v);
      next();
      return e;
    };
    switch (tk.kind) {
      case Tok::string: {
        std::string s = tk.s;
        next();
        while (peek().kind == Tok::string) s += next().s;  // adjacent literals concatenate
        auto e = node(Expr::Kind::literal, tk.line);
        e->value = Value(std::move(s));
        return e;
      }
      case Tok::integer:
        try {
          return lit(Value(static_cast<int64_t>(std::stoll(tk.s))));
        } catch (const std::exception&) {
          fail("integer literal " + tk.s + " is out of range");
        }
      case Tok::floating: return lit(Value(std::strtod(tk.s.c_str(), nullptr)));  // 1e999 is inf, as in Python
      case Tok::name: {
        const std::string& n = tk.s;
        if (n == "true" || n == "True") return lit(Value(true));
        if (n == "false" || n == "False") return lit(Value(false));
        if (n == "none" || n == "None") return lit(Value(None{}));
        auto e = node(Expr::Kind::name, tk.line);
        e->name = next().s;
        return e;
      }
      case Tok::op:
        if (tk.s == "(") {
          const int line = next().line;
          if (accept_op(")")) return node(Expr::Kind::tuple, line);
          ExprPtr first = parse_expr();
          if (accept_op(")")) return first;
          auto t = node(Expr::Kind::tuple, line);
          t->args.push_back(std::move(first));
          while (accept_op(",")) {
            if (is_op(")")) break;
            t->args.push_back(parse_expr());
          }
          expect_op(")");
          return t;
        }
        if (tk.s == "[") {
          auto l = node(Expr::Kind::list, next().line);
          while (!accept_op("]")) {
            l->args.push_back(parse_expr());
            if (!is_op("]")) expect_op(",");
          }
          return l;
        }
        if (tk.s == "{") {
          auto d = node(Expr::Kind::dict, next().line);
          while (!accept_op("}")) {
            d->args.push_back(parse_expr());
            expect_op(":");
            d->args.push_back(parse_expr());
            if (!is_op("}")) expect_op(",");
          }
          return d;
        }
        break;
      default: break;
    }
    fail(tk.kind == Tok::var_end || tk.kind == Tok::block_end ? std::string("the tag ends where an expression should follow")
                                                             : "unexpected '" + tk.s + "' in an expression");
  }
};

}  // namespace

Body parse_template(const std::string& source, const std::string& name) { return Parser(lex(source, name), name).parse_all(); }

}  // namespace moe::text::jinja
