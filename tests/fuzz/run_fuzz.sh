#!/usr/bin/env bash
# Runs one libFuzzer target for SECONDS on its committed seed corpus. New inputs go to a scratch
# directory, never into the committed corpus; a crash leaves its input in ARTIFACTS.
#   run_fuzz.sh TARGET CORPUS SECONDS [ARTIFACTS]
set -euo pipefail
target="$1" corpus="$2" seconds="$3" artifacts="${4:-$(pwd)/fuzz-artifacts}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$artifacts"
# -rss_limit_mb: an input that makes a parser allocate without bound is a finding, not a slow run.
"$target" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
  -artifact_prefix="$artifacts/$(basename "$target")-" "$scratch" "$corpus"
