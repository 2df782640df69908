#!/usr/bin/python3
"""Markdown tables from the JSON files bench/run_performance.sh writes (one per run)."""
import glob
import json
import os
import sys

ORDER = ["a", "b", "qwen3", "mixtral", "deepseek"]
LABEL = {"a": "shape a", "b": "shape b", "qwen3": "Qwen3-30B-A3B", "mixtral": "Mixtral 8x7B",
         "deepseek": "DeepSeek-V3 (E=64, k=2)*"}


def main(folder):
    runs = {}
    for path in glob.glob(os.path.join(folder, "*.json")):
        name, tokens, dtype = os.path.basename(path)[:-5].rsplit("_", 2)
        with open(path) as f:
            text = f.read()
        if text.strip():  # a run still in progress leaves an empty file
            runs[(name, int(tokens), dtype)] = json.loads(text)
    print("| layer | d, f, E, k | tokens | weights | MoE ms | GFLOP/s | % of peak | weights GB/s | % of triad | dense ms | MoE / dense | peak, triad (same run) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in ORDER:
        for tokens in (512, 1):
            for dtype in ("fp32", "bf16"):
                j = runs.get((name, tokens, dtype))
                if not j:
                    continue
                c, m, d, ce = j["config"], j["moe"], j["dense"], j["ceilings"]
                print(f"| {LABEL[name]} | {c['emb_dim']}, {c['hidden_dim']}, {c['num_experts']}, {c['top_k']} | {tokens} | {dtype} "
                      f"| {m['ms']:.2f} | {m['gflops']:.0f} | {m['pct_fma_peak']:.0f} % | {m['weight_gbps']:.1f} | {m['pct_triad']:.0f} % "
                      f"| {d['ms']:.2f} | {j['moe_over_dense']:.2f} | {ce['fma_gflops']:.0f} GFLOP/s, {ce['triad_gbps']:.1f} GB/s |")
    print()
    print("| layer (fp32, 512 tokens) | forward ms | training forward ms | backward ms | backward / forward |")
    print("|---|---|---|---|---|")
    for name in ORDER:
        j = runs.get((name, 512, "fp32"))
        if j and j.get("backward"):
            b = j["backward"]
            print(f"| {LABEL[name]} | {j['moe']['experts_ms']:.1f} | {b['train_forward_ms']:.1f} | {b['backward_ms']:.1f} | {b['backward_over_forward']:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/results")
