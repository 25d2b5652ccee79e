/*
** visit.c -- the reference iterator (what a backend must visit, executed
** on the host), the data pre-pass, and the statistics of explain.
**
** plan_visit is the executable form of the rules in passes.h; tests run
** it against brute force over every pair, and the tile pass uses it to
** compare schedules.
*/
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"

/* ------------------------------------------------------------ helpers */

int plan_variant_of(const Plan *pl, int64_t h) {
  PlanEnv e;
  memset(&e, 0, sizeof e);
  e.v[PV_H][0] = h;
  for (int v = 0; v < pl->nvariants; v++)
    if (!pl->variants[v].heads || plan_expr_eval(pl->variants[v].heads, &e)) return v;
  return pl->nvariants - 1;
}

static int64_t ev(const PlanExpr *e, const PlanEnv *env) { return plan_expr_eval(e, env); }

/* env of (b, h, q tile); false when the q tile is all padding */
static bool qtile_env(const Plan *pl, const PlanRun *r, int64_t b, int64_t h, int64_t qt, PlanEnv *e) {
  memset(e, 0, sizeof *e);
  e->v[PV_B][0] = b;
  e->v[PV_H][0] = h;
  e->v[PV_SQ][0] = r->Sq;
  e->v[PV_SK][0] = r->Sk;
  const PlanOrder *o = &pl->qord;
  for (int a = o->rank - 1; a >= 0; a--) {
    int64_t T = ev(o->ax[a].ntiles, e);
    e->v[PV_QT][a] = qt % T;
    qt /= T;
  }
  bool any = true;
  for (int a = 0; a < o->rank; a++) {
    e->v[PV_QLO][a] = ev(o->ax[a].qlo, e);
    e->v[PV_QHI][a] = ev(o->ax[a].qhi, e);
    e->v[PV_QRES][a] = ev(o->ax[a].qres, e);
    if (e->v[PV_QHI][a] < e->v[PV_QLO][a]) any = false;
  }
  return any;
}

typedef struct BoxV {
  bool may, must;
  int64_t lo[IR_MAXGRID], hi[IR_MAXGRID], flo[IR_MAXGRID], fhi[IR_MAXGRID];
  PlanPeriod per;
  int64_t bn;
} BoxV;

bool plan_period_hit(const PlanPeriod *p, int64_t bn, int64_t u) {
  if (p->m <= 0 || bn >= p->m) return true;
  int64_t x = ir_floormod(u * bn + p->off, p->m), e = x + bn - 1;
  return (x <= p->hi && e >= p->lo) || e - p->m >= p->lo;
}

static void box_eval(const PlanBox *b, int rank, int64_t bn, const PlanEnv *e, BoxV *o) {
  o->per = b->per;
  o->bn = bn;
  o->may = !b->may || ev(b->may, e);
  o->must = !b->must || ev(b->must, e);
  for (int a = 0; a < rank; a++) {
    o->lo[a] = ev(b->ax[a].lo, e);
    o->hi[a] = ev(b->ax[a].hi, e);
    o->flo[a] = ev(b->ax[a].flo, e);
    o->fhi[a] = ev(b->ax[a].fhi, e);
  }
}

static bool box_has(const BoxV *b, int rank, const int64_t *u) {
  if (!b->may || !plan_period_hit(&b->per, b->bn, u[0])) return false;
  for (int a = 0; a < rank; a++)
    if (u[a] < b->lo[a] || u[a] > b->hi[a]) return false;
  return true;
}

static bool box_full(const BoxV *b, int rank, const int64_t *u) {
  if (!b->may || !b->must) return false;
  for (int a = 0; a < rank; a++)
    if (u[a] < b->flo[a] || u[a] > b->fhi[a]) return false;
  return true;
}

const PlanBox *plan_edge_box(const Plan *pl) {
  const PlanIter *it = &pl->variants[0].it;
  if (pl->nvariants != 1 || (it->kind != ITER_RANGES && it->kind != ITER_BOXES) || it->nboxes != 1 ||
      it->boxes[0].edge_lo < 0 || it->boxes[0].edge_hi < 0)
    return NULL;
  return &it->boxes[0];
}

int plan_tile_edge(const Plan *pl, const PlanRun *r, int64_t b, int64_t h, int64_t qt, int64_t kvtile) {
  const PlanBox *box = plan_edge_box(pl);
  PlanEnv e;
  if (!box || !qtile_env(pl, r, b, h, qt, &e)) return 3;
  const PlanOrder *ko = &pl->kord;
  BoxV bv;
  box_eval(box, ko->rank, ko->tile, &e, &bv);
  int edge = 0;
  for (int a = ko->rank - 1; a >= 0; a--) {      /* row-major: last axis fastest */
    int64_t T = ev(ko->ax[a].ntiles, &e), u = kvtile % T;
    kvtile /= T;
    if (u < bv.flo[a]) edge |= 1;
    if (u > bv.fhi[a]) edge |= 2;
  }
  return edge;
}

/* element of a runtime input as int64 (floats truncated toward -inf) */
static bool view_get(const IrTensorView *v, const int64_t *idx, double *out) {
  int64_t off = 0;
  for (int i = 0; i < v->rank; i++) {
    if (idx[i] < 0 || idx[i] >= v->shape[i]) return false;
    off += idx[i] * v->strides[i];
  }
  switch (v->dtype) {
  case DT_I32: *out = ((const int32_t *)v->data)[off]; return true;
  case DT_F32: *out = ((const float *)v->data)[off]; return true;
  case DT_F64: *out = ((const double *)v->data)[off]; return true;
  default: return false;
  }
}

