"""End-to-end tests of `moe estimate`: byte-for-byte parity with the reference estimator
(memory_estimator_moe.py, re-stated below from shared/spec/estimator.md), every rejected input,
--json, and the --plot/--csv sweep.

Usage: /usr/bin/python3 test_estimate_cli.py PATH_TO_moe
"""
import csv
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

MOE = None
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1}


def read_text(path):
    with open(path) as f:
        return f.read()


def run(*args):
    return subprocess.run([MOE, "estimate", *map(str, args)], capture_output=True, text=True)


# ---- the reference semantics (spec/estimator.md), in Python's own arithmetic -----------------
def reference(emb, hidden, ffn, experts, top_k, dtype, match):
    m = 3 if ffn == "swiglu" else 2
    dense = m * emb * hidden
    router = emb * experts
    if match:
        moe_hidden = int(round((dense - router) / float(experts * m * emb)))  # half to even
    else:
        moe_hidden = hidden
    per_expert = m * emb * moe_hidden
    total = experts * per_expert + router
    active = router + top_k * per_expert
    return dict(dense=dense, router=router, moe_hidden=moe_hidden, per_expert=per_expert,
                total=total, active=active)


def reference_text(emb, hidden, ffn, experts, top_k, dtype, match):
    r = reference(emb, hidden, ffn, experts, top_k, dtype, match)
    b = DTYPE_BYTES[dtype]
    gb = lambda n: f"{n * b / (1000 ** 3):,.2f} GB"
    lines = ["==== Config ====",
             f"{'emb_dim':23}: {emb}", f"{'hidden_dim':23}: {hidden}", f"{'ffn_type':23}: {ffn}",
             f"{'num_experts':23}: {experts}", f"{'top_k':23}: {top_k}",
             f"{'dtype':23}: {dtype} ({b} Bytes/elem)", f"{'match_dense':23}: {match}", "",
             "==== Model weights (parameters) ===="]
    for label, key in [("Dense FFN params", "dense"), ("Per-expert params", "per_expert"),
                       ("Router params", "router"), ("MoE TOTAL params", "total"),
                       ("MoE ACTIVE/Token", "active")]:
        lines.append(f"{label:23}: {r[key]:,} ({gb(r[key])})")
    lines += [f"{'moe_hidden_dim':23}: {r['moe_hidden']}", ""]
    return "\n".join(lines) + "\n"


SPEC_BLOCK = """==== Config ====
emb_dim                : 7168
hidden_dim             : 14336
ffn_type               : swiglu
num_experts            : 8
top_k                  : 2
dtype                  : bf16 (2 Bytes/elem)
match_dense            : True

==== Model weights (parameters) ====
Dense FFN params       : 308,281,344 (0.62 GB)
Per-expert params      : 38,535,168 (0.08 GB)
Router params          : 57,344 (0.00 GB)
MoE TOTAL params       : 308,338,688 (0.62 GB)
MoE ACTIVE/Token       : 77,127,680 (0.15 GB)
moe_hidden_dim         : 1792

"""


