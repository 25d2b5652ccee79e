/*
** driver.c -- the CUDA driver API, loaded at run time with
** dlopen("libcuda.so.1") and never linked, so the library and the CLI build
** and run on machines without a GPU or driver and fail only when the cuda
** target is asked for, with ATTNC_ERR_NODEVICE and a clear message.
**
** A CudaDriver holds the function table, one device and its primary
** context; it belongs to one attnc context (no global state here). Every
** entry point makes the primary context current on the calling thread
** first, so any thread may use it. Modules (loaded images) and the launch,
** which packs the kernel's parameter block, live here too.
** $ATTNC_CUDA_DRIVER names another library file (tests use it to check the
** no-driver path on machines that have one).
*/
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cuda/cuda.h"

/* ------------------------------------------------------ driver types */

/* the few driver API types used, as cuda.h defines them (ABI-stable) */
typedef int CUresult;
typedef int CUdevice;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUevent_st *CUevent;
typedef unsigned long long CUdeviceptr;

enum {
  CUDA_SUCCESS = 0,
  CUDA_ERROR_OUT_OF_MEMORY = 2,
  CUDA_ERROR_NO_DEVICE = 100,
  CUDA_ERROR_INVALID_IMAGE = 200,
  CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
  CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97,
  CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8,
  CU_EVENT_DEFAULT = 0,
};

/* X(return, name, symbol, args) */
#define CUDA_FUNCS(X) \
  X(cuInit, "cuInit", (unsigned flags)) \
  X(cuDriverGetVersion, "cuDriverGetVersion", (int *v)) \
  X(cuDeviceGetCount, "cuDeviceGetCount", (int *n)) \
  X(cuDeviceGet, "cuDeviceGet", (CUdevice *dev, int ordinal)) \
  X(cuDeviceGetAttribute, "cuDeviceGetAttribute", (int *v, int attr, CUdevice dev)) \
  X(cuDeviceGetName, "cuDeviceGetName", (char *name, int len, CUdevice dev)) \
  X(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", (CUcontext *ctx, CUdevice dev)) \
  X(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", (CUdevice dev)) \
  X(cuCtxSetCurrent, "cuCtxSetCurrent", (CUcontext ctx)) \
  X(cuCtxSynchronize, "cuCtxSynchronize", (void)) \
  X(cuModuleLoadData, "cuModuleLoadData", (CUmodule *m, const void *image)) \
  X(cuModuleUnload, "cuModuleUnload", (CUmodule m)) \
  X(cuModuleGetFunction, "cuModuleGetFunction", (CUfunction *f, CUmodule m, const char *name)) \
  X(cuFuncSetAttribute, "cuFuncSetAttribute", (CUfunction f, int attr, int value)) \
  X(cuLaunchKernel, "cuLaunchKernel", (CUfunction f, unsigned gx, unsigned gy, unsigned gz, \
    unsigned bx, unsigned by, unsigned bz, unsigned smem, CUstream s, void **params, void **extra)) \
  X(cuMemAlloc, "cuMemAlloc_v2", (CUdeviceptr *p, size_t n)) \
  X(cuMemFree, "cuMemFree_v2", (CUdeviceptr p)) \
  X(cuMemcpyHtoD, "cuMemcpyHtoD_v2", (CUdeviceptr dst, const void *src, size_t n)) \
  X(cuMemcpyDtoH, "cuMemcpyDtoH_v2", (void *dst, CUdeviceptr src, size_t n)) \
  X(cuMemsetD8, "cuMemsetD8_v2", (CUdeviceptr dst, unsigned char v, size_t n)) \
  X(cuStreamSynchronize, "cuStreamSynchronize", (CUstream s)) \
  X(cuEventCreate, "cuEventCreate", (CUevent *e, unsigned flags)) \
  X(cuEventRecord, "cuEventRecord", (CUevent e, CUstream s)) \
  X(cuEventSynchronize, "cuEventSynchronize", (CUevent e)) \
  X(cuEventElapsedTime, "cuEventElapsedTime", (float *ms, CUevent a, CUevent b)) \
  X(cuEventDestroy, "cuEventDestroy_v2", (CUevent e)) \
  X(cuGetErrorName, "cuGetErrorName", (CUresult r, const char **s)) \
  X(cuGetErrorString, "cuGetErrorString", (CUresult r, const char **s))

/* TMA descriptors (CUDA 12+ drivers; optional: without it kernels load with cp.async) */
typedef struct { _Alignas(64) uint64_t w[16]; } CUtensorMap;
typedef CUresult (*TensorMapEncodeTiled)(CUtensorMap *map, int dtype, unsigned rank, void *addr,
                                         const uint64_t *dims, const uint64_t *strides,
                                         const unsigned *box, const unsigned *elem_strides,
                                         int interleave, int swizzle, int l2_promotion, int oob_fill);
enum {
  CU_TENSOR_MAP_DATA_TYPE_UINT16 = 1,
  CU_TENSOR_MAP_INTERLEAVE_NONE = 0,
  CU_TENSOR_MAP_SWIZZLE_128B = 3,
  CU_TENSOR_MAP_L2_PROMOTION_L2_256B = 3,
  CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE = 0,   /* out-of-bounds elements read as zero */
};

