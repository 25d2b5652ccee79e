/*
** cuda.h -- the CUDA backend: readable CUDA C++ emitted from a pattern (and
** the passes' schedule), compiled with NVRTC, run through the driver API
** loaded with dlopen("libcuda.so.1").
**
**   emit    cuda_emit(pattern, config) -> CUDA C++ source (deterministic:
**           the same input gives byte-identical text; see docs/cuda.md)
**   compile cuda_compile(source, arch, cubin|ptx) -> image, through NVRTC
**   run     CudaDriver (one per context and device) -> CudaModule (a loaded
**           image) -> cuda_launch(module, args) on kDLCUDA tensors
**
** The layer below the runtime: nothing here caches. runtime/cache.h keys
** images by cuda_cache_key() and calls cuda_compile() on a miss.
** Compiled only when CMake finds NVRTC (ATTNC_HAVE_CUDA).
*/
#ifndef ATTNC_CUDA_H
#define ATTNC_CUDA_H

#include "ir/ir.h"
#include "passes/passes.h"
#include "backend/backend.h"

/* ------------------------------------------------------------ config */

/*
** A token order as the kernel computes it (the plan's PlanOrder, or raster):
** per axis n positions (0 = the runtime Sq / Sk, 1-D only), tile extent box,
** residue grouping dil. Tiles per axis T = dil * ceil(n / (box * dil)); a
** tile index is row-major over the axes' T (passes/passes.h has the rest).
*/
typedef struct CudaOrder {
  int rank;
  int64_t n[IR_MAXGRID], box[IR_MAXGRID], dil[IR_MAXGRID];
} CudaOrder;
int64_t cuda_order_ntiles(const CudaOrder *o, int64_t seqlen);

/*
** What one kernel is specialised for. Zero fields take defaults from
** cuda_config_finish (tiles by head dim; arch 90).
*/
typedef struct CudaConfig {
  IrDtype dtype;        /* DT_F16 or DT_BF16 (Q, K, V and O) */
  int head_dim;         /* D of Q and K: 32, 64, 96, 128 or 256 */
  int head_dim_v;       /* Dv of V and O (0 = head_dim) */
  int arch;             /* compute capability as 10*major+minor: 80, 86, 89, 90 */
  int seq_bits;         /* token indices below 2^seq_bits (24 or 31): sizes int math */
  int block_m;          /* query rows per CTA (0 = default) */
  int block_n;          /* key rows per kv tile (0 = default) */
  int warps;            /* warps per CTA (0 = default: 4) */
  CudaOrder qord, kord; /* token orders (rank 0 = raster over block_m / block_n) */
  bool raster;          /* pin 1-D raster order even on grids (plan) */
  int64_t seq_hint;     /* a typical Sq for the plan's tile choice (0 = none) */
  bool wgmma;           /* set by cuda_config_finish: Hopper's warpgroup MMA instead of
                           mma.sync (sm_90a, D and Dv 64 or 128, block_m 64 or 128, or
                           192 at D 64; a warp per 16 rows); $ATTNC_CUDA_WGMMA=0 turns
                           it off */
  bool overlap;         /* set by cuda_config_finish (wgmma only): two K/V buffers, loads
                           a step ahead, the softmax of tile j+1 under P_j V_j;
                           $ATTNC_CUDA_OVERLAP=0 turns it off */
  bool ws;              /* set by cuda_config_finish (overlap only; by default where kv
                           tiles are consecutive tokens, or block_m is 192): warp
                           specialisation, a producer warpgroup runs the kv iterator and
                           loads K and V (TMA where it can, else cp.async) into
                           mbarrier-guarded buffers; the compute warps never synchronise
                           the CTA; $ATTNC_CUDA_WS=1 turns it on for every overlapped
                           kernel, =0 off */
  bool sum_mma;         /* set by cuda_config_finish (ws only): the softmax's row sums by
                           the tensor core, as a column of ones beside each V buffer
                           (P V's N is Dv + 8) where the CTAs an SM still fit;
                           $ATTNC_CUDA_SUMMMA=0 turns it off */
  bool persist;         /* asked for by cuda_config_from_plan (cuda_persist_wanted), kept
                           by cuda_config_finish where it fits (ws with TMA, so not in
                           the copy variant, a 1-D q order): a persistent grid of what the SMs hold, each CTA
                           walking work items (q tile, head, batch) with two Q
                           buffers, the producer running ahead into the next item;
                           $ATTNC_CUDA_PERSIST=1 asks for it everywhere, =0 never */
  bool no_tma;          /* the copy variant: K, V and Q by cp.async even where the
                           order allows TMA (the runtime builds it for a launch that
                           cannot have the descriptors, see cuda_launch) */
} CudaConfig;

