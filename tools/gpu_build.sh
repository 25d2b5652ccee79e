#!/bin/bash
# gpu_build.sh -- run ON THE GPU MACHINE (CUDA toolkit, no Lua/Check/LLVM,
# no network) from the repository root, with .deps/ carried along (see
# tools/fetch_gpu_deps.sh). Unpacks the Debian packages into /opt/deps,
# configures without LLVM, builds into build-gpu/, then runs "$@" if given
# (e.g. tools/gpu_build.sh ctest --test-dir build-gpu -R gpu).
set -euo pipefail
cd "$(dirname "$0")/.."
DEPS=/opt/deps
if [ ! -f $DEPS/usr/include/lua5.4/lua.h ]; then
  mkdir -p $DEPS
  for f in .deps/*.deb; do dpkg -x "$f" $DEPS; done
fi
export LD_LIBRARY_PATH=$DEPS/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
cmake -S . -B build-gpu -DATTNC_WITH_LLVM=OFF -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH=$DEPS/usr \
  -DLUA_INCLUDE_DIR=$DEPS/usr/include/lua5.4 \
  -DCMAKE_C_FLAGS="-I$DEPS/usr/include/x86_64-linux-gnu" \
  -DLUA_LIBRARY=$DEPS/usr/lib/x86_64-linux-gnu/liblua5.4.so >/dev/null
cmake --build build-gpu -j"$(nproc)" 2>&1 | grep -E "error|warning: unused" || true
test -x build-gpu/attnc || { echo "gpu_build: build failed"; cmake --build build-gpu 2>&1 | tail -40; exit 1; }
if [ $# -gt 0 ]; then "$@"; fi
