#!/usr/bin/env bash
# Builds ttt against a CUDA LibTorch (the one inside a PyTorch install) on a machine that may have
# no package registry and none of our Debian libraries. docs/gpu.md explains the two steps:
#
#   bash scripts/cuda_build.sh bundle [DIR]        on a Debian 12 machine with apt (this one):
#                                                  downloads the .deb files of the libraries into
#                                                  DIR (default .deps, ignored by git)
#   bash scripts/cuda_build.sh build [DIR] [OUT]   on the CUDA machine: unpacks them into
#                                                  DIR/prefix and builds into OUT (default
#                                                  build-cuda) against python3's torch
#
# `build` without DIR's .deb files uses the libraries already installed (a machine with internet:
# `apt-get install` them as scripts/setup.sh does, then `build`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[cuda_build] %s\n' "$*" >&2; }
die() { printf '[cuda_build] error: %s\n' "$*" >&2; exit 1; }

# What the build needs beyond LibTorch, CMake, Ninja and a C++ compiler: the development packages
# and the shared libraries they link, down to what any Linux has (libc, libstdc++, zlib).
PACKAGES=(
  libyaml-cpp-dev libyaml-cpp0.7
  nlohmann-json3-dev libcli11-dev
  libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3
  libblosc-dev libblosc1 liblz4-1 libsnappy1v5 libzstd1
  libgtest-dev libgmock-dev googletest libbenchmark-dev libbenchmark1debian
)

bundle() {
  local dir="${1:-$ROOT/.deps}"
  command -v apt-get >/dev/null || die "bundle needs apt-get (a Debian 12 machine)"
  mkdir -p "$dir"
  log "downloading ${#PACKAGES[@]} packages into $dir"
  (cd "$dir" && apt-get download "${PACKAGES[@]}" >/dev/null)
  log "$(ls "$dir"/*.deb | wc -l) .deb files, $(du -sh "$dir" | cut -f1); carry $dir to the CUDA machine"
}

# Unpacks every .deb of DIR into DIR/prefix and points pkg-config at it (its .pc files name
# /usr, which is rewritten to the prefix).
unpack() {
  local dir="$1" prefix="$1/prefix"
  command -v dpkg >/dev/null || die "unpacking the bundle needs dpkg (dpkg -x)"
  rm -rf "$prefix"
  mkdir -p "$prefix"
  for deb in "$dir"/*.deb; do dpkg -x "$deb" "$prefix"; done
  find "$prefix" -name '*.pc' -exec sed -i "s|^prefix=/usr\$|prefix=$prefix/usr|" {} +
  export PKG_CONFIG_PATH="$prefix/usr/lib/x86_64-linux-gnu/pkgconfig:$prefix/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  PREFIX_PATH="$prefix/usr"
  # The libraries' own dependencies (libblosc -> libsnappy) are not on the build tree's run paths;
  # test discovery runs the test programs during the build.
  export LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  log "unpacked $(ls "$dir"/*.deb | wc -l) packages into $prefix"
}

build() {
  local dir="${1:-$ROOT/.deps}" out="${2:-$ROOT/build-cuda}"
  PREFIX_PATH=""
  if compgen -G "$dir/*.deb" >/dev/null; then unpack "$dir"; else log "no .deb files in $dir: using installed libraries"; fi
  local torch_prefix
  torch_prefix="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')" ||
    die "python3 cannot import torch: install PyTorch (with CUDA) or pass Torch_DIR in CMAKE_ARGS"
  log "torch $(python3 -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)')"
  # NCCL's header from pip's nvidia-nccl package, wherever this PyTorch keeps it.
  local nccl_root="${NCCL_ROOT:-}"
  if [ -z "$nccl_root" ]; then
    local header
    header="$(python3 -c 'import site; print("\n".join(site.getsitepackages()))' |
      while read -r p; do find "$p/nvidia" -name nccl.h 2>/dev/null; done | head -1)" || true
    [ -n "$header" ] && nccl_root="$(dirname "$(dirname "$header")")"
  fi
  # shellcheck disable=SC2086
  cmake -S "$ROOT" -B "$out" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$torch_prefix${PREFIX_PATH:+;$PREFIX_PATH}" \
    ${nccl_root:+-DNCCL_ROOT="$nccl_root"} ${CMAKE_ARGS:-}
  ninja -C "$out" -j "${JOBS:-$(nproc)}"
  log "built $out/ttt"
}

case "${1:-}" in
  bundle) shift; bundle "$@" ;;
  build) shift; build "$@" ;;
  *) die "usage: $0 bundle [DIR] | build [DIR] [OUT]" ;;
esac