static bool cmp_holds(IrOp op, double x, double y) {
  switch (op) {
  case IR_LT: return x < y; case IR_LE: return x <= y; case IR_GT: return x > y;
  case IR_GE: return x >= y; case IR_EQ: return x == y; case IR_NE: return x != y;
  default: return false;
  }
}

/* per-slice metadata length (int32 words) of a data variant */
static int64_t data_words(const Plan *pl, const PlanRun *r) {
  int64_t nqt = plan_order_ntiles(&pl->qord, r->Sq), nkt = plan_order_ntiles(&pl->kord, r->Sk);
  return 4 * nqt + 2 * nkt;
}

static int64_t data_slices(const PlanData *D, const PlanRun *r) {
  return (D->per_b ? r->B : 1) * (D->per_h ? r->H : 1);
}

static int64_t data_offset(const Plan *pl, const PlanRun *r, int variant, int64_t b, int64_t h) {
  int64_t off = 0;
  for (int v = 0; v < variant; v++)
    if (pl->variants[v].it.data) off += data_slices(pl->variants[v].it.data, r) * data_words(pl, r);
  const PlanData *D = pl->variants[variant].it.data;
  int64_t slice = (D->per_b ? b : 0) * (D->per_h ? r->H : 1) + (D->per_h ? h : 0);
  return off + slice * data_words(pl, r);
}

int64_t plan_metadata_bytes(const Plan *pl, const PlanRun *r) {
  int64_t words = 0;
  for (int v = 0; v < pl->nvariants; v++)
    if (pl->variants[v].it.data) words += data_slices(pl->variants[v].it.data, r) * data_words(pl, r);
  return words * 4;
}

/* ----------------------------------------------------------- visiting */

enum { MAXBOXES = 64 };

