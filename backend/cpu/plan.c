/*
** plan.c -- the scheduled kernel IR (passes/passes.h) as LLVM IR: PlanExpr
** trees over the per-q-tile variables, token orders (tile coordinates and
** in-tile position -> token), and the kv iterators (boxes with their
** full/partial tests; dense where nothing was derived).
**
** Runtime-data iterators (index lists, data ranges) are walked densely
** with the variant's mask for now: correct (the mask decides every pair),
** but they visit every kv tile. See docs/cpu.md.
*/
#define CPU_INTERNAL
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"

static LLVMValueRef add(Gen *g, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildAdd(g->B, a, b, ""); }
static LLVMValueRef mul(Gen *g, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildMul(g->B, a, b, ""); }
static LLVMValueRef icmp(Gen *g, LLVMIntPredicate p, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildICmp(g->B, p, a, b, "");
}

/* floor(a / b) for b > 0 */
static LLVMValueRef fdiv(Gen *g, LLVMValueRef a, LLVMValueRef b) {
  LLVMValueRef q = LLVMBuildSDiv(g->B, a, b, ""), r = LLVMBuildSRem(g->B, a, b, "");
  LLVMValueRef fix = icmp(g, LLVMIntSLT, r, cg_i64(g, 0));
  return cg_select(g, fix, LLVMBuildSub(g->B, q, cg_i64(g, 1), ""), q);
}

static LLVMValueRef bool64(Gen *g, LLVMValueRef c) { return LLVMBuildZExt(g->B, c, g->i64, ""); }

/* a PlanExpr as an i64 (booleans 0/1) */
LLVMValueRef cg_pexpr(Gen *g, const PlanExpr *e, const PlanVals *pv) {
  if (!e) return cg_i64(g, 0);
  LLVMValueRef a = e->a[0] ? cg_pexpr(g, e->a[0], pv) : NULL;
  LLVMValueRef b = e->a[1] ? cg_pexpr(g, e->a[1], pv) : NULL;
  LLVMValueRef zero = cg_i64(g, 0);
  switch ((PlanExprOp)e->op) {
  case PE_CONST: return cg_i64(g, e->v);
  case PE_VAR: {
    LLVMValueRef v = e->var < PV_NVARS && e->axis < IR_MAXGRID ? pv->v[e->var][e->axis] : NULL;
    return v ? v : zero;
  }
  case PE_ADD: return add(g, a, b);
  case PE_SUB: return LLVMBuildSub(g->B, a, b, "");
  case PE_MUL: return mul(g, a, b);
  case PE_NEG: return LLVMBuildSub(g->B, zero, a, "");
  case PE_FDIV: return fdiv(g, a, b);
  case PE_CDIV: return LLVMBuildSub(g->B, zero, fdiv(g, LLVMBuildSub(g->B, zero, a, ""), b), "");
  case PE_FMOD: return LLVMBuildSub(g->B, a, mul(g, b, fdiv(g, a, b)), "");
  case PE_MIN: return cg_select(g, icmp(g, LLVMIntSLT, b, a), b, a);
  case PE_MAX: return cg_select(g, icmp(g, LLVMIntSGT, b, a), b, a);
  case PE_SELECT: return cg_select(g, icmp(g, LLVMIntNE, a, zero), b, cg_pexpr(g, e->a[2], pv));
  case PE_LT: return bool64(g, icmp(g, LLVMIntSLT, a, b));
  case PE_LE: return bool64(g, icmp(g, LLVMIntSLE, a, b));
  case PE_EQ: return bool64(g, icmp(g, LLVMIntEQ, a, b));
  case PE_NE: return bool64(g, icmp(g, LLVMIntNE, a, b));
  case PE_AND: return bool64(g, LLVMBuildAnd(g->B, icmp(g, LLVMIntNE, a, zero), icmp(g, LLVMIntNE, b, zero), ""));
  case PE_OR: return bool64(g, LLVMBuildOr(g->B, icmp(g, LLVMIntNE, a, zero), icmp(g, LLVMIntNE, b, zero), ""));
  case PE_NOT: return bool64(g, icmp(g, LLVMIntEQ, a, zero));
  default: return zero;
  }
}

static LLVMValueRef truth(Gen *g, const PlanExpr *e, const PlanVals *pv) {
  if (!e) return LLVMConstInt(g->i1, 1, 0);
  return icmp(g, LLVMIntNE, cg_pexpr(g, e, pv), cg_i64(g, 0));
}

