/*
** gen.c -- the attention kernel as LLVM IR, built with the LLVM C API.
**
** Layout (W = floats per vector, BM x BN tiles, q is the SIMD dimension):
**   Qt[D][BM]     Q tile transposed, times scale (and log2 e when no
**                 score modification needs natural units)
**   St[BN'][BM]   S^T = K Qt, then P^T in place      (BN' = BN rounded up
**   MK[BN][BM]    0 / -inf per pair (partial tiles)    to the row block)
**   Ot[Dv][BM]    the output accumulator, transposed
**   Mx, Lx, Al    running max (log2 units), sum, last rescale, per query
**   Mn            the running max after this kv tile (S^T's epilogue)
**   Kp, Vp        bf16 kv tiles converted to fp32
**
** Functions in the module (prefix = options.symbol or "attnc_<name>"):
**   <prefix>_work(args, w0, w1)   work items [w0, w1); an item is a
**                                 (q tile, batch, head), costliest first
**                                 (in groups of q tiles per head: work_item)
**   <prefix>_nwork(args)          the number of work items
**   <prefix>_run(args)            all of them, on the calling thread
**   <prefix>_tile_full/_partial   one kv tile (internal, always inlined):
**                                 the partial one evaluates the mask first
**                                 and returns early when it allows nothing
**
** A tile body is: (mask) -> [bf16: convert K, V] -> S^T = K Qt (register
** blocked RJ kv rows x RI q vectors, K scalars broadcast) -> online
** softmax down the kv rows (score modification, mask, max, exp2, sum) ->
** Ot = Ot * alpha + V^T P^T (RDV head-dim rows x RI q vectors). Ragged
** kv tails compute only the valid rows (row pointers clamped inside a
** block); ragged q tails pack zeros and write nothing back.
*/
#define CPU_INTERNAL
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Analysis.h>

#include "backend/cpu/cpu.h"

#define LOG2E 1.4426950408889634
#define LN2   0.6931471805599453
#define CPU_QGROUP 8          /* q tiles a thread takes per head in a row (work_item) */

/* ---------------------------------------------------------------- helpers */

LLVMValueRef cg_i64(Gen *g, int64_t v) { return LLVMConstInt(g->i64, (unsigned long long)v, 1); }
LLVMValueRef cg_i32(Gen *g, int32_t v) { return LLVMConstInt(g->i32, (unsigned long long)(int64_t)v, 1); }
LLVMValueRef cg_f32(Gen *g, double v) { return LLVMConstReal(g->f32, v); }

LLVMValueRef cg_splat(Gen *g, LLVMValueRef s) {
  LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(s), (unsigned)g->W);
  if (LLVMIsConstant(s)) {
    LLVMValueRef el[64];
    for (int i = 0; i < g->W; i++) el[i] = s;
    return LLVMConstVector(el, (unsigned)g->W);
  }
  LLVMValueRef v = LLVMBuildInsertElement(g->B, LLVMGetPoison(vt), s, cg_i32(g, 0), "");
  LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(g->i32, (unsigned)g->W));
  return LLVMBuildShuffleVector(g->B, v, LLVMGetPoison(vt), zeros, "");
}

LLVMValueRef cg_call_intr(Gen *g, const char *name, LLVMTypeRef *over, int nover,
                          LLVMValueRef *args, int nargs) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(g->M, id, over, (size_t)nover);
  LLVMTypeRef ft = LLVMIntrinsicGetType(g->C, id, over, (size_t)nover);
  return LLVMBuildCall2(g->B, ft, fn, args, (unsigned)nargs, "");
}

LLVMValueRef cg_select(Gen *g, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(g->B, c, a, b, "");
}

LLVMValueRef cg_loop_open(Gen *g, CgLoop *l, LLVMValueRef lo, LLVMValueRef hi,
                          LLVMValueRef step, int ncarry, LLVMValueRef *init, const char *name) {
  char nm[64];
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(g->B);
  snprintf(nm, sizeof nm, "%s.head", name);
  l->head = LLVMAppendBasicBlockInContext(g->C, g->fn, nm);
  snprintf(nm, sizeof nm, "%s.body", name);
  l->body = LLVMAppendBasicBlockInContext(g->C, g->fn, nm);
  snprintf(nm, sizeof nm, "%s.exit", name);
  l->exit = LLVMAppendBasicBlockInContext(g->C, g->fn, nm);
  l->step = step;
  l->ncarry = ncarry;
  LLVMBuildBr(g->B, l->head);
  LLVMPositionBuilderAtEnd(g->B, l->head);
  l->iv = LLVMBuildPhi(g->B, g->i64, name);
  LLVMAddIncoming(l->iv, &lo, &pre, 1);
  for (int i = 0; i < ncarry; i++) {
    l->carry[i] = LLVMBuildPhi(g->B, LLVMTypeOf(init[i]), "");
    LLVMAddIncoming(l->carry[i], &init[i], &pre, 1);
  }
  LLVMValueRef c = LLVMBuildICmp(g->B, LLVMIntSLT, l->iv, hi, "");
  LLVMBuildCondBr(g->B, c, l->body, l->exit);
  LLVMPositionBuilderAtEnd(g->B, l->body);
  return l->iv;
}

void cg_loop_close(Gen *g, CgLoop *l, LLVMValueRef *next) {
  LLVMValueRef nx = LLVMBuildAdd(g->B, l->iv, l->step, "");
  LLVMBasicBlockRef cur = LLVMGetInsertBlock(g->B);
  LLVMBuildBr(g->B, l->head);
  LLVMAddIncoming(l->iv, &nx, &cur, 1);
  for (int i = 0; i < l->ncarry; i++) LLVMAddIncoming(l->carry[i], &next[i], &cur, 1);
  LLVMPositionBuilderAtEnd(g->B, l->exit);
}

static LLVMValueRef add(Gen *g, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildAdd(g->B, a, b, ""); }
static LLVMValueRef mul(Gen *g, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildMul(g->B, a, b, ""); }
static LLVMValueRef smin(Gen *g, LLVMValueRef a, LLVMValueRef b) {
  return cg_select(g, LLVMBuildICmp(g->B, LLVMIntSLT, a, b, ""), a, b);
}

/* pointer to element i of a float scratch array */
static LLVMValueRef fptr(Gen *g, LLVMValueRef base, LLVMValueRef i) {
  return LLVMBuildInBoundsGEP2(g->B, g->f32, base, &i, 1, "");
}

static LLVMValueRef vload(Gen *g, LLVMValueRef base, LLVMValueRef i) {
  LLVMValueRef v = LLVMBuildLoad2(g->B, g->vf, fptr(g, base, i), "");
  LLVMSetAlignment(v, (unsigned)(4 * g->W));
  return v;
}

static void vstore(Gen *g, LLVMValueRef val, LLVMValueRef base, LLVMValueRef i) {
  LLVMValueRef s = LLVMBuildStore(g->B, val, fptr(g, base, i));
  LLVMSetAlignment(s, (unsigned)(4 * g->W));
}

static LLVMValueRef fload(Gen *g, LLVMValueRef base, LLVMValueRef i) {
  return LLVMBuildLoad2(g->B, g->f32, fptr(g, base, i), "");
}

static void fstore(Gen *g, LLVMValueRef val, LLVMValueRef base, LLVMValueRef i) {
  LLVMBuildStore(g->B, val, fptr(g, base, i));
}

static bool is_bf16(Gen *g) { return g->o->dtype == DT_BF16; }

/* the tensors' element type */
static LLVMTypeRef elem_ty(Gen *g) { return is_bf16(g) ? g->i16 : g->f32; }

/* element i of a Q/K/V tensor as a float */
static LLVMValueRef load_elem(Gen *g, LLVMValueRef base, LLVMValueRef i) {
  LLVMValueRef p = LLVMBuildGEP2(g->B, elem_ty(g), base, &i, 1, "");
  LLVMValueRef x = LLVMBuildLoad2(g->B, elem_ty(g), p, "");
  if (!is_bf16(g)) return x;
  x = LLVMBuildShl(g->B, LLVMBuildZExt(g->B, x, g->i32, ""), cg_i32(g, 16), "");
  return LLVMBuildBitCast(g->B, x, g->f32, "");
}

