#!/usr/bin/env bash
# cli_errors.sh -- the attnc command line fed bad input: every case must
# exit with status 2 and print exactly one line on stderr, "attnc: ...",
# holding the expected text; none may crash. Also checks --help/--version.
#   bash tests/cli_errors.sh path/to/attnc      (cwd: the source root)
set -u
ATTNC=${1:?usage: cli_errors.sh path/to/attnc}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0 n=0

# expect STATUS TEXT -- CMD...: run CMD, check its status and that stderr
# is one line starting "attnc: " and containing TEXT (for status 2)
expect() {
  local want=$1 text=$2
  shift 3
  n=$((n + 1))
  "$@" >"$T/out" 2>"$T/err"
  local st=$? lines
  lines=$(wc -l <"$T/err")
  if [ "$st" -ne "$want" ]; then
    echo "FAIL: exit $st (want $want): $*"; sed 's/^/    /' "$T/err"; fails=$((fails + 1)); return
  fi
  if [ "$want" -eq 2 ]; then
    if [ "$lines" -ne 1 ] || ! head -c 7 "$T/err" | grep -q '^attnc: ' || ! grep -qF -- "$text" "$T/err"; then
      echo "FAIL: want one line 'attnc: ...$text...': $*"; sed 's/^/    /' "$T/err"; fails=$((fails + 1))
    fi
  elif [ -n "$text" ] && ! grep -qF -- "$text" "$T/out"; then
    echo "FAIL: stdout lacks '$text': $*"; fails=$((fails + 1))
  fi
}

