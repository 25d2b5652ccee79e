/*
** iterate.c -- the iterate pass: per variant, the kv iterator of a q tile.
**
** For each DNF term (terms.c) the q-side bounds of its atoms are turned
** into PlanExprs over the q tile by interval arithmetic (plan_interval):
** a bound lo(q) <= k gives the visit bound min over the tile of lo(q) and
** the full bound max over the tile; the coordinate bounds become kv tile
** ranges through the kv order's formulas (floor division by the box,
** residue classes for dilated axes, clamped to existing tiles, and to
** padding-free tiles for the full range). Conditions on q alone guard the
** box (`may`: true for some q of the tile; `must`: for all of them).
** One term holding a list or data atom becomes the iterator's dynamic
** part, clipped by the term's other atoms.
*/
#include <string.h>

#include "passes/passes.h"

typedef struct Ctx {
  Plan *pl;
  Arena *A;
  Diag *d;
  const char *why;     /* a note for explain */
} Ctx;

/* ------------------------------------------------- NULL-aware builders */

static const PlanExpr *K(Ctx *c, int64_t v) { return pe_const(c->A, v); }
static const PlanExpr *op2(Ctx *c, PlanExprOp op, const PlanExpr *a, const PlanExpr *b) {
  return a && b ? pe_op(c->A, op, a, b, NULL) : NULL;
}
static const PlanExpr *op1(Ctx *c, PlanExprOp op, const PlanExpr *a) {
  return a ? pe_op(c->A, op, a, NULL, NULL) : NULL;
}
static const PlanExpr *sel(Ctx *c, const PlanExpr *k, const PlanExpr *a, const PlanExpr *b) {
  return k && a && b ? pe_op(c->A, PE_SELECT, k, a, b) : NULL;
}
static const PlanExpr *var(Ctx *c, PlanVar v, int axis) { return pe_var(c->A, v, axis); }

/* ------------------------------------------------------ q-side intervals */

/* coordinates of the q tile along q-order axis a */
static PeIval qaxis(Ctx *c, int a) {
  const PlanAxis *ax = &c->pl->qord.ax[a];
  if (ax->dil == 1) {
    const PlanExpr *lo = op2(c, PE_MUL, K(c, ax->box), var(c, PV_QT, a));
    const PlanExpr *hi = op2(c, PE_MIN, op2(c, PE_ADD, lo, K(c, ax->box - 1)),
                             op2(c, PE_SUB, ax->size, K(c, 1)));
    return (PeIval){ lo, hi };
  }
  return (PeIval){ var(c, PV_QLO, a), var(c, PV_QHI, a) };
}

static PeIval iv_mod(Ctx *c, PeIval x, int64_t m) {
  if (!x.lo || !x.hi) return (PeIval){ K(c, 0), K(c, m - 1) };
  const PlanExpr *same = op2(c, PE_EQ, op2(c, PE_FDIV, x.lo, K(c, m)), op2(c, PE_FDIV, x.hi, K(c, m)));
  return (PeIval){ sel(c, same, op2(c, PE_FMOD, x.lo, K(c, m)), K(c, 0)),
                   sel(c, same, op2(c, PE_FMOD, x.hi, K(c, m)), K(c, m - 1)) };
}

static PeIval iv_fdiv(Ctx *c, PeIval x, int64_t m) {
  return (PeIval){ op2(c, PE_FDIV, x.lo, K(c, m)), op2(c, PE_FDIV, x.hi, K(c, m)) };
}

static PeIval leaf_q(Ctx *c) {
  const Plan *pl = c->pl;
  if (!pl->sched.grid) return qaxis(c, 0);
  PeIval r = { K(c, 0), K(c, 0) };
  int64_t stride = 1;
  for (int a = pl->pat->grid_rank - 1; a >= 0; a--) {
    PeIval x = qaxis(c, a);
    r.lo = op2(c, PE_ADD, r.lo, op2(c, PE_MUL, K(c, stride), x.lo));
    r.hi = op2(c, PE_ADD, r.hi, op2(c, PE_MUL, K(c, stride), x.hi));
    stride *= pl->pat->grid[a];
  }
  return r;
}