/* store a float as element i of O (bf16: round to nearest even) */
static void store_elem(Gen *g, LLVMValueRef x, LLVMValueRef base, LLVMValueRef i) {
  LLVMValueRef p = LLVMBuildGEP2(g->B, elem_ty(g), base, &i, 1, "");
  if (is_bf16(g)) {
    LLVMValueRef bits = LLVMBuildBitCast(g->B, x, g->i32, "");
    LLVMValueRef lsb = LLVMBuildAnd(g->B, LLVMBuildLShr(g->B, bits, cg_i32(g, 16), ""), cg_i32(g, 1), "");
    bits = LLVMBuildAdd(g->B, bits, LLVMBuildAdd(g->B, lsb, cg_i32(g, 0x7fff), ""), "");
    x = LLVMBuildTrunc(g->B, LLVMBuildLShr(g->B, bits, cg_i32(g, 16), ""), g->i16, "");
  }
  LLVMBuildStore(g->B, x, p);
}

static LLVMValueRef fmuladd(Gen *g, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
  LLVMTypeRef t = LLVMTypeOf(a);
  LLVMValueRef args[3] = { a, b, c };
  return cg_call_intr(g, "llvm.fmuladd", &t, 1, args, 3);
}

static LLVMValueRef vmax(Gen *g, LLVMValueRef a, LLVMValueRef b) {
  return cg_select(g, LLVMBuildFCmp(g->B, LLVMRealOGT, a, b, ""), a, b);
}

static LLVMValueRef alloca_f32(Gen *g, int64_t n, const char *name) {
  LLVMValueRef a = LLVMBuildAlloca(g->B, LLVMArrayType2(g->f32, (uint64_t)n), name);
  LLVMSetAlignment(a, 64);
  return a;
}

static void add_fn_attrs(Gen *g, LLVMValueRef fn) {
  LLVMAttributeRef cpu = LLVMCreateStringAttribute(g->C, "target-cpu", 10, g->t->cpu, (unsigned)strlen(g->t->cpu));
  LLVMAttributeRef feat = LLVMCreateStringAttribute(g->C, "target-features", 15, g->t->features,
                                                    (unsigned)strlen(g->t->features));
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, cpu);
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, feat);
  unsigned nu = LLVMGetEnumAttributeKindForName("nounwind", 8);
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(g->C, nu, 0));
}

/* field f of the CpuArgs at a, or element i of array field f */
enum { A_Q, A_K, A_V, A_O, A_LSE, A_INPUTS, A_B, A_HQ, A_HKV, A_SQ, A_SK,
       A_QS, A_KS, A_VS, A_OS, A_LS, A_SCALE, A_NFIELDS };

static LLVMValueRef arg_field(Gen *g, LLVMValueRef a, int f, LLVMTypeRef t) {
  return LLVMBuildLoad2(g->B, t, LLVMBuildStructGEP2(g->B, g->args_ty, a, (unsigned)f, ""), "");
}

static LLVMValueRef arg_stride(Gen *g, LLVMValueRef a, int f, int i) {
  LLVMValueRef idx[3] = { cg_i64(g, 0), cg_i32(g, f), cg_i64(g, i) };
  return LLVMBuildLoad2(g->B, g->i64, LLVMBuildInBoundsGEP2(g->B, g->args_ty, a, idx, 3, ""), "");
}

/* -------------------------------------------------------------- the tile */

/* the values a tile body sees (its parameters) */
enum { T_A, T_B, T_H, T_QTOK, T_KTOK, T_NKV, T_K0, T_KB, T_VB, T_KS, T_VS, T_SQ, T_SK,
       T_QT, T_ST, T_MK, T_OT, T_MX, T_MN, T_LX, T_AL, T_KP, T_VP, T_QC, T_INPUTS, T_NPARAMS };

typedef struct Tile { LLVMValueRef v[T_NPARAMS]; } Tile;

/* tuning of the micro-kernels (lanes are queries) */
typedef struct Blocking {
  int RJ;     /* kv rows per S^T block */
  int RI;     /* q vectors per block (S^T and Ot) */
  int RDV;    /* head-dim rows per Ot block */
} Blocking;

static Blocking blocking(Gen *g) {
  Blocking b = { 4, 2, 6 };                         /* 8 + 12 accumulators */
  if (g->t->nregs >= 32) b = (Blocking){ 8, 2, 8 };
  const char *e = getenv("ATTNC_CPU_BLOCKING");     /* "RJ,RI,RDV" (tuning) */
  if (e) sscanf(e, "%d,%d,%d", &b.RJ, &b.RI, &b.RDV);
  if (b.RI < 1 || (g->BM / g->W) % b.RI) b.RI = 1;
  if (b.RJ < 1) b.RJ = 1;
  if (b.RDV < 1) b.RDV = 1;
  return b;
}

static int bn_rows(Gen *g) {              /* St rows: BN up to the row block */
  Blocking bl = blocking(g);
  return (g->BN + bl.RJ - 1) / bl.RJ * bl.RJ;
}

/* does the pattern read grid coordinates of q? */
static bool uses_op(const IrPattern *p, IrOp op) {
  for (int i = 0; i < p->nnodes; i++) if (p->nodes[i].op == op) return true;
  return false;
}

/* the k coordinates of token k (scalar i64; k >= 0) */
void cg_coords(Gen *g, LLVMValueRef k, XVal *kc) {
  const IrPattern *p = g->p;
  for (int i = 0; i < IR_MAXGRID; i++) kc[i] = (XVal){ cg_i64(g, 0), false };
  if (p->grid_rank <= 0) { kc[0] = (XVal){ k, false }; return; }
  for (int i = p->grid_rank - 1; i >= 0; i--) {
    LLVMValueRef gd = cg_i64(g, p->grid[i] > 0 ? p->grid[i] : 1);
    kc[i] = (XVal){ LLVMBuildURem(g->B, k, gd, ""), false };
    k = LLVMBuildUDiv(g->B, k, gd, "");
  }
}

/* is the kv token order raster (a kv tile is BN consecutive tokens)? */
static bool raster(const PlanOrder *o) {
  return !o || (o->rank == 1 && o->ax[0].dil == 1 && o->ax[0].n == 0);
}

static bool kv_raster(Gen *g) { return raster(g->pl ? &g->pl->kord : NULL); }

/*
** The token of kv row j of the tile (-1: padding), and it clamped to >= 0.
** A raster tile's rows are K0 + j (no padding below NKV): affine, so the
** row addresses of the micro-kernels are induction variables; otherwise
** the tokens are read from KTOK.
*/
static LLVMValueRef ktok_raw(Gen *g, const Tile *t, LLVMValueRef j) {
  if (kv_raster(g)) return add(g, t->v[T_K0], j);
  return LLVMBuildLoad2(g->B, g->i64, LLVMBuildInBoundsGEP2(g->B, g->i64, t->v[T_KTOK], &j, 1, ""), "ktok");
}

static LLVMValueRef ktok(Gen *g, const Tile *t, LLVMValueRef j) {
  LLVMValueRef k = ktok_raw(g, t, j);
  if (kv_raster(g)) return k;
  return cg_select(g, LLVMBuildICmp(g->B, LLVMIntSLT, k, cg_i64(g, 0), ""), cg_i64(g, 0), k);
}

/* the environment of the q vector at lane offset cw of the tile, row k */
static XEnv tile_env(Gen *g, const Tile *t, LLVMValueRef cw, LLVMValueRef k) {
  XEnv e;
  memset(&e, 0, sizeof e);
  e.b = (XVal){ t->v[T_B], false };
  e.h = (XVal){ t->v[T_H], false };
  e.sq = (XVal){ t->v[T_SQ], false };
  e.sk = (XVal){ t->v[T_SK], false };
  e.k = (XVal){ k, false };
  /* padding lanes (token -1) read token 0; their results are never stored */
  LLVMValueRef q = LLVMBuildLoad2(g->B, g->vi64, LLVMBuildInBoundsGEP2(g->B, g->i64, t->v[T_QTOK],
                                  &cw, 1, ""), "q");
  LLVMSetAlignment(q, 8);
  LLVMValueRef zero = cg_splat(g, cg_i64(g, 0));
  q = cg_select(g, LLVMBuildICmp(g->B, LLVMIntSLT, q, zero, ""), zero, q);
  e.q = (XVal){ q, true };
  for (int i = 0; i < IR_MAXGRID; i++) e.qc[i] = (XVal){ cg_splat(g, cg_i64(g, 0)), true };
  if (g->p->grid_rank <= 0) e.qc[0] = e.q;
  else
    for (int i = 0; i < g->p->grid_rank; i++) {
      LLVMValueRef ptr = LLVMBuildInBoundsGEP2(g->B, g->i64, t->v[T_QC],
                                               (LLVMValueRef[]){ add(g, cg_i64(g, (int64_t)i * g->BM), cw) }, 1, "");
      LLVMValueRef v = LLVMBuildLoad2(g->B, g->vi64, ptr, "qc");
      LLVMSetAlignment(v, 8);
      e.qc[i] = (XVal){ v, true };
    }
  cg_coords(g, k, e.kc);
  e.inputs = t->v[T_INPUTS];
  return e;
}