attnc_status plan_visit(const Plan *pl, const PlanRun *r, int64_t b, int64_t h, int64_t qt,
                        PlanVisitFn fn, void *ud, Diag *d) {
  int vi = plan_variant_of(pl, h);
  const PlanIter *it = &pl->variants[vi].it;
  const PlanOrder *ko = &pl->kord;
  int rank = ko->rank;
  PlanEnv e;
  if (!qtile_env(pl, r, b, h, qt, &e)) return ATTNC_OK;
  int64_t T[IR_MAXGRID], nkt = 1;
  for (int a = 0; a < rank; a++) {
    T[a] = ev(ko->ax[a].ntiles, &e);
    nkt *= T[a];
  }
  if (it->kind == ITER_EMPTY) return ATTNC_OK;
  if (it->kind == ITER_DENSE) {
    for (int64_t u = 0; u < nkt; u++) fn(ud, u, false);
    return ATTNC_OK;
  }
  if (it->nboxes > MAXBOXES)
    return diag_error(d, ATTNC_ERR_INTERNAL, ir_loc(pl->pat, 0), "%d boxes", it->nboxes);
  BoxV bv[MAXBOXES];
  for (int i = 0; i < it->nboxes; i++) box_eval(&it->boxes[i], rank, ko->tile, &e, &bv[i]);

  /* the static boxes, in order; a tile of an earlier box is not repeated */
  for (int i = 0; i < it->nboxes; i++) {
    const BoxV *B = &bv[i];
    if (!B->may) continue;
    int64_t lo[IR_MAXGRID], hi[IR_MAXGRID], u[IR_MAXGRID];
    bool empty = false;
    for (int a = 0; a < rank; a++) {
      lo[a] = B->lo[a] < 0 ? 0 : B->lo[a];
      hi[a] = B->hi[a] > T[a] - 1 ? T[a] - 1 : B->hi[a];
      if (lo[a] > hi[a]) empty = true;
      u[a] = lo[a];
    }
    if (empty) continue;
    for (;;) {
      bool dup = !plan_period_hit(&B->per, B->bn, u[0]);   /* not the box's: skipped */
      for (int j = 0; j < i && !dup; j++) dup = box_has(&bv[j], rank, u);
      if (!dup) {
        bool full = false;
        for (int j = 0; j < it->nboxes && !full; j++) full = box_full(&bv[j], rank, u);
        int64_t lin = 0;
        for (int a = 0; a < rank; a++) lin = lin * T[a] + u[a];
        fn(ud, lin, full);
      }
      int a = rank - 1;
      while (a >= 0 && ++u[a] > hi[a]) { u[a] = lo[a]; a--; }
      if (a < 0) break;
    }
  }

  /* the dynamic part: 1-D kv orders only */
  bool inbox;
  if (it->list) {
    const PlanList *L = it->list;
    const IrTensorView *X = r->inputs ? &r->inputs[L->input] : NULL;
    if (!X || !X->data)
      return diag_error(d, ATTNC_ERR_ARG, ir_loc(pl->pat, 0), "input '%s' is needed to iterate",
                        pl->pat->inputs[L->input].name);
    BoxV clip;
    box_eval(&L->clip, 1, ko->tile, &e, &clip);
    if (!clip.may) return ATTNC_OK;
    int64_t idx[IR_MAXDIMS] = { 0 };
    for (int i = 0; i < X->rank; i++)
      if (i != L->dim && L->row[i]) idx[i] = ev(L->row[i], &e);
    int64_t rlo = L->vdim >= 0 ? idx[L->vdim] : 0, rhi = L->vdim >= 0 ? ev(L->row_hi, &e) : 0;
    int64_t len = ev(L->len, &e), nvals = ev(L->nvals, &e);
    unsigned char *seen = calloc((size_t)(nvals > 0 ? nvals : 1), 1);
    if (!seen) return diag_error(d, ATTNC_ERR_NOMEM, ir_loc(pl->pat, 0), "out of memory");
    for (int64_t row = rlo; row <= rhi; row++) {
      if (L->vdim >= 0) idx[L->vdim] = row;
      for (int64_t j = 0; j < len; j++) {
        double x;
        idx[L->dim] = j;
        if (!view_get(X, idx, &x)) continue;
        int64_t v;
        if (L->kind == LIST_VALUES) v = (int64_t)x;
        else if (cmp_holds((IrOp)L->cmp, x, (double)L->cmpval)) v = j;
        else continue;
        if (v < 0 || v >= nvals || seen[v]) continue;
        seen[v] = 1;
      }
    }
    for (int64_t v = 0; v < nvals; v++) {
      if (!seen[v]) continue;
      int64_t t0 = v * L->unit / pl->sched.bn, t1 = (v * L->unit + L->unit - 1) / pl->sched.bn;
      if (t1 > nkt - 1) t1 = nkt - 1;
      for (int64_t u = t0; u <= t1; u++) {
        inbox = false;
        for (int j = 0; j < it->nboxes && !inbox; j++) inbox = box_has(&bv[j], 1, &u);
        if (inbox || !box_has(&clip, 1, &u)) continue;
        bool full = L->full && rlo == rhi && box_full(&clip, 1, &u) && (u + 1) * pl->sched.bn <= r->Sk;
        fn(ud, u, full);
      }
    }
    free(seen);
  }
  if (it->data) {
    const PlanData *D = it->data;
    if (!r->meta)
      return diag_error(d, ATTNC_ERR_ARG, ir_loc(pl->pat, 0), "the iterator needs the pre-pass metadata");
    int64_t nqt = plan_order_ntiles(&pl->qord, r->Sq);
    const int32_t *m = r->meta + data_offset(pl, r, vi, b, h);
    const int32_t *qmin = m, *qmax = m + nqt, *kmin = m + 2 * nqt, *kmax = kmin + nkt;
    const int32_t *first = kmax + nkt, *last = first + nqt;
    BoxV clip;
    box_eval(&D->clip, 1, ko->tile, &e, &clip);
    if (!clip.may) return ATTNC_OK;
    for (int64_t u = first[qt]; u <= last[qt]; u++) {
      inbox = false;
      for (int j = 0; j < it->nboxes && !inbox; j++) inbox = box_has(&bv[j], 1, &u);
      if (inbox || !box_has(&clip, 1, &u)) continue;
      int32_t a0 = qmin[qt], a1 = qmax[qt], b0 = kmin[u], b1 = kmax[u];
      bool vis, full;
      switch (D->cmp) {
      case IR_EQ: vis = b0 <= a1 && b1 >= a0; full = a0 == a1 && b0 == b1 && a0 == b0; break;
      case IR_GE: vis = b0 <= a1; full = b1 <= a0; break;   /* key_q >= key_k */
      case IR_GT: vis = b0 < a1; full = b1 < a0; break;
      case IR_LE: vis = b1 >= a0; full = b0 >= a1; break;   /* key_q <= key_k */
      case IR_LT: vis = b1 > a0; full = b0 > a1; break;
      default: vis = true; full = false;
      }
      if (!vis) continue;
      full = full && box_full(&clip, 1, &u) && (u + 1) * pl->sched.bn <= r->Sk;
      fn(ud, u, full);
    }
  }
  return ATTNC_OK;
}

/* ------------------------------------------------------------ counting */

typedef struct CountCtx { int64_t visited, full; } CountCtx;

static void count_fn(void *ud, int64_t u, bool full) {
  CountCtx *c = ud;
  (void)u;
  c->visited++;
  c->full += full;
}

enum { SEP_BOXES = 5, SEP_CONJ = 16 };

/* a may / must as its conjuncts, each with the q axes it reads */
typedef struct Conj { int n; const PlanExpr *e[SEP_CONJ]; unsigned axes[SEP_CONJ]; } Conj;

/* false when a conjunct reads two q axes (or there are too many) */
static bool conj_split(const PlanExpr *e, Conj *c) {
  if (!e) return true;
  if (e->op == PE_AND) return conj_split(e->a[0], c) && conj_split(e->a[1], c);
  unsigned m = plan_expr_axes(e);
  if (c->n == SEP_CONJ || (m & (m - 1))) return false;
  c->e[c->n] = e;
  c->axes[c->n++] = m;
  return true;
}

/* do the conjuncts reading exactly the axes `axes` (0: none) hold in e? */
static bool conj_holds(const Conj *c, unsigned axes, const PlanEnv *e) {
  for (int i = 0; i < c->n; i++)
    if (c->axes[i] == axes && !ev(c->e[i], e)) return false;
  return true;
}