static PeIval leaf_qc(Ctx *c, int a) {
  const IrPattern *p = c->pl->pat;
  if (c->pl->sched.grid) return qaxis(c, a);
  if (p->grid_rank <= 1) return qaxis(c, 0);
  int64_t stride = 1;
  for (int i = p->grid_rank - 1; i > a; i--) stride *= p->grid[i];
  PeIval x = iv_fdiv(c, qaxis(c, 0), stride);
  return a == 0 ? x : iv_mod(c, x, p->grid[a]);
}

static PeIval ival(Ctx *c, int n);

/* the q-order axis a node is the plain coordinate of, or -1 */
static int q_axis_of(Ctx *c, int n) {
  const Plan *pl = c->pl;
  const IrNode *nd = &pl->pat->nodes[n];
  bool grid_pat = pl->pat->grid_rank > 1;
  if (nd->op == IR_Q) return grid_pat && pl->sched.grid ? -1 : 0;
  if (nd->op == IR_QC) {
    if (!grid_pat) return nd->imm.i == 0 ? 0 : -1;
    return pl->sched.grid && nd->imm.i < pl->qord.rank ? (int)nd->imm.i : -1;
  }
  return -1;
}

static PeIval bool_cmp(Ctx *c, IrOp op, PeIval x, PeIval y) {
  const PlanExpr *must = NULL, *may = NULL;
  switch (op) {
  case IR_GT: { PeIval t = x; x = y; y = t; op = IR_LT; break; }
  case IR_GE: { PeIval t = x; x = y; y = t; op = IR_LE; break; }
  default: break;
  }
  switch (op) {
  case IR_LT:
  case IR_LE: {
    PlanExprOp o = op == IR_LT ? PE_LT : PE_LE;
    must = op2(c, o, x.hi, y.lo);
    may = op2(c, o, x.lo, y.hi);
    break;
  }
  case IR_EQ:
  case IR_NE: {
    const PlanExpr *point = op2(c, PE_AND, op2(c, PE_AND, op2(c, PE_EQ, x.lo, x.hi), op2(c, PE_EQ, y.lo, y.hi)),
                                op2(c, PE_EQ, x.lo, y.lo));
    const PlanExpr *meet = op2(c, PE_AND, op2(c, PE_LE, x.lo, y.hi), op2(c, PE_LE, y.lo, x.hi));
    if (op == IR_EQ) { must = point; may = meet; }
    else { must = op1(c, PE_NOT, meet); may = op1(c, PE_NOT, point); }
    break;
  }
  default: break;
  }
  return (PeIval){ must ? must : K(c, 0), may ? may : K(c, 1) };
}

