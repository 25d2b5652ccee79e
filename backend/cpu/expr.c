/*
** expr.c -- mask and score expressions as LLVM IR over query vectors.
**
** One emitter per IR op (the table below is generated from IR_OPS, so a
** new op without an emitter does not compile). A value is a scalar when
** it is the same in every lane (it depends on b, h, k only) and a W-lane
** vector when it depends on q or on the score; an op on a scalar and a
** vector splats the scalar. Ints are 32-bit where interval arithmetic
** over the leaves (bounded by CPU_MAX_*) proves the value fits, else
** 64-bit; this keeps index math in native vector lanes (AVX2 has no
** 64-bit vector multiply or conversion to float).
**
** Semantics follow ir/eval.c: Lua floor division and modulo; x // 0 and
** x % 0, which the reference reports as faults, give 0 here instead of
** trapping; an input index outside its dim is clamped into it. Floats are
** computed in single precision.
*/
#define CPU_INTERNAL
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"

/* ----------------------------------------------------------- int ranges */

typedef struct Rng { int64_t lo, hi; } Rng;

static const Rng FULL = { INT64_MIN, INT64_MAX };

static Rng rng(int64_t lo, int64_t hi) { return (Rng){ lo, hi }; }
static Rng hull(Rng a, Rng b) { return rng(a.lo < b.lo ? a.lo : b.lo, a.hi > b.hi ? a.hi : b.hi); }

static Rng rng_add(Rng a, Rng b) {
  int64_t lo, hi;
  if (__builtin_add_overflow(a.lo, b.lo, &lo) || __builtin_add_overflow(a.hi, b.hi, &hi)) return FULL;
  return rng(lo, hi);
}

static Rng rng_neg(Rng a) {
  if (a.lo == INT64_MIN) return FULL;
  return rng(-a.hi, -a.lo);
}

static Rng rng_mul(Rng a, Rng b) {
  int64_t c[4];
  if (__builtin_mul_overflow(a.lo, b.lo, &c[0]) || __builtin_mul_overflow(a.lo, b.hi, &c[1]) ||
      __builtin_mul_overflow(a.hi, b.lo, &c[2]) || __builtin_mul_overflow(a.hi, b.hi, &c[3]))
    return FULL;
  Rng r = rng(c[0], c[0]);
  for (int i = 1; i < 4; i++) r = hull(r, rng(c[i], c[i]));
  return r;
}

/* |x| <= m for every x in a (m = -1 when unbounded) */
static int64_t rng_absmax(Rng a) {
  if (a.lo == INT64_MIN) return -1;
  int64_t m = a.hi > -a.lo ? a.hi : -a.lo;
  return m;
}

static bool fits32(Rng r) { return r.lo >= INT32_MIN && r.hi <= INT32_MAX; }