/*
** One q tile axis: per tile coordinate x, whether the q tile has valid
** coordinates on it, and per box i ([x * nb + i]) its range on the kv
** axis of the same index (lo / hi clamped to existing tiles) and whether
** its may / must conjuncts of this axis hold.
*/
typedef struct AxisTab {
  int64_t n;
  bool *valid, *may, *must;
  int64_t *lo, *hi, *flo, *fhi;
} AxisTab;

/*
** Sum over the axis's valid coordinates of the length of the intersection
** of boxes R (visit ranges, their may holding) and S (full ranges, may and
** must holding); bit i of R / S is box i.
*/
static int64_t axis_sum(const AxisTab *t, int nb, unsigned R, unsigned S) {
  int64_t sum = 0;
  for (int64_t x = 0; x < t->n; x++) {
    if (!t->valid[x]) continue;
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    bool ok = true;
    for (int i = 0; i < nb && ok; i++) {
      size_t k = (size_t)(x * nb + i);
      if (R >> i & 1) {
        ok = ok && t->may[k];
        if (t->lo[k] > lo) lo = t->lo[k];
        if (t->hi[k] < hi) hi = t->hi[k];
      }
      if (S >> i & 1) {
        ok = ok && t->may[k] && t->must[k];
        if (t->flo[k] > lo) lo = t->flo[k];
        if (t->fhi[k] < hi) hi = t->fhi[k];
      }
    }
    if (ok && hi >= lo) sum += hi - lo + 1;
  }
  return sum;
}

static int bits(unsigned x) {
  int n = 0;
  for (; x; x &= x - 1) n++;
  return n;
}

/*
** The closed form of plan_count_tiles; false (nothing counted) when the
** iterator does not separate by axis. Per q tile, with V = union of the
** boxes and F = union of their full ranges,
**   |V|     = sum over R != {} of (-1)^(|R|+1) |cap R|
**   |V & F| = sum over S != {}, R != {} of (-1)^(|R|+|S|) |cap R & cap S|
** and each |cap ...| is a product over the axes of a length that depends
** on that axis's q tile coordinate only, so its sum over the q tiles is
** the product of axis_sum over the axes.
*/
static bool count_separable(const Plan *pl, const PlanRun *r, int64_t b, int64_t h, CountCtx *c,
                            bool *oom) {
  const PlanIter *it = &pl->variants[plan_variant_of(pl, h)].it;
  const PlanOrder *qo = &pl->qord, *ko = &pl->kord;
  int rank = qo->rank, nb = it->nboxes;
  bool dense = it->kind == ITER_DENSE;
  if (it->kind == ITER_EMPTY) return true;
  if (!dense && (it->list || it->data || nb > SEP_BOXES)) return false;
  for (int i = 0; i < nb && !dense; i++)
    if (it->boxes[i].per.m > 0) return false;      /* a periodic filter: not a product of ranges */
  if (ko->rank != rank || rank < 1 || rank > IR_MAXGRID) return false;
  PlanEnv e0;
  memset(&e0, 0, sizeof e0);
  e0.v[PV_B][0] = b;
  e0.v[PV_H][0] = h;
  e0.v[PV_SQ][0] = r->Sq;
  e0.v[PV_SK][0] = r->Sk;
  /* what each formula reads */
  Conj may[SEP_BOXES], must[SEP_BOXES];
  int64_t Tk[IR_MAXGRID], nqt = 1, nkt = 1;
  for (int a = 0; a < rank; a++) {
    unsigned self = 1u << a;
    if (plan_expr_axes(qo->ax[a].ntiles) || plan_expr_axes(ko->ax[a].ntiles) ||
        (plan_expr_axes(qo->ax[a].qlo) | plan_expr_axes(qo->ax[a].qhi) |
         plan_expr_axes(qo->ax[a].qres)) & ~self)
      return false;
    for (int i = 0; i < nb && !dense; i++) {
      const PlanRange *R = &it->boxes[i].ax[a];
      if ((plan_expr_axes(R->lo) | plan_expr_axes(R->hi) | plan_expr_axes(R->flo) |
           plan_expr_axes(R->fhi)) & ~self)
        return false;
    }
    nqt *= ev(qo->ax[a].ntiles, &e0);
    Tk[a] = ev(ko->ax[a].ntiles, &e0);
    nkt *= Tk[a];
  }
  if (nqt != plan_order_ntiles(qo, r->Sq)) return false;
  for (int i = 0; i < nb && !dense; i++) {
    may[i].n = must[i].n = 0;
    if (!conj_split(it->boxes[i].may, &may[i]) || !conj_split(it->boxes[i].must, &must[i])) return false;
  }

  /* the tables, one axis at a time */
  AxisTab tab[IR_MAXGRID];
  memset(tab, 0, sizeof tab);
  bool ok = true;
  for (int a = 0; a < rank && ok; a++) {
    AxisTab *t = &tab[a];
    t->n = ev(qo->ax[a].ntiles, &e0);
    size_t n = (size_t)(t->n > 0 ? t->n : 1), nk = n * (size_t)(nb > 0 ? nb : 1);
    t->valid = malloc(n);
    t->may = malloc(nk);
    t->must = malloc(nk);
    t->lo = malloc(nk * sizeof(int64_t));
    t->hi = malloc(nk * sizeof(int64_t));
    t->flo = malloc(nk * sizeof(int64_t));
    t->fhi = malloc(nk * sizeof(int64_t));
    if (!t->valid || !t->may || !t->must || !t->lo || !t->hi || !t->flo || !t->fhi) {
      ok = false;
      *oom = true;
      break;
    }
    for (int64_t x = 0; x < t->n; x++) {
      PlanEnv e = e0;
      e.v[PV_QT][a] = x;
      e.v[PV_QLO][a] = ev(qo->ax[a].qlo, &e);
      e.v[PV_QHI][a] = ev(qo->ax[a].qhi, &e);
      e.v[PV_QRES][a] = ev(qo->ax[a].qres, &e);
      t->valid[x] = e.v[PV_QHI][a] >= e.v[PV_QLO][a];
      for (int i = 0; i < nb && !dense; i++) {
        const PlanRange *R = &it->boxes[i].ax[a];
        size_t k = (size_t)(x * nb + i);
        int64_t lo = ev(R->lo, &e), hi = ev(R->hi, &e);
        t->lo[k] = lo < 0 ? 0 : lo;
        t->hi[k] = hi > Tk[a] - 1 ? Tk[a] - 1 : hi;
        t->flo[k] = ev(R->flo, &e);
        t->fhi[k] = ev(R->fhi, &e);
        t->may[k] = conj_holds(&may[i], 1u << a, &e);
        t->must[k] = conj_holds(&must[i], 1u << a, &e);
      }
    }
  }

  /* the sums */
  if (ok && dense) {
    int64_t nvalid = 1;
    for (int a = 0; a < rank; a++) {
      int64_t m = 0;
      for (int64_t x = 0; x < tab[a].n; x++) m += tab[a].valid[x];
      nvalid *= m;
    }
    c->visited += nvalid * nkt;
  }
  if (ok && !dense) {
    unsigned cmay = 0, cfull = 0;             /* boxes whose axis-free conjuncts hold */
    for (int i = 0; i < nb; i++) {
      if (conj_holds(&may[i], 0, &e0)) cmay |= 1u << i;
      if (conj_holds(&may[i], 0, &e0) && conj_holds(&must[i], 0, &e0)) cfull |= 1u << i;
    }
    for (unsigned S = 0; S < 1u << nb; S++) {
      if ((S & cfull) != S) continue;
      for (unsigned R = 1; R < 1u << nb; R++) {
        if ((R & cmay) != R) continue;
        int64_t prod = 1;
        for (int a = 0; a < rank && prod; a++) prod *= axis_sum(&tab[a], nb, R, S);
        int sign = (bits(R) + bits(S)) % 2 ? 1 : -1;
        if (S == 0) c->visited += sign * prod;
        else c->full -= sign * prod;
      }
    }
  }
  for (int a = 0; a < rank; a++) {
    free(tab[a].valid); free(tab[a].may); free(tab[a].must);
    free(tab[a].lo); free(tab[a].hi); free(tab[a].flo); free(tab[a].fhi);
  }
  return ok;
}

