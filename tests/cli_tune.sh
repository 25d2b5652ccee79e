#!/usr/bin/env bash
# cli_tune.sh -- `attnc tune` end to end: tune sliding_window (a param
# sweep) and neighborhood2d at small shapes on the cpu target (ref when cpu
# is not built), with ATTNC_TUNE_DB in a temp folder; check the table, the
# CSV, the database file, that the best is no slower than the default, that
# a later `attnc explain` reports the stored schedule, that a corrupt
# database is a warning (not a failure) and that bad flags are errors.
#   bash tests/cli_tune.sh path/to/attnc      (cwd: the source root)
set -u
ATTNC=${1:?usage: cli_tune.sh path/to/attnc}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export ATTNC_TUNE_DB="$T/cfg/attnc/tune.json"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

target=cpu
tiles=(--block-m 32,64 --block-n 32,64)
if ! "$ATTNC" explain specs/causal.lua --target cpu >/dev/null 2>&1 ||
   ! "$ATTNC" verify specs/causal.lua --target cpu --shape 1,1,16,16 >/dev/null 2>&1; then
  target=ref
  tiles=()
  echo "note: no cpu target in this build; tuning the ref target"
fi

# 1. sliding_window: two windows x (default + 4 tiles)
if ! "$ATTNC" tune specs/sliding_window.lua -D window=8,32 --target $target --shape 1,2,256,32 \
     "${tiles[@]}" --iters 3 >"$T/sw.txt" 2>"$T/sw.err"; then
  fail "tune sliding_window exited $?"; cat "$T/sw.err"
fi
grep -q '^params' "$T/sw.txt" || fail "no table header"
[ "$(grep -c '^window=8 ' "$T/sw.txt")" -ge 1 ] || fail "no rows for window=8"
[ "$(grep -c '^window=32 ' "$T/sw.txt")" -ge 1 ] || fail "no rows for window=32"
[ "$(grep -c 'default' "$T/sw.txt")" -ge 2 ] || fail "the default is not a candidate of each combination"
[ "$(grep -c '\*best' "$T/sw.txt")" -eq 2 ] || fail "want one best per combination"
grep -q '^tune: \[1/' "$T/sw.err" || fail "no progress lines on stderr (not a tty)"
grep -q "stored 2 schedules in $ATTNC_TUNE_DB" "$T/sw.txt" || fail "database not reported"
[ -s "$ATTNC_TUNE_DB" ] || fail "database not written"
ls "$(dirname "$ATTNC_TUNE_DB")" | grep -q tmp && fail "temp file left behind"

# the best of each combination is at least as fast as its default
python3 - "$T/sw.txt" <<'EOF' || fail "best slower than the default"
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.startswith("window=")]
for combo in {r[0] for r in rows}:
    mine = [r for r in rows if r[0] == combo]
    best = [r for r in mine if "*best" in r][0]
    dflt = [r for r in mine if r[1] == "default"][0]
    assert float(best[6]) <= float(dflt[6]), (combo, best, dflt)
EOF

# the database: JSON with the entries tune reported
python3 - "$ATTNC_TUNE_DB" "$target" <<'EOF' || fail "database content"
import json, sys
db = json.load(open(sys.argv[1]))
assert db["version"] == 1
es = [e for e in db["entries"] if e["spec"] == "sliding_window"]
assert len(es) == 2, es
assert {e["params"] for e in es} == {"window=8", "window=32"}
for e in es:
    assert e["target"] == sys.argv[2] and e["s"] == 256 and e["d"] == 32 and e["bh"] == 2, e
    assert e["ms"] <= e["default_ms"], e
EOF

# 2. neighborhood2d (a grid: raster order is a candidate too), CSV
if ! "$ATTNC" tune specs/neighborhood2d.lua --target $target --shape 1,2,64,32 "${tiles[@]}" \
     --iters 3 --csv >"$T/nb.csv" 2>"$T/nb.err"; then
  fail "tune neighborhood2d exited $?"; cat "$T/nb.err"