/*
** Interval of every int node over all points a kernel may meet (leaves
** bounded by the CPU_MAX_* limits cpu_run enforces); the width follows.
*/
void cg_int_widths(Gen *g) {
  const IrPattern *p = g->p;
  Rng *r = calloc((size_t)p->nnodes + 1, sizeof *r);
  for (int n = 0; n < p->nnodes; n++) {
    const IrNode *nd = &p->nodes[n];
    g->iwidth[n] = 64;
    if (nd->type != IR_INT) continue;
    Rng a = nd->nargs > 0 ? r[nd->args[0]] : FULL;
    Rng b = nd->nargs > 1 ? r[nd->args[1]] : FULL;
    Rng x = FULL;
    switch ((IrOp)nd->op) {
    case IR_CONST: x = rng(nd->imm.i, nd->imm.i); break;
    case IR_BATCH: x = rng(0, CPU_MAX_BATCH - 1); break;
    case IR_HEAD: x = rng(0, CPU_MAX_HEADS - 1); break;
    case IR_Q: case IR_K: x = rng(0, CPU_MAX_TOKENS - 1); break;
    case IR_SEQQ: case IR_SEQK: x = rng(0, CPU_MAX_TOKENS); break;
    case IR_QC: case IR_KC: {
      int64_t ax = nd->imm.i;
      x = (p->grid_rank > 0 && ax >= 0 && ax < p->grid_rank) ? rng(0, p->grid[ax] - 1)
                                                               : rng(0, CPU_MAX_TOKENS - 1);
      break;
    }
    case IR_ADD: x = rng_add(a, b); break;
    case IR_SUB: x = rng_add(a, rng_neg(b)); break;
    case IR_MUL: x = rng_mul(a, b); break;
    case IR_NEG: x = rng_neg(a); break;
    case IR_ABS: { int64_t m = rng_absmax(a); x = m < 0 ? FULL : rng(0, m); break; }
    case IR_MIN: x = rng(a.lo < b.lo ? a.lo : b.lo, a.hi < b.hi ? a.hi : b.hi); break;
    case IR_MAX: x = rng(a.lo > b.lo ? a.lo : b.lo, a.hi > b.hi ? a.hi : b.hi); break;
    case IR_IDIV: {                 /* |a // b| <= |a| (+1 rounding down) */
      int64_t m = rng_absmax(a);
      x = (m < 0 || m == INT64_MAX) ? FULL : rng(-m - 1, m);
      break;
    }
    case IR_MOD: {                  /* sign of b, |r| < |b|; 0 when b = 0 */
      int64_t m = rng_absmax(b);
      if (m < 0) x = FULL;
      else if (b.lo >= 0) x = rng(0, m > 0 ? m - 1 : 0);
      else if (b.hi <= 0) x = rng(m > 0 ? -(m - 1) : 0, 0);
      else x = rng(-m, m);
      break;
    }
    case IR_SELECT: x = hull(r[nd->args[1]], r[nd->args[2]]); break;
    case IR_LOAD: x = rng(INT32_MIN, INT32_MAX); break;
    default: x = FULL; break;
    }
    r[n] = x;
    g->iwidth[n] = fits32(x) ? 32 : 64;
  }
  free(r);
}

/* -------------------------------------------------------------- helpers */

static LLVMTypeRef int_ty(Gen *g, int width) { return width == 32 ? g->i32 : g->i64; }

static LLVMTypeRef vec_of(Gen *g, LLVMTypeRef scalar) { return LLVMVectorType(scalar, (unsigned)g->W); }

static XVal lift(Gen *g, XVal x) {
  if (x.vec) return x;
  return (XVal){ cg_splat(g, x.v), true };
}

/* convert an int value (scalar or vector) to the given width, signed */
static LLVMValueRef iresize(Gen *g, LLVMValueRef v, bool vec, int width) {
  LLVMTypeRef from = LLVMTypeOf(v);
  LLVMTypeRef el = vec ? LLVMGetElementType(from) : from;
  unsigned have = LLVMGetIntTypeWidth(el);
  if ((int)have == width) return v;
  LLVMTypeRef to = int_ty(g, width);
  if (vec) to = vec_of(g, to);
  return (int)have < width ? LLVMBuildSExt(g->B, v, to, "") : LLVMBuildTrunc(g->B, v, to, "");
}

/* make two values the same shape (both vectors if either is) */
static void unify(Gen *g, XVal *a, XVal *b) {
  if (a->vec && !b->vec) *b = lift(g, *b);
  else if (b->vec && !a->vec) *a = lift(g, *a);
}

static int maxw(int a, int b) { return a > b ? a : b; }

/* int args of node n resized to the op width w; returns w */
static int int_args(Gen *g, int n, XVal *x, XVal *y) {
  const IrNode *nd = &g->p->nodes[n];
  int w = g->iwidth[n];
  if (nd->type != IR_INT) w = 32;                 /* compares: widest arg */
  w = maxw(w, g->iwidth[nd->args[0]]);
  if (y) w = maxw(w, g->iwidth[nd->args[1]]);
  if (y) unify(g, x, y);
  x->v = iresize(g, x->v, x->vec, w);
  if (y) y->v = iresize(g, y->v, y->vec, w);
  return w;
}

static XVal int_result(Gen *g, int n, LLVMValueRef v, bool vec) {
  return (XVal){ iresize(g, v, vec, g->iwidth[n]), vec };
}

static LLVMValueRef iconst(Gen *g, int width, int64_t v, bool vec) {
  LLVMValueRef c = LLVMConstInt(int_ty(g, width), (unsigned long long)v, 1);
  return vec ? cg_splat(g, c) : c;
}

static LLVMValueRef fconst(Gen *g, double v, bool vec) {
  LLVMValueRef c = cg_f32(g, v);
  return vec ? cg_splat(g, c) : c;
}