static LLVMValueRef as_vec(Gen *g, XVal x) { return x.vec ? x.v : cg_splat(g, x.v); }

/*
** The mask of the tile into MK (0 allowed, -inf not) for the valid kv rows;
** returns an i1 that is true when any pair is allowed.
*/
static LLVMValueRef tile_mask(Gen *g, const Tile *t, int mask) {
  int nv = g->BM / g->W;
  LLVMValueRef none = cg_splat(g, LLVMConstInt(g->i1, 0, 0));
  CgLoop l;
  LLVMValueRef j = cg_loop_open(g, &l, cg_i64(g, 0), t->v[T_NKV], cg_i64(g, 1), 1, &none, "mask.j");
  LLVMValueRef kraw = ktok_raw(g, t, j);
  LLVMValueRef valid = LLVMBuildICmp(g->B, LLVMIntSGE, kraw, cg_i64(g, 0), "");
  LLVMValueRef k = cg_select(g, valid, kraw, cg_i64(g, 0));
  LLVMValueRef any = l.carry[0];
  LLVMValueRef zero = cg_splat(g, cg_f32(g, 0)), ninf = cg_splat(g, cg_f32(g, -INFINITY));
  CgLoop lc;
  LLVMValueRef cw = cg_loop_open(g, &lc, cg_i64(g, 0), cg_i64(g, (int64_t)nv * g->W), cg_i64(g, g->W), 1, &any, "mask.c");
  XEnv e = tile_env(g, t, cw, k);
  LLVMValueRef m = cg_splat(g, valid);
  if (mask >= 0) m = LLVMBuildAnd(g->B, m, as_vec(g, cg_expr(g, &e, mask)), "");
  vstore(g, cg_select(g, m, zero, ninf), t->v[T_MK], add(g, mul(g, j, cg_i64(g, g->BM)), cw));
  LLVMValueRef any2 = LLVMBuildOr(g->B, lc.carry[0], m, "");
  cg_loop_close(g, &lc, &any2);
  any = lc.carry[0];
  cg_loop_close(g, &l, &any);
  LLVMTypeRef vb = g->vb;
  LLVMValueRef r = l.carry[0];
  return cg_call_intr(g, "llvm.vector.reduce.or", &vb, 1, &r, 1);
}

/* bf16: convert the valid rows of the K or V tile to fp32 [rows][dim] */
static void tile_convert(Gen *g, const Tile *t, LLVMValueRef base, LLVMValueRef stride, int dim,
                         LLVMValueRef dst) {
  CgLoop lj, ld;
  LLVMValueRef j = cg_loop_open(g, &lj, cg_i64(g, 0), t->v[T_NKV], cg_i64(g, 1), 0, NULL, "cvt.j");
  LLVMValueRef row = mul(g, ktok(g, t, j), stride);
  LLVMValueRef d = cg_loop_open(g, &ld, cg_i64(g, 0), cg_i64(g, dim), cg_i64(g, 1), 0, NULL, "cvt.d");
  fstore(g, load_elem(g, base, add(g, row, d)), dst, add(g, mul(g, j, cg_i64(g, dim)), d));
  cg_loop_close(g, &ld, NULL);
  cg_loop_close(g, &lj, NULL);
}

/*
** A row of K (or V) for kv row j of the tile: the element base pointer and
** the index of its first element. fp32 reads the tensor in place; bf16
** reads the converted tile.
*/
static void kv_row(Gen *g, const Tile *t, bool isv, LLVMValueRef j, LLVMValueRef *base,
                   LLVMValueRef *first) {
  if (is_bf16(g)) {
    *base = t->v[isv ? T_VP : T_KP];
    *first = mul(g, j, cg_i64(g, isv ? g->o->Dv : g->o->D));
  } else {
    *base = t->v[isv ? T_VB : T_KB];
    *first = mul(g, ktok(g, t, j), t->v[isv ? T_VS : T_KS]);
  }
}

/* load a K/V value for the micro-kernel (fp32, from tensor or converted) */
static LLVMValueRef kv_load(Gen *g, LLVMValueRef base, LLVMValueRef i) {
  if (is_bf16(g)) return fload(g, base, i);
  return LLVMBuildLoad2(g->B, g->f32, LLVMBuildGEP2(g->B, g->f32, base, &i, 1, ""), "");
}

/* without a score modification, S^T's epilogue masks the scores and takes
   the running max; otherwise the softmax does both after the modification */
static bool max_in_qk(Gen *g) { return g->p->score < 0; }

/*
** S^T[j][q] = sum_d K[j][d] Qt[d][q] for the valid rows, in blocks of RJ
** rows x RI q vectors held in registers over the d loop. With
** max_in_qk, each block is masked (partial tiles) as it is stored and
** folded into the running max, carried over the kv rows: Mn = max(Mx,
** the tile's scores). A ragged last block repeats row NKV-1, which
** leaves the max as it is.
*/
static void tile_qk(Gen *g, const Tile *t, bool partial) {
  Blocking bl = blocking(g);
  int nv = g->BM / g->W, D = g->o->D;
  int U = D % 4 == 0 ? 4 : D % 2 == 0 ? 2 : 1;
  bool fuse = max_in_qk(g);
  LLVMValueRef ninf = cg_splat(g, cg_f32(g, -INFINITY)), zero = cg_splat(g, cg_f32(g, 0));
  LLVMValueRef last = LLVMBuildSub(g->B, t->v[T_NKV], cg_i64(g, 1), "");
  int ri = bl.RI;                             /* divides nv (blocking) */
  CgLoop lc;
  LLVMValueRef cw0 = cg_loop_open(g, &lc, cg_i64(g, 0), cg_i64(g, (int64_t)nv * g->W), cg_i64(g, (int64_t)ri * g->W), 0,
                                  NULL, "qk.c");
  {
    LLVMValueRef cw[8], mx[8];
    for (int c = 0; c < ri; c++) cw[c] = add(g, cw0, cg_i64(g, (int64_t)c * g->W));
    for (int c = 0; c < ri; c++) mx[c] = fuse ? vload(g, t->v[T_MX], cw[c]) : zero;
    CgLoop lj;
    LLVMValueRef jb = cg_loop_open(g, &lj, cg_i64(g, 0), t->v[T_NKV], cg_i64(g, bl.RJ), fuse ? ri : 0, mx, "qk.j");
    LLVMValueRef base[16], first[16], row[16];
    for (int r = 0; r < bl.RJ; r++) {
      row[r] = smin(g, add(g, jb, cg_i64(g, r)), last);
      kv_row(g, t, false, row[r], &base[r], &first[r]);
    }
    LLVMValueRef init[32];
    int nacc = bl.RJ * ri;
    for (int i = 0; i < nacc; i++) init[i] = zero;
    CgLoop ld;
    LLVMValueRef d = cg_loop_open(g, &ld, cg_i64(g, 0), cg_i64(g, D), cg_i64(g, U), nacc, init, "qk.d");
    LLVMValueRef acc[32];
    for (int i = 0; i < nacc; i++) acc[i] = ld.carry[i];
    for (int u = 0; u < U; u++) {
      LLVMValueRef du = add(g, d, cg_i64(g, u));
      LLVMValueRef qv[8];
      for (int c = 0; c < ri; c++)
        qv[c] = vload(g, t->v[T_QT], add(g, mul(g, du, cg_i64(g, g->BM)), cw[c]));
      for (int r = 0; r < bl.RJ; r++) {
        LLVMValueRef kv = cg_splat(g, kv_load(g, base[r], add(g, first[r], du)));
        for (int c = 0; c < ri; c++) acc[r * ri + c] = fmuladd(g, kv, qv[c], acc[r * ri + c]);
      }
    }
    cg_loop_close(g, &ld, acc);
    for (int c = 0; c < ri; c++) mx[c] = fuse ? lj.carry[c] : NULL;
    for (int r = 0; r < bl.RJ; r++)
      for (int c = 0; c < ri; c++) {
        LLVMValueRef s = ld.carry[r * ri + c];
        if (fuse && partial) {
          LLVMValueRef mk = vload(g, t->v[T_MK], add(g, mul(g, row[r], cg_i64(g, g->BM)), cw[c]));
          s = cg_select(g, LLVMBuildFCmp(g->B, LLVMRealOLT, mk, zero, ""), ninf, s);
        }
        vstore(g, s, t->v[T_ST], add(g, mul(g, add(g, jb, cg_i64(g, r)), cg_i64(g, g->BM)), cw[c]));
        if (fuse) mx[c] = vmax(g, s, mx[c]);
      }
    cg_loop_close(g, &lj, mx);
    for (int c = 0; fuse && c < ri; c++) vstore(g, lj.carry[c], t->v[T_MN], cw[c]);
  }
  cg_loop_close(g, &lc, NULL);
}