attnc_status plan_count_q_tile(const Plan *pl, const PlanRun *r, int64_t b, int64_t h, int64_t qt,
                               int64_t *visited, int64_t *full, Diag *d) {
  CountCtx c = { 0, 0 };
  if (plan_visit(pl, r, b, h, qt, count_fn, &c, d) != ATTNC_OK) return d->status;
  *visited = c.visited;
  *full = c.full;
  return ATTNC_OK;
}

attnc_status plan_count_tiles(const Plan *pl, const PlanRun *r, int64_t b, int64_t h,
                              int64_t *visited, int64_t *full, Diag *d) {
  CountCtx c = { 0, 0 };
  bool oom = false;
  if (!count_separable(pl, r, b, h, &c, &oom)) {
    if (oom) return diag_error(d, ATTNC_ERR_NOMEM, ir_loc(pl->pat, 0), "out of memory");
    c = (CountCtx){ 0, 0 };
    int64_t nqt = plan_order_ntiles(&pl->qord, r->Sq);
    for (int64_t t = 0; t < nqt; t++)
      if (plan_visit(pl, r, b, h, t, count_fn, &c, d) != ATTNC_OK) return d->status;
  }
  *visited = c.visited;
  *full = c.full;
  return ATTNC_OK;
}

/* --------------------------------------------------------- the pre-pass */

static bool eval_key(const Plan *pl, const PlanRun *r, int node, int64_t b, int64_t h, int64_t q,
                     int64_t k, double *vals, int64_t *out, Diag *d) {
  IrEnv env;
  memset(&env, 0, sizeof env);
  env.b = b; env.h = h; env.q = q; env.k = k; env.sq = r->Sq; env.sk = r->Sk;
  env.inputs = r->inputs;
  ir_env_coords(pl->pat, &env);
  double x = ir_eval(pl->pat, node, &env, vals, d);
  if (!diag_ok(d)) return false;
  *out = (int64_t)x;
  return true;
}