static LLVMValueRef fintr1(Gen *g, const char *name, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  return cg_call_intr(g, name, &t, 1, &x, 1);
}

/* ----------------------------------------------------------- exp, tanh */

/*
** 2^x as a polynomial (LLVM does not vectorise exp2f): n = rint(x),
** f = x - n in [-1/2, 1/2], 2^f by a polynomial, times 2^n built in the
** exponent bits.
**   full (user expressions): any x; a degree-6 Taylor series of
**     e^(f ln 2) (relative error < 2e-7); x below -126 gives 0 exactly,
**     x >= 128 gives +inf and NaN stays NaN.
**   otherwise (the softmax): the caller promises x <= 0 (or -inf). x is
**     clamped at -127 only, where the exponent bits are all zero, so
**     x <= -126.5 (and -inf: masked scores) gives 0 exactly; 2^f is a
**     degree-5 minimax fit (relative error < 3e-7 in float arithmetic).
**     Three constants and four instructions fewer per vector.
*/
static const double EXP2_TAYLOR6[] = {
  1.0, 0.6931471805599453, 0.2402265069591007, 0.05550410866482158,
  0.009618129107628477, 0.0013333558146428443, 0.00015403530393381606,
};
static const double EXP2_MINIMAX5[] = {
  1.000000071605482, 0.6931469671461398, 0.24022119965008634,
  0.055507132709280295, 0.009675528368086031, 0.0013276432221928178,
};

LLVMValueRef cg_exp2(Gen *g, LLVMValueRef x, bool full) {
  LLVMTypeRef t = LLVMTypeOf(x);
  bool vec = LLVMGetTypeKind(t) == LLVMVectorTypeKind;
  LLVMTypeRef it = vec ? g->vi32 : g->i32;
  LLVMValueRef xc = x;
  /* clamp into [-127, 127] so the exponent arithmetic stays in range */
  xc = cg_select(g, LLVMBuildFCmp(g->B, LLVMRealOLT, xc, fconst(g, -127.0, vec), ""),
                 fconst(g, -127.0, vec), xc);
  if (full)
    xc = cg_select(g, LLVMBuildFCmp(g->B, LLVMRealOGT, xc, fconst(g, 127.0, vec), ""),
                   fconst(g, 127.0, vec), xc);
  LLVMValueRef n = fintr1(g, "llvm.rint", xc);
  LLVMValueRef f = LLVMBuildFSub(g->B, xc, n, "");
  const double *c = full ? EXP2_TAYLOR6 : EXP2_MINIMAX5;
  int deg = full ? 6 : 5;
  LLVMValueRef acc = fconst(g, c[deg], vec);
  for (int i = deg - 1; i >= 0; i--) {
    LLVMValueRef args[3] = { acc, f, fconst(g, c[i], vec) };
    acc = cg_call_intr(g, "llvm.fmuladd", &t, 1, args, 3);
  }
  LLVMValueRef ni = LLVMBuildFPToSI(g->B, n, it, "");
  LLVMValueRef bits = LLVMBuildShl(g->B, LLVMBuildAdd(g->B, ni, vec ? cg_splat(g, cg_i32(g, 127)) : cg_i32(g, 127), ""),
                                   vec ? cg_splat(g, cg_i32(g, 23)) : cg_i32(g, 23), "");
  LLVMValueRef scale = LLVMBuildBitCast(g->B, bits, t, "");
  LLVMValueRef r = LLVMBuildFMul(g->B, acc, scale, "");
  if (!full) return r;
  r = cg_select(g, LLVMBuildFCmp(g->B, LLVMRealOLT, x, fconst(g, -126.0, vec), ""),
                fconst(g, 0.0, vec), r);
  r = cg_select(g, LLVMBuildFCmp(g->B, LLVMRealOGE, x, fconst(g, 128.0, vec), ""),
                fconst(g, INFINITY, vec), r);
  r = cg_select(g, LLVMBuildFCmp(g->B, LLVMRealUNO, x, x, ""), x, r);
  return r;
}

static LLVMValueRef exp_e(Gen *g, LLVMValueRef x, bool vec) {
  return cg_exp2(g, LLVMBuildFMul(g->B, x, fconst(g, 1.4426950408889634, vec), ""), true);
}

