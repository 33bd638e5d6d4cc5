# shellcheck shell=bash
# Sourced by the experiment scripts (main_job, toy_experiment, context_scaling, ablations) after
# they set ROOT: works from the repository root, names the ttt binary, starts the clock (`start`)
# and makes the byte-level dataset if it is missing.
cd "$ROOT" || exit 1
TTT="${TTT:-build/ttt}"  # the binary (a copy lets a rebuild run beside an experiment)

# ensure_byte_dataset: the 18 books as a byte-level zarr dataset (two of them are Latin-1, read as
# such explicitly), made once.
ensure_byte_dataset() {
  [ -f data/gutenberg-byte/zarr.json ] ||
    "$TTT" prepare data/gutenberg --output data/gutenberg-byte --tokenizer byte --latin1 --val-fraction 0.1
}

# shellcheck disable=SC2034  # read by the sourcing script
start=$(date +%s)
ensure_byte_dataset
