#!/usr/bin/env python3
"""Two `moe` binaries on the same `moe bench layer` runs, interleaved, best of N each.

    python3 bench/side_by_side.py OLD_MOE NEW_MOE [--repeat 2] [--seconds 1] [--backward]

For shapes a and b, fp32 and bf16, 512 and 1 tokens: MoE ms (router + experts), experts ms,
dense ms, MoE / dense and the ceilings of each run, then new / old. Runs alternate old, new, old,
new so a disturbance of the shared machine hits both; the minimum over repeats is kept.
Standard library only (any python3).
"""
import argparse
import json
import subprocess

SHAPES = {"a": (1024, 3584, 8, 2), "b": (2048, 768, 64, 8)}


def run(moe, shape, tokens, dtype, seconds, backward):
    d, f, e, k = SHAPES[shape]
    cmd = [moe, "bench", "layer", "--emb_dim", str(d), "--hidden_dim", str(f), "--num_experts", str(e),
           "--top_k", str(k), "--tokens", str(tokens), "--dtype", dtype, "--threads", "2",
           "--seconds", str(seconds), "--json"]
    if backward:
        cmd.append("--backward")
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def best(runs, key):
    return min(r[key] for r in runs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--backward", action="store_true", help="also the training forward + backward (fp32, 512 tokens)")
    a = ap.parse_args()
    print("| shape | tokens | dtype | old MoE ms | new MoE ms | new/old | old experts ms | new experts ms | "
          "old MoE/dense | new MoE/dense | peak GFLOP/s, triad GB/s (old; new) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for shape in SHAPES:
        for tokens in (512, 1):
            for dtype in ("fp32", "bf16"):
                bwd = a.backward and tokens == 512 and dtype == "fp32"
                res = {"old": [], "new": []}
                for _ in range(a.repeat):
                    for which in ("old", "new"):
                        res[which].append(run(getattr(a, which), shape, tokens, dtype, a.seconds, bwd))
                row = {}
                for which, runs in res.items():
                    row[which] = {
                        "moe": min(r["moe"]["ms"] for r in runs),
                        "experts": min(r["moe"]["experts_ms"] for r in runs),
                        "ratio": min(r["moe_over_dense"] for r in runs),
                        "peak": max(r["ceilings"]["fma_gflops"] for r in runs),
                        "triad": max(r["ceilings"]["triad_gbps"] for r in runs),
                        "bwd": min(r["backward"]["backward_ms"] for r in runs) if bwd else None,
                        "pack": max(r["moe"].get("pack_gbps", 0) for r in runs),
                    }
                o, n = row["old"], row["new"]
                print(f"| {shape} | {tokens} | {dtype} | {o['moe']:.3f} | {n['moe']:.3f} | {n['moe'] / o['moe']:.2f} | "
                      f"{o['experts']:.3f} | {n['experts']:.3f} | {o['ratio']:.2f} | {n['ratio']:.2f} | "
                      f"{o['peak']:.0f}, {o['triad']:.1f}; {n['peak']:.0f}, {n['triad']:.1f} |", flush=True)
                if bwd:
                    print(f"|   backward | {tokens} | {dtype} | {o['bwd']:.1f} | {n['bwd']:.1f} | {n['bwd'] / o['bwd']:.2f} "
                          f"| | | | | |", flush=True)
                print(f"|   packing GB/s (new) | | {dtype} | | {n['pack']:.2f} | | | | | | |", flush=True)


if __name__ == "__main__":
    main()
