"""attnc_ctypes.py -- a thin ctypes binding of include/attnc.h for the GPU
benchmark: load libattnc.so, load specs with -D params, compile for the cuda
target, run on DLTensor views of torch tensors (no copies)."""
import ctypes as C
import os
import time


class DLDevice(C.Structure):
    _fields_ = [("device_type", C.c_int32), ("device_id", C.c_int32)]


class DLDataType(C.Structure):
    _fields_ = [("code", C.c_uint8), ("bits", C.c_uint8), ("lanes", C.c_uint16)]


class DLTensor(C.Structure):
    _fields_ = [("data", C.c_void_p), ("device", DLDevice), ("ndim", C.c_int32),
                ("dtype", DLDataType), ("shape", C.POINTER(C.c_int64)),
                ("strides", C.POINTER(C.c_int64)), ("byte_offset", C.c_uint64)]


class Error(C.Structure):
    _fields_ = [("status", C.c_int), ("message", C.c_char * 1024)]


class Define(C.Structure):
    _fields_ = [("name", C.c_char_p), ("value", C.c_char_p)]


class NamedTensor(C.Structure):
    _fields_ = [("name", C.c_char_p), ("tensor", C.POINTER(DLTensor))]


class Args(C.Structure):
    _fields_ = [("q", C.POINTER(DLTensor)), ("k", C.POINTER(DLTensor)),
                ("v", C.POINTER(DLTensor)), ("o", C.POINTER(DLTensor)),
                ("lse", C.POINTER(DLTensor)), ("inputs", C.POINTER(NamedTensor)),
                ("ninputs", C.c_int), ("scale", C.c_double), ("stream", C.c_void_p)]


class Schedule(C.Structure):
    _fields_ = [("block_m", C.c_int), ("block_n", C.c_int), ("warps", C.c_int),
                ("stages", C.c_int), ("order", C.c_int)]


class CompileOptions(C.Structure):
    _fields_ = [("target", C.c_int), ("arch", C.c_char_p), ("schedule", Schedule),
                ("dtype", C.c_int), ("head_dim", C.c_int), ("head_dim_v", C.c_int),
                ("seq_hint", C.c_int64)]


class KernelInfo(C.Structure):
    # must match attnc_kernel_info in include/attnc.h field for field
    _fields_ = [("cached", C.c_int), ("compile_ms", C.c_double), ("nspecialisations", C.c_int),
                ("schedule", Schedule), ("schedule_source", C.c_int),
                ("tune_db", C.c_char * 512)]


TARGET_CUDA = 2
DTYPE = {"f16": 2, "bf16": 3}
_DL = {"bfloat16": (4, 16), "float16": (2, 16), "float32": (2, 32), "int32": (0, 32),
       "int64": (0, 64), "uint8": (1, 8), "bool": (1, 8)}


class AttncError(RuntimeError):
    pass


