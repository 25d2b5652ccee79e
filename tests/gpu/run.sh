#!/bin/bash
# tests/gpu/run.sh -- the GPU suite, ON THE GPU MACHINE (CUDA toolkit and
# driver; no Lua, Check or LLVM, no network: .deps/ carried along, see
# tools/gpu_build.sh). Builds into build-gpu/, then runs, logging to $OUT
# (default /tmp/attnc-gpu):
#   verify      test_cuda_gpu: every spec vs the reference, fp16 and bf16,
#               with the passes' plan (table in $OUT/verify.md)
#   nows        the same with ATTNC_CUDA_WS=0 (every warp loads, no producer
#               warpgroup): tells warp-specialisation bugs from the rest
#   dense       the same with ATTNC_CUDA_PLAN=0 (raster order, every tile
#               masked): tells iterator bugs from kernel bugs
#   sanitize    compute-sanitizer memcheck over the suite on small shapes
#   racecheck   compute-sanitizer racecheck (shared-memory hazards) on the same
#   unit        test_cuda (NVRTC, cache) on this machine
#   cli         every spec through `attnc verify --target cuda` at fp16 and
#               bf16 (GQA, ragged), and `attnc compile --json` twice (cache);
#               table in $OUT/cli.md
# Default: verify sanitize. Exit status: non-zero when a step failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/attnc-gpu}
mkdir -p "$OUT"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(verify sanitize)

# the build of tools/gpu_build.sh, with Lua's include dir given as one path
# (CMake 4's FindLua rejects the two-path list) and the multiarch header dir
# as a compiler flag
DEPS=/opt/deps
if [ ! -f $DEPS/usr/include/lua5.4/lua.h ]; then
  mkdir -p $DEPS
  for f in .deps/*.deb; do dpkg -x "$f" $DEPS; done
fi
export LD_LIBRARY_PATH=$DEPS/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
{ cmake -S . -B build-gpu -DATTNC_WITH_LLVM=OFF -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH=$DEPS/usr -DLUA_INCLUDE_DIR=$DEPS/usr/include/lua5.4 \
    -DLUA_LIBRARY=$DEPS/usr/lib/x86_64-linux-gnu/liblua5.4.so \
    -DCMAKE_C_FLAGS="-I$DEPS/usr/include/x86_64-linux-gnu" &&
  cmake --build build-gpu -j"$(nproc)"; } > "$OUT/build.log" 2>&1 ||
  { grep -E "error|Error" -A3 "$OUT/build.log" | head -40; exit 1; }
export ATTNC_SOURCE_DIR=$PWD
export ATTNC_CACHE_DIR=${ATTNC_CACHE_DIR:-/tmp/attnc-gpu-cache}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$OUT/gpu.txt" 2>&1
echo "card: $(cat "$OUT/gpu.txt")"

status=0
for s in "${steps[@]}"; do
  t0=$(date +%s)
  case $s in
    verify)
      ATTNC_GPU_REPORT=$OUT/verify.md timeout 300 build-gpu/tests/test_cuda_gpu > "$OUT/verify.log" 2>&1 || status=1 ;;
    nows)
      ATTNC_CUDA_WS=0 ATTNC_GPU_REPORT=$OUT/nows.md timeout 300 build-gpu/tests/test_cuda_gpu > "$OUT/nows.log" 2>&1 || status=1 ;;
    dense)
      ATTNC_CUDA_PLAN=0 ATTNC_GPU_REPORT=$OUT/dense.md timeout 300 build-gpu/tests/test_cuda_gpu > "$OUT/dense.log" 2>&1 || status=1 ;;
    sanitize)
      ATTNC_GPU_QUICK=1 CK_FORK=no ATTNC_GPU_REPORT=$OUT/sanitize.md \
        timeout 300 compute-sanitizer --tool memcheck --error-exitcode 9 build-gpu/tests/test_cuda_gpu \
        > "$OUT/sanitize.log" 2>&1 || status=1 ;;
    racecheck)
      ATTNC_GPU_QUICK=1 CK_FORK=no ATTNC_GPU_REPORT=$OUT/racecheck.md \
        timeout 400 compute-sanitizer --tool racecheck --racecheck-report hazard --error-exitcode 9 \
        build-gpu/tests/test_cuda_gpu > "$OUT/racecheck.log" 2>&1 || status=1
      # hazards are reported in the summary whatever the exit code says
      if grep -q -E "RACECHECK SUMMARY: [1-9]" "$OUT/racecheck.log"; then
        echo "FAIL: racecheck: $(grep 'RACECHECK SUMMARY' "$OUT/racecheck.log")" >> "$OUT/racecheck.log"
        status=1
      fi ;;
    unit)
      timeout 300 build-gpu/tests/test_cuda > "$OUT/unit.log" 2>&1 || status=1 ;;
    cli)
      {
        echo "| spec | dtype | shape | result |"
        echo "|---|---|---|---|"
        for f in specs/*.lua tests/gpu/specs/*.lua; do
          for dt in f16 bf16; do
            shapes=("--kv-heads 1")                       # default shape (a grid's tokens)
            grep -q "grid *=" "$f" || shapes+=("--shape 2,4,333,128 --kv-heads 2")
            for shape in "${shapes[@]}"; do
              line=$(build-gpu/attnc verify "$f" --target cuda --dtype $dt $shape 2>&1 | tail -1)
              echo "| $(basename $f .lua) | $dt | $shape | $line |"
            done
          done
        done
        export ATTNC_CACHE_DIR=/tmp/attnc-cli-cache
        rm -rf $ATTNC_CACHE_DIR
        for i in 1 2; do
          /usr/bin/time -f "%e s" build-gpu/attnc compile specs/causal.lua --target cuda --emit cubin -o /tmp/causal.cubin --json
        done
      } > "$OUT/cli.md" 2>&1
      ! grep -q -E "FAIL|attnc:" "$OUT/cli.md" || status=1
      cp "$OUT/cli.md" "$OUT/cli.log" ;;
    *) echo "run.sh: unknown step $s"; status=2 ;;
  esac
  echo "== $s: $(( $(date +%s) - t0 )) s, $(grep -E '^[0-9]+%: Checks' "$OUT/$s.log" 2>/dev/null | tail -1)"
done
grep -h -E "FAIL|ERROR SUMMARY|skipped" "$OUT"/*.log 2>/dev/null | head -40
exit $status
