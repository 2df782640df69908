// The parsed form of a chat template: statements (text, output, if, for, set, macro, ...) and
// expressions, each with the line it came from for error messages. jinja_parse.cpp builds it with
// Jinja2's lexing rules as transformers configures them (trim_blocks, lstrip_blocks,
// loopcontrols); jinja_eval.cpp runs it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "text/jinja_value.h"

namespace moe::text::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    literal,    // value
    name,       // name
    list,       // args
    tuple,      // args
    dict,       // args: key, value, key, value, ...
    attr,       // args[0] . name
    index,      // args[0] [ args[1] ]
    slice,      // args[0] [ args[1] : args[2] : args[3] ]  (null entries are omitted bounds)
    call,       // args[0] ( args[1..] , kwargs )
    filter,     // args[0] | name ( args[1..], kwargs )
    test,       // args[0] is [not] name ( args[1..] )   (negated: op == "not")
    unary,      // op args[0]: "not", "-", "+"
    binary,     // args[0] op args[1]: or and + - * / // % ** ~ == != < > <= >= in "not in"
    conditional // args[0] if args[1] else args[2] (args[2] may be null)
  };
  explicit Expr(Kind k = Kind::literal) : kind(k) {}
  Kind kind;
  int line = 0;
  Value value;
  std::string name, op;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct Node {
  enum class Kind {
    text,        // text
    output,      // {{ expr }}
    if_,         // branches: (cond, body)...; a null cond is the else branch
    for_,        // targets in iter [if filter]: body [else: else_body]
    set,         // target (name, or ns.attr via attr) = expr
    set_block,   // {% set name %}body{% endset %}
    macro,       // name(params = defaults): body
    break_,
    continue_,
    filter_block,  // {% filter name(args) %}body{% endfilter %}: expr is the filter applied to the body
    call_block,    // {% call macro(args) %}body{% endcall %}
  };
  explicit Node(Kind k = Kind::text) : kind(k) {}
  Kind kind;
  int line = 0;
  std::string text;
  ExprPtr expr, filter;
  std::vector<std::string> targets;  // for-loop targets, set name / [namespace, attribute]
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body, else_body;
  std::vector<std::pair<std::string, ExprPtr>> params;  // macro parameters with defaults (null: none)
};

// Throws InvalidInput("[template] <name> line N: ...") for a syntax error or a construct this
// interpreter does not have.
Body parse_template(const std::string& source, const std::string& name);

}  // namespace moe::text::jinja
