#!/bin/bash
# gpu_session.sh -- ON THE GPU MACHINE (.deps/ carried): one call that does
# what a session needs there, logging under $OUT/run and packing it into
# $OUT/gpu-session.tgz (the device tool returns at most 8 files):
#   1. tests/gpu/run.sh verify unit     every spec vs the reference (fp16, bf16)
#   2. bench/gpu/run.sh                 attnc vs FlexAttention / SDPA, all cases
#   3. attnc tune --target cuda          sliding_window and neighborhood2d, then
#      explain shows the stored schedule is picked up
# Steps can be chosen: tools/gpu_session.sh verify bench tune
set -uo pipefail
cd "$(dirname "$0")/.."
R=${OUT:-/tmp/attnc-session}/run
mkdir -p "$R"
steps=("$@"); [ ${#steps[@]} -eq 0 ] && steps=(verify bench tune)
has() { [[ " ${steps[*]} " == *" $1 "* ]]; }
if has verify; then
  OUT=$R/verify bash tests/gpu/run.sh verify unit > "$R/verify.log" 2>&1
  echo "verify: rc=$?"; tail -3 "$R/verify.log"
fi
if has bench; then
  OUT=$R/bench bash bench/gpu/run.sh > "$R/bench.log" 2>&1
  echo "bench: rc=$?"; tail -30 "$R/bench.log"
fi
if has tune; then
  export LD_LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
  export ATTNC_TUNE_DB=$R/tune.json ATTNC_CACHE_DIR=/tmp/attnc-tune-cache
  A=build-gpu/attnc
  { $A tune specs/sliding_window.lua -D window=1024 --target cuda --shape 2,16,8192,128 --iters 20
    $A explain specs/sliding_window.lua -D window=1024 --target cuda --shape 2,16,8192,128 | head -5
    $A tune specs/neighborhood2d.lua -D height=128 -D width=128 -D kernel=13 --target cuda \
       --shape 1,16,16384,64 --iters 20
    $A explain specs/neighborhood2d.lua -D height=128 -D width=128 -D kernel=13 --target cuda \
       --shape 1,16,16384,64 | head -5; } > "$R/tune.log" 2>&1
  echo "tune: rc=$?"; cat "$R/tune.log" | tail -40
fi
tar czf "${OUT:-/tmp/attnc-session}/gpu-session.tgz" -C "$R" .
