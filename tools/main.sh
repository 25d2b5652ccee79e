#!/bin/bash
# main.sh -- the main job: set up and build (tools/setup.sh), then for every
# spec in specs/ compile it and run it on small random inputs, one line per
# spec:
#   - the reference's result: the density of allowed pairs, queries with no
#     allowed key, mean |O| (attnc verify --target ref, which also checks the
#     kernel API path against the reference itself);
#   - for each target built in (attnc --version): verify PASS or FAIL with the
#     max abs error against the reference. cuda without a GPU or driver is
#     "skipped (no GPU)".
# Shapes: attnc verify's defaults (B=1, H=2, S = the grid's tokens or 200,
# D = 64) with one kv head (GQA); S = 200 leaves ragged tiles.
# Exit status: 0 when nothing failed, 1 otherwise.
#   ATTNC_BUILD_DIR   the build directory (default build)
#   ATTNC_MAIN_SPECS  the specs to check (default specs/*.lua)
#   ATTNC_NO_SETUP=1  use the build as it is (no apt, no rebuild: the GPU machine)
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${ATTNC_BUILD_DIR:-build}
if [ "${ATTNC_NO_SETUP:-0}" != 1 ]; then
  bash tools/setup.sh || { echo "main: setup failed"; exit 1; }
fi
A=$BUILD/attnc
[ -x "$A" ] || { echo "main: $A was not built"; exit 1; }

TARGETS=" $("$A" --version | sed -n 's/^targets: //p') "
echo "main: $("$A" --version | head -1), targets:$TARGETS"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# field JSON KEY: the value of "KEY" in a one-line JSON object
field() { sed -n "s/.*\"$2\": \([^,}]*\).*/\1/p" <<<"$1"; }

fails=0 passes=0 skips=0
# check SPEC TARGET: verify one target; prints its column, counts the result
check() {
  local spec=$1 t=$2 out err
  out=$("$A" verify "$spec" --target "$t" --hkv 1 --json 2>"$T/err")
  local st=$?
  err=$(head -1 "$T/err")
  if [ $st -eq 0 ] || [ $st -eq 1 ]; then
    local e
    e=$(field "$out" max_abs_err)
    if [ "$(field "$out" pass)" = true ]; then
      printf '%s: PASS %-8.2g' "$t" "$e"; passes=$((passes + 1))
    else
      printf '%s: FAIL %s (LSE %s, tol %s)' "$t" "$e" "$(field "$out" max_abs_err_lse)" "$(field "$out" tol)"
      fails=$((fails + 1))
    fi
  elif [ "$t" = cuda ] && grep -q "no device" <<<"$err"; then
    printf '%s: skipped (no GPU)' "$t"; skips=$((skips + 1))
  else
    printf '%s: FAIL (%s)' "$t" "${err#attnc: }"; fails=$((fails + 1))
  fi
}

specs=(${ATTNC_MAIN_SPECS:-specs/*.lua})
for spec in "${specs[@]}"; do
  name=$(basename "$spec" .lua)
  printf '%-20s ' "$name"
  if ! "$A" compile "$spec" --emit ir -o "$T/ir" 2>"$T/err"; then
    echo "compile FAIL: $(head -1 "$T/err")"; fails=$((fails + 1)); continue
  fi
  out=$("$A" verify "$spec" --target ref --hkv 1 --json 2>"$T/err")
  if [ $? -gt 1 ]; then
    echo "ref FAIL: $(head -1 "$T/err")"; fails=$((fails + 1)); continue
  fi
  shape=$(sed -n 's/.*"shape": \[\([^]]*\)\].*/\1/p' <<<"$out" | tr -d ' ')
  printf 'S=%-4s ref: density %-7.4f empty rows %-3s mean|O| %.4f' \
    "$(cut -d, -f3 <<<"$shape")" "$(field "$out" density)" "$(field "$out" empty_rows)" \
    "$(field "$out" mean_abs_o)"
  [ "$(field "$out" pass)" = true ] || { printf ' (kernel API path FAIL)'; fails=$((fails + 1)); }
  for t in cpu cuda; do
    printf ' | '
    if [[ $TARGETS == *" $t "* ]]; then check "$spec" "$t"; else printf '%s: not built' "$t"; fi
  done
  echo
done
echo "main: ${#specs[@]} specs; $passes target checks passed, $fails failed, $skips skipped"
[ $fails -eq 0 ]
