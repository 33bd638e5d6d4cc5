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
# Writes experiments/ablations/{runs,checkpoints,plots}. Re-running skips what is done.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/experiment_lib.sh"
STEPS="${ABL_STEPS:-300}"
OUT="${OUT:-$ROOT/experiments/ablations}"
runs="$OUT/runs/demo"
read -ra outer_schedule <<<"$(schedule "$STEPS")"
common=(+experiment=scaling/pretrain-e2e training.exp_dir="$OUT/runs" training.checkpoint_path="$OUT/checkpoints"
        checkpoint.save_freq=100 "${outer_schedule[@]}" training.ilr_warmup_steps="$(warmup_steps "$STEPS")")
# train NAME OVERRIDES...: one ablation run (skipped when its final checkpoint and evaluation exist)
train() {
  local name=$1
  shift
  train_once "$name" "$STEPS" "$name" "$TTT" train "${common[@]}" training.exp_name="$name" "$@"
}
train abl-base
train abl-no-meta training.train_mode=pretrain
# The normally trained network read with test-time training on: TTT without meta-learning.
if [ ! -f "$runs/abl-no-meta-ttt/eval.json" ]; then
  "$TTT" eval --checkpoint "$OUT/checkpoints/demo/abl-no-meta" training.train_mode=meta \
    training.exp_name=abl-no-meta-ttt training.exp_dir="$OUT/runs"
fi
train abl-b8 model.mini_batch_size=8
train abl-b32 model.mini_batch_size=32
train abl-window16 model.sliding_window_size=16
train abl-window64 model.sliding_window_size=64
train abl-blocks2 model.suffix_len=2
"$TTT" plot "$runs"/abl-{base,b8,b32} --output "$OUT/plots/b" --log-x
"$TTT" plot "$runs"/abl-{base,window16,window64} --output "$OUT/plots/window" --log-x
"$TTT" plot "$runs"/abl-{base,blocks2} --output "$OUT/plots/blocks" --log-x
"$TTT" plot "$runs"/abl-{base,no-meta,no-meta-ttt} --output "$OUT/plots/meta" --log-x
echo "ablations: $(( $(date +%s) - start )) s; outputs in $OUT (runs/, checkpoints/, plots/)"