#define CUDA_SEQ_BITS_SMALL 24   /* int32 index math is exact below 2^24 tokens */
#define CUDA_SEQ_BITS_LARGE 31

/* fill defaults and check the combination; ATTNC_ERR_UNSUPPORTED says why */
attnc_status cuda_config_finish(const IrPattern *p, CudaConfig *cfg, Diag *d);
/* take tile sizes, warps and token orders from a plan's schedule, then finish */
attnc_status cuda_config_from_plan(const Plan *plan, CudaConfig *cfg, Diag *d);
/* the PlanOptions pins the cuda kernel needs (tile multiples), for plan_build */
void cuda_plan_options(const CudaConfig *cfg, PlanOptions *opt);
/* the same with the pattern: the tile table per head dim (plan_emit.c) */
void cuda_plan_options_for(const IrPattern *p, const CudaConfig *cfg, PlanOptions *opt);

/* "sm_90a" style name of an arch (sm_90 and later get the 'a' suffix) */
const char *cuda_arch_name(int arch, char buf[16]);
/* parse "sm_90a", "sm_80", "90", "9.0"; false if not an arch */
bool cuda_arch_parse(const char *s, int *arch);
/* whether the cuda target compiles for arch: sm_80 and newer */
bool cuda_arch_supported(int arch);
/* an --arch the user gave: parsed and supported, else ATTNC_ERR_ARG saying which */
attnc_status cuda_arch_from(const char *s, int *arch, Diag *d);

/* whether kernels for arch may use wgmma (sm_90a only: Blackwell has none
   and runs the mma.sync kernel; not with $ATTNC_CUDA_WGMMA=0);
   cuda_config_finish then decides per config */
bool cuda_wgmma_allowed(int arch);
/* dynamic shared memory bytes and threads of a kernel built from cfg */
int cuda_smem_bytes(const CudaConfig *cfg);
int cuda_threads(const CudaConfig *cfg);
/* the CTAs an SM must fit (__launch_bounds__' second argument) */
int cuda_kernel_min_blocks(const CudaConfig *cfg);
/* whether a plan's q tiles carry even work, known at compile time, so the
   persistent grid beats a CTA a q tile (emit.c says where it was measured) */
bool cuda_persist_wanted(const Plan *pl, const CudaConfig *cfg);
/* what partial tiles run for the mask (split into row, column and pair code,
   unrolled or in a loop), in words, for attnc explain */
attnc_status cuda_mask_summary(const IrPattern *p, const Plan *plan, const CudaConfig *cfg,
                               char *buf, size_t n, Diag *d);
/* how the score modification is computed (split or an element), in words;
   "" without one */
void cuda_score_summary(const IrPattern *p, char *buf, size_t n);

/* ------------------------------------------------------------ emit */

#define CUDA_KERNEL_NAME "attnc_fwd"
#define CUDA_PREP_NAME "attnc_prep"   /* the data iterator's pre-pass, when the kernel has one */
#define CUDA_PREPQ_NAME "attnc_prep_q" /* its second pass, over the q tiles (after attnc_prep) */
/* a source with pre-passes is two programs: ATTNC_PART=1 the attention
   kernel, =2 the pre-passes (cuda_compile builds them at once) */
#define CUDA_PART_MACRO "ATTNC_PART"
/* attnc_prep's summaries: one key_k range per group of this many kv tiles,
   after the tiles' own in p.meta (a block of a warp per tile writes both) */
#define CUDA_DATA_GROUP 32

/*
** Emit the kernel's CUDA C++ source, NUL-terminated, into arena a. The
** text needs no CUDA headers. Errors: ATTNC_ERR_UNSUPPORTED (an op or
** config this backend cannot emit, with the spec line), ATTNC_ERR_NOMEM.
*/
attnc_status cuda_emit(const IrPattern *p, const CudaConfig *cfg, Arena *a, char **src,
                       Diag *d);
/* the same, iterating as the plan says (plan NULL: raster order, dense
   iteration, the mask on every tile); cfg from cuda_config_from_plan */
attnc_status cuda_emit_plan(const IrPattern *p, const Plan *plan, const CudaConfig *cfg,
                            Arena *a, char **src, Diag *d);

