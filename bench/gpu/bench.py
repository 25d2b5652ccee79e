#!/usr/bin/env python3
"""bench/gpu/bench.py -- attnc against FlexAttention and SDPA (flash, cuDNN)
on the same inputs in one run, on the GPU machine (see bench/gpu/run.sh).

Per case: attnc's time, effective TFLOP/s (4*D FLOPs per allowed pair per
head, pairs counted exactly on the GPU), ratios to each rival, attnc's
first-call compile with a cold cache and its load with a warm one, Flex's
mask build, and the max abs error of attnc's output against Flex / SDPA.

  python3 bench/gpu/bench.py [--lib build-gpu/libattnc.so] [--out DIR]
                             [--cases a,b,...] [--sweep] [--no-flex] [--kernels] [--list]
"""
import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time

# NVRTC (CUDA 12.9 on) also keeps what it compiles in the driver's compute
# cache (~/.nv/ComputeCache), across processes: a source any earlier process
# had compiled came back in 33-41 ms instead of 0.8-1.3 s (H200, session 7),
# so the cold column was not cold. It measures attnc with no cache at all.
os.environ.setdefault("CUDA_CACHE_DISABLE", "1")

try:
    import torch
    import torch.nn.functional as F
    import triton.testing
except ImportError:   # --list needs neither (tools/ptxas_report.py, no GPU)
    torch = F = triton = None

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attnc_ctypes import Lib, Runner  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SPECS = os.path.join(ROOT, "specs")

DENSE_SPEC = 'local a = require "attnc"\nreturn a.pattern {}\n'
ROUTED_OWN_SPEC = '''local a = require "attnc"
local region = a.param("region", 16, { min = 1 })
local topk = a.param("topk", 2, { min = 1 })
local route = a.input("route", "i32", { "B", "H", "S/region", "topk" })
return a.pattern { mask = a.routed { route = route, region = region } }
'''


# ----------------------------------------------------------- the cases
# mask(b, h, q, k) works on broadcast tensors (pair counting) and inside
# Flex's vmap (mask_mod); inputs are built once and given to both.

def grid_coords(x, dims):
    out = []
    for n in reversed(dims):
        out.append(x % n)
        x = x // n
    return list(reversed(out))


def nbhd(dims, K):
    r = K // 2

    def m(b, h, q, k):
        qc, kc = grid_coords(q, dims), grid_coords(k, dims)
        ok = None
        for n, a, c in zip(dims, qc, kc):
            t = torch.abs(c - torch.clamp(a, r, n - 1 - r)) <= r
            ok = t if ok is None else ok & t
        return ok
    return m