/*
** The online softmax of the tile, one q vector at a time: the new running
** max (from S^T's epilogue, or here: scores modified in natural units,
** then times log2 e, masked in place and maxed), P = exp2(S - max)
** written over S, the sum and the rescale factor alpha = exp2(old max -
** new max) kept per query.
*/
static void tile_softmax(Gen *g, const Tile *t, bool partial) {
  const IrPattern *p = g->p;
  bool mod = p->score >= 0, masked = partial;
  LLVMValueRef ninf = cg_splat(g, cg_f32(g, -INFINITY)), zero = cg_splat(g, cg_f32(g, 0));
  CgLoop lc;
  LLVMValueRef cw = cg_loop_open(g, &lc, cg_i64(g, 0), cg_i64(g, g->BM), cg_i64(g, g->W), 0, NULL, "sm.c");
  {
    LLVMValueRef m_old = vload(g, t->v[T_MX], cw), mx;
    if (max_in_qk(g)) {
      mx = vload(g, t->v[T_MN], cw);
    } else {
      CgLoop l1;
      LLVMValueRef j = cg_loop_open(g, &l1, cg_i64(g, 0), t->v[T_NKV], cg_i64(g, 1), 1, &m_old, "sm.max");
      LLVMValueRef at = add(g, mul(g, j, cg_i64(g, g->BM)), cw);
      LLVMValueRef s = vload(g, t->v[T_ST], at);
      if (mod) {
        XEnv e = tile_env(g, t, cw, ktok(g, t, j));
        e.s = (XVal){ s, true };
        s = LLVMBuildFMul(g->B, as_vec(g, cg_expr(g, &e, p->score)), cg_splat(g, cg_f32(g, LOG2E)), "");
      }
      if (masked)
        s = cg_select(g, LLVMBuildFCmp(g->B, LLVMRealOLT, vload(g, t->v[T_MK], at), zero, ""), ninf, s);
      if (mod || masked) vstore(g, s, t->v[T_ST], at);
      LLVMValueRef m2 = vmax(g, s, l1.carry[0]);
      cg_loop_close(g, &l1, &m2);
      mx = l1.carry[0];
    }
    LLVMValueRef m_use = cg_select(g, LLVMBuildFCmp(g->B, LLVMRealOEQ, mx, ninf, ""), zero, mx);
    LLVMValueRef alpha = cg_exp2(g, LLVMBuildFSub(g->B, m_old, m_use, ""), false);
    CgLoop l2;
    LLVMValueRef j = cg_loop_open(g, &l2, cg_i64(g, 0), t->v[T_NKV], cg_i64(g, 1), 1, &zero, "sm.exp");
    LLVMValueRef at = add(g, mul(g, j, cg_i64(g, g->BM)), cw);
    LLVMValueRef pr = cg_exp2(g, LLVMBuildFSub(g->B, vload(g, t->v[T_ST], at), m_use, ""), false);
    vstore(g, pr, t->v[T_ST], at);
    LLVMValueRef sum = LLVMBuildFAdd(g->B, l2.carry[0], pr, "");
    cg_loop_close(g, &l2, &sum);
    vstore(g, fmuladd(g, vload(g, t->v[T_LX], cw), alpha, l2.carry[0]), t->v[T_LX], cw);
    vstore(g, mx, t->v[T_MX], cw);
    vstore(g, alpha, t->v[T_AL], cw);
  }
  cg_loop_close(g, &lc, NULL);
}

/*
** Ot[dv][q] = Ot[dv][q] * alpha[q] + sum_j V[j][dv] P^T[j][q], in blocks of
** rdv head-dim rows x RI q vectors held in registers over the kv rows.
*/
static void pv_block(Gen *g, const Tile *t, LLVMValueRef dv0, int rdv, LLVMValueRef cw0, int ri) {
  LLVMValueRef acc[32], al[8], cw[8];
  for (int c = 0; c < ri; c++) cw[c] = add(g, cw0, cg_i64(g, (int64_t)c * g->W));
  for (int c = 0; c < ri; c++) al[c] = vload(g, t->v[T_AL], cw[c]);
  for (int r = 0; r < rdv; r++)
    for (int c = 0; c < ri; c++)
      acc[r * ri + c] = LLVMBuildFMul(g->B, vload(g, t->v[T_OT], add(g, mul(g, add(g, dv0, cg_i64(g, r)), cg_i64(g, g->BM)),
                                                                      cw[c])), al[c], "");
  CgLoop l;
  int nacc = rdv * ri;
  LLVMValueRef j = cg_loop_open(g, &l, cg_i64(g, 0), t->v[T_NKV], cg_i64(g, 1), nacc, acc, "pv.j");
  LLVMValueRef base, first, pv[8], nx[32];
  kv_row(g, t, true, j, &base, &first);
  for (int c = 0; c < ri; c++)
    pv[c] = vload(g, t->v[T_ST], add(g, mul(g, j, cg_i64(g, g->BM)), cw[c]));
  for (int r = 0; r < rdv; r++) {
    LLVMValueRef vv = cg_splat(g, kv_load(g, base, add(g, first, add(g, dv0, cg_i64(g, r)))));
    for (int c = 0; c < ri; c++) nx[r * ri + c] = fmuladd(g, vv, pv[c], l.carry[r * ri + c]);
  }
  cg_loop_close(g, &l, nx);
  for (int r = 0; r < rdv; r++)
    for (int c = 0; c < ri; c++)
      vstore(g, l.carry[r * ri + c], t->v[T_OT],
             add(g, mul(g, add(g, dv0, cg_i64(g, r)), cg_i64(g, g->BM)), cw[c]));
}

static void tile_pv(Gen *g, const Tile *t) {
  Blocking bl = blocking(g);
  int nv = g->BM / g->W, Dv = g->o->Dv;
  int full = Dv / bl.RDV * bl.RDV;
  int ri = bl.RI;                             /* divides nv (blocking) */
  CgLoop lc;
  LLVMValueRef cw0 = cg_loop_open(g, &lc, cg_i64(g, 0), cg_i64(g, (int64_t)nv * g->W), cg_i64(g, (int64_t)ri * g->W), 0,
                                  NULL, "pv.c");
  if (full > 0) {
    CgLoop l;
    LLVMValueRef dv0 = cg_loop_open(g, &l, cg_i64(g, 0), cg_i64(g, full), cg_i64(g, bl.RDV), 0, NULL, "pv.dv");
    pv_block(g, t, dv0, bl.RDV, cw0, ri);
    cg_loop_close(g, &l, NULL);
  }
  if (Dv > full) pv_block(g, t, cg_i64(g, full), Dv - full, cw0, ri);
  cg_loop_close(g, &lc, NULL);
}

