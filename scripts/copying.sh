#!/usr/bin/env bash
# Needle in a haystack on models that copy (issue 14's experiment 4; docs/results.md). The
# context-scaling models cannot retrieve a pass key, full attention included: byte models on
# natural text do not learn to copy from context within a CPU budget. These are the same 4-block
# byte-level models (D 128, window 32 for SWA and TTT-E2E, b = 16) trained from scratch at context
# 256 on books whose training sequences carry copied spans (training.copy_spans: six spans of 24
# bytes per sequence, each a copy of an earlier span), then:
#   - evaluated on the held-out books as they are (mean loss and loss by position);
#   - given the needle suite at 128, 256 and 512 bytes (512: twice the training length), needle
#     depths 0 to 1, 5-character keys of digits and of letters;
#   - given the needle without its second sentence (--needle-form single);
#   - given held-out passages twice against the passage followed by fresh text (ttt eval --task
#     recall): passages of 127 bytes with the copy 127 to 511 bytes back (up to twice the training
#     length; prompts up to 639 bytes), and of 64 bytes with it 64 to 191 bytes back (prompts
#     within the training length).
# Writes experiments/copying/{runs,checkpoints,plots} (plots-sSEED for another seed). Re-running
# skips what is done.
#   STEPS (default 1500): the training length; the schedule scales to it. TRIALS (default 10).
#   SEED (default 0): model and data seed; runs of another seed are named copy-MODEL-sSEED.
#   MODELS (default "fa e2e swa"): the models to train and evaluate. THREADS (default 0, LibTorch's
#   choice): intra-op threads of each command (1 when two copies of the script run side by side).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/experiment_lib.sh"
STEPS="${STEPS:-1500}"
TRIALS="${TRIALS:-10}"
OUT="${OUT:-$ROOT/experiments/copying}"
SEED="${SEED:-0}"
read -ra models <<<"${MODELS:-fa e2e swa}"
suffix=""
[ "$SEED" != 0 ] && suffix="-s$SEED"
runs="$OUT/runs/demo"
threads="backend.num_threads=${THREADS:-0}"
common=(training.exp_dir="$OUT/runs" training.checkpoint_path="$OUT/checkpoints" checkpoint.save_freq=100
        training.model_seed="$SEED" training.data_seed="$SEED" "$threads")
for v in "${models[@]}"; do
  # shellcheck disable=SC2046
  train_once copy-$v$suffix "$STEPS" "copy-$v$suffix ($STEPS steps at context 256)" \
    "$TTT" train +experiment=copy/$v training.exp_name=copy-$v$suffix "${common[@]}" $(schedule "$STEPS") \
      training.ilr_warmup_steps="$(warmup_steps "$STEPS")"
done
# The needle suite with digit keys (the paper's) and with letter keys, the needle as the classic
# test states it (the key twice) and without its second sentence.
for v in "${models[@]}"; do
  for form in repeated single; do
    for kind in digits letters; do
      dir="$runs/copy-$v$suffix/niah"
      [ "$form" = single ] && dir="$dir-single"
      [ "$kind" = letters ] && dir="$dir-letters"
      [ -f "$dir/niah.json" ] && continue
      timed "copy-$v$suffix needle suite ($form, $kind)" "$TTT" eval --task niah \
        --checkpoint "$OUT/checkpoints/demo/copy-$v$suffix" --lengths 128,256,512 --trials "$TRIALS" --key-kind "$kind" \
        --needle-form "$form" --output "$dir" "$threads"
    done
  done
done
# Recall: held-out passages read twice, against the passage followed by fresh text.
for v in "${models[@]}"; do
  for passage in 127 64; do
    gaps=0,64,128,384
    [ "$passage" = 64 ] && gaps=0,64,127
    dir="$runs/copy-$v$suffix/recall-$passage"
    [ -f "$dir/recall.json" ] && continue
    timed "copy-$v$suffix recall ($passage-byte passages)" "$TTT" eval --task recall \
      --checkpoint "$OUT/checkpoints/demo/copy-$v$suffix" --passage "$passage" --gaps "$gaps" --trials 64 --output "$dir" \
      "$threads"
  done
done
plotted=()
for v in "${models[@]}"; do plotted+=("$runs/copy-$v$suffix"); done
"$TTT" plot "${plotted[@]}" --output "$OUT/plots$suffix" --log-x
for v in "${models[@]}"; do
  name=copy-$v$suffix
  echo "$name: eval loss $(grep -o '"loss": *[0-9.]*' "$runs/$name/eval.json" | head -1 | grep -o '[0-9.]*$')"
  for passage in 127 64; do
    echo "  recall of $passage-byte passages (gap,distance,trials,first_nll,repeat_nll,control_nll,...):"
    tail -n +2 "$runs/$name/recall-$passage/recall.csv" | sed 's/^/    /'
  done
done
echo "models that copy: $(( $(date +%s) - start )) s; outputs in $OUT (runs/, checkpoints/, plots/)"
