#!/usr/bin/python3
"""moe.cpp's MoE expert block side by side with PyTorch (float32, CPU), in one run.

Run with Debian's /usr/bin/python3 (it has torch and numpy):
  /usr/bin/python3 bench/compare_torch.py --moe build/release/moe --preset a --tokens 512 --threads 2
Ours runs first (`moe bench layer --json` in a subprocess), then the PyTorch variants, one at a time:
  naive masked loop    the tutorials' `for e: mask = (ids == e).any(-1); y[mask] += w * expert_e(x[mask])`
  sorted per-expert    sort the (token, slot) pairs by expert, one F.linear per expert slice, index_add_ back
  dense                one SwiGLU FFN of width k·f over every token: the same active FLOPs, no routing
The routing has the same distribution as ours (uniform or zipf:S: expert e drawn with weight (e+1)^-s
without replacement, ids shuffled), not the same draws.
Debian's torch calls the system libblas.so.3, which is netlib's reference BLAS unless another BLAS
is installed (~3-5 GFLOP/s, one thread): against that, "ours faster by" measures the library, not
the MoE dispatch. So before running anything the script finds the BLAS torch loaded and times a
small GEMM; on the reference BLAS, or below SLOW_GEMM_GFLOPS, it refuses (exit 2) unless
--allow_slow_blas, and then marks every ratio meaningless. For a baseline closer to a pip wheel's:
  LD_LIBRARY_PATH=<dir holding OpenBLAS's libblas.so.3> OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 ...
"""
import argparse
import ctypes
import json
import math
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

PRESETS = {  # d, f, E, k
    "a": (1024, 3584, 8, 2),
    "b": (2048, 768, 64, 8),
    "mixtral": (4096, 14336, 8, 2),
    "qwen3": (2048, 768, 128, 8),
    "deepseek": (7168, 2048, 64, 2),
}
DEEPSEEK_NOTE = ("note: the real DeepSeek-V3 has E=256 k=8, whose f32 weights (45 GB) do not fit in this machine; "
                 "E=64 k=2 keeps the rows per expert (T*k/E = 16 at 512 tokens) and the per-expert GEMM shape")
GB = 1e9
# A tuned BLAS runs a 256^3 float GEMM at tens of GFLOP/s on one core of this class; netlib's
# reference Fortran loops at 3-5. Below this, torch's timings say more about its BLAS than its MoE.
SLOW_GEMM_GFLOPS = 15.0
REFERENCE_BLAS = "netlib reference BLAS"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--moe", default="build/release/moe", help="path to the moe binary")
    p.add_argument("--preset", choices=sorted(PRESETS), help="shape shortcut; explicit dims override it")
    p.add_argument("--emb_dim", type=int)
    p.add_argument("--hidden_dim", type=int)
    p.add_argument("--num_experts", type=int)
    p.add_argument("--top_k", type=int)
    p.add_argument("--tokens", type=int, default=512)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--routing", default="uniform", help="uniform or zipf:S")
    p.add_argument("--seconds", type=float, default=2.0, help="minimum time per measurement")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--allow_slow_blas", action="store_true",
                   help="run even when torch's BLAS is netlib's reference or slow (the ratios are then marked meaningless)")
    a = p.parse_args()
    dims = dict(zip(("emb_dim", "hidden_dim", "num_experts", "top_k"), PRESETS[a.preset] if a.preset else (None,) * 4))
    for name, val in dims.items():
        if getattr(a, name) is None:
            setattr(a, name, val)
        if getattr(a, name) is None:
            p.error(f"--{name} is required without --preset")
    if not 1 <= a.top_k <= a.num_experts:
        p.error("--top_k must be in [1, --num_experts]")
    if a.routing == "uniform":
        a.zipf_s = 0.0
    elif a.routing.startswith("zipf:"):
        a.zipf_s = float(a.routing[5:])
    else:
        p.error("--routing must be uniform or zipf:S")
    return a


def mem_available_gb():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 / GB
    return float("inf")


def check_memory(a):
    """Ours holds the raw and the packed weights at once while packing; torch holds one copy."""
    d, f, E, k = a.emb_dim, a.hidden_dim, a.num_experts, a.top_k
    experts, dense = 3 * E * d * f * 4 / GB, 3 * k * d * f * 4 / GB
    need = max(2 * (experts + dense) + 0.5, experts + 0.5 + 4 * a.tokens * (d + 3 * k * f) * 4 / GB)
    avail = mem_available_gb()
    if need > 0.95 * avail:
        sys.exit((DEEPSEEK_NOTE + "\n" if a.preset == "deepseek" else "") + f"refusing: this shape needs ~{need:.1f} GB (f32 expert weights {experts:.1f} GB, dense {dense:.1f} GB; "
                 f"moe.cpp holds raw + packed copies while packing), only {avail:.1f} GB available (see `free -g`)")
    return need, avail