/*
** Emit a tile body: <prefix>_tile_full (mask < -1: no mask code) or
** <prefix>_tile_partial<n> for mask node mask (-1: padding checks only).
*/
static LLVMValueRef emit_tile_fn(Gen *g, const char *prefix, int mask, int n) {
  bool partial = mask >= -1;
  LLVMTypeRef pt[T_NPARAMS];
  for (int i = 0; i < T_NPARAMS; i++) pt[i] = g->ptr;
  for (int i = T_B; i <= T_SK; i++) pt[i] = g->i64;
  pt[T_KB] = pt[T_VB] = pt[T_QTOK] = pt[T_KTOK] = g->ptr;
  char name[256];
  if (partial) snprintf(name, sizeof name, "%s_tile_partial%d", prefix, n);
  else snprintf(name, sizeof name, "%s_tile_full", prefix);
  LLVMValueRef fn = LLVMAddFunction(g->M, name, LLVMFunctionType(g->voidt, pt, T_NPARAMS, 0));
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  add_fn_attrs(g, fn);
  unsigned ai = LLVMGetEnumAttributeKindForName("alwaysinline", 12);
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(g->C, ai, 0));
  g->fn = fn;
  LLVMPositionBuilderAtEnd(g->B, LLVMAppendBasicBlockInContext(g->C, fn, "entry"));
  Tile t;
  for (int i = 0; i < T_NPARAMS; i++) t.v[i] = LLVMGetParam(fn, (unsigned)i);
  if (partial) {
    LLVMValueRef any = tile_mask(g, &t, mask);
    LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(g->C, fn, "live");
    LLVMBasicBlockRef skip = LLVMAppendBasicBlockInContext(g->C, fn, "empty");
    LLVMBuildCondBr(g->B, any, go, skip);
    LLVMPositionBuilderAtEnd(g->B, skip);
    LLVMBuildRetVoid(g->B);
    LLVMPositionBuilderAtEnd(g->B, go);
  }
  if (is_bf16(g)) {
    tile_convert(g, &t, t.v[T_KB], t.v[T_KS], g->o->D, t.v[T_KP]);
    tile_convert(g, &t, t.v[T_VB], t.v[T_VS], g->o->Dv, t.v[T_VP]);
  }
  tile_qk(g, &t, partial);
  tile_softmax(g, &t, partial);
  tile_pv(g, &t);
  LLVMBuildRetVoid(g->B);
  return fn;
}

/* ------------------------------------------------------------ work items */

/* what the work function knows while it walks the kv tiles of a q tile */
typedef struct Walk {
  LLVMValueRef targs[T_NPARAMS];
  LLVMValueRef full_fn, partial_fn;   /* bodies (partial: the variant's) */
  const PlanOrder *kord;              /* NULL: raster tiles of BN over Sk */
} Walk;

/*
** Visit the kv tile with coordinates u: a raster tile is its first token
** K0 and the length of its valid prefix; otherwise its tokens go into
** KTOK. Then the full or the partial body.
*/
static void visit_kv(Gen *g, void *ud, LLVMValueRef *u, LLVMValueRef full) {
  Walk *w = ud;
  LLVMValueRef Sk = w->targs[T_SK], KTOK = w->targs[T_KTOK], nkv;
  CgLoop l;
  if (kv_raster(g)) {
    LLVMValueRef k0 = mul(g, u[0], cg_i64(g, g->BN));
    nkv = smin(g, cg_i64(g, g->BN), LLVMBuildSub(g->B, Sk, k0, ""));
    w->targs[T_K0] = k0;
  } else {
    nkv = cg_i64(g, g->BN);
    w->targs[T_K0] = cg_i64(g, 0);
    LLVMValueRef j = cg_loop_open(g, &l, cg_i64(g, 0), nkv, cg_i64(g, 1), 0, NULL, "ktok");
    LLVMBuildStore(g->B, cg_order_token(g, w->kord, Sk, u, j), LLVMBuildInBoundsGEP2(g->B, g->i64, KTOK, &j, 1, ""));
    cg_loop_close(g, &l, NULL);
  }
  w->targs[T_NKV] = nkv;
  LLVMValueRef body = w->partial_fn;
  if (LLVMIsConstant(full) && !LLVMConstIntGetZExtValue(full)) {
    LLVMBuildCall2(g->B, LLVMGlobalGetValueType(body), body, w->targs, T_NPARAMS, "");
    return;
  }
  LLVMBasicBlockRef bf = LLVMAppendBasicBlockInContext(g->C, g->fn, "kv.full");
  LLVMBasicBlockRef bp = LLVMAppendBasicBlockInContext(g->C, g->fn, "kv.partial");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(g->C, g->fn, "kv.done");
  LLVMBuildCondBr(g->B, full, bf, bp);
  LLVMPositionBuilderAtEnd(g->B, bf);
  LLVMBuildCall2(g->B, LLVMGlobalGetValueType(w->full_fn), w->full_fn, w->targs, T_NPARAMS, "");
  LLVMBuildBr(g->B, done);
  LLVMPositionBuilderAtEnd(g->B, bp);
  LLVMBuildCall2(g->B, LLVMGlobalGetValueType(body), body, w->targs, T_NPARAMS, "");
  LLVMBuildBr(g->B, done);
  LLVMPositionBuilderAtEnd(g->B, done);
}

/* Qt[d][i] = Q[token i][d] * qscale (zero for padding lanes) */
static void pack_q(Gen *g, LLVMValueRef qb, LLVMValueRef qs, LLVMValueRef QTOK, LLVMValueRef qscale, LLVMValueRef Qt) {
  CgLoop li, ld;
  LLVMValueRef i = cg_loop_open(g, &li, cg_i64(g, 0), cg_i64(g, g->BM), cg_i64(g, 1), 0, NULL, "packq.i");
  LLVMValueRef tok = LLVMBuildLoad2(g->B, g->i64, LLVMBuildInBoundsGEP2(g->B, g->i64, QTOK, &i, 1, ""), "");
  LLVMValueRef valid = LLVMBuildICmp(g->B, LLVMIntSGE, tok, cg_i64(g, 0), "");
  LLVMValueRef row = mul(g, cg_select(g, valid, tok, cg_i64(g, 0)), qs);
  LLVMValueRef d = cg_loop_open(g, &ld, cg_i64(g, 0), cg_i64(g, g->o->D), cg_i64(g, 1), 0, NULL, "packq.d");
  LLVMValueRef x = LLVMBuildFMul(g->B, load_elem(g, qb, add(g, row, d)), qscale, "");
  fstore(g, cg_select(g, valid, x, cg_f32(g, 0)), Qt, add(g, mul(g, d, cg_i64(g, g->BM)), i));
  cg_loop_close(g, &ld, NULL);
  cg_loop_close(g, &li, NULL);
}

/* fill n floats of buf with x (n a multiple of W) */
static void fill(Gen *g, LLVMValueRef buf, int64_t n, double x) {
  CgLoop l;
  LLVMValueRef i = cg_loop_open(g, &l, cg_i64(g, 0), cg_i64(g, n), cg_i64(g, g->W), 0, NULL, "fill");
  vstore(g, cg_splat(g, cg_f32(g, x)), buf, i);
  cg_loop_close(g, &l, NULL);
}

/* grid coordinates of the tile's query tokens into QC[axis][BM] (i64) */
static void q_coords(Gen *g, LLVMValueRef QTOK, LLVMValueRef QC) {
  CgLoop l;
  LLVMValueRef i = cg_loop_open(g, &l, cg_i64(g, 0), cg_i64(g, g->BM), cg_i64(g, 1), 0, NULL, "qc.i");
  LLVMValueRef q = LLVMBuildLoad2(g->B, g->i64, LLVMBuildInBoundsGEP2(g->B, g->i64, QTOK, &i, 1, ""), "");
  q = cg_select(g, LLVMBuildICmp(g->B, LLVMIntSLT, q, cg_i64(g, 0), ""), cg_i64(g, 0), q);
  XVal kc[IR_MAXGRID];
  cg_coords(g, q, kc);
  for (int a = 0; a < g->p->grid_rank; a++) {
    LLVMValueRef ptr = LLVMBuildInBoundsGEP2(g->B, g->i64, QC, (LLVMValueRef[]){ add(g, cg_i64(g, (int64_t)a * g->BM), i) }, 1, "");
    LLVMBuildStore(g->B, kc[a].v, ptr);
  }
  cg_loop_close(g, &l, NULL);
}

/* the number of q tiles */
static LLVMValueRef q_tiles(Gen *g, LLVMValueRef Sq) {
  if (g->pl) return cg_order_ntiles(g, &g->pl->qord, Sq);
  return LLVMBuildSDiv(g->B, add(g, Sq, cg_i64(g, g->BM - 1)), cg_i64(g, g->BM), "nq");
}

