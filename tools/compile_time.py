#!/usr/bin/env python3
"""tools/compile_time.py -- where a cold compile's time goes, per case of
bench/gpu/bench.py: `attnc compile` of the runtime's image with no kernel
cache, the process's wall and CPU time, NVRTC's own time, and NVRTC's
phases (C++ front end, NVVM optimiser, ptxas) from its -time report
(ATTNC_NVRTC_TIME); where the kernel has pre-passes, compiled as a second
program beside it, that program's phases in the last column. No GPU
needed; run it on the GPU machine alone to see its CPU's share of the
benchmark's cold column.

  python3 tools/compile_time.py [--attnc build/attnc] [--arch sm_90a] [--cases a,b] [--rounds 3]

Each number is the median of --rounds compiles.
"""
import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ptxas_report import add_case_args, each_case, spec_path  # noqa: E402


def phases(path):
    """{phase: ms} from NVRTC's -time CSV (one compile's rows)"""
    out = {}
    with open(path) as f:
        for row in csv.reader(f):
            if len(row) >= 4 and row[3].strip() == "ms":
                out[row[1].strip()] = out.get(row[1].strip(), 0.0) + float(row[2])
    return out


def one(attnc, arch, c, tmp):
    spec = spec_path(c, tmp)
    tfile = os.path.join(tmp, "time.csv")
    for f in (tfile, tfile + ".2"):
        if os.path.exists(f):
            os.unlink(f)
    # CUDA_CACHE_DISABLE: NVRTC's own cache (the driver's compute cache, on a
    # GPU machine) off, as in bench/gpu/bench.py: a source compiled before
    # would come back without ptxas, and its set-up would start the driver
    env = dict(os.environ, ATTNC_CACHE_DIR="off", ATTNC_NVRTC_TIME=tfile, CUDA_CACHE_DISABLE="1")
    # --emit cuda: the build compiles the runtime's image (--emit cubin would
    # compile one cubin of every kernel after it, where the image is two)
    cmd = [attnc, "compile", spec, "--target", "cuda", "--arch", arch, "--emit", "cuda",
           "--head-dim", str(c["D"]), "--seq", str(c["S"]), "--json", "-o", os.path.join(tmp, "k.cu")]
    for k, v in c["defs"].items():
        cmd += ["-D", f"{k}={v}"]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = (time.perf_counter() - t0) * 1e3
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode:
        raise RuntimeError(r.stderr.strip() or f"attnc exited {r.returncode}")
    info = json.loads(r.stdout.strip().splitlines()[-1])
    cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * 1e3
    ph = phases(tfile) if os.path.exists(tfile) else {}
    second = sum(phases(tfile + ".2").values()) if os.path.exists(tfile + ".2") else 0.0
    return dict(wall=wall, cpu=cpu, nvrtc=info.get("compile_ms", 0.0),
                front=ph.get("CUDA C++ Frontend", 0.0), nvvm=ph.get("NVVM Optimizer", 0.0),
                ptxas=ph.get("PTX Translation", 0.0), second=second)


def main():
    ap = argparse.ArgumentParser()
    add_case_args(ap)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    todo = each_case(args, "compile_time")
    print(f"cold `attnc compile` for {args.arch}, no cache; ms, median of {args.rounds}; "
          f"{os.cpu_count()} CPUs\n")
    keys = ["wall", "cpu", "nvrtc", "front", "nvvm", "ptxas", "second"]
    print("| case | process wall | process CPU | NVRTC | front end | NVVM | ptxas | pre-passes' program |")
    print("|---|---|---|---|---|---|---|---|")
    bad = 0
    for c, tmp in todo:
        try:
            runs = [one(args.attnc, args.arch, c, tmp) for _ in range(max(1, args.rounds))]
        except RuntimeError as e:
            print(f"| {c['name']} | attnc failed: {e} | | | | | | |")
            bad += 1
            continue
        med = {k: statistics.median(r[k] for r in runs) for k in keys}
        print(f"| {c['name']} | " + " | ".join(f"{med[k]:.0f}" for k in keys) + " |")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
