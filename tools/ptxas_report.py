#!/usr/bin/env python3
"""tools/ptxas_report.py -- what ptxas makes of every benchmark kernel, on
this machine (no GPU): per case of bench/gpu/bench.py, the tiles attnc picks
at the case's length (`attnc compile --seq`), and ptxas's registers, spill
bytes and whether it serialised the wgmmas (its C7514 / C7515 remark).
A check before spending GPU time on a kernel change: spills and serialised
wgmmas show here, not only as a slower benchmark.

  python3 tools/ptxas_report.py [--attnc build/attnc] [--arch sm_90a] [--cases a,b]

Registers are the kernel's at launch: a warp-specialised kernel's compute
warps take more with setmaxnreg (kRegsConsumer in the source).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def cases(want):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gpu", "bench.py"), "--list"],
                         check=True, capture_output=True, text=True).stdout
    cs = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [c for c in cs if not want or c["name"] in want]


def add_case_args(ap):
    """the options tools that run attnc over the benchmark's cases share"""
    ap.add_argument("--attnc", default=os.path.join(ROOT, "build", "attnc"))
    ap.add_argument("--arch", default="sm_90a")
    ap.add_argument("--cases", default="")


def each_case(args, tool):
    """(case, a temporary directory) for each case --cases names (all by default);
    exits first where --attnc is not there"""
    if not os.access(args.attnc, os.X_OK):
        sys.exit(f"{tool}: no attnc at {args.attnc} (build it, or pass --attnc)")

    def walk():
        with tempfile.TemporaryDirectory(prefix=f"attnc-{tool}-") as tmp:
            for c in cases([x for x in args.cases.split(",") if x]):
                yield c, tmp
    return walk()


def spec_path(c, tmp):
    """the case's spec file (a case with its source inline: written to tmp)"""
    spec = c["spec"]
    if not spec:
        spec = os.path.join(tmp, c["name"] + ".lua")
        with open(spec, "w") as f:
            f.write(c["src"])
    return spec


def compile_case(attnc, arch, c, tmp, emit):
    spec = spec_path(c, tmp)
    out = os.path.join(tmp, f"{c['name']}.{emit}")
    cmd = [attnc, "compile", spec, "--target", "cuda", "--arch", arch, "--emit", emit,
           "--head-dim", str(c["D"]), "--seq", str(c["S"]), "-o", out]
    for k, v in c["defs"].items():
        cmd += ["-D", f"{k}={v}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(r.stderr.strip() or f"attnc exited {r.returncode}")
    with open(out) as f:
        return f.read()


def main():
    ap = argparse.ArgumentParser()
    add_case_args(ap)
    args = ap.parse_args()
    ptxas = shutil.which("ptxas") or "/usr/local/cuda/bin/ptxas"
    if not os.path.exists(ptxas):
        sys.exit("ptxas_report: no ptxas on PATH or in /usr/local/cuda/bin")
    todo = each_case(args, "ptxas_report")
    print(f"ptxas {args.arch}; registers at launch, spill bytes stored / loaded, stack frame bytes "
          "(local memory: spills or an array indexed at run time)\n")
    print("| case | tiles | registers | spills | stack | wgmma serialised |")
    print("|---|---|---|---|---|---|")
    bad = 0
    for c, tmp in todo:
        try:
            src = compile_case(args.attnc, args.arch, c, tmp, "cuda")
            compile_case(args.attnc, args.arch, c, tmp, "ptx")
        except RuntimeError as e:
            print(f"| {c['name']} | attnc failed: {e} | | | | |")
            bad += 1
            continue
        m = re.search(r"^// schedule: ([^;]*)", src, re.M)
        tiles = m.group(1) if m else "?"
        r = subprocess.run([ptxas, "-v", f"-arch={args.arch}", os.path.join(tmp, c["name"] + ".ptx"),
                            "-o", os.path.join(tmp, "k.cubin")], capture_output=True, text=True)
        log = r.stdout + r.stderr
        if r.returncode:
            print(f"| {c['name']} | {tiles} | ptxas failed | | | |")
            bad += 1
            continue
        # the attention kernel's lines (a data iterator's pre-pass comes first)
        fwd = log[log.find("'attnc_fwd'"):] if "'attnc_fwd'" in log else log
        regs = re.search(r"Used (\d+) registers", fwd)
        st = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", fwd)
        stack = re.search(r"(\d+) bytes stack frame", fwd)
        serial = "C7514" in log or "C7515" in log or "serialized" in log
        bad += serial
        print(f"| {c['name']} | {tiles} | {regs.group(1) if regs else '?'} | "
              f"{st.group(1) + ' / ' + st.group(2) if st else '?'} | {stack.group(1) if stack else '?'} | "
              f"{'**yes**' if serial else 'no'} |")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
