"""`moe bench layer` end to end (no timing asserted): every figure present for fp32, bf16,
--backward and a recorded routing file; bad input rejected with one clear line.

Usage: /usr/bin/python3 test_bench_cli.py PATH_TO_moe
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "oracle"))
import safetensors_io as st  # noqa: E402

MOE = None
BASE = ["bench", "layer", "--emb_dim", "64", "--hidden_dim", "48", "--num_experts", "4", "--top_k", "2",
        "--tokens", "33", "--seconds", "0.01"]


def run(*extra):
    threads = [] if "--threads" in extra else ["--threads", "2"]
    return subprocess.run([MOE, *BASE, *threads, *extra], capture_output=True, text=True)


class BenchCli(unittest.TestCase):
    def figures(self, *extra):
        p = run(*extra, "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        j = json.loads(p.stdout)
        for key in ("ms", "gflops", "weight_gbps", "router_ms", "experts_ms"):
            self.assertGreater(j["moe"][key], 0, key)
        self.assertGreater(j["dense"]["ms"], 0)
        self.assertGreater(j["ceilings"]["triad_gbps"], 0)
        return j

    def test_fp32_bf16_backward(self):
        self.assertIsNone(self.figures()["backward"])
        self.assertEqual(self.figures("--dtype", "bf16")["config"]["dtype"], "bf16")
        b = self.figures("--backward")["backward"]
        self.assertGreater(b["backward_ms"], 0)

    def test_recorded_routing(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "ids.safetensors")
            ids = np.array([[0, 1], [0, 2], [0, 3]], dtype=np.int32)  # expert 0 overloaded
            st.save(path, {"expert_ids": ids})
            j = self.figures("--routing", path)
            self.assertGreater(j["routing"]["max_over_mean"], 1.9)  # 33 of 66 slots on expert 0 of 4
            st.save(path, {"expert_ids": np.array([[0, 7]], dtype=np.int32)})
            p = run("--routing", path)
            self.assertEqual(p.returncode, 2)
            self.assertIn("expert id 7 outside [0, 4)", p.stderr)
            st.save(path, {"expert_ids": np.zeros((0, 2), dtype=np.int32)})  # no rows: was SIGFPE
            p = run("--routing", path)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("expert_ids has no rows", p.stderr)

    def test_bad_input(self):
        for extra, fragment in [(("--dtype", "fp8"), "--dtype=fp8"), (("--routing", "zipf:-1"), "Zipf exponent"),
                                (("--routing", "zipf:abc"), "Zipf exponent"), (("--routing", "zipf:"), "Zipf exponent"),
                                (("--threads", "0"), "--threads=0"), (("--routing", "/nonexistent.safetensors"), "nonexistent")]:
            p = run(*extra)
            self.assertEqual(p.returncode, 2, (extra, p.stdout))
            self.assertIn(fragment, p.stderr)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        p = subprocess.run([MOE, "bench", "layer", "--emb_dim", "8", "--hidden_dim", "8", "--num_experts", "2",
                            "--top_k", "3"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--top_k=3", p.stderr)


if __name__ == "__main__":
    MOE = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=1)