# mknpy FILE DESCR SHAPE NBYTES [VERSION] [FORTRAN]: a .npy file of zeros
mknpy() {
  local f=$1 descr=$2 shape=$3 nbytes=$4 ver=${5:-1} fortran=${6:-False}
  local h="{'descr': '$descr', 'fortran_order': $fortran, 'shape': $shape, }"
  local pre=10
  [ "$ver" -ne 1 ] && pre=12
  local pad=$(( (64 - (pre + ${#h} + 1) % 64) % 64 ))
  h="$h$(printf '%*s' "$pad" '')"$'\n'
  local len=${#h}
  {
    printf '\x93NUMPY'
    # shellcheck disable=SC2059  # the format is the bytes themselves
    printf "\\x$(printf %02x "$ver")\\x00"
    # shellcheck disable=SC2059
    printf "\\x$(printf %02x $((len & 255)))\\x$(printf %02x $((len >> 8)))"
    [ "$ver" -ne 1 ] && printf '\x00\x00'
    printf '%s' "$h"
    head -c "$nbytes" /dev/zero
  } >"$f"
}

CAUSAL=specs/causal.lua DOC=specs/document.lua NB2=specs/neighborhood2d.lua
mknpy "$T/q.npy" '<f4' '(1, 2, 16, 8)' $((2 * 16 * 8 * 4))
mknpy "$T/k1.npy" '<f4' '(1, 1, 16, 8)' $((16 * 8 * 4))
mknpy "$T/q3.npy" '<f4' '(1, 3, 16, 8)' $((3 * 16 * 8 * 4))
mknpy "$T/k2.npy" '<f4' '(1, 2, 16, 4)' $((2 * 16 * 4 * 4))
mknpy "$T/rank3.npy" '<f4' '(2, 16, 8)' $((2 * 16 * 8 * 4))
mknpy "$T/q64.npy" '<f8' '(1, 2, 16, 8)' $((2 * 16 * 8 * 8))
mknpy "$T/f16.npy" '<f2' '(1, 2, 16, 8)' $((2 * 16 * 8 * 2))
mknpy "$T/be.npy" '>f4' '(1, 2, 16, 8)' $((2 * 16 * 8 * 4))
mknpy "$T/short.npy" '<f4' '(1, 2, 16, 8)' 100
mknpy "$T/long.npy" '<f4' '(1, 2, 16, 8)' $((2 * 16 * 8 * 4 + 4))
mknpy "$T/fort.npy" '<f4' '(1, 2, 16, 8)' $((2 * 16 * 8 * 4)) 1 True
mknpy "$T/v2.npy" '<f4' '(1, 2, 16, 8)' $((2 * 16 * 8 * 4)) 2
mknpy "$T/v4.npy" '<f4' '(1, 2, 16, 8)' $((2 * 16 * 8 * 4)) 4
mknpy "$T/doc.npy" '<i4' '(16,)' 64
mknpy "$T/doc15.npy" '<i4' '(15,)' 60
mknpy "$T/docf.npy" '<f4' '(16,)' 64
mknpy "$T/doc64.npy" '<i8' '(16,)' 128
mknpy "$T/q60.npy" '<f4' '(1, 1, 60, 8)' $((60 * 8 * 4))
printf 'not a tensor\n' >"$T/text.npy"
: >"$T/empty.npy"
printf '\x93NUMPY\x01\x00\x20\x00{"descr": "<f4", oops }          \n' >"$T/badhdr.npy"
printf '\x93NUMPY\x01\x00\xff\x00{' >"$T/shorthdr.npy"
mkdir "$T/dir.npy"

R=(run "$CAUSAL" --target ref)
QKV=(--q "$T/q.npy" --k "$T/q.npy" --v "$T/q.npy")

# ---- the command line itself
expect 2 "no command given" -- "$ATTNC"
expect 2 "unknown command 'frobnicate'" -- "$ATTNC" frobnicate
expect 2 "unknown option '--frob'" -- "$ATTNC" --frob
expect 2 "unknown option '--qq'" -- "$ATTNC" "${R[@]}" --qq x
expect 2 "unknown option '-x'" -- "$ATTNC" "${R[@]}" -x
expect 2 "option '--q' needs a value" -- "$ATTNC" "${R[@]}" --q
expect 2 "option '--q' given twice" -- "$ATTNC" "${R[@]}" --q a --q b
expect 2 "missing SPEC" -- "$ATTNC" compile
expect 2 "missing SPEC" -- "$ATTNC" run --target ref "${QKV[@]}" -o "$T/o.npy"
expect 2 "unexpected argument 'extra.lua'" -- "$ATTNC" compile "$CAUSAL" extra.lua
expect 2 "missing --q Q.npy" -- "$ATTNC" "${R[@]}" -o "$T/o.npy"
expect 2 "missing -o O.npy" -- "$ATTNC" "${R[@]}" "${QKV[@]}"
expect 2 "-D expects NAME=VALUE (got 'window')" -- "$ATTNC" compile "$CAUSAL" -D window
# targets this build lacks (attnc --version lists those it has)
TARGETS=" $("$ATTNC" --version | sed -n 's/^targets: //p') "
[[ $TARGETS == *" cuda "* ]] ||
  expect 2 "target 'cuda' is not available in this build" -- "$ATTNC" compile "$CAUSAL" --target cuda --emit ir
[[ $TARGETS == *" cpu "* ]] ||
  expect 2 "target 'cpu' is not available in this build" -- "$ATTNC" run "$CAUSAL" --target cpu "${QKV[@]}" -o "$T/o.npy"
expect 2 "unknown target 'tpu'" -- "$ATTNC" compile "$CAUSAL" --target tpu
expect 2 "unknown --emit 'bogus'" -- "$ATTNC" compile "$CAUSAL" --emit bogus
expect 2 "--emit ptx needs --target cuda" -- "$ATTNC" compile "$CAUSAL" --emit ptx
expect 2 "-o $T/k.cubin: cubin files are what --target cuda writes: add --target cuda" -- "$ATTNC" compile "$CAUSAL" -o "$T/k.cubin"
expect 2 "option '--help' takes no value" -- "$ATTNC" compile "$CAUSAL" --emit=ir --help=x
expect 2 "--scale expects a finite number (got 'abc')" -- "$ATTNC" "${R[@]}" "${QKV[@]}" -o "$T/o.npy" --scale abc
expect 2 "--scale must not be 0" -- "$ATTNC" "${R[@]}" "${QKV[@]}" -o "$T/o.npy" --scale 0
expect 2 "--input expects NAME=FILE.npy" -- "$ATTNC" run "$DOC" "${QKV[@]}" -o "$T/o.npy" --input doc
expect 2 "--input 'doc' given twice" -- "$ATTNC" run "$DOC" "${QKV[@]}" -o "$T/o.npy" --input doc=a --input doc=b

# ---- verify and bench
expect 2 "missing --target" -- "$ATTNC" verify "$CAUSAL"
expect 2 "missing SPEC" -- "$ATTNC" verify --target ref
expect 2 "--shape expects B,H,S,D" -- "$ATTNC" verify "$CAUSAL" --target ref --shape 1,2,x,8
expect 2 "--shape expects B,H,S,D" -- "$ATTNC" verify "$CAUSAL" --target ref --shape 1,2,16
expect 2 "--shape expects B,H,S,D" -- "$ATTNC" bench "$CAUSAL" --target ref --shape 1,2,0,8
expect 2 "--hkv 3 must divide the 2 query heads" -- "$ATTNC" verify "$CAUSAL" --target ref --hkv 3
expect 2 "--hkv 3 must divide the 4 query heads" -- "$ATTNC" bench "$CAUSAL" --target ref --shape 1,4,16,8 --kv-heads 3
expect 2 "option '--kv-heads' given twice" -- "$ATTNC" verify "$CAUSAL" --target ref --hkv 1 --kv-heads 1
expect 2 "--dtype expects f32, bf16 or f16 (got 'f8')" -- "$ATTNC" verify "$CAUSAL" --target ref --dtype f8
expect 2 "--tol must not be negative" -- "$ATTNC" verify "$CAUSAL" --target ref --tol -1
expect 2 "--seed expects an integer" -- "$ATTNC" verify "$CAUSAL" --target ref --seed x
expect 2 "--iters expects an integer in [1, 100000] (got '0')" -- "$ATTNC" bench "$CAUSAL" --target ref --iters 0
expect 2 "spec grid 8x8 has 64 tokens but Sq = 60" -- "$ATTNC" verify "$NB2" -D height=8 -D width=8 --target ref --shape 1,1,60,8
expect 2 "runtime input 'doc' has shape [15]" -- "$ATTNC" verify "$DOC" --target ref --shape 1,2,16,8 --input doc="$T/doc15.npy"
expect 2 "unknown runtime input 'route'" -- "$ATTNC" bench "$DOC" --target ref --input route="$T/doc.npy"

# ---- specs
expect 2 "nonexistent.lua" -- "$ATTNC" compile "$T/nonexistent.lua"
printf 'return {\n' >"$T/syntax.lua"
expect 2 "syntax.lua:" -- "$ATTNC" compile "$T/syntax.lua"
expect 2 "nosuchparam" -- "$ATTNC" compile specs/sliding_window.lua -D nosuchparam=3
expect 2 "window" -- "$ATTNC" compile specs/sliding_window.lua -D window=abc
# explain lists the params: value, whether -D set it, the spec's doc
expect 0 "params     window = 1024 (-D; default 16)  -- tokens each query sees" -- \
  "$ATTNC" explain specs/sliding_window.lua -D window=1024
expect 0 '"doc": "1: causal, 0: two-sided"' -- "$ATTNC" explain specs/sliding_window.lua --json

# ---- .npy files
expect 2 "$T/none.npy: cannot open: No such file or directory" -- "$ATTNC" "${R[@]}" --q "$T/none.npy" --k "$T/q.npy" --v "$T/q.npy" -o "$T/o.npy"
expect 2 "$T/dir.npy: is a directory" -- "$ATTNC" "${R[@]}" --q "$T/dir.npy" --k "$T/q.npy" --v "$T/q.npy" -o "$T/o.npy"
expect 2 "$T/text.npy: not a .npy file" -- "$ATTNC" "${R[@]}" --q "$T/text.npy" --k "$T/q.npy" --v "$T/q.npy" -o "$T/o.npy"
expect 2 "$T/empty.npy: not a .npy file" -- "$ATTNC" "${R[@]}" --q "$T/q.npy" --k "$T/empty.npy" --v "$T/q.npy" -o "$T/o.npy"
expect 2 "dtype '<f2' not supported (need float32 or float64)" -- "$ATTNC" "${R[@]}" --q "$T/f16.npy" --k "$T/q.npy" --v "$T/q.npy" -o "$T/o.npy"
expect 2 "dtype '>f4' not supported" -- "$ATTNC" "${R[@]}" --q "$T/be.npy" --k "$T/q.npy" --v "$T/q.npy" -o "$T/o.npy"
expect 2 "$T/short.npy: truncated data" -- "$ATTNC" "${R[@]}" --q "$T/q.npy" --k "$T/q.npy" --v "$T/short.npy" -o "$T/o.npy"
expect 2 "4 unexpected bytes after the data" -- "$ATTNC" "${R[@]}" --q "$T/long.npy" --k "$T/q.npy" --v "$T/q.npy" -o "$T/o.npy"
expect 2 "fortran_order True not supported" -- "$ATTNC" "${R[@]}" --q "$T/fort.npy" --k "$T/q.npy" --v "$T/q.npy" -o "$T/o.npy"
expect 2 "version 4.0 not supported" -- "$ATTNC" "${R[@]}" --q "$T/v4.npy" --k "$T/q.npy" --v "$T/q.npy" -o "$T/o.npy"
expect 2 "$T/badhdr.npy: bad header" -- "$ATTNC" "${R[@]}" --q "$T/badhdr.npy" --k "$T/q.npy" --v "$T/q.npy" -o "$T/o.npy"
expect 2 "$T/shorthdr.npy: truncated header" -- "$ATTNC" "${R[@]}" --q "$T/shorthdr.npy" --k "$T/q.npy" --v "$T/q.npy" -o "$T/o.npy"

# ---- shapes
expect 2 "q must have 4 dims [B, Hq, Sq, D] (got 3: [2, 16, 8])" -- "$ATTNC" "${R[@]}" --q "$T/rank3.npy" --k "$T/q.npy" --v "$T/q.npy" -o "$T/o.npy"
expect 2 "k has D = 4 (dim 3) but q has D = 8" -- "$ATTNC" "${R[@]}" --q "$T/q.npy" --k "$T/k2.npy" --v "$T/q.npy" -o "$T/o.npy"
expect 2 "q has 3 heads, not a multiple of the 2 heads of k and v" -- "$ATTNC" "${R[@]}" --q "$T/q3.npy" --k "$T/q.npy" --v "$T/q.npy" -o "$T/o.npy"
expect 2 "v has Hkv = 2 (dim 1) but k has Hkv = 1" -- "$ATTNC" "${R[@]}" --q "$T/q.npy" --k "$T/k1.npy" --v "$T/q.npy" -o "$T/o.npy"
expect 2 "spec grid 8x8 has 64 tokens but Sq = 60" -- "$ATTNC" run "$NB2" -D height=8 -D width=8 -D kernel=3 --q "$T/q60.npy" --k "$T/q60.npy" --v "$T/q60.npy" -o "$T/o.npy"

# ---- runtime inputs
expect 2 "missing runtime input 'doc'" -- "$ATTNC" run "$DOC" "${QKV[@]}" -o "$T/o.npy"
expect 2 "unknown runtime input 'route'" -- "$ATTNC" run "$DOC" "${QKV[@]}" -o "$T/o.npy" --input doc="$T/doc.npy" --input route="$T/doc.npy"
expect 2 "unknown runtime input 'doc' (the spec declares no inputs)" -- "$ATTNC" "${R[@]}" "${QKV[@]}" -o "$T/o.npy" --input doc="$T/doc.npy"
expect 2 "runtime input 'doc' has dtype float32 but the spec declares i32" -- "$ATTNC" run "$DOC" "${QKV[@]}" -o "$T/o.npy" --input doc="$T/docf.npy"
expect 2 "dtype '<i8' not supported (need float32, float64 or int32)" -- "$ATTNC" run "$DOC" "${QKV[@]}" -o "$T/o.npy" --input doc="$T/doc64.npy"
expect 2 "runtime input 'doc' has shape [15]" -- "$ATTNC" run "$DOC" "${QKV[@]}" -o "$T/o.npy" --input doc="$T/doc15.npy"

# ---- output files
expect 2 "$T/nodir/o.npy: cannot write: No such file or directory" -- "$ATTNC" "${R[@]}" "${QKV[@]}" -o "$T/nodir/o.npy"
expect 2 "$T/dir.npy: cannot write: is a directory" -- "$ATTNC" "${R[@]}" "${QKV[@]}" -o "$T/dir.npy"
if [ -w /dev/full ]; then
  expect 2 "/dev/full: cannot write: No space left on device" -- "$ATTNC" "${R[@]}" "${QKV[@]}" -o /dev/full
  expect 2 "/dev/full: cannot write: No space left on device" -- "$ATTNC" compile "$CAUSAL" --emit ir -o /dev/full
fi

# ---- what must work
expect 0 "usage: attnc COMMAND" -- "$ATTNC" --help
expect 0 "attnc " -- "$ATTNC" --version
for verb in compile run verify bench; do
  expect 0 "usage: attnc $verb" -- "$ATTNC" "$verb" --help
  expect 0 "usage: attnc $verb" -- "$ATTNC" help "$verb"
done
expect 0 "" -- "$ATTNC" "${R[@]}" "${QKV[@]}" -o "$T/o.npy" --lse "$T/lse.npy"
expect 0 "" -- "$ATTNC" "${R[@]}" --q "$T/q64.npy" --k "$T/v2.npy" --v "$T/q.npy" -o "$T/o.npy"
expect 0 "" -- "$ATTNC" run "$DOC" "${QKV[@]}" -o "$T/o.npy" --input doc="$T/doc.npy"
expect 0 "" -- "$ATTNC" compile "$CAUSAL" --emit ir -o "$T/causal.ir"
expect 0 ": PASS" -- "$ATTNC" verify "$DOC" --target ref --shape 2,4,16,8 --kv-heads 2 --input doc="$T/doc.npy"
expect 0 '"pass": true' -- "$ATTNC" verify "$NB2" -D height=8 -D width=8 --target ref --dtype bf16 --json
expect 0 '"allowed_pairs": 40200, "density": 0.5025' -- "$ATTNC" verify "$CAUSAL" --target ref --json
expect 0 '"allowed_pairs": 40200, "density": 0.5025' -- "$ATTNC" verify "$CAUSAL" --target ref --dtype bf16 --json
expect 0 "GFLOP/s" -- "$ATTNC" bench "$CAUSAL" --target ref --shape 1,2,32,8 --iters 2 --warmup 0
[ -s "$T/causal.ir" ] || { echo "FAIL: compile -o wrote nothing"; fails=$((fails + 1)); }
# explain --target cuda explains the kernel compile builds: the same tiles
# (the table's 128 x 128 at D=128 for causal; 64 x 64 where the plan finds
# many partial tiles), and the kernel kind per arch
if [[ $TARGETS == *" cuda "* ]]; then
  expect 2 "unknown CUDA arch 'sm_7'" -- "$ATTNC" explain "$CAUSAL" --target cuda --arch sm_7
  expect 0 "kernel     sm_80, mma.sync" -- "$ATTNC" explain "$CAUSAL" --target cuda --arch sm_80 --shape 1,1,4096,128
  # an arch before Ampere: said so; Blackwell has no wgmma: the mma.sync kernel
  expect 2 "the cuda target needs sm_80 or newer (--arch sm_75 is sm_75)" -- "$ATTNC" explain "$CAUSAL" --target cuda --arch sm_75
  expect 0 "kernel     sm_100a, mma.sync" -- "$ATTNC" explain "$CAUSAL" --target cuda --arch sm_100 --shape 1,1,4096,128
  # a dilated order's tiles come by TMA where the dilation divides the
  # tokens; elsewhere the launch runs the kernel's copy variant
  expect 0 "K/V by TMA, two buffers), row sums by the MMA, 12 warps" -- \
    "$ATTNC" explain specs/dilated.lua -D window=256 -D dilation=4 --target cuda --shape 1,1,8192,128
  expect 0 "K/V by cp.async, two buffers), row sums by the MMA, 12 warps, 193 KiB shared memory; the copy variant" -- \
    "$ATTNC" explain specs/dilated.lua -D window=256 -D dilation=4 --target cuda --shape 1,1,8191,128
  # the mask code of partial tiles: split and unrolled where they are common
  expect 0 "mask code  split: 6 per row, 2 per column, 7 per pair (statements; a load 8); columns unrolled" -- \
    "$ATTNC" explain $NB2 -D height=64 -D width=64 -D kernel=7 --target cuda --shape 1,1,4096,64
  expect 0 "in a loop over the columns (partial tiles are rare)" -- \
    "$ATTNC" explain "$CAUSAL" --target cuda --shape 1,1,16384,128
  # the score code: ALiBi splits (one FMA an element), softcap does not
  expect 0 "score code split: one FMA an element, s * scale + a column's value (1 distance term" -- \
    "$ATTNC" explain specs/alibi.lua --target cuda --shape 1,4,1024,128
  expect 0 "score code score(s, b, h, q, k) an element" -- \
    "$ATTNC" explain specs/softcap.lua --target cuda --shape 1,4,1024,128
  # log-n scaling: a factor of q alone, once a row; the line is whole (it was
  # cut at 200 bytes)
  expect 0 "s * scale * g (g of q alone or of neither, once a row) + a column's value (0 distance terms c * (k - q), 0 terms of k, once a column); 0 terms of q alone or of neither, added to the LSE" -- \
    "$ATTNC" explain specs/logit_scaling.lua --target cuda --shape 1,4,4096,128
  expect 2 "--seq expects an integer" -- "$ATTNC" compile "$CAUSAL" --target cuda --arch sm_90a --emit cuda --seq 0
  # --seq S: the tiles of a call of about S tokens (window:S:rows, D=64: a
  # 768-token window's 192-row tiles are mostly partial at 512 tokens (64 x 64),
  # a fifth partial at 8192 (64 x 64 too); a 4096-token window's a ninth (192 x 128))
  for c in 768:512:64 768:8192:64 4096:8192:192; do
    n=$((n + 1))
    w=${c%%:*}; rest=${c#*:}; seq=${rest%:*}; bm=${rest#*:}
    ATTNC_CACHE_DIR=off "$ATTNC" compile specs/sliding_window.lua -D window=$w --target cuda --arch sm_90a \
      --head-dim 64 --seq $seq --emit cuda -o "$T/s.cu"
    grep -q "kBlockM = $bm;" "$T/s.cu" || { echo "FAIL: window $w --seq $seq: $(grep -o 'kBlockM = [0-9]*' "$T/s.cu")"; fails=$((fails + 1)); }
  done
  # without --emit, -o's extension picks the kind
  n=$((n + 1))
  ATTNC_CACHE_DIR=off "$ATTNC" compile "$CAUSAL" --target cuda --arch sm_90a -o "$T/k.ptx"
  grep -q "^\.target sm_90a" "$T/k.ptx" || { echo "FAIL: -o k.ptx did not write PTX"; head -3 "$T/k.ptx"; fails=$((fails + 1)); }
  for spec in "$CAUSAL" "$NB2 -D height=64 -D width=64 -D kernel=7"; do
    "$ATTNC" explain $spec --target cuda --arch sm_90a --shape 1,1,4096,128 >"$T/ex.txt" 2>&1
    ATTNC_CACHE_DIR=off "$ATTNC" compile $spec --target cuda --arch sm_90a --head-dim 128 --emit cuda -o "$T/k.cu"
    n=$((n + 1))
    tiles=$(sed -n 's/^schedule   q tile \([0-9]*\), kv tile \([0-9]*\).*/\1 x \2 tiles/p' "$T/ex.txt")
    if [ -z "$tiles" ] || ! grep -q "^// schedule: $tiles, .*wgmma" "$T/k.cu" || ! grep -q "^kernel     sm_90a, wgmma" "$T/ex.txt"; then
      echo "FAIL: explain and compile disagree for $spec: '$tiles'"; sed 's/^/    /' "$T/ex.txt"; grep "^// schedule" "$T/k.cu"
      fails=$((fails + 1))
    fi
  done
fi
for f in "$T"/*.tmp.* "$T"/dir.npy/*.tmp.*; do
  [ -e "$f" ] && { echo "FAIL: temporary file left behind: $f"; fails=$((fails + 1)); }
done

echo "cli_errors: $((n - fails)) of $n cases pass"
[ "$fails" -eq 0 ]
