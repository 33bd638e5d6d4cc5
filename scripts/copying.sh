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
#   - given held-out passages twice, 127 bytes apart, against the same passages followed by fresh
#     text (scripts/repeat_docs.py): how much of what it read it recalls.
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
  if done_already copy-$v "$STEPS"; then echo "== copy-$v: done"; continue; fi
  # shellcheck disable=SC2046
  timed "copy-$v ($STEPS steps at context 256)" \
    "$TTT" train +experiment=copy/$v "${common[@]}" $(schedule "$STEPS") \
      training.ilr_warmup_steps="$(warmup_steps "$STEPS")"
done
# The needle suite with digit keys (the paper's) and with letter keys.
for v in fa swa e2e; do
  for kind in digits letters; do
    dir="$runs/copy-$v/niah"; [ "$kind" = letters ] && dir="$dir-letters"
    [ -f "$dir/niah.json" ] && continue
    timed "copy-$v needle suite ($kind)" "$TTT" eval --task niah --checkpoint "$OUT/checkpoints/demo/copy-$v" \
      --lengths 128 256 512 --trials "$TRIALS" --key-kind "$kind" --output "$dir"
  done
done
# Repeated passages: held-out text read twice, 127 bytes apart (four times the window), against
# the same text followed by fresh text. carroll-alice and chesterton-thursday are the two books
# `ttt prepare --val-fraction 0.1` (seed 0) holds out.
probe="$OUT/repeat"
if [ ! -f "$probe/control-byte/zarr.json" ]; then
  python3 scripts/repeat_docs.py "$probe/docs" data/gutenberg/carroll-alice.txt data/gutenberg/chesterton-thursday.txt
  for kind in repeat control; do
    "$TTT" prepare "$probe/docs/$kind" --output "$probe/$kind-byte" --tokenizer byte --val-fraction 0 --overwrite
  done
fi
for v in fa swa e2e; do
  for kind in repeat control; do
    name=copy-$v-$kind
    [ -f "$runs/$name/eval.json" ] && continue
    timed "$name" "$TTT" eval --checkpoint "$OUT/checkpoints/demo/copy-$v" training.dataset_path="$probe/$kind-byte" \
      training.eval_split=train training.exp_name="$name" training.exp_dir="$OUT/runs"
  done
done
"$TTT" plot "$runs"/copy-{e2e,swa,fa} --output "$OUT/plots" --log-x
# Mean NLL of the passage's bytes 2-127 at its first reading (positions 1-126 of the CSV, which
# predict tokens 2-127) and of the same bytes read again or of fresh text (positions 128-253).
for v in e2e swa fa; do
  printf "copy-%s: eval loss %s;" "$v" "$(grep -o '"loss": *[0-9.]*' "$runs/copy-$v/eval.json" | head -1 | grep -o '[0-9.]*$')"
  for kind in repeat control; do
    awk -F, -v kind="$kind" 'NR > 1 && $1 >= 1 && $1 <= 126 { a += $2; n++ } NR > 1 && $1 >= 128 && $1 <= 253 { b += $2; m++ }
      END { printf " %s: first reading %.4f, second %.4f;", kind, a / n, b / m }' "$runs/copy-$v-$kind/eval_nll_by_position.csv"
  done
  echo
done
echo "models that copy: $(( $(date +%s) - start )) s; outputs in $OUT (runs/, checkpoints/, plots/)"