/*
** The tokens of q tile qt into QTOK[BM] (-1 for padding); returns the
** number of valid lanes. With a plan, also the tile's PlanVals.
*/
static LLVMValueRef q_tokens(Gen *g, LLVMValueRef qt, LLVMValueRef Sq, LLVMValueRef QTOK, PlanVals *pv) {
  LLVMValueRef u[IR_MAXGRID] = { 0 };
  int plan_bm = g->BM;
  if (g->pl) {
    const PlanOrder *o = &g->pl->qord;
    cg_order_coords(g, o, Sq, qt, u);
    for (int a = 0; a < o->rank; a++) pv->v[PV_QT][a] = u[a];
    for (int a = 0; a < o->rank; a++) {
      pv->v[PV_QLO][a] = cg_pexpr(g, o->ax[a].qlo, pv);
      pv->v[PV_QHI][a] = cg_pexpr(g, o->ax[a].qhi, pv);
      pv->v[PV_QRES][a] = cg_pexpr(g, o->ax[a].qres, pv);
    }
    plan_bm = (int)o->tile;
  }
  LLVMValueRef zero = cg_i64(g, 0);
  CgLoop l;
  LLVMValueRef i = cg_loop_open(g, &l, zero, cg_i64(g, g->BM), cg_i64(g, 1), 1, &zero, "qtok");
  LLVMValueRef tok;
  if (g->pl) {
    tok = cg_order_token(g, &g->pl->qord, Sq, u, i);
    tok = cg_select(g, LLVMBuildICmp(g->B, LLVMIntSLT, i, cg_i64(g, plan_bm), ""), tok, cg_i64(g, -1));
  } else {
    tok = add(g, mul(g, qt, cg_i64(g, g->BM)), i);
    tok = cg_select(g, LLVMBuildICmp(g->B, LLVMIntSLT, tok, Sq, ""), tok, cg_i64(g, -1));
  }
  LLVMBuildStore(g->B, tok, LLVMBuildInBoundsGEP2(g->B, g->i64, QTOK, &i, 1, ""));
  LLVMValueRef n = add(g, l.carry[0], LLVMBuildZExt(g->B, LLVMBuildICmp(g->B, LLVMIntSGE, tok, zero, ""), g->i64, ""));
  cg_loop_close(g, &l, &n);
  return l.carry[0];
}

/*
** Walk the kv tiles of the current q tile. Without a plan: every raster
** tile, partial where there is a mask or a ragged tail. With a plan: the
** first variant whose heads test holds, through its iterator.
*/
static void walk_kv(Gen *g, Walk *w, const PlanVals *pv, LLVMValueRef *partial_fns) {
  if (!g->pl) {
    LLVMValueRef Sk = w->targs[T_SK];
    LLVMValueRef nk = LLVMBuildSDiv(g->B, add(g, Sk, cg_i64(g, g->BN - 1)), cg_i64(g, g->BN), "nk");
    w->partial_fn = partial_fns[0];
    CgLoop l;
    LLVMValueRef u = cg_loop_open(g, &l, cg_i64(g, 0), nk, cg_i64(g, 1), 0, NULL, "kt");
    LLVMValueRef full = g->p->mask >= 0 ? LLVMConstInt(g->i1, 0, 0)
                        : LLVMBuildICmp(g->B, LLVMIntSLE, mul(g, add(g, u, cg_i64(g, 1)), cg_i64(g, g->BN)), Sk, "");
    visit_kv(g, w, &u, full);
    cg_loop_close(g, &l, NULL);
    return;
  }
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(g->C, g->fn, "variants.done");
  for (int v = 0; v < g->pl->nvariants; v++) {
    const PlanVariant *var = &g->pl->variants[v];
    LLVMBasicBlockRef run = LLVMAppendBasicBlockInContext(g->C, g->fn, "variant");
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(g->C, g->fn, "variant.next");
    LLVMValueRef ok = var->heads ? LLVMBuildICmp(g->B, LLVMIntNE, cg_pexpr(g, var->heads, pv), cg_i64(g, 0), "")
                                 : LLVMConstInt(g->i1, 1, 0);
    LLVMBuildCondBr(g->B, ok, run, next);
    LLVMPositionBuilderAtEnd(g->B, run);
    w->partial_fn = partial_fns[v];
    cg_plan_iterate(g, g->pl, &var->it, pv, visit_kv, w);
    LLVMBuildBr(g->B, done);
    LLVMPositionBuilderAtEnd(g->B, next);
  }
  LLVMBuildBr(g->B, done);
  LLVMPositionBuilderAtEnd(g->B, done);
}

/*
** Work item w -> (q tile qt, batch x head bh). Costliest first: the q tiles
** are taken in groups of CPU_QGROUP from the last (the costliest for causal
** patterns), and within a group head by head, each head's q tiles
** consecutively (from the last). A thread's run of consecutive items then
** reads the same K and V again while they are still in its caches: with
** one q tile per head, it would stream every head's K and V (B x H x 2 x
** Sk x D floats) between two uses of one head's.
*/
static void work_item(Gen *g, LLVMValueRef w, LLVMValueRef nq, LLVMValueRef BH, LLVMValueRef *qt, LLVMValueRef *bh) {
  LLVMValueRef G = cg_i64(g, CPU_QGROUP);
  LLVMValueRef per = mul(g, G, BH);                           /* items per full group */
  LLVMValueRef k = LLVMBuildSDiv(g->B, w, per, "qgroup");
  LLVMValueRef q0 = mul(g, k, G);                             /* its first q tile, from the last */
  LLVMValueRef size = smin(g, G, LLVMBuildSub(g->B, nq, q0, ""));  /* the last group: the rest */
  LLVMValueRef r = LLVMBuildSub(g->B, w, mul(g, k, per), "");
  *bh = LLVMBuildSDiv(g->B, r, size, "bh");
  LLVMValueRef i = LLVMBuildSRem(g->B, r, size, "");
  *qt = LLVMBuildSub(g->B, LLVMBuildSub(g->B, nq, cg_i64(g, 1), ""), add(g, q0, i), "qt");
}