/* interval of node n over the q tile; see passes.h */
static PeIval ival_uncached(Ctx *c, int n) {
  const IrNode *nd = &c->pl->pat->nodes[n];
  const PeIval none = { NULL, NULL };
  const PeIval unknown_bool = { K(c, 0), K(c, 1) };
  PeIval x = none, y = none, z = none;
  int64_t cv;
  if (nd->type == IR_FLOAT) return none;
  switch (nd->op) {
  case IR_CONST: return (PeIval){ K(c, nd->imm.i), K(c, nd->imm.i) };
  case IR_Q: return leaf_q(c);
  case IR_QC: return leaf_qc(c, (int)nd->imm.i);
  case IR_BATCH: return (PeIval){ var(c, PV_B, 0), var(c, PV_B, 0) };
  case IR_HEAD: return (PeIval){ var(c, PV_H, 0), var(c, PV_H, 0) };
  case IR_SEQQ: return (PeIval){ var(c, PV_SQ, 0), var(c, PV_SQ, 0) };
  case IR_SEQK: return (PeIval){ var(c, PV_SK, 0), var(c, PV_SK, 0) };
  case IR_LOAD: case IR_K: case IR_KC: case IR_SCORE: return none;
  case IR_CONTAINS: return unknown_bool;
  default: break;
  }
  if (nd->nargs > 0) x = ival(c, nd->args[0]);
  if (nd->nargs > 1) y = ival(c, nd->args[1]);
  if (nd->nargs > 2) z = ival(c, nd->args[2]);
  bool ty_bool_args = nd->nargs > 0 && c->pl->pat->nodes[nd->args[0]].type == IR_BOOL;
  switch (nd->op) {
  case IR_ADD: return (PeIval){ op2(c, PE_ADD, x.lo, y.lo), op2(c, PE_ADD, x.hi, y.hi) };
  case IR_SUB: return (PeIval){ op2(c, PE_SUB, x.lo, y.hi), op2(c, PE_SUB, x.hi, y.lo) };
  case IR_NEG: return (PeIval){ op1(c, PE_NEG, x.hi), op1(c, PE_NEG, x.lo) };
  case IR_MUL:
    if (pe_is_const(y.lo, &cv) && pe_same(y.lo, y.hi)) {
    scale:
      if (cv >= 0) return (PeIval){ op2(c, PE_MUL, K(c, cv), x.lo), op2(c, PE_MUL, K(c, cv), x.hi) };
      return (PeIval){ op2(c, PE_MUL, K(c, cv), x.hi), op2(c, PE_MUL, K(c, cv), x.lo) };
    }
    if (pe_is_const(x.lo, &cv) && pe_same(x.lo, x.hi)) { x = y; goto scale; }
    if (x.lo && y.lo && pe_same(x.lo, x.hi) && pe_same(y.lo, y.hi)) {
      const PlanExpr *p = op2(c, PE_MUL, x.lo, y.lo);
      return (PeIval){ p, p };
    }
    return none;
  case IR_IDIV:
    if (pe_is_const(y.lo, &cv) && pe_same(y.lo, y.hi) && cv > 0) return iv_fdiv(c, x, cv);
    return none;
  case IR_MOD:
    if (pe_is_const(y.lo, &cv) && pe_same(y.lo, y.hi) && cv > 0) {
      int a = q_axis_of(c, nd->args[0]);      /* q % d on an axis grouped by d: the residue */
      if (a >= 0 && c->pl->qord.ax[a].dil == cv) return (PeIval){ var(c, PV_QRES, a), var(c, PV_QRES, a) };
      return iv_mod(c, x, cv);
    }
    return none;
  case IR_MIN:
    return (PeIval){ op2(c, PE_MIN, x.lo, y.lo),
                     !x.hi ? y.hi : !y.hi ? x.hi : op2(c, PE_MIN, x.hi, y.hi) };
  case IR_MAX:
    return (PeIval){ !x.lo ? y.lo : !y.lo ? x.lo : op2(c, PE_MAX, x.lo, y.lo),
                     op2(c, PE_MAX, x.hi, y.hi) };
  case IR_ABS: {
    const PlanExpr *lo;
    if (x.lo && x.hi)
      lo = sel(c, op2(c, PE_LE, K(c, 0), x.lo), x.lo, sel(c, op2(c, PE_LE, x.hi, K(c, 0)), op1(c, PE_NEG, x.hi), K(c, 0)));
    else if (x.hi)
      lo = sel(c, op2(c, PE_LE, x.hi, K(c, 0)), op1(c, PE_NEG, x.hi), K(c, 0));
    else if (x.lo)
      lo = sel(c, op2(c, PE_LE, K(c, 0), x.lo), x.lo, K(c, 0));
    else
      lo = K(c, 0);
    return (PeIval){ lo, op2(c, PE_MAX, op1(c, PE_NEG, x.lo), x.hi) };
  }
  case IR_SELECT: {
    const PlanExpr *must = x.lo, *may = x.hi;
    const PlanExpr *lo = sel(c, must, y.lo, sel(c, may, op2(c, PE_MIN, y.lo, z.lo), z.lo));
    const PlanExpr *hi = sel(c, must, y.hi, sel(c, may, op2(c, PE_MAX, y.hi, z.hi), z.hi));
    return (PeIval){ lo, hi };
  }
  case IR_LT: case IR_LE: case IR_GT: case IR_GE: case IR_EQ: case IR_NE:
    if (c->pl->pat->nodes[nd->args[0]].type == IR_FLOAT || c->pl->pat->nodes[nd->args[1]].type == IR_FLOAT)
      return unknown_bool;
    (void)ty_bool_args;
    return bool_cmp(c, (IrOp)nd->op, x, y);
  case IR_AND: return (PeIval){ op2(c, PE_AND, x.lo, y.lo), op2(c, PE_AND, x.hi, y.hi) };
  case IR_OR: return (PeIval){ op2(c, PE_OR, x.lo, y.lo), op2(c, PE_OR, x.hi, y.hi) };
  case IR_NOT: return (PeIval){ op1(c, PE_NOT, x.hi), op1(c, PE_NOT, x.lo) };
  default: return nd->type == IR_BOOL ? unknown_bool : none;
  }
}

