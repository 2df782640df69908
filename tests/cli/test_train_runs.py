"""`moe train` keeps runs safe: an existing run is not replaced without --overwrite, a finished run
resumed says so, a resume may change only the settings it names (each reported), data paths
compare as files not strings, crash leftovers are removed, SIGHUP saves like SIGTERM, and a
checkpoint is written every --ckpt_minutes while training.

Usage: /usr/bin/python3 test_train_runs.py PATH_TO_moe
"""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

MOE = None
MODEL = ["--emb_dim", "16", "--n_layers", "1", "--n_heads", "2", "--hidden_dim", "16", "--context", "32"]
RUN = ["--batch", "2", "--seq", "16", "--eval_every", "0", "--eval_windows", "2", "--threads", "1", "--no_progress"]


def read(path):
    with open(path) as f:
        return f.read()


def train_state(ck):
    with open(ck, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(json.loads(data[8:8 + n])["__metadata__"]["moe.train_state"])


class TrainRuns(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="moe_train_runs_")
        cls.data = os.path.join(cls.tmp, "corpus.txt")
        with open(cls.data, "w") as f:
            f.write("".join(f"line {i}: a quick brown fox jumps over the lazy dog.\n" for i in range(600)))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def train(self, out, *extra, data=None, check=True):
        p = subprocess.run([MOE, "train", "--data", data or self.data, "--out", out, *MODEL, *RUN, *extra],
                           capture_output=True, text=True, cwd=self.tmp)
        if check:
            self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def test_existing_run_is_not_replaced(self):
        out = os.path.join(self.tmp, "keep")
        self.train(out, "--steps", "3")
        before = read(os.path.join(out, "metrics.jsonl"))
        p = self.train(out, "--steps", "3", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("holds a run already", p.stderr)
        self.assertIn("--overwrite", p.stderr)
        self.assertEqual(read(os.path.join(out, "metrics.jsonl")), before)  # untouched
        self.train(out, "--steps", "2", "--overwrite")
        self.assertEqual(train_state(os.path.join(out, "checkpoint.safetensors"))["step"], 2)

    def test_finished_run_and_resume_changes(self):
        out = os.path.join(self.tmp, "done")
        self.train(out, "--steps", "4")
        p = self.train(out, "--steps", "4", "--resume")
        self.assertIn("complete at step 4 of --steps 4: nothing to train", p.stdout)
        self.assertNotIn("0.0000", p.stdout)
        # A changed setting is refused, naming it and how to allow it...
        p = self.train(out, "--steps", "6", "--lr", "0.001", "--resume", check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("optim.", p.stderr)
        self.assertIn("--resume_changes", p.stderr)
        # ... and accepted when listed, each change reported; the summary counts this invocation.
        p = self.train(out, "--steps", "6", "--lr", "0.001", "--resume", "--resume_changes", "steps,lr")
        self.assertIn("resume: steps: 4 -> 6", p.stderr)
        self.assertIn("resume: lr:", p.stderr)
        self.assertIn("trained 2 steps (steps 5-6 of the run)", p.stdout)
        p = self.train(out, "--steps", "7", "--resume", "--resume_changes", "stepz", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("'stepz' is not one of", p.stderr)

    def test_data_paths_compare_as_files(self):
        out = os.path.join(self.tmp, "paths")
        self.train(out, "--steps", "2", data="corpus.txt")  # relative to cwd (self.tmp)
        self.train(out, "--steps", "2", "--resume", data=self.data)  # absolute: the same file

    def test_crash_leftovers_are_removed(self):
        out = os.path.join(self.tmp, "leftovers")
        self.train(out, "--steps", "2")
        stale = os.path.join(out, "checkpoint.safetensors.tmp.Ab12Cd")
        with open(stale, "wb") as f:
            f.write(b"x" * 1000)
        self.train(out, "--steps", "2", "--resume")
        self.assertFalse(os.path.exists(stale))

    def test_empty_validation_file_is_named(self):
        empty = os.path.join(self.tmp, "empty_val.txt")
        open(empty, "w").close()
        p = self.train(os.path.join(self.tmp, "emptyval"), "--val_data", empty, "--steps", "2", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("empty_val.txt", p.stderr)
        p = self.train(os.path.join(self.tmp, "devzero"), "--steps", "2", data="/dev/zero", check=False)  # used to hang
        self.assertEqual(p.returncode, 2)
        self.assertIn("not a regular file", p.stderr)

    def test_sighup_saves_and_periodic_checkpoints(self):
        out = os.path.join(self.tmp, "hup")
        ck = os.path.join(out, "checkpoint.safetensors")
        p = subprocess.Popen([MOE, "train", "--data", self.data, "--out", out, *MODEL, *RUN, "--steps", "100000",
                              "--ckpt_minutes", "0.001"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while time.time() < deadline and not os.path.exists(ck):  # a checkpoint while training, by time
            time.sleep(0.02)
        self.assertTrue(os.path.exists(ck))
        self.assertLess(train_state(ck)["step"], 100000)
        p.send_signal(signal.SIGHUP)  # a closed terminal
        out_, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 130, err)
        self.assertIn("interrupted", out_)
        self.assertEqual(train_state(ck)["step"], int(out_.split("interrupted after ")[1].split()[0]))


if __name__ == "__main__":
    MOE = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=1)