/* tanh(x) = sign(x) (1 - 2 / (e^(2|x|) + 1)): exact limits at +-inf */
static LLVMValueRef tanh_e(Gen *g, LLVMValueRef x, bool vec) {
  LLVMValueRef ax = fintr1(g, "llvm.fabs", x);
  LLVMValueRef e = exp_e(g, LLVMBuildFAdd(g->B, ax, ax, ""), vec);
  LLVMValueRef t = LLVMBuildFSub(g->B, fconst(g, 1.0, vec),
                                 LLVMBuildFDiv(g->B, fconst(g, 2.0, vec),
                                               LLVMBuildFAdd(g->B, e, fconst(g, 1.0, vec), ""), ""), "");
  LLVMTypeRef ty = LLVMTypeOf(x);
  LLVMValueRef args[2] = { t, x };
  return cg_call_intr(g, "llvm.copysign", &ty, 1, args, 2);
}

/* ------------------------------------------------------------- emitters */

typedef XVal (*EmitFn)(Gen *g, const XEnv *env, int n, XVal *a);

#define NODE (&g->p->nodes[n])

static XVal emit_CONST(Gen *g, const XEnv *env, int n, XVal *a) {
  switch (NODE->type) {
  case IR_FLOAT: return (XVal){ cg_f32(g, NODE->imm.f), false };
  case IR_BOOL: return (XVal){ LLVMConstInt(g->i1, NODE->imm.i != 0, 0), false };
  default: return (XVal){ iconst(g, g->iwidth[n], NODE->imm.i, false), false };
  }
}

static XVal leaf(Gen *g, int n, XVal x) { return int_result(g, n, x.v, x.vec); }

static XVal emit_BATCH(Gen *g, const XEnv *env, int n, XVal *a) { return leaf(g, n, env->b); }
static XVal emit_HEAD(Gen *g, const XEnv *env, int n, XVal *a) { return leaf(g, n, env->h); }
static XVal emit_Q(Gen *g, const XEnv *env, int n, XVal *a) { return leaf(g, n, env->q); }
static XVal emit_K(Gen *g, const XEnv *env, int n, XVal *a) { return leaf(g, n, env->k); }
static XVal emit_SEQQ(Gen *g, const XEnv *env, int n, XVal *a) { return leaf(g, n, env->sq); }
static XVal emit_SEQK(Gen *g, const XEnv *env, int n, XVal *a) { return leaf(g, n, env->sk); }

static XVal emit_QC(Gen *g, const XEnv *env, int n, XVal *a) {
  int64_t ax = NODE->imm.i;
  return leaf(g, n, ax >= 0 && ax < IR_MAXGRID ? env->qc[ax] : env->q);
}

static XVal emit_KC(Gen *g, const XEnv *env, int n, XVal *a) {
  int64_t ax = NODE->imm.i;
  return leaf(g, n, ax >= 0 && ax < IR_MAXGRID ? env->kc[ax] : env->k);
}

static XVal emit_SCORE(Gen *g, const XEnv *env, int n, XVal *a) { return env->s; }

/* the four arithmetic ops that are plain LLVM instructions */
static XVal arith(Gen *g, int n, XVal *a, LLVMOpcode iop, LLVMOpcode fop) {
  XVal x = a[0], y = a[1];
  if (NODE->type == IR_FLOAT) {
    unify(g, &x, &y);
    return (XVal){ LLVMBuildBinOp(g->B, fop, x.v, y.v, ""), x.vec };
  }
  int_args(g, n, &x, &y);
  return int_result(g, n, LLVMBuildBinOp(g->B, iop, x.v, y.v, ""), x.vec);
}

static XVal emit_ADD(Gen *g, const XEnv *env, int n, XVal *a) { return arith(g, n, a, LLVMAdd, LLVMFAdd); }
static XVal emit_SUB(Gen *g, const XEnv *env, int n, XVal *a) { return arith(g, n, a, LLVMSub, LLVMFSub); }
static XVal emit_MUL(Gen *g, const XEnv *env, int n, XVal *a) { return arith(g, n, a, LLVMMul, LLVMFMul); }
static XVal emit_DIV(Gen *g, const XEnv *env, int n, XVal *a) { return arith(g, n, a, LLVMSDiv, LLVMFDiv); }