/* cuLaunchKernelEx's configuration (CUDA 12+), for programmatic dependent launch */
typedef struct {
  int id;                                  /* CUlaunchAttributeID */
  char pad[4];
  union { char pad[64]; int programmatic_stream_serialization; } value;
} CUlaunchAttribute;
typedef struct {
  unsigned gx, gy, gz, bx, by, bz, smem;
  CUstream stream;
  CUlaunchAttribute *attrs;
  unsigned nattrs;
} CUlaunchConfig;
enum { CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6 };

struct CudaDriver {
  void *lib;
#define X(fn, sym, args) CUresult (*fn) args;
  CUDA_FUNCS(X)
#undef X
  TensorMapEncodeTiled encode_tiled;   /* NULL on drivers without it */
  /* stream-ordered allocation (CUDA 11.2+), for the pre-pass's p.meta (a kernel with a
     pre-pass cannot launch without it) */
  CUresult (*mem_alloc_async)(CUdeviceptr *p, size_t n, CUstream s);
  CUresult (*mem_free_async)(CUdeviceptr p, CUstream s);
  /* CUDA 12+: a launch that may start before the one before it on the stream ends */
  CUresult (*launch_ex)(const CUlaunchConfig *cfg, CUfunction f, void **params, void **extra);
  CUdevice dev;
  CUcontext ctx;
  int arch, sm_count, smem_optin, driver_version;
  char name[256];
};

struct CudaModule {
  CudaDriver *drv;
  CUmodule mod;
  CUmodule mod2;        /* the pre-passes' module, where the image has two parts, or NULL */
  CUfunction fn;
  CUfunction prep;      /* the data iterator's pre-pass (CUDA_PREP_NAME), or NULL */
  CUfunction prep_q;    /* and its pass over the q tiles (CUDA_PREPQ_NAME), with prep */
  bool maps;            /* the driver can encode descriptors and $ATTNC_CUDA_TMA is not 0 */
  bool overlap;         /* attnc_prep_q and the kernel start while the pass before ends
                           (cuda_prep_overlap, the driver has cuLaunchKernelEx, and
                           $ATTNC_CUDA_PDL is not 0) */
  CudaConfig cfg;
  int smem;
};

/* "CUDA_ERROR_ILLEGAL_ADDRESS (an illegal memory access was encountered)" */
static attnc_status cu_error(CudaDriver *drv, CUresult r, attnc_status st, const char *what,
                             Diag *d) {
  const char *name = NULL, *str = NULL;
  if (drv && drv->cuGetErrorName) drv->cuGetErrorName(r, &name);
  if (drv && drv->cuGetErrorString) drv->cuGetErrorString(r, &str);
  return diag_error(d, st, (Loc){ NULL, 0 }, "%s failed: %s (%s)", what,
                    name ? name : "CUDA error", str ? str : "no description");
}

#define CU_CHECK(drv, call, st, what) \
  do { CUresult r_ = (call); if (r_ != CUDA_SUCCESS) return cu_error(drv, r_, st, what, d); } while (0)

static attnc_status make_current(CudaDriver *drv, Diag *d) {
  CU_CHECK(drv, drv->cuCtxSetCurrent(drv->ctx), ATTNC_ERR_RUNTIME, "cuCtxSetCurrent");
  return ATTNC_OK;
}

/* ------------------------------------------------------------ open */

