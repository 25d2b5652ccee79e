/*
** emit.c -- the CUDA C++ text of one attention kernel.
**
** A kernel is emitted as sections, top to bottom in the generated file:
**   header      what it is for (pattern, dtype, dims, arch, schedule)
**   schedule    named tile constants (kBlockM, kBlockN, ...)
**   Params      the parameter block (cuda_param_slots, filled by launch.c)
**   ptx         cp.async, ldmatrix, mma.sync, cvt, ex2 as inline PTX
**   pattern     the mask and score functions: one C++ statement per IR node
**               (emit_node, one case per op), commented with the spec line
**   order       tokens of q and kv tiles (raster, or the plan's boxes)
**   iterator    the kv tiles each q tile visits, each tagged full/partial
**   tile ops    load_tile, gemm_qk, score_tile, softmax_tile, gemm_pv
**   kernel      attnc_fwd: the FlashAttention-2 loop over those pieces
** The text needs no CUDA headers. Output depends only on the inputs, so
** the same pattern and config give byte-identical source.
*/
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda.h"

/* ------------------------------------------------------------- output */

void out_init(Out *o) { memset(o, 0, sizeof *o); }

static bool out_grow(Out *o, size_t need) {
  if (o->oom) return false;
  if (o->len + need + 1 <= o->cap) return true;
  size_t cap = o->cap ? o->cap : 4096;
  while (cap < o->len + need + 1) cap *= 2;
  char *b = realloc(o->buf, cap);
  if (!b) { o->oom = true; return false; }
  o->buf = b;
  o->cap = cap;
  return true;
}

void out_puts(Out *o, const char *s) {
  size_t n = strlen(s);
  if (!out_grow(o, n)) return;
  memcpy(o->buf + o->len, s, n + 1);
  o->len += n;
}

void out_printf(Out *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char small[512];
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) { o->oom = true; return; }
  if ((size_t)n < sizeof small) { out_puts(o, small); return; }
  if (!out_grow(o, (size_t)n)) return;
  va_start(ap, fmt);
  vsnprintf(o->buf + o->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  o->len += (size_t)n;
}

void out_free(Out *o) { free(o->buf); memset(o, 0, sizeof *o); }

/* ------------------------------------------------------------- config */

const char *cuda_arch_name(int arch, char buf[16]) {
  snprintf(buf, 16, "sm_%d%s", arch, arch >= 90 ? "a" : "");
  return buf;
}

bool cuda_arch_parse(const char *s, int *arch) {
  if (!s || !*s) return false;
  if (strncmp(s, "sm_", 3) == 0 || strncmp(s, "SM_", 3) == 0) s += 3;
  else if (strncmp(s, "compute_", 8) == 0) s += 8;
  char *end;
  long v = strtol(s, &end, 10);
  if (end == s) return false;
  if (*end == '.') {               /* "9.0" */
    char *e2;
    long minor = strtol(end + 1, &e2, 10);
    if (e2 == end + 1 || minor < 0 || minor > 9) return false;
    v = v * 10 + minor;
    end = e2;
  }
  if (*end == 'a' || *end == 'f') end++;
  if (*end || v < 10 || v > 1000) return false;
  *arch = (int)v;
  return true;
}

bool cuda_arch_supported(int arch) { return arch >= 80; }

attnc_status cuda_arch_from(const char *s, int *arch, Diag *d) {
  if (!cuda_arch_parse(s, arch))
    return diag_error(d, ATTNC_ERR_ARG, (Loc){ NULL, 0 }, "unknown CUDA arch '%s' (e.g. sm_80, sm_90a)", s);
  if (!cuda_arch_supported(*arch))
    return diag_error(d, ATTNC_ERR_ARG, (Loc){ NULL, 0 },
                      "the cuda target needs sm_80 or newer (--arch %s is sm_%d)", s, *arch);
  return ATTNC_OK;
}

/* the compute warps, and with warp specialisation the producer warpgroup */
int cuda_threads(const CudaConfig *cfg) { return cfg->warps * 32 + (cfg->ws ? 128 : 0); }

/* CTAs an SM must fit, which caps the registers a thread. Two CTAs an SM
   need at most 128 registers a thread at 256 threads, a limit wgmma at D =
   64 meets without spilling (measured on an H200, dense D=64: the
   overlapped kernel took 130 registers, so one CTA an SM, and 263 TFLOP/s;
   the one without overlap 117 registers, two CTAs, 350) */
int cuda_kernel_min_blocks(const CudaConfig *cfg) {
  int dmax = cfg->head_dim > cfg->head_dim_v ? cfg->head_dim : cfg->head_dim_v;
  return cfg->ws ? (cuda_threads(cfg) <= 256 ? 2 : 1) : cfg->wgmma && dmax <= 64 && cfg->block_m <= 128 ? 2 : 1;
}

/*
** K and V buffers: one each without overlap, two with. A third K buffer
** behind the producer warpgroup (where two CTAs an SM still fit) gained
** nothing on the H200 and cost dense D=64 5 % (session 10, TFLOP/s three
** against two: documents 313 against 313, dense 612 / 574 against 569,
** routed 498 / 501 against 501, dense D=64 421 against 442).
*/
static int kv_stages(const CudaConfig *cfg) { return cfg->overlap ? 2 : 1; }

/* element bytes are 2 (f16 / bf16): Q tile, K buffers, V buffers (each with
   its 64 columns of ones where the row sums are an MMA's), 1024-aligned */
int cuda_smem_bytes(const CudaConfig *cfg) {
  int v_cols = cfg->head_dim_v + (cfg->sum_mma ? 64 : 0);
  return 2 * ((cfg->persist ? 2 : 1) * cfg->block_m * cfg->head_dim +
              kv_stages(cfg) * (cfg->block_n * cfg->head_dim + cfg->block_n * v_cols)) +
         (cfg->wgmma ? 1024 : 0);          /* wgmma tiles start 1024-aligned */
}

/* whether the CTAs an SM must hold fit its 228 KiB, each with its bytes and
   the 1 KiB the system keeps (sm_90a, the only arch with a producer
   warpgroup; the per-CTA limit follows from it there) */
static bool sm_holds(const CudaConfig *cfg) {
  return cuda_kernel_min_blocks(cfg) * (cuda_smem_bytes(cfg) + 1024) <= 228 * 1024;
}

/*
** wgmma reads its operands from 128-byte-swizzled shared memory: rows of 64
** elements, so D and Dv of 64 or 128; a warpgroup owns 64 query rows, and
** S (block_n / 2 floats a thread) and O (Dv / 2) stay in registers. It is
** Hopper's alone (sm_90a): Blackwell (sm_100a, sm_120a) has no wgmma, and
** runs the mma.sync kernel.
*/
bool cuda_wgmma_allowed(int arch) {
  const char *env = getenv("ATTNC_CUDA_WGMMA");
  return arch == 90 && !(env && strcmp(env, "0") == 0);
}

static bool wgmma_fits(const CudaConfig *cfg) {
  int dmax = cfg->head_dim > cfg->head_dim_v ? cfg->head_dim : cfg->head_dim_v;
  return cuda_wgmma_allowed(cfg->arch) && (cfg->head_dim == 64 || cfg->head_dim == 128) &&
         (cfg->head_dim_v == 64 || cfg->head_dim_v == 128) &&
         (cfg->block_m == 64 || cfg->block_m == 128 || (cfg->block_m == 192 && dmax <= 64)) &&
         cfg->block_n % 16 == 0 && cfg->block_n >= 16 && cfg->block_n <= 128;
}

/* tiles one TMA box reads: whole tokens (no dilation) on at most three
   axes, of sizes known at compile time on a grid (the map's dims) */
static bool order_boxes(const CudaOrder *k) {
  if (k->rank < 1 || k->rank > 3) return false;
  for (int a = 0; a < k->rank; a++)
    if (k->dil[a] != 1 || (k->rank > 1 && k->n[a] <= 0)) return false;
  return true;
}

/* tiles TMA loads as one box: a box of tokens on each axis, or on a 1-D
   order a residue class's run of tokens (dilation d: the tensor map views
   the tokens as (tokens / d) x d, cuda_tma_map_layout) */
static bool order_tma(const CudaOrder *k) {
  return order_boxes(k) || (k->rank == 1 && k->dil[0] > 1);
}

/* kv tiles of block_n tokens of a 1-D order, consecutive or one residue
   class's (dilation), which TMA loads as one box */
static bool kv_runs(const CudaConfig *cfg) {
  return cfg->kord.rank == 1 && cfg->kord.box[0] == cfg->block_n && order_tma(&cfg->kord);
}

static bool head_dim_ok(int d) { return d == 32 || d == 64 || d == 96 || d == 128 || d == 256; }

attnc_status cuda_config_finish(const IrPattern *p, CudaConfig *cfg, Diag *d) {
  Loc none = { NULL, 0 };
  if (cfg->dtype != DT_F16 && cfg->dtype != DT_BF16)
    return diag_error(d, ATTNC_ERR_UNSUPPORTED, none,
                      "the cuda target runs float16 and bfloat16 tensors (got %s)",
                      ir_dtype_name(cfg->dtype));
  if (!cfg->head_dim_v) cfg->head_dim_v = cfg->head_dim;
  if (!head_dim_ok(cfg->head_dim) || !head_dim_ok(cfg->head_dim_v))
    return diag_error(d, ATTNC_ERR_UNSUPPORTED, none,
                      "the cuda target supports head dims 32, 64, 96, 128 and 256 (got D=%d, Dv=%d)",
                      cfg->head_dim, cfg->head_dim_v);
  if (!cfg->arch) cfg->arch = 90;
  if (cfg->arch < 80)
    return diag_error(d, ATTNC_ERR_UNSUPPORTED, none,
                      "the cuda target needs sm_80 or newer (got sm_%d)", cfg->arch);
  if (!cfg->seq_bits) cfg->seq_bits = CUDA_SEQ_BITS_SMALL;
  int dmax = cfg->head_dim > cfg->head_dim_v ? cfg->head_dim : cfg->head_dim_v;
  if (!cfg->warps) cfg->warps = 4;
  /* defaults: FA2's 4 warps along M; tiles sized so registers hold O and S */
  if (!cfg->block_m) cfg->block_m = dmax <= 64 ? 128 : 64;
  if (!cfg->block_n) cfg->block_n = dmax <= 128 ? 64 : 32;
  if (cfg->warps < 1 || cfg->warps > 16 || cfg->block_m % (16 * cfg->warps) != 0 ||
      cfg->block_m / (16 * cfg->warps) > 4)
    return diag_error(d, ATTNC_ERR_UNSUPPORTED, none,
                      "the cuda kernel needs block_m a multiple of 16 x warps, at most 64 x warps"
                      " (got block_m %d, %d warps)", cfg->block_m, cfg->warps);
  if (cfg->block_n % 16 != 0 || cfg->block_n < 16 || cfg->block_n > 256)
    return diag_error(d, ATTNC_ERR_UNSUPPORTED, none,
                      "the cuda kernel needs block_n a multiple of 16 up to 256 (got %d)",
                      cfg->block_n);
  /* Hopper: one warp per 16 rows, four warps (a warpgroup) per 64 */
  cfg->wgmma = wgmma_fits(cfg);
  if (cfg->wgmma) cfg->warps = cfg->block_m / 16;
  const char *ov = getenv("ATTNC_CUDA_OVERLAP");
  cfg->overlap = cfg->wgmma && !(ov && strcmp(ov, "0") == 0);
  if (!cfg->qord.rank) {      /* raster: tile t holds tokens t*block_m .. */
    cfg->qord = (CudaOrder){ .rank = 1, .box = { cfg->block_m }, .dil = { 1 } };
  }
  if (!cfg->kord.rank) {
    cfg->kord = (CudaOrder){ .rank = 1, .box = { cfg->block_n }, .dil = { 1 } };
  }
  /* Warp specialisation pays where the producer loads K and V with TMA (kv
     tiles of consecutive tokens; H200, 128 x 128 at D = 128: dense 569
     TFLOP/s against 406 with every warp loading, causal 518 against 369,
     sliding window 338 against 264; dilation 4, whose tiles TMA loads
     since session 11: 292 against 277, and 245 with cp.async alone) and
     where three warpgroups compute (192
     rows, D = 64: 379 against 339 even with cp.async). Not at 64 x 64 and
     D = 64, where CTAs without a producer fit more to an SM (sliding window
     246 against 214; at 192 x 128, 204). With cp.async alone
     (token boxes, dilation) it loses: 392 against 409, Swin 107 against 185
     (bench/results/gpu-h200-ws-sweep.md). Token boxes on a grid: the
     producer loads them with TMA too, which pays at D = 128 on 64-row tiles
     (2-D neighborhood 84 TFLOP/s against 79 without a producer) and not at
     D = 64 (2-D 50 against 50, 3-D 41 against 40; Swin at 128 x 64 141
     against 212, session 8). Nor at 128 x 64 and D = 64 (sliding window
     302 without against 212 with, session 9), nor for dilation 4 at 64 x 64
     and D = 64 (177 against 217, session 11). Kernels that load only by
     TMA (session 11) change none of this at D = 64: 2-D 76 without against
     60 with, 3-D 69 / 57, the window 309 / 214, Swin 226 / 152, dilated
     255 / 184. $ATTNC_CUDA_WS=1 turns it on for every
     overlapped kernel, =0 off. */
  const char *ws = getenv("ATTNC_CUDA_WS");
  cfg->ws = cfg->overlap && (ws && *ws ? strcmp(ws, "0") != 0
                                         : (kv_runs(cfg) && dmax > 64) ||
                                           (order_boxes(&cfg->kord) && dmax > 64 && cfg->block_m == 64) ||
                                           cfg->block_m == 192);
  int smem_max = cfg->arch >= 90 ? 227 : 160;   /* KiB a CTA may opt in to (sm_80: 163) */
  /* The softmax's row sums by the tensor core (warp-specialised kernels):
     P V's N grows by 8 over a 64-column chunk of ones behind each V buffer
     (16 KiB at 128-row kv tiles), so the softmax loses its FADD an element
     and the end its shuffles, for 6 % more P V work; only where the CTAs an
     SM still fit (228 KiB an SM). H200, session 14, TFLOP/s with FADDs /
     by the MMA, two rounds: dense 602, 607 / 622, 622; causal 552, 557 /
     565, 576; ALiBi 486, 482 / 505, 517; dense D=64 466, 455 / 471, 470;
     the window, sinks, documents, block-sparse within 1 % either way.
     $ATTNC_CUDA_SUMMMA=0 turns it off. */
  const char *sm = getenv("ATTNC_CUDA_SUMMMA");
  cfg->sum_mma = cfg->ws && !(sm && strcmp(sm, "0") == 0);
  /* The persistent grid (kernel_persist), where cuda_config_from_plan asked
     for it (cuda_persist_wanted) or $ATTNC_CUDA_PERSIST=1 does (=0: never):
     warp-specialised with TMA and a 1-D q order, where its second Q buffer
     fits beside the ones (which, where both do not, keep their place). */
  const char *pe = getenv("ATTNC_CUDA_PERSIST");
  if (pe && *pe) cfg->persist = strcmp(pe, "0") != 0;
  cfg->persist = cfg->persist && cfg->ws && cuda_kv_tma(cfg) && cuda_q_tma(cfg) &&
                 (cfg->qord.rank == 0 || (cfg->qord.rank == 1 && cfg->qord.dil[0] == 1));
  if (cfg->persist && !sm_holds(cfg)) cfg->persist = false;
  if (cfg->sum_mma && !sm_holds(cfg)) cfg->sum_mma = false;
  if (cuda_smem_bytes(cfg) > smem_max * 1024)
    return diag_error(d, ATTNC_ERR_UNSUPPORTED, none,
                      "tiles %dx%d at head dim %d need %d bytes of shared memory (at most %d KiB on %s)",
                      cfg->block_m, cfg->block_n, dmax, cuda_smem_bytes(cfg), smem_max,
                      cuda_arch_name(cfg->arch, (char[16]){ 0 }));
  (void)p;
  return ATTNC_OK;
}

int cuda_seq_bits_for(int64_t sq, int64_t sk) {
  int64_t lim = (int64_t)1 << CUDA_SEQ_BITS_SMALL;
  return sq < lim && sk < lim ? CUDA_SEQ_BITS_SMALL : CUDA_SEQ_BITS_LARGE;
}

/* ------------------------------------------------------------- params */

/* identifiers from input names: letters, digits and '_' */
void c_ident(const char *s, char *buf, size_t n) {
  size_t k = 0;
  for (; *s && k + 1 < n; s++)
    buf[k++] = ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                (*s >= '0' && *s <= '9') || *s == '_') ? *s : '_';
  buf[k] = 0;
}

bool cuda_kv_tma(const CudaConfig *cfg) { return cfg->overlap && !cfg->no_tma && order_tma(&cfg->kord); }
bool cuda_q_tma(const CudaConfig *cfg) { return cuda_kv_tma(cfg) && order_boxes(&cfg->qord); }

int cuda_param_slots(const IrPattern *p, CudaSlot *s, int max) {
  static const CudaSlot fixed[] = {
    /* the descriptors first (64-byte aligned; zero in a kernel that copies) */
    { "qmap", SLOT_TMAP, 16 }, { "kmap", SLOT_TMAP, 16 }, { "vmap", SLOT_TMAP, 16 },
    { "q", SLOT_PTR, 1 }, { "k", SLOT_PTR, 1 }, { "v", SLOT_PTR, 1 }, { "o", SLOT_PTR, 1 },
    { "lse", SLOT_PTR, 1 },
    { "q_stride", SLOT_I64, 4 }, { "k_stride", SLOT_I64, 4 }, { "v_stride", SLOT_I64, 4 },
    { "o_stride", SLOT_I64, 4 }, { "lse_stride", SLOT_I64, 4 },
    { "batch", SLOT_I64, 1 }, { "heads_q", SLOT_I64, 1 }, { "heads_kv", SLOT_I64, 1 },
    { "seq_q", SLOT_I64, 1 }, { "seq_k", SLOT_I64, 1 },
    { "scale", SLOT_F64, 1 }, { "softmax_scale_log2", SLOT_F64, 1 },
    { "meta", SLOT_PTR, 1 },
  };
  int n = 0;
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
    if (n < max) s[n++] = fixed[i];
  for (int i = 0; i < p->ninputs; i++) {
    if (n + 3 > max) break;
    int rank = p->inputs[i].rank > 0 ? p->inputs[i].rank : 1;
    s[n++] = (CudaSlot){ "in", SLOT_PTR, 1 };
    s[n++] = (CudaSlot){ "in_shape", SLOT_I64, rank };
    s[n++] = (CudaSlot){ "in_stride", SLOT_I64, rank };
  }
  return n;
}

/* ------------------------------------------------------------ ranges */

/*
** Integer ranges of pattern nodes, to emit int32 math where it cannot
** overflow: leaves are bounded by the config (tokens below 2^seq_bits,
** grid sizes, 16-bit batch and head counts), and ranges propagate through
** the arithmetic. Bounds are doubles (exact to 2^53; beyond, only "does
** not fit int32" matters).
*/
typedef struct Range { double lo, hi; } Range;

#define R_I32_MIN (-2147483648.0)
#define R_I32_MAX 2147483647.0
#define R_BIG 9.2e18

static Range rg(double lo, double hi) {
  if (lo < -R_BIG) lo = -R_BIG;
  if (hi > R_BIG) hi = R_BIG;
  return (Range){ lo, hi };
}
static double dmin(double a, double b) { return a < b ? a : b; }
static double dmax(double a, double b) { return a > b ? a : b; }
static double amax(Range r) { return dmax(fabs(r.lo), fabs(r.hi)); }
static bool fits32(Range r) { return r.lo >= R_I32_MIN && r.hi <= R_I32_MAX; }

static Range node_range(const IrPattern *p, const Range *R, int i, int seq_bits) {
  const IrNode *n = &p->nodes[i];
  double smax = ldexp(1.0, seq_bits);
  Range a = n->nargs > 0 ? R[n->args[0]] : rg(0, 0);
  Range b = n->nargs > 1 ? R[n->args[1]] : rg(0, 0);
  switch ((IrOp)n->op) {
  case IR_CONST: return rg((double)n->imm.i, (double)n->imm.i);
  case IR_BATCH: case IR_HEAD: return rg(0, 65535);
  case IR_Q: case IR_K: return rg(0, smax - 1);
  case IR_SEQQ: case IR_SEQK: return rg(0, smax);
  case IR_QC: case IR_KC: {
    int ax = (int)n->imm.i;
    double g = ax >= 0 && ax < p->grid_rank ? (double)p->grid[ax] : smax;
    return rg(0, g - 1);
  }
  case IR_ADD: return rg(a.lo + b.lo, a.hi + b.hi);
  case IR_SUB: return rg(a.lo - b.hi, a.hi - b.lo);
  case IR_MUL: {
    double c[4] = { a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi };
    return rg(dmin(dmin(c[0], c[1]), dmin(c[2], c[3])), dmax(dmax(c[0], c[1]), dmax(c[2], c[3])));
  }
  case IR_NEG: return rg(-a.hi, -a.lo);
  case IR_ABS:
    if (a.lo >= 0) return a;
    if (a.hi <= 0) return rg(-a.hi, -a.lo);
    return rg(0, amax(a));
  case IR_MIN: return rg(dmin(a.lo, b.lo), dmin(a.hi, b.hi));
  case IR_MAX: return rg(dmax(a.lo, b.lo), dmax(a.hi, b.hi));
  case IR_IDIV:
    if (b.lo > 0) return rg(floor(a.lo / (a.lo < 0 ? b.lo : b.hi)), floor(a.hi / (a.hi < 0 ? b.hi : b.lo)));
    return rg(-amax(a) - 1, amax(a) + 1);
  case IR_MOD:
    if (b.lo > 0) return rg(0, b.hi - 1);
    return rg(-amax(b), amax(b));
  case IR_SELECT: {
    Range c = R[n->args[2]];
    return rg(dmin(b.lo, c.lo), dmax(b.hi, c.hi));
  }
  case IR_LOAD: return rg(R_I32_MIN, R_I32_MAX);
  default: return rg(0, 1);
  }
}

/* ------------------------------------------------------ pattern emitter */

typedef enum CType { CT_BOOL, CT_I32, CT_I64, CT_F32 } CType;
static const char *ctype_name[] = { "bool", "int", "i64", "float" };

typedef struct Ex {
  const IrPattern *p;
  Out *o;
  Range *R;
  CType *ct;
  char *live;
  const uint16_t *dep;  /* what each node depends on (EmitPlan's) */
  int last_line;
  Diag *d;
  bool kc_coords;       /* k's grid coordinates are kc[axis] (mask_col on a grid order) */
} Ex;

/* a float literal that reads back as the same float */
static void float_lit(double v, char *buf, size_t n) {
  if (isnan(v)) { snprintf(buf, n, "__int_as_float(0x7fc00000)"); return; }
  if (isinf(v)) { snprintf(buf, n, v > 0 ? "kInf" : "(-kInf)"); return; }
  snprintf(buf, n, "%.9g", v);
  if (!strpbrk(buf, ".eE")) strncat(buf, ".0", n - strlen(buf) - 1);
  strncat(buf, "f", n - strlen(buf) - 1);
  if (v < 0) {
    char t[64];
    snprintf(t, sizeof t, "(%s)", buf);
    snprintf(buf, n, "%s", t);
  }
}

/* how a node is referred to: leaves and constants inline, others by name */
static void ref(const Ex *x, int i, char *buf, size_t n) {
  const IrNode *nd = &x->p->nodes[i];
  switch ((IrOp)nd->op) {
  case IR_CONST:
    if (nd->type == IR_BOOL) snprintf(buf, n, nd->imm.i ? "true" : "false");
    else if (nd->type == IR_FLOAT) float_lit(nd->imm.f, buf, n);
    else if (x->ct[i] == CT_I32) snprintf(buf, n, nd->imm.i < 0 ? "(%lld)" : "%lld", (long long)nd->imm.i);
    else snprintf(buf, n, "(i64)%lldLL", (long long)nd->imm.i);
    return;
  case IR_BATCH: snprintf(buf, n, "b"); return;
  case IR_HEAD: snprintf(buf, n, "h"); return;
  case IR_Q: snprintf(buf, n, "q"); return;
  case IR_K: snprintf(buf, n, "k"); return;
  case IR_SEQQ: snprintf(buf, n, "seq_q"); return;
  case IR_SEQK: snprintf(buf, n, "seq_k"); return;
  case IR_SCORE: snprintf(buf, n, "s"); return;
  default: snprintf(buf, n, "v%d", i); return;
  }
}

