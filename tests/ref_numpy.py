#!/usr/bin/env python3
"""ref_numpy.py -- `attnc run --target ref` against an independent NumPy
computation of attention, on small random shapes (GQA, ragged lengths,
float32 and float64).

Each case states its mask and score modification from the pattern's
definition (../shared/PATTERNS.md and each spec's header comment), written
here with NumPy, never taken from attnc. Outputs must agree within 1e-6.

    python3 tests/ref_numpy.py path/to/attnc [SPEC...]     (cwd: source root)
"""
import os
import subprocess
import sys
import tempfile
import zlib

import numpy as np

TOL = 1e-6


class Idx:
    """Broadcastable index grids over [B, Hq, Sq, Sk] and the call's inputs."""

    def __init__(self, B, H, S, inputs):
        self.b = np.arange(B)[:, None, None, None]
        self.h = np.arange(H)[None, :, None, None]
        self.q = np.arange(S)[None, None, :, None]
        self.k = np.arange(S)[None, None, None, :]
        self.H = H
        self.S = S
        self.inputs = inputs


def attention(q, k, v, allowed, score_mod, scale, ix):
    """O and LSE in float64; a row with no allowed key gives 0 and -inf."""
    group = q.shape[1] // k.shape[1]
    k = np.repeat(k.astype(np.float64), group, axis=1)
    v = np.repeat(v.astype(np.float64), group, axis=1)
    s = scale * np.einsum("bhqd,bhkd->bhqk", q.astype(np.float64), k)
    if score_mod is not None:
        s = score_mod(s, ix)
    s = np.where(allowed, s, -np.inf)
    m = s.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    p = np.exp(s - m)
    l = p.sum(axis=-1, keepdims=True)
    has = l > 0
    o = np.where(has, (p @ v) / np.where(has, l, 1.0), 0.0)
    lse = np.where(has[..., 0], np.log(np.where(has, l, 1.0))[..., 0] + m[..., 0], -np.inf)
    return o, lse


# ---------------------------------------------------------------- the cases
# Each returns (defines, (B, Hq, Hkv, S, D, Dv), inputs, mask(ix), score(s, ix) or None).

def causal(rng):
    return {}, (2, 4, 2, 37, 16, 8), {}, lambda ix: ix.k <= ix.q, None


def sliding_window(rng):
    W = 5  # causal window: 0 <= q - k < W
    return ({"window": W}, (1, 2, 2, 40, 8, 8), {},
            lambda ix: (ix.q - ix.k >= 0) & (ix.q - ix.k < W), None)


def sinks(rng):
    W, N = 6, 3  # causal and (q - k < W or k < sinks)
    return ({"window": W, "sinks": N}, (1, 2, 1, 33, 8, 4), {},
            lambda ix: (ix.k <= ix.q) & ((ix.q - ix.k < W) | (ix.k < N)), None)


def dilated(rng):
    W, d = 3, 2  # abs(q - k) <= W * d and (q - k) mod d == 0
    return ({"window": W, "dilation": d}, (1, 2, 2, 30, 8, 8), {},
            lambda ix: (np.abs(ix.q - ix.k) <= W * d) & ((ix.q - ix.k) % d == 0), None)


def natten_axis(qi, ki, N, K, d):
    """NATTEN on one axis: tokens with the same residue mod d form a group of
    n = ceil((N - residue) / d); inside it, abs(k' - clamp(q', r, n-1-r)) <= r."""
    r = K // 2
    n = (N - 1 - qi % d) // d + 1
    qq, kk = qi // d, ki // d
    return (qi % d == ki % d) & (np.abs(kk - np.clip(qq, r, n - 1 - r)) <= r)


def neighborhood2d(rng, Hh=6, Ww=7, K=3, d=1):
    def mask(ix):
        qy, qx, ky, kx = ix.q // Ww, ix.q % Ww, ix.k // Ww, ix.k % Ww
        return natten_axis(qy, ky, Hh, K, d) & natten_axis(qx, kx, Ww, K, d)
    return ({"height": Hh, "width": Ww, "kernel": K, "dilation": d},
            (1, 2, 1, Hh * Ww, 8, 8), {}, mask, None)