def make_routing(T, E, k, s, seed):
    """k distinct experts per token, e drawn with weight (e+1)^-s without replacement, ids shuffled.
    Gumbel-top-k draws exactly that successive-sampling distribution."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(E)
    keys = -s * np.log(np.arange(1, E + 1)) + rng.gumbel(size=(T, E))
    pick = np.argsort(-keys, axis=1)[:, :k]
    return torch.from_numpy(perm[pick].astype(np.int64))


def time_it(fn, seconds):
    """Warm-up, then repeat until `seconds` have passed (at least 3 runs). Returns the warm-up output."""
    out = fn()
    ms = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(ms) < 3:
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1e3)
    ms.sort()
    return out, {"ms": ms[0], "median_ms": ms[len(ms) // 2], "runs": len(ms)}


def swiglu(x, g, u, dn):
    return F.linear(F.silu(F.linear(x, g)) * F.linear(x, u), dn)


def naive_masked_loop(x, ids, w, G, U, D):
    y = torch.zeros_like(x)
    for e in range(G.shape[0]):
        m = ids == e
        rows = m.any(-1)
        if rows.any():
            y[rows] += (w * m).sum(-1)[rows, None] * swiglu(x[rows], G[e], U[e], D[e])
    return y


def sorted_per_expert(x, ids, w, G, U, D):
    k = ids.shape[1]
    flat = ids.reshape(-1)
    _, order = torch.sort(flat, stable=True)
    tok = order // k
    counts = torch.bincount(flat, minlength=G.shape[0]).tolist()
    xs = x[tok]
    out = torch.empty_like(xs)
    start = 0
    for e, c in enumerate(counts):
        if c:
            out[start:start + c] = swiglu(xs[start:start + c], G[e], U[e], D[e])
            start += c
    out.mul_(w.reshape(-1)[order, None])
    return torch.zeros_like(x).index_add_(0, tok, out)


def router(x, Wr, k):
    probs = torch.softmax(F.linear(x, Wr), dim=-1)
    top_w, top_i = torch.topk(probs, k, dim=-1)
    return top_w / top_w.sum(-1, keepdim=True), top_i


def blas_libraries(maps_text):
    """Paths of the BLAS-like shared libraries in a /proc/<pid>/maps text, sorted."""
    return sorted({ln.split()[-1] for ln in maps_text.splitlines()
                   if "/" in ln and any(s in ln.rsplit("/", 1)[-1].lower() for s in ("blas", "mkl_", "blis"))})


def blas_kind(libs, has_symbol, config):
    """Which BLAS torch uses, from the libraries loaded (has_symbol(lib, name) -> bool tells which
    library exports what) and torch.__config__.show(): OpenBLAS, BLIS, MKL, ATLAS, netlib's
    reference BLAS, or "unknown (<path>)"."""
    if "BLAS_INFO=mkl" in config or any("mkl" in lib for lib in libs):
        return "MKL"
    for lib in libs:
        for symbol, kind in (("openblas_get_config", "OpenBLAS"), ("bli_info_get_version_str", "BLIS"),
                             ("ATL_xerbla", "ATLAS")):
            if has_symbol(lib, symbol):
                return kind
    # Debian's libblas3 (netlib's Fortran) lives in .../blas/; the tuned ones in their own folders.
    if any(lib.rsplit("/", 2)[-2:-1] == ["blas"] for lib in libs):
        return REFERENCE_BLAS
    return f"unknown ({', '.join(libs) or 'none loaded'})"


def blas_verdict(kind, gemm_gflops):
    """(meaningful, reason): whether timing torch against ours compares MoE code or BLAS libraries."""
    if kind == REFERENCE_BLAS:
        return False, (f"torch calls {REFERENCE_BLAS} ({gemm_gflops:.1f} GFLOP/s on a 256^3 GEMM, one thread): "
                       "a 'faster by' measures that library, not moe.cpp's MoE kernels")
    if gemm_gflops < SLOW_GEMM_GFLOPS:
        return False, (f"torch's GEMM runs at {gemm_gflops:.1f} GFLOP/s with {kind} (a tuned BLAS does over "
                       f"{SLOW_GEMM_GFLOPS:.0f}): a 'faster by' would measure the library, not the MoE kernels")
    return True, ""


def gemm_gflops(n=256, repeats=3):
    """torch's float GEMM speed: the best of a few n^3 products (~30 ms even on the reference BLAS)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best / 1e9


