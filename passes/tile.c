/*
** tile.c -- the tile pass: tile sizes, grid boxes, warps and stages.
**
** Pinned fields (PlanOptions.pin) are kept. Otherwise bm = 128 and bn in
** {128, 64}; on grids every power-of-two box of those sizes that fits
** the grid. Each candidate is scored by counting the kv tiles its
** iterator visits (plan_count_tiles: in closed form, axis by axis, where
** the iterator allows) on the nominal shape (the hint, the grid, or
** S = 4096) with a simple cost:
**   per q tile CTA_COST, per visited kv tile bm*bn (x PARTIAL_COST when
**   partial) + TILE_COST
** and the cheapest wins (ties: the earlier candidate). Patterns that read
** runtime data can't be walked without it: they take the largest bn that
** divides their list block (or 128).
*/
#include <string.h>

#include "passes/passes.h"

enum { CTA_COST = 16384, TILE_COST = 2048, MAX_CAND = 2048 };
#define PARTIAL_COST 1.25

typedef struct Cand { int64_t bm, bn, qbox[IR_MAXGRID], kbox[IR_MAXGRID]; } Cand;

/* all power-of-two boxes with product `size` over `rank` axes that fit */
static int boxes(const IrPattern *p, int rank, int64_t size, int64_t out[][IR_MAXGRID], int max) {
  int n = 0;
  int64_t b[IR_MAXGRID] = { 1, 1, 1 };
  int64_t lim[IR_MAXGRID];
  for (int a = 0; a < rank; a++) {
    lim[a] = 1;
    while (lim[a] < p->grid[a]) lim[a] *= 2;
  }
  /* enumerate b[0..rank-2]; the last axis takes the rest. A tile larger
     than the grid (pinned) gets boxes that overhang it (padding). */
  for (int relax = 0; relax < 2 && n == 0; relax++)
  for (b[0] = 1; b[0] <= size; b[0] *= 2)
    for (b[1] = 1; b[1] <= (rank > 2 ? size : 1); b[1] *= 2) {
      int64_t prod = 1;
      for (int a = 0; a < rank - 1; a++) prod *= b[a];
      if (size % prod) continue;
      int64_t last = size / prod;
      int64_t c[IR_MAXGRID] = { 1, 1, 1 };
      bool ok = true;
      for (int a = 0; a < rank - 1; a++) c[a] = b[a];
      c[rank - 1] = last;
      for (int a = 0; a < rank; a++) ok = ok && (c[a] <= lim[a] || relax);
      if (!ok || n == max) continue;
      memcpy(out[n++], c, sizeof c);
    }
  return n;
}

static bool reads_runtime_data(const Plan *pl) {
  for (int v = 0; v < pl->nvariants; v++)
    for (int t = 0; t < pl->dnf[v].nterms; t++)
      for (int i = 0; i < pl->dnf[v].terms[t].natoms; i++) {
        AtomKind k = pl->dnf[v].terms[t].atoms[i].kind;
        if (k == ATOM_LIST || k == ATOM_DATA) return true;
      }
  return false;
}

static int64_t list_unit(const Plan *pl) {
  for (int v = 0; v < pl->nvariants; v++)
    for (int t = 0; t < pl->dnf[v].nterms; t++)
      for (int i = 0; i < pl->dnf[v].terms[t].natoms; i++)
        if (pl->dnf[v].terms[t].atoms[i].kind == ATOM_LIST) return pl->dnf[v].terms[t].atoms[i].unit;
  return 0;
}

static int rank_of(const Schedule *s) { return s->rank; }

static void apply(Plan *pl, const Cand *c) {
  Schedule *s = &pl->sched;
  s->bm = c->bm;
  s->bn = c->bn;
  memcpy(s->qbox, c->qbox, sizeof s->qbox);
  memcpy(s->kbox, c->kbox, sizeof s->kbox);
}

/* the cost of the current schedule on the nominal shape; <0 on error */
static double score(Plan *pl, const PlanRun *r, const int64_t *heads, Diag *d) {
  plan_interval_reset(pl);
  if (plan_make_orders(pl, d) != ATTNC_OK) return -1;
  for (int v = 0; v < pl->nvariants; v++)
    if (plan_make_iter(pl, v, &pl->variants[v].it, d) != ATTNC_OK) return -1;
  int64_t nqt = plan_order_ntiles(&pl->qord, r->Sq);
  double cost = 0;
  for (int v = 0; v < pl->nvariants; v++) {
    int64_t visited, full;
    if (plan_count_tiles(pl, r, 0, heads[v], &visited, &full, d) != ATTNC_OK) return -1;
    double area = (double)(pl->sched.bm * pl->sched.bn);
    cost += (double)nqt * CTA_COST + (double)full * (area + TILE_COST) +
            (double)(visited - full) * (area * PARTIAL_COST + TILE_COST);
  }
  return cost;
}

