#!/usr/bin/env bash
# The training-memory estimate of `ttt info --world-size` against the measured peak of real steps
# (bench_train_step, one process per case, 1 thread): E2E meta with and without recomputation,
# the SWA and full-attention baselines, at two lengths and two batch sizes. Prints a JSON array;
# each object has training_memory_mib (measured), estimate_mib and estimate_error.
# Extra arguments are config overrides applied to every case.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BIN:-$ROOT/build/bench/bench_train_step}"
BASE=(model.sliding_window_size=512 model.mini_batch_size=256 backend.num_threads=1)
echo "["
first=1
for T in 2048 8192; do
  for B in 1 2; do
    for exp in e2e:meta:1 e2e:meta:0 swa:pretrain:1 fa:pretrain:1; do
      IFS=: read -r variant mode remat <<<"$exp"
      [ "$T" = 8192 ] && [ "$remat" = 0 ] && [ "$B" = 2 ] && continue  # the slowest case, once is enough
      [ $first -eq 1 ] || echo ","
      first=0
      "$BIN" --steps 1 --warmup 0 +experiment=tiny/pretrain/pretrain-tiny-$variant "${BASE[@]}" \
        training.seq_length=$T training.global_batch_size=$B training.train_mode=$mode \
        training.inner_remat_freq=$remat "$@"
    done
  done
done
echo "]"