def swin(dims, M):
    def m(b, h, q, k):
        qc, kc = grid_coords(q, dims), grid_coords(k, dims)
        ok = None
        for a, c in zip(qc, kc):
            t = (a // M) == (c // M)
            ok = t if ok is None else ok & t
        return ok
    return m


def make_cases():
    C = []

    def case(name, B, H, S, D, mask, spec=None, src=None, defs=None, score=None, inputs=None,
             bh=False, sdpa=None, anchor=None):
        C.append(dict(name=name, B=B, H=H, S=S, D=D, mask=mask, spec=spec, src=src,
                      defs=defs or {}, score=score, inputs=inputs, bh=bh, sdpa=sdpa,
                      anchor=anchor))

    causal = lambda b, h, q, k: q >= k
    sw = lambda W: (lambda b, h, q, k: (q - k >= 0) & (q - k < W))
    case("dense", 2, 16, 8192, 128, None, src=DENSE_SPEC, sdpa="dense", anchor=424)
    case("causal", 2, 16, 8192, 128, causal, spec="causal", sdpa="causal", anchor=396)
    case("sliding_window_1024", 2, 16, 8192, 128, sw(1024), spec="sliding_window",
         defs=dict(window=1024, causal=1), anchor=310)
    case("sinks4_window_1024", 2, 16, 8192, 128,
         lambda b, h, q, k: ((q - k >= 0) & (q - k < 1024)) | ((k <= q) & (k < 4)),
         spec="sinks", defs=dict(window=1024, sinks=4), anchor=275)
    case("dilated_1024_d4", 2, 16, 8192, 128,
         lambda b, h, q, k: (torch.abs(q - k) <= 1024) & ((q - k) % 4 == 0),
         spec="dilated", defs=dict(window=256, dilation=4), anchor=73)
    case("neighborhood2d_128x128_k13", 1, 16, 16384, 64, nbhd([128, 128], 13),
         spec="neighborhood2d", defs=dict(height=128, width=128, kernel=13), anchor=19)
    case("neighborhood3d_16x32x32_k7", 1, 16, 16384, 64, nbhd([16, 32, 32], 7),
         spec="neighborhood3d", defs=dict(depth=16, height=32, width=32, kernel=7), anchor=20)
    case("sliding_window_1024_d64", 4, 16, 8192, 64, sw(1024), spec="sliding_window",
         defs=dict(window=1024, causal=1), anchor=280)
    case("swin2d_16_on_128x128", 1, 16, 16384, 64, swin([128, 128], 16), spec="swin2d",
         defs=dict(height=128, width=128, window=16, shift=0), anchor=19)

    def doc_inputs_of(lo, hi):      # documents of lo..hi tokens, the last cut at S
        return lambda c, dev, g: doc_inputs(c, dev, g, lo, hi)

    def doc_inputs(c, dev, g, lo=64, hi=2048):
        lens, tot = [], 0
        while tot < c["S"]:
            n = int(torch.randint(lo, hi + 1, (1,), generator=g))
            n = min(n, c["S"] - tot)
            lens.append(n)
            tot += n
        doc = torch.repeat_interleave(torch.arange(len(lens), dtype=torch.int32),
                                      torch.tensor(lens)).to(dev)
        return {"doc": doc}

    def doc_mask(inp):
        doc = inp["doc"]
        return lambda b, h, q, k: doc[q] == doc[k]
    case("documents_64_2048", 1, 16, 16384, 128, doc_mask, spec="document",
         defs=dict(causal=0), inputs=doc_inputs, anchor=298)

    def route_inputs(c, dev, g):
        nreg = c["S"] // 256
        r = torch.rand(c["B"], c["H"], nreg, nreg, generator=g).argsort(-1)[..., :8]
        return {"route": r.to(torch.int32).contiguous().to(dev)}

    def route_mask(inp):
        route = inp["route"]

        def m(b, h, q, k):
            rq, rk = q // 256, k // 256
            hit = rq == rk
            for j in range(8):
                hit = hit | (route[b, h, rq, j] == rk)
            return hit
        return m
    case("routed_256_top8", 2, 16, 8192, 128, route_mask, src=ROUTED_OWN_SPEC,
         defs=dict(region=256, topk=8), inputs=route_inputs, bh=True, anchor=386)

    def blocks_inputs(c, dev, g):
        n = c["S"] // 128
        bm = (torch.rand(c["B"], c["H"], n, n, generator=g) < 0.2) | torch.eye(n, dtype=torch.bool)
        return {"blocks": bm.to(torch.int32).contiguous().to(dev)}

    def blocks_mask(inp):
        blocks = inp["blocks"]
        return lambda b, h, q, k: blocks[b, h, q // 128, k // 128] != 0
    case("block_sparse_128_20pct", 2, 16, 8192, 128, blocks_mask, spec="block_sparse",
         defs=dict(block=128), inputs=blocks_inputs, bh=True, anchor=370)

    def alibi_score(H):
        def s(score, b, h, q, k):
            slope = torch.exp2(-8.0 * (h + 1) / H)
            return score + slope * (k - q)
        return s
    case("causal_alibi", 2, 16, 8192, 128, causal, spec="alibi", defs=dict(heads=16),
         score=alibi_score(16), anchor=360)
    case("causal_softcap30", 2, 16, 8192, 128, causal, spec="softcap", defs=dict(cap=30),
         score=lambda s, b, h, q, k: 30.0 * torch.tanh(s / 30.0), anchor=187)
    case("dense_d64", 4, 16, 8192, 64, None, src=DENSE_SPEC, sdpa="dense", anchor=404)
    case("causal_d64", 4, 16, 8192, 64, causal, spec="causal", sdpa="causal", anchor=371)
    # beyond the anchors: documents at 4x the length (the data iterator tests
    # every kv tile of the sequence), the other head dim for the grid windows
    case("documents_64_2048_s65536", 1, 16, 65536, 128, doc_mask, spec="document",
         defs=dict(causal=0), inputs=doc_inputs)
    case("neighborhood2d_128x128_k13_d128", 1, 16, 16384, 128, nbhd([128, 128], 13),
         spec="neighborhood2d", defs=dict(height=128, width=128, kernel=13))
    case("dilated_1024_d4_d64", 4, 16, 8192, 64,
         lambda b, h, q, k: (torch.abs(q - k) <= 1024) & ((q - k) % 4 == 0),
         spec="dilated", defs=dict(window=256, dilation=4))
    # a short window: 64 x 64 tiles behind a producer warpgroup
    case("sliding_window_256", 2, 16, 8192, 128, sw(256), spec="sliding_window",
         defs=dict(window=256, causal=1))
    # packed short sequences (fine-tuning batches): documents of 32-512 tokens
    case("documents_32_512", 1, 16, 16384, 128, doc_mask, spec="document",
         defs=dict(causal=0), inputs=doc_inputs_of(32, 512))
    # the other score modifications of PATTERNS.md: log-n logit scaling
    # (rows past 4096 tokens scaled up) and sink calibration (a per-head
    # delta off the sinks' scores, an input)
    case("causal_logit_scaling", 2, 16, 8192, 128, causal, spec="logit_scaling",
         defs=dict(train=4096),
         score=lambda s, b, h, q, k: s * torch.clamp(torch.log((q + 1).float()) / math.log(4096), min=1.0))

    def delta_inputs(c, dev, g):
        return {"delta": (torch.rand(c["H"], generator=g) * 2.0).to(dev, torch.float32)}

    def sink_calib(inp):
        delta = inp["delta"]
        return lambda s, b, h, q, k: s - torch.where(k < 4, delta[h], 0.0)
    case("sink_calibration_1024", 2, 16, 8192, 128,
         lambda inp: (lambda b, h, q, k: ((q - k >= 0) & (q - k < 1024)) | ((k <= q) & (k < 4))),
         spec="sink_calibration", defs=dict(window=1024, sinks=4), inputs=delta_inputs,
         score=sink_calib)
    return C


# ----------------------------------------------------------- helpers

def bench_ms(fn):
    return triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median")


def kernel_times(fn, calls=20):
    """the device time of each kernel one call launches (mean us, by name)
    and the span of a call, first kernel's start to last one's end (mean
    us): what the pre-passes and the gaps between launches cost"""
    from torch.profiler import profile, ProfilerActivity
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    ev = sorted((e for e in prof.events() if e.device_type.name == "CUDA" and "attnc" in e.name),
                key=lambda e: e.time_range.start)
    per = {}
    for e in ev:
        per.setdefault(e.name, []).append(e.time_range.end - e.time_range.start)
    k = max(1, len(ev) // calls)
    spans = [ev[i + k - 1].time_range.end - ev[i].time_range.start
             for i in range(0, len(ev) - k + 1, k)]
    return ({n: sum(v) / len(v) for n, v in per.items()},
            sum(spans) / len(spans) if spans else None)


def count_pairs(c, mask, dev):
    """allowed (q, k) pairs summed over batch and heads, exactly"""
    B, H, S = c["B"], c["H"], c["S"]
    if mask is None:
        return B * H * S * S
    k = torch.arange(S, device=dev)[None, :]
    total = 0
    for b in range(B if c["bh"] else 1):
        for h in range(H if c["bh"] else 1):
            bt, ht = torch.tensor(b, device=dev), torch.tensor(h, device=dev)
            for q0 in range(0, S, 2048):
                q = torch.arange(q0, min(S, q0 + 2048), device=dev)[:, None]
                total += int(mask(bt, ht, q, k).sum())
    return total if c["bh"] else total * B * H


def sync_time(fn, n=1):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        r = fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / n, r


def fmt(x, p=0):
    if x is None:
        return "-"
    return f"{x:.{p}f}"


def cpu_note(r):
    """ " (812 cpu)": the median CPU time of the cold compiles, where known"""
    c = sorted(r.get("cold_compiles_cpu_ms") or [])
    return f" ({c[len(c) // 2]:.0f} cpu)" if c else ""


# ----------------------------------------------------------- one case

def run_case(c, lib, args, flex_c, dev, g, cold_root):
    B, H, S, D = c["B"], c["H"], c["S"], c["D"]
    res = dict(name=c["name"], shape=[B, H, S, D])
    q, k, v = (torch.randn(B, H, S, D, generator=g, device="cpu").to(dev, torch.bfloat16)
               for _ in range(3))
    inputs = c["inputs"](c, dev, g) if c["inputs"] else {}
    mask = c["mask"](inputs) if c["mask"] is not None and c["inputs"] else c["mask"]
    c = dict(c, score=c["score"](inputs) if c["score"] is not None and c["inputs"] else c["score"])

    pairs = count_pairs(c, mask, dev)
    res["density"] = pairs / (B * H * S * S)
    flops = 4.0 * D * pairs

    # attnc: spec load, cold compile (+ first call), warm load (+ first call)
    spec_kw = dict(source=c["src"], name=c["name"]) if c["src"] else \
        dict(path=os.path.join(SPECS, c["spec"] + ".lua"))
    o = torch.full_like(q, float("nan"))
    stream = torch.cuda.current_stream().cuda_stream
    cold = tempfile.mkdtemp(dir=cold_root)
    os.environ["ATTNC_CACHE_DIR"] = cold
    ctx = lib.ctx()
    t0 = time.perf_counter()
    spec = lib.spec(ctx, defines=c["defs"], **spec_kw)
    res["spec_load_ms"] = (time.perf_counter() - t0) * 1e3
    kern, dt, info = lib.compile(ctx, spec, "bf16", D, seq_hint=S)
    cpus = [lib.last_compile_cpu]
    res["cold_compile_ms"] = dt * 1e3
    res["cold_cached"] = info.cached
    src = lib.source(kern) or ""
    res["schedule"] = next((l[3:].strip() for l in src.splitlines() if l.startswith("// schedule")), "")
    run = Runner(lib, kern, q, k, v, o, inputs, stream)
    t, _ = sync_time(run)
    res["cold_first_call_ms"] = (dt + t) * 1e3
    # two more cold compiles (a new context, an empty cache each): one
    # compile varies by +-30 % between runs on the same source (the CPU is
    # shared with the rivals' compile workers), so the table has the median
    dts = [dt]
    for _ in range(2):
        again = tempfile.mkdtemp(dir=cold_root)
        os.environ["ATTNC_CACHE_DIR"] = again
        ctx3 = lib.ctx()
        spec3 = lib.spec(ctx3, defines=c["defs"], **spec_kw)
        kern3, dt3, _ = lib.compile(ctx3, spec3, "bf16", D, seq_hint=S)
        dts.append(dt3)
        cpus.append(lib.last_compile_cpu)
        lib.lib.attnc_kernel_free(kern3)
        lib.lib.attnc_spec_free(spec3)
        lib.lib.attnc_ctx_free(ctx3)
        shutil.rmtree(again, ignore_errors=True)
    os.environ["ATTNC_CACHE_DIR"] = cold
    res["cold_compiles_ms"] = [x * 1e3 for x in dts]
    res["cold_compiles_cpu_ms"] = [x * 1e3 for x in cpus]
    res["cold_first_call_ms"] = (sorted(dts)[1] + t) * 1e3
    ok_written = bool(torch.isfinite(o).all())
    ms = bench_ms(run)
    res["attnc_ms"] = ms
    res["attnc_tflops"] = flops / ms / 1e9
    if args.kernels:
        res["kernels_us"], res["call_span_us"] = kernel_times(run)
    # warm: a new context (its own memory cache), the disk cache now holds the image
    ctx2 = lib.ctx()
    spec2 = lib.spec(ctx2, defines=c["defs"], **spec_kw)
    kern2, dt2, info2 = lib.compile(ctx2, spec2, "bf16", D, seq_hint=S)
    o2 = torch.empty_like(q)
    run2 = Runner(lib, kern2, q, k, v, o2, inputs, stream)
    t2, _ = sync_time(run2)
    res["warm_compile_ms"] = dt2 * 1e3
    res["warm_cached"] = info2.cached
    res["warm_load_ms"] = (dt2 + max(0.0, t2 - ms / 1e3)) * 1e3
    lib.lib.attnc_kernel_free(kern2)
    lib.lib.attnc_spec_free(spec2)
    lib.lib.attnc_ctx_free(ctx2)
    shutil.rmtree(cold, ignore_errors=True)
    os.environ["ATTNC_CACHE_DIR"] = "off"

    # sweep: other tiles / warps for this case (timing only, checked against o)
    if args.sweep:
        res["sweep"] = []
        for bm, bn, w, mma in SWEEP.get(D, []):
            os.environ["ATTNC_CUDA_WARPS"] = str(w)
            os.environ["ATTNC_CUDA_WGMMA"] = "0" if mma == "sync" else "1"
            os.environ["ATTNC_CUDA_OVERLAP"] = "1" if mma in ("ws", "overlap") else "0"
            os.environ["ATTNC_CUDA_WS"] = "1" if mma == "ws" else "0"
            try:
                kx, dtx, _ = lib.compile(ctx, spec, "bf16", D, seq_hint=S, block_m=bm, block_n=bn)
                ox = torch.empty_like(q)
                rx = Runner(lib, kx, q, k, v, ox, inputs, stream)
                rx()
                msx = bench_ms(rx)
                errx = float((ox.float() - o.float()).abs().max())
                sx = next((l[3:].strip() for l in (lib.source(kx) or "").splitlines()
                           if l.startswith("// schedule")), "")
                res["sweep"].append(dict(bm=bm, bn=bn, warps=w, mma=mma, ms=msx, tflops=flops / msx / 1e9,
                                         err_vs_default=errx, compile_ms=dtx * 1e3, schedule=sx))
                lib.lib.attnc_kernel_free(kx)
            except Exception as e:  # noqa: BLE001
                res["sweep"].append(dict(bm=bm, bn=bn, warps=w, mma=mma, error=str(e)[:200]))
            finally:
                os.environ.pop("ATTNC_CUDA_WARPS", None)
                os.environ.pop("ATTNC_CUDA_WGMMA", None)
                os.environ.pop("ATTNC_CUDA_OVERLAP", None)
                os.environ.pop("ATTNC_CUDA_WS", None)

    # FlexAttention: mask build timed apart, then the compiled kernel
    ref = None
    if not args.no_flex:
        bmask = None
        if mask is not None:
            from torch.nn.attention.flex_attention import create_block_mask
            mb = lambda: create_block_mask(mask, B if c["bh"] else None, H if c["bh"] else None,
                                           S, S, device=dev, BLOCK_SIZE=128)
            try:
                sync_time(mb)
            except torch.OutOfMemoryError:
                torch.cuda.empty_cache()
                mb = lambda: create_block_mask(mask, B if c["bh"] else None,
                                               H if c["bh"] else None, S, S, device=dev,
                                               BLOCK_SIZE=128, _compile=True)
                res["flex_mask_build_compiled"] = True
                sync_time(mb)
            tms = []
            for _ in range(5):
                t, bmask = sync_time(mb)
                tms.append(t)
            res["flex_mask_build_ms"] = sorted(tms)[2] * 1e3
        score = c["score"]
        fx = lambda: flex_c(q, k, v, score_mod=score, block_mask=bmask)
        t0 = time.perf_counter()
        out_f = fx()
        torch.cuda.synchronize()
        res["flex_compile_s"] = time.perf_counter() - t0
        fms = bench_ms(fx)
        res["flex_ms"] = fms
        res["flex_tflops"] = flops / fms / 1e9
        res["err_vs_flex"] = float((o.float() - out_f.float()).abs().max())
        ref = out_f
        del out_f
    # SDPA flash / cuDNN where they apply (dense, causal)
    if c["sdpa"]:
        from torch.nn.attention import SDPBackend, sdpa_kernel
        for nm, be in (("sdpa_flash", SDPBackend.FLASH_ATTENTION),
                       ("sdpa_cudnn", SDPBackend.CUDNN_ATTENTION)):
            try:
                with sdpa_kernel(be):
                    fs = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=c["sdpa"] == "causal")
                    out_s = fs()
                    sms = bench_ms(fs)
                res[nm + "_ms"] = sms
                res[nm + "_tflops"] = flops / sms / 1e9
                res["err_vs_" + nm] = float((o.float() - out_s.float()).abs().max())
                del out_s
            except Exception as e:  # noqa: BLE001
                res[nm + "_error"] = str(e)[:200]
    errs = [res[x] for x in res if x.startswith("err_vs_") and isinstance(res[x], float)]
    res["max_err"] = max(errs) if errs else None
    # None: no rival ran (--no-flex on a masked case), so nothing to compare with
    res["correct"] = None if res["max_err"] is None and ok_written else \
        ok_written and res["max_err"] is not None and res["max_err"] < 3e-2
    for r in ("flex", "sdpa_flash", "sdpa_cudnn"):
        if r + "_ms" in res:
            res["x_" + r] = res[r + "_ms"] / res["attnc_ms"]
    lib.lib.attnc_kernel_free(kern)
    lib.lib.attnc_spec_free(spec)
    lib.lib.attnc_ctx_free(ctx)
    del q, k, v, o, o2, ref
    torch.cuda.empty_cache()
    return res


# (block_m, block_n, warps, mma) tried by --sweep, per head dim; mma: "ws"
# (sm_90a wgmma, overlapped, a producer warpgroup loading; warps are the compute
# warps, block_m / 16), "overlap" (the same with every warp loading), "wgmma"
# (no overlap) or "sync" (mma.sync)
SWEEP = {
    64: [(128, 64, 8, "ws"), (128, 64, 8, "overlap"), (192, 64, 12, "ws"), (192, 128, 12, "ws"),
         (128, 128, 8, "ws"), (128, 128, 8, "overlap"), (64, 128, 4, "ws"), (64, 64, 4, "ws"),
         (64, 64, 4, "overlap")],
    128: [(128, 128, 8, "ws"), (128, 128, 8, "overlap"), (128, 64, 8, "ws"), (128, 64, 8, "overlap"),
          (64, 128, 4, "ws"), (64, 64, 4, "ws"), (64, 64, 4, "overlap"), (64, 64, 4, "sync")],
}


def table(results, card):
    lines = [f"# attnc vs FlexAttention / SDPA on {card}", "",
             "bf16, BHSD; effective TFLOP/s = 4*D FLOPs per allowed pair per head / time "
             "(triton do_bench median); xFlex etc. = rival time / attnc time (>1: attnc faster); "
             "cold: the median of three compiles with no cache (a new context each), plus the "
             "first call; in parentheses the median of the compiles' CPU time (the compiling "
             "thread's, apart from what other processes take of the CPU).", "",
             "| case | B,H,S,D | density | attnc tile | attnc ms | attnc TFLOP/s | Flex TFLOP/s | "
             "xFlex | SDPA flash | xFlash | cuDNN | xcuDNN | cold compile+1st call ms | "
             "warm load ms | Flex mask build ms | max err | ok |",
             "|" + "---|" * 17]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['name']} | error: {r['error'][:120]} |")
            continue
        sched = r.get("schedule", "").replace("schedule: ", "").split(";")[0]
        lines.append("| " + " | ".join([
            r["name"], ",".join(map(str, r["shape"])), f"{r['density']:.3f}", sched,
            fmt(r["attnc_ms"], 3), fmt(r["attnc_tflops"]), fmt(r.get("flex_tflops")),
            fmt(r.get("x_flex"), 2), fmt(r.get("sdpa_flash_tflops")), fmt(r.get("x_sdpa_flash"), 2),
            fmt(r.get("sdpa_cudnn_tflops")), fmt(r.get("x_sdpa_cudnn"), 2),
            fmt(r["cold_first_call_ms"]) + cpu_note(r), fmt(r["warm_load_ms"], 2),
            fmt(r.get("flex_mask_build_ms"), 1),
            f"{r['max_err']:.2e}" if r.get("max_err") is not None else "-",
            "-" if r["correct"] is None else "yes" if r["correct"] else "NO"]) + " |")
    sw = [r for r in results if r.get("sweep")]
    if sw:
        lines += ["", "## tile / warp sweep (attnc TFLOP/s)", "",
                  "| case | default | " + " | ".join(f"try {i + 1}" for i in range(len(SWEEP[128]))) +
                  " |", "|" + "---|" * (2 + len(SWEEP[128]))]
        for r in sw:
            cells = []
            for s in r["sweep"]:
                cells.append(f"{s['bm']}x{s['bn']} w{s['warps']} {s['mma']}: " +
                             (fmt(s.get("tflops")) if "tflops" in s else "err"))
            lines.append(f"| {r['name']} | {fmt(r['attnc_tflops'])} | " + " | ".join(cells) + " |")
    kt = [r for r in results if r.get("kernels_us")]
    if kt:
        lines += ["", "## a call's kernels (--kernels: device us, mean of 20 calls under the profiler)",
                  "", "| case | call ms (bench) | span us | kernels |", "|---|---|---|---|"]
        for r in kt:
            ks = ", ".join(f"{n} {v:.1f}" for n, v in r["kernels_us"].items())
            lines.append(f"| {r['name']} | {fmt(r['attnc_ms'], 3)} | {fmt(r['call_span_us'], 1)} | {ks} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", default=os.path.join(ROOT, "build-gpu", "libattnc.so"))
    ap.add_argument("--out", default=os.environ.get("OUT", "/tmp/attnc-bench"))
    ap.add_argument("--results", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--cases", default="")
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--no-flex", action="store_true")
    ap.add_argument("--kernels", action="store_true",
                    help="profile attnc's calls: each kernel's device time and a call's span")
    ap.add_argument("--tag", default="")
    ap.add_argument("--list", action="store_true",
                    help="print each case's spec, defines and shape as a JSON line, and stop")
    args = ap.parse_args()
    if args.list:
        for c in make_cases():
            print(json.dumps(dict(name=c["name"], B=c["B"], H=c["H"], S=c["S"], D=c["D"],
                                  spec=os.path.join(SPECS, c["spec"] + ".lua") if c["spec"] else None,
                                  src=c["src"], defs=c["defs"] or {})))
        return
    if torch is None:
        sys.exit("bench.py: needs torch and triton (only --list runs without them)")
    os.makedirs(args.out, exist_ok=True)
    dev = torch.device("cuda")
    card = torch.cuda.get_device_name()
    lib = Lib(args.lib)
    torch._dynamo.config.cache_size_limit = 256
    torch._dynamo.config.accumulated_cache_size_limit = 1024
    from torch.nn.attention.flex_attention import flex_attention
    flex_c = torch.compile(flex_attention, dynamic=False)
    g = torch.Generator().manual_seed(0)
    cold_root = tempfile.mkdtemp(prefix="attnc-cold-")
    cases = make_cases()
    if args.cases:
        want = args.cases.split(",")
        cases = [c for c in cases if c["name"] in want]
    results = []
    for c in cases:
        t0 = time.time()
        try:
            r = run_case(c, lib, args, flex_c, dev, g, cold_root)
        except Exception as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            r = dict(name=c["name"], error=f"{type(e).__name__}: {e}")
        r["anchor_flex_tflops"] = c["anchor"]
        results.append(r)
        print(f"{c['name']}: {time.time() - t0:.1f}s " +
              json.dumps({k: (round(v, 4) if isinstance(v, float) else v)
                          for k, v in r.items() if k != 'sweep'}), flush=True)
        for s in r.get("sweep", []):
            print("   sweep", json.dumps(s), flush=True)
    meta = dict(card=card, torch=torch.__version__, triton=triton.__version__,
                cudnn=torch.backends.cudnn.version(), date=time.strftime("%Y-%m-%d %H:%M"),
                tag=args.tag, cuda_cache_disable=os.environ.get("CUDA_CACHE_DISABLE", ""))
    md = table(results, card)
    slug = card.replace("NVIDIA ", "").replace(" ", "-").lower()
    name = f"gpu-{slug}{('-' + args.tag) if args.tag else ''}"
    for d in (args.out, args.results):
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name + ".json"), "w") as f:
            json.dump(dict(meta=meta, results=results), f, indent=1)
        with open(os.path.join(d, name + ".md"), "w") as f:
            f.write(md)
    print(md)


if __name__ == "__main__":
    main()
