#!/usr/bin/env bash
# The main job: set up, build, and run the estimator on the shipped examples.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
moe=build/release/moe
mkdir -p out
echo
"$moe" estimate --emb_dim 7168 --hidden_dim 14336 --ffn_type swiglu --num_experts 8 --top_k 2 --match_dense
"$moe" estimate --emb_dim 7168 --hidden_dim 28672 --top_k 8 --plot out/estimate_sweep.svg --csv out/estimate_sweep.csv
echo
"$moe" estimate --config examples/configs/mixtral-8x7b.json --context 32768
echo
echo "Plot: out/estimate_sweep.svg (open it in a browser); data: out/estimate_sweep.csv"