typedef struct IvCache { PeIval *v; char *done; int n; } IvCache;

static PeIval ival(Ctx *c, int n) {
  Plan *pl = c->pl;
  IvCache *ic = pl->ivals;
  if (!ic || ic->n < pl->pat->nnodes) {    /* (re)start the cache */
    int nn = pl->pat->nnodes;
    ic = arena_alloc(c->A, sizeof *ic);
    if (!ic) return (PeIval){ NULL, NULL };
    ic->v = arena_alloc(c->A, sizeof *ic->v * (size_t)(nn + 1));
    ic->done = arena_alloc(c->A, (size_t)nn + 1);
    if (!ic->v || !ic->done) return (PeIval){ NULL, NULL };
    ic->n = nn;
    pl->ivals = ic;
    pl->nivals = nn;
  }
  if (ic->done[n]) return ic->v[n];
  PeIval r = ival_uncached(c, n);
  ic->v[n] = r;
  ic->done[n] = 1;
  return r;
}

PeIval plan_interval(Plan *pl, int node) {
  Ctx c = { .pl = pl, .A = pl->arena };
  return ival(&c, node);
}

void plan_interval_reset(Plan *pl) {
  pl->ivals = NULL;
  pl->nivals = 0;
}

/* -------------------------------------------------------------- boxes */

/* coordinate bounds on one kv axis, collected over a term's atoms */
typedef struct AxB {
  const PlanExpr *vlo, *vhi;   /* visit: NULL = unbounded */
  const PlanExpr *flo, *fhi;   /* full: NULL = no constraint */
  bool nofull;                 /* some bound is unbounded the wrong way */
  int64_t cong;                /* residue constraint modulus (0 = none) */
  bool cong_bad;               /* a congruence the order can't use */
} AxB;

static const PlanExpr *emax(Ctx *c, const PlanExpr *a, const PlanExpr *b) {
  return !a ? b : !b ? a : op2(c, PE_MAX, a, b);
}
static const PlanExpr *emin(Ctx *c, const PlanExpr *a, const PlanExpr *b) {
  return !a ? b : !b ? a : op2(c, PE_MIN, a, b);
}
static const PlanExpr *eand(Ctx *c, const PlanExpr *a, const PlanExpr *b) {
  return op2(c, PE_AND, a, b);
}

/* does the atom speak of axis `a` of the current kv order? (-1: no axis fits) */
static int atom_axis(const Plan *pl, const Atom *at) {
  bool grid_pat = pl->pat->grid_rank > 1;
  if (!grid_pat) return at->axis == 0 ? 0 : -1;          /* k and kc[0] coincide */
  if (pl->sched.grid) return at->grid ? at->axis : -1;
  return at->grid ? -1 : 0;
}