/* argument j of node i as C type want */
static void arg_as(const Ex *x, int i, int j, CType want, char *buf, size_t n) {
  int a = x->p->nodes[i].args[j];
  char r[64];
  ref(x, a, r, sizeof r);
  if (x->ct[a] == want || (want == CT_I64 && x->ct[a] == CT_I32 && x->p->nodes[a].op != IR_CONST))
    snprintf(buf, n, "%s", r);
  else
    snprintf(buf, n, "(%s)%s", ctype_name[want], r);
}

static CType wider(CType a, CType b) { return a > b ? a : b; }

static const char *cmp_op(IrOp op) {
  switch (op) {
  case IR_LT: return "<"; case IR_LE: return "<="; case IR_GT: return ">";
  case IR_GE: return ">="; case IR_EQ: return "=="; case IR_NE: return "!=";
  default: return "?";
  }
}

/*
** |y| <= c (or < c, and their negations) for an int y and a constant c >= 0,
** as one unsigned compare: (u32)(y + c) <= 2c. Windows (neighborhoods, the
** distance bounds of sliding windows) compare distances this way, once per
** pair of a partial tile; an abs and two compares become an add and one
** compare. Only where y + c stays in int range.
*/
static bool abs_window(const Ex *x, int i, char *e, size_t n) {
  const IrNode *nd = &x->p->nodes[i];
  IrOp op = (IrOp)nd->op;
  if (op != IR_LE && op != IR_LT && op != IR_GT && op != IR_GE) return false;
  const IrNode *ab = &x->p->nodes[nd->args[0]], *cn = &x->p->nodes[nd->args[1]];
  if (ab->op != IR_ABS || cn->op != IR_CONST || cn->type != IR_INT) return false;
  int y = ab->args[0];
  if (x->ct[y] != CT_I32) return false;
  int64_t c = cn->imm.i - (op == IR_LT || op == IR_GE);   /* |y| <= c */
  if (c < 0 || c > (1 << 20) || x->R[y].lo - (double)c < R_I32_MIN || x->R[y].hi + (double)c > R_I32_MAX)
    return false;
  char a[96];
  ref(x, y, a, sizeof a);
  bool in = op == IR_LE || op == IR_LT;
  snprintf(e, n, "(unsigned)(%s + %lld) %s %lldu", a, (long long)c, in ? "<=" : ">", (long long)(2 * c));
  return true;
}

/*
** One statement per node: "const T vN = <expr>;". Integer math runs in the
** node's type (int where its range fits, else i64) or wider when an
** argument is wider; // and % follow Lua (floor) unless the ranges show
** plain C division agrees.
*/
static void emit_node(Ex *x, int i) {
  const IrPattern *p = x->p;
  const IrNode *n = &p->nodes[i];
  IrOp op = (IrOp)n->op;
  CType t = x->ct[i];
  char a[96] = "", b[96] = "", c[96] = "", e[512] = "";
  switch (ir_op_kind(op)) {
  case IRK_LEAF:
    if (op == IR_QC || op == IR_KC) {
      /* row-major grid: coordinate ax = (token / stride) % size */
      int ax = (int)n->imm.i;
      int64_t stride = 1;
      for (int j = ax + 1; j < p->grid_rank; j++) stride *= p->grid[j];
      const char *tok = op == IR_QC ? "q" : "k";
      if (op == IR_KC && x->kc_coords) snprintf(e, sizeof e, "kc[%d]", ax);
      else if (stride == 1) snprintf(e, sizeof e, "%s %% %lld", tok, (long long)p->grid[ax]);
      else if (ax == 0) snprintf(e, sizeof e, "%s / %lld", tok, (long long)stride);
      else snprintf(e, sizeof e, "(%s / %lld) %% %lld", tok, (long long)stride, (long long)p->grid[ax]);
      break;
    }
    return;                                   /* referred to inline */
  case IRK_ARITH: {
    CType w = t;
    for (int j = 0; j < n->nargs; j++) w = wider(w, x->ct[n->args[j]]);
    arg_as(x, i, 0, w, a, sizeof a);
    if (n->nargs > 1) arg_as(x, i, 1, w, b, sizeof b);
    bool fl = w == CT_F32;
    switch (op) {
    case IR_ADD: snprintf(e, sizeof e, "%s + %s", a, b); break;
    case IR_SUB: snprintf(e, sizeof e, "%s - %s", a, b); break;
    case IR_MUL: snprintf(e, sizeof e, "%s * %s", a, b); break;
    case IR_NEG: snprintf(e, sizeof e, "-%s", a); break;
    case IR_ABS: snprintf(e, sizeof e, fl ? "fabsf(%s)" : "attnc_abs(%s)", a); break;
    case IR_MIN: snprintf(e, sizeof e, fl ? "fminf(%s, %s)" : "attnc_min(%s, %s)", a, b); break;
    case IR_MAX: snprintf(e, sizeof e, fl ? "fmaxf(%s, %s)" : "attnc_max(%s, %s)", a, b); break;
    case IR_IDIV:
      if (fl) snprintf(e, sizeof e, "floorf(%s / %s)", a, b);
      else if (x->R[n->args[0]].lo >= 0 && x->R[n->args[1]].lo > 0)
        snprintf(e, sizeof e, "%s / %s", a, b);
      else snprintf(e, sizeof e, "attnc_floordiv(%s, %s)", a, b);
      break;
    case IR_MOD:
      if (!fl && x->R[n->args[0]].lo >= 0 && x->R[n->args[1]].lo > 0)
        snprintf(e, sizeof e, "%s %% %s", a, b);
      else snprintf(e, sizeof e, "attnc_floormod(%s, %s)", a, b);
      break;
    default: break;
    }
    if (w != t) {
      char tmp[512];
      memcpy(tmp, e, sizeof tmp);
      snprintf(e, sizeof e, "(%s)(%.480s)", ctype_name[t], tmp);
    }
    break;
  }
  case IRK_FMATH:
    arg_as(x, i, 0, CT_F32, a, sizeof a);
    if (n->nargs > 1) arg_as(x, i, 1, CT_F32, b, sizeof b);
    switch (op) {
    case IR_DIV:
      /* a divisor the same for every element of a tile (a constant, a
         function of the head) becomes a reciprocal the compiler computes
         once (or folds): a / b is an IEEE division, a branch around a
         slow path an element (softcap's s / cap: 64 FCHK and BSSY a
         tile). Within 1.5 ulp of a / b. */
      if (!(x->dep[n->args[1]] & (DEP_Q | DEP_K | DEP_SCORE | DEP_LOAD)))
        snprintf(e, sizeof e, "%s * (1.0f / %s)", a, b);
      else snprintf(e, sizeof e, "%s / %s", a, b);
      break;
    case IR_POW: snprintf(e, sizeof e, "powf(%s, %s)", a, b); break;
    case IR_EXP: snprintf(e, sizeof e, "expf(%s)", a); break;
    case IR_LOG: snprintf(e, sizeof e, "logf(%s)", a); break;
    case IR_TANH: snprintf(e, sizeof e, "fast_tanh(%s)", a); break;
    case IR_SQRT: snprintf(e, sizeof e, "sqrtf(%s)", a); break;
    default: break;
    }
    break;
  case IRK_CMP: {
    if (abs_window(x, i, e, sizeof e)) break;
    CType w = wider(x->ct[n->args[0]], x->ct[n->args[1]]);
    arg_as(x, i, 0, w, a, sizeof a);
    arg_as(x, i, 1, w, b, sizeof b);
    snprintf(e, sizeof e, "%s %s %s", a, cmp_op(op), b);
    break;
  }
  case IRK_LOGIC:
    arg_as(x, i, 0, CT_BOOL, a, sizeof a);
    if (op == IR_NOT) { snprintf(e, sizeof e, "!%s", a); break; }
    arg_as(x, i, 1, CT_BOOL, b, sizeof b);
    snprintf(e, sizeof e, "%s %s %s", a, op == IR_AND ? "&&" : "||", b);
    break;
  case IRK_OTHER:
    if (op == IR_TOFLOAT) { arg_as(x, i, 0, CT_F32, a, sizeof a); snprintf(e, sizeof e, "%s", a); break; }
    if (op == IR_SELECT) {
      arg_as(x, i, 0, CT_BOOL, a, sizeof a);
      arg_as(x, i, 1, t, b, sizeof b);
      arg_as(x, i, 2, t, c, sizeof c);
      snprintf(e, sizeof e, "%s ? %s : %s", a, b, c);
      break;
    }
    if (op == IR_LOAD || op == IR_CONTAINS) {
      const IrInput *in = &p->inputs[n->imm.i];
      char id[64];
      c_ident(in->name, id, sizeof id);
      size_t k = (size_t)snprintf(e, sizeof e, "input%d_%s%s(p", (int)n->imm.i, id,
                                  op == IR_CONTAINS ? "_contains" : "");
      for (int j = 0; j < n->nargs && k < sizeof e; j++) {
        ref(x, n->args[j], a, sizeof a);
        k += (size_t)snprintf(e + k, sizeof e - k, ", %s", a);
      }
      if (k < sizeof e) snprintf(e + k, sizeof e - k, ")");
      break;
    }
    /* fallthrough */
  default:
    diag_error(x->d, ATTNC_ERR_INTERNAL, ir_node_loc(p, i),
               "cuda backend: no emitter for op '%s' (a compiler bug)", ir_op_name(op));
    return;
  }
  if (n->line && n->line != x->last_line) {
    out_printf(x->o, "  // %s:%d\n", p->file, n->line);
    x->last_line = n->line;
  }
  out_printf(x->o, "  const %s v%d = %s;\n", ctype_name[t], i, e);
}

/* emit the statements of every node the roots depend on, in order (a root
   < 0 is skipped) */
static void emit_dag_roots(Ex *x, const int *roots, int n) {
  const IrPattern *p = x->p;
  memset(x->live, 0, (size_t)p->nnodes);
  int top = -1;
  for (int r = 0; r < n; r++)
    if (roots[r] >= 0) {
      x->live[roots[r]] = 1;
      if (roots[r] > top) top = roots[r];
    }
  for (int i = top; i >= 0; i--)
    if (x->live[i])
      for (int j = 0; j < p->nodes[i].nargs; j++) x->live[p->nodes[i].args[j]] = 1;
  x->last_line = 0;
  for (int i = 0; i <= top && diag_ok(x->d); i++)
    if (x->live[i]) emit_node(x, i);
}

static void emit_dag(Ex *x, int root) { emit_dag_roots(x, &root, 1); }


/*
** The mask split by what each value depends on, so that a partial tile
** computes every value as rarely as it can: q alone once per row, k alone
** once per column, both once per pair. mask_row<v>() and mask_col<v>()
** return the values mask_pair<v>() reads. A value of neither (b, h, the
** sequence lengths) is computed in each part that reads it.
*/
enum { SPLIT_INLINE = 0, SPLIT_ROW, SPLIT_COL, SPLIT_PAIR, SPLIT_SHARED };

typedef struct MaskSplit {
  int root;              /* the mask node (-1: no split) */
  uint8_t *cls;          /* per node 0..root: SPLIT_*, for live nodes */
  uint8_t *use;          /* SPLIT_SHARED nodes: bit 1 << part for each part that reads it */
  bool *field;           /* a row or column value the pair code reads */
  int nrow, ncol, npair; /* statements of each part (a load 8, a contains 64) */
} MaskSplit;

/* is node i a statement (else a leaf referred to inline)? */
static bool is_stmt(const IrNode *n) {
  return ir_op_kind((IrOp)n->op) != IRK_LEAF || n->op == IR_QC || n->op == IR_KC;
}

static attnc_status mask_split(const IrPattern *p, const uint16_t *dep, int root, MaskSplit *ms, Diag *d) {
  memset(ms, 0, sizeof *ms);
  ms->root = -1;
  if (root < 0) return ATTNC_OK;
  size_t n = (size_t)root + 1;
  char *live = calloc(n, 1);
  ms->cls = calloc(n, 1);
  ms->use = calloc(n, 1);
  ms->field = calloc(n, sizeof *ms->field);
  if (!live || !ms->cls || !ms->use || !ms->field) {
    free(live); free(ms->cls); free(ms->use); free(ms->field);
    memset(ms, 0, sizeof *ms);
    ms->root = -1;
    return diag_error(d, ATTNC_ERR_NOMEM, (Loc){ NULL, 0 }, "out of memory");
  }
  live[root] = 1;
  for (int i = root; i >= 0; i--)
    if (live[i])
      for (int j = 0; j < p->nodes[i].nargs; j++) live[p->nodes[i].args[j]] = 1;
  for (int i = 0; i <= root; i++)
    if (live[i] && is_stmt(&p->nodes[i])) {
      int qk = dep[i] & (DEP_Q | DEP_K);
      ms->cls[i] = qk == (DEP_Q | DEP_K) ? SPLIT_PAIR : qk == DEP_K ? SPLIT_COL : qk == DEP_Q ? SPLIT_ROW : SPLIT_SHARED;
    }
  /* users come after their args: one backward pass hands each shared value
     the parts that read it, and marks the row / column values pairs read. A
     shared value pairs read is computed once per row and handed over (a
     per-head table entry is loaded once a row, not once a pair). */
  if (ms->cls[root] == SPLIT_SHARED) ms->use[root] = 1 << SPLIT_ROW;
  for (int i = root; i >= 0; i--) {
    if (!ms->cls[i]) continue;
    if (ms->cls[i] == SPLIT_SHARED && (ms->use[i] & 1 << SPLIT_PAIR)) {
      ms->use[i] = (uint8_t)((ms->use[i] & ~(1 << SPLIT_PAIR)) | 1 << SPLIT_ROW);
      ms->field[i] = true;
    }
    int parts = ms->cls[i] == SPLIT_SHARED ? ms->use[i] : 1 << ms->cls[i];
    for (int j = 0; j < p->nodes[i].nargs; j++) {
      int a = p->nodes[i].args[j];
      if (ms->cls[a] == SPLIT_SHARED) ms->use[a] |= (uint8_t)parts;
      else if (ms->cls[i] == SPLIT_PAIR && (ms->cls[a] == SPLIT_ROW || ms->cls[a] == SPLIT_COL))
        ms->field[a] = true;
    }
  }
  if (ms->cls[root] == SPLIT_ROW || ms->cls[root] == SPLIT_COL || ms->cls[root] == SPLIT_SHARED)
    ms->field[root] = true;
  for (int i = 0; i <= root; i++) {
    if (!ms->cls[i]) continue;
    /* a statement's weight in code size: contains() is a loop over a row */
    int w = p->nodes[i].op == IR_CONTAINS ? 64 : p->nodes[i].op == IR_LOAD ? 8 : 1;
    int parts = ms->cls[i] == SPLIT_SHARED ? ms->use[i] : 1 << ms->cls[i];
    if (parts & 1 << SPLIT_PAIR) ms->npair += w;
    if (parts & 1 << SPLIT_COL) ms->ncol += w;
    if (parts & 1 << SPLIT_ROW) ms->nrow += w;
  }
  free(live);
  ms->root = root;
  return ATTNC_OK;
}

/*
** The score split: a modification that adds to s terms of q alone, of k
** alone, and linear distance terms c * (k - q) with c of neither (ALiBi),
**   score = s + R(q) + C(k) + sum_i c_i * (float)(k - q),
** is computed per element as one FMA, s * scale + col(k), where col(k) =
** C(k) + c * (float)(k - q0) per column of a tile (q0: the q tile's first
** token, c = sum_i c_i). What is left, R(q) - c * (float)(q - q0), is the
** same for a whole row, so the softmax does not see it: the LSE adds it
** (score_lse). The pattern_score of an ALiBi element took four
** instructions (a multiply by the scale, k - q, its conversion, an FMA).
** Rounding: c * (k - q0) is rounded where c * (k - q) was; they differ by
** c * (q - q0), at most c * (the q tile's span), so the error stays a few
** ulps of the bias of any pair whose weight is not negligible.
*/
enum { SPLIT_TERMS = 8 };
typedef struct ScoreSplit {
  bool on;
  int gain, gsign;      /* s's factor g (-1: 1.0) and its sign: score = gsign * g * s + ... */
  bool gdiv;            /* g divides s (s / g) */
  int nrow, ncol, ncoef;
  int row[SPLIT_TERMS], col[SPLIT_TERMS], coef[SPLIT_TERMS];   /* nodes (coef -1: 1.0) */
  int rsign[SPLIT_TERMS], csign[SPLIT_TERMS], fsign[SPLIT_TERMS];
} ScoreSplit;

/* the additive terms of node n (float adds, subtracts, negations) */
static bool score_terms(const IrPattern *p, int n, int sign, int *node, int *sg, int *nt) {
  const IrNode *nd = &p->nodes[n];
  if (nd->type == IR_FLOAT && (nd->op == IR_ADD || nd->op == IR_SUB))
    return score_terms(p, nd->args[0], sign, node, sg, nt) &&
           score_terms(p, nd->args[1], nd->op == IR_SUB ? -sign : sign, node, sg, nt);
  if (nd->type == IR_FLOAT && nd->op == IR_NEG) return score_terms(p, nd->args[0], -sign, node, sg, nt);
  if (*nt == 3 * SPLIT_TERMS) return false;
  node[*nt] = n;
  sg[*nt] = sign;
  ++*nt;
  return true;
}

/* (float)(k - q) (sign 1) or (float)(q - k) (sign -1) of the 1-D tokens */
static int distance(const IrPattern *p, int n) {
  const IrNode *nd = &p->nodes[n];
  if (nd->op != IR_TOFLOAT) return 0;
  const IrNode *d = &p->nodes[nd->args[0]];
  if (d->op != IR_SUB) return 0;
  int a = p->nodes[d->args[0]].op, b = p->nodes[d->args[1]].op;
  return a == IR_K && b == IR_Q ? 1 : a == IR_Q && b == IR_K ? -1 : 0;
}

/* dep: pattern_deps of p */
static void score_split(const IrPattern *p, const uint16_t *dep, ScoreSplit *ss) {
  memset(ss, 0, sizeof *ss);
  int root = p->score;
  if (root < 0 || p->nodes[root].type != IR_FLOAT) return;
  int node[3 * SPLIT_TERMS], sg[3 * SPLIT_TERMS], nt = 0, nscore = 0;
  bool ok = score_terms(p, root, 1, node, sg, &nt);
  ss->gain = -1;
  ss->gsign = 1;
  for (int t = 0; ok && t < nt; t++) {
    int n = node[t], sign = sg[t];
    const IrNode *nd = &p->nodes[n];
    if (nd->op == IR_SCORE) { ok = ++nscore == 1; ss->gsign = sign; continue; }
    /* s * g, g * s, s / g with g of q alone (log-n scaling) or of neither (a
       per-head temperature): a factor per row */
    if (nd->type == IR_FLOAT && (nd->op == IR_MUL || nd->op == IR_DIV)) {
      int j = p->nodes[nd->args[0]].op == IR_SCORE ? 0 : nd->op == IR_MUL && p->nodes[nd->args[1]].op == IR_SCORE ? 1 : -1;
      if (j >= 0 && !(dep[nd->args[1 - j]] & (DEP_K | DEP_SCORE))) {
        ok = ++nscore == 1;
        ss->gain = nd->args[1 - j];
        ss->gdiv = nd->op == IR_DIV;
        ss->gsign = sign;
        continue;
      }
    }
    int qk = dep[n] & (DEP_Q | DEP_K);
    if (dep[n] & DEP_SCORE) { ok = false; continue; }
    if (qk == DEP_K) {                               /* k alone: per column */
      ok = ss->ncol < SPLIT_TERMS;
      if (ok) { ss->col[ss->ncol] = n; ss->csign[ss->ncol++] = sign; }
      continue;
    }
    if (qk != (DEP_Q | DEP_K)) {                     /* q alone or neither: per row */
      ok = ss->nrow < SPLIT_TERMS;
      if (ok) { ss->row[ss->nrow] = n; ss->rsign[ss->nrow++] = sign; }
      continue;
    }
    int c = -1, dsign = distance(p, n);              /* c * (k - q), (k - q) * c, (k - q) */
    if (!dsign && nd->op == IR_MUL && nd->type == IR_FLOAT)
      for (int j = 0; j < 2 && !dsign; j++)
        if (!(dep[nd->args[1 - j]] & (DEP_Q | DEP_K | DEP_SCORE)) && (dsign = distance(p, nd->args[j])))
          c = nd->args[1 - j];
    ok = dsign && ss->ncoef < SPLIT_TERMS;
    if (ok) { ss->coef[ss->ncoef] = c; ss->fsign[ss->ncoef++] = sign * dsign; }
  }
  ss->on = ok && nscore == 1;
}

/* "return <sum of the terms, each with its sign>;" (nodes -1: 1.0f) */
static void emit_sum(Ex *x, const int *nodes, const int *signs, int n) {
  out_puts(x->o, "  return 0.0f");
  for (int t = 0; t < n; t++) {
    char r[64] = "1.0f";
    if (nodes[t] >= 0) ref(x, nodes[t], r, sizeof r);
    out_printf(x->o, " %s %s%s", signs[t] < 0 ? "-" : "+",
               nodes[t] >= 0 && x->ct[nodes[t]] != CT_F32 ? "(float)" : "", r);
  }
  out_puts(x->o, ";\n}\n");
}

/*
** Tiles the score leaves alone. Where the score is s times a gain of q
** alone (or none) plus terms of q alone and of k alone (no distance terms:
** score_raw_ok), a kv tile whose column terms are all zero needs no
** per-element FMA: its scores stay <q, k> and the softmax scales each row
** by its gain, scale * g(q), where the warp's gains are all positive
** (row_gain). The column terms' support, as C over the tile's first and
** last keys k0, k1 (col_may), is what a select with a zero branch, sums,
** negations and products by finite constants leave of comparisons of k
** with values free of q and k (a product of two terms is nonzero where
** either is: 0 * inf is NaN): a
** sink-calibrated window's s - (k < sinks ? delta[h] : 0) changes the
** first kv tile alone. Anything else may be nonzero anywhere ("true").
*/
static bool score_raw_ok(const ScoreSplit *ss, const CudaConfig *cfg) {
  /* a gain's sign is row_gain's to check; the column terms need tile u's
     keys to be u * kBlockN on */
  return ss->on && ss->ncoef == 0 && (ss->gain >= 0 || ss->gsign > 0) &&
         (ss->ncol == 0 || (cfg->kord.rank == 1 && cfg->kord.dil[0] == 1 && cfg->kord.box[0] == cfg->block_n));
}

/* buf holds what snprintf wrote (w), or "true" where it did not fit: a
   support that is too long to write may hold anywhere */
static void fits_or_true(char *buf, size_t cap, int w) {
  if (w < 0 || (size_t)w >= cap) snprintf(buf, cap, "true");
}

/* "(x && y)" or "(x || y)" into buf, folding the constants true and false */
static void txt_logic(char *buf, size_t cap, const char *x, bool and, const char *y) {
  const char *unit = and ? "true" : "false", *zero = and ? "false" : "true";
  if (!strcmp(x, zero) || !strcmp(y, zero)) snprintf(buf, cap, "%s", zero);
  else if (!strcmp(x, unit)) snprintf(buf, cap, "%s", y);
  else if (!strcmp(y, unit)) snprintf(buf, cap, "%s", x);
  else fits_or_true(buf, cap, snprintf(buf, cap, "(%s %s %s)", x, and ? "&&" : "||", y));
}

/* C text into buf: may k in [k0, k1] satisfy boolean node n (its negation
   with neg)? The values it compares k with are added to roots. */