/*
** Lua's floor division and modulo. Ints: the truncating quotient and
** remainder, corrected when the remainder is nonzero and its sign differs
** from the divisor's; a zero divisor is replaced by 1 and gives 0, and
** -1 is handled apart (INT_MIN // -1 would trap). Floats: floor(a / b)
** and a - floor(a / b) * b.
*/
static XVal floor_divmod(Gen *g, int n, XVal *a, bool mod) {
  XVal x = a[0], y = a[1];
  if (NODE->type == IR_FLOAT) {
    unify(g, &x, &y);
    LLVMValueRef q = fintr1(g, "llvm.floor", LLVMBuildFDiv(g->B, x.v, y.v, ""));
    if (!mod) return (XVal){ q, x.vec };
    return (XVal){ LLVMBuildFSub(g->B, x.v, LLVMBuildFMul(g->B, q, y.v, ""), ""), x.vec };
  }
  int w = int_args(g, n, &x, &y);
  bool vec = x.vec;
  LLVMValueRef zero = iconst(g, w, 0, vec), one = iconst(g, w, 1, vec), m1 = iconst(g, w, -1, vec);
  LLVMValueRef isz = LLVMBuildICmp(g->B, LLVMIntEQ, y.v, zero, "");
  LLVMValueRef ism1 = LLVMBuildICmp(g->B, LLVMIntEQ, y.v, m1, "");
  LLVMValueRef safe = cg_select(g, LLVMBuildOr(g->B, isz, ism1, ""), one, y.v);
  LLVMValueRef q = LLVMBuildSDiv(g->B, x.v, safe, "");
  LLVMValueRef r = LLVMBuildSRem(g->B, x.v, safe, "");
  /* r != 0 and (r ^ y) < 0: step the quotient down, the remainder up by y */
  LLVMValueRef fix = LLVMBuildAnd(g->B, LLVMBuildICmp(g->B, LLVMIntNE, r, zero, ""),
                                  LLVMBuildICmp(g->B, LLVMIntSLT, LLVMBuildXor(g->B, r, safe, ""), zero, ""), "");
  LLVMValueRef v;
  if (mod) {
    v = cg_select(g, fix, LLVMBuildAdd(g->B, r, safe, ""), r);
    v = cg_select(g, LLVMBuildOr(g->B, isz, ism1, ""), zero, v);
  } else {
    v = cg_select(g, fix, LLVMBuildSub(g->B, q, one, ""), q);
    v = cg_select(g, ism1, LLVMBuildSub(g->B, zero, x.v, ""), v);
    v = cg_select(g, isz, zero, v);
  }
  return int_result(g, n, v, vec);
}

static XVal emit_IDIV(Gen *g, const XEnv *env, int n, XVal *a) { return floor_divmod(g, n, a, false); }
static XVal emit_MOD(Gen *g, const XEnv *env, int n, XVal *a) { return floor_divmod(g, n, a, true); }

static XVal emit_POW(Gen *g, const XEnv *env, int n, XVal *a) {
  XVal x = a[0], y = a[1];
  unify(g, &x, &y);
  LLVMTypeRef t = LLVMTypeOf(x.v);
  LLVMValueRef args[2] = { x.v, y.v };
  return (XVal){ cg_call_intr(g, "llvm.pow", &t, 1, args, 2), x.vec };
}

static XVal emit_NEG(Gen *g, const XEnv *env, int n, XVal *a) {
  XVal x = a[0];
  if (NODE->type == IR_FLOAT) return (XVal){ LLVMBuildFNeg(g->B, x.v, ""), x.vec };
  int w = int_args(g, n, &x, NULL);
  return int_result(g, n, LLVMBuildSub(g->B, iconst(g, w, 0, x.vec), x.v, ""), x.vec);
}

static XVal emit_ABS(Gen *g, const XEnv *env, int n, XVal *a) {
  XVal x = a[0];
  if (NODE->type == IR_FLOAT) return (XVal){ fintr1(g, "llvm.fabs", x.v), x.vec };
  int w = int_args(g, n, &x, NULL);
  LLVMValueRef zero = iconst(g, w, 0, x.vec);
  LLVMValueRef neg = LLVMBuildICmp(g->B, LLVMIntSLT, x.v, zero, "");
  return int_result(g, n, cg_select(g, neg, LLVMBuildSub(g->B, zero, x.v, ""), x.v), x.vec);
}