class ReferenceParity(unittest.TestCase):
    def test_spec_block_byte_for_byte(self):
        p = run("--emb_dim", 7168, "--hidden_dim", 14336, "--ffn_type", "swiglu", "--num_experts", 8,
                "--top_k", 2, "--match_dense")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, SPEC_BLOCK)
        self.assertEqual(p.stderr, "")

    def test_defaults_are_the_reference_defaults(self):
        p = run("--emb_dim", 4096, "--hidden_dim", 14336)
        self.assertEqual(p.stdout, reference_text(4096, 14336, "swiglu", 8, 2, "bf16", False))

    def test_random_configs_match_reference(self):
        rng = random.Random(1234)
        for i in range(150):
            emb = rng.choice([1, 3, 64, 768, 1000, 2880, 4096, 7168, rng.randint(1, 20000)])
            experts = rng.choice([1, 2, 8, 60, 64, 128, 256, rng.randint(1, 600)])
            top_k = rng.randint(1, experts)
            ffn = rng.choice(["gelu", "swiglu"])
            dtype = rng.choice(list(DTYPE_BYTES))
            match = rng.random() < 0.6
            # gelu with hidden = E·n makes exact .5 ties: the half-to-even path
            hidden = experts * rng.randint(1, 4000) if rng.random() < 0.3 else rng.randint(1, 60000)
            r = reference(emb, hidden, ffn, experts, top_k, dtype, match)
            args = ["--emb_dim", emb, "--hidden_dim", hidden, "--ffn_type", ffn, "--num_experts", experts,
                    "--top_k", top_k, "--dtype", dtype] + (["--match_dense"] if match else [])
            p = run(*args)
            if match and (r["dense"] - r["router"] <= 0 or r["moe_hidden"] < 1):
                self.assertEqual(p.returncode, 2, (args, p.stdout))  # the reference would print garbage
                continue
            self.assertEqual(p.returncode, 0, (args, p.stderr))
            self.assertEqual(p.stdout, reference_text(emb, hidden, ffn, experts, top_k, dtype, match), args)

    def test_half_to_even_tie(self):
        p = run("--emb_dim", 7168, "--hidden_dim", 1791 * 8, "--ffn_type", "gelu", "--match_dense")
        self.assertIn("moe_hidden_dim         : 1790\n", p.stdout)


class Rejections(unittest.TestCase):
    """Each bad input: exit 2, one line on stderr naming the flag/key and value, nothing on stdout."""

    def expect_error(self, args, *fragments):
        p = run(*args)
        self.assertEqual(p.returncode, 2, (args, p.stdout, p.stderr))
        self.assertEqual(p.stdout, "", args)
        err = p.stderr.strip()
        self.assertEqual(len(err.splitlines()), 1, err)
        for f in fragments:
            self.assertIn(f, err, args)

    base = ["--emb_dim", 7168, "--hidden_dim", 14336]

    def test_top_k_above_num_experts(self):
        self.expect_error(self.base + ["--top_k", 9, "--num_experts", 8], "--top_k=9 > --num_experts=8")

    def test_top_k_below_one(self):
        self.expect_error(self.base + ["--top_k", 0], "--top_k=0")
        self.expect_error(self.base + ["--top_k=-2"], "--top_k=-2")

    def test_non_positive_sizes(self):
        self.expect_error(["--emb_dim", 0, "--hidden_dim", 10], "--emb_dim=0")
        self.expect_error(["--emb_dim=-5", "--hidden_dim", 10], "--emb_dim=-5")
        self.expect_error(["--emb_dim", 10, "--hidden_dim", 0], "--hidden_dim=0")
        self.expect_error(self.base + ["--num_experts", 0, "--top_k", 1], "--num_experts=0")

    def test_hidden_rounds_to_zero(self):
        self.expect_error(["--emb_dim", 4, "--hidden_dim", 4, "--num_experts", 8, "--match_dense"],
                          "moe_hidden_dim rounds to 0", "--num_experts=8")

    def test_dense_too_small(self):
        self.expect_error(["--emb_dim", 4, "--hidden_dim", 4, "--num_experts", 12, "--match_dense"],
                          "dense layer too small", "--num_experts=12")

    def test_unknown_dtype_and_ffn(self):
        self.expect_error(self.base + ["--dtype", "fp64"], "--dtype=fp64")
        self.expect_error(self.base + ["--ffn_type", "relu"], "--ffn_type=relu")

    def test_not_a_number_and_missing(self):
        self.expect_error(["--emb_dim", "abc", "--hidden_dim", 10], "--emb_dim", "abc")
        self.expect_error(["--hidden_dim", 10], "--emb_dim")
        self.expect_error(["--emb_dim", "7168.5", "--hidden_dim", 10], "--emb_dim")
        self.expect_error(self.base + ["--bogus"], "--bogus")

    def test_overflow(self):
        self.expect_error(["--emb_dim", 4000000000, "--hidden_dim", 4000000000], "overflows 64 bits")

    def test_sweep_flags_need_plot(self):
        self.expect_error(self.base + ["--max_experts", 64], "--max_experts only applies with --plot or --csv")
        self.expect_error(self.base + ["--no_log"], "--no_log")

    def test_config_errors(self):
        with tempfile.TemporaryDirectory() as d:
            bad_json = os.path.join(d, "bad.json")
            with open(bad_json, "w") as f:
                f.write('{"model_type": "mixtral", "hidden_size": 40')  # truncated
            self.expect_error(["--config", bad_json], "not valid JSON", bad_json)
            unknown = os.path.join(d, "unknown.json")
            with open(unknown, "w") as f:
                json.dump({"model_type": "mamba"}, f)
            self.expect_error(["--config", unknown], "model_type 'mamba' is not supported")
            missing = os.path.join(d, "missing.json")
            cfg = json.loads(read_text(os.path.join(REPO, "examples/configs/mixtral-8x7b.json")))
            del cfg["num_local_experts"]
            with open(missing, "w") as f:
                json.dump(cfg, f)
            self.expect_error(["--config", missing], "missing key 'num_local_experts'")
            self.expect_error(["--config", missing, "--tensors"], "missing key 'num_local_experts'")
        self.expect_error(["--config", "/nonexistent/config.json"], "cannot open", "/nonexistent/config.json")
        cfg = os.path.join(REPO, "examples/configs/mixtral-8x7b.json")
        self.expect_error(["--config", cfg, "--emb_dim", 10], "--emb_dim")
        self.expect_error(["--context", 10] + self.base, "--context")
        self.expect_error(["--tensors"] + self.base, "--tensors")
        self.expect_error(["--config", cfg, "--context=-1"], "--context=-1")
        self.expect_error(["--config", cfg, "--dtype", "fp4"], "--dtype=fp4")