static void col_may(Ex *x, int n, bool neg, int *roots, int *nr, char *buf, size_t cap) {
  const IrPattern *p = x->p;
  const IrNode *nd = &p->nodes[n];
  char a[512], b[512], e[64];
  if (nd->op == IR_CONST) { snprintf(buf, cap, "%s", (nd->imm.i != 0) != neg ? "true" : "false"); return; }
  if (nd->op == IR_NOT) { col_may(x, nd->args[0], !neg, roots, nr, buf, cap); return; }
  if (nd->op == IR_AND || nd->op == IR_OR) {
    col_may(x, nd->args[0], neg, roots, nr, a, sizeof a);
    col_may(x, nd->args[1], neg, roots, nr, b, sizeof b);
    /* not (a and b) = not a or not b: either may hold somewhere; a and b
       may each hold somewhere (not necessarily at one k: conservative) */
    txt_logic(buf, cap, a, (nd->op == IR_OR) == neg, b);
    return;
  }
  if (ir_op_kind((IrOp)nd->op) == IRK_CMP && *nr < SPLIT_TERMS * 4) {
    int j = p->nodes[nd->args[0]].op == IR_K ? 0 : p->nodes[nd->args[1]].op == IR_K ? 1 : -1;
    if (j >= 0 && !(x->dep[nd->args[1 - j]] & (DEP_Q | DEP_K | DEP_SCORE))) {
      IrOp op = (IrOp)nd->op;
      if (j == 1) op = ir_cmp_swap(op);
      if (neg) op = ir_cmp_negate(op);
      roots[(*nr)++] = nd->args[1 - j];
      ref(x, nd->args[1 - j], e, sizeof e);
      switch (op) {                      /* k op e for some k0 <= k <= k1 */
      case IR_LT: fits_or_true(buf, cap, snprintf(buf, cap, "k0 < %s", e)); return;
      case IR_LE: fits_or_true(buf, cap, snprintf(buf, cap, "k0 <= %s", e)); return;
      case IR_GT: fits_or_true(buf, cap, snprintf(buf, cap, "k1 > %s", e)); return;
      case IR_GE: fits_or_true(buf, cap, snprintf(buf, cap, "k1 >= %s", e)); return;
      case IR_EQ: fits_or_true(buf, cap, snprintf(buf, cap, "(k0 <= %s && %s <= k1)", e, e)); return;
      default: fits_or_true(buf, cap, snprintf(buf, cap, "!(k0 == k1 && k0 == %s)", e)); return;
      }
    }
  }
  snprintf(buf, cap, "true");
}

/* C text into buf: may float node n be nonzero for some k in [k0, k1]? */
static void col_support(Ex *x, int n, int *roots, int *nr, char *buf, size_t cap) {
  const IrPattern *p = x->p;
  const IrNode *nd = &p->nodes[n];
  char a[512], b[512], c[512], c2[512];
  switch ((IrOp)nd->op) {
  case IR_CONST:
    snprintf(buf, cap, "%s", (nd->type == IR_FLOAT ? nd->imm.f != 0.0 : nd->imm.i != 0) ? "true" : "false");
    return;
  case IR_NEG: case IR_TOFLOAT: col_support(x, nd->args[0], roots, nr, buf, cap); return;
  case IR_ADD: case IR_SUB: case IR_MUL:
    if (nd->type != IR_FLOAT) break;
    col_support(x, nd->args[0], roots, nr, a, sizeof a);
    col_support(x, nd->args[1], roots, nr, b, sizeof b);
    /* a product is zero where a factor is only if the other is finite (0 *
       inf is NaN): a finite constant factor */
    if (nd->op == IR_MUL) {
      for (int j = 0; j < 2; j++) {
        const IrNode *f = &p->nodes[nd->args[j]];
        if (f->op == IR_CONST && f->type == IR_FLOAT && isfinite(f->imm.f)) {
          snprintf(buf, cap, "%s", f->imm.f == 0.0 ? "false" : j ? a : b);
          return;
        }
      }
    }
    txt_logic(buf, cap, a, false, b);
    return;
  case IR_SELECT:
    col_may(x, nd->args[0], false, roots, nr, c, sizeof c);
    col_may(x, nd->args[0], true, roots, nr, c2, sizeof c2);
    col_support(x, nd->args[1], roots, nr, a, sizeof a);
    col_support(x, nd->args[2], roots, nr, b, sizeof b);
    char l[1024], r[1024];
    txt_logic(l, sizeof l, c, true, a);
    txt_logic(r, sizeof r, c2, true, b);
    txt_logic(buf, cap, l, false, r);
    return;
  default: break;
  }
  snprintf(buf, cap, "true");
}

/* score_col_may: whether a tile's column terms may be nonzero; tile_raw:
   whether kv tile u's scores stay <q, k>; kScoreRaw: whether some tile may
   (false where the support is "true") */
static void emit_score_raw(Ex *x, const ScoreSplit *ss, const CudaConfig *cfg) {
  char all[2048] = "false", t[1024];
  int roots[SPLIT_TERMS * 4], nr = 0;
  bool ok = score_raw_ok(ss, cfg);
  for (int i = 0; ok && i < ss->ncol; i++) {
    col_support(x, ss->col[i], roots, &nr, t, sizeof t);
    char prev[2048];
    snprintf(prev, sizeof prev, "%s", all);
    txt_logic(all, sizeof all, prev, false, t);
    ok = strcmp(all, "true") != 0;
  }
  out_printf(x->o, "\n// tiles the score leaves alone (emit_score_raw): where no column term may be\n"
                   "// nonzero on keys k0..k1, the tile's scores stay <q, k> and the softmax scales them\n"
                   "static constexpr bool kScoreRaw = %s;\n", ok ? "true" : "false");
  if (!ok) {
    out_puts(x->o, "ATTNC_DEVICE bool tile_raw(const Params &, int, int, int) { return false; }\n");
    return;
  }
  out_puts(x->o, "ATTNC_DEVICE bool score_col_may(const Params &p, int b, int h, int k0, int k1, int seq_q, int seq_k) {\n"
                 "  (void)p; (void)b; (void)h; (void)seq_q; (void)seq_k; (void)k0; (void)k1;\n");
  emit_dag_roots(x, roots, nr);
  out_printf(x->o, "  return %s;\n}\n", all);
  out_puts(x->o, "ATTNC_DEVICE bool tile_raw(const Params &p, int b, int h, int u) {\n"
                 "  const int k0 = u * kBlockN;\n"
                 "  return !score_col_may(p, b, h, k0, k0 + kBlockN - 1, (int)p.seq_q, (int)p.seq_k);\n"
                 "}\n");
}

/*
** The rows' gains, scale * g(q) of the score split, once a work item
** (score_tile's FMA takes them, and the softmax those of the tiles it
** leaves alone), and whether a warp's tiles that tile_raw names keep <q, k>:
** where every gain of its rows is positive and finite, a row's maximum
** commutes with its gain and the softmax scales <q, k> by it (log-n logit
** scaling: s * max(1, log(q + 1) / log(n)) needs no per-element FMA).
** Without a score split, every gain is scale and no tile is raw.
*/
static void emit_row_gain(Out *o, bool split) {
  out_puts(o, "struct RowGain { float g[kAtomsM][2]; bool raw; };\n"
              "ATTNC_DEVICE RowGain row_gain(const Params &p, int b, int h, const int (&q_tok)[kAtomsM][2],\n"
              "                              float scale) {\n"
              "  RowGain rg;\n");
  if (!split) {
    out_puts(o, "  (void)p; (void)b; (void)h; (void)q_tok;\n"
                "#pragma unroll\n"
                "  for (int mi = 0; mi < kAtomsM; ++mi) rg.g[mi][0] = rg.g[mi][1] = scale;\n"
                "  rg.raw = false;\n"
                "  return rg;\n}\n");
    return;
  }
  out_puts(o, "  bool pos = true;   // padding rows (q < 0) write nothing\n"
              "#pragma unroll\n"
              "  for (int mi = 0; mi < kAtomsM; ++mi)\n"
              "#pragma unroll\n"
              "    for (int r = 0; r < 2; ++r) {\n"
              "      const float g = scale * score_gain(p, b, h, q_tok[mi][r], (int)p.seq_q, (int)p.seq_k);\n"
              "      rg.g[mi][r] = g;\n"
              "      pos = pos && (q_tok[mi][r] < 0 || (g > 0.0f && g <= 3.402823466e38f));\n"
              "    }\n"
              "  rg.raw = false;\n"
              "  if constexpr (kScoreRaw) rg.raw = __all_sync(0xffffffffu, pos);\n"
              "  return rg;\n}\n");
}

/* the score split's parts (ScoreSplit): the distance coefficient c, the
   column part C(k) and the row part R(q) */
static void emit_score_split(Ex *x, const ScoreSplit *ss) {
  Out *o = x->o;
  const char *unused = "  (void)p; (void)b; (void)h; (void)seq_q; (void)seq_k;\n";
  out_puts(o, "\n// the score split: c of the distance terms c * (k - q), the terms of k alone,\n"
              "// the terms of q alone (score_tile, score_lse)\n"
              "ATTNC_DEVICE float score_coef(const Params &p, int b, int h, int seq_q, int seq_k) {\n");
  out_puts(o, unused);
  emit_dag_roots(x, ss->coef, ss->ncoef);
  emit_sum(x, ss->coef, ss->fsign, ss->ncoef);
  out_puts(o, "ATTNC_DEVICE float score_col(const Params &p, int b, int h, int k, int seq_q, int seq_k) {\n");
  out_puts(o, unused);
  out_puts(o, "  (void)k;\n");
  emit_dag_roots(x, ss->col, ss->ncol);
  emit_sum(x, ss->col, ss->csign, ss->ncol);
  out_puts(o, "ATTNC_DEVICE float score_row(const Params &p, int b, int h, int q, int seq_q, int seq_k) {\n");
  out_puts(o, unused);
  out_puts(o, "  (void)q;\n");
  emit_dag_roots(x, ss->row, ss->nrow);
  emit_sum(x, ss->row, ss->rsign, ss->nrow);
  out_puts(o, "ATTNC_DEVICE float score_gain(const Params &p, int b, int h, int q, int seq_q, int seq_k) {\n");
  out_puts(o, unused);
  out_puts(o, "  (void)q;\n");
  char g[64] = "1.0f";
  emit_dag_roots(x, &ss->gain, 1);
  if (ss->gain >= 0) ref(x, ss->gain, g, sizeof g);
  const char *cast = ss->gain >= 0 && x->ct[ss->gain] != CT_F32 ? "(float)" : "";
  if (ss->gdiv) out_printf(o, "  return %s1.0f / %s%s;\n}\n", ss->gsign < 0 ? "-" : "", cast, g);
  else out_printf(o, "  return %s%s%s;\n}\n", ss->gsign < 0 ? "-" : "", cast, g);
}

static void mask_split_free(MaskSplit *ms) {
  free(ms->cls);
  free(ms->use);
  free(ms->field);
  memset(ms, 0, sizeof *ms);
  ms->root = -1;
}

/* the tokens a plan's tiles are counted at: the grid's, else the sequence
   hint, else 8192 */
static int64_t plan_tokens(const Plan *pl, int64_t seq_hint) {
  const IrPattern *p = pl->pat;
  int64_t n = 1;
  for (int i = 0; i < p->grid_rank; i++) n *= p->grid[i];
  return p->grid_rank > 0 ? n : seq_hint > 0 ? seq_hint : 8192;
}

/* whether the plan's tiles are known at compile time: no variant's kv tiles
   come from runtime inputs (an input the score alone reads does not count) */
static bool plan_tiles_static(const Plan *pl) {
  for (int v = 0; v < pl->nvariants; v++)
    if (pl->variants[v].it.kind == ITER_LIST || pl->variants[v].it.kind == ITER_DATA) return false;
  return true;
}

/* the tiles the plan visits on one (b, h) at plan_tokens, and how many of
   them are full; false where they cannot be counted (tiles from runtime
   inputs) */
static bool count_tiles(const Plan *pl, int64_t seq_hint, int64_t *visited, int64_t *full) {
  if (!plan_tiles_static(pl)) return false;
  int64_t n = plan_tokens(pl, seq_hint);
  PlanRun r = { .B = 1, .H = 1, .Sq = n, .Sk = n };
  Diag quiet = { 0 };
  *visited = *full = 0;
  return plan_count_tiles(pl, &r, 0, 0, visited, full, &quiet) == ATTNC_OK;
}

/* the (q, k) pairs of those tiles; -1 where they cannot be counted */
static double visited_pairs(const Plan *pl, int64_t seq_hint) {
  int64_t visited, full;
  if (!count_tiles(pl, seq_hint, &visited, &full)) return -1;
  return (double)visited * (double)pl->sched.bm * (double)pl->sched.bn;
}

/* the fraction of those tiles that are partial; -1 where they cannot be
   counted or none is visited */
static double partial_fraction(const Plan *pl, int64_t seq_hint) {
  int64_t visited, full;
  if (!count_tiles(pl, seq_hint, &visited, &full) || visited == 0) return -1;
  return (double)(visited - full) / (double)visited;
}

/*
** Whether partial tiles are common enough to pay for unrolled mask code
** (NVRTC time: routed at 128 x 128 tiles compiled in 2.4 s unrolled against
** 0.9 s with the loop, causal 1.0 against 0.8, on the 2-core CI machine):
** a data iterator's tiles (document edges), or at least 2 % of the visited
** tiles partial on one (b, h) at the plan's length (grid tokens, the
** sequence hint, else 8192). Lists (routed, block-sparse) visit full tiles.
** Causal at 8192 tokens has 3 % (H200, session 14, TFLOP/s with the loop /
** unrolled, two rounds: causal 541, 532 / 547, 550; softcap 432, 429 /
** 442, 441; log-n scaling 457, 452 / 475, 478; ALiBi 478, 482 / 471, 474;
** the sink-calibrated window, 30 % partial, 265, 265 / 328, 327).
*/
static bool partial_heavy(const EmitPlan *ep) {
  const Plan *pl = ep->plan;
  if (!pl || pl->nvariants != 1) return false;
  if (pl->variants[0].it.kind == ITER_DATA) return true;
  return partial_fraction(pl, ep->cfg->seq_hint) >= 0.02;
}

/*
** Whether score_tile unrolls its columns with the split mask: where partial
** tiles are common and the statements that unrolling copies (the column
** part per column, the pair part per element of the lane) stay within a
** budget; otherwise one copy of the whole mask in a loop over the columns
** into a bit set.
*/
static bool split_fits(const EmitPlan *ep, const MaskSplit *ms) {
  const CudaConfig *cfg = ep->cfg;
  int rows = 2 * (cfg->block_m / cfg->warps / 16 > 0 ? cfg->block_m / cfg->warps / 16 : 1);
  int cols = cfg->block_n / 4;
  return (long)cols * (ms->ncol + rows * ms->npair) <= 4096;
}

/*
** The masks partial tiles run: the variant's whole mask, and where the
** iterator tags edges (EmitPlan) and the columns are unrolled, its lower and
** upper bounds alone, for a tile past one edge of its box's full range
** (sliding window: k >= q - 1023 or k <= q, one compare an element against
** the whole mask's three). Kept only when each is cheaper than the whole
** and most partial tiles are past one edge (edges_common).
*/
typedef struct Masks {
  MaskSplit all, lo, hi;
  bool heavy;                 /* partial tiles are common (partial_heavy) */
  bool unrolled;              /* score_tile unrolls the columns (heavy, and split_fits) */
  bool edges;                 /* ... and runs lo / hi on tiles past one edge */
} Masks;

typedef struct EdgeCount { const Plan *pl; const PlanRun *r; int64_t qt, partial, edge; } EdgeCount;
static void edge_count(void *ud, int64_t tile, bool full) {
  EdgeCount *c = ud;
  if (full) return;
  int e = plan_tile_edge(c->pl, c->r, 0, 0, c->qt, tile);
  c->partial++;
  c->edge += e == 1 || e == 2;
}

/*
** Whether at least three in four partial tiles lie past one edge only,
** counted like partial_fraction. Elsewhere (grid neighborhoods, where a
** tile is past both ends of a window on some axis) the edge masks are
** mostly code that does not run: on the H200 the 2-D and 3-D
** neighborhoods lost 3-5 % with them (70 against 72, 62 against 65
** TFLOP/s; 24 % and 58 % of their partial tiles past one edge), while the
** 1-D windows (every partial tile past one edge) gained: the D=64 sliding
** window 289 against 284, dilated 252 against 230.
*/
static bool edges_common(const EmitPlan *ep) {
  const Plan *pl = ep->plan;
  int64_t n = plan_tokens(pl, ep->cfg->seq_hint);
  PlanRun r = { .B = 1, .H = 1, .Sq = n, .Sk = n };
  EdgeCount c = { pl, &r, 0, 0, 0 };
  Diag quiet = { 0 };
  int64_t nqt = plan_order_ntiles(&pl->qord, n);
  for (c.qt = 0; c.qt < nqt; c.qt++)
    if (plan_visit(pl, &r, 0, 0, c.qt, edge_count, &c, &quiet) != ATTNC_OK) return false;
  return c.partial > 0 && 4 * c.edge >= 3 * c.partial;
}

static attnc_status masks_init(const EmitPlan *ep, Masks *m, Diag *d) {
  memset(m, 0, sizeof *m);
  m->lo.root = m->hi.root = -1;
  attnc_status st = mask_split(ep->pat, ep->dep, ep->nvariants == 1 ? ep->masks[0] : -1, &m->all, d);
  if (st || m->all.root < 0) return st;
  m->heavy = partial_heavy(ep);
  m->unrolled = m->heavy && split_fits(ep, &m->all);
  if (!m->unrolled || ep->edge_lo < 0 || !edges_common(ep)) return ATTNC_OK;
  if ((st = mask_split(ep->pat, ep->dep, ep->edge_lo, &m->lo, d)) ||
      (st = mask_split(ep->pat, ep->dep, ep->edge_hi, &m->hi, d)))
    return st;
  m->edges = m->lo.npair < m->all.npair && m->hi.npair < m->all.npair &&
             split_fits(ep, &m->lo) && split_fits(ep, &m->hi);
  return ATTNC_OK;
}

static void masks_free(Masks *m) {
  mask_split_free(&m->all);
  mask_split_free(&m->lo);
  mask_split_free(&m->hi);
}

/* statements of the live nodes of one part, and the shared values it reads, in order */
static void emit_part(Ex *x, const MaskSplit *ms, int part) {
  x->last_line = 0;
  for (int i = 0; i <= ms->root && diag_ok(x->d); i++)
    if (ms->cls[i] == part || (ms->cls[i] == SPLIT_SHARED && (ms->use[i] & 1 << part))) emit_node(x, i);
}

/* the part whose struct carries field i (a shared root: the row's) */
static int field_part(const MaskSplit *ms, int i) {
  return ms->cls[i] == SPLIT_SHARED ? SPLIT_ROW : ms->cls[i];
}

/* struct MaskRow<v> / MaskCol<v>, the function that fills it, and mask_pair<v> */
static void emit_mask_split(Ex *x, const MaskSplit *ms, const CudaConfig *cfg, const char *v) {
  Out *o = x->o;
  /* a kv order over the pattern's grid (boxes, residue classes) knows each
     column's coordinates (kv_place): mask_col takes them instead of dividing
     the token again, which the compiler could not undo (the x coordinate
     then takes two values a lane, y one a column; 2-D neighborhood: about 10
     instructions a column before) */
  const IrPattern *p = x->p;
  bool coords = cfg->kord.rank == p->grid_rank && p->grid_rank > 0;
  for (int a = 0; coords && a < p->grid_rank; a++) coords = cfg->kord.n[a] == p->grid[a];
  for (int part = SPLIT_ROW; part <= SPLIT_COL; part++) {
    const char *Name = part == SPLIT_ROW ? "Row" : "Col", *name = part == SPLIT_ROW ? "row" : "col";
    out_printf(o, "struct Mask%s%s {", Name, v);
    for (int i = 0; i <= ms->root; i++)
      if (ms->field[i] && field_part(ms, i) == part) out_printf(o, " %s v%d;", ctype_name[x->ct[i]], i);
    out_puts(o, " };\n");
    if (part == SPLIT_ROW)
      out_printf(o, "ATTNC_DEVICE Mask%s%s mask_%s%s(const Params &p, int b, int h, int q,"
                    " int seq_q, int seq_k) {\n  (void)p; (void)b; (void)h; (void)q; (void)seq_q; (void)seq_k;\n",
                 Name, v, name, v);
    else   /* kc: the column's coordinates on the kv order's axes */
      out_printf(o, "ATTNC_DEVICE Mask%s%s mask_%s%s(const Params &p, int b, int h, int k, const int (&kc)[%d],"
                    " int seq_q, int seq_k) {\n  (void)p; (void)b; (void)h; (void)k; (void)kc; (void)seq_q; (void)seq_k;\n",
                 Name, v, name, v, cfg->kord.rank > 0 ? cfg->kord.rank : 1);
    x->kc_coords = part == SPLIT_COL && coords;
    emit_part(x, ms, part);
    x->kc_coords = false;
    out_printf(o, "  return Mask%s%s{", Name, v);
    const char *sep = "";
    for (int i = 0; i <= ms->root; i++)
      if (ms->field[i] && field_part(ms, i) == part) { out_printf(o, "%sv%d", sep, i); sep = ", "; }
    out_puts(o, "};\n}\n");
  }
  out_printf(o, "ATTNC_DEVICE bool mask_pair%s(const Params &p, int b, int h, int q, int k, int seq_q,"
                " int seq_k, const MaskRow%s &row, const MaskCol%s &col) {\n", v, v, v);
  out_puts(o, "  (void)p; (void)b; (void)h; (void)q; (void)k; (void)seq_q; (void)seq_k;"
              " (void)row; (void)col;\n");
  for (int i = 0; i <= ms->root; i++)
    if (ms->field[i])
      out_printf(o, "  const %s v%d = %s.v%d;\n", ctype_name[x->ct[i]], i,
                 field_part(ms, i) == SPLIT_ROW ? "row" : "col", i);
  emit_part(x, ms, SPLIT_PAIR);
  char r[64];
  ref(x, ms->root, r, sizeof r);
  out_printf(o, "  return %s;\n}\n", r);
}

static attnc_status ex_init(Ex *x, const IrPattern *p, const uint16_t *dep, const CudaConfig *cfg, Out *o,
                           Diag *d) {
  memset(x, 0, sizeof *x);
  x->p = p;
  x->o = o;
  x->d = d;
  size_t n = p->nnodes > 0 ? (size_t)p->nnodes : 1;
  x->R = calloc(n, sizeof *x->R);
  x->ct = calloc(n, sizeof *x->ct);
  x->live = calloc(n, 1);
  x->dep = dep;
  if (!x->R || !x->ct || !x->live)
    return diag_error(d, ATTNC_ERR_NOMEM, (Loc){ NULL, 0 }, "out of memory");
  for (int i = 0; i < p->nnodes; i++) {
    const IrNode *nd = &p->nodes[i];
    x->R[i] = node_range(p, x->R, i, cfg->seq_bits);
    x->ct[i] = nd->type == IR_BOOL ? CT_BOOL : nd->type == IR_FLOAT ? CT_F32
             : fits32(x->R[i]) ? CT_I32 : CT_I64;
  }
  return ATTNC_OK;
}

static void ex_free(Ex *x) {
  free(x->R);
  free(x->ct);
  free(x->live);
}

/* accessors of runtime inputs: bounds-checked loads (0 out of range) */
static void emit_inputs(Out *o, const IrPattern *p) {
  if (p->ninputs == 0) return;
  out_puts(o, "\n// ---- runtime inputs: bounds-checked reads (an index out of range reads 0)\n");
  for (int i = 0; i < p->ninputs; i++) {
    const IrInput *in = &p->inputs[i];
    char id[64];
    c_ident(in->name, id, sizeof id);
    const char *ty = in->dtype == DT_I32 ? "int" : "float";
    out_printf(o, "// input \"%s\": %s, rank %d (%s:%d)\n", in->name, ir_dtype_name(in->dtype),
               in->rank, p->file, in->line);
    out_printf(o, "ATTNC_DEVICE %s input%d_%s(const Params &p", ty, i, id);
    for (int j = 0; j < in->rank; j++) out_printf(o, ", i64 i%d", j);
    out_puts(o, ") {\n");
    out_puts(o, "  if (");
    for (int j = 0; j < in->rank; j++)
      out_printf(o, "%s(u64)i%d >= (u64)p.in%d_shape[%d]", j ? " || " : "", j, i, j);
    out_printf(o, ") return 0;\n  return ((const %s *)p.in%d)[", ty, i);
    for (int j = 0; j < in->rank; j++) out_printf(o, "%si%d * p.in%d_stride[%d]", j ? " + " : "", j, i, j);
    out_puts(o, "];\n}\n");
    if (in->dtype == DT_I32 && in->rank >= 1) {
      /* contains(row..., value): any element along the last dim equals value */
      out_printf(o, "ATTNC_DEVICE bool input%d_%s_contains(const Params &p", i, id);
      for (int j = 0; j < in->rank - 1; j++) out_printf(o, ", i64 i%d", j);
      out_puts(o, ", i64 value) {\n");
      out_printf(o, "  for (i64 j = 0; j < p.in%d_shape[%d]; ++j)\n", i, in->rank - 1);
      out_printf(o, "    if (input%d_%s(p", i, id);
      for (int j = 0; j < in->rank - 1; j++) out_printf(o, ", i%d", j);
      out_puts(o, ", j) == value) return true;\n  return false;\n}\n");
    }
  }
}

