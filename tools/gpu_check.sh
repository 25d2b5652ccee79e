#!/bin/bash
# tools/gpu_check.sh -- ON THE GPU MACHINE, in one device call: build, check
# and measure, each step under its own time limit, everything packed into
# one file, $OUT/gpu-check.tgz (the device tool brings back at most 8 files,
# and a call that runs past its limit loses what was not written under
# $OUT). A summary goes to standard output.
#   bash tools/gpu_check.sh                     verify, nows, bench (every case)
#   GPU_STEPS="verify bench" CASES=dense,causal bash tools/gpu_check.sh
#   GPU_STEPS="ncu" CASES=documents_64_2048 bash tools/gpu_check.sh
# Steps: verify nows dense sanitize racecheck unit cli (tests/gpu/run.sh),
# bench (bench/gpu/run.sh, --cases $CASES if set), sweep (the same with
# --sweep --no-flex), ncu (tools/ncu_case.sh on $CASES). Limits in seconds:
# LIMIT_TEST (120 a test step), LIMIT_BENCH (240); a step past its limit is
# reported and the next one runs. From the dev machine: `run` with
# carry [".deps"] and a timeout above the sum of the limits.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/attnc-check}
W=$(mktemp -d /tmp/gpu-check.XXXXXX)      # a mkdtemp template: the work dir
LIMIT_TEST=${LIMIT_TEST:-120}
LIMIT_BENCH=${LIMIT_BENCH:-240}
mkdir -p "$OUT"
pack() { tar czf "$OUT/gpu-check.tgz" -C "$W" . 2>/dev/null; }
trap pack EXIT

t0=$(date +%s)
if ! tools/gpu_build.sh > "$W/build.log" 2>&1; then
  echo "build FAILED:"; tail -20 "$W/build.log"; exit 1
fi
echo "build $(( $(date +%s) - t0 )) s; card: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1)"

for s in ${GPU_STEPS:-verify nows bench}; do
  t0=$(date +%s)
  case $s in
    verify|nows|dense|sanitize|racecheck|unit|cli)
      OUT=$W/gpu timeout "$LIMIT_TEST" bash tests/gpu/run.sh "$s" > "$W/$s.txt" 2>&1
      rc=$?
      md=$W/gpu/$s.md
      counts=""
      [ -f "$md" ] && counts="$(grep -c '| PASS' "$md") pass, $(grep -c '| FAIL' "$md") fail"
      echo "$s: rc $rc${counts:+, $counts}, $(( $(date +%s) - t0 )) s"
      [ -f "$md" ] && grep '| FAIL' "$md" | head -5 ;;
    bench|sweep)
      args=()
      [ -n "${CASES:-}" ] && args+=(--cases "$CASES")
      [ "$s" = sweep ] && args+=(--sweep --no-flex)
      OUT=$W/$s timeout "$LIMIT_BENCH" bash bench/gpu/run.sh "${args[@]}" > "$W/$s.txt" 2>&1
      rc=$?
      echo "$s: rc $rc, $(( $(date +%s) - t0 )) s"
      for md in "$W/$s"/gpu-*.md; do
        [ -f "$md" ] && grep '^| ' "$md" | cut -d'|' -f2,5,7,8,9,13,18
      done ;;
    ncu)
      OUT=$W/ncu timeout "$LIMIT_BENCH" bash tools/ncu_case.sh ${CASES:+${CASES//,/ }} > "$W/ncu.txt" 2>&1
      echo "ncu: rc $?, $(( $(date +%s) - t0 )) s"
      grep '^==' "$W/ncu.txt"
      rm -f "$W"/ncu/*.ncu-rep ;;
    *) echo "unknown step $s (verify nows dense sanitize racecheck unit cli bench sweep ncu)" ;;
  esac
  pack
done