fi
head -1 "$T/nb.csv" | grep -q '^params,block_m,block_n,warps,stages,order,median_ms,speedup,max_err,status,best$' ||
  fail "CSV header"
[ "$(grep -c ',1$' "$T/nb.csv")" -eq 1 ] || fail "CSV: want one best row"
grep -q ',default,' "$T/nb.csv" || fail "CSV: no default row"
if [ $target = cpu ]; then grep -q ',raster,' "$T/nb.csv" || fail "CSV: no raster candidate for a grid"; fi
python3 - "$ATTNC_TUNE_DB" <<'EOF' || fail "neighborhood2d entry"
import json, sys
db = json.load(open(sys.argv[1]))
assert len(db["entries"]) == 3, len(db["entries"])
nb = [e for e in db["entries"] if e["spec"] == "neighborhood2d"]
assert len(nb) == 1 and nb[0]["ms"] <= nb[0]["default_ms"], nb
EOF

# 3. a later explain picks the stored schedule up (and says so)
for spec in "specs/sliding_window.lua -D window=32 --shape 1,2,256,32" "specs/neighborhood2d.lua --shape 1,2,64,32"; do
  # shellcheck disable=SC2086
  "$ATTNC" explain $spec --target $target >"$T/ex.txt" 2>&1 || fail "explain $spec"
  grep -q "chosen by  from tuning database $ATTNC_TUNE_DB" "$T/ex.txt" || { fail "explain $spec: not from the db"; cat "$T/ex.txt"; }
  # shellcheck disable=SC2086
  "$ATTNC" explain $spec --target $target --json >"$T/ex.json" 2>&1 || fail "explain --json $spec"
  grep -q '"schedule_source": "tuned"' "$T/ex.json" || fail "explain --json $spec: schedule_source"
done
# ... with the tile the database holds
python3 - "$ATTNC_TUNE_DB" "$T/ex.json" <<'EOF' || fail "explain shows another schedule than stored"
import json, sys
nb = [e for e in json.load(open(sys.argv[1]))["entries"] if e["spec"] == "neighborhood2d"][0]
ex = json.load(open(sys.argv[2]))
assert ex["tuned"]["block_m"] == nb["block_m"] and ex["tuned"]["block_n"] == nb["block_n"], (ex["tuned"], nb)
if nb["block_m"]:
    assert ex["schedule"]["bm"] >= nb["block_m"] and ex["schedule"]["bn"] == nb["block_n"], (ex["schedule"], nb)
EOF
# another param value: no entry, the heuristics
"$ATTNC" explain specs/sliding_window.lua -D window=5 --shape 1,2,256,32 --target $target >"$T/ex.txt" 2>&1
grep -q "chosen by  heuristics" "$T/ex.txt" || fail "explain without an entry"
# switched off
ATTNC_TUNE_DB=off "$ATTNC" explain specs/neighborhood2d.lua --shape 1,2,64,32 --target $target >"$T/ex.txt" 2>&1
grep -q "chosen by  heuristics" "$T/ex.txt" || fail "ATTNC_TUNE_DB=off"

# 4. a corrupt database: a warning, never a failure; tune rewrites it whole
cp "$ATTNC_TUNE_DB" "$T/good.json"
printf '{"version": 1, "entries": [' >"$ATTNC_TUNE_DB"
"$ATTNC" explain specs/neighborhood2d.lua --shape 1,2,64,32 --target $target >"$T/ex.txt" 2>"$T/ex.err" ||
  fail "explain with a corrupt database"
grep -q "warning: the tuning database .* is corrupt" "$T/ex.err" || fail "no warning for a corrupt database"
grep -q "chosen by  heuristics" "$T/ex.txt" || fail "corrupt database not ignored"
"$ATTNC" verify specs/neighborhood2d.lua --shape 1,2,64,32 --target $target >/dev/null 2>&1 ||
  fail "verify with a corrupt database"
"$ATTNC" tune specs/neighborhood2d.lua --target $target --shape 1,2,64,32 --block-m 32 --block-n 32 \
  --order auto --iters 1 >"$T/nb2.txt" 2>"$T/nb2.err" || fail "tune over a corrupt database"