/*
** <prefix>_work(args, w0, w1): for each work item, the q tile's tokens,
** pack Q, walk the kv tiles, write O (and LSE) for the valid queries.
*/
static void emit_work_fn(Gen *g, const char *prefix, LLVMValueRef tile_full, LLVMValueRef *partial_fns) {
  const IrPattern *p = g->p;
  const CpuOptions *o = g->o;
  LLVMTypeRef pt[3] = { g->ptr, g->i64, g->i64 };
  char name[256];
  snprintf(name, sizeof name, "%s_work", prefix);
  LLVMValueRef fn = LLVMAddFunction(g->M, name, LLVMFunctionType(g->voidt, pt, 3, 0));
  add_fn_attrs(g, fn);
  g->fn = fn;
  LLVMPositionBuilderAtEnd(g->B, LLVMAppendBasicBlockInContext(g->C, fn, "entry"));
  LLVMValueRef a = LLVMGetParam(fn, 0), w0 = LLVMGetParam(fn, 1), w1 = LLVMGetParam(fn, 2);

  /* scratch: on the stack, one set per call (so per thread) */
  int BM = g->BM, BN = g->BN, D = o->D, Dv = o->Dv;
  LLVMValueRef Qt = alloca_f32(g, (int64_t)D * BM, "Qt");
  LLVMValueRef St = alloca_f32(g, (int64_t)bn_rows(g) * BM, "St");
  LLVMValueRef MK = alloca_f32(g, (int64_t)BN * BM, "MK");
  LLVMValueRef Ot = alloca_f32(g, (int64_t)Dv * BM, "Ot");
  LLVMValueRef Mx = alloca_f32(g, BM, "Mx"), Lx = alloca_f32(g, BM, "Lx"), Al = alloca_f32(g, BM, "Al");
  LLVMValueRef Mn = alloca_f32(g, BM, "Mn");
  LLVMValueRef Kp = alloca_f32(g, is_bf16(g) ? (int64_t)BN * D : 1, "Kp");
  LLVMValueRef Vp = alloca_f32(g, is_bf16(g) ? (int64_t)BN * Dv : 1, "Vp");
  int gr = p->grid_rank > 0 ? p->grid_rank : 1;
  LLVMValueRef QC = LLVMBuildAlloca(g->B, LLVMArrayType2(g->i64, (uint64_t)gr * BM), "QC");
  LLVMSetAlignment(QC, 64);
  LLVMValueRef QTOK = LLVMBuildAlloca(g->B, LLVMArrayType2(g->i64, (uint64_t)BM), "QTOK");
  LLVMSetAlignment(QTOK, 64);
  LLVMValueRef KTOK = LLVMBuildAlloca(g->B, LLVMArrayType2(g->i64, (uint64_t)BN), "KTOK");
  LLVMSetAlignment(KTOK, 64);
  g->list_seen = NULL;
  for (int v = 0; g->pl && v < g->pl->nvariants; v++)
    if (g->pl->variants[v].it.kind == ITER_LIST && !g->list_seen)
      g->list_seen = LLVMBuildAlloca(g->B, LLVMArrayType2(g->i8, CPU_LIST_MAX), "seen");

  LLVMValueRef Bn = arg_field(g, a, A_B, g->i64), Hq = arg_field(g, a, A_HQ, g->i64);
  LLVMValueRef Hkv = arg_field(g, a, A_HKV, g->i64);
  LLVMValueRef Sq = arg_field(g, a, A_SQ, g->i64), Sk = arg_field(g, a, A_SK, g->i64);
  LLVMValueRef qp = arg_field(g, a, A_Q, g->ptr), kp = arg_field(g, a, A_K, g->ptr);
  LLVMValueRef vp = arg_field(g, a, A_V, g->ptr), op = arg_field(g, a, A_O, g->ptr);
  LLVMValueRef lp = arg_field(g, a, A_LSE, g->ptr), inputs = arg_field(g, a, A_INPUTS, g->ptr);
  g->list_inputs = inputs;
  g->list_qtok = QTOK;
  LLVMValueRef scale = arg_field(g, a, A_SCALE, g->f32);
  LLVMValueRef qscale = p->score >= 0 ? scale : LLVMBuildFMul(g->B, scale, cg_f32(g, LOG2E), "");
  LLVMValueRef nq = q_tiles(g, Sq);
  LLVMValueRef BH = mul(g, Bn, Hq);
  LLVMValueRef group = LLVMBuildSDiv(g->B, Hq, Hkv, "group");

  CgLoop lw;
  LLVMValueRef w = cg_loop_open(g, &lw, w0, w1, cg_i64(g, 1), 0, NULL, "w");
  LLVMValueRef qt, bh;
  work_item(g, w, nq, BH, &qt, &bh);
  LLVMValueRef b = LLVMBuildSDiv(g->B, bh, Hq, "b"), h = LLVMBuildSRem(g->B, bh, Hq, "h");
  LLVMValueRef hk = LLVMBuildSDiv(g->B, h, group, "hk");
  PlanVals pv;
  memset(&pv, 0, sizeof pv);
  pv.v[PV_B][0] = b;
  pv.v[PV_H][0] = h;
  pv.v[PV_SQ][0] = Sq;
  pv.v[PV_SK][0] = Sk;
  LLVMValueRef nvalid = q_tokens(g, qt, Sq, QTOK, &pv);
  LLVMBasicBlockRef live = LLVMAppendBasicBlockInContext(g->C, fn, "qtile"), latch = LLVMAppendBasicBlockInContext(g->C, fn, "qtile.done");
  LLVMBuildCondBr(g->B, LLVMBuildICmp(g->B, LLVMIntSGT, nvalid, cg_i64(g, 0), ""), live, latch);
  LLVMPositionBuilderAtEnd(g->B, live);

  LLVMValueRef qb = LLVMBuildGEP2(g->B, elem_ty(g), qp,
                                  (LLVMValueRef[]){ add(g, mul(g, b, arg_stride(g, a, A_QS, 0)), mul(g, h, arg_stride(g, a, A_QS, 1))) }, 1, "qb");
  LLVMValueRef kb = LLVMBuildGEP2(g->B, elem_ty(g), kp,
                                  (LLVMValueRef[]){ add(g, mul(g, b, arg_stride(g, a, A_KS, 0)), mul(g, hk, arg_stride(g, a, A_KS, 1))) }, 1, "kb");
  LLVMValueRef vb = LLVMBuildGEP2(g->B, elem_ty(g), vp,
                                  (LLVMValueRef[]){ add(g, mul(g, b, arg_stride(g, a, A_VS, 0)), mul(g, hk, arg_stride(g, a, A_VS, 1))) }, 1, "vb");
  LLVMValueRef ob = LLVMBuildGEP2(g->B, elem_ty(g), op,
                                  (LLVMValueRef[]){ add(g, mul(g, b, arg_stride(g, a, A_OS, 0)), mul(g, h, arg_stride(g, a, A_OS, 1))) }, 1, "ob");

  pack_q(g, qb, arg_stride(g, a, A_QS, 2), QTOK, qscale, Qt);
  fill(g, Mx, BM, -INFINITY);
  fill(g, Lx, BM, 0);
  fill(g, Ot, (int64_t)Dv * BM, 0);
  if (p->grid_rank > 0 && uses_op(p, IR_QC)) q_coords(g, QTOK, QC);

  Walk wk;
  LLVMValueRef *ta = wk.targs;
  ta[T_A] = a; ta[T_B] = b; ta[T_H] = h; ta[T_QTOK] = QTOK; ta[T_KTOK] = KTOK; ta[T_NKV] = ta[T_K0] = NULL;
  ta[T_KB] = kb; ta[T_VB] = vb; ta[T_KS] = arg_stride(g, a, A_KS, 2);
  ta[T_VS] = arg_stride(g, a, A_VS, 2); ta[T_SQ] = Sq; ta[T_SK] = Sk;
  ta[T_QT] = Qt; ta[T_ST] = St; ta[T_MK] = MK; ta[T_OT] = Ot; ta[T_MX] = Mx; ta[T_MN] = Mn;
  ta[T_LX] = Lx; ta[T_AL] = Al; ta[T_KP] = Kp; ta[T_VP] = Vp; ta[T_QC] = QC;
  ta[T_INPUTS] = inputs;
  wk.full_fn = tile_full;
  wk.kord = g->pl ? &g->pl->kord : NULL;
  walk_kv(g, &wk, &pv, partial_fns);

  /* O = Ot / l, LSE = ln(l) + max; no allowed key: O = 0, LSE = -inf */
  LLVMValueRef os = arg_stride(g, a, A_OS, 2);
  CgLoop li, ld;
  LLVMValueRef i = cg_loop_open(g, &li, cg_i64(g, 0), cg_i64(g, BM), cg_i64(g, 1), 0, NULL, "out.i");
  LLVMValueRef tok = LLVMBuildLoad2(g->B, g->i64, LLVMBuildInBoundsGEP2(g->B, g->i64, QTOK, &i, 1, ""), "");
  LLVMBasicBlockRef store = LLVMAppendBasicBlockInContext(g->C, fn, "out.row"), skip = LLVMAppendBasicBlockInContext(g->C, fn, "out.next");
  LLVMBuildCondBr(g->B, LLVMBuildICmp(g->B, LLVMIntSGE, tok, cg_i64(g, 0), ""), store, skip);
  LLVMPositionBuilderAtEnd(g->B, store);
  LLVMValueRef l = fload(g, Lx, i), m = fload(g, Mx, i);
  LLVMValueRef alive = LLVMBuildFCmp(g->B, LLVMRealOGT, l, cg_f32(g, 0), "");
  LLVMValueRef inv = cg_select(g, alive, LLVMBuildFDiv(g->B, cg_f32(g, 1), l, ""), cg_f32(g, 0));
  LLVMValueRef orow = mul(g, tok, os);
  LLVMValueRef dv = cg_loop_open(g, &ld, cg_i64(g, 0), cg_i64(g, Dv), cg_i64(g, 1), 0, NULL, "out.d");
  store_elem(g, LLVMBuildFMul(g->B, fload(g, Ot, add(g, mul(g, dv, cg_i64(g, BM)), i)), inv, ""), ob, add(g, orow, dv));
  cg_loop_close(g, &ld, NULL);
  LLVMBasicBlockRef has = LLVMAppendBasicBlockInContext(g->C, fn, "lse");
  LLVMBuildCondBr(g->B, LLVMBuildIsNotNull(g->B, lp, ""), has, skip);
  LLVMPositionBuilderAtEnd(g->B, has);
  LLVMValueRef lidx = add(g, add(g, mul(g, b, arg_stride(g, a, A_LS, 0)), mul(g, h, arg_stride(g, a, A_LS, 1))),
                          mul(g, tok, arg_stride(g, a, A_LS, 2)));
  LLVMTypeRef ft = g->f32;
  LLVMValueRef lg = cg_call_intr(g, "llvm.log2", &ft, 1, &l, 1);
  LLVMValueRef lse = cg_select(g, alive, LLVMBuildFMul(g->B, LLVMBuildFAdd(g->B, m, lg, ""), cg_f32(g, LN2), ""),
                               cg_f32(g, -INFINITY));
  fstore(g, lse, lp, lidx);
  LLVMBuildBr(g->B, skip);
  LLVMPositionBuilderAtEnd(g->B, skip);
  cg_loop_close(g, &li, NULL);
  LLVMBuildBr(g->B, latch);
  LLVMPositionBuilderAtEnd(g->B, latch);

  cg_loop_close(g, &lw, NULL);
  LLVMBuildRetVoid(g->B);
}

