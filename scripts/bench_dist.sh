#!/usr/bin/env bash
# Data-parallel scaling on this machine: tokens/s of the tiny E2E (meta) and FA (pretrain) configs
# at 1K context with 1 process and with 2 (one intra-op thread each, the same global batch), with
# the gradient all-reduce overlapped with the backward pass and after it; the scaling efficiency
# (tokens/s of 2 / (2 x tokens/s of 1)); the share of a step spent in exposed communication; and
# Gloo all-reduce bandwidth on loopback. Prints one JSON object.
#   STEPS (default 8), extra arguments: config overrides for every training case.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BIN:-$ROOT/build/bench/bench_dist}"
STEPS="${STEPS:-8}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# ranks N ARGS...: runs N ranks of bench_dist on loopback; prints rank 0's JSON.
ranks() {
  local n=$1; shift
  local port=$(( 20000 + RANDOM % 20000 )) pids=()
  for ((r = 0; r < n; r++)); do
    # One thread per process everywhere (torchrun sets OMP_NUM_THREADS=1 too).
    RANK=$r WORLD_SIZE=$n LOCAL_RANK=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$port OMP_NUM_THREADS=1 \
      OPENBLAS_NUM_THREADS=1 "$BIN" "$@" > "$WORK/rank$r.out" 2> "$WORK/rank$r.err" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || { cat "$WORK"/rank*.err >&2; exit 1; }; done
  grep '^{.*"bench":' "$WORK/rank0.out"  # the trainer's own lines go to stdout too
}

train_case() {  # train_case VARIANT WORLD OVERLAP
  ranks "$2" train +experiment=tiny/pretrain/pretrain-tiny-"$1" training.dummy_dataset=true \
    training.total_steps="$STEPS" training.optimizer_outer.lr_warmup_steps=1 \
    training.optimizer_outer.lr_decay_steps="$STEPS" checkpoint.save_freq=0 backend.num_threads=1 \
    backend.overlap_grad_reduce="$3" training.exp_name="bench-$1-$2-$3" \
    training.exp_dir="$WORK/exp" training.checkpoint_path="$WORK/ckpt" "${@:4}"
}

{
  for variant in e2e fa; do
    train_case $variant 1 false "$@"
    train_case $variant 2 false "$@"
    train_case $variant 2 true "$@"
  done
  ranks 2 allreduce
} > "$WORK/results.jsonl"

python3 - "$WORK/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
train = [r for r in rows if r["bench"] == "train"]
out = {"machine": open("/proc/cpuinfo").read().count("processor\t:"), "train": [], "allreduce": [r for r in rows if r["bench"] == "allreduce"]}
for r in train:
    one = next(x for x in train if x["train_mode"] == r["train_mode"] and x["world_size"] == 1)
    r["scaling_efficiency"] = r["tokens_per_second"] / (r["world_size"] * one["tokens_per_second"])
    out["train"].append(r)
out["cores"] = out.pop("machine")
print(json.dumps(out, indent=1))
PY