/* --------------------------------------------------------- token orders */

/* n of axis a: the grid size, or the runtime sequence length */
static LLVMValueRef axis_n(Gen *g, const PlanAxis *ax, LLVMValueRef seqlen) {
  return ax->n ? cg_i64(g, ax->n) : seqlen;
}

/* tiles per residue along axis a: ceil(n / (box * dil)) */
static LLVMValueRef axis_P(Gen *g, const PlanAxis *ax, LLVMValueRef seqlen) {
  int64_t bd = ax->box * ax->dil;
  return LLVMBuildSDiv(g->B, add(g, axis_n(g, ax, seqlen), cg_i64(g, bd - 1)), cg_i64(g, bd), "");
}

LLVMValueRef cg_order_ntiles(Gen *g, const PlanOrder *o, LLVMValueRef seqlen) {
  LLVMValueRef n = cg_i64(g, 1);
  for (int a = 0; a < o->rank; a++) n = mul(g, n, mul(g, cg_i64(g, o->ax[a].dil), axis_P(g, &o->ax[a], seqlen)));
  return n;
}

void cg_order_coords(Gen *g, const PlanOrder *o, LLVMValueRef seqlen, LLVMValueRef t, LLVMValueRef *u) {
  for (int a = o->rank - 1; a >= 0; a--) {
    LLVMValueRef T = mul(g, cg_i64(g, o->ax[a].dil), axis_P(g, &o->ax[a], seqlen));
    u[a] = LLVMBuildSRem(g->B, t, T, "");
    t = LLVMBuildSDiv(g->B, t, T, "");
  }
}

/* the token at position pos of the tile with coordinates u, or -1 */
LLVMValueRef cg_order_token(Gen *g, const PlanOrder *o, LLVMValueRef seqlen, LLVMValueRef *u, LLVMValueRef pos) {
  LLVMValueRef i[IR_MAXGRID];
  for (int a = o->rank - 1; a >= 0; a--) {
    LLVMValueRef box = cg_i64(g, o->ax[a].box);
    i[a] = LLVMBuildSRem(g->B, pos, box, "");
    pos = LLVMBuildSDiv(g->B, pos, box, "");
  }
  LLVMValueRef tok = cg_i64(g, 0), ok = LLVMConstInt(g->i1, 1, 0);
  for (int a = 0; a < o->rank; a++) {
    const PlanAxis *ax = &o->ax[a];
    LLVMValueRef n = axis_n(g, ax, seqlen), c;
    if (ax->dil == 1) c = add(g, mul(g, u[a], cg_i64(g, ax->box)), i[a]);
    else {
      LLVMValueRef P = axis_P(g, ax, seqlen);
      LLVMValueRef r = LLVMBuildSDiv(g->B, u[a], P, ""), tj = LLVMBuildSRem(g->B, u[a], P, "");
      c = add(g, r, mul(g, cg_i64(g, ax->dil), add(g, mul(g, tj, cg_i64(g, ax->box)), i[a])));
    }
    ok = LLVMBuildAnd(g->B, ok, icmp(g, LLVMIntSLT, c, n), "");
    tok = add(g, mul(g, tok, n), c);
  }
  return cg_select(g, ok, tok, cg_i64(g, -1));
}

/* ------------------------------------------------------------ iterators */

/* every kv tile, through the callback as partial */
static void iterate_dense(Gen *g, const PlanOrder *ko, LLVMValueRef sk, CgKvTileFn fn, void *ud) {
  CgLoop l;
  LLVMValueRef t = cg_loop_open(g, &l, cg_i64(g, 0), cg_order_ntiles(g, ko, sk), cg_i64(g, 1), 0, NULL, "kv.dense");
  LLVMValueRef u[IR_MAXGRID];
  cg_order_coords(g, ko, sk, t, u);
  fn(g, ud, u, LLVMConstInt(g->i1, 0, 0));
  cg_loop_close(g, &l, NULL);
}

/* is tile u inside box bx (its may, and lo..hi on every axis)? */
static LLVMValueRef in_box(Gen *g, const PlanBox *bx, int rank, LLVMValueRef *u, LLVMValueRef *lo, LLVMValueRef *hi,
                           LLVMValueRef may) {
  LLVMValueRef in = may;
  for (int a = 0; a < rank; a++) {
    in = LLVMBuildAnd(g->B, in, icmp(g, LLVMIntSGE, u[a], lo[a]), "");
    in = LLVMBuildAnd(g->B, in, icmp(g, LLVMIntSLE, u[a], hi[a]), "");
  }
  return in;
}

