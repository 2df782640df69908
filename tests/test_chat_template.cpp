// The chat-template interpreter's own rules (the oracle comparison with python3-jinja2 is
// tests/text/test_chat_template_oracle.py): Python's float printing, errors that name the line,
// and the guards against runaway templates.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "moe/chat_template.h"
#include "moe/error.h"
#include "test_support.h"
#include "text/jinja_value.h"

using moe::ChatTemplate;

namespace {

using moe::test::error_of;

std::string render(const std::string& src, const nlohmann::ordered_json& ctx = nlohmann::ordered_json::object()) {
  return ChatTemplate::parse(src, "t").render(ctx);
}

}  // namespace

TEST(ChatTemplate, FloatsPrintAsPythonRepr) {
  using moe::text::jinja::python_float;
  // Python 3: repr(x) for each.
  const std::pair<double, const char*> cases[] = {
      {0.0, "0.0"},         {-0.0, "-0.0"},        {1.0, "1.0"},          {0.5, "0.5"},          {0.1 + 0.2, "0.30000000000000004"},
      {1e16, "1e+16"},      {1e15, "1000000000000000.0"}, {123456789012345678.0, "1.2345678901234568e+17"},
      {1e-4, "0.0001"},     {1e-5, "1e-05"},       {1.5e-7, "1.5e-07"},   {2.5e300, "2.5e+300"}, {5e-324, "5e-324"},
      {1.0 / 3, "0.3333333333333333"}, {-123.456, "-123.456"}, {9007199254740993.0, "9007199254740992.0"}};
  for (const auto& [x, want] : cases) EXPECT_EQ(python_float(x), want) << x;
}

TEST(ChatTemplate, ErrorsNameTheLine) {
  EXPECT_NE(error_of([] { render("a\nb\n{% if x %}"); }).find("t line 3: missing {% endif %}"), std::string::npos);
  EXPECT_NE(error_of([] { render("{{ x +"); }).find("never closed"), std::string::npos);
  EXPECT_NE(error_of([] { render("\n{% while x %}{% endwhile %}"); }).find("line 2: {% while %} is not supported"), std::string::npos);
  EXPECT_NE(error_of([] { render("{{ x | frobnicate }}"); }).find("filter 'frobnicate' is not supported"), std::string::npos);
  EXPECT_NE(error_of([] { render("{{ x is frob }}"); }).find("test 'frob' is not supported"), std::string::npos);
  EXPECT_NE(error_of([] { render("x\n{{ raise_exception('no system role') }}"); }).find("line 2: the template raised an error: no system role"),
            std::string::npos);
  EXPECT_NE(error_of([] { render("{{ a.b }}"); }).find("'a' is undefined"), std::string::npos);
  EXPECT_NE(error_of([] { render("{{ 'a' + 1 }}"); }).find("unsupported operand types for +: 'str' and 'int'"), std::string::npos);
  EXPECT_NE(error_of([] { render("{{ 1 // 0 }}"); }).find("division by zero"), std::string::npos);
  EXPECT_NE(error_of([] { render("{{ [1].append(2) }}"); }).find("not allowed"), std::string::npos);
  EXPECT_NE(error_of([] { ChatTemplate::parse("x", "t").render(nlohmann::ordered_json::array()); }).find("JSON object"), std::string::npos);
}

TEST(ChatTemplate, RunawayTemplatesStop) {
  EXPECT_NE(error_of([] { render("{% macro r() %}{{ r() }}{% endmacro %}{{ r() }}"); }).find("recursion"), std::string::npos);
  EXPECT_NE(error_of([] { render("{% for i in range(999999) %}{{ 'x' * 999 }}{% endfor %}"); }).find("64 MB"), std::string::npos);
  EXPECT_NE(error_of([] { render("{{ range(10000000) }}"); }).find("1,000,000"), std::string::npos);
}

TEST(ChatTemplate, RendersMessages) {
  nlohmann::ordered_json ctx = {{"messages", {{{"role", "user"}, {"content", "Hi"}}}}, {"add_generation_prompt", true}};
  EXPECT_EQ(render("{% for m in messages %}<{{ m.role }}>{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}", ctx),
            "<user>Hi\n<assistant>");
}

TEST(ChatTemplate, SourceMustBeUtf8) {
  EXPECT_NE(error_of([] { ChatTemplate::parse("{{ 'ab\xC3' }}", "t"); }).find("t: not valid UTF-8 (byte 6)"), std::string::npos);
}

TEST(ChatTemplate, IntegersPast64BitsAreErrors) {
  EXPECT_NE(error_of([] { render("{{ 2 ** 64 }}"); }).find("overflows 64 bits"), std::string::npos);
  EXPECT_NE(error_of([] { render("{{ 9223372036854775807 + 1 }}"); }).find("overflows 64 bits"), std::string::npos);
  EXPECT_NE(error_of([] { render("{{ 1e300 | int }}"); }).find("does not fit 64 bits"), std::string::npos);
  EXPECT_EQ(render("{{ 2 ** 62 }} {{ 1 ** 1000000000000 }} {{ 1e999 }} {{ range(9223372036854775806, 9223372036854775807, 5) | list }}"),
            "4611686018427387904 1 inf [9223372036854775806]");
}

TEST(ChatTemplate, NestingIsBounded) {
  EXPECT_NE(error_of([] { render("{{ " + std::string(5000, '[') + " }}"); }).find("nests deeper than 100 levels"), std::string::npos);
  EXPECT_NE(error_of([] { render("{{ " + std::string(5000, '-') + "1 }}"); }).find("nests deeper than 100 levels"), std::string::npos);
  std::string ifs;
  for (int i = 0; i < 300; ++i) ifs += "{% if true %}";
  EXPECT_NE(error_of([&] { render(ifs); }).find("nests deeper than 100 levels"), std::string::npos);
  EXPECT_EQ(render("{{ ((((1)))) + [[[2]]][0][0][0] }}"), "3");
}
