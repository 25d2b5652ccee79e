/*
** cpu.h -- the CPU backend: attention kernels built as LLVM IR through the
** LLVM C API, vectorised for the host, JIT-compiled with ORC LLJIT or
** written ahead of time as an object file plus a C header.
**
** The kernel (gen.c) works on one q tile at a time ("a work item" is a
** (batch, head, q tile) triple): Q is packed transposed into a [D][BM]
** scratch so that the query index is the SIMD dimension; S^T = K Q^T is a
** register-blocked outer-product micro-kernel (K scalars broadcast against
** Q^T vectors); the online softmax runs down the kv rows with no
** horizontal reductions; O^T += V^T P^T is the same micro-kernel shape.
** The mask and score DAGs are emitted one emitter per IR op (expr.c) over
** W-lane vectors of queries. See docs/cpu.md.
**
** Compiled kernels own their LLVM context and JIT; they are immutable once
** built and may be run from many threads at once.
*/
#ifndef ATTNC_CPU_H
#define ATTNC_CPU_H

#include "backend/backend.h"
#include "passes/passes.h"

/*
** The calling convention of a compiled kernel, shared by the JIT path and
** by the C header written next to an ahead-of-time object (cpu_header).
** Strides are in elements; the innermost (head-dim) stride must be 1.
** scale is the final softmax scale (not 0).
*/
typedef struct CpuInput {
  const void *data;
  int64_t shape[4];
  int64_t strides[4];
} CpuInput;

typedef struct CpuArgs {
  const void *q, *k, *v;
  void *o;
  float *lse;                 /* NULL: not written */
  const CpuInput *inputs;     /* the pattern's runtime inputs, in order */
  int64_t B, Hq, Hkv, Sq, Sk;
  int64_t q_strides[3];       /* batch, head, token */
  int64_t k_strides[3];
  int64_t v_strides[3];
  int64_t o_strides[3];
  int64_t lse_strides[3];
  float scale;
} CpuArgs;

/* the kernel's entry points, by role */
typedef void (*CpuWorkFn)(const CpuArgs *a, int64_t w0, int64_t w1);
typedef int64_t (*CpuNworkFn)(const CpuArgs *a);

/* sizes a kernel accepts: int index math is 32-bit where ranges allow */
#define CPU_MAX_TOKENS ((int64_t)1 << 28)
#define CPU_MAX_BATCH  ((int64_t)1 << 20)
#define CPU_MAX_HEADS  ((int64_t)1 << 16)

/* what the host CPU offers (LLVMGetHostCPUName / Features) */
typedef struct CpuTarget {
  char triple[128];
  char cpu[64];
  char *features;             /* malloc'd "+avx2,+fma,..." */
  int vec_width;              /* floats per vector: 16 (AVX-512), 8, 4 */
  int nregs;                  /* vector registers: 32 or 16 */
} CpuTarget;

/*
** A compiled-object cache the runtime may supply (runtime/cache.c): get
** returns a malloc'd copy of the entry; put stores one. Keys say everything
** the object depends on (cpu_cache_key: versions, target and the generated
** IR, so the cache skips O3 and code generation, not IR generation).
*/
typedef struct CpuCache {
  bool (*get)(void *ud, const void *key, size_t keylen, void **data, size_t *len);
  void (*put)(void *ud, const void *key, size_t keylen, const void *data, size_t len);
  void *ud;
} CpuCache;

typedef struct CpuOptions {
  IrDtype dtype;              /* DT_F32 or DT_BF16 (Q, K, V and O) */
  int D, Dv;                  /* head dims the kernel is specialised to */
  int bm, bn;                 /* tile sizes without a plan; 0 = default */
  const Plan *plan;           /* the schedule and kv iterators (passes/);
                                 NULL = raster tiles, every kv tile, mask
                                 evaluated on each (then the pattern given
                                 is used; with a plan, plan->pat) */
  const char *symbol;         /* entry-point prefix; NULL = "attnc_<name>" */
  const CpuCache *cache;      /* NULL: always compile */
} CpuOptions;

typedef struct CpuKernel CpuKernel;

/* the tile sizes a plan for the cpu target should pin (PlanOptions.pin) */
void cpu_plan_pin(Schedule *pin, int64_t D);

/*
** Build the plan for the cpu target: the cpu's tile sizes pinned, or the
** passes' own choice where those do not fit (a grid the box cannot tile).
** Shape hints may be 0 (unknown); user, when not NULL, is the schedule
** the user pinned instead. The plan lives in arena a; *out is NULL (and
** the status OK) when no schedule could be built: the kernel then walks
** every kv tile through the mask.
*/
attnc_status cpu_plan(Arena *a, const IrPattern *p, int64_t B, int64_t H, int64_t Sq, int64_t Sk,
                      int64_t D, const Schedule *user, Plan **out, Diag *d);

