#!/usr/bin/env bash
# The toy experiment of the paper's figure 2 at CPU scale: 2-block byte-level models at context
# 128 on the Gutenberg books, loss at each token position for
#   - no attention (a window of 1: each token sees only itself), trained normally;
#   - TTT without meta-learning: that same model evaluated with test-time training on (dynamic
#     evaluation), with inner steps every token (b = 1) and every 16 tokens;
#   - TTT-E2E, meta-learned with b = 1 and with b = 16, no attention;
#   - full attention.
# Writes the runs, their evaluations and experiments/toy/plots/loss_by_position.svg. Re-running
# skips what is done.   STEPS (default 300): training steps of every model.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/experiment_lib.sh"
STEPS="${STEPS:-300}"
OUT="${OUT:-$ROOT/experiments/toy}"
warmup=$(warmup_steps "$STEPS")
common=(training.exp_dir="$OUT/runs" training.checkpoint_path="$OUT/checkpoints" checkpoint.save_freq=100
        training.total_steps="$STEPS" training.optimizer_outer.lr_decay_steps="$STEPS"
        training.optimizer_outer.lr_warmup_steps="$warmup" training.ilr_warmup_steps="$warmup")
for variant in noattn fa e2e-b16 e2e-b1; do
  if done_already "toy-$variant" "$STEPS"; then echo "== toy-$variant: done"; continue; fi
  echo "== toy-$variant: $STEPS steps"
  timed "toy-$variant" "$TTT" train +experiment=toy/toy-$variant "${common[@]}"
done
# TTT without meta-learning: the no-attention model read with inner steps on its last block's prime MLP.
for b in 1 16; do
  if [ ! -f "$OUT/runs/demo/toy-naive-ttt-b$b/eval.json" ]; then
    "$TTT" eval --checkpoint "$OUT/checkpoints/demo/toy-noattn" training.train_mode=meta \
      model.mini_batch_size=$b training.exp_name=toy-naive-ttt-b$b training.exp_dir="$OUT/runs"
  fi
done
"$TTT" plot "$OUT"/runs/demo/toy-{noattn,naive-ttt-b1,naive-ttt-b16,e2e-b16,e2e-b1,fa} --output "$OUT/plots" \
  --bins-per-octave 0
echo "toy experiment: $(( $(date +%s) - start )) s; outputs in $OUT (runs/, checkpoints/, plots/)"