/* kv tile ranges of one axis from coordinate bounds */
static void axis_range(Ctx *c, int a, const AxB *b, PlanRange *r, const PlanExpr **may) {
  const PlanAxis *ax = &c->pl->kord.ax[a];
  const PlanExpr *box = K(c, ax->box), *one = K(c, 1), *zero = K(c, 0);
  const PlanExpr *T1 = op2(c, PE_SUB, ax->ntiles, one);
  if (b->vlo && b->vhi) *may = eand(c, *may, op2(c, PE_LE, b->vlo, b->vhi));
  if (ax->dil == 1) {
    r->lo = b->vlo ? op2(c, PE_MAX, zero, op2(c, PE_FDIV, b->vlo, box)) : zero;
    r->hi = b->vhi ? op2(c, PE_MIN, T1, op2(c, PE_FDIV, b->vhi, box)) : T1;
    const PlanExpr *lastfull = op2(c, PE_SUB, op2(c, PE_FDIV, ax->size, box), one);
    if (b->nofull) { r->flo = one; r->fhi = zero; return; }
    r->flo = b->flo ? op2(c, PE_MAX, zero, op2(c, PE_CDIV, b->flo, box)) : zero;
    r->fhi = b->fhi ? op2(c, PE_MIN, lastfull, op2(c, PE_SUB, op2(c, PE_FDIV, op2(c, PE_ADD, b->fhi, one), box), one))
                    : lastfull;
    return;
  }
  const PlanExpr *d = K(c, ax->dil);
  if (b->cong != ax->dil) {          /* every residue class: the whole axis */
    r->lo = zero;
    r->hi = T1;
    r->flo = one;
    r->fhi = zero;
    return;
  }
  const PlanExpr *res = var(c, PV_QRES, a);
  const PlanExpr *P = op2(c, PE_CDIV, ax->size, K(c, ax->box * ax->dil));
  const PlanExpr *base = op2(c, PE_MUL, res, P);
  const PlanExpr *jmax = op2(c, PE_FDIV, op2(c, PE_SUB, op2(c, PE_SUB, ax->size, one), res), d);
  const PlanExpr *jlo = b->vlo ? op2(c, PE_MAX, zero, op2(c, PE_CDIV, op2(c, PE_SUB, b->vlo, res), d)) : zero;
  const PlanExpr *jhi = b->vhi ? op2(c, PE_MIN, jmax, op2(c, PE_FDIV, op2(c, PE_SUB, b->vhi, res), d)) : jmax;
  if (b->vlo || b->vhi) *may = eand(c, *may, op2(c, PE_LE, jlo, jhi));
  r->lo = op2(c, PE_ADD, base, op2(c, PE_FDIV, jlo, box));
  r->hi = op2(c, PE_ADD, base, op2(c, PE_FDIV, jhi, box));
  if (b->nofull || b->cong_bad) { r->flo = one; r->fhi = zero; return; }
  const PlanExpr *jflo = b->flo ? op2(c, PE_MAX, zero, op2(c, PE_CDIV, op2(c, PE_SUB, b->flo, res), d)) : zero;
  const PlanExpr *jfhi = b->fhi ? op2(c, PE_MIN, jmax, op2(c, PE_FDIV, op2(c, PE_SUB, b->fhi, res), d)) : jmax;
  r->flo = op2(c, PE_ADD, base, op2(c, PE_CDIV, jflo, box));
  r->fhi = op2(c, PE_ADD, base, op2(c, PE_MIN, op2(c, PE_SUB, op2(c, PE_FDIV, op2(c, PE_ADD, jfhi, one), box), one),
                                     op2(c, PE_SUB, op2(c, PE_FDIV, op2(c, PE_ADD, jmax, one), box), one)));
}