attnc_status cuda_driver_open(int device, CudaDriver **out, Diag *d) {
  *out = NULL;
  const char *path = getenv("ATTNC_CUDA_DRIVER");
  if (!path || !*path) path = "libcuda.so.1";
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    return diag_error(d, ATTNC_ERR_NODEVICE, (Loc){ NULL, 0 },
                      "no CUDA driver (%s not found)", path);
  CudaDriver *drv = calloc(1, sizeof *drv);
  if (!drv) { dlclose(lib); return diag_error(d, ATTNC_ERR_NOMEM, (Loc){ NULL, 0 }, "out of memory"); }
  drv->lib = lib;
#define X(fn, sym, args) \
  if (!(*(void **)&drv->fn = dlsym(lib, sym))) { \
    free(drv); dlclose(lib); \
    return diag_error(d, ATTNC_ERR_NODEVICE, (Loc){ NULL, 0 }, \
                      "the CUDA driver %s is too old (no %s)", path, sym); \
  }
  CUDA_FUNCS(X)
#undef X
  *(void **)&drv->encode_tiled = dlsym(lib, "cuTensorMapEncodeTiled");
  *(void **)&drv->mem_alloc_async = dlsym(lib, "cuMemAllocAsync");
  *(void **)&drv->mem_free_async = dlsym(lib, "cuMemFreeAsync");
  *(void **)&drv->launch_ex = dlsym(lib, "cuLaunchKernelEx");
  attnc_status st = ATTNC_OK;
  CUresult r = drv->cuInit(0);
  int count = 0;
  if (r == CUDA_ERROR_NO_DEVICE || (r == CUDA_SUCCESS && drv->cuDeviceGetCount(&count) == CUDA_SUCCESS && count == 0))
    st = diag_error(d, ATTNC_ERR_NODEVICE, (Loc){ NULL, 0 },
                    "no CUDA GPU (the driver %s is installed but sees no device)", path);
  else if (r != CUDA_SUCCESS)
    st = cu_error(drv, r, ATTNC_ERR_NODEVICE, "cuInit (the CUDA driver could not start)", d);
  else if (device < 0 || device >= count)
    st = diag_error(d, ATTNC_ERR_NODEVICE, (Loc){ NULL, 0 },
                    "no CUDA device %d (%d device%s present)", device, count, count == 1 ? "" : "s");
  if (!st && (r = drv->cuDeviceGet(&drv->dev, device)) != CUDA_SUCCESS)
    st = cu_error(drv, r, ATTNC_ERR_NODEVICE, "cuDeviceGet", d);
  if (!st) {
    int major = 0, minor = 0;
    drv->cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, drv->dev);
    drv->cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, drv->dev);
    drv->cuDeviceGetAttribute(&drv->sm_count, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, drv->dev);
    drv->cuDeviceGetAttribute(&drv->smem_optin, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, drv->dev);
    drv->cuDriverGetVersion(&drv->driver_version);
    if (drv->cuDeviceGetName(drv->name, (int)sizeof drv->name, drv->dev) != CUDA_SUCCESS)
      snprintf(drv->name, sizeof drv->name, "CUDA device %d", device);
    drv->arch = major * 10 + minor;
    if (!cuda_arch_supported(drv->arch))
      st = diag_error(d, ATTNC_ERR_NODEVICE, (Loc){ NULL, 0 },
                      "%s is sm_%d; the cuda target needs sm_80 or newer", drv->name, drv->arch);
  }
  if (!st && (r = drv->cuDevicePrimaryCtxRetain(&drv->ctx, drv->dev)) != CUDA_SUCCESS)
    st = cu_error(drv, r, ATTNC_ERR_NODEVICE, "cuDevicePrimaryCtxRetain", d);
  if (st) {
    free(drv);
    dlclose(lib);
    return st;
  }
  *out = drv;
  return ATTNC_OK;
}

void cuda_driver_close(CudaDriver *drv) {
  if (!drv) return;
  if (drv->ctx) drv->cuDevicePrimaryCtxRelease(drv->dev);
  dlclose(drv->lib);
  free(drv);
}

int cuda_driver_arch(const CudaDriver *drv) { return drv->arch; }
const char *cuda_driver_device_name(const CudaDriver *drv) { return drv->name; }
int cuda_driver_sm_count(const CudaDriver *drv) { return drv->sm_count; }

/* ------------------------------------------------------------ memory */

attnc_status cuda_mem_alloc(CudaDriver *drv, size_t bytes, void **dptr, Diag *d) {
  *dptr = NULL;
  attnc_status st = make_current(drv, d);
  if (st) return st;
  CUdeviceptr p = 0;
  CUresult r = drv->cuMemAlloc(&p, bytes ? bytes : 16);
  if (r != CUDA_SUCCESS) {
    char what[96];
    snprintf(what, sizeof what, "cuMemAlloc of %zu bytes", bytes);
    return cu_error(drv, r, r == 2 ? ATTNC_ERR_NOMEM : ATTNC_ERR_RUNTIME, what, d);
  }
  *dptr = (void *)(uintptr_t)p;
  return ATTNC_OK;
}

void cuda_mem_free(CudaDriver *drv, void *dptr) {
  if (!drv || !dptr) return;
  if (drv->cuCtxSetCurrent(drv->ctx) == CUDA_SUCCESS) drv->cuMemFree((CUdeviceptr)(uintptr_t)dptr);
}

attnc_status cuda_memcpy_htod(CudaDriver *drv, void *dst, const void *src, size_t n, Diag *d) {
  attnc_status st = make_current(drv, d);
  if (st || n == 0) return st;
  CU_CHECK(drv, drv->cuMemcpyHtoD((CUdeviceptr)(uintptr_t)dst, src, n), ATTNC_ERR_RUNTIME, "cuMemcpyHtoD");
  return ATTNC_OK;
}

attnc_status cuda_memcpy_dtoh(CudaDriver *drv, void *dst, const void *src, size_t n, Diag *d) {
  attnc_status st = make_current(drv, d);
  if (st || n == 0) return st;
  CU_CHECK(drv, drv->cuMemcpyDtoH(dst, (CUdeviceptr)(uintptr_t)src, n), ATTNC_ERR_RUNTIME, "cuMemcpyDtoH");
  return ATTNC_OK;
}

attnc_status cuda_memset8(CudaDriver *drv, void *dst, unsigned char v, size_t n, Diag *d) {
  attnc_status st = make_current(drv, d);
  if (st || n == 0) return st;
  CU_CHECK(drv, drv->cuMemsetD8((CUdeviceptr)(uintptr_t)dst, v, n), ATTNC_ERR_RUNTIME, "cuMemsetD8");
  return ATTNC_OK;
}

