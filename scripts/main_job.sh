#!/usr/bin/env bash
# The main job: the paper's central comparison at CPU scale. Trains the tiny TTT-E2E, SWA and
# full-attention models on the Gutenberg books (byte tokenizer) at 1K context, extends each to a
# 4K context (the sliding window stays 1K, as the official 8K window stays at 32K), evaluates them
# on the held-out books with test-time training on, and writes the comparison table and the
# loss-by-position plot. Re-running it resumes or skips what is already done.
#   PRETRAIN_STEPS (default 60), EXT_STEPS (default 20): run lengths; schedules scale to them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/experiment_lib.sh"
PRETRAIN_STEPS="${PRETRAIN_STEPS:-60}"
EXT_STEPS="${EXT_STEPS:-20}"
OUT="${OUT:-$ROOT/experiments}"

common=(training.exp_dir="$OUT/runs" training.checkpoint_path="$OUT/checkpoints" checkpoint.save_freq=25)

for variant in e2e swa fa; do
  # shellcheck disable=SC2046
  train_once pretrain-tiny-$variant "$PRETRAIN_STEPS" "pretrain-tiny-$variant ($PRETRAIN_STEPS steps at 1K context)" \
    "$TTT" train +experiment=tiny/pretrain/pretrain-tiny-$variant "${common[@]}" $(schedule "$PRETRAIN_STEPS") \
      training.ilr_warmup_steps="$(warmup_steps "$PRETRAIN_STEPS")"
done
for variant in e2e swa fa; do
  # shellcheck disable=SC2046
  train_once ext-tiny-$variant-4K "$EXT_STEPS" \
    "ext-tiny-$variant-4K ($EXT_STEPS steps at 4K context from pretrain-tiny-$variant)" \
    "$TTT" train +experiment=tiny/extension/ext-tiny-$variant-4K "${common[@]}" $(schedule "$EXT_STEPS") \
      training.resume_exp_name=pretrain-tiny-$variant training.load_part=params
done

"$TTT" plot "$OUT"/runs/demo/ext-tiny-{e2e,swa,fa}-4K --output "$OUT/plots" --log-x
echo "main job: $(( $(date +%s) - start )) s; outputs in $OUT (runs/, checkpoints/, plots/)"
