#!/usr/bin/python3
"""GPT training throughput: moe.cpp's `moe train` side by side with PyTorch (float32, CPU), one run.

Run with Debian's /usr/bin/python3 (it has torch and numpy), with OpenBLAS for a fair baseline:
  LD_LIBRARY_PATH=/tmp/obl/root/usr/lib/x86_64-linux-gnu/openblas-pthread OPENBLAS_CORETYPE=SkylakeX \\
  /usr/bin/python3 bench/compare_train.py --emb_dim 128 --n_layers 4 --n_heads 4 --hidden_dim 256 \\
      --num_experts 8 --top_k 2 --batch 16 --seq 128 --threads 2

Ours runs first: `moe train` with the model flags given, --steps = warmup + steps, on a byte corpus
(--data, or a generated file of random bytes); its tokens/s is the tokens of the measured steps over
the sum of their step_ms from metrics.jsonl (the first --warmup steps excluded; validation and the
checkpoint are outside step_ms). PyTorch then trains the SAME model: the config and the weights are
read from ours' checkpoint, the forward is tests/oracle/gpt_torch.py (the oracle's model, here in
float32, MoE as the Hugging Face eager loop over experts), loss.backward(), clip_grad_norm_(1.0) and
torch.optim.AdamW with two parameter groups (matrices decayed, norms and biases not), on random byte
windows of the same corpus; timed over --steps after --warmup steps. Both use --threads threads.
"""
import argparse
import ctypes
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "oracle"))
import gpt_torch  # noqa: E402  (sets float64 as the default dtype: reset below)

torch.set_default_dtype(torch.float32)

