// Tokens of a chat template, as Jinja2's lexer makes them under transformers' settings
// (trim_blocks, lstrip_blocks; '-' and '+' modifiers; comments and {% raw %} blocks removed).
#pragma once

#include <string>
#include <vector>

namespace moe::text::jinja {

struct Tok {
  enum Kind { text, var_begin, var_end, block_begin, block_end, name, string, integer, floating, op, eof } kind;
  std::string s;  // the text, name, literal (unescaped) or operator
  int line = 0;
};

// InvalidInput("[template] <name> line N: ...") for an unclosed tag or string, or a stray character.
std::vector<Tok> lex(const std::string& src, const std::string& name);

}  // namespace moe::text::jinja
