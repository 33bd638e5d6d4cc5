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
#     recall): passages of 127 bytes with the copy 127 to 511 bytes back (prompts up to twice the
#     training length), and of 64 bytes with it 64 to 191 bytes back (within the training length).
# Writes experiments/copying/{runs,checkpoints,plots}. Re-running skips what is done.
#   STEPS (default 1500): the training length; the schedule scales to it. TRIALS (default 10).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/experiment_lib.sh"
STEPS="${STEPS:-1500}"
TRIALS="${TRIALS:-10}"
OUT="${OUT:-$ROOT/experiments/copying}"
runs="$OUT/runs/demo"
common=(training.exp_dir="$OUT/runs" training.checkpoint_path="$OUT/checkpoints" checkpoint.save_freq=100)
for v in fa e2e swa; do
  # shellcheck disable=SC2046
  train_once copy-$v "$STEPS" "copy-$v ($STEPS steps at context 256)" \
    "$TTT" train +experiment=copy/$v "${common[@]}" $(schedule "$STEPS") \
      training.ilr_warmup_steps="$(warmup_steps "$STEPS")"
done
# The needle suite with digit keys (the paper's) and with letter keys, the needle as the classic
# test states it (the key twice) and without its second sentence.
for v in fa swa e2e; do
  for form in repeated single; do
    for kind in digits letters; do
      dir="$runs/copy-$v/niah"
      [ "$form" = single ] && dir="$dir-single"
      [ "$kind" = letters ] && dir="$dir-letters"
      [ -f "$dir/niah.json" ] && continue
      timed "copy-$v needle suite ($form, $kind)" "$TTT" eval --task niah \
        --checkpoint "$OUT/checkpoints/demo/copy-$v" --lengths 128,256,512 --trials "$TRIALS" --key-kind "$kind" \
        --needle-form "$form" --output "$dir"
    done
  done
done
# Recall: held-out passages read twice, against the passage followed by fresh text.
for v in fa swa e2e; do
  for passage in 127 64; do
    gaps=0,64,128,384
    [ "$passage" = 64 ] && gaps=0,64,127
    dir="$runs/copy-$v/recall-$passage"
    [ -f "$dir/recall.json" ] && continue
    timed "copy-$v recall ($passage-byte passages)" "$TTT" eval --task recall \
      --checkpoint "$OUT/checkpoints/demo/copy-$v" --passage "$passage" --gaps "$gaps" --trials 64 --output "$dir"
  done
done
"$TTT" plot "$runs"/copy-{e2e,swa,fa} --output "$OUT/plots" --log-x
for v in e2e swa fa; do
  echo "copy-$v: eval loss $(grep -o '"loss": *[0-9.]*' "$runs/copy-$v/eval.json" | head -1 | grep -o '[0-9.]*$')"
  for passage in 127 64; do
    echo "  recall of $passage-byte passages (gap,distance,trials,first_nll,repeat_nll,control_nll,...):"
    tail -n +2 "$runs/copy-$v/recall-$passage/recall.csv" | sed 's/^/    /'
  done
done
echo "models that copy: $(( $(date +%s) - start )) s; outputs in $OUT (runs/, checkpoints/, plots/)"
