#!/usr/bin/env bash
# Runs every fuzz target (or those named) for longer than CI does, on the committed seed corpora,
# keeping what it finds in build-sanitize/fuzz-artifacts (crashes) and build-sanitize/fuzz-corpus
# (new inputs, to review and add to tests/fuzz/corpus when they reach new code).
#   scripts/fuzz.sh [SECONDS] [TARGET...]        (default 300 s each, every target)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-300}"
shift || true
export SANITIZE_DIR="${SANITIZE_DIR:-$ROOT/build-sanitize}"
bash "$ROOT/scripts/setup.sh" build-sanitize
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd "$ROOT/tests/fuzz" && ls fuzz_*.cpp | sed 's/\.cpp$//')
fi
status=0
for t in "${targets[@]}"; do
  mkdir -p "$SANITIZE_DIR/fuzz-corpus/$t" "$SANITIZE_DIR/fuzz-artifacts"
  echo "== $t: $seconds s"
  "$SANITIZE_DIR/tests/fuzz/$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
    -artifact_prefix="$SANITIZE_DIR/fuzz-artifacts/$t-" "$SANITIZE_DIR/fuzz-corpus/$t" "$ROOT/tests/fuzz/corpus/$t" ||
    status=1
done
exit $status
