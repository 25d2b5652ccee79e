/*
** plan.c -- the scheduled kernel IR (passes/passes.h) as LLVM IR: PlanExpr
** trees over the per-q-tile variables, token orders (tile coordinates and
** in-tile position -> token), and the kv iterators (boxes with their
** full/partial tests; dense where nothing was derived).
**
** Index lists are read from their runtime input per q tile; data ranges
** (documents) are computed in the kernel from the key expressions, with no
** pre-pass and no metadata.
*/
#define CPU_INTERNAL
#include <stdint.h>
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

/* does tile u of bn tokens hold a key of box bx's periodic filter (plan_period_hit)? */
static LLVMValueRef period_hit(Gen *g, const PlanBox *bx, int64_t bn, LLVMValueRef u) {
  const PlanPeriod *p = &bx->per;
  if (p->m <= 0 || bn >= p->m) return LLVMConstInt(g->i1, 1, 0);
  LLVMValueRef x = LLVMBuildURem(g->B, add(g, mul(g, u, cg_i64(g, bn)), cg_i64(g, p->off)), cg_i64(g, p->m), "");
  LLVMValueRef e = add(g, x, cg_i64(g, bn - 1));
  LLVMValueRef run = LLVMBuildAnd(g->B, icmp(g, LLVMIntSLE, x, cg_i64(g, p->hi)), icmp(g, LLVMIntSGE, e, cg_i64(g, p->lo)), "");
  return LLVMBuildOr(g->B, run, icmp(g, LLVMIntSGE, e, cg_i64(g, p->m + p->lo)), "");
}

