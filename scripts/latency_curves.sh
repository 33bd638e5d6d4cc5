#!/usr/bin/env bash
# Latency curves (issue 14's experiment 5; docs/performance.md, docs/results.md): `ttt bench`
# prefill and decode time against context, random weights, each run saved as JSON, then all of
# them drawn on one set of plots beside the paper's prefill ratio (`ttt bench --from ... --plot`).
#   SIZE=tiny (default): FA, SWA and TTT-E2E from 1K to 32K; SWA and E2E on to 256K, FA at 64K;
#     128 decoded tokens (one E2E chunk); THREADS intra-op threads (default 1).
#   SIZE=125m: TTT-E2E from 4K to 64K and FA from 4K to 32K, then FA and E2E at 64K in one run
#     (side by side for the crossover; it replaces the first run's E2E point there), 1024 decoded
#     tokens (one E2E chunk: one inner step), THREADS intra-op threads (default 2), fp32 compute.
#     On the 2-core VM about 48 minutes for E2E, 31 for FA and 68 for the 64K run
#     (docs/performance.md, "Decoding: window caches and matrix-vector products").
# Writes experiments/latency/<size>/{<run>.json,plots/}. A saved run is kept: re-running skips it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TTT="${TTT:-build/ttt}"
SIZE="${SIZE:-tiny}"
OUT="${OUT:-$ROOT/experiments/latency/$SIZE}"
if [ "$SIZE" = tiny ]; then THREADS="${THREADS:-1}"; else THREADS="${THREADS:-2}"; fi
case "$SIZE" in
  tiny | 125m) ;;
  *)
    echo "latency_curves.sh: SIZE must be tiny or 125m, not '$SIZE'" >&2
    exit 2
    ;;
esac
mkdir -p "$OUT"
start=$(date +%s)
saved=()

# bench NAME ARGS...: one `ttt bench --json` run saved as NAME.json (written beside and renamed,
# so an interrupted run leaves nothing that looks done). A run with a failed case (killed for
# memory, say) is kept as NAME.failed.json instead, so that the next run measures it again.
bench() {
  local name=$1 t0
  shift
  saved+=("--from" "$OUT/$name.json")
  if [ -f "$OUT/$name.json" ]; then echo "== $name: done"; return; fi
  t0=$(date +%s)
  "$TTT" bench --size "$SIZE" --json "$@" >"$OUT/$name.json.tmp"
  if grep -q '"error"' "$OUT/$name.json.tmp"; then
    mv "$OUT/$name.json.tmp" "$OUT/$name.failed.json"
    echo "latency_curves.sh: $name had failed cases (see $OUT/$name.failed.json); re-run to measure it again" >&2
    exit 1
  fi
  mv "$OUT/$name.json.tmp" "$OUT/$name.json"
  echo "== $name: $(( $(date +%s) - t0 )) s"
}

case "$SIZE" in
  tiny)
    bench short --variants fa,swa,e2e --min-context 1024 --max-context 32768 backend.num_threads="$THREADS"
    bench long --variants swa,e2e --min-context 65536 --max-context 262144 backend.num_threads="$THREADS"
    bench long-fa --variants fa --min-context 65536 --max-context 65536 backend.num_threads="$THREADS"
    ;;
  125m)
    # fp32 compute: the official configs compute in bf16, for which LibTorch 1.13's CPU matmul has
    # no BLAS kernel (a scalar loop; see docs/performance.md, "Decoding and RoPE").
    bench e2e --variants e2e --min-context 4096 --max-context 65536 --decode-tokens 1024 \
      backend.num_threads="$THREADS" model.compute_dtype=fp32
    bench fa --variants fa --min-context 4096 --max-context 32768 --decode-tokens 1024 \
      backend.num_threads="$THREADS" model.compute_dtype=fp32
    bench at-64k --variants fa,e2e --min-context 65536 --max-context 65536 --decode-tokens 1024 \
      backend.num_threads="$THREADS" model.compute_dtype=fp32
    ;;
esac
"$TTT" bench "${saved[@]}" --plot "$OUT/plots"
echo "latency curves ($SIZE): $(( $(date +%s) - start )) s; outputs in $OUT"