attnc_status plan_prepass(const Plan *pl, const PlanRun *r, int32_t *meta, Diag *d) {
  int64_t nqt = plan_order_ntiles(&pl->qord, r->Sq), nkt = plan_order_ntiles(&pl->kord, r->Sk);
  double *vals = malloc(sizeof(double) * (size_t)(pl->pat->nnodes + 1));
  if (!vals) return diag_error(d, ATTNC_ERR_NOMEM, ir_loc(pl->pat, 0), "out of memory");
  for (int v = 0; v < pl->nvariants; v++) {
    const PlanData *D = pl->variants[v].it.data;
    if (!D) continue;
    for (int64_t b = 0; b < (D->per_b ? r->B : 1); b++)
      for (int64_t h = 0; h < (D->per_h ? r->H : 1); h++) {
        int32_t *m = meta + data_offset(pl, r, v, b, h);
        int32_t *qmin = m, *qmax = m + nqt, *kmin = m + 2 * nqt, *kmax = kmin + nkt;
        int32_t *first = kmax + nkt, *last = first + nqt;
        for (int side = 0; side < 2; side++) {
          const PlanOrder *o = side ? &pl->kord : &pl->qord;
          int64_t n = side ? nkt : nqt, S = side ? r->Sk : r->Sq;
          int32_t *mn = side ? kmin : qmin, *mx = side ? kmax : qmax;
          for (int64_t t = 0; t < n; t++) {
            int64_t lo = INT32_MAX, hi = INT32_MIN;
            for (int64_t p = 0; p < o->tile; p++) {
              int64_t tok = plan_order_token(o, S, t, p), key;
              if (tok < 0) continue;
              if (!eval_key(pl, r, side ? D->kkey : D->qkey, b, h, side ? 0 : tok, side ? tok : 0,
                            vals, &key, d)) { free(vals); return d->status; }
              if (key < lo) lo = key;
              if (key > hi) hi = key;
            }
            mn[t] = (int32_t)lo;
            mx[t] = (int32_t)hi;
          }
        }
        for (int64_t t = 0; t < nqt; t++) {
          int64_t f = 0, l = -1;
          for (int64_t u = 0; u < nkt; u++) {
            bool vis;
            switch (D->cmp) {
            case IR_EQ: vis = kmin[u] <= qmax[t] && kmax[u] >= qmin[t]; break;
            case IR_GE: vis = kmin[u] <= qmax[t]; break;
            case IR_GT: vis = kmin[u] < qmax[t]; break;
            case IR_LE: vis = kmax[u] >= qmin[t]; break;
            case IR_LT: vis = kmax[u] > qmin[t]; break;
            default: vis = true;
            }
            if (vis && qmin[t] <= qmax[t] && kmin[u] <= kmax[u]) {
              if (l < 0) f = u;
              l = u;
            }
          }
          first[t] = (int32_t)f;
          last[t] = (int32_t)l;
        }
      }
  }
  free(vals);
  return ATTNC_OK;
}

/* ------------------------------------------------------------- tile maps */

typedef struct MapCtx { uint8_t *row; int64_t n, count; bool dup; } MapCtx;

static void map_fn(void *ud, int64_t u, bool full) {
  MapCtx *m = ud;
  if (u < 0 || u >= m->n) { m->dup = true; return; }
  if (m->row[u]) m->dup = true;
  m->row[u] = full ? 2 : 1;
  m->count++;
}

attnc_status plan_tile_map(const Plan *pl, const PlanRun *r, int64_t b, int64_t h, uint8_t *cls,
                           Diag *d) {
  int64_t nqt = plan_order_ntiles(&pl->qord, r->Sq), nkt = plan_order_ntiles(&pl->kord, r->Sk);
  memset(cls, 0, (size_t)(nqt * nkt));
  for (int64_t t = 0; t < nqt; t++) {
    MapCtx m = { cls + t * nkt, nkt, 0, false };
    if (plan_visit(pl, r, b, h, t, map_fn, &m, d) != ATTNC_OK) return d->status;
    if (m.dup)
      return diag_error(d, ATTNC_ERR_INTERNAL, ir_loc(pl->pat, 0),
                        "q tile %lld visits a kv tile twice or out of range", (long long)t);
  }
  return ATTNC_OK;
}

/* ------------------------------------------------------- fast masks */

/*
** Brute force evaluates the mask at millions of pairs; ir_eval re-marks
** the DAG at every call. For masks made only of integer and boolean ops
** (no loads, no floats) this evaluator runs the needed nodes straight,
** with ir_eval's semantics (wrapping int64, floor // and %); a division
** by zero returns -1 so the caller asks ir_eval for the error.
*/
typedef struct Fast { int n; int *nodes; int64_t *v; } Fast;

static bool fast_init(const IrPattern *p, int root, Fast *f) {
  memset(f, 0, sizeof *f);
  if (root < 0) return false;
  char *need = calloc((size_t)root + 1, 1);
  f->nodes = malloc(sizeof(int) * ((size_t)root + 1));
  f->v = malloc(sizeof(int64_t) * ((size_t)root + 1));
  if (!need || !f->nodes || !f->v) { free(need); return false; }
  need[root] = 1;
  bool ok = true;
  for (int i = root; i >= 0 && ok; i--) {
    if (!need[i]) continue;
    const IrNode *nd = &p->nodes[i];
    if (nd->type == IR_FLOAT) ok = false;
    switch (nd->op) {
    case IR_LOAD: case IR_CONTAINS:
      if (p->inputs[nd->imm.i].dtype != DT_I32) ok = false;
      break;
    case IR_SCORE: case IR_DIV: case IR_POW: case IR_EXP:
    case IR_LOG: case IR_TANH: case IR_SQRT: case IR_TOFLOAT: ok = false; break;
    default: break;
    }
    for (int j = 0; j < nd->nargs; j++) need[nd->args[j]] = 1;
  }
  for (int i = 0; i <= root && ok; i++)
    if (need[i]) f->nodes[f->n++] = i;
  free(need);
  if (!ok) { free(f->nodes); free(f->v); memset(f, 0, sizeof *f); }
  return ok;
}