attnc_status cuda_sync(CudaDriver *drv, void *stream, Diag *d) {
  attnc_status st = make_current(drv, d);
  if (st) return st;
  CU_CHECK(drv, drv->cuStreamSynchronize((CUstream)stream), ATTNC_ERR_RUNTIME,
           "the kernel (cuStreamSynchronize)");
  return ATTNC_OK;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

attnc_status cuda_time_ms(CudaDriver *drv, void *stream, attnc_status (*fn)(void *arg, Diag *d),
                          void *arg, int iters, double *ms_median, Diag *d) {
  attnc_status st = make_current(drv, d);
  if (st) return st;
  if (iters < 1) iters = 1;
  double *ms = calloc((size_t)iters, sizeof *ms);
  if (!ms) return diag_error(d, ATTNC_ERR_NOMEM, (Loc){ NULL, 0 }, "out of memory");
  CUevent e0 = NULL, e1 = NULL;
  CUresult r = drv->cuEventCreate(&e0, CU_EVENT_DEFAULT);
  if (r == CUDA_SUCCESS) r = drv->cuEventCreate(&e1, CU_EVENT_DEFAULT);
  if (r != CUDA_SUCCESS) st = cu_error(drv, r, ATTNC_ERR_RUNTIME, "cuEventCreate", d);
  for (int i = 0; i < iters && !st; i++) {
    float t = 0;
    if ((r = drv->cuEventRecord(e0, (CUstream)stream)) != CUDA_SUCCESS) { st = cu_error(drv, r, ATTNC_ERR_RUNTIME, "cuEventRecord", d); break; }
    if ((st = fn(arg, d))) break;
    if ((r = drv->cuEventRecord(e1, (CUstream)stream)) != CUDA_SUCCESS ||
        (r = drv->cuEventSynchronize(e1)) != CUDA_SUCCESS ||
        (r = drv->cuEventElapsedTime(&t, e0, e1)) != CUDA_SUCCESS) {
      st = cu_error(drv, r, ATTNC_ERR_RUNTIME, "timing the kernel", d);
      break;
    }
    ms[i] = t;
  }
  if (!st) {
    qsort(ms, (size_t)iters, sizeof *ms, cmp_double);
    *ms_median = ms[iters / 2];
  }
  if (e0) drv->cuEventDestroy(e0);
  if (e1) drv->cuEventDestroy(e1);
  free(ms);
  return st;
}

/* ------------------------------------------------------------ modules */

/* does the image (cubin or PTX) hold the name, NUL- or '(' -terminated? */
static bool image_names(const void *data, size_t size, const char *name) {
  size_t n = strlen(name);
  const char *p = data;
  for (size_t i = 0; i + n < size; i++)
    if (p[i] == name[0] && memcmp(p + i, name, n) == 0 && (p[i + n] == 0 || p[i + n] == '('))
      return true;
  return false;
}

attnc_status cuda_module_load(CudaDriver *drv, const CudaImage *img, const CudaConfig *cfg,
                              CudaModule **out, Diag *d) {
  *out = NULL;
  attnc_status st = make_current(drv, d);
  if (st) return st;
  CudaModule *m = calloc(1, sizeof *m);
  if (!m) return diag_error(d, ATTNC_ERR_NOMEM, (Loc){ NULL, 0 }, "out of memory");
  m->drv = drv;
  m->cfg = *cfg;
  m->smem = cuda_smem_bytes(cfg);
  const char *tma_env = getenv("ATTNC_CUDA_TMA");
  m->maps = drv->encode_tiled && !(tma_env && strcmp(tma_env, "0") == 0);
  const char *pdl_env = getenv("ATTNC_CUDA_PDL");
  m->overlap = cuda_prep_overlap(cfg) && drv->launch_ex && !(pdl_env && strcmp(pdl_env, "0") == 0);
  char an[16];
  /* the attention kernel's cubin, and the pre-passes' where they are a second */
  int parts = cuda_image_parts(img);
  const void *part[2] = { NULL, NULL };
  size_t psize[2] = { 0, 0 };
  for (int i = 0; i < parts; i++) cuda_image_part(img, i, &part[i], &psize[i]);
  CUresult r = parts ? drv->cuModuleLoadData(&m->mod, part[0]) : CUDA_ERROR_INVALID_IMAGE;
  if (r == CUDA_SUCCESS && parts == 2 && (r = drv->cuModuleLoadData(&m->mod2, part[1])) != CUDA_SUCCESS)
    drv->cuModuleUnload(m->mod);
  if (r != CUDA_SUCCESS) {
    char what[400];
    snprintf(what, sizeof what, "loading the %s kernel image on %s (sm_%d)",
             cuda_arch_name(cfg->arch, an), drv->name, drv->arch);
    free(m);
    return cu_error(drv, r, ATTNC_ERR_RUNTIME, what, d);
  }
  if ((r = drv->cuModuleGetFunction(&m->fn, m->mod, CUDA_KERNEL_NAME)) != CUDA_SUCCESS)
    st = cu_error(drv, r, ATTNC_ERR_INTERNAL, "cuModuleGetFunction(" CUDA_KERNEL_NAME ")", d);
  /* most kernels have no pre-pass: look it up only when the image names it
     (a failed lookup is an API error to tools like compute-sanitizer) */
  CUmodule pm = m->mod2 ? m->mod2 : m->mod;
  int pi = m->mod2 ? 1 : 0;
  if (!st && image_names(part[pi], psize[pi], CUDA_PREP_NAME) &&
      (r = drv->cuModuleGetFunction(&m->prep, pm, CUDA_PREP_NAME)) != CUDA_SUCCESS)
    st = cu_error(drv, r, ATTNC_ERR_INTERNAL, "cuModuleGetFunction(" CUDA_PREP_NAME ")", d);
  if (!st && m->prep && (r = drv->cuModuleGetFunction(&m->prep_q, pm, CUDA_PREPQ_NAME)) != CUDA_SUCCESS)
    st = cu_error(drv, r, ATTNC_ERR_INTERNAL, "cuModuleGetFunction(" CUDA_PREPQ_NAME ")", d);
  if (!st && m->smem > drv->smem_optin)
    st = diag_error(d, ATTNC_ERR_UNSUPPORTED, (Loc){ NULL, 0 },
                    "the kernel needs %d bytes of shared memory; %s allows %d per block",
                    m->smem, drv->name, drv->smem_optin);
  /* static shared memory (the data iterator's bit sets) counts towards the
  ** 48 KiB default too: opt in from 47 KiB of dynamic memory on */
  if (!st && m->smem > 47 * 1024 &&
      (r = drv->cuFuncSetAttribute(m->fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, m->smem)) != CUDA_SUCCESS)
    st = cu_error(drv, r, ATTNC_ERR_RUNTIME, "cuFuncSetAttribute(max dynamic shared memory)", d);
  if (st) {
    drv->cuModuleUnload(m->mod);
    if (m->mod2) drv->cuModuleUnload(m->mod2);
    free(m);
    return st;
  }
  *out = m;
  return ATTNC_OK;
}

void cuda_module_free(CudaModule *m) {
  if (!m) return;
  if (m->drv->cuCtxSetCurrent(m->drv->ctx) == CUDA_SUCCESS) {
    m->drv->cuModuleUnload(m->mod);
    if (m->mod2) m->drv->cuModuleUnload(m->mod2);
  }
  free(m);
}

/* ------------------------------------------------------------ launch */

/* f on stream; after_prev: it may start while the kernel before it on the
   stream ends (it waits for that kernel's writes with griddepcontrol.wait) */
static CUresult launch(CudaDriver *drv, CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                       unsigned threads, unsigned smem, CUstream stream, void **params,
                       bool after_prev) {
  if (!after_prev) return drv->cuLaunchKernel(f, gx, gy, gz, threads, 1, 1, smem, stream, params, NULL);
  CUlaunchAttribute at;
  memset(&at, 0, sizeof at);
  at.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
  at.value.programmatic_stream_serialization = 1;
  CUlaunchConfig lc = { gx, gy, gz, threads, 1, 1, smem, stream, &at, 1 };
  return drv->launch_ex(&lc, f, params, NULL);
}

static void strides_of(const DLTensor *t, int64_t *st) {
  if (t->strides) {
    for (int i = 0; i < t->ndim; i++) st[i] = t->strides[i];
    return;
  }
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    st[i] = s;
    s *= t->shape[i] > 0 ? t->shape[i] : 1;
  }
}