def has_symbol(lib, name):
    try:
        return hasattr(ctypes.CDLL(lib), name)
    except OSError:
        return False


def torch_blas(threads):
    """The BLAS torch calls, its kind and speed, and whether comparing with it means anything;
    OpenBLAS gets our thread count."""
    torch.set_num_threads(threads)
    torch.mm(torch.ones(2, 2), torch.ones(2, 2))  # loads the BLAS library if it is loaded lazily
    with open("/proc/self/maps") as f:
        libs = blas_libraries(f.read())
    kind = blas_kind(libs, has_symbol, torch.__config__.show())
    if kind == "OpenBLAS":
        for lib in libs:
            if has_symbol(lib, "openblas_set_num_threads"):
                ctypes.CDLL(lib).openblas_set_num_threads(threads)
    speed = gemm_gflops()
    meaningful, reason = blas_verdict(kind, speed)
    return {"libraries": libs, "kind": kind, "gemm_gflops": speed, "meaningful": meaningful, "reason": reason}


def run_ours(a):
    cmd = [a.moe, "bench", "layer", "--emb_dim", a.emb_dim, "--hidden_dim", a.hidden_dim, "--num_experts", a.num_experts,
           "--top_k", a.top_k, "--tokens", a.tokens, "--threads", a.threads, "--routing", a.routing,
           "--seconds", a.seconds, "--seed", a.seed, "--json"]
    cmd = [str(c) for c in cmd]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        sys.exit(f"cannot run {a.moe}: {e}")
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
    return json.loads(r.stdout)


def run_torch(a):
    d, f, E, k, T = a.emb_dim, a.hidden_dim, a.num_experts, a.top_k, a.tokens
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    sh, si = 1 / math.sqrt(d), 1 / math.sqrt(f)
    res = {}
    with torch.inference_mode():
        x = torch.randn(T, d)
        ids = make_routing(T, E, k, a.zipf_s, a.seed)
        w = torch.softmax(torch.randn(T, k), dim=-1)  # renormalised top-k weights
        counts = torch.bincount(ids.reshape(-1), minlength=E).float()
        res["routing"] = {"active_experts": int((counts > 0).sum()), "max_over_mean": float(counts.max() / counts.mean())}
        Wr = torch.randn(E, d) * sh
        _, res["router"] = time_it(lambda: router(x, Wr, k), a.seconds / 2)
        G, U, D = torch.randn(E, f, d).mul_(sh), torch.randn(E, f, d).mul_(sh), torch.randn(E, d, f).mul_(si)
        y1, res["naive"] = time_it(lambda: naive_masked_loop(x, ids, w, G, U, D), a.seconds)
        y2, res["sorted"] = time_it(lambda: sorted_per_expert(x, ids, w, G, U, D), a.seconds)
        res["rel_diff"] = float((y1 - y2).abs().max() / y1.abs().max())
        del G, U, D, y1, y2
        G, U, D = torch.randn(k * f, d).mul_(sh), torch.randn(k * f, d).mul_(sh), torch.randn(d, k * f).mul_(si)
        _, res["dense"] = time_it(lambda: swiglu(x, G, U, D), a.seconds)
    return res