static void fast_free(Fast *f) { free(f->nodes); free(f->v); }

/* 0/1, or -1 when ir_eval must decide (a fault) */
static int fast_eval(const IrPattern *p, const Fast *f, const IrEnv *e) {
  int64_t *v = f->v;
  int last = 0;
  for (int t = 0; t < f->n; t++) {
    int i = f->nodes[t];
    const IrNode *nd = &p->nodes[i];
    int64_t x = nd->nargs > 0 ? v[nd->args[0]] : 0, y = nd->nargs > 1 ? v[nd->args[1]] : 0, r;
    switch (nd->op) {
    case IR_CONST: r = nd->imm.i; break;
    case IR_BATCH: r = e->b; break;
    case IR_HEAD: r = e->h; break;
    case IR_Q: r = e->q; break;
    case IR_K: r = e->k; break;
    case IR_QC: r = nd->imm.i >= 0 && nd->imm.i < IR_MAXGRID ? e->qc[nd->imm.i] : 0; break;
    case IR_KC: r = nd->imm.i >= 0 && nd->imm.i < IR_MAXGRID ? e->kc[nd->imm.i] : 0; break;
    case IR_SEQQ: r = e->sq; break;
    case IR_SEQK: r = e->sk; break;
    case IR_ADD: r = (int64_t)((uint64_t)x + (uint64_t)y); break;
    case IR_SUB: r = (int64_t)((uint64_t)x - (uint64_t)y); break;
    case IR_MUL: r = (int64_t)((uint64_t)x * (uint64_t)y); break;
    case IR_NEG: r = (int64_t)(0 - (uint64_t)x); break;
    case IR_IDIV: if (y == 0) return -1; r = ir_floordiv(x, y); break;
    case IR_MOD: if (y == 0) return -1; r = ir_floormod(x, y); break;
    case IR_ABS: r = x < 0 ? (int64_t)(0 - (uint64_t)x) : x; break;
    case IR_MIN: r = x < y ? x : y; break;
    case IR_MAX: r = x > y ? x : y; break;
    case IR_LT: r = x < y; break;
    case IR_LE: r = x <= y; break;
    case IR_GT: r = x > y; break;
    case IR_GE: r = x >= y; break;
    case IR_EQ: r = x == y; break;
    case IR_NE: r = x != y; break;
    case IR_AND: r = x && y; break;
    case IR_OR: r = x || y; break;
    case IR_NOT: r = !x; break;
    case IR_SELECT: r = x ? y : v[nd->args[2]]; break;
    case IR_LOAD: case IR_CONTAINS: {
      const IrTensorView *tv = e->inputs ? &e->inputs[nd->imm.i] : NULL;
      int nidx = nd->op == IR_LOAD ? nd->nargs : nd->nargs - 1;
      if (!tv || !tv->data || tv->dtype != DT_I32 || tv->rank != p->inputs[nd->imm.i].rank) return -1;
      int64_t off = 0;
      for (int j = 0; j < nidx; j++) {
        int64_t ix = v[nd->args[j]];
        if (ix < 0 || ix >= tv->shape[j]) return -1;
        off += ix * tv->strides[j];
      }
      const int32_t *data = tv->data;
      if (nd->op == IR_LOAD) { r = data[off]; break; }
      int last = tv->rank - 1;
      int64_t needle = v[nd->args[nd->nargs - 1]];
      r = 0;
      for (int64_t j = 0; j < tv->shape[last] && !r; j++) r = data[off + j * tv->strides[last]] == needle;
      break;
    }
    default: return -1;
    }
    v[i] = r;
    last = i;
  }
  return v[last] != 0;
}

/* --------------------------------------------------------------- stats */

/* loads indexed by b or h carry DEP_B / DEP_H, so the mask's deps say it all */
static bool plan_depends_bh(Plan *pl) {
  if (pl->nvariants > 1) return true;
  const uint16_t *dep = plan_deps(pl);
  if (!dep) return true;
  if (pl->pat->mask >= 0 && (dep[pl->pat->mask] & (DEP_B | DEP_H))) return true;
  return false;
}