class Lib:
    def __init__(self, path):
        self.lib = C.CDLL(path)
        L = self.lib
        L.attnc_ctx_new.restype = C.c_void_p
        L.attnc_ctx_free.argtypes = [C.c_void_p]
        L.attnc_spec_load_file.argtypes = [C.c_void_p, C.c_char_p, C.POINTER(Define), C.c_int,
                                           C.POINTER(C.c_void_p), C.POINTER(Error)]
        L.attnc_spec_load_string.argtypes = [C.c_void_p, C.c_char_p, C.c_char_p,
                                             C.POINTER(Define), C.c_int,
                                             C.POINTER(C.c_void_p), C.POINTER(Error)]
        L.attnc_spec_free.argtypes = [C.c_void_p]
        L.attnc_kernel_compile.argtypes = [C.c_void_p, C.c_void_p, C.POINTER(CompileOptions),
                                           C.POINTER(C.c_void_p), C.POINTER(Error)]
        L.attnc_kernel_run.argtypes = [C.c_void_p, C.POINTER(Args), C.POINTER(Error)]
        L.attnc_kernel_info_get.argtypes = [C.c_void_p, C.POINTER(KernelInfo)]
        L.attnc_kernel_free.argtypes = [C.c_void_p]
        L.attnc_kernel_artifact.argtypes = [C.c_void_p, C.c_char_p, C.POINTER(C.c_void_p),
                                            C.POINTER(C.c_size_t), C.POINTER(Error)]
        L.attnc_version.restype = C.c_char_p

    def ctx(self):
        return self.lib.attnc_ctx_new()

    def spec(self, ctx, path=None, source=None, name="inline", defines=None):
        defines = defines or {}
        defs = (Define * max(1, len(defines)))()
        for i, (k, v) in enumerate(defines.items()):
            defs[i] = Define(k.encode(), str(v).encode())
        out, err = C.c_void_p(), Error()
        if source is not None:
            st = self.lib.attnc_spec_load_string(ctx, name.encode(), source.encode(), defs,
                                                 len(defines), C.byref(out), C.byref(err))
        else:
            st = self.lib.attnc_spec_load_file(ctx, path.encode(), defs, len(defines),
                                               C.byref(out), C.byref(err))
        if st:
            raise AttncError(err.message.decode())
        return out

    def compile(self, ctx, spec, dtype, D, seq_hint=0, block_m=0, block_n=0, arch=None):
        o = CompileOptions(target=TARGET_CUDA, arch=arch.encode() if arch else None, dtype=DTYPE[dtype], head_dim=D,
                           head_dim_v=D, seq_hint=seq_hint)
        o.schedule.block_m, o.schedule.block_n = block_m, block_n
        out, err = C.c_void_p(), Error()
        t0, c0 = time.perf_counter(), time.thread_time()
        st = self.lib.attnc_kernel_compile(ctx, spec, C.byref(o), C.byref(out), C.byref(err))
        dt = time.perf_counter() - t0
        # the CPU time of this thread, where NVRTC compiles: the compile's own
        # work, apart from what other processes take of a shared CPU
        self.last_compile_cpu = time.thread_time() - c0
        if st:
            raise AttncError(err.message.decode())
        info = KernelInfo()
        self.lib.attnc_kernel_info_get(out, C.byref(info))
        return out, dt, info

    def source(self, kernel):
        data, n, err = C.c_void_p(), C.c_size_t(), Error()
        if self.lib.attnc_kernel_artifact(kernel, b"cuda", C.byref(data), C.byref(n), C.byref(err)):
            return None
        s = C.string_at(data, n.value).decode()
        C.CDLL(None).free(data)
        return s


class TensorView:
    """A DLTensor over a torch tensor (kept alive with it)."""

    def __init__(self, t):
        self.t = t
        code, bits = _DL[str(t.dtype).replace("torch.", "")]
        self.shape = (C.c_int64 * t.dim())(*t.shape)
        self.strides = (C.c_int64 * t.dim())(*t.stride())
        self.dl = DLTensor(C.c_void_p(t.data_ptr()), DLDevice(2 if t.is_cuda else 1, 0), t.dim(),
                           DLDataType(code, bits, 1), C.cast(self.shape, C.POINTER(C.c_int64)),
                           C.cast(self.strides, C.POINTER(C.c_int64)), 0)


class Runner:
    """attnc_kernel_run with prebuilt args: call() launches on the stream."""

    def __init__(self, lib, kernel, q, k, v, o, inputs, stream):
        self.lib = lib.lib
        self.kernel = kernel
        self.views = [TensorView(t) for t in (q, k, v, o)]
        self.inviews = {n: TensorView(t) for n, t in inputs.items()}
        self.named = (NamedTensor * max(1, len(inputs)))()
        for i, (n, tv) in enumerate(self.inviews.items()):
            self.named[i] = NamedTensor(n.encode(), C.pointer(tv.dl))
        p = [C.pointer(v.dl) for v in self.views]
        self.args = Args(p[0], p[1], p[2], p[3], None, C.cast(self.named, C.POINTER(NamedTensor)),
                         len(inputs), 0.0,
                         C.c_void_p(stream))
        self.err = Error()
        self.argp, self.errp = C.byref(self.args), C.byref(self.err)

    def __call__(self):
        if self.lib.attnc_kernel_run(self.kernel, self.argp, self.errp):
            raise AttncError(self.err.message.decode())
