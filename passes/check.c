/*
** check.c -- the check pass: the plan verifier. Every expression a backend
** will emit exists, uses only variables the kernel has (q-tile axes below
** the order's rank), and every iterator has what its kind needs. Failures
** are internal errors: a pass built a bad plan.
*/
#include "passes/passes.h"

typedef struct Ctx { const Plan *pl; Diag *d; const char *where; } Ctx;

static bool expr_ok(Ctx *c, const PlanExpr *e, bool heads_only) {
  if (!e)
    return diag_error(c->d, ATTNC_ERR_INTERNAL, ir_loc(c->pl->pat, 0), "%s: missing expression", c->where),
           false;
  if (e->op >= PE_NOPS)
    return diag_error(c->d, ATTNC_ERR_INTERNAL, ir_loc(c->pl->pat, 0), "%s: bad op %d", c->where, e->op), false;
  if (e->op == PE_VAR) {
    bool ok = e->var < PV_NVARS && (e->var < PV_QT || e->axis < c->pl->qord.rank);
    if (heads_only) ok = e->var == PV_H;
    if (!ok)
      return diag_error(c->d, ATTNC_ERR_INTERNAL, ir_loc(c->pl->pat, 0), "%s: variable %s%d not available",
                        c->where, plan_var_name((PlanVar)e->var), e->axis), false;
    return true;
  }
  for (int i = 0; i < 3; i++)
    if (e->a[i] && !expr_ok(c, e->a[i], heads_only)) return false;
  return true;
}

static bool box_ok(Ctx *c, const PlanBox *b, int rank) {
  if (b->may && !expr_ok(c, b->may, false)) return false;
  if (b->must && !expr_ok(c, b->must, false)) return false;
  for (int a = 0; a < rank; a++)
    if (!expr_ok(c, b->ax[a].lo, false) || !expr_ok(c, b->ax[a].hi, false) ||
        !expr_ok(c, b->ax[a].flo, false) || !expr_ok(c, b->ax[a].fhi, false))
      return false;
  return true;
}

attnc_status pass_check(PassCtx *pc) {
  const Plan *pl = pc->plan;
  Ctx c = { pl, pc->d, "order" };
  const Schedule *s = &pl->sched;
  if (s->bm < 1 || s->bn < 1 || pl->qord.rank < 1 || pl->qord.rank != pl->kord.rank ||
      pl->qord.tile != s->bm || pl->kord.tile != s->bn)
    return diag_error(pc->d, ATTNC_ERR_INTERNAL, ir_loc(pl->pat, 0), "inconsistent schedule (%lldx%lld)",
                      (long long)s->bm, (long long)s->bn);
  for (int a = 0; a < pl->qord.rank; a++)
    if (!expr_ok(&c, pl->qord.ax[a].qlo, false) || !expr_ok(&c, pl->qord.ax[a].qhi, false) ||
        !expr_ok(&c, pl->qord.ax[a].qres, false) || !expr_ok(&c, pl->qord.ax[a].ntiles, false) ||
        !expr_ok(&c, pl->kord.ax[a].ntiles, false))
      return pc->d->status;
  for (int v = 0; v < pl->nvariants; v++) {
    const PlanVariant *var = &pl->variants[v];
    const PlanIter *it = &var->it;
    c.where = "variant";
    if (var->heads && !expr_ok(&c, var->heads, true)) return pc->d->status;
    if (var->mask >= pl->pat->nnodes)
      return diag_error(pc->d, ATTNC_ERR_INTERNAL, ir_loc(pl->pat, 0), "variant %d mask out of range", v);
    c.where = "box";
    for (int i = 0; i < it->nboxes; i++)
      if (!box_ok(&c, &it->boxes[i], pl->kord.rank)) return pc->d->status;
    if ((it->kind == ITER_LIST) != (it->list != NULL) || (it->kind == ITER_DATA) != (it->data != NULL))
      return diag_error(pc->d, ATTNC_ERR_INTERNAL, ir_loc(pl->pat, 0), "variant %d: iterator kind mismatch", v);
    if (it->list) {
      c.where = "list";
      const PlanList *L = it->list;
      if (!box_ok(&c, &L->clip, 1) || !expr_ok(&c, L->len, false) || !expr_ok(&c, L->nvals, false))
        return pc->d->status;
      if (L->unit % s->bn != 0)
        return diag_error(pc->d, ATTNC_ERR_INTERNAL, ir_loc(pl->pat, 0), "list unit not a multiple of bn");
    }
    if (it->data && !box_ok(&c, &it->data->clip, 1)) return pc->d->status;
  }
  return ATTNC_OK;
}