/* the pattern's functions: mask_<v>() per variant mask and score() */
static attnc_status emit_pattern(Out *o, const IrPattern *p, const CudaConfig *cfg,
                                 const EmitPlan *ep, const Masks *m, const ScoreSplit *ss, Diag *d) {
  const MaskSplit *ms = &m->all;
  const int *masks = ep->masks;
  int nmasks = ep->nvariants;
  Ex x;
  attnc_status st = ex_init(&x, p, ep->dep, cfg, o, d);
  if (st) { ex_free(&x); return st; }
  for (int v = 0; v < nmasks; v++) {
    out_printf(o, "\n// mask(b, h, q, k) of %s%s\n", p->file,
               nmasks > 1 ? " (one head variant)" : "");
    out_printf(o, "ATTNC_DEVICE bool pattern_mask%d(const Params &p, int b, int h, int q, int k,"
                  " int seq_q, int seq_k) {\n", v);
    if (masks[v] < 0) out_puts(o, "  return true;\n");
    else {
      emit_dag(&x, masks[v]);
      char r[64];
      ref(&x, masks[v], r, sizeof r);
      out_printf(o, "  return %s;\n", r);
    }
    out_puts(o, "}\n");
  }
  if (ms->root >= 0 && diag_ok(d)) {
    out_printf(o, "\n// the same mask split for partial tiles: q-only values once per row,"
                  " k-only values once per column, the rest per pair\n");
    emit_mask_split(&x, ms, cfg, "0");
  }
  if (m->edges && diag_ok(d)) {
    out_puts(o, "\n// the lower bounds alone, for partial tiles below the full range (edge 1)\n");
    emit_mask_split(&x, &m->lo, cfg, "0lo");
    out_puts(o, "\n// the upper bounds alone, for partial tiles above it (edge 2)\n");
    emit_mask_split(&x, &m->hi, cfg, "0hi");
  }
  if (p->score >= 0 && diag_ok(d)) {
    out_printf(o, "\n// score(s, b, h, q, k) of %s: s = scale * <q, k>\n", p->file);
    out_puts(o, "ATTNC_DEVICE float pattern_score(const Params &p, float s, int b, int h, int q,"
                " int k, int seq_q, int seq_k) {\n");
    emit_dag(&x, p->score);
    char r[64];
    ref(&x, p->score, r, sizeof r);
    out_printf(o, "  return %s;\n}\n", r);
    if (ss->on && diag_ok(d)) emit_score_split(&x, ss);
  }
  if (diag_ok(d)) {
    bool split = p->score >= 0 && ss->on;
    if (split) emit_score_raw(&x, ss, cfg);
    else out_puts(o, "\nstatic constexpr bool kScoreRaw = false;   // (emit_score_raw)\n"
                     "ATTNC_DEVICE bool tile_raw(const Params &, int, int, int) { return false; }\n");
    emit_row_gain(o, split);
  }
  /* the integer keys of data iterators: key_q(b, h, q) and key_k(b, h, k) */
  for (int v = 0; v < nmasks && diag_ok(d); v++)
    for (int side = 0; side < 2; side++) {
      int root = side ? ep->data_kkey[v] : ep->data_qkey[v];
      if (root < 0) continue;
      out_printf(o, "\n// the %s key of the data iterator of variant %d\n", side ? "kv" : "q", v);
      out_printf(o, "ATTNC_DEVICE i64 data_%skey%d(const Params &p, int b, int h, int q, int k,"
                    " int seq_q, int seq_k) {\n", side ? "k" : "q", v);
      emit_dag(&x, root);
      char r[64];
      ref(&x, root, r, sizeof r);
      out_printf(o, "  return (i64)%s;\n}\n", r);
    }
  ex_free(&x);
  return d->status;
}

/* ------------------------------------------------------ fixed sections */

static const char *const prelude_types =
  "typedef unsigned short u16;\n"
  "typedef unsigned int u32;\n"
  "typedef long long i64;\n"
  "typedef unsigned long long u64;\n"
  "#define ATTNC_DEVICE static __device__ __forceinline__\n";

static const char *const prelude_ptx =
  "\n// ---- PTX helpers (sm_80 and newer)\n"
  "ATTNC_DEVICE u32 smem_u32(const void *ptr) {   // generic -> shared-window address\n"
  "  u32 r;\n"
  "  asm(\"{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }\" : \"=r\"(r) : \"l\"(ptr));\n"
  "  return r;\n"
  "}\n"
  "// 16-byte asynchronous copy global -> shared; zero-fills instead when !valid\n"
  "ATTNC_DEVICE void cp_async_16(u32 dst, const void *src, bool valid) {\n"
  "  asm volatile(\"cp.async.cg.shared.global [%0], [%1], 16, %2;\\n\"\n"
  "               :: \"r\"(dst), \"l\"(src), \"r\"(valid ? 16 : 0) : \"memory\");\n"
  "}\n"
  "ATTNC_DEVICE void cp_async_commit() { asm volatile(\"cp.async.commit_group;\\n\" ::: \"memory\"); }\n"
  "ATTNC_DEVICE void cp_async_wait_all() { asm volatile(\"cp.async.wait_group 0;\\n\" ::: \"memory\"); }\n"
  "// wait until at most N of this thread's groups are in flight\n"
  "template <int N> ATTNC_DEVICE void cp_async_wait() { asm volatile(\"cp.async.wait_group %0;\\n\" :: \"n\"(N) : \"memory\"); }\n"
  "// four 8x8 b16 matrices; lane l gives the address of row l%8 of matrix l/8\n"
  "ATTNC_DEVICE void ldmatrix_x4(u32 (&r)[4], u32 addr) {\n"
  "  asm volatile(\"ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\\n\"\n"
  "               : \"=r\"(r[0]), \"=r\"(r[1]), \"=r\"(r[2]), \"=r\"(r[3]) : \"r\"(addr));\n"
  "}\n"
  "ATTNC_DEVICE void ldmatrix_x4_trans(u32 (&r)[4], u32 addr) {\n"
  "  asm volatile(\"ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\\n\"\n"
  "               : \"=r\"(r[0]), \"=r\"(r[1]), \"=r\"(r[2]), \"=r\"(r[3]) : \"r\"(addr));\n"
  "}\n\n"
  "// the threads that run the kv iterator: every warp, or the producer warpgroup,\n"
  "// which then synchronises on named barrier 1 alone; they are a block's last\n"
  "// (attnc_prep_q's block is those alone)\n"
  "ATTNC_DEVICE int iter_tid() { return (int)(threadIdx.x - (blockDim.x - 32 * kIterWarps)); }\n"
  "ATTNC_DEVICE void iter_sync() {\n"
  "  if constexpr (kProducerWarps > 0) asm volatile(\"bar.sync 1, %0;\\n\" :: \"n\"(kProducerWarps * 32) : \"memory\");\n"
  "  else __syncthreads();\n"
  "}\n";

/* mma and pack depend on the element type */
static void emit_ptx_typed(Out *o, const char *ty) {
  out_printf(o,
    "// D += A B for one m16n8k16 tile: A 16x16 (row), B 16x8 (col), %s in, fp32 accumulators\n"
    "ATTNC_DEVICE void mma_16816(float (&d)[4], const u32 (&a)[4], u32 b0, u32 b1) {\n"
    "  asm(\"mma.sync.aligned.m16n8k16.row.col.f32.%s.%s.f32 \"\n"
    "      \"{%%0, %%1, %%2, %%3}, {%%4, %%5, %%6, %%7}, {%%8, %%9}, {%%0, %%1, %%2, %%3};\\n\"\n"
    "      : \"+f\"(d[0]), \"+f\"(d[1]), \"+f\"(d[2]), \"+f\"(d[3])\n"
    "      : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"r\"(b0), \"r\"(b1));\n"
    "}\n"
    "// two floats -> packed %s x2, lo in the low half (round to nearest even)\n"
    "ATTNC_DEVICE u32 pack2(float lo, float hi) {\n"
    "  u32 r;\n"
    "  asm(\"cvt.rn.%sx2.f32 %%0, %%1, %%2;\\n\" : \"=r\"(r) : \"f\"(hi), \"f\"(lo));\n"
    "  return r;\n"
    "}\n", ty, ty, ty, ty, ty);
  out_puts(o,
    "// tanh in one MUFU op (max relative error 2^-11, as FlashAttention-3's softcap);\n"
    "// tanhf is a branchy sequence of two MUFU ops and a polynomial\n"
    "ATTNC_DEVICE float fast_tanh(float x) {\n"
    "  float y;\n"
    "  asm(\"tanh.approx.f32 %0, %1;\\n\" : \"=f\"(y) : \"f\"(x));\n"
    "  return y;\n"
    "}\n"
    "ATTNC_DEVICE float fast_exp2(float x) {   // 2^x; 2^-inf = 0\n"
    "  float y;\n"
    "  asm(\"ex2.approx.ftz.f32 %0, %1;\\n\" : \"=f\"(y) : \"f\"(x));\n"
    "  return y;\n"
    "}\n");
}

static const char *const prelude_int =
  "\n// ---- integer helpers with Lua semantics (// and % round toward -inf)\n"
  "template <typename T> ATTNC_DEVICE T attnc_floordiv(T a, T b) {\n"
  "  T q = a / b;\n"
  "  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;\n"
  "}\n"
  "template <typename T> ATTNC_DEVICE T attnc_floormod(T a, T b) {\n"
  "  T m = a % b;\n"
  "  return (m != 0 && ((m < 0) != (b < 0))) ? m + b : m;\n"
  "}\n"
  "ATTNC_DEVICE float attnc_floormod(float a, float b) {\n"
  "  float m = fmodf(a, b);\n"
  "  return (m != 0.0f && ((m < 0.0f) != (b < 0.0f))) ? m + b : m;\n"
  "}\n"
  "template <typename T> ATTNC_DEVICE T attnc_abs(T a) { return a < 0 ? -a : a; }\n"
  "template <typename T> ATTNC_DEVICE T attnc_min(T a, T b) { return a < b ? a : b; }\n"
  "template <typename T> ATTNC_DEVICE T attnc_max(T a, T b) { return a > b ? a : b; }\n"
  "// plan expressions (exact int64, floor division by positive divisors)\n"
  "ATTNC_DEVICE i64 attnc_fdiv(i64 a, i64 b) { return attnc_floordiv(a, b); }\n"
  "ATTNC_DEVICE i64 attnc_cdiv(i64 a, i64 b) { return -attnc_floordiv(-a, b); }\n"
  "ATTNC_DEVICE i64 attnc_fmod(i64 a, i64 b) { return attnc_floormod(a, b); }\n";

/* the tile operations: fixed text over the schedule's constants */
static const char *const tile_layout_sync =
  "\n// ---- shared-memory tiles\n"
  "// A tile is rows of 16-byte chunks (8 elements). Chunk c of row r is stored at\n"
  "// chunk swizzle(r, c): the XOR spreads the 8 rows one ldmatrix phase reads over\n"
  "// all 32 banks (rows of 4 or 12 chunks pair rows up first).\n"
  "template <int kChunks> ATTNC_DEVICE int swizzle(int r, int c) {\n"
  "  if constexpr (kChunks % 8 == 0) return c ^ (r & 7);\n"
  "  else return c ^ ((r >> 1) & 3);\n"
  "}\n"
  "template <int kRows, int kChunks> ATTNC_DEVICE u32 tile_addr(u32 base, int r, int c) {\n"
  "  return base + (u32)(r * kChunks + swizzle<kChunks>(r, c)) * 16u;\n"
  "}\n"
  "ATTNC_DEVICE u32 tile_base(const void *smem) { return smem_u32(smem); }\n"
  "ATTNC_DEVICE void smem_to_async_proxy() {}   // mma.sync reads shared memory with ldmatrix\n";

static const char *const tile_load =
  "\n// Copy a tile of kRows rows into shared memory with cp.async, one 16-byte\n"
  "// chunk per thread per step: chunk_of(r, c) is chunk c of row r, its address\n"
  "// and whether it exists (else zero-filled). kBy threads copy (tid: which of\n"
  "// them); kUnroll: copies whose addresses are computed ahead (the producer\n"
  "// warpgroup unrolls less: fewer registers, no spills)\n"
  "struct Chunk { const u16 *src; bool ok; };\n"
  "template <int kRows, int kChunks, int kBy, int kUnroll, typename ChunkOf>\n"
  "ATTNC_DEVICE void copy_tile(u32 dst, ChunkOf chunk_of, int tid) {\n"
  "  constexpr int kTotal = kRows * kChunks;\n"
  "#pragma unroll kUnroll\n"
  "  for (int i = 0; i < (kTotal + kBy - 1) / kBy; ++i) {\n"
  "    const int idx = i * kBy + tid;\n"
  "    if (kTotal % kBy == 0 || idx < kTotal) {\n"
  "      const int r = idx / kChunks, c = idx % kChunks;\n"
  "      const Chunk ch = chunk_of(r, c);\n"
  "      cp_async_16(tile_addr<kRows, kChunks>(dst, r, c), ch.src, ch.ok);\n"
  "    }\n"
  "  }\n"
  "}\n"
  "// Row r is token token_of(r) (-1: padding); its elements are contiguous at\n"
  "// base + token * row_stride.\n"
  "template <int kRows, int kChunks, int kBy = kThreads, int kUnroll = 64, typename TokenOf>\n"
  "ATTNC_DEVICE void load_tile(u32 dst, const u16 *base, i64 row_stride, TokenOf token_of, int tid) {\n"
  "  copy_tile<kRows, kChunks, kBy, kUnroll>(dst, [&](int r, int c) {\n"
  "    const int tok = token_of(r);\n"
  "    return Chunk{ base + (tok >= 0 ? (i64)tok * row_stride + c * 8 : 0), tok >= 0 };\n"
  "  }, tid);\n"
  "}\n"
  "// Copy kv tile u. A tile without padding is its first token plus offsets that\n"
  "// are the same for every such tile (tokens are linear in the position): the\n"
  "// 64-bit address of a chunk is the tile's pointer plus a 32-bit offset (when\n"
  "// seq_k rows fit in 31 bits), instead of the grid coordinates, the padding\n"
  "// checks and a 64-bit product of every row (about 32 instructions a 16-byte\n"
  "// chunk on Swin windows, a quarter of the kv loop)\n"
  "template <int kChunks, int kBy = kThreads, int kUnroll = 64>\n"
  "ATTNC_DEVICE void load_kv(u32 dst, const u16 *base, i64 row_stride, int u, int seq_k, int tid) {\n"
  "  if (kv_tile_whole(u, seq_k) && (i64)seq_k * row_stride <= 0x7fffffffLL) {\n"
  "    const u16 *tile = base + (i64)kv_token<true>(u, 0, seq_k) * row_stride;\n"
  "    const int stride = (int)row_stride;\n"
  "    copy_tile<kBlockN, kChunks, kBy, kUnroll>(dst, [&](int r, int c) {\n"
  "      return Chunk{ tile + (kv_token<true>(0, r, seq_k) * stride + c * 8), true };\n"
  "    }, tid);\n"
  "  } else\n"
  "    load_tile<kBlockN, kChunks, kBy, kUnroll>(dst, base, row_stride, [&](int r) { return kv_token(u, r, seq_k); }, tid);\n"
  "}\n"
  "\n";

/*
** K or V tile u, or the q tile, by TMA (cuda_kv_tma, cuda_q_tma): one box of 64 columns a 64-column
** block, at the tile's first coordinate on each axis of the kv order
** (kv_origin), in the tensor map cuda_launch made for it (driver.c,
** cuda_tma_map_layout): dims (columns, tokens, heads, batches) for a 1-D
** order, (columns, grid axes last first, heads, batches) for a 2-D grid, and
** heads and batches as one dim for a 3-D grid (a map has at most 5).
** Coordinates past a grid axis read as zero, like padding tokens. A 1-D
** order with dilation d (kKvDil) has dims (columns, d, tokens / d, heads,
** batches): tile token c is residue c % d, row c / d.
*/
static const char *const tile_load_tma =
  "template <int kRank, int kRows, int kDil = 1>\n"
  "ATTNC_DEVICE void tma_box(u32 dst, const TmaMap &map, u32 bar, int cols, const int (&c)[kRank],\n"
  "                          int hh, int b, int heads) {\n"
  "  mbar_arrive_tx(bar, (u32)(kRows * cols * 2));\n"
  "  for (int cb = 0; cb < cols / 64; ++cb) {\n"
  "    const u32 d = dst + (u32)cb * kRows * 128;\n"
  "    if constexpr (kRank == 1 && kDil > 1) tma_load_5d(d, &map, bar, cb * 64, c[0] % kDil, c[0] / kDil, hh, b);\n"
  "    else if constexpr (kRank == 1) tma_load_4d(d, &map, bar, cb * 64, c[0], hh, b);\n"
  "    else if constexpr (kRank == 2) tma_load_5d(d, &map, bar, cb * 64, c[1], c[0], hh, b);\n"
  "    else tma_load_5d(d, &map, bar, cb * 64, c[kRank - 1], c[kRank - 2], c[0], b * heads + hh);\n"
  "  }\n"
  "}\n"
  "ATTNC_DEVICE void tma_kv(u32 dst, const TmaMap &map, u32 bar, int cols, int u, int hk, int b,\n"
  "                         const Params &p) {\n"
  "  int c[kKvRank];\n"
  "  kv_origin(u, (int)p.seq_k, c);\n"
  "  tma_box<kKvRank, kBlockN, kKvDil>(dst, map, bar, cols, c, hk, b, (int)p.heads_kv);\n"
  "}\n"
  "// the q tile: its first coordinate on each axis (kQTma: no dilation)\n"
  "ATTNC_DEVICE void tma_q(u32 dst, const TmaMap &map, u32 bar, const QTile &qt, int h, int b,\n"
  "                        const Params &p) {\n"
  "  int c[kQRank];\n"
  "#pragma unroll\n"
  "  for (int a = 0; a < kQRank; ++a) c[a] = (int)qt.lo[a];\n"
  "  tma_box<kQRank, kBlockM>(dst, map, bar, kHeadDim, c, h, b, (int)p.heads_q);\n"
  "}\n"
  "\n";

static const char *const gemm_qk_sync =
  "// S = Q K^T for this warp's kWarpM rows: Q from sQ (A, row-major), K from sK\n"
  "// (B, \"col\": K rows are B's columns), both with ldmatrix.x4.\n"
  "ATTNC_DEVICE void gemm_qk(float (&s)[kAtomsM][kAtomsN][4], u32 sQ, u32 sK, int warp, int lane) {\n"
  "#pragma unroll\n"
  "  for (int mi = 0; mi < kAtomsM; ++mi)\n"
  "#pragma unroll\n"
  "    for (int ni = 0; ni < kAtomsN; ++ni)\n"
  "#pragma unroll\n"
  "      for (int e = 0; e < 4; ++e) s[mi][ni][e] = 0.0f;\n"
  "#pragma unroll\n"
  "  for (int kk = 0; kk < kHeadDim / 16; ++kk) {\n"
  "    u32 qa[kAtomsM][4];\n"
  "#pragma unroll\n"
  "    for (int mi = 0; mi < kAtomsM; ++mi)   // rows 0-15 of the atom, chunks 2kk (lanes 0-15) and 2kk+1\n"
  "      ldmatrix_x4(qa[mi], tile_addr<kBlockM, kChunksQK>(sQ, warp * kWarpM + mi * 16 + (lane & 15), kk * 2 + (lane >> 4)));\n"
  "#pragma unroll\n"
  "    for (int np = 0; np < kAtomsN / 2; ++np) {   // two n8 atoms: key rows np*16 .. +15\n"
  "      u32 kb[4];\n"
  "      ldmatrix_x4(kb, tile_addr<kBlockN, kChunksQK>(sK, np * 16 + (lane & 7) + ((lane >> 4) << 3), kk * 2 + ((lane >> 3) & 1)));\n"
  "#pragma unroll\n"
  "      for (int mi = 0; mi < kAtomsM; ++mi) {\n"
  "        mma_16816(s[mi][2 * np], qa[mi], kb[0], kb[1]);\n"
  "        mma_16816(s[mi][2 * np + 1], qa[mi], kb[2], kb[3]);\n"
  "      }\n"
  "    }\n"
  "  }\n"
  "}\n"
  "\n";

static const char *const softmax_text =
  "// Online softmax over one tile of scores (already masked with -inf), in\n"
  "// log2 units: p = 2^(x * scale_log2 - m * scale_log2), one FFMA and one EX2.\n"
  "// Gives alpha = 2^(m_old - m_new) per row, by which O is to be rescaled\n"
  "// (rescale_o) and the row sums already are. A row with no allowed key so far\n"
  "// keeps m = -inf and exponentiates against 0: p = 0, never NaN.\n"
  "// Lazy rescaling (FlashAttention-4): a row keeps its old max unless the new\n"
  "// one is above it by more than kRescaleSlack in log2 units, so p <= 2^8 (fine\n"
  "// in fp16, bf16 and the fp32 sums; O / l and the LSE, m * scale_log2 + log2 l,\n"
  "// do not depend on which m was used), alpha is exactly 1 on most tiles, and a\n"
  "// warp whose rows all kept theirs skips rescale_o's FMULs (H200, session 13:\n"
  "// causal 515, 532 -> 580, 543 TFLOP/s; documents 327, 326 -> 337, 340).\n"
  "static constexpr float kRescaleSlack = 8.0f;\n"
  "ATTNC_DEVICE void softmax_tile(float (&s)[kAtomsM][kAtomsN][4], float (&row_max)[kAtomsM][2],\n"
  "                               float (&row_sum)[kAtomsM][2], float (&alpha)[kAtomsM][2],\n"
  "                               float scale_log2, const RowGain &rg, bool raw) {\n"
  "  // kScoreRaw: a raw tile's values are <q, k>, each row's logits over its gain\n"
  "  // (row_gain: scale * g(q), positive)\n"
  "  (void)rg; (void)raw;\n"
  "#pragma unroll\n"
  "  for (int mi = 0; mi < kAtomsM; ++mi)\n"
  "#pragma unroll\n"
  "    for (int r = 0; r < 2; ++r) {            // rows lane/4 and lane/4 + 8 of the atom\n"
  "      const float gain = kScoreRaw && raw ? rg.g[mi][r] : 1.0f;\n"
  "      const float sl = kScoreRaw ? gain * scale_log2 : scale_log2;\n"
  "      float mx = kScoreRaw ? -kInf : row_max[mi][r];\n"
  "#pragma unroll\n"
  "      for (int ni = 0; ni < kAtomsN; ++ni) mx = fmaxf(mx, fmaxf(s[mi][ni][2 * r], s[mi][ni][2 * r + 1]));\n"
  "      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));   // the 4 lanes of a row\n"
  "      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));\n"
  "      if constexpr (kScoreRaw) mx = fmaxf(row_max[mi][r], mx * gain);\n"
  "      const float old = row_max[mi][r];\n"
  "      if (old != -kInf && (mx - old) * scale_log2 <= kRescaleSlack) mx = old;   // p <= 2^slack\n"
  "      const float m_scaled = mx == -kInf ? 0.0f : mx * scale_log2;\n"
  "      alpha[mi][r] = old == -kInf ? 0.0f : mx == old ? 1.0f : fast_exp2(old * scale_log2 - m_scaled);\n"
  "      row_max[mi][r] = mx;\n"
  "      float sum = 0.0f;\n"
  "#pragma unroll\n"
  "      for (int ni = 0; ni < kAtomsN; ++ni)\n"
  "#pragma unroll\n"
  "        for (int c = 0; c < 2; ++c) {\n"
  "          const float pr = fast_exp2(s[mi][ni][2 * r + c] * sl - m_scaled);\n"
  "          s[mi][ni][2 * r + c] = pr;\n"
  "          if constexpr (!kSumMma) sum += pr;\n"
  "        }\n"
  "      // this lane's share, reduced at the end (with kSumMma, P V sums the rows)\n"
  "      if constexpr (!kSumMma) row_sum[mi][r] = row_sum[mi][r] * alpha[mi][r] + sum;\n"
  "    }\n"
  "}\n"
  "\n"
  "ATTNC_DEVICE void rescale_o(float (&o)[kAtomsM][kAtomsOA][4], const float (&alpha)[kAtomsM][2]) {\n"
  "  bool same = true;\n"
  "#pragma unroll\n"
  "  for (int mi = 0; mi < kAtomsM; ++mi) same = same && alpha[mi][0] == 1.0f && alpha[mi][1] == 1.0f;\n"
  "  if (__all_sync(0xffffffffu, same)) return;   // no row of the warp moved its max\n"
  "#pragma unroll\n"
  "  for (int mi = 0; mi < kAtomsM; ++mi)\n"
  "#pragma unroll\n"
  "    for (int nd = 0; nd < kAtomsOA; ++nd)\n"
  "#pragma unroll\n"
  "      for (int e = 0; e < 4; ++e) o[mi][nd][e] *= alpha[mi][e / 2];\n"
  "}\n"
  "\n";

