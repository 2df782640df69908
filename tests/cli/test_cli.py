"""The `moe` command line as a whole: a typo in a command or flag is named with the nearest known
one (before any missing-flag complaint it caused), a bad path is a clear error with status 2, and
`moe eval` reproduces the validation loss training recorded on the same windows.

Usage: /usr/bin/python3 test_cli.py PATH_TO_moe
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

MOE = None
MODEL = ["--emb_dim", "16", "--n_layers", "1", "--n_heads", "2", "--hidden_dim", "16", "--context", "32"]
RUN = ["--batch", "2", "--seq", "16", "--eval_every", "0", "--threads", "1", "--no_progress"]


def moe(*args, cwd=None):
    return subprocess.run([MOE, *args], capture_output=True, text=True, cwd=cwd)


def last_record(run):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return json.loads(f.read().splitlines()[-1])


class Typos(unittest.TestCase):
    def test_unknown_command_names_the_nearest(self):
        p = moe("trian", "--steps", "3")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown command 'trian'; did you mean train?", p.stderr)
        self.assertIn("commands: estimate, layer, bench, train, eval", p.stderr)

    def test_no_command_lists_them(self):
        p = moe()
        self.assertEqual(p.returncode, 2)
        self.assertIn("commands: estimate", p.stderr)

    def test_unknown_flag_comes_before_missing_required(self):
        # `moe train` requires --data; the typo is the real problem and is reported instead.
        p = moe("train", "--top-k", "2", "--stpes=3")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown flag --top-k for `moe train`; did you mean --top_k?", p.stderr)
        self.assertIn("unknown flag --stpes for `moe train`; did you mean --steps?", p.stderr)
        self.assertNotIn("--data is required", p.stderr)

    def test_far_off_flag_gets_no_guess(self):
        p = moe("estimate", "--zzzzzzzz", "1")
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stderr, "moe: error: unknown flag --zzzzzzzz for `moe estimate`; "
                                   "`moe estimate --help` lists the flags\n")

    def test_nested_command_flags(self):
        p = moe("bench", "layer", "--tokns", "4")
        self.assertEqual(p.returncode, 2)
        self.assertIn("for `moe layer`; did you mean --tokens?", p.stderr)

    def test_known_flags_and_negative_values_pass_the_check(self):
        p = moe("estimate", "--emb_dim", "64", "--hidden_dim", "128", "--num_experts", "4", "--top_k", "2")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = moe("estimate", "--emb_dim", "-64")
        self.assertEqual(p.returncode, 2)
        self.assertNotIn("unknown flag", p.stderr)


class WaitPolicy(unittest.TestCase):
    """`moe` runs with a short OpenMP spin (graceful beside other work) unless the user chose one."""

    def environ_of_running(self, env):
        with tempfile.TemporaryDirectory() as d:
            data = os.path.join(d, "c.txt")
            with open(data, "w") as f:
                f.write("abcdefgh " * 2000)
            p = subprocess.Popen([MOE, "train", "--data", data, "--out", os.path.join(d, "r"), "--steps", "100000",
                                  *MODEL, *RUN], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                deadline = time.time() + 20
                while time.time() < deadline:  # after the re-exec the command line is the same, the environment not
                    with open(f"/proc/{p.pid}/environ", "rb") as f:
                        e = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
                    if b"GOMP_SPINCOUNT" in e or os.path.exists(os.path.join(d, "r", "metrics.jsonl")):
                        return e
                    time.sleep(0.05)
                return e
            finally:
                p.kill()
                p.wait()

    def test_default_and_users_choice(self):
        base = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
        self.assertEqual(self.environ_of_running(base).get(b"GOMP_SPINCOUNT"), b"1000")
        self.assertEqual(self.environ_of_running(dict(base, GOMP_SPINCOUNT="5")).get(b"GOMP_SPINCOUNT"), b"5")
        e = self.environ_of_running(dict(base, OMP_WAIT_POLICY="active"))
        self.assertNotIn(b"GOMP_SPINCOUNT", e)
        self.assertEqual(e.get(b"OMP_WAIT_POLICY"), b"active")


class Values(unittest.TestCase):
    """A value that would silently mean "off" or wrap around is refused, naming the flag."""

    def test_refused(self):
        base = ["train", "--data", "nowhere.txt", "--out", "nowhere", "--steps", "1", *MODEL]
        for extra, want in [
            (["--num_experts", "-1"], "--num_experts=-1 must be >= 0"),
            (["--n_kv_heads", "-1"], "--n_kv_heads=-1 must be >= 0"),
            (["--num_experts", "4", "--capacity_factor", "-1"], "--capacity_factor=-1 must be finite and >= 0"),
            (["--num_experts", "4", "--capacity_factor", "nan"], "--capacity_factor=nan must be finite and >= 0"),
            (["--num_experts", "4", "--aux_coef", "nan"], "--aux_coef=nan must be finite and >= 0"),
            (["--num_experts", "4", "--z_coef", "-0.5"], "--z_coef=-0.5 must be finite and >= 0"),
            (["--num_experts", "4", "--shared_hidden", "-4"], "--shared_hidden=-4 must be >= 0"),
            (["--shared_hidden", "8"], "--shared_hidden needs --num_experts > 0"),
            (["--num_experts", "4", "--moe_every", "0"], "--moe_every=0 must be >= 1"),
            (["--num_experts", "4", "--router", "soft", "--encoder", "--z_coef", "0.1"], "--z_coef does not apply"),
            (["--num_experts", "4", "--first_dense", "1"], "leaves no MoE layer"),
            (["--threads", "-1"], "--threads=-1 must be >= 0"),
            (["--batch", "99999999999999999999"], "--batch=99999999999999999999 is out of range"),
            (["--seed=-3"], "--seed=-3 must be >= 0"),
            (["--steps", "2"], "--steps is given 2 times; give it once"),
        ]:
            with self.subTest(extra):
                p = moe(*base, *extra)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn(want, p.stderr)
                self.assertEqual([l for l in p.stderr.splitlines() if "error" in l], [p.stderr.splitlines()[-1]])
        p = moe("generate", "--untrained", "--threads", "-2", *MODEL)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--threads=-2 must be >= 0", p.stderr)


class Eval(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="moe_cli_")
        cls.data = os.path.join(cls.tmp, "corpus.txt")
        cls.val = os.path.join(cls.tmp, "val.txt")
        with open(cls.data, "w") as f:
            f.write("".join(f"line {i}: a quick brown fox jumps over the lazy dog.\n" for i in range(300)))
        with open(cls.val, "w") as f:
            f.write("".join(f"row {i}: pack my box with five dozen liquor jugs!\n" for i in range(40)))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def train(self, name, *extra):
        out = os.path.join(self.tmp, name)
        p = moe("train", "--data", self.data, "--val_data", self.val, "--out", out, "--steps", "3",
                "--eval_windows", "5", *MODEL, *RUN, *extra)
        self.assertEqual(p.returncode, 0, p.stderr)
        return out

    def evaluate(self, run, *extra):
        p = moe("eval", "--checkpoint", run, "--data", self.val, "--batch", "2", "--max_windows", "5",
                "--threads", "1", "--json", "--no_progress", *extra)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def test_matches_training_validation(self):
        for name, extra in [("dense", []), ("moe", ["--num_experts", "4", "--top_k", "2"]),
                            ("masked", ["--objective", "masked", "--seed", "7"])]:
            with self.subTest(name):
                run = self.train(name, *extra)
                want = last_record(run)["val_loss"]
                got = self.evaluate(run)
                self.assertAlmostEqual(got["loss_nats"], want, places=9)
                self.assertAlmostEqual(got["bits_per_byte"], want / 0.6931471805599453, places=9)
                self.assertEqual((got["windows"], got["seq"]), (5, 16))
                if name == "masked":  # another mask seed masks other bytes: another loss
                    self.assertNotAlmostEqual(self.evaluate(run, "--seed", "8")["loss_nats"], want, places=6)

    def test_the_whole_file_and_the_text_line(self):
        run = self.train("whole")
        p = moe("eval", "--checkpoint", run, "--data", self.val, "--seq", "32", "--threads", "1")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"nats = [0-9.]+ bits per byte over \d+ windows of 32 bytes")
        self.assertIn("eval [", p.stderr)  # the progress line

    def test_bad_input(self):
        run = self.train("bad")
        short = os.path.join(self.tmp, "short.txt")
        with open(short, "w") as f:
            f.write("tiny")
        for args, want in [
            (["--data", self.val, "--seq", "64"], "> the model's context 32"),
            (["--data", short], "has 4 bytes; one window needs 17"),
            (["--data", self.val, "--batch", "0"], "--batch >= 1"),
            (["--data", os.path.join(self.tmp, "missing.txt")], "missing.txt"),
        ]:
            with self.subTest(want):
                p = moe("eval", "--checkpoint", run, *args)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn(want, p.stderr)
        p = moe("eval", "--checkpoint", os.path.join(self.tmp, "nowhere"), "--data", self.val)
        self.assertEqual(p.returncode, 2, p.stderr)

    def test_unwritable_out_is_a_clear_error(self):
        p = moe("train", "--data", self.data, "--out", os.path.join(self.data, "run"), "--steps", "1", *MODEL, *RUN)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("Not a directory", p.stderr)
        self.assertNotIn("terminate", p.stderr)


class GeneratePastTheContext(unittest.TestCase):
    """Past the context the window slides: the older half is dropped and the newer half encoded
    afresh. Oracle: the tokens after a slide are what a fresh generation from that half gives."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="moe_gen_")
        data = os.path.join(cls.tmp, "c.txt")
        with open(data, "w") as f:
            f.write("".join(f"line {i}: a quick brown fox jumps over the lazy dog.\n" for i in range(300)))
        cls.run_dir = os.path.join(cls.tmp, "run")
        p = moe("train", "--data", data, "--out", cls.run_dir, "--steps", "150", "--lr", "1e-2", "--emb_dim", "32",
                "--n_layers", "1", "--n_heads", "2", "--hidden_dim", "32", "--context", "32", "--batch", "4", "--seq", "32",
                "--eval_every", "0", "--threads", "1", "--no_progress")
        assert p.returncode == 0, p.stderr

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def generate(self, prompt, n, *extra):
        p = moe("generate", "--checkpoint", self.run_dir, "--prompt", prompt, "--max_new_tokens", str(n), "--threads", "1", *extra)
        self.assertEqual(p.returncode, 0, p.stderr)
        text, figures = p.stdout.rsplit("\n\nModel:", 1)
        self.assertTrue(all(c == "\n" or " " <= c <= "~" for c in text), repr(text))  # bytes = characters
        return text, figures

    def test_window_slides(self):
        C, prompt, n = 32, "line 1", 60
        text, figures = self.generate(prompt, n)
        self.assertEqual(len(text), len(prompt) + n)
        self.assertIn("Context: 32 tokens; the window slid 2 times", figures)
        self.assertEqual(self.generate(prompt, n, "--no_kv_cache")[0], text)
        # The first slide comes when 33 tokens are there: the window becomes tokens 17..32, and
        # tokens 33..49 follow from it alone; the second slide is at 50.
        start, end = C + 1 - C // 2, 2 * C + 2 - C // 2
        self.assertEqual(self.generate(text[start:C + 1], end - (C + 1))[0], text[start:end])
        # Before the first slide, the same as a generation that never needed one.
        self.assertEqual(self.generate(prompt, C + 1 - len(prompt))[0], text[:C + 1])

    def test_prompt_longer_than_the_context(self):
        p = moe("generate", "--checkpoint", self.run_dir, "--prompt", "x" * 33, "--max_new_tokens", "1")
        self.assertEqual(p.returncode, 2)
        self.assertIn("the prompt (33 tokens) is longer than the model's context of 32", p.stderr)