/*
** The box of term t, ignoring atom `skip` (the dynamic atom). Atoms
** that can't be used (opaque, other dynamic atoms, bounds on axes the
** order doesn't have) make the box never full. Returns false when the
** box is empty for every q tile.
*/
static bool term_box(Ctx *c, const Term *t, int skip, PlanBox *out) {
  const Plan *pl = c->pl;
  int rank = pl->kord.rank;
  AxB ab[IR_MAXGRID];
  memset(ab, 0, sizeof ab);
  const PlanExpr *may = K(c, 1), *must = K(c, 1);
  PlanPeriod per = { 0 };
  for (int i = 0; i < t->natoms; i++) {
    const Atom *at = &t->atoms[i];
    if (i == skip) continue;
    switch (at->kind) {
    case ATOM_QONLY: {
      PeIval v = ival(c, at->node);
      if (at->neg) v = (PeIval){ op1(c, PE_NOT, v.hi), op1(c, PE_NOT, v.lo) };
      must = eand(c, must, v.lo);
      may = eand(c, may, v.hi);
      break;
    }
    case ATOM_KBOUND: {
      int a = atom_axis(pl, at);
      if (a < 0 || a >= rank) { must = K(c, 0); c->why = c->why ? c->why : "a bound on a k coordinate the token order does not tile"; break; }
      AxB *b = &ab[a];
      if (at->lo >= 0) {
        PeIval v = ival(c, at->lo);
        if (v.lo) b->vlo = emax(c, b->vlo, v.lo);
        if (!v.hi) b->nofull = true;
        else b->flo = emax(c, b->flo, v.hi);
      }
      if (at->hi >= 0) {
        PeIval v = ival(c, at->hi);
        if (v.hi) b->vhi = emin(c, b->vhi, v.hi);
        if (!v.lo) b->nofull = true;
        else b->fhi = emin(c, b->fhi, v.lo);
      }
      break;
    }
    case ATOM_PERIODIC:
      /* a filter on the tiles of a 1-D kv order (one per box; a clip box
         for a list or data part keeps none): never full */
      if (skip < 0 && rank == 1 && pl->kord.ax[0].dil == 1 && per.m == 0) per = at->per;
      must = K(c, 0);
      break;
    case ATOM_CONG: {
      int a = atom_axis(pl, at);
      if (a < 0 || a >= rank || pl->kord.ax[a].dil != at->d) {
        if (a >= 0 && a < rank) ab[a].cong_bad = true;
        must = K(c, 0);
      } else
        ab[a].cong = at->d;
      break;
    }
    default:
      must = K(c, 0);
      if (at->why && !c->why) c->why = at->why;
      break;
    }
  }
  memset(out, 0, sizeof *out);
  for (int a = 0; a < rank; a++) axis_range(c, a, &ab[a], &out->ax[a], &may);
  out->may = may;
  out->must = must;
  out->per = per;
  out->edge_lo = out->edge_hi = -1;
  /* the full range splits by side (PlanBox) when every atom was used as is
     and every axis can be full: no bound open the wrong way, and a dilated
     axis walks the residue class its congruence names */
  out->edges_ok = skip < 0;
  for (int i = 0; i < t->natoms && out->edges_ok; i++) {
    const Atom *at = &t->atoms[i];
    int a = at->kind == ATOM_KBOUND || at->kind == ATOM_CONG ? atom_axis(pl, at) : 0;
    if ((at->kind != ATOM_QONLY && at->kind != ATOM_KBOUND && at->kind != ATOM_CONG) || a < 0 || a >= rank)
      out->edges_ok = false;
  }
  for (int a = 0; a < rank && out->edges_ok; a++)
    if (ab[a].nofull || ab[a].cong_bad || (pl->kord.ax[a].dil != 1 && ab[a].cong != pl->kord.ax[a].dil))
      out->edges_ok = false;
  int64_t v;
  if (pe_is_const(may, &v) && v == 0) return false;
  for (int a = 0; a < rank; a++) {
    int64_t lo, hi;
    if (pe_is_const(out->ax[a].lo, &lo) && pe_is_const(out->ax[a].hi, &hi) && lo > hi) return false;
  }
  return true;
}

/* ------------------------------------------------------ dynamic parts */

static const PlanExpr *dim_expr(Ctx *c, const IrDim *dm) {
  switch (dm->sym) {
  case DIM_CONST: return K(c, dm->value);
  case DIM_SQ: return op2(c, PE_CDIV, var(c, PV_SQ, 0), K(c, dm->value));
  case DIM_SK: return op2(c, PE_CDIV, var(c, PV_SK, 0), K(c, dm->value));
  default: return NULL;
  }
}

static const char *make_list(Ctx *c, const Term *t, int ai, PlanList *L) {
  const Plan *pl = c->pl;
  const Atom *at = &t->atoms[ai];
  const IrInput *in = &pl->pat->inputs[at->input];
  if (pl->kord.rank != 1 || pl->kord.ax[0].dil != 1) return "index lists need a 1-D kv order";
  if (at->unit % pl->sched.bn != 0)
    return arena_printf(c->A, "the list's block of %lld tokens is not a multiple of the kv tile (%lld)",
                        (long long)at->unit, (long long)pl->sched.bn);
  memset(L, 0, sizeof *L);
  L->kind = at->lkind;
  L->input = at->input;
  L->dim = at->dim;
  L->vdim = -1;
  L->cmp = at->cmp;
  L->cmpval = at->cmpval;
  L->unit = at->unit;
  L->full = true;
  for (int i = 0; i < in->rank; i++) {
    if (i == at->dim) continue;
    PeIval v = ival(c, at->row[i]);
    if (!v.lo || !v.hi) return "a list row index that depends on runtime data";
    L->row[i] = v.lo;
    if (!pe_same(v.lo, v.hi)) {
      if (L->vdim >= 0) return "a list row that varies in two dims over a q tile";
      L->vdim = i;
      L->row_hi = v.hi;
    }
  }
  L->len = dim_expr(c, &in->dims[at->dim]);
  if (!L->len) return "a list dim of symbolic size other than Sq or Sk";
  L->nvals = op2(c, PE_CDIV, var(c, PV_SK, 0), K(c, at->unit));
  if (!term_box(c, t, ai, &L->clip)) return "";
  return NULL;
}