/*
** The whole front half for the runtime and the CLI: finish cfg, build the
** passes' plan for it (unless use_plan is false or $ATTNC_CUDA_PLAN=0:
** raster order, dense iteration), take tiles and orders from the plan into
** cfg, and emit. The plan lives in arena a; cfg is what the module needs.
*/
/* the plan part of that: finish cfg, build the plan the kernel follows (the
   tile table, refined by the plan; user pins kept) into arena a, and take
   tiles, warps and orders from it into cfg (attnc explain --target cuda) */
attnc_status cuda_plan(const IrPattern *p, CudaConfig *cfg, Arena *a, Plan **plan, Diag *d);
attnc_status cuda_build_source(const IrPattern *p, CudaConfig *cfg, bool use_plan, Arena *a,
                               char **src, Diag *d);

/*
** The kernel's parameter block: the emitted `struct Params` is a list of
** 8-byte slots in this order, and cuda_launch fills the same list.
*/
typedef enum CudaSlotKind {
  SLOT_PTR,             /* a device pointer */
  SLOT_I64,             /* a size or stride in elements */
  SLOT_F64,             /* a double */
  SLOT_TMAP             /* a TMA tensor map: 16 slots, 64-byte aligned (the block starts
                           with them) */
} CudaSlotKind;
typedef struct CudaSlot {
  const char *name;     /* field name in the emitted struct ("q_stride[0]" style split) */
  CudaSlotKind kind;
  int count;            /* array length (1 = scalar) */
} CudaSlot;
int cuda_param_slots(const IrPattern *p, CudaSlot *slots, int max);   /* count */
/* the kernel loads K and V with TMA, and only so (the launch must make
   their descriptors): overlapped, kv tiles one box (order_tma in emit.c),
   not the copy variant (no_tma) */
bool cuda_kv_tma(const CudaConfig *cfg);
/* and Q too (its q tiles are one box as well) */
bool cuda_q_tma(const CudaConfig *cfg);
/* the TMA descriptor's geometry for a Q, K or V tensor of shape (B, H, S, D)
   and element strides st, 2-byte elements at addr, read in order ko: dims
   innermost first (head dim; tokens, or a grid's axes last first; heads,
   batches, one dim on a 3-D grid), byte strides of all but the first
   (size-1 dims get a dense stride), boxes; the rank, or 0 when TMA cannot
   read it (16-byte alignment and strides, D contiguous, dilation, a grid
   that is not the tokens, heads and batches that do not merge) */
int cuda_tma_map_layout(const CudaOrder *ko, const int64_t shape[4], const int64_t st[4], uintptr_t addr,
                        uint64_t dims[5], uint64_t strides[4], unsigned box[5]);

/* ------------------------------------------------------------ NVRTC */

/*
** CUDA_IMAGE_CUBIN: what the runtime loads, one cubin, or where the source
** has parts (a kernel with pre-passes) the parts' cubins,
** compiled at once, in one container (cuda_image_part);
** CUDA_IMAGE_CUBIN_ONE: one cubin of the whole source (what `attnc compile
** --emit cubin` writes; the same as CUDA_IMAGE_CUBIN without parts).
*/
typedef enum CudaImageKind { CUDA_IMAGE_CUBIN = 0, CUDA_IMAGE_PTX, CUDA_IMAGE_CUBIN_ONE } CudaImageKind;

typedef struct CudaImage {
  void *data;           /* malloc'd; free with cuda_image_free */
  size_t size;          /* bytes (PTX: text without the NUL) */
  CudaImageKind kind;
  double compile_ms;    /* NVRTC time (0 when it came from a cache) */
  bool wgmma_serial;    /* cubin: ptxas serialised the wgmmas (its C7514 / C7515
                           "Potential Performance Loss"), a slow kernel the emitter
                           should not make; false when it came from a cache */
} CudaImage;
void cuda_image_free(CudaImage *img);
/* how many cubins an image of kind compiled from src holds: 2 for
   CUDA_IMAGE_CUBIN of a source that is two programs (CUDA_PART_MACRO), else
   1 (the cache key, the compile and the cache's check all follow it) */
int cuda_image_nparts(const char *src, CudaImageKind kind);
/* how many cubins img holds: 1 (a cubin), 2 (a container of two), 0 (a
   container that does not hold together: a damaged cache entry) */
int cuda_image_parts(const CudaImage *img);
/* cubin i of img (i < cuda_image_parts(img)) */
void cuda_image_part(const CudaImage *img, int i, const void **data, size_t *size);

/*
** The NVRTC options for an arch and image kind ("-arch=sm_90a",
** "-default-device", "-std=c++17", ...): fills opts (pointers into archbuf
** or static strings) and returns their count.
*/
int cuda_nvrtc_options(int arch, CudaImageKind kind, char archbuf[32], const char **opts,
                       int max);
