#include "text/jinja_lex.h"

#include <cctype>
#include <cstring>

#include "moe/error.h"

namespace moe::text::jinja {

namespace {

struct Seg {
  enum Kind { text, var, block, comment } kind;
  std::string body;  // text, or the tag's inside without delimiters and modifiers
  char left = 0, right = 0;  // '-' or '+' modifiers
  int line = 0;
};

[[noreturn]] void fail(const std::string& name, int line, const std::string& what) {
  throw InvalidInput("[template] " + name + " line " + std::to_string(line) + ": " + what);
}

int count_lines(const std::string& s, size_t from, size_t to) {
  int n = 0;
  for (size_t i = from; i < to && i < s.size(); ++i) n += s[i] == '\n';
  return n;
}

// Splits the source into text and tags, then applies Jinja2's whitespace rules: '-' strips all
// whitespace on that side, trim_blocks drops the newline after a block or comment tag,
// lstrip_blocks drops the spaces and tabs before one at the start of a line ('+' opts out).
std::vector<Seg> segments(const std::string& src, const std::string& name) {
  std::vector<Seg> segs;
  size_t pos = 0;
  int line = 1;
  while (pos < src.size()) {
    size_t open = std::string::npos;
    for (size_t p = src.find('{', pos); p != std::string::npos && p + 1 < src.size(); p = src.find('{', p + 1))
      if (src[p + 1] == '{' || src[p + 1] == '%' || src[p + 1] == '#') {
        open = p;
        break;
      }
    if (open == std::string::npos) {
      segs.push_back({Seg::text, src.substr(pos), 0, 0, line});
      break;
    }
    if (open > pos) segs.push_back({Seg::text, src.substr(pos, open - pos), 0, 0, line});
    line += count_lines(src, pos, open);
    const char c = src[open + 1];
    const Seg::Kind kind = c == '{' ? Seg::var : c == '%' ? Seg::block : Seg::comment;
    const std::string close = c == '{' ? "}}" : c == '%' ? "%}" : "#}";
    size_t inner = open + 2;
    char left = 0;
    if (inner < src.size() && (src[inner] == '-' || src[inner] == '+')) left = src[inner++];
    size_t end = inner;
    if (kind == Seg::comment) {
      end = src.find(close, inner);
    } else {  // the closing delimiter outside string literals
      char quote = 0;
      for (; end + 1 < src.size(); ++end) {
        if (quote) {
          if (src[end] == '\\') ++end;
          else if (src[end] == quote) quote = 0;
        } else if (src[end] == '\'' || src[end] == '"') {
          quote = src[end];
        } else if (src.compare(end, 2, close) == 0) {
          break;
        }
      }
      if (end + 1 >= src.size()) end = std::string::npos;
    }
    if (end == std::string::npos) fail(name, line, "the tag opened here is never closed with " + close);
    size_t body_end = end;
    char right = 0;
    if (body_end > inner && (src[body_end - 1] == '-' || src[body_end - 1] == '+')) right = src[--body_end];
    Seg tag{kind, src.substr(inner, body_end - inner), left, right, line};
    line += count_lines(src, open, end + 2);
    pos = end + 2;
    if (kind == Seg::block) {  // {% raw %} ... {% endraw %}: the text between is literal
      const size_t a = tag.body.find_first_not_of(" \t\n"), b = tag.body.find_last_not_of(" \t\n");
      if (a != std::string::npos && tag.body.substr(a, b - a + 1) == "raw") {
        tag.kind = Seg::comment;
        segs.push_back(tag);
        size_t q = pos;
        size_t raw_end = std::string::npos, after = 0;
        char rl = 0, rr = 0;
        for (q = src.find("{%", q); q != std::string::npos; q = src.find("{%", q + 2)) {
          size_t k = q + 2;
          char l = 0;
          if (k < src.size() && (src[k] == '-' || src[k] == '+')) l = src[k++];
          while (k < src.size() && std::strchr(" \t\n", src[k])) ++k;
          if (src.compare(k, 6, "endraw") != 0) continue;
          k += 6;
          while (k < src.size() && std::strchr(" \t\n", src[k])) ++k;
          char r = 0;
          if (k < src.size() && (src[k] == '-' || src[k] == '+')) r = src[k++];
          if (src.compare(k, 2, "%}") != 0) continue;
          raw_end = q, after = k + 2, rl = l, rr = r;
          break;
        }
        if (raw_end == std::string::npos) fail(name, line, "{% raw %} without {% endraw %}");
        segs.push_back({Seg::text, src.substr(pos, raw_end - pos), 0, 0, line});
        line += count_lines(src, pos, after);
        segs.push_back({Seg::comment, "endraw", rl, rr, line});
        pos = after;
        continue;
      }
    }
    segs.push_back(tag);
  }
  // whitespace control
  bool line_starting = true;  // the text at hand starts a line (start of source, or after a newline)
  for (size_t i = 0; i < segs.size(); ++i) {
    Seg& s = segs[i];
    if (s.kind == Seg::text) continue;
    Seg* before = i > 0 && segs[i - 1].kind == Seg::text ? &segs[i - 1] : nullptr;
    Seg* after = i + 1 < segs.size() && segs[i + 1].kind == Seg::text ? &segs[i + 1] : nullptr;
    const bool blockish = s.kind != Seg::var;
    if (before) {
      const bool starts = i == 1 || line_starting;
      if (s.left == '-') {
        const size_t k = before->body.find_last_not_of(" \t\n\r\f\v");
        before->body.erase(k == std::string::npos ? 0 : k + 1);
      } else if (blockish && s.left != '+') {  // lstrip_blocks
        const size_t nl = before->body.rfind('\n');
        const size_t from = nl == std::string::npos ? 0 : nl + 1;
        if ((nl != std::string::npos || starts) && before->body.find_first_not_of(" \t", from) == std::string::npos)
          before->body.erase(from);
      }
    }
    line_starting = false;
    if (after) {
      if (s.right == '-') {
        const size_t k = after->body.find_first_not_of(" \t\n\r\f\v");
        line_starting = after->body.substr(0, k == std::string::npos ? after->body.size() : k).find('\n') != std::string::npos;
        after->body.erase(0, k == std::string::npos ? after->body.size() : k);
      } else if (blockish && s.right != '+' && !after->body.empty() && after->body[0] == '\n') {  // trim_blocks
        after->body.erase(0, 1);
        line_starting = true;
      }
    }
  }
  return segs;
}

void lex_tag(const Seg& seg, const std::string& name, std::vector<Tok>& out) {
  const std::string& s = seg.body;
  int line = seg.line;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '\n') ++line;
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      out.push_back({Tok::name, s.substr(i, j - i), line});
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t j = i;
      bool is_float = false;
      while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      if (j + 1 < s.size() && s[j] == '.' && std::isdigit(static_cast<unsigned char>(s[j + 1]))) {
        is_float = true;
        for (++j; j < s.size() && std::isdigit(static_cast<unsigned char>(s[j])); ++j) {}
      }
      if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
        size_t k = j + 1;
        if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
        if (k < s.size() && std::isdigit(static_cast<unsigned char>(s[k]))) {
          is_float = true;
          for (j = k; j < s.size() && std::isdigit(static_cast<unsigned char>(s[j])); ++j) {}
        }
      }
      std::string num;
      for (size_t k = i; k < j; ++k)
        if (s[k] != '_') num.push_back(s[k]);
      out.push_back({is_float ? Tok::floating : Tok::integer, num, line});
      i = j;
    } else if (c == '\'' || c == '"') {
      std::string v;
      size_t j = i + 1;
      for (; j < s.size() && s[j] != c; ++j) {
        if (s[j] != '\\' || j + 1 >= s.size()) {
          if (s[j] == '\n') ++line;
          v.push_back(s[j]);
          continue;
        }
        const char e = s[++j];
        switch (e) {
          case 'n': v.push_back('\n'); break;
          case 't': v.push_back('\t'); break;
          case 'r': v.push_back('\r'); break;
          case '\\': v.push_back('\\'); break;
          case '\'': v.push_back('\''); break;
          case '"': v.push_back('"'); break;
          case '\n': ++line; break;  // a backslash-newline continues the string
          default: v.push_back('\\'); v.push_back(e);  // Python keeps unknown escapes as written
        }
      }
      if (j >= s.size()) fail(name, line, "a string literal is not closed");
      out.push_back({Tok::string, v, line});
      i = j + 1;
    } else {
      static const char* two[] = {"==", "!=", "<=", ">=", "//", "**"};
      std::string op(1, c);
      for (const char* t : two)
        if (s.compare(i, 2, t) == 0) op = t;
      if (op.size() == 1 && !std::strchr("+-*/%~<>=()[]{},.:|", c)) fail(name, line, std::string("unexpected character '") + c + "'");
      out.push_back({Tok::op, op, line});
      i += op.size();
    }
  }
}

}  // namespace

std::vector<Tok> lex(const std::string& src, const std::string& name) {
  std::vector<Tok> toks;
  for (const Seg& seg : segments(src, name)) {
    if (seg.kind == Seg::comment) continue;
    if (seg.kind == Seg::text) {
      if (!seg.body.empty()) toks.push_back({Tok::text, seg.body, seg.line});
      continue;
    }
    toks.push_back({seg.kind == Seg::var ? Tok::var_begin : Tok::block_begin, "", seg.line});
    lex_tag(seg, name, toks);
    toks.push_back({seg.kind == Seg::var ? Tok::var_end : Tok::block_end, "", seg.line});
  }
  toks.push_back({Tok::eof, "", toks.empty() ? 1 : toks.back().line});
  return toks;
}

}  // namespace moe::text::jinja