static const void *data_of(const DLTensor *t) {
  return t && t->data ? (const char *)t->data + t->byte_offset : NULL;
}

/* a device tensor of the kernel's element type: head dim contiguous, rows 16-byte aligned */
static attnc_status check_dev(const char *name, const DLTensor *t, int rank, bool rows16, Diag *d) {
  if (t->device.device_type != kDLCUDA)
    return diag_error(d, ATTNC_ERR_ARG, (Loc){ NULL, 0 },
                      "%s is not in CUDA device memory (device type %d); the cuda target takes kDLCUDA tensors",
                      name, (int)t->device.device_type);
  int64_t st[8];
  strides_of(t, st);
  if (!rows16) return ATTNC_OK;
  if (st[rank - 1] != 1 && t->shape[rank - 1] > 1)
    return diag_error(d, ATTNC_ERR_UNSUPPORTED, (Loc){ NULL, 0 },
                      "%s must be contiguous in the head dim for the cuda target (stride %lld)",
                      name, (long long)st[rank - 1]);
  for (int i = 0; i < rank - 1; i++)
    if (st[i] % 8 != 0 && t->shape[i] > 1)
      return diag_error(d, ATTNC_ERR_UNSUPPORTED, (Loc){ NULL, 0 },
                        "%s stride %d is %lld elements; the cuda target needs multiples of 8 (16-byte rows)",
                        name, i, (long long)st[i]);
  if (((uintptr_t)data_of(t)) % 16 != 0)
    return diag_error(d, ATTNC_ERR_UNSUPPORTED, (Loc){ NULL, 0 },
                      "%s data is not 16-byte aligned", name);
  return ATTNC_OK;
}