attnc_status pass_tile(PassCtx *pc) {
  Plan *pl = pc->plan;
  Schedule *s = &pl->sched;
  const PlanOptions *o = &pl->opt;
  const IrPattern *p = pl->pat;
  Diag *d = pc->d;
  bool gpu = o->target == ATTNC_TARGET_CUDA;

  if (!s->pin_warps) s->warps = gpu || o->target == ATTNC_TARGET_REF ? 4 : 1;
  if (!s->pin_stages) s->stages = gpu || o->target == ATTNC_TARGET_REF ? 2 : 1;

  int64_t bms[2] = { 128, 0 }, bns[3] = { 128, 64, 0 };
  if (s->pin_tile) {
    if (s->bm < 1 || s->bn < 1)
      return diag_error(d, ATTNC_ERR_ARG, ir_loc(p, 0), "tile %lldx%lld is not positive",
                        (long long)s->bm, (long long)s->bn);
    bms[0] = s->bm;
    bns[0] = s->bn;
    bns[1] = 0;
  }
  if (reads_runtime_data(pl) && !s->pin_tile) {
    /* the largest power of two (16..128) that divides the list's block */
    int64_t unit = list_unit(pl), b = 128;
    while (unit > 0 && b > 16 && unit % b != 0) b /= 2;
    bns[0] = unit > 0 && unit % b == 0 ? b : 128;
    bns[1] = 0;
  }
  /* small grids: no tile larger than the grid's power-of-two hull */
  if (s->grid && !s->pin_tile) {
    int64_t cap = 1;
    for (int a = 0; a < rank_of(s); a++) {
      int64_t l = 1;
      while (l < p->grid[a]) l *= 2;
      cap *= l;
    }
    for (int i = 0; bms[i]; i++) if (bms[i] > cap) bms[i] = cap;
    for (int i = 0; bns[i]; i++) if (bns[i] > cap) bns[i] = cap;
    if (bns[1] == bns[0]) bns[1] = 0;
  }

  /* candidates */
  Cand *cand = arena_alloc(pl->arena, sizeof *cand * MAX_CAND);
  if (!cand) return diag_error(d, ATTNC_ERR_NOMEM, ir_loc(p, 0), "out of memory");
  int ncand = 0;
  int rank = s->rank;
  for (int i = 0; bms[i]; i++)
    for (int j = 0; bns[j]; j++) {
      int64_t qb[64][IR_MAXGRID], kb[64][IR_MAXGRID];
      int nq = 1, nk = 1;
      memset(qb, 0, sizeof qb);
      memset(kb, 0, sizeof kb);
      if (s->pin_box && s->grid) {
        memcpy(qb[0], s->qbox, sizeof qb[0]);
        memcpy(kb[0], s->kbox, sizeof kb[0]);
      } else if (s->grid) {
        nq = boxes(p, rank, bms[i], qb, 64);
        nk = boxes(p, rank, bns[j], kb, 64);
      } else {
        qb[0][0] = bms[i];
        kb[0][0] = bns[j];
      }
      for (int a = 0; a < nq; a++)
        for (int b = 0; b < nk && ncand < MAX_CAND; b++) {
          Cand *c = &cand[ncand++];
          memset(c, 0, sizeof *c);
          c->bm = bms[i];
          c->bn = bns[j];
          for (int x = 0; x < IR_MAXGRID; x++) {
            c->qbox[x] = x < rank ? qb[a][x] : 1;
            c->kbox[x] = x < rank ? kb[b][x] : 1;
          }
          if (!s->grid) { c->qbox[0] = c->bm; c->kbox[0] = c->bn; }
        }
    }
  if (ncand == 0)
    return diag_error(d, ATTNC_ERR_ARG, ir_loc(p, 0), "no tile box of %lldx%lld fits the grid",
                      (long long)bms[0], (long long)bns[0]);

  int best = 0;
  if (ncand > 1 && !reads_runtime_data(pl)) {
    PlanRun r = { .B = 1, .H = o->H > 0 ? o->H : 16, .Sq = o->Sq, .Sk = o->Sk };
    int64_t total = 1;
    for (int a = 0; a < p->grid_rank; a++) total *= p->grid[a];
    if (p->grid_rank > 0) r.Sq = r.Sk = total;
    if (r.Sq <= 0) r.Sq = 4096;
    if (r.Sk <= 0) r.Sk = r.Sq;
    int64_t heads[64];
    for (int v = 0; v < pl->nvariants && v < 64; v++) {
      heads[v] = 0;
      for (int64_t h = 0; h < 1024; h++)
        if (plan_variant_of(pl, h) == v) { heads[v] = h; break; }
    }
    double bestc = -1;
    for (int i = 0; i < ncand; i++) {
      apply(pl, &cand[i]);
      double c = score(pl, &r, heads, d);
      if (c < 0) return d->status ? d->status : ATTNC_ERR_INTERNAL;
      if (bestc < 0 || c < bestc) { bestc = c; best = i; }
    }
  }
  apply(pl, &cand[best]);
  plan_interval_reset(pl);
  return plan_make_orders(pl, d);
}
