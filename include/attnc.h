/*
** attnc.h -- the one public header of attnc, a compiler for attention
** variants: a pattern written in Lua in, a fused attention kernel out.
**
**   attnc_ctx     a context: owns the kernel cache; may be shared by threads
**   attnc_spec    a traced pattern (mask + score modification + inputs)
**   attnc_kernel  a spec compiled for one target (ref, cpu, cuda)
**
** Every call that can fail returns an attnc_status and, when given a
** non-NULL attnc_error, fills it with one message naming what is wrong and
** where ("specs/x.lua:12: window must be positive (got -3)"). The library
** never exits or aborts on bad input.
**
** Tensors are DLPack DLTensor views. Q is [B, Hq, Sq, D], K is
** [B, Hkv, Skv, D], V is [B, Hkv, Skv, Dv], O is [B, Hq, Sq, Dv] and the
** optional LSE is [B, Hq, Sq] float32, each in that logical order with
** arbitrary strides (in elements; NULL strides = compact), so BHSD and BSHD
** memory layouts both work. Hq must be a multiple of Hkv (GQA / MQA).
*/
#ifndef ATTNC_H
#define ATTNC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ATTNC_VERSION_MAJOR 0
#define ATTNC_VERSION_MINOR 1
#define ATTNC_VERSION_PATCH 0

const char *attnc_version(void);          /* "0.1.0" */

/* ------------------------------------------------------------- DLPack */
/* The tensor exchange structs of DLPack (ABI-compatible with dlpack.h). */
#ifndef DLPACK_VERSION
typedef enum { kDLCPU = 1, kDLCUDA = 2, kDLCUDAHost = 3 } DLDeviceType;
typedef struct { int32_t device_type; int32_t device_id; } DLDevice;
typedef enum { kDLInt = 0, kDLUInt = 1, kDLFloat = 2, kDLBfloat = 4 } DLDataTypeCode;
typedef struct { uint8_t code; uint8_t bits; uint16_t lanes; } DLDataType;
typedef struct {
  void *data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t *shape;
  int64_t *strides;          /* in elements; NULL = compact row-major */
  uint64_t byte_offset;
} DLTensor;
#endif

/* ------------------------------------------------------------- status */
typedef enum attnc_status {
  ATTNC_OK = 0,
  ATTNC_ERR_SPEC,         /* the spec is wrong (syntax, types, params) */
  ATTNC_ERR_ARG,          /* a bad argument: shape, dtype, missing tensor */
  ATTNC_ERR_IO,           /* a file could not be read or written */
  ATTNC_ERR_NOMEM,        /* out of memory (or the spec's memory cap) */
  ATTNC_ERR_UNSUPPORTED,  /* valid, but not supported by this target */
  ATTNC_ERR_NODEVICE,     /* no CUDA driver or GPU */
  ATTNC_ERR_COMPILE,      /* the backend compiler failed (a compiler bug) */
  ATTNC_ERR_RUNTIME,      /* a launch or device call failed */
  ATTNC_ERR_INTERNAL      /* a bug in attnc */
} attnc_status;

const char *attnc_status_name(attnc_status s);

typedef struct attnc_error {
  attnc_status status;
  char message[1024];     /* "file:line: what is wrong", NUL-terminated */
} attnc_error;

/* ------------------------------------------------------------ handles */
typedef struct attnc_ctx attnc_ctx;
typedef struct attnc_spec attnc_spec;
typedef struct attnc_kernel attnc_kernel;

attnc_ctx *attnc_ctx_new(void);           /* NULL only when out of memory */
void attnc_ctx_free(attnc_ctx *ctx);

/* ------------------------------------------------------------- specs */
/* A param override, as from "-D name=value" on the command line. */
typedef struct attnc_define { const char *name; const char *value; } attnc_define;

attnc_status attnc_spec_load_file(attnc_ctx *ctx, const char *path,
                                  const attnc_define *defs, int ndefs,
                                  attnc_spec **out, attnc_error *err);
/* name is used in error locations ("name:line: ...") */
attnc_status attnc_spec_load_string(attnc_ctx *ctx, const char *name,
                                    const char *source,
                                    const attnc_define *defs, int ndefs,
                                    attnc_spec **out, attnc_error *err);
void attnc_spec_free(attnc_spec *spec);

/* The pattern IR as text (malloc'd; free with free()). NULL if no memory. */
char *attnc_spec_ir(const attnc_spec *spec);
const char *attnc_spec_name(const attnc_spec *spec);

/* Runtime inputs the spec declares (e.g. "doc", "route"). */
int attnc_spec_ninputs(const attnc_spec *spec);
const char *attnc_spec_input_name(const attnc_spec *spec, int i);

/* ----------------------------------------------------------- running */
typedef struct attnc_named_tensor {
  const char *name;
  const DLTensor *tensor;
} attnc_named_tensor;

