#!/usr/bin/env python3
"""bench/cpu/bench.py -- attnc's CPU kernels against PyTorch on the CPU.

For each case, the same float32 inputs go to
  attnc   bench/cpu/driver.c (built here against the CMake build's
          libattnc.a): the spec's kernel, compiled through LLVM, with the
          cpu plan (sparse iteration), on --threads threads;
  sdpa    torch.nn.functional.scaled_dot_product_attention (is_causal for
          causal, a dense boolean mask for windows);
  flex    torch.nn.attention.flex_attention under torch.compile with a
          block mask (skipped with --no-flex or where torch cannot compile).
It prints best-of-N milliseconds, the effective GFLOP/s of attnc (4*D
FLOPs per allowed pair per head) and the ratios torch / attnc, and checks
that attnc's output matches sdpa's.

torch comes from PyPI and is not a dependency of attnc's build or tests:
  python3 -m venv /tmp/tv && /tmp/tv/bin/pip install torch numpy
  /tmp/tv/bin/python bench/cpu/bench.py --build-dir build
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# name, spec (or built-in), params, B, H, S, D, allowed-pairs formula
CASES = {
    "dense": ("dense", {}, 1, 8, 4096, 64),
    "causal": ("specs/causal.lua", {}, 1, 8, 4096, 64),
    "window256": ("specs/sliding_window.lua", {"window": 256}, 1, 8, 16384, 64),
}


def allowed_pairs(name, S, params):
    if name == "dense":
        return S * S
    if name == "causal":
        return S * (S + 1) // 2
    if name.startswith("window"):
        W = params["window"]
        return sum(min(i + 1, W) for i in range(S))
    return None


def build_driver(build_dir, out):
    lib = os.path.join(build_dir, "libattnc.a")
    if not os.path.exists(lib):
        sys.exit(f"bench: {lib} not found; build attnc first (cmake -S . -B {build_dir} && cmake --build {build_dir})")
    llvm_config = shutil.which("llvm-config-19") or "/usr/lib/llvm-19/bin/llvm-config"
    libdir = subprocess.check_output([llvm_config, "--libdir"], text=True).strip()
    cmd = ["cc", "-std=c11", "-O2", "-D_POSIX_C_SOURCE=200809L", f"-I{ROOT}", f"-I{ROOT}/include",
           "-I/usr/include/lua5.4", os.path.join(ROOT, "bench/cpu/driver.c"), lib,
           f"-L{libdir}", "-lLLVM", "-llua5.4", "-lm", "-lpthread", "-ldl", "-o", out]
    if subprocess.call(cmd, stderr=subprocess.DEVNULL) != 0:
        # a library built with the CUDA backend also needs NVRTC
        cuda = [f"-L{d}" for d in ("/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib")
                if os.path.isdir(d)]
        subprocess.check_call(cmd[:-2] + cuda + ["-lnvrtc", "-o", out])


def time_torch(fn, reps):
    fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--no-flex", action="store_true")
    ap.add_argument("--json", action="store_true", help="one JSON object per case")
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F
    torch.set_num_threads(args.threads)

    tmp = tempfile.mkdtemp(prefix="attnc_bench_")
    driver = os.path.join(tmp, "driver")
    build_driver(os.path.abspath(args.build_dir), driver)
    rows = []
    for name in args.cases.split(","):
        spec, params, B, H, S, D = CASES[name]
        g = torch.Generator().manual_seed(0)
        q, k, v = (torch.randn(B, H, S, D, generator=g) for _ in range(3))
        for t, n in ((q, "q"), (k, "k"), (v, "v")):
            t.numpy().tofile(os.path.join(tmp, n + ".bin"))
        pat = spec if spec == "dense" else os.path.join(ROOT, spec)
        cmd = [driver, pat, str(B), str(H), str(S), str(D), "f32", str(args.threads), str(args.reps), tmp]
        cmd += [f"{k_}={v_}" for k_, v_ in params.items()]
        res = json.loads(subprocess.check_output(cmd, text=True).strip().splitlines()[-1])
        ours = res["best_ms"]
        o = torch.from_numpy(__import__("numpy").fromfile(os.path.join(tmp, "o.bin"), dtype="float32")).reshape(B, H, S, D)

        # torch SDPA
        mask = None
        if name == "causal":
            sdpa = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif name.startswith("window"):
            W = params["window"]
            i = torch.arange(S)
            d_ = i[:, None] - i[None, :]
            mask = (d_ >= 0) & (d_ < W)
            sdpa = lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            sdpa = lambda: F.scaled_dot_product_attention(q, k, v)
        ref = sdpa()
        err = (o - ref).abs().max().item()
        t_sdpa = time_torch(sdpa, args.reps)

        t_flex = None
        if not args.no_flex:
            try:
                from torch.nn.attention.flex_attention import flex_attention, create_block_mask
                if name == "causal":
                    mm = lambda b, h, qi, ki: qi >= ki
                elif name.startswith("window"):
                    W = params["window"]
                    mm = lambda b, h, qi, ki: (qi >= ki) & (qi - ki < W)
                else:
                    mm = lambda b, h, qi, ki: qi >= 0
                bm = create_block_mask(mm, None, None, S, S, device="cpu")
                flex = torch.compile(flex_attention)
                t_flex = time_torch(lambda: flex(q, k, v, block_mask=bm), args.reps)
            except Exception as e:  # torch without CPU flex support, or no compiler
                print(f"bench: flex_attention skipped for {name}: {type(e).__name__}: {str(e)[:200]}", file=sys.stderr)

        pairs = allowed_pairs(name, S, params)
        gflops = 4 * D * pairs * B * H / (ours * 1e-3) * 1e-9
        row = {"case": name, "B": B, "H": H, "S": S, "D": D, "threads": args.threads,
               "attnc_ms": round(ours, 2), "attnc_gflops": round(gflops, 1), "attnc_compile_ms": res["compile_ms"],
               "iterator": res.get("iterator"), "sdpa_ms": round(t_sdpa, 2),
               "sdpa_over_attnc": round(t_sdpa / ours, 2),
               "flex_ms": round(t_flex, 2) if t_flex else None,
               "flex_over_attnc": round(t_flex / ours, 2) if t_flex else None,
               "max_abs_err_vs_sdpa": err}
        rows.append(row)
        if args.json:
            print(json.dumps(row), flush=True)
    if not args.json:
        print(f"torch {torch.__version__}, {args.threads} threads, fp32, best of {args.reps}")
        print(f"{'case':<10} {'B,H,S,D':<16} {'attnc ms':>9} {'GFLOP/s':>8} {'sdpa ms':>9} {'sdpa/attnc':>10} "
              f"{'flex ms':>9} {'flex/attnc':>10} {'err':>8}")
        for r in rows:
            shape = f"{r['B']},{r['H']},{r['S']},{r['D']}"
            fm = f"{r['flex_ms']:9.1f}" if r["flex_ms"] else f"{'-':>9}"
            fr = f"{r['flex_over_attnc']:10.2f}" if r["flex_over_attnc"] else f"{'-':>10}"
            print(f"{r['case']:<10} {shape:<16} {r['attnc_ms']:9.1f} {r['attnc_gflops']:8.1f} {r['sdpa_ms']:9.1f} "
                  f"{r['sdpa_over_attnc']:10.2f} {fm} {fr} {r['max_abs_err_vs_sdpa']:8.1e}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
