#!/bin/bash
# setup.sh -- install what is missing (Debian/Ubuntu, as root or with sudo),
# then configure and build attnc into build/ (or $ATTNC_BUILD_DIR).
#   ATTNC_SANITIZE=1  build with AddressSanitizer + UBSan
#   ATTNC_CMAKE_OPTS  more options for cmake
# Safe to run again: it installs nothing already present and rebuilds
# incrementally.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${ATTNC_BUILD_DIR:-build}

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for p in cmake gcc make pkg-config liblua5.4-dev check libpng-dev libcjson-dev python3-numpy; do
  have_pkg "$p" || need+=("$p")
done
# the CPU backend wants LLVM 19 (or 22); fine without it
if ! have_pkg llvm-19-dev && ! have_pkg llvm-22-dev; then need+=(llvm-19-dev); fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}" >/dev/null || {
    # llvm is optional: retry without it
    rest=(); for p in "${need[@]}"; do [[ $p == llvm-* ]] || rest+=("$p"); done
    [ ${#rest[@]} -gt 0 ] && $SUDO apt-get install -y -qq "${rest[@]}" >/dev/null; }
fi

# the CUDA toolkit is optional (NVRTC); add its usual home to PATH
[ -d /usr/local/cuda/bin ] && export PATH=/usr/local/cuda/bin:$PATH

opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
[ "${ATTNC_SANITIZE:-0}" = 1 ] && opts+=(-DATTNC_SANITIZE=ON)
# extra configure options, e.g. ATTNC_CMAKE_OPTS="-DATTNC_WITH_LLVM=OFF"
read -r -a extra <<<"${ATTNC_CMAKE_OPTS:-}"
opts+=("${extra[@]}")
mkdir -p "$BUILD"
cmake -S . -B "$BUILD" "${opts[@]}" >"$BUILD/configure.log" 2>&1 || {
  cat "$BUILD/configure.log"; echo "setup: configure failed"; exit 1; }
grep -E "attnc:|WARNING" "$BUILD/configure.log" || true
cmake --build "$BUILD" -j"$(nproc)" 2>&1 | grep -E "error|warning" || true
cmake --build "$BUILD" -j"$(nproc)" >/dev/null 2>&1 || {
  cmake --build "$BUILD" 2>&1 | tail -30; echo "setup: build failed"; exit 1; }
echo "setup: built $BUILD/attnc"