static const char *const gemm_pv_sync =
  "// O += P V. P stays in registers: the S accumulators of two n8 atoms are\n"
  "// exactly the A fragment of one k16 step. V comes with ldmatrix.trans, so it\n"
  "// is never transposed in memory.\n"
  "ATTNC_DEVICE void gemm_pv(float (&o)[kAtomsM][kAtomsOA][4], const float (&s)[kAtomsM][kAtomsN][4],\n"
  "                          u32 sV, int lane) {\n"
  "#pragma unroll\n"
  "  for (int kk = 0; kk < kBlockN / 16; ++kk) {\n"
  "    u32 pa[kAtomsM][4];\n"
  "#pragma unroll\n"
  "    for (int mi = 0; mi < kAtomsM; ++mi) {\n"
  "      pa[mi][0] = pack2(s[mi][2 * kk][0], s[mi][2 * kk][1]);\n"
  "      pa[mi][1] = pack2(s[mi][2 * kk][2], s[mi][2 * kk][3]);\n"
  "      pa[mi][2] = pack2(s[mi][2 * kk + 1][0], s[mi][2 * kk + 1][1]);\n"
  "      pa[mi][3] = pack2(s[mi][2 * kk + 1][2], s[mi][2 * kk + 1][3]);\n"
  "    }\n"
  "#pragma unroll\n"
  "    for (int dp = 0; dp < kHeadDimV / 16; ++dp) {   // two n8 atoms of O: columns dp*16 .. +15\n"
  "      u32 vb[4];\n"
  "      ldmatrix_x4_trans(vb, tile_addr<kBlockN, kChunksV>(sV, kk * 16 + (lane & 15), dp * 2 + (lane >> 4)));\n"
  "#pragma unroll\n"
  "      for (int mi = 0; mi < kAtomsM; ++mi) {\n"
  "        mma_16816(o[mi][2 * dp], pa[mi], vb[0], vb[1]);\n"
  "        mma_16816(o[mi][2 * dp + 1], pa[mi], vb[2], vb[3]);\n"
  "      }\n"
  "    }\n"
  "  }\n"
  "}\n";

/*
** The Hopper path (cfg->wgmma): the same kernel with both products on
** wgmma. A warpgroup (4 warps) owns 64 query rows; S = Q K^T reads Q and K
** from shared memory (both K-major), O += P V takes P from registers in
** the layout mma.sync's A fragment has and V from shared memory (MN-major,
** transposed by the instruction). Each thread's accumulator registers hold
** the same (row, column) elements as kAtomsM = 1 atoms of mma.sync, so the
** score, mask and softmax code is shared.
*/
static const char *const prelude_wgmma =
  "\n// ---- wgmma helpers (sm_90a)\n"
  "// Shared-memory matrix descriptor: start, leading and stride byte offsets (>> 4),\n"
  "// 128-byte swizzle (PTX ISA, \"Matrix Descriptor Format\").\n"
  "ATTNC_DEVICE u64 wgmma_desc(u32 addr, u32 lbo, u32 sbo) {\n"
  "  return (u64)((addr & 0x3FFFFu) >> 4) | ((u64)(lbo >> 4) << 16) | ((u64)(sbo >> 4) << 32) | (1ull << 62);\n"
  "}\n"
  "ATTNC_DEVICE void wgmma_fence() { asm volatile(\"wgmma.fence.sync.aligned;\\n\" ::: \"memory\"); }\n"
  "ATTNC_DEVICE void wgmma_commit() { asm volatile(\"wgmma.commit_group.sync.aligned;\\n\" ::: \"memory\"); }\n"
  "// wait until at most N groups of this warpgroup are in flight (they finish in order)\n"
  "template <int N> ATTNC_DEVICE void wgmma_wait() { asm volatile(\"wgmma.wait_group.sync.aligned %0;\\n\" :: \"n\"(N) : \"memory\"); }\n"
  "// keeps the compiler from moving accesses of accumulators across an asynchronous MMA\n"
  "template <int A, int B> ATTNC_DEVICE void fence_acc(float (&x)[1][A][B]) {\n"
  "#pragma unroll\n"
  "  for (int i = 0; i < A; ++i)\n"
  "#pragma unroll\n"
  "    for (int j = 0; j < B; ++j) asm volatile(\"\" : \"+f\"(x[0][i][j]) :: \"memory\");\n"
  "}\n"
  "// cp.async writes are generic-proxy stores; wgmma reads through the async proxy\n"
  "ATTNC_DEVICE void smem_to_async_proxy() { asm volatile(\"fence.proxy.async.shared::cta;\\n\" ::: \"memory\"); }\n\n"
  "// mbarriers (warp specialisation): a phase completes when its count of arrivals\n"
  "// came; waiters name the phase by its parity\n"
  "ATTNC_DEVICE void mbar_init(u32 bar, int count) {\n"
  "  asm volatile(\"mbarrier.init.shared::cta.b64 [%0], %1;\\n\" :: \"r\"(bar), \"r\"(count) : \"memory\");\n"
  "}\n"
  "ATTNC_DEVICE void mbar_arrive(u32 bar) {   // release: this thread's writes before it are seen\n"
  "  asm volatile(\"mbarrier.arrive.shared::cta.b64 _, [%0];\\n\" :: \"r\"(bar) : \"memory\");\n"
  "}\n"
  "ATTNC_DEVICE void mbar_wait(u32 bar, int parity) {   // acquire\n"
  "  u32 done;\n"
  "  do {\n"
  "    asm volatile(\"{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }\\n\"\n"
  "                 : \"=r\"(done) : \"r\"(bar), \"r\"(parity) : \"memory\");\n"
  "  } while (!done);\n"
  "}\n"
  "// arrive, and expect tx more bytes to land (TMA) before the phase completes\n"
  "ATTNC_DEVICE void mbar_arrive_tx(u32 bar, u32 tx) {\n"
  "  asm volatile(\"mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\\n\" :: \"r\"(bar), \"r\"(tx) : \"memory\");\n"
  "}\n"
  "// TMA: the box at coordinates (c0 .. c3) of a 4-d tensor map into shared memory,\n"
  "// counted on barrier bar as bytes land\n"
  "ATTNC_DEVICE void tma_load_4d(u32 dst, const void *map, u32 bar, int c0, int c1, int c2, int c3) {\n"
  "  asm volatile(\"cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes\"\n"
  "               \" [%0], [%1, {%2, %3, %4, %5}], [%6];\\n\"\n"
  "               :: \"r\"(dst), \"l\"(map), \"r\"(c0), \"r\"(c1), \"r\"(c2), \"r\"(c3), \"r\"(bar) : \"memory\");\n"
  "}\n"
  "ATTNC_DEVICE void tma_load_5d(u32 dst, const void *map, u32 bar, int c0, int c1, int c2, int c3, int c4) {\n"
  "  asm volatile(\"cp.async.bulk.tensor.5d.shared::cluster.global.tile.mbarrier::complete_tx::bytes\"\n"
  "               \" [%0], [%1, {%2, %3, %4, %5, %6}], [%7];\\n\"\n"
  "               :: \"r\"(dst), \"l\"(map), \"r\"(c0), \"r\"(c1), \"r\"(c2), \"r\"(c3), \"r\"(c4), \"r\"(bar) : \"memory\");\n"
  "}\n"
  "template <int N> ATTNC_DEVICE void setmaxnreg_dec() { asm volatile(\"setmaxnreg.dec.sync.aligned.u32 %0;\\n\" :: \"n\"(N)); }\n"
  "template <int N> ATTNC_DEVICE void setmaxnreg_inc() { asm volatile(\"setmaxnreg.inc.sync.aligned.u32 %0;\\n\" :: \"n\"(N)); }\n";

static const char *const tile_layout_wgmma =
  "\n// ---- shared-memory tiles (wgmma's 128-byte swizzle)\n"
  "// A tile of kRows rows and kChunks 16-byte chunks per row is stored as column\n"
  "// blocks of 8 chunks (64 elements, one 128-byte line per row); in a block,\n"
  "// chunk c of row r sits at c ^ (r % 8). Tiles start 1024-aligned, so this is\n"
  "// exactly the layout the descriptors' 128-byte swizzle mode reads.\n"
  "template <int kRows, int kChunks> ATTNC_DEVICE u32 tile_addr(u32 base, int r, int c) {\n"
  "  static_assert(kChunks % 8 == 0, \"rows of whole 128-byte lines\");\n"
  "  return base + (u32)(((c >> 3) * kRows + r) * 128 + (((c & 7) ^ (r & 7)) << 4));\n"
  "}\n"
  "ATTNC_DEVICE u32 tile_base(const void *smem) { return (smem_u32(smem) + 1023u) & ~1023u; }\n";

static const char *const gemm_wgmma =
  "\n// Issue S = Q K^T for this warpgroup's 64 rows (no wait). A k16 step is 32 bytes\n"
  "// into the 128-byte lines, then the next column block; 8-line groups are 1024\n"
  "// bytes apart.\n"
  "ATTNC_DEVICE void issue_qk(float (&s)[kAtomsM][kAtomsN][4], u32 sQ, u32 sK, int warp) {\n"
  "  const u32 q_rows = sQ + (u32)(warp / 4) * 64 * 128;   // this warpgroup's rows\n"
  "  fence_acc(s);\n"
  "  wgmma_fence();\n"
  "#pragma unroll\n"
  "  for (int kk = 0; kk < kHeadDim / 16; ++kk) {\n"
  "    const u32 qa = q_rows + (u32)(kk / 4) * kBlockM * 128 + (kk % 4) * 32;\n"
  "    const u32 kb = sK + (u32)(kk / 4) * kBlockN * 128 + (kk % 4) * 32;\n"
  "    wgmma_qk(s, wgmma_desc(qa, 16, 1024), wgmma_desc(kb, 16, 1024), kk > 0);\n"
  "  }\n"
  "  wgmma_commit();\n"
  "  fence_acc(s);\n"
  "}\n"
  "\n"
  "// P to 16 bits: the register A operand of P V (rows lane/4 and +8, columns\n"
  "// (lane%4)*2 and +8 of each k16 step, as in mma.sync)\n"
  "ATTNC_DEVICE void pack_p(u32 (&pa)[kBlockN / 16][4], const float (&s)[kAtomsM][kAtomsN][4]) {\n"
  "#pragma unroll\n"
  "  for (int kk = 0; kk < kBlockN / 16; ++kk) {\n"
  "    pa[kk][0] = pack2(s[0][2 * kk][0], s[0][2 * kk][1]);\n"
  "    pa[kk][1] = pack2(s[0][2 * kk][2], s[0][2 * kk][3]);\n"
  "    pa[kk][2] = pack2(s[0][2 * kk + 1][0], s[0][2 * kk + 1][1]);\n"
  "    pa[kk][3] = pack2(s[0][2 * kk + 1][2], s[0][2 * kk + 1][3]);\n"
  "  }\n"
  "}\n"
  "\n"
  "// Issue O += P V (no wait). V's rows are the k dimension: a k16 step is 16\n"
  "// lines (2048 bytes); column blocks of 64 are kBlockN lines apart (the leading\n"
  "// byte offset).\n"
  "ATTNC_DEVICE void issue_pv(float (&o)[kAtomsM][kAtomsOA][4], const u32 (&pa)[kBlockN / 16][4], u32 sV) {\n"
  "  fence_acc(o);\n"
  "  wgmma_fence();\n"
  "#pragma unroll\n"
  "  for (int kk = 0; kk < kBlockN / 16; ++kk)\n"
  "    wgmma_pv(o, pa[kk], wgmma_desc(sV + (u32)kk * 2048, kBlockN * 128, 1024));\n"
  "  wgmma_commit();\n"
  "  fence_acc(o);\n"
  "}\n"
  "\n"
  "// the products one at a time, for the loop without overlap (kernel_loop_sync)\n"
  "ATTNC_DEVICE void gemm_qk(float (&s)[kAtomsM][kAtomsN][4], u32 sQ, u32 sK, int warp, int lane) {\n"
  "  issue_qk(s, sQ, sK, warp);\n"
  "  wgmma_wait<0>();\n"
  "  fence_acc(s);\n"
  "}\n"
  "ATTNC_DEVICE void gemm_pv(float (&o)[kAtomsM][kAtomsOA][4], const float (&s)[kAtomsM][kAtomsN][4],\n"
  "                          u32 sV, int lane) {\n"
  "  u32 pa[kBlockN / 16][4];\n"
  "  pack_p(pa, s);\n"
  "  issue_pv(o, pa, sV);\n"
  "  wgmma_wait<0>();\n"
  "  fence_acc(o);\n"
  "}\n";

/*
** The two wgmma instructions of the kernel, m64nNk16 with N = block_n
** (S) and N = Dv (O): N/2 fp32 accumulators a thread, listed one by one.
** The first S step does not read the accumulators (scale-d false).
*/
static void emit_wgmma_ops(Out *o, const CudaConfig *cfg) {
  const char *ty = cfg->dtype == DT_F16 ? "f16" : "bf16";
  for (int pv = 0; pv < 2; pv++) {
    /* with sum_mma, O's N has 8 more columns: P times V's chunk of ones */
    int n = pv ? cfg->head_dim_v + (cfg->sum_mma ? 8 : 0) : cfg->block_n, nreg = n / 2;
    if (pv)
      out_printf(o, "\n// O (64 x %d) += P (64 x 16, registers) V (16 x %d, shared, MN-major)\n"
                    "ATTNC_DEVICE void wgmma_pv(float (&d)[kAtomsM][kAtomsOA][4], const u32 (&a)[4], u64 db) {\n",
                 n, n);
    else
      out_printf(o, "\n// S (64 x %d) = (scale_d ? S : 0) + Q (64 x 16) K^T (16 x %d), both from shared memory\n"
                    "ATTNC_DEVICE void wgmma_qk(float (&d)[kAtomsM][kAtomsN][4], u64 da, u64 db, int scale_d) {\n",
                 n, n);
    out_printf(o, "  asm volatile(\"{\\n.reg .pred p;\\nsetp.ne.b32 p, %%%d, 0;\\n\"\n",
               nreg + (pv ? 5 : 2));
    out_printf(o, "      \"wgmma.mma_async.sync.aligned.m64n%dk16.f32.%s.%s {\"\n", n, ty, ty);
    for (int i = 0; i < nreg; i += 8) {
      out_puts(o, "      \"");
      for (int j = i; j < i + 8 && j < nreg; j++) out_printf(o, "%%%d%s", j, j + 1 < nreg ? ", " : "");
      out_puts(o, "\"\n");
    }
    if (pv)
      out_printf(o, "      \"}, {%%%d, %%%d, %%%d, %%%d}, %%%d, p, 1, 1, 1;\\n}\\n\"\n",
                 nreg, nreg + 1, nreg + 2, nreg + 3, nreg + 4);
    else
      out_printf(o, "      \"}, %%%d, %%%d, p, 1, 1, 0, 0;\\n}\\n\"\n", nreg, nreg + 1);
    out_puts(o, "      : ");
    for (int j = 0; j < nreg; j++)
      out_printf(o, "\"+f\"(d[0][%d][%d])%s", j / 4, j % 4,
                 j + 1 == nreg ? "" : j % 4 == 3 ? ",\n        " : ", ");
    if (pv)
      out_puts(o, "\n      : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"l\"(db), \"r\"(1));\n}\n");
    else
      out_puts(o, "\n      : \"l\"(da), \"l\"(db), \"r\"(scale_d));\n}\n");
  }
}

/* ------------------------------------------------------------- header */

static void emit_header(Out *o, const IrPattern *p, const CudaConfig *cfg, const EmitPlan *ep) {
  char an[16];
  out_printf(o, "// attnc generated kernel: attention for pattern \"%s\" (%s)\n", p->name, p->file);
  out_printf(o, "// target %s; %s inputs, fp32 accumulation; head dim %d, value dim %d\n",
             cuda_arch_name(cfg->arch, an), cfg->dtype == DT_F16 ? "fp16" : "bf16",
             cfg->head_dim, cfg->head_dim_v);
  out_printf(o, "// schedule: %d x %d tiles, %d warps, %s; token order %s; kv iteration %s\n",
             cfg->block_m, cfg->block_n, cfg->warps,
             cfg->ws ? "wgmma, overlapped, warp-specialised" : cfg->overlap ? "wgmma, overlapped" :
             cfg->wgmma ? "wgmma" : "mma.sync",
             ep->order_name, ep->iter_name);
  for (int i = 0; i < p->nparams; i++) {
    const IrParam *pr = &p->params[i];
    if (pr->type == IR_INT)
      out_printf(o, "// param %s = %lld (%s:%d)\n", pr->name, (long long)pr->value, p->file, pr->line);
    else
      out_printf(o, "// param %s = %.9g (%s:%d)\n", pr->name, pr->value, p->file, pr->line);
  }
  out_puts(o, "// Generated by attnc; do not edit. Compiled with NVRTC, no CUDA headers.\n\n");
  if (cuda_data_prep(ep))
    out_puts(o, "// two programs compiled at once (cuda_compile): " CUDA_PART_MACRO "=1 the attention kernel,\n"
                "// =2 its pre-passes; undefined, one program with all three\n"
                "#ifndef " CUDA_PART_MACRO "\n#define " CUDA_PART_MACRO " 0\n#endif\n\n");
}

/* the kv tiles q tile qt visits on one (b, h) of n tokens; -1 unknown */
static int64_t q_tile_visits(const Plan *pl, int64_t n, int64_t qt) {
  PlanRun r = { .B = 1, .H = 1, .Sq = n, .Sk = n };
  int64_t visited, full;
  Diag quiet = { 0 };
  return plan_count_q_tile(pl, &r, 0, 0, qt, &visited, &full, &quiet) == ATTNC_OK ? visited : -1;
}

/*
** Whether the grid launches the q tiles last to first: where the work a q
** tile visits still grows over the second half of the tiles (causal: the
** last tile visits more kv tiles than the middle one), the heavy tiles then
** start first and the grid's last wave holds light ones (FlashAttention-3
** does the same for causal). A window's tiles stop growing after its first
** few, and keep the order (H200, session 14, TFLOP/s in order / reversed:
** causal 542, 543 / 566, 550; ALiBi 485, 488 / 496, 494; the window 1024
** 439, 434 / 434, 434; with sinks 393, 395 / 390, 386). Counted at
** plan_tokens; plans whose tiles come from runtime inputs keep the order.
*/
static bool q_tiles_reversed(const Plan *pl, const CudaConfig *cfg) {
  if (!pl || !plan_tiles_static(pl)) return false;
  int64_t n = plan_tokens(pl, cfg->seq_hint), nt = cuda_order_ntiles(&cfg->qord, n);
  if (nt < 2) return false;
  int64_t mid = q_tile_visits(pl, n, (nt - 1) / 2), last = q_tile_visits(pl, n, nt - 1);
  return mid >= 0 && last > mid;
}

/*
** The persistent grid (kernel_persist) where every q tile carries about the
** same work: the plan's tiles are known at compile time and a q tile's
** visits stop growing (q tiles not reversed): dense, windows, sinks. H200,
** session 15, TFLOP/s with a CTA a q tile / persistent, two rounds: the
** window 1024 431, 433 / 464, 460; with sinks 390, 385 / 409, 409; dense
** 616, 621 / 615, 626. Where the work grows over the q tiles or comes from
** inputs, the hardware's CTA scheduler balances it better than a static
** stride: causal 575, 566 / 555, 545; ALiBi 504, 519 / 479, 479;
** block-sparse 484, 487 / 464, 466; documents 381, 380 / 367, 366.
** Only with 128-row tiles and two compute warpgroups (one CTA an SM):
** where two CTAs share an SM, one's start and end already hide under the
** other's loop (the window 256's 64 x 64 tiles 223, 224 / 174, 174), and
** D=64's 192-row tiles leave the producer 32 registers, where it spills
** (dense D=64 472, 467 / 442, 446). The sink-calibrated window: 324, 323 /
** 338, 339.
*/
bool cuda_persist_wanted(const Plan *pl, const CudaConfig *cfg) {
  return pl && plan_tiles_static(pl) && !q_tiles_reversed(pl, cfg) &&
         cfg->block_m == 128 && cfg->warps == 8;
}