/*
** The TMA descriptor of K or V for kernels that may load them with TMA
** (cuda_kv_tma), in the kernel's kv order, and of Q in its q order
** (cuda_q_tma): dims innermost first: the head
** dim; the tokens (a 1-D order) or a grid's axes, last first; then heads and
** batches, as one dim on a 3-D grid (a map has at most 5). A 1-D order
** with dilation d views the tokens as rows of d: (columns, d, tokens / d,
** heads, batches), boxes of one residue, and only where d divides the
** tokens (else a row past the last would read the next head's tokens, not
** zeros). Boxes of 64 columns by the order's box on each axis, 128-byte
** swizzle (the kernel's tile layout), coordinates past an axis read as
** zero. 0 when the driver or the tensor cannot have one; the kernel then
** loads with cp.async.
*/
int cuda_tma_map_layout(const CudaOrder *ko, const int64_t shape[4], const int64_t st[4], uintptr_t addr,
                        uint64_t dims[5], uint64_t strides[4], unsigned box[5]) {
  int R = ko->rank;
  if (R < 1 || R > 3 || addr % 16 != 0 || (st[3] != 1 && shape[3] > 1)) return 0;
  for (int i = 0; i < 4; i++)
    if (shape[i] <= 0) return 0;
  int64_t ext[5], bytes[5];                 /* extents, byte strides */
  int n = 0;
  ext[n] = shape[3], bytes[n] = 2, box[n++] = 64;
  int64_t tok = shape[2] > 1 ? st[2] * 2 : shape[3] * 2, count = 1;   /* size-1 dims: dense strides */
  for (int a = R - 1; a >= 0; a--) {
    int64_t na = R == 1 ? shape[2] : ko->n[a], dil = ko->dil[a];
    if (na <= 0 || (dil != 1 && (R != 1 || dil < 1 || na % dil != 0))) return 0;
    if (dil > 1) {                          /* residues, then rows of d tokens */
      ext[n] = dil, bytes[n] = tok, box[n++] = 1;
      ext[n] = na / dil, bytes[n] = tok * dil, box[n++] = (unsigned)ko->box[a];
    } else
      ext[n] = na, bytes[n] = tok * count, box[n++] = (unsigned)ko->box[a];
    count *= na;
  }
  if (count != shape[2]) return 0;          /* the grid is the tokens */
  int64_t hs = shape[1] > 1 ? st[1] * 2 : tok * count;
  int64_t bs = shape[0] > 1 ? st[0] * 2 : hs * shape[1];
  if (R < 3) {
    ext[n] = shape[1], bytes[n] = hs, box[n++] = 1;
    ext[n] = shape[0], bytes[n] = bs, box[n++] = 1;
  } else {                                  /* head hk of batch b is b * H + hk */
    if (shape[0] > 1 && shape[1] > 1 && bs != hs * shape[1]) return 0;
    ext[n] = shape[0] * shape[1], bytes[n] = shape[1] > 1 ? hs : bs, box[n++] = 1;
  }
  for (int i = 0; i < n; i++) {
    if (i > 0 && (bytes[i] <= 0 || bytes[i] % 16 != 0 || bytes[i] >= ((int64_t)1 << 40))) return 0;
    if (ext[i] > 0xffffffffLL) return 0;
    dims[i] = (uint64_t)ext[i];
    if (i > 0) strides[i - 1] = (uint64_t)bytes[i];
  }
  return n;
}

static bool encode_map(CudaDriver *drv, const CudaOrder *order, const DLTensor *t, uint64_t *out) {
  if (!t || !t->data || t->ndim != 4) return false;
  int64_t st[8] = { 0 };
  strides_of(t, st);
  uint64_t dims[5], strides[4];
  unsigned box[5], one[5] = { 1, 1, 1, 1, 1 };
  int rank = cuda_tma_map_layout(order, t->shape, st, (uintptr_t)data_of(t), dims, strides, box);
  CUtensorMap map;
  if (!rank ||
      drv->encode_tiled(&map, CU_TENSOR_MAP_DATA_TYPE_UINT16, (unsigned)rank, (void *)data_of(t), dims, strides,
                        box, one, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                        CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) != CUDA_SUCCESS)
    return false;
  memcpy(out, map.w, sizeof map.w);
  return true;
}

