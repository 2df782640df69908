#!/usr/bin/env bash
# How `moe` degrades when another process wants a core: generation and training tokens/s on a
# quiet machine and beside one busy-looping process, under moe's wait policy (GOMP_SPINCOUNT=1000,
# set by the command itself), libgomp's default (GOMP_SPINCOUNT=300000), passive waiting, and one
# thread. Figures: docs/performance.md ("Sharing the machine").
#
#   bash bench/contention.sh [path/to/moe]     # ~5 minutes on 2 cores
set -euo pipefail
moe=${1:-build/release/moe}
tmp=$(mktemp -d)
trap 'kill ${busy:-} 2>/dev/null || true; rm -rf "$tmp"' EXIT
threads=$(nproc)

gen=(generate --untrained --emb_dim 1024 --hidden_dim 256 --num_experts 32 --top_k 2 --n_heads 16 --n_layers 12
     --max_new_tokens 60 --prompt Hello)
/usr/bin/python3 -c "
import sys; open(sys.argv[1], 'w').write(''.join(f'line {i}: a quick brown fox jumps over the lazy dog.\n' for i in range(3000)))" "$tmp/c.txt"
train=(train --data "$tmp/c.txt" --out "$tmp/run" --overwrite --steps 30 --emb_dim 128 --n_layers 2 --n_heads 4
       --hidden_dim 128 --num_experts 8 --top_k 2 --context 128 --batch 8 --seq 128 --eval_every 0 --eval_windows 1
       --no_progress)

gen_tps() { env "$@" "$moe" "${gen[@]}" 2>/dev/null | grep "tokens/sec" | cut -d' ' -f1; }
train_tps() { env "$@" "$moe" "${train[@]}" 2>/dev/null | grep -o "([0-9]* tokens/s" | tr -d '(' | cut -d' ' -f1; }

printf "%-8s %-34s %14s %14s\n" machine policy "generate tok/s" "train tok/s"
for mode in quiet busy; do
  if [[ $mode == busy ]]; then (while :; do :; done) & busy=$!; fi
  for policy in "moe default (GOMP_SPINCOUNT=1000)|--threads $threads" \
                "libgomp default (300000)|GOMP_SPINCOUNT=300000 --threads $threads" \
                "OMP_WAIT_POLICY=passive|OMP_WAIT_POLICY=passive --threads $threads" \
                "one thread|--threads 1"; do
    name=${policy%%|*}; args=(${policy#*|})
    envs=(); flags=()
    for a in "${args[@]}"; do if [[ $a == *=* ]]; then envs+=("$a"); else flags+=("$a"); fi; done
    gen+=("${flags[@]}"); train+=("${flags[@]}")
    printf "%-8s %-34s %14s %14s\n" "$mode" "$name" "$(gen_tps X=1 "${envs[@]}")" "$(train_tps X=1 "${envs[@]}")"
    gen=("${gen[@]:0:${#gen[@]}-${#flags[@]}}"); train=("${train[@]:0:${#train[@]}-${#flags[@]}}")
  done
  if [[ $mode == busy ]]; then kill $busy; unset busy; fi
done