static void emit_schedule(Out *o, const IrPattern *p, const Plan *plan, const CudaConfig *cfg) {
  bool data_iter = false, list_iter = false;   /* kv tiles chosen by runtime inputs */
  for (int v = 0; plan && v < plan->nvariants; v++) {
    data_iter |= plan->variants[v].it.kind == ITER_DATA;
    list_iter |= plan->variants[v].it.kind == ITER_LIST;
  }
  out_puts(o, "\n// ---- schedule\n");
  out_printf(o, "static constexpr int kHeadDim = %d;    // D of Q and K\n", cfg->head_dim);
  out_printf(o, "static constexpr int kHeadDimV = %d;   // Dv of V and O\n", cfg->head_dim_v);
  out_printf(o, "static constexpr int kBlockM = %d;    // query rows per CTA (one q tile)\n", cfg->block_m);
  out_printf(o, "static constexpr int kBlockN = %d;     // key rows per kv tile\n", cfg->block_n);
  out_printf(o, "static constexpr int kWarps = %d;      // compute warps per CTA, tiled along M\n", cfg->warps);
  out_printf(o, "static constexpr bool kQTileRev = %s;   // q tiles launched last to first (heavy first)\n",
             q_tiles_reversed(plan, cfg) ? "true" : "false");
  out_printf(o, "static constexpr int kKvStages = %d;   // K and V buffers\n", kv_stages(cfg));
  int min_blocks = cuda_kernel_min_blocks(cfg);
  out_printf(o, "static constexpr int kMinBlocks = %d;  // CTAs an SM must fit (registers)\n",
             min_blocks);
  out_printf(o, "static constexpr int kProducerWarps = %d;   // the loading warpgroup (0: every warp loads)\n",
             cfg->ws ? 4 : 0);
  out_printf(o, "static constexpr bool kKvTma = %s;   // K and V come by TMA (else cp.async)\n",
             cuda_kv_tma(cfg) ? "true" : "false");
  out_printf(o, "static constexpr bool kQTma = %s;    // and Q (a q tile is one box)\n",
             cuda_q_tma(cfg) ? "true" : "false");
  if (cfg->ws) {
    /* setmaxnreg moves registers from the producer to the compute warps: at
       entry every thread has what __launch_bounds__ leaves it (ptxas rounds
       to 8), the producer keeps a few for addresses and the iterator; the
       data iterator needs 48 (with 40 ptxas spilled its tile to the stack:
       documents, 4.7 % of the stall samples on the reload, H200 ncu) */
    int threads = cuda_threads(cfg), consumers = cfg->warps * 32;
    int entry = 65536 / (threads * min_blocks);
    if (entry > 255) entry = 255;
    entry &= ~7;
    int prod = consumers > 256 ? 32 : data_iter ? 48 : 40;
    int cons = (entry * threads - prod * 128) / consumers / 8 * 8;
    if (cons > 240) cons = 240;
    out_printf(o, "static constexpr int kRegsEntry = %d;      // registers a thread at launch\n"
                  "static constexpr int kRegsProducer = %d;   // after setmaxnreg\n"
                  "static constexpr int kRegsConsumer = %d;\n", entry, prod, cons);
    /* the producer's V copies a tile behind its K copies (TMA) where the kv
       tiles come from runtime inputs (H200, session 10: routed 501 / 501
       TFLOP/s against 475 / 463, block-sparse 454 / 450 against 430 / 429,
       documents 313 either way); not on runs of consecutive tiles (dense
       D=64 442 against 466, sliding window 408 against 418) */
    out_printf(o, "static constexpr bool kVLag = %s;   // V_j-1 after K_j (TMA)\n",
               list_iter || data_iter ? "true" : "false");
  }
  out_printf(o, "static constexpr bool kPersist = %s;   // a persistent grid walking work items\n",
             cfg->persist ? "true" : "false");
  out_printf(o, "static constexpr bool kSumMma = %s;   // row sums by P V (a chunk of ones beside V)\n"
                "static constexpr u32 kOneBits = 0x%04x;  // 1.0 in the element type\n",
             cfg->sum_mma ? "true" : "false", cfg->dtype == DT_F16 ? 0x3C00 : 0x3F80);
  out_puts(o,
    "static constexpr int kThreads = kWarps * 32;      // the warps that compute\n"
    "static constexpr int kCtaThreads = kThreads + kProducerWarps * 32;\n"
    "static constexpr int kIterWarps = kProducerWarps ? kProducerWarps : kWarps;   // run kv_next\n"
    "static constexpr int kWarpM = kBlockM / kWarps;   // query rows per warp\n"
    "static constexpr int kAtomsM = kWarpM / 16;       // m16 MMA atoms per warp\n"
    "static constexpr int kAtomsN = kBlockN / 8;       // n8 atoms of S per row block\n"
    "static constexpr int kAtomsO = kHeadDimV / 8;     // n8 atoms of O per row block\n"
    "static constexpr int kAtomsOA = kAtomsO + (kSumMma ? 1 : 0);   // and the row sums' atom\n"
    "static constexpr int kChunksQK = kHeadDim / 8;    // 16-byte chunks per Q / K row\n"
    "static constexpr int kChunksV = kHeadDimV / 8;    // 16-byte chunks per V row\n"
    "static constexpr int kSmemQ = 0;                  // shared-memory byte offsets\n"
    "static constexpr int kStageK = kBlockN * kHeadDim * 2;   // bytes of one K buffer\n"
    "static constexpr int kStageV = kBlockN * (kHeadDimV + (kSumMma ? 64 : 0)) * 2;  // one V buffer (+ ones)\n"
    "static constexpr int kQBytes = kBlockM * kHeadDim * 2;     // one Q buffer\n"
    "static constexpr int kSmemK = kSmemQ + (kPersist ? 2 : 1) * kQBytes;\n"
    "static constexpr int kSmemV = kSmemK + kKvStages * kStageK;\n"
    "static constexpr int kSmemBytes = kSmemV + kKvStages * kStageV;\n"
    "static constexpr float kLn2 = 0.693147180559945309f;\n"
    "static constexpr float kLog2e = 1.44269504088896341f;\n"
    "#define kInf __int_as_float(0x7f800000)\n");
  out_printf(o, "static constexpr bool kHasScore = %s;   // a score modification\n",
             p->score >= 0 ? "true" : "false");
}

static void emit_params(Out *o, const IrPattern *p) {
  CudaSlot slots[64 + 3 * 32];
  int n = cuda_param_slots(p, slots, (int)(sizeof slots / sizeof slots[0]));
  out_puts(o, "\n// ---- the parameter block: 8-byte fields, filled by cuda_launch (backend/cuda/driver.c);\n"
              "// first the TMA descriptors of Q, K and V (kKvTma, kQTma), which must be 64-byte aligned\n"
              "struct alignas(64) TmaMap { u64 w[16]; };\n"
              "struct Params {\n");
  int input = 0;
  for (int i = 0; i < n; i++) {
    const CudaSlot *s = &slots[i];
    if (s->kind == SLOT_TMAP) {
      out_printf(o, "  TmaMap %s;\n", s->name);
      continue;
    }
    const char *ty = s->kind == SLOT_PTR ? "const void *" : s->kind == SLOT_I64 ? "i64 " : "double ";
    char name[64];
    if (strncmp(s->name, "in", 2) == 0 && (s->name[2] == 0 || s->name[2] == '_')) {
      snprintf(name, sizeof name, "in%d%s", input, s->name + 2);
      if (strcmp(s->name, "in_stride") == 0) input++;
    } else
      snprintf(name, sizeof name, "%s", s->name);
    if (s->count > 1 || strstr(s->name, "_shape") || strstr(s->name, "_stride"))
      out_printf(o, "  %s%s[%d];\n", ty, name, s->count);
    else
      out_printf(o, "  %s%s;\n", ty, name);
  }
  out_puts(o, "};\n");
  out_puts(o, "// q/k/v/o strides: batch, head, token, dim (in elements); lse: batch, head, token\n");
}

/* the chunk of ones behind each V buffer (kSumMma: the row sums by P V),
   written once a CTA by every thread (kernel_ws, kernel_persist) */
static const char *const fill_ones_text =
  "\n// the 64 columns of ones behind each V buffer, written once a CTA; P V's last\n"
  "// 8 columns sum the rows of P\n"
  "ATTNC_DEVICE void fill_ones(u32 sV, int tid) {\n"
  "  const u32 one = kOneBits | kOneBits << 16;\n"
  "  for (int i = tid; i < kKvStages * kBlockN * 8; i += kCtaThreads) {\n"
  "    const u32 a = sV + (i / (kBlockN * 8)) * kStageV + kHeadDimV * kBlockN * 2 + (i % (kBlockN * 8)) * 16;\n"
  "    asm volatile(\"st.shared.v4.u32 [%0], {%1, %1, %1, %1};\\n\" :: \"r\"(a), \"r\"(one) : \"memory\");\n"
  "  }\n"
  "  smem_to_async_proxy();              // wgmma reads them through the async proxy\n"
  "}\n";

/* ------------------------------------------------------------- kernel */

static const char *const kernel_head =
  "\n// ---- the kernel: one CTA per (q tile, query head, batch)\n"
  "extern \"C\" __global__ void __launch_bounds__(kCtaThreads, kMinBlocks) attnc_fwd(const __grid_constant__ Params p) {\n"
  "  extern __shared__ __align__(128) unsigned char smem[];\n"
  "  const u32 sbase = tile_base(smem);\n"
  "  const u32 sQ = sbase + kSmemQ, sK = sbase + kSmemK, sV = sbase + kSmemV;\n"
  "  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;\n"
  "  const int q_tile = kQTileRev ? (int)(gridDim.x - 1 - blockIdx.x) : (int)blockIdx.x;\n"
  "  const int h = blockIdx.y, b = blockIdx.z;\n"
  "  const int hk = h / (int)(p.heads_q / p.heads_kv);   // GQA: query heads share a kv head\n"
  "  const int seq_q = (int)p.seq_q, seq_k = (int)p.seq_k;\n"
  "  const float scale = (float)p.scale, scale_log2 = (float)p.softmax_scale_log2;\n"
  "  const u16 *gQ = (const u16 *)p.q + b * p.q_stride[0] + h * p.q_stride[1];\n"
  "  const u16 *gK = (const u16 *)p.k + b * p.k_stride[0] + hk * p.k_stride[1];\n"
  "  const u16 *gV = (const u16 *)p.v + b * p.v_stride[0] + hk * p.v_stride[1];\n"
  "\n"
  "  QTile qt;\n"
  "  if (!q_tile_begin(qt, p, b, h, q_tile)) return;   // all padding: nothing to write\n"
  ;

/* a work item's rows and accumulators (kernel_head, kernel_persist) */
static const char *const kernel_item_init =
  "  // this thread's rows: r = warp*kWarpM + mi*16 + half*8 + lane/4, and their tokens\n"
  "  int q_tok[kAtomsM][2];\n"
  "#pragma unroll\n"
  "  for (int mi = 0; mi < kAtomsM; ++mi)\n"
  "#pragma unroll\n"
  "    for (int r = 0; r < 2; ++r) q_tok[mi][r] = q_token(qt, warp * kWarpM + mi * 16 + r * 8 + lane / 4);\n"
  "  const RowGain rg = row_gain(p, b, h, q_tok, scale);\n"
  "\n"
  "  float acc_o[kAtomsM][kAtomsOA][4];\n"
  "  float row_max[kAtomsM][2], row_sum[kAtomsM][2];\n"
  "#pragma unroll\n"
  "  for (int mi = 0; mi < kAtomsM; ++mi) {\n"
  "#pragma unroll\n"
  "    for (int nd = 0; nd < kAtomsOA; ++nd)\n"
  "#pragma unroll\n"
  "      for (int e = 0; e < 4; ++e) acc_o[mi][nd][e] = 0.0f;\n"
  "    row_max[mi][0] = row_max[mi][1] = -kInf;\n"
  "    row_sum[mi][0] = row_sum[mi][1] = 0.0f;\n"
  "  }\n";

/* every warp loads: the kv iterator's first tile, then the first loads before the loop */
static const char *const kernel_kv_start =
  "\n"
  "  // the kv tiles of this q tile, in the plan's order; Q and the first K are loaded\n"
  "  KvIter it;\n"
  "  kv_begin(it, p, qt, b, h);\n"
  "  KvTile cur;\n"
  "  bool have = kv_next(it, p, qt, b, h, cur);\n";

static const char *const kernel_first_loads =
  "  if (have) {\n"
  "    load_tile<kBlockM, kChunksQK>(sQ, gQ, p.q_stride[2], [&](int r) { return q_token(qt, r); }, tid);\n"
  "    load_kv<kChunksQK>(sK, gK, p.k_stride[2], cur.tile, seq_k, tid);\n"
  "    cp_async_commit();\n"
  "  }\n";

/* the same for the Hopper loop, where thread 0 may load K and V with TMA
   (cuda_kv_tma) onto one full barrier a buffer: it issues them after the
   step's S = Q K^T is done, under P V and the softmax. Issued right after
   the CTA barrier instead, the copies held up thread 0's warpgroup at its
   next wgmma (H200, session 8, TFLOP/s cp.async / TMA there / TMA here:
   2-D neighborhood 50 / 46 / 50, 3-D 40 / 37 / 40, Swin 209 / 212 / 213) */
static const char *const kernel_first_loads_wgmma =
  "  __shared__ __align__(8) u64 full_q, full_k[2], full_v[2];\n"
  "  constexpr bool tma = kKvTma;          // K and V by TMA from thread 0, or cp.async from all\n"
  "  constexpr bool qtma = kQTma;          // and Q\n"
  "  if (tma) {\n"
  "    if (tid == 0) {\n"
  "      mbar_init(smem_u32(&full_q), 1);\n"
  "#pragma unroll\n"
  "      for (int st = 0; st < 2; ++st) {\n"
  "        mbar_init(smem_u32(&full_k[st]), 1);\n"
  "        mbar_init(smem_u32(&full_v[st]), 1);\n"
  "      }\n"
  "    }\n"
  "    __syncthreads();\n"
  "  }\n"
  "  if (have) {\n"
  "    if (!qtma) load_tile<kBlockM, kChunksQK>(sQ, gQ, p.q_stride[2], [&](int r) { return q_token(qt, r); }, tid);\n"
  "    else if (tid == 0) tma_q(sQ, p.qmap, smem_u32(&full_q), qt, h, b, p);\n"
  "    if (!tma) load_kv<kChunksQK>(sK, gK, p.k_stride[2], cur.tile, seq_k, tid);\n"
  "    else if (tid == 0) tma_kv(sK, p.kmap, smem_u32(&full_k[0]), kHeadDim, cur.tile, hk, b, p);\n"
  "    cp_async_commit();\n"
  "  }\n";

static const char *const kernel_loop_sync =
  "  // Loads run one step ahead (FlashAttention-2): V_j is fetched during S = Q K_j^T,\n"
  "  // K_j+1 during the softmax and O += P V_j.\n"
  "  while (have) {\n"
  "    KvTile next;\n"
  "    const bool have_next = kv_next(it, p, qt, b, h, next);\n"
  "    cp_async_wait_all();\n"
  "    smem_to_async_proxy();\n"
  "    __syncthreads();                  // K_j (and Q) landed; every warp is done with V_j-1\n"
  "    load_kv<kChunksV>(sV, gV, p.v_stride[2], cur.tile, seq_k, tid);\n"
  "    cp_async_commit();\n"
  "\n"
  "    float s[kAtomsM][kAtomsN][4];\n"
  "    gemm_qk(s, sQ, sK, warp, lane);\n"
  "    const bool raw = rg.raw && tile_raw(p, b, h, cur.tile);   // the softmax scales <q, k> (kScoreRaw)\n"
  "    score_tile(s, p, qt, cur, q_tok, b, h, lane, scale, rg, raw);\n"
  "\n"
  "    cp_async_wait_all();\n"
  "    smem_to_async_proxy();\n"
  "    __syncthreads();                  // V_j landed; every warp is done with K_j\n"
  "    if (have_next) {\n"
  "      load_kv<kChunksQK>(sK, gK, p.k_stride[2], next.tile, seq_k, tid);\n"
  "      cp_async_commit();\n"
  "    }\n"
  "    float alpha[kAtomsM][2];\n"
  "    softmax_tile(s, row_max, row_sum, alpha, scale_log2, rg, raw);\n"
  "    rescale_o(acc_o, alpha);\n"
  "    gemm_pv(acc_o, s, sV, lane);\n"
  "    cur = next;\n"
  "    have = have_next;\n"
  "  }\n"
  "\n";

/*
** The Hopper loop: loads run a whole step ahead into two K and two V
** buffers (tile j's in buffer j % 2), and inside a warpgroup the softmax of
** tile j runs while the tensor cores do O += P_j-1 V_j-1 (FlashAttention-3's
** intra-warpgroup overlap). Step j:
**   wait for K_j, V_j-1; barrier; load V_j, K_j+1
**   issue S = Q K_j^T; issue O += P_j-1 V_j-1
**   wait for S; score and softmax of tile j; wait for O; rescale O; P_j
** The score and softmax code appears once (NVRTC time grows with it).
*/
static const char *const kernel_loop_wgmma =
  "  KvTile nxt;\n"
  "  float s[kAtomsM][kAtomsN][4], alpha[kAtomsM][2];\n"
  "  u32 pa[kBlockN / 16][4];\n"
  "  int j = 0;                          // the index of tile cur\n"
  "  while (have) {\n"
  "    const bool have_nxt = kv_next(it, p, qt, b, h, nxt);\n"
  "    if (!tma || j == 0) {\n"
  "      cp_async_wait<0>();             // K_j and V_j-1 (step 0: Q and K_0) landed\n"
  "      smem_to_async_proxy();\n"
  "    }\n"
  "    __syncthreads();                  // every warpgroup is done with K_j-1 and V_j-2\n"
  "    if (!tma) {\n"
  "      load_kv<kChunksV>(sV + (j & 1) * kStageV, gV, p.v_stride[2], cur.tile, seq_k, tid);\n"
  "      if (have_nxt)\n"
  "        load_kv<kChunksQK>(sK + ((j + 1) & 1) * kStageK, gK, p.k_stride[2], nxt.tile, seq_k, tid);\n"
  "      cp_async_commit();\n"
  "    } else {\n"
  "      if (qtma && j == 0) mbar_wait(smem_u32(&full_q), 0);   // Q landed\n"
  "      mbar_wait(smem_u32(&full_k[j & 1]), (j >> 1) & 1);   // K_j landed\n"
  "    }\n"
  "\n"
  "    issue_qk(s, sQ, sK + (j & 1) * kStageK, warp);\n"
  "    if (j > 0) {\n"
  "      if (tma) mbar_wait(smem_u32(&full_v[(j - 1) & 1]), ((j - 1) >> 1) & 1);   // V_j-1 landed\n"
  "      issue_pv(acc_o, pa, sV + ((j - 1) & 1) * kStageV);\n"
  "      wgmma_wait<1>();                // S of tile j is done; P_j-1 V_j-1 may run on\n"
  "    } else\n"
  "      wgmma_wait<0>();\n"
  "    if (tma && tid == 0) {            // under P V: V_j, K_j+1 into the buffers the barrier freed\n"
  "      tma_kv(sV + (j & 1) * kStageV, p.vmap, smem_u32(&full_v[j & 1]), kHeadDimV, cur.tile, hk, b, p);\n"
  "      if (have_nxt)\n"
  "        tma_kv(sK + ((j + 1) & 1) * kStageK, p.kmap, smem_u32(&full_k[(j + 1) & 1]), kHeadDim, nxt.tile, hk, b, p);\n"
  "    }\n"
  "    fence_acc(s);\n"
  "    const bool raw = rg.raw && tile_raw(p, b, h, cur.tile);   // the softmax scales <q, k> (kScoreRaw)\n"
  "    score_tile(s, p, qt, cur, q_tok, b, h, lane, scale, rg, raw);\n"
  "    softmax_tile(s, row_max, row_sum, alpha, scale_log2, rg, raw);\n"
  "    wgmma_wait<0>();\n"
  "    fence_acc(acc_o);\n"
  "    rescale_o(acc_o, alpha);          // step 0: O = 0 and alpha = 0\n"
  "    pack_p(pa, s);\n"
  "    cur = nxt;\n"
  "    have = have_nxt;\n"
  "    ++j;\n"
  "  }\n"
  "  if (j > 0) {                        // the last tile's P V: its V is in buffer (j - 1) % 2\n"
  "    if (tma)\n"
  "      mbar_wait(smem_u32(&full_v[(j - 1) & 1]), ((j - 1) >> 1) & 1);\n"
  "    else {\n"
  "      cp_async_wait<0>();\n"
  "      smem_to_async_proxy();\n"
  "      __syncthreads();\n"
  "    }\n"
  "    issue_pv(acc_o, pa, sV + ((j - 1) & 1) * kStageV);\n"
  "    wgmma_wait<0>();\n"
  "    fence_acc(acc_o);\n"
  "  }\n"
  "\n";

/*
** Warp specialisation (cfg->ws; FlashAttention-3, KERNELS.md steps 5-6): a
** producer warpgroup after the compute warps runs the kv iterator and
** copies Q, K_j and V_j (TMA, else cp.async) into two K and two V buffers
** (kKvStages; tile j in buffer j % 2). Each buffer has a full mbarrier, on
** which the producer's 128 threads arrive once their copies landed (and
** are fenced for the async proxy wgmma reads through; with TMA, thread 0
** arms it with the bytes), and an empty one, on which each compute warp
** arrives once its MMAs are done reading. slot[j % 2] tells the compute
** warps which tile K_j is (tile -1: no more). The compute
** warps run kernel_loop_wgmma's steps with waits on the barriers instead
** of CTA barriers; setmaxnreg gives them the producer's spare registers.
*/
static const char *const kernel_ws =
  "\n"
  "  // ---- warp specialisation: the barriers of the buffers, and the tile in each K buffer\n"
  "  __shared__ __align__(8) u64 full_q, full_k[kKvStages], full_v[kKvStages], empty_k[kKvStages], empty_v[kKvStages];\n"
  "  __shared__ KvTile slot[kKvStages];\n"
  "  __shared__ ColStage col_stage[kColStage ? 3 : 1];   // a partial tile's mask columns\n"
  "  constexpr bool tma = kKvTma;          // K and V by TMA from one thread, or cp.async from all\n"
  "  constexpr bool qtma = kQTma;          // and Q\n"
  "  if (tid == 0) {\n"
  "    mbar_init(smem_u32(&full_q), qtma ? 1 : kProducerWarps * 32);\n"
  "#pragma unroll\n"
  "    for (int st = 0; st < kKvStages; ++st) {\n"
  "      mbar_init(smem_u32(&full_k[st]), tma ? 1 + (kColStage ? kBlockN : 0) : kProducerWarps * 32);\n"
  "      mbar_init(smem_u32(&empty_k[st]), kWarps);\n"
  "    }\n"
  "#pragma unroll\n"
  "    for (int st = 0; st < kKvStages; ++st) {\n"
  "      mbar_init(smem_u32(&full_v[st]), tma ? 1 : kProducerWarps * 32);\n"
  "      mbar_init(smem_u32(&empty_v[st]), kWarps);\n"
  "    }\n"
  "  }\n"
  "  if constexpr (kSumMma) fill_ones(sV, tid);   // the chunk of ones behind each V buffer, once\n"
  "  __syncthreads();                    // the last CTA-wide barrier\n"
  "\n"
  "  if (warp >= kWarps) {               // the producer warpgroup\n"
  "    if constexpr (kRegsProducer < kRegsEntry) setmaxnreg_dec<kRegsProducer>();\n"
  "    const int ptid = tid - kThreads;\n"
  "    KvIter it;\n"
  "    kv_begin(it, p, qt, b, h);\n"
  "    // copies by threads land in order of issue: once the older groups landed, fence\n"
  "    // them for the async proxy (wgmma reads through it) and arrive on their barrier\n"
  "    auto signal = [&](u32 bar) {\n"
  "      smem_to_async_proxy();\n"
  "      mbar_arrive(bar);\n"
  "    };\n"
  "    // every producer thread waits on the empty barriers (one thread spinning while\n"
  "    // its warp's other lanes ran on cost 10-30%: H200, dense to block-sparse); with\n"
  "    // TMA, where thread 0 alone refills, they meet before it issues, so none can fall\n"
  "    // a phase behind and wait for one that never comes\n"
  "    // with TMA and kVLag, V runs a tile behind K: K_j goes out once K_j-2 is released\n"
  "    // (early in step j-2), not after V_j-1, which waits for the end of step j-2\n"
  "    auto tma_v = [&](int i, int tile) {   // V_i, once V_i-kKvStages is released\n"
  "      const int sv = i % kKvStages;\n"
  "      if (i >= kKvStages) { mbar_wait(smem_u32(&empty_v[sv]), ((i / kKvStages) + 1) & 1); iter_sync(); }\n"
  "      if (ptid == 0) tma_kv(sV + sv * kStageV, p.vmap, smem_u32(&full_v[sv]), kHeadDimV, tile, hk, b, p);\n"
  "    };\n"
  "    int j = 0, prev = -1;             // prev: tile j-1\n"
  "    for (;; ++j) {\n"
  "      const int sk = j % kKvStages, sv = j % kKvStages;\n"
  "      KvTile t = { -1, false, 3 };\n"
  "      const bool have = kv_next(it, p, qt, b, h, t);\n"
  "      if (j >= kKvStages) {            // K_j-kKvStages released\n"
  "        mbar_wait(smem_u32(&empty_k[sk]), ((j / kKvStages) + 1) & 1);\n"
  "        if (tma) iter_sync();\n"
  "      }\n"
  "      if (ptid == 0) { slot[sk].tile = have ? t.tile : -1; slot[sk].full = t.full; slot[sk].edge = t.edge; }\n"
  "      if constexpr (kColStage) {       // slot j % 3: the compute warps are past tile j-3\n"
  "        if (have && !t.full && ptid < kBlockN) col_stage_fill(col_stage[j % 3], p, t.tile, ptid, b, h);\n"
  "        if (tma && ptid < kBlockN) mbar_arrive(smem_u32(&full_k[sk]));\n"
  "      }\n"
  "      if (!have) break;\n"
  "      if (j == 0 && qtma && ptid == 0) tma_q(sQ, p.qmap, smem_u32(&full_q), qt, h, b, p);\n"
  "      if (j == 0 && !qtma) {\n"
  "        load_tile<kBlockM, kChunksQK, kProducerWarps * 32, 4>(sQ, gQ, p.q_stride[2], [&](int r) { return q_token(qt, r); }, ptid);\n"
  "        cp_async_commit();\n"
  "      }\n"
  "      if (tma) {\n"
  "        if (ptid == 0) tma_kv(sK + sk * kStageK, p.kmap, smem_u32(&full_k[sk]), kHeadDim, t.tile, hk, b, p);\n"
  "        if (j == 0 && !qtma) {\n"
  "          cp_async_wait<0>();\n"
  "          signal(smem_u32(&full_q));\n"
  "        }\n"
  "        if (!kVLag) tma_v(j, t.tile);\n"
  "        else if (j > 0) tma_v(j - 1, prev);\n"
  "        prev = t.tile;\n"
  "        continue;\n"
  "      }\n"
  "      load_tile<kBlockN, kChunksQK, kProducerWarps * 32, 4>(sK + sk * kStageK, gK, p.k_stride[2], [&](int r) { return kv_token(t.tile, r, seq_k); }, ptid);\n"
  "      cp_async_commit();\n"
  "      if (j > 0) {                    // V_j-1, then K_j (the consumers' next step needs both)\n"
  "        cp_async_wait<1>();\n"
  "        signal(smem_u32(&full_v[(j - 1) % kKvStages]));\n"
  "      }\n"
  "      cp_async_wait<0>();\n"
  "      if (j == 0) signal(smem_u32(&full_q));\n"
  "      signal(smem_u32(&full_k[sk]));\n"
  "      if (j >= kKvStages) mbar_wait(smem_u32(&empty_v[sv]), ((j / kKvStages) + 1) & 1);\n"
  "      load_tile<kBlockN, kChunksV, kProducerWarps * 32, 4>(sV + sv * kStageV, gV, p.v_stride[2], [&](int r) { return kv_token(t.tile, r, seq_k); }, ptid);\n"
  "      cp_async_commit();\n"
  "    }\n"
  "    if (kVLag && tma && j > 0) tma_v(j - 1, prev);\n"
  "    if (!tma) {\n"
  "      cp_async_wait<0>();\n"
  "      if (j > 0) signal(smem_u32(&full_v[(j - 1) % kKvStages]));\n"
  "    }\n"
  "    if (!tma || ptid == 0) mbar_arrive(smem_u32(&full_k[j % kKvStages]));   // its slot says: no more tiles\n"
  "    return;\n"
  "  }\n"
  "\n"
  "  // the compute warps: step j issues S = Q K_j^T and O += P_j-1 V_j-1, then runs\n"
  "  // the score and softmax of tile j under the P V\n"
  "  if constexpr (kRegsConsumer > kRegsEntry) setmaxnreg_inc<kRegsConsumer>();\n"
  "  float s[kAtomsM][kAtomsN][4], alpha[kAtomsM][2];\n"
  "  u32 pa[kBlockN / 16][4];\n"
  "  int j = 0;                          // the index of tile cur\n"
  "  for (;; ++j) {\n"
  "    const int sk = j % kKvStages, pv = (j + kKvStages - 1) % kKvStages;   // K_j, V_j-1\n"
  "    mbar_wait(smem_u32(&full_k[sk]), (j / kKvStages) & 1);   // K_j landed\n"
  "    const KvTile cur = slot[sk];\n"
  "    if (cur.tile < 0) break;\n"
  "    if (j == 0) mbar_wait(smem_u32(&full_q), 0);\n"
  "    issue_qk(s, sQ, sK + sk * kStageK, warp);\n"
  "    if (j > 0) {\n"
  "      mbar_wait(smem_u32(&full_v[pv]), ((j - 1) / kKvStages) & 1);\n"
  "      issue_pv(acc_o, pa, sV + pv * kStageV);\n"
  "      wgmma_wait<1>();                // S of tile j is done; P_j-1 V_j-1 may run on\n"
  "    } else\n"
  "      wgmma_wait<0>();\n"
  "    __syncwarp();                     // every lane read slot[sk] (racecheck)\n"
  "    if (lane == 0) mbar_arrive(smem_u32(&empty_k[sk]));\n"
  "    fence_acc(s);\n"
  "    const bool raw = rg.raw && tile_raw(p, b, h, cur.tile);   // the softmax scales <q, k> (kScoreRaw)\n"
  "    score_tile(s, p, qt, cur, q_tok, b, h, lane, scale, rg, raw, &col_stage[kColStage ? j % 3 : 0]);\n"
  "    softmax_tile(s, row_max, row_sum, alpha, scale_log2, rg, raw);\n"
  "    wgmma_wait<0>();\n"
  "    if (j > 0 && lane == 0) mbar_arrive(smem_u32(&empty_v[pv]));\n"
  "    fence_acc(acc_o);\n"
  "    rescale_o(acc_o, alpha);          // step 0: O = 0 and alpha = 0\n"
  "    pack_p(pa, s);\n"
  "  }\n"
  "  if (j > 0) {                        // the last tile's P V\n"
  "    const int pv = (j - 1) % kKvStages;\n"
  "    mbar_wait(smem_u32(&full_v[pv]), ((j - 1) / kKvStages) & 1);\n"
  "    issue_pv(acc_o, pa, sV + pv * kStageV);\n"
  "    wgmma_wait<0>();\n"
  "    fence_acc(acc_o);\n"
  "  }\n"
  "\n";

