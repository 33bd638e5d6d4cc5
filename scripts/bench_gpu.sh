#!/usr/bin/env bash
# The GPU measurements of docs/gpu.md on one CUDA device, one JSON object per line:
#  - one training step of the 125M and 1B E2E (meta) and FA (pretrain) configs at 8K with
#    BATCH sequences (default 8, the official per-GPU batch): tokens/s, MFU against the bf16
#    matrix-product peak measured in the same process, peak device memory;
#  - the largest per-GPU batch of each 125M config that a step fits in (doubling from 1);
#  - prefill s/1K and decode ms/token from 8K to 128K for 125M and 1B, FA and E2E (random weights).
# Extra arguments are config overrides applied to every training case.
#   BUILD=build-cuda bash scripts/bench_gpu.sh [overrides...] > gpu.jsonl
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$ROOT/build-cuda}"
STEP="$BUILD/bench/bench_train_step"
TTT="$BUILD/ttt"
BATCH="${BATCH:-8}"
MAX_BATCH="${MAX_BATCH:-256}"
log() { printf '[bench_gpu] %s\n' "$*" >&2; }
# Libraries unpacked by scripts/cuda_build.sh from .deps (their own dependencies are not on the
# programs' run paths).
if [ -d "$ROOT/.deps/prefix/usr/lib/x86_64-linux-gnu" ]; then
  export LD_LIBRARY_PATH="$ROOT/.deps/prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

for size in 125m 1b; do
  for variant in e2e fa; do
    log "$size $variant: training step at 8K, batch $BATCH"
    "$STEP" --steps 3 --warmup 1 +experiment=$size/pretrain/pretrain-$size-$variant backend=gpu \
      training.global_batch_size="$BATCH" "$@" || log "$size $variant failed at batch $BATCH"
  done
done

for variant in e2e fa; do
  batch=1 fits=0
  while [ "$batch" -le "$MAX_BATCH" ]; do
    log "125m $variant: batch $batch"
    "$STEP" --steps 1 --warmup 0 --peak-size 0 +experiment=125m/pretrain/pretrain-125m-$variant backend=gpu \
      training.global_batch_size="$batch" "$@" >/dev/null 2>&1 || break
    fits=$batch
    batch=$((batch * 2))
  done
  printf '{"benchmark": "largest_batch", "model": "125m", "variant": "%s", "seq_length": 8192, "largest_batch": %d}\n' \
    "$variant" "$fits"
done

for size in 125m 1b; do
  log "$size: prefill and decode, 8K to 128K"
  "$TTT" bench --size "$size" --variants fa,e2e --min-context 8192 --max-context 131072 --json backend=gpu ||
    log "$size latency benchmark failed"
done
