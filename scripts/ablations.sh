#!/usr/bin/env bash
# Ablations at CPU scale (issue 14's experiment 3; docs/results.md): the context-scaling E2E model
# (configs/experiment/scaling/pretrain-e2e.yaml: 4 blocks, context 128, window 32, b 16, the last
# block's prime MLP updated) pretrained for ABL_STEPS steps, with one setting changed at a time:
#   - mini-batch size b: 8, 16, 32;
#   - window: 16, 32, 64;
#   - blocks updated in the inner loop: 1 (a quarter), 2 (half);
#   - meta-learning off: the same network trained normally (pretrain mode), evaluated with
#     test-time training on (and off, for reference).
# Every model is evaluated on the held-out books at context 128 with test-time training on.
# Writes experiments/ablations/{runs,checkpoints,plots} (plots-sSEED for another seed). Re-running
# skips what is done.
#   ABL_STEPS (default 300): the length of each run; the schedule scales to it.
#   SEED (default 0): model and data seed; runs of another seed are named abl-NAME-sSEED.
#   THREADS (default 0, LibTorch's choice): intra-op threads of each command.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/experiment_lib.sh"
STEPS="${ABL_STEPS:-300}"
OUT="${OUT:-$ROOT/experiments/ablations}"
SEED="${SEED:-0}"
suffix=""
[ "$SEED" != 0 ] && suffix="-s$SEED"
runs="$OUT/runs/demo"
threads="backend.num_threads=${THREADS:-0}"
read -ra outer_schedule <<<"$(schedule "$STEPS")"
common=(+experiment=scaling/pretrain-e2e training.exp_dir="$OUT/runs" training.checkpoint_path="$OUT/checkpoints"
        checkpoint.save_freq=100 "${outer_schedule[@]}" training.ilr_warmup_steps="$(warmup_steps "$STEPS")"
        training.model_seed="$SEED" training.data_seed="$SEED" "$threads")
# train NAME OVERRIDES...: one ablation run, abl-NAME of this seed (skipped when its final
# checkpoint and evaluation exist)
train() {
  local name=abl-$1$suffix
  shift
  train_once "$name" "$STEPS" "$name" "$TTT" train "${common[@]}" training.exp_name="$name" "$@"
}
train base
train no-meta training.train_mode=pretrain
# The normally trained network read with test-time training on: TTT without meta-learning.
if [ ! -f "$runs/abl-no-meta-ttt$suffix/eval.json" ]; then
  "$TTT" eval --checkpoint "$OUT/checkpoints/demo/abl-no-meta$suffix" training.train_mode=meta \
    training.exp_name="abl-no-meta-ttt$suffix" training.exp_dir="$OUT/runs" "$threads"
fi
train b8 model.mini_batch_size=8
train b32 model.mini_batch_size=32
train window16 model.sliding_window_size=16
train window64 model.sliding_window_size=64
train blocks2 model.suffix_len=2
# plot DIR NAME...: the runs abl-NAME of this seed on one set of plots under plots[-sSEED]/DIR.
plot() {
  local dir=$1 name dirs=()
  shift
  for name in "$@"; do dirs+=("$runs/abl-$name$suffix"); done
  "$TTT" plot "${dirs[@]}" --output "$OUT/plots$suffix/$dir" --log-x
}
plot b base b8 b32
plot window base window16 window64
plot blocks base blocks2
plot meta base no-meta no-meta-ttt
echo "ablations: $(( $(date +%s) - start )) s; outputs in $OUT (runs/, checkpoints/, plots/)"
