"""Chat templates rendered by `moe template` against Debian's python3-jinja2 set up as
transformers sets it up (render_template.py): the real templates in ../shared/data/tokenizers on
system / multi-turn / tool / reasoning / generation-prompt conversations, and small templates for
every construct the interpreter has (whitespace control, loops, filters, tests, macros, Python
printing of values). Texts must be identical; where Jinja2 raises, we must refuse too.

Usage: /usr/bin/python3 test_chat_template_oracle.py PATH_TO_moe
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data", "tokenizers")
MOE = None


def config_template(name):
    with open(os.path.join(SHARED, name, "tokenizer_config.json"), encoding="utf-8") as f:
        return json.load(f)["chat_template"]


def file_template(name):
    with open(os.path.join(SHARED, "llama.cpp-templates", name), encoding="utf-8") as f:
        return f.read()


WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "The city"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
        "days": {"type": "integer", "description": "Days ahead"},
        "tags": {"type": "array", "items": {"type": "string"}}},
        "required": ["city"]}}}

CONVERSATIONS = {
    "user": [{"role": "user", "content": "Hello!"}],
    "system_user": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Hi there"}],
    "multi_turn": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 2?"},
                   {"role": "assistant", "content": "4"}, {"role": "user", "content": "And 3 + 3?"},
                   {"role": "assistant", "content": "6"}, {"role": "user", "content": "Thanks! ünïcödé 你好 😀"}],
    "think_in_content": [{"role": "user", "content": "Why?"},
                         {"role": "assistant", "content": "<think>\nLet me think.\n</think>\n\nBecause."},
                         {"role": "user", "content": "Really?"}],
    "reasoning_field": [{"role": "user", "content": "Q"},
                        {"role": "assistant", "content": "A", "reasoning_content": "because R"},
                        {"role": "user", "content": "Q2"}],
    "braces": [{"role": "user", "content": "Print {{ x }} and {% raw %} literally, then 'quotes' \"too\"\\n"}],
    "empty_content": [{"role": "user", "content": ""}],
}

QWEN_TOOLS = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]},
    {"role": "tool", "content": "{\"temp\": 21}"},
    {"role": "tool", "content": "{\"humidity\": 40}"},
    {"role": "assistant", "content": "It is 21 °C."}]

DEEPSEEK_TOOLS = [
    {"role": "system", "content": "Use tools."}, {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
        {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Lyon\"}"}}]},
    {"role": "tool", "content": "21"}, {"role": "tool", "content": "19"},
    {"role": "assistant", "content": "Paris 21, Lyon 19."}]

GPT_OSS_TOOLS = [
    {"role": "developer", "content": "Answer in French."}, {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "thinking": "I should call the tool.", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
    {"role": "tool", "content": "{\"temp\": 21}"},
    {"role": "assistant", "content": "Il fait 21 degrés."}, {"role": "user", "content": "Merci"}]

# Small templates, one construct family each (rendered with the variables below).
CONSTRUCTS = {
    "whitespace": "A\n  {% if x %}\n    yes\n  {% endif %}\nB {{- ' c ' -}} D\n{%+ if x %}kept{% endif +%}\n{# c #}\nE  {#- c -#}  F",
    "loops": "{% for m in items %}{{ loop.index }}/{{ loop.length }}:{{ m }}{% if not loop.last %}, {% endif %}{% endfor %}"
             "|{% for m in items if m != 'b' %}{{ loop.index0 }}{{ m }}{% else %}none{% endfor %}"
             "|{% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}"
             "|{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k in d %}{{ k }}{% endfor %}"
             "|{% for x in [] %}x{% else %}empty{% endfor %}|{{ loop is defined }}",
    "scoping": "{% set a = 1 %}{% for i in [1, 2] %}{% set a = a + i %}{{ a }}{% endfor %}{{ a }}"
               "{% set ns = namespace(total=0, seen=[]) %}{% for i in [1, 2, 3] %}{% set ns.total = ns.total + i %}{% endfor %}{{ ns.total }}",
    "filters": "{{ items | join(', ') }}|{{ items | length }}|{{ items | first }}{{ items | last }}|{{ 'AbC' | lower }}{{ 'x' | upper }}"
               "|{{ '  pad  ' | trim }}|{{ none | default('dflt') }}{{ undefined_thing | default('u') }}{{ '' | default('e', true) }}"
               "|{{ d | tojson }}|{{ d | tojson(indent=2) }}|{{ [3, 1, 2] | sort | list }}|{{ ['b', 'a', 'b'] | unique | list }}"
               "|{{ people | map(attribute='name') | join('+') }}|{{ people | selectattr('age', 'gt', 30) | map(attribute='name') | list }}"
               "|{{ people | rejectattr('admin') | list | length }}|{{ d | dictsort }}|{{ 'a\\nb' | indent(2, true) }}"
               "|{{ 'hello world' | title }}|{{ 3.7 | int }}{{ '4' | int + 1 }}{{ 2 | float }}|{{ -3 | abs }}|{{ [1, 2, 3] | sum }}"
               "|{{ 'a-b' | replace('-', '_') }}|{{ [1, 2] | reverse | list }}|{{ items | select('equalto', 'a') | list }}"
               "|{{ 'x y  z' | wordcount }}|{{ [4, 9] | max }}{{ [4, 9] | min }}|{{ 2.567 | round(1) }}|{{ 'é<&>' | e }}",
    "tests": "{{ x is defined }}{{ y is defined }}{{ none is none }}{{ 'a' is string }}{{ 1 is number }}{{ 1.5 is float }}"
             "{{ 2 is integer }}{{ d is mapping }}{{ items is iterable }}{{ 'a' is iterable }}{{ 4 is even }}{{ 3 is odd }}"
             "{{ 9 is divisibleby 3 }}{{ x is true }}{{ false is false }}{{ 'ab' is lower }}{{ 'a' in items }}{{ 'z' not in items }}"
             "{{ 'ell' in 'hello' }}{{ 'k' in d }}{{ x is not none }}{{ items is sequence }}",
    "printing": "{{ 1 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 1e20 }} {{ 1e16 }} {{ 1.5e-7 }} {{ 0.1 + 0.2 }}"
                " {{ 3.0 }} {{ 10 / 5 }} {{ none }} {{ true }} {{ [1, 'a', none, 2.5] }} {{ d }} {{ {'q': \"it's\"} }} {{ 'x' ~ 1 ~ none }}"
                " {{ (1, 2) }} {{ 'abc'[1] }} {{ 'abcdef'[1:4] }} {{ 'abc'[::-1] }} {{ items[-1] }} {{ items[:2] }} {{ 12345678901234 * 1000 }}",
    "strings": "{{ 'a,b,,c'.split(',') }}{{ '  x y  '.split() }}{{ 'x<think>y'.split('<think>')[-1] }}{{ '\\n\\nz\\n'.lstrip('\\n') }}"
               "{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}{{ 'Hi There'.lower() }}{{ 'aaa'.replace('a', 'b', 2) }}"
               "{{ 'ab'.upper() }}{{ '  s '.strip() }}{{ 'xxhixx'.strip('x') }}{{ 'a b'.title() }}{{ 'abc'.find('c') }}{{ 'hello'.count('l') }}"
               "{{ '-'.join(['a', 'b']) }}{{ 'hello world'.capitalize() }}{{ '12'.isdigit() }}",
    "macros": "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bo', punct='?') }}"
              "{% macro rec(n) %}{% if n > 0 %}{{ n }}{{ rec(n - 1) }}{% endif %}{% endmacro %}{{ rec(3) }}"
              "{% macro wrap() %}[{{ caller() }}]{% endmacro %}{% call wrap() %}inside{% endcall %}"
              "{% set block %}captured {{ x }}{% endset %}{{ block }}{% filter upper %}shout {{ 1 }}{% endfilter %}",
    "conditionals": "{{ 'yes' if x else 'no' }}{{ 'a' if y }}{% if y %}1{% elif x and not y %}2{% else %}3{% endif %}"
                    "{{ x or 'fallback' }}{{ none or 'f2' }}{{ x and 'both' }}{{ 1 < 2 < 3 }}{{ 'b' > 'a' }}{{ [1] == [1] }}{{ 1 == 1.0 }}",
    "raw": "{% raw %}{{ not a tag }} {% if %}{% endraw %} after",
    "raise": "{% if x %}{{ raise_exception('bad input: ' ~ items[0]) }}{% endif %}",
    "undefined_attr": "{{ missing.attr }}",
    "type_error": "{{ 'a' + 1 }}",
    "date": "{{ strftime_now('%Y-%m-%d %d %B') }}",
}

CONSTRUCT_VARS = {"messages": [], "x": True, "items": ["a", "b", "c"], "d": {"k": 1, "b": [1, 2], "s": "é\"\n"},
                  "people": [{"name": "Ann", "age": 40, "admin": True}, {"name": "Bo", "age": 20, "admin": False}]}


def cases():
    out = []
    real = {"qwen3": config_template("qwen3"), "deepseek-v3": config_template("deepseek-v3"),
            "gpt-oss (llama.cpp)": file_template("openai-gpt-oss-120b.jinja"),
            "deepseek-v3.1 (llama.cpp)": file_template("deepseek-ai-DeepSeek-V3.1.jinja")}
    bos = {"qwen3": None, "deepseek-v3": "<｜begin▁of▁sentence｜>", "gpt-oss (llama.cpp)": "<|startoftext|>",
           "deepseek-v3.1 (llama.cpp)": "<｜begin▁of▁sentence｜>"}
    for tname, source in real.items():
        for cname, messages in CONVERSATIONS.items():
            for gen in (False, True):
                ctx = {"messages": messages, "add_generation_prompt": gen}
                if bos[tname]:
                    ctx["bos_token"] = bos[tname]
                out.append((f"{tname}/{cname}/gen={gen}", source, ctx))
    out.append(("qwen3/tools", real["qwen3"], {"messages": QWEN_TOOLS, "tools": [WEATHER_TOOL], "add_generation_prompt": True}))
    out.append(("qwen3/no_thinking", real["qwen3"], {"messages": CONVERSATIONS["user"], "add_generation_prompt": True,
                                                   "enable_thinking": False}))
    out.append(("deepseek-v3/tools", real["deepseek-v3"], {"messages": DEEPSEEK_TOOLS, "bos_token": bos["deepseek-v3"],
                                                         "add_generation_prompt": True}))
    for effort in ("low", "high"):
        out.append((f"gpt-oss/tools/{effort}", real["gpt-oss (llama.cpp)"],
                    {"messages": GPT_OSS_TOOLS, "tools": [WEATHER_TOOL], "add_generation_prompt": True,
                     "reasoning_effort": effort, "builtin_tools": ["browser", "python"], "model_identity": "You are a test."}))
    out.append(("deepseek-v3.1/thinking", real["deepseek-v3.1 (llama.cpp)"],
                {"messages": CONVERSATIONS["multi_turn"], "bos_token": bos["deepseek-v3"], "add_generation_prompt": True,
                 "thinking": True}))
    for name, source in CONSTRUCTS.items():
        out.append((f"construct/{name}", source, dict(CONSTRUCT_VARS)))
    return out


class ChatTemplates(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="moe_tmpl_")
        cls.cases = cases()
        path = os.path.join(cls.tmp, "cases.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump([{"template": s, "context": c} for _, s, c in cls.cases], f, ensure_ascii=False)
        env = dict(os.environ, SOURCE_DATE_EPOCH="1767225600")  # 2026-01-01: strftime_now the same for both
        p = subprocess.run([sys.executable, os.path.join(HERE, "render_template.py"), path], capture_output=True, text=True, env=env)
        if p.returncode != 0:
            raise AssertionError(p.stderr)
        cls.theirs = json.loads(p.stdout)
        cls.ours = []
        for i, (_, source, ctx) in enumerate(cls.cases):
            tpath, cpath = os.path.join(cls.tmp, f"t{i}.jinja"), os.path.join(cls.tmp, f"c{i}.json")
            with open(tpath, "w", encoding="utf-8") as f:
                f.write(source)
            ctx = dict(ctx)
            gen = ctx.pop("add_generation_prompt", False)
            with open(cpath, "w", encoding="utf-8") as f:
                json.dump(ctx, f, ensure_ascii=False)
            cmd = [MOE, "template", "--template", tpath, "--messages", cpath] + (["--add_generation_prompt"] if gen else [])
            q = subprocess.run(cmd, capture_output=True, env=env)
            cls.ours.append({"text": q.stdout.decode("utf-8")} if q.returncode == 0 else
                            {"error": q.stderr.decode("utf-8", "replace"), "rc": q.returncode})

    def test_enough_cases(self):
        self.assertGreaterEqual(len(self.cases), 70)

    def test_same_text_or_both_refuse(self):
        for (name, _, _), ours, theirs in zip(self.cases, self.ours, self.theirs):
            with self.subTest(case=name):
                if "error" in theirs:
                    self.assertIn("error", ours, f"jinja2 raised {theirs['error']!r}; we rendered {ours.get('text', '')[:300]!r}")
                    self.assertEqual(ours["rc"], 2)
                    self.assertIn("[template]", ours["error"])
                    self.assertIn("line", ours["error"])
                else:
                    self.assertNotIn("error", ours, f"we refused: {ours.get('error')}")
                    self.assertEqual(ours["text"], theirs["text"])

    def test_refusals_are_expected_ones(self):
        refused = {name for (name, _, _), t in zip(self.cases, self.theirs) if "error" in t}
        self.assertTrue({"construct/raise", "construct/undefined_attr", "construct/type_error"} <= refused, refused)


if __name__ == "__main__":
    MOE = sys.argv.pop(1)
    unittest.main()