/* "nvrtc 13.0" (with the version NVRTC reports) */
const char *cuda_nvrtc_version(char buf[32]);

/*
** The bytes a compiled image depends on: source, options, NVRTC version,
** arch and kind; malloc'd into *key (free with free()). A cache keys by a
** hash of these and may compare them in full.
*/
attnc_status cuda_cache_key(const char *src, int arch, CudaImageKind kind, char **key,
                            size_t *len, Diag *d);

/*
** Compile with NVRTC. On a compile error the status is ATTNC_ERR_COMPILE and
** the message quotes the first failing generated line
** ("generated CUDA line 123: error: ...\n    <the line>").
*/
attnc_status cuda_compile(const char *src, int arch, CudaImageKind kind, CudaImage *out,
                          Diag *d);

/* ------------------------------------------------------------ driver */

/*
** The driver API, loaded with dlopen("libcuda.so.1") and bound to the
** primary context of one device. No driver: ATTNC_ERR_NODEVICE "no CUDA
** driver (libcuda.so.1 not found)"; no GPU: ATTNC_ERR_NODEVICE with the
** driver's word. Thread-safe: calls make the context current first.
*/
typedef struct CudaDriver CudaDriver;
attnc_status cuda_driver_open(int device, CudaDriver **out, Diag *d);
void cuda_driver_close(CudaDriver *drv);
int cuda_driver_arch(const CudaDriver *drv);            /* e.g. 90 */
const char *cuda_driver_device_name(const CudaDriver *drv);
int cuda_driver_sm_count(const CudaDriver *drv);

/* device memory and copies, for the CLI and tests (synchronous) */
attnc_status cuda_mem_alloc(CudaDriver *drv, size_t bytes, void **dptr, Diag *d);
void cuda_mem_free(CudaDriver *drv, void *dptr);
attnc_status cuda_memcpy_htod(CudaDriver *drv, void *dst, const void *src, size_t n, Diag *d);
attnc_status cuda_memcpy_dtoh(CudaDriver *drv, void *dst, const void *src, size_t n, Diag *d);
attnc_status cuda_memset8(CudaDriver *drv, void *dst, unsigned char v, size_t n, Diag *d);
attnc_status cuda_sync(CudaDriver *drv, void *stream, Diag *d);

/* timing with device events around n launches of fn(arg) (for bench) */
attnc_status cuda_time_ms(CudaDriver *drv, void *stream,
                          attnc_status (*fn)(void *arg, Diag *d), void *arg, int iters,
                          double *ms_median, Diag *d);

/* ------------------------------------------------------------ modules */

typedef struct CudaModule CudaModule;   /* an image loaded in a driver's context */

attnc_status cuda_module_load(CudaDriver *drv, const CudaImage *img, const CudaConfig *cfg,
                              CudaModule **out, Diag *d);
void cuda_module_free(CudaModule *m);

/*
** Launch on args->stream (NULL = the default stream); asynchronous.
** args' tensors are kDLCUDA (Q, K, V, O in cfg->dtype, LSE float32), head
** dims contiguous, other strides multiples of 8 elements, 16-byte aligned;
** runtime inputs kDLCUDA i32/f32. The pattern must be the one the module
** was emitted from. A kernel that loads by TMA (cuda_kv_tma) needs a
** descriptor of each of K, V (and Q, cuda_q_tma); where one cannot be
** made (a layout TMA cannot read, a driver without the encoder,
** $ATTNC_CUDA_TMA=0) nothing is launched and *copy is set: launch the
** kernel's copy variant (CudaConfig.no_tma) instead. copy may be NULL:
** that case is then an error.
*/
attnc_status cuda_launch(CudaModule *m, const IrPattern *p, const attnc_args *args, bool *copy,
                         Diag *d);

/* the seq_bits a call needs: CUDA_SEQ_BITS_SMALL unless a length is >= 2^24 */
int cuda_seq_bits_for(int64_t sq, int64_t sk);

/* ------------------------------------------------------------ host helpers */

/*
** Copy a host tensor (float32/float64/int32, any strides) to a new compact
** device tensor of dtype `to` (f16, bf16, f32 or i32), converting values.
** *dev gets data, shape and strides in storage owned by *dev_buf (free with
** cuda_tensor_free).
*/
typedef struct CudaTensor {
  DLTensor t;
  int64_t shape[IR_MAXDIMS + 1];
  int64_t strides[IR_MAXDIMS + 1];
  CudaDriver *drv;
} CudaTensor;
attnc_status cuda_tensor_upload(CudaDriver *drv, const DLTensor *host, IrDtype to,
                                CudaTensor *dev, Diag *d);
