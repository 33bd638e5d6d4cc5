#!/usr/bin/env bash
# Training step of the tiny TTT-layer models beside the tiny FA, SWA and E2E ones, at the TTT-layer
# experiments' context (2048); TTT-Linear and TTT-MLP also without mini-batch recomputation.
# Prints a JSON array (one bench_train_step object per case, plus its "case" label).
# Extra arguments are config overrides applied to every case (e.g. backend.device=cuda).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BIN:-$ROOT/build/bench/bench_train_step}"
COMMON=(training.seq_length=2048 training.global_batch_size=4 --steps 2 --warmup 1 --peak-size 0)
CASES=(
  "fa|+experiment=tiny/pretrain/pretrain-tiny-fa model.mini_batch_size=2048"
  "swa|+experiment=tiny/pretrain/pretrain-tiny-swa model.mini_batch_size=2048"
  "e2e|+experiment=tiny/pretrain/pretrain-tiny-e2e"
  "transformer (ttt-layers)|+experiment=ttt-layers/tiny/transformer model.mini_batch_size=2048"
  "ttt_linear|+experiment=ttt-layers/tiny/ttt_linear"
  "ttt_linear, no remat|+experiment=ttt-layers/tiny/ttt_linear model.remat_mini_batch_group_size=0"
  "ttt_mlp|+experiment=ttt-layers/tiny/ttt_mlp"
  "ttt_mlp, no remat|+experiment=ttt-layers/tiny/ttt_mlp model.remat_mini_batch_group_size=0"
)
echo "["
first=1
for entry in "${CASES[@]}"; do
  label="${entry%%|*}"
  read -r -a args <<< "${entry#*|}"
  [ $first -eq 1 ] || echo ","
  first=0
  out="$("$BIN" "${args[@]}" "${COMMON[@]}" "$@")"
  printf '{"case": "%s", "result": %s}' "$label" "$out"
done
echo
echo "]"
