"""Bad input to `moe layer`: each case exits non-zero with one clear line naming the field and
values, and leaves no output file. Also a smoke run of every model type's HF naming.

Usage: /usr/bin/python3 test_layer_cli.py PATH_TO_moe
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
H, E, I, K, T = 6, 4, 5, 2, 8


def mixtral_weights(rng, e=E, h=H, i=I):
    w = {"gate.weight": rng.normal(size=(e, h))}
    for x in range(e):
        w[f"experts.{x}.w1.weight"] = rng.normal(size=(i, h))
        w[f"experts.{x}.w3.weight"] = rng.normal(size=(i, h))
        w[f"experts.{x}.w2.weight"] = rng.normal(size=(h, i))
    return {n: v.astype(np.float32) for n, v in w.items()}


class LayerCli(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.d = self.dir.name
        self.rng = np.random.default_rng(0)
        self.cfg = {"model_type": "mixtral", "hidden_size": H, "num_local_experts": E,
                    "num_experts_per_tok": K, "intermediate_size": I}
        self.weights = mixtral_weights(self.rng)
        self.inputs = {"x": self.rng.normal(size=(T, H)).astype(np.float32),
                       "dy": self.rng.normal(size=(T, H)).astype(np.float32)}

    def tearDown(self):
        self.dir.cleanup()

    def run_layer(self, cfg=None, weights=None, inputs=None, extra=(), raw_weights=None):
        p = lambda n: os.path.join(self.d, n)
        with open(p("cfg.json"), "w") as f:
            json.dump(cfg if cfg is not None else self.cfg, f)
        if raw_weights is not None:
            with open(p("w.safetensors"), "wb") as f:
                f.write(raw_weights)
        else:
            st.save(p("w.safetensors"), weights if weights is not None else self.weights)
        st.save(p("in.safetensors"), inputs if inputs is not None else self.inputs)
        out = p("out.safetensors")
        r = subprocess.run([MOE, "layer", "--config", p("cfg.json"), "--weights", p("w.safetensors"),
                            "--inputs", p("in.safetensors"), "--out", out, *extra],
                           capture_output=True, text=True)
        return r, out

    def expect_error(self, *fragments, **kw):
        r, out = self.run_layer(**kw)
        self.assertEqual(r.returncode, 2, (r.stdout, r.stderr))
        err = r.stderr.strip()
        self.assertEqual(len(err.splitlines()), 1, err)
        for fr in fragments:
            self.assertIn(fr, err)
        self.assertFalse(os.path.exists(out), "an output file was left behind")
        self.assertEqual([n for n in os.listdir(self.d) if ".tmp." in n], [])

    def test_ok_run_writes_everything(self):
        r, out = self.run_layer()
        self.assertEqual(r.returncode, 0, r.stderr)
        o = st.load(out)[0]
        for name in ["y", "router_logits", "expert_ids", "expert_weights", "expert_kept", "grad.x",
                     "grad.gate.weight", "grad.experts.3.w2.weight", "stats.tokens_per_expert", "loss.aux_total"]:
            self.assertIn(name, o)
        np.testing.assert_allclose(o["expert_weights"].sum(axis=1), 1.0, rtol=1e-6)  # renormalised

    def test_top_k_bad(self):
        self.expect_error("top_k=5 > n_experts=4", cfg=dict(self.cfg, num_experts_per_tok=5))
        self.expect_error("top_k=0", cfg=dict(self.cfg, num_experts_per_tok=0))

    def test_groups(self):
        cfg = {"model_type": "deepseek_v3", "hidden_size": H, "n_routed_experts": 6, "num_experts_per_tok": 2,
               "moe_intermediate_size": I, "n_group": 4, "topk_group": 1, "norm_topk_prob": True}
        self.expect_error("n_group=4 does not divide n_experts=6", cfg=cfg)
        self.expect_error("topk_group=5 must be in [1, n_group=3]", cfg=dict(cfg, n_group=3, topk_group=5))

    def test_capacity(self):
        cfg = {"model_type": "switch_transformers", "d_model": H, "num_experts": E, "d_ff": I, "expert_capacity": 0}
        self.expect_error("expert_capacity=0 must be >= 1", cfg=cfg)
        custom = {"hidden_size": H, "num_experts": E, "num_experts_per_tok": 2, "intermediate_size": I,
                  "router": {"capacity_mode": "factor", "capacity_factor": 0}}
        self.expect_error("capacity_factor=0 must be > 0", cfg=custom)

    def test_shape_mismatch_and_missing(self):
        w = dict(self.weights)
        w["experts.1.w2.weight"] = np.zeros((H, I + 1), np.float32)
        self.expect_error("experts.1.w2.weight", "[6, 6]", "[6, 5]", weights=w)
        w = dict(self.weights)
        del w["experts.2.w1.weight"]
        self.expect_error("missing tensor 'experts.2.w1.weight'", weights=w)
        w = dict(self.weights)
        w["experts.9.w1.weight"] = np.zeros((I, H), np.float32)
        self.expect_error("'experts.9.w1.weight' is not used by this config", weights=w)
        self.expect_error("input 'x' has shape [8, 7]", inputs={"x": np.zeros((T, H + 1), np.float32)})
        self.expect_error("missing input 'x'", inputs={"dy": np.zeros((T, H), np.float32)})

    def test_non_finite(self):
        x = self.inputs["x"].copy()
        x[3, 2] = np.nan
        self.expect_error("'x' has a non-finite value", "flat index 20", inputs={"x": x})
        w = dict(self.weights)
        w["gate.weight"] = w["gate.weight"].copy()
        w["gate.weight"][0, 1] = np.inf
        self.expect_error("'gate.weight' has a non-finite value", weights=w)

    def test_overflowing_results_are_errors(self):
        # Finite f32 inputs whose products overflow: the forward (and with dy the backward) would
        # write inf/NaN and exit 0; it must say which output, and that f64 is the way out.
        big = np.full((T, H), 3e38, np.float32)
        self.expect_error("output 'router_logits' is not finite", "use --precision f64", inputs={"x": big})
        self.expect_error("output 'y' is not finite", inputs={"x": self.inputs["x"] * np.float32(1e19)})
        dy = {"x": self.inputs["x"], "dy": np.full((T, H), 3e38, np.float32)}
        self.expect_error("output 'grad.", "not finite", inputs=dy)
        r, out = self.run_layer(inputs={"x": big}, extra=("--precision", "f64"))  # f64 holds 3e38² easily
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(np.isfinite(st.load(out)[0]["y"]).all())

    def test_attention_mask_values(self):
        for bad, shown in ((np.nan, "nan"), (0.5, "0.5"), (2, "2")):
            m = np.ones(T, np.float32)
            m[3] = bad
            self.expect_error("'attention_mask' has " + shown + " at flat index 3", "expected 0 (padding) or 1",
                              inputs=dict(self.inputs, attention_mask=m))
        r, out = self.run_layer(inputs=dict(self.inputs, attention_mask=np.array([1] * 6 + [0] * 2, np.int64)))
        self.assertEqual(r.returncode, 0, r.stderr)
        os.remove(out)

    def test_f16_weights_and_inputs(self):
        # F16 files (as some checkpoints ship) give the layer of their values widened exactly:
        # the same outputs as an f64 run on the same numbers stored as F64.
        w16 = {n: v.astype(np.float16) for n, v in self.weights.items()}
        x16 = {"x": self.inputs["x"].astype(np.float16)}
        r, out = self.run_layer(weights=w16, inputs=x16, extra=("--precision", "f64"))
        self.assertEqual(r.returncode, 0, r.stderr)
        a = st.load(out)[0]
        r, out = self.run_layer(weights={n: v.astype(np.float64) for n, v in w16.items()},
                                inputs={"x": x16["x"].astype(np.float64)}, extra=("--precision", "f64"))
        b = st.load(out)[0]
        np.testing.assert_array_equal(a["y"], b["y"])
        os.remove(out)
        self.expect_error("has dtype I32, expected F32, F64, BF16 or F16",
                          inputs={"x": self.inputs["x"].astype(np.int32)})

    def test_truncated_weights(self):
        path = os.path.join(self.d, "good.safetensors")
        st.save(path, self.weights)
        with open(path, "rb") as f:
            data = f.read()
        for cut in [0, 5, 8, 40, len(data) // 2, len(data) - 1]:
            self.expect_error("[safetensors]", raw_weights=data[:cut])

    def test_bad_config(self):
        self.expect_error("missing key 'num_local_experts'",
                          cfg={k: v for k, v in self.cfg.items() if k != "num_local_experts"})
        self.expect_error("model_type 'mamba'", cfg=dict(self.cfg, model_type="mamba"))
        self.expect_error("unknown field 'topk'", cfg=dict(self.cfg, router={"topk": 3}))
        self.expect_error("--precision=f16", extra=("--precision", "f16"))

    def test_fused_layout_matches_per_expert(self):
        r, out = self.run_layer(extra=("--precision", "f64"))
        a = st.load(out)[0]
        fused = {"gate.weight": self.weights["gate.weight"],
                 "experts.gate_up_proj": np.stack([np.concatenate([self.weights[f"experts.{e}.w1.weight"],
                                                                   self.weights[f"experts.{e}.w3.weight"]]) for e in range(E)]),
                 "experts.down_proj": np.stack([self.weights[f"experts.{e}.w2.weight"] for e in range(E)])}
        r, out = self.run_layer(weights=fused, extra=("--precision", "f64"))
        self.assertEqual(r.returncode, 0, r.stderr)
        b = st.load(out)[0]
        np.testing.assert_allclose(a["y"], b["y"], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(b["grad.experts.gate_up_proj"][1, :I], a["grad.experts.1.w1.weight"], rtol=1e-12)

    def test_expert_formats(self):
        # Every storage format gives the same layer: packed f32 to f32 rounding, packed bf16 to
        # bf16 rounding of weights and activations; inference-only formats refuse a backward.
        fwd = {"x": self.inputs["x"]}
        r, out = self.run_layer(inputs=fwd, extra=("--precision", "f64"))
        ref = st.load(out)[0]
        want = ref["y"]
        scale = np.abs(want).max()
        for fmt, tol in (("auto", 1e-5), ("f32", 1e-5), ("packed_f32", 1e-5), ("packed_bf16", 3e-2)):
            r, out = self.run_layer(inputs=fwd, extra=("--experts", fmt))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(fmt if fmt not in ("auto", "f32") else ("packed_f32" if fmt == "auto" else "f32 training"),
                          r.stderr)
            o = st.load(out)[0]
            self.assertLess(np.abs(o["y"] - want).max() / scale, tol, fmt)
            self.assertEqual(o["expert_ids"].tolist(), ref["expert_ids"].tolist(), fmt)  # routing is f32 either way
        os.remove(out)
        self.expect_error("--experts packed_bf16 is inference-only", extra=("--experts", "packed_bf16"))
        self.expect_error("--experts packed_f32 needs --precision f32",
                          extra=("--experts", "packed_f32", "--precision", "f64"))
        self.expect_error("--experts f64 does not match --precision f32", extra=("--experts", "f64"))
        self.expect_error("format 'q4' is not one of", extra=("--experts", "q4"))


if __name__ == "__main__":
    MOE = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=1)
