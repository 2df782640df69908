"""AdamW + clip_grad_norm_ against PyTorch (torch.optim.AdamW, foreach=False, float32).

Random float32 parameters (matrices decayed, 1-D tensors not, one tensor large enough for the
parallel path) get 5 steps with given gradients, a varying learning rate (as a schedule sets it)
and gradient clipping that triggers on some steps and not others. The C++ side runs the same
steps through tests/adamw_oracle_tool.cpp; parameters, both moments and the norms must agree to
1e-6 relative. Without clipping, parameters and moments must be bit-identical: the update uses the
same float32 operations in the same order (FMAs where torch's AVX2 kernels fuse). With clipping
they differ by a few ulps at most: torch sums a norm's squares in float32, we in float64.

    adamw_oracle.py --tool build/release/tests/adamw_oracle_tool
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

SHAPES = {"embed": (37, 16), "blocks.0.w_up": (16, 48), "blocks.0.norm.weight": (16,),
          "blocks.0.bias": (48,), "big": (200, 300), "experts.w": (3, 5, 7)}
STEPS = 5
LRS = [1e-3, 3e-3, 2.5e-3, 1e-3, 5e-4]
GRAD_SCALE = [1.0, 0.05, 3.0, 0.02, 1.0]  # clipping at max_norm on some steps, not on others
CONFIG = {"beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1, "max_norm": 1.0}


def make_case(seed):
    rng = np.random.default_rng(seed)
    params = {n: rng.standard_normal(s).astype(np.float32) for n, s in SHAPES.items()}
    grads = [{n: (GRAD_SCALE[k] * rng.standard_normal(s) / np.sqrt(len(SHAPES) * np.prod(s)) * 10)
              .astype(np.float32) for n, s in SHAPES.items()} for k in range(STEPS)]
    return params, grads


def run_torch(params, grads, max_norm):
    names = list(SHAPES)
    tp = {n: torch.nn.Parameter(torch.from_numpy(params[n].copy())) for n in names}
    decay = [tp[n] for n in names if tp[n].dim() >= 2]
    no_decay = [tp[n] for n in names if tp[n].dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": CONFIG["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=LRS[0], betas=(CONFIG["beta1"], CONFIG["beta2"]), eps=CONFIG["eps"],
                            foreach=False)
    norms = []
    for k in range(STEPS):
        for n in names:
            tp[n].grad = torch.from_numpy(grads[k][n].copy())
        norms.append(float(torch.nn.utils.clip_grad_norm_([tp[n] for n in names], max_norm)))
        for group in opt.param_groups:
            group["lr"] = LRS[k]
        opt.step()
    out = {}
    for n in names:
        st = opt.state[tp[n]]
        out["param." + n] = tp[n].detach().numpy()
        out["adam.m." + n] = st["exp_avg"].numpy()
        out["adam.v." + n] = st["exp_avg_sq"].numpy()
    out["norms"] = np.array(norms, dtype=np.float32)
    return out


def run_ours(tool, params, grads, max_norm, tmp):
    tensors = {"param." + n: params[n] for n in SHAPES}
    for k in range(STEPS):
        for n in SHAPES:
            tensors[f"grad.{k}.{n}"] = grads[k][n]
    cfg = dict(CONFIG, names=list(SHAPES), steps=STEPS, lr=LRS, max_norm=max_norm)
    src, dst = os.path.join(tmp, "in.safetensors"), os.path.join(tmp, "out.safetensors")
    safetensors_io.save(src, tensors, metadata={"config": json.dumps(cfg)})
    subprocess.run([tool, src, dst], check=True)
    return safetensors_io.load(dst)[0]


def compare(ours, ref, exact_required):
    failures, exact, total = [], 0, 0
    for name in sorted(ref):
        a, b = np.asarray(ours[name], dtype=np.float32), np.asarray(ref[name], dtype=np.float32)
        if a.shape != b.shape:
            failures.append(f"{name}: shape {a.shape} vs {b.shape}")
            continue
        rel = float(np.max(np.abs(a.astype(np.float64) - b)) / max(float(np.max(np.abs(b))), 1e-30))
        exact += int(np.sum(a == b))
        total += a.size
        if not rel <= 1e-6:
            failures.append(f"{name}: max relative error {rel:.3g}")
        elif exact_required and name != "norms" and not np.array_equal(a, b):
            failures.append(f"{name}: {int(np.sum(a != b))} values differ (max relative error {rel:.3g}); "
                            "expected bit-identical")
    return failures, exact, total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    args = ap.parse_args()
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed, max_norm in ((0, CONFIG["max_norm"]), (1, CONFIG["max_norm"]), (2, 1e9), (3, 1e9)):
            params, grads = make_case(seed)
            ref = run_torch(params, grads, max_norm)
            clipping = max_norm < 1e9
            clipped = sum(1 for x in ref["norms"] if x > max_norm)
            if clipping:
                assert 0 < clipped < STEPS, f"seed {seed}: the case should clip on some steps only ({ref['norms']})"
            fails, exact, total = compare(run_ours(args.tool, params, grads, max_norm, tmp), ref, not clipping)
            print(f"seed {seed}, max_norm {max_norm:g}: {exact}/{total} values bit-identical, "
                  f"clipped on {clipped} of {STEPS} steps")
            failures += [f"seed {seed}: {f}" for f in fails]
    for f in failures:
        print("FAIL", f)
    print("adamw oracle:", "FAILED" if failures else "ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