/* <prefix>_nwork(args) and <prefix>_run(args) */
static void emit_drivers(Gen *g, const char *prefix) {
  char name[256];
  snprintf(name, sizeof name, "%s_nwork", prefix);
  LLVMTypeRef pa = g->ptr;
  LLVMValueRef nw = LLVMAddFunction(g->M, name, LLVMFunctionType(g->i64, &pa, 1, 0));
  add_fn_attrs(g, nw);
  g->fn = nw;
  LLVMPositionBuilderAtEnd(g->B, LLVMAppendBasicBlockInContext(g->C, nw, "entry"));
  LLVMValueRef a = LLVMGetParam(nw, 0);
  LLVMValueRef nq = q_tiles(g, arg_field(g, a, A_SQ, g->i64));
  LLVMBuildRet(g->B, mul(g, mul(g, arg_field(g, a, A_B, g->i64), arg_field(g, a, A_HQ, g->i64)), nq));

  snprintf(name, sizeof name, "%s_work", prefix);
  LLVMValueRef work = LLVMGetNamedFunction(g->M, name);
  snprintf(name, sizeof name, "%s_run", prefix);
  LLVMValueRef run = LLVMAddFunction(g->M, name, LLVMFunctionType(g->voidt, &pa, 1, 0));
  add_fn_attrs(g, run);
  g->fn = run;
  LLVMPositionBuilderAtEnd(g->B, LLVMAppendBasicBlockInContext(g->C, run, "entry"));
  a = LLVMGetParam(run, 0);
  LLVMValueRef n = LLVMBuildCall2(g->B, LLVMGlobalGetValueType(nw), nw, &a, 1, "");
  LLVMBuildCall2(g->B, LLVMGlobalGetValueType(work), work, (LLVMValueRef[]){ a, cg_i64(g, 0), n }, 3, "");
  LLVMBuildRetVoid(g->B);
}

/* ------------------------------------------------------------- the module */

/* the entry-point prefix: the option, or attnc_ + the pattern name as C */
void cpu_symbol(const IrPattern *p, const CpuOptions *o, char *buf, size_t n) {
  if (o->symbol && o->symbol[0]) { snprintf(buf, n, "%s", o->symbol); return; }
  snprintf(buf, n, "attnc_%s", p->name ? p->name : "kernel");
  for (char *c = buf; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_')) *c = '_';
}

/* the tiles a plan for the cpu target should pin */
void cpu_plan_pin(Schedule *pin, int64_t D) {
  const CpuTarget *t = cpu_target();
  int W = t ? t->vec_width : 8;
  pin->bm = W >= 16 ? 4 * W : 64;                     /* K, V reuse vs L1 */
  pin->bn = 64;
  const char *e = getenv("ATTNC_CPU_TILE");          /* "BM,BN" (tuning) */
  if (e) {
    long m = 0, n = 0;
    if (sscanf(e, "%ld,%ld", &m, &n) == 2 && m > 0 && n > 0) pin->bm = m, pin->bn = n;
  }
  pin->pin_tile = true;
}

/*
** Tile sizes: the plan's (q tile rounded up to the vector width; the
** extra lanes are padding), else the options', else the target's.
*/
void cpu_tiles(const CpuTarget *t, const CpuOptions *o, int *bm, int *bn) {
  int W = t->vec_width;
  int m = o->bm > 0 ? o->bm : W >= 16 ? 4 * W : 64;
  int n = o->bn > 0 ? o->bn : 64;
  if (o->plan) {
    m = (int)o->plan->qord.tile;
    n = (int)o->plan->kord.tile;
  }
  if (!o->plan) {
    if (m > 64 * W) m = 64 * W;
    if (n > 1024) n = 1024;
  }
  m = (m + W - 1) / W * W;
  if (n < 1) n = 1;
  *bm = m;
  *bn = n;
}

/*
** Build the kernel module in context C. Returns NULL with an error in d.
** The module is verified before it is returned.
*/
LLVMModuleRef cpu_build_module(LLVMContextRef C, const IrPattern *p, const CpuOptions *o, Diag *d) {
  const CpuTarget *t = cpu_target();
  if (!t) {
    diag_error(d, ATTNC_ERR_UNSUPPORTED, (Loc){ 0 }, "cpu: the host target is not supported by LLVM");
    return NULL;
  }
  Gen g;
  memset(&g, 0, sizeof g);
  g.C = C;
  g.pl = o->plan;
  g.p = o->plan ? o->plan->pat : p;
  g.o = o;
  g.t = t;
  g.d = d;
  g.W = t->vec_width;
  cpu_tiles(t, o, &g.BM, &g.BN);
  p = g.p;
  g.voidt = LLVMVoidTypeInContext(C);
  g.i1 = LLVMInt1TypeInContext(C);
  g.i8 = LLVMInt8TypeInContext(C);
  g.i16 = LLVMInt16TypeInContext(C);
  g.i32 = LLVMInt32TypeInContext(C);
  g.i64 = LLVMInt64TypeInContext(C);
  g.f32 = LLVMFloatTypeInContext(C);
  g.ptr = LLVMPointerTypeInContext(C, 0);
  g.vf = LLVMVectorType(g.f32, (unsigned)g.W);
  g.vb = LLVMVectorType(g.i1, (unsigned)g.W);
  g.vi32 = LLVMVectorType(g.i32, (unsigned)g.W);
  g.vi64 = LLVMVectorType(g.i64, (unsigned)g.W);
  LLVMTypeRef a4 = LLVMArrayType2(g.i64, 4), a3 = LLVMArrayType2(g.i64, 3);
  LLVMTypeRef in_f[3] = { g.ptr, a4, a4 };
  g.input_ty = LLVMStructTypeInContext(C, in_f, 3, 0);
  LLVMTypeRef af[A_NFIELDS] = { g.ptr, g.ptr, g.ptr, g.ptr, g.ptr, g.ptr,
                                g.i64, g.i64, g.i64, g.i64, g.i64,
                                a3, a3, a3, a3, a3, g.f32 };
  g.args_ty = LLVMStructTypeInContext(C, af, A_NFIELDS, 0);
  g.iwidth = calloc((size_t)p->nnodes + 1, 1);
  cg_int_widths(&g);

  char prefix[200];
  cpu_symbol(p, o, prefix, sizeof prefix);
  g.M = LLVMModuleCreateWithNameInContext(prefix, C);
  LLVMSetTarget(g.M, t->triple);
  g.B = LLVMCreateBuilderInContext(C);

  /* the bodies: one full, one partial per distinct variant mask */
  LLVMValueRef full = emit_tile_fn(&g, prefix, -2, 0);
  int nv = g.pl ? g.pl->nvariants : 1;
  LLVMValueRef *partials = calloc((size_t)nv + 1, sizeof *partials);
  for (int v = 0; v < nv; v++) {
    int mask = g.pl ? g.pl->variants[v].mask : g.p->mask;
    for (int u = 0; u < v && !partials[v]; u++)
      if ((g.pl ? g.pl->variants[u].mask : g.p->mask) == mask) partials[v] = partials[u];
    if (!partials[v]) partials[v] = emit_tile_fn(&g, prefix, mask, v);
  }
  emit_work_fn(&g, prefix, full, partials);
  free(partials);
  emit_drivers(&g, prefix);
  LLVMDisposeBuilder(g.B);
  free(g.iwidth);

  char *msg = NULL;
  if (LLVMVerifyModule(g.M, LLVMReturnStatusAction, &msg)) {
    diag_error(d, ATTNC_ERR_INTERNAL, (Loc){ 0 }, "cpu: generated LLVM IR does not verify (a compiler bug): %.600s",
               msg ? msg : "?");
    LLVMDisposeMessage(msg);
    LLVMDisposeModule(g.M);
    return NULL;
  }
  LLVMDisposeMessage(msg);
  return g.M;
}
