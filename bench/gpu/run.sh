#!/bin/bash
# bench/gpu/run.sh -- ON THE GPU MACHINE, from anywhere in the repository
# (with .deps/ carried, see tools/gpu_build.sh): builds attnc into build-gpu/
# and runs bench/gpu/bench.py "$@" (attnc vs FlexAttention / SDPA), writing
# the JSON, the markdown table and the logs into $OUT (default
# /tmp/attnc-bench); copy them into bench/results/ to commit them.
#   bench/gpu/run.sh                       every case
#   bench/gpu/run.sh --cases dense,causal  some cases
#   bench/gpu/run.sh --sweep               also time other tiles / warps
set -uo pipefail
cd "$(dirname "$0")/../.."
export OUT=${OUT:-/tmp/attnc-bench}
mkdir -p "$OUT"
tools/gpu_build.sh > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader > "$OUT/gpu.txt" 2>&1
echo "card: $(cat "$OUT/gpu.txt")"
PYTHONUNBUFFERED=1 python3 bench/gpu/bench.py --out "$OUT" "$@" 2>&1 | tee "$OUT/bench.log"
