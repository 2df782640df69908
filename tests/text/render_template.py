"""Oracle: renders chat templates with Debian's python3-jinja2 configured as transformers'
apply_chat_template configures it (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
loopcontrols; tojson with ensure_ascii=False; raise_exception; strftime_now).

Usage: /usr/bin/python3 render_template.py CASES.json  ->  prints a JSON list, one entry per case:
{"text": rendered} or {"error": message}. A case is {"template": source, "context": {...}}.
"""
import json
import os
import sys
from datetime import datetime, timezone

import jinja2
import jinja2.ext
import jinja2.sandbox


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        pinned = os.environ.get("SOURCE_DATE_EPOCH")
        now = datetime.fromtimestamp(int(pinned), timezone.utc) if pinned else datetime.now()
        return now.strftime(fmt)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                       extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def main(path):
    env = environment()
    out = []
    for case in json.load(open(path, encoding="utf-8")):
        try:
            out.append({"text": env.from_string(case["template"]).render(**case["context"])})
        except Exception as e:  # noqa: BLE001 - any template error is an expected outcome to compare
            out.append({"error": f"{type(e).__name__}: {e}"})
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1])
