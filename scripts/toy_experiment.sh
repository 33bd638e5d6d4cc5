#!/usr/bin/env bash
# The toy experiment of the paper's figure 2 at CPU scale: 2-block byte-level models at context
# 128 on the Gutenberg books, loss at each token position for
#   - no attention (a window of 1: each token sees only itself), trained normally;
#   - TTT without meta-learning: that same model evaluated with test-time training on (dynamic
#     evaluation), with inner steps every token (b = 1) and every 16 tokens;
#   - TTT-E2E, meta-learned with b = 1 (inner lr 1 and 0.1) and with b = 16, no attention;
#   - full attention.
# Writes the runs, their evaluations and experiments/toy/plots/loss_by_position.svg. Re-running
# skips what is done.   STEPS (default 300): training steps of every model.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/experiment_lib.sh"
STEPS="${STEPS:-300}"
OUT="${OUT:-$ROOT/experiments/toy}"
read -ra outer_schedule <<<"$(schedule "$STEPS")"
common=(training.exp_dir="$OUT/runs" training.checkpoint_path="$OUT/checkpoints" checkpoint.save_freq=100
        "${outer_schedule[@]}" training.ilr_warmup_steps="$(warmup_steps "$STEPS")")
# train_toy NAME OVERRIDES...: trains run NAME for STEPS steps unless it is done.
train_toy() {
  local name=$1
  shift
  train_once "$name" "$STEPS" "$name ($STEPS steps)" "$TTT" train "$@" "${common[@]}"
}
for variant in noattn fa e2e-b16 e2e-b1; do
  train_toy "toy-$variant" +experiment=toy/toy-$variant
done
# b = 1 with the inner lr at 0.1: at 1 its meta-training is unstable at this scale (outer gradient
# norms in the thousands once the inner lr has warmed up; docs/results.md).
train_toy toy-e2e-b1-lr0.1 +experiment=toy/toy-e2e-b1 training.exp_name=toy-e2e-b1-lr0.1 \
  training.optimizer_inner.lr=0.1
# TTT without meta-learning: the no-attention model read with inner steps on its last block's prime MLP.
for b in 1 16; do
  if [ ! -f "$OUT/runs/demo/toy-naive-ttt-b$b/eval.json" ]; then
    "$TTT" eval --checkpoint "$OUT/checkpoints/demo/toy-noattn" training.train_mode=meta \
      model.mini_batch_size=$b training.exp_name=toy-naive-ttt-b$b training.exp_dir="$OUT/runs"
  fi
done
"$TTT" plot "$OUT"/runs/demo/toy-{noattn,naive-ttt-b1,naive-ttt-b16,e2e-b16,e2e-b1,e2e-b1-lr0.1,fa} --output "$OUT/plots" \
  --bins-per-octave 0
echo "toy experiment: $(( $(date +%s) - start )) s; outputs in $OUT (runs/, checkpoints/, plots/)"
