# shellcheck shell=bash
# Sourced by the experiment scripts (main_job, toy_experiment, context_scaling, ablations,
# copying) after they set ROOT: works from the repository root, names the ttt binary, starts the
# clock (`start`) and makes the byte-level dataset if it is missing.
cd "$ROOT" || exit 1
TTT="${TTT:-build/ttt}"  # the binary (a copy lets a rebuild run beside an experiment)

# ensure_byte_dataset: the 18 books as a byte-level zarr dataset (two of them are Latin-1, read as
# such explicitly), made once.
ensure_byte_dataset() {
  [ -f data/gutenberg-byte/zarr.json ] ||
    "$TTT" prepare data/gutenberg --output data/gutenberg-byte --tokenizer byte --latin1 --val-fraction 0.1
}

# done_already NAME STEPS: run NAME under $OUT has its final checkpoint (step STEPS - 1) and its
# evaluation, so a re-run skips it; an interrupted run is not done and resumes from its last
# checkpoint.
done_already() {
  [ -f "$OUT/runs/demo/$1/eval.json" ] && [ -f "$OUT/checkpoints/demo/$1/$(( $2 - 1 ))/state.json" ]
}

# timed LABEL COMMAND...: runs the command, then prints "== LABEL: N s".
timed() {
  local label=$1 t0
  shift
  t0=$(date +%s)
  "$@"
  echo "== $label: $(( $(date +%s) - t0 )) s"
}

# train_once NAME STEPS LABEL COMMAND...: runs the command under `timed LABEL` unless run NAME is
# done_already (then says so): how every experiment script trains each of its runs.
train_once() {
  local name=$1 steps=$2 label=$3
  shift 3
  if done_already "$name" "$steps"; then echo "== $name: done"; return 0; fi
  timed "$label" "$@"
}

# warmup_steps STEPS: a tenth of a run (at least one step), the official schedules' warm-up.
warmup_steps() { echo $(( $1 / 10 > 0 ? $1 / 10 : 1 )); }

# schedule STEPS: overrides that scale the outer lr schedule (warm-up and decay) to STEPS steps.
schedule() {
  echo "training.total_steps=$1 training.optimizer_outer.lr_decay_steps=$1" \
       "training.optimizer_outer.lr_warmup_steps=$(warmup_steps "$1")"
}

# shellcheck disable=SC2034  # read by the sourcing script
start=$(date +%s)
ensure_byte_dataset