def neighborhood2d_dilated(rng):
    return neighborhood2d(rng, Hh=9, Ww=8, K=3, d=2)


def swin2d(rng):
    Hh, Ww, M, sh = 8, 8, 4, 2  # same window on both axes after a cyclic shift,
    # and Swin's seam: pixels rolled round (c < sh) apart from the others

    def mask(ix):
        qy, qx, ky, kx = ix.q // Ww, ix.q % Ww, ix.k // Ww, ix.k % Ww
        win = lambda c, n: ((c - sh) % n) // M
        seam = lambda a, b: (a < sh) == (b < sh)
        return ((win(qy, Hh) == win(ky, Hh)) & (win(qx, Ww) == win(kx, Ww)) &
                seam(qy, ky) & seam(qx, kx))
    return ({"height": Hh, "width": Ww, "window": M, "shift": sh},
            (1, 2, 2, Hh * Ww, 8, 8), {}, mask, None)


def document(rng, causal=1):
    S = 41  # segment ids, non-decreasing; same segment attends (causally)
    doc = np.sort(rng.integers(0, 5, size=S)).astype(np.int32)

    def mask(ix):
        m = doc[ix.q] == doc[ix.k]
        return m & (ix.k <= ix.q) if causal else m
    return {"causal": causal}, (2, 2, 1, S, 8, 8), {"doc": doc}, mask, None


def document_full(rng):
    return document(rng, causal=0)


