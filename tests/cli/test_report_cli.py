"""`moe analyze` and `moe report` end to end, and a Chromium render check of the report.

usage:
  test_report_cli.py PATH_TO_moe OUT_DIR
      moe data (small) + a tiny MoE and dense `moe train` + `moe generate` + `moe analyze` +
      `moe report`; checks the analysis JSON against its own definitions, the HTML's
      well-formedness (html.parser, every <svg> as XML), self-containment and escaping, and bad
      input. Leaves OUT_DIR/report.html for the render check.
  test_report_cli.py --render REPORT.html [--chromium PATH] [--keep OUT.png]
      Checks every line chart's layout in its own coordinates (render_svg_check.layout_problems:
      no data on the frame's edge, no legend over data), then screenshots the page in headless
      Chromium and checks it is not blank and shows the chart, heatmap and expert colours.
Exit 0 = pass, 1 = fail, 2 = could not run. Standard library + numpy only.
"""
import html.parser
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

MOE = None
OUT = None
MODEL = ["--emb_dim", "32", "--n_layers", "2", "--n_heads", "2", "--hidden_dim", "32", "--context", "64"]
RUN = ["--batch", "4", "--seq", "32", "--eval_every", "10", "--eval_windows", "4", "--threads", "2", "--no_progress"]
NASTY = "<script>alert('x')</script> & <b>bold</b>"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def run(*args, check=True):
    p = subprocess.run([MOE, *args], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"moe {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


class TagChecker(html.parser.HTMLParser):
    """Every element closed in order (void elements excepted); collects problems."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.tags = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append((tag, self.getpos()))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1][0] != tag:
            self.errors.append(f"</{tag}> at {self.getpos()} does not close {self.stack[-1] if self.stack else 'anything'}")
            return
        self.stack.pop()


def check_html(test, text):
    """Well-formed, self-contained page; returns the parser (tags seen)."""
    p = TagChecker()
    p.feed(text)
    p.close()
    test.assertEqual(p.errors, [])
    test.assertEqual(p.stack, [], "unclosed tags")
    svgs = re.findall(r"<svg\b.*?</svg>", text, flags=re.S)
    test.assertGreater(len(svgs), 0)
    for s in svgs:
        ET.fromstring(s)  # raises on malformed XML
    test.assertNotIn("<script", text.lower())
    for tag, attrs in p.tags:
        test.assertNotIn(tag, ("link", "img", "iframe", "object", "embed", "script"), "external asset element")
        for k, v in attrs.items():
            if k in ("href", "src", "xlink:href", "action", "data"):
                test.assertFalse(re.match(r"\s*(https?:|//|file:)", v or ""), f"external reference {k}={v}")
    test.assertNotRegex(text, r"url\((?!#)|@import")  # only in-page references (SVG clip paths)
    ids = [a["id"] for _, a in p.tags if a.get("id")]
    test.assertEqual(len(ids), len(set(ids)), "duplicate element ids")
    for ref in re.findall(r"url\(#([^)]+)\)", text):
        test.assertIn(ref, ids)
    return p


class ReportCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        shutil.rmtree(OUT, ignore_errors=True)  # a fresh run every time (no resumed training)
        os.makedirs(OUT)
        cls.data = os.path.join(OUT, "data")
        run("data", "--out", cls.data, "--max_bytes_per_domain", "30000")
        cls.ck = os.path.join(OUT, "moe")
        cls.dense = os.path.join(OUT, "dense")
        train = ["train", "--data", os.path.join(cls.data, "train.txt"), "--val_data", os.path.join(cls.data, "val.txt")]
        run(*train, "--out", cls.ck, *MODEL, "--num_experts", "4", "--top_k", "2", *RUN, "--steps", "20")
        run(*train, "--out", cls.dense, *MODEL, *RUN, "--steps", "20")
        cls.analysis = os.path.join(OUT, "analysis.json")
        cls.analyze = run("analyze", cls.ck, "--data", cls.data, "--max_bytes", "20000", "--threads", "2",
                          "--out", cls.analysis, "--html", os.path.join(OUT, "analysis.html"))
        with open(cls.analysis) as f:
            cls.a = json.load(f)
        with open(os.path.join(cls.data, "val.txt"), "rb") as f:
            cls.val = f.read()[:20000]
        with open(os.path.join(cls.data, "val.domain"), "rb") as f:
            cls.dom = f.read()[:20000]
        # Generation samples (real ones, plus a hostile string to check escaping).
        samples = []
        for domain, prompt in (("en", "The "), ("de", "Der "), ("c", "#include ")):
            g = run("generate", "--checkpoint", cls.ck, "--prompt", prompt, "--max_new_tokens", "40",
                    "--temperature", "0.8", "--seed", "1")
            samples.append({"domain": domain, "prompt": prompt, "text": g.stdout.split("\n\nModel:")[0][len(prompt):]})
        samples.append({"domain": "hostile", "prompt": NASTY, "text": NASTY})
        cls.samples = os.path.join(OUT, "samples.json")
        with open(cls.samples, "w") as f:
            json.dump(samples, f)
        # An experiment summary over the two runs.
        exp = os.path.join(OUT, "experiments", "mini")
        os.makedirs(exp, exist_ok=True)
        summary = {"experiment": "mini", "title": "Mini <dense> vs MoE", "description": "Tiny runs & a test.",
                   "runs": [{"name": "dense", "label": "dense", "metrics": os.path.join(cls.dense, "metrics.jsonl"),
                             "final": {"val_bpb": 5.0}},
                            {"name": "moe", "label": "MoE 4x top-2", "metrics": os.path.join(cls.ck, "metrics.jsonl"),
                             "final": {"val_bpb": 4.9, "note": NASTY}}],
                   "table": [["run", "val bpb"], ["dense", 5.0], ["moe", 4.9]],
                   "notes": ["A note with " + NASTY]}
        with open(os.path.join(exp, "summary.json"), "w") as f:
            json.dump(summary, f)
        cls.report = os.path.join(OUT, "report.html")
        cls.rep = run("report", "--out", cls.report, "--analysis", cls.analysis, "--experiments",
                      os.path.join(OUT, "experiments"), "--samples", cls.samples, "--checkpoint", cls.ck)
        with open(cls.report, encoding="utf-8") as f:
            cls.html = f.read()

    def test_summary_printed(self):
        out = self.analyze.stdout
        self.assertIn(f"routing analysis: {len(self.val):,} bytes of val", out)
        self.assertRegex(out, r"\n0 +\d+\.\d{4} +\d\.\d{3}")
        self.assertRegex(out, r"\n1 +\d+\.\d{4} +\d\.\d{3}")

    def test_counts_match_the_text(self):
        a = self.a
        self.assertEqual(a["n_bytes"], len(self.val))
        self.assertGreater(len(self.val), 10000)
        self.assertEqual(a["domains"], ["en", "de", "es", "it", "c"])
        self.assertEqual(a["bytes_per_domain"], [self.dom.count(bytes([d])) for d in range(5)])
        self.assertEqual([l["layer"] for l in a["layers"]], [0, 1])
        for l in a["layers"]:
            first = l["first_counts"]
            self.assertEqual(len(first), 4)
            self.assertEqual([sum(r[d] for r in first) for d in range(5)], a["bytes_per_domain"])  # every byte once
            self.assertEqual(sum(map(sum, l["all_counts"])), 2 * len(self.val))  # top-2: two slots per byte
            for r, s in zip(first, l["first_shares"]):
                if sum(r):
                    self.assertAlmostEqual(sum(s), 1.0, places=9)

    def test_mutual_information_matches_its_definition(self):
        for l in self.a["layers"]:
            for key, counts in (("first", l["first_counts"]), ("all", l["all_counts"])):
                n = sum(map(sum, counts))
                rows = [sum(r) for r in counts]
                cols = [sum(r[d] for r in counts) for d in range(len(counts[0]))]
                mi = sum(v / n * math.log2(v * n / (rows[e] * cols[d]))
                         for e, r in enumerate(counts) for d, v in enumerate(r) if v)
                h = -sum(c / n * math.log2(c / n) for c in cols if c)
                self.assertAlmostEqual(l[f"mi_{key}_bits"], mi, places=9)
                self.assertAlmostEqual(l[f"mi_{key}_norm"], mi / h, places=9)
                self.assertGreaterEqual(mi, 0)
                self.assertLessEqual(mi, h + 1e-12)

    def test_top_tokens_and_samples(self):
        p_byte = {b: self.val.count(bytes([b])) / len(self.val) for b in set(self.val)}
        for l in self.a["layers"]:
            for e, toks in enumerate(l["top_tokens"]):
                self.assertLessEqual(len(toks), 10)
                counts = [t["count"] for t in toks]
                self.assertEqual(counts, sorted(counts, reverse=True))
                total = sum(l["first_counts"][e])
                for t in toks:
                    self.assertAlmostEqual(t["share"], t["count"] / total, places=12)
                    self.assertAlmostEqual(t["lift"], t["share"] / p_byte[t["byte"]], places=9)
                    if t["byte"] == 32:
                        self.assertEqual(t["label"], "\u2423")
            self.assertEqual([s["domain"] for s in l["samples"]], self.a["domains"])
            for s in l["samples"]:
                self.assertEqual(len(s["bytes"]), len(s["experts"]))
                self.assertTrue(250 <= len(s["bytes"]) <= 400, len(s["bytes"]))
                self.assertTrue(all(0 <= e < 4 for e in s["experts"]))
                # The sample is the domain's own text, in order.
                d = self.a["domains"].index(s["domain"])
                own = bytes(b for b, dd in zip(self.val, self.dom) if dd == d)
                self.assertIn(bytes(s["bytes"]), own)

    def test_report_is_well_formed_and_self_contained(self):
        p = check_html(self, self.html)
        ids = {a.get("id") for _, a in p.tags if a.get("id")}
        for _, a in p.tags:  # every contents link has its target
            if a.get("href", "").startswith("#"):
                self.assertIn(a["href"][1:], ids)
        for section in ("model", "experiments", "analysis", "samples", "layer-0", "layer-1"):
            self.assertIn(section, ids)
        self.assertEqual(self.html.count("<svg"), 3 + 1 + 2)  # 3 experiment charts, MI bars, 2 heatmaps
        self.assertEqual([f for f in os.listdir(OUT) if f.startswith("report.html") and f != "report.html"], [])

    def test_report_escapes_inputs(self):
        esc = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"
        self.assertGreaterEqual(self.html.count(esc), 3)  # sample prompt and text, note, final value
        self.assertIn("Mini &lt;dense&gt; vs MoE", self.html)

    def test_report_content(self):
        h = self.html
        self.assertIn("active per token", h)
        self.assertIn("MoE 4x top-2", h)
        self.assertIn("bits per byte", h)
        self.assertIn("Text coloured by first-choice expert", h)
        self.assertIn("report: " + self.report, self.rep.stdout)

    def test_analysis_html(self):
        with open(os.path.join(OUT, "analysis.html"), encoding="utf-8") as f:
            check_html(self, f.read())

    def test_progress_line(self):
        # The model's pass over the text shows progress on stderr, ending at all of it; --no_progress is quiet.
        self.assertRegex(self.analyze.stderr, r"analyze \[#+\] (\d+)/\1 100% elapsed")
        p = run("analyze", self.ck, "--data", self.data, "--max_bytes", "3000", "--no_progress")
        self.assertEqual(p.stderr, "")

    def test_bad_input(self):
        p = run("analyze", self.dense, "--data", self.data, check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("dense model", p.stderr)
        p = run("analyze", self.ck, "--data", os.path.join(OUT, "nope"), check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        p = run("report", "--out", os.path.join(OUT, "bad.html"), "--analysis", os.path.join(OUT, "nope.json"), check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("nope.json", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(OUT, "bad.html")))
        p = run("report", "--out", os.path.join(OUT, "bad.html"), "--samples", os.path.join(OUT, "analysis.json"), check=False)
        self.assertEqual(p.returncode, 2, p.stderr)  # an object, not a list of samples


# --- render check ---------------------------------------------------------------------------

def render(args):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import numpy as np
    from render_svg_check import decode_png, layout_problems
    with open(args["html"], encoding="utf-8") as f:
        page = f.read()
    errors = [f"chart {i}: {e}" for i, svg in enumerate(re.findall(r"<svg\b.*?</svg>", page, flags=re.S))
              for e in layout_problems(svg)]
    width, height = 1100, 4200
    profile = tempfile.mkdtemp(prefix="reportcheck-profile-")
    with tempfile.TemporaryDirectory(prefix="reportcheck-") as tmp:
        png = os.path.abspath(args["keep"]) if args.get("keep") else os.path.join(tmp, "shot.png")
        cmd = [args["chromium"], "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
               f"--user-data-dir={profile}", f"--window-size={width},{height}", f"--screenshot={png}",
               "file://" + os.path.abspath(args["html"])]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            print(f"report render: could not run chromium: {e}", file=sys.stderr)
            return 2
        finally:
            shutil.rmtree(profile, ignore_errors=True)
        if r.returncode != 0 or not os.path.exists(png):
            print(f"report render: chromium failed ({r.returncode}): {r.stderr[-2000:]}", file=sys.stderr)
            return 2
        with open(png, "rb") as f:
            px = decode_png(f.read())
    rgb = px[:, :, :3].astype(np.int32)
    if px.shape[:2] != (height, width):
        errors.append(f"screenshot is {px.shape[1]}x{px.shape[0]}")
    ink = np.any(rgb < 240, axis=2).mean()
    if ink < 0.03:
        errors.append(f"page looks blank: {ink:.2%} non-white pixels")

    def near(colour, tol=10):
        return int(np.all(np.abs(rgb - np.array(colour)) <= tol, axis=2).sum())

    for name, colour, need in (("chart blue #1f77b4", (0x1F, 0x77, 0xB4), 300),
                               ("chart orange #ff7f0e", (0xFF, 0x7F, 0x0E), 200),
                               ("heatmap dark end", (0x08, 0x30, 0x6B), 40),
                               ("expert 0 colour #aec7e8", (0xAE, 0xC7, 0xE8), 100),
                               ("expert 1 colour #ffbb78", (0xFF, 0xBB, 0x78), 100)):
        n = near(colour, 24 if name.startswith("heatmap") else 10)
        if n < need:
            errors.append(f"only {n} pixels of {name} (need {need})")
    # A centred column: the margins left and right of the 980 px column are the page background.
    if not np.all(np.abs(rgb[:, :30] - np.array((0xFB, 0xFC, 0xFE))) <= 3):
        errors.append("the left margin is not plain background (layout overflow?)")
    for e in errors:
        print(f"report render: FAIL: {e}", file=sys.stderr)
    if not errors:
        print(f"report render: OK: {args['html']} ({ink:.1%} ink)" + (f" -> {args['keep']}" if args.get("keep") else ""))
    return 1 if errors else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--render":
        a = {"html": sys.argv[2], "chromium": "/usr/bin/chromium"}
        rest = sys.argv[3:]
        for i in range(0, len(rest) - 1, 2):
            a[rest[i].lstrip("-")] = rest[i + 1]
        sys.exit(render(a))
    MOE = os.path.abspath(sys.argv.pop(1))
    OUT = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
