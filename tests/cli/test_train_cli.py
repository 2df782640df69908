"""`moe train` and `moe generate` end to end: deterministic runs, Ctrl-C + bit-exact resume,
metrics and plots, generation from a checkpoint, the untrained dense-vs-MoE mode, and bad input
(clear message, nothing overwritten).

Usage: /usr/bin/python3 test_train_cli.py PATH_TO_moe
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

MOE = None
MODEL = ["--emb_dim", "32", "--n_layers", "2", "--n_heads", "2", "--hidden_dim", "48", "--context", "64"]
MOE_MODEL = MODEL + ["--num_experts", "4", "--top_k", "2"]
RUN = ["--batch", "4", "--seq", "32", "--eval_every", "5", "--eval_windows", "4", "--threads", "2", "--no_progress"]


def corpus(path, n=40000):
    text = "".join(f"line {i}: the quick brown fox {i * 7 % 13} jumps over the lazy dog.\n" for i in range(n // 40))
    with open(path, "w") as f:
        f.write(text[:n])


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def metrics(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def stable(rec):
    """A metrics record without the wall-clock fields."""
    return {k: v for k, v in rec.items() if k not in ("step_ms", "tokens_per_s")}


class TrainCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="moe_train_cli_")
        cls.data = os.path.join(cls.tmp, "corpus.txt")
        corpus(cls.data)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def train(self, out, *extra, model=MOE_MODEL, check=True):
        p = subprocess.run([MOE, "train", "--data", self.data, "--out", out, *model, *RUN, *extra],
                           capture_output=True, text=True)
        if check:
            self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def test_deterministic_and_outputs(self):
        a, b = os.path.join(self.tmp, "det_a"), os.path.join(self.tmp, "det_b")
        pa = self.train(a, "--steps", "10")
        self.train(b, "--steps", "10")
        self.assertIn("bits per byte", pa.stdout)
        self.assertEqual(sha(os.path.join(a, "checkpoint.safetensors")), sha(os.path.join(b, "checkpoint.safetensors")))
        ma, mb = metrics(os.path.join(a, "metrics.jsonl")), metrics(os.path.join(b, "metrics.jsonl"))
        self.assertEqual([stable(r) for r in ma], [stable(r) for r in mb])
        self.assertEqual([r["step"] for r in ma], list(range(1, 11)))
        self.assertIn("val_bpb", ma[4])
        self.assertIn("val_bpb", ma[9])
        self.assertNotIn("val_bpb", ma[3])
        self.assertEqual(set(ma[0]["load_max_over_mean"]), {"0", "1"})
        self.assertLess(ma[-1]["loss"], ma[0]["loss"])  # it learns
        for svg in ("loss.svg", "load.svg"):
            with open(os.path.join(a, svg)) as f:
                self.assertIn("<svg", f.read())

    def test_interrupt_and_resume_bit_exact(self):
        full, cut = os.path.join(self.tmp, "full"), os.path.join(self.tmp, "cut")
        steps = ["--steps", "40"]
        self.train(full, *steps)
        # Ctrl-C once the first steps are done: the run saves and exits 130.
        p = subprocess.Popen([MOE, "train", "--data", self.data, "--out", cut, *MOE_MODEL, *RUN, *steps],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        mpath = os.path.join(cut, "metrics.jsonl")
        deadline = time.time() + 120
        while time.time() < deadline and (not os.path.exists(mpath) or len(metrics(mpath)) < 3):
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
        stopped = len(metrics(mpath))
        if stopped < 40:
            self.assertEqual(p.returncode, 130, err)
            self.assertIn("interrupted", out)
        # Resume to the end: bit-identical to the uninterrupted run, metrics not duplicated.
        self.train(cut, *steps, "--resume")
        self.assertEqual(sha(os.path.join(full, "checkpoint.safetensors")), sha(os.path.join(cut, "checkpoint.safetensors")))
        self.assertEqual([stable(r) for r in metrics(os.path.join(full, "metrics.jsonl"))], [stable(r) for r in metrics(mpath)])

    def test_generate_from_checkpoint(self):
        out = os.path.join(self.tmp, "gen")
        self.train(out, "--steps", "5")
        args = [MOE, "generate", "--checkpoint", out, "--prompt", "line 1", "--max_new_tokens", "20"]
        a = subprocess.run(args, capture_output=True, text=True)
        b = subprocess.run(args, capture_output=True, text=True)
        self.assertEqual(a.returncode, 0, a.stderr)
        self.assertTrue(a.stdout.startswith("line 1"))
        self.assertEqual(a.stdout.split("\n\n")[0], b.stdout.split("\n\n")[0])  # greedy: deterministic
        for key in ("Avg MoE FF time/call", "Avg MoE FF mem delta/call", "tokens/sec", "Max memory"):
            self.assertIn(key, a.stdout)
        s = subprocess.run(args + ["--temperature", "1.0", "--sample_top_k", "5", "--top_p", "0.9", "--seed", "3"],
                           capture_output=True, text=True)
        self.assertEqual(s.returncode, 0, s.stderr)
        # The KV cache and recomputing the whole sequence give the same greedy text.
        n = subprocess.run(args + ["--no_kv_cache"], capture_output=True, text=True)
        self.assertEqual(n.stdout.split("\n\n")[0], a.stdout.split("\n\n")[0])
        # bf16 FFN panels: the same model rounded, still a generation with every figure
        b = subprocess.run(args + ["--dtype", "bf16"], capture_output=True, text=True)
        self.assertEqual(b.returncode, 0, b.stderr)
        self.assertTrue(b.stdout.startswith("line 1"))
        self.assertIn("tokens/sec", b.stdout)
        bad = subprocess.run(args + ["--dtype", "fp16"], capture_output=True, text=True)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("--dtype=fp16", bad.stderr)

    def test_untrained_dense_vs_moe(self):
        base = [MOE, "generate", "--untrained", "--emb_dim", "64", "--n_heads", "4", "--n_layers", "2",
                "--max_new_tokens", "8", "--quiet", "--context", "64"]
        d = subprocess.run(base + ["--hidden_dim", "256", "--num_experts", "0"], capture_output=True, text=True)
        m = subprocess.run(base + ["--hidden_dim", "64", "--num_experts", "4", "--num_experts_per_tok", "2"],
                           capture_output=True, text=True)
        self.assertEqual(d.returncode, 0, d.stderr)
        self.assertEqual(m.returncode, 0, m.stderr)
        self.assertIn("Avg FFN time/call", d.stdout)
        self.assertIn("Avg MoE FF time/call", m.stdout)

        def mem(text):
            line = [l for l in text.splitlines() if "mem delta/call" in l][0]
            return float(line.split(":")[1].split()[0])
        self.assertLess(mem(m.stdout), mem(d.stdout))  # equal total parameters, less activation memory

    def test_bad_input(self):
        empty = os.path.join(self.tmp, "empty.txt")
        open(empty, "w").close()
        cases = [
            (["train", "--data", empty, "--out", os.path.join(self.tmp, "x1"), *MOE_MODEL], "empty"),
            (["train", "--data", self.data, "--out", os.path.join(self.tmp, "x2"), "--emb_dim", "30", "--n_heads", "4"],
             "n_heads"),
            (["train", "--data", self.data, "--out", os.path.join(self.tmp, "x3"), *MODEL, "--num_experts", "4",
              "--top_k", "5"], "top_k"),
            (["train", "--data", self.data, "--out", os.path.join(self.tmp, "x4"), *MODEL, "--seq", "100"], "context"),
            (["generate", "--untrained", *MODEL, "--prompt", "x" * 65, "--max_new_tokens", "10"], "longer than the model's context of 64"),
            (["generate", "--checkpoint", os.path.join(self.tmp, "missing")], "missing"),
        ]
        for args, word in cases:
            p = subprocess.run([MOE, *args], capture_output=True, text=True)
            self.assertEqual(p.returncode, 2, (args, p.stderr))
            self.assertIn(word, p.stderr.lower(), args)
            self.assertEqual(len([l for l in p.stderr.splitlines() if "error" in l]), 1, p.stderr)

    def test_checkpoint_from_another_config_and_truncated(self):
        out = os.path.join(self.tmp, "guard")
        self.train(out, "--steps", "3")
        ck = os.path.join(out, "checkpoint.safetensors")
        before = sha(ck)
        other = [a if a != "32" else "48" for a in MOE_MODEL]  # emb_dim 48
        p = self.train(out, "--steps", "6", "--resume", model=other, check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("d_model", p.stderr)
        self.assertEqual(sha(ck), before)  # nothing overwritten
        with open(ck, "rb") as f:
            data = f.read()
        for cut in (10, len(data) // 2, len(data) - 3):
            bad = os.path.join(self.tmp, f"trunc_{cut}.safetensors")
            with open(bad, "wb") as f:
                f.write(data[:cut])
            g = subprocess.run([MOE, "generate", "--checkpoint", bad, "--max_new_tokens", "2"], capture_output=True, text=True)
            self.assertEqual(g.returncode, 2, g.stderr)
            self.assertIn("checkpoint", g.stderr)

    def test_divergence_stops_naming_step_and_keeps_checkpoint(self):
        out = os.path.join(self.tmp, "nan")
        p = self.train(out, "--steps", "30", "--lr", "1e3", "--min_lr", "1e3", "--warmup", "10", "--clip", "0",
                       "--ckpt_every", "1", check=False)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertRegex(p.stderr, r"step \d+")
        self.assertRegex(p.stderr, r"layer \d+|'blocks\.\d+|logits|wte|head")
        if os.path.exists(os.path.join(out, "checkpoint.safetensors")):
            self.assertIn("last good checkpoint", p.stderr)
            g = subprocess.run([MOE, "generate", "--checkpoint", out, "--max_new_tokens", "2", "--quiet"],
                               capture_output=True, text=True)
            self.assertEqual(g.returncode, 0, g.stderr)  # the last good checkpoint still works
        else:
            self.assertIn("no checkpoint was written", p.stderr)


if __name__ == "__main__":
    MOE = sys.argv.pop(1)
    unittest.main(verbosity=2)