attnc_status cuda_tensor_alloc(CudaDriver *drv, int ndim, const int64_t *shape, IrDtype dt,
                               CudaTensor *dev, Diag *d);
/* copy a device tensor back into a host float32 tensor of the same shape */
attnc_status cuda_tensor_download(CudaDriver *drv, const CudaTensor *dev, DLTensor *host,
                                  Diag *d);
void cuda_tensor_free(CudaTensor *dev);

/* float <-> half / bfloat16 bits (round to nearest even) */
uint16_t cuda_f32_to_f16(float f);
uint16_t cuda_f32_to_bf16(float f);
float cuda_f16_to_f32(uint16_t h);
float cuda_bf16_to_f32(uint16_t h);

/* ------------------------------------------------------------ target */

/*
** backend/cuda/target.c defines `const TargetOps cuda_target_ops`
** (runtime/runtime.h) for attnc_kernel. For a specialisation it built
** (impl), the artifact `attnc compile --emit` writes: kind "cuda" (the
** generated source), "ptx" or "cubin"; *data malloc'd, NUL after len.
*/
attnc_status cuda_target_artifact(void *impl, const char *kind, void **data, size_t *len,
                                  Diag *d);

/* ------------------------------------------------------------ internal */
/* shared by the emitter's files (emit.c, plan_emit.c) */

typedef struct Out { char *buf; size_t len, cap; bool oom; } Out;
void out_init(Out *o);
void out_puts(Out *o, const char *s);
void out_printf(Out *o, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 2, 3)))
#endif
  ;
void out_free(Out *o);
/* a C identifier from a name (other characters become '_') */
void c_ident(const char *s, char *buf, size_t n);

#define EMIT_MAX_VARIANTS 16

/* what the kernel iterates: from a plan, or raster + dense without one */
typedef struct EmitPlan {
  const IrPattern *pat;        /* the pattern emitted (the plan's copy if any) */
  const Plan *plan;            /* NULL: raster + dense */
  const CudaConfig *cfg;
  int nvariants;
  int masks[EMIT_MAX_VARIANTS];   /* mask node per variant (-1 = all pairs) */
  int data_qkey[EMIT_MAX_VARIANTS], data_kkey[EMIT_MAX_VARIANTS];   /* ITER_DATA keys, -1 */
  /* one variant walking one static box with edges (PlanBox): its lower and
     upper bounds as mask nodes, and kv_next tags KvTile::edge; else -1 */
  int edge_lo, edge_hi;
  uint16_t *dep;               /* what each node of pat depends on (pattern_deps) */
  char order_name[96], iter_name[160];
} EmitPlan;
attnc_status emit_plan_init(EmitPlan *ep, const IrPattern *p, const Plan *plan,
                            const CudaConfig *cfg, Diag *d);
void emit_plan_free(EmitPlan *ep);
/* the order and iterator sections: QTile, q_tile_begin, q_token, kv_token,
   KvTile, KvIter, kv_begin, kv_next */
attnc_status emit_plan_order_iter(Out *o, const EmitPlan *ep, Diag *d);
bool cuda_data_prep(const EmitPlan *ep);          /* the kernel has attnc_prep */
bool cuda_plan_prep(const Plan *plan);            /* its kernel will have attnc_prep */
void emit_data_prep(Out *o, const EmitPlan *ep);  /* attnc_prep and _q, after the kernel */
int cuda_data_qrec(const CudaConfig *cfg);        /* i64 words a q tile in attnc_prep_q's part */
int cuda_prep_q_threads(const CudaConfig *cfg);   /* attnc_prep_q's block: the threads that iterate */
/* whether attnc_prep_q and attnc_fwd start while the pass before them ends
   (programmatic dependent launch, sm_90 on): the kernels wait for its
   writes where they read them (griddepcontrol), the launch allows it */
bool cuda_prep_overlap(const CudaConfig *cfg);
/* attnc_prep's groups of CUDA_DATA_GROUP kv tiles at Sk keys (its grid's x) */
int64_t cuda_data_groups(const CudaConfig *cfg, int64_t Sk);
/* bytes of p.meta, which attnc_prep and attnc_prep_q write, for a launch of
   B x Hq heads of Sq queries and Sk keys (0 with no kv tiles: no pre-pass) */
int64_t cuda_meta_bytes(const CudaConfig *cfg, int64_t B, int64_t Hq, int64_t Sq, int64_t Sk);

#endif
