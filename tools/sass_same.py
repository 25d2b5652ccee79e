#!/usr/bin/env python3
"""tools/sass_same.py -- whether two attnc builds generate the same machine
code (no GPU): for every spec in specs/ (its default params, D=64 and 128,
--seq 8192 and 16384) and every case of bench/gpu/bench.py, each build
writes the CUDA source, NVRTC compiles it for sm_90a and cuobjdump
disassembles it; the SASS instructions are compared (not the cubins, which
carry names and offsets that change with the source text). Use it after a
change to generated code when the GPU suite cannot run: identical SASS to a
commit the suite passed on carries that result over.

  python3 tools/sass_same.py OLD/attnc NEW/attnc
  NEW_OPTS="-Xptxas=--split-compile=0" python3 tools/sass_same.py B/attnc B/attnc
      (extra NVRTC options for the second build: whether an option changes
      the machine code)

cuobjdump: $CUOBJDUMP, else on PATH (Debian's CUDA toolkit here has none: pip
download nvidia-cuda-cuobjdump, unzip, nvidia/cu13/bin/cuobjdump).
Exit status 0 when every kernel matches, 1 otherwise.
"""
import ctypes
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
NVRTC = os.environ.get("NVRTC", "/usr/local/cuda/lib64/libnvrtc.so")
OPTS = [b"-default-device", b"-std=c++17", b"-DATTNC_NVRTC=1", b"-arch=sm_90a"]   # as backend/cuda/nvrtc.c


def configs(work):
    """(name, spec path, defines, head dim, seq) for every kernel to compare"""
    out = []
    for f in sorted(glob.glob(os.path.join(ROOT, "specs", "*.lua"))):
        n = os.path.basename(f)[:-4]
        out += [(f"{n}-{d}-{s}", f, {}, d, s) for d in (64, 128) for s in (8192, 16384)]
    lst = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gpu", "bench.py"), "--list"],
                         check=True, capture_output=True, text=True).stdout
    for c in (json.loads(l) for l in lst.splitlines() if l.strip()):
        spec = c["spec"]
        if c.get("src"):
            spec = os.path.join(work, c["name"] + ".lua")
            with open(spec, "w") as f:
                f.write(c["src"])
        out.append(("bench-" + c["name"], spec, c.get("defs") or {}, c["D"], c["S"]))
    return out


def source(attnc, cfg, path):
    name, spec, defs, d, s = cfg
    args = [attnc, "compile", spec, "--target", "cuda", "--emit", "cuda", "--arch", "sm_90a",
            "--head-dim", str(d), "--seq", str(s), "-o", path]
    for k, v in defs.items():
        args += ["-D", f"{k}={v}"]
    r = subprocess.run(args, env=dict(os.environ, ATTNC_CACHE_DIR="off"), capture_output=True, text=True)
    return r.returncode == 0


def sass(job):
    path, cuobjdump, extra = job
    if not os.path.exists(path):
        return "no source"
    nv = ctypes.CDLL(NVRTC)
    prog = ctypes.c_void_p()
    with open(path, "rb") as f:
        nv.nvrtcCreateProgram(ctypes.byref(prog), f.read(), b"k.cu", 0, None, None)
    opts = OPTS + extra
    if nv.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts)):
        return "NVRTC failed"
    n = ctypes.c_size_t()
    nv.nvrtcGetCUBINSize(prog, ctypes.byref(n))
    buf = ctypes.create_string_buffer(n.value)
    nv.nvrtcGetCUBIN(prog, buf)
    nv.nvrtcDestroyProgram(ctypes.byref(prog))
    with tempfile.NamedTemporaryFile(suffix=".cubin") as t:
        t.write(buf.raw)
        t.flush()
        text = subprocess.run([cuobjdump, "-sass", t.name], capture_output=True, text=True).stdout
    code = [l for l in text.splitlines() if re.match(r"\s+/\*[0-9a-f]{4,}\*/", l)]
    return hashlib.md5("\n".join(code).encode()).hexdigest() + f" ({len(code)} instructions)"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    cuobjdump = os.environ.get("CUOBJDUMP") or shutil.which("cuobjdump")
    if not cuobjdump:
        sys.exit("sass_same: no cuobjdump (set $CUOBJDUMP; see the top of this file)")
    work = tempfile.mkdtemp(prefix="sass-same.")
    cfgs = configs(work)
    jobs = []
    for i, attnc in enumerate(sys.argv[1:]):
        os.makedirs(os.path.join(work, str(i)))
        for c in cfgs:
            p = os.path.join(work, str(i), c[0] + ".cu")
            if not source(os.path.abspath(attnc), c, p):
                print(f"{attnc}: no source for {c[0]}")
            extra = [o.encode() for o in os.environ.get("NEW_OPTS", "").split()] if i else []
            jobs.append((p, cuobjdump, extra))
    with ProcessPoolExecutor(os.cpu_count()) as ex:
        res = list(ex.map(sass, jobs))
    old, new = res[:len(cfgs)], res[len(cfgs):]
    diff = [(c[0], a, b) for c, a, b in zip(cfgs, old, new) if a != b]
    for name, a, b in diff:
        print(f"{name}: {a} -> {b}")
    print(f"{len(cfgs) - len(diff)} of {len(cfgs)} kernels: the same SASS")
    shutil.rmtree(work, ignore_errors=True)
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