class OutputsAndFiles(unittest.TestCase):
    def test_json_layer(self):
        p = run("--emb_dim", 7168, "--hidden_dim", 14336, "--match_dense", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        j = json.loads(p.stdout)
        self.assertEqual(j["moe_hidden_dim"], 1792)
        self.assertEqual(j["moe_active_per_token"], {"params": 77127680, "bytes": 154255360})
        self.assertEqual(j["config"]["match_dense"], True)

    def test_json_model(self):
        cfg = os.path.join(REPO, "examples/configs/mixtral-8x7b.json")
        p = run("--config", cfg, "--json", "--context", 32768)
        self.assertEqual(p.returncode, 0, p.stderr)
        j = json.loads(p.stdout)
        self.assertEqual(j["parameters"]["total"], 46702792704)
        self.assertEqual(j["kv_cache"]["bytes_for_context"], 32768 * 131072)
        self.assertEqual(j["weight_bytes"]["total"], 2 * 46702792704)

    def test_text_model(self):
        cfg = os.path.join(REPO, "examples/configs/deepseek-v3.json")
        p = run("--config", cfg, "--context", 4096)
        self.assertEqual(p.returncode, 0, p.stderr)
        for fragment in ["671,026,419,200", "routed_experts", "MLA", "(58 MoE, 3 dense)", "KV cache @ 4,096"]:
            self.assertIn(fragment, p.stdout)

    def test_tensors(self):
        cfg = os.path.join(REPO, "examples/configs/mixtral-8x7b.json")
        p = run("--config", cfg, "--tensors")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0], "model.embed_tokens.weight [32000, 4096]")
        self.assertIn("model.layers.31.block_sparse_moe.experts.7.w2.weight [4096, 14336]", lines)
        self.assertEqual(lines[-1], "lm_head.weight [32000, 4096]")
        self.assertEqual(len(lines), 1 + 32 * (4 + 1 + 8 * 3 + 2) + 2)
        j = json.loads(run("--config", cfg, "--tensors", "--json").stdout)
        self.assertEqual(j["model_type"], "mixtral")
        self.assertEqual([f"{t['name']} [{', '.join(map(str, t['shape']))}]" for t in j["tensors"]], lines)

    def test_plot_and_csv(self):
        with tempfile.TemporaryDirectory() as d:
            svg, data = os.path.join(d, "sweep.svg"), os.path.join(d, "sweep.csv")
            p = run("--emb_dim", 7168, "--hidden_dim", 28672, "--top_k", 8, "--num_experts", 8,
                    "--plot", svg, "--csv", data)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn(f"Saved plot to {svg}", p.stdout)
            self.assertEqual(sorted(os.listdir(d)), ["sweep.csv", "sweep.svg"])  # no temp files left
            rows = list(csv.DictReader(io.StringIO(read_text(data))))
            self.assertEqual([int(r["num_experts"]) for r in rows], [8, 16, 32, 64, 128, 192, 256, 384, 512])
            for r in rows:
                e = int(r["num_experts"])
                ref = reference(7168, 28672, "swiglu", e, 8, "bf16", True)
                self.assertEqual(int(r["moe_active_params"]), ref["active"])
                self.assertEqual(int(r["moe_total_params"]), ref["total"])
                self.assertEqual(int(r["moe_hidden_dim"]), ref["moe_hidden"])
            self.assertIn("sweep skips num_experts=1", p.stderr)
            root = ET.parse(svg).getroot()  # well-formed XML
            text = "".join(root.itertext())
            for label in ["MoE active per token", "MoE total parameters", "FFN dense (active = total)",
                          "Number of experts (top_k = 8)", "Parameters", "Active vs Total Parameters per Token",
                          "(emb_dim=7168, hidden_dim=28672, ffn=swiglu, top_k=8)"]:
                self.assertIn(label, text)

    def test_sweep_options(self):
        with tempfile.TemporaryDirectory() as d:
            data = os.path.join(d, "sweep.csv")
            p = run("--emb_dim", 64, "--hidden_dim", 256, "--top_k", 1, "--num_experts", 1, "--csv", data,
                    "--max_experts", 100, "--no_match_dense")
            self.assertEqual(p.returncode, 0, p.stderr)
            rows = list(csv.DictReader(io.StringIO(read_text(data))))
            self.assertEqual([int(r["num_experts"]) for r in rows], [1, 2, 4, 8, 16, 32, 64])
            self.assertTrue(all(r["matched_dense"] == "false" and r["moe_hidden_dim"] == "256" for r in rows))

    def test_plot_to_a_path_under_a_file_fails_cleanly(self):
        with tempfile.TemporaryDirectory() as d:
            blocker = os.path.join(d, "file")
            open(blocker, "w").close()
            p = run("--emb_dim", 64, "--hidden_dim", 256, "--plot", os.path.join(blocker, "x.svg"))
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn(os.path.join(blocker, "x.svg"), p.stderr)
            self.assertIn("cannot create the folder", p.stderr)
            self.assertEqual(p.stdout, "")

    def test_plot_creates_missing_folders(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "a", "b", "x.svg")
            p = run("--emb_dim", 64, "--hidden_dim", 256, "--plot", out)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(os.path.getsize(out) > 0)

    def test_help_lists_every_flag(self):
        p = subprocess.run([MOE, "estimate", "--help"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        for flag in ["--emb_dim", "--hidden_dim", "--ffn_type", "--num_experts", "--top_k", "--dtype",
                     "--match_dense", "--plot", "--csv", "--max_experts", "--no_match_dense", "--no_log",
                     "--config", "--context", "--json", "--tensors"]:
            self.assertIn(flag, p.stdout)


if __name__ == "__main__":
    MOE = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=1)
