"""`moe experiment` end to end on a tiny model: the closing table a person reads (aligned by
characters, counts with thousands separators, "n/a" where a run has no value) and the summary.json
the report reads.

Usage: /usr/bin/python3 test_experiment_cli.py PATH_TO_moe OUT_DIR
"""
import datetime
import html
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from render_svg_check import layout_problems  # noqa: E402

MOE = None
OUT = None
TINY = ["--steps", "12", "--eval_every", "6", "--eval_windows", "4", "--batch", "4", "--seq", "32", "--emb_dim", "16",
        "--n_layers", "1", "--n_heads", "2", "--num_experts", "4", "--hidden_dim", "16", "--threads", "1", "--no_progress"]
GROUPED = r"\d{1,3}(?:,\d{3})*"


def run(*args):
    p = subprocess.run([MOE, *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"moe {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def table_lines(stdout, name):
    """The lines of the table printed after '== NAME: ...' (up to the first note)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"== {name}:")) + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("  "))
    return lines[start:end]


class ExperimentCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        shutil.rmtree(OUT, ignore_errors=True)
        os.makedirs(OUT)
        cls.data = os.path.join(OUT, "data")
        run("data", "--out", cls.data, "--max_bytes_per_domain", "20000")
        cls.exps = os.path.join(OUT, "experiments")
        cls.out = {}
        for name in ("dense-vs-moe", "balance"):
            cls.out[name] = run("experiment", name, "--data", cls.data, "--out", cls.exps, *TINY).stdout
        cls.summary = {}
        for name in cls.out:
            with open(os.path.join(cls.exps, name, "summary.json"), encoding="utf-8") as f:
                cls.summary[name] = json.load(f)

    def test_table_columns_line_up(self):
        # The balance labels hold "α" and "γ" (2 bytes, 1 character each): padding counts characters.
        for name in self.out:
            lines = table_lines(self.out[name], name)
            self.assertEqual(len(lines), 1 + len(self.summary[name]["runs"]), lines)
            self.assertEqual({len(line) for line in lines}, {len(lines[0])}, "\n".join(lines))
            # Right-aligned columns end at the same character: the header's last column ends the line.
            self.assertTrue(all(line.endswith(("%", "n/a")) or line[-1].isdigit() for line in lines), lines)
        self.assertTrue(any("α" in line for line in table_lines(self.out["balance"], "balance")))

    def test_counts_have_thousands_separators(self):
        for name, s in self.summary.items():
            for row in s["table"][1:]:
                self.assertRegex(row[1], rf"^{GROUPED} \({GROUPED}\)$")
                self.assertIn(",", row[1])  # every run here has over 1,000 parameters
        for line in table_lines(self.out["dense-vs-moe"], "dense-vs-moe")[1:]:
            self.assertRegex(line, rf"  {GROUPED} \({GROUPED}\)  ")

    def test_no_value_is_na(self):
        rows = {r[0]: r for r in self.summary["dense-vs-moe"]["table"][1:]}
        dense = [r for label, r in rows.items() if label.startswith("dense")]
        self.assertEqual(len(dense), 2)
        for r in dense:
            self.assertEqual(r[4:], ["n/a", "n/a", "n/a"], r)  # a dense model has no load, experts or drops
        for s in self.summary.values():
            for row in s["table"]:
                self.assertNotIn("–", "".join(row))
                self.assertNotIn("nan", "".join(row).lower())

    def test_summary_records_date_and_command(self):
        for name, s in self.summary.items():
            created = datetime.datetime.strptime(s["created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
            age = datetime.datetime.now(datetime.timezone.utc) - created
            self.assertLess(abs(age.total_seconds()), 600, s["created"])
            # The command reproduces the run: every flag given here is in it, with its value.
            cmd = s["command"].split()
            self.assertEqual(cmd[:3], ["moe", "experiment", name])
            flags = ["--data", self.data, "--out", self.exps] + TINY[:-1]
            for flag, value in zip(flags[::2], flags[1::2]):
                self.assertEqual(cmd[cmd.index(flag) + 1], value, flag)
            self.assertEqual(s["settings"]["emb_dim"], 16)
            self.assertEqual(s["settings"]["num_experts"], 4)

    def test_report_shows_dates_and_picks_experiments(self):
        page = os.path.join(OUT, "only.html")
        p = run("report", "--out", page, "--experiments", self.exps, "--only", "balance")
        self.assertIn("experiment balance: run 20", p.stdout)
        self.assertNotIn("dense-vs-moe", p.stdout)
        with open(page, encoding="utf-8") as f:
            html = f.read()
        self.assertIn('id="exp-balance"', html)
        self.assertNotIn('id="exp-dense-vs-moe"', html)
        self.assertRegex(html, r" UTC with <code>(<span[^>]*>)?moe(</span>)? .*experiment.*balance.*--data ")
        p = run("report", "--out", page, "--experiments", self.exps, "--only", "dense-vs-moe,balance")
        self.assertEqual(re.findall(r"experiment (\S+): run", p.stdout), ["dense-vs-moe", "balance"])
        with open(page, encoding="utf-8") as f:
            self.assertNotIn("not run with the same settings", f.read())  # one run of both, same flags
        bad = subprocess.run([MOE, "report", "--out", page, "--experiments", self.exps, "--only", "balance,nope"],
                             capture_output=True, text=True)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("--only nope: no such experiment", bad.stderr)
        self.assertIn("(found: balance, dense-vs-moe)", bad.stderr)

    def test_footer_shows_the_whole_command(self):
        page = os.path.join(OUT, "footer.html")
        args = ["report", "--out", page, "--experiments", self.exps, "--only", "balance,dense-vs-moe",
                "--title", "It's <my> report, 2 runs"]
        run(*args)
        with open(page, encoding="utf-8") as f:
            footer = re.search(r"<footer>Made by moe.cpp: <code>(.*?)</code>", f.read(), flags=re.S).group(1)
        # Split as a shell would, the footer's text gives back exactly what was run.
        self.assertEqual(shlex.split(html.unescape(re.sub(r"<[^>]*>", "", footer))), ["moe", *args])

    def test_samples_cut_at_words_and_record_settings(self):
        with open(os.path.join(self.data, "val.txt"), encoding="utf-8", errors="replace") as f:
            val = f.read()
        samples = self.summary["dense-vs-moe"]["samples"]
        self.assertEqual(len(samples), 5)
        for s in samples:
            p = s["prompt"]
            self.assertTrue(4 <= len(p.encode()) <= 16, p)  # context 32: half for the prompt
            at = val.index(p) + len(p)
            self.assertTrue(p[-1].isspace() or at == len(val) or val[at].isspace(), f"{p!r} + {val[at:at + 10]!r}")
            self.assertTrue(p[-1].isspace() or " " not in p, p)  # the continuation starts a word
            self.assertEqual((s["temperature"], s["top_k"]), (0.7, 40))
            self.assertIsInstance(s["seed"], int)
            self.assertGreater(s["max_new_tokens"], 0)
        page = os.path.join(OUT, "samples.html")
        run("report", "--out", page, "--samples", os.path.join(self.exps, "dense-vs-moe", "samples.json"))
        with open(page, encoding="utf-8") as f:
            self.assertEqual(f.read().count("Sampled with temperature 0.7, top-k 40, seed "), 5)

    def test_charts_keep_data_visible(self):
        """Every line chart: no data on the frame's edge, no legend over data (in SVG coordinates)."""
        page = os.path.join(OUT, "all.html")
        run("report", "--out", page, "--experiments", self.exps)
        with open(page, encoding="utf-8") as f:
            svgs = re.findall(r"<svg\b.*?</svg>", f.read(), flags=re.S)
        self.assertEqual(len(svgs), 6)  # validation, cross-entropy, load for each experiment
        charts = {f"report chart {i}": svg for i, svg in enumerate(svgs)}
        for name in self.summary:
            for r in self.summary[name]["runs"]:
                for plot in ("loss.svg", "load.svg"):
                    path = os.path.join(self.exps, name, r["name"], plot)
                    if os.path.exists(path):
                        with open(path, encoding="utf-8") as f:
                            charts[path] = f.read()
        self.assertGreater(len(charts), 12)
        problems = [f"{where}: {e}" for where, svg in charts.items() for e in layout_problems(svg)]
        self.assertEqual(problems, [])


if __name__ == "__main__":
    MOE = os.path.abspath(sys.argv.pop(1))
    OUT = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
