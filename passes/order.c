/*
** order.c -- the order pass: which token order the kernel walks.
**
**   1-D raster   tokens in sequence order; a tile is bm consecutive tokens
**   tiled grid   when the mask bounds grid coordinates (kc[i]): a tile is
**                a box of pixels/voxels (the boxes are the tile pass's)
**   residue      along an axis where every term holds (q - k) % d == 0:
**                tokens grouped by residue mod d, so a dilated window
**                becomes contiguous tiles (NATTEN's token permutation,
**                folded into address computation; formulas in passes.h)
** plan_make_orders turns the schedule into the PlanOrder formulas.
*/
#include <string.h>

#include "passes/passes.h"

/* the common modulus of the congruences on one axis in every term, or 1 */
static int64_t common_dilation(const Plan *pl, int axis, bool grid) {
  int64_t d = 0;
  for (int v = 0; v < pl->nvariants; v++) {
    const Dnf *f = &pl->dnf[v];
    for (int t = 0; t < f->nterms; t++) {
      int64_t here = 0;
      for (int i = 0; i < f->terms[t].natoms; i++) {
        const Atom *a = &f->terms[t].atoms[i];
        bool same = pl->pat->grid_rank <= 1 ? a->axis == 0 : (a->grid == grid && a->axis == axis);
        if (a->kind == ATOM_CONG && same) here = a->d;
      }
      if (here <= 1 || (d && here != d)) return 1;
      d = here;
    }
  }
  return d > 1 ? d : 1;
}

attnc_status pass_order(PassCtx *pc) {
  Plan *pl = pc->plan;
  Schedule *s = &pl->sched;
  const IrPattern *p = pl->pat;
  int grid_atoms = 0, token_atoms = 0;
  for (int v = 0; v < pl->nvariants; v++)
    for (int t = 0; t < pl->dnf[v].nterms; t++)
      for (int i = 0; i < pl->dnf[v].terms[t].natoms; i++) {
        const Atom *a = &pl->dnf[v].terms[t].atoms[i];
        if (a->kind != ATOM_KBOUND && a->kind != ATOM_CONG) continue;
        if (a->grid) grid_atoms++;
        else token_atoms++;
      }
  if (s->pin_order) s->grid = !s->raster && p->grid_rank > 1;
  else s->grid = p->grid_rank > 1 && grid_atoms > token_atoms;
  s->rank = s->grid ? p->grid_rank : 1;
  for (int a = 0; a < IR_MAXGRID; a++) {
    if (s->pin_order && s->dil[a] >= 1) continue;
    s->dil[a] = a < s->rank ? common_dilation(pl, a, s->grid) : 1;
  }
  for (int a = 0; a < IR_MAXGRID; a++)
    if (s->dil[a] < 1) s->dil[a] = 1;
  return ATTNC_OK;
}

/* one side's order from the schedule; q: with the q-tile formulas */
static attnc_status make_order(Plan *pl, PlanOrder *o, const int64_t *box, bool q, Diag *d) {
  Arena *A = pl->arena;
  const IrPattern *p = pl->pat;
  const Schedule *s = &pl->sched;
  memset(o, 0, sizeof *o);
  o->rank = s->rank;
  o->tile = 1;
  o->ntiles = pe_const(A, 1);
  int64_t total = 1;
  for (int a = 0; a < p->grid_rank; a++) total *= p->grid[a];
  for (int a = 0; a < o->rank; a++) {
    PlanAxis *ax = &o->ax[a];
    ax->box = box[a];
    ax->dil = s->dil[a];
    if (ax->box < 1) return diag_error(d, ATTNC_ERR_ARG, ir_loc(p, 0), "tile box %lld on axis %d", (long long)ax->box, a);
    ax->n = s->grid ? p->grid[a] : p->grid_rank > 0 ? total : 0;
    ax->size = ax->n ? pe_const(A, ax->n) : pe_var(A, q ? PV_SQ : PV_SK, 0);
    const PlanExpr *bd = pe_const(A, ax->box * ax->dil), *dd = pe_const(A, ax->dil);
    const PlanExpr *P = pe_op(A, PE_CDIV, ax->size, bd, NULL);
    ax->ntiles = pe_op(A, PE_MUL, dd, P, NULL);
    o->ntiles = pe_op(A, PE_MUL, o->ntiles, ax->ntiles, NULL);
    o->tile *= ax->box;
    if (!q) continue;
    const PlanExpr *qt = pe_var(A, PV_QT, a), *one = pe_const(A, 1), *bx = pe_const(A, ax->box);
    const PlanExpr *r = ax->dil == 1 ? pe_const(A, 0) : pe_op(A, PE_FDIV, qt, P, NULL);
    const PlanExpr *tj = ax->dil == 1 ? qt : pe_op(A, PE_FMOD, qt, P, NULL);
    const PlanExpr *j0 = pe_op(A, PE_MUL, tj, bx, NULL);
    const PlanExpr *jlast = pe_op(A, PE_FDIV, pe_op(A, PE_SUB, pe_op(A, PE_SUB, ax->size, one, NULL), r, NULL), dd, NULL);
    const PlanExpr *j1 = pe_op(A, PE_MIN, pe_op(A, PE_ADD, j0, pe_const(A, ax->box - 1), NULL), jlast, NULL);
    ax->qres = r;
    ax->qlo = pe_op(A, PE_ADD, r, pe_op(A, PE_MUL, dd, j0, NULL), NULL);
    ax->qhi = pe_op(A, PE_ADD, r, pe_op(A, PE_MUL, dd, j1, NULL), NULL);
  }
  if (A->failed) return diag_error(d, ATTNC_ERR_NOMEM, ir_loc(p, 0), "out of memory");
  return ATTNC_OK;
}

attnc_status plan_make_orders(Plan *pl, Diag *d) {
  if (make_order(pl, &pl->qord, pl->sched.qbox, true, d) != ATTNC_OK) return d->status;
  return make_order(pl, &pl->kord, pl->sched.kbox, false, d);
}

/* ------------------------------------------------------ host formulas */

int64_t plan_order_ntiles(const PlanOrder *o, int64_t seqlen) {
  int64_t t = 1;
  for (int a = 0; a < o->rank; a++) {
    const PlanAxis *ax = &o->ax[a];
    int64_t n = ax->n ? ax->n : seqlen, bd = ax->box * ax->dil;
    t *= ax->dil * ((n + bd - 1) / bd);
  }
  return t;
}

int64_t plan_order_token(const PlanOrder *o, int64_t seqlen, int64_t tile, int64_t pos) {
  int64_t u[IR_MAXGRID], i[IR_MAXGRID], token = 0;
  for (int a = o->rank - 1; a >= 0; a--) {
    const PlanAxis *ax = &o->ax[a];
    int64_t n = ax->n ? ax->n : seqlen, bd = ax->box * ax->dil;
    int64_t T = ax->dil * ((n + bd - 1) / bd);
    u[a] = tile % T;
    tile /= T;
    i[a] = pos % ax->box;
    pos /= ax->box;
  }
  for (int a = 0; a < o->rank; a++) {
    const PlanAxis *ax = &o->ax[a];
    int64_t n = ax->n ? ax->n : seqlen, bd = ax->box * ax->dil;
    int64_t P = (n + bd - 1) / bd;
    int64_t r = u[a] / P, tj = u[a] % P;
    int64_t c = r + ax->dil * (tj * ax->box + i[a]);
    if (c >= n) return -1;
    token = token * n + c;
  }
  return token;
}