typedef struct attnc_args {
  const DLTensor *q, *k, *v;
  DLTensor *o;
  DLTensor *lse;                    /* optional */
  const attnc_named_tensor *inputs; /* runtime inputs by name */
  int ninputs;
  double scale;                     /* 0 = the spec's, else 1/sqrt(D) */
  void *stream;                     /* CUstream for the cuda target */
} attnc_args;

typedef enum attnc_target {
  ATTNC_TARGET_REF = 0,   /* the reference executor: double precision */
  ATTNC_TARGET_CPU,       /* LLVM-compiled CPU kernels */
  ATTNC_TARGET_CUDA       /* NVRTC-compiled CUDA kernels */
} attnc_target;

const char *attnc_target_name(attnc_target t);

/*
** Run the reference executor: attention straight from the pattern IR in
** double precision on host tensors (float32 or float64). A query with no
** allowed key gives a zero row and LSE = -inf.
*/
attnc_status attnc_run_reference(const attnc_spec *spec,
                                 const attnc_args *args, attnc_error *err);


/* ----------------------------------------------------------- kernels */
/*
** A schedule: how the kernel runs, kept apart from what it computes.
** Zero fields are chosen by attnc: when all are 0, attnc_kernel_compile
** looks up the tuning database written by `attnc tune` (docs/tuning.md;
** $ATTNC_TUNE_DB, else $XDG_CONFIG_HOME/attnc/tune.json, else
** ~/.config/attnc/tune.json; ATTNC_TUNE_DB=off skips it) for this pattern,
** target, arch, head_dim and seq_hint, else the target's heuristics.
*/
typedef struct attnc_schedule {
  int block_m, block_n;       /* q / kv tile in tokens */
  int warps, stages;
  int order;                  /* 0 auto, 1 raster (1-D), 2 tiled grid boxes */
} attnc_schedule;

typedef enum attnc_dtype {
  ATTNC_DTYPE_AUTO = 0,       /* from the tensors of the first run */
  ATTNC_DTYPE_F32, ATTNC_DTYPE_F16, ATTNC_DTYPE_BF16, ATTNC_DTYPE_F64
} attnc_dtype;

typedef struct attnc_compile_options {
  attnc_target target;
  const char *arch;           /* cuda: "sm_80", "sm_90a"; NULL = the device's */
  attnc_schedule schedule;
  attnc_dtype dtype;          /* AUTO: specialise at run time */
  int head_dim, head_dim_v;   /* 0: specialise at run time (Dv 0 = D) */
  int64_t seq_hint;           /* a typical Sq, for the tile choice (0 = none) */
} attnc_compile_options;

/* where a kernel's schedule came from (attnc_kernel_info.schedule_source) */
typedef enum attnc_schedule_source {
  ATTNC_SCHEDULE_HEURISTIC = 0,  /* all fields 0: the target's heuristics */
  ATTNC_SCHEDULE_CALLER,         /* the caller's attnc_compile_options.schedule */
  ATTNC_SCHEDULE_TUNED           /* the tuning database (`attnc tune`) */
} attnc_schedule_source;

/* what a compile did, for tools (attnc compile --json) */
typedef struct attnc_kernel_info {
  int cached;                 /* 1: the last specialisation came from a cache */
  double compile_ms;          /* wall time of the last specialisation's build,
                                 cache lookups included */
  int nspecialisations;
  attnc_schedule schedule;    /* the schedule given to the target (0 fields: heuristics) */
  int schedule_source;        /* attnc_schedule_source */
  char tune_db[512];          /* ATTNC_SCHEDULE_TUNED: the database file */
} attnc_kernel_info;

/*
** Compile spec for a target. With dtype and head_dim given the kernel is
** built now; otherwise on the first run with each new (dtype, D, Dv). The
** kernel keeps the spec alive by reference: free the kernel first.
*/
attnc_status attnc_kernel_compile(attnc_ctx *ctx, const attnc_spec *spec,
                                  const attnc_compile_options *opts,
                                  attnc_kernel **out, attnc_error *err);
attnc_status attnc_kernel_run(attnc_kernel *kernel, const attnc_args *args,
                              attnc_error *err);
void attnc_kernel_info_get(const attnc_kernel *kernel, attnc_kernel_info *info);

/*
** What the target made of a kernel compiled with dtype and head_dim given:
** for cuda, kind "cuda" (the generated source), "ptx" or "cubin". *data is
** malloc'd (free with free()), NUL-terminated after *len bytes.
*/
attnc_status attnc_kernel_artifact(attnc_kernel *kernel, const char *kind, void **data,
                                   size_t *len, attnc_error *err);
void attnc_kernel_free(attnc_kernel *kernel);

/* 1 when the target was built into this library (ref always is) */
int attnc_target_available(attnc_target t);

#ifdef __cplusplus
}
#endif
#endif
