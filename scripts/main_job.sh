#!/usr/bin/env bash
# The main job: train the tiny TTT-E2E, SWA and full-attention experiments on the Gutenberg books
# (byte tokenizer, 1K context), evaluate each on the held-out books, and print a comparison.
# STEPS (default 60) sets the length of every run; the schedules are scaled to it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STEPS="${STEPS:-60}"
WARMUP=$(( STEPS / 10 > 0 ? STEPS / 10 : 1 ))
EXP_DIR="${EXP_DIR:-$ROOT/experiments}"
start=$(date +%s)
# The 18 books as a byte-level zarr dataset (two of them are Latin-1, read as such explicitly).
if [ ! -f data/gutenberg-byte/zarr.json ]; then
  build/ttt prepare data/gutenberg --output data/gutenberg-byte --tokenizer byte --latin1 --val-fraction 0.1
fi
for variant in e2e swa fa; do
  echo "== pretrain-tiny-$variant: $STEPS steps"
  build/ttt train +experiment=tiny/pretrain/pretrain-tiny-$variant \
    training.exp_dir="$EXP_DIR" training.total_steps="$STEPS" \
    training.optimizer_outer.lr_decay_steps="$STEPS" training.optimizer_outer.lr_warmup_steps="$WARMUP" \
    training.ilr_warmup_steps="$WARMUP"
done
python3 - "$EXP_DIR/demo" <<'PY'
import json, sys, os
root = sys.argv[1]
print("\n| experiment | val loss (nats/byte) | first-half NLL | second-half NLL |")
print("|---|---|---|---|")
for v in ("e2e", "swa", "fa"):
    with open(os.path.join(root, f"pretrain-tiny-{v}", "eval.json")) as f:
        e = json.load(f)
    nll = e["nll_by_position"]; h = len(nll) // 2
    print(f"| pretrain-tiny-{v} | {e['loss']:.4f} | {sum(nll[:h])/h:.4f} | {sum(nll[h:])/(len(nll)-h):.4f} |")
PY
echo "main job: $(( $(date +%s) - start )) s"