/* the host target, detected once (thread-safe) */
const CpuTarget *cpu_target(void);

/*
** Compile the pattern for the host: build the module (gen.c), optimise it
** (default<O3>), hand it to a fresh LLJIT and look up the entry points.
** Unsupported dtypes or head dims give ATTNC_ERR_UNSUPPORTED.
*/
attnc_status cpu_compile(const IrPattern *p, const CpuOptions *o, CpuKernel **out, Diag *d);
void cpu_kernel_free(CpuKernel *k);

/* the symbol prefix and tile sizes the kernel was built with */
const char *cpu_kernel_symbol(const CpuKernel *k);
void cpu_kernel_tiles(const CpuKernel *k, int *bm, int *bn);
CpuWorkFn cpu_kernel_work(const CpuKernel *k);
CpuNworkFn cpu_kernel_nwork(const CpuKernel *k);
double cpu_kernel_compile_ms(const CpuKernel *k);
const CpuOptions *cpu_kernel_options(const CpuKernel *k);
bool cpu_kernel_cached(const CpuKernel *k);       /* the object came from the cache */

/* the cache key of a compile whose generated IR is ir (malloc'd text) */
char *cpu_cache_key(const CpuOptions *o, const char *ir);

/*
** A parallel-for that cpu_run hands the work items to: call fn on
** disjoint [begin, end) ranges covering [0, n), from any threads, and
** return when all are done. NULL runs everything on the calling thread.
** runtime/pool.c provides one (pool_parallel_for).
*/
typedef void (*CpuTaskFn)(void *arg, int64_t begin, int64_t end);
typedef struct CpuExecutor {
  void (*parallel_for)(void *self, int64_t n, CpuTaskFn fn, void *arg);
  void *self;
} CpuExecutor;

/*
** Check the call against the pattern (args_check), translate it into
** CpuArgs and run all work items. Host tensors of the kernel's dtype only.
*/
attnc_status cpu_run(const CpuKernel *k, const IrPattern *p, const attnc_args *args,
                     const CpuExecutor *ex, Diag *d);

/* fill CpuArgs from a checked call; inputs has p->ninputs slots */
attnc_status cpu_args_from(const IrPattern *p, const CpuOptions *o, const attnc_args *args,
                           CpuArgs *ca, CpuInput *inputs, Diag *d);

/* ----------------------------------------------------- ahead of time */
typedef enum CpuEmitKind { CPU_EMIT_OBJ = 0, CPU_EMIT_LLVM, CPU_EMIT_ASM } CpuEmitKind;

/*
** Write the kernel as an object file (or LLVM IR text, or assembly) to
** path. The object needs only libm; cpu_header gives the C declarations.
*/
attnc_status cpu_emit_file(const IrPattern *p, const CpuOptions *o, CpuEmitKind kind,
                           const char *path, Diag *d);
/* the kernel's LLVM IR text after optimisation (malloc'd) */
char *cpu_emit_llvm(const IrPattern *p, const CpuOptions *o, bool optimised, Diag *d);
/*
** The same in memory, by kind: "obj" (the object), "asm", "llvm" (text),
** "h" (the header). *data is malloc'd and NUL-terminated after *len bytes.
*/
attnc_status cpu_emit_mem(const IrPattern *p, const CpuOptions *o, const char *kind, void **data, size_t *len,
                          Diag *d);
/* the C header declaring an AOT object's entry points (malloc'd) */
char *cpu_header(const IrPattern *p, const CpuOptions *o);

/*
** What `attnc compile --target cpu --emit obj|llvm|asm -o FILE` does: plan
** the pattern for the cpu (cpu_plan), write the kernel to path and, for
** objects, its C header to header_path (NULL: path with its extension
** replaced by .h). symbol NULL: "attnc_<pattern name>".
*/
attnc_status cpu_aot(const IrPattern *p, IrDtype dtype, int D, int Dv, const char *symbol,
                     CpuEmitKind kind, const char *path, const char *header_path, Diag *d);

/* ------------------------------------------- internal to backend/cpu */
#ifdef CPU_INTERNAL
#include <llvm-c/Core.h>