/* is tile u inside box bx (its may, lo..hi on every axis, and its periodic filter)? */
static LLVMValueRef in_box(Gen *g, const PlanBox *bx, int rank, int64_t bn, LLVMValueRef *u, LLVMValueRef *lo,
                           LLVMValueRef *hi, LLVMValueRef may) {
  LLVMValueRef in = LLVMBuildAnd(g->B, may, period_hit(g, bx, bn, u[0]), "");
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
/* the bounds of a box for the current q tile */
typedef struct BoxVals { LLVMValueRef may, lo, hi; } BoxVals;

static void iterate_boxes(Gen *g, const PlanOrder *ko, const PlanIter *it, const PlanVals *pv, CgKvTileFn fn,
                          void *ud, BoxVals *keep) {
  int rank = ko->rank;
  LLVMValueRef T[IR_MAXGRID];             /* tiles per axis, to clamp the ranges */
  for (int a = 0; a < rank; a++) T[a] = mul(g, cg_i64(g, ko->ax[a].dil), axis_P(g, &ko->ax[a], pv->v[PV_SK][0]));
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
    if (keep) keep[i] = (BoxVals){ may[i], lo[i][0], hi[i][0] };
  }
  for (int i = 0; i < nb; i++) {
    LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(g->C, g->fn, "box"), next = LLVMAppendBasicBlockInContext(g->C, g->fn, "box.next");
    LLVMBuildCondBr(g->B, may[i], go, next);
    LLVMPositionBuilderAtEnd(g->B, go);
    CgLoop l[IR_MAXGRID];
    LLVMValueRef u[IR_MAXGRID];
    for (int a = 0; a < rank; a++) {
      LLVMValueRef from = cg_select(g, icmp(g, LLVMIntSLT, lo[i][a], cg_i64(g, 0)), cg_i64(g, 0), lo[i][a]);
      LLVMValueRef to = add(g, hi[i][a], cg_i64(g, 1));
      to = cg_select(g, icmp(g, LLVMIntSGT, to, T[a]), T[a], to);
      u[a] = cg_loop_open(g, &l[a], from, to, cg_i64(g, 1), 0, NULL, "kv.box");
    }
    LLVMValueRef seen = LLVMBuildNot(g->B, period_hit(g, &it->boxes[i], ko->tile, u[0]), "");   /* not this box's */
    for (int j = 0; j < i; j++)
      seen = LLVMBuildOr(g->B, seen, in_box(g, &it->boxes[j], rank, ko->tile, u, lo[j], hi[j], may[j]), "");
    LLVMValueRef isfull = LLVMConstInt(g->i1, 0, 0);
    for (int j = 0; j < nb; j++)
      isfull = LLVMBuildOr(g->B, isfull, in_box(g, &it->boxes[j], rank, ko->tile, u, flo[j], fhi[j], full[j]), "");
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

/* if (c) { then } in the current function; returns after positioning at the join */
static void if_then(Gen *g, LLVMValueRef c, LLVMBasicBlockRef *join) {
  LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(g->C, g->fn, "then");
  *join = LLVMAppendBasicBlockInContext(g->C, g->fn, "endif");
  LLVMBuildCondBr(g->B, c, then, *join);
  LLVMPositionBuilderAtEnd(g->B, then);
}

static void end_if(Gen *g, LLVMBasicBlockRef join) {
  LLVMBuildBr(g->B, join);
  LLVMPositionBuilderAtEnd(g->B, join);
}

static LLVMValueRef in_range(Gen *g, LLVMValueRef u, LLVMValueRef lo, LLVMValueRef hi) {
  return LLVMBuildAnd(g->B, icmp(g, LLVMIntSGE, u, lo), icmp(g, LLVMIntSLE, u, hi), "");
}

/*
** The index list (ITER_LIST, passes.h), after the static boxes: mark the
** values the q tile's rows name in g->seen (one byte per value, cleared
** per q tile), then visit the kv tiles of each marked value in ascending
** order, except those a static box visited and those outside clip. A
** list longer than the scratch (more than CPU_LIST_MAX values) is walked
** densely instead.
*/
static void iterate_list(Gen *g, const Plan *pl, const PlanIter *it, const PlanVals *pv, CgKvTileFn fn, void *ud,
                         const BoxVals *bv) {
  const PlanList *L = it->list;
  const IrInput *in = &pl->pat->inputs[L->input];
  LLVMValueRef sk = pv->v[PV_SK][0], zero = cg_i64(g, 0), one = cg_i64(g, 1);
  LLVMValueRef cmay = truth(g, L->clip.may, pv);
  LLVMValueRef cfull = LLVMBuildAnd(g->B, cmay, truth(g, L->clip.must, pv), "");
  LLVMValueRef clo = cg_pexpr(g, L->clip.ax[0].lo, pv), chi = cg_pexpr(g, L->clip.ax[0].hi, pv);
  LLVMValueRef cflo = cg_pexpr(g, L->clip.ax[0].flo, pv), cfhi = cg_pexpr(g, L->clip.ax[0].fhi, pv);
  LLVMBasicBlockRef done;
  if_then(g, cmay, &done);
  LLVMValueRef idx[IR_MAXDIMS];
  for (int i = 0; i < in->rank; i++) idx[i] = i != L->dim && L->row[i] ? cg_pexpr(g, L->row[i], pv) : zero;
  LLVMValueRef rlo = L->vdim >= 0 ? idx[L->vdim] : zero, rhi = L->vdim >= 0 ? cg_pexpr(g, L->row_hi, pv) : zero;
  LLVMValueRef len = cg_pexpr(g, L->len, pv), nvals = cg_pexpr(g, L->nvals, pv);
  LLVMValueRef nkt = cg_order_ntiles(g, &pl->kord, sk);
  LLVMBasicBlockRef big = LLVMAppendBasicBlockInContext(g->C, g->fn, "list.dense");
  LLVMBasicBlockRef fits = LLVMAppendBasicBlockInContext(g->C, g->fn, "list");
  LLVMBuildCondBr(g->B, icmp(g, LLVMIntSGT, nvals, cg_i64(g, CPU_LIST_MAX)), big, fits);
  LLVMPositionBuilderAtEnd(g->B, big);
  {                                            /* every tile outside the boxes */
    CgLoop l;
    LLVMValueRef u = cg_loop_open(g, &l, zero, nkt, one, 0, NULL, "kv.list.dense");
    LLVMValueRef inbox = LLVMConstInt(g->i1, 0, 0);
    for (int j = 0; j < it->nboxes; j++)
      inbox = LLVMBuildOr(g->B, inbox, LLVMBuildAnd(g->B, LLVMBuildAnd(g->B, bv[j].may, in_range(g, u, bv[j].lo, bv[j].hi), ""),
                                                    period_hit(g, &it->boxes[j], pl->kord.tile, u), ""), "");
    LLVMBasicBlockRef join;
    if_then(g, LLVMBuildNot(g->B, inbox, ""), &join);
    fn(g, ud, &u, LLVMConstInt(g->i1, 0, 0));
    end_if(g, join);
    cg_loop_close(g, &l, NULL);
  }
  LLVMBuildBr(g->B, done);
  LLVMPositionBuilderAtEnd(g->B, fits);

  /* the input, and the values its rows name */
  LLVMValueRef inp = LLVMBuildGEP2(g->B, g->input_ty, g->list_inputs, (LLVMValueRef[]){ cg_i64(g, L->input) }, 1, "");
  LLVMValueRef data = LLVMBuildLoad2(g->B, g->ptr, LLVMBuildStructGEP2(g->B, g->input_ty, inp, 0, ""), "");
  LLVMValueRef shape[IR_MAXDIMS], stride[IR_MAXDIMS];
  for (int i = 0; i < in->rank; i++) {
    shape[i] = LLVMBuildLoad2(g->B, g->i64, LLVMBuildGEP2(g->B, g->input_ty, inp,
                              (LLVMValueRef[]){ zero, cg_i32(g, 1), cg_i64(g, i) }, 3, ""), "");
    stride[i] = LLVMBuildLoad2(g->B, g->i64, LLVMBuildGEP2(g->B, g->input_ty, inp,
                               (LLVMValueRef[]){ zero, cg_i32(g, 2), cg_i64(g, i) }, 3, ""), "");
  }
  {
    CgLoop l;
    LLVMValueRef v = cg_loop_open(g, &l, zero, nvals, one, 0, NULL, "seen.clear");
    LLVMBuildStore(g->B, LLVMConstInt(g->i8, 0, 0), LLVMBuildGEP2(g->B, g->i8, g->list_seen, &v, 1, ""));
    cg_loop_close(g, &l, NULL);
  }
  CgLoop lr, lj;
  LLVMValueRef row = cg_loop_open(g, &lr, rlo, add(g, rhi, one), one, 0, NULL, "list.row");
  LLVMValueRef j = cg_loop_open(g, &lj, zero, len, one, 0, NULL, "list.j");
  LLVMValueRef ok = LLVMConstInt(g->i1, 1, 0), off = zero;
  for (int i = 0; i < in->rank; i++) {
    LLVMValueRef x = i == L->dim ? j : i == L->vdim ? row : idx[i];
    ok = LLVMBuildAnd(g->B, ok, LLVMBuildAnd(g->B, icmp(g, LLVMIntSGE, x, zero), icmp(g, LLVMIntSLT, x, shape[i]), ""), "");
    off = add(g, off, mul(g, x, stride[i]));
  }
  LLVMBasicBlockRef join;
  if_then(g, ok, &join);
  LLVMValueRef p = LLVMBuildGEP2(g->B, in->dtype == DT_I32 ? g->i32 : g->f32, data, &off, 1, "");
  LLVMValueRef e = LLVMBuildLoad2(g->B, in->dtype == DT_I32 ? g->i32 : g->f32, p, "");
  LLVMValueRef val, take = LLVMConstInt(g->i1, 1, 0);
  if (L->kind == LIST_VALUES) {
    val = in->dtype == DT_I32 ? LLVMBuildSExt(g->B, e, g->i64, "") : LLVMBuildFPToSI(g->B, e, g->i64, "");
  } else {
    val = j;
    LLVMValueRef x = in->dtype == DT_I32 ? LLVMBuildSIToFP(g->B, e, LLVMDoubleTypeInContext(g->C), "")
                                         : LLVMBuildFPExt(g->B, e, LLVMDoubleTypeInContext(g->C), "");
    LLVMValueRef y = LLVMConstReal(LLVMDoubleTypeInContext(g->C), (double)L->cmpval);
    LLVMRealPredicate pr;
    switch ((IrOp)L->cmp) {
    case IR_LT: pr = LLVMRealOLT; break;
    case IR_LE: pr = LLVMRealOLE; break;
    case IR_GT: pr = LLVMRealOGT; break;
    case IR_GE: pr = LLVMRealOGE; break;
    case IR_EQ: pr = LLVMRealOEQ; break;
    case IR_NE: pr = LLVMRealUNE; break;
    default: pr = LLVMRealPredicateFalse; break;
    }
    take = LLVMBuildFCmp(g->B, pr, x, y, "");
  }
  take = LLVMBuildAnd(g->B, take, in_range(g, val, zero, LLVMBuildSub(g->B, nvals, one, "")), "");
  LLVMBasicBlockRef mark;
  if_then(g, take, &mark);
  LLVMBuildStore(g->B, LLVMConstInt(g->i8, 1, 0), LLVMBuildGEP2(g->B, g->i8, g->list_seen, &val, 1, ""));
  end_if(g, mark);
  end_if(g, join);
  cg_loop_close(g, &lj, NULL);
  cg_loop_close(g, &lr, NULL);

  /* the tiles of the marked values */
  LLVMValueRef one_row = icmp(g, LLVMIntEQ, rlo, rhi);
  CgLoop lv, lu;
  LLVMValueRef v = cg_loop_open(g, &lv, zero, nvals, one, 0, NULL, "list.v");
  LLVMValueRef s = LLVMBuildLoad2(g->B, g->i8, LLVMBuildGEP2(g->B, g->i8, g->list_seen, &v, 1, ""), "");
  LLVMBasicBlockRef vj;
  if_then(g, icmp(g, LLVMIntNE, LLVMBuildZExt(g->B, s, g->i64, ""), zero), &vj);
  LLVMValueRef bn = cg_i64(g, pl->sched.bn), unit = cg_i64(g, L->unit);
  LLVMValueRef t0 = LLVMBuildSDiv(g->B, mul(g, v, unit), bn, "");
  LLVMValueRef t1 = LLVMBuildSDiv(g->B, add(g, mul(g, v, unit), cg_i64(g, L->unit - 1)), bn, "");
  LLVMValueRef last = LLVMBuildSub(g->B, nkt, one, "");
  t1 = cg_select(g, icmp(g, LLVMIntSGT, t1, last), last, t1);
  LLVMValueRef u = cg_loop_open(g, &lu, t0, add(g, t1, one), one, 0, NULL, "list.u");
  LLVMValueRef inbox = LLVMConstInt(g->i1, 0, 0);
  for (int b = 0; b < it->nboxes; b++)
    inbox = LLVMBuildOr(g->B, inbox, LLVMBuildAnd(g->B, LLVMBuildAnd(g->B, bv[b].may, in_range(g, u, bv[b].lo, bv[b].hi), ""),
                                                  period_hit(g, &it->boxes[b], pl->kord.tile, u), ""), "");
  LLVMValueRef go = LLVMBuildAnd(g->B, LLVMBuildNot(g->B, inbox, ""), in_range(g, u, clo, chi), "");
  LLVMBasicBlockRef uj;
  if_then(g, go, &uj);
  LLVMValueRef full = LLVMConstInt(g->i1, L->full, 0);
  full = LLVMBuildAnd(g->B, full, one_row, "");
  full = LLVMBuildAnd(g->B, full, LLVMBuildAnd(g->B, cfull, in_range(g, u, cflo, cfhi), ""), "");
  full = LLVMBuildAnd(g->B, full, icmp(g, LLVMIntSLE, mul(g, add(g, u, one), bn), sk), "");
  fn(g, ud, &u, full);
  end_if(g, uj);
  cg_loop_close(g, &lu, NULL);
  end_if(g, vj);
  cg_loop_close(g, &lv, NULL);
  end_if(g, done);
}

/* key node n of a data iterator at token tok (scalar; i64) */
static LLVMValueRef key_at(Gen *g, const PlanVals *pv, int n, LLVMValueRef tok) {
  XEnv e;
  memset(&e, 0, sizeof e);
  e.b = (XVal){ pv->v[PV_B][0], false };
  e.h = (XVal){ pv->v[PV_H][0], false };
  e.sq = (XVal){ pv->v[PV_SQ][0], false };
  e.sk = (XVal){ pv->v[PV_SK][0], false };
  e.q = e.k = (XVal){ tok, false };
  cg_coords(g, tok, e.qc);
  cg_coords(g, tok, e.kc);
  e.inputs = g->list_inputs;
  e.s = (XVal){ cg_f32(g, 0), false };
  XVal x = cg_expr(g, &e, n);
  LLVMTypeRef t = LLVMTypeOf(x.v);
  if (LLVMGetTypeKind(t) == LLVMFloatTypeKind) return LLVMBuildFPToSI(g->B, x.v, g->i64, "");
  return LLVMGetIntTypeWidth(t) < 64 ? LLVMBuildSExt(g->B, x.v, g->i64, "") : x.v;
}

/*
** Data ranges (ITER_DATA), computed in the kernel instead of by a
** pre-pass: the q tile's key range [qmin, qmax] over its valid tokens,
** then for each kv tile in clip's range (and not in a static box) its key
** range over its valid tokens, visited and tagged full by the rules of
** passes.h. O(S) key evaluations per q tile instead of the mask on every
** pair; no metadata.
*/
static void iterate_data(Gen *g, const Plan *pl, const PlanIter *it, const PlanVals *pv, CgKvTileFn fn, void *ud,
                         const BoxVals *bv) {
  const PlanData *D = it->data;
  LLVMValueRef sk = pv->v[PV_SK][0], zero = cg_i64(g, 0), one = cg_i64(g, 1);
  LLVMValueRef cmay = truth(g, D->clip.may, pv);
  LLVMValueRef cfull = LLVMBuildAnd(g->B, cmay, truth(g, D->clip.must, pv), "");
  LLVMValueRef clo = cg_pexpr(g, D->clip.ax[0].lo, pv), chi = cg_pexpr(g, D->clip.ax[0].hi, pv);
  LLVMValueRef cflo = cg_pexpr(g, D->clip.ax[0].flo, pv), cfhi = cg_pexpr(g, D->clip.ax[0].fhi, pv);
  LLVMBasicBlockRef done;
  if_then(g, cmay, &done);
  /* the q tile's key range */
  LLVMValueRef init[2] = { cg_i64(g, INT64_MAX), cg_i64(g, INT64_MIN) };
  CgLoop lq;
  LLVMValueRef i = cg_loop_open(g, &lq, zero, cg_i64(g, g->BM), one, 2, init, "data.q");
  LLVMValueRef tok = LLVMBuildLoad2(g->B, g->i64, LLVMBuildInBoundsGEP2(g->B, g->i64, g->list_qtok, &i, 1, ""), "");
  LLVMValueRef valid = icmp(g, LLVMIntSGE, tok, zero);
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(g->B);
  LLVMBasicBlockRef kq = LLVMAppendBasicBlockInContext(g->C, g->fn, "data.qkey");
  LLVMBasicBlockRef jq = LLVMAppendBasicBlockInContext(g->C, g->fn, "data.qnext");
  LLVMBuildCondBr(g->B, valid, kq, jq);
  LLVMPositionBuilderAtEnd(g->B, kq);
  LLVMValueRef key = key_at(g, pv, D->qkey, tok);
  LLVMValueRef mn = cg_select(g, icmp(g, LLVMIntSLT, key, lq.carry[0]), key, lq.carry[0]);
  LLVMValueRef mx = cg_select(g, icmp(g, LLVMIntSGT, key, lq.carry[1]), key, lq.carry[1]);
  LLVMBasicBlockRef kqe = LLVMGetInsertBlock(g->B);
  LLVMBuildBr(g->B, jq);
  LLVMPositionBuilderAtEnd(g->B, jq);
  LLVMValueRef pmn = LLVMBuildPhi(g->B, g->i64, ""), pmx = LLVMBuildPhi(g->B, g->i64, "");
  LLVMAddIncoming(pmn, (LLVMValueRef[]){ lq.carry[0], mn }, (LLVMBasicBlockRef[]){ pre, kqe }, 2);
  LLVMAddIncoming(pmx, (LLVMValueRef[]){ lq.carry[1], mx }, (LLVMBasicBlockRef[]){ pre, kqe }, 2);
  cg_loop_close(g, &lq, (LLVMValueRef[]){ pmn, pmx });
  LLVMValueRef a0 = lq.carry[0], a1 = lq.carry[1];

  /* the kv tiles in clip's range */
  LLVMValueRef nkt = cg_order_ntiles(g, &pl->kord, sk), bn = cg_i64(g, pl->sched.bn);
  LLVMValueRef from = cg_select(g, icmp(g, LLVMIntSLT, clo, zero), zero, clo);
  LLVMValueRef to = add(g, chi, one);
  to = cg_select(g, icmp(g, LLVMIntSGT, to, nkt), nkt, to);
  CgLoop lu;
  LLVMValueRef u = cg_loop_open(g, &lu, from, to, one, 0, NULL, "data.u");
  LLVMValueRef inbox = LLVMConstInt(g->i1, 0, 0);
  for (int b = 0; b < it->nboxes; b++)
    inbox = LLVMBuildOr(g->B, inbox, LLVMBuildAnd(g->B, LLVMBuildAnd(g->B, bv[b].may, in_range(g, u, bv[b].lo, bv[b].hi), ""),
                                                  period_hit(g, &it->boxes[b], pl->kord.tile, u), ""), "");
  LLVMBasicBlockRef uj;
  if_then(g, LLVMBuildNot(g->B, inbox, ""), &uj);
  LLVMValueRef k0 = mul(g, u, bn);
  LLVMValueRef n = LLVMBuildSub(g->B, sk, k0, "");
  n = cg_select(g, icmp(g, LLVMIntSGT, n, bn), bn, n);
  CgLoop lk;
  LLVMValueRef j = cg_loop_open(g, &lk, zero, n, one, 2, init, "data.k");
  LLVMValueRef kk = key_at(g, pv, D->kkey, add(g, k0, j));
  LLVMValueRef kmn = cg_select(g, icmp(g, LLVMIntSLT, kk, lk.carry[0]), kk, lk.carry[0]);
  LLVMValueRef kmx = cg_select(g, icmp(g, LLVMIntSGT, kk, lk.carry[1]), kk, lk.carry[1]);
  cg_loop_close(g, &lk, (LLVMValueRef[]){ kmn, kmx });
  LLVMValueRef b0 = lk.carry[0], b1 = lk.carry[1], vis, full;
  switch ((IrOp)D->cmp) {
  case IR_EQ:
    vis = LLVMBuildAnd(g->B, icmp(g, LLVMIntSLE, b0, a1), icmp(g, LLVMIntSGE, b1, a0), "");
    full = LLVMBuildAnd(g->B, LLVMBuildAnd(g->B, icmp(g, LLVMIntEQ, a0, a1), icmp(g, LLVMIntEQ, b0, b1), ""),
                        icmp(g, LLVMIntEQ, a0, b0), "");
    break;
  case IR_GE: vis = icmp(g, LLVMIntSLE, b0, a1); full = icmp(g, LLVMIntSLE, b1, a0); break;  /* key_q >= key_k */
  case IR_GT: vis = icmp(g, LLVMIntSLT, b0, a1); full = icmp(g, LLVMIntSLT, b1, a0); break;
  case IR_LE: vis = icmp(g, LLVMIntSGE, b1, a0); full = icmp(g, LLVMIntSGE, b0, a1); break;  /* key_q <= key_k */
  case IR_LT: vis = icmp(g, LLVMIntSGT, b1, a0); full = icmp(g, LLVMIntSGT, b0, a1); break;
  default: vis = LLVMConstInt(g->i1, 1, 0); full = LLVMConstInt(g->i1, 0, 0); break;
  }
  vis = LLVMBuildAnd(g->B, vis, icmp(g, LLVMIntSGT, n, zero), "");
  full = LLVMBuildAnd(g->B, full, LLVMBuildAnd(g->B, cfull, in_range(g, u, cflo, cfhi), ""), "");
  full = LLVMBuildAnd(g->B, full, icmp(g, LLVMIntSLE, mul(g, add(g, u, one), bn), sk), "");
  LLVMBasicBlockRef vj;
  if_then(g, vis, &vj);
  fn(g, ud, &u, full);
  end_if(g, vj);
  end_if(g, uj);
  cg_loop_close(g, &lu, NULL);
  end_if(g, done);
}
/* the iterator's boxes (their bounds kept), then its list or data part,
   which skips what the boxes visited */
typedef void (*IterPartFn)(Gen *g, const Plan *pl, const PlanIter *it, const PlanVals *pv,
                           CgKvTileFn fn, void *ud, const BoxVals *bv);
static void iterate_boxes_then(Gen *g, const Plan *pl, const PlanIter *it, const PlanVals *pv,
                               CgKvTileFn fn, void *ud, IterPartFn part) {
  BoxVals *bv = calloc((size_t)it->nboxes + 1, sizeof *bv);
  iterate_boxes(g, &pl->kord, it, pv, fn, ud, bv);
  part(g, pl, it, pv, fn, ud, bv);
  free(bv);
}


void cg_plan_iterate(Gen *g, const Plan *pl, const PlanIter *it, const PlanVals *pv, CgKvTileFn fn, void *ud) {
  LLVMValueRef sk = pv->v[PV_SK][0];
  switch (it->kind) {
  case ITER_EMPTY: return;
  case ITER_RANGES:
  case ITER_BOXES:
    iterate_boxes(g, &pl->kord, it, pv, fn, ud, NULL);
    return;
  case ITER_LIST:
    if (it->list && pl->kord.rank == 1 && pl->kord.ax[0].dil == 1 && g->list_seen) {
      iterate_boxes_then(g, pl, it, pv, fn, ud, iterate_list);
      return;
    }
    iterate_dense(g, &pl->kord, sk, fn, ud);
    return;
  case ITER_DATA:
    if (it->data && pl->kord.rank == 1 && pl->kord.ax[0].dil == 1 && pl->qord.rank == 1 &&
        pl->qord.ax[0].dil == 1 && g->list_qtok && g->list_inputs) {
      iterate_boxes_then(g, pl, it, pv, fn, ud, iterate_data);
      return;
    }
    iterate_dense(g, &pl->kord, sk, fn, ud);
    return;
  default:                          /* dense, and runtime-data iterators */
    iterate_dense(g, &pl->kord, sk, fn, ud);
    return;
  }
}