/* Lua's math.min / math.max: the first argument wins ties */
static XVal minmax(Gen *g, int n, XVal *a, bool max) {
  XVal x = a[0], y = a[1];
  LLVMValueRef pick;
  if (NODE->type == IR_FLOAT) {
    unify(g, &x, &y);
    pick = LLVMBuildFCmp(g->B, max ? LLVMRealOGT : LLVMRealOLT, y.v, x.v, "");
    return (XVal){ cg_select(g, pick, y.v, x.v), x.vec };
  }
  int_args(g, n, &x, &y);
  pick = LLVMBuildICmp(g->B, max ? LLVMIntSGT : LLVMIntSLT, y.v, x.v, "");
  return int_result(g, n, cg_select(g, pick, y.v, x.v), x.vec);
}

static XVal emit_MIN(Gen *g, const XEnv *env, int n, XVal *a) { return minmax(g, n, a, false); }
static XVal emit_MAX(Gen *g, const XEnv *env, int n, XVal *a) { return minmax(g, n, a, true); }

static XVal emit_EXP(Gen *g, const XEnv *env, int n, XVal *a) { return (XVal){ exp_e(g, a[0].v, a[0].vec), a[0].vec }; }
static XVal emit_LOG(Gen *g, const XEnv *env, int n, XVal *a) { return (XVal){ fintr1(g, "llvm.log", a[0].v), a[0].vec }; }
static XVal emit_TANH(Gen *g, const XEnv *env, int n, XVal *a) { return (XVal){ tanh_e(g, a[0].v, a[0].vec), a[0].vec }; }
static XVal emit_SQRT(Gen *g, const XEnv *env, int n, XVal *a) { return (XVal){ fintr1(g, "llvm.sqrt", a[0].v), a[0].vec }; }

static XVal emit_TOFLOAT(Gen *g, const XEnv *env, int n, XVal *a) {
  XVal x = a[0];
  const IrNode *arg = &g->p->nodes[NODE->args[0]];
  if (arg->type == IR_FLOAT) return x;
  LLVMTypeRef t = x.vec ? g->vf : g->f32;
  if (arg->type == IR_BOOL) return (XVal){ LLVMBuildUIToFP(g->B, x.v, t, ""), x.vec };
  return (XVal){ LLVMBuildSIToFP(g->B, x.v, t, ""), x.vec };
}

static XVal compare(Gen *g, int n, XVal *a, LLVMIntPredicate ip, LLVMRealPredicate fp) {
  XVal x = a[0], y = a[1];
  IrType t = g->p->nodes[NODE->args[0]].type;
  if (t == IR_FLOAT) {
    unify(g, &x, &y);
    return (XVal){ LLVMBuildFCmp(g->B, fp, x.v, y.v, ""), x.vec };
  }
  if (t == IR_BOOL) unify(g, &x, &y);
  else int_args(g, n, &x, &y);
  return (XVal){ LLVMBuildICmp(g->B, ip, x.v, y.v, ""), x.vec };
}

static XVal emit_LT(Gen *g, const XEnv *env, int n, XVal *a) { return compare(g, n, a, LLVMIntSLT, LLVMRealOLT); }
static XVal emit_LE(Gen *g, const XEnv *env, int n, XVal *a) { return compare(g, n, a, LLVMIntSLE, LLVMRealOLE); }
static XVal emit_GT(Gen *g, const XEnv *env, int n, XVal *a) { return compare(g, n, a, LLVMIntSGT, LLVMRealOGT); }
static XVal emit_GE(Gen *g, const XEnv *env, int n, XVal *a) { return compare(g, n, a, LLVMIntSGE, LLVMRealOGE); }
static XVal emit_EQ(Gen *g, const XEnv *env, int n, XVal *a) { return compare(g, n, a, LLVMIntEQ, LLVMRealOEQ); }
static XVal emit_NE(Gen *g, const XEnv *env, int n, XVal *a) { return compare(g, n, a, LLVMIntNE, LLVMRealUNE); }

static XVal emit_AND(Gen *g, const XEnv *env, int n, XVal *a) {
  unify(g, &a[0], &a[1]);
  return (XVal){ LLVMBuildAnd(g->B, a[0].v, a[1].v, ""), a[0].vec };
}