def main():
    a = parse_args()
    need, avail = check_memory(a)
    blas = torch_blas(a.threads)  # before anything heavy: refuse a comparison that means nothing
    if not blas["meaningful"] and not a.allow_slow_blas:
        sys.stderr.write(f"refusing: {blas['reason']}.\nPoint torch at a tuned BLAS (LD_LIBRARY_PATH=<dir holding "
                         "OpenBLAS's libblas.so.3>, see docs/performance.md) or pass --allow_slow_blas to run anyway.\n")
        sys.exit(2)
    load = open("/proc/loadavg").read().split()[0]  # a shared machine: other work skews every figure
    d, f, E, k, T = a.emb_dim, a.hidden_dim, a.num_experts, a.top_k, a.tokens
    flops = 2.0 * T * k * 3 * d * f
    router_flops = 2.0 * T * d * E
    ours = run_ours(a)  # first, alone: its weights are freed before torch allocates its own
    tr = run_torch(a)
    gf = lambda fl, ms: fl / (ms * 1e6)
    om = ours["moe"]
    rows = [  # name, min ms, median ms, GFLOP/s, ours faster by
        ("moe.cpp (experts)", om["experts_ms"], om["experts_median_ms"], gf(flops, om["experts_ms"]), None),
        ("moe.cpp (router+experts)", om["ms"], None, om["gflops"], None),
        ("torch naive masked loop", tr["naive"]["ms"], tr["naive"]["median_ms"], gf(flops, tr["naive"]["ms"]),
         tr["naive"]["ms"] / om["experts_ms"]),
        ("torch sorted per-expert", tr["sorted"]["ms"], tr["sorted"]["median_ms"], gf(flops, tr["sorted"]["ms"]),
         tr["sorted"]["ms"] / om["experts_ms"]),
        ("torch router", tr["router"]["ms"], tr["router"]["median_ms"], gf(router_flops, tr["router"]["ms"]),
         tr["router"]["ms"] / om["router_ms"] if om["router_ms"] > 0 else None),
        ("torch dense (equal active)", tr["dense"]["ms"], tr["dense"]["median_ms"], gf(flops, tr["dense"]["ms"]), None),
        ("moe.cpp dense (equal active)", ours["dense"]["ms"], ours["dense"]["median_ms"], ours["dense"]["gflops"], None),
    ]
    numerics_ok = tr["rel_diff"] < 1e-4
    if a.json:
        out = {"config": {"preset": a.preset, "emb_dim": d, "hidden_dim": f, "num_experts": E, "top_k": k, "tokens": T,
                          "threads": a.threads, "routing": a.routing, "seconds": a.seconds, "seed": a.seed},
               "memory_gb": {"estimated_need": need, "available": avail}, "loadavg_at_start": float(load),
               "expert_flops": flops, "ours": ours,
               "torch": {"version": torch.__version__, "blas": blas,
                         "routing": tr["routing"], "naive": tr["naive"], "sorted": tr["sorted"],
                         "router": tr["router"], "dense": tr["dense"]},
               "comparison_meaningful": blas["meaningful"],
               "table": [{"variant": r[0], "ms": r[1], "median_ms": r[2], "gflops": r[3], "ours_faster_by": r[4]}
                         for r in rows],
               "numerics": {"naive_vs_sorted_rel_max_abs_diff": tr["rel_diff"], "ok": numerics_ok}}
        if a.preset == "deepseek":
            out["note"] = DEEPSEEK_NOTE
        print(json.dumps(out, indent=2))
        return
    name = f"shape {a.preset} " if a.preset else ""
    print(f"{name}(d={d} f={f} E={E} k={k}) tokens={T} threads={a.threads} routing={a.routing}")
    if a.preset == "deepseek":
        print(DEEPSEEK_NOTE)
    warning = "" if blas["meaningful"] else f"MEANINGLESS COMPARISON: {blas['reason']}."
    if warning:
        print(warning)
    print(f"{'variant':<30}{'ms':>10}{'median':>10}{'GFLOP/s':>10}   ours faster by" + ("" if blas["meaningful"] else " (meaningless)"))
    for n, ms, med, g, ratio in rows:
        med_s = f"{med:10.3f}" if med is not None else f"{'n/a':>10}"
        print(f"{n:<30}{ms:10.3f}{med_s}{g:10.1f}   {'' if ratio is None else f'{ratio:.3g}' + ('' if blas['meaningful'] else '*')}")
    c = ours["ceilings"]
    print(f"ceilings: FMA {c['fma_gflops']:.0f} GFLOP/s, triad {c['triad_gbps']:.1f} GB/s; load average at start {load}")
    ro, rt = ours["routing"], tr["routing"]
    print(f"routing: ours {ro['active_experts']} active experts, max/mean {ro['max_over_mean']:.2f}; "
          f"torch {rt['active_experts']} active, max/mean {rt['max_over_mean']:.2f} (same distribution, other draws)")
    print(f"torch {torch.__version__} BLAS: {', '.join(blas['libraries']) or 'built in'} ({blas['kind']}, "
          f"{blas['gemm_gflops']:.1f} GFLOP/s on a 256^3 GEMM)")
    if warning:
        print("* " + warning)
    print(f"numerics: naive vs sorted max|diff|/max|y| = {tr['rel_diff']:.2e} ({'ok' if numerics_ok else 'FAIL'} < 1e-4)")


if __name__ == "__main__":
    main()
