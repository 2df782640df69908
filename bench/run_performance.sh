#!/usr/bin/env bash
# Runs the benchmarks behind docs/performance.md and writes one JSON file per run to
# bench/results/ (then: /usr/bin/python3 bench/perf_table.py bench/results). Takes ~15 minutes;
# run it on a quiet machine: the FMA-peak ceiling printed with each run exposes a disturbed one.
set -euo pipefail
cd "$(dirname "$0")/.."
moe=build/release/moe
out=bench/results
mkdir -p "$out"
threads=${THREADS:-2}
seconds=${SECONDS_PER_RUN:-2}
declare -A shape=(
  [a]="1024 3584 8 2"
  [b]="2048 768 64 8"
  [mixtral]="4096 14336 8 2"
  [qwen3]="2048 768 128 8"
  [deepseek]="7168 2048 64 2"   # DeepSeek-V3 has E=256 k=8 (45 GB of f32): same rows per expert at E=64 k=2
)
for name in a b qwen3 mixtral deepseek; do
  read -r d f e k <<<"${shape[$name]}"
  for tokens in 512 1; do
    for dtype in fp32 bf16; do
      extra=()
      if [[ $dtype == fp32 && $tokens == 512 && ( $name == a || $name == b || $name == qwen3 ) ]]; then extra=(--backward); fi
      echo "== $name tokens=$tokens $dtype ${extra[*]}" >&2
      "$moe" bench layer --emb_dim "$d" --hidden_dim "$f" --num_experts "$e" --top_k "$k" --tokens "$tokens" \
        --dtype "$dtype" --threads "$threads" --seconds "$seconds" "${extra[@]}" --json >"$out/${name}_${tokens}_${dtype}.json"
    done
  done
done
