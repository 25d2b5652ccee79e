/*
** pipeline.c -- the pass pipeline and plan_build.
**
** Every pass has one signature, attnc_status pass(PassCtx *), and runs in
** the order of this table. ATTNC_DUMP=name,name (or all) prints the plan
** to stderr after the named passes.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"

const Pass plan_pipeline[] = {
  { "normalize", pass_normalize, "copy the pattern into the plan" },
  { "heads",     pass_heads,     "one variant per distinct head behaviour" },
  { "terms",     pass_terms,     "each mask as a DNF of classified atoms" },
  { "order",     pass_order,     "token order: raster, grid boxes, residue groups" },
  { "tile",      pass_tile,      "tile sizes, boxes, warps, stages" },
  { "iterate",   pass_iterate,   "kv iterators and full/partial tests" },
  { "check",     pass_check,     "verify the plan" },
  { NULL, NULL, NULL }
};

/* is `name` in the comma-separated list (or is the list "all")? */
static bool listed(const char *list, const char *name) {
  if (!list || !*list) return false;
  if (strcmp(list, "all") == 0) return true;
  size_t n = strlen(name);
  for (const char *s = list; *s;) {
    const char *e = strchr(s, ',');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    if (len == n && strncmp(s, name, n) == 0) return true;
    if (!e) break;
    s = e + 1;
  }
  return false;
}

/* which inputs the masks, the score and the iterators read */
static void mark_inputs(Plan *pl) {
  const IrPattern *p = pl->pat;
  char *seen = arena_alloc(pl->arena, (size_t)p->nnodes + 1);
  if (!seen) return;
  for (int pass = 0; pass < 2; pass++) {
    memset(seen, 0, (size_t)p->nnodes);
    int roots[66], nroots = 0;
    if (pass == 0) {
      for (int v = 0; v < pl->nvariants && nroots < 64; v++)
        if (pl->variants[v].mask >= 0) roots[nroots++] = pl->variants[v].mask;
    } else if (p->score >= 0)
      roots[nroots++] = p->score;
    for (int r = 0; r < nroots; r++) seen[roots[r]] = 1;
    for (int i = p->nnodes - 1; i >= 0; i--) {
      if (!seen[i]) continue;
      const IrNode *nd = &p->nodes[i];
      if ((nd->op == IR_LOAD || nd->op == IR_CONTAINS) && nd->imm.i >= 0 && nd->imm.i < 32)
        *(pass ? &pl->inputs_score : &pl->inputs_mask) |= 1u << nd->imm.i;
      for (int j = 0; j < nd->nargs; j++) seen[nd->args[j]] = 1;
    }
  }
  for (int v = 0; v < pl->nvariants; v++) {
    const PlanIter *it = &pl->variants[v].it;
    if (it->list && it->list->input < 32) pl->inputs_iter |= 1u << it->list->input;
    if (it->data) pl->inputs_iter |= pl->inputs_mask;   /* the keys' inputs */
  }
}

attnc_status plan_build(Arena *a, const IrPattern *p, const PlanOptions *opt, const char *stop_after,
                        Plan **out, Diag *d) {
  *out = NULL;
  Plan *pl = arena_alloc(a, sizeof *pl);
  if (!pl) return diag_error(d, ATTNC_ERR_NOMEM, ir_loc(p, 0), "out of memory");
  pl->arena = a;
  pl->pat = (IrPattern *)p;        /* normalize replaces it with a copy */
  if (opt) pl->opt = *opt;
  else pl->opt.target = ATTNC_TARGET_REF;
  pl->sched = pl->opt.pin;
  const char *dump = getenv("ATTNC_DUMP");
  PassCtx pc = { pl, d };
  for (const Pass *ps = plan_pipeline; ps->name; ps++) {
    if (ps->run(&pc) != ATTNC_OK) {
      if (diag_ok(d) && a->failed) diag_error(d, ATTNC_ERR_NOMEM, ir_loc(p, 0), "out of memory");
      if (diag_ok(d)) diag_error(d, ATTNC_ERR_INTERNAL, ir_loc(p, 0), "pass %s failed silently", ps->name);
      return d->status;
    }
    if (ps->run == pass_iterate) pl->iterated = true;
    if (a->failed) return diag_error(d, ATTNC_ERR_NOMEM, ir_loc(p, 0), "out of memory");
    if (listed(dump, ps->name)) {
      char *text = plan_print(pl, a);
      fprintf(stderr, "=== plan after %s ===\n%s", ps->name, text ? text : "(out of memory)\n");
    }
    if (stop_after && strcmp(stop_after, ps->name) == 0) break;
  }
  if (pl->iterated) mark_inputs(pl);
  *out = pl;
  return ATTNC_OK;
}