SHARED_TOKENIZERS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
                                 "shared", "data", "tokenizers")


class TextCommands(unittest.TestCase):
    """moe tokenize / moe template: bad input is one line and exit 2, never a crash."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="moe_textcli_")
        self.mistral = os.path.join(SHARED_TOKENIZERS, "mistral-7b-v0.1")
        self.qwen = os.path.join(SHARED_TOKENIZERS, "qwen3")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def refused(self, args, message):
        p = subprocess.run([MOE, *args], capture_output=True)
        self.assertEqual(p.returncode, 2, p.stderr)
        err = p.stderr.decode("utf-8", "replace")
        self.assertIn(message, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_tokenize_round_trip_and_refusals(self):
        p = moe("tokenize", "--tokenizer", self.mistral, "--text", "Hello world", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        ids = json.loads(p.stdout)["ids"]
        self.assertEqual(ids[0], 1)
        back = moe("tokenize", "--tokenizer", self.mistral, "--ids", ",".join(map(str, ids)), "--skip_special")
        self.assertEqual(back.stdout, "Hello world\n")
        self.refused(["tokenize", "--tokenizer", self.tmp, "--text", "x"], "no tokenizer.json")
        self.refused(["tokenize", "--tokenizer", self.mistral, "--ids", "1, 99999999"], "token id 99999999 at index 1")
        self.refused(["tokenize", "--tokenizer", self.mistral, "--ids", "1, x"], "is not a token id")
        self.refused(["tokenize", "--tokenizer", self.mistral, "--text", b"bad \xff"], "not valid UTF-8 (byte 4)")
        bad = os.path.join(self.tmp, "bad.txt")
        with open(bad, "wb") as f:
            f.write(b"ab\xc3")
        self.refused(["tokenize", "--tokenizer", self.mistral, "--text_file", bad], "not valid UTF-8 (byte 2)")
        self.refused(["tokenize", "--tokenizer", self.mistral], "give one of --text")
        broken = os.path.join(self.tmp, "broken")
        os.makedirs(broken)
        with open(os.path.join(broken, "tokenizer.json"), "w") as f:
            f.write('{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}')
        self.refused(["tokenize", "--tokenizer", broken, "--text", "a"], "names a token that is not in the vocab")

    def test_template_refusals(self):
        msgs = os.path.join(self.tmp, "m.json")
        with open(msgs, "w") as f:
            json.dump([{"role": "user", "content": "Hi"}], f)
        p = moe("template", "--tokenizer", self.qwen, "--messages", msgs, "--add_generation_prompt")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.endswith("<|im_start|>assistant\n"), p.stdout)
        self.refused(["template", "--tokenizer", self.mistral, "--messages", msgs], "has no chat_template")
        with open(msgs, "w") as f:
            f.write("[{")
        self.refused(["template", "--tokenizer", self.qwen, "--messages", msgs], "not valid JSON")
        with open(msgs, "w") as f:
            json.dump({"no": "messages"}, f)
        self.refused(["template", "--tokenizer", self.qwen, "--messages", msgs], "expected a list of messages")
        tmpl = os.path.join(self.tmp, "t.jinja")
        with open(tmpl, "w") as f:
            f.write("line one\n{% for m in messages %}{{ m.content | nope }}{% endfor %}")
        with open(msgs, "w") as f:
            json.dump([{"role": "user", "content": "Hi"}], f)
        self.refused(["template", "--template", tmpl, "--messages", msgs], "line 2: filter 'nope' is not supported")
        self.refused(["template", "--template", tmpl, "--messages", msgs, "--var", "=1"], "expected key=JSON")


class Info(unittest.TestCase):
    """moe info on tiny Hugging Face folders written here (one file and two shards): the counts,
    and one-line refusals for a folder that does not match its config."""

    CONFIG = {"model_type": "qwen3_moe", "hidden_size": 16, "intermediate_size": 24, "moe_intermediate_size": 8,
              "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 6,
              "num_experts": 4, "num_experts_per_tok": 2, "vocab_size": 50, "max_position_embeddings": 128,
              "norm_topk_prob": True, "tie_word_embeddings": False, "eos_token_id": 3}

    def setUp(self):
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "oracle"))
        import numpy as np
        import safetensors_io as st
        self.np, self.st = np, st
        self.tmp = tempfile.mkdtemp(prefix="moe_info_")
        cfg = os.path.join(self.tmp, "config.json")
        with open(cfg, "w") as f:
            json.dump(self.CONFIG, f)
        p = moe("estimate", "--config", cfg, "--tensors")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.specs = []
        for line in p.stdout.splitlines():
            name, shape = line.split(" ", 1)
            self.specs.append((name, tuple(json.loads(shape))))

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def folder(self, name, specs, shards=1, dtype="float32"):
        d = os.path.join(self.tmp, name)
        os.makedirs(d)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(self.CONFIG, f)
        rng = self.np.random.default_rng(0)
        parts = [specs[i::shards] for i in range(shards)]
        index = {}
        for i, part in enumerate(parts):
            fname = "model.safetensors" if shards == 1 else "model-%05d-of-%05d.safetensors" % (i + 1, shards)
            self.st.save(os.path.join(d, fname), {n: rng.standard_normal(s).astype(dtype) for n, s in part})
            index.update({n: fname for n, _ in part})
        if shards > 1:
            with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
                json.dump({"metadata": {}, "weight_map": index}, f)
        return d

    def test_counts_one_file_and_shards(self):
        numel = sum(int(self.np.prod(s)) for _, s in self.specs)
        for shards in (1, 3):
            p = moe("info", "--model", self.folder("s%d" % shards, self.specs, shards), "--json")
            self.assertEqual(p.returncode, 0, p.stderr)
            r = json.loads(p.stdout)
            self.assertEqual(r["params_total"], numel)
            self.assertEqual(r["shards"], shards)
            self.assertEqual(r["weight_bytes"], 4 * numel)
            self.assertEqual(r["moe_layers"], 2)
            self.assertEqual(r["tensors"], len(self.specs))
            self.assertEqual(r["eos_token_ids"], [3])
            # active: attention, norms, router, embeddings, head and 2 of 4 experts per layer
            self.assertEqual(r["params_total"] - r["params_active"], 2 * 2 * 3 * 8 * 16)
        text = moe("info", "--model", os.path.join(self.tmp, "s1"))
        self.assertIn("qwen3_moe, 2 layers (2 MoE, 0 dense)", text.stdout)

    def refused(self, d, message):
        p = moe("info", "--model", d)
        self.assertEqual(p.returncode, 2, p.stdout)
        self.assertIn(message, p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)

    def test_mismatches_are_named(self):
        self.refused(self.folder("missing", self.specs[1:]), "tensor(s) the config implies are missing: model.embed_tokens.weight")
        self.refused(self.folder("extra", self.specs + [("model.layers.0.mlp.experts.9.up_proj.weight", (8, 16))]),
                     "tensor model.layers.0.mlp.experts.9.up_proj.weight in")
        wrong = [(n, (s[0] + 1,) + s[1:]) if n.endswith("q_proj.weight") and ".0." in n else (n, s) for n, s in self.specs]
        self.refused(self.folder("shape", wrong), "tensor model.layers.0.self_attn.q_proj.weight has shape [25, 16], the config implies [24, 16]")
        self.refused(self.folder("ints", self.specs, dtype="int32"), "weights are read as BF16, F16 or F32")


if __name__ == "__main__":
    MOE = os.path.abspath(sys.argv.pop(1))
    unittest.main()