/*
** The state of one module being generated. Types are created once; the
** "current" fields describe the function being emitted.
*/
typedef struct Gen {
  LLVMContextRef C;
  LLVMModuleRef M;
  LLVMBuilderRef B;
  LLVMValueRef fn;                      /* function being emitted */
  const IrPattern *p;                   /* the plan's pattern if there is one */
  const Plan *pl;                       /* NULL: raster, dense */
  const CpuOptions *o;
  const CpuTarget *t;
  Diag *d;
  int W;                                /* lanes per float vector */
  int BM, BN;                           /* q tile, kv tile */
  LLVMTypeRef voidt, i1, i8, i16, i32, i64, f32, ptr;
  LLVMTypeRef vf, vb, vi32, vi64;       /* <W x float/i1/i32/i64> */
  LLVMTypeRef args_ty, input_ty;        /* CpuArgs, CpuInput */
  uint8_t *iwidth;                      /* per int node: 32 or 64 */
  LLVMValueRef list_inputs, list_seen;  /* _work: the inputs, the list scratch, */
  LLVMValueRef list_qtok;               /* the q tile's tokens (data ranges) */
} Gen;

/* values an index-list iterator marks per q tile (scratch bytes on the stack) */
#define CPU_LIST_MAX 65536

/* a value of an expression: a scalar (uniform over the lanes) or a vector */
typedef struct XVal {
  LLVMValueRef v;
  bool vec;
} XVal;

/*
** Where an expression is evaluated: leaves as i64 scalars (b, h, k, the
** k coordinates, the sequence lengths) or i64 vectors (q and its
** coordinates, one lane per query); s the raw score (a float vector).
** inputs points at the CpuInput array.
*/
typedef struct XEnv {
  XVal b, h, q, k, sq, sk, s;
  XVal qc[IR_MAXGRID], kc[IR_MAXGRID];
  LLVMValueRef inputs;
} XEnv;

/* helpers (gen.c) */
LLVMValueRef cg_i64(Gen *g, int64_t v);
LLVMValueRef cg_i32(Gen *g, int32_t v);
LLVMValueRef cg_f32(Gen *g, double v);
LLVMValueRef cg_splat(Gen *g, LLVMValueRef scalar);
LLVMValueRef cg_call_intr(Gen *g, const char *name, LLVMTypeRef *over, int nover,
                          LLVMValueRef *args, int nargs);
LLVMValueRef cg_select(Gen *g, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b);

/* a counted loop: lo <= iv < hi (signed i64), step > 0 */
typedef struct CgLoop {
  LLVMBasicBlockRef head, body, exit;
  LLVMValueRef iv, step;
  LLVMValueRef carry[32];
  int ncarry;
} CgLoop;
LLVMValueRef cg_loop_open(Gen *g, CgLoop *l, LLVMValueRef lo, LLVMValueRef hi,
                          LLVMValueRef step, int ncarry, LLVMValueRef *init, const char *name);
void cg_loop_close(Gen *g, CgLoop *l, LLVMValueRef *next);

/* expressions (expr.c) */
void cg_int_widths(Gen *g);                   /* fills g->iwidth by ranges */
XVal cg_expr(Gen *g, const XEnv *env, int root);
LLVMValueRef cg_exp2(Gen *g, LLVMValueRef x, bool full);   /* polynomial */

/* the scheduled IR (plan.c) */
typedef struct PlanVals { LLVMValueRef v[PV_NVARS][IR_MAXGRID]; } PlanVals;
typedef void (*CgKvTileFn)(Gen *g, void *ud, LLVMValueRef *u, LLVMValueRef full);
LLVMValueRef cg_pexpr(Gen *g, const PlanExpr *e, const PlanVals *pv);
LLVMValueRef cg_order_ntiles(Gen *g, const PlanOrder *o, LLVMValueRef seqlen);
void cg_order_coords(Gen *g, const PlanOrder *o, LLVMValueRef seqlen, LLVMValueRef t, LLVMValueRef *u);
LLVMValueRef cg_order_token(Gen *g, const PlanOrder *o, LLVMValueRef seqlen, LLVMValueRef *u, LLVMValueRef pos);
void cg_plan_iterate(Gen *g, const Plan *pl, const PlanIter *it, const PlanVals *pv, CgKvTileFn fn, void *ud);

/* grid coordinates of token k (scalar i64, k >= 0) (gen.c) */
void cg_coords(Gen *g, LLVMValueRef k, XVal *kc);

/* the module (gen.c) */
LLVMModuleRef cpu_build_module(LLVMContextRef C, const IrPattern *p, const CpuOptions *o, Diag *d);
void cpu_symbol(const IrPattern *p, const CpuOptions *o, char *buf, size_t n);
void cpu_tiles(const CpuTarget *t, const CpuOptions *o, int *bm, int *bn);
#endif

#endif
