#!/usr/bin/env bash
# Our losses and gradients against an independent implementation: bench/peer_pytorch.py, written
# in plain PyTorch from the method, recomputes the first training step that bench_train_step saves
# and exits non-zero unless its loss and gradient norm equal ours (1e-4 relative in fp32). Meta
# (with and without recomputation), pretrain SWA and chunk-local full attention, small shapes.
#   peer_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build="$1" source="$2"
python="${PYTHON:-/usr/bin/python3}"
"$python" -c 'import torch' 2>/dev/null || { echo "SKIPPED: $python has no torch (Debian's python3-torch)"; exit 0; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
small=(model.num_hidden_layers=4 model.hidden_size=64 model.num_attention_heads=4 model.intermediate_size=96
       training.seq_length=256 model.sliding_window_size=64 model.mini_batch_size=32 model.compute_dtype=fp32
       training.global_batch_size=2 backend.num_threads=1)
check() {
  local name="$1"
  shift
  "$build/bench/bench_train_step" --steps 1 --warmup 0 --peak-size 0 --save-case "$work/case.safetensors" \
    "${small[@]}" "$@" >/dev/null
  "$python" "$source/bench/peer_pytorch.py" "$work/case.safetensors" --steps 1 --warmup 0 >"$work/peer.json" ||
    { echo "FAIL: $name: $(cat "$work/peer.json")" >&2; exit 1; }
  echo "$name: $(cat "$work/peer.json")"
}
check "meta, recomputation" +experiment=tiny/pretrain/pretrain-tiny-e2e training.inner_remat_freq=1
check "meta, whole graph" +experiment=tiny/pretrain/pretrain-tiny-e2e training.inner_remat_freq=0
check "pretrain SWA" +experiment=tiny/pretrain/pretrain-tiny-swa model.mini_batch_size=256
check "pretrain FA, chunk-local" +experiment=tiny/pretrain/pretrain-tiny-fa