static const char *make_data(Ctx *c, const Term *t, int ai, PlanData *D) {
  Plan *pl = c->pl;
  const Atom *at = &t->atoms[ai];
  if (pl->kord.rank != 1 || pl->kord.ax[0].dil != 1 || pl->qord.ax[0].dil != 1)
    return "data ranges need 1-D orders";
  if (pl->pat->nodes[at->qkey].type != IR_INT || pl->pat->nodes[at->kkey].type != IR_INT)
    return "data keys must be integers";
  const uint16_t *dep = plan_deps(pl);
  if (!dep) return "out of memory";
  memset(D, 0, sizeof *D);
  D->qkey = at->qkey;
  D->kkey = at->kkey;
  D->cmp = at->cmp;
  D->per_b = ((dep[at->qkey] | dep[at->kkey]) & DEP_B) != 0;
  D->per_h = ((dep[at->qkey] | dep[at->kkey]) & DEP_H) != 0;
  if (!term_box(c, t, ai, &D->clip)) return "";
  return NULL;
}

/* ------------------------------------------------------------ iterator */

static bool covers_all(Ctx *c, const PlanBox *b) {
  int64_t v;
  if (!pe_is_const(b->may, &v) || v != 1) return false;
  for (int a = 0; a < c->pl->kord.rank; a++) {
    const PlanAxis *ax = &c->pl->kord.ax[a];
    if (!pe_is_const(b->ax[a].lo, &v) || v != 0) return false;
    if (!pe_same(b->ax[a].hi, op2(c, PE_SUB, ax->ntiles, K(c, 1)))) return false;
  }
  return true;
}

attnc_status plan_make_iter(Plan *pl, int variant, PlanIter *it, Diag *d) {
  Ctx c = { .pl = pl, .A = pl->arena, .d = d };
  const Dnf *dnf = &pl->dnf[variant];
  memset(it, 0, sizeof *it);
  if (dnf->nterms == 0) {
    it->kind = ITER_EMPTY;
    it->reason = "the mask is never true";
    return ATTNC_OK;
  }
  it->boxes = arena_alloc(c.A, sizeof(PlanBox) * (size_t)dnf->nterms);
  if (!it->boxes) return diag_error(d, ATTNC_ERR_NOMEM, ir_loc(pl->pat, 0), "out of memory");
  const char *dyn_why = NULL;
  for (int ti = 0; ti < dnf->nterms; ti++) {
    const Term *t = &dnf->terms[ti];
    int dyn = -1;
    for (int i = 0; i < t->natoms && dyn < 0; i++)
      if (t->atoms[i].kind == ATOM_LIST || t->atoms[i].kind == ATOM_DATA) dyn = i;
    if (dyn >= 0 && !it->list && !it->data) {
      const char *why;
      if (t->atoms[dyn].kind == ATOM_LIST) {
        PlanList *L = arena_alloc(c.A, sizeof *L);
        if (!L) return diag_error(d, ATTNC_ERR_NOMEM, ir_loc(pl->pat, 0), "out of memory");
        why = make_list(&c, t, dyn, L);
        if (!why) it->list = L;
      } else {
        PlanData *D = arena_alloc(c.A, sizeof *D);
        if (!D) return diag_error(d, ATTNC_ERR_NOMEM, ir_loc(pl->pat, 0), "out of memory");
        why = make_data(&c, t, dyn, D);
        if (!why) it->data = D;
      }
      if (!why || !*why) continue;        /* the dynamic part (or an empty term) */
      dyn_why = why;
    } else if (dyn >= 0 && !dyn_why)
      dyn_why = "more than one term reads runtime data";
    PlanBox b;
    if (term_box(&c, t, -1, &b)) {
      b.term = ti;
      it->boxes[it->nboxes++] = b;
    }
  }
  if (pl->arena->failed) return diag_error(d, ATTNC_ERR_NOMEM, ir_loc(pl->pat, 0), "out of memory");
  if (it->list) it->kind = ITER_LIST;
  else if (it->data) it->kind = ITER_DATA;
  else if (it->nboxes == 0) { it->kind = ITER_EMPTY; it->reason = "the mask is never true"; return ATTNC_OK; }
  else it->kind = pl->kord.rank == 1 ? ITER_RANGES : ITER_BOXES;
  /* nothing derived: one box over everything that is never full */
  if (!it->list && !it->data) {
    bool dense = false;
    for (int i = 0; i < it->nboxes; i++) {
      int64_t must;
      if (covers_all(&c, &it->boxes[i]) && pe_is_const(it->boxes[i].must, &must) && must == 0)
        dense = true;
    }
    if (dense) {
      it->kind = ITER_DENSE;
      it->nboxes = 0;
      it->reason = dyn_why ? dyn_why : c.why ? c.why : dnf->why ? dnf->why
                 : "the mask restricts no kv coordinate the token order tiles";
      return ATTNC_OK;
    }
  }
  it->reason = dyn_why ? dyn_why : c.why;
  return ATTNC_OK;
}