/*
** The warp-specialised kernel on a persistent grid (CudaConfig.persist): the
** grid is the CTAs the SMs hold (cuda_launch). A CTA walks work items
** w = blockIdx.x + i * gridDim.x (q tiles fastest, heavy first with
** kQTileRev, then heads, then batches; cuda_launch keeps w within int);
** Q has two buffers (item i in buffer i % 2, released by the compute warps
** after its epilogue, which stages O there), so the producer loads the next
** item's Q, K and V while the compute warps finish this one. The K slots
** (j) run on across items, an item ending in a slot with tile -1 that the
** compute warps release like any other; V tiles (vi) count real tiles only.
** Both sides decode the same items and skip the same empty q tiles.
*/
static const char *const kernel_persist =
  "\n// ---- the kernel, persistent: a CTA walks work items (q tile, query head, batch)\n"
  "extern \"C\" __global__ void __launch_bounds__(kCtaThreads, kMinBlocks) attnc_fwd(const __grid_constant__ Params p) {\n"
  "  extern __shared__ __align__(128) unsigned char smem[];\n"
  "  const u32 sbase = tile_base(smem);\n"
  "  const u32 sQ0 = sbase + kSmemQ, sK = sbase + kSmemK, sV = sbase + kSmemV;\n"
  "  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;\n"
  "  const int seq_q = (int)p.seq_q, seq_k = (int)p.seq_k;\n"
  "  (void)seq_k;\n"
  "  const float scale = (float)p.scale, scale_log2 = (float)p.softmax_scale_log2;\n"
  "  const int nq = (seq_q + kBlockM - 1) / kBlockM, nh = (int)p.heads_q;   // a 1-D q order\n"
  "  const int items = nq * nh * (int)p.batch;\n"
  "  auto item = [&](int w, int &qi, int &h, int &b) {\n"
  "    const int u = w % nq;\n"
  "    qi = kQTileRev ? nq - 1 - u : u;\n"
  "    h = (w / nq) % nh;\n"
  "    b = w / (nq * nh);\n"
  "  };\n"
  "  __shared__ __align__(8) u64 full_q[2], empty_q[2], full_k[kKvStages], full_v[kKvStages], empty_k[kKvStages], empty_v[kKvStages];\n"
  "  __shared__ KvTile slot[kKvStages];\n"
  "  __shared__ ColStage col_stage[kColStage ? 3 : 1];   // a partial tile's mask columns\n"
  "  if (tid == 0) {\n"
  "#pragma unroll\n"
  "    for (int i = 0; i < 2; ++i) {\n"
  "      mbar_init(smem_u32(&full_q[i]), 1);\n"
  "      mbar_init(smem_u32(&empty_q[i]), kWarps);\n"
  "    }\n"
  "#pragma unroll\n"
  "    for (int st = 0; st < kKvStages; ++st) {\n"
  "      mbar_init(smem_u32(&full_k[st]), 1 + (kColStage ? kBlockN : 0));\n"
  "      mbar_init(smem_u32(&empty_k[st]), kWarps);\n"
  "      mbar_init(smem_u32(&full_v[st]), 1);\n"
  "      mbar_init(smem_u32(&empty_v[st]), kWarps);\n"
  "    }\n"
  "  }\n"
  "  if constexpr (kSumMma) fill_ones(sV, tid);   // the chunk of ones behind each V buffer, once\n"
  "  __syncthreads();                    // the last CTA-wide barrier\n"
  "\n"
  "  if (warp >= kWarps) {               // the producer warpgroup: Q, K and V by TMA\n"
  "    if constexpr (kRegsProducer < kRegsEntry) setmaxnreg_dec<kRegsProducer>();\n"
  "    const int ptid = tid - kThreads;\n"
  "    int j = 0, vi = 0, n_items = 0;   // K slots, V tiles and items so far\n"
  "    for (int w = blockIdx.x; w < items; w += gridDim.x) {\n"
  "      int qi, h, b;\n"
  "      item(w, qi, h, b);\n"
  "      const int hk = h / (int)(p.heads_q / p.heads_kv);\n"
  "      QTile qt;\n"
  "      if (!q_tile_begin(qt, p, b, h, qi)) continue;\n"
  "      const int qs = n_items & 1;\n"
  "      if (n_items >= 2) {              // Q buffer qs: item n_items-2's epilogue is done\n"
  "        mbar_wait(smem_u32(&empty_q[qs]), ((n_items / 2) + 1) & 1);\n"
  "        iter_sync();\n"
  "      }\n"
  "      if (ptid == 0) tma_q(sQ0 + qs * kQBytes, p.qmap, smem_u32(&full_q[qs]), qt, h, b, p);\n"
  "      ++n_items;\n"
  "      KvIter it;\n"
  "      kv_begin(it, p, qt, b, h);\n"
  "      auto tma_v = [&](int i, int tile) {   // V_i, once V_i-kKvStages is released\n"
  "        const int sv = i % kKvStages;\n"
  "        if (i >= kKvStages) { mbar_wait(smem_u32(&empty_v[sv]), ((i / kKvStages) + 1) & 1); iter_sync(); }\n"
  "        if (ptid == 0) tma_kv(sV + sv * kStageV, p.vmap, smem_u32(&full_v[sv]), kHeadDimV, tile, hk, b, p);\n"
  "      };\n"
  "      int prev = -1;                   // the item's previous tile (kVLag)\n"
  "      for (;; ++j) {\n"
  "        const int sk = j % kKvStages;\n"
  "        KvTile t = { -1, false, 3 };\n"
  "        const bool have = kv_next(it, p, qt, b, h, t);\n"
  "        if (j >= kKvStages) {          // K slot j-kKvStages released\n"
  "          mbar_wait(smem_u32(&empty_k[sk]), ((j / kKvStages) + 1) & 1);\n"
  "          iter_sync();\n"
  "        }\n"
  "        if (ptid == 0) { slot[sk].tile = have ? t.tile : -1; slot[sk].full = t.full; slot[sk].edge = t.edge; }\n"
  "        if constexpr (kColStage) {\n"
  "          if (have && !t.full && ptid < kBlockN) col_stage_fill(col_stage[j % 3], p, t.tile, ptid, b, h);\n"
  "          if (ptid < kBlockN) mbar_arrive(smem_u32(&full_k[sk]));\n"
  "        }\n"
  "        if (!have) {                   // the item's end: its last V, then the slot says so\n"
  "          if (kVLag && prev >= 0) tma_v(vi++, prev);\n"
  "          if (ptid == 0) mbar_arrive(smem_u32(&full_k[sk]));\n"
  "          ++j;\n"
  "          break;\n"
  "        }\n"
  "        if (ptid == 0) tma_kv(sK + sk * kStageK, p.kmap, smem_u32(&full_k[sk]), kHeadDim, t.tile, hk, b, p);\n"
  "        if (!kVLag) tma_v(vi++, t.tile);\n"
  "        else if (prev >= 0) tma_v(vi++, prev);\n"
  "        prev = t.tile;\n"
  "      }\n"
  "    }\n"
  "    return;\n"
  "  }\n"
  "\n"
  "  // the compute warps: kernel_ws's steps, item after item\n"
  "  if constexpr (kRegsConsumer > kRegsEntry) setmaxnreg_inc<kRegsConsumer>();\n"
  "  int j = 0, vi = 0, n_items = 0;\n"
  "  for (int w = blockIdx.x; w < items; w += gridDim.x) {\n"
  "    int q_tile, h, b;\n"
  "    item(w, q_tile, h, b);\n"
  "    QTile qt;\n"
  "    if (!q_tile_begin(qt, p, b, h, q_tile)) continue;\n"
  "    const int qs = n_items & 1, q_phase = (n_items / 2) & 1;\n"
  "    ++n_items;\n"
  "    const u32 sQ = sQ0 + qs * kQBytes;   // this item's Q, then its staged O\n"
  ;

static const char *const kernel_persist_loop =
  "    float s[kAtomsM][kAtomsN][4], alpha[kAtomsM][2];\n"
  "    u32 pa[kBlockN / 16][4];\n"
  "    mbar_wait(smem_u32(&full_q[qs]), q_phase);   // Q landed\n"
  "    int n = 0;                        // the item's tiles so far\n"
  "    for (;; ++j) {\n"
  "      const int sk = j % kKvStages, pv = (vi + kKvStages - 1) % kKvStages;   // K_j, V_vi-1\n"
  "      mbar_wait(smem_u32(&full_k[sk]), (j / kKvStages) & 1);\n"
  "      const KvTile cur = slot[sk];\n"
  "      __syncwarp();                   // every lane read slot[sk]\n"
  "      if (cur.tile < 0) {             // the item's end: release its slot\n"
  "        if (lane == 0) mbar_arrive(smem_u32(&empty_k[sk]));\n"
  "        ++j;\n"
  "        break;\n"
  "      }\n"
  "      issue_qk(s, sQ, sK + sk * kStageK, warp);\n"
  "      if (n > 0) {\n"
  "        mbar_wait(smem_u32(&full_v[pv]), ((vi - 1) / kKvStages) & 1);\n"
  "        issue_pv(acc_o, pa, sV + pv * kStageV);\n"
  "        wgmma_wait<1>();\n"
  "      } else\n"
  "        wgmma_wait<0>();\n"
  "      if (lane == 0) mbar_arrive(smem_u32(&empty_k[sk]));\n"
  "      fence_acc(s);\n"
  "      const bool raw = rg.raw && tile_raw(p, b, h, cur.tile);   // the softmax scales <q, k> (kScoreRaw)\n"
  "      score_tile(s, p, qt, cur, q_tok, b, h, lane, scale, rg, raw, &col_stage[kColStage ? j % 3 : 0]);\n"
  "      softmax_tile(s, row_max, row_sum, alpha, scale_log2, rg, raw);\n"
  "      wgmma_wait<0>();\n"
  "      if (n > 0 && lane == 0) mbar_arrive(smem_u32(&empty_v[pv]));\n"
  "      fence_acc(acc_o);\n"
  "      rescale_o(acc_o, alpha);\n"
  "      pack_p(pa, s);\n"
  "      ++n;\n"
  "      ++vi;\n"
  "    }\n"
  "    if (n > 0) {                      // the last tile's P V\n"
  "      const int pv = (vi - 1) % kKvStages;\n"
  "      mbar_wait(smem_u32(&full_v[pv]), ((vi - 1) / kKvStages) & 1);\n"
  "      issue_pv(acc_o, pa, sV + pv * kStageV);\n"
  "      wgmma_wait<0>();\n"
  "      fence_acc(acc_o);\n"
  "      if (lane == 0) mbar_arrive(smem_u32(&empty_v[pv]));\n"
  "    }\n";

/* the persistent kernel's item end: Q buffer qs (and the O staged in it) is free */
static const char *const kernel_persist_end =
  "    __syncwarp();\n"
  "    smem_to_async_proxy();            // the staged O's accesses before the next Q's TMA\n"
  "    if (lane == 0) mbar_arrive(smem_u32(&empty_q[qs]));\n"
  "  }\n"
  "}\n";

/*
** The epilogue. O goes out through shared memory where it fits in the Q
** buffer (Dv <= D, whole 128-byte lines): a lane holds 4 bytes of a row
** per n8 atom, so stores straight from registers fill 16 of a sector's 32
** bytes (ncu on Swin and the D=64 window); staged, each lane stores whole
** 16-byte chunks of a row. A warp uses only its own rows of the Q buffer, in
** Q's layout, so no other warp can still be reading them; its last Q K
** product is done, and the wait retires any Q copy still in flight (a q tile
** that visits no kv tile).
*/
static const char *const kernel_epilogue =
  "  // O = acc / l; LSE = ln(sum exp(s')) = (m * scale_log2 + log2 l) * ln 2 (+ the\n"
  "  // row's part of the scores that score_tile left out).\n"
  "  // A row with no allowed key: O = 0, LSE = -inf.\n"
  "  constexpr bool kStageO = kHeadDimV <= kHeadDim && kHeadDimV % 64 == 0 && kHeadDim % 64 == 0;\n"
  "  constexpr int kChunksO = kHeadDimV / 8;     // 16-byte chunks per O row\n"
  "  if constexpr (kStageO) cp_async_wait<0>();\n"
  "#pragma unroll\n"
  "  for (int mi = 0; mi < kAtomsM; ++mi)\n"
  "#pragma unroll\n"
  "    for (int r = 0; r < 2; ++r) {\n"
  "      float l = row_sum[mi][r];\n"
  "      if constexpr (kSumMma) l = acc_o[mi][kAtomsO][2 * r];   // P times ones: the whole row's\n"
  "      else {\n"
  "        l += __shfl_xor_sync(0xffffffffu, l, 1);\n"
  "        l += __shfl_xor_sync(0xffffffffu, l, 2);\n"
  "      }\n"
  "      const int q = q_tok[mi][r];\n"
  "      // the row's part of the scores score_tile left out (0 without a score split):\n"
  "      // where it is not finite, so is every score of the row (-inf: O = 0)\n"
  "      const float rl = score_lse(p, qt, b, h, q);\n"
  "      const float inv = rl - rl != 0.0f ? (rl == -kInf ? 0.0f : rl - rl) : l > 0.0f ? 1.0f / l : 0.0f;\n"
  "      if constexpr (kStageO) {\n"
  "        const int row = warp * kWarpM + mi * 16 + r * 8 + lane / 4;\n"
  "#pragma unroll\n"
  "        for (int nd = 0; nd < kAtomsO; ++nd)\n"
  "          asm volatile(\"st.shared.u32 [%0], %1;\\n\" :: \"r\"(tile_addr<kBlockM, kChunksO>(sQ, row, nd) + (lane % 4) * 4),\n"
  "                       \"r\"(pack2(acc_o[mi][nd][2 * r] * inv, acc_o[mi][nd][2 * r + 1] * inv)) : \"memory\");\n"
  "      }\n"
  "      if (q < 0) continue;\n"
  "      if constexpr (!kStageO) {\n"
  "        u16 *o_row = (u16 *)p.o + b * p.o_stride[0] + h * p.o_stride[1] + (i64)q * p.o_stride[2];\n"
  "#pragma unroll\n"
  "        for (int nd = 0; nd < kAtomsO; ++nd)\n"
  "          *(u32 *)(o_row + nd * 8 + (lane % 4) * 2) = pack2(acc_o[mi][nd][2 * r] * inv, acc_o[mi][nd][2 * r + 1] * inv);\n"
  "      }\n"
  "      if (p.lse && lane % 4 == 0)\n"
  "        ((float *)p.lse)[b * p.lse_stride[0] + h * p.lse_stride[1] + (i64)q * p.lse_stride[2]] =\n"
  "            l > 0.0f ? (row_max[mi][r] * scale_log2 + log2f(l)) * kLn2 + rl : -kInf;\n"
  "    }\n"
  "  if constexpr (kStageO) {\n"
  "    __syncwarp();\n"
  "    u16 *o_head = (u16 *)p.o + b * p.o_stride[0] + h * p.o_stride[1];\n"
  "#pragma unroll\n"
  "    for (int i = 0; i < kWarpM * kChunksO / 32; ++i) {\n"
  "      const int idx = i * 32 + lane, row = warp * kWarpM + idx / kChunksO, c = idx % kChunksO;\n"
  "      const int q = q_token(qt, row);\n"
  "      uint4 v;\n"
  "      asm volatile(\"ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];\\n\"\n"
  "                   : \"=r\"(v.x), \"=r\"(v.y), \"=r\"(v.z), \"=r\"(v.w) : \"r\"(tile_addr<kBlockM, kChunksO>(sQ, row, c)) : \"memory\");\n"
  "      if (q >= 0) *(uint4 *)(o_head + (i64)q * p.o_stride[2] + c * 8) = v;\n"
  "    }\n"
  "  }\n";

/* bits per row of the partial-tile mask: 2 per n8 atom of the kv tile */
static int cfg_block_n_bits(const EmitPlan *ep) { return ep->cfg->block_n / 8 * 2; }


/* what partial tiles run for the mask, in words (attnc explain) */
void cuda_score_summary(const IrPattern *p, char *buf, size_t n) {
  buf[0] = 0;
  if (p->score < 0) return;
  uint16_t *dep = calloc((size_t)p->nnodes, sizeof *dep);
  if (!dep) return;
  pattern_deps(p, dep);
  ScoreSplit ss;
  score_split(p, dep, &ss);
  free(dep);
  if (!ss.on) {
    snprintf(buf, n, "score(s, b, h, q, k) an element");
    return;
  }
  snprintf(buf, n, "split: one FMA an element, s * scale%s + a column's value (%d distance term%s c * (k - q), "
           "%d term%s of k, once a column); %d term%s of q alone or of neither, added to the LSE",
           ss.gain >= 0 || ss.gsign < 0 ? " * g (g of q alone or of neither, once a row)" : "",
           ss.ncoef, ss.ncoef == 1 ? "" : "s", ss.ncol, ss.ncol == 1 ? "" : "s",
           ss.nrow, ss.nrow == 1 ? "" : "s");
}

attnc_status cuda_mask_summary(const IrPattern *p, const Plan *plan, const CudaConfig *cfg,
                               char *buf, size_t n, Diag *d) {
  EmitPlan ep;
  attnc_status st = emit_plan_init(&ep, p, plan, cfg, d);
  if (st) return st;
  Masks m;
  st = masks_init(&ep, &m, d);
  const MaskSplit ms = m.all;
  if (!st) {
    if (ep.nvariants > 1)
      snprintf(buf, n, "%d head variants: each variant's mask per pair, in a loop over the columns",
               ep.nvariants);
    else if (ms.root < 0)
      snprintf(buf, n, "none (every pair is allowed; partial tiles only mask padding)");
    else if (m.edges)
      snprintf(buf, n, "split: %d per row, %d per column, %d per pair (statements; a load 8); a tile past"
               " one edge of the band: that edge's bounds alone (%d / %d per pair), columns unrolled;"
               " past both: in a loop over the columns", ms.nrow, ms.ncol, ms.npair, m.lo.npair, m.hi.npair);
    else
      snprintf(buf, n, "split: %d per row, %d per column, %d per pair (statements; a load 8); %s",
               ms.nrow, ms.ncol, ms.npair,
               m.unrolled ? "columns unrolled"
               : m.heavy ? "in a loop over the columns (unrolled code would be too big)"
                         : "in a loop over the columns (partial tiles are rare)");
  }
  masks_free(&m);
  emit_plan_free(&ep);
  return st;
}

