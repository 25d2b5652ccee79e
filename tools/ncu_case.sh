#!/bin/bash
# tools/ncu_case.sh -- ON THE GPU MACHINE: profile attnc's kernel for bench
# cases with Nsight Compute (--set full, one launch after the warm-up), and
# write each report's details page as text into $OUT/ncu-<case>.txt.
#   tools/ncu_case.sh documents_64_2048 sliding_window_1024_d64
# Extra ncu options go in $NCU_OPTS; ATTNC_CUDA_* overrides pass through.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/attnc-ncu}
mkdir -p "$OUT"
tools/gpu_build.sh > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
export LD_LIBRARY_PATH=/opt/deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
for c in "$@"; do
  timeout 240 ncu --set full -k regex:attnc_fwd --launch-skip 3 --launch-count 1 ${NCU_OPTS:-} \
    -f -o "$OUT/ncu-$c" python3 bench/gpu/bench.py --cases "$c" --no-flex --out "$OUT/bench-$c" \
    > "$OUT/ncu-$c.log" 2>&1
  ncu -i "$OUT/ncu-$c.ncu-rep" --page details > "$OUT/ncu-$c.txt" 2>&1
  # why warps wait: the sampled stall reasons, most frequent first
  ncu -i "$OUT/ncu-$c.ncu-rep" --page raw --csv 2>/dev/null | python3 -c '
import csv, sys
rows = list(csv.reader(sys.stdin))
if len(rows) >= 3:
    st = [(h, v) for h, v in zip(rows[0], rows[2]) if "pcsamp_warps_issue_stalled" in h and not h.endswith("_not_issued")]
    st = [(h.split("stalled_")[1], float(v.replace(",", ""))) for h, v in st if v.replace(",", "").replace(".", "").isdigit()]
    tot = sum(v for _, v in st) or 1
    for h, v in sorted(st, key=lambda x: -x[1])[:12]:
        print(f"stall {h:28s} {100 * v / tot:5.1f} %")
' >> "$OUT/ncu-$c.txt" 2>&1
  # where they wait: the SASS lines with the most stall samples (source page)
  ncu -i "$OUT/ncu-$c.ncu-rep" --page source --csv --print-source sass > "$OUT/ncu-$c-sass.csv" 2>&1
  python3 - "$OUT/ncu-$c-sass.csv" > "$OUT/ncu-$c-hot.txt" 2>&1 <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], errors="replace")))
hdr = next((r for r in rows if any("Source" == h.strip() for h in r)), None)
if not hdr:
    print("no source page:", " | ".join(rows[0][:8]) if rows else "empty"); sys.exit()
i0 = rows.index(hdr)
src = hdr.index("Source")
cols = [j for j, h in enumerate(hdr) if "Sampling" in h and "All" in h] or \
       [j for j, h in enumerate(hdr) if "Sampling" in h]
if not cols:
    print("columns:", hdr); sys.exit()
c = cols[0]
def num(x):
    try: return float(x.replace(",", ""))
    except ValueError: return 0.0
body = [r for r in rows[i0 + 1:] if len(r) > max(c, src)]
tot = sum(num(r[c]) for r in body) or 1
print(f"column: {hdr[c]}; {len(body)} SASS lines; top 30 by samples")
for r in sorted(body, key=lambda r: -num(r[c]))[:30]:
    print(f"{100 * num(r[c]) / tot:5.1f} %  {r[src].strip()[:90]}")
# by opcode
ops = {}
for r in body:
    t = r[src].strip().split()
    t = [w for w in t if not w.startswith("@")]
    if t: ops[t[0]] = ops.get(t[0], 0) + num(r[c])
print("by opcode:", ", ".join(f"{k} {100 * v / tot:.1f} %" for k, v in sorted(ops.items(), key=lambda x: -x[1])[:15]))
PY
  echo "== $c: $(grep -E 'Duration|Compute \(SM\) Throughput|Issue Slots Busy' "$OUT/ncu-$c.txt" | tr -s ' ' | tr '\n' ';')"
  grep '^stall' "$OUT/ncu-$c.txt" | head -6
  head -24 "$OUT/ncu-$c-hot.txt"
done
