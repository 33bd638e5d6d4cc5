#!/usr/bin/env bash
# Context scaling at CPU scale (issue 14's experiment 2; docs/results.md): TTT-E2E, sliding-window
# attention (SWA) and full attention (FA), 4-block byte-level models on the Gutenberg books.
#   1. pretrained at context 128, four times the 32-byte window;
#   2. extended to context 512, sixteen times the window (the paper's 128K over 8K);
#   3. evaluated at 128, 256 and 512 (mean loss per context length, loss by position) with
#      test-time training on, and on the needle-in-a-haystack suite.
# Writes experiments/scaling/{runs,checkpoints,plots}. Re-running skips what is done.
#   PRETRAIN_STEPS (default 1000), EXT_STEPS (default 150): run lengths; schedules scale to them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/experiment_lib.sh"
PRETRAIN_STEPS="${PRETRAIN_STEPS:-1000}"
EXT_STEPS="${EXT_STEPS:-150}"
OUT="${OUT:-$ROOT/experiments/scaling}"
runs="$OUT/runs/demo"
common=(training.exp_dir="$OUT/runs" training.checkpoint_path="$OUT/checkpoints" checkpoint.save_freq=100)
for v in e2e swa fa; do
  # shellcheck disable=SC2046
  train_once scaling-pretrain-$v "$PRETRAIN_STEPS" "scaling-pretrain-$v ($PRETRAIN_STEPS steps at context 128)" \
    "$TTT" train +experiment=scaling/pretrain-$v "${common[@]}" $(schedule "$PRETRAIN_STEPS") \
      training.ilr_warmup_steps="$(warmup_steps "$PRETRAIN_STEPS")"
done
for v in e2e swa fa; do
  # shellcheck disable=SC2046
  train_once scaling-ext-$v "$EXT_STEPS" "scaling-ext-$v ($EXT_STEPS steps at context 512)" \
    "$TTT" train +experiment=scaling/ext-$v "${common[@]}" $(schedule "$EXT_STEPS") \
      training.resume_exp_name=scaling-pretrain-$v training.load_part=params
done
# The extended models read at shorter contexts: mean loss per context length.
for v in e2e swa fa; do
  for len in 128 256; do
    name=scaling-ext-$v-at-$len
    [ -f "$runs/$name/eval.json" ] && continue
    # SWA and FA read a sequence as one chunk; E2E keeps its inner-step size.
    chunk=(); [ "$v" = e2e ] || chunk=("model.mini_batch_size=$len")
    timed "$name" "$TTT" eval --checkpoint "$OUT/checkpoints/demo/scaling-ext-$v" training.seq_length=$len \
      "${chunk[@]}" training.exp_name=$name training.exp_dir="$OUT/runs"
  done
done
# Pass-key retrieval with the needle inside (depth 1) and outside the window, at 128, 256 and 512.
for v in e2e swa fa; do
  [ -f "$runs/scaling-ext-$v/niah/niah.json" ] && continue
  timed "scaling-ext-$v needle suite" "$TTT" eval --task niah --checkpoint "$OUT/checkpoints/demo/scaling-ext-$v" \
    --lengths 128 256 512 --key-digits 3 --trials 8 --output "$runs/scaling-ext-$v/niah"
done
"$TTT" plot "$runs"/scaling-ext-{e2e,swa,fa} --output "$OUT/plots" --log-x
"$TTT" plot "$runs"/scaling-pretrain-{e2e,swa,fa} --output "$OUT/plots/pretrain" --log-x
for v in e2e swa fa; do
  printf "scaling-ext-%s mean loss at 128 / 256 / 512:" "$v"
  for f in "$runs/scaling-ext-$v-at-128" "$runs/scaling-ext-$v-at-256" "$runs/scaling-ext-$v"; do
    printf " %s" "$(grep -o '"loss": *[0-9.]*' "$f/eval.json" | head -1 | grep -o '[0-9.]*$')"
  done
  echo
done
echo "context scaling: $(( $(date +%s) - start )) s; outputs in $OUT (runs/, checkpoints/, plots/)"
