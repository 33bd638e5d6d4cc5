#!/usr/bin/env bash
# Our training step beside bench/peer_pytorch.py (a plain PyTorch-eager implementation of the same
# model and losses, on the same LibTorch kernels through Debian's python3-torch), one intra-op
# thread each, on the cases of the CPU-speed issue. Each case: our step writes its first step's
# weights and batch (bench_train_step --save-case), the peer checks its loss and gradient norm
# against ours and times the same step, with its full-sequence attention as one T x T matrix and
# in query blocks as ours. One JSON line per case: all three, and peer / ours time (> 1: ours is
# faster). Extra arguments are config overrides applied to every case.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BIN:-$ROOT/build/bench/bench_train_step}"
STEPS="${STEPS:-2}"
PYTHON="${PYTHON:-/usr/bin/python3}"  # Debian's, which has python3-torch
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS=1
# The issue's model: 4 blocks, D 256, 4 heads, MLP 512, bytes, T 2048, W 512, b 256, one suffix block
# with a prime MLP, fp32, batch 1.
SMALL=(+experiment=tiny/pretrain/pretrain-tiny-e2e model.num_hidden_layers=4 model.hidden_size=256
       model.num_attention_heads=4 model.intermediate_size=512 training.seq_length=2048
       model.sliding_window_size=512 model.mini_batch_size=256 model.compute_dtype=fp32
       training.global_batch_size=1 backend.num_threads=1)
# 125M at T 2048 (W 512, b 256).
M125=(+experiment=125m/pretrain/pretrain-125m-e2e training.seq_length=2048 model.sliding_window_size=512
      model.mini_batch_size=256 model.compute_dtype=fp32 training.global_batch_size=1 backend.num_threads=1)

run_case() {
  local name="$1" mode="$2" remat="$3"
  shift 3
  local ours full blocked
  ours="$("$BIN" --steps "$STEPS" --warmup 1 --peak-size 0 --save-case "$WORK/case.safetensors" "$@" \
    training.train_mode="$mode" training.inner_remat_freq="$remat")"
  for attention in full blocked; do
    local out
    out="$("$PYTHON" "$ROOT/bench/peer_pytorch.py" "$WORK/case.safetensors" --steps "$STEPS" --warmup 1 --threads 1 \
      --attention "$attention")" || { echo "peer does not match ours on $name $mode: $out" >&2; exit 1; }
    if [ "$attention" = full ]; then full="$out"; else blocked="$out"; fi
  done
  "$PYTHON" - "$name" "$ours" "$full" "$blocked" <<'PY'
import json, sys
name, ours, full, blocked = sys.argv[1], *(json.loads(a) for a in sys.argv[2:])
print(json.dumps({"case": name, "train_mode": ours["train_mode"], "inner_remat_freq": ours["inner_remat_freq"],
                  "ours_seconds_per_step": ours["seconds_per_step"],
                  "peer_full_attention_seconds_per_step": full["seconds_per_step"],
                  "peer_blocked_attention_seconds_per_step": blocked["seconds_per_step"],
                  "peer_full_over_ours": full["seconds_per_step"] / ours["seconds_per_step"],
                  "peer_blocked_over_ours": blocked["seconds_per_step"] / ours["seconds_per_step"],
                  "ours_peak_rss_mib": ours["peak_rss_mib"], "peer_full_peak_rss_mib": full["peak_rss_mib"],
                  "peer_blocked_peak_rss_mib": blocked["peak_rss_mib"],
                  "loss_relative_difference": max(full["loss_relative_difference"], blocked["loss_relative_difference"]),
                  "gradient_norm_relative_difference": max(full["gradient_norm_relative_difference"],
                                                           blocked["gradient_norm_relative_difference"])}))
PY
}

run_case small pretrain 1 "${SMALL[@]}" "$@"
run_case small meta 0 "${SMALL[@]}" "$@"
run_case small meta 1 "${SMALL[@]}" "$@"
if [ "${WITH_125M:-1}" = 1 ]; then
  run_case 125m pretrain 1 "${M125[@]}" "$@"
  run_case 125m meta 1 "${M125[@]}" "$@"
fi