/* a & b over bool nodes, -1 = true */
static int node_and(Plan *pl, int a, int b, int line, Diag *d) {
  if (a < 0 || b < 0) return a < 0 ? b : a;
  int args[2] = { a, b };
  return ir_node(pl->pat, IR_AND, args, 2, 0, line, d);
}

/*
** The edge nodes of a box (PlanBox): each bound atom lo(q) <= k_axis <=
** hi(q) gives k_axis >= lo(q) to edge_lo and k_axis <= hi(q) to edge_hi;
** q-only atoms go to both; congruences are the order's (a visited tile
** holds only k of the q tile's residue class). Built once, on the final
** boxes (the tile pass builds iterators for every candidate).
*/
static attnc_status box_edges(Plan *pl, const Term *t, PlanBox *b, Diag *d) {
  int lo = -1, hi = -1, qonly = -1;
  for (int i = 0; i < t->natoms && diag_ok(d); i++) {
    const Atom *at = &t->atoms[i];
    int line = at->node >= 0 ? pl->pat->nodes[at->node].line : 0;
    if (at->kind == ATOM_QONLY) {
      int n = at->node;
      if (at->neg) n = ir_node(pl->pat, IR_NOT, &n, 1, 0, line, d);
      qonly = node_and(pl, qonly, n, line, d);
    } else if (at->kind == ATOM_KBOUND) {
      int leaf = at->grid ? ir_leaf(pl->pat, IR_KC, at->axis, line) : ir_leaf(pl->pat, IR_K, 0, line);
      if (at->lo >= 0) {
        int args[2] = { leaf, at->lo };
        lo = node_and(pl, lo, ir_node(pl->pat, IR_GE, args, 2, 0, line, d), line, d);
      }
      if (at->hi >= 0) {
        int args[2] = { leaf, at->hi };
        hi = node_and(pl, hi, ir_node(pl->pat, IR_LE, args, 2, 0, line, d), line, d);
      }
    }
  }
  if (!diag_ok(d)) return d->status;
  if (lo < 0 || hi < 0) return ATTNC_OK;     /* one side only: its edge is every partial tile */
  b->edge_lo = node_and(pl, qonly, lo, 0, d);
  b->edge_hi = node_and(pl, qonly, hi, 0, d);
  return d->status;
}

attnc_status pass_iterate(PassCtx *pc) {
  Plan *pl = pc->plan;
  plan_interval_reset(pl);
  for (int v = 0; v < pl->nvariants; v++) {
    PlanIter *it = &pl->variants[v].it;
    if (plan_make_iter(pl, v, it, pc->d) != ATTNC_OK) return pc->d->status;
    for (int i = 0; i < it->nboxes; i++)
      if (it->boxes[i].edges_ok &&
          box_edges(pl, &pl->dnf[v].terms[it->boxes[i].term], &it->boxes[i], pc->d) != ATTNC_OK)
        return pc->d->status;
  }
  return ATTNC_OK;
}