def routed(rng):
    S, R, topk, B, H = 30, 4, 2, 2, 2  # region(k) in route[b, h, region(q), :]
    nreg = -(-S // R)
    route = rng.integers(0, nreg, size=(B, H, nreg, topk)).astype(np.int32)

    def mask(ix):
        rq, rk = ix.q // R, ix.k // R
        sel = route[ix.b, ix.h, rq]  # [B, H, S, 1, topk]
        return (sel == rk[..., None]).any(axis=-1)
    return {"region": R, "topk": topk}, (B, H, H, S, 8, 8), {"route": route}, mask, None


def block_sparse(rng):
    S, BS, B, H = 29, 4, 1, 2  # blocks[b, h, q // block, k // block] == 1
    nb = -(-S // BS)
    blocks = (rng.random((B, H, nb, nb)) < 0.4).astype(np.int32)
    return ({"block": BS}, (B, H, 1, S, 8, 8), {"blocks": blocks},
            lambda ix: blocks[ix.b, ix.h, ix.q // BS, ix.k // BS] != 0, None)


def alibi(rng):
    H = 4  # s + slope[h] * (k - q), slope[h] = 2^(-8 (h + 1) / H), causal

    def score(s, ix):
        slope = 2.0 ** (-8.0 * (ix.h + 1) / H)
        return s + slope * (ix.k - ix.q)
    return {"heads": H}, (1, H, 2, 24, 8, 8), {}, lambda ix: ix.k <= ix.q, score


def softcap(rng):
    c = 0.5  # c * tanh(s / c); small, so the cap matters

    def score(s, ix):
        return c * np.tanh(s / c)
    return {"cap": c}, (1, 2, 2, 27, 16, 8), {}, lambda ix: ix.k <= ix.q, score


def logit_scaling(rng):
    T = 8  # s * max(1, log(q + 1) / log(T)), causal; T small, so most rows scale

    def score(s, ix):
        return s * np.maximum(1.0, np.log(ix.q + 1.0) / np.log(T))
    return {"train": T}, (1, 2, 1, 40, 16, 8), {}, lambda ix: ix.k <= ix.q, score


def sink_calibration(rng):
    W, N, H = 6, 3, 4  # sinks + window mask; s - delta[h] where k < N
    delta = rng.uniform(0.5, 3.0, H).astype(np.float32)

    def score(s, ix):
        return s - np.where(ix.k < N, delta.astype(np.float64)[ix.h], 0.0)
    return ({"window": W, "sinks": N}, (1, H, 2, 33, 16, 8), {"delta": delta},
            lambda ix: (ix.k <= ix.q) & ((ix.q - ix.k < W) | (ix.k < N)), score)


# (spec, case): several cases may run one spec with other params
CASES = [("causal", causal), ("sliding_window", sliding_window), ("sinks", sinks),
         ("dilated", dilated), ("neighborhood2d", neighborhood2d),
         ("neighborhood2d", neighborhood2d_dilated), ("swin2d", swin2d),
         ("document", document), ("document", document_full), ("routed", routed),
         ("block_sparse", block_sparse), ("alibi", alibi), ("softcap", softcap),
         ("logit_scaling", logit_scaling), ("sink_calibration", sink_calibration)]


def run_case(attnc, spec, case, tmp, dtype):
    name = case.__name__
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    defs, (B, Hq, Hkv, S, D, Dv), inputs, mask, score = case(rng)
    q = rng.standard_normal((B, Hq, S, D)).astype(dtype)
    k = rng.standard_normal((B, Hkv, S, D)).astype(dtype)
    v = rng.standard_normal((B, Hkv, S, Dv)).astype(dtype)
    files = {}
    for t, a in (("q", q), ("k", k), ("v", v)):
        files[t] = os.path.join(tmp, f"{name}.{t}.npy")
        np.save(files[t], a)
    cmd = [attnc, "run", f"specs/{spec}.lua", "--target", "ref",
           "--q", files["q"], "--k", files["k"], "--v", files["v"],
           "-o", os.path.join(tmp, f"{name}.o.npy"), "--lse", os.path.join(tmp, f"{name}.lse.npy")]
    for dn, dv in defs.items():
        cmd += ["-D", f"{dn}={dv}"]
    for iname, arr in inputs.items():
        path = os.path.join(tmp, f"{name}.{iname}.npy")
        np.save(path, arr)
        cmd += ["--input", f"{iname}={path}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return False, f"attnc exited {r.returncode}: {r.stderr.strip()}"
    o = np.load(os.path.join(tmp, f"{name}.o.npy"))
    lse = np.load(os.path.join(tmp, f"{name}.lse.npy"))
    if o.dtype != dtype or o.shape != (B, Hq, S, Dv) or lse.dtype != np.float32 or lse.shape != (B, Hq, S):
        return False, f"output O {o.dtype}{o.shape}, LSE {lse.dtype}{lse.shape}"
    ix = Idx(B, Hq, S, inputs)
    allowed = np.broadcast_to(mask(ix), (B, Hq, S, S))
    want_o, want_lse = attention(q, k, v, allowed, score, 1.0 / np.sqrt(D), ix)
    d_o = float(np.max(np.abs(o - want_o))) if o.size else 0.0
    fin = np.isfinite(want_lse)
    if not np.array_equal(np.isfinite(lse), fin) or np.any(lse[~fin] != -np.inf):
        return False, "LSE is not -inf exactly where a row has no allowed key"
    d_lse = float(np.max(np.abs(lse[fin] - want_lse[fin]) / np.maximum(1, np.abs(want_lse[fin])))) if fin.any() else 0.0
    density = allowed.mean()
    msg = f"max|dO| {d_o:.1e}  max|dLSE| {d_lse:.1e}  density {density:.2f}"
    ok = d_o <= TOL and d_lse <= TOL and not np.isnan(o).any()
    return ok, msg


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    attnc = os.path.abspath(sys.argv[1])
    only = set(sys.argv[2:])
    fails = 0
    with tempfile.TemporaryDirectory() as tmp:
        for spec, case in CASES:
            if only and spec not in only and case.__name__ not in only:
                continue
            for dtype in (np.float32, np.float64):
                if not os.path.exists(f"specs/{spec}.lua"):
                    ok, msg = False, f"specs/{spec}.lua does not exist"
                else:
                    ok, msg = run_case(attnc, spec, case, tmp, dtype)
                tag = np.dtype(dtype).name
                print(f"{'ok  ' if ok else 'FAIL'} {case.__name__:22s} {tag:8s} {msg}")
                fails += not ok
    print(f"ref_numpy: {fails} failure(s)")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