static XVal emit_OR(Gen *g, const XEnv *env, int n, XVal *a) {
  unify(g, &a[0], &a[1]);
  return (XVal){ LLVMBuildOr(g->B, a[0].v, a[1].v, ""), a[0].vec };
}

static XVal emit_NOT(Gen *g, const XEnv *env, int n, XVal *a) {
  return (XVal){ LLVMBuildNot(g->B, a[0].v, ""), a[0].vec };
}

static XVal emit_SELECT(Gen *g, const XEnv *env, int n, XVal *a) {
  XVal c = a[0], x = a[1], y = a[2];
  if (NODE->type == IR_INT) {
    unify(g, &x, &y);
    x.v = iresize(g, x.v, x.vec, g->iwidth[n]);
    y.v = iresize(g, y.v, y.vec, g->iwidth[n]);
  } else
    unify(g, &x, &y);
  if (c.vec && !x.vec) { x = lift(g, x); y = lift(g, y); }
  return (XVal){ cg_select(g, c.v, x.v, y.v), x.vec };
}

/*
** The element offset of input[idx...] (i64, scalar or vector), each index
** clamped into [0, shape - 1]. nidx indices from a; vec says whether any
** of them is a vector.
*/
static LLVMValueRef input_offset(Gen *g, const XEnv *env, int64_t ix, XVal *a, int nidx,
                                 bool vec, LLVMValueRef *base) {
  LLVMValueRef in = LLVMBuildGEP2(g->B, g->input_ty, env->inputs, (LLVMValueRef[]){ cg_i64(g, ix) }, 1, "");
  *base = LLVMBuildLoad2(g->B, g->ptr, LLVMBuildStructGEP2(g->B, g->input_ty, in, 0, ""), "in.data");
  LLVMValueRef off = vec ? cg_splat(g, cg_i64(g, 0)) : cg_i64(g, 0);
  for (int i = 0; i < nidx; i++) {
    LLVMValueRef shp = LLVMBuildLoad2(g->B, g->i64,
                                      LLVMBuildGEP2(g->B, g->input_ty, in,
                                                    (LLVMValueRef[]){ cg_i64(g, 0), cg_i32(g, 1), cg_i64(g, i) }, 3, ""), "in.shape");
    LLVMValueRef str = LLVMBuildLoad2(g->B, g->i64,
                                      LLVMBuildGEP2(g->B, g->input_ty, in,
                                                    (LLVMValueRef[]){ cg_i64(g, 0), cg_i32(g, 2), cg_i64(g, i) }, 3, ""), "in.stride");
    XVal x = a[i];
    if (vec) x = lift(g, x);
    LLVMValueRef v = iresize(g, x.v, vec, 64);
    LLVMValueRef hi = LLVMBuildSub(g->B, shp, cg_i64(g, 1), "");
    if (vec) { hi = cg_splat(g, hi); str = cg_splat(g, str); }
    LLVMValueRef zero = vec ? cg_splat(g, cg_i64(g, 0)) : cg_i64(g, 0);
    v = cg_select(g, LLVMBuildICmp(g->B, LLVMIntSGT, v, hi, ""), hi, v);
    v = cg_select(g, LLVMBuildICmp(g->B, LLVMIntSLT, v, zero, ""), zero, v);
    off = LLVMBuildAdd(g->B, off, LLVMBuildMul(g->B, v, str, ""), "");
  }
  return off;
}

/* load elements of type et at base + off (a gather when off is a vector) */
static LLVMValueRef load_at(Gen *g, LLVMTypeRef et, LLVMValueRef base, LLVMValueRef off, bool vec) {
  LLVMValueRef ptr = LLVMBuildGEP2(g->B, et, base, &off, 1, "");
  if (!vec) return LLVMBuildLoad2(g->B, et, ptr, "");
  LLVMTypeRef vt = vec_of(g, et);
  LLVMTypeRef pv = vec_of(g, g->ptr);
  LLVMValueRef ones = cg_splat(g, LLVMConstInt(g->i1, 1, 0));
  LLVMValueRef args[4] = { ptr, cg_i32(g, 4), ones, LLVMGetPoison(vt) };
  LLVMTypeRef over[2] = { vt, pv };
  return cg_call_intr(g, "llvm.masked.gather", over, 2, args, 4);
}