attnc_status cuda_launch(CudaModule *m, const IrPattern *p, const attnc_args *args, bool *copy,
                         Diag *d) {
  const CudaConfig *cfg = &m->cfg;
  if (copy) *copy = false;
  IrTensorView views[32];
  if (p->ninputs > 32)
    return diag_error(d, ATTNC_ERR_UNSUPPORTED, (Loc){ NULL, 0 }, "more than 32 runtime inputs");
  Shape s;
  attnc_status st = args_check(p, args, false, &s, views, d);
  if (st) return st;
  IrDtype want = cfg->dtype;
  DLDataType dl = args->q->dtype;
  bool dt_ok = (want == DT_F16 && dl.code == kDLFloat && dl.bits == 16) ||
               (want == DT_BF16 && dl.code == kDLBfloat && dl.bits == 16);
  if (!dt_ok)
    return diag_error(d, ATTNC_ERR_ARG, (Loc){ NULL, 0 },
                      "this kernel was compiled for %s tensors (q has code %d, %d bits)",
                      want == DT_F16 ? "float16" : "bfloat16", dl.code, dl.bits);
  if (s.D != cfg->head_dim || s.Dv != cfg->head_dim_v)
    return diag_error(d, ATTNC_ERR_ARG, (Loc){ NULL, 0 },
                      "this kernel was compiled for head dims D=%d, Dv=%d (got D=%lld, Dv=%lld)",
                      cfg->head_dim, cfg->head_dim_v, (long long)s.D, (long long)s.Dv);
  if ((st = check_dev("q", args->q, 4, true, d)) || (st = check_dev("k", args->k, 4, true, d)) ||
      (st = check_dev("v", args->v, 4, true, d)) || (st = check_dev("o", args->o, 4, true, d)) ||
      (args->lse && (st = check_dev("lse", args->lse, 3, false, d))))
    return st;
  for (int i = 0; i < args->ninputs; i++)
    if ((st = check_dev(args->inputs[i].name, args->inputs[i].tensor, args->inputs[i].tensor->ndim, false, d)))
      return st;
  if (cuda_seq_bits_for(s.Sq, s.Sk) > cfg->seq_bits)
    return diag_error(d, ATTNC_ERR_ARG, (Loc){ NULL, 0 },
                      "this kernel was compiled for sequences below 2^%d tokens (Sq = %lld, Sk = %lld)",
                      cfg->seq_bits, (long long)s.Sq, (long long)s.Sk);
  if (s.B > 65535 || s.Hq > 65535)
    return diag_error(d, ATTNC_ERR_UNSUPPORTED, (Loc){ NULL, 0 },
                      "the cuda target takes at most 65535 batches and heads (B = %lld, Hq = %lld)",
                      (long long)s.B, (long long)s.Hq);
  double scale = args->scale != 0 ? args->scale : p->scale != 0 ? p->scale : 1.0 / sqrt((double)s.D);
  bool has_score = p->score >= 0;
  if (!has_score && !(scale > 0))
    return diag_error(d, ATTNC_ERR_UNSUPPORTED, (Loc){ NULL, 0 },
                      "the cuda target needs a positive scale (got %g)", scale);
  int64_t qtiles = cuda_order_ntiles(&cfg->qord, s.Sq);
  if (qtiles > 0x7fffffff)
    return diag_error(d, ATTNC_ERR_UNSUPPORTED, (Loc){ NULL, 0 }, "too many q tiles (%lld)",
                      (long long)qtiles);
  if (qtiles == 0 || s.B == 0 || s.Hq == 0) return ATTNC_OK;
  /* a persistent kernel's items (q tile, head, batch) are ints, counted on
     past the last by a grid of what the SMs hold */
  bool persist = cfg->persist;
  int64_t items = qtiles * s.Hq * s.B, ctas = (int64_t)cuda_driver_sm_count(m->drv) * cuda_kernel_min_blocks(cfg);
  if (ctas < 1) ctas = 1;
  if (persist && items > 0x7fffffff - ctas)
    return diag_error(d, ATTNC_ERR_UNSUPPORTED, (Loc){ NULL, 0 },
                      "the persistent kernel walks at most 2^31 work items (q tiles x heads x "
                      "batches = %lld); split the batch", (long long)items);

  /* the parameter block, slot by slot (cuda_param_slots) */
  CudaSlot slots[64 + 3 * 32];
  int ns = cuda_param_slots(p, slots, (int)(sizeof slots / sizeof slots[0]));
  uint64_t buf[64 + 3 * 32 * IR_MAXDIMS];
  memset(buf, 0, sizeof buf);
  int k = 0, input = 0, meta_slot = -1;
  const DLTensor *ptrs[] = { args->q, args->k, args->v, args->o, args->lse };
  for (int i = 0; i < ns; i++) {
    const CudaSlot *sl = &slots[i];
    const char *n = sl->name;
    if (sl->kind == SLOT_TMAP) {        /* qmap, kmap, vmap: first, so a call that cannot have them stops here */
      bool q = n[0] == 'q';
      if (cuda_kv_tma(cfg) && (!q || cuda_q_tma(cfg)) &&
          !(m->maps && encode_map(m->drv, q ? &cfg->qord : &cfg->kord,
                                  q ? args->q : n[0] == 'k' ? args->k : args->v, buf + k))) {
        if (copy) { *copy = true; return ATTNC_OK; }   /* the kernel cannot copy: its copy variant can */
        return diag_error(d, ATTNC_ERR_UNSUPPORTED, (Loc){ NULL, 0 },
                          "the kernel loads K and V by TMA, and no descriptor could be made for %s (its "
                          "layout, the driver, or ATTNC_CUDA_TMA=0): it needs its copy variant", n);
      }
      k += sl->count;
    } else if (strcmp(n, "q") == 0 || strcmp(n, "k") == 0 || strcmp(n, "v") == 0 || strcmp(n, "o") == 0 ||
        strcmp(n, "lse") == 0) {
      int j = n[0] == 'q' ? 0 : n[0] == 'k' ? 1 : n[0] == 'v' ? 2 : n[0] == 'o' ? 3 : 4;
      buf[k++] = (uint64_t)(uintptr_t)data_of(ptrs[j]);
    } else if (strstr(n, "_stride") && strncmp(n, "in", 2) != 0) {
      int j = n[0] == 'q' ? 0 : n[0] == 'k' ? 1 : n[0] == 'v' ? 2 : n[0] == 'o' ? 3 : 4;
      int64_t st4[8] = { 0 };
      if (ptrs[j]) strides_of(ptrs[j], st4);
      for (int e = 0; e < sl->count; e++) buf[k++] = (uint64_t)st4[e];
    } else if (strcmp(n, "batch") == 0) buf[k++] = (uint64_t)s.B;
    else if (strcmp(n, "heads_q") == 0) buf[k++] = (uint64_t)s.Hq;
    else if (strcmp(n, "heads_kv") == 0) buf[k++] = (uint64_t)s.Hkv;
    else if (strcmp(n, "seq_q") == 0) buf[k++] = (uint64_t)s.Sq;
    else if (strcmp(n, "seq_k") == 0) buf[k++] = (uint64_t)s.Sk;
    else if (strcmp(n, "scale") == 0) memcpy(&buf[k++], &scale, 8);
    else if (strcmp(n, "softmax_scale_log2") == 0) {
      const double log2e = 1.4426950408889634074;
      double sl2 = has_score ? log2e : scale * log2e;
      memcpy(&buf[k++], &sl2, 8);
    } else if (strcmp(n, "meta") == 0) meta_slot = k++;   /* below */
    else if (strcmp(n, "in") == 0) buf[k++] = (uint64_t)(uintptr_t)views[input].data;
    else if (strcmp(n, "in_shape") == 0)
      for (int e = 0; e < sl->count; e++) buf[k++] = (uint64_t)views[input].shape[e];
    else if (strcmp(n, "in_stride") == 0) {
      for (int e = 0; e < sl->count; e++) buf[k++] = (uint64_t)views[input].strides[e];
      input++;
    } else
      return diag_error(d, ATTNC_ERR_INTERNAL, (Loc){ NULL, 0 }, "cuda launch: unknown slot %s", n);
  }
  CudaDriver *drv = m->drv;
  if ((st = make_current(drv, d))) return st;
  void *params[] = { buf };
  CUstream stream = (CUstream)args->stream;
  /* the data iterator's pre-pass: key_k ranges per kv tile, then per group
     of CUDA_DATA_GROUP tiles (attnc_prep), then a record of each q tile's
     first tests (attnc_prep_q, which reads the ranges), into a buffer that
     lives for this launch (stream-ordered); the kernel reads them
     (kDataMeta), so no buffer, no launch */
  CUdeviceptr meta = 0;
  size_t bytes = m->prep && meta_slot >= 0 ? (size_t)cuda_meta_bytes(cfg, s.B, s.Hq, s.Sq, s.Sk) : 0;
  if (bytes > 0) {
    int64_t groups = cuda_data_groups(cfg, s.Sk);   /* attnc_prep's grid */
    if (!drv->mem_alloc_async || !drv->mem_free_async)
      return diag_error(d, ATTNC_ERR_NODEVICE, (Loc){ NULL, 0 },
                        "the CUDA driver has no cuMemAllocAsync (CUDA 11.2 or newer), which the "
                        "pre-pass of a kernel whose kv tiles come from inputs needs");
    CUresult r = drv->mem_alloc_async(&meta, bytes, stream);
    if (r != CUDA_SUCCESS)
      return cu_error(drv, r, r == CUDA_ERROR_OUT_OF_MEMORY ? ATTNC_ERR_NOMEM : ATTNC_ERR_RUNTIME,
                      "cuMemAllocAsync (the pre-pass's key ranges)", d);
    buf[meta_slot] = (uint64_t)meta;
    r = launch(drv, m->prep, (unsigned)groups, (unsigned)s.Hq, (unsigned)s.B,
               32 * CUDA_DATA_GROUP, 0, stream, params, false);
    const char *what = "cuLaunchKernel(" CUDA_PREP_NAME ")";
    if (r == CUDA_SUCCESS) {
      r = launch(drv, m->prep_q, (unsigned)qtiles, (unsigned)s.Hq, (unsigned)s.B,
                 (unsigned)cuda_prep_q_threads(cfg), 0, stream, params, m->overlap);
      what = "cuLaunchKernel(" CUDA_PREPQ_NAME ")";
    }
    if (r != CUDA_SUCCESS) {
      drv->mem_free_async(meta, stream);
      return cu_error(drv, r, ATTNC_ERR_RUNTIME, what, d);
    }
  }
  /* a persistent kernel: a CTA for each it fits on every SM, walking the
     (q tile, head, batch) items */
  unsigned gx = persist ? (unsigned)(items < ctas ? items : ctas) : (unsigned)qtiles;
  unsigned gy = persist ? 1u : (unsigned)s.Hq, gz = persist ? 1u : (unsigned)s.B;
  CUresult r = launch(drv, m->fn, gx, gy, gz, (unsigned)cuda_threads(cfg), (unsigned)m->smem,
                      stream, params, meta && m->overlap);
  if (meta) drv->mem_free_async(meta, stream);   /* after the kernel, in stream order */
  if (r != CUDA_SUCCESS) return cu_error(drv, r, ATTNC_ERR_RUNTIME, "cuLaunchKernel", d);
  return ATTNC_OK;
}