/*
** mask_tile: the split mask with every column unrolled, for partial tiles
** without padding (kv_tile_whole: all but the ragged last ones): row values
** once per tile, column values once per column, and the pair code writes -inf
** straight into s, with no bounds checks (3.5 instructions an element on the
** sliding window, against 5 with them). Ragged tiles run score_tile's loop,
** which NVRTC compiles in a fraction of the time.
*/
static void emit_mask_tile(Out *o, const char *v) {
  out_printf(o,
    "\n// the mask of a partial tile without padding, columns unrolled\n"
    "ATTNC_DEVICE void mask_tile%s(float (&s)[kAtomsM][kAtomsN][4], const Params &p, const KvTile &t,\n"
    "                            const int (&q_tok)[kAtomsM][2], int b, int h, int lane,\n"
    "                            const ColStage *cs) {\n"
    "  (void)cs;\n"
    "  const int seq_q = (int)p.seq_q, seq_k = (int)p.seq_k;\n"
    "  MaskRow%s row[kAtomsM][2];\n"
    "#pragma unroll\n"
    "  for (int mi = 0; mi < kAtomsM; ++mi)\n"
    "#pragma unroll\n"
    "    for (int r = 0; r < 2; ++r) row[mi][r] = mask_row%s(p, b, h, attnc_max(q_tok[mi][r], 0), seq_q, seq_k);\n", v, v, v);
  out_printf(o,
    "#pragma unroll\n"
    "  for (int j = 0; j < kAtomsN * 2; ++j) {\n"
    "    int k, kc[kKvRank];\n"
    "    // the lane's part in known low bits, so a box's coordinates split into a\n"
    "    // per-lane and a per-column constant part\n"
    "    const int pos = (j >> 1) * 8 + (((lane & 3) << 1) | (j & 1));\n"
    "    kv_place<true>(t.tile, pos, seq_k, k, kc);\n"
    "    MaskCol%s col;\n"
    "    %scol = mask_col%s(p, b, h, k, kc, seq_q, seq_k);\n"
    "#pragma unroll\n"
    "    for (int mi = 0; mi < kAtomsM; ++mi)\n"
    "#pragma unroll\n"
    "      for (int r = 0; r < 2; ++r) {\n"
    "        // a padding row (q_tok < 0) is never stored: it runs as token 0\n"
    "        const int q = attnc_max(q_tok[mi][r], 0);\n"
    "        if (!mask_pair%s(p, b, h, q, k, seq_q, seq_k, row[mi][r], col))\n"
    "          s[mi][j >> 1][2 * r + (j & 1)] = -kInf;\n"
    "      }\n"
    "  }\n"
    "}\n", v, strcmp(v, "0") ? "" : "if constexpr (kColStage) col = cs->c[pos];   // the producer's\n    else ", v, v);
}

/* score_tile: the score modification on every tile, the mask on partial ones */
/*
** Column staging: in a kernel with a producer warpgroup whose partial tiles
** run the unrolled split mask, the producer computes the mask's column
** values of each partial kv tile (MaskCol0: the keys' document ids, say)
** into a shared slot, one thread a column, and the compute warps read them
** there. Without it every column is computed by the 32 compute threads
** that hold it (8 lanes of each of 4 warps), each a bounds-checked global
** load for documents. Three slots: the producer fills tile j's once K_j-2
** is released, which the compute warps do after S_j-2, before they read
** tile j-2's slot, and after they are done with tile j-3's. With TMA, the
** filling threads arrive on full_k too (it counts them).
*/
static bool col_stage(const EmitPlan *ep, const Masks *m) {
  const MaskSplit *ms = &m->all;
  if (!ep->cfg->ws || ep->nvariants != 1 || !m->unrolled || m->edges || ms->root < 0 ||
      ep->cfg->block_n > 128)
    return false;
  /* only column parts that read an input: coordinate arithmetic costs less
     than the shared-memory round trip */
  for (int i = 0; i <= ms->root; i++) {
    int op = ep->pat->nodes[i].op;
    bool col = ms->cls[i] == SPLIT_COL || (ms->cls[i] == SPLIT_SHARED && (ms->use[i] & 1 << SPLIT_COL));
    if (col && (op == IR_LOAD || op == IR_CONTAINS)) return true;
  }
  return false;
}

static void emit_col_stage(Out *o, const EmitPlan *ep, const Masks *m) {
  bool on = col_stage(ep, m);
  out_printf(o, "\n// column staging: the producer computes a partial tile's mask column values\n"
                "static constexpr bool kColStage = %s;\n", on ? "true" : "false");
  if (!on) {
    /* mask_tile0 names cs->c in a discarded branch, which must still compile */
    out_puts(o, m->all.root >= 0 ? "struct ColStage { MaskCol0 c[1]; };\n" : "struct ColStage { int unused; };\n");
    out_puts(o, "ATTNC_DEVICE void col_stage_fill(ColStage &cs, const Params &p, int tile, int pos, int b, int h) {\n"
                "  (void)cs; (void)p; (void)tile; (void)pos; (void)b; (void)h;\n}\n");
    return;
  }
  out_puts(o, "struct ColStage { MaskCol0 c[kBlockN]; };\n"
              "ATTNC_DEVICE void col_stage_fill(ColStage &cs, const Params &p, int tile, int pos, int b, int h) {\n"
              "  const int seq_q = (int)p.seq_q, seq_k = (int)p.seq_k;\n"
              "  int k, kc[kKvRank];\n"
              "  kv_place<true>(tile, pos, seq_k, k, kc);\n"
              "  cs.c[pos] = mask_col0(p, b, h, k, kc, seq_q, seq_k);\n"
              "}\n");
}

static void emit_score_tile(Out *o, const IrPattern *p, const EmitPlan *ep, const Masks *m,
                            const ScoreSplit *ss) {
  emit_col_stage(o, ep, m);
  /* with edges, the rare partial tiles past both edges run the loop below
     (a third unrolled copy cost 10 % more NVRTC time on the dilated window) */
  if (m->unrolled && !m->edges) emit_mask_tile(o, "0");
  if (m->edges) {
    emit_mask_tile(o, "0lo");
    emit_mask_tile(o, "0hi");
  }
  out_puts(o,
    "\n// Scores of one tile in the units the softmax exponentiates. With a score\n"
    "// modification: x = score(scale * <q, k>) (scale_log2 = log2 e); without:\n"
    "// x = <q, k> (scale_log2 = scale * log2 e, folded into the exponent). A partial\n"
    "// tile then sets x = -inf where the pair is padding or the mask is false; a\n"
    "// full tile runs no mask code. The mask runs in a loop over this lane's\n"
    "// columns (one copy of its code per row, not per element) into a bit set,\n"
    "// unless mask_tile (unrolled) is there and the tile has no padding.\n"
    "ATTNC_DEVICE void score_tile(float (&s)[kAtomsM][kAtomsN][4], const Params &p, const QTile &qt,\n"
    "                             const KvTile &t, const int (&q_tok)[kAtomsM][2], int b, int h,\n"
    "                             int lane, float scale, const RowGain &rg, bool raw,\n"
    "                             const ColStage *cs = nullptr) {\n"
    "  (void)cs; (void)rg; (void)raw;\n"
    "  const int seq_q = (int)p.seq_q, seq_k = (int)p.seq_k;\n");
  if (p->score >= 0 && ss->on) {
    out_puts(o, "  if (!raw) {   // else the softmax scales <q, k> (kScoreRaw: rg.raw && tile_raw)\n");
    out_puts(o, "  // the score split: x = s * scale * g(q) + col per element, col = C(k) + coef * (k - q0)\n"
                "  const float (&sscale)[kAtomsM][2] = rg.g;   // scale * g(q) (row_gain)\n");
    if (ss->ncoef)
      out_puts(o,
        "  const int q0 = attnc_max(q_token(qt, 0), 0);\n"
        "  const float coef = score_coef(p, b, h, seq_q, seq_k);\n"
        "  constexpr bool kLine = kKvRank == 1 && kKvDil == 1;   // tokens of a tile one apart\n"
        "  float base = 0.0f;\n"
        "  if constexpr (kLine) {\n"
        "    int k0;\n"
        "    kv_place<true>(t.tile, (lane % 4) * 2, seq_k, k0);\n"
        "    base = coef * (float)(k0 - q0);\n"
        "  }\n");
    out_puts(o,
      "#pragma unroll\n"
      "  for (int ni = 0; ni < kAtomsN; ++ni)\n"
      "#pragma unroll\n"
      "    for (int e = 0; e < 2; ++e) {   // column ni*8 + (lane%4)*2 + e: elements e, e + 2\n"
      "      const int pos = ni * 8 + (lane % 4) * 2 + e;\n"
      "      float col = 0.0f;\n");
    if (ss->ncoef)
      out_puts(o,
        "      if constexpr (kLine) col = fmaf(coef, (float)(ni * 8 + e), base);\n"
        "      else {\n"
        "        int k;\n"
        "        kv_place<true>(t.tile, pos, seq_k, k);\n"
        "        col = coef * (float)(k - q0);\n"
        "      }\n");
    if (ss->ncol)
      out_puts(o, "      col += score_col(p, b, h, kv_token(t.tile, pos, seq_k), seq_q, seq_k);\n");
    out_puts(o,
      "      (void)pos;\n"
      "#pragma unroll\n"
      "      for (int mi = 0; mi < kAtomsM; ++mi) {\n"
      "        s[mi][ni][e] = fmaf(s[mi][ni][e], sscale[mi][0], col);\n"
      "        s[mi][ni][e + 2] = fmaf(s[mi][ni][e + 2], sscale[mi][1], col);\n"
      "      }\n"
      "    }\n"
      "  }\n");
  } else if (p->score >= 0)
    out_puts(o,
      "#pragma unroll\n"
      "  for (int mi = 0; mi < kAtomsM; ++mi)\n"
      "#pragma unroll\n"
      "    for (int ni = 0; ni < kAtomsN; ++ni)\n"
      "#pragma unroll\n"
      "      for (int e = 0; e < 4; ++e) {   // column ni*8 + (lane%4)*2 + e%2\n"
      "        const int k = kv_token(t.tile, ni * 8 + (lane % 4) * 2 + e % 2, seq_k);\n"
      "        s[mi][ni][e] = pattern_score(p, s[mi][ni][e] * scale, b, h, q_tok[mi][e / 2], k, seq_q, seq_k);\n"
      "      }\n");
  out_puts(o, "  if (t.full) return;\n");
  if (m->unrolled)
    out_puts(o, m->edges ? "  if (kv_tile_whole(t.tile, seq_k)) {   // else (ragged, or past both edges) the loop below\n"
                           "    if (t.edge == 1) { mask_tile0lo(s, p, t, q_tok, b, h, lane, cs); return; }\n"
                           "    if (t.edge == 2) { mask_tile0hi(s, p, t, q_tok, b, h, lane, cs); return; }\n"
                           "  }\n"
                         : "  if (kv_tile_whole(t.tile, seq_k)) {   // else (ragged) the loop below\n"
                           "    mask_tile0(s, p, t, q_tok, b, h, lane, cs);\n"
                           "    return;\n"
                           "  }\n");
  if (ep->nvariants > 1) out_puts(o, "  const int variant = qt.variant;\n");
  /* Columns outer (not unrolled: one copy of the mask code per row), rows
  ** inner (unrolled): the lane's key token is computed once per column, and
  ** the q-only parts of the mask (q_tok is fixed for the tile) are hoisted
  ** out of the loop by the compiler. */
  const char *bits = cfg_block_n_bits(ep) <= 32 ? "u32" : "u64";
  out_printf(o,
    "  static_assert(kAtomsN * 2 <= %d, \"one bit per column of a row\");\n"
    "  %s allowed[kAtomsM][2];              // bit j: column (j/2)*8 + (lane%%4)*2 + j%%2\n"
    "#pragma unroll\n"
    "  for (int mi = 0; mi < kAtomsM; ++mi) allowed[mi][0] = allowed[mi][1] = 0;\n"
    "#pragma unroll 1\n"
    "  for (int j = 0; j < kAtomsN * 2; ++j) {\n"
    "    const int k = kv_token(t.tile, (j >> 1) * 8 + (lane %% 4) * 2 + (j & 1), seq_k);\n"
    "    if (k < 0) continue;\n"
    "#pragma unroll\n"
    "    for (int mi = 0; mi < kAtomsM; ++mi)\n"
    "#pragma unroll\n"
    "      for (int r = 0; r < 2; ++r) {\n"
    "        const int q = q_tok[mi][r];\n", bits[1] == '3' ? 32 : 64, bits);
  if (ep->nvariants == 1) {
    out_printf(o, "        if (q >= 0 && pattern_mask0(p, b, h, q, k, seq_q, seq_k)) allowed[mi][r] |= (%s)1 << j;\n", bits);
  } else {
    out_puts(o, "        bool ok = q >= 0;\n");
    for (int v = 0; v < ep->nvariants; v++)
      out_printf(o, "        %sif (variant == %d) ok = ok && pattern_mask%d(p, b, h, q, k, seq_q, seq_k);\n",
                 v ? "else " : "", v, v);
    out_printf(o, "        if (ok) allowed[mi][r] |= (%s)1 << j;\n", bits);
  }
  out_puts(o,
    "      }\n"
    "  }\n"
    "#pragma unroll\n"
    "  for (int mi = 0; mi < kAtomsM; ++mi)\n"
    "#pragma unroll\n"
    "    for (int r = 0; r < 2; ++r)\n"
    "#pragma unroll\n"
    "      for (int ni = 0; ni < kAtomsN; ++ni)\n"
    "#pragma unroll\n"
    "        for (int c = 0; c < 2; ++c)\n"
    "          if (!((allowed[mi][r] >> (ni * 2 + c)) & 1)) s[mi][ni][2 * r + c] = -kInf;\n"
    "}\n");
  out_puts(o, "\n// what score_tile left out of row q's scores (the same for the whole row, so the\n"
              "// softmax does not see it): the LSE adds it\n"
              "ATTNC_DEVICE float score_lse(const Params &p, const QTile &qt, int b, int h, int q) {\n");
  if (p->score >= 0 && ss->on)
    out_printf(o, "  const int seq_q = (int)p.seq_q, seq_k = (int)p.seq_k;\n"
                  "  return score_row(p, b, h, q, seq_q, seq_k)%s;\n}\n",
               ss->ncoef ? " - score_coef(p, b, h, seq_q, seq_k) * (float)(q - attnc_max(q_token(qt, 0), 0))" : "");
  else
    out_puts(o, "  (void)p; (void)qt; (void)b; (void)h; (void)q;\n  return 0.0f;\n}\n");
}

/* ------------------------------------------------------------- driver */

attnc_status cuda_emit(const IrPattern *p, const CudaConfig *cfg, Arena *a, char **src, Diag *d) {
  return cuda_emit_plan(p, NULL, cfg, a, src, d);
}

attnc_status cuda_emit_plan(const IrPattern *p, const Plan *plan, const CudaConfig *cfg,
                            Arena *a, char **src, Diag *d) {
  *src = NULL;
  EmitPlan ep;
  attnc_status st = emit_plan_init(&ep, p, plan, cfg, d);
  if (st) return st;
  const IrPattern *pat = ep.pat;
  Out o;
  out_init(&o);
  emit_header(&o, pat, cfg, &ep);
  out_puts(&o, prelude_types);
  emit_schedule(&o, pat, plan, cfg);
  emit_params(&o, pat);
  out_puts(&o, prelude_ptx);
  emit_ptx_typed(&o, cfg->dtype == DT_F16 ? "f16" : "bf16");
  out_puts(&o, prelude_int);
  emit_inputs(&o, pat);
  Masks ms;
  st = masks_init(&ep, &ms, d);
  ScoreSplit ss;
  score_split(pat, ep.dep, &ss);
  if (!st) st = emit_pattern(&o, pat, cfg, &ep, &ms, &ss, d);
  if (!st) st = emit_plan_order_iter(&o, &ep, d);
  if (!st) {
    emit_score_tile(&o, pat, &ep, &ms, &ss);
    if (cfg->wgmma) {
      out_puts(&o, prelude_wgmma);
      out_puts(&o, tile_layout_wgmma);
      emit_wgmma_ops(&o, cfg);
    } else
      out_puts(&o, tile_layout_sync);
    out_puts(&o, tile_load);
    if (cfg->overlap) out_puts(&o, tile_load_tma);
    out_puts(&o, cfg->wgmma ? gemm_wgmma : gemm_qk_sync);
    out_puts(&o, softmax_text);
    if (!cfg->wgmma) out_puts(&o, gemm_pv_sync);
    if (cfg->ws) out_puts(&o, fill_ones_text);
    if (cuda_data_prep(&ep)) out_puts(&o, "\n#if " CUDA_PART_MACRO " != 2\n");
    if (cfg->persist) {               /* item after item: the head's rows in the loop */
      out_puts(&o, kernel_persist);
      out_puts(&o, kernel_item_init);
      out_puts(&o, kernel_persist_loop);
      out_puts(&o, kernel_epilogue);
      out_puts(&o, kernel_persist_end);
    } else {
      out_puts(&o, kernel_head);
      out_puts(&o, kernel_item_init);
      if (cfg->ws)
        out_puts(&o, kernel_ws);
      else {
        out_puts(&o, kernel_kv_start);
        out_puts(&o, cfg->overlap ? kernel_first_loads_wgmma : kernel_first_loads);
        out_puts(&o, cfg->overlap ? kernel_loop_wgmma : kernel_loop_sync);
      }
      out_puts(&o, kernel_epilogue);
      out_puts(&o, "}\n");
    }
    if (cuda_data_prep(&ep)) out_puts(&o, "#endif\n");
    emit_data_prep(&o, &ep);
  }
  if (!st && o.oom) st = diag_error(d, ATTNC_ERR_NOMEM, (Loc){ NULL, 0 }, "out of memory");
  if (!st) {
    *src = arena_alloc(a, o.len + 1);
    if (!*src) st = diag_error(d, ATTNC_ERR_NOMEM, (Loc){ NULL, 0 }, "out of memory");
    else memcpy(*src, o.buf, o.len + 1);
  }
  out_free(&o);
  masks_free(&ms);
  emit_plan_free(&ep);
  return st;
}

/*
** The wgmma tile table's big tiles pay off where most visited tiles are
** full; where more than half are partial (grid boxes: every neighborhood
** tile) the pairs wasted in them cost more than smaller tiles' overheads,
** and 64 x 64 tiles win. Since partial tiles run the split mask
** (mask_row/col/pair), windows keep the big tiles (H200, session 4 sweep in
** bench/results/gpu-h200-ws-sweep.md: sliding window D=128 128 x 128 393
** against 64 x 64 354 TFLOP/s, D=64 192 x 128 274 against 260; 2-D
** neighborhood 64 x 64 47 against 29 at 128 x 128). At D = 64, where a
** fifth or more of the 192 x 128 tiles are partial (40 % of the sliding
** window 1024's, 45 % of sinks', 6 % of the causal mask's), 64 x 64 tiles
** (one warpgroup, no producer) waste fewer pairs: sliding window 329
** TFLOP/s against 311 at 128 x 64 and 301 at 192 x 128 (two H200 sweeps of
** f4e2be2's kernels, bench/results/gpu-h200-s12-sweep.md; session 9's
** kernels, with the copy path in every TMA kernel, had 128 x 64 ahead,
** 302 against 290). Counted on one (b, h) at the plan's sequence length
** (8192 when unknown). False: the table's tile.
**
** At D = 128 the 128 x 128 kernel runs a visited pair about 1.37 times as
** fast as the 64 x 64 one even where most tiles are partial: the sliding
** window 256, 67 % of its 128 x 128 tiles partial, visits 0.83 times the
** pairs at 64 x 64 and ran 256 TFLOP/s at 128 x 128 against 224 (H200
** sweep, session 17, bench/results/gpu-h200-s17-ab.md). So there the small
** tiles are kept only where they visit at most 1 / 1.37 = 0.73 of the big
** tiles' pairs (keep_small_tiles). The threshold rests on that one case;
** the other side: the 2-D neighborhood at D = 128 visits 0.59 and keeps
** 64 x 64, which an older sweep ran at 35 TFLOP/s against 22 at 128 x 128
** (bench/results/gpu-h200-overlap-sweep.md).
*/
static bool keep_small_tiles(const CudaConfig *cfg, const Plan *big, const Plan *small,
                             int64_t seq_hint) {
  int dmax = cfg->head_dim > cfg->head_dim_v ? cfg->head_dim : cfg->head_dim_v;
  if (dmax != 128 || big->sched.bm != 128) return true;
  double vb = visited_pairs(big, seq_hint), vs = visited_pairs(small, seq_hint);
  return vb <= 0 || vs < 0 || vs <= 0.73 * vb;
}

static bool wgmma_table_refine(const IrPattern *p, const CudaConfig *cfg, const PlanOptions *opt,
                               const Plan *plan, int64_t *bm, int64_t *bn) {
  int dmax = cfg->head_dim > cfg->head_dim_v ? cfg->head_dim : cfg->head_dim_v;
  if (!cuda_wgmma_allowed(cfg->arch) || dmax % 64 || dmax > 128 || !plan_tiles_static(plan) ||
      (opt->pin.bm <= 64 && opt->pin.bn <= 64))
    return false;
  double part = partial_fraction(plan, opt->Sq);
  if (part <= 0.5 && (plan->sched.bm != 192 || part < 0.2)) return false;
  *bm = *bn = 64;
  return true;
}

attnc_status cuda_plan(const IrPattern *p, CudaConfig *cfg, Arena *a, Plan **plan, Diag *d) {
  *plan = NULL;
  bool user_tile = cfg->block_m > 0 && cfg->block_n > 0;
  attnc_status st = cuda_config_finish(p, cfg, d);
  if (st) return st;
  PlanOptions opt;
  memset(&opt, 0, sizeof opt);
  if (user_tile) {                /* the user's tile sizes are kept */
    opt.pin.bm = cfg->block_m;
    opt.pin.bn = cfg->block_n;
    opt.pin.pin_tile = true;
  }
  if (cfg->raster) {
    opt.pin.raster = true;
    opt.pin.pin_order = true;
  }
  opt.Sq = opt.Sk = cfg->seq_hint;
  cuda_plan_options_for(p, cfg, &opt);
  st = plan_build(a, p, &opt, NULL, plan, d);
  /* kv tiles found from data (documents), D other than 128: 64 x 64 tiles waste
     fewer pairs at the ranges' edges. At D = 128 the plan's 128 x 128
     tiles: with column staging and lazy rescaling they gain on documents
     of 64-2048 tokens (H200 sweep, session 13: 381 against 354 TFLOP/s at
     16384 tokens, 401 against 351 at 65536) and lose on packed short ones
     (32-512 tokens: 173 against 191; a schedule of 64 x 64 keeps those).
     Before those two, 64 x 64 was kept (session 12: 128 x 128 351 against
     337 at 65536 tokens, but 142 against 178 on short documents). */
  bool data_iter = !st && (*plan)->nvariants == 1 && (*plan)->variants[0].it.kind == ITER_DATA;
  if (!st && !user_tile && cuda_wgmma_allowed(cfg->arch) && data_iter && cfg->head_dim != 128 &&
      ((*plan)->sched.bm > 64 || (*plan)->sched.bn > 64)) {
    opt.pin.bm = opt.pin.bn = 64;
    opt.pin.pin_tile = true;
    st = plan_build(a, p, &opt, NULL, plan, d);
  } else if (!st && !user_tile && wgmma_table_refine(p, cfg, &opt, *plan, &opt.pin.bm, &opt.pin.bn)) {
    Plan *big = *plan;
    st = plan_build(a, p, &opt, NULL, plan, d);
    if (!st && !keep_small_tiles(cfg, big, *plan, opt.Sq)) *plan = big;
  }
  if (st == ATTNC_ERR_ARG && p->grid_rank > 0 && !opt.pin.raster) {
    /* no tile box fits a small grid: tile it as a 1-D sequence */
    Diag d2 = { 0 };
    opt.pin.raster = true;
    opt.pin.pin_order = true;
    if ((st = plan_build(a, p, &opt, NULL, plan, &d2)) == ATTNC_OK) *d = d2;
    else st = d->status;
  }
  if (st) return st;
  return cuda_config_from_plan(*plan, cfg, d);
}

attnc_status cuda_build_source(const IrPattern *p, CudaConfig *cfg, bool use_plan, Arena *a,
                               char **src, Diag *d) {
  *src = NULL;
  const char *env = getenv("ATTNC_CUDA_PLAN");
  if (env && strcmp(env, "0") == 0) use_plan = false;
  attnc_status st;
  if (!use_plan) {
    if ((st = cuda_config_finish(p, cfg, d))) return st;
    return cuda_emit_plan(p, NULL, cfg, a, src, d);
  }
  Plan *plan;
  if ((st = cuda_plan(p, cfg, a, &plan, d))) return st;
  return cuda_emit_plan(p, plan, cfg, a, src, d);
}