static bool any_vec(XVal *a, int n) {
  for (int i = 0; i < n; i++) if (a[i].vec) return true;
  return false;
}

static XVal emit_LOAD(Gen *g, const XEnv *env, int n, XVal *a) {
  bool vec = any_vec(a, NODE->nargs);
  LLVMValueRef base;
  LLVMValueRef off = input_offset(g, env, NODE->imm.i, a, NODE->nargs, vec, &base);
  if (NODE->type == IR_FLOAT) return (XVal){ load_at(g, g->f32, base, off, vec), vec };
  return int_result(g, n, load_at(g, g->i32, base, off, vec), vec);
}

/*
** contains: exists j < shape[last]: input[idx..., j] == x. A loop over
** the last dim that ORs the lane-wise comparisons.
*/
static XVal emit_CONTAINS(Gen *g, const XEnv *env, int n, XVal *a) {
  int nidx = NODE->nargs - 1;
  bool vec = any_vec(a, NODE->nargs);
  LLVMValueRef base;
  LLVMValueRef off = input_offset(g, env, NODE->imm.i, a, nidx, vec, &base);
  LLVMValueRef in = LLVMBuildGEP2(g->B, g->input_ty, env->inputs, (LLVMValueRef[]){ cg_i64(g, NODE->imm.i) }, 1, "");
  LLVMValueRef len = LLVMBuildLoad2(g->B, g->i64,
                                    LLVMBuildGEP2(g->B, g->input_ty, in,
                                                  (LLVMValueRef[]){ cg_i64(g, 0), cg_i32(g, 1), cg_i64(g, nidx) }, 3, ""), "");
  LLVMValueRef str = LLVMBuildLoad2(g->B, g->i64,
                                    LLVMBuildGEP2(g->B, g->input_ty, in,
                                                  (LLVMValueRef[]){ cg_i64(g, 0), cg_i32(g, 2), cg_i64(g, nidx) }, 3, ""), "");
  XVal x = a[nidx];
  if (vec) x = lift(g, x);
  LLVMValueRef want = iresize(g, x.v, vec, 64);
  LLVMValueRef init = vec ? cg_splat(g, LLVMConstInt(g->i1, 0, 0)) : LLVMConstInt(g->i1, 0, 0);
  CgLoop l;
  LLVMValueRef j = cg_loop_open(g, &l, cg_i64(g, 0), len, cg_i64(g, 1), 1, &init, "contains");
  LLVMValueRef jo = LLVMBuildMul(g->B, j, str, "");
  LLVMValueRef o = LLVMBuildAdd(g->B, off, vec ? cg_splat(g, jo) : jo, "");
  LLVMValueRef e = iresize(g, load_at(g, g->i32, base, o, vec), vec, 64);
  LLVMValueRef hit = LLVMBuildOr(g->B, l.carry[0], LLVMBuildICmp(g->B, LLVMIntEQ, e, want, ""), "");
  cg_loop_close(g, &l, &hit);
  return (XVal){ l.carry[0], vec };
}

#undef NODE

static const EmitFn emitters[IR_NOPS] = {
#define X(e, name, arity, kind) [IR_##e] = emit_##e,
  IR_OPS(X)
#undef X
};

/*
** Emit root and what it depends on, in node order (topological). Values
** live in the current block, so each call emits afresh; LLVM's GVN and
** LICM share and hoist what is common.
*/
XVal cg_expr(Gen *g, const XEnv *env, int root) {
  const IrPattern *p = g->p;
  XVal *vals = calloc((size_t)root + 1, sizeof *vals);
  bool *need = calloc((size_t)root + 1, 1);
  need[root] = true;
  for (int i = root; i >= 0; i--)
    if (need[i])
      for (int j = 0; j < p->nodes[i].nargs; j++) need[p->nodes[i].args[j]] = true;
  for (int i = 0; i <= root; i++) {
    if (!need[i]) continue;
    const IrNode *nd = &p->nodes[i];
    XVal a[IR_MAXARGS];
    for (int j = 0; j < nd->nargs; j++) a[j] = vals[nd->args[j]];
    vals[i] = emitters[nd->op](g, env, i, a);
  }
  XVal r = vals[root];
  free(vals);
  free(need);
  return r;
}