/*
** The union of boxes: box i visits its tiles that no box j < i holds; a
** tile is full when any box says so (may, must, and flo..fhi per axis).
** Box bounds are computed once per q tile, before the loops.
*/
static void iterate_boxes(Gen *g, const PlanIter *it, int rank, const PlanVals *pv, CgKvTileFn fn, void *ud) {
  int nb = it->nboxes;
  LLVMValueRef (*lo)[IR_MAXGRID] = calloc((size_t)nb + 1, sizeof *lo), (*hi)[IR_MAXGRID] = calloc((size_t)nb + 1, sizeof *hi);
  LLVMValueRef (*flo)[IR_MAXGRID] = calloc((size_t)nb + 1, sizeof *flo), (*fhi)[IR_MAXGRID] = calloc((size_t)nb + 1, sizeof *fhi);
  LLVMValueRef *may = calloc((size_t)nb + 1, sizeof *may), *full = calloc((size_t)nb + 1, sizeof *full);
  for (int i = 0; i < nb; i++) {
    const PlanBox *bx = &it->boxes[i];
    may[i] = truth(g, bx->may, pv);
    full[i] = LLVMBuildAnd(g->B, may[i], truth(g, bx->must, pv), "");
    for (int a = 0; a < rank; a++) {
      lo[i][a] = cg_pexpr(g, bx->ax[a].lo, pv);
      hi[i][a] = cg_pexpr(g, bx->ax[a].hi, pv);
      flo[i][a] = bx->ax[a].flo ? cg_pexpr(g, bx->ax[a].flo, pv) : cg_i64(g, 1);
      fhi[i][a] = bx->ax[a].fhi ? cg_pexpr(g, bx->ax[a].fhi, pv) : cg_i64(g, 0);
    }
  }
  for (int i = 0; i < nb; i++) {
    LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(g->C, g->fn, "box"), next = LLVMAppendBasicBlockInContext(g->C, g->fn, "box.next");
    LLVMBuildCondBr(g->B, may[i], go, next);
    LLVMPositionBuilderAtEnd(g->B, go);
    CgLoop l[IR_MAXGRID];
    LLVMValueRef u[IR_MAXGRID];
    for (int a = 0; a < rank; a++)
      u[a] = cg_loop_open(g, &l[a], lo[i][a], add(g, hi[i][a], cg_i64(g, 1)), cg_i64(g, 1), 0, NULL, "kv.box");
    LLVMValueRef seen = LLVMConstInt(g->i1, 0, 0);
    for (int j = 0; j < i; j++) seen = LLVMBuildOr(g->B, seen, in_box(g, &it->boxes[j], rank, u, lo[j], hi[j], may[j]), "");
    LLVMValueRef isfull = LLVMConstInt(g->i1, 0, 0);
    for (int j = 0; j < nb; j++)
      isfull = LLVMBuildOr(g->B, isfull, in_box(g, &it->boxes[j], rank, u, flo[j], fhi[j], full[j]), "");
    LLVMBasicBlockRef visit = LLVMAppendBasicBlockInContext(g->C, g->fn, "kv.visit"), skip = LLVMAppendBasicBlockInContext(g->C, g->fn, "kv.seen");
    LLVMBuildCondBr(g->B, seen, skip, visit);
    LLVMPositionBuilderAtEnd(g->B, visit);
    fn(g, ud, u, isfull);
    LLVMBuildBr(g->B, skip);
    LLVMPositionBuilderAtEnd(g->B, skip);
    for (int a = rank - 1; a >= 0; a--) cg_loop_close(g, &l[a], NULL);
    LLVMBuildBr(g->B, next);
    LLVMPositionBuilderAtEnd(g->B, next);
  }
  free(lo); free(hi); free(flo); free(fhi); free(may); free(full);
}

void cg_plan_iterate(Gen *g, const Plan *pl, const PlanIter *it, const PlanVals *pv, CgKvTileFn fn, void *ud) {
  LLVMValueRef sk = pv->v[PV_SK][0];
  switch (it->kind) {
  case ITER_EMPTY: return;
  case ITER_RANGES:
  case ITER_BOXES:
    iterate_boxes(g, it, pl->kord.rank, pv, fn, ud);
    return;
  default:                          /* dense, and runtime-data iterators */
    iterate_dense(g, &pl->kord, sk, fn, ud);
    return;
  }
}
