#!/bin/bash
# tools/gpu_check.sh -- ON THE GPU MACHINE, in one device call: build, check
# and measure, each step under its own time limit, everything packed into
# one file, $OUT/gpu-check.tgz (the device tool brings back at most 8 files,
# and a call that runs past its limit loses what was not written under
# $OUT). A summary goes to standard output.
#   bash tools/gpu_check.sh                     verify, nows, bench (every case)
#   GPU_STEPS="verify bench" CASES=dense,causal bash tools/gpu_check.sh
#   GPU_STEPS="ncu" CASES=documents_64_2048 bash tools/gpu_check.sh
#   GPU_STEPS="ab" AB="ATTNC_CUDA_WS=1|ATTNC_CUDA_WS=0" CASES=dense bash tools/gpu_check.sh
# Steps: verify nows dense sanitize racecheck unit cli (tests/gpu/run.sh),
# bench (bench/gpu/run.sh, --cases $CASES if set), sweep (the same with
# --sweep --no-flex), ab (bench.py --no-flex once per setting of $AB, the
# kernel's switches such as ATTNC_CUDA_WS=0, one table), ncu
# (tools/ncu_case.sh on $CASES); $BENCH_ARGS go to bench.py in the bench
# and sweep steps; ctime (tools/compile_time.py: cold compiles alone,
# $CTIME_ARGS). Limits in seconds:
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
      # a row ends "| PASS |" (test tables) or ": PASS |" (the CLI's verify lines)
      [ -f "$md" ] && counts="$(grep -c -E '[|:] PASS' "$md") pass, $(grep -c -E '[|:] FAIL' "$md") fail"
      echo "$s: rc $rc${counts:+, $counts}, $(( $(date +%s) - t0 )) s"
      [ -f "$md" ] && grep -E '[|:] FAIL' "$md" | head -5 ;;
    bench|sweep)
      args=()
      [ -n "${CASES:-}" ] && args+=(--cases "$CASES")
      [ "$s" = sweep ] && args+=(--sweep --no-flex)
      read -r -a more <<<"${BENCH_ARGS:-}"     # e.g. BENCH_ARGS="--kernels --no-flex"
      args+=("${more[@]}")
      OUT=$W/$s timeout "$LIMIT_BENCH" bash bench/gpu/run.sh "${args[@]}" > "$W/$s.txt" 2>&1
      rc=$?
      echo "$s: rc $rc, $(( $(date +%s) - t0 )) s"
      for md in "$W/$s"/gpu-*.md; do
        [ -f "$md" ] && grep '^| ' "$md" | cut -d'|' -f2,5,7,8,9,13,18
      done ;;
    ab)
      # the same cases once per setting of AB ("|" between settings, each
      # "VAR=value ..." for the kernel's switches, e.g. ATTNC_CUDA_WS=0), no
      # Flex: one TFLOP/s column a setting, in one table
      IFS='|' read -r -a sets <<< "${AB:-}"
      [ ${#sets[@]} -gt 0 ] || { echo "ab: set AB, e.g. AB='ATTNC_CUDA_WS=0|ATTNC_CUDA_WS=1'"; continue; }
      args=(--no-flex)
      [ -n "${CASES:-}" ] && args+=(--cases "$CASES")
      export LD_LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
      for i in "${!sets[@]}"; do
        env ${sets[$i]} timeout "$LIMIT_BENCH" python3 bench/gpu/bench.py "${args[@]}" --out "$W/ab/$i" \
          > "$W/ab-$i.txt" 2>&1 || echo "ab: '${sets[$i]}' failed (rc $?), see ab-$i.txt"
      done
      python3 - "$W/ab" "${sets[@]}" <<'PY'
import glob, json, sys
root, sets = sys.argv[1], sys.argv[2:]
cols = []
for i in range(len(sets)):
    f = glob.glob(f"{root}/{i}/gpu-*.json")
    cols.append({r["name"]: r.get("attnc_tflops") for r in json.load(open(f[0]))["results"]} if f else {})
names = [n for c in cols for n in c]
print("| case | " + " | ".join(sets) + " |")
for n in dict.fromkeys(names):
    print(f"| {n} | " + " | ".join(f"{c[n]:.0f}" if c.get(n) else "-" for c in cols) + " |")
PY
      echo "ab: $(( $(date +%s) - t0 )) s" ;;
    ncu)
      OUT=$W/ncu timeout "$LIMIT_BENCH" bash tools/ncu_case.sh ${CASES:+${CASES//,/ }} > "$W/ncu.txt" 2>&1
      echo "ncu: rc $?, $(( $(date +%s) - t0 )) s"
      grep -E '^(==|stall)' "$W/ncu.txt"
      rm -f "$W"/ncu/*.ncu-rep ;;
    ctime)
      # cold compiles alone on this machine's CPU (tools/compile_time.py)
      LD_LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
        timeout "$LIMIT_BENCH" python3 tools/compile_time.py --attnc build-gpu/attnc ${CASES:+--cases "$CASES"} \
        ${CTIME_ARGS:-} > "$W/ctime.txt" 2>&1
      echo "ctime: rc $?, $(( $(date +%s) - t0 )) s; $(grep -m1 'model name' /proc/cpuinfo)"
      cat "$W/ctime.txt" ;;
    *) echo "unknown step $s (verify nows dense sanitize racecheck unit cli bench sweep ab ncu ctime)" ;;
  esac
  pack
done