attnc_status plan_stats(const Plan *cpl, const PlanRun *r, PlanCount how, PlanStats *st, Diag *d) {
  Plan *pl = (Plan *)cpl;        /* only the deps cache is written */
  const IrPattern *p = pl->pat;
  memset(st, 0, sizeof *st);
  int64_t nqt = plan_order_ntiles(&pl->qord, r->Sq), nkt = plan_order_ntiles(&pl->kord, r->Sk);
  int64_t bm = pl->qord.tile, bn = pl->kord.tile;
  bool bh = plan_depends_bh(pl);
  int64_t nb = bh ? r->B : 1, nh = bh ? r->H : 1, mult = bh ? 1 : r->B * r->H;
  st->metadata_bytes = plan_metadata_bytes(pl, r);
  PlanRun run = *r;
  int32_t *meta = NULL;
  if (st->metadata_bytes > 0 && !r->meta) {
    meta = malloc((size_t)st->metadata_bytes);
    if (!meta) return diag_error(d, ATTNC_ERR_NOMEM, ir_loc(p, 0), "out of memory");
    if (plan_prepass(pl, r, meta, d) != ATTNC_OK) { free(meta); return d->status; }
    run.meta = meta;
  }
  Fast fm;
  bool fast = fast_init(p, p->mask, &fm);
  uint8_t *row = malloc((size_t)nkt);
  int64_t *qtok = malloc(sizeof(int64_t) * (size_t)bm), *ktok = malloc(sizeof(int64_t) * (size_t)(bn * nkt));
  double *vals = malloc(sizeof(double) * (size_t)(p->nnodes + 1));
  int64_t *kvalid = malloc(sizeof(int64_t) * (size_t)nkt);
  if (!row || !qtok || !ktok || !vals || !kvalid) {
    diag_error(d, ATTNC_ERR_NOMEM, ir_loc(p, 0), "out of memory");
    goto done;
  }
  for (int64_t u = 0; u < nkt; u++) {
    kvalid[u] = 0;
    for (int64_t j = 0; j < bn; j++) {
      ktok[u * bn + j] = plan_order_token(&pl->kord, r->Sk, u, j);
      if (ktok[u * bn + j] >= 0) kvalid[u]++;
    }
  }
  st->pairs_total = r->B * r->H * r->Sq * r->Sk;
  st->tiles_total = r->B * r->H * nqt * nkt;
  int64_t allowed = 0, visited_pairs = 0;
  IrEnv env;
  memset(&env, 0, sizeof env);
  env.sq = r->Sq;
  env.sk = r->Sk;
  env.inputs = r->inputs;
  for (int64_t b = 0; b < nb; b++)
    for (int64_t h = 0; h < nh; h++)
      for (int64_t t = 0; t < nqt; t += r->qstride > 1 ? r->qstride : 1) {
        MapCtx m = { row, nkt, 0, false };
        memset(row, 0, (size_t)nkt);
        if (plan_visit(pl, &run, b, h, t, map_fn, &m, d) != ATTNC_OK) goto done;
        if (m.dup) {
          diag_error(d, ATTNC_ERR_INTERNAL, ir_loc(p, 0), "q tile %lld visits a kv tile twice", (long long)t);
          goto done;
        }
        if (m.count > st->kv_tiles_per_q_tile_max) st->kv_tiles_per_q_tile_max = m.count;
        int64_t nq = 0;
        for (int64_t i = 0; i < bm; i++) {
          qtok[i] = plan_order_token(&pl->qord, r->Sq, t, i);
          if (qtok[i] >= 0) nq++;
        }
        for (int64_t u = 0; u < nkt; u++) {
          if (row[u]) {
            st->tiles_visited += mult;
            if (row[u] == 2) st->tiles_full += mult;
            else st->tiles_partial += mult;
            visited_pairs += mult * nq * kvalid[u];
          }
          bool eval = how == COUNT_ALL || (how == COUNT_VISITED && row[u] == 1);
          if (!eval) {
            if (row[u] == 2) allowed += mult * nq * kvalid[u];
            continue;
          }
          int64_t here = 0;
          bool bad_full = row[u] == 2 && kvalid[u] != bn, bad_edge = false;
          /* the brute-force check only: a partial tile past one edge, each pair
             against that edge's bounds alone */
          int edge = how == COUNT_ALL && row[u] == 1 ? plan_tile_edge(pl, r, b, h, t, u) : 3, edge_node = -1;
          if (edge == 1 || edge == 2) edge_node = edge == 1 ? plan_edge_box(pl)->edge_lo : plan_edge_box(pl)->edge_hi;
          for (int64_t i = 0; i < bm; i++) {
            if (qtok[i] < 0) continue;
            for (int64_t j = 0; j < bn; j++) {
              int64_t k = ktok[u * bn + j];
              if (k < 0) continue;
              bool ok = true;
              if (p->mask >= 0) {
                env.b = b; env.h = h; env.q = qtok[i]; env.k = k;
                ir_env_coords(p, &env);
                int fv = fast ? fast_eval(p, &fm, &env) : -1;
                if (fv < 0) {
                  double x = ir_eval(p, p->mask, &env, vals, d);
                  if (!diag_ok(d)) goto done;
                  fv = x != 0;
                }
                ok = fv != 0;
              }
              if (edge_node >= 0) {   /* the edge's bounds alone decide the pair */
                double x = ir_eval(p, edge_node, &env, vals, d);
                if (!diag_ok(d)) goto done;
                if ((x != 0) != ok) bad_edge = true;
              }
              if (ok) here++;
              else if (row[u] == 2) bad_full = true;
            }
          }
          allowed += mult * here;
          if (here > 0) st->tiles_with_allowed += mult;
          if (!row[u]) st->skipped_allowed += mult * here;
          if (bad_full) st->full_violations += mult;
          if (bad_edge) st->edge_violations += mult;
          if (edge == 1 || edge == 2) st->tiles_edge += mult;
        }
      }
  st->pairs_visited = visited_pairs;
  if (how == COUNT_TILES) {
    st->pairs_allowed = -1;
    st->density = st->visited_allowed_fraction = -1;
  } else {
    st->pairs_allowed = allowed;
    st->density = st->pairs_total ? (double)allowed / (double)st->pairs_total : 0;
    st->visited_allowed_fraction = visited_pairs ? (double)allowed / (double)visited_pairs : 0;
  }
done:
  free(row); free(qtok); free(ktok); free(vals); free(kvalid); free(meta);
  if (fast) fast_free(&fm);
  return d->status;
}