MODEL_FLAGS = ("emb_dim", "n_layers", "n_heads", "hidden_dim", "num_experts", "top_k", "router")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--moe", default="build/release/moe", help="path to the moe binary")
    p.add_argument("--emb_dim", type=int, default=128)
    p.add_argument("--n_layers", type=int, default=4)
    p.add_argument("--n_heads", type=int, default=4)
    p.add_argument("--hidden_dim", type=int, default=512, help="dense FFN width, or each expert's width")
    p.add_argument("--num_experts", type=int, default=0, help="0 = dense model")
    p.add_argument("--top_k", type=int, default=2)
    p.add_argument("--router", default="softmax", help="softmax, switch, sigmoid, noisy (see `moe train --help`)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=10, help="measured steps (each side)")
    p.add_argument("--warmup", type=int, default=3, help="steps before the measurement (each side)")
    p.add_argument("--data", help="corpus file (default: 4 MB of seeded random bytes in a temp dir)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--skip_torch", action="store_true", help="ours only")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    return p.parse_args()


def torch_blas(threads):
    """The BLAS library torch is linked with; give OpenBLAS our thread count."""
    libs = {ln.split()[-1] for ln in open("/proc/self/maps") if any(s in ln for s in ("blas", "mkl_", "blis"))}
    lib = sorted(libs)[0] if libs else "built-in (MKL or none)"
    if "openblas" in lib:
        ctypes.CDLL(lib).openblas_set_num_threads(threads)
        return lib, "OpenBLAS"
    return lib, "netlib reference BLAS: one thread, ~3 GFLOP/s" if "/blas/libblas" in lib else lib


def read_checkpoint(path):
    """({name: float32 tensor}, model config) of a moe.cpp checkpoint (parameters only)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    cfg = json.loads(header["__metadata__"]["moe.config"])["model"]
    W = {}
    for name, e in header.items():
        if name == "__metadata__" or name.startswith("adam."):
            continue
        assert e["dtype"] == "F32", (name, e["dtype"])
        b, end = e["data_offsets"]
        a = np.frombuffer(raw[8 + n + b: 8 + n + end], dtype="<f4").reshape(e["shape"]).copy()
        W[name] = torch.from_numpy(a)
    return W, cfg


def run_ours(a, data, out_dir):
    cmd = [a.moe, "train", "--data", data, "--out", out_dir, "--steps", a.warmup + a.steps, "--batch", a.batch,
           "--seq", a.seq, "--threads", a.threads, "--eval_every", 0, "--eval_windows", 1, "--seed", a.seed,
           "--no_progress", "--context", max(256, a.seq)]
    for f in MODEL_FLAGS:
        cmd += ["--" + f, getattr(a, f)]
    cmd = [str(c) for c in cmd]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
    recs = [json.loads(ln) for ln in open(os.path.join(out_dir, "metrics.jsonl"))]
    recs = [x for x in recs if "step_ms" in x][a.warmup:]
    ms = [x["step_ms"] for x in recs]
    tokens = a.batch * a.seq * len(ms)
    return {"cmd": " ".join(cmd), "tokens_per_s": tokens / (sum(ms) / 1e3), "step_ms_median": sorted(ms)[len(ms) // 2],
            "step_ms_min": min(ms), "steps": len(ms), "final_loss": recs[-1]["loss"]}


def run_torch(a, data, ckpt):
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    blas, blas_kind = torch_blas(a.threads)
    W, cfg = read_checkpoint(ckpt)
    for name, t in W.items():
        t.requires_grad_(not name.endswith("router.selection_bias"))
    params = [t for t in W.values() if t.requires_grad]
    decay = [t for t in params if t.dim() >= 2]
    no_decay = [t for t in params if t.dim() < 2]
    # moe train's defaults: lr 3e-3 (the schedule does not change the cost), betas (0.9, 0.95), wd 0.1.
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=3e-3, betas=(0.9, 0.95), eps=1e-8)
    corpus = torch.from_numpy(np.fromfile(data, dtype=np.uint8).astype(np.int64))
    gen = torch.Generator().manual_seed(a.seed)

    def step():
        starts = torch.randint(0, corpus.numel() - a.seq - 1, (a.batch,), generator=gen)
        win = torch.stack([corpus[s:s + a.seq + 1] for s in starts.tolist()])
        out = gpt_torch.gpt_forward(cfg, W, win[:, :-1], win[:, 1:], training=True)
        out["total"].backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(out["total"])

    for _ in range(a.warmup):
        step()
    ms = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        loss = step()
        ms.append((time.perf_counter() - t0) * 1e3)
    tokens = a.batch * a.seq * len(ms)
    return {"tokens_per_s": tokens / (sum(ms) / 1e3), "step_ms_median": sorted(ms)[len(ms) // 2],
            "step_ms_min": min(ms), "steps": len(ms), "final_loss": loss, "version": torch.__version__,
            "blas": blas, "blas_kind": blas_kind, "logits_dtype": str(torch.get_default_dtype())}


def main():
    a = parse_args()
    load = open("/proc/loadavg").read().split()[0]  # a shared machine: other work skews every figure
    with tempfile.TemporaryDirectory(prefix="compare_train_") as tmp:
        data = a.data
        if not data:
            data = os.path.join(tmp, "corpus.bin")
            np.random.default_rng(a.seed).integers(0, 256, size=4 << 20, dtype=np.uint8).tofile(data)
        ours = run_ours(a, data, os.path.join(tmp, "ours"))
        tr = None if a.skip_torch else run_torch(a, data, os.path.join(tmp, "ours", "checkpoint.safetensors"))
    ratio = tr and ours["tokens_per_s"] / tr["tokens_per_s"]
    shape = {f: getattr(a, f) for f in MODEL_FLAGS + ("batch", "seq", "threads", "steps", "warmup")}
    if a.json:
        print(json.dumps({"config": shape, "loadavg_at_start": float(load), "ours": ours, "torch": tr,
                          "ours_over_torch": ratio}, indent=2))
        return
    kind = f"MoE {a.num_experts} x {a.hidden_dim}, top-{a.top_k} {a.router}" if a.num_experts else f"dense {a.hidden_dim}"
    print(f"d={a.emb_dim} L={a.n_layers} H={a.n_heads} {kind}; batch {a.batch} x seq {a.seq}; threads {a.threads}; "
          f"{a.steps} steps after {a.warmup} warmup")
    print(f"{'':<10}{'tokens/s':>12}{'median ms':>12}{'min ms':>10}{'loss':>9}")
    rows = [("moe.cpp", ours)] + ([("torch", tr)] if tr else [])
    for n, r in rows:
        print(f"{n:<10}{r['tokens_per_s']:12.0f}{r['step_ms_median']:12.1f}{r['step_ms_min']:10.1f}{r['final_loss']:9.4f}")
    if tr:
        print(f"ours / torch: {ratio:.2f}x   (torch {tr['version']}, BLAS {tr['blas']} ({tr['blas_kind']}); "
              f"load average at start {load})")


if __name__ == "__main__":
    main()