grep -q "corrupt" "$T/nb2.err" || fail "tune did not warn about the corrupt database"
python3 -c "import json,sys; assert len(json.load(open(sys.argv[1]))['entries']) == 1" "$ATTNC_TUNE_DB" ||
  fail "database not rewritten"

# 5. --db and --dry-run
"$ATTNC" tune specs/sliding_window.lua --target $target --shape 1,1,64,16 --block-m 32 --block-n 32 \
  --iters 1 --db "$T/other.json" >/dev/null 2>&1 || fail "tune --db"
[ -s "$T/other.json" ] || fail "--db not written"
"$ATTNC" tune specs/sliding_window.lua --target $target --shape 1,1,64,16 --block-m 32 --block-n 32 \
  --iters 1 --db "$T/dry.json" --dry-run >/dev/null 2>&1 || fail "tune --dry-run"
[ -e "$T/dry.json" ] && fail "--dry-run wrote the database"

# 6. runtime inputs from --input: documents tuned on given document ids (a
#    .npy written without numpy); inputs that do not fit the spec are one
#    error, naming the spec line, before any candidate runs
python3 - "$T" <<'EOF'
import struct, sys
def npy(path, shape, vals):
    hdr = "{'descr': '<i4', 'fortran_order': False, 'shape': (%s), }" % "".join(f"{n}," for n in shape)
    hdr += " " * ((64 - (10 + len(hdr) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
        f.write(struct.pack(f"<{len(vals)}i", *vals))
npy(sys.argv[1] + "/doc.npy", [256], [t // 16 for t in range(256)])
npy(sys.argv[1] + "/short.npy", [100], [0] * 100)
EOF
if ! "$ATTNC" tune specs/document.lua --target $target --shape 1,2,256,32 "${tiles[@]}" --iters 1 \
     --input doc="$T/doc.npy" --dry-run >"$T/doc.txt" 2>"$T/doc.err"; then
  fail "tune --input exited $?"; cat "$T/doc.err"
fi
[ "$(grep -c '\*best' "$T/doc.txt")" -eq 1 ] || { fail "tune --input: no best"; cat "$T/doc.txt"; }
grep -q 'error' "$T/doc.txt" && fail "tune --input: a candidate failed"
for bad in "doc=$T/short.npy" "nope=$T/doc.npy"; do
  "$ATTNC" tune specs/document.lua --target $target --shape 1,2,256,32 --iters 1 --input "$bad" \
    --dry-run >"$T/out" 2>"$T/err"
  st=$?
  [ $st -eq 2 ] || fail "tune --input $bad: exit $st (want 2)"
  [ "$(wc -l <"$T/err")" -eq 1 ] || { fail "tune --input $bad: not one error line"; cat "$T/err"; }
  [ -s "$T/out" ] && { fail "tune --input $bad: printed a table"; cat "$T/out"; }
  case $bad in
    doc=*) grep -q "document.lua:12: runtime input 'doc' has shape \[100\]" "$T/err" ||
             { fail "tune --input $bad: the error does not name the spec line"; cat "$T/err"; } ;;
  esac
done

# 7. user errors: exit 2, one line
for args in "" "specs/causal.lua" "specs/causal.lua --target cpu --block-m x" \
            "specs/causal.lua --target ref -D window" "specs/causal.lua --target ref --order sideways" \
            "specs/nope.lua --target ref"; do
  # shellcheck disable=SC2086
  "$ATTNC" tune $args >/dev/null 2>"$T/err"
  st=$?
  [ $st -eq 2 ] || fail "tune $args: exit $st (want 2)"
  [ "$(wc -l <"$T/err")" -eq 1 ] || { fail "tune $args: not one error line"; cat "$T/err"; }
done
"$ATTNC" tune --help | grep -q "tuning database" || fail "tune --help"
"$ATTNC" --help | grep -q "tune" || fail "attnc --help does not list tune"

if [ $fails -ne 0 ]; then echo "cli_tune: $fails failures"; exit 1; fi
echo "cli_tune: ok ($target)"
