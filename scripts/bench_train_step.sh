#!/usr/bin/env bash
# Meta vs pretrain training step on the same E2E model, fp32 and bf16, and meta without chunk
# recomputation (inner_remat_freq=0); prints a JSON array.
# Extra arguments are config overrides applied to every case (e.g. backend.device=cuda).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BIN:-$ROOT/build/bench/bench_train_step}"
BASE=(+experiment=tiny/pretrain/pretrain-tiny-e2e training.seq_length=8192 model.sliding_window_size=2048
      model.mini_batch_size=512 training.global_batch_size=1)
echo "["
first=1
for dtype in fp32 bf16; do
  for mode in pretrain meta:1 meta:0; do
    [ $first -eq 1 ] || echo ","
    first=0
    remat="${mode#*:}"; [ "$remat" = "$mode" ] && remat=1
    "$BIN" "${BASE[@]}" training.train_mode="${mode%%:*}" training.inner_remat_freq="$remat" \
      model.compute_dtype=$dtype "$@"
  done
done
echo "]"
