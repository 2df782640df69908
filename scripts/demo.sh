#!/usr/bin/env bash
# The main job: set up and build, build the labelled corpus, train a small MoE model and its dense
# baselines (equal active and equal total parameters), analyse what the experts learned, sample
# text per domain, and write out/report.html. A few minutes on 2 cores with the defaults.
#
#   bash scripts/demo.sh                      # the short run
#   bash scripts/demo.sh --steps 2000         # longer training
#   bash scripts/demo.sh --experiments all    # also balance, capacity and routers (~20 runs)
#   bash scripts/demo.sh --threads 1          # any `moe experiment` flag is passed through
set -euo pipefail
cd "$(dirname "$0")/.."

experiments="dense-vs-moe"
steps=600
extra=()
while (($#)); do
  case "$1" in
    --experiments) experiments="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    *) extra+=("$1"); shift ;;
  esac
done
if [[ $experiments == all ]]; then experiments="dense-vs-moe balance capacity routers"; fi

bash scripts/setup.sh moe_cli  # the demo needs only the `moe` command (scripts/test.sh builds the tests)
moe=build/release/moe
out=out
mkdir -p "$out"

echo; echo "== 1. corpus: en/de/es/it fortunes and C headers, labelled by domain"
"$moe" data --out "$out/data"

for e in $experiments; do
  echo; echo "== 2. experiment $e"
  "$moe" experiment "$e" --data "$out/data" --out "$out/experiments" --steps "$steps" --overwrite ${extra[@]+"${extra[@]}"}
done

ck="$out/experiments/dense-vs-moe/moe/checkpoint.safetensors"
echo; echo "== 3. what the experts learned (routing by domain, layer by layer)"
"$moe" analyze "$ck" --data "$out/data" --max_bytes 100000 --out "$out/analysis.json"

echo; echo "== 4. a sample from the trained MoE model"
"$moe" generate --checkpoint "$ck" --prompt "The " --max_new_tokens 100 --temperature 0.7 --sample_top_k 40 --seed 1

echo; echo "== 5. the estimator on a real model (the report has its numbers for the model trained)"
"$moe" estimate --config examples/configs/mixtral-8x7b.json --context 32768

echo; echo "== 6. report"
"$moe" report --out "$out/report.html" --analysis "$out/analysis.json" --experiments "$out/experiments" \
  --only "${experiments// /,}" --samples "$out/experiments/dense-vs-moe/samples.json" --checkpoint "$ck"
echo
echo "Report: $out/report.html (open it in a browser). Runs, metrics and plots: $out/experiments/"
